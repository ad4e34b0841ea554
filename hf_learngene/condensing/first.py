"""`method="first"`: the first k layers, i.e. plain truncation of the ancestor (a strong baseline)."""

from __future__ import annotations

from ..ancestry import Ancestor
from .registry import Selection, check_num_layers, register_method


@register_method("first", needs_data=False, summary="the first k layers (plain truncation baseline)")
def condense_first(ancestor: Ancestor, num_layers: int, *, seed: int = 0, layers=None) -> Selection:
    k = check_num_layers(num_layers, ancestor)
    return Selection(layer_indices=list(range(k)))
