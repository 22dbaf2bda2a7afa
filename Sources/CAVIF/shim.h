// libavif (Debian: libavif-dev, pkg-config name "libavif"), for the AVIF evaluation baseline.
#include <avif/avif.h>
