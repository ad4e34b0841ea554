"""The wheel: package data included, no benchmark, demo-data or test code, and the core works without the extras."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# Runs with only the wheel's hf_learngene importable and every optional extra made unimportable.
_CORE_ONLY = textwrap.dedent(
    """
    import sys
    for extra in ("mlxtend", "sklearn", "scipy", "peft", "onnx", "onnxruntime", "onnxscript", "timm", "pytest"):
        sys.modules[extra] = None  # `import extra` raises ImportError
    import torch
    from transformers import ViTConfig, ViTModel

    import hf_learngene
    from hf_learngene import DescendantForImageClassification, condense

    assert hf_learngene.__file__.startswith(sys.argv[1]), hf_learngene.__file__
    ancestor = ViTModel(ViTConfig(hidden_size=32, num_hidden_layers=4, num_attention_heads=4, intermediate_size=37,
                                  image_size=30, patch_size=2), add_pooling_layer=False)
    learngene = condense(ancestor, method="first", num_layers=2, output_dir=sys.argv[2])
    model = DescendantForImageClassification.from_pretrained(sys.argv[2], num_labels=3, num_new_layers=1)
    with torch.no_grad():
        print(tuple(model(torch.randn(2, 3, 30, 30)).logits.shape))
    """
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # Built from a copy of the sources, so that a stale build/ folder of the checkout cannot leak old files in.
    source = tmp_path_factory.mktemp("source") / "repo"
    ignore = shutil.ignore_patterns(".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", "demo-output")
    shutil.copytree(REPO_ROOT, source, ignore=ignore)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (path,) = out.glob("hf_learngene-*.whl")
    return path


@pytest.mark.slow
def test_wheel_holds_the_package_and_nothing_else(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "hf_learngene/model_card/templates/learngene_card.md",
        "hf_learngene/model_card/templates/descendant_card.md",
        "hf_learngene/metrics/accuracy/accuracy.py",
        "hf_learngene/modeling_learngene.py",
        "hf_learngene/configuration_learngene.py",
    } <= names
    code = [n for n in names if not n.startswith("hf_learngene-") and not n.endswith("/")]
    assert all(n.startswith("hf_learngene/") for n in code), sorted(n for n in code if not n.startswith("hf_"))
    assert not [n for n in code if "bench" in n or n.startswith(("hf_learngene/tests", "benchmarks", "examples"))]


@pytest.mark.slow
def test_the_core_runs_from_the_wheel_without_extras(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    result = subprocess.run(
        [sys.executable, "-c", _CORE_ONLY, str(target), str(tmp_path / "learngene")],
        cwd=tmp_path,
        env={"PYTHONPATH": str(target), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "(2, 3)"
