"""The condensing report: `condense_report.json` and a heatmap PNG of the scores, which the model card shows."""

from __future__ import annotations

import json
import os
from typing import Any

REPORT_FILE = "condense_report.json"
HEATMAP_FILE = "condense_heatmap.png"

# details key -> (title, column label) of the pair matrix a method stores.
_MATRICES = {
    "pair_weights": ("Learned pair weights (mean lambda)", "pseudo-descendant layer"),
    "cka_matrix": ("Linear CKA", "pseudo-descendant layer"),
}


def condense_report(learngene) -> dict[str, Any]:
    """The report of a condensed learngene, read from its config: ancestor, method, selection, scores, details."""
    config = learngene.config
    return {
        "ancestor": config.ancestor_name_or_path,
        "ancestor_revision": config.ancestor_revision,
        "ancestor_num_layers": config.ancestor_num_layers,
        "method": config.condensing_method,
        "layer_indices": list(config.layer_indices),
        "scores": config.condensing_scores,
        "details": config.condensing_details or {},
        "hf_learngene_version": config.hf_learngene_version,
    }


def _matrix(details: dict) -> tuple[str, list[list[float]], str, str] | None:
    for key, (title, xlabel) in _MATRICES.items():
        if details.get(key):
            return key, details[key], title, xlabel
    return None


def plot_heatmap(learngene, path: str | os.PathLike) -> bool:
    """Draw the scores (and the pair matrix, when the method has one) to `path`; False when there is nothing to draw.

    Uses matplotlib's object API (no pyplot), so it works headless and leaves global state alone.
    """
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    config = learngene.config
    scores = config.condensing_scores
    if scores is None:
        return False
    details = config.condensing_details or {}
    matrix = _matrix(details)
    kept = set(config.layer_indices)
    rows = len(scores)
    height = max(2.5, 0.3 * rows + 1.2)
    if matrix is None:
        figure = Figure(figsize=(4.0, height))
        score_axes = figure.add_subplot(1, 1, 1)
    else:
        values = np.asarray(matrix[1], dtype=float)
        figure = Figure(figsize=(4.0 + 0.35 * values.shape[1], height))
        matrix_axes, score_axes = figure.subplots(1, 2, gridspec_kw={"width_ratios": [max(values.shape[1], 2), 3]})
        image = matrix_axes.imshow(values, aspect="auto", cmap="viridis")
        matrix_axes.set_title(matrix[2], fontsize=9)
        matrix_axes.set_xlabel(matrix[3])
        matrix_axes.set_ylabel("ancestry layer")
        matrix_axes.set_yticks(range(rows))
        matrix_axes.set_xticks(range(values.shape[1]))
        figure.colorbar(image, ax=matrix_axes, fraction=0.08)
    colors = ["tab:orange" if i in kept else "tab:gray" for i in range(rows)]
    score_axes.barh(range(rows), scores, color=colors)
    # Scores often differ in the third decimal: zoom the axis onto their range instead of starting at zero.
    low, high = min(scores), max(scores)
    pad = (high - low) * 0.15 or abs(high) * 0.05 or 1.0
    score_axes.set_xlim(low - pad, high + pad)
    score_axes.set_ylim(rows - 0.5, -0.5)
    score_axes.set_yticks(range(rows), [f"{i}: {score:.3f}" for i, score in enumerate(scores)], fontsize=7)
    score_axes.set_title(f"{config.condensing_method} score (kept: orange)", fontsize=9)
    if matrix is None:
        score_axes.set_ylabel("ancestry layer")
    figure.tight_layout()
    FigureCanvasAgg(figure).print_png(os.fspath(path))
    return True


def write_report_files(learngene, output_dir: str | os.PathLike, *, heatmap: bool = True) -> dict[str, str]:
    """Write `condense_report.json` and, when the method has scores, the heatmap PNG; record the heatmap's name in
    the config's `condensing_details`. Returns the paths written. `save_pretrained` calls this for learngenes whose
    card shows a heatmap, so the picture travels with every save and push."""
    os.makedirs(output_dir, exist_ok=True)
    written = {}
    details = dict(learngene.config.condensing_details or {})
    if heatmap:
        path = os.path.join(output_dir, HEATMAP_FILE)
        if plot_heatmap(learngene, path):
            details["heatmap"] = HEATMAP_FILE
            learngene.config.condensing_details = details
            written["heatmap"] = path
    path = os.path.join(output_dir, REPORT_FILE)
    with open(path, "w") as f:
        json.dump(condense_report(learngene), f, indent=2, sort_keys=True)
        f.write("\n")
    written["report"] = path
    return written


def save_report(learngene, output_dir: str | os.PathLike, *, heatmap: bool = True) -> dict[str, str]:
    """Write `condense_report.json` and (when the method has scores) `condense_heatmap.png` into `output_dir`.

    The heatmap's file name is recorded in `learngene.config.condensing_details["heatmap"]`, so the model card written
    by a later `save_pretrained` / `push_to_hub` shows it. When `output_dir` already holds the saved learngene, its
    config and card are rewritten to show it too.

    Args:
        learngene ([`LearngeneModel`]):
            The result of [`condense`].
        output_dir (`str` or `os.PathLike`):
            Folder to write to (created when missing); usually the learngene's own folder.
        heatmap (`bool`, *optional*, defaults to `True`):
            Draw the heatmap PNG (matplotlib).

    Returns:
        `dict[str, str]`: the paths written, under `"report"` and `"heatmap"`.

    Example:

    ```python
    >>> from hf_learngene import condense
    >>> from hf_learngene.condensing import save_report
    >>> learngene = condense(ancestor, method="cka", num_layers=6, condense_dataset=ds)
    >>> save_report(learngene, "./vit-learngene")
    >>> learngene.save_pretrained("./vit-learngene")  # the card shows the heatmap
    ```"""
    written = write_report_files(learngene, output_dir, heatmap=heatmap)
    if "heatmap" in written and os.path.isfile(os.path.join(output_dir, "config.json")):
        from ..model_card import write_model_card

        learngene.config.save_pretrained(output_dir)
        write_model_card(learngene, output_dir)
    return written


__all__ = ["HEATMAP_FILE", "REPORT_FILE", "condense_report", "plot_heatmap", "save_report", "write_report_files"]
