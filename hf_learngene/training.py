"""Training descendants with the `Trainer`: inheriting options, metrics, learning curves and the model card.

- [`parameter_groups`] gives optimizer groups with separate learning rates for inherited (`model.learngene`: embeddings,
  inherited layers, final LayerNorm) and new (`model.new_layers`, `model.classifier`) parameters, for the `Trainer`
  (`optimizers=`) or a plain loop.
- [`freeze_inherited`] / [`FreezeInheritedCallback`] keep the inherited parameters fixed throughout or for the first
  N optimizer steps.
- [`compute_metrics`] computes accuracy and macro-F1 with `evaluate`, from metric scripts shipped in the package
  (`evaluate.load("accuracy")` needs the Hub).
- [`LearningCurveCallback`] records per-epoch train loss, eval loss, accuracy and F1 (to JSON).
- [`LearngeneTrainer`] is a `Trainer` whose `push_to_hub()` keeps the descendant's own model card.
- [`train_descendant`] puts it together with sound defaults.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import torch
from datasets import DatasetDict
from torch import nn
from transformers import EvalPrediction, Trainer, TrainerCallback, TrainingArguments

from .data import collate_fn, default_image_processor, find_columns, prepare_dataset

METRICS_DIR = resources.files("hf_learngene") / "metrics"
LEARNING_CURVES_FILE = "learning_curves.json"
_NO_DECAY_NAMES = ("bias", "cls_token", "position_embeddings")
_INHERITED_PREFIX = "learngene."
_TIMINGS = ("_runtime", "_per_second")


# ---------------------------------------------------------------------------------------------------------------------
# Inherited vs new parameters


def _check_descendant(model: nn.Module) -> None:
    if not hasattr(model, "learngene"):
        raise TypeError(
            f"Expected a DescendantForImageClassification (a model with a `learngene` submodule), got "
            f"{type(model).__name__}."
        )


def inherited_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """`(name, parameter)` pairs of what the descendant inherited: `model.learngene` (embeddings, inherited layers and
    the final LayerNorm)."""
    _check_descendant(model)
    return [(n, p) for n, p in model.named_parameters() if n.startswith(_INHERITED_PREFIX)]


def new_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """`(name, parameter)` pairs of what is new in the descendant: `model.new_layers` and `model.classifier`."""
    _check_descendant(model)
    return [(n, p) for n, p in model.named_parameters() if not n.startswith(_INHERITED_PREFIX)]


def _decays(name: str, parameter: nn.Parameter) -> bool:
    # Transformers' convention: no weight decay on biases, norms (1-D) and the learned position / CLS embeddings.
    return parameter.ndim > 1 and not any(part in name for part in _NO_DECAY_NAMES)


def parameter_groups(
    model: nn.Module,
    inherited_lr: float,
    new_lr: float,
    weight_decay: float = 0.05,
    include_frozen: bool = True,
) -> list[dict[str, Any]]:
    """Optimizer parameter groups with separate learning rates for inherited and new parameters.

    Four groups: inherited / new, each with and without weight decay (biases, LayerNorms, position and CLS embeddings
    get none). Each group carries a `"name"` key (`"inherited"`, `"inherited_no_decay"`, `"new"`,
    `"new_no_decay"`); empty groups are left out. Learning-rate schedulers scale every group's `lr` alike.

    Args:
        model ([`DescendantForImageClassification`]):
            The descendant.
        inherited_lr (`float`):
            Learning rate of `model.learngene` (embeddings, inherited layers, final LayerNorm). 0 keeps them fixed.
        new_lr (`float`):
            Learning rate of `model.new_layers` and `model.classifier`.
        weight_decay (`float`, *optional*, defaults to 0.05):
            Weight decay of the matrices.
        include_frozen (`bool`, *optional*, defaults to `True`):
            Keep parameters with `requires_grad=False` (so that they train once unfrozen; the optimizer skips
            parameters without gradients).

    Example:

    ```python
    >>> from transformers import Trainer
    >>> optimizer = torch.optim.AdamW(parameter_groups(model, inherited_lr=1e-4, new_lr=1e-3))
    >>> trainer = Trainer(model=model, args=args, optimizers=(optimizer, None), ...)
    ```"""
    if inherited_lr < 0 or new_lr < 0:
        raise ValueError(f"Learning rates must be >= 0, got inherited_lr={inherited_lr}, new_lr={new_lr}.")
    groups = []
    for kind, params, lr in (
        ("inherited", inherited_parameters(model), inherited_lr),
        ("new", new_parameters(model), new_lr),
    ):
        params = [(n, p) for n, p in params if include_frozen or p.requires_grad]
        decay = [p for n, p in params if _decays(n, p)]
        no_decay = [p for n, p in params if not _decays(n, p)]
        if decay:
            groups.append({"name": kind, "params": decay, "lr": lr, "weight_decay": weight_decay})
        if no_decay:
            groups.append({"name": f"{kind}_no_decay", "params": no_decay, "lr": lr, "weight_decay": 0.0})
    return groups


def freeze_inherited(model: nn.Module, frozen: bool = True) -> int:
    """Set `requires_grad` of the inherited parameters (`model.learngene`) to `not frozen`; returns how many
    parameters changed.

    Freezing throughout this way also saves their gradient computation. Call it before building the optimizer or
    wrapping the model for distributed training (DDP records which parameters train when it wraps the model); to
    freeze only for the first steps use [`FreezeInheritedCallback`] or [`drop_inherited_gradients`].
    """
    changed = 0
    for _, parameter in inherited_parameters(model):
        if parameter.requires_grad == frozen:
            parameter.requires_grad_(not frozen)
            changed += 1
    return changed


def drop_inherited_gradients(model: nn.Module) -> None:
    """Set the gradients of the inherited parameters to `None`, so that the next `optimizer.step()` leaves them
    (and their optimizer state, weight decay included) untouched. Call it between `backward()` and `step()`; it works
    under DDP because it runs after the gradients were all-reduced."""
    for _, parameter in inherited_parameters(model):
        parameter.grad = None


class FreezeInheritedCallback(TrainerCallback):
    """Keep the inherited parameters fixed for the first `num_steps` optimizer steps (all of training when `None`).

    Their gradients are dropped right before each optimizer step, so the optimizer skips them entirely; afterwards
    they train with their own learning rate. Gradient clipping still sees their gradients during the frozen steps.
    To freeze throughout and save the backward computation, call [`freeze_inherited`] before creating the `Trainer`.

    Args:
        num_steps (`int`, *optional*):
            Number of optimizer steps to keep the inherited parameters fixed; `None` freezes them throughout.
    """

    def __init__(self, num_steps: int | None = None):
        if num_steps is not None and (isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 0):
            raise ValueError(f"`num_steps` must be an integer >= 0 or None (throughout), got {num_steps!r}.")
        self.num_steps = num_steps

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        if self.num_steps is None or state.global_step < self.num_steps:
            drop_inherited_gradients(model)


# ---------------------------------------------------------------------------------------------------------------------
# Metrics


def available_metrics() -> list[str]:
    """Names of the `evaluate` metric scripts shipped in `hf_learngene/metrics/`."""
    return sorted(entry.name for entry in METRICS_DIR.iterdir() if (entry / f"{entry.name}.py").is_file())


@cache
def load_metric(name: str):
    """Load a metric shipped with hf_learngene (`"accuracy"`, `"f1"`) with `evaluate.load`, by path (offline)."""
    import evaluate

    if name not in available_metrics():
        raise ValueError(
            f"Unknown metric {name!r}: hf_learngene ships {available_metrics()} (loaded by path, offline). For other "
            "metrics pass your own `compute_metrics=` to the Trainer."
        )
    return evaluate.load(str(METRICS_DIR / name))


def make_compute_metrics(metrics: Sequence[str] = ("accuracy", "f1")):
    """A `compute_metrics` function for the `Trainer` over the shipped metrics (F1 is macro-averaged).

    Raises `ValueError` at once for an unknown metric name."""
    modules = {name: load_metric(name) for name in metrics}

    def compute(eval_pred: EvalPrediction | tuple) -> dict[str, float]:
        logits, labels = eval_pred[0], eval_pred[1]
        if isinstance(logits, (tuple, list)):
            logits = logits[0]
        predictions = np.asarray(logits).argmax(-1)
        results = {}
        for name, module in modules.items():
            extra = {"average": "macro"} if name == "f1" else {}
            results.update(module.compute(predictions=predictions, references=np.asarray(labels), **extra))
        return results

    return compute


def compute_metrics(eval_pred: EvalPrediction | tuple) -> dict[str, float]:
    """Accuracy and macro-F1 of `(logits, labels)`, for `Trainer(compute_metrics=compute_metrics)`."""
    return make_compute_metrics()(eval_pred)


# ---------------------------------------------------------------------------------------------------------------------
# Learning curves


class LearningCurveCallback(TrainerCallback):
    """Record one entry per epoch: `epoch`, `train_loss` (mean of the losses logged in that epoch), `eval_loss`,
    `eval_accuracy`, `eval_f1` (missing values are `None`), written to `path` (JSON) as training goes.

    Args:
        path (`str`, *optional*):
            Where to write the JSON list; defaults to `<output_dir>/learning_curves.json`.
    """

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = path
        self.curves: list[dict[str, Any]] = []
        self._train_losses: dict[int, list[float]] = {}

    def _entry(self, epoch: float | None) -> dict[str, Any]:
        index = max(1, math.ceil(round(epoch or 0.0, 6)))
        for entry in self.curves:
            if entry["epoch"] == index:
                return entry
        entry = {"epoch": index, "train_loss": None, "eval_loss": None, "eval_accuracy": None, "eval_f1": None}
        self.curves.append(entry)
        self.curves.sort(key=lambda e: e["epoch"])
        return entry

    def on_train_begin(self, args, state, control, **kwargs):
        self.curves, self._train_losses = [], {}

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or not state.is_world_process_zero:
            return
        if "loss" in logs:
            entry = self._entry(logs.get("epoch", state.epoch))
            losses = self._train_losses.setdefault(entry["epoch"], [])
            losses.append(float(logs["loss"]))
            entry["train_loss"] = float(np.mean(losses))
        if "eval_loss" in logs:
            entry = self._entry(logs.get("epoch", state.epoch))
            for key in ("eval_loss", "eval_accuracy", "eval_f1"):
                if key in logs:
                    entry[key] = float(logs[key])
        self._write(args)

    def _write(self, args) -> None:
        path = self.path or os.path.join(args.output_dir, LEARNING_CURVES_FILE)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.curves, f, indent=2)


# ---------------------------------------------------------------------------------------------------------------------
# Model card and Trainer


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def training_card_section(
    dataset_name: str | None,
    num_train: int | None,
    num_eval: int | None,
    metrics: dict[str, Any],
    learning_curves: list[dict[str, Any]],
    training_setup: dict[str, Any] | None = None,
) -> str:
    """The "Training" markdown section of a descendant's card: data, final metrics and the learning curve."""
    lines = ["## Training", ""]
    data = f"`{dataset_name}`" if dataset_name else "a local dataset"
    sizes = ", ".join(
        f"{n:,} {what}" for n, what in ((num_train, "training"), (num_eval, "evaluation")) if n is not None
    )
    lines.append(f"Trained on {data}" + (f" ({sizes} images)." if sizes else "."))
    if training_setup:
        lines += ["", "| Setting | Value |", "| --- | --- |"]
        lines += [f"| {key} | {_fmt(value)} |" for key, value in training_setup.items()]
    shown = {
        k: v
        for k, v in metrics.items()
        if (k.startswith("eval_") or k == "train_loss") and isinstance(v, (int, float)) and not k.endswith(_TIMINGS)
    }
    if shown:
        lines += ["", "### Results", "", "| Metric | Value |", "| --- | --- |"]
        lines += [f"| {key} | {_fmt(value)} |" for key, value in shown.items()]
    if learning_curves:
        lines += [
            "",
            "### Learning curve",
            "",
            "| Epoch | Train loss | Eval loss | Eval accuracy | Eval F1 (macro) |",
            "| --- | --- | --- | --- | --- |",
        ]
        lines += [
            f"| {e['epoch']} | {_fmt(e.get('train_loss'))} | {_fmt(e.get('eval_loss'))} | "
            f"{_fmt(e.get('eval_accuracy'))} | {_fmt(e.get('eval_f1'))} |"
            for e in learning_curves
        ]
    return "\n".join(lines) + "\n"


class LearngeneTrainer(Trainer):
    """A `Trainer` that keeps hf_learngene's model card.

    `Trainer.push_to_hub()` writes its own generic README.md over the one `save_pretrained` wrote; this subclass
    writes the descendant's card instead (learngene provenance, layout, labels and `model.card_sections`), adding
    the tags and dataset the Trainer was given. With the plain `Trainer`, push with `trainer.model.push_to_hub(...)`
    instead of `trainer.push_to_hub()` to keep the card.
    """

    def create_model_card(self, tags: str | list[str] | None = None, dataset: str | list[str] | None = None, **kwargs):
        if not self.is_world_process_zero():
            return
        from .model_card import model_card

        model = self.accelerator.unwrap_model(self.model)
        card = model_card(model, self.hub_model_id or self.args.hub_model_id, getattr(model, "card_sections", None))
        extra_tags = [tags] if isinstance(tags, str) else list(tags or [])
        card.data.tags = list(dict.fromkeys(list(card.data.tags or []) + extra_tags))
        if dataset:
            card.data.datasets = [dataset] if isinstance(dataset, str) else list(dataset)
        card.save(os.path.join(self.args.output_dir, "README.md"))


# ---------------------------------------------------------------------------------------------------------------------
# The helper


@dataclass
class DescendantTrainingResult:
    """What [`train_descendant`] returns.

    Args:
        metrics (`dict`):
            Final evaluation metrics (`eval_accuracy`, `eval_f1`, `eval_loss`, ...) of the model kept (the best
            checkpoint on accuracy when there is an eval set), plus `train_runtime` and `train_loss`.
        learning_curves (`list[dict]`):
            One dict per epoch: `epoch`, `train_loss`, `eval_loss`, `eval_accuracy`, `eval_f1`.
        trainer ([`LearngeneTrainer`]):
            The trainer (its `model` is the trained descendant).
    """

    metrics: dict[str, Any]
    learning_curves: list[dict[str, Any]] = field(default_factory=list)
    trainer: Trainer | None = None


def _is_prepared(dataset) -> bool:
    # A dataset that already went through prepare_dataset (or any with_transform / set_format) is used as is.
    format_type = getattr(dataset, "format", {}).get("type") if hasattr(dataset, "format") else None
    return format_type is not None or not hasattr(dataset, "features")


def _prepare(dataset, image_processor, model, train: bool, horizontal_flip: bool):
    if dataset is None or _is_prepared(dataset):
        return dataset
    return prepare_dataset(
        dataset,
        image_processor,
        train=train,
        num_channels=model.config.num_channels,
        num_labels=model.config.num_labels,
        horizontal_flip=horizontal_flip,
    )


def _set_label_names(model, dataset) -> None:
    """Give the config the dataset's class names when the model still has transformers' placeholders."""
    if dataset is None or not hasattr(dataset, "features"):
        return
    try:
        _, label_column = find_columns(dataset)
    except ValueError:
        return
    feature = dataset.features[label_column]
    names = getattr(feature, "names", None)
    placeholders = all(str(v) == f"LABEL_{k}" for k, v in model.config.id2label.items())
    if names and placeholders and len(names) == model.config.num_labels:
        model.config.id2label = dict(enumerate(names))
        model.config.label2id = {name: i for i, name in enumerate(names)}


def _dataset_name(dataset) -> str | None:
    info = getattr(dataset, "info", None)
    return getattr(info, "dataset_name", None) or getattr(info, "builder_name", None) if info else None


def train_descendant(
    model: nn.Module,
    train_dataset,
    eval_dataset=None,
    *,
    output_dir: str | os.PathLike,
    image_processor=None,
    num_train_epochs: float = 3,
    learning_rate: float = 5e-4,
    per_device_train_batch_size: int = 32,
    seed: int = 42,
    push_to_hub: bool = False,
    hub_model_id: str | None = None,
    inherited_learning_rate: float | None = None,
    weight_decay: float = 0.05,
    freeze_inherited_steps: int | None = 0,
    horizontal_flip: bool = True,
    dataset_name: str | None = None,
    callbacks: Iterable[TrainerCallback] | None = None,
    **training_args,
) -> DescendantTrainingResult:
    """Train a descendant on an image-classification dataset with the `Trainer` and sound defaults.

    AdamW with separate groups for inherited and new parameters ([`parameter_groups`]), a cosine schedule with 10%
    warm-up, evaluation and checkpointing every epoch with the best checkpoint (on accuracy) kept, accuracy and
    macro-F1 from the shipped `evaluate` scripts, learning curves in `<output_dir>/learning_curves.json`, and a model
    card carrying the dataset, the metrics and the learning curve (`model.card_sections`) written with the model to
    `output_dir` (and pushed when `push_to_hub=True`).

    Args:
        model ([`DescendantForImageClassification`]):
            The descendant, e.g. `DescendantForImageClassification.from_pretrained(learngene, num_labels=10, ...)`.
        train_dataset (`datasets.Dataset` or a torch dataset):
            Raw images and labels (prepared with [`~data.prepare_dataset`], augmented) or an already prepared set.
        eval_dataset (`datasets.Dataset`, *optional*):
            Held-out images and labels; without it no evaluation or best-checkpoint selection happens.
        output_dir (`str`):
            Where checkpoints, the final model, its card and the learning curves go.
        image_processor (`BaseImageProcessor`, *optional*):
            Defaults to `model.image_processor`, else [`~data.default_image_processor`]`(model.config)`; saved
            with the model.
        num_train_epochs, learning_rate, per_device_train_batch_size, seed:
            As in `TrainingArguments`; `learning_rate` is the new parameters' rate.
        push_to_hub (`bool`, *optional*, defaults to `False`):
            Push the final model and card to `hub_model_id` (required then).
        hub_model_id (`str`, *optional*):
            The Hub repository, e.g. `"org/vit-descendant"`.
        inherited_learning_rate (`float`, *optional*):
            Learning rate of the inherited parameters; defaults to `learning_rate`.
        weight_decay (`float`, *optional*, defaults to 0.05):
            AdamW weight decay (not on biases, norms, position and CLS embeddings).
        freeze_inherited_steps (`int`, *optional*, defaults to 0):
            Keep the inherited parameters fixed for this many optimizer steps; `None` freezes them throughout.
        horizontal_flip (`bool`, *optional*, defaults to `True`):
            Random horizontal flips in the training augmentation (turn off for digits or text).
        dataset_name (`str`, *optional*):
            Name shown in the card; defaults to the dataset's own `info.dataset_name`.
        callbacks (`list[TrainerCallback]`, *optional*):
            More callbacks for the Trainer.
        training_args:
            Any other `TrainingArguments` field, overriding the defaults (e.g. `eval_strategy="steps"`). On a CUDA
            GPU the defaults are bf16 autocast (`bf16=True` where supported; pass `bf16=False` or `fp16=True` to
            change it) and fused AdamW.

    Returns:
        [`DescendantTrainingResult`]: `metrics`, `learning_curves` and the `trainer`.

    Example:

    ```python
    >>> from hf_learngene import DescendantForImageClassification
    >>> from hf_learngene.data import load_digits_dataset
    >>> from hf_learngene.training import train_descendant
    >>> ds = load_digits_dataset().train_test_split(test_size=0.2, stratify_by_column="label", seed=0)
    >>> model = DescendantForImageClassification.from_pretrained("org/vit-learngene", num_labels=10, num_new_layers=2)
    >>> result = train_descendant(model, ds["train"], ds["test"], output_dir="descendant", horizontal_flip=False)
    >>> result.metrics["eval_accuracy"]
    ```"""
    _check_descendant(model)
    if push_to_hub and not hub_model_id:
        raise ValueError(
            "push_to_hub=True needs a repository: pass hub_model_id='<user or org>/<name>' "
            "(e.g. hub_model_id='org/vit-descendant')."
        )
    for name, dataset in (("train_dataset", train_dataset), ("eval_dataset", eval_dataset)):
        if isinstance(dataset, DatasetDict):
            raise TypeError(f"`{name}` is a DatasetDict with splits {list(dataset)}: pass one split, e.g. ds['train'].")
    if train_dataset is None or len(train_dataset) == 0:
        raise ValueError("`train_dataset` is empty: there is nothing to train on.")
    if eval_dataset is not None and len(eval_dataset) == 0:
        raise ValueError("`eval_dataset` is empty: pass held-out images, or None to train without evaluation.")
    if image_processor is None:
        image_processor = getattr(model, "image_processor", None) or default_image_processor(model.config)
    model.image_processor = image_processor
    _set_label_names(model, train_dataset)
    num_train, num_eval = len(train_dataset), (len(eval_dataset) if eval_dataset is not None else None)
    dataset_name = dataset_name or _dataset_name(train_dataset)
    train_prepared = _prepare(train_dataset, image_processor, model, True, horizontal_flip)
    eval_prepared = _prepare(eval_dataset, image_processor, model, False, horizontal_flip)

    has_eval = eval_prepared is not None
    defaults: dict[str, Any] = {
        "output_dir": str(output_dir),
        "num_train_epochs": num_train_epochs,
        "learning_rate": learning_rate,
        "per_device_train_batch_size": per_device_train_batch_size,
        "per_device_eval_batch_size": max(per_device_train_batch_size, 64),
        "seed": seed,
        "weight_decay": weight_decay,
        "lr_scheduler_type": "cosine",
        "warmup_steps": 0.1,
        "eval_strategy": "epoch" if has_eval else "no",
        "save_strategy": "epoch",
        "logging_strategy": "epoch",
        "save_total_limit": 2,
        "load_best_model_at_end": has_eval,
        "metric_for_best_model": "accuracy" if has_eval else None,
        "greater_is_better": True if has_eval else None,
        "remove_unused_columns": False,  # with_transform needs the raw image and label columns
        "report_to": "none",
        "dataloader_pin_memory": torch.cuda.is_available(),
        # GPU defaults: bf16 autocast where the card supports it (fp32 master weights, no loss scaling needed).
        "bf16": torch.cuda.is_available()
        and torch.cuda.is_bf16_supported()
        and not training_args.get("use_cpu")
        and not training_args.get("fp16"),
        "push_to_hub": push_to_hub,
        "hub_model_id": hub_model_id,
        "hub_strategy": "end",
    }
    defaults.update(training_args)
    args = TrainingArguments(**defaults)

    inherited_lr = learning_rate if inherited_learning_rate is None else inherited_learning_rate
    if freeze_inherited_steps is None:
        freeze_inherited(model)
    # On a GPU: the parameters move there first and AdamW runs fused (one kernel for every tensor's update).
    on_gpu = args.device.type == "cuda" and not args.use_cpu
    if on_gpu:
        model.to(args.device)
    optimizer = torch.optim.AdamW(
        parameter_groups(model, inherited_lr=inherited_lr, new_lr=learning_rate, weight_decay=weight_decay),
        lr=learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        eps=args.adam_epsilon,
        fused=True if on_gpu else None,
    )
    curves = LearningCurveCallback(os.path.join(str(output_dir), LEARNING_CURVES_FILE))
    all_callbacks = [curves, *(callbacks or [])]
    if freeze_inherited_steps:
        all_callbacks.append(FreezeInheritedCallback(freeze_inherited_steps))
    trainer = LearngeneTrainer(
        model=model,
        args=args,
        train_dataset=train_prepared,
        eval_dataset=eval_prepared,
        data_collator=collate_fn,
        processing_class=image_processor,
        compute_metrics=make_compute_metrics() if has_eval else None,
        optimizers=(optimizer, None),
        callbacks=all_callbacks,
    )
    train_output = trainer.train(resume_from_checkpoint=training_args.get("resume_from_checkpoint"))
    metrics = dict(train_output.metrics)
    metrics["train_loss"] = train_output.training_loss
    if has_eval:
        metrics.update(trainer.evaluate())
    trained = trainer.accelerator.unwrap_model(trainer.model)
    setup = {
        "Epochs": num_train_epochs,
        "Batch size (per device)": per_device_train_batch_size,
        "Learning rate (new / inherited)": f"{learning_rate:g} / {inherited_lr:g}",
        "Inherited layers frozen": "throughout"
        if freeze_inherited_steps is None
        else (f"first {freeze_inherited_steps} steps" if freeze_inherited_steps else "no"),
        "Seed": seed,
    }
    trained.card_sections = training_card_section(dataset_name, num_train, num_eval, metrics, curves.curves, setup)
    trainer.save_model()
    if trainer.is_world_process_zero():
        curves._write(args)
    if push_to_hub:
        trainer.push_to_hub(dataset=dataset_name) if dataset_name else trainer.push_to_hub()
    return DescendantTrainingResult(metrics=metrics, learning_curves=list(curves.curves), trainer=trainer)


__all__ = [
    "DescendantTrainingResult",
    "FreezeInheritedCallback",
    "LearngeneTrainer",
    "LearningCurveCallback",
    "available_metrics",
    "compute_metrics",
    "drop_inherited_gradients",
    "freeze_inherited",
    "inherited_parameters",
    "load_metric",
    "make_compute_metrics",
    "new_parameters",
    "parameter_groups",
    "train_descendant",
    "training_card_section",
]
