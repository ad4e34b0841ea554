"""Data-driven condensing (`cka`, `auto`), the condensing-set inputs and the report, on tiny ViT ancestors and
scikit-learn's real 8x8 digits."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from tiny_models import tiny_vit
from torch.utils.data import DataLoader, TensorDataset

from hf_learngene import CONDENSING_METHODS, DescendantForImageClassification, LearngeneConfig, LearngeneModel, condense
from hf_learngene.ancestry import load_ancestor
from hf_learngene.condensing.auto import AutoOptions, PairWeightNetwork, optimizer_step, unrolled_objective
from hf_learngene.condensing.cka import MinibatchCKA, gram, unbiased_hsic
from hf_learngene.condensing.pseudo_descendant import PseudoOptions, build_pseudo_descendant
from hf_learngene.data import load_digits_dataset
from hf_learngene.model_card import HEATMAP_FILE
from hf_learngene.serialization import REPORT_FILE

FAST = {"max_samples": 160, "batch_size": 16, "epochs": 1, "quiet": True}


@pytest.fixture(scope="module")
def ancestor():
    """A 4-layer tiny ViT that takes the digits at their own 8x8 resolution (16 patches)."""
    return tiny_vit(seed=0, image_size=8, patch_size=2)


@pytest.fixture(scope="module")
def digits():
    return load_digits_dataset(classes=[0, 1, 2, 3, 4])


def test_data_driven_methods_are_registered():
    assert {"auto", "cka", "first", "heuristic", "manual", "random"} <= set(CONDENSING_METHODS)
    assert CONDENSING_METHODS["auto"].needs_data and CONDENSING_METHODS["cka"].needs_data


@pytest.mark.parametrize("method", ["cka", "auto"])
def test_same_seed_same_selection_and_scores(ancestor, digits, method):
    first = condense(ancestor, method=method, num_layers=2, condense_dataset=digits, seed=0, **FAST)
    again = condense(ancestor, method=method, num_layers=2, condense_dataset=digits, seed=0, **FAST)
    other = condense(ancestor, method=method, num_layers=2, condense_dataset=digits, seed=1, **FAST)
    assert first.config.layer_indices == again.config.layer_indices
    assert first.config.condensing_scores == again.config.condensing_scores
    # Another seed draws another subset, split and pseudo descendant, hence other scores.
    assert other.config.condensing_scores != first.config.condensing_scores


def test_cka_planted_copies_are_selected(ancestor, digits):
    planted = [1, 3]
    source = load_ancestor(ancestor)
    config = LearngeneConfig(**source.geometry(), layer_indices=[0, 1], num_labels=5)
    pseudo = DescendantForImageClassification(config)
    full = source.full_model()
    for position, index in enumerate(planted):
        pseudo.learngene.layers[position].load_state_dict(full.layers[index].state_dict())
    learngene = condense(
        ancestor,
        method="cka",
        num_layers=2,
        condense_dataset=digits,
        pseudo_descendant=pseudo,
        max_samples=160,
        batch_size=16,
        epochs=0,
        quiet=True,
    )
    assert learngene.config.layer_indices == planted
    scores = learngene.config.condensing_scores
    matrix = learngene.condensing_report["cka_matrix"]
    assert "cka_matrix" not in learngene.config.condensing_details  # matrices stay out of config.json
    assert [matrix[1][0], matrix[3][1]] == pytest.approx([1.0, 1.0], abs=1e-6)
    assert max(s for i, s in enumerate(scores) if i not in planted) < 0.999


def test_auto_end_to_end_on_digits(ancestor, digits, tmp_path):
    learngene = condense(
        ancestor,
        method="auto",
        num_layers=2,
        condense_dataset=digits,
        output_dir=tmp_path,
        epochs=2,
        **{k: v for k, v in FAST.items() if k != "epochs"},
    )
    config = learngene.config
    details = config.condensing_details
    measured = learngene.condensing_report
    weights = torch.tensor(measured["pair_weights"])
    assert weights.shape == (4, 2)  # ancestry layers x pseudo-descendant layers (half depth)
    assert (weights - details["settings"]["init_pair_weight"]).abs().max() > 1e-3
    # Weight decay alone would shift every pair alike; the meta-gradient tells them apart.
    assert weights.std() > 1e-4
    assert len(set(config.layer_indices)) == 2 and config.layer_indices == sorted(config.layer_indices)
    assert config.condensing_method == "auto"
    torch.testing.assert_close(torch.tensor(config.condensing_scores), weights.sum(1).float(), rtol=1e-6, atol=1e-6)
    ranked = sorted(range(4), key=lambda i: -config.condensing_scores[i])[:2]
    assert sorted(ranked) == config.layer_indices
    assert [row["epoch"] for row in measured["history"]] == [1, 2]
    assert details["condensing_set_size"] == 160 and "160 images" in details["condensing_set"]
    assert details["settings"]["inner_steps"] == 2 and details["settings"]["beta"] == 0.1

    report = json.loads((tmp_path / REPORT_FILE).read_text())
    assert report["layer_indices"] == config.layer_indices and report["scores"] == config.condensing_scores
    assert report["pair_weights"] == measured["pair_weights"] and report["history"] == measured["history"]
    with Image.open(tmp_path / HEATMAP_FILE) as image:
        assert image.format == "PNG" and image.width > 100
    card = (tmp_path / "README.md").read_text()
    assert f"]({HEATMAP_FILE})" in card and "160 images" in card
    # config.json stays compact: the matrices and histories are in the report only.
    saved = json.loads((tmp_path / "config.json").read_text())["condensing_details"]
    assert {"pair_weights", "history"}.isdisjoint(saved) and saved["settings"]["inner_steps"] == 2
    # The report travels back with from_pretrained, so a re-save keeps it.
    reloaded = LearngeneModel.from_pretrained(tmp_path)
    assert reloaded.condensing_report["pair_weights"] == measured["pair_weights"]
    reloaded.save_pretrained(tmp_path / "again")
    assert json.loads((tmp_path / "again" / REPORT_FILE).read_text())["pair_weights"] == measured["pair_weights"]
    assert (tmp_path / "again" / HEATMAP_FILE).is_file()


def test_dataloader_condensing_set(ancestor):
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(64, 3, 8, 8, generator=generator)
    labels = torch.arange(64) % 3
    loader = DataLoader(TensorDataset(images, labels), batch_size=8)
    learngene = condense(ancestor, method="cka", num_layers=1, condense_dataset=loader, epochs=1, quiet=True)
    details = learngene.config.condensing_details
    assert details["condensing_set_size"] == 64 and details["condensing_set"].startswith("DataLoader")
    assert len(learngene.config.layer_indices) == 1
    # Grayscale batches are replicated to the ancestor's three channels.
    gray = DataLoader(TensorDataset(images[:, :1], labels), batch_size=8)
    condense(ancestor, method="cka", num_layers=1, condense_dataset=gray, epochs=0, quiet=True)


def test_cka_estimator():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, 20, generator=generator, dtype=torch.float64)
    rotation, _ = torch.linalg.qr(torch.randn(20, 20, generator=generator, dtype=torch.float64))
    noise = torch.randn(64, 20, generator=generator, dtype=torch.float64)

    def cka(a, b, batch=16):
        acc = MinibatchCKA(1, 1)
        for i in range(0, 64, batch):
            acc.update(0, 0, gram(a[i : i + batch]), gram(b[i : i + batch]))
        return acc.compute()[0, 0].item()

    assert cka(x, 3.0 * x @ rotation) == pytest.approx(1.0, abs=1e-9)  # invariant to rotation and scale
    assert abs(cka(x, noise)) < 0.2
    assert 0.3 < cka(x, x + noise) < 0.9
    k = gram(x[:8])
    assert unbiased_hsic(k, k).item() > 0


@pytest.mark.parametrize("kind", ["adamw", "sgd"])
def test_functional_optimizer_step_matches_torch(kind):
    torch.manual_seed(0)
    param = torch.randn(5, 3)
    grads = [torch.randn(5, 3) for _ in range(3)]
    options = PseudoOptions(optimizer=kind, lr=0.05, weight_decay=0.01, max_grad_norm=None)
    reference = torch.nn.Parameter(param.clone())
    if kind == "sgd":
        optimizer = torch.optim.SGD([reference], lr=0.05, momentum=0.9, weight_decay=0.01)
    else:
        optimizer = torch.optim.AdamW([reference], lr=0.05, weight_decay=0.01)
    params, state = {"w": param.clone()}, {}
    for grad in grads:
        reference.grad = grad.clone()
        optimizer.step()
        params, state = optimizer_step(params, [grad], state, optimizer=kind, lr=0.05, opts=options)
    torch.testing.assert_close(params["w"], reference.detach(), rtol=1e-5, atol=1e-6)


def test_meta_gradient_flows_through_the_unrolled_steps(ancestor):
    """The pair weights' gradient of the CE loss after the unrolled steps equals finite differences (float64)."""
    source = load_ancestor(ancestor)
    full = source.full_model().double().eval()
    pseudo = build_pseudo_descendant(source, num_labels=3, seed=0).double().train()
    pixel_values = torch.randn(6, 3, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    with torch.no_grad():
        tokens = torch.stack([h[:, 1:] for h in full(pixel_values, output_hidden_states=True).hidden_states[1:]], 1)
    net = PairWeightNetwork(4, 2, num_tokens=16).double()
    params = {name: p.detach() for name, p in pseudo.named_parameters()}
    options = PseudoOptions(optimizer="sgd", max_grad_norm=None)
    kwargs = {"lr": 0.5, "opts": options, "auto_opts": AutoOptions(beta=1.0), "dtype": torch.float32}

    def meta_loss():
        return unrolled_objective(pseudo, params, {}, net, (pixel_values, labels, tokens), **kwargs)[0]

    analytic = torch.autograd.grad(meta_loss(), net.bias)[0]
    assert analytic.abs().max() > 1e-8
    eps = 1e-5
    for m, n in [(0, 0), (3, 1)]:
        with torch.no_grad():
            net.bias[m, n] += eps
            plus = meta_loss().item()
            net.bias[m, n] -= 2 * eps
            minus = meta_loss().item()
            net.bias[m, n] += eps
        assert analytic[m, n].item() == pytest.approx((plus - minus) / (2 * eps), rel=1e-4, abs=1e-10)


def test_pair_weight_network_starts_at_init():
    net = PairWeightNetwork(4, 2, num_tokens=16, init=1.0)
    weights = net(torch.randn(3, 4, 16))
    assert weights.shape == (3, 4, 2) and torch.equal(weights, torch.ones(3, 4, 2))
    with pytest.raises(ValueError, match="init_pair_weight"):
        PairWeightNetwork(4, 2, num_tokens=16, init=6.0)


# Bad input: each error names the problem and the way out.


def test_empty_condensing_set(ancestor, digits):
    with pytest.raises(ValueError, match="empty"):
        condense(ancestor, method="cka", num_layers=2, condense_dataset=digits.select([]), quiet=True)
    empty_loader = DataLoader(TensorDataset(torch.zeros(0, 3, 8, 8), torch.zeros(0, dtype=torch.long)), batch_size=4)
    with pytest.raises(ValueError, match="empty"):
        condense(ancestor, method="auto", num_layers=2, condense_dataset=empty_loader, quiet=True)


def test_missing_label_column_lists_columns(ancestor, digits):
    unlabeled = digits.remove_columns("label").add_column("note", ["x"] * len(digits))
    with pytest.raises(ValueError, match=r"label column.*\['image', 'note'\]"):
        condense(ancestor, method="cka", num_layers=2, condense_dataset=unlabeled, quiet=True)


@pytest.mark.parametrize("method", ["cka", "auto"])
@pytest.mark.parametrize("k", [0, 5])
def test_num_layers_out_of_range(ancestor, digits, method, k):
    with pytest.raises(ValueError, match="out of range.*1..4"):
        condense(ancestor, method=method, num_layers=k, condense_dataset=digits, quiet=True)


def test_unknown_method_lists_methods(ancestor, digits):
    with pytest.raises(ValueError, match="auto.*cka.*first.*heuristic.*manual.*random"):
        condense(ancestor, method="l2t", num_layers=2, condense_dataset=digits)


def test_unknown_option_lists_options(ancestor, digits):
    with pytest.raises(ValueError, match=r"Unknown option\(s\) \['epoch'\].*'epochs'"):
        condense(ancestor, method="auto", num_layers=2, condense_dataset=digits, epoch=3)


def test_channel_count_the_ancestor_cannot_take(ancestor, digits):
    two_channels = DataLoader(TensorDataset(torch.randn(32, 2, 8, 8), torch.arange(32) % 2), batch_size=8)
    with pytest.raises(ValueError, match="2 channel.*ancestor takes 3"):
        condense(ancestor, method="cka", num_layers=2, condense_dataset=two_channels, quiet=True)
    four_channel_ancestor = tiny_vit(seed=0, image_size=8, patch_size=2, num_channels=4)
    with pytest.raises(ValueError, match="4-channel"):
        condense(four_channel_ancestor, method="auto", num_layers=2, condense_dataset=digits, quiet=True)


def test_the_default_method_is_first_k(ancestor):
    """Without a method, condense keeps the first k layers: the method that measured best on the learning
    benchmark v2 (no data-driven method beat it there)."""
    from hf_learngene.condensing import DEFAULT_METHOD

    learngene = condense(ancestor, num_layers=2)
    assert DEFAULT_METHOD == "first"
    assert learngene.config.condensing_method == "first" and learngene.config.layer_indices == [0, 1]
