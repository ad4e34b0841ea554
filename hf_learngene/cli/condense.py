"""`hf-learngene condense`: cut a learngene out of a ViT ancestry model."""

from __future__ import annotations

import os
from typing import Any

from .arguments import DEVICE_HELP, add_dataset_options, add_writing_options, int_range, seed
from .common import (
    CLIError,
    Output,
    check_output,
    check_source,
    hub_url,
    load_config,
    parse_int_list,
    parse_options,
    resolve_device,
)
from .datasets import load_dataset_arg, naming_bad_images, pick_split

# Written out (not read from CONDENSING_METHODS) so that `--help` does not import torch; a test keeps it complete.
METHOD_HELP = (
    "condensing method (default: %(default)s, the best measured on the learning benchmark v2): first, heuristic, "
    "random, manual, linear, and the data-driven auto (the paper's), cka, block_influence, angular_distance, search"
)
EPILOG = """\
examples:
  hf-learngene condense google/vit-base-patch16-224 --num-layers 3 --output ./vit-learngene
  hf-learngene condense ./my-vit --method auto --num-layers 4 --dataset offline:fashion-mnist --classes 6,7,8,9 \\
      --max-per-class 200 --option epochs=2 --output ./learngene --push-to-hub org/vit-learngene
"""


def add_parser(commands, parents, formatter) -> None:
    p = commands.add_parser(
        "condense",
        parents=parents,
        help="cut a learngene out of a ViT ancestry model",
        description="Condense a ViT ancestry model (Hub id or local folder) into a learngene and save it.",
        epilog=EPILOG,
        formatter_class=formatter,
    )
    p.add_argument("ancestor", help="Hub id or local folder of a ViT (ViTModel / ViTForImageClassification)")
    p.add_argument("--method", default="first", help=METHOD_HELP)
    p.add_argument("--num-layers", type=int_range(1), help="how many ancestry layers to keep (k)")
    p.add_argument("--layers", help="for --method manual: comma-separated ancestry layers to keep, e.g. 0,1,9")
    add_dataset_options(p, "split of the condensing set (default: train, else the first)", required=False)
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="a method option, e.g. epochs=2 (repeat)")
    add_writing_options(p, "learngene")
    p.add_argument("--revision", help="revision of a Hub ancestor")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--seed", type=seed, default=0, help="seed of the condensing method")
    p.set_defaults(func=run)


def _check_method(args):
    from ..condensing import CONDENSING_METHODS

    if args.method not in CONDENSING_METHODS:
        raise CLIError(f"Unknown method {args.method!r}; choose one of: {', '.join(sorted(CONDENSING_METHODS))}.")
    spec = CONDENSING_METHODS[args.method]
    layers = parse_int_list(args.layers, "--layers")
    if args.method == "manual" and layers is None:
        raise CLIError("--method manual needs --layers, the ancestry layers to keep (e.g. --layers 0,1,11).")
    if args.method != "manual" and args.num_layers is None:
        raise CLIError(f"--method {args.method} needs --num-layers K, how many ancestry layers to keep.")
    if spec.needs_data and not args.dataset:
        raise CLIError(
            f"--method {args.method} needs a condensing set: pass --dataset NAME_OR_DIR (e.g. --dataset "
            "offline:fashion-mnist --classes 6,7,8,9), with classes unlike the ancestor's and the descendants'."
        )
    return spec, layers


def _condensing_set(args, spec, options: dict[str, Any]):
    if not spec.needs_data:
        if args.dataset:
            print(f"note: --method {args.method} uses no data; --dataset is ignored.")
        return None
    options.setdefault("device", resolve_device(args.device))
    classes = parse_int_list(args.classes, "--classes")
    dataset = load_dataset_arg(args.dataset, args.split, classes, args.max_per_class)
    return pick_split(dataset, None, ("train",), "condensing set") or dataset


def run(args, out: Output) -> dict[str, Any]:
    from ..condensing import condense

    spec, layers = _check_method(args)
    ancestor = check_source(args.ancestor, "Ancestor")
    if not os.path.isdir(ancestor):
        load_config(ancestor, args, "ancestor")  # a missing Hub repository or revision: one line, exit code 2
    options = parse_options(args.option)
    dataset = _condensing_set(args, spec, options)
    output = check_output(args.output, args.overwrite, "learngene")
    with naming_bad_images(dataset):
        learngene = condense(
            ancestor, method=args.method, num_layers=args.num_layers, layers=layers, condense_dataset=dataset,
            output_dir=output, overwrite=args.overwrite, revision=args.revision, seed=args.seed, **options,
        )  # fmt: skip
    config = learngene.config
    print(
        f"Learngene: {config.num_hidden_layers} of {config.ancestor_num_layers} ancestry layers "
        f"{config.layer_indices} (method {config.condensing_method}), {learngene.num_parameters():,} parameters."
    )
    if config.condensing_scores is not None:
        print("Scores per ancestry layer: " + ", ".join(f"{i}:{s:.3f}" for i, s in enumerate(config.condensing_scores)))
    print(f"Saved to {output}")
    result = {
        "output": output,
        "method": config.condensing_method,
        "layer_indices": list(config.layer_indices),
        "ancestor_num_layers": config.ancestor_num_layers,
        "scores": config.condensing_scores,
        "parameters": learngene.num_parameters(),
        "hub_url": None,
    }
    if args.push_to_hub:
        result["hub_url"] = hub_url(learngene.push_to_hub(args.push_to_hub))
        print(f"Pushed to {result['hub_url']}")
    return result
