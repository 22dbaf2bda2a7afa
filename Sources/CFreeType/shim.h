// FreeType (Debian: libfreetype-dev, pkg-config name "freetype2"), for the text-rendering
// experiment datasets only.
#include <ft2build.h>
#include FT_FREETYPE_H
