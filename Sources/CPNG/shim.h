// libpng (Debian: libpng-dev, pkg-config name "libpng").
#include <png.h>
