"""The `hf-learngene` command line: condense a learngene, grow and train a descendant, evaluate, inspect, and run the
offline demo.

One module per subcommand (`condense`, `inherit`, `evaluate`, `info`, `demo`), each adding its own parser; shared
pieces in `arguments` (checked values, option groups also used by the Accelerate example loop), `common` (errors,
output), `datasets` (`--dataset`, `--split`, `--test-size`) and `run_folder` (atomic training outputs).

Conventions of every subcommand: `--quiet`, `--json [FILE]` and `--verbose`; help texts show defaults; values are
checked at parse time; one clear error line on stderr, exit code 2 when the arguments or the input cannot be used
(a missing file, folder or Hub repository, an unreadable image, a bad value) and 1 for any other failure;
`--verbose` shows the traceback. Commands that write a folder write it beside the target and rename it into place,
so a failed command leaves nothing behind. Run it as `hf-learngene`, `python -m hf_learngene.cli`, or under
`accelerate launch` / `torchrun` (training uses every process started).
"""

from __future__ import annotations

from .common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, CLIError, resolve_device
from .datasets import OFFLINE_DATASETS, OFFLINE_PREFIX, load_dataset_arg, load_offline_dataset
from .info import describe
from .main import build_parser, main

__all__ = [
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_USAGE",
    "OFFLINE_DATASETS",
    "OFFLINE_PREFIX",
    "CLIError",
    "build_parser",
    "describe",
    "load_dataset_arg",
    "load_offline_dataset",
    "main",
    "resolve_device",
]
