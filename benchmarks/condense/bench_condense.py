"""Condensing cost: wall time and peak memory of `cka` and `auto`, FLOPs counted per image, and an extrapolation.

Each case runs in a fresh subprocess (so its peak RSS is its own) on real Fashion-MNIST classes 6-9 (the benchmark's
open-world condensing set), resized by the ancestor's image processor. Ancestors are randomly initialised ViTs of the
given geometry: the cost of condensing does not depend on the weights.

FLOPs are counted with `torch.utils.flop_counter.FlopCounterMode` on one batch of each phase (pseudo-descendant
training step, scoring pass; for `auto` one whole meta step: CE + matching step, T matching steps, CE step and the
second-order backward). They give the cost of a run of any size and, divided by an assumed GPU throughput, an
*extrapolated* wall time for a ViT-B/16 ancestor with 2,000 condensing images on one H100. The assumption is printed.

    # tiny + ViT-S runs, ViT-B FLOPs + memory (~17 min, 2 cores)
    python benchmarks/condense/bench_condense.py
    python benchmarks/condense/bench_condense.py --quick      # tiny only (about 2 minutes)
    python benchmarks/condense/bench_condense.py --parts memory,data --output b.json   # some parts only
    python benchmarks/condense/bench_condense.py --tables a.json b.json                # tables of saved results
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

GEOMETRIES = {
    # name: ViT geometry
    "tiny": dict(hidden_size=64, num_hidden_layers=4, num_attention_heads=4, intermediate_size=256, image_size=28,
                 patch_size=4),
    "vit-s": dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, intermediate_size=1536, image_size=224,
                  patch_size=16),
    "vit-b": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                  image_size=224, patch_size=16),
}  # fmt: skip

# Measured CPU runs: (geometry, method, images, epochs, batch size).
# The tiny runs at two set sizes show that memory does not grow with the condensing set.
CASES_QUICK = [
    ("tiny", "cka", 256, 5, 32),
    ("tiny", "cka", 1024, 5, 32),
    ("tiny", "auto", 256, 1, 32),
    ("tiny", "auto", 1024, 1, 32),
]
CASES_FULL = CASES_QUICK + [
    ("vit-s", "cka", 256, 1, 32),
    ("vit-s", "auto", 48, 1, 16),
]

# Extrapolation target and assumption: effective dense throughput on one H100 (bf16 autocast). The anchors measured
# on an H200 (ENVIRONMENT.md) put transformers' ViT-B training at 0.37 MFU; the unrolled second-order `auto` step runs
# attention through the math kernel and many small elementwise ops, so it is given a third of that.
H100_BF16_PEAK = 989e12
ASSUMED_MFU = {"cka": 0.3, "auto": 0.1}
TARGET_IMAGES, TARGET_EPOCHS, TARGET_BATCH = 2000, 5, 32


def _ancestor(geometry: str):
    import torch
    from transformers import ViTConfig, ViTModel

    torch.manual_seed(0)
    return ViTModel(ViTConfig(num_channels=3, **GEOMETRIES[geometry]), add_pooling_layer=False).eval()


def _condensing_set(images: int):
    from hf_learngene.data import load_fashion_mnist

    return load_fashion_mnist(classes=[6, 7, 8, 9], max_per_class=-(-images // 4), seed=0)


def run_case(geometry: str, method: str, images: int, epochs: int, batch_size: int) -> dict:
    """Condense once; wall time of `condense()` and the peak RSS of this process."""
    import torch

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    from hf_learngene import condense

    ancestor, data = _ancestor(geometry), _condensing_set(images)
    start = time.perf_counter()
    learngene = condense(
        ancestor,
        method=method,
        num_layers=GEOMETRIES[geometry]["num_hidden_layers"] // 2,
        condense_dataset=data,
        max_samples=images,
        epochs=epochs,
        batch_size=batch_size,
        quiet=True,
        device="cpu",
    )
    wall = time.perf_counter() - start
    return {
        "geometry": geometry,
        "method": method,
        "images": images,
        "epochs": epochs,
        "batch_size": batch_size,
        "wall_s": wall,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "layers": learngene.config.layer_indices,
        "threads": torch.get_num_threads(),
    }


def count_flops(geometry: str, batch: int = 2) -> dict:
    """FLOPs per image of each phase, counted on one batch of random images (values do not change FLOPs)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from hf_learngene.ancestry import load_ancestor
    from hf_learngene.condensing.auto import AutoOptions, PairWeightNetwork, _ancestry_tokens, unrolled_objective
    from hf_learngene.condensing.cka import layer_cka
    from hf_learngene.condensing.pseudo_descendant import PseudoOptions, build_pseudo_descendant

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    source = load_ancestor(_ancestor(geometry))
    full = source.full_model().eval()
    pseudo = build_pseudo_descendant(source, num_labels=4, seed=0)
    size = GEOMETRIES[geometry]["image_size"]
    pixel_values = torch.randn(batch, 3, size, size)
    labels = torch.arange(batch) % 4
    cpu, fp32 = torch.device("cpu"), torch.float32
    flops = {}

    def counted(fn) -> float:
        with FlopCounterMode(display=False) as counter:
            fn()
        return counter.get_total_flops() / batch

    def train_step():
        pseudo.train()
        loss = torch.nn.functional.cross_entropy(pseudo(pixel_values).logits, labels)
        loss.backward()

    flops["pseudo_train_step"] = counted(train_step)
    pseudo.eval()
    batch4 = torch.randn(4, 3, size, size)
    with FlopCounterMode(display=False) as counter:
        layer_cka(full, pseudo, [(batch4, None)], features="update", device=cpu, dtype=fp32)
    flops["cka_scoring"] = counter.get_total_flops() / 4
    tokens = _ancestry_tokens(full, pixel_values, cpu, fp32)
    net = PairWeightNetwork(source.num_layers, len(pseudo.descendant_layers()), tokens.shape[2])
    params = {name: p.detach() for name, p in pseudo.named_parameters()}

    def meta_step():
        _ancestry_tokens(full, pixel_values, cpu, fp32)
        outer, current, _, _ = unrolled_objective(
            pseudo, params, {}, net, (pixel_values, labels, tokens), lr=1e-3, opts=PseudoOptions(),
            auto_opts=AutoOptions(), dtype=fp32,
        )  # fmt: skip
        torch.autograd.grad(outer, list(net.parameters()) + list(current.values()), allow_unused=True)

    flops["auto_meta_step"] = counted(meta_step)
    flops["auto_scoring"] = counted(lambda: _ancestry_tokens(full, pixel_values, cpu, fp32))
    return flops


def run_memory(geometry: str, batch: int) -> dict:
    """Peak RSS of one `auto` meta step (the unrolled graph is what grows with the batch)."""
    import torch

    from hf_learngene.ancestry import load_ancestor
    from hf_learngene.condensing.auto import AutoOptions, PairWeightNetwork, _ancestry_tokens, unrolled_objective
    from hf_learngene.condensing.pseudo_descendant import PseudoOptions, build_pseudo_descendant

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    source = load_ancestor(_ancestor(geometry))
    full = source.full_model().eval()
    full.requires_grad_(False)
    pseudo = build_pseudo_descendant(source, num_labels=4, seed=0)
    size = GEOMETRIES[geometry]["image_size"]
    pixel_values, labels = torch.randn(batch, 3, size, size), torch.arange(batch) % 4
    cpu = torch.device("cpu")
    tokens = _ancestry_tokens(full, pixel_values, cpu, torch.float32)
    net = PairWeightNetwork(source.num_layers, len(pseudo.descendant_layers()), tokens.shape[2])
    params = {name: p.detach() for name, p in pseudo.named_parameters()}
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    outer, current, _, _ = unrolled_objective(
        pseudo, params, {}, net, (pixel_values, labels, tokens), lr=1e-3, opts=PseudoOptions(),
        auto_opts=AutoOptions(), dtype=torch.float32,
    )  # fmt: skip
    torch.autograd.grad(outer, list(net.parameters()) + list(current.values()), allow_unused=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"geometry": geometry, "batch": batch, "before_mib": before, "peak_mib": peak}


def run_data_speed(images: int = 512) -> dict:
    """Images per second of the condensing-set pipeline (decode, grayscale to RGB, resize to 224, normalise)."""
    import torch

    from hf_learngene.ancestry import load_ancestor
    from hf_learngene.condensing.condensing_set import load_condensing_data

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    data = load_condensing_data(_condensing_set(images), load_ancestor(_ancestor("vit-s")), max_samples=images)
    start, count = time.perf_counter(), 0
    for _, labels in data.train_batches(0):
        count += len(labels)
    return {"images": count, "images_per_s": count / (time.perf_counter() - start)}


def run_flop_count(geometry: str) -> dict:
    return {"geometry": geometry, "flops_per_image": count_flops(geometry)}


def method_flops(flops: dict, method: str, images: int, epochs: int, holdout: float = 0.2) -> float:
    """Total FLOPs of a run: training on (1 - holdout) of the images for `epochs`, scoring on the held-out part."""
    held_out = max(4, round(holdout * images))
    train = images - held_out
    if method == "cka":
        return train * epochs * flops["pseudo_train_step"] + held_out * flops["cka_scoring"]
    return train * epochs * flops["auto_meta_step"] + held_out * flops["auto_scoring"]


def _child(kind: str, args: list) -> dict:
    command = [sys.executable, os.path.abspath(__file__), "--child", json.dumps([kind, args])]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("BENCH_THREADS", "1")}
    result = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny ancestor only")
    parser.add_argument(
        "--parts",
        default="runs,memory,data",
        help="comma-separated: runs (wall time + FLOPs + extrapolation), memory (auto meta step, ViT-B), data "
        "(input pipeline speed)",
    )
    parser.add_argument("--output", help="write the results as JSON here")
    parser.add_argument("--tables", nargs="+", help="only print the tables of saved JSON results (merged in order)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, params = json.loads(args.child)
        runner = {"case": run_case, "flops": run_flop_count, "memory": run_memory, "data": run_data_speed}[kind]
        print(json.dumps(runner(*params)))
        return

    results: dict = {}
    if args.tables:
        for path in args.tables:
            with open(path) as f:
                results.update(json.load(f))
        _print_tables(results)
        return
    parts = set(args.parts.split(","))
    if "data" in parts:
        results["data"] = _child("data", [])
        print(f"data pipeline: {results['data']['images_per_s']:.0f} images/s", file=sys.stderr)
    if "memory" in parts and not args.quick:
        results["memory"] = [_child("memory", ["vit-b", batch]) for batch in (1, 3)]
        print("measured auto memory", file=sys.stderr)
    if "runs" in parts:
        cases = CASES_QUICK if args.quick else CASES_FULL
        geometries = ["tiny"] if args.quick else ["tiny", "vit-s", "vit-b"]
        results["flops_per_image"] = {g: _child("flops", [g])["flops_per_image"] for g in geometries}
        print("counted FLOPs", file=sys.stderr)
        results["runs"] = []
        for case in cases:
            results["runs"].append(_child("case", list(case)))
            print(f"ran {case}: {results['runs'][-1]['wall_s']:.1f} s", file=sys.stderr)
    _print_tables(results)
    if args.output:
        with open(args.output, "w") as f:
            json.dump(results, f, indent=2)


def _print_tables(results: dict) -> None:
    flops = results.get("flops_per_image", {})
    if "runs" in results:
        print("\n## Measured on this CPU (condense() wall time, fresh process per run)\n")
        print("| ancestor | method | images | epochs | batch | wall (s) | GFLOP counted | GFLOP/s | peak RSS (MiB) |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for run in results["runs"]:
            total = method_flops(flops[run["geometry"]], run["method"], run["images"], run["epochs"])
            print(
                f"| {run['geometry']} | {run['method']} | {run['images']} | {run['epochs']} | {run['batch_size']} | "
                f"{run['wall_s']:.1f} | {total / 1e9:.1f} | {total / 1e9 / run['wall_s']:.1f} | "
                f"{run['peak_rss_mib']:.0f} |"
            )
        print("\n## FLOPs per image (counted with FlopCounterMode, one batch)\n")
        print("| ancestor | pseudo train step | CKA scoring | auto meta step | auto scoring |")
        print("| --- | --- | --- | --- | --- |")
        for geometry, per_image in flops.items():
            keys = ("pseudo_train_step", "cka_scoring", "auto_meta_step", "auto_scoring")
            print(f"| {geometry} | " + " | ".join(f"{per_image[key] / 1e9:.2f} G" for key in keys) + " |")
    per_image_mib = None
    if "memory" in results:
        low, high = results["memory"]
        per_image_mib = (high["peak_mib"] - low["peak_mib"]) / (high["batch"] - low["batch"])
        print("\n## Memory of one auto meta step, ViT-B/16 ancestor, fp32 on CPU (peak RSS)\n")
        print("| batch | peak RSS (MiB) |")
        print("| --- | --- |")
        for row in results["memory"]:
            print(f"| {row['batch']} | {row['peak_mib']:.0f} |")
        print(f"\nSlope: {per_image_mib:.0f} MiB per image in the batch.")
    if "data" in results:
        print(
            f"\nInput pipeline (Fashion-MNIST to 224 px RGB, one process): {results['data']['images_per_s']:.0f} "
            "images/s."
        )
    if "vit-b" in flops:
        held_out = max(4, round(0.2 * TARGET_IMAGES))
        data_images = (TARGET_IMAGES - held_out) * TARGET_EPOCHS + 2 * held_out
        print(
            f"\n## Extrapolation (not measured): ViT-B/16 ancestor, {TARGET_IMAGES} images, {TARGET_EPOCHS} epochs, "
            f"batch {TARGET_BATCH}, one H100\n"
        )
        print("| method | TFLOP | assumed MFU | compute (s) | input pipeline, 8 workers (s) | memory, fp32 (GiB) |")
        print("| --- | --- | --- | --- | --- | --- |")
        for method in ("cka", "auto"):
            total = method_flops(flops["vit-b"], method, TARGET_IMAGES, TARGET_EPOCHS)
            rate = H100_BF16_PEAK * ASSUMED_MFU[method]
            data_s = data_images / (8 * results["data"]["images_per_s"]) if "data" in results else float("nan")
            memory = (
                f"~{per_image_mib * TARGET_BATCH / 1024:.0f} + weights"
                if method == "auto" and per_image_mib
                else "small"
            )
            print(
                f"| {method} | {total / 1e12:.0f} | {ASSUMED_MFU[method]:.2f} | {total / rate:.0f} | {data_s:.0f} | "
                f"{memory} |"
            )


if __name__ == "__main__":
    main()
