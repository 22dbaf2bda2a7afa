#!/usr/bin/env python3
"""Time `walloc` against the PyTorch reference on the same weights, inputs and thread count.

For each decoder width (--nd), builds the reference Codec2D(J=3, latent_dim=12, lightweight
encoder) with a fixed seed, saves it as a Walloc model directory (config.json +
model.safetensors) next to a 768x512 RGB input .npy, then alternates rounds of
`walloc bench --model DIR --input X.npy --json` and the same three stages in PyTorch, so
that both see the same machine state. Reports the median over rounds and the speed-up
(reference time / walloc time) per stage.

Needs the reference: pip install torch walloc diffusers pytorch-wavelets einops safetensors "setuptools<81"

    python3 scripts/compare_reference.py --walloc .build/release/walloc --threads 2
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time, warnings

warnings.filterwarnings("ignore")
import numpy as np
import torch
from safetensors.torch import save_file
from walloc.walloc import Codec2D


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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--walloc", default=".build/release/walloc")
    ap.add_argument("--size", default="768x512")
    ap.add_argument("--nd", default="128,768")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    w, h = map(int, a.size.split("x"))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(7)
        x = torch.rand(1, 3, h, w) - 0.5
        xpath = os.path.join(tmp, "x.npy")
        np.save(xpath, x[0].numpy().astype("<f4"))
        for nd in [int(v) for v in a.nd.split(",")]:
            torch.manual_seed(nd)
            cfg = dict(channels=3, J=3, Ne=None, Nd=nd, latent_dim=12, latent_bits=8, lightweight_encode=True)
            m = Codec2D(**cfg).eval()
            mdir = os.path.join(tmp, f"nd{nd}")
            os.makedirs(mdir)
            save_file({k: v.contiguous() for k, v in m.state_dict().items()}, os.path.join(mdir, "model.safetensors"))
            with open(os.path.join(mdir, "config.json"), "w") as f:
                json.dump(dict(type="Codec2D", **cfg), f)
            ours, ref = [], []
            for _ in range(a.rounds):
                time.sleep(1)  # let PyTorch's OpenMP workers stop spinning before timing walloc
                out = subprocess.run([a.walloc, "bench", "--model", mdir, "--input", xpath, "--json",
                                      "--threads", str(a.threads), "--repeat", str(a.repeat)],
                                     check=True, capture_output=True, text=True).stdout
                ours.append(json.loads(out)[0])
                time.sleep(1)
                ref.append(reference_times(m, x, 1, a.repeat))
            row = dict(model=f"Codec2D J=3 latent_dim=12 Nd={nd}", size=a.size, threads=a.threads)
            for k in ("wpt_s", "encode_s", "decode_s"):
                row["walloc_" + k] = statistics.median(r[k] for r in ours)
                row["reference_" + k] = statistics.median(r[k] for r in ref)
                row["speedup_" + k[:-2]] = row["reference_" + k] / row["walloc_" + k]
            results.append(row)
            print(f"{row['model']} {a.size} threads={a.threads}")
            for k, name in (("wpt_s", "WPT"), ("encode_s", "encode"), ("decode_s", "decode")):
                print(f"  {name:7s} walloc {row['walloc_'+k]*1e3:9.2f} ms   reference {row['reference_'+k]*1e3:9.2f} ms"
                      f"   speed-up {row['speedup_'+k[:-2]]:5.2f}x")
            sys.stdout.flush()
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
