"""Where a training command works: `<output>.partial/` beside the output folder, renamed to `<output>` when the run
succeeds, so that a failed or killed run never leaves a half-written output behind.

- Success: the checkpoints are removed (unless `--keep-checkpoints`) and the folder takes `<output>`'s place with a
  rename (a previous output, with `--overwrite`, is moved aside first and deleted after).
- Failure: the work folder is removed, unless it holds a complete checkpoint; then it stays and the error says how to
  resume (`--resume-from-checkpoint latest`).
- A kill: the work folder stays; `--resume-from-checkpoint latest` picks its newest *complete* checkpoint.

With several processes only the main one (global rank 0) touches the folders.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
from dataclasses import dataclass

from .common import CLIError, check_output, one_line

PARTIAL_SUFFIX = ".partial"


def is_main_process() -> bool:
    """Global rank 0 (or no launcher): the process that creates, renames and deletes folders."""
    return int(os.environ.get("RANK", "0")) == 0


@dataclass
class RunFolder:
    output: str
    work: str
    checkpoint: str | None = None


def prepare(output: str, overwrite: bool, resume: str | None, say) -> RunFolder:
    """Check `--output`, and find the checkpoint to resume from (`latest` or a folder)."""
    from ..training import list_checkpoints, resolve_checkpoint

    output = check_output(output, overwrite, "descendant")
    run = RunFolder(output, output + PARTIAL_SUFFIX)
    if resume is not None:
        try:
            run.checkpoint = resolve_checkpoint(resume, run.work)
        except ValueError as error:
            raise CLIError(f"--resume-from-checkpoint {resume}: {one_line(error)}") from None
        if run.checkpoint is None:
            say(f"note: no complete checkpoint in {run.work}; starting from scratch.")
        return run
    if os.path.isdir(run.work) and os.listdir(run.work):
        complete = [path for _, path, ok in list_checkpoints(run.work) if ok]
        if not overwrite:
            raise CLIError(
                f"{run.work} holds an interrupted run ({len(complete)} complete checkpoint(s)): resume it with "
                "--resume-from-checkpoint latest, or pass --overwrite to start afresh."
            )
        if is_main_process():
            shutil.rmtree(run.work)
    return run


def finish(run: RunFolder, keep_checkpoints: bool) -> None:
    """Move the finished run into `run.output` (main process only)."""
    if not is_main_process():
        return
    if not keep_checkpoints:
        for path in glob.glob(os.path.join(run.work, "checkpoint-*")) + glob.glob(os.path.join(run.work, ".tmp-*")):
            shutil.rmtree(path, ignore_errors=True)
    parent = os.path.dirname(run.output)
    if os.path.exists(run.output):
        old = tempfile.mkdtemp(prefix=f".old-{os.path.basename(run.output)}-", dir=parent)
        os.replace(run.output, os.path.join(old, "previous"))
        os.replace(run.work, run.output)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(run.work, run.output)


def abandon(run: RunFolder) -> str | None:
    """After a failure: keep the work folder when it holds a complete checkpoint (returns a hint saying how to
    resume), else remove it."""
    from ..training import list_checkpoints

    if not is_main_process() or not os.path.isdir(run.work):
        return None
    if any(ok for _, _, ok in list_checkpoints(run.work)):
        return f"checkpoints kept in {run.work}: rerun the command with --resume-from-checkpoint latest to go on."
    shutil.rmtree(run.work, ignore_errors=True)
    return None
