"""Runs `hf-learngene` in this process with two probes a test can switch on through the environment (the command
itself is unchanged):

- `PROBE_DIR=<folder>`: each process writes the training rows it read (`rows_rank<r>.json`, `[epoch, index]` pairs)
  and its final weights (`weights_rank<r>.safetensors`) there, to check the shards and the replicas of a
  distributed run.
- `PROBE_PAUSE_IN=<checkpoint-N>`: the process stops in the middle of writing that checkpoint (its weights and
  optimizer are written, its random state and trainer state not yet), writes `PAUSED` into `PROBE_DIR` and sleeps, so
  that the test can kill it with SIGKILL at exactly that point.

Usage: `python tests/cli_probe.py inherit ...` or `accelerate launch ... tests/cli_probe.py inherit ...`.
"""

from __future__ import annotations

import json
import os
import sys
import time

from safetensors.torch import save_file
from transformers import Trainer

import hf_learngene.training as training
from hf_learngene.cli import main
from hf_learngene.training import seeding

PROBE_DIR = os.environ.get("PROBE_DIR")
PAUSE_IN = os.environ.get("PROBE_PAUSE_IN")
RANK = int(os.environ.get("RANK", "0"))
ROWS: list[tuple[int, int]] = []

_getitem = seeding.SeededAugmentation.__getitem__


def _recording_getitem(self, index):
    ROWS.append((self.epoch, int(index)))
    return _getitem(self, index)


_train_descendant = training.train_descendant


def _recording_train_descendant(*args, **kwargs):
    result = _train_descendant(*args, **kwargs)
    model = result.trainer.accelerator.unwrap_model(result.trainer.model)
    weights = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    save_file(weights, os.path.join(PROBE_DIR, f"weights_rank{RANK}.safetensors"))
    with open(os.path.join(PROBE_DIR, f"rows_rank{RANK}.json"), "w") as f:
        json.dump(ROWS, f)
    return result


_save_rng_state = Trainer._save_rng_state


def _pausing_save_rng_state(self, output_dir):
    if os.path.basename(os.path.normpath(output_dir)) == PAUSE_IN:
        with open(os.path.join(PROBE_DIR, "PAUSED"), "w") as f:
            f.write(output_dir)
        time.sleep(600)
    return _save_rng_state(self, output_dir)


if PROBE_DIR:
    seeding.SeededAugmentation.__getitem__ = _recording_getitem
    training.train_descendant = _recording_train_descendant
if PAUSE_IN:
    Trainer._save_rng_state = _pausing_save_rng_state

if __name__ == "__main__":
    sys.exit(main())
