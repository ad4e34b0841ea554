"""What `from_pretrained` refuses and reports: missing inherited weights, layers the config does not match, the new
weights of a descendant grown from a learngene, and a fine-tuned descendant whose head is missing."""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager

import pytest
import torch
from safetensors.torch import load_file, save_file
from tiny_models import pixel_values, tiny_vit

from hf_learngene import DescendantForImageClassification, LearngeneModel, condense


@contextmanager
def transformers_warnings():
    """What transformers logs at WARNING and above (its logger does not propagate to pytest's caplog)."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(record)

    from transformers.utils import logging as hf_logging

    handler = Collect(level=logging.WARNING)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_warning()  # whatever an earlier test left it at
    logging.getLogger("transformers").addHandler(handler)
    try:
        yield records
    finally:
        logging.getLogger("transformers").removeHandler(handler)
        hf_logging.set_verbosity(verbosity)


@pytest.fixture
def learngene_dir(tmp_path):
    condense(tiny_vit(seed=4), method="manual", layers=[0, 2, 3]).save_pretrained(tmp_path / "learngene")
    return tmp_path / "learngene"


def _edit_weights(folder, keep=lambda key: True, rename=lambda key: key):
    weights = load_file(folder / "model.safetensors")
    save_file({rename(k): v for k, v in weights.items() if keep(k)}, folder / "model.safetensors", {"format": "pt"})


def _edit_config(folder, **changes):
    path = folder / "config.json"
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


def test_a_descendant_without_its_head_is_reported_not_silently_random(learngene_dir, tmp_path):
    trained = DescendantForImageClassification.from_pretrained(learngene_dir, num_labels=3, layout="LRLL")
    trained.save_pretrained(tmp_path / "trained")
    _edit_weights(tmp_path / "trained", keep=lambda k: not k.startswith(("classifier.", "new_layers.")))
    with transformers_warnings() as warnings:
        reloaded, info = DescendantForImageClassification.from_pretrained(
            tmp_path / "trained", output_loading_info=True
        )
    missing = set(info["missing_keys"])
    assert {"classifier.weight", "classifier.bias"} <= missing and any(k.startswith("new_layers.") for k in missing)
    assert any("classifier.weight" in w.getMessage() for w in warnings), "transformers must warn about the head"


def test_growing_from_a_learngene_lists_the_new_weights_without_warning(learngene_dir):
    with transformers_warnings() as warnings:
        model, info = DescendantForImageClassification.from_pretrained(
            learngene_dir, num_labels=3, layout="LRLRL", output_loading_info=True
        )
    assert set(info["missing_keys"]) == {k for k in model.state_dict() if k.startswith(("new_layers.", "classifier."))}
    assert not [w for w in warnings if "missing" in w.getMessage().lower() or "newly" in w.getMessage().lower()]


def test_missing_inherited_layers_fail_to_load(learngene_dir):
    # A config that names more layers than the weights hold (e.g. a config written over older weights).
    _edit_config(learngene_dir, layer_indices=[0, 1, 2, 3], num_hidden_layers=4)
    for load in (
        lambda: LearngeneModel.from_pretrained(learngene_dir),
        lambda: DescendantForImageClassification.from_pretrained(learngene_dir, num_labels=2, num_new_layers=1),
    ):
        with pytest.raises(OSError, match=r"missing inherited weights \['(learngene\.)?layers\.3\."):
            load()


def test_weights_of_layers_the_config_lacks_fail_to_load(learngene_dir):
    _edit_config(learngene_dir, layer_indices=[0, 2], num_hidden_layers=2)
    with pytest.raises(OSError, match=r"layers the config does not have \['layers\.2\."):
        LearngeneModel.from_pretrained(learngene_dir)


def test_missing_embeddings_fail_to_load(learngene_dir):
    _edit_weights(learngene_dir, keep=lambda k: not k.startswith("embeddings.position"))
    with pytest.raises(OSError, match="embeddings.position_embeddings"):
        LearngeneModel.from_pretrained(learngene_dir)


def test_a_depth_that_disagrees_with_the_layers_is_refused(learngene_dir):
    _edit_config(learngene_dir, num_hidden_layers=12)
    with pytest.raises(ValueError, match="num_hidden_layers"):
        LearngeneModel.from_pretrained(learngene_dir)


def test_a_complete_checkpoint_still_loads_exactly(learngene_dir):
    model = LearngeneModel.from_pretrained(learngene_dir).eval()
    again = LearngeneModel.from_pretrained(learngene_dir).eval()
    x = pixel_values(batch=2)
    with torch.no_grad():
        assert torch.equal(model(x).last_hidden_state, again(x).last_hidden_state)


@pytest.mark.parametrize("num_labels", [0, -3])
def test_empty_or_negative_heads_are_refused(learngene_dir, num_labels):
    with pytest.raises(ValueError, match="num_labels"):
        DescendantForImageClassification.from_pretrained(learngene_dir, num_labels=num_labels, num_new_layers=1)
