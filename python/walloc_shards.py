"""Read the dataset shards that `walloc latents DATA -o OUT` writes (docs/compressed-learning.md).

Needs numpy and safetensors; PyTorch is optional (only for `ShardDataset.torch()`).

    from walloc_shards import ShardDataset
    ds = ShardDataset("OUT")                  # checks manifest.json and every shard's size
    x, y = ds[0]                              # one item: int8/int16 latents [C, h, w] or [C, l], label
    X, Y = ds.arrays()                        # everything as two numpy arrays
    for x, y in ds.batches(64, shuffle=True, seed=0): ...
    loader = torch.utils.data.DataLoader(ds.torch(), batch_size=64, shuffle=True)

Items come in manifest order; labels are indices into `ds.classes` (-1 when unlabelled);
`ds.names[i]` is item i's path relative to the dataset. Shards are read lazily, one at a time.
"""
from __future__ import annotations

import hashlib
import json
import os

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

FORMAT = "walloc-latents"
VERSION = 1


class ShardError(ValueError):
    """A shard folder that is incomplete, damaged or not from walloc."""


class ShardDataset:
    """The items of a `walloc latents` output folder, as numpy arrays."""

    def __init__(self, folder: str, verify: bool = False):
        """Reads `folder/manifest.json` and checks that every shard is there with its recorded
        size; `verify=True` also checks every shard's SHA-256 (reads all the data once)."""
        self.folder = folder
        path = os.path.join(folder, "manifest.json")
        try:
            with open(path, encoding="utf-8") as f:
                m = json.load(f)
        except FileNotFoundError:
            raise ShardError(f"{path}: no manifest; is {folder} a finished `walloc latents` output "
                             "(after `walloc latents merge` when --shard workers wrote it)?") from None
        except json.JSONDecodeError as e:
            raise ShardError(f"{path}: not JSON ({e})") from None
        if m.get("format") != FORMAT or m.get("version") != VERSION:
            raise ShardError(f"{path}: format {m.get('format')} version {m.get('version')}, "
                             f"expected {FORMAT} version {VERSION}")
        self.manifest = m
        self.tensor = m["tensor"]
        self.classes = list(m["classes"])
        self.item_shape = tuple(m["item_shape"])
        self.modality = m["modality"]
        self.shards = sorted(m["shards"], key=lambda s: s["index"])
        if len(self.shards) != m["shard_count"] or sum(s["count"] for s in self.shards) != m["items"]:
            raise ShardError(f"{path}: {len(self.shards)} of {m['shard_count']} shards listed; "
                             "merge the workers' outputs first (walloc latents merge)")
        for s in self.shards:
            p = os.path.join(folder, s["file"])
            if not os.path.exists(p):
                raise ShardError(f"{p}: missing")
            if os.path.getsize(p) != s["bytes"]:
                raise ShardError(f"{p}: {os.path.getsize(p)} bytes, the manifest records {s['bytes']}")
            if verify:
                h = hashlib.sha256()
                with open(p, "rb") as f:
                    for block in iter(lambda: f.read(1 << 22), b""):
                        h.update(block)
                if h.hexdigest() != s["sha256"]:
                    raise ShardError(f"{p}: SHA-256 differs from the manifest's (damaged or replaced)")
        self._starts = np.array([s["first"] for s in self.shards] + [m["items"]])
        self._cache: tuple[int, np.ndarray, np.ndarray] | None = None
        self._names: list[str] | None = None

    def __len__(self) -> int:
        return self.manifest["items"]

    def shard(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Shard k's values `[n, *item_shape]` and labels `[n]` (the last shard read is cached)."""
        if self._cache is None or self._cache[0] != k:
            p = os.path.join(self.folder, self.shards[k]["file"])
            t = load_file(p)
            x, y = t[self.tensor], t["labels"]
            if x.shape[1:] != self.item_shape or len(x) != self.shards[k]["count"]:
                raise ShardError(f"{p}: holds {x.shape}, the manifest says {self.shards[k]['count']} x {self.item_shape}")
            self._cache = (k, x, y)
        return self._cache[1], self._cache[2]

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"item {i} of {len(self)}")
        k = int(np.searchsorted(self._starts, i, side="right") - 1)
        x, y = self.shard(k)
        j = i - self.shards[k]["first"]
        return x[j], int(y[j])

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """All items: values `[N, *item_shape]` (the stored integer type) and labels `[N]` (int64)."""
        parts = [self.shard(k) for k in range(len(self.shards))]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def batches(self, size: int, shuffle: bool = False, seed: int = 0):
        """Yields (values, labels) batches of `size` items as float32 and int64 arrays."""
        order = np.random.default_rng(seed).permutation(len(self)) if shuffle else np.arange(len(self))
        x, y = self.arrays()
        for s in range(0, len(order), size):
            idx = order[s:s + size]
            yield x[idx].astype(np.float32), y[idx]

    @property
    def names(self) -> list[str]:
        """Every item's name (its path relative to the dataset), from the shards' metadata."""
        if self._names is None:
            names = []
            for s in self.shards:
                with safe_open(os.path.join(self.folder, s["file"]), "np") as f:
                    names += json.loads(f.metadata()["names"])
            self._names = names
        return self._names

    @property
    def coded_bytes(self) -> list[int] | None:
        """Each item's compressed size in bytes when the items went through a codec round trip
        (`walloc latents --signal --through CODEC:SETTING`), else None."""
        if self.manifest["preparation"].get("round_trip") is None:
            return None
        sizes = []
        for s in self.shards:
            with safe_open(os.path.join(self.folder, s["file"]), "np") as f:
                sizes += json.loads(f.metadata()["coded_bytes"])
        return sizes

    def torch(self):
        """A `torch.utils.data.Dataset` of (float32 tensor, int64 label) pairs (needs PyTorch)."""
        import torch

        outer = self

        class _Torch(torch.utils.data.Dataset):
            def __len__(self):
                return len(outer)

            def __getitem__(self, i):
                x, y = outer[i]
                return torch.from_numpy(x.astype(np.float32)), torch.tensor(y, dtype=torch.int64)

        return _Torch()
