"""Train a descendant with a plain training loop on Accelerate (not the Trainer).

The same script runs on one CPU, several GPUs or several nodes, with bf16/fp16, gradient accumulation, checkpointing
and resuming; `accelerate launch` chooses the processes and precision:

    # one process (CPU or one GPU)
    python examples/accelerate/train_descendant_no_trainer.py --learngene ./vit-learngene --dataset digits \
        --output_dir ./descendant

    # two CPU processes (gloo). accelerate 1.x starts ONE process for `--cpu --num_processes 2` (its simple
    # launcher; multi-CPU otherwise needs mpirun): go through torchrun with --multi_gpu and force the CPU.
    ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 \
        examples/accelerate/train_descendant_no_trainer.py \
        --learngene ./vit-learngene --dataset digits --output_dir ./descendant

    # all GPUs of a machine, bf16, resuming from the last checkpoint
    accelerate launch --multi_gpu --mixed_precision bf16 examples/accelerate/train_descendant_no_trainer.py \
        --learngene org/vit-learngene \
        --dataset ./my_images --num_new_layers 2 --output_dir ./descendant --resume_from_checkpoint latest

`--dataset` is `digits`, `mnist` or `fashion_mnist` (offline sets bundled by registry packages), a Hub dataset name
or a local `imagefolder`. The descendant, its image processor and its card (with the learning curve) are written to
`--output_dir`; `train_results.json` holds the metrics, wall time and throughput.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import time

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, set_seed
from safetensors.torch import save_file
from torch.utils.data import DataLoader, Dataset
from transformers import get_cosine_schedule_with_warmup

import hf_learngene  # noqa: F401  (registers the Auto classes)
from hf_learngene import DescendantForImageClassification
from hf_learngene.data import (
    collate_fn,
    default_image_processor,
    find_columns,
    label_maps,
    load_digits_dataset,
    load_fashion_mnist,
    load_image_dataset,
    load_mnist,
    prepare_dataset,
)
from hf_learngene.training import drop_inherited_gradients, parameter_groups

BUILTIN_DATASETS = {"digits": load_digits_dataset, "mnist": load_mnist, "fashion_mnist": load_fashion_mnist}
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learngene", required=True, help="Learngene (or descendant) folder or Hub id.")
    parser.add_argument("--revision", default=None, help="Revision of a Hub learngene.")
    parser.add_argument("--dataset", required=True, help="digits | mnist | fashion_mnist | Hub name | image folder.")
    parser.add_argument("--train_split", default="train")
    parser.add_argument("--eval_split", default=None, help="Held-out split; default: 'test'/'validation' or a cut.")
    parser.add_argument("--test_size", type=float, default=0.2, help="Held-out fraction when there is no eval split.")
    parser.add_argument("--max_train_samples", type=int, default=None)
    parser.add_argument("--image_column", default=None)
    parser.add_argument("--label_column", default=None)
    parser.add_argument("--layout", default=None, help="e.g. LLRRLL (L = inherited, R = new layer).")
    parser.add_argument("--num_new_layers", type=int, default=None)
    parser.add_argument("--new_layer_init", default=None, choices=["trunc_normal", "mimetic"])
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--num_train_epochs", type=int, default=3)
    parser.add_argument("--max_train_steps", type=int, default=None, help="Overrides --num_train_epochs.")
    parser.add_argument("--per_device_train_batch_size", type=int, default=32)
    parser.add_argument("--per_device_eval_batch_size", type=int, default=64)
    parser.add_argument("--gradient_accumulation_steps", type=int, default=1)
    parser.add_argument("--learning_rate", type=float, default=5e-4, help="Learning rate of the new parameters.")
    parser.add_argument("--inherited_learning_rate", type=float, default=None, help="Default: --learning_rate.")
    parser.add_argument("--weight_decay", type=float, default=0.05)
    parser.add_argument("--warmup_ratio", type=float, default=0.1)
    parser.add_argument("--max_grad_norm", type=float, default=1.0)
    parser.add_argument("--freeze_inherited_steps", type=int, default=0, help="-1 freezes them throughout.")
    parser.add_argument("--no_horizontal_flip", action="store_true", help="No flips in the augmentation (digits).")
    parser.add_argument("--cpu", action="store_true", help="Run on the CPU even where GPUs exist (gloo when several).")
    parser.add_argument("--mixed_precision", default=None, choices=["no", "fp16", "bf16"], help="Default: launcher's.")
    parser.add_argument("--checkpointing_steps", default="epoch", help="'epoch', an integer number of steps, or 'no'.")
    parser.add_argument("--resume_from_checkpoint", default=None, help="A checkpoint folder, or 'latest'.")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--num_workers", type=int, default=0)
    parser.add_argument("--push_to_hub", action="store_true")
    parser.add_argument("--hub_model_id", default=None)
    parser.add_argument("--log_batches", action="store_true", help="Write the sample indices each rank trained on.")
    parser.add_argument("--save_rank_weights", action="store_true", help="Every rank writes its final weights.")
    args = parser.parse_args(argv)
    if args.push_to_hub and not args.hub_model_id:
        parser.error("--push_to_hub needs --hub_model_id <user or org>/<name>.")
    if args.checkpointing_steps not in ("epoch", "no") and not args.checkpointing_steps.isdigit():
        parser.error(f"--checkpointing_steps must be 'epoch', 'no' or an integer, got {args.checkpointing_steps!r}.")
    return args


class _Indexed(Dataset):
    """Rows of a prepared dataset with their index, so that ranks can report which samples they saw.

    The random augmentation of a row is drawn from a generator seeded with (seed, epoch, index): a pure function of
    them, whatever batches were prefetched or skipped, so a resumed run augments exactly as the uninterrupted one.
    """

    def __init__(self, dataset, seed: int):
        self.dataset, self.seed, self.epoch = dataset, seed, 0

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        row_seed = int(np.random.SeedSequence([self.seed, self.epoch, index]).generate_state(1)[0])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(row_seed)
            return {**self.dataset[index], "index": index}


def _collate(examples: list[dict]) -> dict[str, torch.Tensor]:
    batch = collate_fn(examples)
    batch["index"] = torch.tensor([e["index"] for e in examples])
    return batch


def load_splits(args):
    if args.dataset in BUILTIN_DATASETS:
        full = BUILTIN_DATASETS[args.dataset]()
        splits = {"train": full}
    else:
        loaded = load_image_dataset(args.dataset)
        splits = dict(loaded) if hasattr(loaded, "keys") else {"train": loaded}
    if args.train_split not in splits:
        raise ValueError(f"Split {args.train_split!r} not found; the dataset has {sorted(splits)}.")
    train = splits[args.train_split]
    eval_name = args.eval_split or next((s for s in ("validation", "test") if s in splits), None)
    if eval_name is not None:
        evaluation = splits[eval_name]
    else:
        _, label_column = find_columns(train, args.image_column, args.label_column)
        stratify = label_column if hasattr(train.features[label_column], "names") else None
        cut = train.train_test_split(test_size=args.test_size, seed=args.seed, stratify_by_column=stratify)
        train, evaluation = cut["train"], cut["test"]
    if args.max_train_samples is not None:
        train = train.select(range(min(args.max_train_samples, len(train))))
    return train, evaluation


def _latest_checkpoint(output_dir: str) -> str | None:
    steps = [
        (int(m.group(1)), name) for name in os.listdir(output_dir) if (m := _CHECKPOINT.match(name)) is not None
    ] if os.path.isdir(output_dir) else []  # fmt: skip
    return os.path.join(output_dir, max(steps)[1]) if steps else None


def _macro_f1(predictions: np.ndarray, labels: np.ndarray) -> float:
    classes = np.union1d(predictions, labels)
    scores = []
    for c in classes:
        tp = np.sum((predictions == c) & (labels == c))
        denominator = np.sum(predictions == c) + np.sum(labels == c)
        scores.append(2 * tp / denominator if denominator else 0.0)
    return float(np.mean(scores))


def evaluate(model, loader, accelerator) -> dict[str, float]:
    model.eval()
    losses, predictions, labels = [], [], []
    with torch.no_grad():
        for batch in loader:
            batch.pop("index")
            outputs = model(**batch)
            gathered_logits, gathered_labels = accelerator.gather_for_metrics((outputs.logits, batch["labels"]))
            losses.append(accelerator.gather_for_metrics(outputs.loss.detach().repeat(len(batch["labels"]))))
            predictions.append(gathered_logits.argmax(-1).cpu())
            labels.append(gathered_labels.cpu())
    model.train()
    predictions, labels = torch.cat(predictions).numpy(), torch.cat(labels).numpy()
    return {
        "eval_loss": float(torch.cat(losses).float().mean()),
        "eval_accuracy": float(np.mean(predictions == labels)),
        "eval_f1": _macro_f1(predictions, labels),
    }


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    accelerator = Accelerator(
        cpu=args.cpu,
        mixed_precision=args.mixed_precision,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        # Shuffling from (seed, epoch) rather than the global RNG, so that a resumed run sees the same order.
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
    )
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched != accelerator.num_processes:
        # Without GPUs, `accelerate launch --multi_gpu` starts processes that each train alone unless told to use CPUs.
        raise RuntimeError(
            f"{launched} processes were launched but Accelerate sees {accelerator.num_processes}: on a machine without "
            "GPUs pass --cpu (or set ACCELERATE_USE_CPU=1) so that they train together over gloo."
        )
    set_seed(args.seed)

    train_raw, eval_raw = load_splits(args)
    image_column, label_column = find_columns(train_raw, args.image_column, args.label_column)
    id2label, label2id = label_maps(train_raw, label_column)
    model_kwargs = {"num_labels": len(id2label), "id2label": id2label, "label2id": label2id}
    for key in ("layout", "num_new_layers", "new_layer_init", "revision"):
        if getattr(args, key) is not None:
            model_kwargs[key] = getattr(args, key)
    model = DescendantForImageClassification.from_pretrained(args.learngene, **model_kwargs)
    processor = model.image_processor or default_image_processor(model.config)
    model.image_processor = processor
    prepare = dict(
        image_processor=processor,
        image_column=image_column,
        label_column=label_column,
        num_channels=model.config.num_channels,
        num_labels=model.config.num_labels,
    )
    train_set = _Indexed(
        prepare_dataset(train_raw, train=True, horizontal_flip=not args.no_horizontal_flip, **prepare), args.seed
    )
    eval_set = _Indexed(prepare_dataset(eval_raw, **prepare), args.seed)
    train_loader = DataLoader(
        train_set,
        batch_size=args.per_device_train_batch_size,
        shuffle=True,
        collate_fn=_collate,
        num_workers=args.num_workers,
    )
    eval_loader = DataLoader(
        eval_set, batch_size=args.per_device_eval_batch_size, collate_fn=_collate, num_workers=args.num_workers
    )

    inherited_lr = args.learning_rate if args.inherited_learning_rate is None else args.inherited_learning_rate
    if args.freeze_inherited_steps < 0:
        from hf_learngene.training import freeze_inherited

        freeze_inherited(model)  # before DDP wraps the model, so that it never expects their gradients
    optimizer = torch.optim.AdamW(
        parameter_groups(model, inherited_lr=inherited_lr, new_lr=args.learning_rate, weight_decay=args.weight_decay)
    )
    # Steps are optimizer updates on each process, after the loader is sharded across processes.
    updates_per_epoch = math.ceil(
        math.ceil(len(train_loader) / accelerator.num_processes) / args.gradient_accumulation_steps
    )
    max_steps = args.max_train_steps or args.num_train_epochs * updates_per_epoch
    num_epochs = math.ceil(max_steps / updates_per_epoch)
    # Accelerate steps a prepared scheduler once per process for every optimizer step (it counts samples as one
    # process would), so its horizon is scaled by the number of processes.
    scheduler = get_cosine_schedule_with_warmup(
        optimizer,
        math.ceil(args.warmup_ratio * max_steps) * accelerator.num_processes,
        max_steps * accelerator.num_processes,
    )
    model, optimizer, train_loader, eval_loader, scheduler = accelerator.prepare(
        model, optimizer, train_loader, eval_loader, scheduler
    )

    step, start_epoch, skip_batches = 0, 0, 0
    checkpoint = args.resume_from_checkpoint
    if checkpoint == "latest":
        checkpoint = _latest_checkpoint(args.output_dir)
        if checkpoint is None:
            accelerator.print(f"No checkpoint in {args.output_dir}; starting from scratch.")
    if checkpoint:
        match = _CHECKPOINT.match(os.path.basename(os.path.normpath(checkpoint)))
        if match is None or not os.path.isdir(checkpoint):
            raise ValueError(f"--resume_from_checkpoint {checkpoint!r} is not a checkpoint-<step> folder.")
        accelerator.load_state(checkpoint)
        step = int(match.group(1))
        start_epoch = step // updates_per_epoch
        skip_batches = (step % updates_per_epoch) * args.gradient_accumulation_steps
        accelerator.print(f"Resumed from {checkpoint} (step {step}, epoch {start_epoch}).")

    def save_checkpoint() -> None:
        accelerator.save_state(os.path.join(args.output_dir, f"checkpoint-{step}"))

    seen: list[list[int]] = []
    curves: list[dict] = []
    unwrapped = accelerator.unwrap_model(model)
    start_time, trained_images = time.perf_counter(), 0
    model.train()
    for epoch in range(start_epoch, num_epochs):
        train_set.epoch = epoch
        loader = train_loader
        if epoch == start_epoch and skip_batches:
            loader = accelerator.skip_first_batches(train_loader, skip_batches)
        # The shuffling order is drawn from (seed, epoch); a loader made by skip_first_batches must be told the epoch.
        loader.set_epoch(epoch)
        losses = []
        for batch in loader:
            indices = batch.pop("index")
            if args.log_batches:
                seen.append(indices.tolist())
            with accelerator.accumulate(model):
                loss = model(**batch).loss
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    if step < args.freeze_inherited_steps:
                        drop_inherited_gradients(unwrapped)
                    if args.max_grad_norm > 0:
                        accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            losses.append(loss.detach())
            trained_images += len(indices) * accelerator.num_processes
            if accelerator.sync_gradients:
                step += 1
                if args.checkpointing_steps.isdigit() and step % int(args.checkpointing_steps) == 0:
                    save_checkpoint()
                if step >= max_steps:
                    break
        train_loss = accelerator.reduce(torch.stack(losses).mean(), reduction="mean").item() if losses else None
        curves.append({"epoch": epoch + 1, "train_loss": train_loss, **evaluate(model, eval_loader, accelerator)})
        accelerator.print(json.dumps(curves[-1]))
        if args.checkpointing_steps == "epoch":
            save_checkpoint()
        if step >= max_steps:
            break
    wall_time = time.perf_counter() - start_time

    accelerator.wait_for_everyone()
    metrics = {**{k: v for k, v in curves[-1].items() if k.startswith("eval_")}, "train_loss": curves[-1]["train_loss"]}
    results = {
        **metrics,
        "steps": step,
        "world_size": accelerator.num_processes,
        "mixed_precision": accelerator.mixed_precision,
        "train_wall_time_s": wall_time,
        "train_images_per_second": trained_images / wall_time if wall_time > 0 else None,
        "learning_curves": curves,
    }
    setup = {
        "Training loop": "accelerate (examples/accelerate/train_descendant_no_trainer.py)",
        "Processes": accelerator.num_processes,
        "Mixed precision": accelerator.mixed_precision,
        "Batch size (per device x accumulation)": (
            f"{args.per_device_train_batch_size} x {args.gradient_accumulation_steps}"
        ),
        "Learning rate (new / inherited)": f"{args.learning_rate:g} / {inherited_lr:g}",
        "Seed": args.seed,
    }
    unwrapped.training_summary = {
        "dataset": args.dataset,
        "num_train": len(train_raw),
        "num_eval": len(eval_raw),
        "setup": setup,
        "metrics": metrics,
        "learning_curves": curves,
    }
    unwrapped.save_pretrained(
        args.output_dir,
        is_main_process=accelerator.is_main_process,
        save_function=accelerator.save,
        state_dict=accelerator.get_state_dict(model),
    )
    rank = accelerator.process_index
    if args.log_batches:
        with open(os.path.join(args.output_dir, f"batches_rank{rank}.json"), "w") as f:
            json.dump(seen, f)
    if args.save_rank_weights:
        state = {k: v.detach().cpu().contiguous() for k, v in unwrapped.state_dict().items()}
        save_file(state, os.path.join(args.output_dir, f"weights_rank{rank}.safetensors"))
    if accelerator.is_main_process:
        with open(os.path.join(args.output_dir, "train_results.json"), "w") as f:
            json.dump(results, f, indent=2)
        if args.push_to_hub:
            unwrapped.push_to_hub(args.hub_model_id)
    accelerator.print(json.dumps({k: v for k, v in results.items() if k != "learning_curves"}))
    accelerator.end_training()
    return results


if __name__ == "__main__":
    main()
