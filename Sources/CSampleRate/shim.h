// libsamplerate (Debian: libsamplerate0-dev): resampling the Opus baseline's 48 kHz output.
#include <samplerate.h>
