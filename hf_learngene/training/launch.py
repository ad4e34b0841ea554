"""Checks that a training run got the processes and the parallelism its launcher asked for.

Three ways a launch silently does something else than asked (all seen with accelerate 1.15 on CPU machines):

- `accelerate launch --cpu --num_processes 2` (or a `MULTI_CPU` config without mpirun) starts ONE process: its simple
  launcher sets `MASTER_ADDR`/`MASTER_PORT` for the processes it did not start. -> a loud warning.
- `torchrun` / `accelerate launch --multi_gpu` starts N processes on a machine without GPUs, and each trains alone
  unless told to use the CPU (`--device cpu`, `use_cpu=True`, `ACCELERATE_USE_CPU=1`). -> an error.
- An FSDP or DeepSpeed config (`ACCELERATE_USE_FSDP` / `ACCELERATE_USE_DEEPSPEED`) with the CPU: accelerate runs FSDP
  and DeepSpeed on accelerators only and quietly falls back to DDP. -> an error.
"""

from __future__ import annotations

import os
import warnings

_WORLD_SIZE_VARIABLES = ("WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE")


class LaunchError(ValueError):
    """The processes or the parallelism a run got are not those its launcher asked for."""


def launched_world_size() -> int | None:
    """The number of processes the launcher says it started (torchrun, mpirun), or None without a launcher."""
    for name in _WORLD_SIZE_VARIABLES:
        value = os.environ.get(name)
        if value and value.isdigit():
            return int(value)
    return None


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


def check_sharding_device(device: str) -> None:
    """Refuse at once (before any work) an FSDP or DeepSpeed launch config combined with the CPU, which accelerate
    would run as plain DDP; [`check_launch`] checks the same once the run is set up."""
    if str(device).split(":")[0] != "cpu":
        return
    for flag, name in (("ACCELERATE_USE_FSDP", "FSDP"), ("ACCELERATE_USE_DEEPSPEED", "DeepSpeed")):
        if _flag(flag):
            raise LaunchError(
                f"The launch config asks for {name} but the run is on the CPU: accelerate runs {name} on GPUs only "
                "and would silently train with DDP. Drop the config (DDP on CPUs: `accelerate launch --multi_gpu "
                "--num_processes N ... --device cpu`), or run on GPUs."
            )


def check_launch(num_processes: int, distributed_type: str, *, device_hint: str = "--device cpu") -> None:
    """Raise [`LaunchError`] (or warn) when the run does not use what the launch asked for (see the module docstring).

    Args:
        num_processes (`int`): processes training together (`accelerator.num_processes`, `args.world_size`).
        distributed_type (`str`): accelerate's `DistributedType` of the run (`"FSDP"`, `"MULTI_CPU"`, ...).
        device_hint (`str`): how the user forces the CPU, for the messages.
    """
    distributed_type = str(getattr(distributed_type, "value", distributed_type)).upper()
    launched = launched_world_size()
    if launched is not None and launched != num_processes:
        raise LaunchError(
            f"The launcher started {launched} processes but they train as {num_processes}: each would train its own "
            f"copy. On a machine without GPUs pass {device_hint} (or set ACCELERATE_USE_CPU=1) so that they train "
            "together over gloo."
        )
    if _flag("ACCELERATE_USE_FSDP") and distributed_type != "FSDP":
        raise LaunchError(
            f"The launch config asks for FSDP but the run is {distributed_type}: accelerate runs FSDP on GPUs only and "
            "would silently fall back to DDP on the CPU. Drop the FSDP config (DDP: `accelerate launch --multi_gpu`), "
            "or run on GPUs."
        )
    if _flag("ACCELERATE_USE_DEEPSPEED") and distributed_type != "DEEPSPEED":
        raise LaunchError(
            f"The launch config asks for DeepSpeed but the run is {distributed_type}: DeepSpeed needs GPUs (and the "
            "deepspeed package). Drop the DeepSpeed config, or run on GPUs."
        )
    if launched is None and num_processes == 1 and os.environ.get("MASTER_PORT"):
        warnings.warn(
            "WARNING: the launcher asked for several processes but started only this one (accelerate's simple "
            "launcher does so for `--cpu --num_processes N` and MULTI_CPU configs without mpirun). Training runs in "
            f"ONE process. For N CPU processes use `accelerate launch --multi_gpu --num_processes N ... {device_hint}` "
            "or `torchrun --nproc-per-node N`.",
            stacklevel=2,
        )


__all__ = ["LaunchError", "check_launch", "check_sharding_device", "launched_world_size"]
