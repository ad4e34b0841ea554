"""Condensing: choose the integral layers of an ancestry ViT and cut them out as a learngene.

Each method lives in its own module and registers itself in `CONDENSING_METHODS`; `condense()` dispatches on the
method name.
"""

from __future__ import annotations

import os

from ..ancestry import load_ancestor
from ..modeling_learngene import LearngeneModel
from ..serialization import check_output_folder, condense_report, save_folder
from ..serialization import write_condense_report as save_report
from . import (  # noqa: F401  (register the methods)
    angular_distance,
    auto,
    block_influence,
    cka,
    first,
    heuristic,
    linear,
    manual,
    random_layers,
    search,
)
from .registry import (
    CONDENSING_METHODS,
    CondensingMethod,
    Constraints,
    Selection,
    check_constraints,
    check_scores,
    constrained_top_k,
    constraint_violations,
    register_method,
    top_k_layers,
)

# The method `condense()`, `hf-learngene condense` and the demo use when none is named: the one that measures best on
# the learning benchmark v2 (benchmarks/learning/results/learning_v2/learning_v2.md, section 7). No data-driven
# method beat plain truncation there, so it is first-k, which needs no data and equals what
# `ViTForImageClassification.from_pretrained(ancestor, num_hidden_layers=k)` keeps.
DEFAULT_METHOD = "first"


def condense(
    ancestor,
    *,
    method: str = DEFAULT_METHOD,
    num_layers: int | None = None,
    layers: list[int] | None = None,
    condense_dataset=None,
    output_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    revision: str | None = None,
    seed: int = 0,
    contiguous: bool = False,
    keep_first_layer: bool = False,
    **method_kwargs,
) -> LearngeneModel:
    """Condense an ancestry ViT into a learngene.

    Args:
        ancestor (`str` or model):
            Hub id, local folder, or a loaded `ViTModel` / `ViTForImageClassification`.
        method (`str`, *optional*, defaults to `"first"`):
            One of `CONDENSING_METHODS`. The default, `"first"` (the first k layers), is the method that measures best
            on the project's learning benchmark (see `DEFAULT_METHOD`). `"manual"` (your `layers`), `"heuristic"`
            (last k), `"random"` (k seeded random layers), and the data-driven `"cka"` (the k layers most similar,
            by linear CKA, to a pseudo descendant trained on the condensing set), `"auto"` (the paper's method:
            meta-learned per-pair feature-matching weights; the k layers with the largest total weight; on the
            benchmark it does not beat `"first"`), `"block_influence"`
            (the k layers that change their input most, ShortGPT), `"angular_distance"` (all but the most redundant
            block, Gromov et al. 2024) and `"search"` (candidate layer sets scored by a short fine-tune of the
            descendant on the condensing set; needs a budget, `max_candidates=`).
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
            The folder is written all at once (a temporary folder renamed into place), so an interrupted run never
            leaves a half-written learngene.
        overwrite (`bool`, *optional*, defaults to `False`):
            Replace `output_dir` when it holds a previous learngene. Any other non-empty folder is refused.
        revision (`str`, *optional*):
            Revision of a Hub ancestor.
        seed (`int`, *optional*, defaults to 0):
            Seed for methods with randomness.
        contiguous (`bool`, *optional*, defaults to `False`):
            Keep one contiguous block of k layers. Methods with per-layer scores keep the block of largest total
            score (`angular_distance` and `search` apply it inside their own rule); a method without scores
            (`"first"`, `"heuristic"`, `"random"`, `"manual"`) keeps its selection when it complies and raises
            otherwise.
        keep_first_layer (`bool`, *optional*, defaults to `False`):
            Always keep layer 0, the layer that reads the embeddings (methods with scores add it to the best k - 1
            others). With `contiguous=True` too, only the first k layers comply. Both constraints are recorded in
            `config.condensing_details["constraints"]`; the kept layers are always in ancestry order.
        method_kwargs:
            Options of the chosen method. For `"cka"` and `"auto"`: `max_samples`, `batch_size`, `epochs`, `lr`,
            `optimizer`, `pseudo_num_layers`, `device`, `dtype` (bf16 autocast on CUDA by default), `quiet`, ...
            (see `hf_learngene.condensing.cka.condense_cka` and `hf_learngene.condensing.auto.condense_auto`). For
            `"block_influence"`, `"angular_distance"` and `"search"` see their modules.

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
    spec = _check_request(method, layers, condense_dataset, method_kwargs)
    constraints = check_constraints(contiguous, keep_first_layer)
    if output_dir is not None:
        # Refuse a folder that may not be replaced before any work is done.
        check_output_folder(output_dir, "learngene", overwrite)
    source = load_ancestor(ancestor, revision=revision)
    if spec.needs_data and source.source_layer_indices != list(range(source.source_depth)):
        # Scores are stored one per layer of the original ancestor, which a learngene no longer has.
        raise ValueError(
            f'method="{method}" scores every layer of the original ancestor, but {source.name_or_path!r} is a '
            "learngene holding only some of them: condense the original ancestor instead, or pick layers of this "
            'learngene with method="manual", "first", "heuristic" or "random".'
        )
    extra = {"constraints": constraints} if spec.handles_constraints else {}
    if spec.needs_data:
        selection = spec.fn(source, num_layers, condense_dataset=condense_dataset, seed=seed, **extra, **method_kwargs)
    else:
        selection = spec.fn(source, num_layers, layers=layers, seed=seed, **extra)
    if isinstance(selection, LearngeneModel):  # a method that builds new tensors (method="linear")
        if constraints.active:
            raise ValueError(f'method="{method}" builds its own tensors; `contiguous`/`keep_first_layer` do not apply.')
        selection.config.condensing_details = {**selection.config.condensing_details, **_processor_note(source)}
        if output_dir is not None:
            save_folder(selection, output_dir, overwrite=overwrite)
        return selection
    if selection.scores is not None:
        check_scores(selection.scores, method)
    if not spec.handles_constraints:
        selection = _apply_constraints(selection, constraints, method)
    problems = constraint_violations(selection.layer_indices, constraints)
    if problems:  # a method that handles constraints itself must honour them
        raise RuntimeError(f'method="{method}" broke the constraints: {"; ".join(problems)}.')
    details = {"summary": spec.summary, **selection.details}
    if constraints.active:
        details["constraints"] = constraints.as_dict()
    learngene = source.cut(
        selection.layer_indices,
        condensing_method=method,
        condensing_scores=selection.scores,
        condensing_details={**details, **_processor_note(source)},
    )
    learngene.condensing_report = selection.report or None
    if output_dir is not None:
        save_folder(learngene, output_dir, overwrite=overwrite)
    return learngene


def _processor_note(source) -> dict:
    if not source.image_processor_is_default:
        return {}
    size = source.image_processor.size
    return {
        "image_processor": f"default (the ancestor had none): resize to {size['height']}x{size['width']}, rescale "
        "to [0, 1], normalise with mean 0.5 and std 0.5"
    }


def _apply_constraints(selection: Selection, constraints: Constraints, method: str) -> Selection:
    """Honour the constraints for a method that does not handle them itself: reselect from its scores, or check the
    selection of a method without scores (it has no ranking to choose another set by)."""
    if not constraints.active:
        return selection
    if selection.scores is not None:
        selection.layer_indices = constrained_top_k(selection.scores, len(selection.layer_indices), constraints)
        return selection
    problems = constraint_violations(selection.layer_indices, constraints)
    if problems:
        scored = sorted(n for n, m in CONDENSING_METHODS.items() if m.needs_data)
        raise ValueError(
            f'method="{method}" has no per-layer scores to choose other layers by, and its selection breaks the '
            f'constraints: {"; ".join(problems)}. Use a method with scores ({", ".join(scored)}), "first" '
            '(contiguous and keeps layer 0), or method="manual" with layers that satisfy them.'
        )
    return selection


def _check_request(method: str, layers, condense_dataset, method_kwargs: dict):
    """The registered method, after refusing arguments it would not use."""
    if method not in CONDENSING_METHODS:
        raise ValueError(
            f"Unknown condensing method {method!r}; choose one of: {', '.join(sorted(CONDENSING_METHODS))}."
        )
    spec = CONDENSING_METHODS[method]
    if layers is not None and method not in ("manual", "linear"):
        raise ValueError(f'`layers=` names the layers for method="manual"; method="{method}" chooses them itself.')
    if spec.needs_data and condense_dataset is None:
        raise ValueError(f'method="{method}" needs a condensing set: pass `condense_dataset=`.')
    if not spec.needs_data:
        if condense_dataset is not None:
            raise ValueError(
                f'method="{method}" does not use a condensing set; drop `condense_dataset=`, or choose a data-driven '
                f"method ({', '.join(sorted(n for n, m in CONDENSING_METHODS.items() if m.needs_data))})."
            )
        if method_kwargs:
            raise ValueError(
                f'Unknown option(s) {sorted(method_kwargs)} for method="{method}"; it takes only `num_layers`, '
                "`layers` (manual) and `seed` (random)."
            )
    return spec


__all__ = [
    "CONDENSING_METHODS",
    "CondensingMethod",
    "Constraints",
    "Selection",
    "condense",
    "condense_report",
    "register_method",
    "save_report",
    "top_k_layers",
]
