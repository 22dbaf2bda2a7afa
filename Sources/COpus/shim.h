// libopusenc and libopusfile (Debian: libopusenc-dev, libopusfile-dev), for the Opus evaluation baseline.
#include <opusenc.h>
#include <opusfile.h>
