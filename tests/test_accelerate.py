"""The accelerate example loop (examples/accelerate/train_descendant_no_trainer.py) under `accelerate launch`
with two CPU processes (gloo), on scikit-learn digits."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hf_learngene import DescendantForImageClassification, LearngeneConfig, LearngeneModel

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "accelerate" / "train_descendant_no_trainer.py"
ACCELERATE = Path(sys.executable).with_name("accelerate")
TRAIN_SAMPLES = 1408  # 44 batches of 2 x 16: no padding, so the ranks' samples are disjoint
STEPS_PER_EPOCH = TRAIN_SAMPLES // 32


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(output_dir: Path, learngene: Path, *extra: str) -> dict:
    command = [
        str(ACCELERATE), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
        str(SCRIPT), "--learngene", str(learngene), "--dataset", "digits", "--max_train_samples", str(TRAIN_SAMPLES),
        "--num_new_layers", "1", "--num_train_epochs", "3", "--learning_rate", "3e-3", "--no_horizontal_flip",
        "--per_device_train_batch_size", "16", "--output_dir", str(output_dir), "--checkpointing_steps", "30",
        "--log_batches", "--save_rank_weights", *extra,
    ]  # fmt: skip
    # accelerate 1.x starts one process for `--cpu --num_processes 2`; torchrun + ACCELERATE_USE_CPU gives gloo.
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads((output_dir / "train_results.json").read_text())


@pytest.fixture(scope="module")
def learngene(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("learngene")
    config = LearngeneConfig(
        hidden_size=64, num_attention_heads=4, intermediate_size=128, image_size=16, patch_size=8, layer_indices=[0, 1]
    )
    LearngeneModel(config).save_pretrained(path)
    return path


@pytest.mark.slow
def test_two_cpu_processes_train_resume_and_agree(learngene, tmp_path):
    full_dir = tmp_path / "full"
    results = _launch(full_dir, learngene)
    assert results["world_size"] == 2 and results["steps"] == 3 * STEPS_PER_EPOCH
    # Real learning: 10 classes, chance is 0.1.
    assert results["eval_accuracy"] > 0.5, results

    # Each rank saw different samples; together, every sample once per epoch.
    ranks = [json.loads((full_dir / f"batches_rank{r}.json").read_text()) for r in (0, 1)]
    for epoch in range(3):
        seen = [
            {i for batch in rank[epoch * STEPS_PER_EPOCH : (epoch + 1) * STEPS_PER_EPOCH] for i in batch}
            for rank in ranks
        ]
        assert seen[0].isdisjoint(seen[1])
        assert seen[0] | seen[1] == set(range(TRAIN_SAMPLES))
    assert ranks[0][0] != ranks[0][STEPS_PER_EPOCH]  # reshuffled each epoch

    # DDP kept both replicas identical, and the saved model is that replica.
    weights = [load_file(full_dir / f"weights_rank{r}.safetensors") for r in (0, 1)]
    saved = load_file(full_dir / "model.safetensors")
    assert weights[0].keys() == weights[1].keys() == saved.keys()
    for name in saved:
        assert torch.equal(weights[0][name], weights[1][name]), name
        assert torch.equal(weights[0][name], saved[name]), name
    model = DescendantForImageClassification.from_pretrained(full_dir)
    assert model.config.id2label[9] == "9" and model.image_processor is not None
    assert "Training loop | accelerate" in (full_dir / "README.md").read_text()

    # Resuming mid-epoch (step 120 = epoch 3, batch 32 of 44) ends with the same weights, bit for bit.
    checkpoint = full_dir / "checkpoint-120"
    assert not torch.equal(load_file(checkpoint / "model.safetensors")["classifier.weight"], saved["classifier.weight"])
    resumed_dir = tmp_path / "resumed"
    resumed = _launch(resumed_dir, learngene, "--resume_from_checkpoint", str(checkpoint))
    assert resumed["steps"] == 3 * STEPS_PER_EPOCH
    resumed_ranks = json.loads((resumed_dir / "batches_rank0.json").read_text())
    assert resumed_ranks == ranks[0][120:]
    resumed_weights = load_file(resumed_dir / "model.safetensors")
    for name in saved:
        assert torch.equal(resumed_weights[name], saved[name]), name
