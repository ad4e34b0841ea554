"""Train the same descendant on scikit-learn digits (upscaled) three ways and print accuracy and wall time.

1. `hf_learngene.training.train_descendant` (the helper, on the Trainer);
2. the plain `transformers.Trainer` with `LearngeneTrainer`, `parameter_groups` and `prepare_dataset` by hand;
3. `examples/accelerate/train_descendant_no_trainer.py` under `accelerate launch` with N CPU processes (gloo).

All three start from the same learngene (condensed from a tiny, randomly initialised ancestry ViT: there is no
pretrained checkpoint offline, so this measures the training paths, not the value of inheritance), use the same
layout, epochs, batch size (per step, across processes), learning rate and held-out split.

    python benchmarks/speed/bench_training_ways.py --epochs 5 --processes 2 [--image_size 32]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import TrainingArguments, ViTConfig, ViTModel

from hf_learngene import DescendantForImageClassification, condense
from hf_learngene.data import collate_fn, default_image_processor, load_digits_dataset, prepare_dataset
from hf_learngene.training import LearngeneTrainer, make_compute_metrics, parameter_groups, train_descendant

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "accelerate" / "train_descendant_no_trainer.py"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--image_size", type=int, default=16, help="digits (8x8) are upscaled to this")
    parser.add_argument("--patch_size", type=int, default=8)
    parser.add_argument("--hidden_size", type=int, default=64)
    parser.add_argument("--batch_size", type=int, default=32, help="images per optimizer step, all processes")
    parser.add_argument("--learning_rate", type=float, default=3e-3)
    parser.add_argument("--processes", type=int, default=2, help="CPU processes for accelerate launch")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--seed", type=int, default=42)
    return parser.parse_args()


def make_learngene(args, folder: Path) -> Path:
    torch.manual_seed(0)
    ancestor = ViTModel(
        ViTConfig(
            hidden_size=args.hidden_size,
            num_hidden_layers=6,
            num_attention_heads=4,
            intermediate_size=2 * args.hidden_size,
            image_size=args.image_size,
            patch_size=args.patch_size,
        ),
        add_pooling_layer=False,
    )
    learngene = condense(ancestor, method="heuristic", num_layers=2)
    learngene.image_processor = default_image_processor(learngene.config)
    learngene.save_pretrained(folder)
    return folder


def descendant(learngene: Path, digits) -> DescendantForImageClassification:
    torch.manual_seed(1)
    names = digits["train"].features["label"].names
    return DescendantForImageClassification.from_pretrained(
        learngene, num_labels=len(names), id2label=dict(enumerate(names)), layout="LLRR"
    )


def way_helper(args, learngene, digits, out: Path) -> dict:
    start = time.perf_counter()
    result = train_descendant(
        descendant(learngene, digits), digits["train"], digits["test"], output_dir=out,
        num_train_epochs=args.epochs, learning_rate=args.learning_rate, per_device_train_batch_size=args.batch_size,
        seed=args.seed, horizontal_flip=False, disable_tqdm=True, save_total_limit=1,
    )  # fmt: skip
    return {
        "accuracy": result.metrics["eval_accuracy"],
        "f1": result.metrics["eval_f1"],
        "train_s": result.metrics["train_runtime"],
        "total_s": time.perf_counter() - start,
    }


def way_trainer(args, learngene, digits, out: Path) -> dict:
    start = time.perf_counter()
    model = descendant(learngene, digits)
    processor = model.image_processor
    train = prepare_dataset(digits["train"], processor, train=True, horizontal_flip=False, num_labels=10)
    test = prepare_dataset(digits["test"], processor, num_labels=10)
    training_args = TrainingArguments(
        out,
        num_train_epochs=args.epochs,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=0.1,
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=1,
        load_best_model_at_end=True,
        metric_for_best_model="accuracy",
        remove_unused_columns=False,
        seed=args.seed,
        report_to="none",
        disable_tqdm=True,
        dataloader_pin_memory=False,
    )
    optimizer = torch.optim.AdamW(parameter_groups(model, inherited_lr=args.learning_rate, new_lr=args.learning_rate))
    trainer = LearngeneTrainer(
        model=model, args=training_args, train_dataset=train, eval_dataset=test, data_collator=collate_fn,
        processing_class=processor, compute_metrics=make_compute_metrics(), optimizers=(optimizer, None),
    )  # fmt: skip
    train_metrics = trainer.train().metrics
    metrics = trainer.evaluate()
    return {
        "accuracy": metrics["eval_accuracy"],
        "f1": metrics["eval_f1"],
        "train_s": train_metrics["train_runtime"],
        "total_s": time.perf_counter() - start,
    }


def way_accelerate(args, learngene, out: Path) -> dict:
    per_device = args.batch_size // args.processes
    command = [
        str(Path(sys.executable).with_name("accelerate")), "launch", "--multi_gpu", "--num_processes",
        str(args.processes), "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        str(SCRIPT), str(learngene), "--device", "cpu", "--dataset", "offline:digits", "--seed", "0",
        "--layout", "LLRR", "--epochs", str(args.epochs), "--learning-rate", str(args.learning_rate),
        "--batch-size", str(per_device), "--no-horizontal-flip", "--output", str(out), "--checkpointing-steps", "no",
        "--metric-for-best-model", "none",
    ]  # fmt: skip
    if args.processes == 1:
        command = [sys.executable, str(SCRIPT), *command[command.index(str(SCRIPT)) + 1 :]]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    total = time.perf_counter() - start
    results = json.loads((out / "train_results.json").read_text())
    return {
        "accuracy": results["eval_accuracy"],
        "f1": results["eval_f1"],
        "train_s": results["train_wall_time_s"],
        "total_s": total,
    }


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    digits = load_digits_dataset().train_test_split(test_size=0.2, stratify_by_column="label", seed=0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        learngene = make_learngene(args, tmp / "learngene")
        rows.append(("train_descendant (Trainer)", 1, way_helper(args, learngene, digits, tmp / "helper")))
        rows.append(("Trainer + LearngeneTrainer", 1, way_trainer(args, learngene, digits, tmp / "trainer")))
        rows.append(
            (
                f"accelerate launch ({args.processes} CPU procs)",
                args.processes,
                way_accelerate(args, learngene, tmp / "acc"),
            )
        )
    print(
        f"\ndigits {args.image_size}x{args.image_size} (patch {args.patch_size}, hidden {args.hidden_size}, layout "
        f"LLRR), {args.epochs} epochs, batch {args.batch_size}, lr {args.learning_rate}, {args.threads} torch "
        f"thread(s)/process, 1,437 train / 360 held-out images\n"
    )
    print("| Way | Processes | Held-out accuracy | Macro-F1 | Train wall time (s) | Total wall time (s) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, processes, r in rows:
        print(
            f"| {name} | {processes} | {r['accuracy']:.3f} | {r['f1']:.3f} | {r['train_s']:.1f} | {r['total_s']:.1f} |"
        )


if __name__ == "__main__":
    main()
