"""What every subcommand shares: errors and exit codes, the output (text, `--json`, `--quiet`), paths and Hub ids."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class CLIError(Exception):
    """A problem with the arguments or the input, reported as one line with exit code 2."""


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    if isinstance(error, KeyError):
        text = text.strip("'\"")
    return text or type(error).__name__


def _input_error_types() -> tuple[type[BaseException], ...]:
    """Exceptions that mean the input cannot be used (exit code 2): bad values, missing or unreadable files, images
    PIL cannot read, weights safetensors cannot parse, a Hub repository, revision or file that does not exist."""
    types: list[type[BaseException]] = [
        CLIError,
        ValueError,
        FileNotFoundError,
        FileExistsError,
        NotADirectoryError,
        IsADirectoryError,
        PermissionError,
    ]
    with contextlib.suppress(ImportError):
        from PIL import UnidentifiedImageError

        types.append(UnidentifiedImageError)
    with contextlib.suppress(ImportError):
        from safetensors import SafetensorError

        types.append(SafetensorError)
    with contextlib.suppress(ImportError):
        from huggingface_hub import errors

        types += [
            errors.RepositoryNotFoundError,
            errors.RevisionNotFoundError,
            errors.EntryNotFoundError,
            errors.LocalEntryNotFoundError,
            errors.HFValidationError,
        ]
    return tuple(types)


def exit_code(error: BaseException) -> int:
    return EXIT_USAGE if isinstance(error, _input_error_types()) else EXIT_FAILURE


# ---------------------------------------------------------------------------------------------------------------------
# Output: text on stdout, `--json [FILE]`, `--quiet`


class Output:
    """Where a command's words go. Commands `print()` their human-readable text; [`capture`] sends it to stdout
    (normally), stderr (when `--json` prints the result on stdout, so that stdout is exactly one JSON document) or
    nowhere (`--quiet`). Warnings and errors always go to stderr."""

    def __init__(self, prog: str, quiet: bool = False, json_target: str | None = None):
        self.prog, self.quiet, self.json_target = prog, quiet, json_target
        self.stdout = sys.stdout

    @contextlib.contextmanager
    def capture(self) -> Iterator[None]:
        if self.quiet:
            with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
                yield
        elif self.json_target == "-":
            with contextlib.redirect_stdout(sys.stderr):
                yield
        else:
            yield

    def warn(self, message: str) -> None:
        print(f"{self.prog}: WARNING: {message}", file=sys.stderr, flush=True)

    def result(self, payload: dict[str, Any]) -> None:
        """Write the command's result as JSON: to stdout for `--json`, to the file for `--json FILE`."""
        if self.json_target is None:
            return
        text = json.dumps(payload, indent=2, default=_json_default)
        if self.json_target == "-":
            print(text, file=self.stdout, flush=True)
        else:
            write_text_atomic(self.json_target, text + "\n")
            if not self.quiet and self.json_target != "-":
                print(f"Wrote {self.json_target}")


def _json_default(value):
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def write_text_atomic(path: str, text: str) -> None:
    """Write a file beside its place and rename it there: a reader (or a kill) never sees half of it."""
    path = os.path.abspath(os.path.expanduser(path))
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise CLIError(f"Cannot write {path}: the folder {folder} does not exist.")
    handle, scratch = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(scratch, path)
    finally:
        if os.path.exists(scratch):
            os.unlink(scratch)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * width for width in widths))


@contextlib.contextmanager
def quiet_libraries(quiet: bool):
    """Loading and writing bars of transformers, datasets and huggingface_hub are noise in a command's output; with
    `--quiet` their warnings go too (the Trainer's own progress bar follows --quiet through `disable_tqdm`). Everything
    is restored afterwards, so `main()` called in-process leaves the libraries as it found them."""
    import datasets
    import huggingface_hub
    from transformers.utils import logging as hf_logging

    saved = (
        hf_logging.get_verbosity(),
        hf_logging.is_progress_bar_enabled(),
        datasets.logging.get_verbosity(),
        datasets.is_progress_bar_enabled(),
        huggingface_hub.utils.are_progress_bars_disabled(),
    )
    hf_logging.disable_progress_bar()
    datasets.disable_progress_bars()
    huggingface_hub.utils.disable_progress_bars()
    if quiet:
        hf_logging.set_verbosity_error()
        datasets.logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(saved[0])
        (hf_logging.enable_progress_bar if saved[1] else hf_logging.disable_progress_bar)()
        datasets.logging.set_verbosity(saved[2])
        (datasets.enable_progress_bars if saved[3] else datasets.disable_progress_bars)()
        hub = huggingface_hub.utils
        (hub.disable_progress_bars if saved[4] else hub.enable_progress_bars)()


# ---------------------------------------------------------------------------------------------------------------------
# Paths, Hub ids, devices


def _looks_like_path(name: str) -> bool:
    # A Hub id is "name" or "org/name"; anything else with a separator (or a leading . / ~) is meant as a folder.
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or os.sep != "/" and os.sep in name


def check_source(name: str, what: str) -> str:
    """Fail early, with a clear message, on a local path that does not exist."""
    expanded = os.path.expanduser(name)
    if os.path.exists(expanded):
        return expanded
    if _looks_like_path(name):
        raise CLIError(
            f"{what} {name!r} does not exist (no such folder). Check the path, or pass a Hub id such as 'org/name'."
        )
    return name


def check_output(path: str, overwrite: bool, kind: str) -> str:
    """The absolute output folder: missing or empty, or (with `--overwrite`) a previous output of the same kind."""
    from ..serialization import check_output_folder

    try:
        return check_output_folder(path, kind, overwrite)
    except (FileExistsError, ValueError) as error:
        raise CLIError(one_line(error).replace("overwrite=True (--overwrite)", "--overwrite")) from None


def hub_kwargs(args) -> dict[str, Any]:
    return {"revision": args.revision} if getattr(args, "revision", None) else {}


def load_config(name: str, args, what: str):
    """`AutoConfig.from_pretrained`, with a missing Hub repository, revision or file as a one-line input error."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(name, **hub_kwargs(args))
    except OSError as error:
        raise CLIError(f"Cannot load the {what} {name!r}: {one_line(error)}") from error


def resolve_device(name: str) -> str:
    """`auto` -> `cuda` when a GPU is visible (else `mps`, else `cpu`); an explicit accelerator must exist."""
    from ..utils import resolve_device as resolve

    try:
        device = resolve(name)
    except ValueError as error:
        raise CLIError(f"--device {name}: {one_line(error)}") from None
    return str(device)


def parse_int_list(text: str | None, flag: str) -> list[int] | None:
    if text is None:
        return None
    try:
        values = [int(part) for part in text.replace(" ", "").split(",") if part != ""]
    except ValueError:
        raise CLIError(f"{flag} must be comma-separated integers such as 0,1,9; got {text!r}.") from None
    if not values:
        raise CLIError(f"{flag} is empty; pass comma-separated integers such as 0,1,9.")
    return values


def parse_options(items: Sequence[str] | None) -> dict[str, Any]:
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


def hub_url(commit_or_url) -> str:
    """The URL of a pushed repository as huggingface_hub returned it (so on the endpoint in use, `HF_ENDPOINT`)."""
    return str(getattr(commit_or_url, "repo_url", commit_or_url))
