"""Q4: training and evaluation throughput of each arm's model class on this CPU (short bursts, repeated; the
machine is shared, so the max over repeats is taken as the uncontended figure and the spread is recorded).

python throughput_arms.py [--repeats 3] [--threads 2]   -> results/throughput_arms.jsonl
Arms: scratch/first6 (DescendantForImageClassification, 6 layers w128), oneliner (HF ViT, 6 layers),
whole (Descendant, 12 layers), half (Descendant, 6 layers w64, 2 heads, MLP 256), ancestor (HF ViT 12 layers).
Batches 50 (k=10 full batch) and 64; evaluation on 750 images (val 250 + test 500) in one batch of 750.
"""
import argparse
import json
import os
import time

import torch
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--repeats", type=int, default=3)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--steps", type=int, default=10)
a = p.parse_args()
os.environ["CALIB_THREADS"] = str(a.threads)
from arms import build  # noqa: E402
from common import CACHE, HERE, norm, train_flops_per_image, vit_config, write_jsonl  # noqa: E402

torch.set_num_threads(a.threads)
ANC = f"{CACHE}/random_anc"  # geometry only: throughput does not depend on the weights


def model_for(arm):
    if arm == "ancestor":
        from transformers import ViTForImageClassification
        return ViTForImageClassification(vit_config(12, 128, 4, 512, 7, 5))
    return build(arm, ANC, 0)


def bench(model, batch, steps):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = norm(torch.randint(0, 255, (batch, 1, 28, 28), dtype=torch.uint8))
    y = torch.randint(0, 5, (batch,))
    model.train()
    for i in range(steps + 3):
        if i == 3:
            t, c = time.perf_counter(), time.process_time()
        F.cross_entropy(model(pixel_values=x).logits, y).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step(); opt.zero_grad(set_to_none=True)
    return batch * steps / (time.perf_counter() - t), batch * steps / (time.process_time() - c)


def bench_eval(model, n=750):
    x = norm(torch.randint(0, 255, (n, 1, 28, 28), dtype=torch.uint8))
    model.eval()
    with torch.no_grad():
        model(pixel_values=x)
        t, c = time.perf_counter(), time.process_time()
        for _ in range(2):
            model(pixel_values=x)
    return 2 * n / (time.perf_counter() - t), 2 * n / (time.process_time() - c)


geo = {"scratch": (6, 128, 512), "first6": (6, 128, 512), "oneliner": (6, 128, 512), "whole": (12, 128, 512),
       "scratch_half": (6, 64, 256), "ancestor": (12, 128, 512)}
for arm in ("scratch", "oneliner", "whole", "scratch_half", "ancestor"):
    m = model_for(arm)
    for batch in ((50, 64) if arm != "ancestor" else (128,)):
        r = [bench(m, batch, a.steps) for _ in range(a.repeats)]
        e = [bench_eval(m) for _ in range(a.repeats)]
        L, W, M = geo[arm]
        rec = dict(arm=arm, threads=a.threads, batch=batch, train_img_s_wall=[round(v[0], 1) for v in r],
                   train_img_per_cpu_s=[round(v[1], 1) for v in r], eval_img_s_wall=[round(v[0], 1) for v in e],
                   eval_img_per_cpu_s=[round(v[1], 1) for v in e], train_gflop_per_img=round(train_flops_per_image(L, W, M, 17) / 1e9, 4),
                   loadavg=open("/proc/loadavg").read().split()[:3])
        print(rec, flush=True)
        write_jsonl(f"{HERE}/results/throughput_arms.jsonl", rec)
