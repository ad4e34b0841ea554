"""Learning-efficiency benchmark: the paper's four claims (faster convergence, lower hyperparameter sensitivity, better
performance, fewer samples), measured for every condensing method against scratch and the whole ancestor.

    python scripts/bench_learning.py                 # the full CPU protocol -> benchmarks/results/learning.*
    python scripts/bench_learning.py --quick         # a smoke run (about a minute)
    python scripts/bench_learning.py --report-only   # re-summarize an existing results file
    python scripts/bench_learning.py --ancestor google/vit-base-patch16-224 --task-dataset ./my_images ...

Resumable: runs already in the results file are skipped. The logic lives in `hf_learngene.benchmarking`.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

from hf_learngene.benchmarking import (
    ALL,
    BenchmarkConfig,
    config_for_ancestor,
    dataset_to_tensors,
    run_benchmark,
    write_report,
)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUTPUT = os.path.join(REPO_ROOT, "benchmarks", "results", "learning.jsonl")


def _k_shot(value: str) -> int | str:
    return ALL if value == ALL else int(value)


def _csv(cast):
    def parse(text: str):
        return tuple(cast(v) for v in text.split(",") if v)

    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny smoke protocol (about a minute on a CPU)")
    parser.add_argument("--output", help="results JSONL (default: benchmarks/results/learning.jsonl; --quick: cache)")
    parser.add_argument("--cache-dir", help="where the ancestor and learngenes are cached (~/.cache/hf_learngene)")
    parser.add_argument("--device", default="cpu", help="torch device for training, e.g. cpu, cuda, cuda:1")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--report-only", action="store_true", help="only summarize the results file")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--max-runs", type=int, help="stop after this many new runs (resume later)")
    parser.add_argument("--ancestor", help="bring your own ancestor ViT (Hub id or folder) instead of training one")
    parser.add_argument("--task-dataset", help="descendant tasks from this dataset (folder or Hub name) not MNIST")
    parser.add_argument("--task-split", default="train", help="split of --task-dataset (default: train)")
    parser.add_argument("--condense-dataset", help="condensing set (folder or Hub name) instead of Fashion-MNIST 6-9")
    parser.add_argument("--methods", type=_csv(str), help="condensing methods, comma-separated")
    parser.add_argument("--placements", type=_csv(str), help="top,interleaved")
    parser.add_argument("--k-shots", type=_csv(_k_shot), help="training images per class, e.g. 10,50,all")
    parser.add_argument("--grid-k-shots", type=_csv(_k_shot), help="k values that also run the lr grid")
    parser.add_argument("--num-tasks", type=int)
    parser.add_argument("--seeds", type=_csv(int), help="e.g. 0,1")
    parser.add_argument("--ways", type=int)
    parser.add_argument("--test-per-class", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--steps-per-epoch", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float, help="peak learning rate of the main runs")
    parser.add_argument("--lr-grid", type=_csv(float), help="learning rates of the sensitivity runs")
    parser.add_argument("--ancestor-layers", type=int)
    parser.add_argument("--hidden-size", type=int)
    parser.add_argument("--ancestor-epochs", type=int)
    parser.add_argument("--ancestor-max-per-class", type=int)
    parser.add_argument("--condense-per-class", type=int)
    return parser.parse_args(argv)


_CONFIG_FIELDS = (
    "methods placements k_shots grid_k_shots num_tasks seeds ways test_per_class epochs steps_per_epoch batch_size lr "
    "lr_grid ancestor_layers hidden_size ancestor_epochs ancestor_max_per_class condense_per_class"
).split()


def build_config(args: argparse.Namespace) -> BenchmarkConfig:
    overrides = {name: getattr(args, name) for name in _CONFIG_FIELDS if getattr(args, name) is not None}
    if args.quick:
        return BenchmarkConfig.quick(**overrides)
    return BenchmarkConfig(**overrides)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    config = build_config(args)
    if args.ancestor:
        config = config_for_ancestor(config, args.ancestor)
    cache_dir = args.cache_dir
    output = args.output
    if output is None:
        if args.quick:
            root = cache_dir or os.path.join(os.path.expanduser("~"), ".cache", "hf_learngene", "benchmark")
            output = os.path.join(root, "quick", "learning.jsonl")
        else:
            output = DEFAULT_OUTPUT
    if not args.report_only:
        data = {}
        if args.task_dataset or args.condense_dataset:
            from hf_learngene.data import load_image_dataset

            if args.task_dataset:
                data["task_data"] = dataset_to_tensors(
                    load_image_dataset(args.task_dataset, split=args.task_split),
                    image_size=config.image_size,
                    num_channels=config.num_channels,
                )
            if args.condense_dataset:
                data["condense_dataset"] = load_image_dataset(args.condense_dataset, split="train")
        try:
            run_benchmark(
                config,
                output,
                cache_dir=cache_dir,
                device=args.device,
                ancestor=args.ancestor,
                data=data,
                progress=not args.no_progress,
                max_runs=args.max_runs,
            )
        except (FileNotFoundError, ImportError, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    report = write_report(output)
    print(f"Results: {output}\nReport:  {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
