"""What every condensing method shares: the selection it returns and the registry `condense()` dispatches on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..ancestry import Ancestor


@dataclass
class Selection:
    """The result of a condensing method.

    Attributes:
        layer_indices: positions of the kept ancestry layers, ascending.
        scores: one score per ancestry layer (higher = more worth inheriting), or None when the method has none.
        details: method settings and extra results (e.g. a pair-weight matrix), stored in the config and the card.
    """

    layer_indices: list[int]
    scores: list[float] | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CondensingMethod:
    """A registered condensing method: `fn(ancestor, num_layers, **options) -> Selection`."""

    name: str
    fn: Callable[..., Selection]
    needs_data: bool
    summary: str


CONDENSING_METHODS: dict[str, CondensingMethod] = {}


def register_method(name: str, *, needs_data: bool, summary: str):
    """Decorator registering a condensing method under `name` for `condense(method=name)`."""

    def decorator(fn: Callable[..., Selection]) -> Callable[..., Selection]:
        CONDENSING_METHODS[name] = CondensingMethod(name=name, fn=fn, needs_data=needs_data, summary=summary)
        return fn

    return decorator


def top_k_layers(scores, num_layers: int) -> list[int]:
    """Indices of the `num_layers` highest scores, ascending (ties broken by the lower index)."""
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    return sorted(order[:num_layers])


def check_num_layers(num_layers, ancestor: Ancestor) -> int:
    if isinstance(num_layers, bool) or not isinstance(num_layers, int):
        raise ValueError(f"`num_layers` must be an integer, got {num_layers!r}.")
    if not 1 <= num_layers <= ancestor.num_layers:
        raise ValueError(
            f"`num_layers={num_layers}` is out of range: the ancestor has {ancestor.num_layers} layers, "
            f"so choose 1..{ancestor.num_layers}."
        )
    return num_layers
