// Forwarding definitions of the libavif and libjxl functions Walloc calls, resolved on first use
// from the libraries loaded by walloc_load_avif / walloc_load_jxl (see include/cevallibraries.h).
// Each definition has the prototype of the library's header, which is included, so the compiler
// checks that they agree.
#include "cevallibraries.h"
#include <avif/avif.h>
#include <jxl/decode.h>
#include <jxl/encode.h>
#include <jxl/thread_parallel_runner.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    pthread_once_t once;
    void *handle;
    char error[512];
    const char *const *names;  // file names to try, in order
} Library;

// The development symlink first (it is the library the headers above belong to), then the
// run-time name Debian gives the version of those headers.
static const char *const avifNames[] = {"libavif.so", "libavif.so.15", NULL};
static const char *const jxlNames[] = {"libjxl.so", "libjxl.so.0.7", NULL};
static const char *const jxlThreadsNames[] = {"libjxl_threads.so", "libjxl_threads.so.0.7", NULL};

static Library avif = {PTHREAD_ONCE_INIT, NULL, "", avifNames};
static Library jxl = {PTHREAD_ONCE_INIT, NULL, "", jxlNames};
static Library jxlThreads = {PTHREAD_ONCE_INIT, NULL, "", jxlThreadsNames};

static void open_library(Library *lib) {
    const char *last = "not found";
    for (const char *const *n = lib->names; *n; n++) {
        lib->handle = dlopen(*n, RTLD_NOW | RTLD_LOCAL);
        if (lib->handle) return;
        const char *e = dlerror();
        if (e) last = e;
    }
    snprintf(lib->error, sizeof lib->error, "%s", last);
}

static void open_avif(void) { open_library(&avif); }
static void open_jxl(void) { open_library(&jxl); }
static void open_jxl_threads(void) { open_library(&jxlThreads); }

static int report(const Library *lib, const char *what, char *error, size_t size) {
    if (lib->handle) return 1;
    if (error && size) snprintf(error, size, "%s could not be loaded (%s)", what, lib->error);
    return 0;
}

int walloc_load_avif(char *error, size_t size) {
    pthread_once(&avif.once, open_avif);
    return report(&avif, "libavif", error, size);
}

int walloc_load_jxl(char *error, size_t size) {
    pthread_once(&jxl.once, open_jxl);
    pthread_once(&jxlThreads.once, open_jxl_threads);
    return report(&jxl, "libjxl", error, size) && report(&jxlThreads, "libjxl_threads", error, size);
}

// A function of a loaded library; a call before its library loaded is a bug in Walloc.
static void *symbol(Library *lib, void (*load)(void), const char *name) {
    pthread_once(&lib->once, load);
    void *f = lib->handle ? dlsym(lib->handle, name) : NULL;
    if (!f) {
        fprintf(stderr, "walloc: %s is not available (%s)\n", name, lib->handle ? "missing from the library" : lib->error);
        abort();
    }
    return f;
}

#define FORWARD(lib, load, ret, name, params, args)                                        \
    ret name params {                                                                      \
        static ret(*volatile fn) params;                                                   \
        ret(*f) params = __atomic_load_n(&fn, __ATOMIC_ACQUIRE);                            \
        if (!f) {                                                                          \
            f = (ret(*) params)symbol(&lib, load, #name);                                  \
            __atomic_store_n(&fn, f, __ATOMIC_RELEASE);                                    \
        }                                                                                  \
        return f args;                                                                     \
    }

// libavif
FORWARD(avif, open_avif, const char *, avifVersion, (void), ())
FORWARD(avif, open_avif, void, avifCodecVersions, (char outBuffer[256]), (outBuffer))
FORWARD(avif, open_avif, const char *, avifResultToString, (avifResult result), (result))
FORWARD(avif, open_avif, void, avifRWDataFree, (avifRWData *raw), (raw))
FORWARD(avif, open_avif, void, avifRGBImageSetDefaults, (avifRGBImage *rgb, const avifImage *image), (rgb, image))
FORWARD(avif, open_avif, void, avifRGBImageAllocatePixels, (avifRGBImage *rgb), (rgb))
FORWARD(avif, open_avif, void, avifRGBImageFreePixels, (avifRGBImage *rgb), (rgb))
FORWARD(avif, open_avif, avifResult, avifImageYUVToRGB, (const avifImage *image, avifRGBImage *rgb), (image, rgb))
FORWARD(avif, open_avif, avifResult, avifImageRGBToYUV, (avifImage *image, const avifRGBImage *rgb), (image, rgb))
FORWARD(avif, open_avif, avifImage *, avifImageCreate,
        (uint32_t width, uint32_t height, uint32_t depth, avifPixelFormat yuvFormat), (width, height, depth, yuvFormat))
FORWARD(avif, open_avif, void, avifImageDestroy, (avifImage *image), (image))
FORWARD(avif, open_avif, avifEncoder *, avifEncoderCreate, (void), ())
FORWARD(avif, open_avif, avifResult, avifEncoderWrite,
        (avifEncoder *encoder, const avifImage *image, avifRWData *output), (encoder, image, output))
FORWARD(avif, open_avif, void, avifEncoderDestroy, (avifEncoder *encoder), (encoder))
FORWARD(avif, open_avif, avifDecoder *, avifDecoderCreate, (void), ())
FORWARD(avif, open_avif, avifResult, avifDecoderSetIOMemory,
        (avifDecoder *decoder, const uint8_t *data, size_t size), (decoder, data, size))
FORWARD(avif, open_avif, avifResult, avifDecoderParse, (avifDecoder *decoder), (decoder))
FORWARD(avif, open_avif, avifResult, avifDecoderNextImage, (avifDecoder *decoder), (decoder))
FORWARD(avif, open_avif, void, avifDecoderDestroy, (avifDecoder *decoder), (decoder))

// libjxl
FORWARD(jxl, open_jxl, JxlEncoder *, JxlEncoderCreate, (const JxlMemoryManager *memory_manager), (memory_manager))
FORWARD(jxl, open_jxl, void, JxlEncoderDestroy, (JxlEncoder *enc), (enc))
FORWARD(jxl, open_jxl, JxlEncoderStatus, JxlEncoderSetParallelRunner,
        (JxlEncoder *enc, JxlParallelRunner parallel_runner, void *parallel_runner_opaque), (enc, parallel_runner, parallel_runner_opaque))
FORWARD(jxl, open_jxl, JxlEncoderStatus, JxlEncoderSetFrameDistance,
        (JxlEncoderFrameSettings *frame_settings, float distance), (frame_settings, distance))
FORWARD(jxl, open_jxl, JxlEncoderStatus, JxlEncoderSetColorEncoding, (JxlEncoder *enc, const JxlColorEncoding *color), (enc, color))
FORWARD(jxl, open_jxl, JxlEncoderStatus, JxlEncoderSetBasicInfo, (JxlEncoder *enc, const JxlBasicInfo *info), (enc, info))
FORWARD(jxl, open_jxl, JxlEncoderStatus, JxlEncoderProcessOutput,
        (JxlEncoder *enc, uint8_t **next_out, size_t *avail_out), (enc, next_out, avail_out))
FORWARD(jxl, open_jxl, void, JxlEncoderInitBasicInfo, (JxlBasicInfo *info), (info))
FORWARD(jxl, open_jxl, JxlEncoderError, JxlEncoderGetError, (JxlEncoder *enc), (enc))
FORWARD(jxl, open_jxl, JxlEncoderStatus, JxlEncoderFrameSettingsSetOption,
        (JxlEncoderFrameSettings *frame_settings, JxlEncoderFrameSettingId option, int64_t value), (frame_settings, option, value))
FORWARD(jxl, open_jxl, JxlEncoderFrameSettings *, JxlEncoderFrameSettingsCreate,
        (JxlEncoder *enc, const JxlEncoderFrameSettings *source), (enc, source))
FORWARD(jxl, open_jxl, void, JxlEncoderCloseInput, (JxlEncoder *enc), (enc))
FORWARD(jxl, open_jxl, JxlEncoderStatus, JxlEncoderAddImageFrame,
        (const JxlEncoderFrameSettings *frame_settings, const JxlPixelFormat *pixel_format, const void *buffer, size_t size),
        (frame_settings, pixel_format, buffer, size))
FORWARD(jxl, open_jxl, JxlDecoder *, JxlDecoderCreate, (const JxlMemoryManager *memory_manager), (memory_manager))
FORWARD(jxl, open_jxl, void, JxlDecoderDestroy, (JxlDecoder *dec), (dec))
FORWARD(jxl, open_jxl, JxlDecoderStatus, JxlDecoderSubscribeEvents, (JxlDecoder *dec, int events_wanted), (dec, events_wanted))
FORWARD(jxl, open_jxl, JxlDecoderStatus, JxlDecoderSetParallelRunner,
        (JxlDecoder *dec, JxlParallelRunner parallel_runner, void *parallel_runner_opaque), (dec, parallel_runner, parallel_runner_opaque))
FORWARD(jxl, open_jxl, JxlDecoderStatus, JxlDecoderSetInput, (JxlDecoder *dec, const uint8_t *data, size_t size), (dec, data, size))
FORWARD(jxl, open_jxl, JxlDecoderStatus, JxlDecoderSetImageOutBuffer,
        (JxlDecoder *dec, const JxlPixelFormat *format, void *buffer, size_t size), (dec, format, buffer, size))
FORWARD(jxl, open_jxl, JxlDecoderStatus, JxlDecoderProcessInput, (JxlDecoder *dec), (dec))
FORWARD(jxl, open_jxl, JxlDecoderStatus, JxlDecoderImageOutBufferSize,
        (const JxlDecoder *dec, const JxlPixelFormat *format, size_t *size), (dec, format, size))
FORWARD(jxl, open_jxl, JxlDecoderStatus, JxlDecoderGetBasicInfo, (const JxlDecoder *dec, JxlBasicInfo *info), (dec, info))
FORWARD(jxl, open_jxl, void, JxlDecoderCloseInput, (JxlDecoder *dec), (dec))
FORWARD(jxl, open_jxl, void, JxlColorEncodingSetToSRGB, (JxlColorEncoding *color_encoding, JXL_BOOL is_gray), (color_encoding, is_gray))

// libjxl_threads
FORWARD(jxlThreads, open_jxl_threads, void *, JxlThreadParallelRunnerCreate,
        (const JxlMemoryManager *memory_manager, size_t num_worker_threads), (memory_manager, num_worker_threads))
FORWARD(jxlThreads, open_jxl_threads, void, JxlThreadParallelRunnerDestroy, (void *runner_opaque), (runner_opaque))
FORWARD(jxlThreads, open_jxl_threads, JxlParallelRetCode, JxlThreadParallelRunner,
        (void *runner_opaque, void *jpegxl_opaque, JxlParallelRunInit init, JxlParallelRunFunction func, uint32_t start_range, uint32_t end_range),
        (runner_opaque, jpegxl_opaque, init, func, start_range, end_range))
