"""`method="auto"`: the paper's condensing ("Auto-LG"), meta-learned feature matching with a pseudo descendant.

Rebuilt from the authors' public code (see LEARNGENE.md in the project notes), which adapts "Learning What and
Where to Transfer" (L2T-ww, Jang et al., 2019):

- A pseudo descendant P (a ViT of the ancestor's width with half its depth, random init) trains on the condensing
  set while its patch tokens are pulled towards the frozen ancestor's.
- For every pair (ancestry layer m, pseudo-descendant layer n) a small weight network (one Linear over the ancestry
  feature pooled over the hidden dimension, one input per patch token, then ReLU6) gives a per-image weight
  lambda_mn. The distance d_mn is the mean absolute difference of the patch tokens (CLS dropped).
- Each step: an SGD step on CE + beta * L_match, then `inner_steps` (T) SGD steps on L_match alone, then an SGD
  step on CE. The weight networks are updated with Adam on the gradient of that last CE loss, differentiated back
  through the unrolled SGD steps (`torch.func.functional_call`, second-order).
- Selection (our reading; the paper's code does not say): each ancestry layer's score is the total learned weight
  of its pairs, `sum_n mean_x lambda_mn(x)` on held-out condensing images, and the k highest-scoring layers are
  kept in ancestry order.

Further choices where the paper's text was not available: every (m, n) pair is weighted (the authors' example uses
every second block); the weight networks start at zero weight and bias `init_pair_weight` (1.0), so every pair
starts with lambda = 1 and what moves them is learned; the unrolled SGD steps keep the momentum buffer in the
graph within a step and detach it between steps; gradients are clipped to `max_grad_norm` in every step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from torch.nn.attention import SDPBackend, sdpa_kernel

from ..ancestry import Ancestor
from ..utils import autocast, cosine_schedule, resolve_device, resolve_dtype
from .condensing_set import DataOptions, prepare_data
from .pseudo_descendant import (
    PseudoOptions,
    check_pseudo_options,
    evaluate_pseudo_descendant,
    frozen_ancestor,
    hidden_states,
    progress,
    pseudo_descendant_for,
)
from .registry import Selection, check_num_layers, register_method, settings_dict, split_options, top_k_layers


@dataclass
class AutoOptions:
    inner_steps: int = 2
    beta: float = 0.1
    meta_lr: float = 1e-2
    meta_weight_decay: float = 1e-4
    init_pair_weight: float = 1.0


class PairWeightNetwork(nn.Module):
    """One weight network per (ancestry layer m, pseudo-descendant layer n) pair, batched into two tensors.

    `lambda_mn(x) = ReLU6(w_mn . pool(F_A[m](x)) + b_mn)`, where `pool` averages each patch token over the hidden
    dimension (one input per token).
    """

    def __init__(self, num_ancestry_layers: int, num_pseudo_layers: int, num_tokens: int, init: float = 1.0):
        super().__init__()
        if not 0.0 < init < 6.0:
            raise ValueError(f"`init_pair_weight` must lie in (0, 6), where ReLU6 has a gradient; got {init}.")
        self.weight = nn.Parameter(torch.zeros(num_ancestry_layers, num_pseudo_layers, num_tokens))
        self.bias = nn.Parameter(torch.full((num_ancestry_layers, num_pseudo_layers), float(init)))

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """`pooled`: `(batch, ancestry layers, tokens)` -> weights `(batch, ancestry layers, pseudo layers)`."""
        return F.relu6(torch.einsum("bmt,mnt->bmn", pooled, self.weight) + self.bias)


def matching_loss(ancestry_tokens: torch.Tensor, pseudo_hidden, weights: torch.Tensor) -> torch.Tensor:
    """`sum_(m,n) mean_b(lambda_mn * d_mn)` with `d_mn` the mean absolute difference of the patch tokens.

    `ancestry_tokens`: `(batch, M, tokens, hidden)`; `pseudo_hidden`: the pseudo descendant's hidden states
    (embeddings first); `weights`: `(batch, M, N)`."""
    loss = weights.new_zeros(())
    for n, hidden in enumerate(pseudo_hidden[1:]):
        patches = hidden[:, None, -ancestry_tokens.shape[2] :]  # the patch tokens come last
        distance = (ancestry_tokens - patches).abs().mean(dim=(2, 3)).to(weights.dtype)  # (batch, M)
        loss = loss + (weights[:, :, n] * distance).mean(0).sum()
    return loss


def _clip(grads: list[torch.Tensor], max_grad_norm: float | None) -> list[torch.Tensor]:
    if max_grad_norm is None:
        return grads
    norm = torch.sqrt(sum(g.float().pow(2).sum() for g in grads))
    scale = torch.clamp(max_grad_norm / (norm + 1e-6), max=1.0)
    return [g * scale for g in grads]


def optimizer_step(params: dict, grads, state: dict, *, optimizer: str, lr: float, opts) -> tuple[dict, dict]:
    """One functional AdamW or SGD-with-momentum step, differentiable when `grads` are (create_graph=True).

    `state` holds the optimizer's moments and step count; returns the new parameters and state.
    """
    grads = _clip(
        [torch.zeros_like(p) if g is None else g for p, g in zip(params.values(), grads, strict=True)],
        opts.max_grad_norm,
    )
    step = state.get("step", 0) + 1
    new_params, new_state = {}, {"step": step}
    for (name, param), grad in zip(params.items(), grads, strict=True):
        if optimizer == "sgd":
            grad = grad + opts.weight_decay * param
            buffer = opts.momentum * state[name] + grad if name in state else grad
            new_state[name] = buffer
            new_params[name] = param - lr * buffer
            continue
        beta1, beta2 = opts.betas
        exp_avg, exp_avg_sq = state.get(name, (torch.zeros_like(param), torch.zeros_like(param)))
        exp_avg = beta1 * exp_avg + (1 - beta1) * grad
        exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * grad * grad
        new_state[name] = (exp_avg, exp_avg_sq)
        # eps inside the square root keeps the second derivative finite where a gradient is exactly zero.
        denominator = torch.sqrt(exp_avg_sq / (1 - beta2**step) + opts.eps**2)
        update = exp_avg / (1 - beta1**step) / denominator
        new_params[name] = param * (1 - lr * opts.weight_decay) - lr * update
    return new_params, new_state


def _detach_state(state: dict) -> dict:
    return {
        key: value
        if key == "step"
        else tuple(v.detach() for v in value)
        if isinstance(value, tuple)
        else value.detach()
        for key, value in state.items()
    }


@register_method(
    "auto",
    needs_data=True,
    summary="the paper's method: meta-learned per-pair feature matching with a pseudo descendant; the k ancestry "
    "layers with the largest total learned weight",
)
def condense_auto(ancestor: Ancestor, num_layers: int, *, condense_dataset, seed: int = 0, **options) -> Selection:
    """Keep the k ancestry layers whose pairs with a pseudo descendant get the largest meta-learned weights.

    Options (all optional): the condensing-set options of [`load_condensing_data`] (`image_column`, `label_column`,
    `split`, `max_samples`, `batch_size`, `holdout`, `image_processor`, `num_workers`, `num_labels`); the pseudo
    descendant's (`pseudo_num_layers`, `pseudo_descendant`, `epochs`, `lr`, `momentum`, `weight_decay`,
    `max_grad_norm`); `device`, `dtype` (bf16 autocast on CUDA by default), `quiet`; and the meta-learning ones:
    `inner_steps` (T, defaults to 2), `beta` (weight of the matching loss in the first step, defaults to 0.1),
    `meta_lr` (Adam, defaults to 1e-2), `meta_weight_decay` (1e-4), `init_pair_weight` (1.0).
    """
    k = check_num_layers(num_layers, ancestor)
    data_opts, pseudo_opts, auto_opts = split_options("auto", options, DataOptions, PseudoOptions, AutoOptions)
    check_pseudo_options(pseudo_opts)
    if isinstance(auto_opts.inner_steps, bool) or not isinstance(auto_opts.inner_steps, int):
        raise ValueError(f"`inner_steps` must be an integer >= 0, got {auto_opts.inner_steps!r}.")
    if auto_opts.inner_steps < 0 or auto_opts.beta < 0:
        raise ValueError(f"`inner_steps` and `beta` must be >= 0, got {auto_opts.inner_steps} and {auto_opts.beta}.")
    device = resolve_device(pseudo_opts.device)
    dtype = resolve_dtype(pseudo_opts.dtype, device)
    data = prepare_data(condense_dataset, ancestor, data_opts, seed)
    pseudo = pseudo_descendant_for(ancestor, data, pseudo_opts, seed).to(device).train()
    ancestry_model = frozen_ancestor(ancestor, device)
    # The patch tokens of the images as they come (DINOv2 interpolates its position grid to any input size).
    num_tokens = _ancestry_tokens(ancestry_model, next(data.eval_batches())[0][:1].to(device), device, dtype).shape[2]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        weight_net = PairWeightNetwork(
            ancestor.num_layers, len(pseudo.descendant_layers()), num_tokens, auto_opts.init_pair_weight
        ).to(device)
        history = _meta_train(pseudo, ancestry_model, weight_net, data, pseudo_opts, auto_opts, device, dtype)
    accuracy = evaluate_pseudo_descendant(pseudo, data, device, dtype)
    pair_weights = _mean_pair_weights(ancestry_model, weight_net, data, device, dtype)
    scores = pair_weights.sum(dim=1).tolist()
    return Selection(
        layer_indices=top_k_layers(scores, k),
        scores=scores,
        details={
            "settings": {"seed": seed, **settings_dict(data_opts, pseudo_opts, auto_opts), "dtype": str(dtype)},
            "condensing_set": data.describe(),
            "condensing_set_size": data.size,
            "pseudo_descendant_layers": len(pseudo.descendant_layers()),
            "pseudo_heldout_accuracy": accuracy,
            "score_rule": "score(m) = sum over pseudo-descendant layers n of the mean learned weight lambda_mn on "
            "held-out images; keep the top k (our reading: the paper's code does not state the rule)",
        },
        report={"history": history, "pair_weights": pair_weights.tolist()},
    )


def _ancestry_tokens(ancestry_model, pixel_values: torch.Tensor, device, dtype) -> torch.Tensor:
    with torch.no_grad(), autocast(device, dtype):
        hidden = hidden_states(ancestry_model, pixel_values)
    # Patch tokens only: after the family's CLS / distillation / register tokens, if any.
    return torch.stack([h[:, ancestry_model.embeddings.num_prefix_tokens :] for h in hidden[1:]], dim=1)


def unrolled_objective(pseudo, params: dict, state: dict, weight_net, batch, *, lr: float, opts, auto_opts, dtype):
    """One unrolled step of the pseudo descendant, differentiable with respect to the pair weights.

    From `params` (and optimizer `state`): an optimizer step on CE + beta * L_match, then `inner_steps` steps on
    L_match alone, each kept in the autograd graph (`create_graph=True`). Returns the CE loss after them (the meta
    objective; its gradient with respect to the weight network flows back through the steps), the parameters and
    optimizer state reached, and the CE and matching losses of the first step.

    Args:
        batch: `(pixel_values, labels, ancestry_tokens)`, with `ancestry_tokens` of shape `(batch, M, tokens, hidden)`.
    """
    pixel_values, labels, tokens = batch
    device = pixel_values.device

    def objective(current, weights):
        with autocast(device, dtype):
            outputs = functional_call(pseudo, current, (pixel_values,), {"output_hidden_states": True})
            match = None if weights is None else matching_loss(tokens, outputs.hidden_states, weights)
        logits = outputs.logits
        return F.cross_entropy(logits.to(torch.promote_types(logits.dtype, torch.float32)), labels), match

    # Fused / flash attention kernels have no double backward; the math kernel has.
    with torch.enable_grad(), sdpa_kernel(SDPBackend.MATH):
        weights = weight_net(tokens.to(weight_net.bias.dtype).mean(-1))
        current = {name: p.detach().requires_grad_() for name, p in params.items()}
        first = None
        for inner in range(auto_opts.inner_steps + 1):
            ce, match = objective(current, weights)
            if first is None:
                first = (ce.item(), match.item())
            loss = ce + auto_opts.beta * match if inner == 0 else match
            grads = torch.autograd.grad(loss, list(current.values()), create_graph=True, allow_unused=True)
            current, state = optimizer_step(current, grads, state, lr=lr, optimizer=opts.optimizer, opts=opts)
        outer, _ = objective(current, None)
    return outer, current, state, first


def _meta_train(pseudo, ancestry_model, weight_net, data, opts, auto_opts, device, dtype) -> list[dict]:
    """Train the pseudo descendant and the pair weights together; returns per-epoch mean losses."""
    params = {name: p.detach().clone() for name, p in pseudo.named_parameters()}
    state: dict = {}
    meta_params = list(weight_net.parameters())
    meta_optimizer = torch.optim.Adam(meta_params, lr=auto_opts.meta_lr, weight_decay=auto_opts.meta_weight_decay)
    total = opts.epochs * data.num_train_batches
    step, history = 0, []
    bar = progress(opts, total=total, desc="auto condensing")
    for epoch in range(opts.epochs):
        ce_sum = match_sum = 0.0
        batches = 0
        for pixel_values, labels in data.train_batches(epoch):
            pixel_values, labels = pixel_values.to(device), labels.to(device)
            lr = opts.lr * cosine_schedule(step, total)
            tokens = _ancestry_tokens(ancestry_model, pixel_values, device, dtype)
            outer, current, state, (ce, match) = unrolled_objective(
                pseudo,
                params,
                state,
                weight_net,
                (pixel_values, labels, tokens),
                lr=lr,
                opts=opts,
                auto_opts=auto_opts,
                dtype=dtype,
            )
            with sdpa_kernel(SDPBackend.MATH):
                grads = torch.autograd.grad(outer, meta_params + list(current.values()), allow_unused=True)
            meta_optimizer.zero_grad(set_to_none=True)
            for p, g in zip(meta_params, grads[: len(meta_params)], strict=True):
                p.grad = g
            meta_optimizer.step()
            # The CE step that ends the step uses the gradient just computed at the unrolled parameters.
            detached = {name: p.detach() for name, p in current.items()}
            params, state = optimizer_step(
                detached, grads[len(meta_params) :], _detach_state(state), lr=lr, optimizer=opts.optimizer, opts=opts
            )
            params = {name: p.detach() for name, p in params.items()}
            state = _detach_state(state)
            ce_sum, match_sum, batches, step = ce_sum + ce, match_sum + match, batches + 1, step + 1
            bar.update(1)
            bar.set_postfix(ce=f"{ce:.3f}")
        count = max(batches, 1)
        history.append({"epoch": epoch + 1, "train_ce": ce_sum / count, "train_match": match_sum / count})
    bar.close()
    with torch.no_grad():
        for name, p in pseudo.named_parameters():
            p.copy_(params[name])
    pseudo.eval()
    return history


@torch.no_grad()
def _mean_pair_weights(ancestry_model, weight_net, data, device, dtype) -> torch.Tensor:
    """Mean learned weight of every pair over the held-out images: `(ancestry layers, pseudo layers)`."""
    total, count = None, 0
    for pixel_values, _ in data.eval_batches():
        tokens = _ancestry_tokens(ancestry_model, pixel_values.to(device), device, dtype)
        weights = weight_net(tokens.to(weight_net.bias.dtype).mean(-1)).double().sum(0).cpu()
        total = weights if total is None else total + weights
        count += pixel_values.shape[0]
    return total / count


__all__ = ["PairWeightNetwork", "condense_auto", "matching_loss", "optimizer_step", "unrolled_objective"]
