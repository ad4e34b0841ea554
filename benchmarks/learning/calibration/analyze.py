"""Summarise results/descendant_runs.jsonl: per (domain, arm, k, lr, steps) the test accuracy at the best-validation
evaluation, the in-run plateau statistic and the budget-doubling gain.

In-run plateau statistic: best val accuracy over the whole run minus the best val accuracy within the first half of
the run (points); < 0.5 means the second half of the run added less than half a point of validation accuracy.
Budget-doubling gain: test@best-val at budget 2B minus at B (same task and seed, separate cosine runs).

python analyze.py [--tag plateau] -> markdown on stdout
"""
import argparse
import json
from collections import defaultdict

p = argparse.ArgumentParser()
p.add_argument("--tag", default=None)
p.add_argument("--file", default="results/descendant_runs.jsonl")
a = p.parse_args()
rows = [json.loads(l) for l in open(a.file)]
if a.tag:
    rows = [r for r in rows if r["tag"] == a.tag]
# a repeated run (same tag, domain, arm, k, lr, steps, task, seed) keeps its last record
rows = list({(r["tag"], r["domain"], r["arm"], str(r["k"]), r["lr"], r["steps"], r["task"], r["seed"]): r
             for r in rows}.values())


def half_gain(r):
    c = r["curve"]
    half = [pt["val"] for pt in c if pt["step"] <= r["steps"] / 2]
    return 100 * (max(pt["val"] for pt in c) - (max(half) if half else 0.0))


groups = defaultdict(list)
for r in rows:
    groups[(r["domain"], r["arm"], str(r["k"]), r["lr"])].append(r)
print("| domain | arm | k | lr | steps (epochs) | tasks x seeds | test@best-val | best-val step | 2nd-half val gain | doubling gain | train s (this machine, contended) |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for key in sorted(groups, key=lambda k: (k[0], k[1], {"10": 0, "50": 1, "all": 2}.get(k[2], 3), k[3])):
    runs = groups[key]
    by_steps = defaultdict(list)
    for r in runs:
        by_steps[r["steps"]].append(r)
    prev = None
    for steps in sorted(by_steps):
        rs = by_steps[steps]
        acc = 100 * sum(r["test_at_best_val"] for r in rs) / len(rs)
        hg = sum(half_gain(r) for r in rs) / len(rs)
        bstep = sum(r["best_val_step"] / r["steps"] for r in rs) / len(rs)
        gain = ""
        if prev is not None and steps == 2 * prev[0]:
            pairs = {(r["task"], r["seed"]): r for r in prev[1]}
            d = [100 * (r["test_at_best_val"] - pairs[(r["task"], r["seed"])]["test_at_best_val"]) for r in rs
                 if (r["task"], r["seed"]) in pairs]
            if d:
                gain = f"{sum(d) / len(d):+.1f}"
        secs = sum(r["train_seconds"] for r in rs) / len(rs)
        print(f"| {key[0]} | {key[1]} | {key[2]} | {key[3]:g} | {steps} ({rs[0]['epochs']:g}) | {len(rs)} | "
              f"{acc:.1f} | {bstep:.2f} | {hg:+.1f} | {gain} | {secs:.0f} |")
        prev = (steps, rs)
