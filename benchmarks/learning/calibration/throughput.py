"""Q1/Q4: training throughput (img/s) of HF ViTForImageClassification on this CPU, by geometry and batch size.

Short bursts (warm-up 3 steps, then timed steps), 2 threads. Usage: python throughput.py [--quick]
Appends to results/throughput.jsonl.
"""
import itertools
import sys
import time

import torch
import torch.nn.functional as F
from transformers import ViTForImageClassification

from common import HERE, norm, train_flops_per_image, vit_config, write_jsonl

OUT = f"{HERE}/results/throughput.jsonl"


def measure(layers, width, heads, mlp, patch, batch, attn="sdpa", steps=8):
    torch.manual_seed(0)
    m = ViTForImageClassification(vit_config(layers, width, heads, mlp, patch, 5, attn))
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4)
    x = torch.randint(0, 255, (batch, 1, 28, 28), dtype=torch.uint8)
    y = torch.randint(0, 5, (batch,))

    def step():
        loss = F.cross_entropy(m(pixel_values=norm(x)).logits, y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(3):
        step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    dt = (time.perf_counter() - t) / steps
    # inference throughput
    m.eval()
    xe = torch.randint(0, 255, (500, 1, 28, 28), dtype=torch.uint8)
    with torch.no_grad():
        m(pixel_values=norm(xe))
        t = time.perf_counter()
        m(pixel_values=norm(xe))
        de = time.perf_counter() - t
    tokens = (28 // patch) ** 2 + 1
    f = train_flops_per_image(layers, width, mlp, tokens, 5, patch)
    rec = dict(layers=layers, width=width, heads=heads, mlp=mlp, patch=patch, batch=batch, attn=attn,
               step_s=round(dt, 4), train_img_s=round(batch / dt, 1), eval_img_s=round(500 / de, 1),
               train_gflop_per_img=round(f / 1e9, 4), gflops_achieved=round(f * batch / dt / 1e9, 2))
    print(rec, flush=True)
    write_jsonl(OUT, rec)


if __name__ == "__main__":
    import os
    os.makedirs(f"{HERE}/results", exist_ok=True)
    for layers, patch, batch in itertools.product((12, 6), (7, 4), (32, 64, 128)):
        measure(layers, 128, 4, 512, patch, batch)
    for batch in (64,):
        measure(6, 128, 4, 512, 7, batch, attn="eager")
        measure(6, 192, 3, 768, 7, batch)
        measure(6, 128, 4, 256, 7, batch)
        measure(6, 64, 2, 256, 7, batch)   # half-width descendant (issue 15)
