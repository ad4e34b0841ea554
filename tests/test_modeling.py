"""Core contract: LearngeneConfig, LearngeneModel and DescendantForImageClassification."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from safetensors.torch import load_file
from tiny_models import pixel_values, tiny_processor, tiny_vit
from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoModelForImageClassification,
)

from hf_learngene import DescendantForImageClassification, LearngeneConfig, LearngeneModel, condense
from hf_learngene.ancestry import load_ancestor


@pytest.fixture(scope="module")
def ancestor():
    return tiny_vit(seed=0)


@pytest.fixture(scope="module")
def ancestor_dir(ancestor, tmp_path_factory):
    path = tmp_path_factory.mktemp("ancestor")
    ancestor.save_pretrained(path)
    tiny_processor().save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def learngene_dir(ancestor_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("learngene")
    condense(str(ancestor_dir), method="manual", layers=[0, 2, 3], output_dir=path)
    return path


def test_full_depth_learngene_equals_ancestor(ancestor):
    learngene = condense(ancestor, method="manual", layers=[0, 1, 2, 3]).eval()
    x = pixel_values()
    with torch.no_grad():
        expected = ancestor(x).last_hidden_state
        got = learngene(x).last_hidden_state
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_full_depth_from_saved_folder_equals_ancestor(ancestor, ancestor_dir):
    # The folder carries transformers 4 key names; the in-memory model carries the v5 ones.
    learngene = condense(str(ancestor_dir), method="first", num_layers=4).eval()
    x = pixel_values(seed=1)
    with torch.no_grad():
        torch.testing.assert_close(learngene(x).last_hidden_state, ancestor(x).last_hidden_state, atol=1e-5, rtol=0)


def test_subset_tensors_equal_ancestor_exactly(ancestor):
    learngene = condense(ancestor, method="manual", layers=[1, 3])
    theirs = ancestor.state_dict()
    ours = learngene.state_dict()
    for position, source in enumerate([1, 3]):
        for ours_name, theirs_name in [
            ("attention.q_proj.weight", "attention.q_proj.weight"),
            ("attention.v_proj.bias", "attention.v_proj.bias"),
            ("attention.o_proj.weight", "attention.o_proj.weight"),
            ("mlp.fc1.weight", "mlp.fc1.weight"),
            ("mlp.fc2.bias", "mlp.fc2.bias"),
            ("layernorm_before.weight", "layernorm_before.weight"),
        ]:
            assert torch.equal(ours[f"layers.{position}.{ours_name}"], theirs[f"layers.{source}.{theirs_name}"])
    assert torch.equal(ours["embeddings.position_embeddings"], theirs["embeddings.position_embeddings"])
    assert torch.equal(ours["layernorm.weight"], theirs["layernorm.weight"])
    assert learngene.config.layer_indices == [1, 3]
    assert learngene.config.ancestor_num_layers == 4
    # Cut tensors are copies: changing the learngene leaves the ancestor alone.
    assert ours["layers.0.mlp.fc1.weight"].data_ptr() != theirs["layers.1.mlp.fc1.weight"].data_ptr()


def test_both_key_schemes_give_identical_learngenes(ancestor, ancestor_dir):
    from_memory = condense(ancestor, method="manual", layers=[0, 2])
    from_files = condense(str(ancestor_dir), method="manual", layers=[0, 2])
    file_keys = set(load_file(ancestor_dir / "model.safetensors"))
    assert any(".attention.attention.query." in k for k in file_keys)  # really the v4 scheme on disk
    assert any(".attention.q_proj." in k for k in ancestor.state_dict())  # really the v5 scheme in memory
    a, b = from_memory.state_dict(), from_files.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_save_pretrained_file_set_and_round_trip(learngene_dir):
    files = {p.name for p in learngene_dir.iterdir()}
    assert {"config.json", "model.safetensors", "README.md", "preprocessor_config.json"} <= files
    assert not any(name.endswith((".bin", ".pt", ".pth", ".pkl")) for name in files)
    # Remote code travels beside the weights.
    assert {"configuration_learngene.py", "modeling_learngene.py"} <= files
    stored = load_file(learngene_dir / "model.safetensors")
    reloaded = LearngeneModel.from_pretrained(learngene_dir)
    state = reloaded.state_dict()
    assert set(stored) == set(state)
    for key, tensor in stored.items():
        assert torch.equal(state[key], tensor), key
    config = json.loads((learngene_dir / "config.json").read_text())
    assert config["model_type"] == "learngene"
    assert config["layer_indices"] == [0, 2, 3]
    assert config["condensing_method"] == "manual"
    assert config["hf_learngene_version"]


def _auto_image_processor_needs_torchvision() -> bool:
    # transformers 5.17 made AutoImageProcessor itself require torchvision (fixed in later 5.x releases).
    try:
        AutoImageProcessor.register  # noqa: B018  (attribute access triggers the backend check)
    except ImportError:
        return True
    return False


@pytest.mark.skipif(_auto_image_processor_needs_torchvision(), reason="this transformers needs torchvision for it")
def test_image_processor_travels_with_learngene(learngene_dir):
    processor = AutoImageProcessor.from_pretrained(learngene_dir)
    assert processor.size == {"height": 30, "width": 30}
    model = LearngeneModel.from_pretrained(learngene_dir)
    assert model.image_processor is not None


def test_auto_classes_are_registered(learngene_dir):
    assert type(AutoConfig.from_pretrained(learngene_dir)) is LearngeneConfig
    assert type(AutoModel.from_pretrained(learngene_dir)) is LearngeneModel
    descendant = AutoModelForImageClassification.from_pretrained(learngene_dir, num_labels=3, num_new_layers=1)
    assert type(descendant) is DescendantForImageClassification


def test_descendant_inherits_learngene_tensors(learngene_dir, caplog):
    learngene = LearngeneModel.from_pretrained(learngene_dir)
    with caplog.at_level(logging.WARNING, logger="transformers"):
        model = DescendantForImageClassification.from_pretrained(learngene_dir, num_labels=5, layout="LRLRL")
    assert not [r for r in caplog.records if "newly initialized" in r.getMessage() or "missing" in r.getMessage()]
    assert model.config.layout == "LRLRL"
    theirs = learngene.state_dict()
    for key, tensor in model.learngene.state_dict().items():
        assert torch.equal(tensor, theirs[key]), key
    assert len(model.new_layers) == 2
    new_w = model.new_layers[0].attention.q_proj.weight
    assert not any(torch.equal(new_w, layer.attention.q_proj.weight) for layer in model.learngene.layers)
    assert new_w.std() > 0
    # The forward order follows the layout.
    order = model.descendant_layers()
    assert order[0] is model.learngene.layers[0] and order[1] is model.new_layers[0]
    assert order[4] is model.learngene.layers[2]


def test_descendant_outputs_and_loss(learngene_dir):
    model = DescendantForImageClassification.from_pretrained(learngene_dir, num_labels=5, num_new_layers=2)
    assert model.config.layout == "LLLRR"
    x = pixel_values(batch=4)
    labels = torch.tensor([0, 1, 2, 4])
    out = model(pixel_values=x, labels=labels)
    assert out.logits.shape == (4, 5)
    expected = torch.nn.functional.cross_entropy(out.logits, labels)
    torch.testing.assert_close(out.loss, expected)
    assert model(pixel_values=x).loss is None
    out.loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_descendant_save_and_reload_round_trip(learngene_dir, tmp_path):
    model = DescendantForImageClassification.from_pretrained(
        learngene_dir, num_labels=3, layout="RLLL", id2label={0: "a", 1: "b", 2: "c"}, label2id={"a": 0, "b": 1, "c": 2}
    )
    model.save_pretrained(tmp_path)
    reloaded = AutoModelForImageClassification.from_pretrained(tmp_path)
    assert reloaded.config.layout == "RLLL"
    assert reloaded.config.id2label == {0: "a", 1: "b", 2: "c"}
    for key, tensor in model.state_dict().items():
        assert torch.equal(reloaded.state_dict()[key], tensor), key
    x = pixel_values()
    with torch.no_grad():
        torch.testing.assert_close(reloaded.eval()(x).logits, model.eval()(x).logits)


def test_interpolate_pos_encoding(learngene_dir):
    model = LearngeneModel.from_pretrained(learngene_dir).eval()
    bigger = pixel_values(size=40)
    with pytest.raises(ValueError, match="interpolate_pos_encoding=True"):
        model(bigger)
    out = model(bigger, interpolate_pos_encoding=True).last_hidden_state
    assert out.shape == (3, 1 + 20 * 20, 32)
    # At the native size interpolation is the identity.
    x = pixel_values()
    with torch.no_grad():
        torch.testing.assert_close(model(x, interpolate_pos_encoding=True)[0], model(x)[0])


def test_hidden_states(learngene_dir):
    model = LearngeneModel.from_pretrained(learngene_dir).eval()
    out = model(pixel_values(), output_hidden_states=True)
    assert len(out.hidden_states) == 1 + 3
    assert model(pixel_values(), return_dict=False)[0].shape == out.last_hidden_state.shape


def test_gradient_checkpointing_matches(learngene_dir):
    torch.manual_seed(0)
    model = DescendantForImageClassification.from_pretrained(learngene_dir, num_labels=2, num_new_layers=1)
    model.train()
    x, y = pixel_values(batch=2), torch.tensor([0, 1])
    model(pixel_values=x, labels=y).loss.backward()
    plain = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    model.gradient_checkpointing_enable()
    assert model.learngene.layers[0].gradient_checkpointing
    model(pixel_values=x, labels=y).loss.backward()
    for name, param in model.named_parameters():
        torch.testing.assert_close(param.grad, plain[name], atol=1e-6, rtol=1e-5)


def test_mimetic_init_shapes_attention(learngene_dir):
    model = DescendantForImageClassification.from_pretrained(
        learngene_dir, num_labels=2, num_new_layers=1, new_layer_init="mimetic"
    )
    attention = model.new_layers[0].attention
    head = attention.head_dim
    qk = attention.q_proj.weight[:head].T @ attention.k_proj.weight[:head]
    vo = attention.v_proj.weight.T @ attention.o_proj.weight.T
    # W_q W_k^T leans towards +I and W_v W_o towards -I; the trunc-normal scheme has no such bias.
    assert torch.diagonal(qk).mean() > 0.05
    assert torch.diagonal(vo).mean() < -0.1
    inherited = model.learngene.state_dict()
    reference = LearngeneModel.from_pretrained(learngene_dir).state_dict()
    assert all(torch.equal(inherited[k], reference[k]) for k in reference)


# ----------------------------------------------------------------------------------------------- bad input


def test_not_a_vit_is_refused(tmp_path):
    from transformers import BertConfig, BertModel

    BertModel(
        BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=37)
    ).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="'bert' model, not a ViT"):
        condense(str(tmp_path), method="heuristic", num_layers=1)


@pytest.mark.parametrize(
    ("layers", "message"),
    [([0, 7], r"out of range.*0\.\.3"), ([1, 1], "duplicates"), ([], "at least one"), ([-1], "out of range")],
)
def test_bad_layer_indices(ancestor, layers, message):
    with pytest.raises(ValueError, match=message):
        condense(ancestor, method="manual", layers=layers)


def test_bad_num_layers_and_method(ancestor):
    with pytest.raises(ValueError, match="out of range"):
        condense(ancestor, method="heuristic", num_layers=9)
    with pytest.raises(ValueError, match="out of range"):
        condense(ancestor, method="first", num_layers=0)
    with pytest.raises(ValueError, match=r"Unknown condensing method 'best'.*heuristic"):
        condense(ancestor, method="best", num_layers=2)
    with pytest.raises(ValueError, match="needs `layers="):
        condense(ancestor, method="manual")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"layout": "LLRR"}, "has 2 'L' but the learngene has 3"),
        ({"layout": "LLXL"}, "contains 'X'"),
        ({"layout": ""}, "non-empty"),
        ({"num_new_layers": -1}, ">= 0"),
        ({"layout": "LLLR", "num_new_layers": 3}, "either `layout` or `num_new_layers`"),
    ],
)
def test_bad_layouts(learngene_dir, kwargs, message):
    with pytest.raises(ValueError, match=message):
        DescendantForImageClassification.from_pretrained(learngene_dir, num_labels=2, **kwargs)


def test_missing_num_labels(learngene_dir):
    with pytest.raises(ValueError, match="num_labels="):
        DescendantForImageClassification.from_pretrained(learngene_dir, layout="LLLR")


def test_folder_without_weights(tmp_path, ancestor):
    ancestor.config.save_pretrained(tmp_path)
    with pytest.raises(OSError, match="No safetensors weights"):
        load_ancestor(str(tmp_path))


def test_pickled_only_folder_is_not_unpickled(tmp_path, ancestor):
    ancestor.config.save_pretrained(tmp_path)
    (tmp_path / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(OSError, match="does not unpickle"):
        load_ancestor(str(tmp_path))


def test_corrupted_weights(tmp_path, ancestor, learngene_dir):
    ancestor.save_pretrained(tmp_path)
    data = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(OSError, match="Could not read weights"):
        load_ancestor(str(tmp_path))


def test_wrong_channel_count(learngene_dir):
    model = DescendantForImageClassification.from_pretrained(learngene_dir, num_labels=2)
    with pytest.raises(ValueError, match=r"\(batch, 3, height, width\).*got \(2, 1, 30, 30\)"):
        model(pixel_values(batch=2, channels=1))


def test_wrong_image_size(learngene_dir):
    model = DescendantForImageClassification.from_pretrained(learngene_dir, num_labels=2)
    with pytest.raises(ValueError, match=r"\(24x24\) does not match the model \(30x30\)"):
        model(pixel_values(batch=2, size=24))


def test_config_validation():
    # Geometry is checked where the model is built, so that a config may be written field by field.
    with pytest.raises(ValueError, match="divisible"):
        LearngeneModel(LearngeneConfig(hidden_size=30, num_attention_heads=4))
    with pytest.raises(ValueError, match="out of range"):
        LearngeneConfig(layer_indices=[0, 5], ancestor_num_layers=4)
    with pytest.raises(ValueError, match="new_layer_init"):
        LearngeneConfig(new_layer_init="zeros")
    config = LearngeneConfig(layer_indices=[2, 5], ancestor_num_layers=6, num_new_layers=1, num_labels=3)
    assert config.num_hidden_layers == 3  # the descendant's depth, len(layout)
    assert config.layout == "LLR"


def test_loading_info(learngene_dir):
    model, info = DescendantForImageClassification.from_pretrained(
        learngene_dir, num_labels=2, layout="LRLL", output_loading_info=True
    )
    assert model.image_processor is not None
    # The new layers and the head are missing from a learngene (no warning) and listed as new; nothing else is.
    new = {k for k in model.state_dict() if k.startswith(("new_layers.", "classifier."))}
    assert set(info["missing_keys"]) == new and len(new) > 2
    assert not info["unexpected_keys"] and not info["mismatched_keys"]
    assert model.new_layers[0].mlp.fc1.weight.std() > 0
