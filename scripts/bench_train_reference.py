#!/usr/bin/env python3
"""Time one reference training step (forward + backward + clipping + AdamW) with PyTorch on the CPU.

Default: Codec2D, batch 8 of 3x128x128 crops, J=3, latent_dim=12, Nd=128, lightweight encoder.
--codec1d: Codec1D, batch 8 of 2x32768 segments, J=8, latent_dim=32, Nd=256, lightweight
encoder (add --post-filter for the kernel-129 post filter).

    source /work/ref/venv/bin/activate
    python3 scripts/bench_train_reference.py --threads 2 --steps 5
    python3 scripts/bench_train_reference.py --threads 2 --steps 5 --codec1d [--post-filter]

Prints wall time and process CPU time per step (the CPU time is steadier on a shared machine).
"""
import argparse, time, warnings

warnings.filterwarnings("ignore")
import torch

try:
    import torchvision.transforms  # noqa: F401  (walloc imports ToPILImage, PILToTensor from it)
except Exception:
    # A CPU-only torch wheel may come without a matching torchvision; the codecs never use these two
    # names, so stand-ins let walloc import.
    import importlib.machinery, sys, types
    for name in ("torchvision", "torchvision.transforms"):
        module = types.ModuleType(name)
        module.__spec__ = importlib.machinery.ModuleSpec(name, None)
        sys.modules[name] = module
    sys.modules["torchvision"].transforms = sys.modules["torchvision.transforms"]
    sys.modules["torchvision.transforms"].ToPILImage = sys.modules["torchvision.transforms"].PILToTensor = object
from walloc.walloc import Codec1D, Codec2D


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--codec1d", action="store_true")
    ap.add_argument("--post-filter", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if a.codec1d:
        model = Codec1D(channels=2, J=8, Ne=None, Nd=256, latent_dim=32, latent_bits=8, lightweight_encode=True,
                        post_filter=a.post_filter)
        x = 0.5 * torch.rand(8, 2, 32768) - 0.25
        name = "codec1d" + ("-post" if a.post_filter else "")
    else:
        model = Codec2D(channels=3, J=3, Ne=None, Nd=128, latent_dim=12, latent_bits=8, lightweight_encode=True)
        x = torch.rand(8, 3, 128, 128) - 0.5
        name = "codec2d"
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)

    def step():
        opt.zero_grad()
        _, mse, tf = model(x)
        loss = mse
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    step()
    times, cpu = [], []
    for _ in range(a.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        loss = step()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        print(f"step {times[-1]:.3f} s  cpu {cpu[-1]:.3f} s  loss {loss:.5f}")
    times.sort()
    cpu.sort()
    print(f"{name}, threads {a.threads}: median {times[len(times) // 2]:.3f} s, min {times[0]:.3f} s per step; "
          f"cpu median {cpu[len(cpu) // 2]:.3f} s")


if __name__ == "__main__":
    main()
