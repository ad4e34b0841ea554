"""The one prediction loop, accuracy, classification report and time-to-target of `hf_learngene.evaluation`, against
hand computations and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from hf_learngene import DescendantForImageClassification, LearngeneConfig
from hf_learngene.evaluation import (
    accuracy,
    classification_report,
    first_epoch_reaching,
    load_metric,
    predict,
    tensor_batches,
)


def test_classification_report_matches_hand_computation():
    labels = [0, 0, 1, 1, 2, 2]
    predictions = [0, 1, 1, 1, 0, 2]
    report = classification_report(labels, predictions, {0: "a", 1: "b", 2: "c"})
    assert report["accuracy"] == pytest.approx(4 / 6)
    # class 0: precision 1/2, recall 1/2; class 1: 2/3, 1; class 2: 1, 1/2.
    f1 = [0.5, 2 * (2 / 3) / (2 / 3 + 1), 2 * 0.5 / 1.5]
    assert [row["f1"] for row in report["per_class"]] == pytest.approx(f1)
    assert [row["precision"] for row in report["per_class"]] == pytest.approx([0.5, 2 / 3, 1.0])
    assert [row["recall"] for row in report["per_class"]] == pytest.approx([0.5, 1.0, 0.5])
    assert [row["label"] for row in report["per_class"]] == ["a", "b", "c"]
    assert report["f1_macro"] == pytest.approx(sum(f1) / 3)
    assert report["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]


def test_classification_report_matches_scikit_learn_with_a_class_never_seen():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 200)
    predictions = np.where(rng.random(200) < 0.6, labels, rng.integers(0, 4, 200))
    report = classification_report(labels, predictions, 5)  # class 4 is neither true nor predicted
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predictions, labels=range(5), zero_division=0
    )
    assert [r["precision"] for r in report["per_class"]] == pytest.approx(precision.tolist())
    assert [r["recall"] for r in report["per_class"]] == pytest.approx(recall.tolist())
    assert [r["f1"] for r in report["per_class"]] == pytest.approx(f1.tolist())
    assert [r["support"] for r in report["per_class"]] == support.tolist()
    # Macro averages over the classes present (scikit-learn's default labels).
    macro = precision_recall_fscore_support(labels, predictions, average="macro", zero_division=0)
    assert (report["precision_macro"], report["recall_macro"], report["f1_macro"]) == pytest.approx(macro[:3])
    assert report["confusion_matrix"] == confusion_matrix(labels, predictions, labels=range(5)).tolist()
    # The shipped F1 metric (what the Trainer's compute_metrics uses) agrees with the report.
    shipped = load_metric("f1").compute(predictions=predictions, references=labels, average="macro")["f1"]
    assert shipped == pytest.approx(report["f1_macro"])


def test_classification_report_refuses_bad_input():
    with pytest.raises(ValueError, match="3 labels but 2 predictions"):
        classification_report([0, 1, 1], [0, 1], 2)
    with pytest.raises(ValueError, match="No examples"):
        classification_report([], [], 2)


def test_predict_and_accuracy_restore_the_training_mode():
    torch.manual_seed(0)
    config = LearngeneConfig(
        hidden_size=16, num_attention_heads=2, intermediate_size=32, image_size=8, patch_size=4, num_channels=1,
        layer_indices=[0], num_labels=3,
    )  # fmt: skip
    model = DescendantForImageClassification(config).train()
    images, labels = torch.randn(10, 1, 8, 8), torch.randint(0, 3, (10,))
    logits, returned = predict(model, tensor_batches(images, labels, batch_size=4))
    assert model.training and logits.shape == (10, 3) and torch.equal(returned, labels)
    with torch.no_grad():
        expected = float((model.eval()(pixel_values=images).logits.argmax(-1) == labels).float().mean())
    assert accuracy(model, images, labels, batch_size=3) == pytest.approx(expected)
    with pytest.raises(ValueError, match="empty"):
        predict(model, [])


def test_first_epoch_reaching():
    assert first_epoch_reaching([0.2, None, 0.5, 0.7], 0.5) == 3
    assert first_epoch_reaching([0.2, 0.4], 0.5) is None
    assert first_epoch_reaching([0.5 - 1e-13], 0.5) == 1  # float noise does not miss the target
