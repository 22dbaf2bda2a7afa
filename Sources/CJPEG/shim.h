// libjpeg-turbo (Debian: libjpeg62-turbo-dev, pkg-config name "libjpeg"). jpeglib.h needs stdio.h first.
#include <stdio.h>
#include <jpeglib.h>
