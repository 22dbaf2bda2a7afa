// libsndfile (Debian: libsndfile1-dev, pkg-config name "sndfile").
#include <sndfile.h>
