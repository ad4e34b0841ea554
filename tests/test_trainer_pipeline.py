"""A descendant is an ordinary transformers model: the Trainer trains it and `pipeline` serves it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset, Features, Image
from PIL import Image as PILImage
from sklearn.datasets import load_digits
from tiny_models import tiny_processor, tiny_vit
from transformers import Trainer, TrainingArguments, pipeline

from hf_learngene import DescendantForImageClassification, condense


def _digits_dataset(n: int = 96) -> Dataset:
    """The first `n` scikit-learn digits of classes 0-2, as RGB PIL images (real data)."""
    digits = load_digits(n_class=3)
    images = [PILImage.fromarray((img * (255 / 16)).astype(np.uint8)).convert("RGB") for img in digits.images[:n]]
    features = Features({"image": Image(), "label": ClassLabel(names=["zero", "one", "two"])})
    return Dataset.from_dict({"image": images, "label": digits.target[:n].tolist()}, features=features)


@pytest.fixture(scope="module")
def learngene_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("learngene")
    learngene = condense(tiny_vit(seed=1), method="heuristic", num_layers=2)
    learngene.image_processor = tiny_processor()
    learngene.save_pretrained(path)
    return path


def test_trainer_trains_descendant(learngene_dir, tmp_path):
    dataset = _digits_dataset()
    labels = dataset.features["label"].names
    model = DescendantForImageClassification.from_pretrained(
        learngene_dir,
        num_labels=3,
        layout="LRL",
        id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)},
    )
    processor = model.image_processor

    def transform(batch):
        inputs = processor(batch["image"], return_tensors="pt")
        return {"pixel_values": inputs["pixel_values"], "labels": batch["label"]}

    args = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=16,
        num_train_epochs=8,
        learning_rate=3e-3,
        logging_steps=6,
        save_strategy="no",
        remove_unused_columns=False,
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=args, train_dataset=dataset.with_transform(transform))
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) >= 4
    assert losses[-1] < losses[0] * 0.8, losses

    model.save_pretrained(tmp_path / "descendant")
    classifier = pipeline("image-classification", model=str(tmp_path / "descendant"), device="cpu", top_k=3)
    predictions = classifier(dataset[0]["image"])
    assert len(predictions) == 3
    assert {p["label"] for p in predictions} <= set(labels)
    scores = [p["score"] for p in predictions]
    assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1.0 + 1e-6
    with torch.no_grad():
        expected = model.eval()(**{"pixel_values": processor(dataset[0]["image"], return_tensors="pt")["pixel_values"]})
    top = expected.logits.softmax(-1)[0].max().item()
    assert abs(scores[0] - top) < 1e-4
