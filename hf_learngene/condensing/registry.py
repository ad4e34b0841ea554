"""What every condensing method shares: the selection it returns, the registry `condense()` dispatches on, and the
checking of its options."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch

from ..ancestry import Ancestor


@dataclass
class Selection:
    """The result of a condensing method.

    Attributes:
        layer_indices: positions of the kept ancestry layers, ascending.
        scores: one score per ancestry layer (higher = more worth inheriting), or None when the method has none.
        details: a compact record for `config.json` and the card: settings, condensing set, score rule.
        report: what the method measured beyond that (histories, score matrices), for `condense_report.json`.
    """

    layer_indices: list[int]
    scores: list[float] | None = None
    details: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CondensingMethod:
    """A registered condensing method: `fn(ancestor, num_layers, **options) -> Selection`.

    `handles_constraints`: the method takes `constraints=` ([`Constraints`]) and honours them itself; for the others
    `condense()` applies them to the method's result (see [`apply_constraints`]).
    """

    name: str
    fn: Callable[..., Selection]
    needs_data: bool
    summary: str
    handles_constraints: bool = False


CONDENSING_METHODS: dict[str, CondensingMethod] = {}


def register_method(name: str, *, needs_data: bool, summary: str, handles_constraints: bool = False):
    """Decorator registering a condensing method under `name` for `condense(method=name)`."""

    def decorator(fn: Callable[..., Selection]) -> Callable[..., Selection]:
        CONDENSING_METHODS[name] = CondensingMethod(
            name=name, fn=fn, needs_data=needs_data, summary=summary, handles_constraints=handles_constraints
        )
        return fn

    return decorator


def top_k_layers(scores, num_layers: int) -> list[int]:
    """Indices of the `num_layers` highest scores, ascending (ties broken by the lower index)."""
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    return sorted(order[:num_layers])


@dataclass(frozen=True)
class Constraints:
    """What a user may require of any selection (positions in the ancestor as given; order is always preserved).

    Attributes:
        contiguous: the kept layers form one block `[s, s + k)`.
        keep_first_layer: layer 0, the one that reads the embeddings, is always kept.
    """

    contiguous: bool = False
    keep_first_layer: bool = False

    @property
    def active(self) -> bool:
        return self.contiguous or self.keep_first_layer

    def as_dict(self) -> dict[str, bool]:
        return {"contiguous": self.contiguous, "keep_first_layer": self.keep_first_layer}


NO_CONSTRAINTS = Constraints()


def check_constraints(contiguous=False, keep_first_layer=False) -> Constraints:
    """Validate the constraint flags of `condense()`."""
    for name, value in (("contiguous", contiguous), ("keep_first_layer", keep_first_layer)):
        if not isinstance(value, bool):
            raise ValueError(f"`{name}` must be True or False, got {value!r}.")
    return Constraints(contiguous=contiguous, keep_first_layer=keep_first_layer)


def constraint_violations(layer_indices, constraints: Constraints) -> list[str]:
    """Why `layer_indices` break `constraints` (empty when they do not)."""
    layers = sorted(layer_indices)
    problems = []
    if constraints.contiguous and layers and layers != list(range(layers[0], layers[0] + len(layers))):
        problems.append(f"{layers} is not one contiguous block (contiguous=True)")
    if constraints.keep_first_layer and 0 not in layers:
        problems.append(f"{layers} does not keep layer 0 (keep_first_layer=True)")
    return problems


def constrained_top_k(scores, num_layers: int, constraints: Constraints) -> list[int]:
    """The best `num_layers` layers by `scores` under `constraints`, ascending.

    - no constraint: the top k ([`top_k_layers`]);
    - `keep_first_layer`: layer 0 plus the top k - 1 of the other layers;
    - `contiguous`: the block of k consecutive layers with the largest total score (ties: the lowest block);
    - both: the only block that holds layer 0, i.e. the first k layers.
    """
    scores = [float(s) for s in scores]
    k = num_layers
    if not 1 <= k <= len(scores):
        raise ValueError(f"Cannot keep {k} of {len(scores)} layers.")
    if constraints.contiguous:
        starts = [0] if constraints.keep_first_layer else range(len(scores) - k + 1)
        start = max(starts, key=lambda s: (math.fsum(scores[s : s + k]), -s))
        return list(range(start, start + k))
    if constraints.keep_first_layer:
        rest = top_k_layers(scores[1:], k - 1) if k > 1 else []
        return [0] + [i + 1 for i in rest]
    return top_k_layers(scores, k)


def check_num_layers(num_layers, ancestor: Ancestor) -> int:
    if isinstance(num_layers, bool) or not isinstance(num_layers, int):
        raise ValueError(f"`num_layers` must be an integer, got {num_layers!r}.")
    if not 1 <= num_layers <= ancestor.num_layers:
        raise ValueError(
            f"`num_layers={num_layers}` is out of range: the ancestor has {ancestor.num_layers} layers, "
            f"so choose 1..{ancestor.num_layers}."
        )
    return num_layers


def check_scores(scores: list[float], method: str) -> list[float]:
    """Refuse scores that cannot choose layers: non-finite values, or every layer scoring the same."""
    bad = [i for i, s in enumerate(scores) if not math.isfinite(s)]
    if bad:
        raise ValueError(
            f'method="{method}" produced non-finite scores for ancestry layers {bad}, so no selection can be made. '
            "Usual causes: a learning rate too high for the pseudo descendant (lower `lr`), or NaN/inf pixels in the "
            "condensing set (check its preprocessing)."
        )
    if len(scores) > 1 and max(scores) - min(scores) <= 1e-12 * max(1.0, abs(max(scores))):
        raise ValueError(
            f'method="{method}" gave every ancestry layer the same score ({scores[0]:.6g}), so the selection would '
            "be arbitrary. Usual causes: a condensing set with a single class, too few images, or `epochs=0`. Use a "
            'richer condensing set, or a data-free method ("first", "heuristic", "manual").'
        )
    return scores


def split_options(method: str, options: dict[str, Any], *classes: type) -> tuple[Any, ...]:
    """Sort `options` into the option dataclasses `classes`; unknown names raise a `ValueError` that lists the
    accepted ones."""
    known = {f.name: cls for cls in classes for f in fields(cls)}
    unknown = sorted(set(options) - set(known))
    if unknown:
        accepted = sorted(known) or "none"
        raise ValueError(f'Unknown option(s) {unknown} for method="{method}"; accepted options are {accepted}.')
    return tuple(cls(**{k: v for k, v in options.items() if known[k] is cls}) for cls in classes)


def settings_dict(*option_objects) -> dict[str, Any]:
    """JSON-friendly settings of a run, for the config, card and report (objects become their type name)."""
    out = {}
    for obj in option_objects:
        for key, value in asdict(obj).items():
            if key in ("image_processor", "pseudo_descendant", "disable_tqdm"):
                value = None if value is None else type(getattr(obj, key)).__name__
            elif isinstance(value, (torch.device, torch.dtype)):
                value = str(value)
            out[key] = value
    return out


__all__ = [
    "CONDENSING_METHODS",
    "CondensingMethod",
    "Constraints",
    "NO_CONSTRAINTS",
    "Selection",
    "check_constraints",
    "check_num_layers",
    "check_scores",
    "constrained_top_k",
    "constraint_violations",
    "register_method",
    "settings_dict",
    "split_options",
    "top_k_layers",
]
