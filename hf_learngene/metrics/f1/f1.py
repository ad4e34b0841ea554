"""F1 score, as an `evaluate` metric script shipped with hf_learngene (loaded by path, so it works offline)."""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = (
    "Harmonic mean of precision and recall, F1 = 2 * P * R / (P + R), per class and averaged over classes "
    "('macro', the default), weighted by support ('weighted'), pooled over examples ('micro'), or for one positive "
    "class ('binary')."
)

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[int]`): Predicted class ids.
    references (`list[int]`): True class ids.
    average (`str`, defaults to `"macro"`): `"macro"`, `"weighted"`, `"micro"`, `"binary"` or `None` (one score per
        class). Classes are those present in the predictions or the references, unless `labels` is given.
    labels (`list[int]`, *optional*): Classes to average over.
    pos_label (`int`, defaults to 1): The positive class when `average="binary"`.
Returns:
    f1 (`float`, or `list[float]` when `average=None`): In [0, 1]; a class never predicted nor present scores 0.
Example:
    >>> metric = evaluate.load("path/to/hf_learngene/metrics/f1")
    >>> metric.compute(predictions=[0, 1, 1], references=[0, 1, 0])
    {'f1': 0.6666666666666666}
"""

_AVERAGES = ("macro", "weighted", "micro", "binary", None)


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class F1(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references, average="macro", labels=None, pos_label=1):
        if average not in _AVERAGES:
            raise ValueError(f"`average` must be one of {_AVERAGES}, got {average!r}.")
        predictions = np.asarray(predictions)
        references = np.asarray(references)
        if predictions.size == 0:
            raise ValueError("f1 needs at least one prediction.")
        if average == "binary":
            labels = [pos_label]
        elif labels is None:
            labels = np.union1d(predictions, references)
        labels = np.asarray(labels)
        tp = np.array([np.sum((predictions == c) & (references == c)) for c in labels], dtype=float)
        fp = np.array([np.sum((predictions == c) & (references != c)) for c in labels], dtype=float)
        fn = np.array([np.sum((predictions != c) & (references == c)) for c in labels], dtype=float)
        if average == "micro":
            denominator = 2 * tp.sum() + fp.sum() + fn.sum()
            return {"f1": float(2 * tp.sum() / denominator) if denominator else 0.0}
        denominators = 2 * tp + fp + fn
        per_class = np.divide(2 * tp, denominators, out=np.zeros_like(tp), where=denominators > 0)
        if average is None:
            return {"f1": per_class.tolist()}
        if average == "weighted":
            support = tp + fn
            return {"f1": float(np.sum(per_class * support) / support.sum()) if support.sum() else 0.0}
        return {"f1": float(per_class.mean())}
