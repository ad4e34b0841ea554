"""Confusion matrix, as an `evaluate` metric script shipped with hf_learngene (loaded by path, so it works offline)."""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = "Counts of (true class, predicted class) pairs: row i, column j counts examples of class i predicted j."

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[int]`): Predicted class ids.
    references (`list[int]`): True class ids.
    labels (`list[int]`, *optional*): The classes, in row/column order; defaults to those present in either list.
Returns:
    confusion_matrix (`list[list[int]]`): `len(labels)` rows (true class) of `len(labels)` counts (predicted class).
Example:
    >>> metric = evaluate.load("path/to/hf_learngene/metrics/confusion_matrix")
    >>> metric.compute(predictions=[0, 1, 1], references=[0, 1, 0])
    {'confusion_matrix': [[1, 1], [0, 1]]}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ConfusionMatrix(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references, labels=None):
        predictions = np.asarray(predictions)
        references = np.asarray(references)
        labels = np.union1d(predictions, references) if labels is None else np.asarray(labels)
        index = {int(label): i for i, label in enumerate(labels)}
        matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
        for truth, guess in zip(references.tolist(), predictions.tolist(), strict=True):
            if truth in index and guess in index:
                matrix[index[truth], index[guess]] += 1
        return {"confusion_matrix": matrix.tolist()}
