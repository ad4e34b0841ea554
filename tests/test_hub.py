"""The Hub, for real but offline: the real huggingface_hub client (and transformers on top of it) against the local
Hub server of `conftest.local_hub`."""

from __future__ import annotations

import json

import pytest
import torch
from huggingface_hub import HfApi, ModelCard
from transformers import ViTConfig, ViTModel, pipeline

from hf_learngene import DescendantForImageClassification, LearngeneModel, condense
from hf_learngene.data import default_image_processor, load_digits_dataset
from hf_learngene.training import train_descendant

ANCESTOR = dict(
    hidden_size=32, num_hidden_layers=4, num_attention_heads=4, intermediate_size=64, image_size=16, patch_size=4
)


def _learngene(method: str = "first", seed: int = 0) -> LearngeneModel:
    torch.manual_seed(seed)
    ancestor = ViTModel(ViTConfig(**ANCESTOR), add_pooling_layer=False).eval()
    learngene = condense(ancestor, method=method, num_layers=2)
    learngene.image_processor = default_image_processor(learngene.config)
    return learngene


def _card(hub, repo_id: str, revision: str = "main") -> ModelCard:
    return ModelCard(hub.read_file(repo_id, "README.md", revision).decode("utf-8"))


def test_learngene_push_then_descendant_from_hub(local_hub):
    learngene = _learngene()
    learngene.push_to_hub("org/vit-learngene")

    files = local_hub.list_files("org/vit-learngene")
    assert {"config.json", "model.safetensors", "README.md", "preprocessor_config.json"} <= set(files)
    config = json.loads(local_hub.read_file("org/vit-learngene", "config.json"))
    assert config["model_type"] == "learngene" and config["layer_indices"] == [0, 1]

    model = DescendantForImageClassification.from_pretrained("org/vit-learngene", num_labels=3, num_new_layers=1)
    assert model.layout == "LLR"
    inherited = learngene.state_dict()
    for name, tensor in model.learngene.state_dict().items():
        torch.testing.assert_close(tensor, inherited[name], rtol=0, atol=0)
    assert model.image_processor is not None and model.image_processor.size == {"height": 16, "width": 16}


def test_learngene_push_keeps_our_card(local_hub):
    _learngene().push_to_hub("org/vit-learngene")
    card = _card(local_hub, "org/vit-learngene")
    assert card.data.library_name == "hf_learngene" and "learngene" in card.data.tags
    assert "org/vit-learngene" in card.text  # the usage snippet names the repo it was pushed to


def test_missing_repo_gives_clear_error(local_hub):
    with pytest.raises(OSError, match="org/no-such-learngene"):
        DescendantForImageClassification.from_pretrained("org/no-such-learngene", num_labels=2)


def test_revision_is_honoured(local_hub):
    api = HfApi()
    first = _learngene("first")
    first.push_to_hub("org/vit-learngene")
    main_sha = api.model_info("org/vit-learngene").sha
    api.create_branch("org/vit-learngene", branch="last-layers")
    last = _learngene("heuristic")
    last.push_to_hub("org/vit-learngene", revision="last-layers")

    on_main = LearngeneModel.from_pretrained("org/vit-learngene")
    on_branch = LearngeneModel.from_pretrained("org/vit-learngene", revision="last-layers")
    by_sha = LearngeneModel.from_pretrained("org/vit-learngene", revision=main_sha)
    assert on_main.config.layer_indices == [0, 1] == by_sha.config.layer_indices
    assert on_branch.config.layer_indices == [2, 3]
    torch.testing.assert_close(on_branch.layers[0].mlp.fc1.weight, last.layers[0].mlp.fc1.weight, rtol=0, atol=0)
    with pytest.raises(OSError, match="no-such-branch"):
        LearngeneModel.from_pretrained("org/vit-learngene", revision="no-such-branch")


@pytest.mark.slow
def test_condense_push_inherit_train_push_pipeline(local_hub, tmp_path):
    """The whole loop of the README: condense -> push -> from_pretrained -> train -> trainer.push_to_hub -> pipeline."""
    _learngene().push_to_hub("org/vit-learngene")
    digits = load_digits_dataset(classes=[0, 1, 2]).train_test_split(test_size=0.25, stratify_by_column="label", seed=0)
    model = DescendantForImageClassification.from_pretrained("org/vit-learngene", num_labels=3, num_new_layers=1)
    result = train_descendant(
        model,
        digits["train"],
        digits["test"],
        output_dir=tmp_path / "descendant",
        num_train_epochs=2,
        learning_rate=2e-3,
        horizontal_flip=False,
        dataset_name="sklearn-digits-0-2",
        push_to_hub=True,
        hub_model_id="org/vit-descendant",
    )
    assert 0 <= result.metrics["eval_accuracy"] <= 1

    files = set(local_hub.list_files("org/vit-descendant"))
    assert {"config.json", "model.safetensors", "README.md", "preprocessor_config.json"} <= files
    assert not any(name.startswith("checkpoint-") for name in files)
    # The card on the Hub is ours (the Trainer's generic card would say "This model is a fine-tuned version of").
    card = _card(local_hub, "org/vit-descendant")
    assert card.data.library_name == "hf_learngene"
    assert card.data.pipeline_tag == "image-classification"
    assert {"learngene", "image-classification"} <= set(card.data.tags)
    assert card.data.datasets == ["sklearn-digits-0-2"]
    assert "fine-tuned version of" not in card.text
    assert "## Training" in card.text and f"{result.metrics['eval_accuracy']:.4f}" in card.text
    assert "ancestry layers 0, 1" in card.text
    info = HfApi().model_info("org/vit-descendant")
    assert info.pipeline_tag == "image-classification" and info.library_name == "hf_learngene"

    classifier = pipeline("image-classification", model="org/vit-descendant")
    image = digits["test"][0]["image"]
    predictions = classifier(image, top_k=3)
    assert {p["label"] for p in predictions} == {"0", "1", "2"}
    assert abs(sum(p["score"] for p in predictions) - 1.0) < 1e-4
    # The pipeline runs the pushed weights: its scores match the trained model's on the same input.
    trained = result.trainer.model.eval()
    inputs = classifier.image_processor(image.convert("RGB"), return_tensors="pt")
    with torch.no_grad():
        expected = trained(**inputs).logits.softmax(-1)[0]
    best = max(predictions, key=lambda p: p["score"])
    assert best["score"] == pytest.approx(expected.max().item(), abs=1e-5)


def test_plain_trainer_push_keeps_the_lineage(local_hub, tmp_path):
    # Users push with transformers' own Trainer: its generic card must still carry the lineage (tags, base_model).
    from transformers import Trainer, TrainingArguments

    from hf_learngene.data import collate_fn, prepare_dataset

    _learngene().push_to_hub("org/vit-learngene")
    digits = load_digits_dataset(classes=[0, 1]).select(range(32))
    model = DescendantForImageClassification.from_pretrained("org/vit-learngene", num_labels=2, num_new_layers=1)
    args = TrainingArguments(
        tmp_path / "plain", num_train_epochs=1, per_device_train_batch_size=16, report_to="none", push_to_hub=True,
        hub_model_id="org/plain-descendant", save_strategy="no", remove_unused_columns=False, disable_tqdm=True,
    )  # fmt: skip
    prepared = prepare_dataset(digits, model.image_processor, num_channels=3, num_labels=2)
    trainer = Trainer(model=model, args=args, train_dataset=prepared, data_collator=collate_fn)
    trainer.train()
    trainer.push_to_hub()
    card = _card(local_hub, "org/plain-descendant")
    assert {"hf_learngene", "learngene"} <= set(card.data.tags)
    assert card.data.base_model == "org/vit-learngene"
    config = json.loads(local_hub.read_file("org/plain-descendant", "config.json"))
    assert config["layout"] == "LLR" and config["layer_indices"] == [0, 1]


def test_learngene_of_an_in_memory_ancestor_serves_a_pipeline(local_hub, tmp_path):
    # An ancestor built in memory has no image processor: the learngene carries a default one (and says so), so a
    # descendant grown from it works in `pipeline("image-classification")`.
    torch.manual_seed(0)
    learngene = condense(ViTModel(ViTConfig(**ANCESTOR), add_pooling_layer=False), method="first", num_layers=2)
    learngene.push_to_hub("org/bare-learngene")
    assert "preprocessor_config.json" in local_hub.list_files("org/bare-learngene")
    assert "default (the ancestor had none)" in _card(local_hub, "org/bare-learngene").text
    model = DescendantForImageClassification.from_pretrained("org/bare-learngene", num_labels=2, num_new_layers=1)
    model.save_pretrained(tmp_path / "descendant")
    classifier = pipeline("image-classification", model=str(tmp_path / "descendant"))
    predictions = classifier(load_digits_dataset(classes=[0, 1])[0]["image"], top_k=2)
    assert len(predictions) == 2 and abs(sum(p["score"] for p in predictions) - 1) < 1e-4
