"""One reader per ancestor family: the family's tensors under this package's names and its config as learngene fields.

A reader takes the ancestor's config, its raw tensors (file or memory names, any model prefix) and the reading options,
and returns a [`FamilyRead`]: the (vision) config condensing reads, the [`LearngeneConfig`] fields that make
[`LearngeneModel`] compute exactly what the family computes, the tensors under `LearngeneModel`'s names, and what was
chosen where the family leaves a choice (`family_choices`). Readers register in `FAMILIES`; `load_ancestor` picks one
by the config's `model_type` (timm checkpoints by their `config.json`, see `timm_vit.py`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import PretrainedConfig

from ..configuration_learngene import GEOMETRY_FIELDS

DISTILLATION_TOKEN_CHOICES = ("carry", "drop")


@dataclass(frozen=True)
class ReadOptions:
    """Choices a family leaves open, given to `load_ancestor` (None: the family's default)."""

    distillation_token: str | None = None
    pooling: str | None = None
    timm_model_args: dict[str, Any] | None = None

    def given(self) -> list[str]:
        return [
            name for name in ("distillation_token", "pooling", "timm_model_args") if getattr(self, name) is not None
        ]


@dataclass
class FamilyRead:
    """What a family reader returns. `state_dict` is what the learngene keeps (after the options); `source_state`
    every tensor of the ancestor under this package's names, before the options (its SHA-256 is the provenance)."""

    config: PretrainedConfig
    fields: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    choices: dict[str, str] = field(default_factory=dict)
    source_state: dict[str, torch.Tensor] | None = None


@dataclass(frozen=True)
class AncestorFamily:
    """A family of ancestors: its name (recorded as `ancestor_family`), the transformers `model_type`s it reads, what
    users hold (for messages), its reader and the reading options it accepts."""

    name: str
    model_types: tuple[str, ...]
    holds: str
    read: Callable[[Any, dict[str, torch.Tensor], ReadOptions], FamilyRead]
    options: tuple[str, ...] = ()


FAMILIES: dict[str, AncestorFamily] = {}


def register_family(family: AncestorFamily) -> AncestorFamily:
    FAMILIES[family.name] = family
    return family


def family_for_model_type(model_type: str | None) -> AncestorFamily | None:
    return next((family for family in FAMILIES.values() if model_type in family.model_types), None)


def supported_ancestors() -> str:
    """The supported families and the classes (or files) of each, for error messages."""
    return "; ".join(f"{family.name} ({family.holds})" for family in FAMILIES.values() if family.name != "learngene")


def check_options(family: AncestorFamily, options: ReadOptions) -> None:
    unused = [name for name in options.given() if name not in family.options]
    if unused:
        accepted = f"it accepts {list(family.options)}" if family.options else "it has no reading options"
        raise ValueError(f"Reading options {unused} do not apply to a {family.name!r} ancestor; {accepted}.")
    if options.distillation_token is not None and options.distillation_token not in DISTILLATION_TOKEN_CHOICES:
        raise ValueError(
            f"`distillation_token` must be one of {DISTILLATION_TOKEN_CHOICES}, got {options.distillation_token!r}."
        )


# ---------------------------------------------------------------------------------------------------------------------
# Key mapping

# (pattern, replacement) applied in order to a transformers ViT key (v4 file names or v5 memory names) with its model
# prefix removed. DeiT and ViT-MAE share it.
_VIT_RULES = (
    (r"^encoder\.layer\.(\d+)\.", r"layers.\1."),
    (r"\.attention\.attention\.query\.", ".attention.q_proj."),
    (r"\.attention\.attention\.key\.", ".attention.k_proj."),
    (r"\.attention\.attention\.value\.", ".attention.v_proj."),
    (r"\.attention\.output\.dense\.", ".attention.o_proj."),
    (r"\.intermediate\.dense\.", ".mlp.fc1."),
    (r"\.output\.dense\.", ".mlp.fc2."),
)
_VIT_PREFIXES = ("vit.", "deit.", "learngene.", "model.")
_VIT_SKIPPED = re.compile(
    r"^(pooler\.|classifier\.|cls_classifier\.|distillation_classifier\.|new_layers\.|decoder\.|embeddings\.mask_token)"
)
_DINOV2_RULES = (
    (r"^encoder\.layer\.(\d+)\.", r"layers.\1."),
    (r"\.norm1\.", ".layernorm_before."),
    (r"\.norm2\.", ".layernorm_after."),
    (r"\.attention\.attention\.query\.", ".attention.q_proj."),
    (r"\.attention\.attention\.key\.", ".attention.k_proj."),
    (r"\.attention\.attention\.value\.", ".attention.v_proj."),
    (r"\.attention\.output\.dense\.", ".attention.o_proj."),
    (r"\.layer_scale(\d)\.lambda1$", r".layer_scale\1"),
    # SwiGLU: the file stacks gate and up (`weights_in`, as ours); memory splits them (joined below).
    (r"\.mlp\.weights_in\.", ".mlp.fc1."),
    (r"\.mlp\.weights_out\.", ".mlp.fc2."),
    (r"\.mlp\.down_proj\.", ".mlp.fc2."),
)
_DINOV2_SKIPPED = re.compile(r"^(classifier\.|embeddings\.mask_token|pooler\.)")
# CLIP and SigLIP vision towers (v4 files: `vision_model.` prefix; the full CLIPModel / SiglipModel too).
_TOWER_RULES = (
    (r"^embeddings\.class_embedding$", "embeddings.cls_token"),
    (r"^embeddings\.patch_embedding\.", "embeddings.patch_embeddings.projection."),
    (r"^embeddings\.position_embedding\.weight$", "embeddings.position_embeddings"),
    (r"^pre_layrnorm\.", "pre_layernorm."),
    (r"^post_layernorm\.", "layernorm."),
    (r"^encoder\.layers\.(\d+)\.", r"layers.\1."),
    (r"\.layer_norm1\.", ".layernorm_before."),
    (r"\.layer_norm2\.", ".layernorm_after."),
    (r"\.self_attn\.out_proj\.", ".attention.o_proj."),
    (r"\.self_attn\.", ".attention."),
    (r"^head\.attention\.out_proj\.", "map_head.attention.o_proj."),
    (r"^head\.", "map_head."),
)
_TOWER_SKIPPED = re.compile(
    r"^(text_model\.|text_projection|visual_projection|logit_scale|logit_bias|embeddings\.position_ids|classifier\.)"
)


def _rename(
    raw: dict[str, torch.Tensor], rules, prefixes: tuple[str, ...], skipped: re.Pattern
) -> dict[str, torch.Tensor]:
    state = {}
    for key, tensor in raw.items():
        for prefix in prefixes:
            if key.startswith(prefix):
                key = key[len(prefix) :]
                break
        if skipped.match(key):
            continue
        for pattern, replacement in rules:
            key = re.sub(pattern, replacement, key)
        state[key] = tensor
    return state


def normalize_key(key: str) -> str | None:
    """Map a transformers ViT parameter name (v4 or v5 scheme, with or without a model prefix) to this package's name.

    Returns None for tensors a learngene does not keep (pooler, heads, mask token).
    """
    return next(iter(_rename({key: None}, _VIT_RULES, _VIT_PREFIXES, _VIT_SKIPPED)), None)


# The fields ViTConfig has (the architecture fields after them keep their plain-ViT defaults).
_VIT_FIELDS = GEOMETRY_FIELDS[: GEOMETRY_FIELDS.index("class_token")]


def _vit_fields(config: PretrainedConfig) -> dict[str, Any]:
    """The geometry of a transformers ViT-like config (ViT, DeiT, ViT-MAE and DINOv2 share ViTConfig's names)."""
    return {name: getattr(config, name) for name in _VIT_FIELDS if hasattr(config, name)}


def _pooling(options: ReadOptions, default: str) -> str:
    return default if options.pooling is None else options.pooling


# ---------------------------------------------------------------------------------------------------------------------
# transformers families


def _read_vit(config, raw, options: ReadOptions) -> FamilyRead:
    state = _rename(raw, _VIT_RULES, _VIT_PREFIXES, _VIT_SKIPPED)
    return FamilyRead(config, {**_vit_fields(config), "pooling": _pooling(options, "cls")}, state)


def _read_learngene(config, raw, options: ReadOptions) -> FamilyRead:
    # A learngene (or a descendant) used as an ancestor: its own names, its family's fields passed on.
    state = _rename(raw, (), _VIT_PREFIXES, _VIT_SKIPPED)
    fields = {name: getattr(config, name) for name in GEOMETRY_FIELDS}
    return FamilyRead(config, fields, state, dict(config.family_choices or {}))


def _read_deit(config, raw, options: ReadOptions) -> FamilyRead:
    state = _rename(raw, _VIT_RULES, _VIT_PREFIXES, _VIT_SKIPPED)
    return _distillation_choice(FamilyRead(config, _vit_fields(config), state), options)


def _distillation_choice(read: FamilyRead, options: ReadOptions, positioned: bool = True) -> FamilyRead:
    """Carry DeiT's distillation token (the default: the descendant averages a CLS head and a distillation head, as
    DeiT does), or drop it with its position embedding (the descendant classifies from the CLS token). `positioned`:
    whether the token has a position embedding (slot 1, after the CLS token's)."""
    choice = options.distillation_token or "carry"
    read.source_state = read.state_dict
    if choice == "carry":
        read.fields.update(distillation_token=True, pooling=_pooling(options, "cls_distillation"))
        read.choices["distillation_token"] = (
            "carried: descendants average two heads, on the CLS and on the distillation token, as DeiT does "
            "(load_ancestor(..., distillation_token='drop') drops it)"
        )
        return read
    state = {k: v for k, v in read.state_dict.items() if k != "embeddings.distillation_token"}
    if positioned:
        # Position slots: CLS, distillation token, then the patches; the distillation token's slot goes with it.
        positions = state["embeddings.position_embeddings"]
        state["embeddings.position_embeddings"] = torch.cat((positions[:, :1], positions[:, 2:]), dim=1)
    read.state_dict = state
    read.fields.update(distillation_token=False, pooling=_pooling(options, "cls"))
    read.choices["distillation_token"] = (
        "dropped with its position embedding: descendants classify from the CLS token alone"
    )
    return read


def _read_dinov2(config, raw, options: ReadOptions) -> FamilyRead:
    state = _rename(raw, _DINOV2_RULES, ("dinov2.", "dinov2_with_registers.", "model."), _DINOV2_SKIPPED)
    for key in [k for k in state if k.endswith((".mlp.gate_proj.weight", ".mlp.gate_proj.bias"))]:
        # transformers 5 splits the SwiGLU input projection in memory; ours keeps it stacked, gate first.
        up = key.replace(".gate_proj.", ".up_proj.")
        state[key.replace(".gate_proj.", ".fc1.")] = torch.cat((state.pop(key), state.pop(up)), dim=0)
    swiglu = bool(getattr(config, "use_swiglu_ffn", False))
    registers = int(getattr(config, "num_register_tokens", 0) or 0)
    with_registers = config.model_type == "dinov2_with_registers"
    fields = {
        **_vit_fields(config),
        # The MLP width from the tensors: SwiGLU rounds its hidden features (to a multiple of 8, two thirds of it).
        "intermediate_size": int(state["layers.0.mlp.fc2.weight"].shape[1]),
        "hidden_act": "silu" if swiglu else config.hidden_act,
        "mlp_type": "swiglu" if swiglu else "mlp",
        "layer_scale": True,
        "layer_scale_init_value": float(config.layerscale_value),
        "num_register_tokens": registers,
        "position_interpolation": "bicubic_fp32_antialias" if with_registers else "bicubic_fp32",
        "interpolate_pos_encoding": True,
        "pooling": _pooling(options, "cls"),
    }
    grid = f"{config.image_size // config.patch_size}x{config.image_size // config.patch_size}"
    how = "in float32 with antialiasing" if with_registers else "in float32"
    choices = {
        "position_embeddings": f"the {grid} position grid ({config.image_size}/{config.patch_size}) is interpolated "
        f"to every input size, bicubic {how}, as {type(config).__name__.replace('Config', 'Model')} does"
    }
    if registers:
        choices["register_tokens"] = f"{registers} register tokens carried (after the CLS token, without positions)"
    return FamilyRead(config, fields, state, choices)


def _tower_config(config: PretrainedConfig) -> PretrainedConfig:
    # CLIPModel / SiglipModel hold the vision tower's config in `vision_config`.
    return config.vision_config if config.model_type in ("clip", "siglip") else config


def _tower_fields(vision: PretrainedConfig) -> dict[str, Any]:
    return {
        "hidden_size": vision.hidden_size,
        "num_attention_heads": vision.num_attention_heads,
        "intermediate_size": vision.intermediate_size,
        "hidden_act": vision.hidden_act,
        "hidden_dropout_prob": float(getattr(vision, "dropout", 0.0) or 0.0),
        "attention_probs_dropout_prob": float(getattr(vision, "attention_dropout", 0.0) or 0.0),
        "initializer_range": float(getattr(vision, "initializer_range", 0.02)),
        "layer_norm_eps": vision.layer_norm_eps,
        "image_size": vision.image_size,
        "patch_size": vision.patch_size,
        "num_channels": vision.num_channels,
        "qkv_bias": True,
    }


def _read_tower_state(raw: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    state = _rename(raw, _TOWER_RULES, ("vision_model.",), _TOWER_SKIPPED)
    if "embeddings.cls_token" in state:  # CLIP's class embedding is one vector
        state["embeddings.cls_token"] = state["embeddings.cls_token"].reshape(1, 1, -1)
    # nn.Embedding rows -> one batch of position embeddings.
    state["embeddings.position_embeddings"] = state["embeddings.position_embeddings"].unsqueeze(0)
    return state


def _read_clip(config, raw, options: ReadOptions) -> FamilyRead:
    vision = _tower_config(config)
    fields = {
        **_tower_fields(vision),
        "patch_bias": False,
        "pre_layernorm": True,
        "final_layernorm": "pooled",
        "pooling": _pooling(options, "cls"),
    }
    choices = {
        "norms": "pre_layrnorm before the first layer; post_layernorm on the pooled CLS token only "
        "(last_hidden_state is the last layer's output), as CLIPVisionModel"
    }
    return FamilyRead(vision, fields, _read_tower_state(raw), choices)


def _read_siglip(config, raw, options: ReadOptions) -> FamilyRead:
    vision = _tower_config(config)
    state = _read_tower_state(raw)
    # nn.MultiheadAttention keeps q, k and v stacked in one in-projection; ours are three Linears.
    for kind in ("weight", "bias"):
        stacked = state.pop(f"map_head.attention.in_proj_{kind}", None)
        if stacked is not None:
            for name, part in zip(("q_proj", "k_proj", "v_proj"), stacked.chunk(3, dim=0), strict=True):
                state[f"map_head.attention.{name}.{kind}"] = part
    has_head = "map_head.probe" in state
    pooling = _pooling(options, "map" if has_head else "mean")
    read = FamilyRead(
        vision,
        {
            **_tower_fields(vision),
            "class_token": False,
            "position_embedding_prefix": "none",
            "pooling": pooling,
        },
        state,
    )
    if pooling == "map":
        read.choices["pooling"] = (
            "the multi-head attention pooling head (MAP) carried: descendants classify its output, SigLIP's pooled "
            "output (load_ancestor(..., pooling='mean') averages the patch tokens instead)"
        )
    else:
        read.source_state = state
        read.state_dict = {k: v for k, v in state.items() if not k.startswith("map_head.")}
        read.choices["pooling"] = "the mean of the patch tokens, as SiglipForImageClassification" + (
            "; the MAP head dropped" if has_head else " (the checkpoint has no MAP head)"
        )
    return read


def _read_vit_mae(config, raw, options: ReadOptions) -> FamilyRead:
    state = _rename(raw, _VIT_RULES, _VIT_PREFIXES, _VIT_SKIPPED)
    choices = {
        "masking": f"none: the encoder sees every patch, in order (ViTMAEModel's random masking, mask_ratio "
        f"{config.mask_ratio}, is a pre-training device); the decoder is not kept",
        "position_embeddings": "MAE's fixed 2-D sin-cos embeddings, kept (trainable in descendants)",
    }
    return FamilyRead(config, {**_vit_fields(config), "pooling": _pooling(options, "cls")}, state, choices)


register_family(
    AncestorFamily(
        "vit",
        ("vit",),
        "ViTModel, ViTForImageClassification: google/vit-*, facebook/dino-vit*, facebook/deit-* without distillation",
        _read_vit,
        ("pooling",),
    )
)
register_family(
    AncestorFamily(
        "deit",
        ("deit",),
        "DeiTModel, DeiTForImageClassificationWithTeacher: facebook/deit-*-distilled-*",
        _read_deit,
        ("distillation_token", "pooling"),
    )
)
register_family(AncestorFamily("dinov2", ("dinov2",), "Dinov2Model: facebook/dinov2-*", _read_dinov2, ("pooling",)))
register_family(
    AncestorFamily(
        "dinov2_with_registers",
        ("dinov2_with_registers",),
        "Dinov2WithRegistersModel: facebook/dinov2-with-registers-*",
        _read_dinov2,
        ("pooling",),
    )
)
register_family(
    AncestorFamily(
        "clip",
        ("clip_vision_model", "clip"),
        "CLIPVisionModel, or the vision tower of a CLIPModel: openai/clip-vit-*",
        _read_clip,
        ("pooling",),
    )
)
register_family(
    AncestorFamily(
        "siglip",
        ("siglip_vision_model", "siglip"),
        "SiglipVisionModel, or the vision tower of a SiglipModel: google/siglip-*",
        _read_siglip,
        ("pooling",),
    )
)
register_family(
    AncestorFamily("vit_mae", ("vit_mae",), "ViTMAEModel, ViTMAEForPreTraining: facebook/vit-mae-*", _read_vit_mae)
)
register_family(AncestorFamily("learngene", ("learngene",), "a saved learngene or descendant", _read_learngene))


__all__ = [
    "FAMILIES",
    "AncestorFamily",
    "FamilyRead",
    "ReadOptions",
    "check_options",
    "family_for_model_type",
    "normalize_key",
    "register_family",
    "supported_ancestors",
]
