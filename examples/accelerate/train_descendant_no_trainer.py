"""Train a descendant with a plain training loop on Accelerate (no `Trainer`), like transformers' `*_no_trainer`
examples: a starting point to copy and change. For training as it is, use the installed command
`hf-learngene inherit`, which takes the same flags and also runs under `accelerate launch` / `torchrun`.

The same script runs on one CPU, several GPUs or several nodes; `accelerate launch` chooses the processes and the
precision (configs in examples/accelerate/configs/):

    # one process
    python examples/accelerate/train_descendant_no_trainer.py ./vit-learngene --dataset offline:digits \
        --layout LLRR --output ./descendant

    # two CPU processes (gloo): torchrun through --multi_gpu, and --device cpu
    accelerate launch --multi_gpu --num_processes 2 examples/accelerate/train_descendant_no_trainer.py \
        ./vit-learngene --dataset offline:digits --layout LLRR --output ./descendant --device cpu

    # every GPU of a machine, bf16, resuming from the newest complete checkpoint if there is one
    accelerate launch --config_file examples/accelerate/configs/multi_gpu_ddp.yaml \
        examples/accelerate/train_descendant_no_trainer.py org/vit-learngene --dataset ./my_images \
        --num-new-layers 2 --output ./descendant --checkpointing-steps 500 --resume-from-checkpoint latest

It keeps the best model (by --metric-for-best-model on the held-out images), writes checkpoints atomically (a kill
mid-write leaves no `checkpoint-N`; `--resume-from-checkpoint latest` takes the newest complete one), keeps at most
--checkpoints-total-limit of them, logs to TensorBoard & co. with --report-to, and a resumed run, even mid-epoch, ends
with exactly the weights of an uninterrupted one. The descendant, its image processor, its card (with the learning
curves), `learning_curves.png`, `classification_report.json` and `train_results.json` go to --output.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, set_seed
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup

import hf_learngene  # noqa: F401  (registers the Auto classes)
from hf_learngene.cli import run_folder
from hf_learngene.cli.arguments import HelpFormatter, Parser, add_common_options, batch_size, float_range, int_range
from hf_learngene.cli.common import CLIError, Output, exit_code, one_line, quiet_libraries, resolve_device
from hf_learngene.cli.datasets import card_dataset_name, naming_bad_images, training_splits
from hf_learngene.cli.inherit import add_inherit_arguments, build_descendant, learngene_layout, push_folder
from hf_learngene.data import collate_fn, default_image_processor, prepare_dataset
from hf_learngene.evaluation import classification_report
from hf_learngene.training import (
    LEARNING_CURVES_FILE,
    LEARNING_CURVES_IMAGE,
    SeededAugmentation,
    atomic_checkpoint,
    check_launch,
    check_rng_state,
    check_sharding_device,
    checkpoint_info,
    checkpoint_step,
    drop_inherited_gradients,
    freeze_inherited,
    parameter_groups,
    plot_learning_curves,
    rotate_checkpoints,
)

PROG = "train_descendant_no_trainer.py"
BEST_MODEL = "best-model"
METRICS = ("accuracy", "f1", "precision", "recall", "loss")


def build_parser() -> Parser:
    parser = Parser(prog=PROG, description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter)
    add_common_options(parser)
    add_inherit_arguments(parser)  # the flags of `hf-learngene inherit`, same names, same checks
    loop = parser.add_argument_group("the loop")
    loop.add_argument("--checkpointing-steps", default="epoch", help="'epoch', a number of optimizer steps, or 'no'")
    loop.add_argument("--max-train-steps", type=int_range(1), help="stop after this many optimizer steps")
    loop.add_argument("--max-train-samples", type=int_range(1), help="train on the first N training images only")
    loop.add_argument("--warmup-ratio", type=float_range(0.0, 0.99), default=0.1, help="share of steps warming up")
    loop.add_argument("--max-grad-norm", type=float_range(0.0, 1e6), default=1.0, help="gradient clipping (0: none)")
    loop.add_argument("--eval-batch-size", type=batch_size, default=64, help="images per device per evaluation step")
    loop.add_argument("--num-workers", type=int_range(0, 256), default=0, help="DataLoader worker processes")
    loop.add_argument(
        "--metric-for-best-model",
        choices=(*METRICS, "none"),
        default="accuracy",
        help="the held-out metric that picks the model kept; none keeps the last",
    )
    loop.add_argument("--log-batches", action="store_true", help="write the image indices each process trained on")
    loop.add_argument("--save-rank-weights", action="store_true", help="every process writes its final weights")
    return parser


def parse_args(argv: list[str] | None = None):
    args = build_parser().parse_args(argv)
    steps = args.checkpointing_steps
    if steps not in ("epoch", "no") and not (steps.isdigit() and int(steps) > 0):
        build_parser().error(f"argument --checkpointing-steps: must be 'epoch', 'no' or a number >= 1, got {steps!r}")
    return args


# ---------------------------------------------------------------------------------------------------------------------
# Set-up


def make_accelerator(args, device: str, work: str) -> Accelerator:
    mixed = args.mixed_precision
    if mixed == "auto":
        mixed = os.environ.get("ACCELERATE_MIXED_PRECISION") or (
            "bf16" if device.startswith("cuda") and torch.cuda.is_bf16_supported() else "no"
        )
    accelerator = Accelerator(
        cpu=device == "cpu",
        mixed_precision=mixed,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        log_with=None if args.report_to == "none" else args.report_to,
        project_dir=work,
        # Shuffling from (seed, epoch) rather than the global RNG, so that a resumed run sees the same order.
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
    )
    check_launch(accelerator.num_processes, accelerator.distributed_type, device_hint="--device cpu")
    return accelerator


def make_loaders(args, model, train_raw, eval_raw):
    processor = model.image_processor or default_image_processor(model.config)
    model.image_processor = processor
    if args.max_train_samples is not None:
        train_raw = train_raw.select(range(min(args.max_train_samples, len(train_raw))))
    common = dict(image_processor=processor, num_channels=model.config.num_channels, num_labels=model.config.num_labels)
    train_prepared = prepare_dataset(train_raw, train=True, horizontal_flip=args.horizontal_flip, **common)
    # Each image's augmentation is drawn from (seed, epoch, index): prefetching and skipped batches do not matter.
    train_set = SeededAugmentation(train_prepared, args.seed, with_index=True)
    train_loader = DataLoader(
        train_set, batch_size=args.batch_size, shuffle=True, collate_fn=_collate, num_workers=args.num_workers
    )
    eval_loader = None
    if eval_raw is not None:
        eval_set = prepare_dataset(eval_raw, **common)
        eval_loader = DataLoader(
            eval_set, batch_size=args.eval_batch_size, collate_fn=collate_fn, num_workers=args.num_workers
        )
    return train_raw, train_set, train_loader, eval_loader


def _collate(examples: list[dict]) -> dict[str, torch.Tensor]:
    batch = collate_fn(examples)
    batch["index"] = torch.tensor([e["index"] for e in examples])
    return batch


def make_optimization(args, model, accelerator, train_loader):
    inherited_lr = args.learning_rate if args.inherited_learning_rate is None else args.inherited_learning_rate
    if args.freeze_inherited_steps is None:
        freeze_inherited(model)  # before DDP wraps the model, so that it never expects their gradients
    optimizer = torch.optim.AdamW(
        parameter_groups(model, inherited_lr=inherited_lr, new_lr=args.learning_rate, weight_decay=args.weight_decay)
    )
    # Steps are optimizer updates on each process, after the loader is sharded across processes.
    updates_per_epoch = math.ceil(
        math.ceil(len(train_loader) / accelerator.num_processes) / args.gradient_accumulation_steps
    )
    max_steps = args.max_train_steps or math.ceil(args.epochs * updates_per_epoch)
    # Accelerate steps a prepared scheduler once per process for every optimizer step, so its horizon is scaled.
    scheduler = get_cosine_schedule_with_warmup(
        optimizer,
        math.ceil(args.warmup_ratio * max_steps) * accelerator.num_processes,
        max_steps * accelerator.num_processes,
    )
    return optimizer, scheduler, updates_per_epoch, max_steps, inherited_lr


# ---------------------------------------------------------------------------------------------------------------------
# Evaluation, checkpoints, the best model


def evaluate(model, loader, accelerator, id2label) -> tuple[dict[str, float], dict[str, Any]]:
    model.eval()
    losses, predictions, labels = [], [], []
    with torch.no_grad():
        for batch in loader:
            outputs = model(**batch)
            logits, targets = accelerator.gather_for_metrics((outputs.logits, batch["labels"]))
            losses.append(accelerator.gather_for_metrics(outputs.loss.detach().repeat(len(batch["labels"]))))
            predictions.append(logits.argmax(-1).cpu())
            labels.append(targets.cpu())
    model.train()
    report = classification_report(torch.cat(labels).numpy(), torch.cat(predictions).numpy(), id2label)
    metrics = {
        "eval_loss": float(torch.cat(losses).float().mean()),
        "eval_accuracy": float(report["accuracy"]),
        "eval_f1": report["f1_macro"],
        "eval_precision": report["precision_macro"],
        "eval_recall": report["recall_macro"],
    }
    return metrics, report


class RunState:
    """What a checkpoint records besides Accelerate's state: the step, the curves so far and the best model's."""

    def __init__(self, metric: str):
        self.metric, self.step, self.curves = metric, 0, []
        self.best: dict[str, Any] | None = None  # {"epoch", "value", "metrics", "report"}

    def improves(self, metrics: dict[str, float]) -> bool:
        if self.metric == "none":
            return False
        value = metrics[f"eval_{self.metric}"]
        if self.best is None:
            return True
        return value < self.best["value"] if self.metric == "loss" else value > self.best["value"]

    def info(self) -> dict[str, Any]:
        return {"step": self.step, "curves": self.curves, "best": self.best}

    def restore(self, info: dict[str, Any]) -> None:
        self.step, self.curves, self.best = info["step"], info.get("curves", []), info.get("best")


def save_checkpoint(accelerator, args, work: str, state: RunState) -> None:
    with atomic_checkpoint(
        work, state.step, info=state.info(), main_process=accelerator.is_main_process,
        barrier=accelerator.wait_for_everyone,
    ) as scratch:  # fmt: skip
        accelerator.save_state(scratch)
    if accelerator.is_main_process:
        rotate_checkpoints(work, args.checkpoints_total_limit)


def save_best(accelerator, model, work: str) -> None:
    """The best model so far, written all at once (every process takes part in gathering the weights)."""
    state_dict = accelerator.get_state_dict(model)
    if accelerator.is_main_process:
        scratch = os.path.join(work, f".tmp-{BEST_MODEL}")
        os.makedirs(scratch, exist_ok=True)
        save_file({k: v.detach().cpu().contiguous() for k, v in state_dict.items()}, f"{scratch}/model.safetensors")
        target = os.path.join(work, BEST_MODEL)
        if os.path.isdir(target):
            os.replace(os.path.join(scratch, "model.safetensors"), os.path.join(target, "model.safetensors"))
            os.rmdir(scratch)
        else:
            os.replace(scratch, target)
    accelerator.wait_for_everyone()


def resume(args, accelerator, folder, state: RunState, updates_per_epoch: int) -> tuple[int, int]:
    """Restore a checkpoint; returns (first epoch, batches to skip in it)."""
    if folder.checkpoint is None:
        return 0, 0
    # Accelerate skips a random state it cannot load with a log line and trains on: refuse that instead.
    check_rng_state(folder.checkpoint, accelerator.process_index, accelerator.num_processes, kind="accelerate")
    accelerator.load_state(folder.checkpoint)
    state.restore(checkpoint_info(folder.checkpoint) or {"step": checkpoint_step(folder.checkpoint)})
    epoch = state.step // updates_per_epoch
    print(f"Resumed from {folder.checkpoint} (step {state.step}, epoch {epoch + 1}).")
    return epoch, (state.step % updates_per_epoch) * args.gradient_accumulation_steps


# ---------------------------------------------------------------------------------------------------------------------
# Training


def train_epoch(args, accelerator, model, optimizer, scheduler, loader, state, unwrapped, seen, bar, max_steps):
    losses = []
    for batch in loader:
        indices = batch.pop("index")
        if args.log_batches:
            seen.append(indices.tolist())
        with accelerator.accumulate(model):
            loss = model(**batch).loss
            accelerator.backward(loss)
            if accelerator.sync_gradients:
                if args.freeze_inherited_steps is not None and state.step < args.freeze_inherited_steps:
                    drop_inherited_gradients(unwrapped)
                if args.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
        losses.append(loss.detach())
        if accelerator.sync_gradients:
            state.step += 1
            bar.update(1)
            steps = args.checkpointing_steps
            if steps.isdigit() and state.step % int(steps) == 0:
                save_checkpoint(accelerator, args, run_work(args), state)
            if state.step >= max_steps:
                break
    return accelerator.reduce(torch.stack(losses).mean(), reduction="mean").item() if losses else None


def run_work(args) -> str:
    return os.path.abspath(os.path.expanduser(args.output)) + run_folder.PARTIAL_SUFFIX


def end_epoch(args, accelerator, model, eval_loader, state, epoch, train_loss, id2label, bar) -> None:
    row: dict[str, Any] = {"epoch": epoch + 1, "train_loss": train_loss}
    if eval_loader is not None:
        metrics, report = evaluate(model, eval_loader, accelerator, id2label)
        row.update(metrics)
        if state.improves(metrics):
            state.best = {"epoch": epoch + 1, "value": metrics[f"eval_{state.metric}"], "metrics": metrics}
            state.best["report"] = report
            save_best(accelerator, model, run_work(args))
    state.curves.append(row)
    accelerator.log({k: v for k, v in row.items() if k != "epoch" and v is not None}, step=state.step)
    bar.write(json.dumps(row))


def fit(args, accelerator, parts, state, folder) -> float:
    model, optimizer, scheduler, train_loader, eval_loader, train_set, unwrapped = parts.objects
    start_epoch, skip = resume(args, accelerator, folder, state, parts.updates_per_epoch)
    num_epochs = math.ceil(parts.max_steps / parts.updates_per_epoch)
    bar = tqdm(total=parts.max_steps, initial=state.step, disable=args.quiet or not accelerator.is_local_main_process)
    start = time.perf_counter()
    model.train()
    for epoch in range(start_epoch, num_epochs):
        train_set.set_epoch(epoch)
        loader = accelerator.skip_first_batches(train_loader, skip) if epoch == start_epoch and skip else train_loader
        loader.set_epoch(epoch)  # a loader made by skip_first_batches must be told the epoch too
        train_loss = train_epoch(
            args, accelerator, model, optimizer, scheduler, loader, state, unwrapped, parts.seen, bar, parts.max_steps
        )
        end_epoch(args, accelerator, model, eval_loader, state, epoch, train_loss, parts.id2label, bar)
        if args.checkpointing_steps == "epoch":
            save_checkpoint(accelerator, args, folder.work, state)
        if state.step >= parts.max_steps:
            break
    bar.close()
    return time.perf_counter() - start


class Parts:
    """The prepared objects of a run, and its sizes."""

    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)


def setup(args, accelerator, model, train_raw, eval_raw) -> Parts:
    train_raw, train_set, train_loader, eval_loader = make_loaders(args, model, train_raw, eval_raw)
    optimizer, scheduler, updates_per_epoch, max_steps, inherited_lr = make_optimization(
        args, model, accelerator, train_loader
    )
    unwrapped = model
    prepared = accelerator.prepare(model, optimizer, train_loader, scheduler)
    model, optimizer, train_loader, scheduler = prepared
    if eval_loader is not None:
        eval_loader = accelerator.prepare(eval_loader)
    return Parts(
        objects=(model, optimizer, scheduler, train_loader, eval_loader, train_set, unwrapped),
        train_raw=train_raw, updates_per_epoch=updates_per_epoch, max_steps=max_steps, inherited_lr=inherited_lr,
        id2label=dict(unwrapped.config.id2label), seen=[],
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------------------------------
# The result


def summary(args, accelerator, parts, state, eval_raw, wall_time: float) -> dict[str, Any]:
    kept = state.best or {"epoch": state.curves[-1]["epoch"], "metrics": {}}
    last = state.curves[-1]
    metrics = {**(kept["metrics"] or {k: v for k, v in last.items() if k.startswith("eval_")})}
    metrics["train_loss"] = last["train_loss"]
    return {
        **metrics,
        "steps": state.step,
        "best_epoch": kept["epoch"] if state.best else None,
        "world_size": accelerator.num_processes,
        "mixed_precision": accelerator.mixed_precision,
        "distributed_type": str(accelerator.distributed_type.value),
        "train_wall_time_s": wall_time,
        "num_train": len(parts.train_raw),
        "num_eval": len(eval_raw) if eval_raw is not None else None,
        "learning_curves": state.curves,
        "report": (state.best or {}).get("report"),
    }


def save_model(args, accelerator, model, unwrapped, results, folder, inherited_lr) -> None:
    unwrapped.training_summary = {
        "dataset": card_dataset_name(args.dataset) or args.dataset,
        "num_train": results["num_train"],
        "num_eval": results["num_eval"],
        "setup": {
            "Training loop": "accelerate (examples/accelerate/train_descendant_no_trainer.py)",
            "Processes": accelerator.num_processes,
            "Mixed precision": accelerator.mixed_precision,
            "Batch size (per device x accumulation)": f"{args.batch_size} x {args.gradient_accumulation_steps}",
            "Learning rate (new / inherited)": f"{args.learning_rate:g} / {inherited_lr:g}",
            "Model kept": f"best {args.metric_for_best_model} (epoch {results['best_epoch']})"
            if results["best_epoch"]
            else "last epoch",
            "Seed": args.seed,
        },
        "metrics": {k: v for k, v in results.items() if k.startswith(("eval_", "train_loss"))},
        "learning_curves": results["learning_curves"],
    }
    state_dict = accelerator.get_state_dict(model)
    best = os.path.join(folder.work, BEST_MODEL, "model.safetensors")
    if results["best_epoch"] and os.path.isfile(best):
        state_dict = load_file(best)
    if accelerator.is_main_process:
        _write_outputs(unwrapped, state_dict, results, folder.work)
    accelerator.wait_for_everyone()


def _write_outputs(unwrapped, state_dict, results, work: str) -> None:
    if results["learning_curves"]:
        plot_learning_curves(results["learning_curves"], os.path.join(work, LEARNING_CURVES_IMAGE))
    unwrapped.save_pretrained(work, state_dict=state_dict)
    with open(os.path.join(work, LEARNING_CURVES_FILE), "w", encoding="utf-8") as f:
        json.dump(results["learning_curves"], f, indent=2)
    if results["report"] is not None:
        with open(os.path.join(work, "classification_report.json"), "w", encoding="utf-8") as f:
            json.dump(results["report"], f, indent=2)
    with open(os.path.join(work, "train_results.json"), "w", encoding="utf-8") as f:
        json.dump({k: v for k, v in results.items() if k != "report"}, f, indent=2)


def write_debug_files(args, accelerator, unwrapped, seen, work: str) -> None:
    rank = accelerator.process_index
    if args.log_batches:
        with open(os.path.join(work, f"batches_rank{rank}.json"), "w") as f:
            json.dump(seen, f)
    if args.save_rank_weights:
        state = {k: v.detach().cpu().contiguous() for k, v in unwrapped.state_dict().items()}
        save_file(state, os.path.join(work, f"weights_rank{rank}.safetensors"))
    accelerator.wait_for_everyone()


def train(args) -> dict[str, Any]:
    learngene, layout = learngene_layout(args)
    device = resolve_device(args.device)
    check_sharding_device(device)
    folder = run_folder.prepare(args.output, args.overwrite, args.resume_from_checkpoint, print)
    accelerator = make_accelerator(args, device, folder.work)
    set_seed(args.seed)
    train_raw, eval_raw = training_splits(args, lambda note: print(f"note: {note}"))
    model = build_descendant(args, learngene, layout, train_raw)
    parts = setup(args, accelerator, model, train_raw, eval_raw)
    state = RunState(args.metric_for_best_model if eval_raw is not None else "none")
    if args.report_to != "none":
        accelerator.init_trackers("runs", config={"learning_rate": args.learning_rate, "seed": args.seed})
    try:
        with naming_bad_images(train_raw, eval_raw):
            wall_time = fit(args, accelerator, parts, state, folder)
        results = summary(args, accelerator, parts, state, eval_raw, wall_time)
        unwrapped = parts.objects[-1]
        write_debug_files(args, accelerator, unwrapped, parts.seen, folder.work)
        save_model(args, accelerator, parts.objects[0], unwrapped, results, folder, parts.inherited_lr)
    except BaseException:
        hint = run_folder.abandon(folder)
        if hint:
            print(f"{PROG}: {hint}", file=sys.stderr)
        raise
    if accelerator.is_main_process:
        for leftover in (BEST_MODEL, f".tmp-{BEST_MODEL}"):
            _remove(os.path.join(folder.work, leftover))
    run_folder.finish(folder, args.keep_checkpoints)
    accelerator.wait_for_everyone()
    if args.push_to_hub and accelerator.is_main_process:
        results["hub_url"] = push_folder(unwrapped, folder.output, args.push_to_hub)
        print(f"Pushed to {results['hub_url']}")
    accelerator.end_training()  # last: it also ends the process group
    print(json.dumps({k: v for k, v in results.items() if k not in ("learning_curves", "report")}))
    return results


def _remove(path: str) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    secondary = int(os.environ.get("RANK", "0")) != 0
    out = Output(PROG, args.quiet or secondary, None if secondary else args.json)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        with quiet_libraries(args.quiet), out.capture():
            results = train(args)
        out.result(results)
        return 0
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - one line, no traceback, unless --verbose
        if args.verbose:
            import traceback

            traceback.print_exc()
        print(f"{PROG}: error: {one_line(error)}", file=sys.stderr)
        return exit_code(error)


__all__ = ["CLIError", "build_parser", "main", "parse_args"]

if __name__ == "__main__":
    sys.exit(main())
