"""Hostile input and faults (issue "Reliability"): outputs written all at once and only over outputs of the same kind,
meaningless condensing scores refused, inputs never coerced silently, images of every bit depth read right, and no
hang on an endless DataLoader. Faults are real processes killed with SIGKILL at a chosen point."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from tiny_models import tiny_vit
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

from hf_learngene import DescendantForImageClassification, LearngeneModel, condense
from hf_learngene.data import _to_pil, load_digits_dataset
from hf_learngene.demo import check_demo_output
from hf_learngene.model_card import HEATMAP_FILE
from hf_learngene.serialization import REPORT_FILE

FAST = {"batch_size": 16, "epochs": 1, "quiet": True}


@pytest.fixture(scope="module")
def ancestor_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("ancestor")
    tiny_vit(seed=5, image_size=8, patch_size=2).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def digits():
    return load_digits_dataset(classes=[0, 1, 2, 3])


# ------------------------------------------------------------------------------------------------ data loss


_KILL_WHILE_SAVING = textwrap.dedent(
    """
    import os, signal, sys
    import transformers.modeling_utils as modeling_utils
    from hf_learngene import condense

    write = modeling_utils.safe_save_file

    def write_then_die(*args, **kwargs):
        write(*args, **kwargs)  # the new weights are on disk (in the scratch folder), config.json too
        os.kill(os.getpid(), signal.SIGKILL)

    modeling_utils.safe_save_file = write_then_die
    condense(sys.argv[1], method="first", num_layers=3, output_dir=sys.argv[2], overwrite=True)
    """
)


def test_a_kill_while_condense_overwrites_leaves_the_previous_learngene_intact(ancestor_dir, tmp_path):
    target = tmp_path / "learngene"
    condense(str(ancestor_dir), method="manual", layers=[1, 2], output_dir=target)
    before = load_file(target / "model.safetensors")
    result = subprocess.run(
        [sys.executable, "-c", _KILL_WHILE_SAVING, str(ancestor_dir), str(target)], capture_output=True, timeout=300
    )
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    # The old learngene is whole: its config and its weights agree, and it loads with its two layers.
    reloaded = LearngeneModel.from_pretrained(target)
    assert reloaded.config.layer_indices == [1, 2]
    after = load_file(target / "model.safetensors")
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    # The killed run's scratch folder is hidden beside the target and removed by the next write.
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-learngene-")]
    condense(str(ancestor_dir), method="first", num_layers=3, output_dir=target, overwrite=True)
    assert LearngeneModel.from_pretrained(target).config.layer_indices == [0, 1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["learngene"]


def test_overwrite_refuses_the_ancestor_and_foreign_folders(ancestor_dir, tmp_path):
    files = sorted(p.name for p in ancestor_dir.iterdir())
    with pytest.raises(FileExistsError, match="may only replace a previous learngene"):
        condense(str(ancestor_dir), method="first", num_layers=1, output_dir=ancestor_dir, overwrite=True)
    assert sorted(p.name for p in ancestor_dir.iterdir()) == files
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="not empty"):
        condense(str(ancestor_dir), method="first", num_layers=1, output_dir=mine)
    with pytest.raises(FileExistsError, match="did not write"):
        condense(str(ancestor_dir), method="first", num_layers=1, output_dir=mine, overwrite=True)
    assert (mine / "notes.txt").read_text() == "keep"


def test_overwrite_leaves_no_stale_file_of_the_previous_learngene(ancestor_dir, digits, tmp_path):
    target = tmp_path / "learngene"
    condense(str(ancestor_dir), method="cka", num_layers=2, condense_dataset=digits, output_dir=target, **FAST)
    assert (target / HEATMAP_FILE).is_file() and (target / REPORT_FILE).is_file()
    (target / "model.safetensors.index.json").write_text("{}")  # as a sharded save would leave
    condense(str(ancestor_dir), method="first", num_layers=2, output_dir=target, overwrite=True)
    names = {p.name for p in target.iterdir()}
    assert not {HEATMAP_FILE, REPORT_FILE, "model.safetensors.index.json"} & names
    assert LearngeneModel.from_pretrained(target).config.condensing_method == "first"


def test_demo_overwrite_replaces_only_a_previous_demo(tmp_path):
    user = tmp_path / "user"
    (user / "learngene").mkdir(parents=True)
    (user / "learngene" / "mine.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="does not hold a previous demo output"):
        check_demo_output(user, overwrite=True)
    previous = tmp_path / "previous"
    previous.mkdir()
    (previous / "results.json").write_text(json.dumps({"demo": True}))
    assert check_demo_output(previous, overwrite=True) == str(previous)
    with pytest.raises(FileExistsError, match="--overwrite"):
        check_demo_output(previous, overwrite=False)


# ------------------------------------------------------------------------------------------ silent wrong results


def test_non_finite_scores_are_refused(ancestor_dir):
    images = torch.randn(48, 3, 8, 8)
    images[::3] = float("nan")
    loader = DataLoader(TensorDataset(images, torch.arange(48) % 3), batch_size=8)
    with pytest.raises(ValueError, match="non-finite .NaN or inf. pixels"):
        condense(str(ancestor_dir), method="cka", num_layers=2, condense_dataset=loader, epochs=1, quiet=True)
    # Scores that come out non-finite anyway (a diverging pseudo descendant) are refused by name.
    from hf_learngene.condensing.registry import check_scores

    with pytest.raises(ValueError, match=r"non-finite scores for ancestry layers \[1\]"):
        check_scores([0.5, float("nan"), 0.2], "auto")
    with pytest.raises(ValueError, match="same score"):
        check_scores([0.0, 0.0, 0.0], "cka")


def test_a_one_class_condensing_set_cannot_choose_layers(ancestor_dir, digits):
    one_class = digits.filter(lambda row: row["label"] == 0)
    for method in ("auto", "cka"):
        with pytest.raises(ValueError, match="single class"):
            condense(str(ancestor_dir), method=method, num_layers=2, condense_dataset=one_class, **FAST)
    loader = DataLoader(TensorDataset(torch.randn(32, 3, 8, 8), torch.zeros(32, dtype=torch.long)), batch_size=8)
    with pytest.raises(ValueError, match="single class"):
        condense(str(ancestor_dir), method="cka", num_layers=2, condense_dataset=loader, epochs=0, quiet=True)


@pytest.mark.parametrize("layers", [[1.9, 2.7], ["1", "2"], [True, False], "13", 3])
def test_manual_layers_are_never_coerced(ancestor_dir, layers):
    with pytest.raises(ValueError, match="integers"):
        condense(str(ancestor_dir), method="manual", layers=layers)


@pytest.mark.parametrize("method", ["first", "heuristic", "random"])
def test_data_free_methods_refuse_what_they_would_ignore(ancestor_dir, digits, method):
    with pytest.raises(ValueError, match=r"Unknown option\(s\) \['seeed'\]"):
        condense(str(ancestor_dir), method=method, num_layers=2, seeed=1)
    with pytest.raises(ValueError, match="layers="):
        condense(str(ancestor_dir), method=method, num_layers=2, layers=[0, 1])
    with pytest.raises(ValueError, match="does not use a condensing set"):
        condense(str(ancestor_dir), method=method, num_layers=2, condense_dataset=digits)


def test_a_head_from_id2label_alone(ancestor_dir, tmp_path):
    condense(str(ancestor_dir), method="first", num_layers=2, output_dir=tmp_path / "lg")
    model = DescendantForImageClassification.from_pretrained(
        tmp_path / "lg", id2label={0: "cat", 1: "dog", 2: "eel"}, num_new_layers=1
    )
    assert model.config.num_labels == 3 and model.classifier.out_features == 3


@pytest.mark.parametrize("mode", ["I;16", "I", "F"])
def test_wide_grayscale_images_are_scaled_not_clipped(mode):
    ramp = np.linspace(0, 1, 64 * 64).reshape(64, 64)
    if mode == "F":
        image = Image.fromarray(ramp.astype(np.float32), mode="F")
    else:
        image = Image.fromarray((ramp * 65535).astype(np.uint16 if mode == "I;16" else np.int32))
        image = image.convert(mode) if image.mode != mode else image
    pixels = np.asarray(_to_pil(image).convert("L"), dtype=float)
    assert (pixels == 255).mean() < 0.01  # PIL's own convert("L") turns 99.6% of a 16-bit ramp white
    assert abs(pixels.mean() - 127.5) < 2


def test_a_corrupt_image_file_is_named(tmp_path):
    from datasets import Dataset
    from datasets import Image as ImageFeature

    from hf_learngene.configuration_learngene import LearngeneConfig
    from hf_learngene.data import default_image_processor, prepare_dataset

    good, bad = tmp_path / "good.png", tmp_path / "broken.png"
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(good)
    bad.write_bytes(good.read_bytes()[:20])
    ds = Dataset.from_dict({"image": [str(good), str(bad)], "label": [0, 1]}).cast_column("image", ImageFeature())
    processor = default_image_processor(LearngeneConfig(image_size=8, patch_size=2))
    prepared = prepare_dataset(ds, processor)
    assert prepared[0]["pixel_values"].shape == (3, 8, 8)
    with pytest.raises(ValueError, match="broken.png"):
        prepared[1]


# ------------------------------------------------------------------------------------------------ hangs, crashes


class _Endless(IterableDataset):
    def __iter__(self):
        while True:
            yield torch.randn(3, 8, 8), torch.randint(0, 3, ()).item()


def test_an_endless_dataloader_needs_max_samples(ancestor_dir):
    loader = DataLoader(_Endless(), batch_size=8)
    with pytest.raises(ValueError, match="max_samples"):
        condense(str(ancestor_dir), method="cka", num_layers=1, condense_dataset=loader, epochs=0, quiet=True)
    learngene = condense(
        str(ancestor_dir), method="cka", num_layers=1, condense_dataset=loader, max_samples=48, epochs=1, quiet=True
    )
    assert learngene.config.condensing_details["condensing_set_size"] == 48


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without a GPU")
def test_cuda_without_a_gpu_is_a_clear_error(ancestor_dir, digits):
    with pytest.raises(ValueError, match="no CUDA GPU"):
        condense(str(ancestor_dir), method="cka", num_layers=1, condense_dataset=digits, device="cuda", **FAST)


def test_a_shard_index_cannot_point_outside_the_checkpoint(ancestor_dir, tmp_path):
    folder = tmp_path / "sharded"
    folder.mkdir()
    for name in ("config.json",):
        (folder / name).write_bytes((ancestor_dir / name).read_bytes())
    save_file(load_file(ancestor_dir / "model.safetensors"), tmp_path / "outside.safetensors")
    index = {"metadata": {}, "weight_map": {"embeddings.cls_token": "../outside.safetensors"}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(OSError, match="outside the checkpoint folder"):
        condense(str(folder), method="first", num_layers=1)


def test_orphans_of_dead_processes_only_are_removed(tmp_path):
    from hf_learngene.utils import atomic_folder

    target = tmp_path / "out"
    alive = tmp_path / f".tmp-out-{os.getpid()}-keep"  # this very process: a write in progress
    dead = tmp_path / ".tmp-out-999999999-gone"
    alive.mkdir()
    dead.mkdir()
    with atomic_folder(target) as scratch:
        (tmp_path / scratch / "f").write_text("x")
    assert alive.is_dir() and not dead.exists() and (target / "f").read_text() == "x"
