"""What travels with a learngene or descendant besides `config.json` and `model.safetensors`.

`LearngenePreTrainedModel.from_pretrained`, `save_pretrained` and `push_to_hub` call the hooks in [`HOOKS`] when
this module is loaded (it is, whenever `hf_learngene` is imported):

- the image processor (`preprocessor_config.json`), kept as `model.image_processor`;
- the condensing report (`condense_report.json`: method, selection, scores, settings, and the histories and score
  matrices that stay out of `config.json`), kept as `model.condensing_report`, and its heatmap
  (`condense_heatmap.png`);
- the model card (`README.md`), rendered by [`hf_learngene.model_card`] from the config, the model's
  `training_summary` and the pictures in the folder.

Pushing saves all of it into a temporary folder and uploads that folder in one commit, so the Hub gets the same
files as `save_pretrained` (transformers' own `push_to_hub` would replace the card with its generic one).
Everything here reads JSON and safetensors only: nothing is unpickled.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import EntryNotFoundError

from .data import load_image_processor
from .evaluation import draw_learning_curves
from .model_card import HEATMAP_FILE, LEARNING_CURVES_IMAGE, is_descendant, write_model_card
from .utils import atomic_folder

REPORT_FILE = "condense_report.json"

_HUB_KWARGS = ("revision", "cache_dir", "local_files_only", "token", "subfolder")

# condensing_report key -> (title, column label) of a pair matrix a method reports.
_MATRICES = {
    "pair_weights": ("Learned pair weights (mean lambda)", "pseudo-descendant layer"),
    "cka_matrix": ("Linear CKA", "pseudo-descendant layer"),
}


# ---------------------------------------------------------------------------------------------------------------------
# The condensing report and its heatmap


def condense_report(learngene) -> dict[str, Any]:
    """The report of a condensed learngene: the config's compact record (ancestor, method, selection, scores,
    settings) and what the method measured beyond it (`learngene.condensing_report`)."""
    config = learngene.config
    report = {
        "ancestor": config.ancestor_name_or_path,
        "ancestor_revision": config.ancestor_revision,
        "ancestor_commit": getattr(config, "ancestor_commit", None),
        "ancestor_sha256": getattr(config, "ancestor_sha256", None),
        "ancestor_num_layers": config.ancestor_num_layers,
        "method": config.condensing_method,
        "layer_indices": list(config.layer_indices),
        "scores": config.condensing_scores,
        "details": config.condensing_details or {},
        "hf_learngene_version": config.hf_learngene_version,
    }
    report.update(getattr(learngene, "condensing_report", None) or {})
    return report


def _matrix(report: dict[str, Any]) -> tuple[list[list[float]], str, str] | None:
    for key, (title, xlabel) in _MATRICES.items():
        if report.get(key):
            return report[key], title, xlabel
    return None


def plot_heatmap(learngene, path: str | os.PathLike) -> bool:
    """Draw the per-layer scores (and the pair matrix, when the method has one) to `path`; False when the learngene
    has no scores. Uses matplotlib's object API (no pyplot): headless, and global state is left alone."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    config = learngene.config
    scores = config.condensing_scores
    if not scores or not all(np.isfinite(scores)):
        return False
    matrix = _matrix(getattr(learngene, "condensing_report", None) or {})
    kept = set(config.layer_indices)
    rows = len(scores)
    height = max(2.5, 0.3 * rows + 1.2)
    if matrix is None:
        figure = Figure(figsize=(4.0, height))
        score_axes = figure.add_subplot(1, 1, 1)
    else:
        values = np.asarray(matrix[0], dtype=float)
        figure = Figure(figsize=(4.0 + 0.35 * values.shape[1], height))
        matrix_axes, score_axes = figure.subplots(1, 2, gridspec_kw={"width_ratios": [max(values.shape[1], 2), 3]})
        image = matrix_axes.imshow(values, aspect="auto", cmap="viridis")
        matrix_axes.set_title(matrix[1], fontsize=9)
        matrix_axes.set_xlabel(matrix[2])
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


def write_condense_report(learngene, folder: str | os.PathLike, *, heatmap: bool = True) -> dict[str, str]:
    """Write `condense_report.json` and, when the learngene has scores, `condense_heatmap.png` into `folder`.
    Returns the paths written (`"report"`, `"heatmap"`)."""
    os.makedirs(folder, exist_ok=True)
    written = {}
    if heatmap:
        path = os.path.join(folder, HEATMAP_FILE)
        if plot_heatmap(learngene, path):
            written["heatmap"] = path
    path = os.path.join(folder, REPORT_FILE)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(condense_report(learngene), f, indent=2, sort_keys=True)
        f.write("\n")
    written["report"] = path
    return written


def _hub_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {key: kwargs[key] for key in _HUB_KWARGS if kwargs.get(key) is not None}


def read_condense_report(name_or_path: str | os.PathLike, hub_kwargs: dict[str, Any] | None = None) -> dict | None:
    """The `condense_report.json` saved beside a learngene (a folder or a Hub repo), or None when there is none."""
    hub_kwargs = dict(hub_kwargs or {})
    name_or_path = os.fspath(name_or_path)
    if os.path.isdir(name_or_path):
        path = os.path.join(name_or_path, hub_kwargs.get("subfolder", ""), REPORT_FILE)
        if not os.path.isfile(path):
            return None
    else:
        try:
            path = hf_hub_download(name_or_path, REPORT_FILE, **hub_kwargs)
        except (EntryNotFoundError, OSError, ValueError):
            return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


# Keys of condense_report.json that the config already holds; the rest is what `condensing_report` keeps.
_CONFIG_KEYS = {
    "ancestor",
    "ancestor_revision",
    "ancestor_commit",
    "ancestor_sha256",
    "ancestor_num_layers",
    "method",
    "layer_indices",
    "scores",
    "details",
    "hf_learngene_version",
}


# ---------------------------------------------------------------------------------------------------------------------
# Save, load and push


# Every checkpoint's remote code can build both classes: a learngene's grows descendants where hf_learngene is not
# installed (`AutoModelForImageClassification.from_pretrained(..., trust_remote_code=True, num_labels=...)`).
_AUTO_MAP = {
    "AutoConfig": "configuration_learngene.LearngeneConfig",
    "AutoModel": "modeling_learngene.LearngeneModel",
    "AutoModelForImageClassification": "modeling_learngene.DescendantForImageClassification",
}


def _complete_auto_map(model, folder: str | os.PathLike) -> None:
    path = os.path.join(folder, "config.json")
    if not os.path.isfile(os.path.join(folder, "modeling_learngene.py")) or not os.path.isfile(path):
        return
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    if config.get("auto_map") == {**config.get("auto_map", {}), **_AUTO_MAP}:
        return
    config["auto_map"] = {**config.get("auto_map", {}), **_AUTO_MAP}
    model.config.auto_map = dict(config["auto_map"])
    scratch = f"{path}.tmp-{os.getpid()}"
    with open(scratch, "w", encoding="utf-8") as f:
        f.write(json.dumps(config, indent=2, sort_keys=True) + "\n")
    os.replace(scratch, path)


def save_extras(model, folder: str | os.PathLike, repo_id: str | None = None) -> None:
    """Write the image processor, the condensing report and heatmap (learngenes that have one) and the model card
    into `folder`, which already holds the saved weights and config; complete the remote-code `auto_map`."""
    _complete_auto_map(model, folder)
    processor = getattr(model, "image_processor", None)
    if processor is not None:
        processor.save_pretrained(folder)
    if not is_descendant(model) and (model.config.condensing_scores or getattr(model, "condensing_report", None)):
        write_condense_report(model, folder)
    curves = (getattr(model, "training_summary", None) or {}).get("learning_curves")
    if curves and not os.path.isfile(os.path.join(folder, LEARNING_CURVES_IMAGE)):
        # The card shows the curves: draw them into every folder the model is saved or pushed from.
        draw_learning_curves(curves, os.path.join(folder, LEARNING_CURVES_IMAGE))
    write_model_card(model, folder, repo_id)


def output_kind(folder: str | os.PathLike) -> str | None:
    """What an existing folder holds: `"learngene"` or `"descendant"` (a folder hf_learngene wrote), `"other"` (any
    other non-empty folder), or None (missing or empty)."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder) or not os.listdir(folder):
        return None
    try:
        with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError):
        return "other"
    if not isinstance(config, dict) or config.get("model_type") != "learngene":
        return "other"
    architectures = config.get("architectures") or []
    return "descendant" if "DescendantForImageClassification" in architectures else "learngene"


def check_output_folder(folder: str | os.PathLike, kind: str, overwrite: bool) -> str:
    """Check that `folder` may receive a `kind` (`"learngene"` or `"descendant"`): it must be missing or empty, or,
    with `overwrite=True`, hold a previous output of the same kind. Anything else (an ancestor checkpoint, a dataset,
    a descendant where a learngene goes) is refused, so that nothing of the user's is replaced. Returns the
    absolute path."""
    folder = os.path.abspath(os.path.expanduser(os.fspath(folder)))
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ValueError(f"Output path {folder!r} is a file; pass a folder.")
    found = output_kind(folder)
    if found is None:
        return folder
    if not overwrite:
        raise FileExistsError(
            f"Output folder {folder!r} exists and is not empty; pass overwrite=True (--overwrite) to replace a "
            f"previous {kind} there, or choose another folder."
        )
    if found != kind:
        what = "files that hf_learngene did not write" if found == "other" else f"a {found}"
        raise FileExistsError(
            f"Output folder {folder!r} holds {what}; overwriting may only replace a previous {kind}. Choose another "
            "folder."
        )
    return folder


def save_folder(model, folder: str | os.PathLike, *, overwrite: bool = False, **save_kwargs) -> str:
    """`model.save_pretrained(folder)` all at once: everything is written into a temporary folder beside `folder`
    and then takes its place with a rename, so an interrupted save (even a kill) leaves either the previous folder or
    the new one, never a mix, and no stale file of the previous save survives. See [`check_output_folder`] for what
    `overwrite` may replace. Returns the absolute path."""
    kind = "descendant" if is_descendant(model) else "learngene"
    folder = check_output_folder(folder, kind, overwrite)
    with atomic_folder(folder, replace=True) as scratch:
        model.save_pretrained(scratch, **save_kwargs)
    return folder


def push_to_hub(
    model,
    repo_id: str,
    *,
    commit_message: str | None = None,
    commit_description: str | None = None,
    private: bool | None = None,
    token: bool | str | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    max_shard_size: int | str | None = "50GB",
    tags: list[str] | None = None,
    **kwargs,
):
    """Upload what `model.save_pretrained` writes (weights, config, image processor, report, card) to `repo_id` in
    one commit. Takes the arguments of transformers' `PreTrainedModel.push_to_hub`; returns the `CommitInfo`."""
    if kwargs:
        raise TypeError(
            f"push_to_hub() got unexpected argument(s) {sorted(kwargs)}; it takes commit_message, "
            "commit_description, private, token, revision, create_pr, max_shard_size and tags."
        )
    api = HfApi(token=token)
    repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
    if revision is not None and not revision.startswith("refs/pr"):
        api.create_branch(repo_id=repo_id, branch=revision, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder, max_shard_size=max_shard_size)
        write_model_card(model, folder, repo_id, tags=tags)
        return api.upload_folder(
            repo_id=repo_id,
            folder_path=folder,
            commit_message=commit_message or f"Upload {type(model).__name__}",
            commit_description=commit_description,
            revision=revision,
            create_pr=create_pr,
        )


class _Hooks:
    """Called by `LearngenePreTrainedModel` (see `modeling_learngene._serialization_hooks`)."""

    @staticmethod
    def after_load(model, name_or_path, kwargs: dict[str, Any]) -> None:
        hub_kwargs = _hub_kwargs(kwargs)
        model.image_processor = load_image_processor(name_or_path, hub_kwargs)
        if not is_descendant(model) and model.config.condensing_method is not None:
            report = read_condense_report(name_or_path, hub_kwargs)
            if report is not None:
                model.condensing_report = {k: v for k, v in report.items() if k not in _CONFIG_KEYS} or None

    @staticmethod
    def after_save(model, folder) -> None:
        save_extras(model, folder)

    push_to_hub = staticmethod(push_to_hub)


HOOKS = _Hooks()

__all__ = [
    "HOOKS",
    "REPORT_FILE",
    "check_output_folder",
    "condense_report",
    "plot_heatmap",
    "push_to_hub",
    "output_kind",
    "read_condense_report",
    "save_extras",
    "save_folder",
    "write_condense_report",
]
