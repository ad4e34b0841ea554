"""Learngene configuration.

This file travels as remote code next to saved checkpoints, so it imports only torch, transformers,
the standard library and its sibling ``modeling_learngene.py``.
"""

from __future__ import annotations

import inspect
from typing import Any

from transformers import PretrainedConfig
from transformers.utils import logging

logger = logging.get_logger(__name__)

LAYOUT_INHERITED = "L"
LAYOUT_NEW = "R"
NEW_LAYER_INITS = ("trunc_normal", "mimetic")

# The ViT geometry a learngene shares with its ancestor and every descendant (the fields ViTConfig also has).
GEOMETRY_FIELDS = (
    "hidden_size",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "initializer_range",
    "layer_norm_eps",
    "image_size",
    "patch_size",
    "num_channels",
    "qkv_bias",
)


def _library_version() -> str | None:
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover - Python without importlib.metadata
        return None
    try:
        return version("hf_learngene")
    except PackageNotFoundError:
        return None


def resolve_layout(layout: str | None, num_new_layers: int | None, num_inherited: int) -> str:
    """Turn ``layout`` / ``num_new_layers`` into a validated layout string over {L, R}.

    Each ``L`` takes the next learngene layer (in order) and each ``R`` the next new, randomly initialised
    layer. Without either argument every learngene layer is used and no new layer is added.
    """
    if layout is not None and num_new_layers is not None:
        expected = LAYOUT_INHERITED * num_inherited + LAYOUT_NEW * num_new_layers
        if layout != expected:
            raise ValueError(
                f"Pass either `layout` or `num_new_layers`, not both (got layout={layout!r} and "
                f"num_new_layers={num_new_layers}). `num_new_layers={num_new_layers}` means layout={expected!r}."
            )
    if layout is None:
        if num_new_layers is None:
            num_new_layers = 0
        if not isinstance(num_new_layers, int) or isinstance(num_new_layers, bool) or num_new_layers < 0:
            raise ValueError(f"`num_new_layers` must be an integer >= 0, got {num_new_layers!r}.")
        return LAYOUT_INHERITED * num_inherited + LAYOUT_NEW * num_new_layers
    if not isinstance(layout, str) or not layout:
        raise ValueError(f"`layout` must be a non-empty string over {{L, R}} such as 'LLRRLL', got {layout!r}.")
    layout = layout.upper()
    bad = sorted(set(layout) - {LAYOUT_INHERITED, LAYOUT_NEW})
    if bad:
        raise ValueError(
            f"`layout` may only contain 'L' (inherited learngene layer) and 'R' (new random layer); "
            f"{layout!r} contains {', '.join(repr(c) for c in bad)}."
        )
    num_l = layout.count(LAYOUT_INHERITED)
    if num_l != num_inherited:
        raise ValueError(
            f"`layout` {layout!r} has {num_l} 'L' but the learngene has {num_inherited} layers: use exactly "
            f"{num_inherited} 'L' (e.g. {LAYOUT_INHERITED * num_inherited + 'RR'!r}), or pass "
            "`num_new_layers=n` to stack n new layers on top."
        )
    return layout


def _default_layer_indices(
    layer_indices: list[int] | None, num_hidden_layers: int | None, layout: str | None, num_new_layers: int | None
) -> list[int]:
    """`layer_indices` as given, else as many first ancestry layers as the learngene needs."""
    if layer_indices is not None:
        return layer_indices
    if layout is not None:
        if not isinstance(layout, str) or LAYOUT_INHERITED not in layout.upper():
            raise ValueError(
                f"`layout` must be a string over {{L, R}} with at least one 'L' (inherited learngene layer), such "
                f"as 'LLRR'; got {layout!r}."
            )
        return list(range(layout.upper().count(LAYOUT_INHERITED)))
    if num_hidden_layers is None:
        return list(range(12))
    _check_positive_int("num_hidden_layers", num_hidden_layers)
    num_inherited = num_hidden_layers - (num_new_layers if isinstance(num_new_layers, int) else 0)
    if num_inherited < 1:
        raise ValueError(
            f"`num_hidden_layers` ({num_hidden_layers}) is the descendant's depth, so it must exceed `num_new_layers` "
            f"({num_new_layers}) by at least one inherited layer."
        )
    return list(range(num_inherited))


def _model_depth(num_hidden_layers: int | None, layout: str | None, num_inherited: int) -> int:
    """The validated depth: `len(layout)` for a descendant config, the learngene's layer count otherwise."""
    depth = num_inherited if layout is None else len(layout)
    if num_hidden_layers is None or num_hidden_layers == depth:
        return depth
    _check_positive_int("num_hidden_layers", num_hidden_layers)
    if num_hidden_layers == num_inherited:
        # Written before num_hidden_layers became the descendant's depth: it counted the learngene layers.
        return depth
    raise ValueError(
        f"`num_hidden_layers` ({num_hidden_layers}) must be the model's depth: "
        + (
            f"len(layout) = {depth} for the layout {layout!r}"
            if layout is not None
            else f"len(layer_indices) = {depth} for a learngene"
        )
        + ". Leave it out (it is derived), or change `layout` / `layer_indices`."
    )


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")


def _init_fields(cls: type) -> set[str]:
    parameters = inspect.signature(cls.__init__).parameters.values()
    return {p.name for p in parameters if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and p.name != "self"}


class LearngeneConfig(PretrainedConfig):
    r"""
    Configuration of a learngene (a few integral layers condensed out of a ViT ancestry model) and of the
    descendants grown from it.

    One config serves [`LearngeneModel`] and [`DescendantForImageClassification`], the way one `ViTConfig`
    serves `ViTModel` and `ViTForImageClassification`. The ViT geometry follows `ViTConfig`; the learngene
    fields record where the layers came from.

    Args:
        hidden_size (`int`, *optional*, defaults to 768):
            Width of the token representations.
        num_attention_heads (`int`, *optional*, defaults to 12):
            Attention heads per layer.
        intermediate_size (`int`, *optional*, defaults to 3072):
            Width of the MLP inside each layer.
        hidden_act (`str`, *optional*, defaults to `"gelu"`):
            MLP activation (any key of `transformers.activations.ACT2FN`).
        hidden_dropout_prob (`float`, *optional*, defaults to 0.0):
            Dropout on the residual branches and the embeddings.
        attention_probs_dropout_prob (`float`, *optional*, defaults to 0.0):
            Dropout on the attention probabilities.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the truncated normal used for new weights.
        layer_norm_eps (`float`, *optional*, defaults to 1e-12):
            LayerNorm epsilon.
        image_size (`int`, *optional*, defaults to 224):
            Input resolution the position embeddings were trained for.
        patch_size (`int`, *optional*, defaults to 16):
            Patch size of the patch embedding.
        num_channels (`int`, *optional*, defaults to 3):
            Input channels.
        qkv_bias (`bool`, *optional*, defaults to `True`):
            Whether the query, key and value projections have a bias.
        layer_indices (`list[int]`, *optional*):
            Indices of the ancestry layers kept, in order. Defaults to one per `L` of `layout` when a layout is
            given, else to `range(num_hidden_layers - num_new_layers)`, else to `range(12)`.
        num_hidden_layers (`int`, *optional*):
            Depth of the model the config describes: `len(layout)` for a descendant, `len(layer_indices)` for a
            learngene. Derived when left out. A value equal to `len(layer_indices)` beside a longer `layout` (what
            configs written before hf_learngene 0.2 store) is read as that layout's depth.
        ancestor_name_or_path (`str`, *optional*):
            Hub id of the ancestry model; for a local folder or an in-memory model, its name only (never a path).
        ancestor_revision (`str`, *optional*):
            Revision (branch, tag or commit) of a Hub ancestor, as asked for.
        ancestor_commit (`str`, *optional*):
            The commit a Hub ancestor resolved to.
        ancestor_sha256 (`str`, *optional*):
            SHA-256 of the ancestor's weights, for an ancestor without a Hub id.
        ancestor_num_layers (`int`, *optional*):
            Depth of the ancestry model. Defaults to `max(layer_indices) + 1`.
        condensing_method (`str`, *optional*):
            How the layers were chosen (`"manual"`, `"heuristic"`, `"first"`, `"random"`, `"cka"`, `"auto"`).
        condensing_scores (`list[float]`, *optional*):
            One score per ancestry layer (higher = more worth inheriting), when the method computes them.
        condensing_details (`dict`, *optional*):
            A compact record of how the layers were chosen: the method's summary and settings, the condensing set's
            name and size. Histories and score matrices go to `condense_report.json` beside the weights.
        layout (`str`, *optional*):
            Descendant layout over {L, R}: each `L` takes the next learngene layer, each `R` the next new layer.
        num_new_layers (`int`, *optional*):
            Shortcut for `layout`: all learngene layers followed by this many new layers.
        new_layer_init (`str`, *optional*, defaults to `"trunc_normal"`):
            Initialisation of new layers: `"trunc_normal"` (transformers' ViT scheme) or `"mimetic"`
            (Trockman & Kolter 2023: attention initialised so that W_q W_k^T ~ I and W_v W_o ~ -I).

    The geometry (`hidden_size` divisible by `num_attention_heads`, positive sizes, a known `hidden_act`) is
    checked when a model is built from the config, so that partial configs can be written field by field; the
    learngene and layout fields are checked here, also when they come as `from_pretrained` keyword arguments.

    Example:

    ```python
    >>> from hf_learngene import LearngeneConfig, LearngeneModel
    >>> config = LearngeneConfig(
    ...     hidden_size=192, num_attention_heads=3, intermediate_size=768, layer_indices=[0, 1, 11]
    ... )
    >>> model = LearngeneModel(config)
    ```"""

    model_type = "learngene"

    def __init__(
        self,
        hidden_size: int = 768,
        num_attention_heads: int = 12,
        intermediate_size: int = 3072,
        hidden_act: str = "gelu",
        hidden_dropout_prob: float = 0.0,
        attention_probs_dropout_prob: float = 0.0,
        initializer_range: float = 0.02,
        layer_norm_eps: float = 1e-12,
        image_size: int = 224,
        patch_size: int = 16,
        num_channels: int = 3,
        qkv_bias: bool = True,
        layer_indices: list[int] | None = None,
        num_hidden_layers: int | None = None,
        ancestor_name_or_path: str | None = None,
        ancestor_revision: str | None = None,
        ancestor_commit: str | None = None,
        ancestor_sha256: str | None = None,
        ancestor_num_layers: int | None = None,
        condensing_method: str | None = None,
        condensing_scores: list[float] | None = None,
        condensing_details: dict[str, Any] | None = None,
        layout: str | None = None,
        num_new_layers: int | None = None,
        new_layer_init: str = "trunc_normal",
        hf_learngene_version: str | None = None,
        **kwargs,
    ):
        layer_indices = _default_layer_indices(layer_indices, num_hidden_layers, layout, num_new_layers)
        layer_indices = [int(i) for i in layer_indices]
        if not layer_indices:
            raise ValueError("`layer_indices` is empty: a learngene needs at least one ancestry layer.")
        if len(set(layer_indices)) != len(layer_indices):
            raise ValueError(f"`layer_indices` {layer_indices} contains duplicates; each ancestry layer once.")
        if min(layer_indices) < 0:
            raise ValueError(f"`layer_indices` {layer_indices} contains negative indices.")
        if ancestor_num_layers is None:
            ancestor_num_layers = max(layer_indices) + 1
        if max(layer_indices) >= ancestor_num_layers:
            raise ValueError(
                f"`layer_indices` {layer_indices} out of range for an ancestor of {ancestor_num_layers} layers "
                f"(valid: 0..{ancestor_num_layers - 1})."
            )
        if new_layer_init not in NEW_LAYER_INITS:
            raise ValueError(f"`new_layer_init` must be one of {NEW_LAYER_INITS}, got {new_layer_init!r}.")
        if condensing_scores is not None and len(condensing_scores) != ancestor_num_layers:
            raise ValueError(
                f"`condensing_scores` has {len(condensing_scores)} entries; expected one per ancestry layer "
                f"({ancestor_num_layers})."
            )

        self.hidden_size = hidden_size
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.initializer_range = initializer_range
        self.layer_norm_eps = layer_norm_eps
        self.image_size = image_size
        self.patch_size = patch_size
        self.num_channels = num_channels
        self.qkv_bias = qkv_bias
        self.layer_indices = layer_indices
        self.ancestor_name_or_path = ancestor_name_or_path
        self.ancestor_revision = ancestor_revision
        self.ancestor_commit = ancestor_commit
        self.ancestor_sha256 = ancestor_sha256
        self.ancestor_num_layers = ancestor_num_layers
        self.condensing_method = condensing_method
        self.condensing_scores = condensing_scores
        self.condensing_details = condensing_details
        self.layout = layout
        self.num_new_layers = num_new_layers
        self.new_layer_init = new_layer_init
        self.hf_learngene_version = hf_learngene_version or _library_version()
        # Whether the task head size was given explicitly; a bare learngene config has none.
        self._labels_given = layout is not None or "num_labels" in kwargs or kwargs.get("id2label") is not None
        if layout is not None or num_new_layers is not None:
            self.layout = resolve_layout(layout, num_new_layers, len(layer_indices))
            self.num_new_layers = None
        self.num_hidden_layers = _model_depth(num_hidden_layers, self.layout, len(layer_indices))
        super().__init__(**kwargs)
        current = _library_version()
        if hf_learngene_version and current and hf_learngene_version != current:
            logger.info(f"This config was written by hf_learngene {hf_learngene_version}; running {current}.")

    def geometry(self) -> dict[str, Any]:
        """The ViT geometry fields (`GEOMETRY_FIELDS`), e.g. to build a scratch model of the same shape."""
        return {name: getattr(self, name) for name in GEOMETRY_FIELDS}

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **kwargs) -> LearngeneConfig:
        """`PretrainedConfig.from_dict`, with the keyword arguments that are fields of this config passed to
        `__init__` (transformers sets them with `setattr` after construction, which would skip their validation)."""
        fields = _init_fields(cls)
        given = {key: kwargs.pop(key) for key in list(kwargs) if key in fields}
        config_dict = dict(config_dict)
        if given.keys() & {"layout", "num_new_layers", "layer_indices"} and "num_hidden_layers" not in given:
            # The stored depth belongs to the stored layout; the one given now defines it again.
            config_dict.pop("num_hidden_layers", None)
        if "num_new_layers" in given and "layout" not in given:
            # "All learngene layers, then n new ones" replaces a stored descendant layout.
            config_dict.pop("layout", None)
        labels_stored = any(config_dict.get(key) is not None for key in ("num_labels", "id2label"))
        labels_passed = "num_labels" in kwargs or kwargs.get("id2label") is not None
        config_dict.update(given)
        loaded = super().from_dict(config_dict, **kwargs)
        config = loaded[0] if isinstance(loaded, tuple) else loaded
        if labels_passed:
            # `num_labels=` or `id2label=` sizes the head (transformers sets them after construction).
            config._labels_given = True
        elif given.keys() & {"layout", "num_new_layers"} and not labels_stored:
            # A layout passed while growing a descendant from a bare learngene does not size the head.
            config._labels_given = False
        return loaded

    def resolved_layout(self) -> str:
        """The validated descendant layout (all learngene layers and no new one when none was set)."""
        return resolve_layout(self.layout, self.num_new_layers, len(self.layer_indices))

    def to_dict(self) -> dict[str, Any]:
        output = super().to_dict()
        output.pop("_labels_given", None)
        return output


__all__ = ["GEOMETRY_FIELDS", "LearngeneConfig"]
