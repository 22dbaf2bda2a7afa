#!/usr/bin/env python3
"""Time `walloc` against the PyTorch reference on the same weights, inputs and thread count.

Images: for each decoder width (--nd), the reference Codec2D(J=3, latent_dim=12, lightweight
encoder) on a --size RGB input. Audio: the reference Codec1D(channels=2, J=8, latent_dim=32,
lightweight encoder, no post filter) with decoder width --audio-nd on --audio-seconds of
44.1 kHz stereo. Each model is built with a fixed seed and saved as a Walloc model directory
(config.json + model.safetensors) next to the input .npy; then rounds of
`walloc bench --model DIR --input X.npy --skip-files --json` alternate with the same stages in
PyTorch (wavelet transform; encode = transform + encoder + ToUniform + round; decode = ToNormal
+ decoder + inverse transform + clamp), so that both see the same machine state. Prints the
median over rounds and the ratio reference time / walloc time per stage (above 1: walloc is
faster), for images and audio in one run.

Needs the reference: pip install torch walloc diffusers pytorch-wavelets einops safetensors "setuptools<81"

    python3 scripts/compare_reference.py --walloc .build/release/walloc --threads 2
    python3 scripts/compare_reference.py --modality audio --audio-seconds 30
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time, warnings

warnings.filterwarnings("ignore")
import numpy as np
import torch
from safetensors.torch import save_file
from walloc.walloc import Codec1D, Codec2D


def timed(fn, warmup, repeat):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def reference_times(m, x, warmup, repeat):
    with torch.inference_mode():
        enc = lambda: torch.round(m.encoder[0:2](m.wavelet_analysis(x, J=m.J)))
        y = enc()
        dec = lambda: m.clamp(m.wavelet_synthesis(m.decoder(y), J=m.J))
        return dict(wpt_s=timed(lambda: m.wavelet_analysis(x, J=m.J), warmup, repeat),
                    encode_s=timed(enc, warmup, repeat), decode_s=timed(dec, warmup, repeat))


def cases(a):
    """(label, reference class, constructor arguments, input tensor) for each model to time."""
    out = []
    if "image" in a.modality:
        w, h = map(int, a.size.split("x"))
        torch.manual_seed(7)
        x = torch.rand(1, 3, h, w) - 0.5
        for nd in [int(v) for v in a.nd.split(",")]:
            cfg = dict(channels=3, J=3, Ne=None, Nd=nd, latent_dim=12, latent_bits=8, lightweight_encode=True)
            out.append((f"Codec2D J=3 latent_dim=12 Nd={nd}, {a.size}", Codec2D, cfg, x))
    if "audio" in a.modality:
        n = int(a.audio_seconds * 44100) // 256 * 256
        torch.manual_seed(8)
        x = 0.5 * (torch.rand(1, 2, n) - 0.5)
        cfg = dict(channels=2, J=8, Ne=None, Nd=a.audio_nd, latent_dim=32, latent_bits=8, lightweight_encode=True, post_filter=False)
        out.append((f"Codec1D stereo J=8 latent_dim=32 Nd={a.audio_nd}, {n / 44100:.1f} s at 44.1 kHz", Codec1D, cfg, x))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--walloc", default=".build/release/walloc")
    ap.add_argument("--modality", default="image,audio", help="image, audio or both (comma-separated)")
    ap.add_argument("--size", default="768x512", help="image size WIDTHxHEIGHT")
    ap.add_argument("--nd", default="128,768", help="image decoder widths")
    ap.add_argument("--audio-seconds", type=float, default=10.0)
    ap.add_argument("--audio-nd", type=int, default=256, help="audio decoder width")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, cls, cfg, x) in enumerate(cases(a)):
            torch.manual_seed(cfg["Nd"])
            m = cls(**cfg).eval()
            mdir = os.path.join(tmp, f"model{i}")
            os.makedirs(mdir)
            save_file({k: v.contiguous() for k, v in m.state_dict().items()}, os.path.join(mdir, "model.safetensors"))
            with open(os.path.join(mdir, "config.json"), "w") as f:
                json.dump(dict(type=cls.__name__, **cfg), f)
            xpath = os.path.join(tmp, f"x{i}.npy")
            np.save(xpath, x[0].numpy().astype("<f4"))
            ours, ref = [], []
            for _ in range(a.rounds):
                time.sleep(1)  # let PyTorch's OpenMP workers stop spinning before timing walloc
                out = subprocess.run([a.walloc, "bench", "--model", mdir, "--input", xpath, "--json", "--skip-files",
                                      "--threads", str(a.threads), "--repeat", str(a.repeat)],
                                     check=True, capture_output=True, text=True).stdout
                ours.append(json.loads(out)[0])
                time.sleep(1)
                ref.append(reference_times(m, x, 1, a.repeat))
            row = dict(model=label, shape=list(x.shape[1:]), threads=a.threads)
            for k in ("wpt_s", "encode_s", "decode_s"):
                row["walloc_" + k] = statistics.median(r[k] for r in ours)
                row["reference_" + k] = statistics.median(r[k] for r in ref)
                row["speedup_" + k[:-2]] = row["reference_" + k] / row["walloc_" + k]
            results.append(row)
            print(f"{label}, threads={a.threads}")
            for k, name in (("wpt_s", "WPT"), ("encode_s", "encode"), ("decode_s", "decode")):
                print(f"  {name:7s} walloc {row['walloc_'+k]*1e3:9.2f} ms   reference {row['reference_'+k]*1e3:9.2f} ms"
                      f"   speed-up {row['speedup_'+k[:-2]]:5.2f}x")
            sys.stdout.flush()
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
