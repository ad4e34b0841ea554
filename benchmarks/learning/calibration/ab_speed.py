"""Q4: interleaved A/B bursts (robust to a shared machine: configurations alternate, so contention hits each
alike) of a 6-layer width-128 descendant training step, batch 64: fp32 vs CPU bf16 autocast, and 1 vs 2 threads.
python ab_speed.py [--rounds 4] -> results/ab_speed.jsonl"""
import argparse
import time

import torch
import torch.nn.functional as F

from arms import build
from common import CACHE, HERE, norm, write_jsonl

p = argparse.ArgumentParser()
p.add_argument("--rounds", type=int, default=4)
p.add_argument("--steps", type=int, default=8)
a = p.parse_args()
m = build("scratch", f"{CACHE}/random_anc", 0)
opt = torch.optim.AdamW(m.parameters(), lr=1e-4)
x = norm(torch.randint(0, 255, (64, 1, 28, 28), dtype=torch.uint8))
y = torch.randint(0, 5, (64,))


def burst(threads, bf16):
    torch.set_num_threads(threads)
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else torch.autocast("cpu", enabled=False)
    for i in range(a.steps + 2):
        if i == 2:
            t = time.perf_counter()
        with ctx:
            loss = F.cross_entropy(m(pixel_values=x).logits.float(), y)
        loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
    return 64 * a.steps / (time.perf_counter() - t)


import os
configs = [tuple(int(v) for v in c.split(":")) for c in os.environ.get("AB_CONFIGS", "2:0,1:0,2:1").split(",")]
configs = [(t, bool(b)) for t, b in configs]
res = {c: [] for c in configs}
for r in range(a.rounds):
    for c in configs:
        res[c].append(burst(*c))
for c, v in res.items():
    rec = dict(threads=c[0], bf16=c[1], img_s=[round(u, 1) for u in v], median=round(sorted(v)[len(v) // 2], 1),
               ratio_to_first=round(sorted(v)[len(v) // 2] / sorted(res[configs[0]])[len(v) // 2], 2),
               loadavg=open("/proc/loadavg").read().split()[:3])
    print(rec, flush=True)
    write_jsonl(f"{HERE}/results/ab_speed.jsonl", rec)
