"""Tiny models shared by the core tests (transformers' ViT test geometry: image 30, patch 2, hidden 32)."""

from __future__ import annotations

import torch
from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessorPil, ViTModel

TINY_VIT = dict(
    hidden_size=32,
    num_hidden_layers=4,
    num_attention_heads=4,
    intermediate_size=37,
    image_size=30,
    patch_size=2,
    num_channels=3,
    hidden_act="gelu",
    layer_norm_eps=1e-12,
)


def tiny_vit_config(**overrides) -> ViTConfig:
    return ViTConfig(**{**TINY_VIT, **overrides})


def tiny_vit(seed: int = 0, classifier: bool = False, **overrides):
    """A randomly initialised tiny transformers ViT (v5 parameter names in memory), in eval mode."""
    torch.manual_seed(seed)
    config = tiny_vit_config(**overrides)
    model = ViTForImageClassification(config) if classifier else ViTModel(config, add_pooling_layer=False)
    return model.eval()


def tiny_processor(size: int = 30) -> ViTImageProcessorPil:
    return ViTImageProcessorPil(size={"height": size, "width": size}, image_mean=[0.5] * 3, image_std=[0.5] * 3)


def pixel_values(batch: int = 3, size: int = 30, channels: int = 3, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, channels, size, size, generator=generator)
