"""The Accelerate example loop (examples/accelerate/train_descendant_no_trainer.py): two CPU processes under
`accelerate launch` (gloo), a run killed with SIGKILL while writing a checkpoint and resumed, the flags it shares with
`hf-learngene inherit`, and the launch configs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hf_learngene import DescendantForImageClassification, LearngeneConfig, LearngeneModel
from hf_learngene.cli import build_parser, load_dataset_arg
from hf_learngene.data import collate_fn, prepare_dataset

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "accelerate" / "train_descendant_no_trainer.py"
CONFIGS = ROOT / "examples" / "accelerate" / "configs"
ACCELERATE = Path(sys.executable).with_name("accelerate")
TRAIN_SAMPLES = 1408  # 44 batches of 2 x 16: no padding, so the ranks' samples are disjoint
STEPS_PER_EPOCH = TRAIN_SAMPLES // 32
COMMON = ["--dataset", "offline:digits", "--num-new-layers", 1, "--learning-rate", 3e-3, "--no-horizontal-flip",
          "--device", "cpu", "--keep-checkpoints"]  # fmt: skip
# Runs a script with `Accelerator.save_state` pausing (marker file, then sleep) once it has written the state of the
# checkpoint named PAUSE_IN, before it is marked complete and renamed: the point where the test sends SIGKILL.
PAUSING_RUNNER = """
import os, runpy, sys, time
import accelerate
save_state = accelerate.Accelerator.save_state
def pausing(self, output_dir=None, **kwargs):
    result = save_state(self, output_dir, **kwargs)
    if os.path.basename(str(output_dir)) == os.environ["PAUSE_IN"]:
        with open(os.environ["PAUSED"], "w") as f:
            f.write(str(output_dir))
        time.sleep(600)
    return result
accelerate.Accelerator.save_state = pausing
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _popen(command: list, env: dict, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [str(c) for c in command], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs
    )


def _finish(process: subprocess.Popen) -> subprocess.CompletedProcess:
    stdout, stderr = process.communicate(timeout=600)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="module")
def learngene(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("learngene")
    config = LearngeneConfig(
        hidden_size=64, num_attention_heads=4, intermediate_size=128, image_size=16, patch_size=8, layer_indices=[0, 1]
    )
    LearngeneModel(config).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def runs(learngene, env, tmp_path_factory) -> dict:
    """Side by side: the 2-process run, a 1-process run paused (then killed) while writing its last checkpoint, and
    a run with a bad argument."""
    out = tmp_path_factory.mktemp("runs")
    tensorboard = ["--report-to", "tensorboard"] if _has_tensorboard() else []
    two = [
        ACCELERATE, "launch", "--multi_gpu", "--num_processes", 2, "--num_machines", 1, "--mixed_precision", "no",
        "--dynamo_backend", "no", "--main_process_port", _free_port(), SCRIPT, learngene, *COMMON,
        "--max-train-samples", TRAIN_SAMPLES, "--epochs", 3, "--batch-size", 16, "--output", out / "two",
        "--checkpointing-steps", 22, "--checkpoints-total-limit", 2, "--log-batches", "--save-rank-weights", "--json",
        *tensorboard,
    ]  # fmt: skip
    processes = {
        "two": _popen(two, env),
        "killed": _popen([sys.executable, "-c", PAUSING_RUNNER, SCRIPT, *_small(learngene, out / "killed")], {
            **env, "PAUSE_IN": ".tmp-checkpoint-32", "PAUSED": str(out / "PAUSED")}, start_new_session=True),
        "missing_dataset": _popen([sys.executable, SCRIPT, learngene, "--dataset", out / "nowhere", "--output",
                                   out / "bad"], env),
    }  # fmt: skip
    deadline = time.monotonic() + 600
    while not (out / "PAUSED").exists():
        assert processes["killed"].poll() is None, _finish(processes["killed"]).stderr[-3000:]
        assert time.monotonic() < deadline, "the run never reached its last checkpoint"
        time.sleep(0.2)
    os.killpg(processes["killed"].pid, signal.SIGKILL)
    return {"out": out, **{name: _finish(process) for name, process in processes.items()}}


def _small(learngene: Path, output: Path) -> list:
    """One process, 256 images: 16 steps per epoch, 2 epochs, a checkpoint every 8 steps (the last at step 32)."""
    return [learngene, *COMMON, "--max-train-samples", 256, "--epochs", 2, "--batch-size", 16, "--output", output,
            "--checkpointing-steps", 8, "--checkpoints-total-limit", 3, "--metric-for-best-model", "none",
            "--horizontal-flip"]  # fmt: skip


def _has_tensorboard() -> bool:
    try:
        import tensorboardX  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.slow
def test_two_cpu_processes_train_together(runs):
    result, output = runs["two"], runs["out"] / "two"
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads(result.stdout)
    assert results["world_size"] == 2 and results["steps"] == 3 * STEPS_PER_EPOCH
    assert results["distributed_type"] == "MULTI_CPU"
    # Real learning: 10 classes, chance is 0.1.
    assert max(row["eval_accuracy"] for row in results["learning_curves"]) > 0.5, results["learning_curves"]

    # Each rank saw different samples; together, every sample once per epoch; reshuffled each epoch.
    ranks = [json.loads((output / f"batches_rank{r}.json").read_text()) for r in (0, 1)]
    for epoch in range(3):
        seen = [
            {i for batch in rank[epoch * STEPS_PER_EPOCH : (epoch + 1) * STEPS_PER_EPOCH] for i in batch}
            for rank in ranks
        ]
        assert seen[0].isdisjoint(seen[1])
        assert seen[0] | seen[1] == set(range(TRAIN_SAMPLES))
    assert ranks[0][0] != ranks[0][STEPS_PER_EPOCH]

    # DDP kept both replicas identical.
    weights = [load_file(output / f"weights_rank{r}.safetensors") for r in (0, 1)]
    assert weights[0].keys() == weights[1].keys()
    for name in weights[0]:
        assert torch.equal(weights[0][name], weights[1][name]), name

    # At most --checkpoints-total-limit checkpoints, each complete; the temporary folders are gone.
    assert sorted(p.name for p in output.glob("*checkpoint-*")) == ["checkpoint-110", "checkpoint-132"]
    assert all((output / name / "checkpoint_complete.json").is_file() for name in ("checkpoint-110", "checkpoint-132"))
    assert not (runs["out"] / "two.partial").exists()
    if _has_tensorboard():
        events = list(output.glob("runs/**/events.out.tfevents.*"))
        assert any(b"eval_accuracy" in path.read_bytes() for path in events), events


@pytest.mark.slow
def test_the_best_model_is_kept_with_its_card_and_report(runs):
    output = runs["out"] / "two"
    results = json.loads(runs["two"].stdout)
    curves = results["learning_curves"]
    best = max(curves, key=lambda row: row["eval_accuracy"])
    assert results["best_epoch"] == best["epoch"] and results["eval_accuracy"] == best["eval_accuracy"]
    # The saved model is the best epoch's: scoring it here gives that epoch's accuracy.
    model = DescendantForImageClassification.from_pretrained(output).eval()
    test = prepare_dataset(load_dataset_arg("offline:digits", "test"), model.image_processor, num_labels=10)
    batch = collate_fn([test[i] for i in range(len(test))])
    with torch.no_grad():
        accuracy = (model(pixel_values=batch["pixel_values"]).logits.argmax(-1) == batch["labels"]).float().mean()
    assert accuracy.item() == pytest.approx(best["eval_accuracy"], abs=1e-6)
    assert model.config.id2label[9] == "9" and model.image_processor is not None
    card = (output / "README.md").read_text()
    assert "Training loop | accelerate" in card and f"best accuracy (epoch {best['epoch']})" in card
    assert "![Learning curves](learning_curves.png)" in card
    report = json.loads((output / "classification_report.json").read_text())
    assert report["num_examples"] == 360 and report["accuracy"] == pytest.approx(best["eval_accuracy"])


@pytest.mark.slow
def test_a_run_killed_mid_checkpoint_resumes_exactly(runs, learngene, env):
    """SIGKILL while checkpoint-32 is being written: no `checkpoint-32` appears, `latest` takes checkpoint-24 (mid
    epoch 2, with augmentation) and the resumed run ends with the weights the killed run had reached."""
    out = runs["out"]
    work = out / "killed.partial"
    assert not (work / "checkpoint-32").exists() and (work / ".tmp-checkpoint-32" / "model.safetensors").is_file()
    reached = load_file(work / ".tmp-checkpoint-32" / "model.safetensors")  # the uninterrupted run's final weights
    assert sorted(p.name for p in work.glob("checkpoint-*")) == ["checkpoint-16", "checkpoint-24", "checkpoint-8"]
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, _small(learngene, out / "killed")), "--resume-from-checkpoint",
         "latest", "--json"], env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Resumed from {work / 'checkpoint-24'} (step 24, epoch 2)" in result.stderr
    results = json.loads(result.stdout)
    assert results["steps"] == 32 and [row["epoch"] for row in results["learning_curves"]] == [1, 2]
    resumed = load_file(out / "killed" / "model.safetensors")
    assert resumed.keys() == reached.keys()
    for name in reached:
        assert torch.equal(resumed[name], reached[name]), name


def test_bad_arguments_are_one_line_with_exit_code_2(runs, learngene, capsys):
    from examples.accelerate.train_descendant_no_trainer import parse_args

    cases = {
        ("--epochs", "-1"): "argument --epochs: must be > 0",
        ("--batch-size", "99999999999"): "argument --batch-size: must be between 1 and 65,536",
        ("--seed", "99999999999999999999999"): "argument --seed: must be between 0 and 4,294,967,295",
        ("--checkpointing-steps", "often"): "argument --checkpointing-steps: must be 'epoch', 'no' or a number",
        ("--dataset", "digits", "--learning-rate", "nan"): "must be a finite number",
    }
    for extra, message in cases.items():
        with pytest.raises(SystemExit) as exit:
            parse_args([str(learngene), "--dataset", "offline:digits", "--output", "o", *extra])
        err = capsys.readouterr().err
        assert exit.value.code == 2 and len(err.strip().splitlines()) == 1 and message in err, err
    result = runs["missing_dataset"]  # found after parsing: still one line, exit code 2
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("train_descendant_no_trainer.py: error: Dataset")


def test_the_loop_takes_the_flags_and_dataset_names_of_inherit():
    from examples.accelerate.train_descendant_no_trainer import build_parser as loop_parser

    inherit = build_parser()._subparsers._group_actions[0].choices["inherit"]
    options = {option for action in inherit._actions for option in action.option_strings}
    loop = loop_parser()
    assert options <= {option for action in loop._actions for option in action.option_strings}
    assert "(default: 3.0)" in " ".join(loop.format_help().split())  # defaults shown
    args = loop.parse_args(["lg", "--dataset", "offline:fashion-mnist", "--output", "o", "--lr", "1e-3"])
    assert args.learning_rate == 1e-3 and args.dataset == "offline:fashion-mnist"


def test_launch_configs_load_and_fsdp_wraps_learngene_layers():
    from accelerate.commands.config.config_args import load_config_from_file

    from hf_learngene.modeling_learngene import LearngeneLayer

    names = {path.stem for path in CONFIGS.glob("*.yaml")}
    assert {"single_gpu_bf16", "multi_gpu_ddp", "multi_node_ddp", "fsdp", "deepspeed_zero2", "deepspeed_zero3"} <= names
    configs = {name: load_config_from_file(str(CONFIGS / f"{name}.yaml")) for name in names}
    assert configs["single_gpu_bf16"].mixed_precision == "bf16"
    assert configs["fsdp"].fsdp_config["fsdp_transformer_layer_cls_to_wrap"] == LearngeneLayer.__name__
    assert configs["deepspeed_zero2"].deepspeed_config["zero_stage"] == 2
    assert configs["deepspeed_zero3"].deepspeed_config["zero_stage"] == 3
    assert configs["multi_node_ddp"].num_machines == 2
