"""`method="cka"`: score ancestry layers by linear CKA against a pseudo descendant trained on the condensing set.

A pseudo descendant (a ViT of the ancestor's width with half its depth) is trained from scratch with cross-entropy
on the condensing set. On held-out condensing images every ancestry layer m is compared with every
pseudo-descendant layer n by linear CKA (Kornblith et al., 2019), estimated with minibatch unbiased HSIC (Nguyen et
al., 2021), so memory stays bounded by one batch. A layer's score is its best CKA over the pseudo-descendant
layers; the k best layers are kept.

Two readings of "a layer's representation" are offered (`cka_features`):

- `"update"` (default): what the layer computes. Both layers get the same input (the pseudo descendant's hidden
  state before layer n) and their residual updates `layer(h) - h` on the patch tokens are compared. A
  pseudo-descendant layer that is a copy of ancestry layer m scores exactly 1 with it.
- `"hidden"`: the classic comparison of hidden states: the ancestor's output of layer m against the pseudo
  descendant's output of layer n on the same images (patch tokens).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..ancestry import Ancestor
from ..utils import autocast, resolve_device, resolve_dtype
from .condensing_set import MIN_EVAL_BATCH, DataOptions, prepare_data
from .pseudo_descendant import (
    PseudoOptions,
    check_pseudo_options,
    evaluate_pseudo_descendant,
    frozen_ancestor,
    hidden_states,
    progress,
    pseudo_descendant_for,
    train_pseudo_descendant,
)
from .registry import Selection, check_num_layers, register_method, settings_dict, split_options, top_k_layers

CKA_FEATURES = ("update", "hidden")


@dataclass
class CkaOptions:
    cka_features: str = "update"


def gram(features: torch.Tensor) -> torch.Tensor:
    """Linear kernel of per-image features `(batch, ...)`, in float64."""
    flat = features.reshape(features.shape[0], -1).double()
    return flat @ flat.T


def unbiased_hsic(k: torch.Tensor, l: torch.Tensor) -> torch.Tensor:  # noqa: E741
    """Unbiased HSIC estimator (Song et al., 2012) of two `(n, n)` Gram matrices, n >= 4."""
    n = k.shape[0]
    k = k - torch.diag_embed(torch.diagonal(k))
    l = l - torch.diag_embed(torch.diagonal(l))  # noqa: E741
    ones = torch.ones(n, 1, dtype=k.dtype, device=k.device)
    term = torch.trace(k @ l) + (ones.T @ k @ ones) * (ones.T @ l @ ones) / ((n - 1) * (n - 2))
    term = term - 2.0 / (n - 2) * (ones.T @ k @ l @ ones)
    return (term / (n * (n - 3))).squeeze()


class MinibatchCKA:
    """Accumulates minibatch HSIC terms for a grid of (ancestry layer, pseudo layer) pairs."""

    def __init__(self, rows: int, cols: int):
        self.cross = torch.zeros(rows, cols, dtype=torch.float64)
        self.self_rows = torch.zeros(rows, cols, dtype=torch.float64)
        self.self_cols = torch.zeros(rows, cols, dtype=torch.float64)

    def update(self, m: int, n: int, k: torch.Tensor, l: torch.Tensor) -> None:  # noqa: E741
        self.cross[m, n] += unbiased_hsic(k, l).cpu()
        self.self_rows[m, n] += unbiased_hsic(k, k).cpu()
        self.self_cols[m, n] += unbiased_hsic(l, l).cpu()

    def compute(self) -> torch.Tensor:
        denominator = (self.self_rows.clamp_min(0) * self.self_cols.clamp_min(0)).sqrt()
        return torch.where(denominator > 0, self.cross / denominator.clamp_min(1e-30), torch.zeros_like(self.cross))


@torch.no_grad()
def layer_cka(ancestry_model, pseudo_model, batches, *, features: str, device, dtype, bar=None) -> torch.Tensor:
    """CKA matrix `(ancestry layers, pseudo-descendant layers)` over `batches` of `(pixel_values, labels)`."""
    if features not in CKA_FEATURES:
        raise ValueError(f"`cka_features` must be one of {CKA_FEATURES}, got {features!r}.")
    ancestry_layers = list(ancestry_model.layers)
    pseudo = pseudo_model.descendant_layers()
    accumulator = MinibatchCKA(len(ancestry_layers), len(pseudo))
    used = 0
    for pixel_values, _ in batches:
        if pixel_values.shape[0] < MIN_EVAL_BATCH:
            continue
        pixel_values = pixel_values.to(device)
        with autocast(device, dtype):
            pseudo_hidden = hidden_states(pseudo_model, pixel_values)
            if features == "hidden":
                ancestry_hidden = hidden_states(ancestry_model, pixel_values)
                grams_a = [gram(h[:, 1:].float()) for h in ancestry_hidden[1:]]
                for n, h in enumerate(pseudo_hidden[1:]):
                    pseudo_gram = gram(h[:, 1:].float())
                    for m, gram_a in enumerate(grams_a):
                        accumulator.update(m, n, gram_a, pseudo_gram)
            else:
                for n in range(len(pseudo)):
                    inputs = pseudo_hidden[n]
                    pseudo_gram = gram((pseudo_hidden[n + 1] - inputs)[:, 1:].float())
                    for m, ancestry_layer in enumerate(ancestry_layers):
                        update = (ancestry_layer(inputs) - inputs)[:, 1:].float()
                        accumulator.update(m, n, gram(update), pseudo_gram)
        used += 1
        if bar is not None:
            bar.update(1)
    if used == 0:
        raise ValueError(f"No held-out batch has at least {MIN_EVAL_BATCH} images; raise `batch_size`.")
    return accumulator.compute()


@register_method(
    "cka",
    needs_data=True,
    summary="the k ancestry layers most similar (linear CKA) to a pseudo descendant trained on the condensing set",
)
def condense_cka(ancestor: Ancestor, num_layers: int, *, condense_dataset, seed: int = 0, **options) -> Selection:
    """Keep the k ancestry layers with the highest CKA against a pseudo descendant.

    Options (all optional): the condensing-set options of [`load_condensing_data`] (`image_column`, `label_column`,
    `split`, `max_samples`, `batch_size`, `holdout`, `image_processor`, `num_workers`, `num_labels`); the pseudo
    descendant's (`pseudo_num_layers`, `pseudo_descendant` to bring your own, `epochs` (0 skips training), `lr`,
    `momentum`, `weight_decay`, `max_grad_norm`); `device`, `dtype` (bf16 autocast on CUDA by default), `quiet`;
    and `cka_features` (`"update"` or `"hidden"`, see the module docstring).
    """
    k = check_num_layers(num_layers, ancestor)
    data_opts, pseudo_opts, cka_opts = split_options("cka", options, DataOptions, PseudoOptions, CkaOptions)
    check_pseudo_options(pseudo_opts)
    if cka_opts.cka_features not in CKA_FEATURES:
        raise ValueError(f"`cka_features` must be one of {CKA_FEATURES}, got {cka_opts.cka_features!r}.")
    device = resolve_device(pseudo_opts.device)
    dtype = resolve_dtype(pseudo_opts.dtype, device)
    data = prepare_data(condense_dataset, ancestor, data_opts, seed)
    pseudo = pseudo_descendant_for(ancestor, data, pseudo_opts, seed)
    training = train_pseudo_descendant(pseudo, data, pseudo_opts, device, dtype, seed)
    accuracy = evaluate_pseudo_descendant(pseudo, data, device, dtype)
    ancestry_model = frozen_ancestor(ancestor, device)
    bar = progress(pseudo_opts, total=data.num_eval_batches, desc="CKA features")
    matrix = layer_cka(
        ancestry_model,
        pseudo,
        data.eval_batches(),
        features=cka_opts.cka_features,
        device=device,
        dtype=dtype,
        bar=bar,
    )
    bar.close()
    scores = matrix.max(dim=1).values.tolist()
    return Selection(
        layer_indices=top_k_layers(scores, k),
        scores=scores,
        details={
            "settings": {"seed": seed, **settings_dict(data_opts, pseudo_opts, cka_opts), "dtype": str(dtype)},
            "condensing_set": data.describe(),
            "condensing_set_size": data.size,
            "pseudo_descendant_layers": len(pseudo.descendant_layers()),
            "pseudo_train_loss": training["train_loss"],
            "pseudo_heldout_accuracy": accuracy,
            "score_rule": "score(m) = max over pseudo-descendant layers n of CKA(m, n); keep the top k",
        },
        report={"cka_matrix": matrix.tolist()},
    )


__all__ = ["CKA_FEATURES", "MinibatchCKA", "condense_cka", "gram", "layer_cka", "unbiased_hsic"]
