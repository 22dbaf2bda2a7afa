#!/usr/bin/env python3
"""Time the PyTorch reference (walloc 1.2.1) on the same task as `walloc bench`.

Codec2D(J=3, latent_dim=12, lightweight_encode=True) at each --nd, 768x512 RGB by default:
WPT analysis, encode (WPT + 1x1 conv + ToUniform + round), decode (ToNormal + decoder +
synthesis + clamp). Median of --repeat runs after --warmup runs, torch.set_num_threads(--threads).
Needs: pip install torch walloc diffusers pytorch-wavelets einops "setuptools<81".
"""
import argparse, json, statistics, time, warnings

warnings.filterwarnings("ignore")
import torch
from walloc.walloc import Codec2D


def timed(fn, warmup, repeat):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="768x512")
    ap.add_argument("--nd", default="128,768")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    w, h = map(int, a.size.split("x"))
    torch.manual_seed(7)
    x = torch.rand(1, 3, h, w) - 0.5
    rows = []
    for nd in [int(v) for v in a.nd.split(",")]:
        m = Codec2D(channels=3, J=3, Ne=None, Nd=nd, latent_dim=12, latent_bits=8, lightweight_encode=True).eval()
        with torch.inference_mode():
            enc = lambda: m.encoder(m.wavelet_analysis(x, J=3))
            y = enc()
            dec = lambda: m.clamp(m.wavelet_synthesis(m.decoder(y), J=3))
            row = dict(model=f"Codec2D J=3 latent_dim=12 Nd={nd}", threads=a.threads,
                       wpt_s=timed(lambda: m.wavelet_analysis(x, J=3), a.warmup, a.repeat),
                       encode_s=timed(enc, a.warmup, a.repeat),
                       decode_s=timed(dec, a.warmup, a.repeat))
        rows.append(row)
        if not a.json:
            print(f"{row['model']}  threads={a.threads}  wpt {row['wpt_s']*1e3:.2f} ms  "
                  f"encode {row['encode_s']*1e3:.2f} ms  decode {row['decode_s']*1e3:.1f} ms")
    if a.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
