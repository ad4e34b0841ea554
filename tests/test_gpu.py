"""The GPU paths, on a CUDA machine (skipped without one; CI has none, the GPU machine runs this file).

What only a GPU exercises: SDPA's flash kernel on the fused-QKV strided views, bf16 autocast, inductor's GPU code,
fused AdamW, condensing with the bf16 default, and the training helper's GPU defaults.

    python -m pytest tests/test_gpu.py -q
"""

from __future__ import annotations

import math

import pytest
import torch
from tiny_models import pixel_values, tiny_vit

from hf_learngene import DescendantForImageClassification, LearngeneConfig, condense

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

# head_dim 64 (what ViT-S/B use and what the flash kernel is built for), 32 px in 4 px patches: 65 tokens.
GEOMETRY = dict(hidden_size=128, num_attention_heads=2, intermediate_size=256, image_size=32, patch_size=4)


@pytest.fixture(autouse=True)
def full_fp32_matmuls():
    """fp32 comparisons in true fp32: TF32 would add ~1e-3 relative error of its own."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def descendant(layout: str = "LLRR", seed: int = 0) -> DescendantForImageClassification:
    torch.manual_seed(seed)
    config = LearngeneConfig(layer_indices=[0, 1], ancestor_num_layers=4, layout=layout, num_labels=5, **GEOMETRY)
    return DescendantForImageClassification(config).cuda().train()


def batch(seed: int = 0, size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(size, 3, GEOMETRY["image_size"], GEOMETRY["image_size"], generator=generator)
    return x.cuda(), torch.randint(0, 5, (size,), generator=generator).cuda()


def relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    return ((got.float() - expected.float()).norm() / expected.float().norm()).item()


def assert_grads_close(got, expected, rel: float) -> None:
    """All gradients within `rel` relative error (as one vector), and each tensor within `rel` of its own norm or of
    1% of the whole gradient's norm, whichever is larger (the key bias's gradient is zero up to rounding, so its own
    relative error is noise)."""
    flat_got = torch.cat([g.float().flatten() for g in got])
    flat_expected = torch.cat([e.float().flatten() for e in expected])
    assert torch.isfinite(flat_got).all()
    assert relative_error(flat_got, flat_expected) < rel
    floor = 0.01 * flat_expected.norm()
    for g, e in zip(got, expected, strict=True):
        assert (g.float() - e.float()).norm() <= rel * max(e.float().norm(), floor)


def loss_and_grads(model, x, y, autocast: bool = False):
    params = [p for p in model.parameters() if p.requires_grad]
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
        out = model(pixel_values=x, labels=y)
    return out.loss.detach(), out.logits.detach().float(), torch.autograd.grad(out.loss, params)


def test_learngene_on_cuda_equals_transformers_vit_and_the_cpu():
    ancestor = tiny_vit(seed=0, **GEOMETRY)
    learngene = condense(ancestor, method="manual", layers=[0, 1, 2, 3]).eval()
    x = pixel_values(size=GEOMETRY["image_size"], seed=1)
    with torch.no_grad():
        on_cpu = learngene(x).last_hidden_state
        expected = ancestor.cuda()(x.cuda()).last_hidden_state
        got = learngene.cuda()(x.cuda()).last_hidden_state
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(got.cpu(), on_cpu, atol=1e-5, rtol=0)


def test_flash_attention_takes_the_fused_qkv_views_and_matches_the_math_kernel():
    from torch.nn.attention import SDPBackend, sdpa_kernel

    model, (x, y) = descendant(), batch(seed=1)
    # With only the flash kernel allowed SDPA raises rather than fall back, so this proves flash accepts the strided
    # query/key/value views, forward and backward, the CLS-only last layer (1 query, 65 keys) included.
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        flash_loss, _, flash_grads = loss_and_grads(model, x, y, autocast=True)
    with sdpa_kernel(SDPBackend.MATH):
        math_loss, _, math_grads = loss_and_grads(model, x, y, autocast=True)
    assert relative_error(flash_loss, math_loss) < 1e-2
    assert_grads_close(flash_grads, math_grads, rel=3e-2)


def test_bf16_autocast_step_tracks_fp32():
    model, (x, y) = descendant(), batch(seed=2)
    loss32, logits32, grads32 = loss_and_grads(model, x, y)
    loss16, logits16, grads16 = loss_and_grads(model, x, y, autocast=True)
    assert math.isfinite(loss16.item())
    assert relative_error(loss16, loss32) < 1e-2
    assert relative_error(logits16, logits32) < 3e-2
    assert_grads_close(grads16, grads32, rel=5e-2)


def test_fused_adamw_steps_equal_the_for_loop_steps():
    # Both optimizers get the same gradients (from a real bf16 backward), so only the update arithmetic differs.
    # Gradients from two separate backward passes would not do: the GPU's backward is not bitwise reproducible, and
    # Adam turns a rounding-level gradient (the key bias's, zero in exact arithmetic) into a step of size `lr`.
    models = [descendant(seed=3), descendant(seed=3)]
    x, y = batch(seed=3)
    optimizers = [
        torch.optim.AdamW(models[0].parameters(), lr=1e-3, fused=True),
        torch.optim.AdamW(models[1].parameters(), lr=1e-3, foreach=False),
    ]
    for _ in range(3):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = models[0](pixel_values=x, labels=y).loss
        loss.backward()
        for fused, plain in zip(models[0].parameters(), models[1].parameters(), strict=True):
            plain.grad = fused.grad.clone()
        for optimizer in optimizers:
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    for fused, plain in zip(models[0].parameters(), models[1].parameters(), strict=True):
        torch.testing.assert_close(fused, plain, atol=1e-6, rtol=1e-5)
    assert optimizers[0].defaults["fused"] is True


def test_inductor_compiled_descendant_matches_eager_on_cuda():
    torch._dynamo.reset()
    model, (x, y) = descendant(layout="LRL"), batch(seed=4)
    expected_loss, expected_logits, expected_grads = loss_and_grads(model, x, y)
    compiled = torch.compile(model, fullgraph=True)  # inductor: Triton kernels for forward and backward
    got_loss, got_logits, got_grads = loss_and_grads(compiled, x, y)
    torch.testing.assert_close(got_logits, expected_logits, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got_loss, expected_loss, atol=1e-5, rtol=1e-5)
    for got, expected in zip(got_grads, expected_grads, strict=True):
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-3)


def test_gradient_checkpointing_on_cuda_gives_the_same_gradients():
    model, (x, y) = descendant(layout="LRRL"), batch(seed=5)
    _, _, plain = loss_and_grads(model, x, y, autocast=True)
    model.gradient_checkpointing_enable()
    _, _, checkpointed = loss_and_grads(model, x, y, autocast=True)
    assert_grads_close(checkpointed, plain, rel=1e-2)


def _random_loader(num_images: int = 256, num_labels: int = 4):
    generator = torch.Generator().manual_seed(6)
    images = torch.randn(num_images, 3, 30, 30, generator=generator)
    labels = torch.arange(num_images) % num_labels
    # Learnable: each class shifts the mean of its images.
    images += labels[:, None, None, None].float() - 1.5
    dataset = torch.utils.data.TensorDataset(images, labels)
    return torch.utils.data.DataLoader(dataset, batch_size=32, shuffle=False)


@pytest.mark.parametrize("method", ["cka", "auto"])
def test_condensing_on_cuda_with_the_bf16_default(method):
    ancestor = tiny_vit(seed=0)  # 4 layers, width 32, 30 px
    learngene = condense(
        ancestor, method=method, num_layers=2, condense_dataset=_random_loader(), epochs=2, device="cuda", quiet=True
    )
    config = learngene.config
    assert len(set(config.layer_indices)) == 2 and config.layer_indices == sorted(config.layer_indices)
    assert all(0 <= i < 4 for i in config.layer_indices)
    assert len(config.condensing_scores) == 4 and all(math.isfinite(s) for s in config.condensing_scores)
    assert "bfloat16" in config.condensing_details["settings"]["dtype"]
    assert next(learngene.parameters()).device.type == "cpu"  # the learngene comes back ready to save


def test_train_descendant_on_cuda_defaults_to_bf16_and_fused_adamw(tmp_path):
    pytest.importorskip("datasets")
    from hf_learngene.data import load_digits_dataset
    from hf_learngene.training import train_descendant

    digits = load_digits_dataset().train_test_split(test_size=0.2, stratify_by_column="label", seed=0)
    torch.manual_seed(1)
    config = LearngeneConfig(
        layer_indices=[0, 1], num_new_layers=1, num_labels=10, hidden_size=64, num_attention_heads=4,
        intermediate_size=128, image_size=16, patch_size=8,
    )  # fmt: skip
    model = DescendantForImageClassification(config)
    result = train_descendant(
        model, digits["train"], digits["test"], output_dir=tmp_path, num_train_epochs=3, learning_rate=3e-3,
        horizontal_flip=False, disable_tqdm=True,
    )  # fmt: skip
    trainer = result.trainer
    assert trainer.args.bf16 is True
    optimizer = getattr(trainer.optimizer, "optimizer", trainer.optimizer)  # unwrap accelerate's wrapper
    assert optimizer.defaults["fused"] is True
    assert next(trainer.model.parameters()).device.type == "cuda"
    assert result.metrics["eval_accuracy"] > 0.5, result.metrics  # 10 classes: chance is 0.1
