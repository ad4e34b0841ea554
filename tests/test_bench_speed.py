"""benchmarks/speed/bench_speed.py end to end on CPU at a tiny batch: results, merging runs, and the targets table."""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "speed" / "bench_speed.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_speed", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_speed"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("bench_speed", None)


def common(output: Path) -> list[str]:
    return [
        "--device", "cpu", "--batch-size", "4", "--steps", "2", "--warmup", "0", "--no-inference", "--no-timm",
        "--peak-tflops", "1.0", "--output", str(output),
    ]  # fmt: skip


def test_run_append_and_render_with_targets_from_another_run(bench, tmp_path):
    out = tmp_path / "speed"
    first = bench.main(["--shapes", "ref", "--skip-load", "--skip-condense", *common(out)])
    train = first["shapes"]["ref"]["modes"]["eager"]["train"]
    assert [row["repetitions"] for row in train.values()] == [2, 2, 2]
    # The CLS-only last layer does less work; with every hidden state asked for it does transformers' work.
    assert train["descendant"]["train_flops_per_step"] < train["transformers"]["train_flops_per_step"]
    assert (
        train["descendant (full last layer)"]["train_flops_per_step"] == train["transformers"]["train_flops_per_step"]
    )
    targets = {row["target"]: row for row in first["targets"]}
    assert targets["cpu_train"]["measured"] == train["descendant"]["ratio_vs_transformers"]
    assert targets["gpu_train_b"]["measured"] is None and targets["gpu_train_b"]["met"] is None

    # --append merges a later run (here: condensing only) into the same files and keeps what was measured.
    second = bench.main(["--shapes", "none", "--condense-methods", "heuristic,manual", "--append", *common(out)])
    assert set(second["shapes"]) == {"ref"} and set(second["condense"]["methods"]) == {"heuristic", "manual"}
    assert second["condense"]["methods"]["manual"]["layers"] == [0, 1, 8, 9, 10, 11]
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved["shapes"]["ref"]["modes"]["eager"]["train"] == train
    assert "` then `" in saved["command"]
    text = out.with_suffix(".md").read_text()
    assert "## ref: 6 layers" in text and "| manual |  | " in text

    # A GPU run's targets join the CPU run's table, each marked with the machine that measured it.
    gpu = copy.deepcopy(saved)
    gpu.update(device="cuda", dtype="bf16", environment={**saved["environment"], "machine": "Some GPU"})
    for shape, ratio, mfu in (("s", 1.2, 0.2), ("b", 1.1, 0.5)):
        gpu["shapes"][shape] = copy.deepcopy(saved["shapes"]["ref"])
        gpu["shapes"][shape]["modes"]["eager"]["train"]["descendant"].update(ratio_vs_transformers=ratio, mfu=mfu)
    gpu_path = tmp_path / "speed_gpu.json"
    gpu_path.write_text(json.dumps(gpu))
    bench.main(["--render", str(out.with_suffix(".json")), "--targets-from", str(gpu_path)])
    rows = [line for line in out.with_suffix(".md").read_text().splitlines() if line.startswith("| GPU bf16")]
    assert rows[0].startswith(
        "| GPU bf16 training step, descendant vs transformers' ViT (S shape) | 1.15 | 1.200 | yes |"
    )
    assert "| 1.100 | no | Some GPU | missed:" in rows[1]
    assert "| 0.500 | yes | Some GPU |" in rows[2]


def test_append_refuses_a_run_on_another_device_or_dtype(bench, tmp_path):
    out = tmp_path / "speed"
    out.with_suffix(".json").write_text(json.dumps({"device": "cuda", "dtype": "bf16"}))
    with pytest.raises(SystemExit, match="holds a cuda bf16 run"):
        bench.main(["--shapes", "none", "--skip-condense", "--append", *common(out)])


def test_unknown_condensing_method_is_named(bench, tmp_path):
    with pytest.raises(SystemExit, match="unknown condensing method 'best'"):
        bench.main(["--shapes", "none", "--condense-methods", "cka:2,best", *common(tmp_path / "speed")])


def test_profile_step_sorts_a_step_into_categories(bench, tmp_path):
    # benchmarks/speed/profile_step.py imports bench_speed by name (the fixture has registered it).
    spec = importlib.util.spec_from_file_location("profile_step", SCRIPT.with_name("profile_step.py"))
    profile_step = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(profile_step)
    assert profile_step.category("nvjet_sm90_tst_192x192_64x4_1x2_h_bz_coopB_bias_TNN") == "matmul"
    assert profile_step.category("cudnn_generated_fort_native_sdpa_sm90_flash_bprop_wgmma") == "attention"
    assert profile_step.category("void at::native::GammaBetaBackwardCUDAKernelTemplate<float>") == "layer_norm"
    assert profile_step.category("void at::native::bfloat16_copy_kernel_cuda") == "cast_copy"
    output = tmp_path / "profile.json"
    results = profile_step.main(["--device", "cpu", "--shape", "ref", "--batch-size", "4", "--steps", "1",
                                 "--output", str(output)])  # fmt: skip
    assert set(results["models"]) == {"transformers", "descendant"}
    for row in results["models"].values():
        assert row["busy_ms"] > 0 and row["categories_ms"]["matmul"] > 0
        assert sum(row["categories_ms"].values()) == pytest.approx(row["busy_ms"])
    assert json.loads(output.read_text()) == results
