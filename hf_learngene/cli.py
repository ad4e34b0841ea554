"""The `hf-learngene` command line: condense a learngene, grow and train a descendant, evaluate, inspect, and run the
offline demo.

Every subcommand prints one clear error line on stderr and exits non-zero when something is wrong: 2 when the
arguments or the input cannot be used (a `ValueError` / `FileNotFoundError` of the library included), 1 for any other
failure; `--verbose` shows the full traceback as well.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Sequence
from typing import Any

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

# `--dataset offline:NAME` picks one of the real image sets that install from package registries (no Hub needed).
OFFLINE_PREFIX = "offline:"
OFFLINE_DATASETS = ("fashion-mnist", "mnist", "digits")
_OFFLINE_TEST_FRACTION = 0.2

_EPILOG_CONDENSE = """\
examples:
  hf-learngene condense google/vit-base-patch16-224 --method heuristic --num-layers 3 --output ./vit-learngene
  hf-learngene condense ./my-vit --method auto --num-layers 4 --dataset offline:fashion-mnist --classes 6,7,8,9 \\
      --max-per-class 200 --option epochs=2 --output ./learngene --push-to-hub org/vit-learngene
"""
_EPILOG_INHERIT = """\
examples:
  hf-learngene inherit ./learngene --dataset offline:mnist --classes 0,1,2,3,4 --layout LLLR --epochs 10 \\
      --output ./descendant
  hf-learngene inherit org/vit-learngene --dataset ./my-images --num-new-layers 2 --output ./descendant \\
      --push-to-hub org/vit-descendant
"""
_EPILOG_EVALUATE = """\
examples:
  hf-learngene evaluate ./descendant --dataset offline:mnist --classes 0,1,2,3,4 --split test
  hf-learngene evaluate org/vit-descendant --dataset ./my-images --split validation --json metrics.json
"""
_EPILOG_INFO = """\
examples:
  hf-learngene info ./learngene
  hf-learngene info org/vit-learngene --json
"""
_EPILOG_DEMO = """\
The demo runs the whole paradigm offline on real data: it trains a small ViT ancestor on Fashion-MNIST classes 0-5
(cached, so the next run skips it), condenses a learngene with method "auto" on Fashion-MNIST classes 6-9, then
trains descendants for a 5-way MNIST task from the learngene, from the heuristic (last k) and first-k learngenes and
from scratch (same architecture, data, budget and seed). It writes a table, learning_curves.png, report.md,
results.json, the learngenes and the descendant into the output folder.

examples:
  hf-learngene demo                      # writes a fresh ./demo-output/run-YYYYmmdd-HHMMSS/
  hf-learngene demo --output /tmp/demo --overwrite --device cuda
  hf-learngene demo --quick              # a tiny run in seconds, to check the set-up
"""


class CLIError(Exception):
    """A problem with the arguments or the input, reported as one line with exit code 2."""


# The library raises these for input it cannot use (a non-ViT ancestor, a missing file, a bad option value).
_INPUT_ERRORS = (CLIError, ValueError, FileNotFoundError)


# ---------------------------------------------------------------------------------------------------------------------
# Helpers shared by the subcommands


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    if isinstance(error, KeyError):
        text = text.strip("'\"")
    return text or type(error).__name__


def _looks_like_path(name: str) -> bool:
    # A Hub id is "name" or "org/name"; anything else with a separator (or a leading . / ~) is meant as a folder.
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or os.sep != "/" and os.sep in name


def _check_source(name: str, what: str) -> str:
    """Fail early, with a clear message, on a local path that does not exist."""
    expanded = os.path.expanduser(name)
    if os.path.exists(expanded):
        return expanded
    if _looks_like_path(name):
        raise CLIError(
            f"{what} {name!r} does not exist (no such folder). Check the path, or pass a Hub id such as 'org/name'."
        )
    return name


def _check_output(path: str, overwrite: bool, kind: str) -> str:
    """The absolute output folder: missing or empty, or (with `--overwrite`) a previous output of the same kind."""
    from .serialization import check_output_folder

    try:
        return check_output_folder(path, kind, overwrite)
    except (FileExistsError, ValueError) as error:
        raise CLIError(_one_line(error).replace("overwrite=True (--overwrite)", "--overwrite")) from None


def _parse_int_list(text: str | None, flag: str) -> list[int] | None:
    if text is None:
        return None
    try:
        values = [int(part) for part in text.replace(" ", "").split(",") if part != ""]
    except ValueError:
        raise CLIError(f"{flag} must be comma-separated integers such as 0,1,9; got {text!r}.") from None
    if not values:
        raise CLIError(f"{flag} is empty; pass comma-separated integers such as 0,1,9.")
    return values


def _parse_options(items: Sequence[str] | None) -> dict[str, Any]:
    """`--option key=value` pairs; values are read as JSON when they parse (numbers, true/false, null), else text."""
    options: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CLIError(f"--option takes KEY=VALUE (e.g. --option epochs=2), got {item!r}.")
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value
    return options


def resolve_device(name: str) -> str:
    """`auto` -> `cuda` when a GPU is visible (else `mps`, else `cpu`); an explicit accelerator must exist."""
    from .utils import resolve_device as resolve

    try:
        device = resolve(name)
    except ValueError as error:
        raise CLIError(f"--device {name}: {_one_line(error)}") from None
    return str(device)


def _training_device_args(device: str) -> dict[str, Any]:
    # The Trainer picks the accelerator itself; it only needs telling to stay on the CPU.
    return {"use_cpu": True} if device == "cpu" else {}


def load_offline_dataset(
    name: str,
    split: str | None = None,
    classes: list[int] | None = None,
    max_per_class: int | None = None,
    seed: int = 0,
):
    """One of the offline real image sets (`fashion-mnist`, `mnist`, `digits`) as a `Dataset` (one split) or a
    `DatasetDict` with `train` and `test`. MNIST and digits have no official split: a stratified 80/20 split with
    `seed` is made, so `train` and `test` never share an image. The commands keep `seed` at 0 whatever their
    `--seed`, so `evaluate --split test` scores exactly the images `inherit` held out."""
    from datasets import DatasetDict

    from . import data

    if name not in OFFLINE_DATASETS:
        raise CLIError(f"Unknown offline dataset {name!r}; choose one of {', '.join(OFFLINE_DATASETS)}.")
    if split is not None and split not in ("train", "test"):
        raise CLIError(f"The offline dataset {name!r} has splits 'train' and 'test'; got --split {split}.")
    if name == "fashion-mnist":
        splits = [split] if split else ["train", "test"]
        loaded = {
            s: data.load_fashion_mnist(s, classes=classes, max_per_class=max_per_class, seed=seed) for s in splits
        }
        return loaded[split] if split else DatasetDict(loaded)
    loader = data.load_mnist if name == "mnist" else data.load_digits_dataset
    full = loader(classes=classes, max_per_class=max_per_class, seed=seed)
    parts = full.train_test_split(test_size=_OFFLINE_TEST_FRACTION, stratify_by_column="label", seed=seed)
    return parts[split] if split else parts


def load_dataset_arg(
    source: str, split: str | None, classes: list[int] | None = None, max_per_class: int | None = None
):
    """`--dataset`: `offline:NAME`, a local folder (imagefolder or `save_to_disk`) or a Hub dataset name."""
    from .data import load_image_dataset

    if source.startswith(OFFLINE_PREFIX):
        return load_offline_dataset(source[len(OFFLINE_PREFIX) :], split, classes, max_per_class)
    if classes is not None or max_per_class is not None:
        raise CLIError(
            f"--classes and --max-per-class apply to the offline datasets ({OFFLINE_PREFIX}NAME); filter your own "
            "dataset before saving it."
        )
    source = _check_source(source, "Dataset")
    try:
        return load_image_dataset(source, split=split)
    except (ValueError, KeyError) as error:
        message = _one_line(error)
        if split is not None and "split" in message.lower():
            raise CLIError(f"Split {split!r} not found in dataset {source!r}: {message}") from error
        raise


def _pick_split(dataset, wanted: str | None, fallbacks: Sequence[str], what: str):
    """A `Dataset` out of a `DatasetDict` (or the dataset itself)."""
    from datasets import DatasetDict

    if not isinstance(dataset, DatasetDict):
        return dataset
    if wanted is not None:
        if wanted not in dataset:
            raise CLIError(f"Split {wanted!r} not found for the {what}; the dataset has splits {list(dataset)}.")
        return dataset[wanted]
    for name in fallbacks:
        if name in dataset:
            return dataset[name]
    return None


def _print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], file=None) -> None:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(), file=file)
        if n == 0:
            print("  ".join("-" * width for width in widths), file=file)


def _hub_kwargs(args) -> dict[str, Any]:
    return {"revision": args.revision} if getattr(args, "revision", None) else {}


# ---------------------------------------------------------------------------------------------------------------------
# condense


def cmd_condense(args) -> int:
    from .condensing import CONDENSING_METHODS, condense

    if args.method not in CONDENSING_METHODS:
        raise CLIError(f"Unknown method {args.method!r}; choose one of: {', '.join(sorted(CONDENSING_METHODS))}.")
    spec = CONDENSING_METHODS[args.method]
    layers = _parse_int_list(args.layers, "--layers")
    if args.method == "manual" and layers is None:
        raise CLIError("--method manual needs --layers, the ancestry layers to keep (e.g. --layers 0,1,11).")
    if args.method != "manual" and args.num_layers is None:
        raise CLIError(f"--method {args.method} needs --num-layers K, how many ancestry layers to keep.")
    if spec.needs_data and not args.dataset:
        raise CLIError(
            f"--method {args.method} needs a condensing set: pass --dataset NAME_OR_DIR (e.g. --dataset "
            "offline:fashion-mnist --classes 6,7,8,9), with classes unlike the ancestor's and the descendants'."
        )
    ancestor = _check_source(args.ancestor, "Ancestor")
    classes = _parse_int_list(args.classes, "--classes")
    options = _parse_options(args.option)
    dataset = None
    if spec.needs_data:
        device = resolve_device(args.device)
        options.setdefault("device", device)
        dataset = load_dataset_arg(args.dataset, args.split, classes, args.max_per_class)
        dataset = _pick_split(dataset, None, ("train",), "condensing set") or dataset
    elif args.dataset:
        print(f"note: --method {args.method} uses no data; --dataset is ignored.", file=sys.stderr)
    output = _check_output(args.output, args.overwrite, "learngene")
    learngene = condense(
        ancestor,
        method=args.method,
        num_layers=args.num_layers,
        layers=layers,
        condense_dataset=dataset,
        output_dir=output,
        overwrite=args.overwrite,
        revision=args.revision,
        seed=args.seed,
        **options,
    )
    config = learngene.config
    print(
        f"Learngene: {config.num_hidden_layers} of {config.ancestor_num_layers} ancestry layers "
        f"{config.layer_indices} (method {config.condensing_method}), {learngene.num_parameters():,} parameters."
    )
    if config.condensing_scores is not None:
        print("Scores per ancestry layer: " + ", ".join(f"{i}:{s:.3f}" for i, s in enumerate(config.condensing_scores)))
    print(f"Saved to {output}")
    if args.push_to_hub:
        learngene.push_to_hub(args.push_to_hub)
        print(f"Pushed to https://huggingface.co/{args.push_to_hub}")
    return EXIT_OK


# ---------------------------------------------------------------------------------------------------------------------
# inherit


def _load_learngene_config(name: str, args):
    from transformers import AutoConfig

    from .configuration_learngene import LearngeneConfig

    config = AutoConfig.from_pretrained(name, **_hub_kwargs(args))
    if not isinstance(config, LearngeneConfig):
        model_type = getattr(config, "model_type", None)
        hint = (
            f" Condense it first: hf-learngene condense {name} --method heuristic --num-layers K --output DIR."
            if model_type == "vit"
            else ""
        )
        raise CLIError(f"{name!r} is a {model_type!r} model, not a learngene.{hint}")
    return config


def cmd_inherit(args) -> int:
    from .configuration_learngene import resolve_layout
    from .data import find_columns, label_maps
    from .modeling_learngene import DescendantForImageClassification
    from .training import train_descendant

    if args.layout is not None and args.num_new_layers is not None:
        raise CLIError("Pass either --layout or --num-new-layers, not both.")
    learngene = _check_source(args.learngene, "Learngene")
    config = _load_learngene_config(learngene, args)
    try:
        layout = resolve_layout(args.layout, args.num_new_layers, len(config.layer_indices))
    except ValueError as error:
        raise CLIError(f"--layout does not fit the learngene: {_one_line(error)}") from error
    device = resolve_device(args.device)
    output = _check_output(args.output, args.overwrite, "descendant")
    classes = _parse_int_list(args.classes, "--classes")
    dataset = load_dataset_arg(args.dataset, None, classes, args.max_per_class)
    train = _pick_split(dataset, args.split, ("train",), "training set")
    if train is None:
        raise CLIError(f"No 'train' split in {args.dataset!r}; name the training split with --split.")
    evaluation = _pick_split(dataset, args.eval_split, ("test", "validation", "valid"), "evaluation set")
    if evaluation is None:
        print("note: no test/validation split found; training without evaluation.", file=sys.stderr)
    _, label_column = find_columns(train)
    id2label, label2id = label_maps(train, label_column)
    model = DescendantForImageClassification.from_pretrained(
        learngene,
        num_labels=len(id2label),
        id2label=id2label,
        label2id=label2id,
        layout=layout,
        new_layer_init=args.new_layer_init,
        **_hub_kwargs(args),
    )
    print(
        f"Descendant {layout} ({layout.count('L')} inherited, {layout.count('R')} new layers), "
        f"{model.num_parameters():,} parameters, {len(id2label)} classes; training on {len(train):,} images."
    )
    result = train_descendant(
        model,
        train,
        evaluation,
        output_dir=output,
        num_train_epochs=args.epochs,
        learning_rate=args.lr,
        per_device_train_batch_size=args.batch_size,
        seed=args.seed,
        push_to_hub=bool(args.push_to_hub),
        hub_model_id=args.push_to_hub,
        horizontal_flip=args.horizontal_flip,
        # Only a Hub dataset name belongs in the card's `datasets:` metadata; local and offline sets name themselves.
        dataset_name=None if args.dataset.startswith(OFFLINE_PREFIX) or os.path.exists(args.dataset) else args.dataset,
        **_training_device_args(device),
    )
    metrics = result.metrics
    if "eval_accuracy" in metrics:
        print(f"Accuracy {metrics['eval_accuracy']:.4f}, macro-F1 {metrics.get('eval_f1', float('nan')):.4f}")
    print(f"Saved to {output}")
    if args.push_to_hub:
        print(f"Pushed to https://huggingface.co/{args.push_to_hub}")
    return EXIT_OK


# ---------------------------------------------------------------------------------------------------------------------
# evaluate


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
        "compared by index.",
        file=sys.stderr,
    )
    return None


def cmd_evaluate(args) -> int:
    import torch
    from torch.utils.data import DataLoader
    from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageClassification
    from transformers.utils import logging as hf_logging

    from .configuration_learngene import LearngeneConfig
    from .data import collate_fn, default_image_processor, find_columns, prepare_dataset
    from .evaluation import classification_report

    name = _check_source(args.model, "Model")
    config = AutoConfig.from_pretrained(name, **_hub_kwargs(args))
    if isinstance(config, LearngeneConfig) and config.layout is None:
        raise CLIError(
            f"{name!r} is a learngene (no classification head): grow and train a descendant first, e.g. "
            f"hf-learngene inherit {name} --dataset ... --output ./descendant."
        )
    device = resolve_device(args.device)
    classes = _parse_int_list(args.classes, "--classes")
    dataset = load_dataset_arg(args.dataset, None, classes, args.max_per_class)
    split = _pick_split(dataset, args.split, ("test", "validation", "train"), "evaluation")
    model = AutoModelForImageClassification.from_pretrained(name, **_hub_kwargs(args)).to(device).eval()
    processor = getattr(model, "image_processor", None)
    if processor is None:
        try:
            processor = AutoImageProcessor.from_pretrained(name, **_hub_kwargs(args))
        except (OSError, ValueError):
            processor = default_image_processor(model.config)
    image_column, label_column = find_columns(split)
    remap = _label_remap(split, label_column, model.config.id2label)
    prepared = prepare_dataset(
        split,
        processor,
        image_column=image_column,
        label_column=label_column,
        num_channels=model.config.num_channels,
        num_labels=None if remap else model.config.num_labels,
    )
    loader = DataLoader(prepared, batch_size=args.batch_size, collate_fn=collate_fn)
    labels, predictions = [], []
    with torch.inference_mode():
        for batch in hf_logging.tqdm(loader, desc="evaluating", leave=False):
            logits = model(pixel_values=batch["pixel_values"].to(device)).logits
            predictions += logits.argmax(-1).tolist()
            labels += batch["labels"].tolist()
    if remap:
        labels = [remap[label] for label in labels]
    report = classification_report(labels, predictions, model.config.id2label)
    report["model"] = args.model
    report["dataset"] = args.dataset
    report["split"] = getattr(split, "split", None) and str(split.split)
    print(f"{args.model} on {args.dataset} ({report['num_examples']:,} images)")
    print(
        f"accuracy {report['accuracy']:.4f}   macro precision {report['precision_macro']:.4f}   "
        f"macro recall {report['recall_macro']:.4f}   macro-F1 {report['f1_macro']:.4f}\n"
    )
    rows = [
        (r["label"], f"{r['precision']:.4f}", f"{r['recall']:.4f}", f"{r['f1']:.4f}", r["support"])
        for r in report["per_class"]
    ]
    _print_table(("class", "precision", "recall", "f1", "support"), rows)
    labels_shown = [r["label"] for r in report["per_class"]]
    print("\nconfusion matrix (rows: true class, columns: predicted)")
    _print_table(
        ("", *labels_shown), [(name, *row) for name, row in zip(labels_shown, report["confusion_matrix"], strict=True)]
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
        print(f"\nWrote {args.json}")
    return EXIT_OK


# ---------------------------------------------------------------------------------------------------------------------
# info


def _parameter_count(name: str, hub_kwargs: dict[str, Any]) -> tuple[int | None, int | None]:
    """(parameters, bytes on disk) from the safetensors headers, without loading the weights."""
    import math

    if not os.path.isdir(name):
        try:
            from huggingface_hub import get_safetensors_metadata

            metadata = get_safetensors_metadata(name, revision=hub_kwargs.get("revision"))
            return sum(metadata.parameter_count.values()), None
        except Exception:  # noqa: BLE001 - size is a nicety; info still shows the rest
            return None, None
    from safetensors import safe_open

    files = [os.path.join(name, f) for f in sorted(os.listdir(name)) if f.endswith(".safetensors")]
    if not files:
        return None, None
    count = 0
    for path in files:
        with safe_open(path, framework="pt") as f:
            count += sum(math.prod(f.get_slice(key).get_shape()) for key in f.keys())
    return count, sum(os.path.getsize(path) for path in files)


_GEOMETRY_KEYS = ("hidden_size", "num_attention_heads", "intermediate_size", "image_size", "patch_size", "num_channels")


def describe(name: str, hub_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a saved learngene, descendant or ViT is: a JSON-friendly dict for `hf-learngene info`."""
    from transformers import AutoConfig

    from .configuration_learngene import LearngeneConfig

    hub_kwargs = hub_kwargs or {}
    config = AutoConfig.from_pretrained(name, **hub_kwargs)
    model_type = getattr(config, "model_type", None)
    parameters, size = _parameter_count(name, hub_kwargs)
    info: dict[str, Any] = {"path": name, "model_type": model_type, "parameters": parameters, "size_bytes": size}
    geometry = {
        key: getattr(config, key, None)
        for key in (
            "hidden_size",
            "num_attention_heads",
            "intermediate_size",
            "image_size",
            "patch_size",
            "num_channels",
        )
    }
    if isinstance(config, LearngeneConfig):
        is_descendant = config.layout is not None
        info.update(
            kind="descendant" if is_descendant else "learngene",
            ancestor=config.ancestor_name_or_path,
            ancestor_revision=config.ancestor_revision,
            ancestor_num_layers=config.ancestor_num_layers,
            layer_indices=list(config.layer_indices),
            condensing_method=config.condensing_method,
            condensing_scores=config.condensing_scores,
            condensing_set=(config.condensing_details or {}).get("condensing_set"),
            geometry=geometry,
            hf_learngene_version=config.hf_learngene_version,
        )
        if is_descendant:
            info.update(layout=config.layout, labels=[config.id2label[i] for i in sorted(config.id2label)])
            info["usage"] = (
                "from hf_learngene import DescendantForImageClassification\n"
                f'model = DescendantForImageClassification.from_pretrained("{name}")\n'
                "logits = model(pixel_values).logits  # images prepared with model.image_processor"
            )
        else:
            layout = "L" * len(config.layer_indices) + "RR"
            info["usage"] = (
                "from hf_learngene import DescendantForImageClassification\n"
                "model = DescendantForImageClassification.from_pretrained(\n"
                f'    "{name}", num_labels=10, layout="{layout}"\n)\n'
                "# train it: hf_learngene.training.train_descendant(model, train_ds, eval_ds, output_dir=...)\n"
                f"# or: hf-learngene inherit {name} --dataset ... --layout {layout} --output ./descendant"
            )
    elif model_type == "vit":
        info.update(kind="vit", num_layers=config.num_hidden_layers, geometry=geometry)
        info["usage"] = (
            f"a ViT ancestry model: condense it with\n"
            f"hf-learngene condense {name} --method heuristic --num-layers K --output ./learngene"
        )
    else:
        raise CLIError(
            f"{name!r} is a {model_type!r} model: hf-learngene describes learngenes, descendants and ViT ancestors."
        )
    return info


def _print_info(info: dict[str, Any]) -> None:
    kind = info["kind"]
    size = f", {info['size_bytes'] / 1e6:.2f} MB" if info.get("size_bytes") else ""
    params = f"{info['parameters']:,} parameters" if info.get("parameters") is not None else "size unknown"
    print(f"{info['path']}: {kind} ({params}{size})")
    geometry = info.get("geometry") or {}
    print(
        "  geometry: hidden {hidden_size}, heads {num_attention_heads}, MLP {intermediate_size}, image {image_size}, "
        "patch {patch_size}, channels {num_channels}".format(**geometry)
    )
    if kind == "vit":
        print(f"  layers: {info['num_layers']}")
    else:
        revision = f" @ {info['ancestor_revision']}" if info.get("ancestor_revision") else ""
        print(f"  ancestor: {info['ancestor'] or 'unknown'}{revision} ({info['ancestor_num_layers']} layers)")
        print(f"  learngene layers (ancestry indices): {info['layer_indices']}")
        print(f"  condensing method: {info['condensing_method'] or 'unknown'}")
        if info.get("condensing_set"):
            print(f"  condensing set: {info['condensing_set']}")
        scores = info.get("condensing_scores")
        if scores:
            kept = set(info["layer_indices"])
            top = max(abs(s) for s in scores) or 1.0
            print("  scores per ancestry layer (* = kept):")
            for i, score in enumerate(scores):
                bar = "#" * max(0, round(20 * score / top))
                print(f"    {'*' if i in kept else ' '} {i:>3}  {score:>10.4f}  {bar}")
        if kind == "descendant":
            print(f"  layout: {info['layout']} (L = inherited layer, R = new layer)")
            labels = info["labels"]
            print(f"  labels ({len(labels)}): {', '.join(map(str, labels[:20]))}{' ...' if len(labels) > 20 else ''}")
        if info.get("hf_learngene_version"):
            print(f"  written by hf_learngene {info['hf_learngene_version']}")
    print("\nHow to use it:")
    for line in info["usage"].splitlines():
        print(f"  {line}")


def cmd_info(args) -> int:
    name = _check_source(args.model, "Model")
    info = describe(name, _hub_kwargs(args))
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        _print_info(info)
    return EXIT_OK


# ---------------------------------------------------------------------------------------------------------------------
# demo


def cmd_demo(args) -> int:
    from .demo import DEFAULT_OUTPUT, check_demo_output, run_demo

    device = resolve_device(args.device)
    # Without --output every run gets its own folder, so `make demo` can run again and earlier results stay.
    default = os.path.join(DEFAULT_OUTPUT, time.strftime("run-%Y%m%d-%H%M%S"))
    try:
        output = check_demo_output(args.output or default, args.overwrite)
    except (FileExistsError, ValueError) as error:
        raise CLIError(_one_line(error)) from None
    threads = 1 if args.threads is None else args.threads
    run_demo(
        output,
        overwrite=args.overwrite,
        device=device,
        quick=args.quick,
        seed=args.seed,
        cache_dir=args.cache_dir,
        threads=threads,
    )
    return EXIT_OK


# ---------------------------------------------------------------------------------------------------------------------
# The parser


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", help="show the full traceback on errors")
    common.add_argument(
        "--threads",
        type=int,
        help="CPU threads for torch (default: torch's choice; the demo uses 1, as its models are tiny)",
    )
    return common


def _add_dataset_options(parser: argparse.ArgumentParser, split_help: str) -> None:
    parser.add_argument(
        "--dataset",
        help=f"a local image folder (one sub-folder per class), a `save_to_disk` folder, a Hub dataset name, or "
        f"{OFFLINE_PREFIX}NAME for an offline real set ({', '.join(OFFLINE_DATASETS)})",
    )
    parser.add_argument("--split", help=split_help)
    parser.add_argument("--classes", help="offline sets only: comma-separated class ids to keep (re-indexed 0..n-1)")
    parser.add_argument("--max-per-class", type=int, help="offline sets only: at most this many images per class")


def _add_writing_options(parser: argparse.ArgumentParser, what: str) -> None:
    """--output / --overwrite / --push-to-hub of a command that writes `what` (a learngene, a descendant)."""
    parser.add_argument("--output", required=True, help=f"folder for the {what}")
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty output folder")
    parser.add_argument("--push-to-hub", metavar="REPO", help=f"also push the {what} to this Hub repository")


_DEVICE_HELP = "auto (default), cpu, cuda, cuda:N or mps"


def build_parser() -> argparse.ArgumentParser:
    from .version import __version__

    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="hf-learngene",
        description="Learngene on Hugging Face: condense a few integral layers out of a ViT ancestry model and grow "
        "descendants from them.",
        epilog="Run `hf-learngene COMMAND --help` for a command's options and examples.",
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"hf-learngene {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = _common_options()

    p = commands.add_parser(
        "condense",
        parents=[common],
        help="cut a learngene out of a ViT ancestry model",
        description="Condense a ViT ancestry model (Hub id or local folder) into a learngene and save it.",
        epilog=_EPILOG_CONDENSE,
        formatter_class=formatter,
    )
    p.add_argument("ancestor", help="Hub id or local folder of a ViT (ViTModel / ViTForImageClassification)")
    p.add_argument("--method", required=True, help="auto, cka, heuristic, first, random or manual")
    p.add_argument("--num-layers", type=int, help="how many ancestry layers to keep (k)")
    p.add_argument("--layers", help="for --method manual: comma-separated ancestry layers to keep, e.g. 0,1,9")
    _add_dataset_options(p, "split of the condensing set (default: train, else the first)")
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="a method option, e.g. epochs=2 (repeat)")
    _add_writing_options(p, "learngene")
    p.add_argument("--revision", help="revision of a Hub ancestor")
    p.add_argument("--device", default="auto", help=_DEVICE_HELP)
    p.add_argument("--seed", type=int, default=0, help="seed of the condensing method (default 0)")
    p.set_defaults(func=cmd_condense)

    p = commands.add_parser(
        "inherit",
        parents=[common],
        help="grow a descendant from a learngene and train it",
        description="Build a descendant (inherited layers L and new layers R) from a learngene and train it on an "
        "image-classification dataset with the Trainer; saves the model, its card and learning curves.",
        epilog=_EPILOG_INHERIT,
        formatter_class=formatter,
    )
    p.add_argument("learngene", help="Hub id or local folder of a learngene")
    _add_dataset_options(p, "training split (default: train)")
    p.add_argument("--eval-split", help="evaluation split (default: test, else validation, else none)")
    p.add_argument(
        "--layout", help="layers over {L, R}, e.g. LLRRLL; the number of L must equal the learngene's layers"
    )
    p.add_argument("--num-new-layers", type=int, help="instead of --layout: all learngene layers then N new ones")
    p.add_argument("--new-layer-init", default="trunc_normal", choices=("trunc_normal", "mimetic"))
    p.add_argument("--epochs", type=float, default=3, help="training epochs (default 3)")
    p.add_argument("--lr", type=float, default=5e-4, help="learning rate (default 5e-4)")
    p.add_argument("--batch-size", type=int, default=32, help="batch size per device (default 32)")
    p.add_argument(
        "--horizontal-flip",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="random horizontal flips while training (turn off for digits and text)",
    )
    _add_writing_options(p, "descendant")
    p.add_argument("--revision", help="revision of a Hub learngene")
    p.add_argument("--device", default="auto", help=_DEVICE_HELP)
    p.add_argument("--seed", type=int, default=42, help="seed (default 42)")
    p.set_defaults(func=cmd_inherit)

    p = commands.add_parser(
        "evaluate",
        parents=[common],
        help="accuracy, macro-F1 and a per-class table of an image classifier",
        description="Evaluate a descendant (or any transformers image classifier) on a dataset split.",
        epilog=_EPILOG_EVALUATE,
        formatter_class=formatter,
    )
    p.add_argument("model", help="Hub id or local folder of a descendant or image classifier")
    _add_dataset_options(p, "split to evaluate (default: test, else validation, else train)")
    p.add_argument("--batch-size", type=int, default=64, help="batch size (default 64)")
    p.add_argument("--json", metavar="FILE", help="also write the metrics to this JSON file")
    p.add_argument("--revision", help="revision of a Hub model")
    p.add_argument("--device", default="auto", help=_DEVICE_HELP)
    p.set_defaults(func=cmd_evaluate)

    p = commands.add_parser(
        "info",
        parents=[common],
        help="what a learngene or descendant is: ancestor, layers, scores, size, usage",
        description="Describe a saved learngene, descendant or ViT ancestor without loading its weights.",
        epilog=_EPILOG_INFO,
        formatter_class=formatter,
    )
    p.add_argument("model", help="Hub id or local folder")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--revision", help="revision of a Hub model")
    p.set_defaults(func=cmd_info)

    p = commands.add_parser(
        "demo",
        parents=[common],
        help="the whole paradigm offline on real data (Fashion-MNIST -> learngene -> MNIST)",
        description="Accumulate, condense and inherit, offline, and compare against training from scratch.",
        epilog=_EPILOG_DEMO,
        formatter_class=formatter,
    )
    p.add_argument(
        "--output",
        help="output folder (refused if not empty unless --overwrite); default: a fresh ./demo-output/run-<time>/",
    )
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty output folder")
    p.add_argument("--quick", action="store_true", help="a tiny run (seconds) to check the set-up; numbers mean little")
    p.add_argument("--device", default="auto", help=_DEVICE_HELP)
    p.add_argument("--seed", type=int, default=0, help="seed of data sampling and every model (default 0)")
    p.add_argument(
        "--cache-dir",
        help="where the trained ancestor is cached (default $HF_LEARNGENE_CACHE, else $HF_HOME/hf_learngene)",
    )
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `hf-learngene` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.threads is not None:
            if args.threads < 1:
                raise CLIError(f"--threads must be >= 1, got {args.threads}.")
            if args.command != "demo":  # the demo sets (and restores) its own
                import torch

                torch.set_num_threads(args.threads)
        return args.func(args)
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python from complaining again at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("hf-learngene: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - every failure becomes one line unless --verbose
        if args.verbose:
            traceback.print_exc()
        code = EXIT_USAGE if isinstance(error, _INPUT_ERRORS) else EXIT_FAILURE
        hint = "" if args.verbose else " (run with --verbose for the traceback)"
        print(f"hf-learngene {args.command}: error: {_one_line(error)}{hint}", file=sys.stderr)
        return code


__all__ = [
    "CLIError",
    "build_parser",
    "describe",
    "load_dataset_arg",
    "main",
    "resolve_device",
]
