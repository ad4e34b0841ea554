"""Q2/Q4: train descendant arms on 5-way tasks with AdamW + warm-up + cosine for a series of step budgets, and
record val/test curves, test accuracy at the best-validation evaluation, and seconds.

python descendant_runs.py --domain mnist --arm scratch --k 10 --steps 50,100,200,400 --tasks 0,1 --seeds 0 \
    --lr 1e-3 [--batch 64 --evals 20 --ancestor _cache/anc_p7_e3 --tag NAME]
Appends one JSON line per run to results/descendant_runs.jsonl.
"""
import argparse
import time

import torch

from arms import build
from common import CACHE, HERE, domain, make_tasks, task_split, train, write_jsonl

p = argparse.ArgumentParser()
p.add_argument("--domain", default="mnist")
p.add_argument("--arm", default="scratch")
p.add_argument("--k", default="10")
p.add_argument("--steps", default="100")
p.add_argument("--tasks", default="0")
p.add_argument("--seeds", default="0")
p.add_argument("--lr", type=float, default=1e-3)
p.add_argument("--batch", type=int, default=64)
p.add_argument("--evals", type=int, default=20)
p.add_argument("--wd", type=float, default=0.05)
p.add_argument("--ancestor", default=f"{CACHE}/anc_p7_e3")
p.add_argument("--tag", default="")
a = p.parse_args()
k = a.k if a.k == "all" else int(a.k)
x, y = domain(a.domain)
tasks = make_tasks(y, max(int(t) for t in a.tasks.split(",")) + 1)
for t in [int(v) for v in a.tasks.split(",")]:
    xtr, ytr, xva, yva, xte, yte = task_split(tasks[t], x, y, k)
    for seed in [int(v) for v in a.seeds.split(",")]:
        for steps in [int(v) for v in a.steps.split(",")]:
            model = build(a.arm, a.ancestor, seed)
            t0, c0 = time.perf_counter(), time.process_time()
            out = train(model, xtr, ytr, steps=steps, batch=a.batch, lr=a.lr, wd=a.wd, seed=seed,
                        evals={"val": (xva, yva), "test": (xte, yte)}, eval_every=max(1, steps // a.evals))
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            c = out["curve"]
            best = max(range(len(c)), key=lambda i: (c[i]["val"], -i))  # earliest best-val point
            rec = dict(tag=a.tag, domain=a.domain, arm=a.arm, k=a.k, n_train=len(ytr), task=t, seed=seed,
                       lr=a.lr, batch=min(a.batch, len(ytr)), steps=steps, epochs=round(steps * min(a.batch, len(ytr)) / len(ytr), 1),
                       train_seconds=round(out["train_seconds"], 2), wall_seconds=round(wall, 2),
                       cpu_seconds=round(cpu, 2), threads=torch.get_num_threads(),
                       best_val=c[best]["val"], best_val_step=c[best]["step"], test_at_best_val=c[best]["test"],
                       final_test=c[-1]["test"], max_test=max(p["test"] for p in c),
                       params=sum(p.numel() for p in model.parameters()), curve=c)
            print({kk: v for kk, v in rec.items() if kk != "curve"}, flush=True)
            write_jsonl(f"{HERE}/results/descendant_runs.jsonl", rec)
