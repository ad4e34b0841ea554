"""`method="manual"`: the user names the layers."""

from __future__ import annotations

from ..ancestry import Ancestor, validate_layer_indices
from .registry import Selection, register_method


@register_method("manual", needs_data=False, summary="the layers you name with `layers=[...]`")
def condense_manual(ancestor: Ancestor, num_layers: int | None = None, *, seed: int = 0, layers=None) -> Selection:
    if layers is None:
        raise ValueError('method="manual" needs `layers=[...]`, the ancestry layer indices to keep (e.g. [0, 1, 11]).')
    indices = validate_layer_indices(layers, ancestor.num_layers)
    if num_layers is not None and num_layers != len(indices):
        raise ValueError(f"`num_layers={num_layers}` disagrees with `layers={indices}` ({len(indices)} layers).")
    return Selection(layer_indices=sorted(indices), details={"layers": sorted(indices)})
