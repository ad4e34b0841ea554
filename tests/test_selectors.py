"""The cheap-signal and search condensing methods (`block_influence`, `angular_distance`, `search`) and the user
constraints (`contiguous`, `keep_first_layer`), on constructed tiny ViT ancestors and scikit-learn's real 8x8 digits."""

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch
from tiny_models import tiny_vit

from hf_learngene import CONDENSING_METHODS, condense
from hf_learngene.condensing.angular_distance import select_by_angular_distance
from hf_learngene.condensing.registry import Constraints, check_constraints, constrained_top_k, constraint_violations
from hf_learngene.condensing.search import _allowed_sets, allowed_count, evenly_spaced, neighbours
from hf_learngene.data import dataset_to_tensors, default_image_processor, load_digits_dataset
from hf_learngene.serialization import REPORT_FILE
from hf_learngene.training import fit

NEW_METHODS = ["block_influence", "angular_distance", "search"]
SIGNAL = {"max_samples": 120, "batch_size": 32, "quiet": True}
TINY_SEARCH = {"max_candidates": 5, "steps_per_candidate": 3, "max_samples": 80, "batch_size": 16, "quiet": True}
# Cheapest options that still give every data-driven method real scores.
CHEAP = {
    "block_influence": SIGNAL,
    "angular_distance": SIGNAL,
    "search": TINY_SEARCH,
    "cka": {"max_samples": 64, "batch_size": 16, "epochs": 0, "quiet": True},
    "auto": {"max_samples": 48, "batch_size": 16, "epochs": 1, "quiet": True},
}
CONSTRAINT_SETS = [
    Constraints(contiguous=True),
    Constraints(keep_first_layer=True),
    Constraints(contiguous=True, keep_first_layer=True),
]


def make_identity(layer, scale: float = 0.0) -> None:
    """Scale the attention output projection and MLP fc2 (weights and biases) of a pre-norm ViT layer: at 0 the
    layer returns its input exactly, at a small scale almost."""
    with torch.no_grad():
        for linear in (layer.attention.o_proj, layer.mlp.fc2):
            linear.weight.mul_(scale)
            linear.bias.mul_(scale)


def six_layer_ancestor(seed: int = 0):
    return tiny_vit(seed=seed, image_size=8, patch_size=2, num_hidden_layers=6)


@pytest.fixture(scope="module")
def digits():
    return load_digits_dataset(classes=[0, 1, 2, 3, 4])


@pytest.fixture(scope="module")
def ancestor():
    return six_layer_ancestor()


@pytest.fixture(scope="module")
def identity_ancestor():
    """Layers 1 and 4 are exact identities."""
    model = six_layer_ancestor()
    for index in (1, 4):
        make_identity(model.layers[index])
    return model


# ---------------------------------------------------------------------------------------------------------------------
# Registry and constraint helpers


def test_new_methods_are_registered_as_data_driven_and_constraint_aware():
    for name in NEW_METHODS:
        spec = CONDENSING_METHODS[name]
        assert spec.needs_data and spec.handles_constraints and spec.summary


def test_constrained_top_k_rules():
    scores = [0.1, 0.9, 0.2, 0.8, 0.7, 0.0]
    assert constrained_top_k(scores, 3, Constraints()) == [1, 3, 4]
    assert constrained_top_k(scores, 3, Constraints(keep_first_layer=True)) == [0, 1, 3]
    # Block totals: [0, 3) 1.2, [1, 4) 1.9, [2, 5) 1.7, [3, 6) 1.5.
    assert constrained_top_k(scores, 3, Constraints(contiguous=True)) == [1, 2, 3]
    assert constrained_top_k([0.0, 1.0, 1.0, 0.0], 2, Constraints(contiguous=True)) == [1, 2]
    assert constrained_top_k(scores, 3, Constraints(contiguous=True, keep_first_layer=True)) == [0, 1, 2]
    assert constrained_top_k(scores, 1, Constraints(keep_first_layer=True)) == [0]
    assert constraint_violations([0, 2], Constraints(contiguous=True, keep_first_layer=True)) == [
        "[0, 2] is not one contiguous block (contiguous=True)"
    ]
    assert constraint_violations([1, 2], Constraints(keep_first_layer=True)) == [
        "[1, 2] does not keep layer 0 (keep_first_layer=True)"
    ]
    with pytest.raises(ValueError, match="`contiguous` must be True or False"):
        check_constraints(contiguous="yes")


# ---------------------------------------------------------------------------------------------------------------------
# block_influence


def test_identity_layers_have_zero_influence_and_are_never_kept(identity_ancestor, digits):
    for k in (1, 2, 4):
        learngene = condense(
            identity_ancestor, method="block_influence", num_layers=k, condense_dataset=digits, **SIGNAL
        )
        assert not {1, 4} & set(learngene.config.layer_indices)
    scores = learngene.config.condensing_scores
    assert learngene.config.layer_indices == [0, 2, 3, 5]
    assert scores[1] == pytest.approx(0.0, abs=1e-12) and scores[4] == pytest.approx(0.0, abs=1e-12)
    assert min(scores[i] for i in (0, 2, 3, 5)) > 1e-4
    details = learngene.config.condensing_details
    assert details["tokens"] == 120 * 17  # every token (CLS + 16 patches) of every image, both parts of the set
    assert "120 images" in details["condensing_set"]
    # With k = 5 one identity layer must be kept: the other non-identity layers all are.
    five = condense(identity_ancestor, method="block_influence", num_layers=5, condense_dataset=digits, **SIGNAL)
    assert {0, 2, 3, 5} <= set(five.config.layer_indices)


# ---------------------------------------------------------------------------------------------------------------------
# angular_distance


@pytest.mark.parametrize("tokens", ["all", "cls"])
def test_angular_distance_finds_a_near_identity_block(digits, tokens):
    model = six_layer_ancestor()
    for index in (2, 3, 4):
        make_identity(model.layers[index], scale=1e-3)  # near-duplicates: output ~ input
    learngene = condense(
        model, method="angular_distance", num_layers=3, condense_dataset=digits, angular_tokens=tokens, **SIGNAL
    )
    config = learngene.config
    assert config.layer_indices == [0, 1, 5]
    assert config.condensing_details["removed_layers"] == [2, 3, 4]
    table = learngene.condensing_report["angular_distances"]
    assert [len(row) for row in table] == [6, 5, 4, 3, 2, 1]  # d(l, n) for n = 1 .. L - l
    assert table[2][2] < 0.01 < min(table[s][2] for s in (0, 1, 3))
    assert all(0.0 <= d <= 1.0 for row in table for d in row)
    scores = config.condensing_scores
    assert min(scores[i] for i in (0, 1, 5)) > max(scores[i] for i in (2, 3, 4))
    assert scores[2] == pytest.approx(table[2][2])
    assert "angular_distances" not in config.condensing_details  # the table stays out of config.json


def test_angular_any_blocks_removes_scattered_identities(identity_ancestor, digits):
    one = condense(identity_ancestor, method="angular_distance", num_layers=4, condense_dataset=digits, **SIGNAL)
    # The paper's rule removes one contiguous block; layers 1 and 4 are not adjacent.
    removed = one.config.condensing_details["removed_layers"]
    assert len(removed) == 2 and removed[1] == removed[0] + 1
    many = condense(
        identity_ancestor,
        method="angular_distance",
        num_layers=4,
        condense_dataset=digits,
        angular_blocks="any",
        **SIGNAL,
    )
    assert many.config.layer_indices == [0, 2, 3, 5]
    assert many.config.condensing_details["removed_distance"] == pytest.approx(0.0, abs=1e-6)


def _metric_table(depth: int, seed: int) -> list[list[float]]:
    """d(l, n) of a random walk on the sphere: a true angle, so it obeys the triangle inequality like the real one."""
    generator = torch.Generator().manual_seed(seed)
    points = torch.nn.functional.normalize(torch.randn(depth + 1, 3, generator=generator).cumsum(0), dim=-1).double()
    angle = lambda a, b: float(torch.arccos((points[a] @ points[b]).clamp(-1, 1)) / math.pi)  # noqa: E731
    return [[angle(start, start + n) for n in range(1, depth - start + 1)] for start in range(depth)]


def _runs(removed: list[int]) -> list[tuple[int, int]]:
    runs = []
    for index in removed:
        if runs and runs[-1][0] + runs[-1][1] == index:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((index, 1))
    return runs


@pytest.mark.parametrize("seed", range(4))
def test_angular_selection_rules_against_brute_force(seed):
    depth = 7
    table = _metric_table(depth, seed)
    cost = lambda removed: sum(table[s][n - 1] for s, n in _runs(sorted(removed)))  # noqa: E731
    for k in range(1, depth + 1):
        m = depth - k
        for blocks in ("one", "any"):
            for constraints in [Constraints(), *CONSTRAINT_SETS]:
                kept, scores, removal = select_by_angular_distance(table, k, blocks=blocks, constraints=constraints)
                assert len(kept) == k and not constraint_violations(kept, constraints)
                removed = [j for j in range(depth) if j not in kept]
                allowed = [
                    r
                    for r in map(list, itertools.combinations(range(depth), m))
                    if not constraint_violations([j for j in range(depth) if j not in r], constraints)
                    and (blocks == "any" or constraints.contiguous or len(_runs(r)) <= 1)
                ]
                assert removal["cost"] == pytest.approx(cost(removed), abs=1e-12)
                assert removal["cost"] == pytest.approx(min(cost(r) for r in allowed), abs=1e-12)
                # Scores rank the kept layers first.
                if m:
                    assert min(scores[j] for j in kept) >= max(scores[j] for j in removed) - 1e-12
                else:
                    assert scores == [row[0] for row in table]


# ---------------------------------------------------------------------------------------------------------------------
# search


@pytest.fixture(scope="module")
def planted_ancestor(digits):
    """A 6-layer ancestor whose layers 1, 3, 4 are a briefly trained 3-layer digits classifier (with its embeddings
    and final LayerNorm) and whose layers 0, 2, 5 are erasers: their MLP adds a large constant vector that drowns the
    image signal, so every candidate holding one scores worse, the more the worse."""
    teacher = tiny_vit(seed=1, classifier=True, image_size=8, patch_size=2, num_hidden_layers=3, num_labels=5)
    images, labels = dataset_to_tensors(
        digits.select(range(400)), default_image_processor(teacher.config), num_channels=3
    )
    fit(teacher, images, labels, epochs=10, batch_size=32, lr=3e-3)
    model = six_layer_ancestor()
    model.embeddings.load_state_dict(teacher.vit.embeddings.state_dict())
    model.layernorm.load_state_dict(teacher.vit.layernorm.state_dict())
    for position, index in enumerate((1, 3, 4)):
        model.layers[index].load_state_dict(teacher.vit.layers[position].state_dict())
    direction = torch.randn(32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for index in (0, 2, 5):
            model.layers[index].mlp.fc2.bias.add_(direction)
    return model


SEARCH = {"steps_per_candidate": 15, "lr": 1e-2, "max_samples": 200, "batch_size": 16, "quiet": True}


def test_search_finds_the_planted_subset_within_budget(planted_ancestor, digits):
    learngene = condense(
        planted_ancestor, method="search", num_layers=3, condense_dataset=digits, max_candidates=10, **SEARCH
    )
    config = learngene.config
    details = config.condensing_details
    candidates = learngene.condensing_report["candidates"]
    assert config.layer_indices == [1, 3, 4]
    assert details["candidates_tried"] == len(candidates) <= 10 and details["stopped_by"] == "max_candidates"
    # None of the fixed picks holds the planted set: the local search found it.
    origins = {c["origin"]: c["layers"] for c in candidates}
    assert origins["first"] == [0, 1, 2] and origins["last"] == [3, 4, 5]
    assert details["best"]["origin"] in ("local", "random")
    winner = next(c for c in candidates if c["layers"] == [1, 3, 4])
    assert winner["heldout_loss"] < min(c["heldout_loss"] for c in candidates if c is not winner) - 0.1
    assert details["first_k"]["loss"] > details["best"]["loss"]
    # Kept layers share the top score (-loss of the best candidate).
    scores = config.condensing_scores
    assert [scores[i] for i in (1, 3, 4)] == pytest.approx([-winner["heldout_loss"]] * 3)
    assert max(scores[i] for i in (0, 2, 5)) < scores[1]
    assert "candidates" not in details  # the candidate list stays out of config.json


def test_search_time_budget_stops_after_the_fixed_picks(ancestor, digits, tmp_path):
    learngene = condense(
        ancestor,
        method="search",
        num_layers=2,
        condense_dataset=digits,
        time_budget_s=1e-9,
        output_dir=tmp_path,
        **TINY_SEARCH,
    )
    details = learngene.config.condensing_details
    origins = [c["origin"] for c in learngene.condensing_report["candidates"]]
    assert details["stopped_by"] == "time_budget_s"
    assert origins[:2] == ["first", "last"] and set(origins) <= {"first", "last", "block_influence", "angular_distance"}
    # The candidate list and both signal tables travel in condense_report.json, not in config.json.
    report = json.loads((tmp_path / REPORT_FILE).read_text())
    assert [c["layers"] for c in report["candidates"]] == [
        c["layers"] for c in learngene.condensing_report["candidates"]
    ]
    assert len(report["block_influence"]) == 6 and len(report["angular_distances"]) == 6
    saved = json.loads((tmp_path / "config.json").read_text())["condensing_details"]
    assert {"candidates", "block_influence", "angular_distances"}.isdisjoint(saved)


def test_search_with_every_layer_kept_has_nothing_to_rank(ancestor, digits):
    learngene = condense(ancestor, method="search", num_layers=6, condense_dataset=digits, **TINY_SEARCH)
    assert learngene.config.layer_indices == list(range(6)) and learngene.config.condensing_scores is None
    assert learngene.config.condensing_details["stopped_by"] == "exhausted"


def test_search_candidate_space_helpers():
    for depth, k in [(6, 1), (6, 3), (6, 6), (7, 4)]:
        for constraints in [Constraints(), *CONSTRAINT_SETS]:
            sets = _allowed_sets(depth, k, constraints)
            assert len(sets) == len(set(sets)) == allowed_count(depth, k, constraints)
            assert all(not constraint_violations(s, constraints) for s in sets)
            for current in sets:
                for option in neighbours(current, depth, constraints):
                    assert option in sets and len(set(option) ^ set(current)) == 2
    assert (
        evenly_spaced(12, 4) == (0, 4, 7, 11) and evenly_spaced(6, 1) == (0,) and evenly_spaced(5, 5) == tuple(range(5))
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "needs a budget: pass `max_candidates=N`"),
        ({"max_candidates": 3}, "`max_candidates` must be an integer >= 4"),
        ({"max_candidates": 5.0}, "`max_candidates` must be an integer >= 4"),
        ({"max_candidates": 5, "steps_per_candidate": 0}, "`steps_per_candidate` must be an integer >= 1"),
        ({"max_candidates": 5, "time_budget_s": 0}, r"`time_budget_s` must be a number of seconds > 0"),
        ({"max_candidates": 5, "metric": "f1"}, "`metric` must be one of"),
        ({"max_candidates": 5, "budget": 5}, r"Unknown option\(s\) \['budget'\]"),
    ],
)
def test_search_refuses_a_missing_or_invalid_budget(ancestor, digits, options, message):
    with pytest.raises(ValueError, match=message):
        condense(ancestor, method="search", num_layers=2, condense_dataset=digits, **options)


# ---------------------------------------------------------------------------------------------------------------------
# Every method: constraints, determinism, missing data


@pytest.mark.parametrize("method", NEW_METHODS)
def test_new_methods_need_a_condensing_set(ancestor, method):
    with pytest.raises(ValueError, match=f'method="{method}" needs a condensing set'):
        condense(ancestor, method=method, num_layers=2, max_candidates=5)


@pytest.mark.parametrize("method", sorted(set(CONDENSING_METHODS) - {"linear"}))
def test_constraints_are_honoured_by_every_method(ancestor, digits, method):
    spec = CONDENSING_METHODS[method]
    k = 3
    for constraints in CONSTRAINT_SETS:
        kwargs = {"num_layers": k, "seed": 1, **constraints.as_dict()}
        if spec.needs_data:
            kwargs.update(condense_dataset=digits, **CHEAP[method])
        if method == "manual":
            kwargs["layers"] = [0, 1, 2]
        try:
            learngene = condense(ancestor, method=method, **kwargs)
        except ValueError as error:
            # Only a method without scores may refuse, when its own selection breaks the constraint.
            assert not spec.needs_data and "has no per-layer scores" in str(error)
            assert method in ("heuristic", "random")
            continue
        config = learngene.config
        assert len(config.layer_indices) == k and config.layer_indices == sorted(config.layer_indices)
        assert not constraint_violations(config.layer_indices, constraints)
        assert config.condensing_details["constraints"] == constraints.as_dict()
        if constraints.contiguous and constraints.keep_first_layer:
            assert config.layer_indices == [0, 1, 2]
        if config.condensing_scores is not None and method not in ("angular_distance", "search"):
            # Methods whose rule is top-k of their scores keep the constrained optimum of those scores.
            assert config.layer_indices == constrained_top_k(config.condensing_scores, k, constraints)


def test_the_linear_learngene_takes_no_layer_count_or_constraint(ancestor):
    # It builds two tensors per weight (theta_A, theta_B) instead of choosing k layers.
    with pytest.raises(ValueError, match="drop `num_layers`"):
        condense(ancestor, method="linear", num_layers=3)
    with pytest.raises(ValueError, match="do not apply"):
        condense(ancestor, method="linear", contiguous=True)
    assert condense(ancestor, method="linear", layers=[0, 2, 4]).config.layer_indices == [0, 2, 4]


def test_constraints_on_data_free_methods(ancestor):
    # first-k is contiguous and keeps layer 0; the last k are contiguous.
    assert condense(ancestor, method="first", num_layers=2, contiguous=True, keep_first_layer=True).config.layer_indices
    assert condense(ancestor, method="heuristic", num_layers=2, contiguous=True).config.layer_indices == [4, 5]
    with pytest.raises(ValueError, match=r"does not keep layer 0 \(keep_first_layer=True\)"):
        condense(ancestor, method="heuristic", num_layers=2, keep_first_layer=True)
    with pytest.raises(ValueError, match=r"\[1, 3\] is not one contiguous block"):
        condense(ancestor, method="manual", layers=[1, 3], contiguous=True)
    assert condense(ancestor, method="manual", layers=[0, 3], keep_first_layer=True).config.layer_indices == [0, 3]
    # Unconstrained runs record nothing.
    assert "constraints" not in condense(ancestor, method="first", num_layers=2).config.condensing_details
    with pytest.raises(ValueError, match="`keep_first_layer` must be True or False"):
        condense(ancestor, method="first", num_layers=2, keep_first_layer=1)


def test_keep_first_layer_with_one_layer(identity_ancestor, digits):
    learngene = condense(
        identity_ancestor,
        method="block_influence",
        num_layers=1,
        condense_dataset=digits,
        keep_first_layer=True,
        **SIGNAL,
    )
    assert learngene.config.layer_indices == [0]


@pytest.mark.parametrize("method", NEW_METHODS)
def test_same_seed_same_selection(ancestor, digits, method):
    runs = [
        condense(ancestor, method=method, num_layers=3, condense_dataset=digits, seed=seed, **CHEAP[method])
        for seed in (3, 3, 4)
    ]
    assert runs[0].config.layer_indices == runs[1].config.layer_indices
    assert runs[0].config.condensing_scores == runs[1].config.condensing_scores
    assert _timeless(runs[0].condensing_report) == _timeless(runs[1].condensing_report)
    # Another seed draws another subset of the condensing set (and other candidates), hence other scores.
    assert runs[2].config.condensing_scores != runs[0].config.condensing_scores


def _timeless(value):
    """`value` without its wall-clock fields."""
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [_timeless(v) for v in value]
    return value
