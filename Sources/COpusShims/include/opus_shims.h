#ifndef WALLOC_OPUS_SHIMS_H
#define WALLOC_OPUS_SHIMS_H
#include <stddef.h>

/// Encodes interleaved float samples (`frames` x `channels` at `rate` Hz) to an Ogg Opus stream in
/// memory with libopusenc at `bitrate` bits per second (VBR, the library's defaults otherwise).
/// On success returns 0 and a malloc'ed buffer in `*out` (free it with `walloc_opus_free`);
/// otherwise a libopusenc error code (negative).
int walloc_opus_encode(const float *pcm, int frames, int channels, int rate, int bitrate,
                       unsigned char **out, size_t *out_length);

void walloc_opus_free(unsigned char *buffer);

#endif
