// OpenSSL's libcrypto (Debian's libssl-dev): message digests for script SHA-1s and PKCE,
// AES-256-GCM (EVP) and RAND_bytes for encryption at rest.
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/err.h>
