"""Model cards for learngenes and descendants, rendered with huggingface_hub from the templates in `templates/`."""

from __future__ import annotations

import os
import re
from importlib import resources

from huggingface_hub import ModelCard, ModelCardData

TEMPLATES = resources.files("hf_learngene") / "templates"
CARD_TAGS = ["learngene", "vision-transformer", "hf_learngene"]

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


def _is_hub_id(name: str | None) -> bool:
    return bool(name) and not os.path.exists(name) and name.count("/") == 1 and not name.startswith((".", "/"))


def _geometry_str(value) -> str:
    return "x".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)


def _common(model, repo_id: str | None) -> dict:
    from . import __version__

    config = model.config
    ancestor = config.ancestor_name_or_path
    return {
        "ancestor": ancestor,
        "ancestor_url": f"https://huggingface.co/{ancestor}" if _is_hub_id(ancestor) else ancestor,
        "ancestor_revision": config.ancestor_revision,
        "ancestor_num_layers": config.ancestor_num_layers,
        "layer_indices": config.layer_indices,
        "method": config.condensing_method or "manual",
        "num_parameters": f"{model.num_parameters():,}",
        "library_version": config.hf_learngene_version or __version__,
        "repo_id": repo_id or "path/to/this/folder",
    }


def learngene_card(model, repo_id: str | None = None, extra_sections: str | None = None) -> ModelCard:
    """The card of a `LearngeneModel`: provenance, kept layers, scores and usage."""
    from .condensing import CONDENSING_METHODS

    config = model.config
    ancestor = config.ancestor_name_or_path
    details = config.condensing_details or {}
    scores = None
    if config.condensing_scores is not None:
        kept = set(config.layer_indices)
        scores = [{"index": i, "score": s, "kept": i in kept} for i, s in enumerate(config.condensing_scores)]
    method = config.condensing_method or "manual"
    card_data = ModelCardData(
        library_name="hf_learngene",
        tags=list(CARD_TAGS),
        base_model=ancestor if _is_hub_id(ancestor) else None,
    )
    k = config.num_hidden_layers
    return ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATES / "learngene_card.md"),
        title=f"Learngene ({k} of {config.ancestor_num_layers} layers" + (f" of {ancestor})" if ancestor else ")"),
        num_layers=k,
        method_summary=CONDENSING_METHODS[method].summary if method in CONDENSING_METHODS else None,
        hidden_size=config.hidden_size,
        num_heads=config.num_attention_heads,
        intermediate_size=config.intermediate_size,
        patch_size=_geometry_str(config.patch_size),
        image_size=_geometry_str(config.image_size),
        num_channels=config.num_channels,
        scores=scores,
        heatmap=details.get("heatmap"),
        condensing_set=details.get("condensing_set"),
        choices=METHOD_CHOICES.get(method),
        example_layout="L" * k + "RR",
        extra_sections=extra_sections,
        **_common(model, repo_id),
    )


def descendant_card(model, repo_id: str | None = None, extra_sections: str | None = None) -> ModelCard:
    """The card of a `DescendantForImageClassification`: learngene provenance, layout, labels and results."""
    config = model.config
    ancestor = config.ancestor_name_or_path
    card_data = ModelCardData(
        library_name="hf_learngene",
        tags=list(CARD_TAGS) + ["image-classification"],
        base_model=ancestor if _is_hub_id(ancestor) else None,
        pipeline_tag="image-classification",
    )
    labels = [config.id2label[i] for i in sorted(config.id2label)]
    shown = ", ".join(str(label) for label in labels[:20]) + (", ..." if len(labels) > 20 else "")
    return ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATES / "descendant_card.md"),
        title=f"Descendant ViT ({config.layout})",
        num_inherited=config.layout.count("L"),
        num_new=config.layout.count("R"),
        layout=config.layout,
        new_layer_init=config.new_layer_init,
        num_labels=config.num_labels,
        labels=shown,
        extra_sections=extra_sections,
        **_common(model, repo_id),
    )


def model_card(model, repo_id: str | None = None, extra_sections: str | None = None) -> ModelCard:
    """The right card for a learngene or a descendant."""
    from .modeling_learngene import DescendantForImageClassification

    if isinstance(model, DescendantForImageClassification):
        return descendant_card(model, repo_id, extra_sections)
    return learngene_card(model, repo_id, extra_sections)


def write_model_card(model, save_directory, repo_id: str | None = None) -> None:
    """Write README.md into `save_directory`. `model.card_sections` (markdown, e.g. training results) is kept."""
    from .modeling_learngene import LearngeneModel

    details = model.config.condensing_details or {}
    heatmap = details.get("heatmap")
    if isinstance(model, LearngeneModel) and heatmap and not os.path.isfile(os.path.join(save_directory, heatmap)):
        # The card links the heatmap: draw it (and the report) into every folder the learngene is saved or pushed from.
        from .condensing.report import write_report_files

        write_report_files(model, save_directory)
    repo_id = repo_id or getattr(model, "_card_repo_id", None)
    card = model_card(model, repo_id, getattr(model, "card_sections", None))
    # Optional template sections leave runs of blank lines behind.
    card.content = re.sub(r"\n{3,}", "\n\n", card.content)
    card.save(os.path.join(save_directory, "README.md"))


__all__ = ["descendant_card", "learngene_card", "model_card", "write_model_card"]
