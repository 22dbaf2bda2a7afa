#!/usr/bin/env python3
"""Export a tiny codec's training-mode loss and its autograd gradients, for the Swift gradient tests.

The rounding's uniform noise is fixed (noise.npy) so both sides compute the same function:
loss = MSE(x, x_hat) + TF_WEIGHT * MSE(X, X_hat), x_hat before the clamp, as the reference's
forward returns them.

    source /work/ref/venv/bin/activate
    python3 scripts/make_training_fixture.py --out Tests/Fixtures/training/codec2d_tiny
    python3 scripts/make_training_fixture.py --kind codec1d --out Tests/Fixtures/training/codec1d_tiny
    python3 scripts/make_training_fixture.py --kind codec1d_light --out Tests/Fixtures/training/codec1d_light

Writes config.json, model.safetensors (parameters, perturbed from the default initialisation),
input.npy ([2, 3, 16, 16] images or [2, 2, 64] stereo clips), noise.npy (latent shape),
losses.npy [loss, mse, tf_loss, tf_weight] and gradients.safetensors (one gradient per
parameter, same keys). codec1d: Oobleck encoder and post filter; codec1d_light: the
lightweight (kernel-1) encoder, no post filter.
"""
import argparse, json, os, warnings

warnings.filterwarnings("ignore")
import numpy as np
import torch
from safetensors.torch import save_file
from walloc.walloc import Codec1D, Codec2D

TF_WEIGHT = 0.5
KINDS = {
    "codec2d": (Codec2D, dict(channels=3, J=1, Ne=32, Nd=32, latent_dim=4, latent_bits=6, lightweight_encode=False),
                (2, 3, 16, 16)),
    "codec1d": (Codec1D, dict(channels=2, J=2, Ne=8, Nd=8, latent_dim=4, latent_bits=6, lightweight_encode=False,
                              post_filter=True), (2, 2, 64)),
    "codec1d_light": (Codec1D, dict(channels=2, J=2, Ne=None, Nd=8, latent_dim=4, latent_bits=6,
                                    lightweight_encode=True, post_filter=False), (2, 2, 64)),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--kind", choices=sorted(KINDS), default="codec2d")
    a = ap.parse_args()
    out = a.out
    cls, ARGS, shape = KINDS[a.kind]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(7)
    gen = torch.Generator().manual_seed(7)
    model = cls(**ARGS).float()
    with torch.no_grad():
        for name, p in model.named_parameters():
            # Snake parameters start at zero: spread them so their gradients are exercised.
            scale = 0.5 if name.endswith("alpha") or name.endswith("beta") else 0.05
            p.add_(scale * torch.randn(p.shape, generator=gen))
        # Spread the latents over the quantiser's range, as a trained encoder does.
        if a.kind == "codec2d":
            model.encoder[0].conv_out.weight.mul_(4.0)
        elif a.kind == "codec1d":
            model.encoder[0].conv2.weight_g.mul_(4.0)
        else:
            model.encoder[0].weight.mul_(8.0)
    model.train()
    x = (torch.rand(shape, generator=gen) - 0.5)
    noise = None

    def fixed_round(self, y):
        return y + noise

    with torch.no_grad():
        y = model.encoder(model.wavelet_analysis(x, J=model.J))  # shape only (noise added below)
    noise = torch.rand(y.shape, generator=gen) - 0.5
    type(model.encoder[-1]).forward = fixed_round
    _, mse, tf = model(x)
    loss = mse + TF_WEIGHT * tf
    model.zero_grad()
    loss.backward()
    grads = {k: p.grad.detach().contiguous() for k, p in model.named_parameters()}
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, os.path.join(out, "model.safetensors"))
    save_file(grads, os.path.join(out, "gradients.safetensors"))
    np.save(os.path.join(out, "input.npy"), x.numpy().astype(np.float32))
    np.save(os.path.join(out, "noise.npy"), noise.numpy().astype(np.float32))
    np.save(os.path.join(out, "losses.npy"), np.array([loss.item(), mse.item(), tf.item(), TF_WEIGHT], dtype=np.float32))
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump({"type": cls.__name__, **{k: v for k, v in ARGS.items() if v is not None}}, f, indent=2)
    print("loss", loss.item(), "mse", mse.item(), "tf", tf.item(), "params", sum(p.numel() for p in model.parameters()))
    print("latent range", float(y.min()), float(y.max()))


if __name__ == "__main__":
    main()
