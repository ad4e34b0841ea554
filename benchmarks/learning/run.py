"""Learning benchmark v2 (issue 14; protocol in PROTOCOL.md).

    python benchmarks/learning/run.py --plan cpu2h            # ~2 h on 2 CPU cores, resumable
    python benchmarks/learning/run.py --quick                 # the whole pipeline on a tiny ancestor, < 1 min
    python benchmarks/learning/run.py --report-only           # re-write the report from the results

Results: results/learning_v2/{runs,condensing}.jsonl, plan.json, ancestor.json, learning_v2.md, README_table.md, plots.
"""

from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from learning_v2.plan import PLANS, estimate_cpu_seconds  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plan", choices=sorted(PLANS), default=None, help="which runs (default: cpu2h)")
    parser.add_argument("--quick", action="store_true", help="same as --plan quick, into a temporary-style folder")
    parser.add_argument("--workers", type=int, default=2, help="single-threaded worker processes (default: 2)")
    parser.add_argument("--output", default=None, help="results folder (default: results/learning_v2[_quick])")
    parser.add_argument("--cache", default=os.path.join(HERE, "_cache"), help="ancestors, learngenes, data")
    parser.add_argument("--report-only", action="store_true", help="only re-write the report")
    parser.add_argument("--dry-run", action="store_true", help="print the plan's size and cost estimate")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be >= 1")
    if args.quick and args.plan not in (None, "quick"):
        parser.error(f"--quick is the quick plan; it cannot be combined with --plan {args.plan} (drop one of them)")
    plan = PLANS["quick" if args.quick else args.plan or "cpu2h"]
    output = args.output or os.path.join(HERE, "results", "learning_v2" + ("_quick" if plan.name == "quick" else ""))
    if args.dry_run:
        cpu = estimate_cpu_seconds(plan)
        print(
            f"plan {plan.name}: {len(plan.runs())} runs, ~{cpu / 60:.0f} CPU-min of descendant training "
            f"(~{cpu / 60 / args.workers:.0f} min on {args.workers} workers at the calibrated speed)"
        )
        return 0
    from learning_v2.report import write_report
    from learning_v2.runner import run_plan

    if not args.report_only:
        outcome = run_plan(plan, output=output, cache=args.cache, workers=args.workers)
        print(f"ran {outcome['ran']}, shared {outcome['shared']}, failed {len(outcome['failed'])}")
        if outcome["failed"]:
            print("failed:\n  " + "\n  ".join(outcome["failed"]), file=sys.stderr)
    print(write_report(output))
    return 1 if not args.report_only and outcome["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
