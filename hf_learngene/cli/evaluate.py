"""`hf-learngene evaluate`: accuracy, macro precision / recall / F1, a per-class table and the confusion matrix of an
image classifier on held-out images."""

from __future__ import annotations

from typing import Any

from .arguments import DEVICE_HELP, add_dataset_options, batch_size
from .common import CLIError, Output, check_source, hub_kwargs, load_config, one_line, print_table, resolve_device
from .datasets import evaluation_split, naming_bad_images

EPILOG = """\
examples:
  hf-learngene evaluate ./descendant --dataset offline:mnist --classes 0,1,2,3,4
  hf-learngene evaluate ./descendant --dataset ./my-images --test-size 0.2      # the images inherit held out
  hf-learngene evaluate org/vit-descendant --dataset ./my-images --split validation --json metrics.json
"""
TEST_SIZE_HELP = (
    "score the part of the training split held out by `inherit --test-size` (same fraction, same images); for "
    "datasets without a test or validation split"
)


def add_parser(commands, parents, formatter) -> None:
    p = commands.add_parser(
        "evaluate",
        parents=parents,
        help="accuracy, precision, recall, F1 and the confusion matrix of an image classifier",
        description="Evaluate a descendant (or any transformers image classifier) on held-out images: the test or "
        "validation split, or the --test-size cut of a dataset that has neither. Training images are scored only "
        "when asked for with --split train.",
        epilog=EPILOG,
        formatter_class=formatter,
    )
    p.add_argument("model", help="Hub id or local folder of a descendant or image classifier")
    add_dataset_options(
        p, "split to evaluate (default: test, else validation)", required=True, test_size_help=TEST_SIZE_HELP
    )
    p.add_argument("--batch-size", type=batch_size, default=64, help="images per forward pass")
    p.add_argument("--revision", help="revision of a Hub model")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.set_defaults(func=run)


def _label_remap(dataset, label_column: str, id2label: dict[int, str]) -> dict[int, int] | None:
    """Map dataset label ids to model ids when both name the same classes in another order."""
    names = getattr(dataset.features[label_column], "names", None)
    model_names = [str(id2label[i]) for i in sorted(id2label)]
    if not names or list(names) == model_names:
        return None
    if set(names) == set(model_names):
        return {i: model_names.index(name) for i, name in enumerate(names)}
    print(
        f"note: the dataset's classes {list(names)[:10]} differ from the model's {model_names[:10]}; labels are "
        "compared by index."
    )
    return None


def _load_model(name: str, args, device: str):
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    from ..configuration_learngene import LearngeneConfig
    from ..data import default_image_processor

    config = load_config(name, args, "model")
    if isinstance(config, LearngeneConfig) and config.layout is None:
        raise CLIError(
            f"{name!r} is a learngene (no classification head): grow and train a descendant first, e.g. "
            f"hf-learngene inherit {name} --dataset ... --output ./descendant."
        )
    try:
        model = AutoModelForImageClassification.from_pretrained(name, **hub_kwargs(args)).to(device).eval()
    except OSError as error:
        raise CLIError(f"Cannot load the model {name!r}: {one_line(error)}") from error
    processor = getattr(model, "image_processor", None)
    if processor is None:
        try:
            processor = AutoImageProcessor.from_pretrained(name, **hub_kwargs(args))
        except (OSError, ValueError, ImportError):
            processor = default_image_processor(model.config)
    return model, processor


def _predict(model, processor, split, device: str, batch_size: int) -> tuple[list[int], list[int], dict | None]:
    import torch
    from torch.utils.data import DataLoader
    from transformers.utils import logging as hf_logging

    from ..data import collate_fn, find_columns, prepare_dataset

    image_column, label_column = find_columns(split)
    remap = _label_remap(split, label_column, model.config.id2label)
    prepared = prepare_dataset(
        split, processor, image_column=image_column, label_column=label_column,
        num_channels=model.config.num_channels, num_labels=None if remap else model.config.num_labels,
    )  # fmt: skip
    labels, predictions = [], []
    with torch.inference_mode():
        for batch in hf_logging.tqdm(DataLoader(prepared, batch_size=batch_size, collate_fn=collate_fn), leave=False):
            logits = model(pixel_values=batch["pixel_values"].to(device)).logits
            predictions += logits.argmax(-1).tolist()
            labels += batch["labels"].tolist()
    if remap:
        labels = [remap[label] for label in labels]
    return labels, predictions, remap


def print_report(report: dict[str, Any]) -> None:
    print(
        f"accuracy {report['accuracy']:.4f}   macro precision {report['precision_macro']:.4f}   "
        f"macro recall {report['recall_macro']:.4f}   macro-F1 {report['f1_macro']:.4f}\n"
    )
    rows = [
        (r["label"], f"{r['precision']:.4f}", f"{r['recall']:.4f}", f"{r['f1']:.4f}", r["support"])
        for r in report["per_class"]
    ]
    print_table(("class", "precision", "recall", "f1", "support"), rows)
    names = [r["label"] for r in report["per_class"]]
    print("\nconfusion matrix (rows: true class, columns: predicted)")
    print_table(("", *names), [(name, *row) for name, row in zip(names, report["confusion_matrix"], strict=True)])


def run(args, out: Output) -> dict[str, Any]:
    from ..evaluation import classification_report

    name = check_source(args.model, "Model")
    device = resolve_device(args.device)
    split, split_name = evaluation_split(args, out.warn)
    model, processor = _load_model(name, args, device)
    with naming_bad_images(split):
        labels, predictions, _ = _predict(model, processor, split, device, args.batch_size)
    report = classification_report(labels, predictions, model.config.id2label)
    report.update(model=args.model, dataset=args.dataset, split=split_name)
    print(f"{args.model} on {args.dataset}, split {split_name} ({report['num_examples']:,} images)")
    print_report(report)
    return report
