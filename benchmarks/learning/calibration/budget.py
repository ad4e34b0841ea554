"""Q4: the v2 run budget from measured per-run costs.

Cost model (measured on this machine, see PROTOCOL.md):
- single-thread training / evaluation throughput per CPU-second (results/throughput_arms.jsonl, median of
  process-time bursts, which a shared machine inflates far less than wall time);
- the runner uses WORKERS single-threaded worker processes (one run each), so wall = sum of run CPU-seconds /
  WORKERS. Cross-check: 2 x 380 img/s = 760 img/s matches the one uncontended 2-thread wall measurement
  (HF 6x128 at 672 img/s, scaled by the descendant's 13% fewer FLOPs = 773 img/s).
- per run: steps x batch / train rate + evals x 750 images / eval rate + 1 s (build, slicing).

python budget.py [--plan cpu2h|full] -> markdown table on stdout
"""
import argparse

p = argparse.ArgumentParser()
p.add_argument("--plan", default="cpu2h")
p.add_argument("--workers", type=int, default=2)
a = p.parse_args()

# img per CPU-second, 1 thread (results/throughput_arms.jsonl, batch 64; eval on 750 images)
TRAIN = {"w128x6": 380.0, "hf6": 335.0, "w128x12": 200.0, "w64x6": 1080.0}
EVAL = {"w128x6": 1050.0, "hf6": 900.0, "w128x12": 520.0, "w64x6": 3300.0}
# budgets (steps, batch) per k: scratch = measured plateau; inherit = measured plateau of first-6 / first-3
import os
ALL_ANIMALS = int(os.environ.get("ALL_ANIMALS", "1600"))  # scratch's k=all plateau on the animal domain
SCRATCH = {"10": (200, 50), "50": (400, 64), "all": (800, 64), "all@animals": (ALL_ANIMALS, 64)}
INHERIT = {"10": (100, 50), "50": (200, 64), "all": (800, 64), "all@animals": (ALL_ANIMALS, 64)}
N_EVALS, EVAL_IMGS, OVERHEAD = 8, 750, 1.0


def run_cpu(model, k, budget, domain="mnist"):
    steps, batch = budget.get(f"{k}@{domain}", budget[k])
    return steps * batch / TRAIN[model] + N_EVALS * EVAL_IMGS / EVAL[model] + OVERHEAD


ALLK, LOWK, D2, D1 = ("10", "50", "all"), ("10", "50"), ("mnist", "animals"), ("mnist",)
# arm -> (model, budget, k values, domains, issue)
FULL = {
    "scratch": ("w128x6", SCRATCH, ALLK, D2, "14"),
    "first6 (= one-liner)": ("w128x6", INHERIT, ALLK, D2, "14"),
    "one-liner, HF class (equality check)": ("hf6", INHERIT, ("10",), D1, "14"),
    "first3+3R": ("w128x6", INHERIT, ALLK, D2, "14"),
    "auto6": ("w128x6", INHERIT, ALLK, D2, "14"),
    "auto3+3R": ("w128x6", INHERIT, ALLK, D2, "14"),
    "cka6": ("w128x6", INHERIT, ALLK, D2, "14"),
    "cka3+3R": ("w128x6", INHERIT, ALLK, D2, "14"),
    "whole ancestor (12)": ("w128x12", INHERIT, ALLK, D2, "14"),
    "block influence 6": ("w128x6", INHERIT, ALLK, D2, "16"),
    "block influence 3+3R": ("w128x6", INHERIT, ALLK, D2, "16"),
    "angular distance 6": ("w128x6", INHERIT, ALLK, D2, "16"),
    "search 6": ("w128x6", INHERIT, ALLK, D2, "16"),
    "scratch half-width": ("w64x6", SCRATCH, ALLK, D2, "15"),
    "half-width uniform": ("w64x6", INHERIT, ALLK, D2, "15"),
    "half-width heads": ("w64x6", INHERIT, ALLK, D2, "15"),
    "half-width data-driven": ("w64x6", INHERIT, ALLK, D2, "15"),
    "3->6 identity": ("w128x6", INHERIT, ALLK, D2, "15"),
    "3->6 copy": ("w128x6", INHERIT, ALLK, D2, "15"),
    "3->6 linear": ("w128x6", INHERIT, ALLK, D2, "15"),
}
PAIRS = 6  # 3 tasks x 2 seeds per domain
GRID_LRS = 2  # 3e-4 and 3e-3 beside the main 1e-3 (1e-4 measured useless in v1)
GRID_PAIRS = PAIRS
if a.plan == "full":
    ARMS, GRID = FULL, {"scratch": ("w128x6", SCRATCH), "first6": ("w128x6", INHERIT),
                        "first3+3R": ("w128x6", INHERIT), "auto6": ("w128x6", INHERIT), "cka6": ("w128x6", INHERIT)}
    GRID_K, GRID_D = ("10", "50"), D2
else:  # cpu2h: what fits two hours on 2 cores; each issue keeps the cells its targets name
    ARMS = {
        "scratch": ("w128x6", SCRATCH, ALLK, D2, "14"),
        "first6 (= one-liner)": ("w128x6", INHERIT, ALLK, D2, "14"),
        "one-liner, HF class (equality check)": ("hf6", INHERIT, ("10",), D1, "14"),
        "first3+3R": ("w128x6", INHERIT, LOWK, D2, "14"),
        "auto6": ("w128x6", INHERIT, LOWK, D1, "14"),
        "auto3+3R": ("w128x6", INHERIT, ("10",), D2, "14"),
        "cka6": ("w128x6", INHERIT, LOWK, D1, "14"),
        "cka3+3R": ("w128x6", INHERIT, ("10",), D1, "14"),
        "whole ancestor (12)": ("w128x12", INHERIT, ("10",), D1, "14"),
        "issue-16 selector, slot 1 (best of the screening)": ("w128x6", INHERIT, ALLK, D1, "16"),
        "  slot 1 on animals": ("w128x6", INHERIT, LOWK, ("animals",), "16"),
        "issue-16 selector, slot 2": ("w128x6", INHERIT, ("10",), D2, "16"),
        "scratch half-width": ("w64x6", SCRATCH, LOWK, D1, "15"),
        "half-width uniform": ("w64x6", INHERIT, LOWK, D1, "15"),
        "half-width heads": ("w64x6", INHERIT, LOWK, D1, "15"),
        "half-width data-driven": ("w64x6", INHERIT, LOWK, D1, "15"),
        "3->6 identity": ("w128x6", INHERIT, ("10",), D1, "15"),
        "3->6 copy": ("w128x6", INHERIT, ("10",), D1, "15"),
        "3->6 linear": ("w128x6", INHERIT, ("10",), D1, "15"),
    }
    GRID = {"scratch": ("w128x6", SCRATCH), "first6": ("w128x6", INHERIT)}
    GRID_K, GRID_D = ("10",), D1
    GRID_PAIRS = 3  # 3 tasks x 1 seed: the spread is measured per task
FIXED_CPU = {  # CPU-seconds (single thread) unless noted; these run before the workers start
    "ancestor: 12x128 p7, 3 epochs x 36,000 images (2 threads, 378 img/s measured)": 2 * (3 * 36000 / 378 + 6000 / 1000),
    "condense cka, once (19 CPU-s measured; 3- and 6-layer picks from one score vector)": 19.1,
    "condense auto, once (205 CPU-s measured)": 205.3,
    "issue-16 selectors, 4 x <= 60 s (their target)": 240.0,
    "selector screening (4 arms x k=10,50 x 1 MNIST task x 1 seed)": 0.0,
    "data loading, learngene saves": 30.0,
}
if a.plan == "cpu2h":
    FIXED_CPU["selector screening (4 arms x k=10,50 x 1 MNIST task x 1 seed)"] = 4 * (
        run_cpu("w128x6", "10", INHERIT) + run_cpu("w128x6", "50", INHERIT))
total_cpu = 0.0
print(f"Plan `{a.plan}`, {a.workers} single-thread workers; budgets (steps x batch): scratch {SCRATCH}, inheriting {INHERIT}; "
      f"{N_EVALS} evaluations of {EVAL_IMGS} images per run; {PAIRS} task-seed pairs per domain.\n")
print("| arm | issue | k | domains | runs | CPU-s per run (k=10 / 50 / all) | CPU-s |")
print("| --- | --- | --- | --- | --- | --- | --- |")
nruns = 0
for name, (model, budget, ks, doms, issue) in ARMS.items():
    per = {k: run_cpu(model, k, budget) for k in ks}
    runs = len(ks) * len(doms) * PAIRS
    cpu = sum(run_cpu(model, k, budget, d) for k in ks for d in doms) * PAIRS
    total_cpu += cpu
    nruns += runs
    s = " / ".join(f"{per[k]:.0f}" if k in per else "-" for k in ALLK)
    if "all" in ks and "animals" in doms:
        s += f" (animals all: {run_cpu(model, 'all', budget, 'animals'):.0f})"
    print(f"| {name} | {issue} | {','.join(ks)} | {'+'.join(doms)} | {runs} | {s} | {cpu:.0f} |")
grid_runs = len(GRID) * GRID_LRS * len(GRID_K) * len(GRID_D) * GRID_PAIRS
grid = sum(run_cpu(m, k, b) for m, b in GRID.values() for k in GRID_K) * GRID_LRS * len(GRID_D) * GRID_PAIRS
print(f"| lr grid: {', '.join(GRID)} at lr 3e-4, 3e-3; k={','.join(GRID_K)}; {GRID_PAIRS} pairs | 14 | {','.join(GRID_K)} | {'+'.join(GRID_D)} | {grid_runs} | | {grid:.0f} |")
total_cpu += grid
nruns += grid_runs
runs_wall = total_cpu / a.workers
fixed = sum(FIXED_CPU.values())
for name, secs in FIXED_CPU.items():
    if secs:
        print(f"| {name} | | | | | | {secs:.0f} |")
fixed_wall = FIXED_CPU[next(iter(FIXED_CPU))] / 2 + (fixed - FIXED_CPU[next(iter(FIXED_CPU))]) / a.workers
print(f"\n{nruns} descendant runs: {total_cpu:.0f} CPU-s = {runs_wall / 60:.0f} min on {a.workers} workers; "
      f"ancestor + condensing + selectors: {fixed_wall / 60:.0f} min. **Total {(runs_wall + fixed_wall) / 60:.0f} min.**")
