"""`--dataset`, `--split`, `--eval-split` and `--test-size`: which images a command trains on and which it scores.

Held-out images are never training images: a dataset without a test or validation split gets one with `--test-size`
(a stratified cut with a fixed seed, so `inherit --test-size 0.2` and `evaluate --test-size 0.2` cut the same images),
and `evaluate` refuses to score a training split unless asked to with `--split train`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence

from .arguments import OFFLINE_DATASETS, OFFLINE_PREFIX
from .common import CLIError, check_source, one_line

_OFFLINE_TEST_FRACTION = 0.2
HELD_OUT_SPLITS = ("test", "validation", "valid")
_HOLD_OUT_SEED = 0  # fixed, not --seed: evaluate must cut exactly the images inherit held out


def load_offline_dataset(
    name: str,
    split: str | None = None,
    classes: list[int] | None = None,
    max_per_class: int | None = None,
    seed: int = 0,
):
    """One of the offline real image sets (`fashion-mnist`, `mnist`, `digits`) as a `Dataset` (one split) or a
    `DatasetDict` with `train` and `test`. MNIST and digits have no official split: a stratified 80/20 split with
    `seed` is made, so `train` and `test` never share an image. The commands keep `seed` at 0 whatever their
    `--seed`, so `evaluate --split test` scores exactly the images `inherit` held out."""
    from datasets import DatasetDict

    from .. import data

    if name not in OFFLINE_DATASETS:
        raise CLIError(f"Unknown offline dataset {name!r}; choose one of {', '.join(OFFLINE_DATASETS)}.")
    if split is not None and split not in ("train", "test"):
        raise CLIError(f"The offline dataset {name!r} has splits 'train' and 'test'; got --split {split}.")
    if name == "fashion-mnist":
        splits = [split] if split else ["train", "test"]
        loaded = {
            s: data.load_fashion_mnist(s, classes=classes, max_per_class=max_per_class, seed=seed) for s in splits
        }
        return loaded[split] if split else DatasetDict(loaded)
    loader = data.load_mnist if name == "mnist" else data.load_digits_dataset
    full = loader(classes=classes, max_per_class=max_per_class, seed=seed)
    parts = full.train_test_split(test_size=_OFFLINE_TEST_FRACTION, stratify_by_column="label", seed=seed)
    return parts[split] if split else parts


def load_dataset_arg(
    source: str, split: str | None, classes: list[int] | None = None, max_per_class: int | None = None
):
    """`--dataset`: `offline:NAME`, a local folder (imagefolder or `save_to_disk`) or a Hub dataset name."""
    from ..data import load_image_dataset

    if source.startswith(OFFLINE_PREFIX):
        return load_offline_dataset(source[len(OFFLINE_PREFIX) :], split, classes, max_per_class)
    if classes is not None or max_per_class is not None:
        raise CLIError(
            f"--classes and --max-per-class apply to the offline datasets ({OFFLINE_PREFIX}NAME); filter your own "
            "dataset before saving it."
        )
    source = check_source(source, "Dataset")
    try:
        return load_image_dataset(source, split=split)
    except (ValueError, KeyError) as error:
        message = one_line(error)
        if split is not None and "split" in message.lower():
            raise CLIError(f"Split {split!r} not found in dataset {source!r}: {message}") from error
        raise
    except OSError as error:  # a Hub dataset that does not exist, or no network
        raise CLIError(f"Cannot load the dataset {source!r}: {one_line(error)}") from error


def pick_split(dataset, wanted: str | None, fallbacks: Sequence[str], what: str):
    """A `Dataset` out of a `DatasetDict` (or the dataset itself); None when no fallback exists."""
    from datasets import DatasetDict

    if not isinstance(dataset, DatasetDict):
        return dataset
    if wanted is not None:
        if wanted not in dataset:
            raise CLIError(f"Split {wanted!r} not found for the {what}; the dataset has splits {list(dataset)}.")
        return dataset[wanted]
    for name in fallbacks:
        if name in dataset:
            return dataset[name]
    return None


def hold_out(dataset, size: float | int):
    """`(train, held_out)`: a stratified cut (by a `ClassLabel` column) with a fixed seed, so every command that
    asks for the same `--test-size` of the same images gets the same held-out part."""
    from datasets import ClassLabel

    from ..data import find_columns

    if isinstance(size, int) and size >= len(dataset):
        raise CLIError(f"--test-size {size} holds out every image of the {len(dataset):,}; pass fewer or a fraction.")
    _, label_column = find_columns(dataset)
    stratify = label_column if isinstance(dataset.features[label_column], ClassLabel) else None
    try:
        parts = dataset.train_test_split(test_size=size, seed=_HOLD_OUT_SEED, stratify_by_column=stratify)
    except ValueError as error:
        raise CLIError(f"--test-size {size}: {one_line(error)}") from error
    return parts["train"], parts["test"]


def _classes(args) -> list[int] | None:
    from .common import parse_int_list

    return parse_int_list(args.classes, "--classes")


def _as_splits(dataset):
    """A dataset without named splits is a training split."""
    from datasets import DatasetDict

    return dataset if isinstance(dataset, DatasetDict) else DatasetDict({"train": dataset})


def training_splits(args, say_note):
    """`inherit`'s training and evaluation sets (the evaluation set may be None, with a note saying so)."""
    dataset = _as_splits(load_dataset_arg(args.dataset, None, _classes(args), args.max_per_class))
    train = pick_split(dataset, args.split, ("train",), "training set")
    if train is None:
        raise CLIError(f"No 'train' split in {args.dataset!r}; name the training split with --split.")
    evaluation = pick_split(dataset, args.eval_split, HELD_OUT_SPLITS, "evaluation set")
    if evaluation is not None and args.test_size is not None:
        raise CLIError(
            "--test-size holds out part of the training split when the dataset has no test or validation split; "
            "this one has one. Drop --test-size, or pick the evaluation split with --eval-split."
        )
    if evaluation is None and args.test_size is not None:
        train, evaluation = hold_out(train, args.test_size)
        say_note(f"held out {len(evaluation):,} of {len(train) + len(evaluation):,} images (--test-size).")
    elif evaluation is None:
        say_note(
            "no test/validation split: training without evaluation. Pass --test-size 0.2 to hold out 20% of the "
            "images (evaluate --test-size 0.2 then scores the same ones)."
        )
    return train, evaluation


def evaluation_split(args, warn):
    """`evaluate`'s images and the name of their split: never training images unless `--split train` asks."""
    dataset = _as_splits(load_dataset_arg(args.dataset, None, _classes(args), args.max_per_class))
    if args.split is not None:
        split = pick_split(dataset, args.split, (), "evaluation")
        if args.test_size is not None:
            return hold_out(split, args.test_size)[1], f"{args.split} (held out: --test-size {args.test_size})"
        if args.split == "train":
            warn("scoring training images (--split train): the numbers say how well the model fits them, not how "
                 "it generalises.")  # fmt: skip
        return split, args.split
    name = next((name for name in HELD_OUT_SPLITS if name in dataset), None)
    if name is not None:
        if args.test_size is not None:
            raise CLIError("--test-size applies to a dataset without a test or validation split; this one has one.")
        return dataset[name], name
    if "train" in dataset and args.test_size is not None:
        return hold_out(dataset["train"], args.test_size)[1], f"train (held out: --test-size {args.test_size})"
    raise CLIError(
        f"{args.dataset!r} has no test or validation split (splits: {list(dataset)}), so evaluate would score "
        "training images. Pass --test-size F (the fraction inherit held out with --test-size) to score the held-out "
        "images, or --split NAME to score a split on purpose."
    )


def card_dataset_name(source: str) -> str | None:
    # Only a Hub dataset name belongs in the card's `datasets:` metadata; local and offline sets name themselves.
    return None if source.startswith(OFFLINE_PREFIX) or os.path.exists(source) else source


def unreadable_image(dataset) -> str | None:
    """The first image of `dataset` that cannot be decoded, as `"<file or row>: <error>"` (None when all can)."""
    from datasets import Image

    from ..data import find_columns

    column = find_columns(dataset)[0]
    if not isinstance(dataset.features[column], Image):
        return None
    raw = dataset.cast_column(column, Image(decode=False))
    for row, item in enumerate(raw[column]):
        item = item or {}
        try:
            Image().decode_example(item).load()
        except Exception as error:  # noqa: BLE001 - any failure to decode names the file
            return f"{item.get('path') or f'row {row}'}: {one_line(error)}"
    return None


@contextlib.contextmanager
def naming_bad_images(*datasets) -> Iterator[None]:
    """Turn an image that cannot be read (PIL raises an `OSError`, often without the file's name) into an input error
    that names the file: on such a failure the datasets are scanned for the culprit."""
    try:
        yield
    except OSError as error:
        for dataset in datasets:
            culprit = unreadable_image(dataset) if dataset is not None else None
            if culprit is not None:
                raise CLIError(f"Cannot read an image of the dataset: {culprit}") from error
        raise
