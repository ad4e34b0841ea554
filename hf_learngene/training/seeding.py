"""Random augmentation that does not depend on when a row is read, so that a resumed run is exact.

Why: the augmentation of [`hf_learngene.data.prepare_dataset`] draws from torch's global random generator. A run
resumed mid-epoch then augments differently from the uninterrupted one, for two reasons found by logging the generator
around every augmentation and checkpoint (`train_descendant` on transformers 5.24 / accelerate 1.15):

1. Accelerate's `DataLoaderShard` reads one batch ahead, so the random state saved with `checkpoint-k` was taken after
   batch k+1 had already been augmented;
2. on a mid-epoch resume the `Trainer` restores the saved random state only after fetching the first batches (it
   "syncs" the generator after `get_batch_samples`), so they are augmented from the fresh process's state.

[`SeededAugmentation`] makes the augmentation of row `i` in epoch `e` a pure function of `(seed, e, i)`: each read
runs under a forked generator seeded from them. Prefetching, skipped batches, workers and the number of processes no
longer matter, and the global generator (dropout) is left exactly as the training loop would leave it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from transformers import TrainerCallback


def row_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of row `index` in `epoch` (0-based) of a run seeded with `seed`."""
    return int(np.random.SeedSequence([int(seed), int(epoch), int(index)]).generate_state(1)[0])


class SeededAugmentation(Dataset):
    """Wrap a map-style dataset so that row `i` read in epoch `e` is produced under a random generator seeded with
    [`row_seed`]`(seed, e, i)` (see the module docstring). Call `set_epoch(e)` at the start of every epoch (the
    Accelerate loop does; [`SeededAugmentationCallback`] does it for the `Trainer`).

    Args:
        dataset: any dataset with `__len__` and `__getitem__` (e.g. the output of `prepare_dataset(..., train=True)`).
        seed (`int`): the run's seed.
        with_index (`bool`, *optional*, defaults to `False`): add an `"index"` entry to every row (the Accelerate loop
            uses it to report which rows each process trained on).
    """

    def __init__(self, dataset, seed: int, with_index: bool = False):
        self.dataset, self.seed, self.with_index, self.epoch = dataset, int(seed), with_index, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(row_seed(self.seed, self.epoch, index))
            row = self.dataset[int(index)]
        return {**row, "index": int(index)} if self.with_index else row

    def __getitems__(self, indices: list[int]) -> list[dict[str, Any]]:
        return [self[index] for index in indices]


class SeededAugmentationCallback(TrainerCallback):
    """Tell a [`SeededAugmentation`] dataset which epoch the `Trainer` is in (also right after a resume, where
    `state.epoch` is fractional: epoch 2.4 is the third epoch, index 2)."""

    def __init__(self, dataset: SeededAugmentation):
        self.dataset = dataset

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.dataset.set_epoch(math.floor(round(state.epoch or 0.0, 9)))


__all__ = ["SeededAugmentation", "SeededAugmentationCallback", "row_seed"]
