#include "CMicroHTTPDShim.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

// MHD's logger takes a va_list, which Swift cannot format: keep the latest message in the buffer.
// Runs on MHD's thread after start; the buffer is only read after a failed start (no thread then).
static void CMicroHTTPDShim_log(void *context, const char *format, va_list arguments) {
    CMicroHTTPDShim_settings *settings = context;
    if (settings == NULL || settings->error_buffer == NULL || settings->error_capacity == 0) {
        return;
    }
    vsnprintf(settings->error_buffer, settings->error_capacity, format, arguments);
    size_t length = strlen(settings->error_buffer);
    while (length > 0 && (settings->error_buffer[length - 1] == '\n' || settings->error_buffer[length - 1] == '\r')) {
        settings->error_buffer[--length] = '\0';
    }
}

struct MHD_Daemon *CMicroHTTPDShim_start(const CMicroHTTPDShim_settings *settings, int *error_number) {
    unsigned int flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (settings->ipv6) {
        flags |= MHD_USE_IPv6;
    }
    errno = 0;
    // The logger's context outlives the daemon only if the caller keeps `settings` alive: it does
    // (HTTPListener owns it until after MHD_stop_daemon).
    struct MHD_Daemon *daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, settings->handler, settings->handler_context,
        MHD_OPTION_SOCK_ADDR, settings->address,
        MHD_OPTION_CONNECTION_LIMIT, settings->connection_limit,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, settings->per_ip_connection_limit,
        MHD_OPTION_CONNECTION_TIMEOUT, settings->connection_timeout_seconds,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, settings->connection_memory_limit,
        MHD_OPTION_NOTIFY_COMPLETED, settings->completed, settings->completed_context,
        MHD_OPTION_EXTERNAL_LOGGER, CMicroHTTPDShim_log, (void *)settings,
        MHD_OPTION_END);
    if (error_number != NULL) {
        *error_number = errno;
    }
    return daemon;
}

uint16_t CMicroHTTPDShim_bound_port(struct MHD_Daemon *daemon) {
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
    return info == NULL ? 0 : info->port;
}
