"""The README's quickstart works as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _block_after(marker: str) -> str:
    text = README.read_text()
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
    assert out[0] == "[8, 9, 10, 11]"
    layout, params = out[1].split()
    assert layout == "LRLRLL" and int(params) > 0
    assert (tmp_path / "vit-learngene" / "model.safetensors").is_file()
