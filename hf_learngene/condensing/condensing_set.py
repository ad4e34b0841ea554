"""Turning a condensing set (a `datasets` split, a dataset name or folder, or a torch DataLoader) into batches.

Batches are produced lazily, one at a time, so memory does not grow with the size of the set. The set is split
once, with a seeded generator, into a part that trains the pseudo descendant and a held-out part on which layers
are scored.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..ancestry import Ancestor

# Unbiased HSIC needs at least four images per batch; the held-out part must give at least one such batch.
MIN_EVAL_BATCH = 4
MIN_IMAGES = 2 * MIN_EVAL_BATCH


@dataclass
class DataOptions:
    """How the condensing set becomes batches (see [`load_condensing_data`])."""

    image_column: str | None = None
    label_column: str | None = None
    split: str | None = None
    max_samples: int | None = None
    batch_size: int = 32
    holdout: float = 0.2
    image_processor: Any = None
    num_workers: int = 0
    num_labels: int | None = None


@dataclass
class CondensingData:
    """A condensing set ready for a data-driven condensing method.

    Attributes:
        name: what the set is (dataset name, split, or "DataLoader"), for the config, card and report.
        size: number of images used (training part plus held-out part).
        num_train: images in the training part.
        num_eval: images in the held-out part.
        num_labels: number of classes of the pseudo descendant's head.
        train_batches: `train_batches(epoch)` yields `(pixel_values, labels)` of the training part (shuffled by epoch).
        eval_batches: `eval_batches()` yields `(pixel_values, labels)` of the held-out part, in a fixed order.
        num_train_batches: batches per epoch of the training part (for progress bars).
        num_eval_batches: batches of the held-out part.
    """

    name: str
    size: int
    num_train: int
    num_eval: int
    num_labels: int
    train_batches: Callable[[int], Iterator[tuple[torch.Tensor, torch.Tensor]]]
    eval_batches: Callable[[], Iterator[tuple[torch.Tensor, torch.Tensor]]]
    num_train_batches: int
    num_eval_batches: int

    def describe(self) -> str:
        """One line for the card: name, size and how it was split."""
        return (
            f"{self.name}: {self.size} images ({self.num_train} train the pseudo descendant, {self.num_eval} held out)"
        )


def _dataset_name(dataset, fallback: str) -> str:
    info = getattr(dataset, "info", None)
    name = getattr(info, "dataset_name", None) or getattr(info, "builder_name", None) or fallback
    split = getattr(dataset, "split", None)
    return f"{name} [{split}]" if split is not None else str(name)


def _resolve_dataset(condense_dataset, split: str | None):
    """A `datasets.Dataset` (and a name for it) from whatever the user gave, or the DataLoader itself."""
    if isinstance(condense_dataset, DataLoader):
        return condense_dataset, "DataLoader"
    from datasets import Dataset, DatasetDict

    from ..data import load_image_dataset

    name = None
    if isinstance(condense_dataset, (str, os.PathLike)):
        source = os.fspath(condense_dataset)
        condense_dataset = load_image_dataset(source, split=split)
        # A local folder is named by its last component: no path of this machine goes into a config or card.
        name = os.path.basename(os.path.normpath(source)) if os.path.exists(source) else source
    if isinstance(condense_dataset, DatasetDict):
        if split is None:
            split = "train" if "train" in condense_dataset else next(iter(condense_dataset), None)
        if split not in condense_dataset:
            raise ValueError(
                f"Split {split!r} not found in the condensing set; its splits are {list(condense_dataset)}. "
                "Pass `split=` to choose one."
            )
        condense_dataset = condense_dataset[split]
    if not isinstance(condense_dataset, Dataset):
        raise TypeError(
            "`condense_dataset` must be a datasets.Dataset or DatasetDict, a dataset name or local folder "
            f"(read with datasets.load_dataset), or a torch DataLoader; got {type(condense_dataset).__name__}."
        )
    if name is not None:
        split_name = getattr(condense_dataset, "split", None)
        name = f"{name} [{split_name}]" if split_name is not None else name
    return condense_dataset, name or _dataset_name(condense_dataset, "in-memory Dataset")


def check_channels(pixel_values: torch.Tensor, ancestor: Ancestor) -> torch.Tensor:
    """Match the channel count of a batch to the ancestor (grayscale is replicated to RGB, anything else raises) and
    refuse non-finite pixels, which would make every score meaningless."""
    if not torch.isfinite(pixel_values).all():
        raise ValueError(
            "The condensing set has non-finite (NaN or inf) pixels: check its preprocessing (e.g. a division by a "
            "zero standard deviation) and pass finite images."
        )
    expected = int(getattr(ancestor.config, "num_channels", 3))
    if pixel_values.ndim != 4:
        raise ValueError(
            f"Condensing batches must hold images of shape (batch, channels, height, width); got "
            f"{tuple(pixel_values.shape)}."
        )
    channels = pixel_values.shape[1]
    if channels == expected:
        return pixel_values
    if channels == 1 and expected == 3:
        return pixel_values.expand(-1, 3, -1, -1)
    raise ValueError(
        f"The condensing images have {channels} channel(s) but the ancestor takes {expected}: convert them "
        f"to {expected} channel(s) (e.g. `image.convert('RGB')`), or condense an ancestor with num_channels={channels}."
    )


def _unpack(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(batch, dict):
        pixel_values = batch.get("pixel_values")
        labels = batch.get("labels", batch.get("label"))
        if pixel_values is None or labels is None:
            raise ValueError(
                "Each DataLoader batch must give `pixel_values` and `labels` (a dict) or be a (pixel_values, labels) "
                f"pair; this batch has keys {sorted(batch)}."
            )
    elif isinstance(batch, (list, tuple)) and len(batch) == 2:
        pixel_values, labels = batch
    else:
        raise ValueError(
            "Each DataLoader batch must be a dict with `pixel_values` and `labels`, or a (pixel_values, labels) pair; "
            f"got {type(batch).__name__}."
        )
    return torch.as_tensor(pixel_values).float(), torch.as_tensor(labels).long().view(-1)


def _from_dataloader(
    loader: DataLoader, ancestor: Ancestor, *, max_samples: int | None, holdout: float, num_labels: int | None
) -> CondensingData:
    # One scan (no model involved) counts the images, finds the classes and checks the channels; a loader without a
    # length (an iterable or streaming dataset) may never end, so it needs a bound.
    try:
        len(loader)
    except TypeError:
        if max_samples is None:
            raise ValueError(
                "The condensing DataLoader has no length (an iterable or streaming dataset), so it may never end: "
                "pass `max_samples=N` to take its first N images."
            ) from None
    sizes, max_label, seen = [], -1, set()
    for batch in loader:
        pixel_values, labels = _unpack(batch)
        check_channels(pixel_values, ancestor)
        if labels.numel() and int(labels.min()) < 0:
            raise ValueError(f"Labels must be class indices >= 0; the DataLoader gave {int(labels.min())}.")
        if max_samples is not None:
            labels = labels[: max_samples - sum(sizes)]
        if labels.numel():
            sizes.append(labels.numel())
            max_label = max(max_label, int(labels.max()))
            seen.update(labels.unique().tolist())
        if max_samples is not None and sum(sizes) >= max_samples:
            break
    _check_size(sum(sizes))
    if len(seen) < 2:
        raise ValueError(
            "The condensing DataLoader gives a single class: a pseudo descendant cannot learn from it and every layer "
            "would score alike. Use images of at least two (better, several) classes."
        )
    if len(sizes) < 2:
        raise ValueError(
            f"The condensing DataLoader gives a single batch ({sizes[0]} images): use a smaller batch size so that "
            "some batches can be held out for scoring (at least 2 batches)."
        )
    every = max(2, round(1 / holdout))
    eval_index = {i for i in range(len(sizes)) if i % every == every - 1} or {len(sizes) - 1}
    if all(sizes[i] < MIN_EVAL_BATCH for i in eval_index):
        raise ValueError(
            f"The held-out batches of the condensing DataLoader have fewer than {MIN_EVAL_BATCH} images; use a "
            "batch size of at least 4."
        )
    found = max_label + 1
    if num_labels is not None and num_labels < found:
        raise ValueError(f"`num_labels={num_labels}` but the DataLoader has labels up to {max_label}.")
    num_labels = num_labels or found

    def batches(keep_eval: bool) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for i, batch in enumerate(loader):
            if i >= len(sizes):
                break
            if (i in eval_index) == keep_eval:
                pixel_values, labels = _unpack(batch)
                yield check_channels(pixel_values[: sizes[i]], ancestor), labels[: sizes[i]]

    num_eval = sum(sizes[i] for i in eval_index)
    return CondensingData(
        name="DataLoader",
        size=sum(sizes),
        num_train=sum(sizes) - num_eval,
        num_eval=num_eval,
        num_labels=num_labels,
        train_batches=lambda epoch: batches(False),
        eval_batches=lambda: batches(True),
        num_train_batches=len(sizes) - len(eval_index),
        num_eval_batches=len(eval_index),
    )


def _check_size(size: int) -> None:
    if size == 0:
        raise ValueError("The condensing set is empty (0 images): pass a dataset with labelled images.")
    if size < MIN_IMAGES:
        raise ValueError(
            f"The condensing set has {size} images; data-driven condensing needs at least {MIN_IMAGES} (some train "
            "the pseudo descendant, at least 4 are held out to score the layers)."
        )


def load_condensing_data(
    condense_dataset,
    ancestor: Ancestor,
    *,
    image_column: str | None = None,
    label_column: str | None = None,
    split: str | None = None,
    max_samples: int | None = None,
    batch_size: int = 32,
    holdout: float = 0.2,
    seed: int = 0,
    image_processor=None,
    num_workers: int = 0,
    num_labels: int | None = None,
) -> CondensingData:
    """Prepare a condensing set for a data-driven condensing method.

    Args:
        condense_dataset (`datasets.Dataset`, `datasets.DatasetDict`, `str` or `torch.utils.data.DataLoader`):
            The images and labels. A `str` is a dataset name or a local folder (read with `datasets.load_dataset`).
            A DataLoader yields dicts with `pixel_values` and `labels`, or `(pixel_values, labels)` pairs, already
            preprocessed for the ancestor.
        ancestor ([`Ancestor`]):
            The ancestry model (its image size, channels and image processor are used).
        image_column (`str`, *optional*):
            Image column; detected when not given.
        label_column (`str`, *optional*):
            Label column; detected when not given.
        split (`str`, *optional*):
            Split of a `DatasetDict` or named dataset; `"train"` (else the first) when not given.
        max_samples (`int`, *optional*):
            Use at most this many images (a seeded random subset of a dataset; the first ones of a DataLoader).
        batch_size (`int`, *optional*, defaults to 32):
            Images per batch (ignored for a DataLoader, which has its own).
        holdout (`float`, *optional*, defaults to 0.2):
            Fraction of the set held out for scoring the layers (every `round(1 / holdout)`-th batch of a DataLoader).
        seed (`int`, *optional*, defaults to 0):
            Seed of the subset, the split and the shuffling.
        image_processor (*optional*):
            Preprocessing of the images; the ancestor's own when it has one, else
            `hf_learngene.data.default_image_processor(ancestor.config)`.
        num_workers (`int`, *optional*, defaults to 0):
            DataLoader workers decoding images.
        num_labels (`int`, *optional*):
            Classes of the pseudo descendant's head; found in the data when not given.
    """
    _check_options(max_samples, holdout, batch_size)
    dataset, name = _resolve_dataset(condense_dataset, split)
    if isinstance(dataset, DataLoader):
        return _from_dataloader(dataset, ancestor, max_samples=max_samples, holdout=holdout, num_labels=num_labels)
    return _from_dataset(
        dataset,
        name,
        ancestor,
        image_column=image_column,
        label_column=label_column,
        max_samples=max_samples,
        batch_size=batch_size,
        holdout=holdout,
        seed=seed,
        image_processor=image_processor,
        num_workers=num_workers,
        num_labels=num_labels,
    )


def _check_options(max_samples, holdout, batch_size) -> None:
    if max_samples is not None and (isinstance(max_samples, bool) or not isinstance(max_samples, int)):
        raise ValueError(f"`max_samples` must be a positive integer, got {max_samples!r}.")
    if max_samples is not None and max_samples < 1:
        raise ValueError(f"`max_samples` must be >= 1, got {max_samples}.")
    if isinstance(holdout, bool) or not isinstance(holdout, (int, float)) or not 0.0 < holdout < 1.0:
        raise ValueError(f"`holdout` must be a fraction in (0, 1), got {holdout!r}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be an integer >= 1, got {batch_size!r}.")


def _from_dataset(
    dataset,
    name: str,
    ancestor: Ancestor,
    *,
    image_column: str | None,
    label_column: str | None,
    max_samples: int | None,
    batch_size: int,
    holdout: float,
    seed: int,
    image_processor,
    num_workers: int,
    num_labels: int | None,
) -> CondensingData:
    """Batches of a `datasets.Dataset`, decoded and preprocessed lazily, split once into training and held-out rows."""
    from ..data import collate_fn, default_image_processor, find_columns, label_maps, prepare_dataset

    _check_size(len(dataset))
    image_column, label_column = find_columns(dataset, image_column, label_column)
    found = len(label_maps(dataset, label_column)[0])
    if num_labels is not None and num_labels < found:
        raise ValueError(
            f"`num_labels={num_labels}` but the condensing set's {label_column!r} column has {found} classes."
        )
    num_labels = num_labels or found
    channels = int(getattr(ancestor.config, "num_channels", 3))
    if channels not in (1, 3):
        raise ValueError(
            f"The ancestor takes {channels}-channel images; images from a dataset can be converted to 1 (grayscale) "
            f"or 3 (RGB) channels only. Pass a DataLoader that yields {channels}-channel `pixel_values` instead."
        )
    processor = image_processor or ancestor.image_processor or default_image_processor(ancestor.config)
    order = np.random.default_rng(seed).permutation(len(dataset))
    if max_samples is not None:
        order = order[:max_samples]
    _check_size(len(order))
    present = len(set(dataset.select(order.tolist())[label_column]))
    if present < 2:
        raise ValueError(
            f"The condensing set holds a single class (column {label_column!r}): a pseudo descendant cannot learn "
            "from it and every layer would score alike. Use images of at least two (better, several) classes."
        )
    num_eval = max(MIN_EVAL_BATCH, round(holdout * len(order)))
    eval_rows, train_rows = sorted(order[:num_eval].tolist()), sorted(order[num_eval:].tolist())

    def prepare(rows: list[int]):
        return prepare_dataset(
            dataset.select(rows),
            processor,
            image_column=image_column,
            label_column=label_column,
            num_channels=channels,
            num_labels=num_labels,
        )

    train_set, eval_set = prepare(train_rows), prepare(eval_rows)

    def batches(part, shuffle: bool, epoch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch) if shuffle else None
        loader = DataLoader(
            part,
            batch_size=batch_size,
            shuffle=shuffle,
            generator=generator,
            collate_fn=collate_fn,
            num_workers=num_workers,
        )
        for batch in loader:
            yield check_channels(batch["pixel_values"], ancestor), batch["labels"]

    return CondensingData(
        name=name,
        size=len(order),
        num_train=len(train_rows),
        num_eval=len(eval_rows),
        num_labels=num_labels,
        train_batches=lambda epoch: batches(train_set, True, epoch),
        eval_batches=lambda: batches(eval_set, False),
        num_train_batches=-(-len(train_rows) // batch_size),
        num_eval_batches=-(-len(eval_rows) // batch_size),
    )


def prepare_data(condense_dataset, ancestor: Ancestor, options: DataOptions, seed: int) -> CondensingData:
    """[`load_condensing_data`] with the options of a [`DataOptions`]."""
    return load_condensing_data(
        condense_dataset,
        ancestor,
        image_column=options.image_column,
        label_column=options.label_column,
        split=options.split,
        max_samples=options.max_samples,
        batch_size=options.batch_size,
        holdout=options.holdout,
        seed=seed,
        image_processor=options.image_processor,
        num_workers=options.num_workers,
        num_labels=options.num_labels,
    )


__all__ = ["CondensingData", "DataOptions", "check_channels", "load_condensing_data", "prepare_data"]
