"""`method="angular_distance"`: drop the most redundant block of layers (Gromov et al., 2024, "The Unreasonable
Ineffectiveness of the Deeper Layers").

The angular distance between the representation entering layer l and the one leaving layer l + n - 1 is
`d(l, n) = arccos(cos(h_l, h_{l+n})) / pi` (0 = same direction, 1 = opposite), averaged over the condensing images.
`h_0` is the embedding output and `h_{i+1}` the output of layer i (before the final LayerNorm). To keep k of L layers,
m = L - k must go: the paper removes the one contiguous block of m layers with the smallest distance,
`l* = argmin_l d(l, m)`, and keeps the others.

Which tokens (`angular_tokens`):

- `"all"` (default): the mean over every token (CLS and patches) of the per-token distance. The paper reads the last
  token because in a causal language model it is the only one that has seen the whole sequence; in a ViT every token
  attends to every other, the inherited layers transform all of them, and averaging over all tokens uses more of a
  small condensing set.
- `"cls"`: the CLS token only, the closest analogue of the paper's last token (it is what a classifier head reads).

Which removals are allowed (`angular_blocks`):

- `"one"` (default): the paper's rule, one contiguous block of m layers.
- `"any"`: any set of m layers, read as a union of blocks and costed as the sum of their distances (the cheapest
  decomposition, by dynamic programming). It differs from `"one"` when redundant layers are scattered: two separate
  near-identity layers can then go together. The table is measured on the whole ancestor, so the cost of a block is
  not re-measured after another block has gone.

Constraints: `keep_first_layer` forbids removals that include layer 0; `contiguous` (kept layers form one block)
makes the removal a prefix `[0, a)` plus a suffix `[a + k, L)`, costed `d(0, a) + d(a + k, L - a - k)` (an empty part
costs 0), whatever `angular_blocks` says; both together leave only the first k layers.

Per-layer scores (higher = keep): `score(j)` is the cost of the cheapest allowed removal that drops layer j. The
chosen removal is the cheapest of all, so the layers it drops share the lowest score and every kept layer scores at
least as much (strictly more unless two removals cost exactly the same; ties go to the removal found first, i.e. the
block with the lowest start). A layer no allowed removal drops (layer 0 under `keep_first_layer`) scores one more than
the largest cost. With k = L nothing is removed and `score(j) = d(j, 1)`, the distance across layer j alone. The full
`d(l, n)` table is in the report (`angular_distances[l][n - 1]`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from ..ancestry import Ancestor
from ..utils import autocast, resolve_device, resolve_dtype
from .block_influence import SignalOptions, all_condensing_batches, describe_all
from .condensing_set import DataOptions, prepare_data
from .pseudo_descendant import frozen_ancestor, hidden_states, progress
from .registry import (
    NO_CONSTRAINTS,
    Constraints,
    Selection,
    check_num_layers,
    register_method,
    settings_dict,
    split_options,
)

ANGULAR_TOKENS = ("all", "cls")
ANGULAR_BLOCKS = ("one", "any")


@dataclass
class AngularOptions:
    angular_tokens: str = "all"
    angular_blocks: str = "one"


def check_angular_options(options: AngularOptions) -> None:
    if options.angular_tokens not in ANGULAR_TOKENS:
        raise ValueError(f"`angular_tokens` must be one of {ANGULAR_TOKENS}, got {options.angular_tokens!r}.")
    if options.angular_blocks not in ANGULAR_BLOCKS:
        raise ValueError(f"`angular_blocks` must be one of {ANGULAR_BLOCKS}, got {options.angular_blocks!r}.")


@torch.no_grad()
def angular_distance_table(
    model, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], *, tokens: str = "all", device, dtype, bar=None
) -> list[list[float]]:
    """Mean angular distance `table[l][n - 1] = d(l, n)` between `h_l` and `h_{l+n}` of `model` (a
    `LearngeneModel`) over `batches`, for `0 <= l < L` and `1 <= n <= L - l`. Computed in float64 (an exact identity
    layer gives 0 to rounding); one batch of hidden states in memory at a time."""
    if tokens not in ANGULAR_TOKENS:
        raise ValueError(f"`angular_tokens` must be one of {ANGULAR_TOKENS}, got {tokens!r}.")
    depth = len(model.layers)
    sums = torch.zeros(depth, depth, dtype=torch.float64)
    count = 0
    for pixel_values, _ in batches:
        with autocast(device, dtype):
            hidden = hidden_states(model, pixel_values.to(device))
        units = []
        for h in hidden:
            h = h[:, :1] if tokens == "cls" else h
            units.append(torch.nn.functional.normalize(h.double(), dim=-1, eps=1e-30))
        for start in range(depth):
            for n in range(1, depth - start + 1):
                cosine = (units[start] * units[start + n]).sum(-1).clamp(-1.0, 1.0)
                sums[start, n - 1] += (torch.arccos(cosine) / math.pi).sum().cpu()
        count += units[0].shape[0] * units[0].shape[1]
        if bar is not None:
            bar.update(1)
    if count == 0:
        raise ValueError("The condensing set gave no images to measure angular distances on.")
    means = (sums / count).tolist()
    return [means[start][: depth - start] for start in range(depth)]


def _distance(table: list[list[float]], start: int, n: int) -> float:
    """`d(start, n)`, with an empty block costing 0."""
    return 0.0 if n == 0 else table[start][n - 1]


def _enumerated_removals(table, depth: int, m: int, constraints: Constraints):
    """The allowed removals as `(removed layers, cost)` in a fixed order, for the rules that have few of them."""
    k = depth - m
    if constraints.contiguous:
        prefixes = [0] if constraints.keep_first_layer else range(m + 1)
        return [
            (list(range(a)) + list(range(a + k, depth)), _distance(table, 0, a) + _distance(table, a + k, m - a))
            for a in prefixes
        ]
    first = 1 if constraints.keep_first_layer else 0
    return [(list(range(s, s + m)), _distance(table, s, m)) for s in range(first, depth - m + 1)]


def _any_removal(table, depth: int, m: int, constraints: Constraints):
    """Cheapest removal of any m layers (a union of blocks, each costing its distance) and, per layer, the cost of
    the cheapest removal that drops it (None when none may), by dynamic programming over prefixes and suffixes."""
    inf = math.inf

    def allowed(start: int) -> bool:  # may a removed block start here?
        return start > 0 or not constraints.keep_first_layer

    # prefix[i][r]: cheapest cost over layers [0, i) with r of them removed; suffix[i][r]: over layers [i, L).
    prefix = [[inf] * (m + 1) for _ in range(depth + 1)]
    prefix[0][0] = 0.0
    for i in range(1, depth + 1):
        for r in range(m + 1):
            best = prefix[i - 1][r]  # layer i - 1 kept
            for n in range(1, min(i, r) + 1):
                if allowed(i - n):
                    best = min(best, prefix[i - n][r - n] + table[i - n][n - 1])
            prefix[i][r] = best
    suffix = [[inf] * (m + 1) for _ in range(depth + 1)]
    suffix[depth][0] = 0.0
    for i in range(depth - 1, -1, -1):
        for r in range(m + 1):
            best = suffix[i + 1][r]
            if allowed(i):
                for n in range(1, min(depth - i, r) + 1):
                    best = min(best, table[i][n - 1] + suffix[i + n][r - n])
            suffix[i][r] = best
    # Walk back from the end: keep a layer whenever that is as cheap as removing a block ending there.
    removed, i, r = [], depth, m
    while i > 0:
        if prefix[i - 1][r] == prefix[i][r]:
            i -= 1
            continue
        for n in range(1, min(i, r) + 1):
            if allowed(i - n) and prefix[i - n][r - n] + table[i - n][n - 1] == prefix[i][r]:
                removed.extend(range(i - n, i))
                i, r = i - n, r - n
                break
        else:  # pragma: no cover - the table always holds the step that produced prefix[i][r]
            raise RuntimeError("angular distance: no removal reconstructs the optimum.")
    per_layer: list[float | None] = [None] * depth
    for start in range(depth):
        if not allowed(start):
            continue
        for n in range(1, min(m, depth - start) + 1):
            cost = min(prefix[start][r] + table[start][n - 1] + suffix[start + n][m - n - r] for r in range(m - n + 1))
            for j in range(start, start + n):
                if cost < inf and (per_layer[j] is None or cost < per_layer[j]):
                    per_layer[j] = cost
    return sorted(removed), prefix[depth][m], per_layer


def select_by_angular_distance(
    table: list[list[float]], num_layers: int, *, blocks: str = "one", constraints: Constraints = NO_CONSTRAINTS
) -> tuple[list[int], list[float], dict]:
    """Apply the removal rule (module docstring) to a distance table.

    Returns `(kept layers, per-layer scores, {"removed": ..., "cost": ...})`."""
    if blocks not in ANGULAR_BLOCKS:
        raise ValueError(f"`angular_blocks` must be one of {ANGULAR_BLOCKS}, got {blocks!r}.")
    depth = len(table)
    m = depth - num_layers
    if m == 0:
        return list(range(depth)), [table[j][0] for j in range(depth)], {"removed": [], "cost": 0.0}
    if blocks == "any" and not constraints.contiguous:
        removed, cost, per_layer = _any_removal(table, depth, m, constraints)
    else:
        removals = _enumerated_removals(table, depth, m, constraints)
        removed, cost = min(removals, key=lambda item: item[1])  # min keeps the first of equal costs
        per_layer = [None] * depth
        for layers, value in removals:
            for j in layers:
                if per_layer[j] is None or value < per_layer[j]:
                    per_layer[j] = value
    ceiling = max(v for v in per_layer if v is not None) + 1.0
    scores = [ceiling if v is None else v for v in per_layer]
    kept = [j for j in range(depth) if j not in set(removed)]
    return kept, scores, {"removed": removed, "cost": cost}


@register_method(
    "angular_distance",
    needs_data=True,
    handles_constraints=True,
    summary="all but the most redundant block of layers, the one whose input and output are closest in angle on "
    "the condensing set (Gromov et al. 2024)",
)
def condense_angular_distance(
    ancestor: Ancestor,
    num_layers: int,
    *,
    condense_dataset,
    seed: int = 0,
    constraints: Constraints = NO_CONSTRAINTS,
    **options,
) -> Selection:
    """Keep the layers left after removing the block of L - k layers with the smallest angular distance.

    Options (all optional): the condensing-set options of [`load_condensing_data`] (`image_column`,
    `label_column`, `split`, `max_samples`, `batch_size`, `holdout`, `image_processor`, `num_workers`,
    `num_labels`); `device`, `dtype` (bf16 autocast on CUDA by default), `quiet`, `disable_tqdm`;
    `angular_tokens` (`"all"` or `"cls"`) and `angular_blocks` (`"one"` or `"any"`), see the module docstring.
    """
    k = check_num_layers(num_layers, ancestor)
    data_opts, signal_opts, angular_opts = split_options(
        "angular_distance", options, DataOptions, SignalOptions, AngularOptions
    )
    check_angular_options(angular_opts)
    device = resolve_device(signal_opts.device)
    dtype = resolve_dtype(signal_opts.dtype, device)
    data = prepare_data(condense_dataset, ancestor, data_opts, seed)
    model = frozen_ancestor(ancestor, device)
    bar = progress(signal_opts, total=data.num_train_batches + data.num_eval_batches, desc="angular distance")
    table = angular_distance_table(
        model, all_condensing_batches(data), tokens=angular_opts.angular_tokens, device=device, dtype=dtype, bar=bar
    )
    bar.close()
    kept, scores, removal = select_by_angular_distance(
        table, k, blocks=angular_opts.angular_blocks, constraints=constraints
    )
    return Selection(
        layer_indices=kept,
        scores=scores,
        details={
            "settings": {"seed": seed, **settings_dict(data_opts, signal_opts, angular_opts), "dtype": str(dtype)},
            "condensing_set": describe_all(data),
            "condensing_set_size": data.size,
            "removed_layers": removal["removed"],
            "removed_distance": removal["cost"],
            "score_rule": "remove the allowed block(s) of L - k layers of smallest angular distance "
            "d(l, n) = arccos(cos(h_l, h_l+n)) / pi; score(j) = cost of the cheapest allowed removal dropping j",
        },
        report={"angular_distances": table},
    )


__all__ = [
    "ANGULAR_BLOCKS",
    "ANGULAR_TOKENS",
    "AngularOptions",
    "angular_distance_table",
    "condense_angular_distance",
    "select_by_angular_distance",
]
