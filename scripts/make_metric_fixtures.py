#!/usr/bin/env python3
"""Reference values for WallocEval's metrics and BD-rate, computed independently of the Swift code.

    python3 scripts/make_metric_fixtures.py --out Tests/Fixtures/metrics

Needs numpy, scipy and scikit-image (and their bundled sample photos). Writes small 8-bit PNG test
images, float32 .npy audio signals and `metrics.json` with the expected values:

- PSNR: 10 log10(1 / MSE) over all samples of images scaled to [0, 1].
- SSIM: skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=1), channels averaged (channel_axis=0).
- MS-SSIM: the numpy reference below (Wang, Simoncelli & Bovik 2003): at each scale the SSIM
  terms with the same 11-tap Gaussian window (sigma 1.5, 'valid' positions only, which is what
  skimage's border crop amounts to), contrast-structure means at scales 1..M-1 and the full SSIM
  mean at scale M, combined with weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333); 2x2 average
  pooling between scales (an odd last row/column is dropped). When the image is too small for 5
  scales (the coarsest must be at least 11 pixels on each side), only the scales that fit are used
  and their weights are renormalised to sum to 1. Negative means are clamped to 0. RGB: the mean
  of the per-channel values.
- SNR: 10 log10(sum x^2 / sum (x - y)^2) over all samples.
- SI-SDR (Le Roux et al. 2019): per channel, both signals made zero-mean, the reference scaled by
  the optimal alpha; the mean over channels.
- BD-rate: log10-rate as a function of quality, either a least-squares cubic polynomial (the
  classic VCEG-M33 method) or scipy's PCHIP interpolant, integrated over the overlapping quality
  interval; 100 * (10^(mean difference) - 1).
"""
import argparse
import json
import os

import numpy as np
import scipy.interpolate
import skimage
import skimage.data
import skimage.io
from skimage.metrics import structural_similarity

WEIGHTS = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])
K1, K2, SIGMA, RADIUS = 0.01, 0.03, 1.5, 5


def gaussian_window():
    x = np.arange(-RADIUS, RADIUS + 1, dtype=np.float64)
    g = np.exp(-x * x / (2 * SIGMA * SIGMA))
    return g / g.sum()


def filter_valid(img):
    """Separable 11x11 Gaussian filter, 'valid' positions only."""
    g = gaussian_window()
    v = np.lib.stride_tricks.sliding_window_view(img, len(g), axis=0) @ g
    return np.lib.stride_tricks.sliding_window_view(v, len(g), axis=1) @ g


def ssim_terms(x, y):
    """Means of the SSIM map and of the contrast-structure map of one channel (data range 1)."""
    c1, c2 = K1 ** 2, K2 ** 2
    mx, my = filter_valid(x), filter_valid(y)
    vx = filter_valid(x * x) - mx * mx
    vy = filter_valid(y * y) - my * my
    cxy = filter_valid(x * y) - mx * my
    cs = (2 * cxy + c2) / (vx + vy + c2)
    lum = (2 * mx * my + c1) / (mx * mx + my * my + c1)
    return float((lum * cs).mean()), float(cs.mean())


def pool2(img):
    h, w = img.shape[0] // 2 * 2, img.shape[1] // 2 * 2
    img = img[:h, :w]
    return 0.25 * (img[0::2, 0::2] + img[1::2, 0::2] + img[0::2, 1::2] + img[1::2, 1::2])


def ms_ssim_channel(x, y):
    scales = 0
    h, w = x.shape
    while scales < 5 and min(h, w) >= 2 * RADIUS + 1:
        scales += 1
        h, w = h // 2, w // 2
    if scales == 0:
        raise ValueError("image too small")
    weights = WEIGHTS[:scales] / WEIGHTS[:scales].sum()
    value = 1.0
    for s in range(scales):
        ssim, cs = ssim_terms(x, y)
        term = ssim if s == scales - 1 else cs
        value *= max(term, 0.0) ** weights[s]
        x, y = pool2(x), pool2(y)
    return value, scales


def ms_ssim(x, y):
    values = [ms_ssim_channel(a, b) for a, b in zip(x, y)]
    return float(np.mean([v for v, _ in values])), values[0][1]


def psnr(x, y):
    return float(10 * np.log10(1.0 / np.mean((x - y) ** 2)))


def snr(x, y):
    return float(10 * np.log10(np.sum(x * x) / np.sum((x - y) ** 2)))


def si_sdr(x, y):
    values = []
    for a, b in zip(x, y):
        a = a - a.mean()
        b = b - b.mean()
        alpha = np.dot(b, a) / np.dot(a, a)
        target = alpha * a
        values.append(10 * np.log10(np.sum(target ** 2) / np.sum((b - target) ** 2)))
    return float(np.mean(values))


def bd_rate(rate_a, q_a, rate_b, q_b, method):
    la, lb = np.log10(rate_a), np.log10(rate_b)
    lo, hi = max(min(q_a), min(q_b)), min(max(q_a), max(q_b))
    if method == "cubic":
        pa, pb = np.polyint(np.polyfit(q_a, la, 3)), np.polyint(np.polyfit(q_b, lb, 3))
        ia, ib = np.polyval(pa, hi) - np.polyval(pa, lo), np.polyval(pb, hi) - np.polyval(pb, lo)
    else:
        oa, ob = np.argsort(q_a), np.argsort(q_b)
        ia = scipy.interpolate.PchipInterpolator(np.asarray(q_a)[oa], la[oa]).integrate(lo, hi)
        ib = scipy.interpolate.PchipInterpolator(np.asarray(q_b)[ob], lb[ob]).integrate(lo, hi)
    return float(100 * (10 ** ((ib - ia) / (hi - lo)) - 1))


def to_unit(img):
    img = np.asarray(img, dtype=np.float64) / 255.0
    return img[None] if img.ndim == 2 else np.moveaxis(img, -1, 0)


def save_png(path, unit):
    u8 = np.clip(np.rint(unit * 255), 0, 255).astype(np.uint8)
    skimage.io.imsave(path, u8[0] if u8.shape[0] == 1 else np.moveaxis(u8, 0, -1), check_contrast=False)


def distort(x, rng, blur, noise):
    """A blurred, noisy, 8-bit-quantised copy of x (values in [0, 1])."""
    out = []
    for ch in x:
        k = np.array([blur, 1 - 2 * blur, blur])
        b = np.apply_along_axis(lambda r: np.convolve(np.pad(r, 1, mode="edge"), k, "valid"), 1, ch)
        b = np.apply_along_axis(lambda c: np.convolve(np.pad(c, 1, mode="edge"), k, "valid"), 0, b)
        out.append(b + rng.normal(0, noise, b.shape))
    return np.clip(np.rint(np.array(out) * 255), 0, 255) / 255.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(2025)

    cases = []
    sources = {
        # name: (image, crop (top, left, height, width), blur, noise)
        "gray_5scales": (skimage.data.camera(), (150, 180, 184, 200), 0.2, 0.02),
        "rgb_3scales": (skimage.data.astronaut(), (40, 160, 64, 80), 0.15, 0.03),
        "rgb_odd_4scales": (skimage.data.coffee(), (100, 200, 99, 121), 0.25, 0.01),
        "rgb_noisy": (skimage.data.chelsea(), (60, 100, 48, 40), 0.0, 0.15),
    }
    for name, (img, (t, l, h, w), blur, noise) in sources.items():
        x = to_unit(img)[:, t:t + h, l:l + w]
        y = distort(x, rng, blur, noise)
        save_png(os.path.join(args.out, f"{name}_ref.png"), x)
        save_png(os.path.join(args.out, f"{name}_dist.png"), y)
        ssim = structural_similarity(x, y, channel_axis=0, gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False, data_range=1)
        # The numpy SSIM at the first scale must agree with scikit-image.
        own = np.mean([ssim_terms(a, b)[0] for a, b in zip(x, y)])
        assert abs(own - ssim) < 1e-12, (own, ssim)
        msssim, scales = ms_ssim(x, y)
        cases.append({"name": name, "reference": f"{name}_ref.png", "distorted": f"{name}_dist.png",
                      "psnr": psnr(x, y), "ssim": float(ssim), "ms_ssim": msssim, "ms_ssim_scales": scales})

    audio = []
    t = np.arange(4000) / 16000.0
    x = np.stack([0.4 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 3100 * t) + 0.02,
                  0.3 * np.sign(np.sin(2 * np.pi * 220 * t)) * np.exp(-3 * t)]).astype(np.float32)
    y = (0.9 * x + rng.normal(0, 0.01, x.shape) - 0.01).astype(np.float32)
    np.save(os.path.join(args.out, "audio_ref.npy"), x)
    np.save(os.path.join(args.out, "audio_dist.npy"), y)
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    audio.append({"reference": "audio_ref.npy", "distorted": "audio_dist.npy",
                  "snr": snr(x64, y64), "si_sdr": si_sdr(x64, y64)})

    curves = {
        "a_rate": [0.12, 0.25, 0.5, 0.9, 1.6, 2.4], "a_quality": [26.1, 28.9, 31.8, 34.5, 37.6, 40.2],
        "b_rate": [0.1, 0.2, 0.45, 0.8, 1.5], "b_quality": [26.8, 29.7, 33.0, 35.7, 39.1],
    }
    bd = {"curves": curves}
    for method in ("cubic", "pchip"):
        bd[method] = bd_rate(np.array(curves["a_rate"]), curves["a_quality"],
                             np.array(curves["b_rate"]), curves["b_quality"], method)
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump({"generator": f"numpy {np.__version__}, scipy {scipy.__version__}, scikit-image {skimage.__version__}",
                   "images": cases, "audio": audio, "bd_rate": bd}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
