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
            `"random"` (k seeded random layers), and the data-driven `"cka"` (the k layers most similar, by linear
            CKA, to a pseudo descendant trained on the condensing set) and `"auto"` (the paper's method: meta-learned
            per-pair feature-matching weights; the k layers with the largest total weight).
        num_layers (`int`, *optional*):
            How many ancestry layers to keep (k).
        layers (`list[int]`, *optional*):
            The layers to keep, for `method="manual"`.
        condense_dataset (*optional*):
            The condensing set, for data-driven methods: a `datasets.Dataset` or `DatasetDict` (split `split=`), a
            dataset name or local folder (`datasets.load_dataset`), or a torch `DataLoader` of preprocessed
            `pixel_values` and `labels`. Image and label columns are found automatically (`image_column=`,
            `label_column=` override).
        output_dir (`str`, *optional*):
            When given, the learngene is saved there (weights, config, card, image processor) with
            `condense_report.json` and, for methods with scores, the heatmap `condense_heatmap.png` the card shows.
        revision (`str`, *optional*):
            Revision of a Hub ancestor.
        seed (`int`, *optional*, defaults to 0):
            Seed for methods with randomness.
        method_kwargs:
            Options of the chosen method. For `"cka"` and `"auto"`: `max_samples`, `batch_size`, `epochs`, `lr`,
            `optimizer`, `pseudo_num_layers`, `device`, `dtype` (bf16 autocast on CUDA by default), `quiet`, ...
            (see `hf_learngene.condensing.cka.condense_cka` and `hf_learngene.condensing.auto.condense_auto`).

    Returns:
        [`LearngeneModel`] whose config records the selection, scores and provenance.

    Example:

    ```python
    >>> from hf_learngene import condense
    >>> learngene = condense("google/vit-base-patch16-224", method="heuristic", num_layers=3)
    >>> learngene.config.layer_indices
    [9, 10, 11]
    >>> from hf_learngene.data import load_fashion_mnist
    >>> open_world = load_fashion_mnist(classes=[6, 7, 8, 9], max_per_class=500)
    >>> learngene = condense("google/vit-base-patch16-224", method="auto", num_layers=6, condense_dataset=open_world)
    ```"""
    if method not in CONDENSING_METHODS:
        raise ValueError(
            f"Unknown condensing method {method!r}; choose one of: {', '.join(sorted(CONDENSING_METHODS))}."
        )
    spec = CONDENSING_METHODS[method]
    if spec.needs_data and condense_dataset is None:
        raise ValueError(f'method="{method}" needs a condensing set: pass `condense_dataset=`.')
    source = load_ancestor(ancestor, revision=revision)
    if spec.needs_data and source.source_layer_indices != list(range(source.source_depth)):
        # Scores are stored one per layer of the original ancestor, which a learngene no longer has.
        raise ValueError(
            f'method="{method}" scores every layer of the original ancestor, but {source.name_or_path!r} is a '
            "learngene holding only some of them: condense the original ancestor instead, or pick layers of this "
            'learngene with method="manual", "first", "heuristic" or "random".'
        )
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
