"""Model cards written by save_pretrained: YAML metadata and provenance, for learngenes and descendants."""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import ModelCard
from tiny_models import tiny_vit

from hf_learngene import DescendantForImageClassification, LearngeneConfig, LearngeneModel, condense

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_learngene_card_metadata_and_body(tmp_path):
    learngene = condense(tiny_vit(seed=2), method="heuristic", num_layers=2)
    # An ancestor with a Hub id shows up as `base_model`.
    learngene.config.ancestor_name_or_path = "google/vit-base-patch16-224"
    learngene.save_pretrained(tmp_path)
    card = ModelCard.load(tmp_path / "README.md")
    assert card.data.library_name == "hf_learngene"
    assert {"learngene", "vision-transformer"} <= set(card.data.tags)
    assert card.data.base_model == "google/vit-base-patch16-224"
    assert card.data.to_dict().get("pipeline_tag") is None
    assert "| Layers kept (0-based) | 2, 3 |" in card.text
    assert "`heuristic`" in card.text
    assert "[`google/vit-base-patch16-224`](https://huggingface.co/google/vit-base-patch16-224)" in card.text
    assert 'layout="LLRR"' in card.text


def test_learngene_card_shows_scores(tmp_path):
    config = LearngeneConfig(
        hidden_size=32,
        num_attention_heads=4,
        intermediate_size=37,
        image_size=30,
        patch_size=2,
        layer_indices=[0, 2],
        ancestor_num_layers=3,
        ancestor_name_or_path="./local-ancestor",
        condensing_method="cka",
        condensing_scores=[0.9, 0.1, 0.7],
    )
    LearngeneModel(config).save_pretrained(tmp_path)
    card = ModelCard.load(tmp_path / "README.md")
    assert card.data.base_model is None  # a local path is not a Hub id
    assert "| 0 | 0.9000 | yes |" in card.text
    assert "| 1 | 0.1000 |  |" in card.text
    assert "| 2 | 0.7000 | yes |" in card.text


def test_descendant_card(tmp_path):
    learngene = condense(tiny_vit(seed=2), method="first", num_layers=2)
    learngene.config.ancestor_name_or_path = "facebook/dino-vits16"
    learngene.save_pretrained(tmp_path / "lg")
    model = DescendantForImageClassification.from_pretrained(
        tmp_path / "lg", num_labels=2, layout="LRL", id2label={0: "cat", 1: "dog"}, label2id={"cat": 0, "dog": 1}
    )
    model.training_summary = {
        "dataset": "beans",
        "num_train": 10,
        "num_eval": 4,
        "setup": {"Epochs": 2},
        "metrics": {"eval_accuracy": 0.5, "eval_runtime": 1.25},
        "learning_curves": [{"epoch": 1, "train_loss": 0.9, "eval_accuracy": 0.25}, {"epoch": 2, "eval_accuracy": 0.5}],
    }
    model.save_pretrained(tmp_path / "desc")
    card = ModelCard.load(tmp_path / "desc" / "README.md")
    assert card.data.pipeline_tag == "image-classification"
    assert card.data.base_model == "facebook/dino-vits16"
    assert card.data.library_name == "hf_learngene"
    assert "`LRL`" in card.text
    assert "cat, dog" in card.text
    assert "## Training" in card.text and "Trained on `beans` (10 training, 4 evaluation images)" in card.text
    assert "| eval_accuracy | 0.5000 |" in card.text and "eval_runtime" not in card.text
    assert "| 1 | 0.9000 | 0.2500 |" in card.text and "| 2 | - | 0.5000 |" in card.text
    assert card.data.datasets == ["beans"]


def test_cards_name_local_ancestors_by_folder_name_and_escape_them(tmp_path):
    learngene = condense(tiny_vit(seed=2), method="first", num_layers=1)
    for name, shown in (
        (str(tmp_path / "models" / "my-vit"), "my-vit"),
        ("./my-vit", "my-vit"),
        ("<script>evil|vit", "&lt;script&gt;evil\\|vit"),
    ):
        learngene.config.ancestor_name_or_path = name
        learngene.save_pretrained(tmp_path / "lg")
        text = (tmp_path / "lg" / "README.md").read_text()
        assert str(tmp_path) not in text and "<script>" not in text
        assert shown in text
        assert "](./" not in text and "https://huggingface.co/./" not in text


def _scored_learngene() -> LearngeneModel:
    config = LearngeneConfig(
        hidden_size=32,
        num_attention_heads=4,
        intermediate_size=37,
        image_size=30,
        patch_size=2,
        layer_indices=[1, 2],
        ancestor_num_layers=3,
        condensing_method="cka",
        condensing_scores=[0.2, 0.9, 0.7],
        condensing_details={"heatmap": "condense_heatmap.png"},
    )
    return LearngeneModel(config)


def test_heatmap_travels_with_every_save(tmp_path):
    _scored_learngene().save_pretrained(tmp_path)
    assert (tmp_path / "condense_heatmap.png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "condense_report.json").is_file()
    assert "![Condensing scores](condense_heatmap.png)" in (tmp_path / "README.md").read_text()


def test_heatmap_travels_with_push(local_hub):
    _scored_learngene().push_to_hub("org/scored-learngene")
    files = set(local_hub.list_files("org/scored-learngene"))
    assert {"condense_heatmap.png", "condense_report.json", "README.md"} <= files


def test_the_curves_picture_travels_with_every_save_and_push(tmp_path, local_hub):
    learngene = condense(tiny_vit(seed=2), method="first", num_layers=1)
    learngene.save_pretrained(tmp_path / "lg")
    model = DescendantForImageClassification.from_pretrained(tmp_path / "lg", num_labels=2, num_new_layers=1)
    model.training_summary = {"learning_curves": [{"epoch": 1, "train_loss": 0.9}, {"epoch": 2, "train_loss": 0.5}]}
    model.save_pretrained(tmp_path / "desc")
    assert (tmp_path / "desc" / "learning_curves.png").read_bytes().startswith(b"\x89PNG")
    assert "![Learning curves](learning_curves.png)" in (tmp_path / "desc" / "README.md").read_text()
    model.push_to_hub("org/curved")
    assert "learning_curves.png" in local_hub.list_files("org/curved")
