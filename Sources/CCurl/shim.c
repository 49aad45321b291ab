#include "CCurl.h"
#include <curl/curl.h>

int CCurl_global_init(void) { return (int)curl_global_init(CURL_GLOBAL_DEFAULT); }
CCurl_handle *CCurl_easy_init(void) { return (CCurl_handle *)curl_easy_init(); }
void CCurl_easy_cleanup(CCurl_handle *handle) { curl_easy_cleanup((CURL *)handle); }
int CCurl_easy_perform(CCurl_handle *handle) { return (int)curl_easy_perform((CURL *)handle); }
const char *CCurl_easy_strerror(int code) { return curl_easy_strerror((CURLcode)code); }

int CCurl_easy_setopt_long(CCurl_handle *handle, int option, long value) {
    return (int)curl_easy_setopt((CURL *)handle, (CURLoption)option, value);
}
int CCurl_easy_setopt_string(CCurl_handle *handle, int option, const char *value) {
    return (int)curl_easy_setopt((CURL *)handle, (CURLoption)option, value);
}
int CCurl_easy_setopt_pointer(CCurl_handle *handle, int option, void *value) {
    return (int)curl_easy_setopt((CURL *)handle, (CURLoption)option, value);
}
int CCurl_easy_setopt_list(CCurl_handle *handle, int option, CCurl_list *list) {
    return (int)curl_easy_setopt((CURL *)handle, (CURLoption)option, (struct curl_slist *)list);
}
int CCurl_easy_setopt_callback(CCurl_handle *handle, int option, CCurl_data_callback callback) {
    return (int)curl_easy_setopt((CURL *)handle, (CURLoption)option, callback);
}
int CCurl_easy_getinfo_long(CCurl_handle *handle, int info, long *value) {
    return (int)curl_easy_getinfo((CURL *)handle, (CURLINFO)info, value);
}

CCurl_list *CCurl_slist_append(CCurl_list *list, const char *line) {
    return (CCurl_list *)curl_slist_append((struct curl_slist *)list, line);
}
void CCurl_slist_free_all(CCurl_list *list) { curl_slist_free_all((struct curl_slist *)list); }

const int CCurlOption_URL = CURLOPT_URL;
const int CCurlOption_POSTFIELDS = CURLOPT_POSTFIELDS;
const int CCurlOption_POSTFIELDSIZE = CURLOPT_POSTFIELDSIZE;
const int CCurlOption_HTTPHEADER = CURLOPT_HTTPHEADER;
const int CCurlOption_WRITEFUNCTION = CURLOPT_WRITEFUNCTION;
const int CCurlOption_WRITEDATA = CURLOPT_WRITEDATA;
const int CCurlOption_HEADERFUNCTION = CURLOPT_HEADERFUNCTION;
const int CCurlOption_HEADERDATA = CURLOPT_HEADERDATA;
const int CCurlOption_CONNECTTIMEOUT_MS = CURLOPT_CONNECTTIMEOUT_MS;
const int CCurlOption_TIMEOUT_MS = CURLOPT_TIMEOUT_MS;
const int CCurlOption_NOSIGNAL = CURLOPT_NOSIGNAL;
const int CCurlOption_SSL_VERIFYPEER = CURLOPT_SSL_VERIFYPEER;
const int CCurlOption_SSL_VERIFYHOST = CURLOPT_SSL_VERIFYHOST;
const int CCurlOption_FOLLOWLOCATION = CURLOPT_FOLLOWLOCATION;
const int CCurlOption_PROTOCOLS_STR = CURLOPT_PROTOCOLS_STR;
const int CCurlOption_USERAGENT = CURLOPT_USERAGENT;

const int CCurlInfo_RESPONSE_CODE = CURLINFO_RESPONSE_CODE;

const int CCurlCode_OK = CURLE_OK;
const int CCurlCode_WRITE_ERROR = CURLE_WRITE_ERROR;
const int CCurlCode_OPERATION_TIMEDOUT = CURLE_OPERATION_TIMEDOUT;
const int CCurlCode_COULDNT_CONNECT = CURLE_COULDNT_CONNECT;
const int CCurlCode_COULDNT_RESOLVE_HOST = CURLE_COULDNT_RESOLVE_HOST;
