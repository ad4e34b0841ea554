"""Reading ancestors: key schemes, sharded checkpoints, Hub ids with revisions."""

from __future__ import annotations

import pytest
import torch
from huggingface_hub import HfApi, ModelCard
from tiny_models import pixel_values, tiny_vit

from hf_learngene import condense, load_ancestor
from hf_learngene.ancestry import normalize_key


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("encoder.layer.3.attention.attention.query.weight", "layers.3.attention.q_proj.weight"),
        ("vit.encoder.layer.0.attention.attention.key.bias", "layers.0.attention.k_proj.bias"),
        ("encoder.layer.11.attention.attention.value.weight", "layers.11.attention.v_proj.weight"),
        ("encoder.layer.2.attention.output.dense.weight", "layers.2.attention.o_proj.weight"),
        ("encoder.layer.2.intermediate.dense.bias", "layers.2.mlp.fc1.bias"),
        ("encoder.layer.2.output.dense.weight", "layers.2.mlp.fc2.weight"),
        ("encoder.layer.2.layernorm_before.weight", "layers.2.layernorm_before.weight"),
        ("vit.layers.5.attention.q_proj.weight", "layers.5.attention.q_proj.weight"),
        ("layers.5.mlp.fc1.weight", "layers.5.mlp.fc1.weight"),
        ("vit.embeddings.patch_embeddings.projection.weight", "embeddings.patch_embeddings.projection.weight"),
        ("vit.layernorm.bias", "layernorm.bias"),
        ("classifier.weight", None),
        ("pooler.dense.weight", None),
        ("embeddings.mask_token", None),
        ("deit.encoder.layer.1.output.dense.bias", "layers.1.mlp.fc2.bias"),
        ("deit.embeddings.distillation_token", "embeddings.distillation_token"),
        ("distillation_classifier.weight", None),
        ("cls_classifier.weight", None),
    ],
)
def test_normalize_key(key, expected):
    assert normalize_key(key) == expected


def test_classification_model_and_sharded_folder(tmp_path):
    model = tiny_vit(seed=4, classifier=True)
    model.save_pretrained(tmp_path, max_shard_size="20KB")
    assert (tmp_path / "model.safetensors.index.json").is_file()
    from_folder = load_ancestor(str(tmp_path))
    from_memory = load_ancestor(model)
    assert from_folder.num_layers == from_memory.num_layers == 4
    assert from_folder.state_dict.keys() == from_memory.state_dict.keys()
    for key, tensor in from_memory.state_dict.items():
        assert torch.equal(from_folder.state_dict[key], tensor), key
    learngene = condense(str(tmp_path), method="first", num_layers=4).eval()
    with torch.no_grad():
        expected = model.vit(pixel_values()).last_hidden_state
        torch.testing.assert_close(learngene(pixel_values()).last_hidden_state, expected, atol=1e-5, rtol=0)


def test_learngene_as_ancestor_keeps_original_indices(tmp_path):
    first = condense(tiny_vit(seed=5), method="manual", layers=[0, 2, 3])
    first.save_pretrained(tmp_path)
    second = condense(str(tmp_path), method="heuristic", num_layers=2)
    assert second.config.layer_indices == [2, 3]  # indices of the original ancestor, not of the learngene
    assert second.config.ancestor_num_layers == 4
    assert torch.equal(second.state_dict()["layers.1.mlp.fc1.weight"], first.state_dict()["layers.2.mlp.fc1.weight"])


def test_hub_ancestor_with_revision(local_hub):
    api = HfApi()
    tiny_vit(seed=6).push_to_hub("acme/tiny-vit")
    api.create_branch("acme/tiny-vit", branch="v2")
    newer = tiny_vit(seed=7)
    newer.push_to_hub("acme/tiny-vit", revision="v2")

    learngene = condense("acme/tiny-vit", method="heuristic", num_layers=2, revision="v2")
    assert learngene.config.ancestor_name_or_path == "acme/tiny-vit"
    assert learngene.config.ancestor_revision == "v2"
    assert torch.equal(
        learngene.state_dict()["layers.0.attention.q_proj.weight"],
        newer.state_dict()["layers.2.attention.q_proj.weight"],
    )
    on_main = condense("acme/tiny-vit", method="heuristic", num_layers=2)
    assert not torch.equal(
        on_main.state_dict()["layers.0.attention.q_proj.weight"],
        learngene.state_dict()["layers.0.attention.q_proj.weight"],
    )

    # The commit the branch resolved to is recorded (a branch moves; a commit does not), and no weights hash is needed.
    v2_commit = api.model_info("acme/tiny-vit", revision="v2").sha
    assert v2_commit and v2_commit != api.model_info("acme/tiny-vit").sha
    assert learngene.config.ancestor_commit == v2_commit and learngene.config.ancestor_sha256 is None
    learngene.push_to_hub("acme/tiny-vit-learngene")
    card = ModelCard(local_hub.read_file("acme/tiny-vit-learngene", "README.md").decode())
    assert card.data.base_model == "acme/tiny-vit"
    assert "@ `v2`" in card.text and v2_commit in card.text


def test_missing_hub_ancestor(local_hub):
    with pytest.raises(OSError, match="acme/nothing-here"):
        condense("acme/nothing-here", method="heuristic", num_layers=1)


def test_scoring_method_on_a_learngene_is_refused(tmp_path):
    # The first 3 of 4 layers: contiguous numbering, but not the whole ancestor.
    condense(tiny_vit(seed=5), method="first", num_layers=3).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="condense the original ancestor instead"):
        condense(str(tmp_path), method="cka", num_layers=1, condense_dataset=[])


def test_local_and_in_memory_ancestors_are_recorded_by_name_and_weights_hash(tmp_path):
    model = tiny_vit(seed=8)
    folder = tmp_path / "deep" / "my-vit"
    model.save_pretrained(folder)
    from_folder = condense(str(folder), method="first", num_layers=1)
    from_memory = condense(model, method="first", num_layers=1)
    assert from_folder.config.ancestor_name_or_path == "my-vit"  # the folder's name, never the path
    assert from_memory.config.ancestor_name_or_path in (None, "my-vit")
    # The same weights give the same digest, from the file or from memory; other weights another one.
    assert from_folder.config.ancestor_sha256 == from_memory.config.ancestor_sha256
    assert len(from_folder.config.ancestor_sha256) == 64
    assert condense(tiny_vit(seed=9), method="first", num_layers=1).config.ancestor_sha256 != (
        from_folder.config.ancestor_sha256
    )
    from_folder.save_pretrained(tmp_path / "learngene")
    for name in ("config.json", "README.md", "condense_report.json"):
        path = tmp_path / "learngene" / name
        assert not path.exists() or str(tmp_path) not in path.read_text(), name


def test_a_checkpoint_with_only_pickled_weights_is_refused(tmp_path):
    model = tiny_vit(seed=8)
    model.config.save_pretrained(tmp_path)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(OSError, match="does not unpickle"):
        condense(str(tmp_path), method="first", num_layers=1)
