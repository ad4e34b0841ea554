"""`hf-learngene` through the real console script (subprocesses), on tiny models and real digits images."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits
from transformers import BertConfig, BertModel, ViTConfig, ViTForImageClassification

from hf_learngene import DescendantForImageClassification, LearngeneModel
from hf_learngene.cli import build_parser, classification_report, main
from hf_learngene.data import collate_fn, default_image_processor, load_image_dataset, prepare_dataset

SCRIPT = Path(sys.executable).with_name("hf-learngene")
CLASSES = (0, 1, 2)


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, text=True, env=env, timeout=300)


def error_line(result: subprocess.CompletedProcess) -> str:
    """The error line: the last line of stderr, which must carry no traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, "expected an error message on stderr"
    return lines[-1]


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("hf_home")
    return {
        **os.environ,
        "HF_HOME": str(home),
        "HF_HUB_OFFLINE": "1",
        "HF_LEARNGENE_CACHE": str(home / "learngene-cache"),
        "OMP_NUM_THREADS": "1",
    }


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    """scikit-learn digits 0-2 as PNGs in an imagefolder layout: train/<class>/*.png and test/<class>/*.png."""
    root = tmp_path_factory.mktemp("digits")
    digits = load_digits()
    counts = {"train": 8, "test": 6}
    for label in CLASSES:
        rows = np.flatnonzero(digits.target == label)
        start = 0
        for split, count in counts.items():
            folder = root / split / str(label)
            folder.mkdir(parents=True)
            for i in rows[start : start + count]:
                image = np.round(digits.images[i] * (255 / 16)).astype(np.uint8)
                Image.fromarray(image).save(folder / f"{i}.png")
            start += count
    return root


@pytest.fixture(scope="module")
def vit_dir(tmp_path_factory) -> Path:
    """A tiny transformers ViT ancestor (4 layers, 8x8 grayscale input) saved with its image processor."""
    path = tmp_path_factory.mktemp("vit")
    config = ViTConfig(
        hidden_size=16,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=32,
        image_size=8,
        patch_size=4,
        num_channels=1,
    )
    torch.manual_seed(0)
    ViTForImageClassification(config).save_pretrained(path)
    default_image_processor(config).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bert")
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32)
    BertModel(config).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def learngene_dir(vit_dir, env, tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("learngene")
    result = run_cli("condense", vit_dir, "--method", "heuristic", "--num-layers", 2, "--output", output, env=env)
    assert result.returncode == 0, result.stderr
    assert "[2, 3]" in result.stdout and "Saved to" in result.stdout
    return output


def test_condense_heuristic_saves_a_loadable_learngene(learngene_dir, vit_dir):
    learngene = LearngeneModel.from_pretrained(learngene_dir)
    assert learngene.config.layer_indices == [2, 3]
    assert learngene.config.condensing_method == "heuristic"
    assert (learngene_dir / "README.md").is_file()
    ancestor = ViTForImageClassification.from_pretrained(vit_dir)
    # The learngene's first layer is the ancestor's layer 2, tensor for tensor.
    torch.testing.assert_close(
        learngene.layers[0].mlp.fc1.weight, ancestor.vit.layers[2].mlp.fc1.weight, rtol=0, atol=0
    )


def test_condense_auto_on_an_image_folder(vit_dir, image_folder, env, tmp_path):
    output = tmp_path / "auto"
    result = run_cli(
        "condense", vit_dir, "--method", "auto", "--num-layers", 2, "--dataset", image_folder,
        "--option", "epochs=1", "--option", "batch_size=4", "--device", "cpu", "--output", output, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    learngene = LearngeneModel.from_pretrained(output)
    assert learngene.config.condensing_method == "auto"
    assert len(learngene.config.layer_indices) == 2
    scores = learngene.config.condensing_scores
    assert len(scores) == 4
    # The two kept layers are the two best scored ones, as the output says.
    assert sorted(learngene.config.layer_indices) == sorted(np.argsort(scores)[-2:].tolist())
    assert "Scores per ancestry layer" in result.stdout


def test_info_describes_the_learngene(learngene_dir, env):
    result = run_cli("info", learngene_dir, "--json", env=env)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    learngene = LearngeneModel.from_pretrained(learngene_dir)
    assert info["kind"] == "learngene"
    assert info["layer_indices"] == [2, 3]
    assert info["ancestor_num_layers"] == 4
    assert info["condensing_method"] == "heuristic"
    assert info["parameters"] == learngene.num_parameters()
    assert "LLRR" in info["usage"]


def test_inherit_then_evaluate_then_info(learngene_dir, image_folder, env, tmp_path):
    output = tmp_path / "descendant"
    result = run_cli(
        "inherit", learngene_dir, "--dataset", image_folder, "--layout", "LRL", "--epochs", 2, "--batch-size", 8,
        "--no-horizontal-flip", "--device", "cpu", "--output", output, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    model = DescendantForImageClassification.from_pretrained(output).eval()
    assert model.config.layout == "LRL"
    assert model.config.num_labels == len(CLASSES)
    assert sorted(model.config.id2label.values()) == [str(c) for c in CLASSES]
    assert (output / "README.md").is_file() and (output / "learning_curves.json").is_file()
    curves = json.loads((output / "learning_curves.json").read_text())
    assert [entry["epoch"] for entry in curves] == [1, 2]

    metrics_file = tmp_path / "metrics.json"
    result = run_cli(
        "evaluate", output, "--dataset", image_folder, "--split", "test", "--device", "cpu", "--json", metrics_file,
        env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(metrics_file.read_text())
    assert "macro-F1" in result.stdout and "precision" in result.stdout
    assert report["num_examples"] == 6 * len(CLASSES)
    assert [row["support"] for row in report["per_class"]] == [6] * len(CLASSES)
    # Recompute the accuracy in this process from the saved model.
    test = load_image_dataset(str(image_folder), split="test")
    prepared = prepare_dataset(test, model.image_processor, num_channels=1)
    batch = collate_fn([prepared[i] for i in range(len(prepared))])
    with torch.no_grad():
        predictions = model(pixel_values=batch["pixel_values"]).logits.argmax(-1)
    names = test.features["label"].names
    labels = torch.tensor([model.config.label2id[names[i]] for i in batch["labels"].tolist()])
    assert report["accuracy"] == pytest.approx((predictions == labels).float().mean().item())

    result = run_cli("info", output, env=env)
    assert result.returncode == 0, result.stderr
    assert "descendant" in result.stdout and "layout: LRL" in result.stdout


def test_unknown_method(vit_dir, env, tmp_path):
    result = run_cli("condense", vit_dir, "--method", "magic", "--num-layers", 2, "--output", tmp_path / "o", env=env)
    assert result.returncode == 2
    line = error_line(result)
    assert "Unknown method 'magic'" in line and "heuristic" in line and "auto" in line


def test_missing_dataset_path(learngene_dir, env, tmp_path):
    missing = tmp_path / "no" / "such" / "folder"
    result = run_cli(
        "inherit", learngene_dir, "--dataset", missing, "--layout", "LL", "--output", tmp_path / "o", env=env
    )
    assert result.returncode == 2
    assert "does not exist" in error_line(result) and str(missing) in error_line(result)


def test_layout_that_does_not_fit(learngene_dir, image_folder, env, tmp_path):
    result = run_cli(
        "inherit", learngene_dir, "--dataset", image_folder, "--layout", "LLLR", "--output", tmp_path / "o", env=env
    )
    assert result.returncode == 2
    line = error_line(result)
    assert "has 3 'L' but the learngene has 2 layers" in line
    assert not (tmp_path / "o").exists(), "nothing should be written when the layout is refused"


def test_non_empty_output_needs_overwrite(vit_dir, env, tmp_path):
    output = tmp_path / "taken"
    output.mkdir()
    (output / "notes.txt").write_text("keep me")
    result = run_cli("condense", vit_dir, "--method", "first", "--num-layers", 1, "--output", output, env=env)
    assert result.returncode == 2
    assert "not empty" in error_line(result) and "--overwrite" in error_line(result)
    assert not (output / "config.json").exists()
    result = run_cli(
        "condense", vit_dir, "--method", "first", "--num-layers", 1, "--output", output, "--overwrite", env=env
    )
    assert result.returncode == 0, result.stderr
    assert LearngeneModel.from_pretrained(output).config.layer_indices == [0]
    assert (output / "notes.txt").read_text() == "keep me"


def test_ancestor_that_is_not_a_vit(bert_dir, env, tmp_path):
    result = run_cli(
        "condense", bert_dir, "--method", "heuristic", "--num-layers", 1, "--output", tmp_path / "o", env=env
    )
    assert result.returncode == 2
    line = error_line(result)
    assert "'bert' model, not a ViT" in line


# In-process checks of the parser and helpers (no subprocess needed).


def test_every_subcommand_help_has_an_example():
    parser = build_parser()
    subcommands = parser._subparsers._group_actions[0].choices
    assert set(subcommands) == {"condense", "inherit", "evaluate", "info", "demo"}
    for name, subparser in subcommands.items():
        text = subparser.format_help()
        assert "example" in text and f"hf-learngene {name}" in text, name


def test_verbose_shows_the_traceback(bert_dir, tmp_path, capsys):
    args = ["info", str(bert_dir)]
    assert main(args) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert main([*args, "--verbose"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "'bert' model" in err


def test_classification_report_matches_hand_computation():
    labels = [0, 0, 1, 1, 2, 2]
    predictions = [0, 1, 1, 1, 0, 2]
    report = classification_report(labels, predictions, 3)
    assert report["accuracy"] == pytest.approx(4 / 6)
    # class 0: precision 1/2, recall 1/2; class 1: 2/3, 1; class 2: 1, 1/2.
    f1 = [0.5, 2 * (2 / 3) / (2 / 3 + 1), 2 * 0.5 / 1.5]
    assert [row["f1"] for row in report["per_class"]] == pytest.approx(f1)
    assert report["f1_macro"] == pytest.approx(sum(f1) / 3)


@pytest.mark.slow
def test_demo_quick_end_to_end(env, tmp_path):
    from hf_learngene.demo import QUICK_SETTINGS, cached_ancestor

    output = tmp_path / "demo"
    result = run_cli("demo", "--quick", "--device", "cpu", "--output", output, env=env)
    assert result.returncode == 0, result.stderr
    header = next(line for line in result.stdout.splitlines() if line.startswith("arm "))
    assert "best accuracy" in header and "reached scratch's best" in header
    for arm in ("scratch", "heuristic", "auto"):
        assert any(line.startswith(arm + " ") for line in result.stdout.splitlines()), arm
    png = output / "learning_curves.png"
    with Image.open(png) as image:
        assert image.format == "PNG" and image.width > 300
    report = (output / "report.md").read_text()
    assert "![learning curves](learning_curves.png)" in report and "| scratch |" in report
    results = json.loads((output / "results.json").read_text())
    for row in results["table"]:
        curve = results["arms"][row["arm"]]["curve"]
        assert len(curve) == QUICK_SETTINGS.epochs
        assert row["best_accuracy"] == max(entry["eval_accuracy"] for entry in curve)
    learngene = LearngeneModel.from_pretrained(output / "learngene")
    assert learngene.config.condensing_method == "auto"
    assert learngene.config.layer_indices == results["arms"]["auto"]["layer_indices"]
    descendant = DescendantForImageClassification.from_pretrained(output / "descendant")
    assert descendant.config.layout == QUICK_SETTINGS.layout
    assert (output / "learngene" / "README.md").is_file() and (output / "descendant" / "README.md").is_file()
    # The ancestor is cached: asking again finds it without training.
    _, info, cached = cached_ancestor(QUICK_SETTINGS, env["HF_LEARNGENE_CACHE"], "cpu", 0)
    assert cached and info["test_accuracy"] == results["ancestor"]["test_accuracy"]
    # The output folder is now taken (checked in this process: no need for another interpreter).
    assert main(["demo", "--quick", "--output", str(output)]) == 2
