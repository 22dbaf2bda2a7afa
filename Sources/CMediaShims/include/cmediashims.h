// Minimal C glue for libpng and libjpeg, which report errors by longjmp (Swift cannot catch that).
// Every function returns 0 on success, or -1 with a message in `error` (NUL-terminated).
#ifndef CMEDIASHIMS_H
#define CMEDIASHIMS_H

#include <stddef.h>
#include <stdint.h>

/// A decoded raster: interleaved samples, 16-bit samples in host byte order.
typedef struct {
    uint8_t *pixels; // malloc'd; release with wm_free
    uint32_t width;
    uint32_t height;
    int channels;  // 1-4
    int bit_depth; // 8 or 16
} wm_raster;

/// Decodes a PNG (palette, tRNS and 1/2/4-bit grey are expanded; 16 bits stay 16 bits).
/// Images wider or taller than `max_side` or with more than `max_pixels` pixels are rejected
/// before the pixel buffer is allocated.
int wm_png_decode(const uint8_t *data, size_t size, uint32_t max_side, uint64_t max_pixels,
                  wm_raster *out, char *error, size_t error_size);

/// Encodes interleaved 8- or 16-bit (host order) samples with 1-4 channels to a PNG in memory.
/// `*out` is malloc'd; release with wm_free.
int wm_png_encode(const uint8_t *pixels, uint32_t width, uint32_t height, int channels, int bit_depth,
                  uint8_t **out, size_t *out_size, char *error, size_t error_size);

/// 8-bit PNG in pieces (compressed on several threads by the caller; the pieces depend on the
/// image's size alone, so the file does not depend on the thread count):
/// rows [first, last) of interleaved 8-bit pixels, Paeth-filtered into `out` (each row its filter
/// byte, then its bytes);
void wm_png_filter_rows(const uint8_t *pixels, uint32_t width, int channels, uint32_t first, uint32_t last, uint8_t *out);
/// a raw deflate stream of `size` bytes with zlib's run-length strategy, which ends with a sync
/// flush (a later piece follows) or, when `final` is non-zero, the last block; returns its
/// length, or -1 (`capacity` of wm_png_deflate_bound(size) is enough);
long wm_png_deflate(const uint8_t *data, size_t size, int final, uint8_t *out, size_t capacity);
size_t wm_png_deflate_bound(size_t size);
/// zlib's Adler-32 of `size` bytes, and of two pieces from theirs;
uint32_t wm_adler32(const uint8_t *data, size_t size);
uint32_t wm_adler32_combine(uint32_t first, uint32_t second, size_t second_size);
/// and the PNG of an 8-bit image whose zlib stream (filtered rows) is `idat`: signature and
/// header by libpng, one IDAT chunk, IEND. `*out` is malloc'd; release with wm_free.
int wm_png_encode_compressed(uint32_t width, uint32_t height, int channels, const uint8_t *idat, size_t idat_size,
                             uint8_t **out, size_t *out_size, char *error, size_t error_size);

/// Decodes a baseline or progressive JPEG to grey (1 channel) or RGB (3 channels), 8 bits.
/// libjpeg's corrupt-data warnings (e.g. a truncated file) are reported as errors.
int wm_jpeg_decode(const uint8_t *data, size_t size, uint32_t max_side, uint64_t max_pixels,
                   wm_raster *out, char *error, size_t error_size);

/// Encodes interleaved 8-bit grey or RGB samples to a JPEG in memory at `quality` (1-100),
/// with 4:2:0 chroma subsampling or, when `full_chroma` is non-zero, 4:4:4; `optimize` non-zero
/// computes optimal Huffman tables (a second pass; smaller files, same pixels).
int wm_jpeg_encode(const uint8_t *pixels, uint32_t width, uint32_t height, int channels, int quality,
                   int full_chroma, int optimize, uint8_t **out, size_t *out_size, char *error, size_t error_size);

/// Releases memory returned by the functions above.
void wm_free(void *pointer);

#endif
