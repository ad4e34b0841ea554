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
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutput, ImageClassifierOutput
from transformers.utils import logging

from .configuration_learngene import LAYOUT_INHERITED, LearngeneConfig

logger = logging.get_logger(__name__)


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


class LearngeneAttention(nn.Module):
    """Multi-head self-attention through `scaled_dot_product_attention`.

    Query, key and value are stored as three projections (the names transformers' ViT uses, so checkpoints map
    one to one) and computed as one matmul of their concatenated weights: one larger GEMM instead of three, one
    GEMM for the input gradient instead of three plus two sums. The projection output is split on its last
    dimension, so query, key and value reach SDPA as strided views (no copy; the flash and memory-efficient GPU
    kernels accept them) and their gradients flow back into one buffer.
    """

    def __init__(self, config: LearngeneConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.dropout = config.attention_probs_dropout_prob
        self.q_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=config.qkv_bias)
        self.k_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=config.qkv_bias)
        self.v_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=config.qkv_bias)
        self.o_proj = nn.Linear(config.hidden_size, config.hidden_size)

    def _fused_projection(
        self, hidden_states: torch.Tensor, projections: tuple[nn.Linear, ...]
    ) -> tuple[torch.Tensor, ...]:
        weight = torch.cat([proj.weight for proj in projections])
        bias = None if projections[0].bias is None else torch.cat([proj.bias for proj in projections])
        return F.linear(hidden_states, weight, bias).split(hidden_states.shape[-1], dim=-1)

    def _heads(self, states: torch.Tensor) -> torch.Tensor:
        # (batch, seq, hidden) -> (batch, heads, seq, head_dim), a view.
        return states.unflatten(-1, (self.num_heads, self.head_dim)).transpose(1, 2)

    def forward(self, hidden_states: torch.Tensor, cls_only: bool = False) -> torch.Tensor:
        """
        Args:
            hidden_states (`torch.Tensor` of shape `(batch, seq, hidden)`):
                Normalised token representations.
            cls_only (`bool`, *optional*, defaults to `False`):
                Attend from the first (CLS) token only: keys and values still come from every token, the output
                has shape `(batch, 1, hidden)` and equals the first row of the full output.
        """
        if cls_only:
            query = self.q_proj(hidden_states[:, :1])
            key, value = self._fused_projection(hidden_states, (self.k_proj, self.v_proj))
        else:
            query, key, value = self._fused_projection(hidden_states, (self.q_proj, self.k_proj, self.v_proj))
        attn = F.scaled_dot_product_attention(
            self._heads(query),
            self._heads(key),
            self._heads(value),
            dropout_p=self.dropout if self.training else 0.0,
        )
        # SDPA's CPU and GPU kernels return (batch, seq, heads, head_dim) memory seen as (batch, heads, seq,
        # head_dim), so this transpose + flatten is a view, not a copy.
        return self.o_proj(attn.transpose(1, 2).flatten(2))


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

    def forward(self, hidden_states: torch.Tensor, cls_only: bool = False) -> torch.Tensor:
        """
        Args:
            hidden_states (`torch.Tensor` of shape `(batch, seq, hidden)`):
                Token representations.
            cls_only (`bool`, *optional*, defaults to `False`):
                Return only the first (CLS) token, shape `(batch, 1, hidden)`: every token still serves as key and
                value, but the query, output projection and MLP run on one token instead of `seq`. For the last
                layer of a classifier that reads the CLS token this gives the same logits with most of that layer's
                work skipped.
        """
        residual = hidden_states[:, :1] if cls_only else hidden_states
        attn = self.attention(self.layernorm_before(hidden_states), cls_only=cls_only)
        hidden_states = residual + self.dropout(attn)
        return hidden_states + self.dropout(self.mlp(self.layernorm_after(hidden_states)))


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


class LearngenePreTrainedModel(PreTrainedModel):
    config_class = LearngeneConfig
    config: LearngeneConfig
    base_model_prefix = "learngene"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    supports_gradient_checkpointing = True
    _no_split_modules = ["LearngeneEmbeddings", "LearngeneLayer"]
    _supports_sdpa = True

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
        super().__init__(config)
        self.embeddings = LearngeneEmbeddings(config)
        self.layers = nn.ModuleList([LearngeneLayer(config) for _ in range(config.num_hidden_layers)])
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.embeddings.patch_embeddings

    def forward(
        self,
        pixel_values: torch.Tensor,
        interpolate_pos_encoding: bool = False,
        output_hidden_states: bool | None = None,
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
        """
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        hidden_states = self.embeddings(pixel_values.to(self.dtype), interpolate_pos_encoding)
        all_hidden = (hidden_states,) if output_hidden_states else None
        for layer in self.layers:
            hidden_states = layer(hidden_states)
            if output_hidden_states:
                all_hidden = all_hidden + (hidden_states,)
        hidden_states = self.layernorm(hidden_states)
        if not return_dict:
            return tuple(v for v in (hidden_states, all_hidden) if v is not None)
        return BaseModelOutput(last_hidden_state=hidden_states, hidden_states=all_hidden)


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
        return_dict: bool | None = None,
        **kwargs,
    ) -> ImageClassifierOutput | tuple:
        """
        Args:
            pixel_values (`torch.FloatTensor` of shape `(batch, channels, height, width)`):
                Images, normalised as the learngene's image processor does.
            labels (`torch.LongTensor` of shape `(batch,)`, *optional*):
                Class indices in `[0, num_labels)`; the cross-entropy `loss` is returned when given.
            interpolate_pos_encoding (`bool`, *optional*, defaults to `False`):
                Interpolate the position embeddings for inputs of another resolution.
        """
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        hidden_states = self.learngene.embeddings(pixel_values.to(self.dtype), interpolate_pos_encoding)
        all_hidden = (hidden_states,) if output_hidden_states else None
        layers = self.descendant_layers()
        for position, layer in enumerate(layers):
            # Only the CLS token of the last layer reaches the classifier: unless every hidden state is asked for,
            # that layer updates the CLS token alone (same logits, less work).
            cls_only = not output_hidden_states and position == len(layers) - 1
            hidden_states = layer(hidden_states, cls_only=cls_only)
            if output_hidden_states:
                all_hidden = all_hidden + (hidden_states,)
        hidden_states = self.learngene.layernorm(hidden_states)
        logits = self.classifier(hidden_states[:, 0])
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.float(), labels.to(logits.device).view(-1))
        if not return_dict:
            return tuple(v for v in (loss, logits, all_hidden) if v is not None)
        return ImageClassifierOutput(loss=loss, logits=logits, hidden_states=all_hidden)


__all__ = [
    "DescendantForImageClassification",
    "LearngeneModel",
    "LearngenePreTrainedModel",
]
