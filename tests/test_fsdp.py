"""FSDP2 (`torch.distributed.fsdp.fully_shard`) trains a descendant on two CPU processes over gloo.

Each rank holds half of one global batch; FSDP2 averages the gradients in its reduce-scatter, so every step must
reproduce a single-process step on the whole batch. Two wrappings: one `fully_shard` per `LearngeneLayer` (the
layer's weights are gathered before its forward, so the fused QKV path sees plain tensors) and one per `nn.Linear`
(the attention module sees sharded DTensors and must call the projections as modules).
"""

from __future__ import annotations

import json
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from hf_learngene import DescendantForImageClassification, LearngeneConfig
from hf_learngene.modeling_learngene import LearngeneLayer

pytest.importorskip("torch.distributed.fsdp")
if not dist.is_available() or not dist.is_gloo_available():
    pytest.skip("torch.distributed with gloo is not available in this build", allow_module_level=True)

GLOBAL_BATCH = 4
STEPS = 3
WORLD_SIZE = 2


def _model() -> DescendantForImageClassification:
    torch.manual_seed(0)
    config = LearngeneConfig(
        hidden_size=32,
        num_attention_heads=4,
        intermediate_size=37,
        image_size=30,
        patch_size=2,
        layer_indices=[0, 1],
        layout="LRL",
        num_labels=3,
    )
    return DescendantForImageClassification(config).train()


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return torch.randn(GLOBAL_BATCH, 3, 30, 30, generator=generator), torch.tensor([0, 2, 1, 2])


def _train(model: nn.Module, pixel_values: torch.Tensor, labels: torch.Tensor, reduce=None) -> list[float]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(STEPS):
        loss = model(pixel_values=pixel_values, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(reduce(loss.detach()) if reduce else loss.item())
    return losses


def _worker(rank: int, port: int, wrap: str, out_dir: str) -> None:
    from torch.distributed.fsdp import fully_shard

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD_SIZE)
    try:
        mesh = dist.device_mesh.init_device_mesh("cpu", (WORLD_SIZE,))
        model = _model()
        if wrap == "layer":
            units = [m for m in model.modules() if isinstance(m, LearngeneLayer)]
        else:
            units = [m for m in model.modules() if type(m) is nn.Linear]
        for unit in units:
            fully_shard(unit, mesh=mesh)
        fully_shard(model, mesh=mesh)
        pixel_values, labels = _batch()
        half = GLOBAL_BATCH // WORLD_SIZE
        rows = slice(rank * half, (rank + 1) * half)

        def global_mean(loss: torch.Tensor) -> float:
            dist.all_reduce(loss)
            return loss.item() / WORLD_SIZE

        losses = _train(model, pixel_values[rows], labels[rows], reduce=global_mean)
        sharded = sum(type(p).__name__ == "DTensor" for p in model.parameters())
        result = {"losses": losses, "units": len(units), "dtensor_params": sharded}
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
            json.dump(result, f)
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def single_process_losses() -> list[float]:
    return _train(_model(), *_batch())


@pytest.mark.slow
@pytest.mark.parametrize("wrap", ["layer", "linear"])
def test_fsdp2_two_cpu_processes_match_one_process(wrap, single_process_losses, tmp_path):
    mp.spawn(_worker, args=(_free_port(), wrap, str(tmp_path)), nprocs=WORLD_SIZE, join=True)
    results = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(WORLD_SIZE)]
    model = _model()
    expected_units = (
        len(model.descendant_layers())
        if wrap == "layer"
        else sum(type(m) is nn.Linear for m in model.modules())  # 6 per layer + the classifier
    )
    for result in results:
        assert result["units"] == expected_units
        assert result["dtensor_params"] == sum(1 for _ in model.parameters())  # every parameter really sharded
        assert result["losses"] == results[0]["losses"]
        # The loss moves (training happens) and matches the single process step by step.
        assert result["losses"][-1] < result["losses"][0]
        for got, expected in zip(result["losses"], single_process_losses, strict=True):
            assert got == pytest.approx(expected, abs=1e-5, rel=0)
