#ifndef WALLOC_CEVALLIBRARIES_H
#define WALLOC_CEVALLIBRARIES_H
#include <stddef.h>

/// libavif and libjxl, the AVIF and JPEG XL evaluation baselines, are loaded when first used
/// (dlopen) instead of with every walloc process: with their codecs (aom, dav1d, rav1e, SVT-AV1,
/// libgav1, highway, brotli, abseil, ...) they took about 10 ms of each process's start, and
/// highway's initialiser alone about 5 ms. The functions Walloc calls are defined here and forward
/// to the loaded library; call the matching `walloc_load_*` first (it says why when it fails).

/// Loads libavif (once; thread-safe). Returns 1, or 0 with the reason in `error` (`size` bytes).
int walloc_load_avif(char *error, size_t size);

/// Loads libjxl and libjxl_threads (once; thread-safe). Returns 1, or 0 with the reason.
int walloc_load_jxl(char *error, size_t size);

#endif
