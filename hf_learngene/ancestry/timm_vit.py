"""timm ViT checkpoints: a folder or Hub repo holding timm's `config.json` and `model.safetensors`.

timm writes `config.json` as `{"architecture": "vit_base_patch16_224", "num_classes": ..., "global_pool": ...,
"model_args": {...} (only the arguments given beyond the architecture's own), "pretrained_cfg": {"input_size":
[3, 224, 224], "mean": [...], "std": [...], "interpolation": "bicubic", "crop_pct": ..., ...}}` and the weights under
`timm.models.vision_transformer.VisionTransformer`'s names: `cls_token`, `reg_token`, `dist_token` (DeiT distilled),
`pos_embed`, `patch_embed.proj`, `norm_pre`, `blocks.N.{norm1, attn.qkv (q, k, v stacked), attn.proj, ls1.gamma,
norm2, mlp.fc1, mlp.fc2, ls2.gamma}`, `norm` or `fc_norm`, `head`. `transformers`' `TimmWrapperModel` keeps the same
names under `timm_model.`.

The geometry comes from the tensors (width, depth, MLP width and kind, tokens, layer scale, pre-norm, which prefix
tokens have positions). Three things a timm checkpoint does not store are taken from `model_args` when it has them, else
from timm's conventions for the architecture name, and recorded in `family_choices`: the head count (head_dim 64, except
the huge/giant/gigantic/so400m widths, which have 16 heads), the MLP activation (GELU; quick_gelu for `*quickgelu*`
architectures; SiLU for SwiGLU) and the LayerNorm epsilon (1e-6; 1e-5 for `*clip*` architectures).
`load_ancestor(path, timm_model_args={"num_heads": ..., "act_layer": ..., "norm_eps": ...})` overrides them.
"""

from __future__ import annotations

import math
import re
from typing import Any

import torch
from transformers import PretrainedConfig

from .families import AncestorFamily, FamilyRead, ReadOptions, _distillation_choice, register_family

# Widths whose timm ViTs do not use head_dim 64 (vit_huge 1280, vit_giant 1408, vit_gigantic 1664, so400m 1152).
_HEADS_BY_WIDTH = {1152: 16, 1280: 16, 1408: 16, 1664: 16}
# timm activation names -> transformers ACT2FN names.
_ACTIVATIONS = {
    "gelu": "gelu",
    "gelu_tanh": "gelu_pytorch_tanh",
    "quick_gelu": "quick_gelu",
    "silu": "silu",
    "swish": "silu",
    "relu": "relu",
}
_POOLINGS = {"token": "cls", "avg": "mean"}
_TOP_LEVEL = re.compile(
    r"^(cls_token|reg_token|dist_token|pos_embed|patch_embed\.proj\.(weight|bias)|norm_pre\.(weight|bias)|"
    r"norm\.(weight|bias)|fc_norm\.(weight|bias)|head\.(weight|bias)|head_dist\.(weight|bias)|attn_pool\..+)$"
)
_BLOCK = re.compile(
    r"^blocks\.\d+\.(norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc1_g|mlp\.fc1_x|mlp\.fc2)\.(weight|bias)$"
    r"|^blocks\.\d+\.ls[12]\.gamma$"
)
_RULES = (
    (r"^cls_token$", "embeddings.cls_token"),
    (r"^dist_token$", "embeddings.distillation_token"),
    (r"^reg_token$", "embeddings.register_tokens"),
    (r"^pos_embed$", "embeddings.position_embeddings"),
    (r"^patch_embed\.proj\.", "embeddings.patch_embeddings.projection."),
    (r"^norm_pre\.", "pre_layernorm."),
    (r"^(fc_)?norm\.", "layernorm."),
    (r"^blocks\.(\d+)\.", r"layers.\1."),
    (r"\.norm1\.", ".layernorm_before."),
    (r"\.norm2\.", ".layernorm_after."),
    (r"\.attn\.proj\.", ".attention.o_proj."),
    (r"\.ls(\d)\.gamma$", r".layer_scale\1"),
)


def is_timm_config(config: dict[str, Any]) -> bool:
    """Whether a `config.json` is timm's: an `architecture` and no transformers `model_type` (transformers' config
    reader adds `timm_wrapper`)."""
    return isinstance(config, dict) and "architecture" in config and config.get("model_type") in (None, "timm_wrapper")


def _as_dict(config) -> dict[str, Any]:
    # A TimmWrapperConfig (transformers' wrapper around a timm model) keeps timm's keys as attributes.
    return config if isinstance(config, dict) else config.to_dict()


def _unsupported(name: str, what: str) -> ValueError:
    return ValueError(
        f"The timm checkpoint {name!r} {what}; hf_learngene reads timm's plain VisionTransformer (pre-norm blocks with "
        "a fused qkv, optional layer scale, an MLP or SwiGLU, class / register / distillation tokens, learned "
        "absolute positions)."
    )


def read_timm(config, raw: dict[str, torch.Tensor], options: ReadOptions) -> FamilyRead:
    """Read a timm `VisionTransformer` checkpoint (see the module docstring)."""
    config = _as_dict(config)
    name = str(config.get("architecture"))
    model_args = {**(config.get("model_args") or {}), **(options.timm_model_args or {})}
    pretrained = config.get("pretrained_cfg") or {}
    raw = {key.removeprefix("timm_model."): tensor for key, tensor in raw.items()}
    odd = sorted(key for key in raw if not (_TOP_LEVEL.match(key) or _BLOCK.match(key)))
    if odd:
        raise _unsupported(name, f"has tensors no plain ViT has ({odd[:6]}: qk-norm, gated attention, ...)")
    for required in ("patch_embed.proj.weight", "pos_embed", "blocks.0.attn.qkv.weight", "blocks.0.attn.proj.bias"):
        if required not in raw:
            raise _unsupported(name, f"has no {required!r}")
    if "norm.weight" not in raw and "fc_norm.weight" not in raw:
        raise _unsupported(name, "has no final norm (final_norm=False)")

    patch = raw["patch_embed.proj.weight"]
    hidden, channels = int(patch.shape[0]), int(patch.shape[1])
    patch_size = int(patch.shape[2]) if patch.shape[2] == patch.shape[3] else [int(patch.shape[2]), int(patch.shape[3])]
    depth = 1 + max(int(m.group(1)) for key in raw if (m := re.match(r"^blocks\.(\d+)\.", key)))
    registers = int(raw["reg_token"].shape[1]) if "reg_token" in raw else 0
    class_token, distilled = "cls_token" in raw, "dist_token" in raw
    num_prefix = int(class_token) + int(distilled) + registers

    choices: dict[str, str] = {"timm_architecture": name}
    inferred = []
    num_heads = model_args.get("num_heads")
    if num_heads is None:
        num_heads = _HEADS_BY_WIDTH.get(hidden, hidden // 64 if hidden % 64 == 0 else None)
        if num_heads is None:
            raise ValueError(
                f"The timm checkpoint {name!r} does not store its head count and its width {hidden} is not a multiple "
                'of 64: pass it, load_ancestor(path, timm_model_args={"num_heads": ...}).'
            )
        inferred.append(f"{num_heads} heads")

    state = {}
    for key, tensor in raw.items():
        if key.startswith(("head.", "head_dist.", "attn_pool.")):
            continue
        match = re.match(r"^blocks\.(\d+)\.attn\.qkv\.(weight|bias)$", key)
        if match:
            # timm's qkv output is (3, heads, head_dim): q, k and v stacked.
            for part, tensor_part in zip(("q_proj", "k_proj", "v_proj"), tensor.chunk(3, dim=0), strict=True):
                state[f"layers.{match.group(1)}.attention.{part}.{match.group(2)}"] = tensor_part
            continue
        for pattern, replacement in _RULES:
            key = re.sub(pattern, replacement, key)
        state[key] = tensor
    for key in [k for k in state if re.search(r"\.mlp\.fc1_g\.", k)]:
        # timm's unpacked SwiGLU: gate (fc1_g) and up (fc1_x) projections; ours stacks them, gate first.
        state[key.replace(".fc1_g.", ".fc1.")] = torch.cat((state.pop(key), state.pop(key.replace("_g.", "_x."))))

    intermediate = int(state["layers.0.mlp.fc2.weight"].shape[1])
    swiglu = state["layers.0.mlp.fc1.weight"].shape[0] == 2 * intermediate
    act_layer = model_args.get("act_layer")
    if act_layer is None:
        act_layer = "silu" if swiglu else "quick_gelu" if "quickgelu" in name else "gelu"
        inferred.append(f"activation {act_layer}")
    if not isinstance(act_layer, str) or act_layer not in _ACTIVATIONS:
        raise _unsupported(name, f"uses the activation {act_layer!r} (readable: {sorted(_ACTIVATIONS)})")
    eps = model_args.get("norm_eps")
    if eps is None:
        eps = 1e-5 if "clip" in name else 1e-6
        inferred.append(f"LayerNorm eps {eps:g}")
    if inferred:
        choices["inferred"] = (
            f"{', '.join(inferred)}: timm's config.json does not store them; taken from timm's conventions for "
            'this architecture name (override: load_ancestor(..., timm_model_args={"num_heads": ..., "act_layer": '
            '..., "norm_eps": ...}))'
        )

    grid_tokens, image_size = _grid(name, raw["pos_embed"], num_prefix, patch_size, model_args, pretrained)
    prefix = {grid_tokens: "none", grid_tokens + num_prefix: "all" if registers else "class"}
    global_pool = model_args.get("global_pool", config.get("global_pool", "token"))
    if options.pooling is not None:
        pooling = options.pooling
    elif not global_pool:  # features without pooling: the CLS token where there is one
        pooling = "cls" if class_token else "mean"
    else:
        pooling = _POOLINGS.get(global_pool)
    if pooling is None:
        raise _unsupported(
            name,
            f"pools with global_pool={global_pool!r}; pass pooling='cls' or 'mean' to read its layers without that "
            "head (load_ancestor(path, pooling=...))",
        )
    fields = {
        "hidden_size": hidden,
        "num_attention_heads": int(num_heads),
        "intermediate_size": intermediate,
        "hidden_act": _ACTIVATIONS[act_layer],
        "layer_norm_eps": float(eps),
        "image_size": image_size,
        "patch_size": patch_size,
        "num_channels": channels,
        "qkv_bias": "blocks.0.attn.qkv.bias" in raw,
        "class_token": class_token,
        "num_register_tokens": registers,
        "position_embedding_prefix": prefix[int(raw["pos_embed"].shape[1])],
        "position_interpolation": "bicubic_fp32_antialias",
        "patch_bias": "patch_embed.proj.bias" in raw,
        "pre_layernorm": "norm_pre.weight" in raw,
        "final_layernorm": "sequence" if "norm.weight" in raw else "pooled",
        "layer_scale": "blocks.0.ls1.gamma" in raw,
        "layer_scale_init_value": float(model_args.get("init_values") or 1e-5) if "blocks.0.ls1.gamma" in raw else 1.0,
        "mlp_type": "swiglu" if swiglu else "mlp",
        "pooling": pooling,
    }
    vision = PretrainedConfig(
        hidden_size=hidden,
        num_attention_heads=int(num_heads),
        num_hidden_layers=depth,
        num_channels=channels,
        image_size=image_size,
        patch_size=patch_size,
        timm_architecture=name,
    )
    read = FamilyRead(vision, fields, state, choices)
    if distilled:
        read = _distillation_choice(read, options, positioned=fields["position_embedding_prefix"] != "none")
    return read


def _grid(name: str, pos_embed: torch.Tensor, num_prefix: int, patch_size, model_args, pretrained):
    """(patch tokens, image size): from `model_args["img_size"]` or `pretrained_cfg["input_size"]`, else from a square
    position grid."""
    length = int(pos_embed.shape[1])
    size = model_args.get("img_size") or (pretrained.get("input_size") or [None])[1:] or None
    patch = patch_size if isinstance(patch_size, list) else [patch_size, patch_size]
    if size:
        size = [int(size), int(size)] if isinstance(size, (int, float)) else [int(s) for s in size]
        tokens = (size[0] // patch[0]) * (size[1] // patch[1])
        if length in (tokens, tokens + num_prefix):
            return tokens, size[0] if size[0] == size[1] else size
    for tokens in (length - num_prefix, length):
        side = math.isqrt(tokens)
        if side * side == tokens:
            image = [side * patch[0], side * patch[1]]
            return tokens, image[0] if image[0] == image[1] else image
    raise _unsupported(name, f"has {length} position embeddings, which fit no square patch grid")


def timm_image_processor(config) -> Any:
    """An image processor from timm's `pretrained_cfg`: resize to `input_size` (or `model_args["img_size"]`), normalise
    with its mean and std (timm's center crop, `crop_pct`, is not reproduced); None without a `pretrained_cfg`."""
    config = _as_dict(config)
    pretrained = config.get("pretrained_cfg") or {}
    if not pretrained.get("input_size"):
        return None
    from PIL import Image
    from transformers import ViTImageProcessorPil

    _, height, width = pretrained["input_size"]
    size = (config.get("model_args") or {}).get("img_size")  # a checkpoint built at another size records it here
    if size:
        height, width = (size, size) if isinstance(size, int) else size
    resample = Image.Resampling.BICUBIC if pretrained.get("interpolation") == "bicubic" else Image.Resampling.BILINEAR
    return ViTImageProcessorPil(
        size={"height": int(height), "width": int(width)},
        resample=resample,
        image_mean=list(pretrained.get("mean", (0.5, 0.5, 0.5))),
        image_std=list(pretrained.get("std", (0.5, 0.5, 0.5))),
    )


TIMM_FAMILY = register_family(
    AncestorFamily(
        "timm",
        ("timm_wrapper",),
        "timm VisionTransformer checkpoints: a folder or Hub repo with timm's config.json (`architecture`) and "
        "model.safetensors, e.g. timm/vit_base_patch16_224.augreg2_in21k_ft_in1k, or a TimmWrapperModel",
        read_timm,
        ("distillation_token", "pooling", "timm_model_args"),
    )
)

__all__ = ["TIMM_FAMILY", "is_timm_config", "read_timm", "timm_image_processor"]
