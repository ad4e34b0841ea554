"""Condensing cost: wall time and peak memory of `cka` and `auto`, FLOPs counted per image, and an extrapolation.

Each case runs in a fresh subprocess (so its peak RSS is its own) on real Fashion-MNIST classes 6-9 (the benchmark's
open-world condensing set), resized by the ancestor's image processor. Ancestors are randomly initialised ViTs of the
given geometry: the cost of condensing does not depend on the weights.

FLOPs are counted with `torch.utils.flop_counter.FlopCounterMode` on one batch of each phase (pseudo-descendant
training step, scoring pass; for `auto` one whole meta step: CE + matching step, T matching steps, CE step and the
second-order backward). They give the cost of a run of any size and, divided by an assumed GPU throughput, an
*extrapolated* wall time for a ViT-B/16 ancestor with 2,000 condensing images on one H100. The assumption is printed.

    python scripts/bench_condense.py              # tiny + ViT-S on CPU, FLOPs for ViT-B (about 10 minutes, one thread)
    python scripts/bench_condense.py --quick      # tiny only (about a minute)
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
TARGET_IMAGES, TARGET_EPOCHS, TARGET_BATCH = 2000, 5, 64


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
    from hf_learngene.condensing.features import PseudoOptions, build_pseudo_descendant

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
    parser.add_argument("--output", help="write the results as JSON here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, params = json.loads(args.child)
        print(json.dumps(run_case(*params) if kind == "case" else run_flop_count(*params)))
        return

    cases = CASES_QUICK if args.quick else CASES_FULL
    geometries = ["tiny"] if args.quick else ["tiny", "vit-s", "vit-b"]
    flops = {}
    for geometry in geometries:
        flops[geometry] = _child("flops", [geometry])["flops_per_image"]
        print(f"counted FLOPs: {geometry}", file=sys.stderr)
    runs = []
    for case in cases:
        runs.append(_child("case", list(case)))
        print(f"ran {case}: {runs[-1]['wall_s']:.1f} s", file=sys.stderr)

    print("\n## Measured on this CPU (condense() wall time, fresh process per run)\n")
    print("| ancestor | method | images | epochs | batch | wall (s) | GFLOP counted | GFLOP/s | peak RSS (MiB) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for run in runs:
        total = method_flops(flops[run["geometry"]], run["method"], run["images"], run["epochs"])
        run["gflop"] = total / 1e9
        print(
            f"| {run['geometry']} | {run['method']} | {run['images']} | {run['epochs']} | {run['batch_size']} | "
            f"{run['wall_s']:.1f} | {total / 1e9:.1f} | {total / 1e9 / run['wall_s']:.1f} | {run['peak_rss_mib']:.0f} |"
        )

    print("\n## FLOPs per image (counted with FlopCounterMode, one batch)\n")
    print("| ancestor | pseudo train step | CKA scoring | auto meta step | auto scoring |")
    print("| --- | --- | --- | --- | --- |")
    for geometry, per_image in flops.items():
        row = " | ".join(f"{per_image[key] / 1e9:.2f} G" for key in ("pseudo_train_step", "cka_scoring",
                                                                        "auto_meta_step", "auto_scoring"))  # fmt: skip
        print(f"| {geometry} | {row} |")

    if "vit-b" in flops:
        print(
            f"\n## Extrapolation (not measured): ViT-B/16 ancestor, {TARGET_IMAGES} images, {TARGET_EPOCHS} epochs, "
            "one H100\n"
        )
        print("| method | TFLOP | assumed MFU | assumed TFLOP/s | extrapolated wall (s) |")
        print("| --- | --- | --- | --- | --- |")
        for method in ("cka", "auto"):
            total = method_flops(flops["vit-b"], method, TARGET_IMAGES, TARGET_EPOCHS)
            rate = H100_BF16_PEAK * ASSUMED_MFU[method]
            print(
                f"| {method} | {total / 1e12:.0f} | {ASSUMED_MFU[method]:.2f} | {rate / 1e12:.0f} | "
                f"{total / rate:.0f} |"
            )
    if args.output:
        with open(args.output, "w") as f:
            json.dump({"runs": runs, "flops_per_image": flops}, f, indent=2)


if __name__ == "__main__":
    main()
