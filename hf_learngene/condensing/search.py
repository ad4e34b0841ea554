"""`method="search"`: try candidate layer sets directly, each scored by a short fine-tune of the descendant itself.

Every candidate set of k ancestry layers becomes a learngene (`Ancestor.cut`) and then a
`DescendantForImageClassification` with a new head for the condensing set's classes (plus `num_new_layers` new
layers on top). It is fine-tuned for `steps_per_candidate` AdamW steps on the training part of the condensing set and
scored on the held-out part. Every candidate starts from the same seeded head and sees the same batches in the same
order, so candidates differ only by their layers (a paired comparison).

Candidates, in this order, all within the constraints:

1. the fixed picks, always evaluated whatever the budget: first k (plain truncation, the bar to clear), last k
   (Heur-LG; with `keep_first_layer` layer 0 plus the last k - 1), the k layers of largest block influence, and the
   layers kept by the angular-distance rule (`angular_tokens`, `angular_blocks` apply);
2. evenly spaced layers (DistilBERT's every-other-layer idea), when they satisfy the constraints;
3. a seeded greedy local search: each step fine-tunes one not-yet-tried neighbour of the best set so far, drawn at
   random (a neighbour swaps one kept layer for one not kept; under `contiguous` it shifts the block by one); when
   the best set has no untried neighbour left, a seeded random set is tried instead (a restart).

The search stops at `max_candidates` sets (required), when `time_budget_s` has passed since the start (checked
before each candidate after the fixed picks, so a run may overshoot by one candidate), or when every allowed set has
been tried. With `time_budget_s` the number of candidates depends on the machine's speed, so the result is
reproducible for a seed only when the time budget is not what stopped it.

Selection: the best candidate by `metric`: `"loss"` (default: the held-out cross-entropy, smoother than the accuracy
of a small held-out part) or `"accuracy"` (held-out accuracy, ties broken by the loss). Remaining ties go to the
candidate tried first, so first k wins unless beaten.

Per-layer scores (higher = keep): `score(l)` is the value (`-loss` or accuracy) of the best candidate containing
layer l, so the kept layers share the top score; a layer in no candidate gets the worst value seen minus 1 (it ranks
last). With k = L there is nothing to rank and no scores are stored. The report lists every candidate (layers, origin,
held-out loss and accuracy, seconds) and the mean value of the candidates holding each layer.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..ancestry import Ancestor
from ..configuration_learngene import LearngeneConfig
from ..evaluation import predict
from ..modeling_learngene import DescendantForImageClassification
from ..utils import resolve_device, resolve_dtype
from .angular_distance import (
    AngularOptions,
    angular_distance_table,
    check_angular_options,
    select_by_angular_distance,
)
from .block_influence import SignalOptions, all_condensing_batches, block_influence
from .condensing_set import CondensingData, DataOptions, prepare_data
from .pseudo_descendant import PseudoOptions, frozen_ancestor, progress, train_pseudo_descendant
from .registry import (
    NO_CONSTRAINTS,
    Constraints,
    Selection,
    check_num_layers,
    constrained_top_k,
    constraint_violations,
    register_method,
    settings_dict,
    split_options,
)

SEARCH_METRICS = ("loss", "accuracy")
# first k, last k, block influence, angular distance: always evaluated, so the budget must hold them.
NUM_FIXED_PICKS = 4
# Below this many allowed sets a restart draws among the untried ones by enumeration, above it by rejection.
_ENUMERATE_BELOW = 5000


@dataclass
class SearchOptions:
    max_candidates: int | None = None
    steps_per_candidate: int = 30
    time_budget_s: float | None = None
    metric: str = "loss"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    max_grad_norm: float | None = 1.0
    num_new_layers: int = 0


def check_search_options(options: SearchOptions) -> None:
    budget = options.max_candidates
    if budget is None:
        raise ValueError(
            'method="search" needs a budget: pass `max_candidates=N`, the most candidate layer sets to fine-tune '
            f"(at least {NUM_FIXED_PICKS}: first k, last k, block influence and angular distance are always tried), "
            "and optionally `steps_per_candidate=` (default 30) and `time_budget_s=`."
        )
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < NUM_FIXED_PICKS:
        raise ValueError(
            f"`max_candidates` must be an integer >= {NUM_FIXED_PICKS} (first k, last k, block influence and angular "
            f"distance are always tried), got {budget!r}."
        )
    steps = options.steps_per_candidate
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"`steps_per_candidate` must be an integer >= 1, got {steps!r}.")
    seconds = options.time_budget_s
    if seconds is not None and (
        isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds <= 0
    ):
        raise ValueError(f"`time_budget_s` must be a number of seconds > 0 (or None), got {seconds!r}.")
    if options.metric not in SEARCH_METRICS:
        raise ValueError(f"`metric` must be one of {SEARCH_METRICS}, got {options.metric!r}.")
    if not options.lr > 0:
        raise ValueError(f"`lr` must be > 0, got {options.lr!r}.")
    new = options.num_new_layers
    if isinstance(new, bool) or not isinstance(new, int) or new < 0:
        raise ValueError(f"`num_new_layers` must be an integer >= 0, got {new!r}.")


@dataclass
class Candidate:
    """One fine-tuned candidate layer set and how it did on the held-out part."""

    layers: tuple[int, ...]
    origin: str
    heldout_loss: float
    heldout_accuracy: float
    train_loss: float | None
    seconds: float

    def value(self, metric: str) -> float:
        return -self.heldout_loss if metric == "loss" else self.heldout_accuracy

    def key(self, metric: str) -> tuple[float, float]:
        """Sort key, larger = better: the metric, then the loss."""
        return (self.value(metric), -self.heldout_loss)


# ---------------------------------------------------------------------------------------------------------------------
# Candidate sets


def allowed_count(depth: int, k: int, constraints: Constraints) -> int:
    """How many layer sets of size k the constraints allow."""
    if constraints.contiguous:
        return 1 if constraints.keep_first_layer else depth - k + 1
    if constraints.keep_first_layer:
        return math.comb(depth - 1, k - 1)
    return math.comb(depth, k)


def _allowed_sets(depth: int, k: int, constraints: Constraints):
    if constraints.contiguous:
        starts = [0] if constraints.keep_first_layer else range(depth - k + 1)
        return [tuple(range(s, s + k)) for s in starts]
    if constraints.keep_first_layer:
        return [(0, *rest) for rest in itertools.combinations(range(1, depth), k - 1)]
    return list(itertools.combinations(range(depth), k))


def evenly_spaced(depth: int, k: int) -> tuple[int, ...]:
    """k layers spread evenly from the first to the last (round half up)."""
    if k == 1:
        return (0,)
    step = (depth - 1) / (k - 1)
    return tuple(int(math.floor(i * step + 0.5)) for i in range(k))


def neighbours(layers: tuple[int, ...], depth: int, constraints: Constraints) -> list[tuple[int, ...]]:
    """Sets one move away: swap one kept layer for one not kept (never layer 0 under `keep_first_layer`), or, under
    `contiguous`, the block shifted by one."""
    k = len(layers)
    if constraints.contiguous:
        if constraints.keep_first_layer:
            return []
        return [tuple(range(s, s + k)) for s in (layers[0] - 1, layers[0] + 1) if 0 <= s <= depth - k]
    kept = set(layers)
    out = []
    for leaving in layers:
        if constraints.keep_first_layer and leaving == 0:
            continue
        for joining in range(depth):
            if joining not in kept:
                out.append(tuple(sorted((kept - {leaving}) | {joining})))
    return out


def layer_means(candidates, depth: int, metric: str) -> list[float | None]:
    """Mean value of the tried candidates holding each layer (None for a layer none held)."""
    means = []
    for layer in range(depth):
        values = [c.value(metric) for c in candidates if layer in c.layers]
        means.append(sum(values) / len(values) if values else None)
    return means


def most_promising(current: tuple[int, ...], options: list[tuple[int, ...]], means, generator: torch.Generator):
    """The neighbour of `current` whose swap looks best: the largest `mean(joining) - mean(leaving)`, a layer never
    tried counting as best (explore it first); ties in a seeded random order."""
    shuffled = [options[i] for i in torch.randperm(len(options), generator=generator).tolist()]

    def gain(option: tuple[int, ...]) -> float:
        (joining,) = set(option) - set(current)
        (leaving,) = set(current) - set(option)
        if means[joining] is None:
            return math.inf
        return means[joining] - means[leaving]

    return max(shuffled, key=gain)  # max keeps the first of equal gains


def random_set(
    depth: int, k: int, constraints: Constraints, generator: torch.Generator, tried
) -> tuple[int, ...] | None:
    """A seeded random allowed set not in `tried`, or None when every allowed set has been tried."""
    if allowed_count(depth, k, constraints) <= _ENUMERATE_BELOW:
        untried = [s for s in _allowed_sets(depth, k, constraints) if s not in tried]
        if not untried:
            return None
        return untried[int(torch.randint(len(untried), (1,), generator=generator))]
    for _ in range(1000):  # a vast space: collisions are rare
        if constraints.keep_first_layer:
            rest = (torch.randperm(depth - 1, generator=generator)[: k - 1] + 1).tolist()
            layers = tuple(sorted([0, *rest]))
        else:
            layers = tuple(sorted(torch.randperm(depth, generator=generator)[:k].tolist()))
        if layers not in tried:
            return layers
    return None


# ---------------------------------------------------------------------------------------------------------------------
# Fine-tuning one candidate


def candidate_descendant(
    ancestor: Ancestor, layers, num_labels: int, num_new_layers: int, seed: int
) -> DescendantForImageClassification:
    """A descendant holding the ancestor's `layers` (embeddings, layers, final LayerNorm) and a new head seeded by
    `seed`, so every candidate starts from the same head."""
    config = LearngeneConfig(
        **ancestor.geometry(),
        layer_indices=list(range(len(layers))),
        num_labels=num_labels,
        num_new_layers=num_new_layers,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DescendantForImageClassification(config)
    model.learngene.load_state_dict(ancestor.cut(list(layers)).state_dict())
    return model


def _cache_batches(data: CondensingData, steps: int):
    """The training batches every candidate sees (the first `steps` of the seeded epochs, in order) and the held-out
    batches, kept in memory so that no image is decoded twice."""
    train, epoch = [], 0
    while len(train) < steps:
        before = len(train)
        for batch in data.train_batches(epoch):
            train.append(batch)
            if len(train) == steps:
                break
        if len(train) == before:
            raise ValueError("The training part of the condensing set is empty; lower `holdout` or add images.")
        epoch += 1
    return train, list(data.eval_batches())


# ---------------------------------------------------------------------------------------------------------------------
# The method


@register_method(
    "search",
    needs_data=True,
    handles_constraints=True,
    summary="the candidate layer set whose descendant, briefly fine-tuned on the condensing set, scores best on its "
    "held-out part (budget-capped search)",
)
def condense_search(
    ancestor: Ancestor,
    num_layers: int,
    *,
    condense_dataset,
    seed: int = 0,
    constraints: Constraints = NO_CONSTRAINTS,
    **options,
) -> Selection:
    """Keep the candidate layer set whose briefly fine-tuned descendant does best on held-out condensing images.

    Options: `max_candidates` (required, >= 4), `steps_per_candidate` (30), `time_budget_s` (none), `metric`
    (`"loss"` or `"accuracy"`), `lr` (1e-3, AdamW with a cosine decay), `weight_decay` (1e-4), `max_grad_norm`
    (1.0), `num_new_layers` (0: the descendant is the learngene plus a head); the condensing-set options of
    [`load_condensing_data`] (`max_samples`, `batch_size`, `holdout`, ...); `angular_tokens`, `angular_blocks` for
    the angular-distance pick; `device`, `dtype`, `quiet`, `disable_tqdm`. See the module docstring for the rules.

    Memory: the `steps_per_candidate` training batches and the held-out part are kept in memory.
    """
    start_time = time.perf_counter()
    k = check_num_layers(num_layers, ancestor)
    data_opts, signal_opts, angular_opts, search_opts = split_options(
        "search", options, DataOptions, SignalOptions, AngularOptions, SearchOptions
    )
    check_search_options(search_opts)
    check_angular_options(angular_opts)
    device = resolve_device(signal_opts.device)
    dtype = resolve_dtype(signal_opts.dtype, device)
    depth = ancestor.num_layers
    data = prepare_data(condense_dataset, ancestor, data_opts, seed)

    # The cheap signals give two of the fixed picks.
    frozen = frozen_ancestor(ancestor, device)
    influence, _ = block_influence(frozen, all_condensing_batches(data), device=device, dtype=dtype)
    table = angular_distance_table(
        frozen, all_condensing_batches(data), tokens=angular_opts.angular_tokens, device=device, dtype=dtype
    )
    del frozen
    angular_kept, _, _ = select_by_angular_distance(
        table, k, blocks=angular_opts.angular_blocks, constraints=constraints
    )
    by_position = list(range(depth))
    fixed = [
        (tuple(constrained_top_k([-i for i in by_position], k, constraints)), "first"),
        (tuple(constrained_top_k(by_position, k, constraints)), "last"),
        (tuple(constrained_top_k(influence, k, constraints)), "block_influence"),
        (tuple(angular_kept), "angular_distance"),
    ]
    spaced = evenly_spaced(depth, k)
    optional = [] if constraint_violations(spaced, constraints) else [(spaced, "evenly_spaced")]

    train_batches, eval_batches = _cache_batches(data, search_opts.steps_per_candidate)
    candidate_data = dataclasses.replace(
        data, train_batches=lambda epoch: iter(train_batches), num_train_batches=len(train_batches)
    )
    training = PseudoOptions(
        epochs=1,
        optimizer="adamw",
        lr=search_opts.lr,
        weight_decay=search_opts.weight_decay,
        max_grad_norm=search_opts.max_grad_norm,
        disable_tqdm=True,
    )
    metric = search_opts.metric
    tried: dict[tuple[int, ...], Candidate] = {}
    bar = progress(signal_opts, total=search_opts.max_candidates, desc="search")

    def evaluate(layers: tuple[int, ...], origin: str) -> None:
        began = time.perf_counter()
        model = candidate_descendant(ancestor, layers, data.num_labels, search_opts.num_new_layers, seed)
        fitted = train_pseudo_descendant(model, candidate_data, training, device, dtype, seed)
        logits, labels = predict(model, eval_batches, device=device, dtype=dtype)
        tried[layers] = Candidate(
            layers=layers,
            origin=origin,
            heldout_loss=float(F.cross_entropy(logits, labels)),
            heldout_accuracy=float((logits.argmax(-1) == labels).float().mean()),
            train_loss=fitted["train_loss"],
            seconds=time.perf_counter() - began,
        )
        bar.update(1)

    def best() -> Candidate:
        # max() keeps the first of equal keys: the earliest tried wins ties.
        return max(tried.values(), key=lambda c: c.key(metric))

    for layers, origin in fixed:
        if layers not in tried:
            evaluate(layers, origin)

    generator = torch.Generator().manual_seed(seed)
    total = allowed_count(depth, k, constraints)
    pending = list(optional)
    stop = None
    while stop is None:
        if len(tried) >= search_opts.max_candidates:
            stop = "max_candidates"
        elif len(tried) >= total:
            stop = "exhausted"
        elif search_opts.time_budget_s is not None and time.perf_counter() - start_time >= search_opts.time_budget_s:
            stop = "time_budget_s"
        elif pending:
            layers, origin = pending.pop(0)
            if layers not in tried:
                evaluate(layers, origin)
        else:
            current = best().layers
            untried = [n for n in neighbours(current, depth, constraints) if n not in tried]
            if untried:
                means = layer_means(tried.values(), depth, metric)
                evaluate(most_promising(current, untried, means, generator), "local")
            else:
                layers = random_set(depth, k, constraints, generator, tried)
                if layers is None:
                    stop = "exhausted"
                else:
                    evaluate(layers, "random")
    bar.close()

    winner = best()
    worst = min(c.value(metric) for c in tried.values())
    means = layer_means(tried.values(), depth, metric)
    scores = []
    for layer in range(depth):
        holding = [c.value(metric) for c in tried.values() if layer in c.layers]
        scores.append(max(holding) if holding else worst - 1.0)
    if max(scores) == min(scores):
        scores = None  # k = L: one allowed set holding every layer, nothing to rank
    first = tried[fixed[0][0]]
    return Selection(
        layer_indices=list(winner.layers),
        scores=scores,
        details={
            "settings": {
                "seed": seed,
                **settings_dict(data_opts, signal_opts, angular_opts, search_opts),
                "dtype": str(dtype),
            },
            "condensing_set": (
                f"{data.name}: {data.size} images ({data.num_train} fine-tune the candidates, {data.num_eval} held out)"
            ),
            "condensing_set_size": data.size,
            "candidates_tried": len(tried),
            "stopped_by": stop,
            "best": {"origin": winner.origin, "loss": winner.heldout_loss, "accuracy": winner.heldout_accuracy},
            "first_k": {"loss": first.heldout_loss, "accuracy": first.heldout_accuracy},
            "score_rule": f"keep the candidate of best held-out {metric} after a short fine-tune; score(l) = "
            f"{'-loss' if metric == 'loss' else 'accuracy'} of the best candidate holding l",
        },
        report={
            "candidates": [dataclasses.asdict(c) | {"layers": list(c.layers)} for c in tried.values()],
            "layer_mean_value": means,
            "block_influence": influence,
            "angular_distances": table,
            "seconds": time.perf_counter() - start_time,
        },
    )


__all__ = [
    "NUM_FIXED_PICKS",
    "SEARCH_METRICS",
    "Candidate",
    "SearchOptions",
    "allowed_count",
    "candidate_descendant",
    "condense_search",
    "evenly_spaced",
    "neighbours",
    "random_set",
]
