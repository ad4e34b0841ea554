"""The optimised layer code computes what a plain ViT computes.

Fused QKV projection, SDPA on strided views and the CLS-only last layer of a descendant are checked against a
plain reference (separate q/k/v, explicit softmax attention), against transformers' ViT, under torch.compile and
under gradient checkpointing; checkpoints in the stored key format load unchanged.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import ViTConfig, ViTForImageClassification

from hf_learngene import DescendantForImageClassification, LearngeneConfig, LearngeneModel, condense
from hf_learngene.modeling_learngene import LearngeneLayer

TINY = dict(hidden_size=32, num_attention_heads=4, intermediate_size=37, image_size=30, patch_size=2)
ATOL = 1e-5


def tiny_config(**overrides) -> LearngeneConfig:
    return LearngeneConfig(**{**TINY, "layer_indices": [0, 1], **overrides})


def randomise_(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Non-trivial values everywhere (biases and LayerNorm affine parameters are zeros and ones after init)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.2)
    return module


def reference_layer(params: dict[str, torch.Tensor], x: torch.Tensor, heads: int, eps: float) -> torch.Tensor:
    """A pre-norm ViT block written out: separate q/k/v matmuls, explicit softmax attention, erf GELU."""
    batch, seq, dim = x.shape
    head_dim = dim // heads

    def linear(name, h):
        bias = params.get(f"{name}.bias")
        out = h @ params[f"{name}.weight"].T
        return out if bias is None else out + bias

    def split(t):
        return t.reshape(batch, -1, heads, head_dim).permute(0, 2, 1, 3)

    h = F.layer_norm(x, (dim,), params["layernorm_before.weight"], params["layernorm_before.bias"], eps)
    q, k, v = (split(linear(f"attention.{n}_proj", h)) for n in "qkv")
    probs = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(head_dim), dim=-1)
    attn = (probs @ v).permute(0, 2, 1, 3).reshape(batch, seq, dim)
    x = x + linear("attention.o_proj", attn)
    h = F.layer_norm(x, (dim,), params["layernorm_after.weight"], params["layernorm_after.bias"], eps)
    h = linear("mlp.fc1", h)
    h = 0.5 * h * (1.0 + torch.erf(h / math.sqrt(2.0)))
    return x + linear("mlp.fc2", h)


def reference_learngene(tensors: dict[str, torch.Tensor], config: LearngeneConfig, pixel_values: torch.Tensor):
    """A whole learngene from raw checkpoint tensors: conv patch embedding, CLS, positions, layers, final norm."""
    patches = F.conv2d(
        pixel_values,
        tensors["embeddings.patch_embeddings.projection.weight"],
        tensors["embeddings.patch_embeddings.projection.bias"],
        stride=config.patch_size,
    )
    tokens = patches.flatten(2).transpose(1, 2)
    cls = tensors["embeddings.cls_token"].expand(tokens.shape[0], -1, -1)
    x = torch.cat((cls, tokens), dim=1) + tensors["embeddings.position_embeddings"]
    for i in range(config.num_hidden_layers):
        prefix = f"layers.{i}."
        params = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        x = reference_layer(params, x, config.num_attention_heads, config.layer_norm_eps)
    return F.layer_norm(x, (config.hidden_size,), tensors["layernorm.weight"], tensors["layernorm.bias"], 1e-12)


def grads(output: torch.Tensor, inputs: list[torch.Tensor], seed: int = 1) -> list[torch.Tensor]:
    cotangent = torch.randn(output.shape, generator=torch.Generator().manual_seed(seed))
    return list(torch.autograd.grad(output, inputs, cotangent))


def pixel_values(batch: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 3, TINY["image_size"], TINY["image_size"], generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("qkv_bias", [True, False])
def test_layer_matches_plain_reference_outputs_and_gradients(qkv_bias):
    config = tiny_config(qkv_bias=qkv_bias)
    layer = randomise_(LearngeneLayer(config)).train()
    assert (layer.attention.q_proj.bias is None) == (not qkv_bias)
    x = torch.randn(3, 17, config.hidden_size, generator=torch.Generator().manual_seed(2), requires_grad=True)
    names, params = zip(*layer.named_parameters(), strict=True)

    ours = layer(x)
    theirs = reference_layer(
        dict(zip(names, params, strict=True)), x, config.num_attention_heads, config.layer_norm_eps
    )
    torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=0)
    for name, got, expected in zip(
        ("input", *names), grads(ours, [x, *params]), grads(theirs, [x, *params]), strict=True
    ):
        torch.testing.assert_close(got, expected, atol=ATOL, rtol=0, msg=lambda m, name=name: f"grad of {name}: {m}")


def test_cls_only_layer_equals_first_row_of_full_layer():
    config = tiny_config()
    layer = randomise_(LearngeneLayer(config), seed=3)
    x = torch.randn(2, 9, config.hidden_size, generator=torch.Generator().manual_seed(4), requires_grad=True)
    params = list(layer.parameters())
    full = layer(x)[:, :1]
    cls_only = layer(x, cls_only=True)
    assert cls_only.shape == (2, 1, config.hidden_size)
    torch.testing.assert_close(cls_only, full, atol=ATOL, rtol=0)
    for got, expected in zip(grads(cls_only, [x, *params]), grads(full, [x, *params]), strict=True):
        torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)


def test_attention_feeds_sdpa_views_of_one_projection(monkeypatch):
    # q, k and v must reach SDPA as views of the single fused projection output, not as copies.
    seen = []
    sdpa = F.scaled_dot_product_attention

    def spy(query, key, value, **kwargs):
        seen.append((query, key, value))
        return sdpa(query, key, value, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    layer = LearngeneLayer(tiny_config())
    layer(torch.randn(2, 5, 32))
    ((query, key, value),) = seen
    assert query.shape == (2, 4, 5, 8)
    assert query.untyped_storage().data_ptr() == key.untyped_storage().data_ptr() == value.untyped_storage().data_ptr()


def _vit_and_descendant(seed: int = 0):
    torch.manual_seed(seed)
    vit = randomise_(ViTForImageClassification(ViTConfig(**TINY, num_hidden_layers=3, num_labels=5)), seed=seed)
    learngene = condense(vit.vit, method="manual", layers=[0, 1, 2])
    model = DescendantForImageClassification(LearngeneConfig(**learngene.config.to_dict(), num_labels=5))
    model.learngene.load_state_dict(learngene.state_dict())
    model.classifier.load_state_dict(vit.classifier.state_dict())
    return vit.train(), model.train()


def test_full_depth_descendant_equals_transformers_vit_outputs_and_gradients():
    vit, model = _vit_and_descendant()
    x, labels = pixel_values(), torch.tensor([0, 3, 4])
    theirs, ours = vit(pixel_values=x, labels=labels), model(pixel_values=x, labels=labels)
    torch.testing.assert_close(ours.logits, theirs.logits, atol=ATOL, rtol=0)
    torch.testing.assert_close(ours.loss, theirs.loss, atol=ATOL, rtol=0)
    theirs.loss.backward()
    ours.loss.backward()
    their_params = dict(vit.named_parameters())
    checked = 0
    for name, param in model.named_parameters():
        their_name = name.replace("learngene.", "vit.", 1)
        torch.testing.assert_close(param.grad, their_params[their_name].grad, atol=ATOL, rtol=0, msg=name)
        checked += 1
    assert checked == len(their_params)


def test_full_depth_learngene_equals_transformers_vit_model():
    vit, model = _vit_and_descendant(seed=5)
    x = pixel_values(seed=6)
    with torch.no_grad():
        expected = vit.vit(x).last_hidden_state
        got = model.learngene(x).last_hidden_state
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)


def test_cls_only_last_layer_gives_the_full_computation():
    # Asking for every hidden state runs the last layer on every token: logits, loss and gradients must not move.
    config = tiny_config(layout="LRL", num_labels=4)
    model = randomise_(DescendantForImageClassification(config), seed=7).train()
    x, labels = pixel_values(seed=8), torch.tensor([1, 0, 3])
    fast = model(pixel_values=x, labels=labels)
    full = model(pixel_values=x, labels=labels, output_hidden_states=True)
    assert full.hidden_states[-1].shape[1] == (TINY["image_size"] // TINY["patch_size"]) ** 2 + 1
    torch.testing.assert_close(fast.logits, full.logits, atol=ATOL, rtol=0)
    params = list(model.parameters())
    for got, expected in zip(
        torch.autograd.grad(fast.loss, params), torch.autograd.grad(full.loss, params), strict=True
    ):
        torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)


def test_gradient_checkpointing_gives_the_same_gradients():
    config = tiny_config(layout="LRRL", num_labels=3)
    model = randomise_(DescendantForImageClassification(config), seed=9).train()
    x, labels = pixel_values(seed=10), torch.tensor([2, 0, 1])
    params = list(model.parameters())
    plain = torch.autograd.grad(model(pixel_values=x, labels=labels).loss, params)
    model.gradient_checkpointing_enable()
    assert all(layer.gradient_checkpointing for layer in model.descendant_layers())
    checkpointed = torch.autograd.grad(model(pixel_values=x, labels=labels).loss, params)
    for got, expected in zip(checkpointed, plain, strict=True):
        torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)


def test_interpolate_pos_encoding_is_free_at_the_native_size():
    model = randomise_(LearngeneModel(tiny_config()), seed=11).eval()
    embeddings = model.embeddings
    # No resize, no copy: the parameter itself is used.
    assert embeddings.interpolate_pos_encoding(TINY["image_size"], TINY["image_size"]) is embeddings.position_embeddings
    x = pixel_values(seed=12)
    with torch.no_grad():
        assert torch.equal(model(x, interpolate_pos_encoding=True).last_hidden_state, model(x).last_hidden_state)


# The stored format: these names and shapes are what every saved learngene holds. Changing the layer code must not
# change them (tiny config: hidden 32, MLP 37, 3 channels, patch 2, 15x15 patches + CLS).
STORED_LAYER_TENSORS = {
    "attention.q_proj.weight": (32, 32),
    "attention.q_proj.bias": (32,),
    "attention.k_proj.weight": (32, 32),
    "attention.k_proj.bias": (32,),
    "attention.v_proj.weight": (32, 32),
    "attention.v_proj.bias": (32,),
    "attention.o_proj.weight": (32, 32),
    "attention.o_proj.bias": (32,),
    "layernorm_before.weight": (32,),
    "layernorm_before.bias": (32,),
    "layernorm_after.weight": (32,),
    "layernorm_after.bias": (32,),
    "mlp.fc1.weight": (37, 32),
    "mlp.fc1.bias": (37,),
    "mlp.fc2.weight": (32, 37),
    "mlp.fc2.bias": (32,),
}
STORED_OTHER_TENSORS = {
    "embeddings.cls_token": (1, 1, 32),
    "embeddings.position_embeddings": (1, 226, 32),
    "embeddings.patch_embeddings.projection.weight": (32, 3, 2, 2),
    "embeddings.patch_embeddings.projection.bias": (32,),
    "layernorm.weight": (32,),
    "layernorm.bias": (32,),
}


def stored_format(num_layers: int) -> dict[str, tuple[int, ...]]:
    layers = {f"layers.{i}.{k}": v for i in range(num_layers) for k, v in STORED_LAYER_TENSORS.items()}
    return {**STORED_OTHER_TENSORS, **layers}


def test_checkpoint_in_the_stored_format_loads_unchanged(tmp_path):
    # A checkpoint written by hand in the stored format (as any earlier version wrote it) loads into the current
    # code without missing or unexpected keys, and computes what the plain reference computes from its tensors.
    config = tiny_config()
    generator = torch.Generator().manual_seed(13)
    tensors = {k: torch.randn(shape, generator=generator) * 0.2 for k, shape in stored_format(2).items()}
    save_file(tensors, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    config.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "learngene"

    model = LearngeneModel.from_pretrained(tmp_path)
    # Same key set and every tensor equal: nothing missing, unexpected or re-initialised.
    state = model.state_dict()
    assert set(state) == set(tensors)
    for name, tensor in tensors.items():
        assert torch.equal(state[name], tensor), name
    x = pixel_values(seed=14)
    with torch.no_grad():
        got = model.eval()(x).last_hidden_state
    torch.testing.assert_close(got, reference_learngene(tensors, config, x), atol=ATOL, rtol=0)


def test_save_reload_round_trip_keeps_the_stored_format(tmp_path):
    model = randomise_(LearngeneModel(tiny_config()), seed=15).eval()
    model.save_pretrained(tmp_path)
    from safetensors import safe_open

    with safe_open(str(tmp_path / "model.safetensors"), "pt") as handle:
        saved = {k: tuple(handle.get_slice(k).get_shape()) for k in handle.keys()}  # noqa: SIM118
    assert saved == stored_format(2)
    reloaded = LearngeneModel.from_pretrained(tmp_path).eval()
    for (name, a), b in zip(model.state_dict().items(), reloaded.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    x = pixel_values(seed=16)
    with torch.no_grad():
        assert torch.equal(reloaded(x).last_hidden_state, model(x).last_hidden_state)


@pytest.mark.slow
def test_compiled_descendant_matches_eager_forward_and_backward():
    # fullgraph=True fails on any graph break in the forward; AOTAutograd traces the backward from that graph.
    # The aot_eager backend keeps this test to seconds (inductor's C++ codegen takes minutes on 2 shared cores);
    # benchmarks/speed/bench_speed.py --compile runs the full inductor path.
    torch._dynamo.reset()
    config = tiny_config(layout="LRL", num_labels=3)
    eager = randomise_(DescendantForImageClassification(config), seed=17).train()
    compiled = torch.compile(eager, fullgraph=True, backend="aot_eager")
    x, labels = pixel_values(seed=18), torch.tensor([0, 2, 1])
    params = list(eager.parameters())
    expected = eager(pixel_values=x, labels=labels)
    expected_grads = torch.autograd.grad(expected.loss, params)
    got = compiled(pixel_values=x, labels=labels)
    got_grads = torch.autograd.grad(got.loss, params)
    torch.testing.assert_close(got.logits, expected.logits, atol=ATOL, rtol=0)
    for a, b in zip(got_grads, expected_grads, strict=True):
        torch.testing.assert_close(a, b, atol=ATOL, rtol=0)
    torch._dynamo.reset()
