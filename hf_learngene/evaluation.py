"""Scoring classifiers: the metrics shipped with the package, one prediction loop, one accuracy, one classification
report, and when a learning curve first reaches a target.

The metrics are `evaluate` metric scripts kept in `hf_learngene/metrics/` and loaded by path, because
`evaluate.load("accuracy")` needs the Hub: accuracy, (macro) F1 and the confusion matrix. The classification report
derives per-class precision, recall and F1 from the confusion matrix.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import torch
from torch import nn

from .utils import autocast, resolve_device

METRICS_DIR = resources.files("hf_learngene") / "metrics"


def available_metrics() -> list[str]:
    """Names of the `evaluate` metric scripts shipped in `hf_learngene/metrics/`."""
    return sorted(entry.name for entry in METRICS_DIR.iterdir() if (entry / f"{entry.name}.py").is_file())


@cache
def load_metric(name: str):
    """Load a metric shipped with hf_learngene (see [`available_metrics`]) with `evaluate.load`, by path (offline)."""
    import evaluate

    if name not in available_metrics():
        raise ValueError(
            f"Unknown metric {name!r}: hf_learngene ships {available_metrics()} (loaded by path, offline). For other "
            "metrics pass your own `compute_metrics=` to the Trainer."
        )
    return evaluate.load(str(METRICS_DIR / name))


def make_compute_metrics(metrics: Sequence[str] = ("accuracy", "f1")):
    """A `compute_metrics` function for the `Trainer` over the shipped metrics (F1 is macro-averaged). Raises
    `ValueError` at once for an unknown metric name."""
    modules = {name: load_metric(name) for name in metrics}

    def compute(eval_pred) -> dict[str, float]:
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


def compute_metrics(eval_pred) -> dict[str, float]:
    """Accuracy and macro-F1 of `(logits, labels)`, for `Trainer(compute_metrics=compute_metrics)`."""
    return make_compute_metrics()(eval_pred)


Batch = Mapping[str, torch.Tensor] | tuple[torch.Tensor, torch.Tensor]


def _unpack(batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(batch, Mapping):
        return batch["pixel_values"], batch.get("labels")
    pixel_values, labels = batch
    return pixel_values, labels


@torch.inference_mode()
def predict(
    model: nn.Module,
    batches: Iterable[Batch],
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run `model` over `batches` (dicts with `pixel_values` and optional `labels`, or `(pixel_values, labels)` pairs)
    in eval mode and return `(logits, labels)` on the CPU (`labels` is None when the batches carry none). The model's
    training mode is restored afterwards."""
    device = next(model.parameters()).device if device is None else resolve_device(device)
    was_training = model.training
    model.eval()
    all_logits, all_labels = [], []
    try:
        for batch in batches:
            pixel_values, labels = _unpack(batch)
            with autocast(device, dtype):
                logits = model(pixel_values=pixel_values.to(device)).logits
            all_logits.append(logits.float().cpu())
            if labels is not None:
                all_labels.append(labels.cpu())
    finally:
        model.train(was_training)
    if not all_logits:
        raise ValueError("Nothing to predict: the batches are empty.")
    return torch.cat(all_logits), (torch.cat(all_labels) if all_labels else None)


def tensor_batches(
    pixel_values: torch.Tensor, labels: torch.Tensor, batch_size: int = 256
) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    """`(pixel_values, labels)` in consecutive batches of `batch_size`."""
    if len(pixel_values) != len(labels):
        raise ValueError(f"{len(pixel_values)} images but {len(labels)} labels.")
    return [
        (pixel_values[start : start + batch_size], labels[start : start + batch_size])
        for start in range(0, len(labels), batch_size)
    ]


def accuracy(
    model: nn.Module,
    pixel_values: torch.Tensor,
    labels: torch.Tensor,
    *,
    batch_size: int = 256,
    device: str | torch.device | None = None,
) -> float:
    """Top-1 accuracy of `model` on preprocessed `pixel_values` and integer `labels` (the shipped accuracy metric)."""
    logits, labels = predict(model, tensor_batches(pixel_values, labels, batch_size), device=device)
    predictions = logits.argmax(-1).numpy()
    return float(load_metric("accuracy").compute(predictions=predictions, references=labels.numpy())["accuracy"])


def classification_report(
    labels: Sequence[int] | np.ndarray,
    predictions: Sequence[int] | np.ndarray,
    id2label: Mapping[int, str] | int,
) -> dict[str, Any]:
    """Accuracy; macro precision, recall and F1; per-class precision, recall, F1 and support; and the confusion
    matrix (rows: true class, columns: predicted class), from the shipped accuracy and confusion-matrix metrics.

    Args:
        labels, predictions: integer class ids.
        id2label: the model's class names by id, or the number of classes.

    Per-class rows and the confusion matrix cover every class of the model; macro averages run over the classes
    present in the labels or the predictions (scikit-learn's convention). A class never predicted has precision 0,
    one never present recall 0.
    """
    labels, predictions = np.asarray(labels, dtype=np.int64), np.asarray(predictions, dtype=np.int64)
    if labels.shape != predictions.shape:
        raise ValueError(f"{labels.size} labels but {predictions.size} predictions.")
    if labels.size == 0:
        raise ValueError("No examples to report on.")
    names = {i: str(i) for i in range(id2label)} if isinstance(id2label, int) else dict(id2label)
    classes = sorted(names)
    matrix = np.asarray(
        load_metric("confusion_matrix").compute(predictions=predictions, references=labels, labels=classes)[
            "confusion_matrix"
        ],
        dtype=float,
    )
    tp, predicted, support = np.diag(matrix), matrix.sum(axis=0), matrix.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp), where=precision + recall > 0)
    present = (predicted + support) > 0
    return {
        "accuracy": load_metric("accuracy").compute(predictions=predictions, references=labels)["accuracy"],
        "precision_macro": float(precision[present].mean()),
        "recall_macro": float(recall[present].mean()),
        "f1_macro": float(f1[present].mean()),
        "num_examples": int(labels.size),
        "per_class": [
            {
                "label": names[c],
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, c in enumerate(classes)
        ],
        "confusion_matrix": matrix.astype(int).tolist(),
    }


def draw_learning_curves(curves: Sequence[Mapping[str, Any]], path, title: str = "") -> str:
    """Draw per-epoch rows (`epoch`, `train_loss`, `eval_*`) to a PNG: losses on the left, evaluation metrics on the
    right. Uses matplotlib's object API (no pyplot): headless, global state left alone. Returns the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not curves:
        raise ValueError("The run has no logged epochs to plot yet.")
    metrics = sorted({k for row in curves for k in row if k.startswith("eval_") and k != "eval_loss"})
    figure = Figure(figsize=(9.0 if metrics else 4.5, 3.4))
    loss_axes = figure.add_subplot(1, 2 if metrics else 1, 1)
    for key, label in (("train_loss", "train loss"), ("eval_loss", "eval loss")):
        points = [(row["epoch"], row[key]) for row in curves if row.get(key) is not None]
        if points:
            loss_axes.plot(*zip(*points, strict=True), marker="o", label=label)
    loss_axes.set_xlabel("epoch")
    loss_axes.set_ylabel("loss")
    loss_axes.legend(fontsize=8)
    if metrics:
        metric_axes = figure.add_subplot(1, 2, 2)
        for key in metrics:
            points = [(row["epoch"], row[key]) for row in curves if row.get(key) is not None]
            if points:
                metric_axes.plot(*zip(*points, strict=True), marker="o", label=key.removeprefix("eval_"))
        metric_axes.set_xlabel("epoch")
        metric_axes.set_ylabel("evaluation")
        metric_axes.legend(fontsize=8)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    FigureCanvasAgg(figure).print_png(path)
    return path


def first_epoch_reaching(values: Sequence[float | None], target: float) -> int | None:
    """The first epoch (1-based) whose value is at least `target` (within 1e-12), or None when none reaches it."""
    for epoch, value in enumerate(values, start=1):
        if value is not None and value >= target - 1e-12:
            return epoch
    return None


__all__ = [
    "accuracy",
    "available_metrics",
    "classification_report",
    "compute_metrics",
    "draw_learning_curves",
    "first_epoch_reaching",
    "load_metric",
    "make_compute_metrics",
    "predict",
    "tensor_batches",
]
