"""Training descendants with the `Trainer`: the helper [`train_descendant`] and [`LearngeneTrainer`], whose
`push_to_hub()` keeps the descendant's own model card."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from datasets import DatasetDict
from torch import nn
from transformers import Trainer, TrainerCallback, TrainingArguments

from ..data import collate_fn, default_image_processor, find_columns, prepare_dataset
from ..evaluation import classification_report
from ..model_card import model_card
from .checkpoints import check_rng_state, resolve_checkpoint
from .curves import LEARNING_CURVES_FILE, LEARNING_CURVES_IMAGE, LearningCurvesCallback, plot_learning_curves
from .launch import check_launch
from .parameters import FreezeInheritedCallback, freeze_inherited, parameter_groups
from .seeding import SeededAugmentation, SeededAugmentationCallback

CLASSIFICATION_REPORT_FILE = "classification_report.json"


class LearngeneTrainer(Trainer):
    """A `Trainer` that keeps hf_learngene's model card, and (with `inherited_learning_rate=`) builds AdamW over
    [`parameter_groups`].

    `Trainer.push_to_hub()` writes its own generic README.md over the one `save_pretrained` wrote; this subclass
    writes the descendant's card instead (learngene provenance, layout, labels and the model's
    `training_summary`), adding the tags and dataset the Trainer was given. The plain `Trainer` still keeps the
    lineage in its card's metadata: the `hf_learngene` and `learngene` tags, and `base_model` when the learngene
    came from the Hub.

    With `inherited_learning_rate=`, the optimizer is AdamW with separate groups for inherited and new parameters
    (`args.learning_rate` for the new ones, `args.weight_decay` on matrices only), fused on CUDA. It is built by
    `create_optimizer`, i.e. after the model is placed and, under FSDP, sharded: the `Trainer` refuses a ready-made
    optimizer (`optimizers=`) with FSDP.
    """

    def __init__(self, *args, inherited_learning_rate: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.inherited_learning_rate = inherited_learning_rate

    def create_optimizer(self, model=None):
        if self.optimizer is not None or self.inherited_learning_rate is None:
            return super().create_optimizer(model)
        model = self.model if model is None else model
        on_gpu = next(model.parameters()).device.type == "cuda"
        self.optimizer = torch.optim.AdamW(
            parameter_groups(
                model,
                inherited_lr=self.inherited_learning_rate,
                new_lr=self.args.learning_rate,
                weight_decay=self.args.weight_decay,
            ),
            lr=self.args.learning_rate,
            betas=(self.args.adam_beta1, self.args.adam_beta2),
            eps=self.args.adam_epsilon,
            fused=True if on_gpu else None,
        )
        return self.optimizer

    def create_model_card(self, tags: str | list[str] | None = None, dataset: str | list[str] | None = None, **kwargs):
        if not self.is_world_process_zero():
            return
        model = self.accelerator.unwrap_model(self.model)
        extra_tags = [tags] if isinstance(tags, str) else list(tags or [])
        card = model_card(model, self.hub_model_id or self.args.hub_model_id, self.args.output_dir, extra_tags)
        if dataset:
            card.data.datasets = [dataset] if isinstance(dataset, str) else list(dataset)
        card.save(os.path.join(self.args.output_dir, "README.md"))


@dataclass
class DescendantTrainingResult:
    """What [`train_descendant`] returns.

    Args:
        metrics (`dict`):
            Final evaluation metrics (`eval_accuracy`, `eval_f1`, `eval_precision`, `eval_recall`, `eval_loss`, ...)
            of the model kept (the best checkpoint when there is an eval set), plus `train_runtime` and `train_loss`.
        learning_curves (`list[dict]`):
            One dict per epoch: `epoch`, `train_loss` and the `eval_*` metrics, rebuilt from the Trainer's log history.
        trainer ([`LearngeneTrainer`]):
            The trainer (its `model` is the trained descendant).
        report (`dict`, *optional*):
            The final evaluation's classification report (per-class precision, recall, F1, support and the confusion
            matrix; see `hf_learngene.evaluation.classification_report`), also written to
            `<output_dir>/classification_report.json`. None without an eval set.
        world_size (`int`):
            The number of processes that trained together.
        hub_url (`str`, *optional*):
            The URL of the Hub repository pushed to (on the endpoint in use, e.g. `HF_ENDPOINT`).
    """

    metrics: dict[str, Any]
    learning_curves: list[dict[str, Any]] = field(default_factory=list)
    trainer: Trainer | None = None
    report: dict[str, Any] | None = None
    world_size: int = 1
    hub_url: str | None = None


def _check_descendant(model: nn.Module) -> None:
    if not hasattr(model, "learngene"):
        raise TypeError(
            f"Expected a DescendantForImageClassification (a model with a `learngene` submodule), got "
            f"{type(model).__name__}."
        )


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
    names = getattr(dataset.features[label_column], "names", None)
    placeholders = all(str(v) == f"LABEL_{k}" for k, v in model.config.id2label.items())
    if names and placeholders and len(names) == model.config.num_labels:
        model.config.id2label = dict(enumerate(names))
        model.config.label2id = {name: i for i, name in enumerate(names)}


def _dataset_name(dataset) -> str | None:
    info = getattr(dataset, "info", None)
    return getattr(info, "dataset_name", None) or getattr(info, "builder_name", None) if info else None


def _check_head(model) -> None:
    # One output is regression; as a classifier it would score every image as class 0 (accuracy 1.0 on one class).
    if model.config.num_labels == 1 and model.config.problem_type != "regression":
        raise ValueError(
            "The descendant has num_labels=1, which only makes sense for regression: pass problem_type='regression' "
            "(float targets) when growing it, or num_labels=<number of classes> (at least 2) for classification."
        )


def _check_datasets(train_dataset, eval_dataset) -> None:
    for name, dataset in (("train_dataset", train_dataset), ("eval_dataset", eval_dataset)):
        if isinstance(dataset, DatasetDict):
            raise TypeError(f"`{name}` is a DatasetDict with splits {list(dataset)}: pass one split, e.g. ds['train'].")
    if train_dataset is None or len(train_dataset) == 0:
        raise ValueError("`train_dataset` is empty: there is nothing to train on.")
    if eval_dataset is not None and len(eval_dataset) == 0:
        raise ValueError("`eval_dataset` is empty: pass held-out images, or None to train without evaluation.")


def _training_arguments(
    output_dir, has_eval: bool, metric_for_best_model: str | None, overrides: dict[str, Any], **settings
) -> TrainingArguments:
    """The helper's defaults (cosine schedule with 10% warm-up, evaluation and checkpoints every epoch, the best
    checkpoint kept, bf16 on CUDA), overridden by any `TrainingArguments` field the caller passed."""
    on_gpu = torch.cuda.is_available() and not overrides.get("use_cpu")
    defaults: dict[str, Any] = {
        "output_dir": str(output_dir),
        **settings,
        "per_device_eval_batch_size": max(settings["per_device_train_batch_size"], 64),
        "lr_scheduler_type": "cosine",
        "warmup_steps": 0.1,
        "eval_strategy": "epoch" if has_eval else "no",
        "save_strategy": "epoch",
        "logging_strategy": "epoch",
        "save_total_limit": 2,
        "load_best_model_at_end": has_eval,
        "metric_for_best_model": metric_for_best_model if has_eval else None,
        "greater_is_better": None,
        "remove_unused_columns": False,  # with_transform needs the raw image and label columns
        "report_to": "none",
        "dataloader_pin_memory": on_gpu,
        # GPU defaults: bf16 autocast where the card supports it (fp32 master weights, no loss scaling needed).
        "bf16": on_gpu and torch.cuda.is_bf16_supported() and not overrides.get("fp16"),
        "hub_strategy": "end",
    }
    defaults.update(overrides)
    return TrainingArguments(**defaults)


def _setup_summary(args: TrainingArguments, inherited_lr: float, freeze_inherited_steps: int | None) -> dict:
    frozen = "throughout" if freeze_inherited_steps is None else f"first {freeze_inherited_steps} steps"
    summary = {
        "Epochs": args.num_train_epochs,
        "Batch size (per device)": args.per_device_train_batch_size,
        "Learning rate (new / inherited)": f"{args.learning_rate:g} / {inherited_lr:g}",
        "Weight decay": args.weight_decay,
        "Inherited layers frozen": frozen if freeze_inherited_steps != 0 else "no",
        "Seed": args.seed,
    }
    if args.world_size > 1:
        summary["Processes"] = args.world_size
    if args.gradient_accumulation_steps > 1:
        summary["Gradient accumulation steps"] = args.gradient_accumulation_steps
    if args.bf16 or args.fp16:
        summary["Mixed precision"] = "bf16" if args.bf16 else "fp16"
    return summary


def default_compute_metrics(eval_pred) -> dict[str, float]:
    """Accuracy and macro-averaged F1, precision and recall of `(logits, labels)`: `train_descendant`'s metrics,
    from the shipped accuracy and confusion-matrix metrics ([`~evaluation.classification_report`])."""
    logits, labels = eval_pred[0], eval_pred[1]
    if isinstance(logits, (tuple, list)):
        logits = logits[0]
    logits = np.asarray(logits)
    report = classification_report(np.asarray(labels), logits.argmax(-1), logits.shape[-1])
    return {
        "accuracy": report["accuracy"],
        "f1": report["f1_macro"],
        "precision": report["precision_macro"],
        "recall": report["recall_macro"],
    }


def _seeded(train_dataset, args: TrainingArguments):
    """The training set under per-row augmentation seeds (exact resume, see [`SeededAugmentation`]), when the
    Trainer reads it as a plain map-style dataset."""
    if args.remove_unused_columns or not (hasattr(train_dataset, "__getitem__") and hasattr(train_dataset, "__len__")):
        return train_dataset, []
    seeded = SeededAugmentation(train_dataset, args.data_seed if args.data_seed is not None else args.seed)
    return seeded, [SeededAugmentationCallback(seeded)]


def _resume_checkpoint(resume_from_checkpoint, args: TrainingArguments) -> str | None:
    """`resume_from_checkpoint` as a complete checkpoint folder whose random state this process can restore."""
    if resume_from_checkpoint in (None, False):
        return None
    checkpoint = resolve_checkpoint(resume_from_checkpoint, args.output_dir)
    if checkpoint is None:
        raise ValueError(
            f"resume_from_checkpoint={resume_from_checkpoint!r}: no complete checkpoint in {args.output_dir!r}."
        )
    check_rng_state(checkpoint, args.process_index, args.world_size, kind="trainer")
    return checkpoint


def _final_evaluation(trainer: Trainer, id2label: dict[int, str], output_dir: str) -> tuple[dict, dict]:
    """Metrics and the classification report of the model kept, from one prediction pass. `predict` logs nothing,
    so the learning curves keep the epochs' own rows."""
    prediction = trainer.predict(trainer.eval_dataset, metric_key_prefix="eval")
    logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    report = classification_report(prediction.label_ids, np.asarray(logits).argmax(-1), id2label)
    if trainer.is_world_process_zero():
        os.makedirs(output_dir, exist_ok=True)
        with open(os.path.join(output_dir, CLASSIFICATION_REPORT_FILE), "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
    return dict(prediction.metrics), report


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
    compute_metrics: Callable | None = None,
    metric_for_best_model: str | None = None,
    callbacks: Iterable[TrainerCallback] | None = None,
    **training_args,
) -> DescendantTrainingResult:
    """Train a descendant on an image-classification dataset with the `Trainer` and sound defaults.

    AdamW with separate groups for inherited and new parameters ([`parameter_groups`]), a cosine schedule with 10%
    warm-up, evaluation and checkpointing every epoch with the best checkpoint kept, accuracy, macro-F1, precision and
    recall, a classification report with the confusion matrix (`classification_report.json`), learning curves
    (`learning_curves.json` and `.png`, rebuilt from the Trainer's log history so they survive a resume) and a model
    card with the data, settings, metrics and curves, written with the model to `output_dir` (and pushed when
    `push_to_hub=True`).

    It runs on every process a launcher starts (`accelerate launch`, `torchrun`): the Trainer drives DDP, FSDP and
    DeepSpeed, and a launch that does not get what it asked for (processes training alone, an FSDP config quietly
    running as DDP on CPUs) raises a `LaunchError`. A resumed run (`resume_from_checkpoint=True` or a folder) ends
    with exactly the weights of an uninterrupted one, also mid-epoch and with augmentation: each image's augmentation
    is drawn from (seed, epoch, index), incomplete checkpoints are skipped, and a random state that cannot be restored
    stops the run (`ResumeError`) instead of being skipped.

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
        compute_metrics (`callable`, *optional*):
            The Trainer's `compute_metrics`; defaults to [`default_compute_metrics`] (accuracy, macro F1, precision
            and recall).
        metric_for_best_model (`str`, *optional*):
            The metric that picks the checkpoint kept; defaults to `"accuracy"` with the default metrics and to the
            loss with your own `compute_metrics` (pass its key to pick by it).
        callbacks (`list[TrainerCallback]`, *optional*):
            More callbacks for the Trainer.
        training_args:
            Any other `TrainingArguments` field, overriding the defaults (e.g. `eval_strategy="steps"`,
            `gradient_accumulation_steps=4`, `report_to="tensorboard"`, `resume_from_checkpoint=True`). On a CUDA
            GPU the defaults are bf16 autocast (`bf16=True` where supported; pass `bf16=False` or `fp16=True` to
            change it) and fused AdamW.

    Returns:
        [`DescendantTrainingResult`]: `metrics`, `learning_curves`, `report`, `world_size`, `hub_url` and the `trainer`.

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
    _check_head(model)
    _check_datasets(train_dataset, eval_dataset)
    resume_from_checkpoint = training_args.pop("resume_from_checkpoint", None)
    image_processor = image_processor or model.image_processor or default_image_processor(model.config)
    model.image_processor = image_processor
    _set_label_names(model, train_dataset)
    dataset_name = dataset_name or _dataset_name(train_dataset)
    has_eval = eval_dataset is not None
    if metric_for_best_model is None and has_eval:
        metric_for_best_model = "accuracy" if compute_metrics is None else "loss"
    args = _training_arguments(
        output_dir,
        has_eval,
        metric_for_best_model,
        training_args,
        num_train_epochs=num_train_epochs,
        learning_rate=learning_rate,
        per_device_train_batch_size=per_device_train_batch_size,
        seed=seed,
        weight_decay=weight_decay,
        push_to_hub=push_to_hub,
        hub_model_id=hub_model_id,
    )
    checkpoint = _resume_checkpoint(resume_from_checkpoint, args)
    inherited_lr = learning_rate if inherited_learning_rate is None else inherited_learning_rate
    if freeze_inherited_steps is None:
        freeze_inherited(model)
    curves = LearningCurvesCallback(os.path.join(str(output_dir), LEARNING_CURVES_FILE))
    train_set, seeding = _seeded(_prepare(train_dataset, image_processor, model, True, horizontal_flip), args)
    all_callbacks = [curves, *seeding, *(callbacks or [])]
    if freeze_inherited_steps:
        all_callbacks.append(FreezeInheritedCallback(freeze_inherited_steps))
    trainer = LearngeneTrainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=_prepare(eval_dataset, image_processor, model, False, horizontal_flip),
        data_collator=collate_fn,
        processing_class=image_processor,
        compute_metrics=(compute_metrics or default_compute_metrics) if has_eval else None,
        callbacks=all_callbacks,
        inherited_learning_rate=inherited_lr,
    )
    check_launch(args.world_size, trainer.accelerator.distributed_type, device_hint="use_cpu=True (--device cpu)")
    train_output = trainer.train(resume_from_checkpoint=checkpoint)
    metrics = {**train_output.metrics, "train_loss": train_output.training_loss}
    report = None
    if has_eval:
        final, report = _final_evaluation(trainer, model.config.id2label, str(output_dir))
        metrics.update(final)
    trained = trainer.accelerator.unwrap_model(trainer.model)
    trained.training_summary = {
        "dataset": dataset_name,
        "num_train": len(train_dataset),
        "num_eval": len(eval_dataset) if has_eval else None,
        "setup": _setup_summary(args, inherited_lr, freeze_inherited_steps),
        "metrics": metrics,
        "learning_curves": curves.curves,
    }
    hub_url = _save_and_push(trainer, curves.curves, str(output_dir), push_to_hub, dataset_name)
    return DescendantTrainingResult(
        metrics=metrics,
        learning_curves=list(curves.curves),
        trainer=trainer,
        report=report,
        world_size=args.world_size,
        hub_url=hub_url,
    )


def _save_and_push(trainer: Trainer, curves: list, output_dir: str, push: bool, dataset_name: str | None):
    """The picture of the curves, the full log history, the model and its card; then the push (returns its URL)."""
    if trainer.is_world_process_zero() and curves:
        plot_learning_curves(curves, os.path.join(output_dir, LEARNING_CURVES_IMAGE))
    # The whole log history beside the model: a step checkpoint's copy can miss the last epoch's logs.
    trainer.save_state()
    trainer.save_model()
    if not push:
        return None
    commit = trainer.push_to_hub(dataset=dataset_name) if dataset_name else trainer.push_to_hub()
    return str(getattr(commit, "repo_url", "") or "") or None


__all__ = [
    "CLASSIFICATION_REPORT_FILE",
    "DescendantTrainingResult",
    "LearngeneTrainer",
    "default_compute_metrics",
    "train_descendant",
]
