"""Learngene and descendant models.

The ViT layer code is adapted from transformers' `models/vit/modeling_vit.py` (Apache-2.0) and owned here, so
that its parameter names and internals do not move with transformers releases. Parameter names follow
transformers 5's ViT (`attention.q_proj`, `mlp.fc1`, ...), so checkpoint tensors map one to one.

This file travels as remote code next to saved checkpoints: it imports only torch, transformers, the standard
library and its sibling ``configuration_learngene.py``.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutput, ImageClassifierOutput
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import logging

from .configuration_learngene import LAYOUT_INHERITED, NEW_LAYER_INITS, LearngeneConfig, _model_depth

logger = logging.get_logger(__name__)

# Keyword arguments of transformers' shared classification loss that callers (the Trainer) pass to forward.
_LOSS_KWARGS = ("num_items_in_batch", "ignore_index")

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
            config.num_channels, config.hidden_size, kernel_size=self.patch_size, stride=self.patch_size
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
    """CLS token, position embeddings and patch embeddings."""

    def __init__(self, config: LearngeneConfig):
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.patch_embeddings = LearngenePatchEmbeddings(config)
        self.position_embeddings = nn.Parameter(
            torch.zeros(1, self.patch_embeddings.num_patches + 1, config.hidden_size)
        )
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.patch_size = self.patch_embeddings.patch_size
        self.image_size = self.patch_embeddings.image_size

    def interpolate_pos_encoding(self, height: int, width: int) -> torch.Tensor:
        """Bicubic resize of the patch position embeddings to a (height, width) input, as DINO and ViT do."""
        new_h, new_w = height // self.patch_size[0], width // self.patch_size[1]
        old_h, old_w = self.image_size[0] // self.patch_size[0], self.image_size[1] // self.patch_size[1]
        if (new_h, new_w) == (old_h, old_w):
            return self.position_embeddings
        cls_pos = self.position_embeddings[:, :1]
        patch_pos = self.position_embeddings[:, 1:]
        dim = patch_pos.shape[-1]
        patch_pos = patch_pos.reshape(1, old_h, old_w, dim).permute(0, 3, 1, 2)
        patch_pos = F.interpolate(patch_pos, size=(new_h, new_w), mode="bicubic", align_corners=False)
        patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, new_h * new_w, dim)
        return torch.cat((cls_pos, patch_pos), dim=1)

    def forward(self, pixel_values: torch.Tensor, interpolate_pos_encoding: bool = False) -> torch.Tensor:
        height, width = pixel_values.shape[-2:]
        if not interpolate_pos_encoding and (height, width) != self.image_size:
            raise ValueError(
                f"Input image size ({height}x{width}) does not match the model ({self.image_size[0]}x"
                f"{self.image_size[1]}). Resize the images (the learngene's image processor does), or pass "
                "`interpolate_pos_encoding=True` to interpolate the position embeddings."
            )
        embeddings = self.patch_embeddings(pixel_values)
        cls_tokens = self.cls_token.expand(embeddings.shape[0], -1, -1)
        embeddings = torch.cat((cls_tokens, embeddings), dim=1)
        if interpolate_pos_encoding:
            embeddings = embeddings + self.interpolate_pos_encoding(height, width)
        else:
            embeddings = embeddings + self.position_embeddings
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

    def __init__(self, config: LearngeneConfig):
        super().__init__()
        # The attention interface reads the kernel choice (and flash attention its settings) from `module.config`.
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.dropout = config.attention_probs_dropout_prob
        self.is_causal = False
        self.q_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=config.qkv_bias)
        self.k_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=config.qkv_bias)
        self.v_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=config.qkv_bias)
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
        self, hidden_states: torch.Tensor, cls_only: bool = False, output_attentions: bool = False
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

        Returns:
            `tuple(torch.Tensor, torch.Tensor | None)`: the attention output `(batch, seq, hidden)` and the attention
            weights `(batch, heads, seq, seq)` when the implementation returns them (`"eager"`), else `None`.
        """
        attention = self._attention_function(output_attentions)
        if cls_only:
            query = self.q_proj(hidden_states[:, :1])
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
    def __init__(self, config: LearngeneConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.activation_fn = ACT2FN[config.hidden_act]
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation_fn(self.fc1(hidden_states)))


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
        hidden_states = residual + self.dropout(attn)
        hidden_states = hidden_states + self.dropout(self.mlp(self.layernorm_after(hidden_states)))
        return (hidden_states, weights) if output_attentions else hidden_states


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
    _no_split_modules = ["LearngeneEmbeddings", "LearngeneLayer"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True

    def __init__(self, config: LearngeneConfig, *inputs, **kwargs):
        _check_buildable(config)
        super().__init__(config, *inputs, **kwargs)

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
            init.trunc_normal_(module.cls_token, mean=0.0, std=std)
        elif isinstance(module, LearngeneLayer) and module.is_new and self.config.new_layer_init == "mimetic":
            _mimetic_init_(module.attention)

    def _initialize_weights(self, module: nn.Module, is_custom_code: bool = False) -> None:
        # `_init_weights` only uses transformers.initialization helpers, which skip loaded tensors; so the shortcut
        # transformers takes for custom code (skip modules without direct parameters) is not needed, and it would
        # skip the layer-level mimetic initialisation of new layers.
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
        """`PreTrainedModel.from_pretrained`; with hf_learngene loaded, also the image processor and the condensing
        report saved beside the weights."""
        loaded = super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        hooks = _serialization_hooks()
        if hooks is not None:
            # With output_loading_info=True transformers returns (model, info).
            hooks.after_load(loaded[0] if isinstance(loaded, tuple) else loaded, pretrained_model_name_or_path, kwargs)
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


def _serialization_hooks():
    # Looked up by name, never imported: this file must not depend on the package (it travels as remote code), and
    # the package's serialization module imports this one. Present whenever `hf_learngene` has been imported.
    module = sys.modules.get("hf_learngene.serialization")
    return getattr(module, "HOOKS", None)


class LearngeneModel(LearngenePreTrainedModel):
    """Embeddings (patch, CLS, position), the learngene layers in order and the ancestry's final LayerNorm.

    With every ancestry layer kept, `last_hidden_state` equals the ancestry `ViTModel`'s.

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
        self.layers = nn.ModuleList([LearngeneLayer(config) for _ in range(len(config.layer_indices))])
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.embeddings.patch_embeddings

    def forward(
        self,
        pixel_values: torch.Tensor,
        interpolate_pos_encoding: bool = False,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> BaseModelOutput | tuple:
        """
        Args:
            pixel_values (`torch.FloatTensor` of shape `(batch, channels, height, width)`):
                Images, normalised as the learngene's image processor does.
            interpolate_pos_encoding (`bool`, *optional*, defaults to `False`):
                Interpolate the position embeddings for inputs of another resolution.
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
        hidden_states = self.embeddings(pixel_values.to(self.dtype), interpolate_pos_encoding)
        all_hidden = (hidden_states,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        for layer in self.layers:
            if output_attentions:
                hidden_states, weights = layer(hidden_states, output_attentions=True)
                all_attentions = all_attentions + (weights,)
            else:
                hidden_states = layer(hidden_states)
            if output_hidden_states:
                all_hidden = all_hidden + (hidden_states,)
        hidden_states = self.layernorm(hidden_states)
        if not return_dict:
            return tuple(v for v in (hidden_states, all_hidden, all_attentions) if v is not None)
        return BaseModelOutput(last_hidden_state=hidden_states, hidden_states=all_hidden, attentions=all_attentions)


class DescendantForImageClassification(LearngenePreTrainedModel):
    """A ViT classifier grown from a learngene: inherited layers (`L`) and new random layers (`R`) in the order
    `config.layout` gives, the learngene's final LayerNorm and a new linear head on the CLS token.

    Example:

    ```python
    >>> from hf_learngene import DescendantForImageClassification
    >>> model = DescendantForImageClassification.from_pretrained(
    ...     "org/vit-learngene", num_labels=10, layout="LLRRLLLL"
    ... )
    ```"""

    _keys_to_ignore_on_load_missing = [r"^new_layers\.", r"^classifier\."]

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
        super().__init__(config)
        self.num_labels = config.num_labels
        self.learngene = LearngeneModel(config)
        num_new = len(config.layout) - config.layout.count(LAYOUT_INHERITED)
        self.new_layers = nn.ModuleList([LearngeneLayer(config, is_new=True) for _ in range(num_new)])
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

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
        interpolate_pos_encoding: bool = False,
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
            interpolate_pos_encoding (`bool`, *optional*, defaults to `False`):
                Interpolate the position embeddings for inputs of another resolution.
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
        hidden_states = self.learngene.embeddings(pixel_values.to(self.dtype), interpolate_pos_encoding)
        all_hidden = (hidden_states,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        layers = self.descendant_layers()
        for position, layer in enumerate(layers):
            # Only the CLS token of the last layer reaches the classifier: unless every hidden state or attention
            # map is asked for, that layer updates the CLS token alone (same logits, less work).
            cls_only = not (output_hidden_states or output_attentions) and position == len(layers) - 1
            if output_attentions:
                hidden_states, weights = layer(hidden_states, cls_only=cls_only, output_attentions=True)
                all_attentions = all_attentions + (weights,)
            else:
                hidden_states = layer(hidden_states, cls_only=cls_only)
            if output_hidden_states:
                all_hidden = all_hidden + (hidden_states,)
        hidden_states = self.learngene.layernorm(hidden_states)
        logits = self.classifier(hidden_states[:, 0])
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
    "LearngenePreTrainedModel",
]
