"""The README's quickstart and the code examples of the docs work as written."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _block_after(marker: str, page: Path = README) -> str:
    text = page.read_text()
    start = text.index(marker)
    match = re.search(r"```python\n(.*?)```", text[start:], flags=re.S)
    assert match, f"no python block after {marker!r}"
    return match.group(1)


def test_readme_starts_with_the_two_commands():
    lines = [line for line in README.read_text().splitlines() if line.strip()]
    assert lines[2].startswith("make demo") and lines[3].startswith("make test")


def test_quickstart_runs_as_written(tmp_path):
    code = _block_after("<!-- quickstart")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout.splitlines()
    assert out[0] == "[0, 1, 2, 3]"  # the default method keeps the first k layers
    layout, params = out[1].split()
    assert layout == "LRLRLL" and int(params) > 0
    assert (tmp_path / "vit-learngene" / "model.safetensors").is_file()


def _run(code: str, cwd) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.slow
def test_condensing_example_runs_as_written(tmp_path):
    out = _run(_block_after("<!-- condensing example", ROOT / "docs" / "condensing.md"), tmp_path).stdout.splitlines()
    layers = json.loads(out[-1].split("] ")[0] + "]")
    assert len(layers) == 4 and layers == sorted(layers)
    assert (tmp_path / "vit-learngene" / "condense_heatmap.png").is_file()
    assert (tmp_path / "vit-learngene" / "condense_report.json").is_file()


@pytest.mark.slow
def test_training_examples_run_as_written(tmp_path):
    _run(_block_after("<!-- training setup", ROOT / "docs" / "training.md"), tmp_path)
    helper = _run(_block_after("<!-- training helper", ROOT / "docs" / "training.md"), tmp_path).stdout.splitlines()
    accuracy = float(helper[-1].split()[0])
    assert accuracy > 0.3  # 10 classes: chance is 0.1
    assert (tmp_path / "descendant" / "learning_curves.json").is_file()
    trainer = _run(_block_after("<!-- training trainer", ROOT / "docs" / "training.md"), tmp_path).stdout
    assert "eval_accuracy" in trainer


def test_docs_links_resolve():
    # Every relative link of the README and the docs pages points at a file of the repository.
    for page in [README, *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)", page.read_text()):
            if "://" in target:
                continue
            assert (page.parent / target).exists(), f"{page.name} links to a missing {target}"


def test_every_test_the_docs_name_exists():
    # The docs back their guarantees with test names; a renamed or deleted test must not leave a claim unbacked.
    for page in [README, *sorted((ROOT / "docs").glob("*.md"))]:
        for path, name in re.findall(r"`(tests/[\w/]+\.py)::(\w+)", page.read_text()):
            source = (ROOT / path).read_text()
            assert re.search(rf"^def {name}\b", source, flags=re.M), f"{page.name} names a missing {path}::{name}"
