"""The package's layering (docs/architecture.md): each module imports only modules of lower layers, at module level and
inside functions alike, so no import cycle can hide anywhere. Read from the source with `ast`, nothing imported."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "hf_learngene"

# Lowest first. A module may import any module of a lower layer, and its own subpackage's modules.
LAYERS = [
    ["version"],
    ["configuration_learngene"],
    ["modeling_learngene"],
    ["utils"],
    ["data"],
    ["ancestry", "evaluation", "growth"],
    ["model_card"],
    ["serialization"],
    ["condensing", "training"],
    ["demo"],
    ["cli"],
    ["__init__"],
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
# The two files that travel as remote code beside every checkpoint: torch, transformers and each other only.
REMOTE_CODE = {"configuration_learngene": set(), "modeling_learngene": {"configuration_learngene"}}


def _modules() -> list[Path]:
    # The metric scripts are standalone `evaluate` scripts loaded by path, not package modules.
    return sorted(p for p in PACKAGE.rglob("*.py") if "metrics" not in p.relative_to(PACKAGE).parts)


def _unit(path: Path) -> str:
    """The top-level unit a file belongs to: `condensing/cka.py` -> `condensing`, `__init__.py` -> `__init__`."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def _imported_units(path: Path, source: str | None = None) -> list[tuple[int, str]]:
    """(line, unit) of every package-internal import in the file (or in `source`, read as if it were that file),
    wherever it stands."""
    relative = path.relative_to(PACKAGE).with_suffix("").parts
    package_parts = list(relative[:-1])  # the file's package, relative to hf_learngene
    found = []
    for node in ast.walk(ast.parse(path.read_text() if source is None else source, str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "hf_learngene":
                    found.append((node.lineno, parts[1] if len(parts) > 1 else "__init__"))
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                parts = (node.module or "").split(".")
                if parts[0] != "hf_learngene":
                    continue
                target = parts[1:]
            else:
                base = package_parts[: len(package_parts) - (node.level - 1)] if node.level > 1 else package_parts
                target = base + (node.module.split(".") if node.module else [])
            if target:
                found.append((node.lineno, target[0]))
            else:  # `from . import x` (or `from .. import x`) at the package root: x names the units
                found += [(node.lineno, alias.name) for alias in node.names]
    return found


def test_every_module_has_a_layer():
    units = {_unit(p) for p in _modules()}
    assert units <= set(RANK), f"modules without a layer in LAYERS: {sorted(units - set(RANK))}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_go_down(path):
    unit = _unit(path)
    for line, target in _imported_units(path):
        if target == unit:
            continue  # inside its own subpackage
        assert target in RANK, f"{path.name}:{line} imports unknown module {target!r}"
        assert RANK[target] < RANK[unit], (
            f"{path.relative_to(PACKAGE)}:{line} ({unit}, layer {RANK[unit]}) imports {target} (layer {RANK[target]}): "
            "a module may import only modules of lower layers (docs/architecture.md)"
        )


@pytest.mark.parametrize("unit", sorted(REMOTE_CODE))
def test_remote_code_files_import_only_each_other(unit):
    path = PACKAGE / f"{unit}.py"
    imported = {target for _, target in _imported_units(path)}
    assert imported <= REMOTE_CODE[unit], f"{unit}.py travels as remote code but imports {sorted(imported)}"


def test_the_checker_sees_function_level_and_relative_imports():
    # The checker must catch what it is for: upward imports hidden inside a function, relative or absolute.
    source = "def f():\n    from .serialization import save_folder\n    import hf_learngene.cli\n"
    assert _imported_units(PACKAGE / "data.py", source) == [(2, "serialization"), (3, "cli")]
    nested = "from ..ancestry import Ancestor\nfrom . import registry\n"
    assert _imported_units(PACKAGE / "condensing" / "cka.py", nested) == [(1, "ancestry"), (2, "condensing")]
