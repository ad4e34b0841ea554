"""Learngene and descendant models.

The ViT layer code is adapted from transformers' `models/vit/modeling_vit.py` (Apache-2.0) and owned here, so
that its parameter names and internals do not move with transformers releases. Parameter names follow
transformers 5's ViT (`attention.q_proj`, `mlp.fc1`, ...), so checkpoint tensors map one to one.

This file travels as remote code next to saved checkpoints: it imports only torch, transformers, the standard
library and its sibling ``configuration_learngene.py``.
"""

from __future__ import annotations

import copy
import math
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutput, ImageClassifierOutput
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import logging

from .configuration_learngene import (
    LAYOUT_INHERITED,
    NEW_LAYER_INITS,
    WIDTH_DIMENSIONS,
    LearngeneConfig,
    _init_fields,
    _model_depth,
    _normalize_width_indices,
    decode_indices,
)

logger = logging.get_logger(__name__)

DESCENDANT_ARCHITECTURE = "DescendantForImageClassification"
# What a descendant adds to the learngene it inherits (never part of a learngene checkpoint).
_NEW_PREFIXES = ("new_layers.", "classifier.", "distillation_classifier.")
# Hub tags of every learngene and descendant; the Trainer copies them into the cards it writes.
MODEL_TAGS = ("hf_learngene", "learngene")
# Keyword arguments of transformers' shared classification loss that callers (the Trainer) pass to forward.
_LOSS_KWARGS = ("num_items_in_batch", "ignore_index")
# `from_pretrained` arguments that say where a checkpoint is, and ones that say how to load it (not config fields).
_HUB_KWARGS = ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder", "proxies")
_LOADER_KWARGS = ("dtype", "torch_dtype", "attn_implementation", "device_map", "output_loading_info")


@dataclass
class LearngeneModelOutput(BaseModelOutput):
    """[`~transformers.modeling_outputs.BaseModelOutput`] plus `pooler_output` `(batch, hidden)`: what a classifier
    reads, set where the ancestor family's own output has it (mean or MAP pooling, CLIP's pooled LayerNorm), else
    None (so a plain ViT learngene's output is exactly a `BaseModelOutput`'s)."""

    pooler_output: torch.FloatTensor | None = None


def _pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, (list, tuple)) else (value, value)


class LearngenePatchEmbeddings(nn.Module):
    """Turns `pixel_values` (batch, channels, height, width) into patch tokens (batch, patches, hidden)."""

    def __init__(self, config: LearngeneConfig):
        super().__init__()
        self.image_size = _pair(config.image_size)
        self.patch_size = _pair(config.patch_size)
        self.num_channels = config.num_channels
        self.num_patches = (self.image_size[0] // self.patch_size[0]) * (self.image_size[1] // self.patch_size[1])
        self.projection = nn.Conv2d(
            config.num_channels,
            config.hidden_size,
            kernel_size=self.patch_size,
            stride=self.patch_size,
            bias=config.patch_bias,
        )

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        if pixel_values.ndim != 4 or pixel_values.shape[1] != self.num_channels:
            raise ValueError(
                f"Expected pixel_values of shape (batch, {self.num_channels}, height, width), got "
                f"{tuple(pixel_values.shape)}. Convert the images to {self.num_channels} channel(s) first "
                "(e.g. `image.convert('RGB')`, or use hf_learngene.data, which replicates grayscale channels)."
            )
        return self.projection(pixel_values).flatten(2).transpose(1, 2)


class LearngeneEmbeddings(nn.Module):
    """Prefix tokens, patch embeddings and position embeddings.

    The sequence is `[CLS] [DIST] [REG]... patches`, each prefix token present as the config says (`class_token`,
    `distillation_token`, `num_register_tokens`). Position embeddings cover the patches and the prefix tokens that
    `position_embedding_prefix` names, in that order; the other prefix tokens get none.
    """

    def __init__(self, config: LearngeneConfig):
        super().__init__()
        hidden = config.hidden_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, hidden)) if config.class_token else None
        self.distillation_token = nn.Parameter(torch.zeros(1, 1, hidden)) if config.distillation_token else None
        registers = config.num_register_tokens
        self.register_tokens = nn.Parameter(torch.zeros(1, registers, hidden)) if registers else None
        self.patch_embeddings = LearngenePatchEmbeddings(config)
        self.num_prefix_tokens = config.num_prefix_tokens
        self.num_positioned_prefix = {
            "class": int(config.class_token) + int(config.distillation_token),
            "all": self.num_prefix_tokens,
            "none": 0,
        }[config.position_embedding_prefix]
        self.position_embeddings = nn.Parameter(
            torch.zeros(1, self.patch_embeddings.num_patches + self.num_positioned_prefix, hidden)
        )
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.patch_size = self.patch_embeddings.patch_size
        self.image_size = self.patch_embeddings.image_size
        self.position_interpolation = config.position_interpolation
        self.interpolate_by_default = config.interpolate_pos_encoding

    def interpolate_pos_encoding(self, height: int, width: int) -> torch.Tensor:
        """Bicubic resize of the patch position embeddings to a (height, width) input, the way the ancestor family
        does it (`config.position_interpolation`: in the model's dtype as ViT, in float32 as DINOv2, with
        antialiasing as DINOv2 with registers and timm)."""
        new_h, new_w = height // self.patch_size[0], width // self.patch_size[1]
        old_h, old_w = self.image_size[0] // self.patch_size[0], self.image_size[1] // self.patch_size[1]
        if (new_h, new_w) == (old_h, old_w):
            return self.position_embeddings
        prefix_pos = self.position_embeddings[:, : self.num_positioned_prefix]
        patch_pos = self.position_embeddings[:, self.num_positioned_prefix :]
        dim = patch_pos.shape[-1]
        dtype = patch_pos.dtype
        patch_pos = patch_pos.reshape(1, old_h, old_w, dim).permute(0, 3, 1, 2)
        if self.position_interpolation != "bicubic":
            # Bicubic resampling in half precision shifts the embeddings; DINOv2 and timm resize in float32.
            patch_pos = patch_pos.float()
        patch_pos = F.interpolate(
            patch_pos,
            size=(new_h, new_w),
            mode="bicubic",
            align_corners=False,
            antialias=self.position_interpolation == "bicubic_fp32_antialias",
        ).to(dtype)
        patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, new_h * new_w, dim)
        return torch.cat((prefix_pos, patch_pos), dim=1)

    def forward(self, pixel_values: torch.Tensor, interpolate_pos_encoding: bool | None = None) -> torch.Tensor:
        if interpolate_pos_encoding is None:
            interpolate_pos_encoding = self.interpolate_by_default
        height, width = pixel_values.shape[-2:]
        if not interpolate_pos_encoding and (height, width) != self.image_size:
            raise ValueError(
                f"Input image size ({height}x{width}) does not match the model ({self.image_size[0]}x"
                f"{self.image_size[1]}). Resize the images (the learngene's image processor does), or pass "
                "`interpolate_pos_encoding=True` to interpolate the position embeddings."
            )
        embeddings = self.patch_embeddings(pixel_values)
        positions = (
            self.interpolate_pos_encoding(height, width) if interpolate_pos_encoding else self.position_embeddings
        )
        batch = embeddings.shape[0]
        prefix = [
            t.expand(batch, -1, -1)
            for t in (self.cls_token, self.distillation_token, self.register_tokens)
            if t is not None
        ]
        positioned = self.num_positioned_prefix
        if positioned == self.num_prefix_tokens:
            # Every prefix token has a position (ViT, DeiT, timm): concatenate, then add.
            embeddings = torch.cat((*prefix, embeddings), dim=1) + positions
        else:
            # Registers without positions (DINOv2), or no position for any prefix token (SigLIP, timm no_embed_class).
            prefix = torch.cat(prefix, dim=1)
            embeddings = torch.cat(
                (
                    prefix[:, :positioned] + positions[:, :positioned],
                    prefix[:, positioned:],
                    embeddings + positions[:, positioned:],
                ),
                dim=1,
            )
        return self.dropout(embeddings)


def _eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax attention written out, returning the attention probabilities: `(batch, seq, heads, head_dim)` output
    and `(batch, heads, query_len, key_len)` weights, the signature of transformers' attention interface."""
    scores = torch.matmul(query, key.transpose(-2, -1)) * scaling
    if attention_mask is not None:
        scores = scores + attention_mask
    # Softmax in fp32 so that bf16 / fp16 rows still sum to one.
    weights = scores.softmax(dim=-1, dtype=torch.float32).to(query.dtype)
    weights = F.dropout(weights, p=dropout, training=module.training)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


def _plain_tensor(tensor: torch.Tensor | None) -> bool:
    return tensor is None or type(tensor) in (nn.Parameter, torch.Tensor)


def _can_fuse(projections: tuple[nn.Module, ...]) -> bool:
    """Whether reading the projections' weights directly computes exactly what calling them computes.

    Only plain `nn.Linear`s (exact type: a peft LoRA layer, a quantized or FSDP2-sharded Linear is another class)
    holding plain tensors (not a DTensor or a quantized tensor subclass), with no hooks (DeepSpeed ZeRO-3 gathers
    weights in one, users capture features with them), and all with or all without a bias.
    """
    with_bias = projections[0].bias is not None
    for proj in projections:
        if type(proj) is not nn.Linear or (proj.bias is not None) != with_bias:
            return False
        if not (_plain_tensor(proj.weight) and _plain_tensor(proj.bias)):
            return False
        if proj._forward_pre_hooks or proj._forward_hooks or proj._backward_hooks or proj._backward_pre_hooks:
            return False
    return True


class LearngeneAttention(nn.Module):
    """Multi-head self-attention through transformers' attention interface (`config._attn_implementation`: `"sdpa"`
    by default, `"eager"`, which returns the attention weights, or any kernel registered in
    `ALL_ATTENTION_FUNCTIONS`, such as `"flash_attention_2"` where it is installed).

    Query, key and value are stored as three projections (the names transformers' ViT uses, so checkpoints map
    one to one). When all three are plain `nn.Linear`s they are computed as one matmul of their concatenated
    weights: one larger GEMM instead of three, one GEMM for the input gradient instead of three plus two sums. The
    projection output is split on its last dimension, so query, key and value reach the kernel as strided views (no
    copy; the flash and memory-efficient GPU kernels accept them) and their gradients flow back into one buffer.
    Anything else (peft LoRA layers, FSDP2-sharded or quantized Linears, hooked modules) is called as a module.
    """

    def __init__(self, config: LearngeneConfig, qkv_bias: bool | None = None):
        super().__init__()
        qkv_bias = config.qkv_bias if qkv_bias is None else qkv_bias
        # The attention interface reads the kernel choice (and flash attention its settings) from `module.config`.
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.dropout = config.attention_probs_dropout_prob
        self.is_causal = False
        self.q_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=qkv_bias)
        self.k_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=qkv_bias)
        self.v_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=qkv_bias)
        self.o_proj = nn.Linear(config.hidden_size, config.hidden_size)

    def _fused_projection(
        self, hidden_states: torch.Tensor, projections: tuple[nn.Module, ...]
    ) -> tuple[torch.Tensor, ...]:
        if not _can_fuse(projections):
            return tuple(proj(hidden_states) for proj in projections)
        weight = torch.cat([proj.weight for proj in projections])
        bias = None if projections[0].bias is None else torch.cat([proj.bias for proj in projections])
        return F.linear(hidden_states, weight, bias).split(projections[0].out_features, dim=-1)

    def _attention_function(self, output_attentions: bool) -> Callable:
        # A layer built outside a PreTrainedModel has no implementation chosen yet: it runs SDPA.
        implementation = self.config._attn_implementation or "sdpa"
        if output_attentions and implementation != "eager":
            raise ValueError(
                f"`output_attentions=True` needs the attention weights, which the {implementation!r} attention "
                'implementation does not return. Load the model with `attn_implementation="eager"` (e.g. '
                '`from_pretrained(path, attn_implementation="eager")`) or call '
                '`model.set_attn_implementation("eager")` first.'
            )
        if implementation == "eager":
            return _eager_attention_forward
        return ALL_ATTENTION_FUNCTIONS.get_interface(implementation, _eager_attention_forward)

    def _heads(self, states: torch.Tensor) -> torch.Tensor:
        # (batch, seq, hidden) -> (batch, heads, seq, head_dim), a view.
        return states.unflatten(-1, (self.num_heads, self.head_dim)).transpose(1, 2)

    def forward(
        self,
        hidden_states: torch.Tensor,
        cls_only: bool = False,
        output_attentions: bool = False,
        queries: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """
        Args:
            hidden_states (`torch.Tensor` of shape `(batch, seq, hidden)`):
                Normalised token representations.
            cls_only (`bool`, *optional*, defaults to `False`):
                Attend from the first (CLS) token only: keys and values still come from every token, the output
                has shape `(batch, 1, hidden)` and equals the first row of the full output.
            output_attentions (`bool`, *optional*, defaults to `False`):
                Require the attention weights (only the `"eager"` implementation computes them; others raise).
            queries (`torch.Tensor` of shape `(batch, n, hidden)`, *optional*):
                Tokens to attend from instead of `hidden_states` (the MAP pooling head's probe): keys and values come
                from `hidden_states`, the output has shape `(batch, n, hidden)`.

        Returns:
            `tuple(torch.Tensor, torch.Tensor | None)`: the attention output `(batch, seq, hidden)` and the attention
            weights `(batch, heads, seq, seq)` when the implementation returns them (`"eager"`), else `None`.
        """
        attention = self._attention_function(output_attentions)
        if cls_only or queries is not None:
            query = self.q_proj(hidden_states[:, :1] if queries is None else queries)
            key, value = self._fused_projection(hidden_states, (self.k_proj, self.v_proj))
        else:
            query, key, value = self._fused_projection(hidden_states, (self.q_proj, self.k_proj, self.v_proj))
        attn, weights = attention(
            self,
            self._heads(query),
            self._heads(key),
            self._heads(value),
            None,
            dropout=self.dropout if self.training else 0.0,
            scaling=self.scaling,
        )
        # The kernels return (batch, seq, heads, head_dim); SDPA's CPU and GPU kernels already lay their output out
        # that way, so this flatten is a view, not a copy.
        return self.o_proj(attn.flatten(2)), weights


class LearngeneMLP(nn.Module):
    """fc2(act(fc1(x))), or with `config.mlp_type="swiglu"` fc2(act(gate) * up) where fc1 holds the gate and up
    projections stacked (gate first: DINOv2's `weights_in`, timm's `SwiGLUPacked`), one GEMM for both."""

    def __init__(self, config: LearngeneConfig, gated: bool | None = None):
        super().__init__()
        self.gated = config.mlp_type == "swiglu" if gated is None else gated
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size * (2 if self.gated else 1))
        self.activation_fn = ACT2FN[config.hidden_act]
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = self.fc1(hidden_states)
        if self.gated:
            gate, up = hidden_states.chunk(2, dim=-1)
            return self.fc2(self.activation_fn(gate) * up)
        return self.fc2(self.activation_fn(hidden_states))


class LearngeneLayer(GradientCheckpointingLayer):
    """A pre-norm ViT block. `is_new` marks layers a descendant adds (they get `config.new_layer_init`)."""

    def __init__(self, config: LearngeneConfig, is_new: bool = False):
        super().__init__()
        self.is_new = is_new
        self.layernorm_before = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = LearngeneAttention(config)
        self.layernorm_after = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = LearngeneMLP(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        # Per-channel scales of the attention and MLP branches (DINOv2's layer_scale1/2, timm's ls1/ls2).
        scale = config.layer_scale_init_value
        self.layer_scale1 = nn.Parameter(torch.full((config.hidden_size,), scale)) if config.layer_scale else None
        self.layer_scale2 = nn.Parameter(torch.full((config.hidden_size,), scale)) if config.layer_scale else None

    def forward(
        self, hidden_states: torch.Tensor, cls_only: bool = False, output_attentions: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            hidden_states (`torch.Tensor` of shape `(batch, seq, hidden)`):
                Token representations.
            cls_only (`bool`, *optional*, defaults to `False`):
                Return only the first (CLS) token, shape `(batch, 1, hidden)`: every token still serves as key and
                value, but the query, output projection and MLP run on one token instead of `seq`. For the last
                layer of a classifier that reads the CLS token this gives the same logits with most of that layer's
                work skipped.
            output_attentions (`bool`, *optional*, defaults to `False`):
                Also return the attention weights `(batch, heads, seq, seq)` (needs the `"eager"` implementation).

        Returns:
            `torch.Tensor` (the layer output), or `(output, attention_weights)` when `output_attentions=True`.
        """
        residual = hidden_states[:, :1] if cls_only else hidden_states
        attn, weights = self.attention(
            self.layernorm_before(hidden_states), cls_only=cls_only, output_attentions=output_attentions
        )
        if self.layer_scale1 is not None:
            attn = attn * self.layer_scale1
        hidden_states = residual + self.dropout(attn)
        mlp = self.mlp(self.layernorm_after(hidden_states))
        if self.layer_scale2 is not None:
            mlp = mlp * self.layer_scale2
        hidden_states = hidden_states + self.dropout(mlp)
        return (hidden_states, weights) if output_attentions else hidden_states


class LearngeneAttentionPoolingHead(nn.Module):
    """Multi-head attention pooling (MAP), SigLIP's pooling head: a learned probe attends over the final tokens
    (`attention`, with the layers' head count), then a residual MLP on the result (`layernorm`, `mlp`). Adapted from
    transformers' `SiglipMultiheadAttentionPoolingHead`, whose `nn.MultiheadAttention` in-projection is stored here as
    q/k/v projections."""

    def __init__(self, config: LearngeneConfig):
        super().__init__()
        self.probe = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        # nn.MultiheadAttention always has in-projection biases.
        self.attention = LearngeneAttention(config, qkv_bias=True)
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = LearngeneMLP(config, gated=False)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        probe = self.probe.expand(hidden_states.shape[0], -1, -1)
        pooled, _ = self.attention(hidden_states, queries=probe)
        pooled = pooled + self.mlp(self.layernorm(pooled))
        return pooled[:, 0]


def _mimetic_init_(attention: LearngeneAttention, generator: torch.Generator | None = None) -> None:
    """Mimetic initialisation (Trockman & Kolter, 2023): W_q W_k^T ~ 0.7 (Z + I) per head, W_v W_o ~ 0.4 (Z - I)."""
    dim = attention.q_proj.weight.shape[1]
    hd = attention.head_dim
    device = attention.q_proj.weight.device

    def factors(scale: float, sign: float) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.randn(dim, dim, generator=generator, device=device) / math.sqrt(dim)
        u, s, vh = torch.linalg.svd(scale * (z + sign * torch.eye(dim, device=device)))
        root = s.sqrt()
        return u * root, vh.T * root

    q_rows, k_rows = [], []
    for _ in range(attention.num_heads):
        left, right = factors(0.7, 1.0)
        q_rows.append(left[:, :hd].T)
        k_rows.append(right[:, :hd].T)
    dtype = attention.q_proj.weight.dtype
    init.copy_(attention.q_proj.weight, torch.cat(q_rows).to(dtype))
    init.copy_(attention.k_proj.weight, torch.cat(k_rows).to(dtype))
    left, right = factors(0.4, -1.0)
    init.copy_(attention.v_proj.weight, left.T.to(dtype))
    init.copy_(attention.o_proj.weight, right.to(dtype))


# ---------------------------------------------------------------------------------------------------------------------
# Growing descendants of other sizes: pure tensor work, here so that remote code loads narrow and deep models too.

_SIZE_FIELDS = ("hidden_size", "num_attention_heads", "intermediate_size")


def _evenly_spaced(source: int, target: int) -> list[int]:
    """Weight selection's rule for one dimension (Xu et al., ICLR 2024, as the authors' code does it): every
    `source // target`-th index from 0 when `target` divides `source`, else `round(linspace(0, source, target))`
    clamped to `source - 1`. When the sizes are close and do not divide, the clamp can repeat the last index."""
    if source % target == 0:
        return list(range(0, source, source // target))
    positions = torch.round(torch.linspace(0, source, target)).clamp(max=source - 1)
    return [int(i) for i in positions.long()]


def _check_width_request(source: PretrainedConfig, target: PretrainedConfig, rule: str) -> None:
    """The errors a narrower model can hit, each naming its fix."""
    for name in _SIZE_FIELDS:
        wanted = getattr(target, name)
        if isinstance(wanted, bool) or not isinstance(wanted, int) or wanted < 1:
            raise ValueError(f"`{name}` must be a positive integer, got {wanted!r}.")
    hidden, heads = target.hidden_size, target.num_attention_heads
    if hidden % heads:
        divisors = [h for h in range(1, min(hidden, source.num_attention_heads) + 1) if hidden % h == 0]
        raise ValueError(
            f"`hidden_size` ({hidden}) must be divisible by `num_attention_heads` ({heads}): each head gets "
            f"hidden_size / num_attention_heads channels. Head counts that divide {hidden} (up to the learngene's "
            f"{source.num_attention_heads}): {divisors}."
        )
    for name in _SIZE_FIELDS:
        wanted, have = getattr(target, name), getattr(source, name)
        if wanted > have:
            raise ValueError(
                f"`{name}` ({wanted}) is larger than the learngene's ({have}): a descendant's channels are selected "
                f"from the learngene's, so it can only be as wide or narrower. Use {name} <= {have}."
            )
    head_dim = source.hidden_size // source.num_attention_heads
    if rule in ("heads", "activation") and hidden // heads != head_dim:
        fix = (
            f"num_attention_heads={hidden // head_dim} for hidden_size={hidden}"
            if hidden % head_dim == 0
            else f"a hidden_size that is a multiple of {head_dim} (e.g. {max(head_dim, hidden // head_dim * head_dim)})"
        )
        raise ValueError(
            f"width_selection={rule!r} keeps whole heads, so the head size must stay the learngene's head_dim "
            f"{head_dim}; hidden_size / num_attention_heads is {hidden} / {heads} = {hidden / heads:g}. Use {fix}, or "
            "width_selection='uniform' (which selects channels, not heads)."
        )


def _head_channels(heads: list[int], head_dim: int) -> list[int]:
    return [h * head_dim + c for h in heads for c in range(head_dim)]


def _width_plan(source: LearngeneConfig, target: LearngeneConfig) -> dict[str, Any]:
    """The kept indices of each dimension (`WIDTH_DIMENSIONS`) for a model of `target`'s sizes cut from a learngene
    of `source`'s: recorded or given in `target.width_indices`, else computed by `target.width_selection`
    (`"uniform"` when unset)."""
    rule = target.width_selection or "uniform"
    _check_width_request(source, target, rule)
    if target.width_indices is not None:
        recorded = target.width_indices.get("from")
        if recorded is not None and any(recorded[name] != getattr(source, name) for name in _SIZE_FIELDS):
            raise ValueError(
                f"`width_indices` were selected from a learngene of sizes {recorded}, but this one has "
                f"{ {name: getattr(source, name) for name in _SIZE_FIELDS} }."
            )
        plan = {}
        for dim in WIDTH_DIMENSIONS:
            value = target.width_indices[dim]
            plan[dim] = decode_indices(value) if isinstance(value, str) else [decode_indices(v) for v in value]
        bounds = {
            "hidden": source.hidden_size,
            "attention": source.hidden_size,
            "intermediate": source.intermediate_size,
        }
        for dim in WIDTH_DIMENSIONS:
            for indices in plan[dim] if isinstance(plan[dim][0], list) else [plan[dim]]:
                if max(indices) >= bounds[dim]:
                    raise ValueError(f"`width_indices[{dim!r}]` has indices >= {bounds[dim]}, the learngene's size.")
                if recorded is None and len(set(indices)) != len(indices):
                    raise ValueError(f"`width_indices[{dim!r}]` repeats indices; keep each channel once.")
        if source.learngene_form == "linear" and any(
            isinstance(plan[d][0], list) for d in ("attention", "intermediate")
        ):
            raise ValueError(
                "A linear learngene's theta_A and theta_B must keep the same channels: give one `attention` and one "
                "`intermediate` list shared by both, not one per stored layer."
            )
        return plan
    hidden = _evenly_spaced(source.hidden_size, target.hidden_size)
    if rule == "uniform":
        attention = _evenly_spaced(source.hidden_size, target.hidden_size)
    elif rule == "heads":
        heads = _evenly_spaced(source.num_attention_heads, target.num_attention_heads)
        attention = _head_channels(heads, source.hidden_size // source.num_attention_heads)
    else:
        raise ValueError(f"width_selection={rule!r} needs `width_indices` (see hf_learngene.growth.select_width).")
    return {
        "hidden": hidden,
        "attention": attention,
        "intermediate": _evenly_spaced(source.intermediate_size, target.intermediate_size),
    }


# Which dimension of each layer tensor takes which selection: 0 = output rows, 1 = input columns. A SwiGLU fc1 stacks
# the gate and up projections: `_select_width` gives its rows the MLP selection once in each half.
_LAYER_DIMENSIONS = {
    "layernorm_before.weight": {0: "hidden"},
    "layernorm_before.bias": {0: "hidden"},
    "layernorm_after.weight": {0: "hidden"},
    "layernorm_after.bias": {0: "hidden"},
    "layer_scale1": {0: "hidden"},
    "layer_scale2": {0: "hidden"},
    "attention.q_proj.weight": {0: "attention", 1: "hidden"},
    "attention.q_proj.bias": {0: "attention"},
    "attention.k_proj.weight": {0: "attention", 1: "hidden"},
    "attention.k_proj.bias": {0: "attention"},
    "attention.v_proj.weight": {0: "attention", 1: "hidden"},
    "attention.v_proj.bias": {0: "attention"},
    "attention.o_proj.weight": {0: "hidden", 1: "attention"},
    "attention.o_proj.bias": {0: "hidden"},
    "mlp.fc1.weight": {0: "intermediate", 1: "hidden"},
    "mlp.fc1.bias": {0: "intermediate"},
    "mlp.fc2.weight": {0: "hidden", 1: "intermediate"},
    "mlp.fc2.bias": {0: "hidden"},
}
_EMBEDDING_DIMENSIONS = {
    "embeddings.cls_token": {2: "hidden"},
    "embeddings.distillation_token": {2: "hidden"},
    "embeddings.register_tokens": {2: "hidden"},
    "embeddings.position_embeddings": {2: "hidden"},
    "embeddings.patch_embeddings.projection.weight": {0: "hidden"},
    "embeddings.patch_embeddings.projection.bias": {0: "hidden"},
    "pre_layernorm.weight": {0: "hidden"},
    "pre_layernorm.bias": {0: "hidden"},
    "layernorm.weight": {0: "hidden"},
    "layernorm.bias": {0: "hidden"},
    "map_head.probe": {2: "hidden"},
    **{f"map_head.{name}": dims for name, dims in _LAYER_DIMENSIONS.items() if name.startswith(("attention.", "mlp."))},
    "map_head.layernorm.weight": {0: "hidden"},
    "map_head.layernorm.bias": {0: "hidden"},
}


def _select_width(
    state: dict[str, torch.Tensor], plan: dict[str, Any], config: LearngeneConfig | None = None
) -> dict[str, torch.Tensor]:
    """Slice a learngene's tensors (`LearngeneModel` keys) by `plan`: every tensor that shares a dimension takes the
    same indices, so the residual stream (with the prefix tokens and layer-scale vectors), each layer's attention
    channels and its MLP neurons (both halves of a SwiGLU fc1) stay consistent. `config` is the learngene's."""
    gated = config is not None and config.mlp_type == "swiglu"
    out = {}
    for key, tensor in state.items():
        match = re.match(r"^layers\.(\d+)\.(.+)$", key)
        dims = _EMBEDDING_DIMENSIONS.get(key) if match is None else _LAYER_DIMENSIONS.get(match.group(2))
        if dims is None:
            raise ValueError(f"No width selection rule for the tensor {key!r}.")
        for dim, name in dims.items():
            indices = plan[name]
            if isinstance(indices[0], list):  # one list per stored layer
                if match is None:
                    raise ValueError(
                        f"`width_indices[{name!r}]` has one list per layer, but {key!r} belongs to no layer (the MAP "
                        "pooling head attends and has an MLP of its own): give one list shared by every layer "
                        "(width_selection='uniform' or 'heads'), or condense with pooling='mean'."
                    )
                indices = indices[int(match.group(1))]
            if gated and match is not None and match.group(2).startswith("mlp.fc1.") and dim == 0:
                # The gate rows, then the same neurons' up rows.
                indices = indices + [i + tensor.shape[0] // 2 for i in indices]
            tensor = tensor.index_select(dim, torch.tensor(indices, dtype=torch.long, device=tensor.device))
        out[key] = tensor.contiguous()
    return out


def _fit_linear(
    layers: list[dict[str, torch.Tensor]], positions: list[float]
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Least-squares (theta_A, theta_B) per tensor so that layer i is close to theta_A + positions[i] * theta_B
    (TLEG's linear expansion, fitted data-free); float64, exact when the layers are linear in their positions."""
    if len(set(positions)) < 2:
        raise ValueError("A linear fit over layers needs at least two distinct positions.")
    t = torch.tensor(positions, dtype=torch.float64)
    centred = t - t.mean()
    theta_a, theta_b = {}, {}
    for name in layers[0]:
        stacked = torch.stack([layer[name].detach().to(torch.float64) for layer in layers])
        shape = (-1,) + (1,) * (stacked.dim() - 1)
        mean = stacked.mean(0)
        theta_b[name] = (centred.view(shape) * (stacked - mean)).sum(0) / centred.pow(2).sum()
        theta_a[name] = mean - t.mean() * theta_b[name]
    return theta_a, theta_b


def _linear_layer_positions(config: LearngeneConfig) -> list[float]:
    """Depth fraction (l / L, 1-based) of each ancestry layer a linear learngene was fitted over."""
    return [(i + 1) / config.ancestor_num_layers for i in config.layer_indices]


def _new_layer_values(model: DescendantForImageClassification, layer: LearngeneLayer) -> dict[str, torch.Tensor]:
    """The tensors `"copy"` or `"linear"` gives a new layer, read from the (loaded) inherited layers."""
    config = model.config
    layers = model.descendant_layers()
    position = next(p for p, candidate in enumerate(layers) if candidate is layer)
    inherited = [(p, candidate) for p, candidate in enumerate(layers) if config.layout[p] == LAYOUT_INHERITED]
    if config.new_layer_init == "copy":
        # The nearest inherited layer; a tie goes to the earlier one (the layer that feeds this position).
        source = min(inherited, key=lambda pair: (abs(pair[0] - position), pair[0]))[1]
        return dict(source.named_parameters())
    depth = len(layers)
    if config.learngene_form == "linear":
        theta_a, theta_b = (dict(stored.named_parameters()) for stored in model.learngene.layers)
    else:
        theta_a, theta_b = _fit_linear(
            [dict(candidate.named_parameters()) for _, candidate in inherited], [(p + 1) / depth for p, _ in inherited]
        )
    t = (position + 1) / depth
    return {name: theta_a[name].to(torch.float64) + t * theta_b[name].to(torch.float64) for name in theta_a}


def _check_buildable(config: LearngeneConfig) -> None:
    """The geometry checks `LearngeneConfig` leaves to model construction (a config may be partial until then)."""
    for name in ("hidden_size", "num_attention_heads", "intermediate_size", "num_channels"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer to build a model, got {value!r}.")
    if config.hidden_size % config.num_attention_heads != 0:
        divisors = [h for h in range(1, min(config.hidden_size, 64) + 1) if config.hidden_size % h == 0]
        raise ValueError(
            f"`hidden_size` ({config.hidden_size}) must be divisible by `num_attention_heads` "
            f"({config.num_attention_heads}): change one of them (heads that divide {config.hidden_size}: "
            f"{divisors})."
        )
    for name in ("image_size", "patch_size"):
        value = getattr(config, name)
        pair = _pair(value)
        if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in pair):
            raise ValueError(f"`{name}` must be a positive integer or a (height, width) pair, got {value!r}.")
    if any(p > i for p, i in zip(_pair(config.patch_size), _pair(config.image_size), strict=True)):
        raise ValueError(
            f"`patch_size` ({config.patch_size}) is larger than `image_size` ({config.image_size}): the image "
            "would have no patch. Use a smaller patch or a larger image."
        )
    if not isinstance(config.hidden_act, str) or config.hidden_act not in ACT2FN:
        raise ValueError(
            f"`hidden_act` {config.hidden_act!r} is not an activation transformers knows; use one of "
            f"{sorted(ACT2FN)[:12]}... (e.g. 'gelu')."
        )
    for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
        value = getattr(config, name)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"`{name}` must be a probability in [0, 1], got {value!r}.")
    if config.new_layer_init not in NEW_LAYER_INITS:
        raise ValueError(f"`new_layer_init` must be one of {NEW_LAYER_INITS}, got {config.new_layer_init!r}.")


def _check_forward_kwargs(model: nn.Module, kwargs: dict, accepted: tuple[str, ...]) -> None:
    # Swallowing an unknown argument (`output_attentions` once was) would hide a feature the model lacks.
    unexpected = sorted(set(kwargs) - set(accepted))
    if unexpected:
        raise TypeError(
            f"{type(model).__name__}.forward() got unexpected keyword argument(s) {unexpected}"
            + (f"; besides its named arguments it accepts only {list(accepted)}." if accepted else ".")
        )


class LearngenePreTrainedModel(PreTrainedModel):
    config_class = LearngeneConfig
    config: LearngeneConfig
    base_model_prefix = "learngene"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    supports_gradient_checkpointing = True
    _no_split_modules = ["LearngeneEmbeddings", "LearngeneLayer", "LearngeneAttentionPoolingHead"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True

    def __init__(self, config: LearngeneConfig, *inputs, **kwargs):
        _check_buildable(config)
        super().__init__(config, *inputs, **kwargs)
        # Instance attribute: `add_model_tags` appends to it in place.
        self.model_tags = list(MODEL_TAGS)

    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            init.trunc_normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, LearngeneEmbeddings):
            init.trunc_normal_(module.position_embeddings, mean=0.0, std=std)
            for token in (module.cls_token, module.distillation_token, module.register_tokens):
                if token is not None:
                    init.trunc_normal_(token, mean=0.0, std=std)
        elif isinstance(module, LearngeneAttentionPoolingHead):
            init.trunc_normal_(module.probe, mean=0.0, std=std)
        elif isinstance(module, LearngeneLayer) and module.layer_scale1 is not None:
            init.constant_(module.layer_scale1, self.config.layer_scale_init_value)
            init.constant_(module.layer_scale2, self.config.layer_scale_init_value)
        if isinstance(module, LearngeneLayer) and module.is_new:
            # Layer-level schemes run after the layer's Linears and LayerNorms got the defaults above (children are
            # initialised first) and, under `from_pretrained`, after the inherited tensors are loaded; the helpers
            # skip loaded tensors, so a saved descendant's new layers are never overwritten.
            method = self.config.new_layer_init
            if method == "mimetic":
                _mimetic_init_(module.attention)
            elif method == "identity":
                for projection in (module.attention.o_proj, module.mlp.fc2):
                    init.zeros_(projection.weight)
                    init.zeros_(projection.bias)
            elif method in ("copy", "linear"):
                values = _new_layer_values(self, module)
                for name, param in module.named_parameters():
                    init.copy_(param, values[name].to(param.dtype))

    def _initialize_weights(self, module: nn.Module, is_custom_code: bool = False) -> None:
        # `_init_weights` only uses transformers.initialization helpers, which skip loaded tensors; so the shortcut
        # transformers takes for custom code (skip modules without direct parameters) is not needed, and it would
        # skip the layer-level initialisation of new layers (mimetic, identity, copy, linear).
        super()._initialize_weights(module, is_custom_code=False)

    # What travels with the weights besides config.json and model.safetensors (the image processor, the model card,
    # the condensing report) is written and read by hf_learngene's `serialization` module, when the package is
    # loaded; a remote-code copy of this file used without the package saves and loads the weights alone.
    image_processor: Any = None
    """The image processor saved beside the weights (`preprocessor_config.json`), when there is one."""
    condensing_report: dict[str, Any] | None = None
    """What `condense()` measured beyond the config's compact record (histories, score matrices), for
    `condense_report.json`."""
    training_summary: dict[str, Any] | None = None
    """What training recorded for the model card (data, settings, metrics, learning curve)."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """`PreTrainedModel.from_pretrained`, refusing checkpoints whose inherited weights are missing or whose layers
        do not match the config; with hf_learngene loaded, also the image processor and the condensing report saved
        beside the weights.

        Sizes smaller than the learngene's (`hidden_size=`, `num_attention_heads=`, `intermediate_size=`, with
        `width_selection=` or `width_indices=`) load a narrower model whose every tensor is sliced from the
        learngene's: see [`LearngeneConfig`]'s `width_selection`. A model saved narrow loads as it is. These
        arguments and `new_layer_init` may be None, meaning "not given" (the checkpoint's value)."""
        for name in (*_SIZE_FIELDS, "width_selection", "width_indices", "new_layer_init"):
            if name in kwargs and kwargs[name] is None:
                del kwargs[name]
        wants_info = kwargs.pop("output_loading_info", False)
        loaded = None
        if pretrained_model_name_or_path is not None and (
            kwargs.keys() & {*_SIZE_FIELDS, "width_selection", "width_indices"}
            or isinstance(kwargs.get("config"), PretrainedConfig)
        ):
            loaded = cls._from_pretrained_narrower(
                pretrained_model_name_or_path, *model_args, output_loading_info=True, **kwargs
            )
        if loaded is None:
            loaded = super().from_pretrained(
                pretrained_model_name_or_path, *model_args, output_loading_info=True, **kwargs
            )
        model, info = loaded
        if pretrained_model_name_or_path is not None:
            _check_loaded_weights(model, info, pretrained_model_name_or_path)
        if isinstance(model, DescendantForImageClassification):
            # Loading replaces the parameters, and with them the freezing `__init__` did.
            model._freeze_linear_learngene()
        hooks = _serialization_hooks()
        if hooks is not None and pretrained_model_name_or_path is not None:
            hooks.after_load(model, pretrained_model_name_or_path, kwargs)
        return (model, info) if wants_info else model

    @classmethod
    def _from_pretrained_narrower(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """The narrower model `kwargs` ask for, or None when they ask for the checkpoint's own width."""
        hub = {key: kwargs[key] for key in _HUB_KWARGS if key in kwargs}
        stored = cls.config_class.from_pretrained(pretrained_model_name_or_path, **hub)
        width_fields = (*_SIZE_FIELDS, "width_selection", "width_indices")
        given = kwargs.get("config")
        asked = (
            {name: getattr(given, name, None) for name in width_fields}
            if isinstance(given, PretrainedConfig)
            else {name: kwargs[name] for name in width_fields if name in kwargs}
        )
        descendant = "DescendantForImageClassification" in (stored.architectures or [])
        if descendant or stored.width_indices is not None:
            if all(value == getattr(stored, name) for name, value in asked.items()):
                return None
            what = "a descendant" if descendant else "already narrowed from a learngene"
            raise ValueError(
                f"{os.fspath(pretrained_model_name_or_path)!r} is {what}; widths are selected from a learngene at "
                f"its full width. Grow from that learngene instead, or load this checkpoint without "
                f"{sorted(name for name, value in asked.items() if value != getattr(stored, name))}."
            )
        if isinstance(given, PretrainedConfig):
            target = copy.deepcopy(kwargs["config"])
            rest = {key: value for key, value in kwargs.items() if key != "config" and key not in hub}
        else:
            fields = _init_fields(cls.config_class)
            config_keys = {
                key
                for key in kwargs
                if key not in hub and key not in _LOADER_KWARGS and (key in fields or hasattr(stored, key))
            }
            target = cls.config_class.from_pretrained(
                pretrained_model_name_or_path, **hub, **{key: kwargs[key] for key in config_keys}
            )
            rest = {key: value for key, value in kwargs.items() if key not in config_keys and key not in hub}
        same_sizes = all(getattr(target, name) == getattr(stored, name) for name in _SIZE_FIELDS)
        if same_sizes and (target.width_selection, target.width_indices) == (
            stored.width_selection,
            stored.width_indices,
        ):
            return None
        plan = _width_plan(stored, target)
        target.width_selection = target.width_selection or "uniform"
        target.width_indices = _normalize_width_indices(
            {**plan, "from": {name: getattr(stored, name) for name in _SIZE_FIELDS}},
            target.num_stored_layers,
            {"hidden_size": target.hidden_size, "intermediate_size": target.intermediate_size},
        )
        wide, wide_info = super(LearngenePreTrainedModel, LearngeneModel).from_pretrained(
            pretrained_model_name_or_path, config=stored, output_loading_info=True, **hub
        )
        _check_loaded_weights(wide, wide_info, pretrained_model_name_or_path)
        state = _select_width(wide.state_dict(), plan, stored)
        if cls is not LearngeneModel:
            state = {f"{cls.base_model_prefix}.{key}": tensor for key, tensor in state.items()}
        del wide
        loaded = super().from_pretrained(None, *model_args, config=target, state_dict=state, **rest)
        (loaded[0] if isinstance(loaded, tuple) else loaded).config.name_or_path = os.fspath(
            pretrained_model_name_or_path
        )
        return loaded

    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs) -> None:
        """`PreTrainedModel.save_pretrained`; with hf_learngene loaded, also the image processor, the model card and
        the condensing report."""
        super().save_pretrained(save_directory, *args, **kwargs)
        hooks = _serialization_hooks()
        if hooks is not None and kwargs.get("is_main_process", True):
            hooks.after_save(self, save_directory)

    def push_to_hub(self, repo_id: str, *args, **kwargs):
        """`PreTrainedModel.push_to_hub`; with hf_learngene loaded, the upload carries the same files as
        `save_pretrained` (the model card included, naming `repo_id`) instead of transformers' generic card."""
        hooks = _serialization_hooks()
        if hooks is None:
            return super().push_to_hub(repo_id, *args, **kwargs)
        return hooks.push_to_hub(self, repo_id, *args, **kwargs)


def _check_loaded_weights(model: PreTrainedModel, info: dict, source) -> None:
    """Refuse a checkpoint that would leave inherited weights random or drop some: every embedding, learngene layer
    and the final LayerNorm must come from the checkpoint, and the checkpoint may hold no layer the config lacks. A
    descendant grown from a bare learngene gets its new layers and head initialised; they are listed in the loading
    info (`missing_keys`) and logged."""
    prefix = f"{model.base_model_prefix}." if isinstance(model, DescendantForImageClassification) else ""
    missing = sorted(info.get("missing_keys") or [])
    inherited_missing = [key for key in missing if key.startswith(prefix) and not key.startswith(_NEW_PREFIXES)]
    extra_layers = sorted(k for k in info.get("unexpected_keys") or [] if re.search(r"(^|\.)layers\.\d+\.", k))
    if inherited_missing or extra_layers:
        layers = len(model.config.layer_indices)
        raise OSError(
            f"The checkpoint {os.fspath(source)!r} does not match its config ({layers} learngene layers, ancestry "
            f"layers {list(model.config.layer_indices)}): "
            + (f"missing inherited weights {inherited_missing[:4]}" if inherited_missing else "")
            + ("; " if inherited_missing and extra_layers else "")
            + (f"weights of layers the config does not have {extra_layers[:4]}" if extra_layers else "")
            + ". Loading it would leave inherited layers random or drop some. Re-save the learngene (or descendant) "
            "from its source, or fix `layer_indices` in config.json."
        )
    new = sorted(set(getattr(model, "_new_weights_from_learngene", ())))
    if new:
        info["missing_keys"] = type(info.get("missing_keys") or set())(sorted(set(missing) | set(new)))
        logger.info(f"Initialised the descendant's new weights (not in the learngene checkpoint): {new}")


def _serialization_hooks():
    # Looked up by name, never imported: this file must not depend on the package (it travels as remote code), and
    # the package's serialization module imports this one. Present whenever `hf_learngene` has been imported.
    module = sys.modules.get("hf_learngene.serialization")
    return getattr(module, "HOOKS", None)


class LearngeneModel(LearngenePreTrainedModel):
    """Embeddings (patch, prefix tokens, position), the learngene layers in order and the ancestry's final LayerNorm
    (plus CLIP's pre-LayerNorm and SigLIP's MAP pooling head where the config has them).

    With every ancestry layer kept, `last_hidden_state` equals the ancestry model's (`ViTModel`, `DeiTModel`,
    `Dinov2Model`, `CLIPVisionModel`, ...), and `pooler_output`, where the family has one, its pooled output.

    Example:

    ```python
    >>> from hf_learngene import LearngeneModel
    >>> learngene = LearngeneModel.from_pretrained("org/vit-learngene")
    >>> outputs = learngene(pixel_values)  # BaseModelOutput
    ```"""

    def __init__(self, config: LearngeneConfig):
        # A learngene runs one layer per kept ancestry layer; inside a descendant the config's depth is the layout's.
        _model_depth(config.num_hidden_layers, config.layout, len(config.layer_indices))
        super().__init__(config)
        self.embeddings = LearngeneEmbeddings(config)
        self.pre_layernorm = (
            nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps) if config.pre_layernorm else None
        )
        # One layer per kept ancestry layer, or theta_A and theta_B for a linear learngene.
        self.layers = nn.ModuleList([LearngeneLayer(config) for _ in range(config.num_stored_layers)])
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.map_head = LearngeneAttentionPoolingHead(config) if config.pooling == "map" else None
        self.post_init()

    def embed(self, pixel_values: torch.Tensor, interpolate_pos_encoding: bool | None = None) -> torch.Tensor:
        """The input of the first layer: embeddings, then the pre-LayerNorm where the family has one (CLIP)."""
        hidden_states = self.embeddings(pixel_values.to(self.dtype), interpolate_pos_encoding)
        return hidden_states if self.pre_layernorm is None else self.pre_layernorm(hidden_states)

    def final_norm(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """The last layer's output as `last_hidden_state`: normalised, unless the family normalises the pooled
        vector only (`config.final_layernorm="pooled"`)."""
        return self.layernorm(hidden_states) if self.config.final_layernorm == "sequence" else hidden_states

    def pool(self, last_hidden_state: torch.Tensor) -> torch.Tensor:
        """What a classifier reads from `last_hidden_state` (`config.pooling`): the CLS token `(batch, hidden)`, the
        CLS and distillation tokens `(batch, 2, hidden)`, the mean of the patch tokens, or the MAP head's output; then
        the final LayerNorm when the family applies it to the pooled vector."""
        pooling = self.config.pooling
        if pooling == "cls":
            pooled = last_hidden_state[:, 0]
        elif pooling == "cls_distillation":
            pooled = last_hidden_state[:, :2]
        elif pooling == "mean":
            pooled = last_hidden_state[:, self.embeddings.num_prefix_tokens :].mean(dim=1)
        else:
            pooled = self.map_head(last_hidden_state)
        return self.layernorm(pooled) if self.config.final_layernorm == "pooled" else pooled

    def _layers_in_order(self) -> list[Callable]:
        """The layers the forward runs: the stored ones, or for a linear learngene the layer theta_A + t * theta_B
        at each fitted ancestry position t (generated on the fly, so gradients reach theta_A and theta_B)."""
        if self.config.learngene_form != "linear":
            return list(self.layers)
        theta_a, theta_b = self.layers
        if self.training and theta_a.gradient_checkpointing:
            # Checkpointing would recompute with theta_A itself instead of the generated weights.
            raise ValueError(
                "A linear learngene's forward does not support gradient checkpointing; call "
                "`gradient_checkpointing_disable()` (its descendants support it)."
            )

        def generated(t: float) -> Callable:
            def run(hidden_states, **kwargs):
                b = dict(theta_b.named_parameters())
                params = {name: value + t * b[name] for name, value in theta_a.named_parameters()}
                return torch.func.functional_call(theta_a, params, (hidden_states,), kwargs)

            return run

        return [generated(t) for t in _linear_layer_positions(self.config)]

    def get_input_embeddings(self) -> nn.Module:
        return self.embeddings.patch_embeddings

    def forward(
        self,
        pixel_values: torch.Tensor,
        interpolate_pos_encoding: bool | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> BaseModelOutput | tuple:
        """
        Args:
            pixel_values (`torch.FloatTensor` of shape `(batch, channels, height, width)`):
                Images, normalised as the learngene's image processor does.
            interpolate_pos_encoding (`bool`, *optional*):
                Interpolate the position embeddings for inputs of another resolution; defaults to
                `config.interpolate_pos_encoding` (`False`, except for DINOv2, which always interpolates).
            output_hidden_states (`bool`, *optional*):
                Also return the embedding output and the output of every layer (before the final LayerNorm).
            output_attentions (`bool`, *optional*):
                Also return every layer's attention weights `(batch, heads, seq, seq)`; needs
                `attn_implementation="eager"` (other implementations raise a `ValueError` saying so).
            return_dict (`bool`, *optional*):
                Return a [`~transformers.modeling_outputs.BaseModelOutput`] (default) instead of a tuple.
        """
        _check_forward_kwargs(self, kwargs, ())
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        output_attentions = output_attentions if output_attentions is not None else self.config.output_attentions
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        hidden_states = self.embed(pixel_values, interpolate_pos_encoding)
        all_hidden = (hidden_states,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        for layer in self._layers_in_order():
            if output_attentions:
                hidden_states, weights = layer(hidden_states, output_attentions=True)
                all_attentions = all_attentions + (weights,)
            else:
                hidden_states = layer(hidden_states)
            if output_hidden_states:
                all_hidden = all_hidden + (hidden_states,)
        hidden_states = self.final_norm(hidden_states)
        pooled = self.pool(hidden_states) if self.config.has_pooled_output else None
        if not return_dict:
            return tuple(v for v in (hidden_states, all_hidden, all_attentions, pooled) if v is not None)
        return LearngeneModelOutput(
            last_hidden_state=hidden_states, hidden_states=all_hidden, attentions=all_attentions, pooler_output=pooled
        )


class DescendantForImageClassification(LearngenePreTrainedModel):
    """A ViT classifier grown from a learngene: inherited layers (`L`) and new random layers (`R`) in the order
    `config.layout` gives, the learngene's final LayerNorm and a new linear head on what `config.pooling` reads (the
    CLS token by default; the mean of two heads on the CLS and distillation tokens for a DeiT distilled learngene).

    Example:

    ```python
    >>> from hf_learngene import DescendantForImageClassification
    >>> model = DescendantForImageClassification.from_pretrained(
    ...     "org/vit-learngene", num_labels=10, layout="LLRRLLLL"
    ... )
    ```"""

    def __init__(self, config: LearngeneConfig):
        if not getattr(config, "_labels_given", True):
            raise ValueError(
                "A descendant needs a classification head size: pass `num_labels=` (or `id2label=`), e.g. "
                "DescendantForImageClassification.from_pretrained(path, num_labels=10)."
            )
        config.layout = config.resolved_layout()
        config.num_new_layers = None
        # The layout may have been set after the config was built: the depth follows it.
        config.num_hidden_layers = _model_depth(config.num_hidden_layers, config.layout, len(config.layer_indices))
        if isinstance(config.num_labels, bool) or not isinstance(config.num_labels, int) or config.num_labels < 1:
            raise ValueError(
                f"`num_labels` must be an integer >= 1 (1 means regression), got {config.num_labels!r}; pass "
                "num_labels=<number of classes> or id2label={0: 'cat', 1: 'dog', ...}."
            )
        super().__init__(config)
        self.num_labels = config.num_labels
        self.learngene = LearngeneModel(config)
        num_new = len(config.layout) - config.layout.count(LAYOUT_INHERITED)
        self.new_layers = nn.ModuleList([LearngeneLayer(config, is_new=True) for _ in range(num_new)])
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        # DeiT distilled: a second head on the distillation token; the logits are the mean of both heads.
        self.distillation_classifier = (
            nn.Linear(config.hidden_size, config.num_labels) if config.pooling == "cls_distillation" else None
        )
        if DESCENDANT_ARCHITECTURE not in (config.architectures or []):
            # Grown from a bare learngene (or built fresh): the new layers and the heads are expected to be missing
            # from a checkpoint, so transformers does not warn; `from_pretrained` still lists them as new.
            self._keys_to_ignore_on_load_missing = [r"^new_layers\.", r"^classifier\.", r"^distillation_classifier\."]
            self._new_weights_from_learngene = [name for name in self.state_dict() if name.startswith(_NEW_PREFIXES)]
        self._freeze_linear_learngene()
        self.post_init()

    def _freeze_linear_learngene(self) -> None:
        if self.config.learngene_form == "linear":
            # theta_A and theta_B only generate the new layers (at initialisation); the forward never reads them, so
            # they are frozen (DDP and FSDP require every trainable parameter to take part in the loss).
            self.learngene.layers.requires_grad_(False)

    @property
    def layout(self) -> str:
        return self.config.layout

    def descendant_layers(self) -> list[LearngeneLayer]:
        """The layers in forward order, as the layout interleaves them."""
        inherited, new = iter(self.learngene.layers), iter(self.new_layers)
        return [next(inherited) if c == LAYOUT_INHERITED else next(new) for c in self.config.layout]

    def get_input_embeddings(self) -> nn.Module:
        return self.learngene.embeddings.patch_embeddings

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        interpolate_pos_encoding: bool | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> ImageClassifierOutput | tuple:
        """
        Args:
            pixel_values (`torch.FloatTensor` of shape `(batch, channels, height, width)`):
                Images, normalised as the learngene's image processor does.
            labels (`torch.Tensor`, *optional*):
                Targets; the `loss` is returned when given, computed in float32 by transformers' shared loss for
                `config.problem_type` (inferred on the first call when unset, as `ViTForImageClassification` does):
                `"single_label_classification"` (integer class indices of shape `(batch,)`, cross-entropy),
                `"multi_label_classification"` (float multi-hot targets of shape `(batch, num_labels)`, BCE with
                logits) or `"regression"` (float targets, mean squared error; `num_labels=1` infers it).
            interpolate_pos_encoding (`bool`, *optional*):
                Interpolate the position embeddings for inputs of another resolution; defaults to
                `config.interpolate_pos_encoding` (`False`, except for DINOv2, which always interpolates).
            output_hidden_states (`bool`, *optional*):
                Also return the embedding output and the output of every layer in forward order.
            output_attentions (`bool`, *optional*):
                Also return every layer's attention weights `(batch, heads, seq, seq)` in forward order; needs
                `attn_implementation="eager"` (other implementations raise a `ValueError` saying so).
            return_dict (`bool`, *optional*):
                Return an [`~transformers.modeling_outputs.ImageClassifierOutput`] (default) instead of a tuple.
            kwargs:
                Loss arguments transformers passes (`num_items_in_batch` from the `Trainer`, `ignore_index`).
        """
        _check_forward_kwargs(self, kwargs, _LOSS_KWARGS)
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        output_attentions = output_attentions if output_attentions is not None else self.config.output_attentions
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        hidden_states = self.learngene.embed(pixel_values, interpolate_pos_encoding)
        all_hidden = (hidden_states,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        layers = self.descendant_layers()
        reads_cls = self.config.pooling == "cls"
        for position, layer in enumerate(layers):
            # When only the CLS token of the last layer reaches the classifier, unless every hidden state or
            # attention map is asked for, that layer updates the CLS token alone (same logits, less work).
            cls_only = reads_cls and not (output_hidden_states or output_attentions) and position == len(layers) - 1
            if output_attentions:
                hidden_states, weights = layer(hidden_states, cls_only=cls_only, output_attentions=True)
                all_attentions = all_attentions + (weights,)
            else:
                hidden_states = layer(hidden_states, cls_only=cls_only)
            if output_hidden_states:
                all_hidden = all_hidden + (hidden_states,)
        pooled = self.learngene.pool(self.learngene.final_norm(hidden_states))
        if self.distillation_classifier is None:
            logits = self.classifier(pooled)
        else:
            logits = (self.classifier(pooled[:, 0]) + self.distillation_classifier(pooled[:, 1])) / 2
        loss = None
        if labels is not None:
            # The loss is computed in float32 whatever the compute dtype, targets included.
            labels = labels.float() if labels.is_floating_point() else labels
            loss = self.loss_function(labels, logits.float(), self.config, **kwargs)
        if not return_dict:
            return tuple(v for v in (loss, logits, all_hidden, all_attentions) if v is not None)
        return ImageClassifierOutput(loss=loss, logits=logits, hidden_states=all_hidden, attentions=all_attentions)


__all__ = [
    "DescendantForImageClassification",
    "LearngeneModel",
    "LearngeneModelOutput",
    "LearngenePreTrainedModel",
]
