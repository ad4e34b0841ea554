"""Where a training step's time goes: kernel time by category, for the descendant and transformers' ViT.

Builds the models as `bench_speed.py` does (same shapes, bf16 autocast on CUDA, fused AdamW), runs a few untimed
steps, then profiles `--steps` steps with `torch.profiler` and sums the self time of every GPU kernel (CPU operator on
CPU) into categories: matrix products, attention, LayerNorm, GELU, dtype casts and copies, other elementwise work, the
optimizer. `busy` is the kernel time per step, `step` the wall time per step while profiling; their gap is time the
GPU waited on the host.

    python benchmarks/speed/profile_step.py --device cuda --shape b --output benchmarks/speed/results/profile_gpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_speed  # noqa: E402

CATEGORIES = [
    # (category, substrings of the kernel / operator name, matched lower-case, first match wins)
    ("attention", ("flash", "fmha", "attention", "sdpa", "softmax")),
    ("optimizer", ("adam", "multi_tensor", "foreach")),
    ("layer_norm", ("layer_norm", "layernorm", "gammabeta")),  # GammaBetaBackward: LayerNorm's weight/bias grads
    ("gelu", ("gelu",)),
    ("matmul", ("gemm", "nvjet", "cutlass", "xmma", "cublas", "sm90_", "aten::mm", "aten::addmm", "aten::bmm")),
    ("cast_copy", ("copy", "_to_copy", "convert", "cat")),
]


def category(name: str) -> str:
    lowered = name.lower()
    for label, keys in CATEGORIES:
        if any(key in lowered for key in keys):
            return label
    return "other_elementwise"


def self_time_us(event) -> float:
    for attribute in ("self_device_time_total", "self_cuda_time_total"):
        value = getattr(event, attribute, None)
        if value:
            return float(value)
    return 0.0


def profile_variant(variant, x, y, args, steps: int) -> dict:
    for _ in range(3):
        bench_speed.train_step(variant, x, y, args)
    bench_speed.sync(args.device_type)
    on_cuda = args.device_type == "cuda"
    activities = [ProfilerActivity.CUDA] if on_cuda else [ProfilerActivity.CPU]
    with profile(activities=activities) as prof:
        start = time.perf_counter()
        for _ in range(steps):
            bench_speed.train_step(variant, x, y, args)
        bench_speed.sync(args.device_type)
        wall = (time.perf_counter() - start) / steps
    totals: dict[str, float] = {}
    top: list[tuple[float, str]] = []
    for event in prof.key_averages():
        if on_cuda:
            if event.device_type != torch.autograd.DeviceType.CUDA:
                continue
            micros = self_time_us(event)
        else:
            if not event.key.startswith("aten::"):
                continue
            micros = float(event.self_cpu_time_total)
        totals[category(event.key)] = totals.get(category(event.key), 0.0) + micros / steps / 1e3
        top.append((micros / steps / 1e3, event.key))
    busy = sum(totals.values())
    top.sort(reverse=True)
    return {
        "step_ms": wall * 1e3,
        "busy_ms": busy,
        "categories_ms": dict(sorted(totals.items(), key=lambda kv: -kv[1])),
        "top_kernels_ms": [[round(ms, 3), name[:160]] for ms, name in top[:12]],
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--shape", default="b", choices=list(bench_speed.SHAPES))
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--output", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    bench_args = bench_speed.parse_args(["--device", args.device, "--shapes", args.shape, "--no-timm"])
    shape = bench_speed.SHAPES[args.shape]
    batch = args.batch_size or bench_speed.DEFAULT_BATCH[bench_args.device_type][args.shape]
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, shape["image_size"], shape["image_size"], generator=generator).to(args.device)
    y = torch.randint(0, bench_speed.NUM_LABELS, (batch,), generator=generator).to(args.device)
    variants = [
        v for v in bench_speed.build_variants(shape, shape["image_size"], bench_args, False) if not v.forward_kwargs
    ]
    results = {"shape": args.shape, "batch_size": batch, "dtype": bench_args.dtype, "device": args.device, "models": {}}
    for variant in variants:
        row = profile_variant(variant, x, y, bench_args, args.steps)
        results["models"][variant.name] = row
        print(
            f"\n[{variant.name}, {args.shape}, batch {batch}] "
            f"step {row['step_ms']:.1f} ms, busy {row['busy_ms']:.1f} ms"
        )
        for name, ms in row["categories_ms"].items():
            print(f"  {name:18s} {ms:8.2f} ms  {ms / row['busy_ms']:6.1%}")
        for ms, name in row["top_kernels_ms"][:6]:
            print(f"    {ms:8.2f} ms  {name[:110]}")
    if args.output:
        os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
        with open(args.output, "w") as handle:
            json.dump(results, handle, indent=2)
    return results


if __name__ == "__main__":
    main()
