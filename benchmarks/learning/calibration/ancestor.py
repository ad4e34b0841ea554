"""Q1: train a 12-layer width-128 ViT ancestor on Fashion-MNIST classes 0-5 and record held-out accuracy vs time.

python ancestor.py --patch 7 --epochs 6 [--lr 1e-3 --batch 128 --save NAME]
Held-out set: the Fashion-MNIST test images of classes 0-5 (6,000); a fixed 1,500-image subset is evaluated every
half epoch (curve), the full 6,000 at the end. Saves the model (save_pretrained) under _cache/NAME when --save.
Appends to results/ancestor.jsonl.
"""
import argparse
import math
import os
import time

import torch
from transformers import ViTForImageClassification

from common import CACHE, HERE, accuracy, fashion, train, train_flops_per_image, vit_config, write_jsonl

p = argparse.ArgumentParser()
p.add_argument("--patch", type=int, default=7)
p.add_argument("--epochs", type=float, default=6)
p.add_argument("--lr", type=float, default=1e-3)
p.add_argument("--batch", type=int, default=128)
p.add_argument("--width", type=int, default=128)
p.add_argument("--heads", type=int, default=4)
p.add_argument("--layers", type=int, default=12)
p.add_argument("--save", default=None)
a = p.parse_args()

x, y = fashion("train")
keep = y < 6
x, y = x[keep], y[keep]
xt, yt = fashion("test")
keep = yt < 6
xt, yt = xt[keep], yt[keep]
sub = torch.randperm(len(yt), generator=torch.Generator().manual_seed(0))[:1500]
steps_per_epoch = math.ceil(len(y) / a.batch)
steps = round(a.epochs * steps_per_epoch)
torch.manual_seed(0)
m = ViTForImageClassification(vit_config(a.layers, a.width, a.heads, 4 * a.width, a.patch, 6))
m.config.id2label = {i: n for i, n in enumerate(["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal"])}
m.config.label2id = {n: i for i, n in m.config.id2label.items()}
t0 = time.perf_counter()
out = train(m, x, y, steps=steps, batch=a.batch, lr=a.lr, evals={"heldout1500": (xt[sub], yt[sub])},
            eval_every=steps_per_epoch // 2, log=lambda pt: print(pt, flush=True))
wall = time.perf_counter() - t0
acc = accuracy(m, xt, yt)
tokens = (28 // a.patch) ** 2 + 1
rec = dict(layers=a.layers, width=a.width, heads=a.heads, patch=a.patch, epochs=a.epochs, lr=a.lr, batch=a.batch,
           steps=steps, train_images=len(y), heldout_acc=acc, train_seconds=round(out["train_seconds"], 1),
           wall_seconds=round(wall, 1),
           train_pflop=round(train_flops_per_image(a.layers, a.width, 4 * a.width, tokens, 6, a.patch) * steps * a.batch / 1e15, 4),
           curve=out["curve"], save=a.save)
print({k: v for k, v in rec.items() if k != "curve"}, flush=True)
os.makedirs(f"{HERE}/results", exist_ok=True)
write_jsonl(f"{HERE}/results/ancestor.jsonl", rec)
if a.save:
    m.save_pretrained(os.path.join(CACHE, a.save))
