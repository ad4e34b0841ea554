"""Model cards for learngenes and descendants, rendered with huggingface_hub from the templates in `templates/`.

The kind of card comes from the config (`architectures`, else the class name), so a model loaded from remote code
gets the same card as one built by the package. Everything a card shows comes from the config, the model's
`training_summary` and the files in the folder it is written into; nothing names a path of the machine.
"""

from __future__ import annotations

import html
import os
import re
from importlib import resources
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

from ..utils import is_hub_id

TEMPLATES = resources.files("hf_learngene") / "model_card" / "templates"
CARD_TAGS = ["learngene", "vision-transformer", "hf_learngene"]
DESCENDANT_ARCHITECTURE = "DescendantForImageClassification"
HEATMAP_FILE = "condense_heatmap.png"
LEARNING_CURVES_IMAGE = "learning_curves.png"

# Where the selection rule is our reading rather than the paper's text (LEARNGENE.md), the card says so.
METHOD_CHOICES = {
    "auto": (
        "The authors' code learns per-pair weights between ancestry and pseudo-descendant layers but does not say how "
        "they become a selection; hf_learngene scores each ancestry layer by the total learned weight of its pairs "
        "(the mean weight over held-out condensing images, summed over the pseudo-descendant layers) and keeps the "
        "top k (in ancestry order). Every (ancestry, pseudo-descendant) layer pair is weighted, each pair's weight "
        'starts at 1, and the pseudo descendant trains with AdamW by default (`optimizer="sgd"` gives the '
        "authors' SGD), because SGD barely trains a ViT from scratch on a small condensing set."
    ),
}


# How a descendant's width and new layers were derived, in the card's words.
WIDTH_RULES = {
    "uniform": "evenly spaced indices in every dimension, one selection per dimension shared by every tensor "
    "(weight selection, Xu et al., ICLR 2024)",
    "heads": "whole heads kept (head_dim unchanged): evenly spaced heads, residual channels and MLP neurons",
    "activation": "the residual channels, heads (whole) and MLP neurons with the largest activations on sample images",
    "given": "indices given explicitly",
}
NEW_LAYER_INITS = {
    "trunc_normal": "random (truncated normal, transformers' ViT scheme)",
    "mimetic": "random, attention mimetic (W_q W_k^T ~ I, W_v W_o ~ -I; Trockman & Kolter 2023)",
    "identity": "each started as the identity (random, with the attention o_proj and MLP fc2 at zero), so the "
    "descendant started out computing exactly what its inherited layers compute",
    "copy": "a copy of the nearest inherited layer in the layout (a tie goes to the earlier one)",
    "linear": "theta_A + (l / D) theta_B at their depth l of D, with (theta_A, theta_B) fitted by least squares over "
    "the inherited layers at their positions",
}
_SHOWN_INDICES = 80  # characters of each kept-index list the card shows

# The ancestor families by their names in the card.
FAMILY_NAMES = {
    "vit": "ViT",
    "deit": "DeiT (distilled)",
    "dinov2": "DINOv2",
    "dinov2_with_registers": "DINOv2 with registers",
    "clip": "CLIP vision tower",
    "siglip": "SigLIP vision tower",
    "vit_mae": "ViT-MAE encoder",
    "timm": "timm ViT",
}
POOLING_NAMES = {
    "cls": "CLS token",
    "cls_distillation": "mean of two heads, on the CLS and distillation tokens",
    "mean": "mean of the patch tokens",
    "map": "multi-head attention pooling head (MAP)",
}


def display_name(name: str | None) -> str | None:
    """A name safe to print in a card: a Hub id as it is, anything path-like by its last component only, escaped so
    that it renders as text (no HTML, no table breaks)."""
    if not name:
        return None
    if not is_hub_id(name):
        name = os.path.basename(os.path.normpath(name)) or name
    return html.escape(name).replace("|", "\\|")


def _geometry_str(value) -> str:
    return "x".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else html.escape(str(value))


def is_descendant(model) -> bool:
    """Whether `model` is a descendant classifier: by its architecture's name (the class name, which a remote-code
    copy shares with the package's class; else the config's `architectures`), never by `isinstance`."""
    name = type(model).__name__
    if name in (DESCENDANT_ARCHITECTURE, "LearngeneModel"):
        return name == DESCENDANT_ARCHITECTURE
    return DESCENDANT_ARCHITECTURE in (getattr(model.config, "architectures", None) or [])


def family_description(config, escape: bool = True) -> dict[str, Any]:
    """The ancestor family as a card (and `hf-learngene info`) shows it: its name, what its layers compute beyond a
    plain ViT, and what was chosen when reading it. `escape=False` gives plain text (for a terminal)."""
    text = html.escape if escape else str
    family = getattr(config, "ancestor_family", "vit") or "vit"
    parts = []
    tokens = [
        name
        for name, present in (
            ("CLS", getattr(config, "class_token", True)),
            ("distillation", getattr(config, "distillation_token", False)),
            (f"{getattr(config, 'num_register_tokens', 0)} register", getattr(config, "num_register_tokens", 0)),
        )
        if present
    ]
    parts.append(f"{' + '.join(tokens) if tokens else 'no'} prefix token{'s' if len(tokens) != 1 else ''}")
    if getattr(config, "pre_layernorm", False):
        parts.append("pre-LayerNorm")
    if getattr(config, "layer_scale", False):
        parts.append("layer scale")
    mlp = "SwiGLU" if getattr(config, "mlp_type", "mlp") == "swiglu" else "MLP"
    parts.append(f"{mlp} ({config.hidden_act})")
    if getattr(config, "final_layernorm", "sequence") == "pooled":
        parts.append("final LayerNorm on the pooled vector")
    if getattr(config, "interpolate_pos_encoding", False):
        parts.append("positions always interpolated to the input")
    pooling = getattr(config, "pooling", "cls")
    parts.append(f"pooling: {POOLING_NAMES.get(pooling, pooling)}")
    choices = getattr(config, "family_choices", None) or {}
    quote = "`" if escape else ""
    return {
        "family": f"{text(FAMILY_NAMES.get(family, family))} ({quote}{text(family)}{quote})",
        "architecture": text("; ".join(parts)),
        "family_choices": [f"{text(str(k))}: {text(str(v))}" for k, v in choices.items()],
    }


def _common(model, repo_id: str | None) -> dict[str, Any]:
    config = model.config
    ancestor = config.ancestor_name_or_path
    return {
        **family_description(config),
        "ancestor": display_name(ancestor),
        "ancestor_url": f"https://huggingface.co/{ancestor}" if is_hub_id(ancestor) else None,
        "ancestor_revision": html.escape(str(config.ancestor_revision)) if config.ancestor_revision else None,
        "ancestor_commit": getattr(config, "ancestor_commit", None),
        "ancestor_sha256": getattr(config, "ancestor_sha256", None),
        "ancestor_num_layers": config.ancestor_num_layers,
        "layer_indices": config.layer_indices,
        "method": config.condensing_method or "manual",
        "num_parameters": f"{model.num_parameters():,}",
        "library_version": config.hf_learngene_version,
        "repo_id": repo_id or "path/to/this/folder",
    }


def _card_data(model, tags: list[str] | None, **extra) -> ModelCardData:
    ancestor = model.config.ancestor_name_or_path
    tags = list(dict.fromkeys(CARD_TAGS + list(getattr(model, "model_tags", None) or []) + list(tags or [])))
    return ModelCardData(
        library_name="hf_learngene", tags=tags, base_model=ancestor if is_hub_id(ancestor) else None, **extra
    )


def learngene_card(
    model, repo_id: str | None = None, folder: str | os.PathLike | None = None, tags: list[str] | None = None
) -> ModelCard:
    """The card of a learngene: provenance, kept layers, scores and usage."""
    config = model.config
    details = config.condensing_details or {}
    scores = None
    if config.condensing_scores is not None:
        kept = set(config.layer_indices)
        scores = [{"index": i, "score": s, "kept": i in kept} for i, s in enumerate(config.condensing_scores)]
    method = config.condensing_method or "manual"
    k = len(config.layer_indices)
    ancestor = display_name(config.ancestor_name_or_path)
    heatmap = folder is not None and os.path.isfile(os.path.join(folder, HEATMAP_FILE))
    linear = getattr(config, "learngene_form", "layers") == "linear"
    kind = "Linear learngene (theta_A, theta_B fitted over" if linear else "Learngene ("
    return ModelCard.from_template(
        _card_data(model, tags),
        template_path=str(TEMPLATES / "learngene_card.md"),
        title=f"{kind}{' ' if linear else ''}{k} of {config.ancestor_num_layers} layers"
        + (f" of {ancestor})" if ancestor else ")"),
        num_layers=k,
        method_summary=details.get("summary"),
        hidden_size=config.hidden_size,
        num_heads=config.num_attention_heads,
        intermediate_size=config.intermediate_size,
        patch_size=_geometry_str(config.patch_size),
        image_size=_geometry_str(config.image_size),
        num_channels=config.num_channels,
        scores=scores,
        heatmap=HEATMAP_FILE if heatmap else None,
        condensing_set=html.escape(str(details["condensing_set"])) if details.get("condensing_set") else None,
        choices=METHOD_CHOICES.get(method),
        processor_note=html.escape(str(details["image_processor"])) if details.get("image_processor") else None,
        # A linear learngene's descendants inherit no layer: every layer is generated (R).
        example_layout="R" * k if linear else "L" * k + "RR",
        linear=linear,
        **_common(model, repo_id),
    )


def _training(summary: dict[str, Any] | None, folder) -> dict[str, Any] | None:
    if not summary:
        return None
    metrics = {
        key: _fmt(value)
        for key, value in (summary.get("metrics") or {}).items()
        if isinstance(value, (int, float)) and not key.endswith(("_runtime", "_per_second"))
    }
    curves = [{key: _fmt(value) for key, value in entry.items()} for entry in summary.get("learning_curves") or []]
    dataset = summary.get("dataset")
    image = folder is not None and os.path.isfile(os.path.join(folder, LEARNING_CURVES_IMAGE))
    return {
        "dataset": display_name(dataset) if dataset else None,
        "sizes": ", ".join(
            f"{n:,} {what}"
            for n, what in ((summary.get("num_train"), "training"), (summary.get("num_eval"), "evaluation"))
            if n is not None
        ),
        "setup": {html.escape(str(k)): _fmt(v) for k, v in (summary.get("setup") or {}).items()},
        "metrics": metrics,
        "curves": curves,
        "curve_columns": _curve_columns(summary.get("learning_curves") or []),
        "curves_image": LEARNING_CURVES_IMAGE if image else None,
    }


def _curve_columns(rows: list[dict[str, Any]]) -> list[str]:
    """`epoch`, `train_loss`, then every evaluation metric the rows hold (`eval_loss` first)."""
    present = [key for row in rows for key in row]
    evals = sorted({k for k in present if k.startswith("eval_")}, key=lambda k: (k != "eval_loss", present.index(k)))
    return [k for k in ("epoch", "train_loss") if k in present] + evals


def _shorten(text: str) -> str:
    return text if len(text) <= _SHOWN_INDICES else text[:_SHOWN_INDICES].rsplit(",", 1)[0] + ",..."


def _kept(value) -> str:
    """A kept-index record (one compact list, or one per layer) as card text."""
    if isinstance(value, str):
        return f"`{_shorten(value)}`"
    return "; ".join(f"layer {i}: `{_shorten(v)}`" for i, v in enumerate(value))


def _sizes(config) -> dict[str, Any]:
    """The descendant's width and depth, and how each was derived."""
    heads, hidden = config.num_attention_heads, config.hidden_size
    source = (config.width_indices or {}).get("from")
    if source is None:
        width = (
            f"hidden {hidden}, {heads} heads (head_dim {hidden // heads}), MLP {config.intermediate_size}: the "
            "learngene's"
        )
        selection = None
    else:
        width = (
            f"hidden {hidden} of {source['hidden_size']}, {heads} of {source['num_attention_heads']} heads "
            f"(head_dim {hidden // heads}), MLP {config.intermediate_size} of {source['intermediate_size']}: "
            "selected from the learngene's"
        )
        rule = config.width_selection
        selection = {
            "rule": rule,
            "how": WIDTH_RULES.get(rule, ""),
            "kept": f"hidden {_kept(config.width_indices['hidden'])}; attention channels "
            f"{_kept(config.width_indices['attention'])}; MLP {_kept(config.width_indices['intermediate'])}",
        }
    init = config.new_layer_init
    how = NEW_LAYER_INITS.get(init, "")
    if init == "linear" and getattr(config, "learngene_form", "layers") == "linear":
        how = "theta_A + (l / D) theta_B at their depth l of D, from the linear learngene's (theta_A, theta_B)"
    return {"width": width, "selection": selection, "new_layer_how": how}


def descendant_card(
    model, repo_id: str | None = None, folder: str | os.PathLike | None = None, tags: list[str] | None = None
) -> ModelCard:
    """The card of a descendant: learngene provenance, layout, sizes and how each was derived, labels, training and
    results."""
    config = model.config
    labels = [html.escape(str(config.id2label[i])) for i in sorted(config.id2label)]
    shown = ", ".join(labels[:20]) + (", ..." if len(labels) > 20 else "")
    layout = config.layout or "L" * len(config.layer_indices)
    summary = getattr(model, "training_summary", None)
    extra = {"pipeline_tag": "image-classification"}
    if summary and summary.get("dataset") and is_hub_id(summary["dataset"]):
        extra["datasets"] = [summary["dataset"]]
    card_data = _card_data(model, tags, **extra)
    card_data.tags = card_data.tags + ["image-classification"]
    return ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATES / "descendant_card.md"),
        title=f"Descendant ViT ({layout})",
        num_inherited=layout.count("L"),
        num_new=layout.count("R"),
        layout=layout,
        new_layer_init=config.new_layer_init,
        linear_learngene=getattr(config, "learngene_form", "layers") == "linear",
        **_sizes(config),
        problem_type=config.problem_type or "single_label_classification",
        num_labels=config.num_labels,
        labels=shown,
        training=_training(summary, folder),
        **_common(model, repo_id),
    )


def model_card(
    model, repo_id: str | None = None, folder: str | os.PathLike | None = None, tags: list[str] | None = None
) -> ModelCard:
    """The card of a learngene or a descendant, decided from its config. `folder` is where the card will be written:
    pictures found there (the condensing heatmap, the learning curves) are shown; `tags` are added to the model's."""
    card = (descendant_card if is_descendant(model) else learngene_card)(model, repo_id, folder, tags)
    # Optional template sections leave runs of blank lines behind.
    card.content = re.sub(r"\n{3,}", "\n\n", card.content)
    return card


def write_model_card(
    model, folder: str | os.PathLike, repo_id: str | None = None, tags: list[str] | None = None
) -> str:
    """Write the model card to `folder/README.md`; returns its path."""
    path = os.path.join(folder, "README.md")
    model_card(model, repo_id, folder, tags).save(path)
    return path


__all__ = [
    "CARD_TAGS",
    "FAMILY_NAMES",
    "NEW_LAYER_INITS",
    "WIDTH_RULES",
    "descendant_card",
    "display_name",
    "family_description",
    "is_descendant",
    "is_hub_id",
    "learngene_card",
    "model_card",
    "write_model_card",
]
