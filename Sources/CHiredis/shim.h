// Debian's libhiredis-dev installs its headers under /usr/include/hiredis/.
// Included by path rather than through pkg-config, whose -D_FILE_OFFSET_BITS flag SwiftPM rejects.
#include <hiredis/hiredis.h>
