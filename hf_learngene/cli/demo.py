"""`hf-learngene demo`: the whole paradigm offline on real data."""

from __future__ import annotations

import os
import time
from typing import Any

from .arguments import DEVICE_HELP, seed
from .common import CLIError, Output, one_line, resolve_device

EPILOG = """\
The demo runs the whole paradigm offline on real data: it trains a small ViT ancestor on Fashion-MNIST classes 0-5
(cached, so the next run skips it), condenses a learngene with the default method (first-k, the best measured on
the learning benchmark v2) and, for comparison, the heuristic (last k) and the paper's "auto" (on Fashion-MNIST
classes 6-9) learngenes, then trains descendants for a 5-way MNIST task from each and from scratch (same
architecture, data, budget and seed). It writes a table, learning_curves.png, report.md,
results.json, the learngenes and the descendant into the output folder.

examples:
  hf-learngene demo                      # writes a fresh ./demo-output/run-YYYYmmdd-HHMMSS/
  hf-learngene demo --output /tmp/demo --overwrite --device cuda
  hf-learngene demo --quick              # a tiny run in seconds, to check the set-up
"""


def add_parser(commands, parents, formatter) -> None:
    p = commands.add_parser(
        "demo",
        parents=parents,
        help="the whole paradigm offline on real data (Fashion-MNIST -> learngene -> MNIST)",
        description="Accumulate, condense and inherit, offline, and compare against training from scratch.",
        epilog=EPILOG,
        formatter_class=formatter,
    )
    p.add_argument(
        "--output",
        help="output folder (refused if not empty unless --overwrite); default: a fresh ./demo-output/run-<time>/",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a previous demo output in --output")
    p.add_argument("--quick", action="store_true", help="a tiny run (seconds) to check the set-up; numbers mean little")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--seed", type=seed, default=0, help="seed of data sampling and every model")
    p.add_argument(
        "--cache-dir",
        help="where the trained ancestor is cached (default $HF_LEARNGENE_CACHE, else $HF_HOME/hf_learngene)",
    )
    p.set_defaults(func=run)


def run(args, out: Output) -> dict[str, Any]:
    from ..demo import DEFAULT_OUTPUT, check_demo_output, run_demo

    device = resolve_device(args.device)
    # Without --output every run gets its own folder, so `make demo` can run again and earlier results stay.
    default = os.path.join(DEFAULT_OUTPUT, time.strftime("run-%Y%m%d-%H%M%S"))
    try:
        output = check_demo_output(args.output or default, args.overwrite)
    except (FileExistsError, ValueError) as error:
        raise CLIError(one_line(error)) from None
    threads = 1 if args.threads is None else args.threads
    demo = run_demo(
        output, overwrite=args.overwrite, device=device, quick=args.quick, seed=args.seed,
        cache_dir=args.cache_dir, threads=threads,
    )  # fmt: skip
    return {"output": demo.output_dir, "table": demo.table, "timings": demo.timings, "files": demo.files}
