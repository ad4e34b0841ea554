"""Resumable checkpoints: which ones are complete, the newest complete one, atomic writes, rotation, and the RNG
state a resume needs.

A checkpoint folder is `checkpoint-<step>`. It is *complete* when the file its writer saves last is there and parses:
`trainer_state.json` for the `Trainer` (which writes it after the weights, optimizer, scheduler and RNG states), or
[`COMPLETE_FILE`] for checkpoints written through [`atomic_checkpoint`] (the Accelerate loop), which are moreover
built in a temporary folder and renamed into place, so a kill mid-write never leaves a `checkpoint-<step>` behind.
[`latest_checkpoint`] skips incomplete folders (a run killed while the `Trainer` wrote one), so resuming from
"the latest" never picks a half-written checkpoint.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import shutil
import warnings
from collections.abc import Iterator
from typing import Any

CHECKPOINT_PREFIX = "checkpoint-"
COMPLETE_FILE = "checkpoint_complete.json"
TRAINER_STATE_FILE = "trainer_state.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
_TEMPORARY = ".tmp-checkpoint-"


def checkpoint_step(path: str | os.PathLike) -> int | None:
    """The step of a `checkpoint-<step>` folder, or None when the name is not one."""
    match = _CHECKPOINT.match(os.path.basename(os.path.normpath(os.fspath(path))))
    return int(match.group(1)) if match else None


def _read_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def checkpoint_info(path: str | os.PathLike) -> dict[str, Any] | None:
    """What a complete checkpoint recorded (its [`COMPLETE_FILE`], or `{"trainer_state": ...}` for a `Trainer`
    checkpoint), or None when the folder is not a complete checkpoint."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        return None
    marker = _read_json(os.path.join(path, COMPLETE_FILE))
    if isinstance(marker, dict):
        return marker
    state = _read_json(os.path.join(path, TRAINER_STATE_FILE))
    if isinstance(state, dict) and "global_step" in state:
        return {"step": state["global_step"], "trainer_state": state}
    return None


def is_complete_checkpoint(path: str | os.PathLike) -> bool:
    """Whether `path` is a checkpoint whose writer finished (see the module docstring)."""
    return checkpoint_info(path) is not None


def list_checkpoints(folder: str | os.PathLike) -> list[tuple[int, str, bool]]:
    """`(step, path, complete)` of every `checkpoint-<step>` folder in `folder`, oldest first."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        return []
    found = []
    for name in os.listdir(folder):
        step = checkpoint_step(name)
        path = os.path.join(folder, name)
        if step is not None and os.path.isdir(path):
            found.append((step, path, is_complete_checkpoint(path)))
    return sorted(found)


def latest_checkpoint(folder: str | os.PathLike, *, warn: bool = True) -> str | None:
    """The newest complete checkpoint in `folder` (None when there is none). Newer incomplete ones (a run killed while
    writing them) are skipped, with a warning naming them when `warn=True`."""
    checkpoints = list_checkpoints(folder)
    complete = [path for _, path, ok in checkpoints if ok]
    newest = complete[-1] if complete else None
    skipped = [path for step, path, ok in checkpoints if not ok and (newest is None or step > checkpoint_step(newest))]
    if skipped and warn:
        warnings.warn(
            f"Skipping incomplete checkpoint(s) {[os.path.basename(p) for p in skipped]} in {os.fspath(folder)} (the "
            "run that wrote them was interrupted mid-write); "
            + (f"resuming from {os.path.basename(newest)}." if newest else "no complete checkpoint is left."),
            stacklevel=2,
        )
    return newest


def resolve_checkpoint(checkpoint: str | os.PathLike | bool, folder: str | os.PathLike) -> str | None:
    """A `resume_from_checkpoint` value as a folder: `True` / `"latest"` -> [`latest_checkpoint`] of `folder` (None
    when there is none); a path must be a complete checkpoint (a `ValueError` says what is wrong otherwise)."""
    if checkpoint is True or checkpoint == "latest":
        return latest_checkpoint(folder)
    path = os.path.abspath(os.path.expanduser(os.fspath(checkpoint)))
    if not os.path.isdir(path):
        raise ValueError(f"Checkpoint {os.fspath(checkpoint)!r} does not exist (no such folder).")
    if not is_complete_checkpoint(path):
        raise ValueError(
            f"{os.fspath(checkpoint)!r} is not a complete checkpoint (no {TRAINER_STATE_FILE} or {COMPLETE_FILE}: the "
            "run that wrote it was probably interrupted mid-write). Resume from an earlier one, or pass 'latest'."
        )
    return path


@contextlib.contextmanager
def atomic_checkpoint(
    folder: str | os.PathLike, step: int, *, info: dict[str, Any] | None = None, main_process: bool = True, barrier=None
) -> Iterator[str]:
    """Write `checkpoint-<step>` all at once: yields a temporary folder beside it (`.tmp-checkpoint-<step>`, the same
    name on every process, so that all of them write into it); when the block ends, [`COMPLETE_FILE`] (with
    `info`) is written and the folder renamed to `checkpoint-<step>`. A kill mid-write leaves only the temporary
    folder, which [`latest_checkpoint`] never picks and the next save or [`rotate_checkpoints`] removes.

    With several processes, pass `main_process` (only it creates, marks and renames) and `barrier` (a function all
    processes call, e.g. `accelerator.wait_for_everyone`), called before the writes and before the rename.
    """
    folder = os.fspath(folder)
    scratch = os.path.join(folder, f"{_TEMPORARY}{step}")
    target = os.path.join(folder, f"{CHECKPOINT_PREFIX}{step}")
    if main_process:
        os.makedirs(folder, exist_ok=True)
        shutil.rmtree(scratch, ignore_errors=True)  # left by a run killed while writing this step
        os.makedirs(scratch)
    if barrier is not None:
        barrier()
    yield scratch
    if barrier is not None:
        barrier()
    if main_process:
        with open(os.path.join(scratch, COMPLETE_FILE), "w", encoding="utf-8") as f:
            json.dump({"step": step, **(info or {})}, f, indent=2)
        if os.path.isdir(target):  # the same step saved again (a resumed run): the new one replaces it
            shutil.rmtree(target)
        os.replace(scratch, target)
    if barrier is not None:
        barrier()


def rotate_checkpoints(folder: str | os.PathLike, limit: int | None, keep: str | os.PathLike | None = None) -> list:
    """Delete the oldest complete checkpoints beyond the newest `limit` (None keeps all; `keep`, e.g. the best one,
    is never deleted), and the temporary folders of interrupted atomic writes. Returns the paths deleted."""
    folder = os.fspath(folder)
    deleted = []
    for scratch in glob.glob(os.path.join(folder, f"{_TEMPORARY}*")):
        shutil.rmtree(scratch, ignore_errors=True)
        deleted.append(scratch)
    if limit is None:
        return deleted
    keep = os.path.abspath(os.fspath(keep)) if keep else None
    complete = [path for _, path, ok in list_checkpoints(folder) if ok]
    for path in complete[: max(0, len(complete) - limit)]:
        if os.path.abspath(path) != keep:
            shutil.rmtree(path, ignore_errors=True)
            deleted.append(path)
    return deleted


class ResumeError(ValueError):
    """A checkpoint cannot be resumed exactly (a missing or refused RNG state, an incomplete folder)."""


def _load_rng_file(path: str, loader: str) -> None:
    if loader == "trainer":
        import torch
        from transformers.trainer_pt_utils import safe_globals

        with safe_globals():
            torch.load(path, weights_only=True)
    else:
        from accelerate.utils import load

        load(path)


def check_rng_state(checkpoint: str | os.PathLike, process_index: int, world_size: int, *, kind: str) -> None:
    """Make sure a resume will restore this process's random state: the file exists and loads safely (weights only).

    The `Trainer` (`kind="trainer"`) and Accelerate (`kind="accelerate"`) both skip an RNG state they cannot load with
    a log line at INFO level and train on, no longer reproducing the interrupted run; this raises [`ResumeError`]
    instead, naming the file. A checkpoint written with another number of processes has no file for this process:
    that is a warning, since the data order then changes anyway.
    """
    checkpoint = os.fspath(checkpoint)
    if kind == "trainer":
        name = "rng_state.pth" if world_size <= 1 else f"rng_state_{process_index}.pth"
        pattern = "rng_state*.pth"
    elif kind == "accelerate":
        name, pattern = f"random_states_{process_index}.pkl", "random_states_*.pkl"
    else:
        raise ValueError(f"kind must be 'trainer' or 'accelerate', got {kind!r}.")
    path = os.path.join(checkpoint, name)
    if not os.path.isfile(path):
        others = sorted(os.path.basename(p) for p in glob.glob(os.path.join(checkpoint, pattern)))
        if others:
            warnings.warn(
                f"{checkpoint} holds the random states {others}, written by a run with another number of processes; "
                f"this run ({world_size} process(es)) resumes without restoring them, so it will not reproduce the "
                "interrupted run exactly.",
                stacklevel=2,
            )
            return
        raise ResumeError(
            f"Cannot resume exactly from {checkpoint}: its random state {name} is missing. Resume from another "
            "checkpoint, or start afresh."
        )
    try:
        _load_rng_file(path, "trainer" if kind == "trainer" else "accelerate")
    except Exception as error:  # noqa: BLE001 - any failure to load means the restore would be skipped
        raise ResumeError(
            f"Cannot resume exactly from {checkpoint}: its random state {name} was refused "
            f"({type(error).__name__}: {' '.join(str(error).split())[:200]}). Resume from another checkpoint, or "
            "start afresh."
        ) from error


__all__ = [
    "CHECKPOINT_PREFIX",
    "COMPLETE_FILE",
    "ResumeError",
    "atomic_checkpoint",
    "check_rng_state",
    "checkpoint_info",
    "checkpoint_step",
    "is_complete_checkpoint",
    "latest_checkpoint",
    "list_checkpoints",
    "resolve_checkpoint",
    "rotate_checkpoints",
]
