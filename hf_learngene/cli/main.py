"""The parser (one module per subcommand adds its own) and the entry point."""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import traceback
import warnings
from collections.abc import Iterator, Sequence

from . import condense, demo, evaluate, info, inherit
from .arguments import HelpFormatter, Parser, add_common_options
from .common import EXIT_FAILURE, CLIError, Output, exit_code, one_line, quiet_libraries

SUBCOMMANDS = (condense, inherit, evaluate, info, demo)


def build_parser() -> Parser:
    from ..version import __version__

    parser = Parser(
        prog="hf-learngene",
        description="Learngene on Hugging Face: condense a few integral layers out of a ViT ancestry model and grow "
        "descendants from them.",
        epilog="Run `hf-learngene COMMAND --help` for a command's options and examples. Every command takes --quiet, "
        "--json [FILE] and --verbose; user errors exit with code 2, other failures with 1.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"hf-learngene {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=Parser)
    common = Parser(add_help=False)
    add_common_options(common)
    for module in SUBCOMMANDS:
        module.add_parser(commands, [common], HelpFormatter)
    return parser


@contextlib.contextmanager
def _our_warnings(out: Output) -> Iterator[None]:
    """Warnings raised by hf_learngene (a skipped checkpoint, a launch that did not start its processes) as one
    `WARNING:` line each, even with --quiet."""
    original = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if f"{os.sep}hf_learngene{os.sep}" in filename:
            out.warn(one_line(message) if isinstance(message, BaseException) else str(message))
        else:
            original(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", UserWarning)
            warnings.showwarning = show
            yield
    finally:
        warnings.showwarning = original


def _run(args, out: Output) -> int:
    if args.threads is not None and args.command != "demo":  # the demo sets (and restores) its own
        import torch

        torch.set_num_threads(args.threads)
    with quiet_libraries(args.quiet), _our_warnings(out), out.capture():
        payload = args.func(args, out)
    out.result(payload)
    return 0


def _release_frames(error: BaseException | None) -> None:
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        traceback.clear_frames(error.__traceback__)
        error = error.__cause__ or error.__context__
    gc.collect()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `hf-learngene` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    secondary = int(os.environ.get("RANK", "0")) != 0  # under a launcher, only the main process reports
    out = Output(f"hf-learngene {args.command}", args.quiet or secondary, None if secondary else args.json)
    try:
        return _run(args, out)
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python from complaining again at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(f"{out.prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - every failure becomes one line unless --verbose
        if args.verbose:
            traceback.print_exc()
        # Progress bars still referenced by the failed frames would close (and draw) after the message: close them now.
        _release_frames(error)
        hint = "" if args.verbose else " (run with --verbose for the traceback)"
        print(f"{out.prog}: error: {one_line(error)}{hint}", file=sys.stderr)
        return exit_code(error)


__all__ = ["CLIError", "build_parser", "main"]
