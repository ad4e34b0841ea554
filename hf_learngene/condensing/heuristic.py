"""`method="heuristic"`: the last k layers (Heur-LG, Wang et al., AAAI 2022, arXiv 2106.06788).

Heur-LG keeps the last layers, whose gradients stay stable over sequential tasks, and rebuilds the lower ones.
"""

from __future__ import annotations

from ..ancestry import Ancestor
from .registry import Selection, check_num_layers, register_method


@register_method("heuristic", needs_data=False, summary="the last k layers (Heur-LG baseline)")
def condense_heuristic(ancestor: Ancestor, num_layers: int, *, seed: int = 0, layers=None) -> Selection:
    k = check_num_layers(num_layers, ancestor)
    return Selection(layer_indices=list(range(ancestor.num_layers - k, ancestor.num_layers)))
