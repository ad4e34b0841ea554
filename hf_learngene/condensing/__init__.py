"""Condensing: choose the integral layers of an ancestry ViT and cut them out as a learngene.

Each method lives in its own module and registers itself in `CONDENSING_METHODS`; `condense()` dispatches on the
method name.
"""

from __future__ import annotations

import os

from ..ancestry import load_ancestor
from ..modeling_learngene import LearngeneModel
from . import auto, cka, first, heuristic, manual, random_layers  # noqa: F401  (register the methods)
from .base import CONDENSING_METHODS, CondensingMethod, Selection, register_method, top_k_layers
from .report import condense_report, save_report


def condense(
    ancestor,
    *,
    method: str = "heuristic",
    num_layers: int | None = None,
    layers: list[int] | None = None,
    condense_dataset=None,
    output_dir: str | os.PathLike | None = None,
    revision: str | None = None,
    seed: int = 0,
    **method_kwargs,
) -> LearngeneModel:
    """Condense an ancestry ViT into a learngene.

    Args:
        ancestor (`str` or model):
            Hub id, local folder, or a loaded `ViTModel` / `ViTForImageClassification`.
        method (`str`, *optional*, defaults to `"heuristic"`):
            One of `CONDENSING_METHODS`: `"manual"` (your `layers`), `"heuristic"` (last k), `"first"` (first k),
            `"random"` (k seeded random layers), and the data-driven methods when available.
        num_layers (`int`, *optional*):
            How many ancestry layers to keep (k).
        layers (`list[int]`, *optional*):
            The layers to keep, for `method="manual"`.
        condense_dataset (*optional*):
            The condensing set, for data-driven methods.
        output_dir (`str`, *optional*):
            When given, the learngene is saved there (weights, config, card, image processor).
        revision (`str`, *optional*):
            Revision of a Hub ancestor.
        seed (`int`, *optional*, defaults to 0):
            Seed for methods with randomness.
        method_kwargs:
            Options of the chosen method.

    Returns:
        [`LearngeneModel`] whose config records the selection, scores and provenance.

    Example:

    ```python
    >>> from hf_learngene import condense
    >>> learngene = condense("google/vit-base-patch16-224", method="heuristic", num_layers=3)
    >>> learngene.config.layer_indices
    [9, 10, 11]
    ```"""
    if method not in CONDENSING_METHODS:
        raise ValueError(
            f"Unknown condensing method {method!r}; choose one of: {', '.join(sorted(CONDENSING_METHODS))}."
        )
    spec = CONDENSING_METHODS[method]
    if spec.needs_data and condense_dataset is None:
        raise ValueError(f'method="{method}" needs a condensing set: pass `condense_dataset=`.')
    source = load_ancestor(ancestor, revision=revision)
    selection = spec.fn(
        source, num_layers, layers=layers, condense_dataset=condense_dataset, seed=seed, **method_kwargs
    )
    learngene = source.cut(
        selection.layer_indices,
        condensing_method=method,
        condensing_scores=selection.scores,
        condensing_details=selection.details or None,
    )
    if output_dir is not None:
        save_report(learngene, output_dir)
        learngene.save_pretrained(output_dir)
    return learngene


__all__ = [
    "CONDENSING_METHODS",
    "CondensingMethod",
    "Selection",
    "condense",
    "condense_report",
    "register_method",
    "save_report",
    "top_k_layers",
]
