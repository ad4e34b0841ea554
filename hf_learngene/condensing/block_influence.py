"""`method="block_influence"`: keep the layers that change the representation most (ShortGPT, Men et al., 2024).

The block influence of ancestry layer l is `BI_l = 1 - mean cos(x_in, x_out)`, the mean taken over every token
(CLS and patches) of every condensing image, where `x_in` is the layer's input and `x_out` its output (before the
final LayerNorm). A layer that returns its input has `BI = 0`: it is the most redundant. The k layers with the
largest influence are kept (score = BI). No pseudo descendant and no training: one forward pass of the frozen
ancestor over the condensing set (both its parts: nothing is trained, so nothing needs holding out), one batch in
memory at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..ancestry import Ancestor
from ..utils import autocast, resolve_device, resolve_dtype
from .condensing_set import CondensingData, DataOptions, prepare_data
from .pseudo_descendant import frozen_ancestor, hidden_states, progress
from .registry import (
    NO_CONSTRAINTS,
    Constraints,
    Selection,
    check_num_layers,
    constrained_top_k,
    register_method,
    settings_dict,
    split_options,
)


@dataclass
class SignalOptions:
    """Where and how the frozen ancestor runs for the training-free methods (`block_influence`,
    `angular_distance`, and the cheap picks of `search`)."""

    device: str | torch.device | None = None
    dtype: str | torch.dtype | None = None
    quiet: bool = False
    disable_tqdm: bool | None = None


def all_condensing_batches(data: CondensingData) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Every image of the condensing set: the training part (first epoch's order), then the held-out part."""
    yield from data.train_batches(0)
    yield from data.eval_batches()


def describe_all(data: CondensingData) -> str:
    """One line for the card when every image of the condensing set is used and nothing is trained."""
    return f"{data.name}: {data.size} images (all measured, nothing trained)"


@torch.no_grad()
def block_influence(
    model, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], *, device, dtype, bar=None
) -> tuple[list[float], int]:
    """Block influence of every layer of `model` (a `LearngeneModel`) over `batches` of `(pixel_values, labels)`.

    Returns `(influence per layer, number of tokens averaged over)`. Cosines are taken in float64 so that an exact
    identity layer scores 0 to rounding.
    """
    cosine_sums = torch.zeros(len(model.layers), dtype=torch.float64)
    tokens = 0
    for pixel_values, _ in batches:
        with autocast(device, dtype):
            hidden = hidden_states(model, pixel_values.to(device))
        for layer in range(len(model.layers)):
            cosine = F.cosine_similarity(hidden[layer].double(), hidden[layer + 1].double(), dim=-1)
            cosine_sums[layer] += cosine.sum().cpu()
        tokens += hidden[0].shape[0] * hidden[0].shape[1]
        if bar is not None:
            bar.update(1)
    if tokens == 0:
        raise ValueError("The condensing set gave no images to measure block influence on.")
    return (1.0 - cosine_sums / tokens).tolist(), tokens


@register_method(
    "block_influence",
    needs_data=True,
    handles_constraints=True,
    summary="the k ancestry layers of largest block influence, 1 - cos(input, output) on the condensing set (ShortGPT)",
)
def condense_block_influence(
    ancestor: Ancestor,
    num_layers: int,
    *,
    condense_dataset,
    seed: int = 0,
    constraints: Constraints = NO_CONSTRAINTS,
    **options,
) -> Selection:
    """Keep the k ancestry layers with the largest block influence.

    Options (all optional): the condensing-set options of [`load_condensing_data`] (`image_column`,
    `label_column`, `split`, `max_samples`, `batch_size`, `holdout`, `image_processor`, `num_workers`,
    `num_labels`); `device`, `dtype` (bf16 autocast on CUDA by default), `quiet`, `disable_tqdm`.

    Under `constraints` the selection is [`constrained_top_k`] of the influences: `keep_first_layer` adds layer 0
    to the k - 1 most influential others, `contiguous` keeps the block of k layers of largest total influence.
    """
    k = check_num_layers(num_layers, ancestor)
    data_opts, signal_opts = split_options("block_influence", options, DataOptions, SignalOptions)
    device = resolve_device(signal_opts.device)
    dtype = resolve_dtype(signal_opts.dtype, device)
    data = prepare_data(condense_dataset, ancestor, data_opts, seed)
    model = frozen_ancestor(ancestor, device)
    bar = progress(signal_opts, total=data.num_train_batches + data.num_eval_batches, desc="block influence")
    scores, tokens = block_influence(model, all_condensing_batches(data), device=device, dtype=dtype, bar=bar)
    bar.close()
    return Selection(
        layer_indices=constrained_top_k(scores, k, constraints),
        scores=scores,
        details={
            "settings": {"seed": seed, **settings_dict(data_opts, signal_opts), "dtype": str(dtype)},
            "condensing_set": describe_all(data),
            "condensing_set_size": data.size,
            "tokens": tokens,
            "score_rule": "score(l) = 1 - mean over all tokens of cos(input of l, output of l); keep the top k",
        },
    )


__all__ = ["SignalOptions", "all_condensing_batches", "block_influence", "condense_block_influence", "describe_all"]
