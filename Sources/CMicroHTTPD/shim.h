// Debian's libmicrohttpd-dev (0.9.75) installs <microhttpd.h>, which needs the socket types first.
// Included by path rather than through pkg-config, as CHiredis does.
#include <stdarg.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <microhttpd.h>
