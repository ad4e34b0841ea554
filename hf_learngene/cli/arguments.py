"""Argument parsing shared by the subcommands and the Accelerate example loop: one-line usage errors (exit code 2),
help texts that show defaults, values checked at parse time, and the option groups both use (same flag names)."""

from __future__ import annotations

import argparse
import math
import sys

OFFLINE_PREFIX = "offline:"
OFFLINE_DATASETS = ("fashion-mnist", "mnist", "digits")
DEVICE_HELP = "auto, cpu, cuda, cuda:N or mps (auto: a GPU when one is visible)"

# Beyond these a value is a typo, and would otherwise fail only after minutes (or allocate hundreds of GB).
MAX_EPOCHS = 10_000
MAX_BATCH_SIZE = 65_536
MAX_SEED = 2**32 - 1  # numpy's limit


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Examples in epilogs kept as written, and `(default: X)` after every option that has a default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "%(default)" in text
            or default is None
            or default is False
            or default is argparse.SUPPRESS
            or not action.option_strings
        ):
            return text
        return f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """An `ArgumentParser` whose usage errors are one line on stderr (exit code 2), naming `--help`."""

    def error(self, message: str):
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        sys.exit(2)


# ---------------------------------------------------------------------------------------------------------------------
# Values checked at parse time


def _number(text: str, kind: type, what: str):
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def int_range(low: int, high: int | None = None, what: str = "an integer"):
    """An argparse type: an integer in [low, high]."""

    def parse(text: str) -> int:
        value = _number(text, int, what)
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high:,}" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text}")
        return value

    return parse


def float_range(low: float, high: float, *, low_open: bool = False, what: str = "a number"):
    """An argparse type: a finite number in [low, high] (or (low, high] with `low_open`)."""

    def parse(text: str) -> float:
        value = _number(text, float, what)
        if value < low or (low_open and value == low) or value > high:
            bound = f"{'>' if low_open else '>='} {low:g} and <= {high:g}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text}")
        return value

    return parse


positive_int = int_range(1)
batch_size = int_range(1, MAX_BATCH_SIZE)
seed = int_range(0, MAX_SEED, "an integer seed")
epochs = float_range(0.0, MAX_EPOCHS, low_open=True, what="a number of epochs")
learning_rate = float_range(0.0, 10.0, low_open=True, what="a learning rate")


def held_out_size(text: str) -> float | int:
    """`--test-size`: a fraction in (0, 1) of the images, or a number of images >= 1."""
    value = _number(text, float, "a fraction such as 0.2 or a number of images")
    if 0 < value < 1:
        return value
    if value >= 1 and value.is_integer():
        return int(value)
    raise argparse.ArgumentTypeError(f"must be a fraction in (0, 1) or a whole number of images >= 1, got {text}")


def freeze_steps(text: str) -> int | None:
    """`--freeze-inherited-steps`: a number of optimizer steps, or `all` (None: throughout)."""
    if text.strip().lower() in ("all", "always", "throughout"):
        return None
    return int_range(0, what="a number of steps or 'all'")(text)


# ---------------------------------------------------------------------------------------------------------------------
# Option groups


def add_common_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("output")
    group.add_argument("-v", "--verbose", action="store_true", help="show the full traceback on errors")
    group.add_argument(
        "-q", "--quiet", action="store_true", help="print nothing but warnings and errors (and the --json result)"
    )
    group.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="FILE",
        help="print the result as one JSON document on stdout (other text goes to stderr), or write it to FILE",
    )
    group.add_argument("--threads", type=positive_int, help="CPU threads for torch (default: torch's choice)")


def add_dataset_options(
    parser: argparse.ArgumentParser, split_help: str, *, required: bool, test_size_help: str | None = None
) -> None:
    group = parser.add_argument_group("data")
    group.add_argument(
        "--dataset",
        required=required,
        help=f"a local image folder (one sub-folder per class), a `save_to_disk` folder, a Hub dataset name, or "
        f"{OFFLINE_PREFIX}NAME for an offline real set ({', '.join(OFFLINE_DATASETS)})",
    )
    group.add_argument("--split", help=split_help)
    group.add_argument("--classes", help="offline sets only: comma-separated class ids to keep (re-indexed 0..n-1)")
    group.add_argument(
        "--max-per-class", type=positive_int, help="offline sets only: at most this many images per class"
    )
    if test_size_help:
        group.add_argument("--test-size", type=held_out_size, metavar="FRACTION|N", help=test_size_help)


def add_writing_options(parser: argparse.ArgumentParser, what: str) -> None:
    """--output / --overwrite / --push-to-hub of a command that writes `what` (a learngene, a descendant)."""
    group = parser.add_argument_group("where the result goes")
    group.add_argument("--output", required=True, help=f"folder for the {what}")
    group.add_argument(
        "--overwrite", action="store_true", help=f"replace a previous {what} in --output (nothing else is replaced)"
    )
    group.add_argument("--push-to-hub", metavar="REPO", help=f"also push the {what} to this Hub repository")


def add_learngene_options(parser: argparse.ArgumentParser) -> None:
    """The learngene to grow from and the descendant's shape (`inherit` and the Accelerate loop)."""
    parser.add_argument("learngene", help="Hub id or local folder of a learngene")
    group = parser.add_argument_group("descendant")
    group.add_argument(
        "--layout", help="layers over {L, R}, e.g. LLRRLL; the number of L must equal the learngene's layers"
    )
    group.add_argument(
        "--num-new-layers", type=int_range(0), help="instead of --layout: all learngene layers then N new ones"
    )
    group.add_argument(
        "--depth",
        type=int_range(1, 1024),
        help="instead of --layout: the descendant's number of layers, the learngene's followed by new ones (for a "
        "linear learngene, every layer generated)",
    )
    group.add_argument(
        "--new-layer-init",
        choices=("trunc_normal", "mimetic", "identity", "copy", "linear"),
        help="initialisation of the new layers: trunc_normal (random), mimetic (attention close to identity maps), "
        "identity (the layer starts as the identity), copy (of the nearest inherited layer), linear (theta_A + "
        "l/L theta_B fitted over the inherited layers); default: trunc_normal, linear for a linear learngene",
    )
    width = parser.add_argument_group(
        "descendant width (no larger than the learngene's; every inherited tensor sliced)"
    )
    width.add_argument("--hidden-size", type=int_range(1, 1 << 16), help="width of the token representations")
    width.add_argument("--num-attention-heads", type=int_range(1, 1024), help="attention heads per layer")
    width.add_argument("--intermediate-size", type=int_range(1, 1 << 18), help="width of each layer's MLP")
    width.add_argument(
        "--width-selection",
        choices=("uniform", "heads", "activation"),
        help="which channels, heads and MLP neurons are kept: uniform (evenly spaced, weight selection's rule), "
        "heads (whole heads), activation (largest activations on up to 256 training images); default: uniform",
    )
    group.add_argument("--revision", help="revision of a Hub learngene")


def add_training_options(parser: argparse.ArgumentParser) -> None:
    """Training options with the same names in `hf-learngene inherit` and the Accelerate example loop."""
    group = parser.add_argument_group("training")
    group.add_argument("--epochs", type=epochs, default=3.0, help="training epochs (fractions allowed)")
    group.add_argument("--learning-rate", "--lr", type=learning_rate, default=5e-4, help="learning rate (new layers)")
    group.add_argument(
        "--inherited-learning-rate",
        type=float_range(0.0, 10.0, what="a learning rate"),
        help="learning rate of the inherited layers (default: --learning-rate; 0 keeps them fixed)",
    )
    group.add_argument("--weight-decay", type=float_range(0.0, 10.0), default=0.05, help="AdamW weight decay")
    group.add_argument("--batch-size", type=batch_size, default=32, help="images per device per step")
    group.add_argument(
        "--gradient-accumulation-steps", type=int_range(1, 4096), default=1, help="steps accumulated per update"
    )
    group.add_argument(
        "--freeze-inherited-steps",
        type=freeze_steps,
        default=0,
        metavar="N|all",
        help="keep the inherited layers fixed for the first N optimizer steps, or all of training",
    )
    group.add_argument(
        "--horizontal-flip",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="random horizontal flips while training (turn off for digits and text)",
    )
    group.add_argument(
        "--mixed-precision",
        choices=("auto", "no", "bf16", "fp16"),
        default="auto",
        help="auto: bf16 on a GPU that supports it (or what `accelerate launch --mixed_precision` asked), else fp32",
    )
    group.add_argument("--seed", type=seed, default=42, help="seed of the new layers, data order and augmentation")
    group.add_argument(
        "--resume-from-checkpoint",
        metavar="latest|PATH",
        help="resume an interrupted run: `latest` (the newest complete checkpoint of this --output) or a "
        "checkpoint folder",
    )
    group.add_argument(
        "--checkpoints-total-limit", type=positive_int, default=2, help="keep at most this many checkpoints"
    )
    group.add_argument(
        "--report-to",
        default="none",
        help="experiment tracking: none, tensorboard (works offline; needs `tensorboardX` or `tensorboard`), wandb, "
        "... or all",
    )
    group.add_argument("--device", default="auto", help=DEVICE_HELP)


__all__ = [
    "DEVICE_HELP",
    "HelpFormatter",
    "OFFLINE_DATASETS",
    "OFFLINE_PREFIX",
    "Parser",
    "add_common_options",
    "add_dataset_options",
    "add_learngene_options",
    "add_training_options",
    "add_writing_options",
    "batch_size",
    "epochs",
    "float_range",
    "freeze_steps",
    "int_range",
    "learning_rate",
    "positive_int",
    "seed",
    "held_out_size",
]
