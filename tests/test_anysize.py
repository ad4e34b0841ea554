"""Descendants of any size: narrower than the learngene (width selection), deeper without random layers (identity,
copy and linear growth), and the linear learngene."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from tiny_models import pixel_values, tiny_processor, tiny_vit

from hf_learngene import DescendantForImageClassification, LearngeneConfig, LearngeneModel, condense
from hf_learngene.growth import select_width
from hf_learngene.modeling_learngene import _evenly_spaced

# The tiny ancestor: hidden 32, 4 heads (head_dim 8), MLP 37, 4 layers.
HALF = dict(hidden_size=16, num_attention_heads=2, intermediate_size=18)


def _randomise(model, seed: int):
    """Give every tensor non-trivial values (biases are zero and LayerNorms one after init)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.1)
    return model


def _layer_params(layer) -> dict[str, torch.Tensor]:
    return {name: param.detach() for name, param in layer.named_parameters()}


def _assert_same_layer(layer, expected: dict[str, torch.Tensor], atol: float = 0.0):
    for name, param in layer.named_parameters():
        torch.testing.assert_close(param.detach(), expected[name], rtol=0, atol=atol, msg=name)


@pytest.fixture(scope="module")
def ancestor():
    return _randomise(tiny_vit(seed=0), seed=1)


@pytest.fixture(scope="module")
def learngene_dir(ancestor, tmp_path_factory):
    path = tmp_path_factory.mktemp("learngene")
    learngene = condense(ancestor, method="manual", layers=[0, 2, 3])
    learngene.image_processor = tiny_processor()
    learngene.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def learngene(learngene_dir):
    return LearngeneModel.from_pretrained(learngene_dir).eval()


def _linear_ancestor(seed: int = 0):
    """A tiny ViT whose layer i of L is exactly A + ((i + 1) / L) * B, tensor by tensor; returns it with A and B."""
    model = tiny_vit(seed=seed)
    layers = model.encoder.layer if hasattr(model, "encoder") else model.layers
    generator = torch.Generator().manual_seed(seed + 10)
    theta_a = {n: torch.randn(p.shape, generator=generator) * 0.2 for n, p in layers[0].named_parameters()}
    theta_b = {n: torch.randn(p.shape, generator=generator) * 0.2 for n, p in layers[0].named_parameters()}
    with torch.no_grad():
        for i, layer in enumerate(layers):
            for name, param in layer.named_parameters():
                param.copy_(theta_a[name] + (i + 1) / len(layers) * theta_b[name])
    return model, layers, theta_a, theta_b


# --- depth --------------------------------------------------------------------------------------------------------


def test_identity_growth_preserves_the_function(learngene_dir):
    grown = DescendantForImageClassification.from_pretrained(
        learngene_dir, num_labels=3, layout="LRLRLR", new_layer_init="identity"
    ).eval()
    plain = DescendantForImageClassification.from_pretrained(learngene_dir, num_labels=3).eval()
    plain.classifier.load_state_dict(grown.classifier.state_dict())
    x = pixel_values()
    with torch.no_grad():
        ours, theirs = grown(x, output_hidden_states=True), plain(x, output_hidden_states=True)
    torch.testing.assert_close(ours.hidden_states[-1], theirs.hidden_states[-1], rtol=0, atol=1e-6)
    torch.testing.assert_close(ours.logits, theirs.logits, rtol=0, atol=1e-6)
    # The new layers are not dead: their zeroed projections get gradients.
    grown(x, labels=torch.tensor([0, 1, 2])).loss.backward()
    assert grown.new_layers[0].mlp.fc2.weight.grad.abs().sum() > 0
    assert grown.new_layers[0].attention.o_proj.weight.grad.abs().sum() > 0
    # Random new layers change the function (so the comparison above can fail).
    random = DescendantForImageClassification.from_pretrained(learngene_dir, num_labels=3, layout="LRLRLR").eval()
    with torch.no_grad():
        assert not torch.allclose(random(x, output_hidden_states=True).hidden_states[-1], theirs.hidden_states[-1])


def test_identity_when_built_from_a_config():
    config = LearngeneConfig(
        hidden_size=32, num_attention_heads=4, intermediate_size=37, image_size=30, patch_size=2,
        layer_indices=[0], layout="LR", new_layer_init="identity", num_labels=2,
    )  # fmt: skip
    model = DescendantForImageClassification(config)
    for projection in (model.new_layers[0].attention.o_proj, model.new_layers[0].mlp.fc2):
        assert not projection.weight.any() and not projection.bias.any()
    assert model.new_layers[0].mlp.fc1.weight.std() > 0


def test_num_hidden_layers_sets_the_depth(learngene_dir):
    model = DescendantForImageClassification.from_pretrained(learngene_dir, num_labels=2, num_hidden_layers=5)
    assert model.config.layout == "LLLRR" and model.config.num_hidden_layers == 5
    same = DescendantForImageClassification.from_pretrained(learngene_dir, num_labels=2, num_hidden_layers=3)
    assert same.config.layout == "LLL"


def test_copy_takes_the_nearest_inherited_layer(learngene_dir, learngene):
    model = DescendantForImageClassification.from_pretrained(
        learngene_dir, num_labels=2, layout="LRRLRL", new_layer_init="copy"
    )
    stored = [_layer_params(layer) for layer in learngene.layers]  # the checkpoint's, so the copy ran after loading
    _assert_same_layer(model.new_layers[0], stored[0])  # position 1: inherited at 0 (1 away) before 3 (2 away)
    _assert_same_layer(model.new_layers[1], stored[1])  # position 2: inherited at 3
    _assert_same_layer(model.new_layers[2], stored[1])  # position 4: a tie between 3 and 5 goes to the earlier
    # Narrowed: the copy is taken after the inherited tensors are sliced.
    narrow = DescendantForImageClassification.from_pretrained(
        learngene_dir, num_labels=2, layout="LRLL", new_layer_init="copy", **HALF
    )
    _assert_same_layer(narrow.new_layers[0], _layer_params(narrow.learngene.layers[0]))


def test_linear_init_extends_the_inherited_layers():
    ancestor, layers, _, _ = _linear_ancestor()
    learngene = condense(ancestor, method="first", num_layers=2)
    learngene.save_pretrained(path := os.path.join(os.environ.get("TMPDIR", "/tmp"), f"lg-linear-{os.getpid()}"))
    model = DescendantForImageClassification.from_pretrained(path, num_labels=2, layout="LLRR", new_layer_init="linear")
    # Inherited layers sit at 1/4 and 2/4 of the depth, as ancestry layers 0 and 1 did: the line through them
    # gives ancestry layers 2 and 3 at 3/4 and 4/4.
    _assert_same_layer(model.new_layers[0], _layer_params(layers[2]), atol=1e-6)
    _assert_same_layer(model.new_layers[1], _layer_params(layers[3]), atol=1e-6)


def test_linear_learngene_recovers_a_linear_ancestor(tmp_path):
    ancestor, layers, theta_a, theta_b = _linear_ancestor()
    learngene = condense(ancestor, method="linear").eval()
    assert learngene.config.learngene_form == "linear" and learngene.config.layer_indices == [0, 1, 2, 3]
    assert learngene.config.new_layer_init == "linear" and learngene.config.num_stored_layers == 2
    assert learngene.config.condensing_details["fit_relative_error"] == 0.0
    _assert_same_layer(learngene.layers[0], theta_a, atol=1e-6)
    _assert_same_layer(learngene.layers[1], theta_b, atol=1e-6)
    x = pixel_values()
    with torch.no_grad():  # its forward runs the fitted layers at the ancestor's depths
        torch.testing.assert_close(learngene(x).last_hidden_state, ancestor(x).last_hidden_state, rtol=0, atol=1e-5)

    learngene.save_pretrained(tmp_path / "linear")
    same_depth = DescendantForImageClassification.from_pretrained(
        tmp_path / "linear", num_labels=3, num_hidden_layers=4
    )
    assert same_depth.config.layout == "RRRR" and not same_depth.learngene.layers[0].mlp.fc1.weight.requires_grad
    for new, original in zip(same_depth.new_layers, layers, strict=True):
        _assert_same_layer(new, _layer_params(original), atol=1e-6)
    deeper = DescendantForImageClassification.from_pretrained(tmp_path / "linear", num_labels=3, num_new_layers=8)
    for depth, new in enumerate(deeper.new_layers, start=1):
        _assert_same_layer(new, {n: theta_a[n] + depth / 8 * theta_b[n] for n in theta_a}, atol=1e-6)

    card = (tmp_path / "linear" / "README.md").read_text()
    assert "# Linear learngene (theta_A, theta_B fitted over 4 of 4 layers" in card and "num_hidden_layers=6" in card

    # A non-linear ancestor is fitted only approximately, and the config says how well.
    assert condense(tiny_vit(seed=4), method="linear").config.condensing_details["fit_relative_error"] > 0.01


# --- width --------------------------------------------------------------------------------------------------------


def test_uniform_rule_is_weight_selections():
    assert _evenly_spaced(384, 192) == list(range(0, 384, 2))  # ViT-S -> ViT-T keeps channels 0, 2, ..., 382
    assert _evenly_spaced(10, 4) == [0, 3, 7, 9]  # round(linspace(0, 10, 4)) = 0, 3, 7, 10, clamped to 9
    assert _evenly_spaced(37, 37) == list(range(37))
    assert _evenly_spaced(37, 30)[-2:] == [36, 36]  # close sizes that do not divide: the clamp repeats an index


def test_uniform_selection_keeping_every_index_returns_the_learngene(learngene_dir, learngene):
    model = DescendantForImageClassification.from_pretrained(
        learngene_dir, num_labels=3, hidden_size=32, num_attention_heads=4, intermediate_size=37,
        width_selection="uniform",
    )  # fmt: skip
    ours = model.learngene.state_dict()
    for name, tensor in learngene.state_dict().items():
        assert torch.equal(ours[name], tensor), name
    assert model.config.width_indices == {
        "from": {"hidden_size": 32, "num_attention_heads": 4, "intermediate_size": 37},
        "hidden": "0:32",
        "attention": "0:32",
        "intermediate": "0:37",
    }


def test_uniform_narrowing_slices_every_tensor_consistently(learngene_dir, learngene):
    model = DescendantForImageClassification.from_pretrained(learngene_dir, num_labels=3, **HALF)
    assert model.config.width_selection == "uniform"
    hidden, mlp = torch.tensor(_evenly_spaced(32, 16)), torch.tensor(_evenly_spaced(37, 18))
    wide, narrow = learngene, model.learngene
    torch.testing.assert_close(narrow.embeddings.cls_token, wide.embeddings.cls_token[..., hidden], rtol=0, atol=0)
    torch.testing.assert_close(
        narrow.embeddings.position_embeddings, wide.embeddings.position_embeddings[..., hidden], rtol=0, atol=0
    )
    projection = wide.embeddings.patch_embeddings.projection
    torch.testing.assert_close(narrow.embeddings.patch_embeddings.projection.weight, projection.weight[hidden])
    torch.testing.assert_close(narrow.layernorm.bias, wide.layernorm.bias[hidden], rtol=0, atol=0)
    for ours, theirs in zip(narrow.layers, wide.layers, strict=True):
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            # Under "uniform" the attention channels take the residual stream's evenly spaced indices too.
            expected = getattr(theirs.attention, name).weight[hidden][:, hidden]
            torch.testing.assert_close(getattr(ours.attention, name).weight, expected, rtol=0, atol=0)
        torch.testing.assert_close(ours.mlp.fc1.weight, theirs.mlp.fc1.weight[mlp][:, hidden], rtol=0, atol=0)
        torch.testing.assert_close(ours.mlp.fc1.bias, theirs.mlp.fc1.bias[mlp], rtol=0, atol=0)
        torch.testing.assert_close(ours.mlp.fc2.weight, theirs.mlp.fc2.weight[hidden][:, mlp], rtol=0, atol=0)
        torch.testing.assert_close(ours.layernorm_after.weight, theirs.layernorm_after.weight[hidden], rtol=0, atol=0)
    # It trains like any descendant.
    loss = model(pixel_values(), labels=torch.tensor([0, 1, 2])).loss
    loss.backward()
    assert torch.isfinite(loss) and model.learngene.layers[0].mlp.fc1.weight.grad.abs().sum() > 0


def _head_outputs(attention, hidden_states: torch.Tensor) -> torch.Tensor:
    """Each head's output (the input of o_proj), shape (batch, seq, heads, head_dim)."""
    captured = []
    handle = attention.o_proj.register_forward_pre_hook(lambda module, args: captured.append(args[0]))
    with torch.no_grad():
        attention(hidden_states)
    handle.remove()
    return captured[0].unflatten(-1, (attention.num_heads, attention.head_dim))


def test_heads_selection_keeps_each_kept_heads_attention_output(learngene_dir, learngene):
    model = DescendantForImageClassification.from_pretrained(
        learngene_dir, num_labels=3, width_selection="heads", **HALF
    ).eval()
    kept_heads = _evenly_spaced(4, 2)  # heads 0 and 2
    assert model.config.width_indices["attention"] == "0:8,16:24"
    hidden = _evenly_spaced(32, 16)
    # The first layer's attention on an input that lives in the kept residual channels (zero elsewhere).
    x = torch.zeros(2, 5, 32)
    x[..., hidden] = torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(0))
    wide = _head_outputs(learngene.layers[0].attention, x)
    narrow = _head_outputs(model.learngene.layers[0].attention, x[..., hidden])
    assert narrow.shape[-2:] == (2, 8)  # head_dim unchanged
    for ours, theirs in enumerate(kept_heads):
        torch.testing.assert_close(narrow[..., ours, :], wide[..., theirs, :], rtol=0, atol=1e-6)
    # "uniform" mixes halves of two heads into each of its heads, so no head survives whole (the check can fail).
    uniform = DescendantForImageClassification.from_pretrained(learngene_dir, num_labels=3, **HALF).eval()
    mixed = _head_outputs(uniform.learngene.layers[0].attention, x[..., hidden])
    assert not any(torch.allclose(mixed[..., 0, :], wide[..., h, :], atol=1e-3) for h in range(4))


def test_select_width_keeps_the_most_active_channels(ancestor, tmp_path):
    learngene = condense(ancestor, method="manual", layers=[0, 2, 3])
    first = learngene.layers[0]
    with torch.no_grad():
        first.attention.v_proj.weight[8:16] = 0  # head 1 of layer 0 outputs nothing
        first.attention.v_proj.bias[8:16] = 0
        first.mlp.fc1.weight[:10] = 0  # neurons 0-9 of layer 0 never fire (GELU(0) = 0)
        first.mlp.fc1.bias[:10] = 0
    learngene.save_pretrained(tmp_path / "learngene")
    selection = select_width(learngene, pixel_values(batch=8), **HALF)
    assert selection["width_selection"] == "activation" and selection["hidden_size"] == 16
    indices = selection["width_indices"]
    assert len(indices["hidden"]) == 16 and len(indices["attention"]) == 3 and len(indices["intermediate"]) == 3
    assert not set(range(8, 16)) & set(indices["attention"][0])  # head 1 dropped, heads kept whole
    assert all(len({c // 8 for c in channels}) == 2 for channels in indices["attention"])
    assert not set(range(10)) & set(indices["intermediate"][0])
    assert set(range(10)) & set(indices["intermediate"][1])  # other layers keep their own active neurons

    model = DescendantForImageClassification.from_pretrained(tmp_path / "learngene", num_labels=3, **selection)
    assert model.config.width_selection == "activation"
    attention = torch.tensor(indices["attention"][0])
    hidden, mlp = torch.tensor(indices["hidden"]), torch.tensor(indices["intermediate"][0])
    narrow = model.learngene.layers[0]
    torch.testing.assert_close(narrow.attention.v_proj.weight, first.attention.v_proj.weight[attention][:, hidden])
    torch.testing.assert_close(narrow.mlp.fc2.weight, first.mlp.fc2.weight[hidden][:, mlp])
    stored = json.loads(json.dumps(model.config.to_dict()))["width_indices"]
    assert isinstance(stored["hidden"], str) and len(stored["intermediate"]) == 3


def test_select_width_reads_a_dataset(learngene):
    from hf_learngene.data import load_digits_dataset

    selection = select_width(learngene, load_digits_dataset(), max_samples=16, **HALF)
    assert len(selection["width_indices"]["hidden"]) == 16


# --- errors -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hidden_size": 64, "num_attention_heads": 4}, r"`hidden_size` \(64\) is larger than the learngene's \(32\)"),
        ({"intermediate_size": 40}, r"`intermediate_size` \(40\) is larger.*Use intermediate_size <= 37"),
        ({"hidden_size": 16, "num_attention_heads": 3}, r"must be divisible by `num_attention_heads` \(3\)"),
        (
            {"hidden_size": 16, "num_attention_heads": 4, "width_selection": "heads"},
            r"keeps whole heads.*head_dim 8.*Use num_attention_heads=2 for hidden_size=16",
        ),
        ({"num_hidden_layers": 2}, r"at least the learngene's 3 inherited layers.*num_layers=2"),
        ({"width_selection": "activation", **HALF}, "select_width"),
        ({"width_selection": "nope"}, "`width_selection` must be one of"),
        ({"new_layer_init": "zeros"}, "`new_layer_init` must be one of"),
        (
            {
                **HALF,
                "width_indices": {"hidden": [0, 1], "attention": list(range(16)), "intermediate": list(range(18))},
            },
            r"keeps 2 indices but hidden_size is 16",
        ),
        (
            {
                **HALF,
                "width_selection": "uniform",
                "width_indices": {"hidden": [], "attention": [], "intermediate": []},
            },
            "explicit indices",
        ),
        (
            {
                **HALF,
                "width_indices": {"hidden": [0] * 16, "attention": list(range(16)), "intermediate": list(range(18))},
            },
            "repeats indices",
        ),
    ],
)
def test_bad_sizes_name_the_fix(learngene_dir, kwargs, message):
    with pytest.raises(ValueError, match=message):
        DescendantForImageClassification.from_pretrained(learngene_dir, num_labels=2, **kwargs)


def test_options_that_do_not_apply(ancestor, learngene_dir, tmp_path):
    one = condense(ancestor, method="first", num_layers=1)
    one.save_pretrained(tmp_path / "one")
    with pytest.raises(ValueError, match="needs at least 2 of them.*'copy' or 'identity'"):
        DescendantForImageClassification.from_pretrained(
            tmp_path / "one", num_labels=2, layout="LR", new_layer_init="linear"
        )
    condense(ancestor, output_dir=tmp_path / "linear", method="linear")
    with pytest.raises(ValueError, match="must be 'linear', not 'copy'"):
        DescendantForImageClassification.from_pretrained(tmp_path / "linear", num_labels=2, new_layer_init="copy")
    with pytest.raises(ValueError, match="linear learngene has none to inherit"):
        DescendantForImageClassification.from_pretrained(tmp_path / "linear", num_labels=2, layout="LRR")
    with pytest.raises(ValueError, match=r"Give the depth: `num_hidden_layers=<depth>` \(e.g. 4"):
        DescendantForImageClassification.from_pretrained(tmp_path / "linear", num_labels=2)
    with pytest.raises(ValueError, match="select_width measures a learngene of kept ancestry layers"):
        select_width(str(tmp_path / "linear"), pixel_values(), **HALF)
    narrow = DescendantForImageClassification.from_pretrained(learngene_dir, num_labels=2, **HALF)
    narrow.save_pretrained(tmp_path / "narrow")
    with pytest.raises(ValueError, match="is a descendant; widths are selected from a learngene"):
        DescendantForImageClassification.from_pretrained(tmp_path / "narrow", hidden_size=8, num_attention_heads=1)


# --- save, load, push, pull, card, remote code -----------------------------------------------------------------


VARIANTS = {
    "half-uniform": dict(**HALF),
    "half-heads-copy": dict(**HALF, width_selection="heads", layout="LRLRL", new_layer_init="copy"),
    "deep-identity": dict(num_hidden_layers=6, new_layer_init="identity"),
    "deep-linear": dict(layout="LLRLR", new_layer_init="linear"),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_save_and_load_round_trip(learngene_dir, tmp_path, variant):
    model = DescendantForImageClassification.from_pretrained(learngene_dir, num_labels=3, **VARIANTS[variant])
    _randomise(model, seed=7)  # as after training: loading must neither slice nor initialise anything again
    model.save_pretrained(tmp_path)
    stored = json.loads((tmp_path / "config.json").read_text())
    if "hidden_size" in VARIANTS[variant]:
        assert stored["hidden_size"] == 16 and all(isinstance(v, (str, dict)) for v in stored["width_indices"].values())
    reloaded, info = DescendantForImageClassification.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    for name, tensor in model.state_dict().items():
        assert torch.equal(reloaded.state_dict()[name], tensor), name
    without_path = lambda config: {k: v for k, v in config.to_dict().items() if k != "_name_or_path"}  # noqa: E731
    assert without_path(reloaded.config) == without_path(model.config)
    x = pixel_values()
    with torch.no_grad():
        assert torch.equal(reloaded.eval()(x).logits, model.eval()(x).logits)


def test_linear_learngene_descendant_round_trip(ancestor, tmp_path):
    condense(ancestor, output_dir=tmp_path / "linear", method="linear")
    model = DescendantForImageClassification.from_pretrained(tmp_path / "linear", num_labels=2, num_hidden_layers=3)
    _randomise(model, seed=3)
    model.save_pretrained(tmp_path / "descendant")
    reloaded = DescendantForImageClassification.from_pretrained(tmp_path / "descendant")
    for name, tensor in model.state_dict().items():
        assert torch.equal(reloaded.state_dict()[name], tensor), name
    assert not any(p.requires_grad for p in reloaded.learngene.layers.parameters())


def test_auto_class_and_narrow_learngene(learngene_dir, tmp_path):
    from transformers import AutoModel, AutoModelForImageClassification

    auto = AutoModelForImageClassification.from_pretrained(learngene_dir, num_labels=3, width_selection="heads", **HALF)
    direct = DescendantForImageClassification.from_pretrained(
        learngene_dir, num_labels=3, width_selection="heads", hidden_size=16, num_attention_heads=2,
        intermediate_size=18, num_hidden_layers=None, new_layer_init=None,  # None: not given
    )  # fmt: skip
    assert auto.config.width_indices == direct.config.width_indices
    for name, tensor in direct.learngene.state_dict().items():
        assert torch.equal(auto.learngene.state_dict()[name], tensor), name
    # A narrow learngene: the same tensors, saved with its record; descendants grown from it keep that record.
    narrow = AutoModel.from_pretrained(learngene_dir, width_selection="heads", **HALF)
    for name, tensor in narrow.state_dict().items():
        assert torch.equal(direct.learngene.state_dict()[name], tensor), name
    narrow.save_pretrained(tmp_path)
    grown = DescendantForImageClassification.from_pretrained(tmp_path, num_labels=2, num_new_layers=1)
    assert grown.config.width_indices == direct.config.width_indices and grown.config.hidden_size == 16


def test_push_and_pull(local_hub, learngene_dir, ancestor):
    LearngeneModel.from_pretrained(learngene_dir).push_to_hub("org/vit-learngene")
    grown = DescendantForImageClassification.from_pretrained(
        "org/vit-learngene", num_labels=3, width_selection="heads", num_hidden_layers=5, new_layer_init="copy", **HALF
    )
    assert grown.config.layout == "LLLRR" and grown.config.hidden_size == 16
    _randomise(grown, seed=5)
    grown.push_to_hub("org/vit-narrow-deep")
    pulled = DescendantForImageClassification.from_pretrained("org/vit-narrow-deep")
    for name, tensor in grown.state_dict().items():
        assert torch.equal(pulled.state_dict()[name], tensor), name
    assert pulled.config.width_indices == grown.config.width_indices
    card = local_hub.read_file("org/vit-narrow-deep", "README.md").decode()
    assert "hidden 16 of 32, 2 of 4 heads (head_dim 8), MLP 18 of 37" in card

    condense(ancestor, method="linear").push_to_hub("org/vit-linear")
    linear = DescendantForImageClassification.from_pretrained("org/vit-linear", num_labels=2, num_hidden_layers=6)
    linear.push_to_hub("org/vit-linear-descendant")
    again = DescendantForImageClassification.from_pretrained("org/vit-linear-descendant")
    for name, tensor in linear.state_dict().items():
        assert torch.equal(again.state_dict()[name], tensor), name


def test_card_states_sizes_and_derivation(learngene_dir, tmp_path):
    DescendantForImageClassification.from_pretrained(
        learngene_dir, num_labels=3, width_selection="heads", num_hidden_layers=5, new_layer_init="copy", **HALF
    ).save_pretrained(tmp_path)
    card = (tmp_path / "README.md").read_text()
    assert "| Depth | 5 layers: 3 inherited + 2 new |" in card
    assert "| New layer initialisation | `copy`: a copy of the nearest inherited layer" in card
    assert "| Width | hidden 16 of 32, 2 of 4 heads (head_dim 8), MLP 18 of 37: selected from the learngene's |" in card
    assert "| Width selection | `heads`: whole heads kept" in card
    assert "attention channels `0:8,16:24`" in card
    plain = DescendantForImageClassification.from_pretrained(learngene_dir, num_labels=3)
    plain.save_pretrained(tmp_path / "plain")
    text = (tmp_path / "plain" / "README.md").read_text()
    assert "| Width | hidden 32, 4 heads (head_dim 8), MLP 37: the learngene's |" in text and "Kept indices" not in text


_REMOTE = textwrap.dedent(
    """
    import sys
    sys.modules["hf_learngene"] = None  # `import hf_learngene` raises ImportError
    import torch
    from transformers import AutoModelForImageClassification
    saved = AutoModelForImageClassification.from_pretrained(sys.argv[1], trust_remote_code=True).eval()
    # The learngene's auto_map names AutoModel only: grow with the descendant class the remote code provides.
    grown = type(saved).from_pretrained(
        sys.argv[2], num_labels=3, hidden_size=16, num_attention_heads=2, intermediate_size=18,
        width_selection="heads", num_hidden_layers=5, new_layer_init="copy",
    )
    x = torch.load(sys.argv[3], weights_only=True)
    with torch.no_grad():
        torch.save({"logits": saved(x).logits, "grown": grown.state_dict(), "module": type(grown).__module__},
                   sys.argv[4])
    """
)


def test_remote_code_loads_and_grows_narrow_descendants(learngene_dir, tmp_path):
    kwargs = dict(width_selection="heads", num_hidden_layers=5, new_layer_init="copy", **HALF)
    model = DescendantForImageClassification.from_pretrained(learngene_dir, num_labels=3, **kwargs).eval()
    model.save_pretrained(tmp_path / "narrow")
    x = pixel_values(batch=2)
    torch.save(x, tmp_path / "x.pt")
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", _REMOTE, str(tmp_path / "narrow"), str(learngene_dir), str(tmp_path / "x.pt"),
         str(tmp_path / "out.pt")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    out = torch.load(tmp_path / "out.pt", weights_only=True)
    assert out["module"].startswith("transformers_modules")
    with torch.no_grad():
        torch.testing.assert_close(out["logits"], model(x).logits, rtol=0, atol=0)
    # Grown in remote code: the same selection and the same copies (only the head is random).
    ours = model.state_dict()
    for name, tensor in out["grown"].items():
        if not name.startswith("classifier."):
            assert torch.equal(tensor, ours[name]), name


def test_docs_example_runs_as_written(tmp_path):
    page = (Path(__file__).resolve().parents[1] / "docs" / "training.md").read_text()
    start = page.index("<!-- any size example")
    code = re.search(r"```python\n(.*?)```", page[start:], flags=re.S).group(1)
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["LLLRRR", "0:64:2", "0:16,32:48", "R" * 9]
