"""Speed benchmark: hf_learngene descendants against transformers' ViT (and timm's, when importable) of the same shape.

One process measures every model *interleaved*: each repetition runs one training step of every model in turn (the
order alternates between repetitions), so a slowdown from other work on the machine hits all models alike. Ratios
are the median over repetitions of the per-repetition ratio `time(transformers) / time(model)`; step times are
medians. Also measured: inference (forward only), `interpolate_pos_encoding=True` at the native size, peak CUDA
memory, FLOPs per training step (`torch.utils.flop_counter.FlopCounterMode`) and MFU against a measured matmul peak,
`from_pretrained` load time of a learngene and a descendant, and `condense` wall time per method.

Needs torch and transformers only (plus hf_learngene, whose top-level import does not pull `datasets`/`evaluate`);
timm and scikit-learn are used when importable.

    python benchmarks/speed/bench_speed.py                                  # CPU: the 6-layer width-192 32 px shape
    python benchmarks/speed/bench_speed.py --shapes ref,ti --threads 1
    python benchmarks/speed/bench_speed.py --device cuda --shapes ti,s,b --compile \
        --output benchmarks/speed/results/speed_gpu
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
import transformers
from torch.utils.flop_counter import FlopCounterMode
from transformers import ViTConfig, ViTForImageClassification, ViTModel

import hf_learngene
from hf_learngene import CONDENSING_METHODS, DescendantForImageClassification, LearngeneConfig, LearngeneModel, condense

SHAPES = {
    # The issue's CPU reference: 6 layers, width 192, 32 px images in 4 px patches (65 tokens).
    "ref": dict(layers=6, hidden=192, heads=3, mlp=768, image_size=32, patch_size=4),
    "ti": dict(layers=12, hidden=192, heads=3, mlp=768, image_size=224, patch_size=16),
    "s": dict(layers=12, hidden=384, heads=6, mlp=1536, image_size=224, patch_size=16),
    "b": dict(layers=12, hidden=768, heads=12, mlp=3072, image_size=224, patch_size=16),
}
DEFAULT_BATCH = {"cpu": {"ref": 64, "ti": 16, "s": 8, "b": 4}, "cuda": {"ref": 256, "ti": 256, "s": 256, "b": 256}}
NUM_LABELS = 10
BASELINE = "transformers"

GPU_COMMAND = (
    "python benchmarks/speed/bench_speed.py --device cuda --shapes ti,s,b --compile "
    "--output benchmarks/speed/results/speed_gpu"
)
# What the issue asks for: (key, description, threshold, what would close the gap when a run misses it).
TARGETS = [
    (
        "cpu_train",
        "CPU fp32 training step, descendant vs transformers' ViT (ref shape)",
        1.05,
        "profile one step (torch.profiler): the layer code matches transformers' op for op except the fused QKV "
        "GEMM, so the margin comes from the CLS-only last layer; a deeper model dilutes it (1/depth of the work)",
    ),
    (
        "gpu_train_s",
        "GPU bf16 training step, descendant vs transformers' ViT (S shape)",
        1.15,
        "check the profile for the SDPA kernel chosen (flash expected) and CPU-side launch gaps; torch.compile "
        "(fused LayerNorm/GELU/residual kernels) and CUDA graphs (mode='reduce-overhead') close launch-bound gaps",
    ),
    (
        "gpu_train_b",
        "GPU bf16 training step, descendant vs transformers' ViT (B shape)",
        1.15,
        "at B the step is GEMM-bound and both models run the same GEMMs: the CLS-only last layer gives ~1/12; "
        "more needs compiled fusion of the elementwise work",
    ),
    (
        "gpu_mfu_b",
        "GPU bf16 MFU of the descendant (B shape)",
        0.45,
        "matrix products are only ~40% of the step's kernel time (benchmarks/speed/profile_step.py: the rest is fp32 "
        "residual adds, dtype casts, LayerNorm, GELU and bias-gradient reductions around them under autocast); fusing "
        "that work is what closes it: torch.compile does part of it{compiled}; GEMM epilogues "
        "(bias + GELU), fused LayerNorm + cast and CUDA graphs would go further",
    ),
]


@dataclass
class Variant:
    name: str
    model: torch.nn.Module
    kind: str  # "hf" (transformers-style output with .loss) or "timm" (returns logits)
    forward_kwargs: dict = field(default_factory=dict)
    optimizer: torch.optim.Optimizer | None = None
    times: list[float] = field(default_factory=list)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--shapes", default=None, help="comma list of " + ", ".join(SHAPES) + " (default: ref on CPU, ti,s,b on CUDA)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=None, help="default per shape and device: " + str(DEFAULT_BATCH)
    )
    parser.add_argument("--image-size", type=int, default=None, help="override the shape's image size")
    parser.add_argument("--steps", type=int, default=None, help="timed repetitions per model (default 30 CPU, 50 CUDA)")
    parser.add_argument(
        "--warmup", type=int, default=None, help="untimed steps per model first (default 2 CPU, 10 CUDA)"
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default=None, help="bf16 = autocast (default on CUDA)")
    parser.add_argument(
        "--layout",
        choices=["all", "mix"],
        default="mix",
        help="descendant layout: all inherited (L...L) or half new layers interleaved (LLRR...)",
    )
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile'd models")
    parser.add_argument(
        "--compiled-only", action="store_true", help="measure only the torch.compile'd models (implies --compile)"
    )
    parser.add_argument("--compile-shapes", default=None, help="with --compile: only these shapes (default: all)")
    parser.add_argument("--no-inference", action="store_true", help="skip the forward-only measurements")
    parser.add_argument("--no-timm", action="store_true", help="leave timm out even when importable")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="matmul peak for MFU (default: measured)")
    parser.add_argument("--skip-load", action="store_true", help="skip the from_pretrained load-time measurement")
    parser.add_argument("--skip-condense", action="store_true", help="skip the condense wall-time measurement")
    parser.add_argument(
        "--condense-shape",
        default="digits",
        help="ancestor of the condense timing: 'digits' (12-layer width-64, 512 sklearn digits) or a shape of --shapes "
        "(random 224 px images: the cost does not depend on the pixels)",
    )
    parser.add_argument("--condense-images", type=int, default=512, help="condensing-set size (default 512)")
    parser.add_argument("--condense-epochs", type=int, default=1, help="condensing epochs (default 1)")
    parser.add_argument("--condense-batch-size", type=int, default=64, help="condensing batch size (default 64)")
    parser.add_argument(
        "--condense-methods",
        default=None,
        help="comma list of condensing methods, each optionally with its own epochs as METHOD:EPOCHS "
        "(default: all registered, --condense-epochs each)",
    )
    parser.add_argument(
        "--append",
        action="store_true",
        help="merge into OUTPUT.json when it exists (shapes, modes and sections this run measures replace theirs)",
    )
    parser.add_argument("--output", default="benchmarks/speed/results/speed", help="writes OUTPUT.json and OUTPUT.md")
    parser.add_argument("--render", metavar="JSON", help="rewrite the markdown (and --note) of a JSON written earlier")
    parser.add_argument(
        "--note", default=None, help="free text on the conditions of the run, kept in JSON and markdown"
    )
    parser.add_argument(
        "--targets-from",
        nargs="*",
        default=[],
        metavar="JSON",
        help="with --render: also take the targets these runs measured (e.g. the GPU run beside the CPU run)",
    )
    args = parser.parse_args(argv)
    args.device_type = torch.device(args.device).type
    on_cuda = args.device_type == "cuda"
    args.shapes = (args.shapes or ("ti,s,b" if on_cuda else "ref")).split(",")
    if args.shapes == ["none"]:
        args.shapes = []
    unknown = [s for s in args.shapes if s not in SHAPES]
    if unknown:
        parser.error(f"unknown shape(s) {unknown}; choose from {list(SHAPES)}")
    if args.condense_shape != "digits" and args.condense_shape not in SHAPES:
        parser.error(f"unknown --condense-shape {args.condense_shape!r}; choose 'digits' or one of {list(SHAPES)}")
    args.compile = args.compile or args.compiled_only
    args.dtype = args.dtype or ("bf16" if on_cuda else "fp32")
    args.steps = args.steps or (50 if on_cuda else 30)
    args.warmup = args.warmup if args.warmup is not None else (10 if on_cuda else 2)
    return args


def sync(device_type: str) -> None:
    if device_type == "cuda":
        torch.cuda.synchronize()


def autocast(args):
    if args.dtype == "bf16":
        return torch.autocast(args.device_type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def vit_config(shape: dict, image_size: int) -> ViTConfig:
    return ViTConfig(
        hidden_size=shape["hidden"],
        num_hidden_layers=shape["layers"],
        num_attention_heads=shape["heads"],
        intermediate_size=shape["mlp"],
        image_size=image_size,
        patch_size=shape["patch_size"],
        num_labels=NUM_LABELS,
    )


def descendant_layout(depth: int, layout: str) -> str:
    if layout == "all":
        return "L" * depth
    return ("LLRR" * depth)[:depth]


def learngene_config(shape: dict, image_size: int, layout: str) -> LearngeneConfig:
    return LearngeneConfig(
        hidden_size=shape["hidden"],
        num_attention_heads=shape["heads"],
        intermediate_size=shape["mlp"],
        image_size=image_size,
        patch_size=shape["patch_size"],
        layer_indices=list(range(layout.count("L"))),
        ancestor_num_layers=shape["layers"],
        layout=layout,
        num_labels=NUM_LABELS,
    )


def timm_model(shape: dict, image_size: int):
    try:
        from timm.models.vision_transformer import VisionTransformer
    except ImportError:
        return None
    return VisionTransformer(
        img_size=image_size,
        patch_size=shape["patch_size"],
        num_classes=NUM_LABELS,
        embed_dim=shape["hidden"],
        depth=shape["layers"],
        num_heads=shape["heads"],
        mlp_ratio=shape["mlp"] / shape["hidden"],
        qkv_bias=True,
    )


def make_optimizer(model: torch.nn.Module) -> torch.optim.Optimizer:
    # The Trainer's default on torch >= 2.8 is fused AdamW, on CPU as well as CUDA.
    try:
        return torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.AdamW(model.parameters(), lr=1e-4)


def loss_of(variant: Variant, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if variant.kind == "timm":
        return F.cross_entropy(variant.model(x).float(), y)
    return variant.model(pixel_values=x, labels=y, **variant.forward_kwargs).loss


def train_step(variant: Variant, x, y, args) -> None:
    with autocast(args):
        loss = loss_of(variant, x, y)
    loss.backward()
    variant.optimizer.step()
    variant.optimizer.zero_grad(set_to_none=True)


def infer_step(variant: Variant, x, args) -> None:
    with torch.inference_mode(), autocast(args):
        if variant.kind == "timm":
            variant.model(x)
        else:
            variant.model(pixel_values=x, **variant.forward_kwargs)


def interleaved(variants: list[Variant], run, steps: int, warmup: int, device_type: str) -> None:
    for variant in variants:
        variant.times = []
        for _ in range(warmup):
            run(variant)
    sync(device_type)
    for rep in range(steps):
        # Alternate the order so that no model always runs right after the same neighbour.
        for variant in variants if rep % 2 == 0 else variants[::-1]:
            sync(device_type)
            start = time.perf_counter()
            run(variant)
            sync(device_type)
            variant.times.append(time.perf_counter() - start)


def training_flops(variant: Variant, x, y, args) -> int:
    counter = FlopCounterMode(display=False)
    with counter:
        with autocast(args):
            loss = loss_of(variant, x, y)
        loss.backward()
    variant.optimizer.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def peak_memory(variant: Variant, x, y, args) -> float | None:
    if args.device_type != "cuda":
        return None
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    train_step(variant, x, y, args)
    sync(args.device_type)
    return torch.cuda.max_memory_allocated() / 2**20


def measured_peak_tflops(args) -> float:
    """Best matmul throughput seen (TFLOP/s) in the benchmark dtype: the roof MFU is measured against."""
    n = 8192 if args.device_type == "cuda" else 1024
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    a = torch.randn(n, n, device=args.device, dtype=dtype)
    b = torch.randn(n, n, device=args.device, dtype=dtype)
    best = float("inf")
    for _ in range(3):
        a @ b
    for _ in range(20):
        sync(args.device_type)
        start = time.perf_counter()
        a @ b
        sync(args.device_type)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e12


def summarise(variants: list[Variant], baseline: Variant) -> dict[str, dict]:
    rows = {}
    for variant in variants:
        ratios = sorted(b / t for b, t in zip(baseline.times, variant.times, strict=True))
        quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
        rows[variant.name] = {
            "median_step_ms": statistics.median(variant.times) * 1e3,
            "ratio_vs_transformers": statistics.median(ratios),
            "ratio_q1": quartiles[0],
            "ratio_q3": quartiles[2],
            "repetitions": len(variant.times),
        }
    return rows


def build_variants(shape: dict, image_size: int, args, compiled: bool) -> list[Variant]:
    torch.manual_seed(0)
    layout = descendant_layout(shape["layers"], args.layout)
    hf = ViTForImageClassification(vit_config(shape, image_size))
    ours = DescendantForImageClassification(learngene_config(shape, image_size, layout))
    variants = [Variant(BASELINE, hf, "hf"), Variant("descendant", ours, "hf")]
    if not compiled:
        # Asking for every hidden state makes the descendant run its last layer on every token, as transformers
        # does: this row separates the layer code from the CLS-only last layer.
        variants.append(Variant("descendant (full last layer)", ours, "hf", {"output_hidden_states": True}))
    timm = None if args.no_timm else timm_model(shape, image_size)
    if timm is not None:
        variants.append(Variant("timm", timm, "timm"))
    for variant in variants:
        variant.model.to(args.device).train()
        variant.optimizer = make_optimizer(variant.model)
    if compiled:
        for variant in variants:
            variant.model = torch.compile(variant.model, fullgraph=True)
    return variants


def bench_shape(name: str, args, peak: float) -> dict:
    shape = SHAPES[name]
    image_size = args.image_size or shape["image_size"]
    batch = args.batch_size or DEFAULT_BATCH[args.device_type][name]
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, image_size, image_size, generator=generator).to(args.device)
    y = torch.randint(0, NUM_LABELS, (batch,), generator=generator).to(args.device)
    result = {"shape": {**shape, "image_size": image_size}, "batch_size": batch, "modes": {}}
    flops = {}
    compile_shapes = args.shapes if args.compile_shapes is None else args.compile_shapes.split(",")
    modes = [False, True] if args.compile and name in compile_shapes else [False]
    if args.compiled_only:
        modes = [True] if name in compile_shapes else []
    for compiled in modes:
        mode = "compiled" if compiled else "eager"
        variants = build_variants(shape, image_size, args, compiled)
        start = time.perf_counter()
        train_step(variants[0], x, y, args)  # compiles on first call when compiled
        for variant in variants[1:]:
            train_step(variant, x, y, args)
        setup_s = time.perf_counter() - start
        if not flops:
            # FlopCounterMode cannot run inside a compiled graph: count the eager models' FLOPs (the same work).
            counted = build_variants(shape, image_size, args, False) if compiled else variants
            flops = {v.name: training_flops(v, x, y, args) for v in counted}
            del counted
        memory = {v.name: peak_memory(v, x, y, args) for v in variants}
        interleaved(variants, lambda v: train_step(v, x, y, args), args.steps, args.warmup, args.device_type)
        rows = summarise(variants, variants[0])
        for variant in variants:
            row = rows[variant.name]
            step_s = row["median_step_ms"] / 1e3
            row["images_per_s"] = batch / step_s
            row["train_flops_per_step"] = flops.get(variant.name)
            row["mfu"] = flops[variant.name] / step_s / (peak * 1e12) if variant.name in flops else None
            row["peak_memory_mib"] = memory[variant.name]
        entry = {"train": rows, "first_steps_s": setup_s}
        if not args.no_inference:
            for variant in variants:
                variant.model.eval()
            infer = [v for v in variants if not v.forward_kwargs]
            if not compiled:
                infer.append(
                    Variant(
                        "descendant interpolate_pos_encoding=True",
                        variants[1].model,
                        "hf",
                        {"interpolate_pos_encoding": True},
                    )
                )
            interleaved(infer, lambda v: infer_step(v, x, args), args.steps, args.warmup, args.device_type)
            rows = summarise(infer, infer[0])
            for row in rows.values():
                row["images_per_s"] = batch / (row["median_step_ms"] / 1e3)
            entry["inference"] = rows
        result["modes"][mode] = entry
        print_mode(name, mode, batch, entry)
        del variants
        if args.device_type == "cuda":
            torch.cuda.empty_cache()
    return result


def print_mode(shape: str, mode: str, batch: int, entry: dict) -> None:
    print(f"\n[{shape}, batch {batch}, {mode}]")
    for task in ("train", "inference"):
        for model, row in entry.get(task, {}).items():
            extra = ""
            if task == "train":
                mem = row["peak_memory_mib"]
                if row["mfu"] is not None:
                    extra = f"  GFLOP/step {row['train_flops_per_step'] / 1e9:8.1f}  MFU {row['mfu']:.3f}"
                extra += f"  peak {mem:8.0f} MiB" if mem is not None else ""
            print(
                f"  {task:9s} {model:42s} {row['median_step_ms']:9.1f} ms  {row['images_per_s']:9.1f} img/s  "
                f"x{row['ratio_vs_transformers']:.3f} [{row['ratio_q1']:.3f}, {row['ratio_q3']:.3f}]{extra}"
            )


def bench_load(args, shape_name: str) -> dict:
    """Median `from_pretrained` time (CPU, safetensors) of a learngene and of a descendant grown from it."""
    shape = SHAPES[shape_name]
    layout = descendant_layout(shape["layers"], args.layout)
    config = learngene_config(shape, shape["image_size"], layout)
    config.layout = None
    times = {"learngene": [], "descendant": []}
    with tempfile.TemporaryDirectory() as folder:
        LearngeneModel(config).save_pretrained(folder)
        size = os.path.getsize(os.path.join(folder, "model.safetensors"))
        for _ in range(5):
            start = time.perf_counter()
            LearngeneModel.from_pretrained(folder)
            times["learngene"].append(time.perf_counter() - start)
            start = time.perf_counter()
            DescendantForImageClassification.from_pretrained(folder, num_labels=NUM_LABELS, layout=layout)
            times["descendant"].append(time.perf_counter() - start)
    result = {
        "shape": shape_name,
        "learngene_layers": layout.count("L"),
        "layout": layout,
        "safetensors_mib": size / 2**20,
        **{f"{k}_load_s": statistics.median(v) for k, v in times.items()},
    }
    print(
        f"\n[load, {shape_name}] learngene of {result['learngene_layers']} layers "
        f"({result['safetensors_mib']:.1f} MiB): "
        f"{result['learngene_load_s']:.3f} s; descendant {layout}: {result['descendant_load_s']:.3f} s"
    )
    return result


def digits_loader():
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        return None
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 8.0 - 1.0  # 0..16 -> -1..1
    labels = torch.tensor(digits.target)
    dataset = torch.utils.data.TensorDataset(images[:512], labels[:512])
    return torch.utils.data.DataLoader(dataset, batch_size=64)


def random_loader(shape: dict, images: int, batch_size: int, num_labels: int = NUM_LABELS):
    """Random 3-channel images at the shape's size with balanced labels (condensing cost does not depend on pixels)."""
    generator = torch.Generator().manual_seed(0)
    size = shape["image_size"]
    pixels = torch.randn(images, 3, size, size, generator=generator)
    labels = torch.arange(images) % num_labels
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(pixels, labels), batch_size=batch_size)


def bench_condense(args) -> dict:
    """Wall time of `condense` per method: on an in-memory 12-layer width-64 ancestor with sklearn digits (default),
    or on a randomly initialised ancestor of one of `SHAPES` with random images (`--condense-shape`)."""
    torch.manual_seed(0)
    if args.condense_shape == "digits":
        geometry = dict(hidden_size=64, num_hidden_layers=12, num_attention_heads=4, intermediate_size=128)
        ancestor = ViTModel(ViTConfig(**geometry, image_size=8, patch_size=2, num_channels=1), add_pooling_layer=False)
        loader, manual_layers = digits_loader(), [0, 1, 8, 9, 10, 11]
        details = (
            "12-layer width-64 ViTModel (random), 8x8 1-channel; data-driven methods: 512 sklearn digits, batch 64"
        )
    else:
        shape = SHAPES[args.condense_shape]
        ancestor = ViTModel(vit_config(shape, shape["image_size"]), add_pooling_layer=False)
        loader = random_loader(shape, args.condense_images, args.condense_batch_size)
        manual_layers = list(range(shape["layers"] // 2))
        details = (
            f"{shape['layers']}-layer width-{shape['hidden']} ViTModel (random), {shape['image_size']} px / patch "
            f"{shape['patch_size']}; data-driven methods: {args.condense_images} random images, batch "
            f"{args.condense_batch_size}, {NUM_LABELS} labels"
        )
    details += f", default dtype ({'bf16 autocast' if args.device_type == 'cuda' else 'fp32'})"
    ancestor.eval()
    results = {}
    for method, spec, epochs in selected_methods(args):
        kwargs = {"layers": manual_layers} if method == "manual" else {"num_layers": len(manual_layers)}
        if spec.needs_data:
            if loader is None:
                results[method] = {"skipped": "scikit-learn (digits) not importable"}
                continue
            kwargs.update(condense_dataset=loader, epochs=epochs, quiet=True, device=args.device)
        if args.device_type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        learngene = condense(ancestor, method=method, **kwargs)
        sync(args.device_type)
        row = {"wall_s": time.perf_counter() - start, "layers": learngene.config.layer_indices}
        if spec.needs_data:
            row["epochs"] = epochs
            if args.device_type == "cuda":
                row["peak_memory_mib"] = torch.cuda.max_memory_allocated() / 2**20
        results[method] = row
        epochs_note = f"  {epochs} epoch(s)" if spec.needs_data else ""
        memory = f"  peak {row['peak_memory_mib']:.0f} MiB" if "peak_memory_mib" in row else ""
        print(
            f"[condense] {method:10s} {row['wall_s']:8.2f} s{epochs_note}  layers {row['layers']}{memory}", flush=True
        )
    return {"ancestor": details, "methods": results}


def selected_methods(args) -> list[tuple[str, object, int]]:
    """(method, its registry entry, epochs) for each method asked for."""
    if args.condense_methods is None:
        return [(m, CONDENSING_METHODS[m], args.condense_epochs) for m in sorted(CONDENSING_METHODS)]
    selected = []
    for item in args.condense_methods.split(","):
        name, _, epochs = item.partition(":")
        if name not in CONDENSING_METHODS:
            raise SystemExit(f"unknown condensing method {name!r}; choose from {sorted(CONDENSING_METHODS)}")
        selected.append((name, CONDENSING_METHODS[name], int(epochs) if epochs else args.condense_epochs))
    return selected


def target_rows(results: dict) -> list[dict]:
    """The issue's targets against this run's measurements (None where this run cannot measure one)."""

    def descendant(shape: str) -> dict | None:
        return results["shapes"].get(shape, {}).get("modes", {}).get("eager", {}).get("train", {}).get("descendant")

    on_cuda = results["device"].startswith("cuda")
    measured = {}
    if not on_cuda and results["dtype"] == "fp32" and descendant("ref"):
        measured["cpu_train"] = descendant("ref")["ratio_vs_transformers"]
    if on_cuda and results["dtype"] == "bf16":
        for shape in ("s", "b"):
            if descendant(shape):
                measured[f"gpu_train_{shape}"] = descendant(shape)["ratio_vs_transformers"]
        if descendant("b"):
            measured["gpu_mfu_b"] = descendant("b")["mfu"]
    rows = []
    for key, what, threshold, hint in TARGETS:
        value = measured.get(key)
        if value is None:
            note = f"not measured by this run; on a GPU machine: `{GPU_COMMAND}`" if key.startswith("gpu") else ""
            note = note or "not measured by this run: `python benchmarks/speed/bench_speed.py --shapes ref`"
        else:
            note = "" if value >= threshold else f"missed: {hint}"
            if key == "gpu_mfu_b":
                compiled = results["shapes"].get("b", {}).get("modes", {}).get("compiled", {}).get("train", {})
                mfu = compiled.get("descendant", {}).get("mfu")
                note = note.replace("{compiled}", "" if mfu is None else f" (compiled MFU {mfu:.3f} in this run)")
        met = None if value is None else value >= threshold
        rows.append({"target": key, "what": what, "threshold": threshold, "measured": value, "met": met, "note": note})
    return rows


def merged_target_rows(results: dict, others: list[dict]) -> list[dict]:
    """The targets table over several runs: each target from the first run that measured it, with that run's
    machine."""
    merged = []
    for rows in zip(*(target_rows(r) for r in [results, *others]), strict=True):
        chosen, run = rows[0], results
        for row, candidate in zip(rows, [results, *others], strict=True):
            if row["measured"] is not None:
                chosen, run = row, candidate
                break
        merged.append({**chosen, "machine": run["environment"]["machine"] if chosen["measured"] is not None else ""})
    return merged


def markdown(results: dict, others: list[dict] | None = None) -> str:
    env = results["environment"]
    lines = [
        "# Speed: hf_learngene descendants vs transformers' ViT",
        "",
        f"Command: `{results['command']}`",
        "",
        f"Machine: {env['machine']}; torch {env['torch']}, transformers {env['transformers']}, "
        f"hf_learngene {env['hf_learngene']}, timm {env['timm']}; threads {env['threads']}; dtype {results['dtype']}; "
        f"matmul peak (measured) {results['peak_tflops']:.3f} TFLOP/s.",
        "",
        *([f"Conditions: {results['note']}", ""] if results.get("note") else []),
        "Every model of a table ran interleaved in one process (one step each in turn, order alternating). "
        "`x transformers` is the median over repetitions of time(transformers ViT) / time(model), with the "
        "interquartile range of that ratio; > 1 is faster. MFU = counted FLOPs of the model's training step / "
        "median step time / matmul peak.",
        "",
    ]
    for shape, res in results["shapes"].items():
        s = res["shape"]
        for mode, entry in res["modes"].items():
            lines += [
                f"## {shape}: {s['layers']} layers, width {s['hidden']}, {s['heads']} heads, MLP {s['mlp']}, "
                f"{s['image_size']} px / patch {s['patch_size']}, batch {res['batch_size']}, {mode}",
                "",
                "| task | model | median step (ms) | images/s | x transformers [IQR] | GFLOP/step | MFU | peak MiB |",
                "| --- | --- | ---: | ---: | --- | ---: | ---: | ---: |",
            ]
            for task in ("train", "inference"):
                for model, row in entry.get(task, {}).items():
                    flops = row.get("train_flops_per_step")
                    mem = row.get("peak_memory_mib")
                    gflops = "" if flops is None else f"{flops / 1e9:.1f}"
                    mfu = "" if flops is None else f"{row['mfu']:.3f}"
                    memory = "n/a" if mem is None else f"{mem:.0f}"
                    lines.append(
                        f"| {task} | {model} | {row['median_step_ms']:.1f} | {row['images_per_s']:.1f} | "
                        f"{row['ratio_vs_transformers']:.3f} [{row['ratio_q1']:.3f}, {row['ratio_q3']:.3f}] | "
                        f"{gflops} | {mfu} | {memory} |"
                    )
            lines.append("")
        modes = res["modes"]
        if "eager" in modes and "compiled" in modes:
            eager_hf = modes["eager"]["train"][BASELINE]["median_step_ms"]
            compiled = modes["compiled"]["train"]
            cross = ", ".join(f"{model} x{eager_hf / row['median_step_ms']:.3f}" for model, row in compiled.items())
            lines += [
                f"Compiled training against eager transformers (ratio of median step times, separate runs): {cross}.",
                "",
            ]
    if results.get("load"):
        load = results["load"]
        lines += [
            "## Loading (`from_pretrained`, safetensors, median of 5)",
            "",
            f"Learngene of {load['learngene_layers']} layers at the {load['shape']} shape "
            f"({load['safetensors_mib']:.1f} MiB): {load['learngene_load_s']:.3f} s; descendant "
            f"`{load['layout']}` from it: {load['descendant_load_s']:.3f} s.",
            "",
        ]
    if results.get("condense"):
        lines += [
            f"## `condense` wall time ({results['condense']['ancestor']})",
            "",
            "| method | epochs | wall s | layers | peak MiB |",
            "| --- | ---: | ---: | --- | ---: |",
        ]
        for method, row in results["condense"]["methods"].items():
            if "skipped" in row:
                lines.append(f"| {method} | | skipped: {row['skipped']} | | |")
            else:
                memory = f"{row['peak_memory_mib']:.0f}" if "peak_memory_mib" in row else ""
                lines.append(
                    f"| {method} | {row.get('epochs', '')} | {row['wall_s']:.2f} | {row['layers']} | {memory} |"
                )
        lines.append("")
    lines += [
        "## Targets (issue 7)",
        "",
        *(
            [f"Measured by this run and by the run(s) in {', '.join(o['_path'] for o in others)}.", ""]
            if others
            else []
        ),
        "| target | threshold | measured | met | machine | note |",
        "| --- | ---: | ---: | --- | --- | --- |",
    ]
    for row in merged_target_rows(results, others or []):
        measured = "-" if row["measured"] is None else f"{row['measured']:.3f}"
        met = "n/a" if row["met"] is None else ("yes" if row["met"] else "no")
        lines.append(f"| {row['what']} | {row['threshold']} | {measured} | {met} | {row['machine']} | {row['note']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.render:
        with open(args.render) as handle:
            results = json.load(handle)
        results["targets"] = target_rows(results)
        if args.note:
            results["note"] = args.note
            with open(args.render, "w") as handle:
                json.dump(results, handle, indent=2)
        others = []
        for path in args.targets_from:
            with open(path) as handle:
                others.append({**json.load(handle), "_path": path})
        stem = args.render.removesuffix(".json")
        with open(stem + ".md", "w") as handle:
            handle.write(markdown(results, others))
        print(f"wrote {stem}.md")
        return results
    if args.threads:
        torch.set_num_threads(args.threads)
    transformers.utils.logging.disable_progress_bar()
    try:
        import timm

        timm_version = timm.__version__
    except ImportError:
        timm_version = "not installed"
    if args.device_type == "cuda":
        machine = torch.cuda.get_device_name()
    else:
        machine = f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} logical cores"
    peak = args.peak_tflops or measured_peak_tflops(args)
    print(f"{machine}: matmul peak {peak:.3f} TFLOP/s ({args.dtype}), threads {torch.get_num_threads()}")
    command = " ".join(["python", *sys.argv])
    results = {
        "command": command,
        "environment": {
            "machine": machine,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "hf_learngene": hf_learngene.__version__,
            "timm": timm_version,
            "threads": torch.get_num_threads(),
            "python": platform.python_version(),
        },
        "note": args.note,
        "device": args.device,
        "dtype": args.dtype,
        "layout": args.layout,
        "peak_tflops": peak,
        "shapes": {},
    }
    if args.append and os.path.exists(args.output + ".json"):
        with open(args.output + ".json") as handle:
            earlier = json.load(handle)
        if earlier["device"] != results["device"] or earlier["dtype"] != results["dtype"]:
            raise SystemExit(f"--append: {args.output}.json holds a {earlier['device']} {earlier['dtype']} run")
        earlier["command"] = f"{earlier['command']}` then `{command}"
        earlier["environment"] = results["environment"]
        results = earlier
    # Written after every shape and section, so a run cut short keeps what it measured.
    for name in args.shapes:
        measured = bench_shape(name, args, peak)
        if name in results["shapes"]:
            results["shapes"][name]["modes"].update(measured["modes"])
        else:
            results["shapes"][name] = measured
        write_results(results, args.output)
    if not args.skip_load and args.shapes:
        results["load"] = bench_load(args, args.shapes[-1])
    if not args.skip_condense:
        results["condense"] = bench_condense(args)
    write_results(results, args.output)
    print(f"\nwrote {args.output}.json and {args.output}.md")
    return results


def write_results(results: dict, output: str) -> None:
    # The benchmark must run where `datasets` / `evaluate` are not installed (the GPU machine).
    results["imported_datasets_or_evaluate"] = sorted(m for m in ("datasets", "evaluate") if m in sys.modules)
    results["targets"] = target_rows(results)
    os.makedirs(os.path.dirname(output) or ".", exist_ok=True)
    for suffix, text in ((".json", json.dumps(results, indent=2)), (".md", markdown(results))):
        with open(output + suffix + ".tmp", "w") as handle:
            handle.write(text)
        os.replace(output + suffix + ".tmp", output + suffix)


if __name__ == "__main__":
    main()
