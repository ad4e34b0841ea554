"""Small helpers every part of the package shares: the device, the compute precision, the learning-rate schedule,
the cache folder and atomic writes."""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterator

import torch

CACHE_ENV = "HF_LEARNGENE_CACHE"

_DTYPES = {
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp16": torch.float16,
    "float16": torch.float16,
    "fp32": torch.float32,
    "float32": torch.float32,
}


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """The device to compute on.

    `None` or `"auto"` picks CUDA when a GPU is visible, else Apple MPS, else the CPU. An explicit accelerator must
    exist: `"cuda"` without a visible GPU raises a `ValueError` that says so, instead of failing deep inside torch.
    """
    if device is None or (isinstance(device, str) and device.lower() == "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device.lower() if isinstance(device, str) else device)
    except (RuntimeError, TypeError):
        raise ValueError(f"Unknown device {device!r}; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'.") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r}: no CUDA GPU is visible to torch here; use 'cpu' (or 'auto').")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r}: only {torch.cuda.device_count()} CUDA device(s) are visible "
                f"(cuda:0..cuda:{torch.cuda.device_count() - 1})."
            )
    elif resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={device!r}: the Apple MPS backend is not available here; use 'cpu' (or 'auto').")
    elif resolved.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"Unsupported device {device!r}; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'.")
    return resolved


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """Compute precision: bf16 autocast on CUDA, fp32 elsewhere, unless given (`"bf16"`, `"fp16"`, `"fp32"` or a
    `torch.dtype`)."""
    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, torch.dtype):
        if dtype not in _DTYPES.values():
            raise ValueError(f"Unsupported compute dtype {dtype}; use torch.bfloat16, torch.float16 or torch.float32.")
        return dtype
    if dtype not in _DTYPES:
        raise ValueError(f"Unknown dtype={dtype!r}; use one of {sorted(_DTYPES)} or a torch.dtype.")
    return _DTYPES[dtype]


def autocast(device: torch.device, dtype: torch.dtype):
    """Autocast to `dtype` (bf16 / fp16); a no-op context for fp32. Weights stay fp32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def cosine_schedule(step: int, total: int, warmup: int = 0) -> float:
    """Learning-rate multiplier at `step` of `total`: linear warm-up over `warmup` steps, then a cosine decay to 0.

    The one schedule every hand-written loop of the package uses (transformers' `get_cosine_schedule_with_warmup`
    has the same shape); use it with `torch.optim.lr_scheduler.LambdaLR` or multiply a base rate by it.
    """
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def is_hub_id(name: str | None) -> bool:
    """Whether `name` reads as a Hub repository id (`name` or `org/name`) rather than a local path."""
    if not name or name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1:
        return False
    return re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?", name) is not None


def default_cache_dir() -> str:
    """`$HF_LEARNGENE_CACHE`, else `$HF_HOME/hf_learngene` (`~/.cache/huggingface/hf_learngene`)."""
    if os.environ.get(CACHE_ENV):
        return os.environ[CACHE_ENV]
    from huggingface_hub import constants

    return os.path.join(constants.HF_HOME, "hf_learngene")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_orphans(parent: str, name: str) -> None:
    """Clean up after earlier writes to `name` whose process is gone (killed mid-write): a previous folder moved aside
    but never replaced goes back in place; scratch folders are removed."""
    target = os.path.join(parent, name)
    for entry in sorted(os.listdir(parent)):
        match = re.fullmatch(rf"\.(tmp|old)-{re.escape(name)}-(\d+)-[^/]+", entry)
        if not match or _pid_alive(int(match.group(2))):
            continue
        orphan = os.path.join(parent, entry)
        previous = os.path.join(orphan, "previous")
        if match.group(1) == "old" and os.path.isdir(previous) and not os.path.exists(target):
            os.replace(previous, target)
        shutil.rmtree(orphan, ignore_errors=True)


@contextlib.contextmanager
def atomic_folder(target: str | os.PathLike, *, replace: bool = False) -> Iterator[str]:
    """Write a folder all at once: yields a fresh temporary folder beside `target`; when the block ends without an
    error it takes `target`'s place with a rename (the old folder, with `replace=True`, is moved aside first and
    deleted only after the new one is in place). On an error `target` is left as it was and the temporary folder is
    removed. A kill leaves `target` as it was (or, in the instant between the two renames, the old folder under a
    `.old-` name beside it); the next write to the same target removes such leftovers.
    """
    target = os.path.abspath(os.fspath(target))
    parent, name = os.path.split(target)
    os.makedirs(parent, exist_ok=True)
    if os.path.exists(target) and not replace:
        raise FileExistsError(f"{target} exists; pass replace=True to replace it.")
    _remove_orphans(parent, name)
    scratch = tempfile.mkdtemp(prefix=f".tmp-{name}-{os.getpid()}-", dir=parent)
    try:
        yield scratch
        if os.path.exists(target):
            old = tempfile.mkdtemp(prefix=f".old-{name}-{os.getpid()}-", dir=parent)
            os.replace(target, os.path.join(old, "previous"))
            os.replace(scratch, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(scratch, target)
    finally:
        if os.path.isdir(scratch):
            shutil.rmtree(scratch, ignore_errors=True)


__all__ = [
    "atomic_folder",
    "autocast",
    "cosine_schedule",
    "default_cache_dir",
    "is_hub_id",
    "resolve_device",
    "resolve_dtype",
]
