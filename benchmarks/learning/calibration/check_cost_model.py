"""Q4 cross-check: measured CPU-seconds of complete calibration runs (single thread, results/descendant_runs.jsonl)
against the budget model of budget.py (steps x batch / 380 + evals x 750 / 1050 + 1). -> stdout"""
import json

ratios = []
for line in open("results/descendant_runs.jsonl"):
    r = json.loads(line)
    if "cpu_seconds" not in r or r["arm"] in ("scratch_half", "whole", "oneliner"):
        continue
    pred = r["steps"] * r["batch"] / 380 + len(r["curve"]) * 750 / 1050 + 1
    ratios.append(r["cpu_seconds"] / pred)
ratios.sort()
print(f"{len(ratios)} runs: measured / model CPU-seconds min {ratios[0]:.2f}, median {ratios[len(ratios) // 2]:.2f}, "
      f"max {ratios[-1]:.2f}")
