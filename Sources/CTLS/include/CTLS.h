// OpenSSL's libssl (Debian's libssl-dev 3.0) for Redis over TLS: the headers BatonRedis uses, and
// non-macro wrappers for the few OpenSSL "functions" that are macros Swift cannot import.
#ifndef BATON_CTLS_H
#define BATON_CTLS_H

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/// SSL_set_tlsext_host_name: the SNI name sent in the ClientHello. Returns 1 on success.
int CTLS_set_server_name(SSL *ssl, const char *name);

/// SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION). Returns 1 on success.
int CTLS_ctx_require_tls12(SSL_CTX *ctx);

/// SSL_CTX_set_mode with partial writes and moving write buffers (non-blocking sockets).
void CTLS_ctx_set_nonblocking_modes(SSL_CTX *ctx);

#endif
