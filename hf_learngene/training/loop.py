"""A plain training loop over tensors held in memory, and the accumulating step built on it.

[`fit`] trains any classifier that returns `.loss` (a descendant, or transformers' `ViTForImageClassification`)
with AdamW, linear warm-up and a cosine decay, in reshuffled passes over the images, and records every epoch. It is
what the demo and the benchmarks use for small models, where the `Trainer`'s per-step data pipeline would dominate;
for real datasets use [`train_descendant`] (the `Trainer`).

[`train_ancestor`] is the paradigm's first step, *accumulating*: it trains a transformers ViT on a dataset and saves
it (with its image processor) as an ancestry checkpoint that `condense()` can cut learngenes from.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..data import dataset_to_tensors, default_image_processor, find_columns, label_maps
from ..evaluation import accuracy
from ..utils import atomic_folder, cosine_schedule, resolve_device

ANCESTOR_INFO_FILE = "ancestor_info.json"


@dataclass
class FitResult:
    """What [`fit`] returns.

    Attributes:
        history: one dict per epoch: `epoch` (1-based), `train_loss` (mean over the epoch's steps), `seconds` (training
            time of the epoch, evaluations excluded) and `<name>_accuracy` for every evaluation set.
        train_seconds: total training time, evaluations excluded.
        steps: optimizer steps taken.
    """

    history: list[dict[str, Any]] = field(default_factory=list)
    train_seconds: float = 0.0
    steps: int = 0

    def curve(self, key: str) -> list[float]:
        """The per-epoch values of `key`, e.g. `result.curve("val_accuracy")`."""
        return [row[key] for row in self.history]


def _check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be an integer >= 1, got {value!r}.")
    return value


def fit(
    model: nn.Module,
    pixel_values: torch.Tensor,
    labels: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float = 0.05,
    warmup_fraction: float = 0.1,
    steps_per_epoch: int | None = None,
    parameters=None,
    eval_sets: Mapping[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
    seed: int = 0,
    max_grad_norm: float | None = None,
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
) -> FitResult:
    """Train `model` on preprocessed `pixel_values` and `labels` held in memory.

    Args:
        model (`nn.Module`):
            A classifier taking `pixel_values` and `labels` and returning an output with `.loss` and `.logits`.
        pixel_values (`torch.Tensor` of shape `(N, C, H, W)`), labels (`torch.Tensor` of shape `(N,)`):
            The training set (moved batch by batch to the model's device).
        epochs (`int`), batch_size (`int`), lr (`float`):
            Epochs, images per step and the peak learning rate of AdamW.
        weight_decay (`float`, *optional*, defaults to 0.05):
            AdamW weight decay (of every parameter, unless `parameters` gives groups).
        warmup_fraction (`float`, *optional*, defaults to 0.1):
            Share of the steps spent warming the learning rate up linearly; then it decays along a cosine to 0.
        steps_per_epoch (`int`, *optional*):
            Optimizer steps per epoch; defaults to one pass over the images. Batches come from reshuffled passes,
            so a small set is repeated and every image is seen once per pass.
        parameters (*optional*):
            Parameters or parameter groups for AdamW (e.g. [`parameter_groups`]); defaults to all of the model's.
        eval_sets (`dict[str, tuple]`, *optional*):
            Sets to score after every epoch, e.g. `{"val": (x, y), "test": (x, y)}`, recorded as `val_accuracy`...
        seed (`int`, *optional*, defaults to 0):
            Seed of the batch order.
        max_grad_norm (`float`, *optional*):
            Clip the gradient norm to this value.
        on_epoch_end (`callable`, *optional*):
            Called with each epoch's row, e.g. to update a progress bar.
    """
    _check_positive_int(epochs, "epochs")
    _check_positive_int(batch_size, "batch_size")
    if len(pixel_values) != len(labels) or len(labels) == 0:
        raise ValueError(f"Need as many labels as images, and at least one: got {len(pixel_values)} and {len(labels)}.")
    if not 0.0 <= warmup_fraction < 1.0:
        raise ValueError(f"`warmup_fraction` must be in [0, 1), got {warmup_fraction!r}.")
    steps_per_epoch = steps_per_epoch or math.ceil(len(labels) / batch_size)
    _check_positive_int(steps_per_epoch, "steps_per_epoch")
    device = next(model.parameters()).device
    total = epochs * steps_per_epoch
    batch_size = min(batch_size, len(labels))
    generator = torch.Generator().manual_seed(seed)
    passes = math.ceil(total * batch_size / len(labels))
    order = torch.cat([torch.randperm(len(labels), generator=generator) for _ in range(passes)])
    order = order[: total * batch_size].view(total, batch_size)
    optimizer = torch.optim.AdamW(
        model.parameters() if parameters is None else parameters, lr=lr, weight_decay=weight_decay
    )
    warmup = round(warmup_fraction * total)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: cosine_schedule(step, total, warmup))
    result = FitResult()
    for epoch in range(epochs):
        model.train()
        start = time.perf_counter()
        losses = []
        for step in range(epoch * steps_per_epoch, (epoch + 1) * steps_per_epoch):
            rows = order[step]
            loss = model(pixel_values=pixel_values[rows].to(device), labels=labels[rows].to(device)).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            optimizer.step()
            scheduler.step()
            losses.append(loss.detach())
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - start
        result.train_seconds += seconds
        result.steps += steps_per_epoch
        row = {"epoch": epoch + 1, "train_loss": float(torch.stack(losses).mean()), "seconds": seconds}
        for name, (images, targets) in (eval_sets or {}).items():
            row[f"{name}_accuracy"] = accuracy(model, images, targets)
        result.history.append(row)
        if on_epoch_end is not None:
            on_epoch_end(row)
    model.eval()
    return result


def train_ancestor(
    train_dataset,
    output_dir: str | os.PathLike,
    *,
    eval_dataset=None,
    hidden_size: int = 192,
    num_hidden_layers: int = 12,
    num_attention_heads: int = 3,
    intermediate_size: int | None = None,
    image_size: int = 224,
    patch_size: int = 16,
    num_channels: int = 3,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 0.05,
    seed: int = 0,
    device: str | torch.device | None = None,
    overwrite: bool = False,
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Accumulating: train a transformers `ViTForImageClassification` from scratch and save it as an ancestor.

    The folder gets the model (`save_pretrained`), its image processor (resize to `image_size`, mean/std 0.5) and
    `ancestor_info.json` (data, geometry, epochs, held-out accuracy, time), written all at once.

    Args:
        train_dataset (`datasets.Dataset`):
            An image-classification split (columns detected automatically).
        output_dir (`str`):
            Where the ancestor goes (refused when it exists and is not empty, unless `overwrite=True`).
        eval_dataset (`datasets.Dataset`, *optional*):
            Held-out images; their accuracy is recorded.
        hidden_size, num_hidden_layers, num_attention_heads, intermediate_size, image_size, patch_size,
        num_channels: the ViT geometry (`intermediate_size` defaults to 4 x `hidden_size`).
        epochs, batch_size, lr, weight_decay, seed: training, as in [`fit`].
        device (`str`, *optional*):
            Defaults to CUDA when available.

    Returns:
        `dict`: the contents of `ancestor_info.json`.
    """
    from transformers import ViTConfig, ViTForImageClassification

    output_dir = os.path.abspath(os.fspath(output_dir))
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise ValueError(f"{output_dir!r} is a file; pass a folder.")
    if os.path.isdir(output_dir) and os.listdir(output_dir):
        if not overwrite:
            raise FileExistsError(f"{output_dir!r} exists and is not empty; pass overwrite=True or another folder.")
        if not os.path.isfile(os.path.join(output_dir, ANCESTOR_INFO_FILE)):
            raise FileExistsError(
                f"{output_dir!r} does not hold an ancestor that train_ancestor wrote; refusing to replace it. Choose "
                "another folder."
            )
    device = resolve_device(device)
    start = time.perf_counter()
    id2label, label2id = label_maps(train_dataset, find_columns(train_dataset)[1])
    config = ViTConfig(
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        intermediate_size=intermediate_size or 4 * hidden_size,
        image_size=image_size,
        patch_size=patch_size,
        num_channels=num_channels,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        id2label=id2label,
        label2id=label2id,
    )
    processor = default_image_processor(config)
    train_x, train_y = dataset_to_tensors(train_dataset, processor, num_channels=num_channels)
    eval_sets = {}
    if eval_dataset is not None:
        eval_sets["heldout"] = dataset_to_tensors(eval_dataset, processor, num_channels=num_channels)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ViTForImageClassification(config)
    model.to(device)
    result = fit(
        model,
        train_x,
        train_y,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        seed=seed,
        eval_sets=eval_sets,
        on_epoch_end=on_epoch_end,
    )
    info = {
        "classes": [id2label[i] for i in range(len(id2label))],
        "train_images": len(train_y),
        "heldout_images": len(eval_sets["heldout"][1]) if eval_sets else None,
        "geometry": {k: getattr(config, k) for k in ("hidden_size", "num_hidden_layers", "num_attention_heads")},
        "epochs": epochs,
        "heldout_accuracy": result.history[-1].get("heldout_accuracy"),
        "history": result.history,
        "parameters": model.num_parameters(),
        "train_seconds": time.perf_counter() - start,
        "device": device.type,
        "seed": seed,
    }
    with atomic_folder(output_dir, replace=True) as scratch:
        model.cpu().save_pretrained(scratch)
        processor.save_pretrained(scratch)
        with open(os.path.join(scratch, ANCESTOR_INFO_FILE), "w", encoding="utf-8") as f:
            json.dump(info, f, indent=2)
    return info


__all__ = ["ANCESTOR_INFO_FILE", "FitResult", "fit", "train_ancestor"]
