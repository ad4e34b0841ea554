"""The one training loop every arm uses: AdamW, linear warm-up then cosine to 0 over a fixed number of steps,
gradient clipping, batches drawn from reshuffled passes over the training set, and evaluations of validation and
test at fixed steps. Training time is counted in CPU-seconds of the (single-threaded) worker, evaluations excluded.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F

from .data import norm


@torch.no_grad()
def accuracy(model, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> float:
    was_training = model.training
    model.eval()
    correct = 0
    for i in range(0, len(y), batch_size):
        correct += int(
            (model(pixel_values=norm(x[i : i + batch_size])).logits.argmax(-1) == y[i : i + batch_size]).sum()
        )
    model.train(was_training)
    return correct / len(y)


def cosine(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def eval_steps(steps: int, evaluations: int) -> list[int]:
    """The steps after which a run evaluates: evenly spaced, the last one at the end."""
    return sorted({max(1, round(steps * (i + 1) / evaluations)) for i in range(evaluations)})


def train(
    model,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    evals: dict,
    evaluations: int = 8,
    weight_decay: float = 0.05,
    warmup_fraction: float = 0.05,
    max_grad_norm: float = 1.0,
    seed: int = 0,
) -> dict:
    """Train `model` for `steps` steps; returns {"curve": [{step, cpu_seconds, loss, <eval name>: accuracy}], ...}."""
    g = torch.Generator().manual_seed(seed)
    batch_size = min(batch_size, len(y))
    passes = math.ceil(steps * batch_size / len(y))
    order = torch.cat([torch.randperm(len(y), generator=g) for _ in range(passes)])[: steps * batch_size]
    order = order.view(steps, batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    warmup = max(1, round(warmup_fraction * steps))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: cosine(s, steps, warmup))
    at = set(eval_steps(steps, evaluations))
    curve, cpu, wall = [], 0.0, 0.0
    model.train()
    for s in range(steps):
        c0, w0 = time.process_time(), time.perf_counter()
        rows = order[s]
        loss = F.cross_entropy(model(pixel_values=norm(x[rows])).logits, y[rows])
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {float(loss)} at step {s + 1}")
        loss.backward()
        if max_grad_norm:
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()
        cpu += time.process_time() - c0
        wall += time.perf_counter() - w0
        if s + 1 in at:
            point = {"step": s + 1, "cpu_seconds": round(cpu, 3), "loss": round(float(loss), 4)}
            for name, (ex, ey) in evals.items():
                point[name] = accuracy(model, ex, ey)
            curve.append(point)
    return {"curve": curve, "train_cpu_seconds": cpu, "train_wall_seconds": wall, "batch_size": batch_size}


def best_validation_point(curve: list[dict]) -> dict:
    """The earliest evaluation with the best validation accuracy (the reported point; never the best test)."""
    return curve[max(range(len(curve)), key=lambda i: (curve[i]["val"], -i))]


def plateau_gain(curve: list[dict]) -> float:
    """Best validation accuracy of the run minus the best within its first half, in points."""
    half = [p["val"] for p in curve if p["step"] <= curve[-1]["step"] / 2] or [curve[0]["val"]]
    return 100 * (max(p["val"] for p in curve) - max(half))
