"""Learning curves, rebuilt from the `Trainer`'s own record (`trainer_state.log_history`).

The Trainer saves its log history in every checkpoint and restores it on resume, so curves rebuilt from it cover
every epoch of a resumed run; the evaluation of the best checkpoint that follows training is not an epoch and is left
out. [`LearningCurvesCallback`] keeps `learning_curves.json` up to date during training, and
[`plot_learning_curves`] draws any run's curves.
"""

from __future__ import annotations

import glob
import json
import math
import os
from collections.abc import Sequence
from typing import Any

from transformers import TrainerCallback

from ..evaluation import draw_learning_curves

LEARNING_CURVES_FILE = "learning_curves.json"
LEARNING_CURVES_IMAGE = "learning_curves.png"
_TIMINGS = ("_runtime", "_per_second", "_samples_per_second", "_steps_per_second")


def learning_curves(log_history: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per epoch from a Trainer log history: `epoch` (1-based), `train_loss` (the mean of the losses logged
    in that epoch) and every `eval_*` metric logged at its end (timings left out).

    Entries after the end-of-training summary (the row with `train_runtime`), such as the evaluation of the best
    checkpoint, are not epochs and are ignored.
    """
    rows: dict[int, dict[str, Any]] = {}
    losses: dict[int, list[float]] = {}
    for entry in log_history:
        if "train_runtime" in entry:
            break
        if entry.get("epoch") is None:
            continue
        index = max(1, math.ceil(round(float(entry["epoch"]), 6)))
        row = rows.setdefault(index, {"epoch": index})
        if "loss" in entry:
            losses.setdefault(index, []).append(float(entry["loss"]))
            row["train_loss"] = sum(losses[index]) / len(losses[index])
        for key, value in entry.items():
            if key.startswith("eval_") and not key.endswith(_TIMINGS) and isinstance(value, (int, float)):
                row[key] = float(value)
    return [rows[index] for index in sorted(rows)]


def _write_json(path: str, payload) -> None:
    # Written beside and renamed into place, so a reader (or a kill) never sees half a file.
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    scratch = f"{path}.tmp-{os.getpid()}"
    with open(scratch, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=2)
    os.replace(scratch, path)


class LearningCurvesCallback(TrainerCallback):
    """Keep `learning_curves.json` (see [`learning_curves`]) up to date at every log, on the main process.

    Args:
        path (`str`, *optional*):
            Where to write the JSON list; defaults to `<output_dir>/learning_curves.json`.
    """

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = None if path is None else os.fspath(path)
        self.curves: list[dict[str, Any]] = []

    def _update(self, args, state) -> None:
        self.curves = learning_curves(state.log_history)
        if state.is_world_process_zero:
            _write_json(self.path or os.path.join(args.output_dir, LEARNING_CURVES_FILE), self.curves)

    def on_log(self, args, state, control, **kwargs):
        self._update(args, state)

    def on_train_end(self, args, state, control, **kwargs):
        self._update(args, state)


def _log_history(run_dir: str) -> list[dict[str, Any]]:
    """The log history of a run folder: its `trainer_state.json`, else that of its latest checkpoint."""
    candidates = [os.path.join(run_dir, "trainer_state.json")]
    checkpoints = sorted(
        glob.glob(os.path.join(run_dir, "checkpoint-*", "trainer_state.json")),
        key=lambda p: int(os.path.basename(os.path.dirname(p)).split("-")[-1]),
    )
    candidates += checkpoints[::-1]
    for path in candidates:
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                return json.load(f).get("log_history", [])
    curves = os.path.join(run_dir, LEARNING_CURVES_FILE)
    if os.path.isfile(curves):
        return []
    raise FileNotFoundError(
        f"No trainer_state.json or {LEARNING_CURVES_FILE} in {run_dir!r} or its checkpoints: pass the output_dir of "
        "a Trainer run."
    )


def load_learning_curves(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The learning curves of a Trainer run folder, rebuilt from its log history (else read from its
    `learning_curves.json`)."""
    run_dir = os.fspath(run_dir)
    history = _log_history(run_dir)
    if history:
        return learning_curves(history)
    with open(os.path.join(run_dir, LEARNING_CURVES_FILE), encoding="utf-8") as f:
        return json.load(f)


def plot_learning_curves(
    source: str | os.PathLike | Sequence[dict[str, Any]], path: str | os.PathLike | None = None, title: str = ""
) -> str:
    """Draw the training and evaluation loss and the evaluation metrics of a run against the epoch.

    Args:
        source (`str` or `list[dict]`):
            A Trainer run folder (its `trainer_state.json`, or its latest checkpoint's), or rows from
            [`learning_curves`].
        path (`str`, *optional*):
            The PNG to write; defaults to `<run folder>/learning_curves.png` (required when `source` is a list).
        title (`str`, *optional*):
            The figure's title.

    Returns:
        `str`: the path written. Uses matplotlib's object API (no pyplot): headless, global state left alone.
    """
    if isinstance(source, (str, os.PathLike)):
        curves = load_learning_curves(source)
        path = path or os.path.join(os.fspath(source), LEARNING_CURVES_IMAGE)
    else:
        curves = list(source)
        if path is None:
            raise ValueError("Pass `path=` (where to write the PNG) when plotting a list of curves.")
    return draw_learning_curves(curves, path, title)


__all__ = [
    "LEARNING_CURVES_FILE",
    "LEARNING_CURVES_IMAGE",
    "LearningCurvesCallback",
    "learning_curves",
    "load_learning_curves",
    "plot_learning_curves",
]
