"""The linear learngene (in the spirit of TLEG, Xia et al., AAAI 2024), fitted data-free.

TLEG's learngene is two parameter sets theta_A and theta_B; layer l of a descendant of depth L is
theta_A + (l / L) * theta_B, so one learngene grows descendants of any depth. TLEG learns (theta_A, theta_B) by
training; `condense(ancestor, method="linear")` instead fits them by least squares, per tensor, over an existing
ancestor's layers: ancestry layer i (0-based) of L sits at t = (i + 1) / L, and the fit minimises
sum_i |theta_i - theta_A - t_i theta_B|^2.

The result is an ordinary [`LearngeneModel`] (it saves, pushes and loads like any learngene) whose config has
`learngene_form="linear"`: its two stored layers are theta_A (`layers.0`) and theta_B (`layers.1`), `layer_indices`
lists the ancestry layers the fit used, `new_layer_init` is `"linear"`, and `condensing_details` records how well
the line fits (`fit_relative_error`, 0 for an ancestor whose layers are exactly linear in depth). Its descendants
inherit no layer: `DescendantForImageClassification.from_pretrained(path, num_labels=..., num_hidden_layers=D)` gives
D layers, layer l being theta_A + (l / D) * theta_B (layout `"R" * D`). The learngene's own forward runs the fitted
layers at the positions of `layer_indices`, i.e. the linear approximation of the ancestor.

Unlike the other methods, which choose ancestry layers that `Ancestor.cut` copies, this one computes new tensors: its
registered function returns the learngene itself, and `condense()` uses it as it is.
"""

from __future__ import annotations

import re

import torch

from ..ancestry import Ancestor, validate_layer_indices
from ..modeling_learngene import LearngeneModel, _fit_linear, _linear_layer_positions
from .registry import register_method

SUMMARY = "theta_A, theta_B fitted by least squares over the ancestry layers (layer l of L = theta_A + l/L theta_B)"


@register_method("linear", needs_data=False, summary=SUMMARY)
def fit_linear_learngene(ancestor: Ancestor, num_layers: int | None = None, *, seed: int = 0, layers=None):
    """The linear learngene of `ancestor` (its `LearngeneModel`, built here rather than cut): theta_A and theta_B
    fitted by least squares over the ancestry layers `layers` (all of them by default), for
    `condense(method="linear")`."""
    if num_layers is not None:
        raise ValueError(
            'method="linear" stores two tensors per weight (theta_A, theta_B), not k layers: drop `num_layers`, and '
            "pick the depth when growing a descendant (`num_hidden_layers=`). `layers=` chooses the ancestry layers "
            "fitted over."
        )
    if getattr(ancestor.config, "model_type", None) == "learngene":
        raise ValueError(
            "method='linear' fits over an ancestor's layers at their depth; pass the original ancestor, not a "
            "learngene (a learngene no longer has every ancestry layer at its place)."
        )
    positions = validate_layer_indices(range(ancestor.num_layers) if layers is None else layers, ancestor.num_layers)
    positions = sorted(positions)
    if len(positions) < 2:
        raise ValueError(f"A linear fit needs at least 2 ancestry layers; `layers` is {positions}.")

    per_layer = {position: {} for position in positions}
    shared = {}
    for key, tensor in ancestor.state_dict.items():
        match = re.match(r"^layers\.(\d+)\.(.*)$", key)
        if match is None:
            shared[key] = tensor
        elif int(match.group(1)) in per_layer:
            per_layer[int(match.group(1))][match.group(2)] = tensor
    config = ancestor.learngene_config(
        positions,
        learngene_form="linear",
        condensing_method="linear",
        condensing_details={"summary": SUMMARY},
    )
    theta_a, theta_b = _fit_linear([per_layer[p] for p in positions], _linear_layer_positions(config))
    config.condensing_details["fit_relative_error"] = _relative_error(per_layer, positions, config, theta_a, theta_b)

    model = LearngeneModel(config)
    state = dict(shared)
    dtype = model.layernorm.weight.dtype
    for index, theta in enumerate((theta_a, theta_b)):
        state.update({f"layers.{index}.{name}": value.to(dtype) for name, value in theta.items()})
    with torch.no_grad():
        model.load_state_dict({k: v.detach().clone().contiguous() for k, v in state.items()}, strict=True)
    model.image_processor = ancestor.image_processor
    return model


def _relative_error(per_layer, positions, config, theta_a, theta_b) -> float:
    """|fitted layers - ancestry layers| / |ancestry layers| (Frobenius, over every layer tensor)."""
    error = norm = 0.0
    for position, t in zip(positions, _linear_layer_positions(config), strict=True):
        for name, tensor in per_layer[position].items():
            target = tensor.to(torch.float64)
            error += float((theta_a[name] + t * theta_b[name] - target).pow(2).sum())
            norm += float(target.pow(2).sum())
    return round((error / norm) ** 0.5 if norm else 0.0, 6)


__all__ = ["SUMMARY", "fit_linear_learngene"]
