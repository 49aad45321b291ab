// OpenSSL's libcrypto (Debian's libssl-dev): message digests for script SHA-1s and PKCE.
#include <openssl/evp.h>
