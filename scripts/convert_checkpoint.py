#!/usr/bin/env python3
"""Convert an official WaLLoC checkpoint (.pth + .json, as published with the paper) into a Walloc
model directory: config.json (the reference constructor arguments plus "type") and
model.safetensors (the reference state_dict, float32, its own key names).

    python3 scripts/convert_checkpoint.py RGB_16x.pth RGB_16x.json -o models/RGB_16x
    walloc info --model models/RGB_16x

The .json holds the training configuration; the constructor arguments are taken from it. The
model type is inferred (post_filter -> Codec1D, lightweight_encode -> Codec2D, else
LinearCodec2D) unless --type is given. When the `walloc` Python package is installed, the weights
are loaded into the reference model (strict) as a check. This is the only part of Walloc that
needs PyTorch: pip install torch safetensors (and optionally walloc diffusers pytorch-wavelets).
"""
import argparse, json, os, sys, tempfile

ARGS = {
    "Codec2D": ["channels", "J", "Ne", "Nd", "latent_dim", "latent_bits", "lightweight_encode"],
    "Codec1D": ["channels", "J", "Ne", "Nd", "latent_dim", "latent_bits", "lightweight_encode", "post_filter"],
    "LinearCodec2D": ["channels", "J", "latent_dim", "latent_bits"],
}


def fail(msg):
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", help=".pth file (a dict with 'model_state_dict', or a bare state_dict)")
    ap.add_argument("config", help=".json file with the constructor arguments")
    ap.add_argument("-o", "--output", required=True, help="model directory to create")
    ap.add_argument("--type", choices=sorted(ARGS), help="model class (default: inferred from the config)")
    ap.add_argument("--force", action="store_true", help="replace files in an existing output directory")
    a = ap.parse_args()

    import torch
    from safetensors.torch import save_file

    try:
        with open(a.config) as f:
            cfg = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        fail(f"{a.config}: {e}")
    kind = a.type or ("Codec1D" if "post_filter" in cfg else "Codec2D" if "lightweight_encode" in cfg else "LinearCodec2D")
    missing = [k for k in ARGS[kind] if k not in cfg]
    if missing:
        fail(f"{a.config}: missing {', '.join(missing)} for a {kind}")
    args = {k: cfg[k] for k in ARGS[kind]}

    try:
        ckpt = torch.load(a.checkpoint, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - any load failure is reported the same way
        fail(f"{a.checkpoint}: cannot be loaded ({e})")
    state = ckpt.get("model_state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        fail(f"{a.checkpoint}: no state_dict found (expected a dict with 'model_state_dict')")
    tensors = {k: v.detach().to(torch.float32).contiguous() for k, v in state.items()}

    try:
        import walloc.walloc as ref
        model = getattr(ref, kind)(**args)
        model.load_state_dict(state, strict=True)
        print(f"checked: the weights load into the reference {kind} (strict)")
    except ImportError:
        print("note: the walloc package is not installed; skipped the reference load check", file=sys.stderr)
    except RuntimeError as e:
        fail(f"the weights do not match a {kind} with {args}: {e}")

    out = a.output
    os.makedirs(out, exist_ok=True)
    targets = [os.path.join(out, "config.json"), os.path.join(out, "model.safetensors")]
    if not a.force and any(os.path.exists(t) for t in targets):
        fail(f"{out} already holds a model (use --force to replace it)")
    # Write each file to a temporary name in the same folder, then rename (atomic).
    fd, tmp = tempfile.mkstemp(dir=out, prefix=".model.", suffix=".tmp")
    os.close(fd)
    save_file(tensors, tmp, metadata={"source": os.path.basename(a.checkpoint)})
    os.replace(tmp, targets[1])
    fd, tmp = tempfile.mkstemp(dir=out, prefix=".config.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(dict(type=kind, **args), f, indent=2)
    os.replace(tmp, targets[0])
    n = sum(t.numel() for t in tensors.values())
    print(f"wrote {out}: {kind} {args}, {len(tensors)} tensors, {n} values")


if __name__ == "__main__":
    main()
