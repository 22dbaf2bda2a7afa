// libtiff (Debian: libtiff-dev, pkg-config name "libtiff-4").
#include <tiffio.h>
