"""`method="random"`: k layers drawn uniformly without replacement from a seeded generator (a control arm)."""

from __future__ import annotations

import torch

from ..ancestry import Ancestor
from .registry import Selection, check_num_layers, register_method


@register_method("random", needs_data=False, summary="k random layers from a seeded generator (control baseline)")
def condense_random(ancestor: Ancestor, num_layers: int, *, seed: int = 0, layers=None) -> Selection:
    k = check_num_layers(num_layers, ancestor)
    generator = torch.Generator().manual_seed(seed)
    picked = torch.randperm(ancestor.num_layers, generator=generator)[:k].tolist()
    return Selection(layer_indices=sorted(picked), details={"seed": seed})
