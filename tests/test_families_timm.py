"""timm ViT checkpoints against timm's own models. Skipped where timm is not installed (it needs torchvision, which has
no CPU wheel beside this project's torch); runs on the GPU machine, where timm is:

    python -m pytest -q -p no:cacheprovider tests/test_families_timm.py

Each architecture is built by timm at its registered configuration (depth and image size shrunk through `model_args`,
the way a fine-tuned checkpoint records them), saved with timm's own `save_for_hf` (config.json + model.safetensors),
condensed with every layer, and must reproduce timm's `forward_features` and, through a descendant holding timm's head,
timm's logits. The head count, activation and LayerNorm epsilon are not in timm's config.json: this checks the
conventions hf_learngene infers them from."""

from __future__ import annotations

import pytest
import torch

timm = pytest.importorskip("timm")
from timm.models import save_for_hf  # noqa: E402

from hf_learngene import DescendantForImageClassification, condense, load_ancestor  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@pytest.fixture(autouse=True)
def _full_fp32():
    # 1e-5 compares fp32 computations: no TF32 in matmuls or cuDNN convolutions on the GPU.
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


# (architecture, model_args shrinking it, reading options)
ARCHITECTURES = [
    ("vit_tiny_patch16_224", {"depth": 2, "img_size": 64}, {}),
    ("vit_small_patch16_224", {"depth": 2, "img_size": 64}, {}),
    ("vit_base_patch16_224", {"depth": 2, "img_size": 64, "global_pool": "avg"}, {}),
    ("vit_base_patch16_clip_224", {"depth": 2, "img_size": 64}, {}),
    ("vit_base_patch16_clip_quickgelu_224", {"depth": 2, "img_size": 64}, {}),
    ("vit_small_patch14_dinov2", {"depth": 2, "img_size": 56}, {}),
    ("vit_small_patch14_reg4_dinov2", {"depth": 2, "img_size": 56}, {}),
    ("vit_giant_patch14_dinov2", {"depth": 1, "img_size": 28}, {}),
    ("vit_huge_patch14_224", {"depth": 1, "img_size": 56}, {}),
    ("vit_medium_patch16_gap_256", {"depth": 2, "img_size": 64}, {}),
    ("vit_base_patch16_siglip_224", {"depth": 2, "img_size": 64}, {"pooling": "mean"}),
    ("deit_small_distilled_patch16_224", {"depth": 2, "img_size": 64}, {}),
    ("deit3_small_patch16_224", {"depth": 2, "img_size": 64}, {}),
]


def _randomize(model: torch.nn.Module) -> torch.nn.Module:
    # Tokens and layer scales start at ~0 / 1e-5 in timm: random values make every tensor count.
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            fan_in = param.shape[-1] if param.ndim > 1 else 1
            scale = 0.2 if param.ndim == 1 or "token" in name or "pos_embed" in name else fan_in**-0.5
            offset = 1.0 if param.ndim == 1 and ("norm" in name and name.endswith("weight")) else 0.0
            param.copy_(torch.randn(param.shape, generator=generator) * scale + offset)
    return model.eval()


@pytest.mark.parametrize(("name", "model_args", "options"), ARCHITECTURES, ids=[a[0] for a in ARCHITECTURES])
def test_timm_checkpoint_reproduces_timm(name, model_args, options, tmp_path):
    model = _randomize(timm.create_model(name, pretrained=False, num_classes=5, **model_args))
    save_for_hf(model, tmp_path / name, model_args=model_args, safe_serialization=True)
    depth = len(model.blocks)
    learngene = condense(load_ancestor(str(tmp_path / name), **options), method="first", num_layers=depth)
    learngene = learngene.to(DEVICE).eval()
    model = model.to(DEVICE)
    size = model_args["img_size"]
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1)).to(DEVICE)
    with torch.no_grad():
        features = model.forward_features(x)
        out = learngene(x)
    torch.testing.assert_close(out.last_hidden_state, features, atol=1e-5, rtol=0)
    if options.get("pooling") == "mean":
        return  # timm pools this one with its attention head, which hf_learngene does not read
    learngene.save_pretrained(tmp_path / "learngene")
    descendant = DescendantForImageClassification.from_pretrained(tmp_path / "learngene", num_labels=5).to(DEVICE)
    descendant.eval()
    with torch.no_grad():
        descendant.classifier.weight.copy_(model.head.weight)
        descendant.classifier.bias.copy_(model.head.bias)
        if descendant.distillation_classifier is not None:
            descendant.distillation_classifier.weight.copy_(model.head_dist.weight)
            descendant.distillation_classifier.bias.copy_(model.head_dist.bias)
        torch.testing.assert_close(descendant(x).logits, model(x), atol=1e-5, rtol=0)


def test_timm_architectures_hf_learngene_cannot_read_are_refused(tmp_path):
    model = timm.create_model("vit_base_patch16_siglip_224", pretrained=False, depth=1, img_size=32)
    save_for_hf(model, tmp_path / "siglip", model_args={"depth": 1, "img_size": 32}, safe_serialization=True)
    with pytest.raises(ValueError, match="global_pool='map'"):
        condense(str(tmp_path / "siglip"), method="first", num_layers=1)
    # EVA-02 (rotary embeddings, separate q/k/v, SwiGLU with a norm) is another model class.
    model = timm.create_model("eva02_tiny_patch14_224", pretrained=False, depth=1)
    save_for_hf(model, tmp_path / "eva", model_args={"depth": 1}, safe_serialization=True)
    with pytest.raises(ValueError, match="no plain ViT has"):
        condense(str(tmp_path / "eva"), method="first", num_layers=1)
