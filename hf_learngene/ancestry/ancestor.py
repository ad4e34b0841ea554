"""The ancestor every condensing method reads: geometry, tensors under this package's names, and provenance."""

from __future__ import annotations

import numbers
import re
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import PretrainedConfig

from ..configuration_learngene import LearngeneConfig
from ..modeling_learngene import LearngeneModel


@dataclass
class Ancestor:
    """An ancestry ViT in a form every condensing method can use: geometry, tensors and provenance.

    `config` is the ancestor's own (vision) config; `fields` are the [`LearngeneConfig`] fields its family reader
    derived (the ViT geometry and what the family changes: prefix tokens, layer scale, MLP type, norms, pooling);
    `state_dict` holds its tensors under [`LearngeneModel`]'s names.
    """

    config: PretrainedConfig
    state_dict: dict[str, torch.Tensor]
    name_or_path: str | None = None
    revision: str | None = None
    image_processor: Any = None
    layer_indices: list[int] = field(default_factory=list)
    commit: str | None = None
    weights_sha256: str | None = None
    image_processor_is_default: bool = False
    family: str = "vit"
    fields: dict[str, Any] = field(default_factory=dict)
    choices: dict[str, str] | None = None

    @property
    def num_layers(self) -> int:
        return len(self.layer_indices)

    def geometry(self) -> dict[str, Any]:
        """The [`LearngeneConfig`] fields of a model with this ancestor's layers (geometry and family architecture),
        e.g. to build a pseudo descendant or a scratch model of the same kind."""
        return dict(self.fields)

    def learngene_config(self, layer_indices: list[int], **provenance) -> LearngeneConfig:
        """A `LearngeneConfig` for a learngene cut from this ancestor at `layer_indices`."""
        validate_layer_indices(layer_indices, self.num_layers)
        return LearngeneConfig(
            **self.geometry(),
            layer_indices=[self.source_layer_indices[i] for i in layer_indices],
            ancestor_name_or_path=self.name_or_path,
            ancestor_revision=self.revision,
            ancestor_commit=self.commit,
            ancestor_sha256=self.weights_sha256,
            ancestor_num_layers=self.source_depth,
            ancestor_family=self.family,
            family_choices=self.choices or None,
            **provenance,
        )

    @property
    def source_layer_indices(self) -> list[int]:
        """Index of each layer in the original ancestry model (differs from its position for a learngene)."""
        if getattr(self.config, "model_type", None) == "learngene":
            return list(self.config.layer_indices)
        return list(self.layer_indices)

    @property
    def source_depth(self) -> int:
        """Depth of the original ancestry model."""
        return int(getattr(self.config, "ancestor_num_layers", None) or self.num_layers)

    def cut(self, layer_indices: list[int], **provenance) -> LearngeneModel:
        """Build the `LearngeneModel` holding embeddings, the layers at `layer_indices` and the final LayerNorm (and
        the family's pre-LayerNorm and pooling head where it has them).

        `layer_indices` are positions in this ancestor (0-based, strictly increasing order not required but kept).
        Tensors are cloned, so the learngene shares no memory with the ancestor.
        """
        config = self.learngene_config(layer_indices, **provenance)
        model = LearngeneModel(config)
        state = {}
        for key, tensor in self.state_dict.items():
            match = re.match(r"^layers\.(\d+)\.(.*)$", key)
            if match is None:
                state[key] = tensor
                continue
            position = int(match.group(1))
            if position in layer_indices:
                state[f"layers.{layer_indices.index(position)}.{match.group(2)}"] = tensor
        expected = set(model.state_dict())
        missing, unexpected = expected - set(state), set(state) - expected
        if missing or unexpected:
            raise ValueError(
                f"The ancestor's tensors do not fit a {self.family!r} ViT of its config: missing "
                f"{sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}. Is it a checkpoint of that family, with "
                "every tensor saved?"
            )
        with torch.no_grad():
            model.load_state_dict({k: v.detach().clone().contiguous() for k, v in state.items()}, strict=True)
        model.image_processor = self.image_processor
        return model

    def full_model(self) -> LearngeneModel:
        """The whole ancestor as a `LearngeneModel` (every layer kept), e.g. to extract per-layer features."""
        return self.cut(list(range(self.num_layers)))


def validate_layer_indices(layer_indices, num_layers: int) -> list[int]:
    """Check layer positions against an ancestor depth; returns them as a list of ints."""
    # Integers only: a float, a string ("13" is not [1, 3]) or a bool is a mistake, not something to coerce.
    if isinstance(layer_indices, (str, bytes)) or not hasattr(layer_indices, "__iter__"):
        raise ValueError(f"Layer indices must be a list of integers such as [0, 1, 11], got {layer_indices!r}.")
    layer_indices = list(layer_indices)
    bad_types = [i for i in layer_indices if isinstance(i, bool) or not isinstance(i, numbers.Integral)]
    if bad_types:
        raise ValueError(
            f"Layer indices must be integers such as [0, 1, 11]; {bad_types!r} in {layer_indices!r} are not."
        )
    indices = [int(i) for i in layer_indices]
    if not indices:
        raise ValueError("No layers selected: pass at least one ancestry layer index.")
    if len(set(indices)) != len(indices):
        raise ValueError(f"Layer indices {indices} contain duplicates; each ancestry layer can be kept once.")
    bad = [i for i in indices if not 0 <= i < num_layers]
    if bad:
        raise ValueError(
            f"Layer indices {bad} are out of range: the ancestor has {num_layers} layers (valid: 0..{num_layers - 1})."
        )
    return indices


__all__ = ["Ancestor", "validate_layer_indices"]
