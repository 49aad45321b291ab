// CMicroHTTPDShim: non-variadic entry points into libmicrohttpd.
//
// Swift cannot call C variadics: MHD_start_daemon takes its options as a variadic list, and
// MHD_get_daemon_info takes a variadic tail. Each wrapper passes one fixed set of arguments.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <microhttpd.h>

/// The limits and address of one daemon (see BatonHTTP's HTTPListener.Limits for the meaning).
typedef struct CMicroHTTPDShim_settings {
    /// IPv4 (sockaddr_in) or IPv6 (sockaddr_in6) address to bind.
    const struct sockaddr *address;
    /// Non-zero when `address` is IPv6 (MHD needs MHD_USE_IPv6 then).
    int ipv6;
    unsigned int connection_limit;
    unsigned int per_ip_connection_limit;
    unsigned int connection_timeout_seconds;
    size_t connection_memory_limit;
    MHD_AccessHandlerCallback handler;
    void *handler_context;
    MHD_RequestCompletedCallback completed;
    void *completed_context;
    /// Receives MHD's error messages (NUL-terminated, truncated); may be NULL.
    char *error_buffer;
    size_t error_capacity;
} CMicroHTTPDShim_settings;

/// MHD_start_daemon with one internal polling thread (epoll or poll, MHD's choice),
/// MHD_ALLOW_SUSPEND_RESUME, error logging into `settings->error_buffer`, and the limits given.
/// Returns NULL on failure; `*error_number` is errno right after the failed start.
struct MHD_Daemon *CMicroHTTPDShim_start(const CMicroHTTPDShim_settings *settings, int *error_number);

/// The port the daemon listens on (MHD_DAEMON_INFO_BIND_PORT), 0 when unknown.
uint16_t CMicroHTTPDShim_bound_port(struct MHD_Daemon *daemon);
