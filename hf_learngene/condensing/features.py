"""What the data-driven methods (`cka`, `auto`) share: options, device and precision, the pseudo descendant, its
training and the per-layer features of the ancestor and the pseudo descendant.

The pseudo descendant is a ViT of the ancestor's geometry (width, heads, patch size) with half its depth, randomly
initialised and trained on the condensing set; ancestry layers are scored by how they relate to it.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from transformers.utils import logging

from ..ancestry import Ancestor
from ..configuration_learngene import LearngeneConfig
from ..modeling_learngene import DescendantForImageClassification, LearngeneModel
from .inputs import CondensingData, load_condensing_data

_DTYPES = {
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp16": torch.float16,
    "float16": torch.float16,
    "fp32": torch.float32,
    "float32": torch.float32,
}


@dataclass
class DataOptions:
    """How the condensing set becomes batches (see [`load_condensing_data`])."""

    image_column: str | None = None
    label_column: str | None = None
    split: str | None = None
    max_samples: int | None = None
    batch_size: int = 32
    holdout: float = 0.2
    image_processor: Any = None
    num_workers: int = 0
    num_labels: int | None = None


@dataclass
class PseudoOptions:
    """The pseudo descendant and its training: AdamW (or SGD with momentum, as the authors' code) with a cosine
    schedule. AdamW is the default because SGD barely trains a ViT from scratch on a small condensing set (measured
    on 400 digits images, 15 epochs: 0.94 held-out accuracy with AdamW lr 1e-3, 0.52 with SGD lr 0.1)."""

    pseudo_num_layers: int | None = None
    pseudo_descendant: Any = None
    epochs: int = 5
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    max_grad_norm: float | None = 1.0
    device: str | torch.device | None = None
    dtype: str | torch.dtype | None = None
    quiet: bool = False
    disable_tqdm: bool | None = None


def split_options(method: str, options: dict[str, Any], *extra: type) -> tuple[Any, ...]:
    """Sort `options` into the option dataclasses (`DataOptions`, `PseudoOptions`, then `extra`); unknown names raise
    a `ValueError` that lists the accepted ones."""
    classes = (DataOptions, PseudoOptions, *extra)
    known = {f.name: cls for cls in classes for f in fields(cls)}
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f'Unknown option(s) {unknown} for method="{method}"; accepted options are {sorted(known)}.')
    result = tuple(cls(**{k: v for k, v in options.items() if known[k] is cls}) for cls in classes)
    check_pseudo_options(result[1])
    return result


def settings_dict(*option_objects) -> dict[str, Any]:
    """JSON-friendly settings of a run, for the config, card and report (objects become their type name)."""
    out = {}
    for obj in option_objects:
        for key, value in asdict(obj).items():
            if key in ("image_processor", "pseudo_descendant", "disable_tqdm"):
                value = None if value is None else type(getattr(obj, key)).__name__
            elif isinstance(value, (torch.device, torch.dtype)):
                value = str(value)
            out[key] = value
    return out


def resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """Compute precision: bf16 autocast on CUDA, fp32 elsewhere, unless given."""
    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in _DTYPES:
        raise ValueError(f"Unknown `dtype={dtype!r}`; use one of {sorted(_DTYPES)} or a torch.dtype.")
    return _DTYPES[dtype]


def autocast(device: torch.device, dtype: torch.dtype):
    """Autocast to `dtype` (bf16 / fp16); a no-op context for fp32. Weights stay fp32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def progress(options: PseudoOptions, iterable=None, **kwargs):
    """A tqdm progress bar (transformers' wrapper, so `transformers.utils.logging.disable_progress_bar()` applies)."""
    disable = options.quiet if options.disable_tqdm is None else options.disable_tqdm
    return logging.tqdm(iterable, disable=disable, leave=False, **kwargs)


def prepare_data(condense_dataset, ancestor: Ancestor, data: DataOptions, seed: int) -> CondensingData:
    return load_condensing_data(
        condense_dataset,
        ancestor,
        image_column=data.image_column,
        label_column=data.label_column,
        split=data.split,
        max_samples=data.max_samples,
        batch_size=data.batch_size,
        holdout=data.holdout,
        seed=seed,
        image_processor=data.image_processor,
        num_workers=data.num_workers,
        num_labels=data.num_labels,
    )


def frozen_ancestor(ancestor: Ancestor, device: torch.device) -> LearngeneModel:
    """The whole ancestor as a model on `device`, in eval mode, without gradients."""
    model = ancestor.full_model().to(device).eval()
    model.requires_grad_(False)
    return model


def build_pseudo_descendant(
    ancestor: Ancestor, num_labels: int, num_layers: int | None = None, seed: int = 0
) -> DescendantForImageClassification:
    """A randomly initialised ViT classifier of the ancestor's geometry with `num_layers` layers (default: half the
    ancestor's depth, at least one), seeded so that a seed gives the same pseudo descendant."""
    if num_layers is None:
        num_layers = max(1, ancestor.num_layers // 2)
    if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
        raise ValueError(f"`pseudo_num_layers` must be a positive integer, got {num_layers!r}.")
    config = LearngeneConfig(**ancestor.geometry(), layer_indices=list(range(num_layers)), num_labels=num_labels)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return DescendantForImageClassification(config)


def pseudo_descendant_for(
    ancestor: Ancestor, data: CondensingData, pseudo: PseudoOptions, seed: int
) -> DescendantForImageClassification:
    """The user's pseudo descendant (checked against the ancestor), or a new one."""
    model = pseudo.pseudo_descendant
    if model is None:
        return build_pseudo_descendant(ancestor, data.num_labels, pseudo.pseudo_num_layers, seed)
    if not isinstance(model, DescendantForImageClassification):
        raise TypeError(f"`pseudo_descendant` must be a DescendantForImageClassification, got {type(model).__name__}.")
    if model.config.hidden_size != ancestor.config.hidden_size:
        raise ValueError(
            f"The pseudo descendant's width ({model.config.hidden_size}) differs from the ancestor's "
            f"({ancestor.config.hidden_size}); features are compared token by token, so they must match."
        )
    if model.config.num_labels < data.num_labels:
        raise ValueError(
            f"The pseudo descendant has {model.config.num_labels} labels but the condensing set has {data.num_labels}."
        )
    return model


OPTIMIZERS = ("adamw", "sgd")


def check_pseudo_options(options: PseudoOptions) -> None:
    if options.optimizer not in OPTIMIZERS:
        raise ValueError(f"`optimizer` must be one of {OPTIMIZERS}, got {options.optimizer!r}.")
    if isinstance(options.epochs, bool) or not isinstance(options.epochs, int) or options.epochs < 0:
        raise ValueError(f"`epochs` must be an integer >= 0 (0 skips training), got {options.epochs!r}.")
    if options.lr < 0:
        raise ValueError(f"`lr` must be >= 0, got {options.lr}.")


def make_optimizer(parameters, options: PseudoOptions) -> torch.optim.Optimizer:
    if options.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=options.lr, momentum=options.momentum, weight_decay=options.weight_decay)
    return torch.optim.AdamW(
        parameters, lr=options.lr, betas=options.betas, eps=options.eps, weight_decay=options.weight_decay
    )


def cosine_lr(base_lr: float, step: int, total: int) -> float:
    return 0.5 * base_lr * (1.0 + math.cos(math.pi * min(step, total) / max(total, 1)))


def train_pseudo_descendant(
    model: DescendantForImageClassification,
    data: CondensingData,
    options: PseudoOptions,
    device: torch.device,
    dtype: torch.dtype,
    seed: int,
) -> dict[str, float]:
    """Train the pseudo descendant with cross-entropy on the training part (SGD, momentum, cosine schedule).

    Returns `{"train_loss": mean loss of the last epoch}` (None when `epochs=0`)."""
    model.to(device).train()
    optimizer = make_optimizer(model.parameters(), options)
    total = options.epochs * data.num_train_batches
    step, last_loss = 0, None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        bar = progress(options, total=total, desc="pseudo descendant")
        for epoch in range(options.epochs):
            losses = []
            for pixel_values, labels in data.train_batches(epoch):
                pixel_values, labels = pixel_values.to(device), labels.to(device)
                for group in optimizer.param_groups:
                    group["lr"] = cosine_lr(options.lr, step, total)
                with autocast(device, dtype):
                    logits = model(pixel_values).logits
                loss = F.cross_entropy(logits.float(), labels)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if options.max_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), options.max_grad_norm)
                optimizer.step()
                losses.append(loss.item())
                step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.3f}")
            last_loss = sum(losses) / max(len(losses), 1)
        bar.close()
    model.eval()
    return {"train_loss": last_loss}


@torch.no_grad()
def evaluate_pseudo_descendant(
    model: DescendantForImageClassification, data: CondensingData, device: torch.device, dtype: torch.dtype
) -> float:
    """Accuracy of the pseudo descendant on the held-out part."""
    model.eval()
    correct = total = 0
    for pixel_values, labels in data.eval_batches():
        with autocast(device, dtype):
            logits = model(pixel_values.to(device)).logits
        correct += int((logits.argmax(-1).cpu() == labels).sum())
        total += labels.numel()
    return correct / max(total, 1)


def hidden_states(model, pixel_values: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Embedding output and the output of every layer, `(batch, 1 + patches, hidden)` each."""
    return model(pixel_values, output_hidden_states=True).hidden_states


__all__ = [
    "DataOptions",
    "PseudoOptions",
    "autocast",
    "build_pseudo_descendant",
    "evaluate_pseudo_descendant",
    "frozen_ancestor",
    "hidden_states",
    "prepare_data",
    "pseudo_descendant_for",
    "resolve_device",
    "resolve_dtype",
    "split_options",
    "train_pseudo_descendant",
]
