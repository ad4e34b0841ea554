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

from hf_learngene import DescendantForImageClassification, LearngeneModel, condense
from hf_learngene.cli import build_parser, describe, main
from hf_learngene.data import collate_fn, default_image_processor, load_image_dataset, prepare_dataset

SCRIPT = Path(sys.executable).with_name("hf-learngene")
CLASSES = (0, 1, 2)


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, text=True, env=env, timeout=300)


def run_many(commands: dict[str, list], env: dict[str, str]) -> dict[str, subprocess.CompletedProcess]:
    """Run independent commands at the same time: most of each run is importing torch and transformers, so running
    them side by side keeps both cores busy and the test file fast."""
    processes = {
        name: subprocess.Popen(
            [str(SCRIPT), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        for name, args in commands.items()
    }
    results = {}
    for name, process in processes.items():
        stdout, stderr = process.communicate(timeout=300)
        results[name] = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    return results


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
def learngene_dir(vit_dir, tmp_path_factory) -> Path:
    """A heuristic learngene (ancestry layers 2, 3) made in this process, as input for the subcommands."""
    path = tmp_path_factory.mktemp("learngene")
    condense(str(vit_dir), method="heuristic", num_layers=2, output_dir=path)
    return path


@pytest.fixture(scope="module")
def runs(vit_dir, bert_dir, learngene_dir, image_folder, env, tmp_path_factory) -> dict:
    """Every independent command of this file, run side by side once; the tests below check one result each."""
    out = tmp_path_factory.mktemp("outputs")
    for name in ("taken", "taken_by_user"):
        (out / name).mkdir()
        (out / name / "notes.txt").write_text("keep me")
    # A previous learngene with 1 layer (and a file that only the old learngene had), to be replaced.
    condense(str(vit_dir), method="first", num_layers=1, output_dir=out / "taken_overwrite")
    (out / "taken_overwrite" / "stale.txt").write_text("from the old learngene")
    commands = {
        "condense_overwrite": [
            "condense", vit_dir, "--method", "heuristic", "--num-layers", 2, "--output", out / "taken_overwrite",
            "--overwrite",
        ],
        "condense_auto": [
            "condense", vit_dir, "--method", "auto", "--num-layers", 2, "--dataset", image_folder,
            "--option", "epochs=1", "--option", "batch_size=4", "--device", "cpu", "--output", out / "auto",
        ],
        "info": ["info", learngene_dir, "--json"],
        "inherit": [
            "inherit", learngene_dir, "--dataset", image_folder, "--layout", "LRL", "--epochs", 2,
            "--batch-size", 8, "--no-horizontal-flip", "--device", "cpu", "--output", out / "descendant",
        ],
        "unknown_method": ["condense", vit_dir, "--method", "magic", "--num-layers", 2, "--output", out / "o1"],
        "missing_dataset": [
            "inherit", learngene_dir, "--dataset", out / "no" / "such" / "folder", "--layout", "LL",
            "--output", out / "o2",
        ],
        "bad_layout": [
            "inherit", learngene_dir, "--dataset", image_folder, "--layout", "LLLR", "--output", out / "o3",
        ],
        "not_empty": ["condense", vit_dir, "--method", "first", "--num-layers", 1, "--output", out / "taken"],
        "overwrite_user_folder": [
            "condense", vit_dir, "--method", "first", "--num-layers", 1, "--output", out / "taken_by_user",
            "--overwrite",
        ],
        "overwrite_ancestor": [
            "condense", vit_dir, "--method", "first", "--num-layers", 1, "--output", vit_dir, "--overwrite",
        ],
        "not_a_vit": ["condense", bert_dir, "--method", "heuristic", "--num-layers", 1, "--output", out / "o4"],
    }  # fmt: skip
    return {"out": out, **run_many(commands, env)}


def test_condense_saves_a_loadable_learngene_with_overwrite(runs, vit_dir):
    result, output = runs["condense_overwrite"], runs["out"] / "taken_overwrite"
    assert result.returncode == 0, result.stderr
    assert "[2, 3]" in result.stdout and "Saved to" in result.stdout
    learngene = LearngeneModel.from_pretrained(output)
    assert learngene.config.layer_indices == [2, 3]
    assert learngene.config.condensing_method == "heuristic"
    assert (output / "README.md").is_file()
    # The previous learngene was replaced as a whole: nothing of it survives.
    assert not (output / "stale.txt").exists()
    ancestor = ViTForImageClassification.from_pretrained(vit_dir)
    # The learngene's first layer is the ancestor's layer 2, tensor for tensor.
    torch.testing.assert_close(
        learngene.layers[0].mlp.fc1.weight, ancestor.vit.layers[2].mlp.fc1.weight, rtol=0, atol=0
    )


def test_condense_auto_on_an_image_folder(runs):
    result = runs["condense_auto"]
    assert result.returncode == 0, result.stderr
    learngene = LearngeneModel.from_pretrained(runs["out"] / "auto")
    assert learngene.config.condensing_method == "auto"
    scores = learngene.config.condensing_scores
    assert len(scores) == 4
    # The two kept layers are the two best scored ones.
    assert learngene.config.layer_indices == sorted(np.argsort(scores)[-2:].tolist())
    assert "Scores per ancestry layer" in result.stdout


def test_info_describes_the_learngene(runs, learngene_dir):
    result = runs["info"]
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    learngene = LearngeneModel.from_pretrained(learngene_dir)
    assert info["kind"] == "learngene"
    assert info["layer_indices"] == [2, 3]
    assert info["ancestor_num_layers"] == 4
    assert info["condensing_method"] == "heuristic"
    assert info["parameters"] == learngene.num_parameters()
    assert "LLRR" in info["usage"]


def test_inherit_then_evaluate(runs, image_folder, env, tmp_path):
    result, output = runs["inherit"], runs["out"] / "descendant"
    assert result.returncode == 0, result.stderr
    model = DescendantForImageClassification.from_pretrained(output).eval()
    assert model.config.layout == "LRL"
    assert model.config.num_labels == len(CLASSES)
    assert sorted(model.config.id2label.values()) == [str(c) for c in CLASSES]
    assert (output / "README.md").is_file() and (output / "learning_curves.json").is_file()
    curves = json.loads((output / "learning_curves.json").read_text())
    assert [entry["epoch"] for entry in curves] == [1, 2]
    info = describe(str(output))
    assert info["kind"] == "descendant" and info["layout"] == "LRL"

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


def test_unknown_method(runs):
    result = runs["unknown_method"]
    assert result.returncode == 2
    line = error_line(result)
    assert "Unknown method 'magic'" in line and "heuristic" in line and "auto" in line


def test_missing_dataset_path(runs):
    result = runs["missing_dataset"]
    assert result.returncode == 2
    line = error_line(result)
    assert "does not exist" in line and str(runs["out"] / "no" / "such" / "folder") in line


def test_layout_that_does_not_fit(runs):
    result = runs["bad_layout"]
    assert result.returncode == 2
    assert "has 3 'L' but the learngene has 2 layers" in error_line(result)
    assert not (runs["out"] / "o3").exists(), "nothing is written when the layout is refused"


def test_non_empty_output_needs_overwrite(runs):
    result, output = runs["not_empty"], runs["out"] / "taken"
    assert result.returncode == 2
    assert "not empty" in error_line(result) and "--overwrite" in error_line(result)
    assert sorted(p.name for p in output.iterdir()) == ["notes.txt"]


def test_overwrite_replaces_only_a_previous_learngene(runs, vit_dir):
    for name in ("overwrite_user_folder", "overwrite_ancestor"):
        result = runs[name]
        assert result.returncode == 2, result.stdout
        assert "may only replace a previous learngene" in error_line(result)
    assert sorted(p.name for p in (runs["out"] / "taken_by_user").iterdir()) == ["notes.txt"]
    assert ViTForImageClassification.from_pretrained(vit_dir).config.num_hidden_layers == 4  # the ancestor is intact


def test_ancestor_that_is_not_a_vit(runs):
    result = runs["not_a_vit"]
    assert result.returncode == 2
    assert "'bert' model, not a ViT" in error_line(result)


def test_condense_pushes_to_the_hub(local_hub, vit_dir, tmp_path):
    # local_hub points HF_ENDPOINT (and a dummy token) at a local server for this process and its children.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    output = tmp_path / "pushed"
    result = run_cli(
        "condense", vit_dir, "--method", "first", "--num-layers", 2, "--output", output, "--push-to-hub",
        "someone/tiny-learngene", env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    files = set(local_hub.list_files("someone/tiny-learngene"))
    assert {"config.json", "model.safetensors", "README.md", "preprocessor_config.json"} <= files
    assert b"someone/tiny-learngene" in local_hub.read_file("someone/tiny-learngene", "README.md")
    pulled = LearngeneModel.from_pretrained("someone/tiny-learngene")
    saved = LearngeneModel.from_pretrained(output)
    assert pulled.config.layer_indices == [0, 1]
    for (name, a), (_, b) in zip(pulled.state_dict().items(), saved.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


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


@pytest.mark.slow
def test_demo_quick_end_to_end(env, tmp_path):
    from hf_learngene.demo import QUICK_SETTINGS, cached_ancestor

    output = tmp_path / "demo"
    result = run_cli("demo", "--quick", "--device", "cpu", "--output", output, env=env)
    assert result.returncode == 0, result.stderr
    header = next(line for line in result.stdout.splitlines() if line.startswith("arm "))
    assert "best accuracy" in header and "reached scratch's best" in header
    for arm in ("scratch", "heuristic", "first", "auto"):
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
    assert cached and info["heldout_accuracy"] == results["ancestor"]["heldout_accuracy"]
    # The output folder is now taken (checked in this process: no need for another interpreter).
    assert main(["demo", "--quick", "--output", str(output)]) == 2


def test_offline_splits_do_not_depend_on_the_training_seed():
    # `inherit --seed 42` and `evaluate` (seed 0) must see the same held-out images.
    from hf_learngene.cli import load_dataset_arg

    test = load_dataset_arg("offline:digits", "test", [0, 1, 2])
    again = load_dataset_arg("offline:digits", "test", [0, 1, 2])
    train = load_dataset_arg("offline:digits", "train", [0, 1, 2])
    pixels = {np.asarray(row["image"]).tobytes() for row in test}
    assert pixels == {np.asarray(row["image"]).tobytes() for row in again}
    assert not pixels & {np.asarray(row["image"]).tobytes() for row in train}
