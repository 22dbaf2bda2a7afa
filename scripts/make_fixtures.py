#!/usr/bin/env python3
"""Regenerate reference parity fixtures with the PyTorch reference (`walloc` 1.2.1).

Each codec case is a model directory (config.json + model.safetensors) plus the arrays the parity
tests compare against: input.npy, wpt.npy, latent_float.npy, latent.npy, decoded_bands.npy and
output.npy (see Tests/Fixtures/reference/README.md for their meaning). Every parameter is
perturbed from its default initialisation, and the encoder's last layer is scaled so that the
latents span the quantiser's range, as a trained encoder's do.

    python3 scripts/make_fixtures.py --out Tests/Fixtures/generated            # the extra configurations
    python3 scripts/make_fixtures.py --out /tmp/ref --cases reference          # the shared cases' configurations

Needs: pip install torch walloc diffusers pytorch-wavelets einops safetensors numpy "setuptools<81"
"""
import argparse, json, os, warnings

warnings.filterwarnings("ignore")
import numpy as np
import torch
from safetensors.torch import save_file
from walloc.walloc import Codec1D, Codec2D, LinearCodec2D

# name: (type, constructor arguments, signal shape without batch)
REFERENCE = {
    "codec2d_light": ("Codec2D", dict(channels=3, J=3, Ne=None, Nd=64, latent_dim=12, latent_bits=8, lightweight_encode=True), (3, 64, 96)),
    "codec2d_full": ("Codec2D", dict(channels=3, J=2, Ne=64, Nd=64, latent_dim=8, latent_bits=6, lightweight_encode=False), (3, 32, 64)),
    "codec1d_light": ("Codec1D", dict(channels=2, J=5, Ne=None, Nd=64, latent_dim=16, latent_bits=8, lightweight_encode=True, post_filter=True), (2, 2048)),
    "codec1d_full": ("Codec1D", dict(channels=1, J=4, Ne=64, Nd=64, latent_dim=16, latent_bits=8, lightweight_encode=False, post_filter=False), (1, 2048)),
    "linear2d_gray": ("LinearCodec2D", dict(channels=1, J=2, latent_dim=4, latent_bits=8), (1, 32, 48)),
}
# Configurations beyond the shared fixtures: other J, channel counts, latent sizes and bits.
# Every level's input is at least 10 samples long: below that, pytorch_wavelets' periodisation wraps
# the filter only once and the reference transform is no longer a periodic convolution (nor
# invertible), while Walloc computes the exact periodic transform (docs/design.md).
EXTRA = {
    "codec2d_gray_j1": ("Codec2D", dict(channels=1, J=1, Ne=None, Nd=32, latent_dim=3, latent_bits=4, lightweight_encode=True), (1, 24, 40)),
    "codec2d_5ch_full": ("Codec2D", dict(channels=5, J=2, Ne=32, Nd=32, latent_dim=10, latent_bits=10, lightweight_encode=False), (5, 64, 48)),
    "codec2d_rgb_j4": ("Codec2D", dict(channels=3, J=4, Ne=None, Nd=32, latent_dim=48, latent_bits=12, lightweight_encode=True), (3, 128, 96)),
    "codec1d_mono_j2": ("Codec1D", dict(channels=1, J=2, Ne=None, Nd=32, latent_dim=2, latent_bits=5, lightweight_encode=True, post_filter=False), (1, 256)),
    "codec1d_6ch_full": ("Codec1D", dict(channels=6, J=3, Ne=36, Nd=36, latent_dim=12, latent_bits=12, lightweight_encode=False, post_filter=True), (6, 512)),
    "linear2d_rgba_j3": ("LinearCodec2D", dict(channels=4, J=3, latent_dim=16, latent_bits=7), (4, 64, 40)),
}
CLASSES = {"Codec2D": Codec2D, "Codec1D": Codec1D, "LinearCodec2D": LinearCodec2D}


def smooth_signal(shape, gen):
    """Values in [-0.5, 0.5]: a smooth random field plus a little noise."""
    x = torch.randn(shape, generator=gen)
    k = torch.ones(1, 1, 5) / 5
    flat = x.reshape(-1, 1, shape[-1])
    for _ in range(3):
        flat = torch.nn.functional.conv1d(flat, k, padding=2)
    x = flat.reshape(shape)
    x = x + 0.05 * torch.randn(shape, generator=gen)
    return (0.5 * x / x.abs().max()).clamp(-0.5, 0.5)


def perturb(model, gen):
    with torch.no_grad():
        for p in model.parameters():
            spread = float(p.std()) if p.numel() > 1 else 0.0
            p.add_(torch.randn(p.shape, generator=gen) * max(spread, 0.05) * 0.2)


def last_conv(module):
    convs = [m for m in module.modules() if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d))]
    return convs[-1]


def calibrate_encoder(model, x):
    """Scale the encoder's last layer so its output has the ToUniform scale as its spread."""
    with torch.no_grad():
        y = model.encoder[0](model.wavelet_analysis(x, J=model.J))
        target = model.encoder[1].scale
        factor = target / max(float(y.std()), 1e-6)
        conv = last_conv(model.encoder[0])
        if hasattr(conv, "weight_g"):
            conv.weight_g.mul_(factor)
        else:
            conv.weight.mul_(factor)
        if conv.bias is not None:
            conv.bias.mul_(factor)


def save(arr, path):
    np.save(path, np.ascontiguousarray(arr.detach().numpy().astype("<f4")))


def make_case(out, name, kind, args, shape, seed):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = CLASSES[kind](**args)
    perturb(model, gen)
    x = smooth_signal((1,) + shape, gen)
    calibrate_encoder(model, x)
    model.eval()
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(dict(type=kind, **args), f, indent=2)
    save_file({k: v.detach().contiguous().float() for k, v in model.state_dict().items()}, os.path.join(d, "model.safetensors"))
    with torch.no_grad():
        X = model.wavelet_analysis(x, J=model.J)
        yf = model.encoder[0:2](X)
        y = torch.round(yf)
        Xh = model.decoder(y)
        xh = model.wavelet_synthesis(Xh, J=model.J)
        if getattr(model, "post_filter", False):
            xh = model.post(xh)
        xh = model.clamp(xh)
        ref, _, _ = model(x)
        assert torch.allclose(ref, xh), f"{name}: staged output differs from forward()"
    for n, t in (("input", x), ("wpt", X), ("latent_float", yf), ("latent", y), ("decoded_bands", Xh), ("output", xh)):
        save(t[0], os.path.join(d, n + ".npy"))
    lo, hi = float(y.min()), float(y.max())
    print(f"{name}: latents {tuple(y.shape[1:])} in [{lo:.0f}, {hi:.0f}] (range ±{2 ** (args['latent_bits'] - 1)})")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--cases", choices=["extra", "reference", "all"], default="extra")
    ap.add_argument("--seed", type=int, default=20261122)
    a = ap.parse_args()
    torch.set_num_threads(1)
    cases = {"extra": EXTRA, "reference": REFERENCE, "all": {**REFERENCE, **EXTRA}}[a.cases]
    for i, (name, (kind, args, shape)) in enumerate(cases.items()):
        make_case(a.out, name, kind, args, shape, a.seed + i)


if __name__ == "__main__":
    main()
