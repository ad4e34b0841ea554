"""`hf-learngene` through the real console script (subprocesses, side by side) and, for errors that need no training,
in this process; on tiny models and real digits images."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from sklearn.datasets import load_digits
from transformers import BertConfig, BertModel, ViTConfig, ViTForImageClassification

from hf_learngene import DescendantForImageClassification, LearngeneModel, condense
from hf_learngene.cli import build_parser, describe, main
from hf_learngene.data import collate_fn, default_image_processor, load_image_dataset, prepare_dataset

BIN = Path(sys.executable).parent
SCRIPT = BIN / "hf-learngene"
ACCELERATE = BIN / "accelerate"
PROBE = Path(__file__).with_name("cli_probe.py")
CONFIGS = Path(__file__).resolve().parents[1] / "examples" / "accelerate" / "configs"
CLASSES = (0, 1, 2)
# Shared by the reference run, the killed-and-resumed run and the distributed run (24 training images, 3 x 8 per epoch).
TRAIN = ["--layout", "LRL", "--epochs", 2, "--batch-size", 8, "--no-horizontal-flip", "--device", "cpu"]


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, text=True, env=env, timeout=300)


def run_many(commands: dict[str, list], env: dict[str, str]) -> dict[str, subprocess.CompletedProcess]:
    """Run independent commands at the same time: most of each run is importing torch and transformers, so running
    them side by side keeps both cores busy and the test file fast. A command is `hf-learngene`'s arguments, or a
    full command line when its first item is a `Path` to a program."""
    processes = {
        name: subprocess.Popen(
            [*map(str, args)] if isinstance(args[0], Path) else [str(SCRIPT), *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )  # fmt: skip
        for name, args in commands.items()
    }
    results = {}
    for name, process in processes.items():
        stdout, stderr = process.communicate(timeout=600)
        results[name] = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    return results


def error_line(result: subprocess.CompletedProcess) -> str:
    """The error line: the last line of stderr, which must carry no traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, "expected an error message on stderr"
    return lines[-1]


def run_main(args: list, capsys) -> subprocess.CompletedProcess:
    """`main()` in this process (for errors found before any training), as a CompletedProcess."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as exit:  # argparse: usage errors
        code = exit.code
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, captured.out, captured.err)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _digit_png(folder: Path, index: int, digits) -> None:
    image = np.round(digits.images[index] * (255 / 16)).astype(np.uint8)
    Image.fromarray(image).save(folder / f"{index}.png")


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
    for label in CLASSES:
        rows = np.flatnonzero(digits.target == label)
        for split, chosen in (("train", rows[:8]), ("test", rows[8:14])):
            (root / split / str(label)).mkdir(parents=True)
            for i in chosen:
                _digit_png(root / split / str(label), i, digits)
    return root


@pytest.fixture(scope="module")
def train_only_folder(tmp_path_factory) -> Path:
    """Digits 0-2, 12 each, with a train split only (no held-out images)."""
    root = tmp_path_factory.mktemp("train_only")
    digits = load_digits()
    for label in CLASSES:
        (root / "train" / str(label)).mkdir(parents=True)
        for i in np.flatnonzero(digits.target == label)[20:32]:
            _digit_png(root / "train" / str(label), i, digits)
    return root


@pytest.fixture(scope="module")
def corrupt_folder(image_folder, tmp_path_factory) -> Path:
    """The image folder with one truncated PNG among the training images (PIL's error does not name it)."""
    root = tmp_path_factory.mktemp("corrupt")
    for path in image_folder.rglob("*.png"):
        target = root / path.relative_to(image_folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    good = next((root / "train" / "1").iterdir()).read_bytes()
    (root / "train" / "1" / "truncated.png").write_bytes(good[: len(good) // 2])
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
def runs(vit_dir, learngene_dir, image_folder, train_only_folder, corrupt_folder, env, tmp_path_factory) -> dict:
    """Every independent command of this file that needs a process of its own, run side by side once; the tests below
    check one result each."""
    out = tmp_path_factory.mktemp("outputs")
    # A previous learngene with 1 layer (and a file that only the old learngene had), to be replaced.
    condense(str(vit_dir), method="first", num_layers=1, output_dir=out / "taken_overwrite")
    (out / "taken_overwrite" / "stale.txt").write_text("from the old learngene")
    (out / "probe").mkdir()
    tensorboard = ["--report-to", "tensorboard"] if _has_tensorboard() else []
    launch = [ACCELERATE, "launch", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    commands = {
        "condense_overwrite": [
            "condense", vit_dir, "--method", "heuristic", "--num-layers", 2, "--output", out / "taken_overwrite",
            "--overwrite", "--json",
        ],
        "condense_auto": [
            "condense", vit_dir, "--method", "auto", "--num-layers", 2, "--dataset", image_folder,
            "--option", "epochs=1", "--option", "batch_size=4", "--device", "cpu", "--output", out / "auto",
        ],
        "condense_corrupt": [
            "condense", vit_dir, "--method", "cka", "--num-layers", 2, "--dataset", corrupt_folder, "--device", "cpu",
            "--output", out / "condense_failed",
        ],
        "inherit": ["inherit", learngene_dir, "--dataset", image_folder, *TRAIN, "--output", out / "descendant",
                    "--json", *tensorboard],
        "inherit_test_size": [
            "inherit", learngene_dir, "--dataset", train_only_folder, "--test-size", 0.25, "--layout", "LRL",
            "--epochs", 1, "--device", "cpu", "--output", out / "held_out", "--json",
        ],
        "inherit_knobs": [
            "inherit", learngene_dir, "--dataset", image_folder, "--layout", "LLR", "--epochs", 1, "--batch-size", 4,
            "--freeze-inherited-steps", "all", "--gradient-accumulation-steps", 2, "--mixed-precision", "bf16",
            "--weight-decay", 0.1, "--inherited-learning-rate", 1e-3, "--device", "cpu", "--output", out / "knobs",
            "--quiet",
        ],
        "inherit_corrupt": ["inherit", learngene_dir, "--dataset", corrupt_folder, *TRAIN, "--output", out / "failed"],
        "inherit_narrow_deep": [
            "inherit", learngene_dir, "--dataset", image_folder, "--hidden-size", 8, "--num-attention-heads", 1,
            "--intermediate-size", 16, "--width-selection", "heads", "--depth", 4, "--new-layer-init", "identity",
            "--epochs", 1, "--batch-size", 8, "--device", "cpu", "--output", out / "narrow_deep", "--quiet",
        ],
        "distributed": [
            *launch, "--multi_gpu", "--num_processes", 2, "--main_process_port", _free_port(), PROBE, "inherit",
            learngene_dir, "--dataset", image_folder, *TRAIN, "--batch-size", 4, "--output", out / "distributed",
            "--json",
        ],
        "one_process_launched": [
            *launch, "--cpu", "--num_processes", 2, "-m", "hf_learngene.cli", "inherit", learngene_dir, "--dataset",
            image_folder, *TRAIN, "--epochs", 1, "--output", out / "simple_launcher", "--quiet", "--json",
        ],
        "fsdp_on_cpu": [
            *launch, "--config_file", CONFIGS / "fsdp.yaml", "--num_processes", 2, "--main_process_port",
            _free_port(), "-m", "hf_learngene.cli", "inherit", learngene_dir, "--dataset", image_folder, *TRAIN,
            "--output", out / "fsdp",
        ],
    }  # fmt: skip
    return {"out": out, **run_many(commands, {**env, "PROBE_DIR": str(out / "probe")})}


def _has_tensorboard() -> bool:
    try:
        import tensorboardX  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------------------------------------------------------------
# condense


def test_condense_saves_a_loadable_learngene_with_overwrite(runs, vit_dir):
    result, output = runs["condense_overwrite"], runs["out"] / "taken_overwrite"
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)  # --json: stdout is exactly one JSON document
    assert summary["layer_indices"] == [2, 3] and summary["output"] == str(output)
    assert "Saved to" in result.stderr  # the human-readable text moved to stderr
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


def test_unreadable_images_are_named_and_leave_no_folder(runs, corrupt_folder):
    for name, output in (("condense_corrupt", "condense_failed"), ("inherit_corrupt", "failed")):
        result = runs[name]
        assert result.returncode == 2, result.stderr
        line = error_line(result)
        assert str(corrupt_folder / "train" / "1" / "truncated.png") in line, line
        assert not (runs["out"] / output).exists() and not (runs["out"] / f"{output}.partial").exists()


# ---------------------------------------------------------------------------------------------------------------------
# inherit, evaluate


def test_inherit_then_evaluate(runs, image_folder, env, tmp_path):
    result, output = runs["inherit"], runs["out"] / "descendant"
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["world_size"] == 1 and summary["num_train"] == 24 and summary["num_eval"] == 18
    assert summary["report"]["num_examples"] == 18 and len(summary["report"]["confusion_matrix"]) == 3
    assert {"eval_accuracy", "eval_f1", "eval_precision", "eval_recall"} <= set(summary["metrics"])
    model = DescendantForImageClassification.from_pretrained(output).eval()
    assert model.config.layout == "LRL"
    assert model.config.num_labels == len(CLASSES)
    assert sorted(model.config.id2label.values()) == [str(c) for c in CLASSES]
    assert (output / "README.md").is_file() and (output / "learning_curves.json").is_file()
    assert (output / "classification_report.json").is_file()
    assert not list(output.glob("checkpoint-*")) and not (runs["out"] / "descendant.partial").exists()
    card = (output / "README.md").read_text()
    assert "![Learning curves](learning_curves.png)" in card and "| eval_precision |" in card
    curves = json.loads((output / "learning_curves.json").read_text())
    assert [entry["epoch"] for entry in curves] == [1, 2]
    info = describe(str(output))
    assert info["kind"] == "descendant" and info["layout"] == "LRL"
    if _has_tensorboard():
        assert list(output.glob("runs/*/events.out.tfevents.*")), "--report-to tensorboard wrote no events"

    metrics_file = tmp_path / "metrics.json"
    result = run_cli("evaluate", output, "--dataset", image_folder, "--device", "cpu", "--json", metrics_file, env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(metrics_file.read_text())
    assert "macro-F1" in result.stdout and "macro precision" in result.stdout and "confusion matrix" in result.stdout
    assert report["split"] == "test" and report["num_examples"] == 6 * len(CLASSES)
    assert [row["support"] for row in report["per_class"]] == [6] * len(CLASSES)
    assert sum(map(sum, report["confusion_matrix"])) == 18
    # The final evaluation inherit made is the evaluation of the saved model on the same images.
    assert report["confusion_matrix"] == summary["report"]["confusion_matrix"]
    # Recompute the accuracy in this process from the saved model.
    test = load_image_dataset(str(image_folder), split="test")
    prepared = prepare_dataset(test, model.image_processor, num_channels=1)
    batch = collate_fn([prepared[i] for i in range(len(prepared))])
    with torch.no_grad():
        predictions = model(pixel_values=batch["pixel_values"]).logits.argmax(-1)
    names = test.features["label"].names
    labels = torch.tensor([model.config.label2id[names[i]] for i in batch["labels"].tolist()])
    assert report["accuracy"] == pytest.approx((predictions == labels).float().mean().item())


def test_test_size_holds_out_the_images_evaluate_scores(runs, train_only_folder, capsys):
    result = runs["inherit_test_size"]
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["num_eval"] == 9 and summary["num_train"] == 27  # 25% of 36, stratified
    output = runs["out"] / "held_out"
    # Without --test-size, evaluate refuses to score the training images of a train-only dataset.
    refused = run_main(["evaluate", output, "--dataset", train_only_folder, "--device", "cpu"], capsys)
    assert refused.returncode == 2
    assert "--test-size" in error_line(refused) and "--split" in error_line(refused)
    # With the same --test-size it scores exactly the images inherit held out.
    scored = run_main(
        ["evaluate", output, "--dataset", train_only_folder, "--test-size", 0.25, "--device", "cpu", "--json"], capsys
    )
    assert scored.returncode == 0, scored.stderr
    report = json.loads(scored.stdout)
    assert report["num_examples"] == 9 and report["confusion_matrix"] == summary["report"]["confusion_matrix"]


def test_inherit_exposes_the_training_knobs(runs, learngene_dir):
    result, output = runs["inherit_knobs"], runs["out"] / "knobs"
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # --quiet
    assert "it/s" not in result.stderr  # no progress bars either
    card = (output / "README.md").read_text()
    for row in ("| Inherited layers frozen | throughout |", "| Weight decay | 0.1000 |",
                "| Gradient accumulation steps | 2 |", "| Mixed precision | bf16 |", "0.0005 / 0.001"):  # fmt: skip
        assert row in card, row
    # Frozen throughout: the inherited layers are the learngene's, tensor for tensor.
    learngene = LearngeneModel.from_pretrained(learngene_dir).state_dict()
    descendant = load_file(output / "model.safetensors")
    for name, tensor in learngene.items():
        assert torch.equal(descendant[f"learngene.{name}"], tensor), name


def test_inherit_grows_narrower_and_deeper_descendants(runs, learngene_dir):
    result = runs["inherit_narrow_deep"]
    assert result.returncode == 0, result.stderr[-2000:]
    model = DescendantForImageClassification.from_pretrained(runs["out"] / "narrow_deep")
    config = model.config
    assert (config.hidden_size, config.num_attention_heads, config.intermediate_size) == (8, 1, 16)
    assert config.width_selection == "heads" and config.layout == "LLRR" and config.new_layer_init == "identity"
    info = describe(str(runs["out"] / "narrow_deep"))
    assert info["width_selection"] == "heads" and info["width_from"]["hidden_size"] == 16 and info["depth"] == 4
    card = (runs["out"] / "narrow_deep" / "README.md").read_text()
    assert "identity" in card


def test_depth_and_layout_flags_are_checked(learngene_dir, image_folder, tmp_path, capsys):
    for flags, message in (
        (["--depth", 1], "--depth 1 is below the learngene's 2 layers"),
        (["--depth", 3, "--layout", "LLR"], "not --layout and --depth"),
        (["--width-selection", "heads"], "give the sizes too"),
    ):
        code = main(["inherit", str(learngene_dir), "--dataset", str(image_folder), *map(str, flags),
                     "--output", str(tmp_path / "x"), "--device", "cpu"])  # fmt: skip
        assert code == 2 and message in capsys.readouterr().err
        assert not (tmp_path / "x").exists()


def test_training_uses_every_launched_process(runs):
    """`accelerate launch` with 2 CPU processes (gloo): world size 2, disjoint shards, identical replicas."""
    result = runs["distributed"]
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["world_size"] == 2
    probe = runs["out"] / "probe"
    rows = [json.loads((probe / f"rows_rank{rank}.json").read_text()) for rank in (0, 1)]
    for epoch in (0, 1):
        seen = [[index for e, index in rank_rows if e == epoch] for rank_rows in rows]
        assert len(seen[0]) == len(seen[1]) == 12  # 24 images, 3 steps of 2 x 4 per epoch
        assert set(seen[0]).isdisjoint(seen[1]) and set(seen[0]) | set(seen[1]) == set(range(24))
    weights = [load_file(probe / f"weights_rank{rank}.safetensors") for rank in (0, 1)]
    saved = load_file(runs["out"] / "distributed" / "model.safetensors")
    for name, tensor in saved.items():
        assert torch.equal(weights[0][name], weights[1][name]) and torch.equal(weights[0][name], tensor), name
    assert "| Processes | 2 |" in (runs["out"] / "distributed" / "README.md").read_text()


def test_a_launch_that_starts_fewer_processes_warns(runs):
    # accelerate's simple launcher starts ONE process for `--cpu --num_processes 2`.
    result = runs["one_process_launched"]
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout)["world_size"] == 1
    assert "WARNING: the launcher asked for several processes but started only this one" in result.stderr


def test_an_fsdp_config_on_the_cpu_is_refused(runs):
    result = runs["fsdp_on_cpu"]
    assert result.returncode != 0
    assert "asks for FSDP but the run is on the CPU" in result.stderr, result.stderr[-3000:]
    assert not re.search(r'File ".*hf_learngene', result.stderr), "a traceback through hf_learngene"
    assert not (runs["out"] / "fsdp").exists() and not (runs["out"] / "fsdp.partial").exists()


@pytest.mark.slow
def test_resume_after_a_kill_mid_checkpoint(runs, learngene_dir, image_folder, env, tmp_path):
    """A run killed (SIGKILL) while writing its last checkpoint resumes from the newest complete one and ends with the
    weights of the uninterrupted run, bit for bit."""
    output = tmp_path / "killed"
    probe_env = {**env, "PROBE_DIR": str(tmp_path), "PROBE_PAUSE_IN": "checkpoint-6"}
    command = [sys.executable, PROBE, "inherit", learngene_dir, "--dataset", image_folder, *TRAIN, "--output", output]
    process = subprocess.Popen(
        [str(c) for c in command], env=probe_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300
    while not (tmp_path / "PAUSED").exists():
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before the checkpoint"
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    work = tmp_path / "killed.partial"
    assert (work / "checkpoint-6" / "model.safetensors").is_file()  # written half: weights, no trainer state
    assert not (work / "checkpoint-6" / "trainer_state.json").exists() and not output.exists()

    result = run_cli(
        "inherit", learngene_dir, "--dataset", image_folder, *TRAIN, "--output", output, "--resume-from-checkpoint",
        "latest", env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "WARNING: Skipping incomplete checkpoint(s) ['checkpoint-6']" in result.stderr
    assert "resuming from checkpoint-3" in result.stderr
    reference = load_file(runs["out"] / "descendant" / "model.safetensors")
    resumed = load_file(output / "model.safetensors")
    for name, tensor in reference.items():
        assert torch.equal(resumed[name], tensor), name
    assert [row["epoch"] for row in json.loads((output / "learning_curves.json").read_text())] == [1, 2]


# ---------------------------------------------------------------------------------------------------------------------
# Errors found before any work, in this process


def test_usage_errors_are_one_line_with_exit_code_2(learngene_dir, image_folder, tmp_path, capsys):
    base = ["inherit", learngene_dir, "--dataset", image_folder, "--layout", "LRL", "--output", tmp_path / "o"]
    cases = {
        ("--epochs", "-1"): "argument --epochs: must be > 0",
        ("--epochs", "0"): "argument --epochs: must be > 0",
        ("--epochs", "1e99"): "argument --epochs: must be > 0 and <= 10000",
        ("--epochs", "nan"): "argument --epochs: must be a finite number",
        ("--batch-size", "0"): "argument --batch-size: must be between 1 and 65,536",
        ("--batch-size", "99999999999"): "argument --batch-size: must be between 1 and 65,536",
        ("--seed", "99999999999999999999999"): "argument --seed: must be between 0 and 4,294,967,295",
        ("--learning-rate", "inf"): "argument --learning-rate/--lr: must be a finite number",
        ("--test-size", "1.5"): "argument --test-size: must be a fraction in (0, 1)",
    }
    for extra, message in cases.items():
        result = run_main([*base, *extra], capsys)
        assert result.returncode == 2, extra
        assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr
    for command in (["inherit", learngene_dir, "--output", tmp_path / "o"], ["evaluate", learngene_dir]):
        result = run_main(command, capsys)
        assert result.returncode == 2 and "the following arguments are required: --dataset" in result.stderr
    assert not (tmp_path / "o").exists()


def test_input_errors_exit_2(vit_dir, bert_dir, learngene_dir, image_folder, tmp_path, capsys):
    out = tmp_path
    for name in ("taken", "taken_by_user"):
        (out / name).mkdir()
        (out / name / "notes.txt").write_text("keep me")
    cases = {
        "Unknown method 'magic'": ["condense", vit_dir, "--method", "magic", "--num-layers", 2, "--output", out / "o1"],
        "does not exist": [
            "inherit", learngene_dir, "--dataset", out / "no" / "such", "--layout", "LL", "--output", out / "o2",
        ],
        "has 3 'L' but the learngene has 2 layers": [
            "inherit", learngene_dir, "--dataset", image_folder, "--layout", "LLLR", "--output", out / "o3",
        ],
        "not empty": ["condense", vit_dir, "--method", "first", "--num-layers", 1, "--output", out / "taken"],
        "may only replace a previous learngene": [
            "condense", vit_dir, "--method", "first", "--num-layers", 1, "--output", out / "taken_by_user",
            "--overwrite",
        ],
        "'bert' model, not a ViT": ["condense", bert_dir, "--method", "heuristic", "--num-layers", 1, "--output",
                                    out / "o4"],
        "no CUDA GPU": ["inherit", learngene_dir, "--dataset", image_folder, "--layout", "LRL", "--device", "cuda",
                        "--output", out / "o5"],
        "holds an interrupted run": [
            "inherit", learngene_dir, "--dataset", image_folder, "--layout", "LRL", "--output", out / "interrupted",
        ],
    }  # fmt: skip
    (out / "interrupted.partial" / "checkpoint-3").mkdir(parents=True)
    for broken in ("bad_weights", "bad_config"):  # unusable input files
        shutil.copytree(learngene_dir, out / broken)
    (out / "bad_weights" / "model.safetensors").write_bytes(b"not safetensors")
    (out / "bad_config" / "config.json").write_text("{not json")
    cases["bad_weights"] = ["inherit", out / "bad_weights", "--dataset", image_folder, "--layout", "LRL", "--device",
                            "cpu", "--output", out / "o6"]  # fmt: skip
    cases["bad_config"] = ["info", out / "bad_config"]
    for message, command in cases.items():
        result = run_main(command, capsys)
        assert result.returncode == 2, (message, result.stderr)
        assert message.startswith("bad_") or message in error_line(result), (message, result.stderr)
    assert sorted(p.name for p in (out / "taken_by_user").iterdir()) == ["notes.txt"]
    assert not any((out / name).exists() for name in ("o1", "o2", "o3", "o4", "o5", "o6", "interrupted"))


def test_the_console_script_exits_2_without_a_traceback(vit_dir, learngene_dir, image_folder, env, tmp_path):
    results = run_many(
        {
            "onto_the_ancestor": [
                "condense",
                vit_dir,
                "--method",
                "first",
                "--num-layers",
                1,
                "--output",
                vit_dir,
                "--overwrite",
            ],
            "bad_value": [
                "inherit",
                learngene_dir,
                "--dataset",
                image_folder,
                "--layout",
                "LRL",
                "--output",
                tmp_path / "o",
                "--epochs",
                "-1",
            ],
        },  # fmt: skip
        env,
    )
    assert results["onto_the_ancestor"].returncode == 2
    assert "may only replace a previous learngene" in error_line(results["onto_the_ancestor"])
    assert results["bad_value"].returncode == 2 and len(results["bad_value"].stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
    assert ViTForImageClassification.from_pretrained(vit_dir).config.num_hidden_layers == 4  # the ancestor is intact


def test_missing_hub_repos_exit_2_and_leave_nothing(local_hub, image_folder, tmp_path, capsys):
    commands = {
        "info": ["info", "org/no-such-model"],
        "inherit": ["inherit", "org/no-such-learngene", "--dataset", image_folder, "--layout", "LL",
                    "--output", tmp_path / "d"],
        "condense": ["condense", "org/no-such-vit", "--method", "first", "--num-layers", 1, "--output", tmp_path / "l"],
        "evaluate": ["evaluate", "org/no-such-descendant", "--dataset", image_folder],
    }  # fmt: skip
    for name, command in commands.items():
        result = run_main(command, capsys)
        assert result.returncode == 2, (name, result.stderr)
        assert "no-such" in error_line(result), name
    assert not list(tmp_path.iterdir())


def test_quiet_and_json_on_every_subcommand(learngene_dir, capsys):
    parser = build_parser()
    for name, subparser in parser._subparsers._group_actions[0].choices.items():
        options = {option for action in subparser._actions for option in action.option_strings}
        assert {"--quiet", "--json", "--verbose"} <= options, name
    result = run_main(["info", learngene_dir, "--quiet"], capsys)
    assert result.returncode == 0 and result.stdout == ""
    result = run_main(["info", learngene_dir, "--json"], capsys)
    info = json.loads(result.stdout)
    learngene = LearngeneModel.from_pretrained(learngene_dir)
    assert info["kind"] == "learngene" and info["layer_indices"] == [2, 3] and info["ancestor_num_layers"] == 4
    assert info["condensing_method"] == "heuristic" and info["parameters"] == learngene.num_parameters()
    assert "LLRR" in info["usage"]


def test_help_shows_defaults_and_the_training_flags():
    subcommands = build_parser()._subparsers._group_actions[0].choices
    assert set(subcommands) == {"condense", "inherit", "evaluate", "info", "demo"}
    for name, subparser in subcommands.items():
        text = subparser.format_help()
        assert "example" in text and f"hf-learngene {name}" in text, name
    text = " ".join(subcommands["inherit"].format_help().split())
    wanted = [f"(default: {value})" for value in ("3.0", "0.0005", "32", "42", "0.05")] + [
        "--weight-decay", "--inherited-learning-rate", "--freeze-inherited-steps", "--mixed-precision",
        "--gradient-accumulation-steps", "--resume-from-checkpoint", "--test-size", "--report-to",
    ]  # fmt: skip
    for expected in wanted:
        assert expected in text, expected
    assert "(default: 64)" in " ".join(subcommands["evaluate"].format_help().split())
    condense_help = " ".join(subcommands["condense"].format_help().split())
    from hf_learngene import CONDENSING_METHODS
    from hf_learngene.condensing import DEFAULT_METHOD

    assert f"(default: {DEFAULT_METHOD}," in condense_help
    for method in CONDENSING_METHODS:  # the help lists every method
        assert method in condense_help, method


def test_verbose_shows_the_traceback(bert_dir, capsys):
    args = ["info", str(bert_dir)]
    assert main(args) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert main([*args, "--verbose"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "'bert' model" in err


# ---------------------------------------------------------------------------------------------------------------------
# The Hub


def test_pushes_print_the_real_hub_url_and_the_card_shows_the_curves(local_hub, vit_dir, learngene_dir, image_folder,
                                                                     tmp_path):  # fmt: skip
    # local_hub points HF_ENDPOINT (and a dummy token) at a local server for this process and its children.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    results = run_many(
        {
            "condense": [
                "condense",
                vit_dir,
                "--method",
                "first",
                "--num-layers",
                2,
                "--output",
                tmp_path / "pushed",
                "--push-to-hub",
                "someone/tiny-learngene",
            ],
            "inherit": [
                "inherit",
                learngene_dir,
                "--dataset",
                image_folder,
                *TRAIN,
                "--epochs",
                1,
                "--output",
                tmp_path / "descendant",
                "--push-to-hub",
                "someone/tiny-descendant",
            ],
        },  # fmt: skip
        env,
    )
    for name, repo in (("condense", "someone/tiny-learngene"), ("inherit", "someone/tiny-descendant")):
        assert results[name].returncode == 0, results[name].stderr
        assert f"Pushed to {local_hub.url}/{repo}" in results[name].stdout, results[name].stdout
        assert "huggingface.co" not in results[name].stdout
    files = set(local_hub.list_files("someone/tiny-learngene"))
    assert {"config.json", "model.safetensors", "README.md", "preprocessor_config.json"} <= files
    assert b"someone/tiny-learngene" in local_hub.read_file("someone/tiny-learngene", "README.md")
    pulled = LearngeneModel.from_pretrained("someone/tiny-learngene")
    saved = LearngeneModel.from_pretrained(tmp_path / "pushed")
    assert pulled.config.layer_indices == [0, 1]
    for (name, a), (_, b) in zip(pulled.state_dict().items(), saved.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    files = set(local_hub.list_files("someone/tiny-descendant"))
    assert {"model.safetensors", "README.md", "learning_curves.png", "classification_report.json"} <= files
    assert not any(name.startswith("checkpoint-") for name in files)
    card = local_hub.read_file("someone/tiny-descendant", "README.md").decode()
    assert "![Learning curves](learning_curves.png)" in card and "someone/tiny-descendant" in card


# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_demo_quick_end_to_end(env, tmp_path):
    from hf_learngene.demo import QUICK_SETTINGS, cached_ancestor

    output = tmp_path / "demo"
    result = run_cli("demo", "--quick", "--device", "cpu", "--output", output, "--json", env=env)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)  # --json: the table on stdout, the text on stderr
    assert summary["output"] == str(output) and {row["arm"] for row in summary["table"]} >= {"scratch", "auto"}
    header = next(line for line in result.stderr.splitlines() if line.startswith("arm "))
    assert "best accuracy" in header and "reached scratch's best" in header
    for arm in ("scratch", "heuristic", "first", "auto"):
        assert any(line.startswith(arm + " ") for line in result.stderr.splitlines()), arm
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
    from hf_learngene.condensing import DEFAULT_METHOD
    from hf_learngene.demo.settings import PRIMARY_METHOD

    assert PRIMARY_METHOD == DEFAULT_METHOD  # the demo's own learngene uses the default method
    learngene = LearngeneModel.from_pretrained(output / "learngene")
    assert learngene.config.condensing_method == DEFAULT_METHOD
    assert learngene.config.layer_indices == results["arms"][DEFAULT_METHOD]["layer_indices"]
    auto = LearngeneModel.from_pretrained(output / "learngene-auto")
    assert (
        auto.config.condensing_method == "auto"
        and auto.config.layer_indices == results["arms"]["auto"]["layer_indices"]
    )
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


def test_info_describes_every_family_without_loading_weights(tmp_path, capsys):
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(0)
    config = Dinov2Config(hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=32,
                          image_size=8, patch_size=4)  # fmt: skip
    Dinov2Model(config).save_pretrained(tmp_path / "dinov2")
    assert main(["info", str(tmp_path / "dinov2"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["kind"], info["family"], info["num_layers"]) == ("ancestor", "dinov2", 3)
    condense(str(tmp_path / "dinov2"), method="first", num_layers=2, output_dir=tmp_path / "lg")
    assert main(["info", str(tmp_path / "lg")]) == 0
    text = capsys.readouterr().out
    assert "ancestor family: DINOv2" in text and "layer scale" in text


def test_a_single_class_cannot_train_a_classifier(learngene_dir, tmp_path, capsys):
    code = main(["inherit", str(learngene_dir), "--dataset", "offline:digits", "--classes", "3", "--layout", "LL",
                 "--output", str(tmp_path / "one"), "--device", "cpu"])  # fmt: skip
    assert code == 2 and "single class" in capsys.readouterr().err
    assert not (tmp_path / "one").exists()
