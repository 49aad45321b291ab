// CCurl: typed, non-variadic wrappers around libcurl's easy interface.
//
// Swift cannot call variadic C functions (curl_easy_setopt, curl_easy_getinfo), and macros with
// casts (CURLOPT_*, CURLAUTH_*) are not imported. Each wrapper takes one argument kind; each
// option Baton uses is a plain constant. Only shim.c includes <curl/curl.h>, so Swift sees an
// opaque handle and nothing else of libcurl.
#pragma once
#include <stddef.h>

typedef struct CCurl_handle CCurl_handle;
typedef struct CCurl_list CCurl_list;
typedef size_t (*CCurl_data_callback)(char *data, size_t size, size_t count, void *context);

/// curl_global_init(CURL_GLOBAL_DEFAULT); call once before any handle (not thread-safe itself).
int CCurl_global_init(void);
CCurl_handle *CCurl_easy_init(void);
void CCurl_easy_cleanup(CCurl_handle *handle);
int CCurl_easy_perform(CCurl_handle *handle);
const char *CCurl_easy_strerror(int code);

int CCurl_easy_setopt_long(CCurl_handle *handle, int option, long value);
int CCurl_easy_setopt_string(CCurl_handle *handle, int option, const char *value);
int CCurl_easy_setopt_pointer(CCurl_handle *handle, int option, void *value);
int CCurl_easy_setopt_list(CCurl_handle *handle, int option, CCurl_list *list);
int CCurl_easy_setopt_callback(CCurl_handle *handle, int option, CCurl_data_callback callback);
int CCurl_easy_getinfo_long(CCurl_handle *handle, int info, long *value);

CCurl_list *CCurl_slist_append(CCurl_list *list, const char *line);
void CCurl_slist_free_all(CCurl_list *list);

// Options (CURLOPT_*).
extern const int CCurlOption_URL;
extern const int CCurlOption_POSTFIELDS;
extern const int CCurlOption_POSTFIELDSIZE;
extern const int CCurlOption_HTTPHEADER;
extern const int CCurlOption_WRITEFUNCTION;
extern const int CCurlOption_WRITEDATA;
extern const int CCurlOption_HEADERFUNCTION;
extern const int CCurlOption_HEADERDATA;
extern const int CCurlOption_CONNECTTIMEOUT_MS;
extern const int CCurlOption_TIMEOUT_MS;
extern const int CCurlOption_NOSIGNAL;
extern const int CCurlOption_SSL_VERIFYPEER;
extern const int CCurlOption_SSL_VERIFYHOST;
extern const int CCurlOption_FOLLOWLOCATION;
extern const int CCurlOption_PROTOCOLS_STR;
extern const int CCurlOption_USERAGENT;

// Information (CURLINFO_*).
extern const int CCurlInfo_RESPONSE_CODE;

// Result codes (CURLcode) that Baton classifies.
extern const int CCurlCode_OK;
extern const int CCurlCode_WRITE_ERROR;
extern const int CCurlCode_OPERATION_TIMEDOUT;
extern const int CCurlCode_COULDNT_CONNECT;
extern const int CCurlCode_COULDNT_RESOLVE_HOST;
