// setjmp/longjmp error handling for libpng and libjpeg. State that must survive a longjmp lives
// in context structs owned by the caller of the function that calls setjmp.
#include "cmediashims.h"

#include <png.h>
#include <zlib.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>

void wm_free(void *pointer) { free(pointer); }

static void set_error(char *error, size_t error_size, const char *message) {
    if (error_size > 0) snprintf(error, error_size, "%s", message);
}

// A growable output buffer.
typedef struct {
    uint8_t *bytes;
    size_t size;
    size_t capacity;
} membuf;

static int membuf_reserve(membuf *b, size_t needed) {
    if (needed <= b->capacity) return 0;
    size_t capacity = b->capacity ? b->capacity : 65536;
    while (capacity < needed) {
        if (capacity > SIZE_MAX / 2) return -1;
        capacity *= 2;
    }
    uint8_t *bytes = realloc(b->bytes, capacity);
    if (!bytes) return -1;
    b->bytes = bytes;
    b->capacity = capacity;
    return 0;
}

// ---------------------------------------------------------------------------------------- PNG

typedef struct {
    jmp_buf jmp;
    char *error;
    size_t error_size;
    const uint8_t *data;
    size_t size;
    size_t offset;
    uint8_t *pixels;
    png_bytep *rows;
    membuf out;
} png_ctx;

static void png_fail(png_structp png, png_const_charp message) {
    png_ctx *c = png_get_error_ptr(png);
    set_error(c->error, c->error_size, message);
    longjmp(c->jmp, 1);
}

static void png_ignore_warning(png_structp png, png_const_charp message) {
    (void)png;
    (void)message;
}

static void png_read_memory(png_structp png, png_bytep out, size_t n) {
    png_ctx *c = png_get_io_ptr(png);
    if (n > c->size - c->offset) png_error(png, "file is truncated");
    memcpy(out, c->data + c->offset, n);
    c->offset += n;
}

static void png_write_memory(png_structp png, png_bytep in, size_t n) {
    png_ctx *c = png_get_io_ptr(png);
    if (n > SIZE_MAX - c->out.size || membuf_reserve(&c->out, c->out.size + n) != 0)
        png_error(png, "out of memory");
    memcpy(c->out.bytes + c->out.size, in, n);
    c->out.size += n;
}

static void png_flush_memory(png_structp png) { (void)png; }

static int host_is_little_endian(void) {
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

static int png_decode_body(png_structp png, png_infop info, png_ctx *c, uint32_t max_side,
                           uint64_t max_pixels, wm_raster *out) {
    if (setjmp(c->jmp)) return -1;
    png_set_read_fn(png, c, png_read_memory);
    png_set_user_limits(png, max_side, max_side);
    png_read_info(png, info);
    uint32_t width = png_get_image_width(png, info), height = png_get_image_height(png, info);
    if ((uint64_t)width * height > max_pixels) png_error(png, "image has too many pixels");
    int color = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (depth == 16 && host_is_little_endian()) png_set_swap(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int channels = png_get_channels(png, info), out_depth = png_get_bit_depth(png, info);
    size_t row_bytes = png_get_rowbytes(png, info);
    if (channels < 1 || channels > 4 || (out_depth != 8 && out_depth != 16) ||
        row_bytes != (size_t)width * channels * (out_depth / 8))
        png_error(png, "unsupported PNG sample layout");
    if (height > SIZE_MAX / row_bytes) png_error(png, "image too large");
    c->pixels = malloc(row_bytes * height);
    c->rows = malloc(sizeof(png_bytep) * height);
    if (!c->pixels || !c->rows) png_error(png, "out of memory");
    for (uint32_t y = 0; y < height; y++) c->rows[y] = c->pixels + (size_t)y * row_bytes;
    png_read_image(png, c->rows);
    png_read_end(png, NULL);
    out->width = width;
    out->height = height;
    out->channels = channels;
    out->bit_depth = out_depth;
    return 0;
}

int wm_png_decode(const uint8_t *data, size_t size, uint32_t max_side, uint64_t max_pixels,
                  wm_raster *out, char *error, size_t error_size) {
    memset(out, 0, sizeof *out);
    if (size < 8 || png_sig_cmp(data, 0, 8) != 0) {
        set_error(error, error_size, "not a PNG file");
        return -1;
    }
    png_ctx c;
    memset(&c, 0, sizeof c);
    c.error = error;
    c.error_size = error_size;
    c.data = data;
    c.size = size;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &c, png_fail, png_ignore_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_read_struct(&png, &info, NULL);
        set_error(error, error_size, "out of memory");
        return -1;
    }
    int status = png_decode_body(png, info, &c, max_side, max_pixels, out);
    png_destroy_read_struct(&png, &info, NULL);
    free(c.rows);
    if (status == 0) out->pixels = c.pixels;
    else free(c.pixels);
    return status;
}

static int png_encode_body(png_structp png, png_infop info, png_ctx *c, const uint8_t *pixels,
                           uint32_t width, uint32_t height, int channels, int depth) {
    if (setjmp(c->jmp)) return -1;
    static const int color_types[4] = {PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                                       PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
    png_set_write_fn(png, c, png_write_memory, png_flush_memory);
    png_set_IHDR(png, info, width, height, depth, color_types[channels - 1], PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    // Speed at little cost in size (docs/media.md): 8-bit rows take the Paeth filter and zlib's
    // run-length strategy (2% larger than libpng's defaults on a decoded photo, 6x faster);
    // 16-bit rows keep adaptive filters, where run-length matching is 27% larger, at level 2.
    if (depth == 8) {
        png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_PAETH);
        png_set_compression_strategy(png, Z_RLE);
    } else {
        png_set_compression_level(png, 2);
    }
    png_write_info(png, info);
    if (depth == 16 && host_is_little_endian()) png_set_swap(png);
    size_t row_bytes = (size_t)width * channels * (depth / 8);
    c->rows = malloc(sizeof(png_bytep) * height);
    if (!c->rows) png_error(png, "out of memory");
    for (uint32_t y = 0; y < height; y++) c->rows[y] = (png_bytep)(pixels + (size_t)y * row_bytes);
    png_write_image(png, c->rows);
    png_write_end(png, NULL);
    return 0;
}

// Runs `body` on a fresh libpng writer into memory: `*out` is malloc'd on success.
typedef int (*png_write_body)(png_structp png, png_infop info, png_ctx *c, const void *args);

static int png_write_memory_image(png_write_body body, const void *args, uint8_t **out, size_t *out_size,
                                  char *error, size_t error_size) {
    png_ctx c;
    memset(&c, 0, sizeof c);
    c.error = error;
    c.error_size = error_size;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &c, png_fail, png_ignore_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, &info);
        set_error(error, error_size, "out of memory");
        return -1;
    }
    int status = body(png, info, &c, args);
    png_destroy_write_struct(&png, &info);
    free(c.rows);
    if (status == 0) {
        *out = c.out.bytes;
        *out_size = c.out.size;
    } else {
        free(c.out.bytes);
    }
    return status;
}

typedef struct {
    const uint8_t *pixels;
    uint32_t width, height;
    int channels, bit_depth;
} png_pixels_args;

static int png_encode_pixels(png_structp png, png_infop info, png_ctx *c, const void *args) {
    const png_pixels_args *a = args;
    return png_encode_body(png, info, c, a->pixels, a->width, a->height, a->channels, a->bit_depth);
}

int wm_png_encode(const uint8_t *pixels, uint32_t width, uint32_t height, int channels, int bit_depth,
                  uint8_t **out, size_t *out_size, char *error, size_t error_size) {
    *out = NULL;
    *out_size = 0;
    if (channels < 1 || channels > 4 || (bit_depth != 8 && bit_depth != 16)) {
        set_error(error, error_size, "PNG holds 1-4 channels of 8 or 16 bits");
        return -1;
    }
    png_pixels_args args = {pixels, width, height, channels, bit_depth};
    return png_write_memory_image(png_encode_pixels, &args, out, out_size, error, error_size);
}

// ------------------------------------------------------------------------- PNG in pieces

static inline uint8_t paeth(int a, int b, int c) {
    int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
    return (uint8_t)((pa <= pb && pa <= pc) ? a : (pb <= pc ? b : c));
}

void wm_png_filter_rows(const uint8_t *pixels, uint32_t width, int channels, uint32_t first, uint32_t last, uint8_t *out) {
    size_t stride = (size_t)width * channels;
    for (uint32_t y = first; y < last; y++) {
        const uint8_t *row = pixels + y * stride, *up = y > 0 ? row - stride : NULL;
        uint8_t *o = out + (size_t)(y - first) * (stride + 1);
        *o++ = 4;  // Paeth
        if (!up) {
            // First row: above is zero, so Paeth predicts from the left.
            for (size_t x = 0; x < stride; x++) o[x] = (uint8_t)(row[x] - (x >= (size_t)channels ? row[x - channels] : 0));
            continue;
        }
        for (size_t x = 0; x < (size_t)channels && x < stride; x++) o[x] = (uint8_t)(row[x] - up[x]);
        for (size_t x = channels; x < stride; x++) o[x] = (uint8_t)(row[x] - paeth(row[x - channels], up[x], up[x - channels]));
    }
}

size_t wm_png_deflate_bound(size_t size) { return compressBound((uLong)size) + 64; }

long wm_png_deflate(const uint8_t *data, size_t size, int final, uint8_t *out, size_t capacity) {
    z_stream z;
    memset(&z, 0, sizeof z);
    // Raw deflate (no zlib header: the caller writes one for the whole stream), level 6, Z_RLE.
    if (deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_RLE) != Z_OK) return -1;
    z.next_in = (Bytef *)data;
    z.avail_in = (uInt)size;
    z.next_out = out;
    z.avail_out = (uInt)capacity;
    int status = deflate(&z, final ? Z_FINISH : Z_SYNC_FLUSH);
    long written = (long)z.total_out;
    deflateEnd(&z);
    if (final ? status != Z_STREAM_END : (status != Z_OK || z.avail_in != 0)) return -1;
    return written;
}

uint32_t wm_adler32(const uint8_t *data, size_t size) { return (uint32_t)adler32(adler32(0, NULL, 0), data, (uInt)size); }

uint32_t wm_adler32_combine(uint32_t first, uint32_t second, size_t second_size) {
    return (uint32_t)adler32_combine(first, second, (z_off_t)second_size);
}

static int png_encode_compressed_body(png_structp png, png_infop info, png_ctx *c, uint32_t width, uint32_t height,
                                      int channels, const uint8_t *idat, size_t idat_size) {
    if (setjmp(c->jmp)) return -1;
    static const int color_types[4] = {PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                                       PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
    png_set_write_fn(png, c, png_write_memory, png_flush_memory);
    png_set_IHDR(png, info, width, height, 8, color_types[channels - 1], PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_write_chunk(png, (png_const_bytep) "IDAT", idat, idat_size);
    png_write_chunk(png, (png_const_bytep) "IEND", NULL, 0);
    return 0;
}

typedef struct {
    uint32_t width, height;
    int channels;
    const uint8_t *idat;
    size_t idat_size;
} png_idat_args;

static int png_encode_idat(png_structp png, png_infop info, png_ctx *c, const void *args) {
    const png_idat_args *a = args;
    return png_encode_compressed_body(png, info, c, a->width, a->height, a->channels, a->idat, a->idat_size);
}

int wm_png_encode_compressed(uint32_t width, uint32_t height, int channels, const uint8_t *idat, size_t idat_size,
                             uint8_t **out, size_t *out_size, char *error, size_t error_size) {
    *out = NULL;
    *out_size = 0;
    if (channels < 1 || channels > 4 || idat_size > 0x7FFFFFFF) {
        set_error(error, error_size, "PNG holds 1-4 channels, and one IDAT chunk under 2 GB");
        return -1;
    }
    png_idat_args args = {width, height, channels, idat, idat_size};
    return png_write_memory_image(png_encode_idat, &args, out, out_size, error, error_size);
}

// --------------------------------------------------------------------------------------- JPEG

typedef struct {
    struct jpeg_error_mgr manager; // first member: libjpeg hands back a pointer to it
    jmp_buf jmp;
    char *error;
    size_t error_size;
} jpeg_failure;

typedef struct {
    struct jpeg_destination_mgr manager; // first member
    membuf out;
} jpeg_memory_destination;

typedef struct {
    jpeg_failure failure;
    uint8_t *pixels;
    jpeg_memory_destination destination;
} jpeg_ctx;

static void jpeg_fail(j_common_ptr info) {
    jpeg_failure *f = (jpeg_failure *)info->err;
    char message[JMSG_LENGTH_MAX];
    (*info->err->format_message)(info, message);
    set_error(f->error, f->error_size, message);
    longjmp(f->jmp, 1);
}

// Warnings (level -1) flag corrupt data such as a premature end of file: treat them as errors.
static void jpeg_message(j_common_ptr info, int level) {
    if (level < 0) jpeg_fail(info);
}

static int jpeg_decode_body(struct jpeg_decompress_struct *info, jpeg_ctx *c, const uint8_t *data,
                            size_t size, uint32_t max_side, uint64_t max_pixels, wm_raster *out) {
    if (setjmp(c->failure.jmp)) return -1;
    jpeg_create_decompress(info);
    jpeg_mem_src(info, data, (unsigned long)size);
    jpeg_read_header(info, TRUE);
    if (info->image_width > max_side || info->image_height > max_side ||
        (uint64_t)info->image_width * info->image_height > max_pixels) {
        set_error(c->failure.error, c->failure.error_size, "image too large");
        return -1;
    }
    switch (info->jpeg_color_space) {
    case JCS_GRAYSCALE: info->out_color_space = JCS_GRAYSCALE; break;
    case JCS_RGB:
    case JCS_YCbCr: info->out_color_space = JCS_RGB; break;
    default:
        set_error(c->failure.error, c->failure.error_size, "CMYK/YCCK JPEG is not supported");
        return -1;
    }
    jpeg_start_decompress(info);
    size_t channels = (size_t)info->output_components;
    size_t row_bytes = (size_t)info->output_width * channels;
    c->pixels = malloc(row_bytes * info->output_height);
    if (!c->pixels) ERREXIT1(info, JERR_OUT_OF_MEMORY, 0);
    while (info->output_scanline < info->output_height) {
        JSAMPROW row = c->pixels + (size_t)info->output_scanline * row_bytes;
        jpeg_read_scanlines(info, &row, 1);
    }
    jpeg_finish_decompress(info);
    out->width = info->output_width;
    out->height = info->output_height;
    out->channels = (int)channels;
    out->bit_depth = 8;
    return 0;
}

int wm_jpeg_decode(const uint8_t *data, size_t size, uint32_t max_side, uint64_t max_pixels,
                   wm_raster *out, char *error, size_t error_size) {
    memset(out, 0, sizeof *out);
    if (size < 3 || data[0] != 0xFF || data[1] != 0xD8 || size > (size_t)(unsigned long)-1) {
        set_error(error, error_size, "not a JPEG file");
        return -1;
    }
    struct jpeg_decompress_struct info;
    memset(&info, 0, sizeof info);
    jpeg_ctx c;
    memset(&c, 0, sizeof c);
    c.failure.error = error;
    c.failure.error_size = error_size;
    info.err = jpeg_std_error(&c.failure.manager);
    c.failure.manager.error_exit = jpeg_fail;
    c.failure.manager.emit_message = jpeg_message;
    int status = jpeg_decode_body(&info, &c, data, size, max_side, max_pixels, out);
    jpeg_destroy_decompress(&info);
    if (status == 0) out->pixels = c.pixels;
    else free(c.pixels);
    return status;
}

static void jpeg_destination_init(j_compress_ptr info) {
    jpeg_memory_destination *d = (jpeg_memory_destination *)info->dest;
    if (membuf_reserve(&d->out, 65536) != 0) ERREXIT1(info, JERR_OUT_OF_MEMORY, 1);
    d->out.size = 0;
    d->manager.next_output_byte = d->out.bytes;
    d->manager.free_in_buffer = d->out.capacity;
}

// Called when the whole buffer is full: grow it and continue after the bytes written so far.
static boolean jpeg_destination_empty(j_compress_ptr info) {
    jpeg_memory_destination *d = (jpeg_memory_destination *)info->dest;
    size_t written = d->out.capacity;
    if (membuf_reserve(&d->out, written + 1) != 0) ERREXIT1(info, JERR_OUT_OF_MEMORY, 2);
    d->out.size = written;
    d->manager.next_output_byte = d->out.bytes + written;
    d->manager.free_in_buffer = d->out.capacity - written;
    return TRUE;
}

static void jpeg_destination_term(j_compress_ptr info) {
    jpeg_memory_destination *d = (jpeg_memory_destination *)info->dest;
    d->out.size = d->out.capacity - d->manager.free_in_buffer;
}

static int jpeg_encode_body(struct jpeg_compress_struct *info, jpeg_ctx *c, const uint8_t *pixels,
                            uint32_t width, uint32_t height, int channels, int quality, int full_chroma,
                            int optimize) {
    if (setjmp(c->failure.jmp)) return -1;
    jpeg_create_compress(info);
    c->destination.manager.init_destination = jpeg_destination_init;
    c->destination.manager.empty_output_buffer = jpeg_destination_empty;
    c->destination.manager.term_destination = jpeg_destination_term;
    info->dest = &c->destination.manager;
    info->image_width = width;
    info->image_height = height;
    info->input_components = channels;
    info->in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(info);
    jpeg_set_quality(info, quality, TRUE);
    info->optimize_coding = optimize ? TRUE : FALSE;
    if (full_chroma && channels == 3) {
        info->comp_info[0].h_samp_factor = 1;
        info->comp_info[0].v_samp_factor = 1;
    }
    jpeg_start_compress(info, TRUE);
    size_t row_bytes = (size_t)width * channels;
    while (info->next_scanline < info->image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + (size_t)info->next_scanline * row_bytes);
        jpeg_write_scanlines(info, &row, 1);
    }
    jpeg_finish_compress(info);
    return 0;
}

int wm_jpeg_encode(const uint8_t *pixels, uint32_t width, uint32_t height, int channels, int quality,
                   int full_chroma, int optimize, uint8_t **out, size_t *out_size, char *error, size_t error_size) {
    *out = NULL;
    *out_size = 0;
    if ((channels != 1 && channels != 3) || quality < 1 || quality > 100) {
        set_error(error, error_size, "JPEG holds 1 or 3 channels at quality 1-100");
        return -1;
    }
    struct jpeg_compress_struct info;
    memset(&info, 0, sizeof info);
    jpeg_ctx c;
    memset(&c, 0, sizeof c);
    c.failure.error = error;
    c.failure.error_size = error_size;
    info.err = jpeg_std_error(&c.failure.manager);
    c.failure.manager.error_exit = jpeg_fail;
    c.failure.manager.emit_message = jpeg_message;
    int status = jpeg_encode_body(&info, &c, pixels, width, height, channels, quality, full_chroma, optimize);
    jpeg_destroy_compress(&info);
    if (status == 0) {
        *out = c.destination.out.bytes;
        *out_size = c.destination.out.size;
    } else {
        free(c.destination.out.bytes);
    }
    return status;
}
