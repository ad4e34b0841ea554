"""`hf-learngene inherit`: grow a descendant from a learngene and train it with the `Trainer`, on every process a
launcher starts (`accelerate launch`, `torchrun`)."""

from __future__ import annotations

import os
from typing import Any

from . import run_folder
from .arguments import add_dataset_options, add_learngene_options, add_training_options, add_writing_options
from .common import CLIError, Output, check_source, hub_url, load_config, one_line, resolve_device
from .datasets import card_dataset_name, naming_bad_images, training_splits

EPILOG = """\
examples:
  hf-learngene inherit ./learngene --dataset offline:mnist --classes 0,1,2,3,4 --layout LLLR --epochs 10 \\
      --output ./descendant
  hf-learngene inherit org/vit-learngene --dataset ./my-images --test-size 0.2 --num-new-layers 2 \\
      --output ./descendant --push-to-hub org/vit-descendant
  accelerate launch --multi_gpu --num_processes 8 --mixed_precision bf16 -m hf_learngene.cli inherit \\
      org/vit-learngene --dataset ./my-images --num-new-layers 2 --output ./descendant
  hf-learngene inherit ./learngene --dataset ./my-images --num-new-layers 2 --output ./descendant \\
      --resume-from-checkpoint latest      # go on after an interruption
"""
TEST_SIZE_HELP = (
    "when the dataset has no test/validation split: hold out this fraction (or number) of the training images for "
    "evaluation (a stratified cut with a fixed seed: `evaluate --test-size` scores the same images)"
)


def add_inherit_arguments(p) -> None:
    """The arguments of `inherit`, shared by the Accelerate example loop (same names, same checks)."""
    add_learngene_options(p)
    add_dataset_options(p, "training split", required=True, test_size_help=TEST_SIZE_HELP)
    p.add_argument(
        "--eval-split", help="evaluation split (default: test, else validation, else the --test-size cut, else none)"
    )
    add_training_options(p)
    add_writing_options(p, "descendant")
    p.add_argument(
        "--keep-checkpoints", action="store_true", help="keep the resumable checkpoints in --output after success"
    )


def add_parser(commands, parents, formatter) -> None:
    p = commands.add_parser(
        "inherit",
        parents=parents,
        help="grow a descendant from a learngene and train it",
        description="Build a descendant (inherited layers L and new layers R) from a learngene and train it on an "
        "image-classification dataset with the Trainer; saves the model, its card, learning curves and a "
        "classification report. Under `accelerate launch` or `torchrun` it trains on every process started.",
        epilog=EPILOG,
        formatter_class=formatter,
    )
    add_inherit_arguments(p)
    p.set_defaults(func=run)


def learngene_layout(args) -> tuple[str, str]:
    """`(learngene, layout)`: the learngene's source and the descendant's layout, checked against each other."""
    from ..configuration_learngene import LearngeneConfig, resolve_layout

    given = [flag for flag, value in (("--layout", args.layout), ("--num-new-layers", args.num_new_layers),
                                      ("--depth", args.depth)) if value is not None]  # fmt: skip
    if len(given) > 1:
        raise CLIError(f"Pass one of --layout, --num-new-layers and --depth, not {' and '.join(given)}.")
    learngene = check_source(args.learngene, "Learngene")
    config = load_config(learngene, args, "learngene")
    if not isinstance(config, LearngeneConfig):
        model_type = getattr(config, "model_type", None)
        hint = (
            f" Condense it first: hf-learngene condense {learngene} --method heuristic --num-layers K --output DIR."
            if model_type == "vit"
            else ""
        )
        raise CLIError(f"{learngene!r} is a {model_type!r} model, not a learngene.{hint}")
    inherited = config.num_inherited_layers
    if args.depth is not None:
        if args.depth < inherited:
            raise CLIError(
                f"--depth {args.depth} is below the learngene's {inherited} layers: a descendant keeps every "
                f"learngene layer, so use --depth {inherited} or more (or condense fewer layers)."
            )
        return learngene, "L" * inherited + "R" * (args.depth - inherited)
    try:
        return learngene, resolve_layout(args.layout, args.num_new_layers, inherited)
    except ValueError as error:
        raise CLIError(f"--layout does not fit the learngene: {one_line(error)}") from error


def build_descendant(args, learngene: str, layout: str, train):
    """The descendant, its new layers initialised from `--seed` (the same on every process and every run)."""
    from transformers import set_seed

    from ..data import find_columns, label_maps
    from ..modeling_learngene import DescendantForImageClassification

    set_seed(args.seed)
    _, label_column = find_columns(train)
    id2label, label2id = label_maps(train, label_column)
    if len(id2label) < 2:
        raise CLIError(
            f"The training set has a single class ({list(id2label.values())}): a classifier needs at least 2. Check "
            "--classes or the dataset's label column."
        )
    kwargs = {"revision": args.revision} if args.revision else {}
    kwargs.update(width_arguments(args, learngene, train, kwargs))
    try:
        return DescendantForImageClassification.from_pretrained(
            learngene, num_labels=len(id2label), id2label=id2label, label2id=label2id, layout=layout,
            new_layer_init=args.new_layer_init, **kwargs,
        )  # fmt: skip
    except OSError as error:
        raise CLIError(f"Cannot load the learngene {learngene!r}: {one_line(error)}") from error


def width_arguments(args, learngene: str, train, hub_kwargs: dict) -> dict:
    """`--hidden-size` / `--num-attention-heads` / `--intermediate-size` / `--width-selection` as `from_pretrained`
    arguments; `activation` selection measures the learngene on up to 256 training images."""
    sizes = {
        name: getattr(args, name)
        for name in ("hidden_size", "num_attention_heads", "intermediate_size")
        if getattr(args, name) is not None
    }
    if args.width_selection is None:
        return sizes
    if not sizes:
        raise CLIError(
            "--width-selection chooses what a narrower descendant keeps: give the sizes too (--hidden-size, "
            "--num-attention-heads, --intermediate-size)."
        )
    if args.width_selection != "activation":
        return {**sizes, "width_selection": args.width_selection}
    from ..growth import select_width
    from ..modeling_learngene import LearngeneModel

    source = LearngeneModel.from_pretrained(learngene, **hub_kwargs) if hub_kwargs else learngene
    return select_width(source, train, max_samples=256, seed=args.seed, **sizes)


def precision_settings(mode: str) -> dict[str, bool]:
    """`--mixed-precision` as TrainingArguments fields; `auto` follows `accelerate launch --mixed_precision`, else
    the helper's default (bf16 on a GPU that supports it)."""
    if mode == "auto":
        mode = os.environ.get("ACCELERATE_MIXED_PRECISION", "auto").lower()
    if mode == "auto":
        return {}
    return {"bf16": mode == "bf16", "fp16": mode == "fp16"}


def training_settings(args, device: str) -> dict[str, Any]:
    """The CLI's training flags as `train_descendant` arguments."""
    settings = {
        "num_train_epochs": args.epochs,
        "learning_rate": args.learning_rate,
        "inherited_learning_rate": args.inherited_learning_rate,
        "weight_decay": args.weight_decay,
        "per_device_train_batch_size": args.batch_size,
        "gradient_accumulation_steps": args.gradient_accumulation_steps,
        "freeze_inherited_steps": args.freeze_inherited_steps,
        "horizontal_flip": args.horizontal_flip,
        "seed": args.seed,
        "save_total_limit": args.checkpoints_total_limit,
        "report_to": args.report_to,
        "disable_tqdm": args.quiet,
        "dataset_name": card_dataset_name(args.dataset),
        **precision_settings(args.mixed_precision),
    }
    if device == "cpu":
        settings["use_cpu"] = True  # the Trainer picks an accelerator itself; it only needs telling to stay off it
    return settings


def _train(args, out: Output, folder, model, train, evaluation, device):
    from ..training import train_descendant

    try:
        with naming_bad_images(train, evaluation):
            result = train_descendant(
                model, train, evaluation, output_dir=folder.work, resume_from_checkpoint=folder.checkpoint,
                **training_settings(args, device),
            )  # fmt: skip
    except BaseException:
        hint = run_folder.abandon(folder)
        if hint:
            out.warn(hint)
        raise
    result.trainer.accelerator.wait_for_everyone()
    run_folder.finish(folder, args.keep_checkpoints)
    result.trainer.accelerator.wait_for_everyone()
    return result


def push_folder(model, folder: str, repo_id: str) -> str:
    """Upload a finished output folder (weights, processor, card with its learning-curve picture, report) in one
    commit; returns the repository's URL as the Hub client gives it (so on `HF_ENDPOINT` when set)."""
    from huggingface_hub import HfApi

    from ..model_card import write_model_card

    api = HfApi()
    url = api.create_repo(repo_id, exist_ok=True)
    write_model_card(model, folder, url.repo_id)  # the usage snippet names the repository
    api.upload_folder(
        repo_id=url.repo_id, folder_path=folder, ignore_patterns=["checkpoint-*", ".tmp-*", "_*"],
        commit_message="Upload DescendantForImageClassification (hf-learngene inherit)",
    )  # fmt: skip
    return hub_url(url)


def _report(result, model, folder, layout: str, train, evaluation) -> dict[str, Any]:
    metrics = result.metrics
    if "eval_accuracy" in metrics:
        print(
            f"Accuracy {metrics['eval_accuracy']:.4f}, macro-F1 {metrics.get('eval_f1', float('nan')):.4f}, "
            f"macro precision {metrics.get('eval_precision', float('nan')):.4f}, "
            f"macro recall {metrics.get('eval_recall', float('nan')):.4f} on {len(evaluation):,} held-out images"
        )
    print(f"Saved to {folder.output}")
    scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
    return {
        "output": folder.output,
        "layout": layout,
        "parameters": model.num_parameters(),
        "num_labels": model.config.num_labels,
        "num_train": len(train),
        "num_eval": len(evaluation) if evaluation is not None else None,
        "world_size": result.world_size,
        "resumed_from": folder.checkpoint,
        "metrics": scalars,
        "report": result.report,
        "learning_curves": result.learning_curves,
        "hub_url": None,
    }


def run(args, out: Output) -> dict[str, Any]:
    from ..training import check_sharding_device

    learngene, layout = learngene_layout(args)
    device = resolve_device(args.device)
    check_sharding_device(device)
    folder = run_folder.prepare(args.output, args.overwrite, args.resume_from_checkpoint, print)
    train, evaluation = training_splits(args, lambda note: print(f"note: {note}"))
    model = build_descendant(args, learngene, layout, train)
    print(
        f"Descendant {layout} ({layout.count('L')} inherited, {layout.count('R')} new layers), "
        f"{model.num_parameters():,} parameters, {model.config.num_labels} classes; training on {len(train):,} images."
    )
    result = _train(args, out, folder, model, train, evaluation, device)
    trained = result.trainer.accelerator.unwrap_model(result.trainer.model)
    payload = _report(result, trained, folder, layout, train, evaluation)
    if args.push_to_hub and run_folder.is_main_process():
        payload["hub_url"] = push_folder(trained, folder.output, args.push_to_hub)
        print(f"Pushed to {payload['hub_url']}")
    return payload
