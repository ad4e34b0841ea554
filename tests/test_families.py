"""Ancestors beyond plain ViT: DeiT (distilled), DINOv2 (with registers, SwiGLU), CLIP and SigLIP vision towers, ViT-MAE
and timm ViT checkpoints. Each family's tiny model is built with its own transformers class (timm's from its documented
key layout), saved, condensed with every layer, and must reproduce the ancestor's own output; descendants grown from
it train, round-trip, narrow consistently and load through remote code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import (
    BertConfig,
    BertModel,
    CLIPConfig,
    CLIPModel,
    CLIPVisionConfig,
    CLIPVisionModel,
    DeiTConfig,
    DeiTForImageClassificationWithTeacher,
    Dinov2Config,
    Dinov2Model,
    Dinov2WithRegistersConfig,
    Dinov2WithRegistersModel,
    SiglipVisionConfig,
    SiglipVisionModel,
    SwinConfig,
    SwinModel,
    ViTMAEConfig,
    ViTMAEModel,
)

from hf_learngene import DescendantForImageClassification, LearngeneModel, condense, load_ancestor
from hf_learngene.condensing.auto import _ancestry_tokens

SIZE, PATCH = 16, 4  # a 4x4 patch grid
TINY = dict(hidden_size=32, num_hidden_layers=3, num_attention_heads=4, image_size=SIZE, patch_size=PATCH)


def _randomize(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Every tensor random, so that zero-initialised tokens, unit layer scales or identity norms hide no mistake."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator) * 0.2
            param.copy_(noise + 1.0 if ("norm" in name and name.endswith("weight")) else noise)
    return model.eval()


def _pixels(size: int = SIZE, batch: int = 2, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


# Each family: (build the ancestor, its own reference outputs on pixel values, what the learngene's config records).
def _deit():
    return DeiTForImageClassificationWithTeacher(DeiTConfig(**TINY, intermediate_size=37, num_labels=3))


def _dinov2_swiglu():
    return Dinov2Model(Dinov2Config(**TINY, mlp_ratio=2, use_swiglu_ffn=True, layerscale_value=0.5))


def _dinov2_registers():
    return Dinov2WithRegistersModel(Dinov2WithRegistersConfig(**TINY, mlp_ratio=2, num_register_tokens=2))


def _clip():
    return CLIPVisionModel(CLIPVisionConfig(**TINY, intermediate_size=37, hidden_act="quick_gelu"))


def _clip_full():
    text = dict(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=20)
    vision = dict(TINY, intermediate_size=37)
    return CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=8))


def _siglip():
    return SiglipVisionModel(SiglipVisionConfig(**TINY, intermediate_size=37))


def _mae():
    return ViTMAEModel(ViTMAEConfig(**TINY, intermediate_size=37, mask_ratio=0.75))


def _reference(family: str, model, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The ancestor's own output: last hidden state, and the pooled output where the family has one."""
    with torch.no_grad():
        if family == "deit":
            out = model(x, output_hidden_states=True, interpolate_pos_encoding=x.shape[-1] != SIZE)
            return {"hidden": model.deit(x).last_hidden_state, "logits": out.logits}
        if family == "clip_full":
            out = model.vision_model(x)
            return {"hidden": out.last_hidden_state, "pooled": out.pooler_output}
        if family == "mae":
            # No masking: mask_ratio 0 and an identity shuffle keep every patch in order.
            model.config.mask_ratio = 0.0
            noise = torch.arange(x.shape[-1] // PATCH * x.shape[-2] // PATCH).float().expand(x.shape[0], -1)
            out = model(x, noise=noise)
            model.config.mask_ratio = 0.75
            return {"hidden": out.last_hidden_state}
        out = model(x)
        pooled = {"pooled": out.pooler_output} if family in ("clip", "siglip", "dinov2_swiglu") else {}
        return {"hidden": out.last_hidden_state, **pooled}


BUILDERS = {
    "deit": _deit,
    "dinov2_swiglu": _dinov2_swiglu,
    "dinov2_registers": _dinov2_registers,
    "clip": _clip,
    "clip_full": _clip_full,
    "siglip": _siglip,
    "mae": _mae,
}
EXPECTED = {
    "deit": dict(ancestor_family="deit", distillation_token=True, pooling="cls_distillation"),
    "dinov2_swiglu": dict(
        ancestor_family="dinov2", layer_scale=True, mlp_type="swiglu", hidden_act="silu", interpolate_pos_encoding=True
    ),
    "dinov2_registers": dict(
        ancestor_family="dinov2_with_registers",
        num_register_tokens=2,
        position_interpolation="bicubic_fp32_antialias",
        mlp_type="mlp",
    ),
    "clip": dict(ancestor_family="clip", pre_layernorm=True, final_layernorm="pooled", patch_bias=False),
    "clip_full": dict(ancestor_family="clip", hidden_act="quick_gelu", layer_norm_eps=1e-5),
    "siglip": dict(ancestor_family="siglip", class_token=False, pooling="map", position_embedding_prefix="none"),
    "mae": dict(ancestor_family="vit_mae", pooling="cls"),
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Each family's randomised ancestor, saved with save_pretrained, and its learngene of every layer."""
    root = tmp_path_factory.mktemp("families")
    out = {}
    for seed, (family, build) in enumerate(BUILDERS.items()):
        torch.manual_seed(seed)
        model = _randomize(build(), seed)
        model.save_pretrained(root / family)
        learngene = condense(str(root / family), method="first", num_layers=3).eval()
        learngene.save_pretrained(root / f"{family}-learngene")
        out[family] = (model, learngene, root)
    return out


@pytest.mark.parametrize("family", list(BUILDERS))
def test_learngene_of_every_layer_reproduces_the_ancestor(saved, family):
    model, learngene, _ = saved[family]
    for name, value in EXPECTED[family].items():
        assert getattr(learngene.config, name) == value, name
    sizes = [SIZE, 24, 8] if family.startswith("dinov2") else [SIZE]
    for size in sizes:  # DINOv2 interpolates its position grid to any input, as the learngene must
        x = _pixels(size)
        want = _reference(family, model, x)
        with torch.no_grad():
            got = learngene(x)
        torch.testing.assert_close(got.last_hidden_state, want["hidden"], atol=1e-5, rtol=0)
        if "pooled" in want:
            pooled = got.pooler_output if got.pooler_output is not None else got.last_hidden_state[:, 0]
            torch.testing.assert_close(pooled, want["pooled"], atol=1e-5, rtol=0)
    if family == "deit":
        # A descendant of all inherited layers with DeiT's two heads gives DeiT's own logits (the mean of both).
        descendant = DescendantForImageClassification.from_pretrained(
            saved[family][2] / "deit-learngene", num_labels=3, layout="LLL"
        ).eval()
        descendant.classifier.load_state_dict(model.cls_classifier.state_dict())
        descendant.distillation_classifier.load_state_dict(model.distillation_classifier.state_dict())
        with torch.no_grad():
            torch.testing.assert_close(descendant(_pixels()).logits, want["logits"], atol=1e-5, rtol=0)


@pytest.mark.parametrize("family", ["dinov2_swiglu", "dinov2_registers"])
def test_dinov2_interpolates_in_float32_as_dinov2_does(saved, family):
    # In bfloat16 the float32 resize (with antialiasing for registers) is what makes the positions equal DINOv2's.
    model, learngene, _ = saved[family]
    model, learngene = _bf16_copy(model), _bf16_copy(learngene)
    grid = torch.zeros(1, 1 + (8 // PATCH) ** 2, 32, dtype=torch.bfloat16)
    with torch.no_grad():
        want = model.embeddings.interpolate_pos_encoding(grid, 8, 8)
        got = learngene.embeddings.interpolate_pos_encoding(8, 8)
    assert got.dtype == torch.bfloat16 and torch.equal(got, want)


def _bf16_copy(model):
    import copy

    return copy.deepcopy(model).to(torch.bfloat16)


def test_auto_condensing_reads_patch_tokens_after_the_prefix_tokens(saved):
    # Registers and a CLS token before the patches, and images at another size than the native grid (DINOv2
    # interpolates): the pair-weight network must see the patch tokens the images actually give.
    model, *_ = saved["dinov2_registers"]
    images = torch.utils.data.TensorDataset(_pixels(24, batch=24, seed=5), torch.arange(24) % 3)
    learngene = condense(
        model,
        method="auto",
        num_layers=2,
        condense_dataset=torch.utils.data.DataLoader(images, batch_size=8),
        epochs=1,
        quiet=True,
    )
    assert len(learngene.config.layer_indices) == 2 and learngene.config.num_register_tokens == 2
    tokens = _ancestry_tokens(learngene, _pixels(24), "cpu", torch.float32)
    assert tokens.shape[2] == (24 // PATCH) ** 2  # the 6x6 patches, not the CLS or register tokens


def test_in_memory_ancestor_reads_like_its_folder(saved):
    model, from_folder, _ = saved["dinov2_swiglu"]
    from_memory = condense(model, method="first", num_layers=3)  # transformers 5 splits SwiGLU's fc1 in memory
    for key, tensor in from_folder.state_dict().items():
        assert torch.equal(from_memory.state_dict()[key], tensor), key
    assert from_memory.config.ancestor_sha256 == from_folder.config.ancestor_sha256


@pytest.mark.parametrize(("family", "layout"), [("deit", "LRLL"), ("dinov2_swiglu", "LLRL"), ("siglip", "RLLL")])
def test_descendant_trains_and_round_trips(saved, family, layout, tmp_path):
    *_, root = saved[family]
    torch.manual_seed(0)
    model = DescendantForImageClassification.from_pretrained(root / f"{family}-learngene", num_labels=3, layout=layout)
    new, inherited = model.new_layers[0], model.learngene.layers[0]
    # The new layer is of the family's layer type.
    assert [n for n, _ in new.named_parameters()] == [n for n, _ in inherited.named_parameters()]
    assert all(p.shape == q.shape for p, q in zip(new.parameters(), inherited.parameters(), strict=True))
    x, labels = _pixels(batch=6, seed=3), torch.tensor([0, 1, 2, 0, 1, 2])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    losses = []
    for _ in range(6):
        loss = model(x, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    model.eval().save_pretrained(tmp_path / "descendant")
    again = DescendantForImageClassification.from_pretrained(tmp_path / "descendant").eval()
    for key, tensor in model.state_dict().items():
        assert torch.equal(again.state_dict()[key], tensor), key
    size = 24 if family.startswith("dinov2") else SIZE
    with torch.no_grad():
        assert torch.equal(again(_pixels(size)).logits, model(_pixels(size)).logits)


@pytest.mark.parametrize("family", ["dinov2_swiglu", "dinov2_registers", "siglip", "deit", "clip"])
def test_width_selection_slices_the_family_tensors_consistently(saved, family):
    # Every channel kept, in a shuffled order: the model is the same function up to that permutation of its residual
    # stream and MLP neurons, which holds only if the tokens, layer scales, both SwiGLU halves and the MAP head follow.
    _, learngene, root = saved[family]
    config = learngene.config
    generator = torch.Generator().manual_seed(0)
    hidden = torch.randperm(config.hidden_size, generator=generator).tolist()
    intermediate = torch.randperm(config.intermediate_size, generator=generator).tolist()
    permuted = LearngeneModel.from_pretrained(
        root / f"{family}-learngene",
        hidden_size=config.hidden_size,
        num_attention_heads=config.num_attention_heads,
        intermediate_size=config.intermediate_size,
        width_indices={"hidden": hidden, "attention": list(range(config.hidden_size)), "intermediate": intermediate},
    ).eval()
    with torch.no_grad():
        want, got = learngene(_pixels()), permuted(_pixels())
    torch.testing.assert_close(got.last_hidden_state, want.last_hidden_state[..., hidden], atol=1e-5, rtol=0)
    if want.pooler_output is not None:
        torch.testing.assert_close(got.pooler_output, want.pooler_output[..., hidden], atol=1e-5, rtol=0)
    # And a narrower descendant builds from the sliced tensors and runs.
    narrow = DescendantForImageClassification.from_pretrained(
        root / f"{family}-learngene", num_labels=3, hidden_size=16, num_attention_heads=2, intermediate_size=16
    )
    assert narrow(_pixels()).logits.shape == (2, 3)


def test_map_head_refuses_per_layer_channels(saved):
    _, learngene, root = saved["siglip"]
    per_layer = [list(range(16))] * 3
    with pytest.raises(ValueError, match="MAP pooling head"):
        LearngeneModel.from_pretrained(
            root / "siglip-learngene",
            hidden_size=16,
            num_attention_heads=2,
            intermediate_size=16,
            width_indices={"hidden": list(range(16)), "attention": per_layer, "intermediate": per_layer},
        )


def test_reading_options_are_recorded(saved):
    *_, root = saved["deit"]
    dropped = condense(load_ancestor(str(root / "deit"), distillation_token="drop"), method="first", num_layers=2)
    assert not dropped.config.distillation_token and dropped.config.pooling == "cls"
    assert "dropped" in dropped.config.family_choices["distillation_token"]
    assert dropped.embeddings.position_embeddings.shape[1] == (SIZE // PATCH) ** 2 + 1
    mean = condense(load_ancestor(str(root / "siglip"), pooling="mean"), method="first", num_layers=3).eval()
    assert mean.map_head is None and "SiglipForImageClassification" in mean.config.family_choices["pooling"]
    with torch.no_grad():
        out = mean(_pixels())
    torch.testing.assert_close(out.pooler_output, out.last_hidden_state.mean(dim=1))
    with pytest.raises(ValueError, match="do not apply to a 'vit_mae' ancestor"):
        load_ancestor(str(root / "mae"), distillation_token="drop")
    with pytest.raises(ValueError, match="only SigLIP"):
        load_ancestor(str(root / "clip"), pooling="map")


def test_card_names_the_family(saved):
    *_, root = saved["dinov2_registers"]
    card = (root / "dinov2_registers-learngene" / "README.md").read_text()
    assert "| Ancestor family | DINOv2 with registers (`dinov2_with_registers`) |" in card
    assert "2 register" in card and "layer scale" in card and "interpolated" in card


@pytest.mark.parametrize(
    ("build", "model_type"),
    [
        (lambda: SwinModel(SwinConfig(image_size=16, patch_size=4, embed_dim=8, depths=[1], num_heads=[1])), "swin"),
        (
            lambda: BertModel(BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=1)),
            "bert",
        ),
    ],
)
def test_unsupported_family_names_the_supported_ones(build, model_type, tmp_path):
    model = build()
    model.save_pretrained(tmp_path)
    for ancestor in (str(tmp_path), model):
        with pytest.raises(ValueError, match=f"'{model_type}' model") as error:
            condense(ancestor, method="first", num_layers=1)
        for family in ("vit", "deit", "dinov2", "dinov2_with_registers", "clip", "siglip", "vit_mae", "timm"):
            assert f"{family} (" in str(error.value)


# --- timm -------------------------------------------------------------------------------------------------------------


def _timm_checkpoint(
    folder,
    *,
    seed,
    hidden=32,
    depth=2,
    heads=None,
    registers=0,
    no_embed_class=False,
    layer_scale=True,
    swiglu=False,
    pre_norm=False,
    global_pool="token",
    class_token=True,
):
    """A timm VisionTransformer checkpoint written from timm's key layout (timm is not installable here): the state
    dict `timm.models.vision_transformer.VisionTransformer` has, and the config.json `timm.models.save_for_hf` writes
    (`model_args` holds what is not the architecture's own)."""
    generator = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=None, offset=0.0):
        # Matrices scaled by 1/sqrt(fan-in), so activations stay O(1) and 1e-5 measures exactness, not fp32 rounding.
        scale = scale if scale is not None else 0.2 if len(shape) == 1 else shape[-1] ** -0.5
        return torch.randn(*shape, generator=generator) * scale + offset

    mlp = 2 * hidden
    grid = (SIZE // PATCH) ** 2
    prefix = int(class_token) + registers
    state = {
        "patch_embed.proj.weight": rand(hidden, 3, PATCH, PATCH),
        "pos_embed": rand(1, grid if no_embed_class else grid + prefix, hidden),
        "head.weight": rand(5, hidden),
        "head.bias": rand(5),
    }
    if not pre_norm:
        state["patch_embed.proj.bias"] = rand(hidden)
    else:
        state.update({"norm_pre.weight": rand(hidden, offset=1.0), "norm_pre.bias": rand(hidden)})
    if class_token:
        state["cls_token"] = rand(1, 1, hidden)
    if registers:
        state["reg_token"] = rand(1, registers, hidden)
    final = "fc_norm" if global_pool == "avg" else "norm"
    state.update({f"{final}.weight": rand(hidden, offset=1.0), f"{final}.bias": rand(hidden)})
    for i in range(depth):
        block = {
            "norm1.weight": rand(hidden, offset=1.0),
            "norm1.bias": rand(hidden),
            "attn.qkv.weight": rand(3 * hidden, hidden),
            "attn.qkv.bias": rand(3 * hidden),
            "attn.proj.weight": rand(hidden, hidden),
            "attn.proj.bias": rand(hidden),
            "norm2.weight": rand(hidden, offset=1.0),
            "norm2.bias": rand(hidden),
            "mlp.fc1.weight": rand(2 * mlp if swiglu else mlp, hidden),
            "mlp.fc1.bias": rand(2 * mlp if swiglu else mlp),
            "mlp.fc2.weight": rand(hidden, mlp),
            "mlp.fc2.bias": rand(hidden),
        }
        if layer_scale:
            block.update({"ls1.gamma": rand(hidden, offset=0.5), "ls2.gamma": rand(hidden, offset=0.5)})
        state.update({f"blocks.{i}.{k}": v for k, v in block.items()})
    model_args = {"reg_tokens": registers, "no_embed_class": no_embed_class, "pre_norm": pre_norm}
    if heads is not None:
        model_args["num_heads"] = heads
    config = {
        "architecture": "vit_test_patch4_16",
        "num_classes": 5,
        "num_features": hidden,
        "global_pool": global_pool,
        "model_args": model_args,
        "pretrained_cfg": {
            "input_size": [3, SIZE, SIZE],
            "interpolation": "bicubic",
            "mean": [0.485, 0.456, 0.406],
            "std": [0.229, 0.224, 0.225],
            "num_classes": 5,
            "first_conv": "patch_embed.proj",
            "classifier": "head",
        },
    }
    os.makedirs(folder, exist_ok=True)
    save_file(state, os.path.join(folder, "model.safetensors"))
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f)
    return state


def _timm_forward(state, x, *, heads, swiglu, registers, no_embed_class, global_pool, eps=1e-6):
    """timm's VisionTransformer forward written out from its code (patch_embed, _pos_embed, norm_pre, Blocks with
    fused qkv and LayerScale, norm / fc_norm, pool): the reference the learngene must reproduce."""
    x = F.conv2d(x, state["patch_embed.proj.weight"], state.get("patch_embed.proj.bias"), stride=PATCH)
    x = x.flatten(2).transpose(1, 2)
    batch, hidden = x.shape[0], x.shape[-1]
    prefix = [state[k].expand(batch, -1, -1) for k in ("cls_token", "reg_token") if k in state]
    if no_embed_class:
        x = torch.cat([*prefix, x + state["pos_embed"]], dim=1)
    else:
        x = torch.cat([*prefix, x], dim=1) + state["pos_embed"]
    if "norm_pre.weight" in state:
        x = F.layer_norm(x, (hidden,), state["norm_pre.weight"], state["norm_pre.bias"], eps)
    depth = len({k.split(".")[1] for k in state if k.startswith("blocks.")})
    for i in range(depth):
        p = {k[len(f"blocks.{i}.") :]: v for k, v in state.items() if k.startswith(f"blocks.{i}.")}
        h = F.layer_norm(x, (hidden,), p["norm1.weight"], p["norm1.bias"], eps)
        qkv = F.linear(h, p["attn.qkv.weight"], p["attn.qkv.bias"])
        q, k, v = qkv.reshape(batch, -1, 3, heads, hidden // heads).permute(2, 0, 3, 1, 4).unbind(0)
        attn = ((q @ k.transpose(-2, -1)) * (hidden // heads) ** -0.5).softmax(-1) @ v
        attn = F.linear(attn.transpose(1, 2).reshape(batch, -1, hidden), p["attn.proj.weight"], p["attn.proj.bias"])
        x = x + attn * p.get("ls1.gamma", 1.0)
        h = F.linear(
            F.layer_norm(x, (hidden,), p["norm2.weight"], p["norm2.bias"], eps), p["mlp.fc1.weight"], p["mlp.fc1.bias"]
        )
        if swiglu:  # SwiGLUPacked: gate first
            gate, up = h.chunk(2, dim=-1)
            h = F.silu(gate) * up
        else:
            h = F.gelu(h)
        x = x + F.linear(h, p["mlp.fc2.weight"], p["mlp.fc2.bias"]) * p.get("ls2.gamma", 1.0)
    if "norm.weight" in state:
        x = F.layer_norm(x, (hidden,), state["norm.weight"], state["norm.bias"], eps)
    num_prefix = len(prefix) and sum(t.shape[1] for t in prefix)
    pooled = x[:, 0] if global_pool == "token" else x[:, num_prefix:].mean(dim=1)
    if "fc_norm.weight" in state:
        pooled = F.layer_norm(pooled, (hidden,), state["fc_norm.weight"], state["fc_norm.bias"], eps)
    return x, pooled


TIMM_VARIANTS = {
    # vit_*: CLS token, layer scale (DeiT-3 / DINOv2 style), heads given in model_args.
    "layer_scale": dict(heads=4, registers=0, no_embed_class=False, swiglu=False, global_pool="token"),
    # registers with positions (timm's default), packed SwiGLU, CLIP-style pre-norm, avg pooling with fc_norm, and
    # the head count inferred from the width (head_dim 64).
    "registers_swiglu_avg": dict(
        hidden=128, heads=None, registers=2, no_embed_class=False, swiglu=True, pre_norm=True, global_pool="avg"
    ),
    # no_embed_class (positions on patches only) with registers, no layer scale.
    "no_embed_class": dict(heads=2, registers=3, no_embed_class=True, swiglu=False, layer_scale=False),
}


@pytest.mark.parametrize("variant", list(TIMM_VARIANTS))
def test_timm_checkpoint_reproduces_timm_forward(variant, tmp_path):
    options = TIMM_VARIANTS[variant]
    state = _timm_checkpoint(tmp_path / "timm", seed=4, **options)
    learngene = condense(str(tmp_path / "timm"), method="first", num_layers=2).eval()
    config = learngene.config
    assert config.ancestor_family == "timm" and config.family_choices["timm_architecture"] == "vit_test_patch4_16"
    assert config.num_attention_heads == (options["heads"] or 2)
    assert list(learngene.image_processor.image_mean) == [0.485, 0.456, 0.406]
    x = _pixels()
    hidden, pooled = _timm_forward(
        state,
        x,
        heads=config.num_attention_heads,
        swiglu=options["swiglu"],
        registers=options["registers"],
        no_embed_class=options["no_embed_class"],
        global_pool=options.get("global_pool", "token"),
    )
    with torch.no_grad():
        out = learngene(x)
    torch.testing.assert_close(out.last_hidden_state, hidden, atol=1e-5, rtol=0)
    if out.pooler_output is not None:
        torch.testing.assert_close(out.pooler_output, pooled, atol=1e-5, rtol=0)


def test_timm_checkpoint_grows_descendants_and_refuses_what_it_cannot_read(tmp_path):
    _timm_checkpoint(tmp_path / "timm", seed=5, heads=4)
    condense(str(tmp_path / "timm"), method="first", num_layers=2, output_dir=tmp_path / "learngene")
    model = DescendantForImageClassification.from_pretrained(tmp_path / "learngene", num_labels=5, layout="LRL")
    assert model.new_layers[0].layer_scale1 is not None
    assert model(_pixels()).logits.shape == (2, 5)
    # qk-norm is not a plain ViT: refused, naming what is there.
    _timm_checkpoint(tmp_path / "qknorm", seed=5, heads=4)
    from safetensors.torch import load_file

    state = load_file(tmp_path / "qknorm" / "model.safetensors")
    state["blocks.0.attn.q_norm.weight"] = torch.ones(8)
    save_file(state, tmp_path / "qknorm" / "model.safetensors")
    with pytest.raises(ValueError, match="q_norm"):
        condense(str(tmp_path / "qknorm"), method="first", num_layers=1)
    # A width without a conventional head count needs it stated.
    _timm_checkpoint(tmp_path / "noheads", seed=5, hidden=40, heads=None)
    with pytest.raises(ValueError, match="num_heads"):
        condense(str(tmp_path / "noheads"), method="first", num_layers=1)


# --- remote code ------------------------------------------------------------------------------------------------------

_REMOTE = textwrap.dedent(
    """
    import sys
    sys.modules["hf_learngene"] = None  # `import hf_learngene` raises ImportError
    import torch
    from transformers import AutoModel, AutoModelForImageClassification
    x = torch.load(sys.argv[-2], weights_only=True)
    out = {}
    with torch.no_grad():
        for path in sys.argv[1:-2]:
            model = AutoModel.from_pretrained(path, trust_remote_code=True).eval()
            assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
            result = model(x)
            out[path] = (result.last_hidden_state, result.pooler_output)
            grown = AutoModelForImageClassification.from_pretrained(path, trust_remote_code=True, num_labels=2,
                                                                    layout="LRLL").eval()
            out[path + ":grown"] = grown(x).logits.shape
    torch.save(out, sys.argv[-1])
    """
)


def test_remote_code_loads_new_family_learngenes_without_the_package(saved, tmp_path):
    paths = [str(saved[family][2] / f"{family}-learngene") for family in ("dinov2_swiglu", "siglip", "deit")]
    x = _pixels()
    torch.save(x, tmp_path / "x.pt")
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", _REMOTE, *paths, str(tmp_path / "x.pt"), str(tmp_path / "out.pt")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = torch.load(tmp_path / "out.pt", weights_only=True)
    for family, path in zip(("dinov2_swiglu", "siglip", "deit"), paths, strict=True):
        learngene = saved[family][1]
        with torch.no_grad():
            want = learngene(x)
        torch.testing.assert_close(out[path][0], want.last_hidden_state)
        if want.pooler_output is not None:
            torch.testing.assert_close(out[path][1], want.pooler_output)
        assert tuple(out[path + ":grown"]) == (2, 2)
