"""Descendants leave PyTorch: `torch.export` and ONNX (torch's dynamo-based exporter, run in ONNX Runtime), with a
dynamic batch size."""

from __future__ import annotations

import pytest
import torch

from hf_learngene import DescendantForImageClassification, LearngeneConfig


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    config = LearngeneConfig(
        hidden_size=32, num_attention_heads=4, intermediate_size=37, image_size=30, patch_size=2,
        layer_indices=[0, 1], num_labels=3, layout="LRL",
    )  # fmt: skip
    return DescendantForImageClassification(config).eval()


def test_torch_export_matches_eager(model):
    x = torch.randn(2, 3, 30, 30)
    batch = torch.export.Dim("batch", min=1, max=64)
    program = torch.export.export(model, (x,), dynamic_shapes={"pixel_values": {0: batch}})
    other = torch.randn(5, 3, 30, 30)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(other).logits, model(other).logits, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_onnx_export_runs_in_onnx_runtime(model, tmp_path):
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    x = torch.randn(2, 3, 30, 30)
    batch = torch.export.Dim("batch", min=1, max=64)
    path = tmp_path / "descendant.onnx"
    torch.onnx.export(
        model, (x,), str(path), dynamo=True, input_names=["pixel_values"], output_names=["logits"],
        dynamic_shapes={"pixel_values": {0: batch}},
    )  # fmt: skip
    session = ort.InferenceSession(str(path))
    other = torch.randn(5, 3, 30, 30)
    logits = session.run(None, {"pixel_values": other.numpy()})[0]
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(logits), model(other).logits, rtol=1e-4, atol=1e-5)
