"""Tests of walloc_shards.py against shards the built `walloc` writes (run by scripts/python-test.sh)."""
import os
import struct
import subprocess
import sys
import tempfile
import unittest
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from walloc_shards import ShardDataset, ShardError  # noqa: E402

WALLOC = os.environ.get("WALLOC", os.path.join(os.path.dirname(__file__), "..", ".build", "release", "walloc"))


def write_png(path, rgb):
    """An 8-bit RGB PNG from a [h, w, 3] uint8 array (standard library only)."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


class ShardTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        root = cls.tmp.name
        rng = np.random.default_rng(0)
        yy, xx = np.mgrid[0:40, 0:48]
        for c, name in enumerate(["cats", "dogs"]):
            os.makedirs(os.path.join(root, "data", name))
            for i in range(3):
                base = 128 + 90 * np.sin(yy / (4 + i) + c) * np.cos(xx / (5 + c))
                img = np.clip(base[..., None] + rng.normal(0, 12, (40, 48, 3)), 0, 255).astype(np.uint8)
                write_png(os.path.join(root, "data", name, f"{i}.png"), img)
        cls.out = os.path.join(root, "out")
        subprocess.run([WALLOC, "latents", os.path.join(root, "data"), "-o", cls.out, "--shard-size", "4", "--quiet"], check=True)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_items_labels_names(self):
        ds = ShardDataset(self.out, verify=True)
        self.assertEqual(len(ds), 6)
        self.assertEqual(ds.classes, ["cats", "dogs"])
        # 40 x 48 pixels with the default model's smooth 12-pixel margin: 56 x 64, latents 7 x 8.
        self.assertEqual(ds.item_shape, (64, 7, 8))
        self.assertEqual(ds.names, ["cats/0.png", "cats/1.png", "cats/2.png", "dogs/0.png", "dogs/1.png", "dogs/2.png"])
        x, y = ds[4]
        self.assertEqual((x.shape, x.dtype, y), ((64, 7, 8), np.int16, 1))
        X, Y = ds.arrays()
        self.assertEqual(X.shape, (6, 64, 7, 8))
        self.assertEqual(Y.tolist(), [0, 0, 0, 1, 1, 1])
        self.assertTrue(np.array_equal(X[4], x) and np.array_equal(ds[-1][0], X[5]))
        batches = list(ds.batches(4, shuffle=True, seed=1))
        self.assertEqual([len(b[1]) for b in batches], [4, 2])
        self.assertEqual(sorted(np.concatenate([b[1] for b in batches]).tolist()), [0, 0, 0, 1, 1, 1])
        with self.assertRaises(IndexError):
            ds[6]

    def test_decoded_signal_and_coded_bytes(self):
        out = os.path.join(self.tmp.name, "jpeg")
        subprocess.run([WALLOC, "latents", os.path.join(self.tmp.name, "data"), "-o", out, "--signal", "--through", "jpeg:40",
                        "--shard-size", "4", "--quiet"], check=True)
        ds = ShardDataset(out, verify=True)
        self.assertEqual((ds.tensor, ds.item_shape), ("signal", (3, 40, 48)))
        self.assertEqual(ds[0][0].dtype, np.uint8)
        sizes = ds.coded_bytes
        self.assertEqual(len(sizes), 6)
        self.assertTrue(all(300 < n < 3000 for n in sizes), sizes)
        self.assertIsNone(ShardDataset(self.out).coded_bytes)

    def test_values_match_walloc_latents(self):
        ds = ShardDataset(self.out)
        npy = os.path.join(self.tmp.name, "one.npy")
        subprocess.run([WALLOC, "latents", os.path.join(self.tmp.name, "data", "dogs", "1.png"), "-o", npy], check=True)
        self.assertTrue(np.array_equal(np.load(npy), ds[4][0].astype(np.float32)))
        self.assertTrue(np.abs(ds[4][0]).max() > 0)

    def test_damaged_or_incomplete(self):
        with self.assertRaises(ShardError):
            ShardDataset(os.path.join(self.tmp.name, "data"))  # no manifest
        bad = os.path.join(self.tmp.name, "bad")
        subprocess.run(["cp", "-r", self.out, bad], check=True)
        shard = os.path.join(bad, "shard-00001.safetensors")
        with open(shard, "r+b") as f:
            f.seek(-3, 2)
            b = f.read(1)
            f.seek(-3, 2)
            f.write(bytes([b[0] ^ 0x20]))
        ShardDataset(bad)  # sizes still match
        with self.assertRaises(ShardError):
            ShardDataset(bad, verify=True)
        with open(shard, "r+b") as f:
            f.truncate(100)
        with self.assertRaises(ShardError):
            ShardDataset(bad)

    def test_torch(self):
        try:
            import torch
        except ImportError:
            self.skipTest("PyTorch is not installed")
        loader = torch.utils.data.DataLoader(ShardDataset(self.out).torch(), batch_size=4)
        x, y = next(iter(loader))
        self.assertEqual((tuple(x.shape), x.dtype, y.tolist()), ((4, 64, 7, 8), torch.float32, [0, 0, 0, 1]))


if __name__ == "__main__":
    unittest.main(verbosity=2)
