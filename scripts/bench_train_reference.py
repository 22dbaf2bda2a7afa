#!/usr/bin/env python3
"""Time one reference Codec2D training step (forward + backward + AdamW) with PyTorch on the CPU:
batch 8 of 3x128x128 crops, J=3, latent_dim=12, Nd=128, lightweight encoder.

    source /work/ref/venv/bin/activate
    python3 scripts/bench_train_reference.py --threads 2 --steps 5
"""
import argparse, time, warnings

warnings.filterwarnings("ignore")
import torch

try:
    import torchvision.transforms  # noqa: F401  (walloc imports ToPILImage, PILToTensor from it)
except Exception:
    # A CPU-only torch wheel may come without a matching torchvision; Codec2D never uses these two
    # names, so stand-ins let walloc import.
    import importlib.machinery, sys, types
    for name in ("torchvision", "torchvision.transforms"):
        module = types.ModuleType(name)
        module.__spec__ = importlib.machinery.ModuleSpec(name, None)
        sys.modules[name] = module
    sys.modules["torchvision"].transforms = sys.modules["torchvision.transforms"]
    sys.modules["torchvision.transforms"].ToPILImage = sys.modules["torchvision.transforms"].PILToTensor = object
from walloc.walloc import Codec2D


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = Codec2D(channels=3, J=3, Ne=None, Nd=128, latent_dim=12, latent_bits=8, lightweight_encode=True)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    x = torch.rand(8, 3, 128, 128) - 0.5

    def step():
        opt.zero_grad()
        _, mse, tf = model(x)
        loss = mse
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    step()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - t0)
        print(f"step {times[-1]:.3f} s  loss {loss:.5f}")
    times.sort()
    print(f"threads {a.threads}: median {times[len(times) // 2]:.3f} s, min {times[0]:.3f} s per step")


if __name__ == "__main__":
    main()
