"""Inherited and new parameters of a descendant: optimizer groups with their own learning rates, and freezing."""

from __future__ import annotations

from typing import Any

from torch import nn
from transformers import TrainerCallback

_NO_DECAY_NAMES = ("bias", "cls_token", "position_embeddings", "distillation_token", "register_tokens", "probe")
_INHERITED_PREFIX = "learngene."
# Inserted into parameter names by FSDP1 (use_orig_params), activation checkpointing and torch.compile; DDP adds
# a leading "module.".
_WRAPPER_PARTS = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.", "_orig_mod.")


def _plain_name(name: str) -> str:
    for part in _WRAPPER_PARTS:
        name = name.replace(part, "")
    while name.startswith("module."):
        name = name[len("module.") :]
    return name


def _check_descendant(model: nn.Module) -> None:
    if not hasattr(model, "learngene"):
        raise TypeError(
            f"Expected a DescendantForImageClassification (a model with a `learngene` submodule), got "
            f"{type(model).__name__}."
        )


def inherited_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """`(name, parameter)` pairs of what the descendant inherited: `model.learngene` (embeddings, inherited layers and
    the final LayerNorm)."""
    _check_descendant(model)
    return [(n, p) for n, p in model.named_parameters() if _plain_name(n).startswith(_INHERITED_PREFIX)]


def new_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """`(name, parameter)` pairs of what is new in the descendant: `model.new_layers` and `model.classifier`."""
    _check_descendant(model)
    return [(n, p) for n, p in model.named_parameters() if not _plain_name(n).startswith(_INHERITED_PREFIX)]


def _decays(name: str, parameter: nn.Parameter) -> bool:
    # Transformers' convention: no weight decay on biases, norms (1-D) and the learned position / CLS embeddings.
    return parameter.ndim > 1 and not any(part in name for part in _NO_DECAY_NAMES)


def parameter_groups(
    model: nn.Module,
    inherited_lr: float,
    new_lr: float,
    weight_decay: float = 0.05,
    include_frozen: bool = True,
) -> list[dict[str, Any]]:
    """Optimizer parameter groups with separate learning rates for inherited and new parameters.

    Four groups: inherited / new, each with and without weight decay (biases, LayerNorms, position and CLS embeddings
    get none). Each group carries a `"name"` key (`"inherited"`, `"inherited_no_decay"`, `"new"`,
    `"new_no_decay"`); empty groups are left out. Learning-rate schedulers scale every group's `lr` alike.

    Args:
        model ([`DescendantForImageClassification`]):
            The descendant.
        inherited_lr (`float`):
            Learning rate of `model.learngene` (embeddings, inherited layers, final LayerNorm). 0 keeps them fixed.
        new_lr (`float`):
            Learning rate of `model.new_layers` and `model.classifier`.
        weight_decay (`float`, *optional*, defaults to 0.05):
            Weight decay of the matrices.
        include_frozen (`bool`, *optional*, defaults to `True`):
            Keep parameters with `requires_grad=False` (so that they train once unfrozen; the optimizer skips
            parameters without gradients).

    Example:

    ```python
    >>> from transformers import Trainer
    >>> optimizer = torch.optim.AdamW(parameter_groups(model, inherited_lr=1e-4, new_lr=1e-3))
    >>> trainer = Trainer(model=model, args=args, optimizers=(optimizer, None), ...)
    ```"""
    if inherited_lr < 0 or new_lr < 0:
        raise ValueError(f"Learning rates must be >= 0, got inherited_lr={inherited_lr}, new_lr={new_lr}.")
    groups = []
    for kind, params, lr in (
        ("inherited", inherited_parameters(model), inherited_lr),
        ("new", new_parameters(model), new_lr),
    ):
        params = [(n, p) for n, p in params if include_frozen or p.requires_grad]
        decay = [p for n, p in params if _decays(n, p)]
        no_decay = [p for n, p in params if not _decays(n, p)]
        if decay:
            groups.append({"name": kind, "params": decay, "lr": lr, "weight_decay": weight_decay})
        if no_decay:
            groups.append({"name": f"{kind}_no_decay", "params": no_decay, "lr": lr, "weight_decay": 0.0})
    return groups


def freeze_inherited(model: nn.Module, frozen: bool = True) -> int:
    """Set `requires_grad` of the inherited parameters (`model.learngene`) to `not frozen`; returns how many
    parameters changed.

    Freezing throughout this way also saves their gradient computation. Call it before building the optimizer or
    wrapping the model for distributed training (DDP records which parameters train when it wraps the model); to
    freeze only for the first steps use [`FreezeInheritedCallback`] or [`drop_inherited_gradients`].
    """
    changed = 0
    for _, parameter in inherited_parameters(model):
        if parameter.requires_grad == frozen:
            parameter.requires_grad_(not frozen)
            changed += 1
    return changed


def drop_inherited_gradients(model: nn.Module) -> None:
    """Set the gradients of the inherited parameters to `None`, so that the next `optimizer.step()` leaves them
    (and their optimizer state, weight decay included) untouched. Call it between `backward()` and `step()`; it works
    under DDP because it runs after the gradients were all-reduced."""
    for _, parameter in inherited_parameters(model):
        parameter.grad = None


class FreezeInheritedCallback(TrainerCallback):
    """Keep the inherited parameters fixed for the first `num_steps` optimizer steps (all of training when `None`).

    Their gradients are dropped right before each optimizer step, so the optimizer skips them entirely; afterwards
    they train with their own learning rate. Gradient clipping still sees their gradients during the frozen steps.
    To freeze throughout and save the backward computation, call [`freeze_inherited`] before creating the `Trainer`.

    Args:
        num_steps (`int`, *optional*):
            Number of optimizer steps to keep the inherited parameters fixed; `None` freezes them throughout.
    """

    def __init__(self, num_steps: int | None = None):
        if num_steps is not None and (isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 0):
            raise ValueError(f"`num_steps` must be an integer >= 0 or None (throughout), got {num_steps!r}.")
        self.num_steps = num_steps

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        if self.num_steps is None or state.global_step < self.num_steps:
            drop_inherited_gradients(model)


__all__ = [
    "FreezeInheritedCallback",
    "drop_inherited_gradients",
    "freeze_inherited",
    "inherited_parameters",
    "new_parameters",
    "parameter_groups",
]
