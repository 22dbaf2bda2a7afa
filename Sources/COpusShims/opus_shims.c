// A C shim for libopusenc: its settings are set through a variadic ctl call, which Swift cannot
// make, and its output comes through callbacks.
#include "opus_shims.h"
#include <stdlib.h>
#include <string.h>
#include <opusenc.h>

typedef struct { unsigned char *data; size_t length, capacity; int failed; } Buffer;

static int write_page(void *user, const unsigned char *ptr, opus_int32 len) {
    Buffer *b = (Buffer *)user;
    if (b->length + (size_t)len > b->capacity) {
        size_t capacity = b->capacity ? b->capacity * 2 : 65536;
        while (capacity < b->length + (size_t)len) capacity *= 2;
        unsigned char *grown = realloc(b->data, capacity);
        if (!grown) { b->failed = 1; return 1; }
        b->data = grown;
        b->capacity = capacity;
    }
    memcpy(b->data + b->length, ptr, (size_t)len);
    b->length += (size_t)len;
    return 0;
}

static int close_stream(void *user) { (void)user; return 0; }

int walloc_opus_encode(const float *pcm, int frames, int channels, int rate, int bitrate,
                       unsigned char **out, size_t *out_length) {
    *out = NULL;
    *out_length = 0;
    Buffer buffer = {0};
    OpusEncCallbacks callbacks = {write_page, close_stream};
    OggOpusComments *comments = ope_comments_create();
    if (!comments) return OPE_ALLOC_FAIL;
    int error = OPE_OK;
    OggOpusEnc *enc = ope_encoder_create_callbacks(&callbacks, &buffer, comments, rate, channels,
                                                   channels > 2 ? 1 : 0, &error);
    ope_comments_destroy(comments);
    if (!enc) return error ? error : OPE_INTERNAL_ERROR;
    error = ope_encoder_ctl(enc, OPUS_SET_BITRATE(bitrate));
    if (error == OPE_OK) error = ope_encoder_write_float(enc, pcm, frames);
    if (error == OPE_OK) error = ope_encoder_drain(enc);
    ope_encoder_destroy(enc);
    if (error == OPE_OK && buffer.failed) error = OPE_ALLOC_FAIL;
    if (error != OPE_OK) { free(buffer.data); return error; }
    *out = buffer.data;
    *out_length = buffer.length;
    return 0;
}

void walloc_opus_free(unsigned char *buffer) { free(buffer); }
