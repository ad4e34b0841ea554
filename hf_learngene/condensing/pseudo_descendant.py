"""The pseudo descendant that the data-driven methods (`cka`, `auto`) compare ancestry layers with: its options,
how it is built and trained, and the frozen ancestor beside it.

The pseudo descendant is a ViT of the ancestor's geometry (width, heads, patch size) with half its depth, randomly
initialised and trained on the condensing set; ancestry layers are scored by how they relate to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from transformers.utils import logging

from ..ancestry import Ancestor
from ..configuration_learngene import LearngeneConfig
from ..evaluation import predict
from ..modeling_learngene import DescendantForImageClassification, LearngeneModel
from ..utils import autocast, cosine_schedule
from .condensing_set import CondensingData


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


def progress(options: PseudoOptions, iterable=None, **kwargs):
    """A tqdm progress bar (transformers' wrapper, so `transformers.utils.logging.disable_progress_bar()` applies)."""
    disable = options.quiet if options.disable_tqdm is None else options.disable_tqdm
    return logging.tqdm(iterable, disable=disable, leave=False, **kwargs)


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
                    group["lr"] = options.lr * cosine_schedule(step, total)
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


def evaluate_pseudo_descendant(
    model: DescendantForImageClassification, data: CondensingData, device: torch.device, dtype: torch.dtype
) -> float:
    """Accuracy of the pseudo descendant on the held-out part."""
    logits, labels = predict(model, data.eval_batches(), device=device, dtype=dtype)
    return float((logits.argmax(-1) == labels).float().mean())


def hidden_states(model, pixel_values: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Embedding output and the output of every layer, `(batch, 1 + patches, hidden)` each."""
    return model(pixel_values, output_hidden_states=True).hidden_states


__all__ = [
    "OPTIMIZERS",
    "PseudoOptions",
    "build_pseudo_descendant",
    "check_pseudo_options",
    "evaluate_pseudo_descendant",
    "frozen_ancestor",
    "hidden_states",
    "make_optimizer",
    "progress",
    "pseudo_descendant_for",
    "train_pseudo_descendant",
]
