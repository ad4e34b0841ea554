"""Data-driven width selection: which residual channels, heads and MLP neurons of a learngene a narrower descendant
keeps (`width_selection="activation"`).

[`select_width`] runs the learngene over a few hundred images and keeps, by the largest mean magnitude:

- residual channels: the mean |activation| of each channel of the residual stream (the embeddings and every layer's
  output), each state divided by its own mean so that no depth dominates; one selection shared by every tensor;
- heads, per layer: the mean norm of each head's contribution to the residual stream (its context vectors through its
  columns of `o_proj`), kept whole, so head_dim stays the learngene's;
- MLP neurons, per layer: the mean |activation| of each neuron times the norm of its `fc2` column (its contribution).

Ties go to the lower index; kept indices are in ascending order. The uniform and whole-heads rules need no data and
live in `modeling_learngene` (they must load in remote code); this one needs images, so it is a package module.

Example:

```python
>>> from hf_learngene import DescendantForImageClassification
>>> from hf_learngene.growth import select_width
>>> selection = select_width("org/vit-learngene", images, hidden_size=384, num_attention_heads=6,
...                          intermediate_size=1536)
>>> model = DescendantForImageClassification.from_pretrained("org/vit-learngene", num_labels=10, **selection)
```
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from types import SimpleNamespace
from typing import Any

import torch
from datasets import Dataset, DatasetDict

from .data import dataset_to_tensors, default_image_processor, load_image_dataset
from .modeling_learngene import LearngeneModel, _check_width_request
from .utils import resolve_device


def _top_indices(scores: torch.Tensor, k: int) -> list[int]:
    """The `k` highest scores' indices, ascending; a tie goes to the lower index."""
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    return sorted(order[:k])


def _pixel_batches(
    dataset, model: LearngeneModel, *, max_samples: int, batch_size: int, split, image_column, seed: int
) -> Iterable[torch.Tensor]:
    """Batches of at most `max_samples` preprocessed images from a tensor, a dataset (name, folder, `Dataset`) or an
    iterable of batches (dicts with `pixel_values`, `(pixel_values, labels)` pairs, or tensors)."""
    if isinstance(dataset, torch.Tensor):
        pixel_values = dataset[:max_samples]
        return [pixel_values[i : i + batch_size] for i in range(0, len(pixel_values), batch_size)]
    if isinstance(dataset, (Dataset, DatasetDict, str, os.PathLike)):
        data = load_image_dataset(dataset, split)
        if isinstance(data, DatasetDict):
            data = data["train"] if "train" in data else next(iter(data.values()))
        data = data.shuffle(seed=seed).select(range(min(len(data), max_samples)))
        processor = getattr(model, "image_processor", None) or default_image_processor(model.config)
        pixel_values, _ = dataset_to_tensors(
            data, processor, num_channels=model.config.num_channels, image_column=image_column, batch_size=batch_size
        )
        return [pixel_values[i : i + batch_size] for i in range(0, len(pixel_values), batch_size)]

    def from_iterable():
        seen = 0
        for batch in dataset:
            if isinstance(batch, Mapping):
                batch = batch["pixel_values"]
            elif isinstance(batch, (tuple, list)):
                batch = batch[0]
            batch = batch[: max_samples - seen]
            seen += len(batch)
            yield batch
            if seen >= max_samples:
                return

    return from_iterable()


@torch.inference_mode()
def select_width(
    learngene: LearngeneModel | str | os.PathLike,
    dataset,
    *,
    hidden_size: int | None = None,
    num_attention_heads: int | None = None,
    intermediate_size: int | None = None,
    max_samples: int = 256,
    batch_size: int = 64,
    split: str | None = None,
    image_column: str | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> dict[str, Any]:
    """Choose a narrower descendant's channels by activation magnitude on sample images.

    Args:
        learngene ([`LearngeneModel`], `str` or `os.PathLike`):
            The learngene (a loaded model, a folder or a Hub id) at its full width, of kept layers.
        dataset:
            The images: a `datasets.Dataset` / `DatasetDict` (the `split=` split, else `train`, else the first), a
            dataset name or image folder, a tensor of preprocessed `pixel_values`, or an iterable of batches (dicts
            with `pixel_values`, `(pixel_values, labels)` pairs, or tensors). Raw images are preprocessed with the
            learngene's image processor (or `default_image_processor`).
        hidden_size (`int`, *optional*), num_attention_heads (`int`, *optional*), intermediate_size (`int`, *optional*):
            The descendant's sizes; each defaults to the learngene's. Heads are kept whole, so
            `hidden_size / num_attention_heads` must equal the learngene's head_dim.
        max_samples (`int`, *optional*, defaults to 256):
            How many images to measure on (a seeded random subset of a dataset; the first ones of a tensor).
        batch_size (`int`, *optional*, defaults to 64):
            Images per forward pass.
        split (`str`, *optional*), image_column (`str`, *optional*):
            Which split and image column of a dataset to read (found automatically when not given).
        seed (`int`, *optional*, defaults to 0):
            Seed of the subset drawn from a dataset.
        device (`str` or `torch.device`, *optional*):
            Where to run (defaults to where the learngene is); the learngene is moved back afterwards.

    Returns:
        `dict`: keyword arguments for `DescendantForImageClassification.from_pretrained` (pass them with `**`):
        `hidden_size`, `num_attention_heads`, `intermediate_size`, `width_selection="activation"` and
        `width_indices` (`"hidden"`: one list; `"attention"` and `"intermediate"`: one list per learngene layer).
    """
    model = learngene if isinstance(learngene, LearngeneModel) else LearngeneModel.from_pretrained(learngene)
    config = model.config
    if config.learngene_form != "layers" or config.width_indices is not None:
        raise ValueError(
            "select_width measures a learngene of kept ancestry layers at its full width; this one is "
            + ("a linear learngene" if config.learngene_form != "layers" else "already narrowed")
            + ": use width_selection='uniform' or 'heads' for it."
        )
    if isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 1:
        raise ValueError(f"`max_samples` must be a positive integer, got {max_samples!r}.")
    target = SimpleNamespace(
        hidden_size=hidden_size or config.hidden_size,
        num_attention_heads=num_attention_heads or config.num_attention_heads,
        intermediate_size=intermediate_size or config.intermediate_size,
    )
    _check_width_request(config, target, "activation")

    num_layers, heads = len(model.layers), config.num_attention_heads
    head_dim = config.hidden_size // heads
    residual = torch.zeros(config.hidden_size, dtype=torch.float64)
    head_scores = torch.zeros(num_layers, heads, dtype=torch.float64)
    neuron_scores = torch.zeros(num_layers, config.intermediate_size, dtype=torch.float64)

    def head_hook(index: int):
        def hook(module, args):
            context = args[0].float()  # (batch, seq, hidden): the heads' outputs, before o_proj
            weight = module.weight.float()
            for h in range(heads):
                part = slice(h * head_dim, (h + 1) * head_dim)
                contribution = context[..., part] @ weight[:, part].T
                head_scores[index, h] += contribution.norm(dim=-1).mean(dim=1).sum().double().cpu()

        return hook

    def neuron_hook(index: int):
        def hook(module, args):
            activation = args[0].float()  # (batch, seq, intermediate): the MLP's hidden neurons, before fc2
            column_norms = module.weight.float().norm(dim=0)
            neuron_scores[index] += (activation.abs().mean(dim=1).sum(dim=0) * column_norms).double().cpu()

        return hook

    original_device, was_training = next(model.parameters()).device, model.training
    run_device = original_device if device is None else resolve_device(device)
    handles = []
    for index, layer in enumerate(model.layers):
        handles.append(layer.attention.o_proj.register_forward_pre_hook(head_hook(index)))
        handles.append(layer.mlp.fc2.register_forward_pre_hook(neuron_hook(index)))
    num_images = 0
    try:
        model.to(run_device).eval()
        batches = _pixel_batches(
            dataset,
            model,
            max_samples=max_samples,
            batch_size=batch_size,
            split=split,
            image_column=image_column,
            seed=seed,
        )
        for pixel_values in batches:
            states = model(pixel_values.to(run_device), output_hidden_states=True).hidden_states
            for state in states:
                magnitude = state.float().abs().mean(dim=1)  # (batch, hidden)
                residual += (magnitude / magnitude.mean(dim=-1, keepdim=True)).sum(dim=0).double().cpu()
            num_images += len(pixel_values)
    finally:
        for handle in handles:
            handle.remove()
        model.to(original_device).train(was_training)
    if num_images == 0:
        raise ValueError("select_width got no images: the dataset (or the batches) is empty.")

    kept_heads = [_top_indices(head_scores[i], target.num_attention_heads) for i in range(num_layers)]
    return {
        "hidden_size": target.hidden_size,
        "num_attention_heads": target.num_attention_heads,
        "intermediate_size": target.intermediate_size,
        "width_selection": "activation",
        "width_indices": {
            "hidden": _top_indices(residual, target.hidden_size),
            "attention": [[h * head_dim + c for h in kept for c in range(head_dim)] for kept in kept_heads],
            "intermediate": [_top_indices(neuron_scores[i], target.intermediate_size) for i in range(num_layers)],
        },
    }


__all__ = ["select_width"]
