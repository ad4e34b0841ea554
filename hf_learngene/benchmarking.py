"""Learning-efficiency benchmark: do descendants grown from a learngene beat the same architecture trained from scratch?

The paper (Wang et al., arXiv 2305.02279) claims that descendants 1) converge faster, 2) are less sensitive to
hyperparameters, 3) perform better and 4) need fewer samples. This module measures the four claims side by side:

1. *Accumulating*: an ancestry ViT (transformers' `ViTForImageClassification`) is trained on one image set and
   cached as a `save_pretrained` folder (or you bring your own ancestor: a Hub id or a folder).
2. *Condensing*: `hf_learngene.condense` cuts a learngene out of it for every method (half the layers by default);
   data-driven methods use a condensing set with classes disjoint from both other sets.
3. *Inheriting*: many small N-way tasks are drawn from a third set, with k training images per class and a fixed
   held-out test set per task. Every arm trains a descendant of the same depth with the same optimiser, schedule and
   step budget: scratch (random), each learngene with its new layers on top and interleaved, and the whole ancestor
   fine-tuned (an upper reference).

Every run is one JSON line (`arm`, `layout`, `k_shot`, `task`, `seed`, `lr`, `epochs`, `best_acc`, `acc_per_epoch`,
`train_seconds`, `params`, ...). Runs already in the file are skipped, so an interrupted benchmark resumes.
[`summarize`] turns the file into the four claims as measured differences and ratios against scratch,
[`render_markdown`] into a report and [`plot_results`] into figures.

Training uses a plain PyTorch loop over tensors held in memory (no `Trainer`, no per-step data pipeline): the
models are tiny and the benchmark runs hundreds of them, so per-step overhead would dominate.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

ALL = "all"
SCRATCH = "scratch"
ANCESTOR = "ancestor"
PLACEMENTS = ("top", "interleaved")
DEFAULT_METHODS = ("heuristic", "first", "random", "cka", "auto")


@dataclass
class BenchmarkConfig:
    """Settings of one benchmark protocol.

    Args:
        ancestor_layers (`int`, *optional*, defaults to 6):
            Depth of the ancestry ViT trained here (ignored when you bring an ancestor).
        hidden_size (`int`, *optional*, defaults to 64):
            Width of the ancestry ViT.
        num_attention_heads (`int`, *optional*, defaults to 4):
            Attention heads of the ancestry ViT.
        intermediate_size (`int`, *optional*, defaults to 128):
            MLP width of the ancestry ViT.
        image_size (`int`, *optional*, defaults to 28):
            Input resolution (every set is resized to it).
        patch_size (`int`, *optional*, defaults to 7):
            Patch size (28 px / 7 = 16 patches).
        num_channels (`int`, *optional*, defaults to 1):
            Input channels (1 = grayscale).
        ancestor_classes (`tuple[int]`, *optional*, defaults to Fashion-MNIST classes 0-5):
            Classes of the ancestry set.
        ancestor_max_per_class (`int`, *optional*):
            Cap on ancestry images per class, training and test (all when `None`).
        ancestor_epochs (`int`, *optional*, defaults to 3):
            Epochs of ancestry training.
        ancestor_lr (`float`, *optional*, defaults to 2e-3):
            Peak AdamW learning rate of ancestry training.
        ancestor_batch_size (`int`, *optional*, defaults to 128):
            Batch size of ancestry training.
        condense_classes (`tuple[int]`, *optional*, defaults to Fashion-MNIST classes 6-9):
            Classes of the condensing set (disjoint from the ancestry and the descendant tasks).
        condense_per_class (`int`, *optional*, defaults to 300):
            Images per class of the condensing set.
        condense_options (`dict`, *optional*):
            Extra keyword arguments for `condense(...)`, per method name (e.g. `{"auto": {"epochs": 2}}`).
        methods (`tuple[str]`, *optional*):
            Condensing methods to compare; those not registered in `CONDENSING_METHODS` are skipped and reported.
        placements (`tuple[str]`, *optional*, defaults to `("top", "interleaved")`):
            Where the new layers go: all on top of the learngene (`LLLRRR`), or alternating (`LRLRLR`).
        learngene_layers (`int`, *optional*):
            Layers per learngene; half the ancestor's depth when `None`.
        descendant_layers (`int`, *optional*):
            Depth of every descendant (scratch included); the ancestor's depth when `None`, so the whole-ancestor
            arm has the same architecture as the others.
        include_scratch (`bool`, *optional*, defaults to `True`):
            Whether to run the scratch arm.
        include_ancestor (`bool`, *optional*, defaults to `True`):
            Whether to run the whole-ancestor fine-tune (the upper reference).
        task_max_per_class (`int`, *optional*):
            Cap on task-set images per class (all 500 MNIST images per class when `None`).
        ways (`int`, *optional*, defaults to 5):
            Classes per descendant task.
        k_shots (`tuple`, *optional*, defaults to `(10, 50, "all")`):
            Training images per class; `"all"` = every image of the class outside the test set.
        num_tasks (`int`, *optional*, defaults to 5):
            Tasks drawn.
        seeds (`tuple[int]`, *optional*, defaults to `(0, 1)`):
            Training seeds per task (initialisation of new layers and batch order).
        test_per_class (`int`, *optional*, defaults to 50):
            Held-out test images per class of each task (fixed per task, never trained on).
        task_seed (`int`, *optional*, defaults to 0):
            Seed of task sampling.
        epochs (`int`, *optional*, defaults to 8):
            Evaluation rounds per run.
        steps_per_epoch (`int`, *optional*, defaults to 10):
            An "epoch" here is a fixed number of optimiser steps followed by a test evaluation, the same for every k,
            so that k=10 and k=all get the same compute (a true pass over 50 images is two steps).
        batch_size (`int`, *optional*, defaults to 32):
            Training batch size.
        lr (`float`, *optional*, defaults to 1e-3):
            Peak AdamW learning rate of the main runs.
        lr_grid (`tuple[float]`, *optional*, defaults to `(1e-4, 3e-4, 1e-3, 3e-3)`):
            Learning rates of the sensitivity runs.
        grid_k_shots (`tuple`, *optional*, defaults to `(50,)`):
            The k values that also run the lr grid.
        grid_placements (`tuple[str]`, *optional*, defaults to `("top",)`):
            The learngene placements that run the lr grid (scratch and the whole ancestor always do, at those k).
        grid_methods (`tuple[str]`, *optional*, defaults to `("heuristic", "first", "cka", "auto")`):
            The condensing methods that run the lr grid (all when `None`); random-k, a control, is left out to save
            compute.
        grid_seeds (`tuple[int]`, *optional*, defaults to `(0,)`):
            Seeds of the grid runs (`seeds` when `None`); the spread is measured per task, so tasks matter more.
        weight_decay (`float`, *optional*, defaults to 0.05):
            AdamW weight decay.
        warmup_fraction (`float`, *optional*, defaults to 0.1):
            Linear warm-up over this fraction of the steps, then cosine decay to zero.
    """

    ancestor_layers: int = 6
    hidden_size: int = 64
    num_attention_heads: int = 4
    intermediate_size: int = 128
    image_size: int = 28
    patch_size: int = 7
    num_channels: int = 1
    ancestor_classes: tuple[int, ...] = (0, 1, 2, 3, 4, 5)
    ancestor_max_per_class: int | None = None
    ancestor_epochs: int = 3
    ancestor_lr: float = 2e-3
    ancestor_batch_size: int = 128
    condense_classes: tuple[int, ...] = (6, 7, 8, 9)
    condense_per_class: int = 300
    condense_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    methods: tuple[str, ...] = DEFAULT_METHODS
    placements: tuple[str, ...] = PLACEMENTS
    learngene_layers: int | None = None
    descendant_layers: int | None = None
    include_scratch: bool = True
    include_ancestor: bool = True
    task_max_per_class: int | None = None
    ways: int = 5
    k_shots: tuple[int | str, ...] = (10, 50, ALL)
    num_tasks: int = 5
    seeds: tuple[int, ...] = (0, 1)
    test_per_class: int = 50
    task_seed: int = 0
    epochs: int = 8
    steps_per_epoch: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    lr_grid: tuple[float, ...] = (1e-4, 3e-4, 1e-3, 3e-3)
    grid_k_shots: tuple[int | str, ...] = (50,)
    grid_placements: tuple[str, ...] = ("top",)
    grid_methods: tuple[str, ...] | None = ("heuristic", "first", "cka", "auto")
    grid_seeds: tuple[int, ...] | None = (0,)
    weight_decay: float = 0.05
    warmup_fraction: float = 0.1

    def __post_init__(self):
        for name in ("placements", "grid_placements"):
            bad = [p for p in getattr(self, name) if p not in PLACEMENTS]
            if bad:
                raise ValueError(f"`{name}` may only contain {PLACEMENTS}, got {bad}.")
        for name in ("k_shots", "grid_k_shots"):
            for k in getattr(self, name):
                if k != ALL and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
                    raise ValueError(f"`{name}` entries must be integers >= 1 or {ALL!r}, got {k!r}.")
        if self.ways < 2:
            raise ValueError(f"`ways` must be >= 2, got {self.ways}.")
        if self.epochs < 1 or self.steps_per_epoch < 1:
            raise ValueError("`epochs` and `steps_per_epoch` must be >= 1.")

    @classmethod
    def quick(cls, **overrides) -> BenchmarkConfig:
        """A smoke-test protocol (about a minute on a laptop CPU): a 2-layer ancestor trained briefly, one task, every
        arm, one pseudo-descendant epoch for the data-driven methods."""
        settings = dict(
            ancestor_layers=2,
            hidden_size=32,
            num_attention_heads=2,
            intermediate_size=64,
            ancestor_max_per_class=150,
            task_max_per_class=40,
            ancestor_epochs=1,
            ancestor_batch_size=64,
            condense_per_class=40,
            condense_options={"cka": {"epochs": 1}, "auto": {"epochs": 1}},
            ways=3,
            k_shots=(5, ALL),
            num_tasks=1,
            seeds=(0,),
            test_per_class=20,
            epochs=2,
            steps_per_epoch=3,
            batch_size=16,
            lr_grid=(3e-4, 1e-3),
            grid_k_shots=(5,),
            grid_methods=None,
        )
        settings.update(overrides)
        return cls(**settings)

    def protocol(self) -> dict[str, Any]:
        """The settings a finished run's result depends on (adding arms, tasks, seeds or lrs keeps old runs valid)."""
        keys = (
            "ancestor_layers hidden_size num_attention_heads intermediate_size image_size patch_size num_channels "
            "ancestor_classes ancestor_max_per_class ancestor_epochs ancestor_lr ancestor_batch_size condense_classes "
            "condense_per_class condense_options learngene_layers descendant_layers task_max_per_class ways "
            "test_per_class task_seed epochs steps_per_epoch batch_size weight_decay warmup_fraction"
        ).split()
        return {key: _jsonable(getattr(self, key)) for key in keys}

    def protocol_id(self, ancestor: str | None = None) -> str:
        return _digest({"protocol": self.protocol(), "ancestor": ancestor})

    def ancestor_id(self) -> str:
        """Identifies the ancestor trained here, so protocols that differ only downstream share its cache."""
        keys = (
            "ancestor_layers hidden_size num_attention_heads intermediate_size image_size patch_size num_channels "
            "ancestor_classes ancestor_max_per_class ancestor_epochs ancestor_lr ancestor_batch_size weight_decay "
            "warmup_fraction"
        ).split()
        return _digest({key: _jsonable(getattr(self, key)) for key in keys})

    def condensing_id(self) -> str:
        """Identifies the condensing set and options (what data-driven learngenes depend on)."""
        keys = ("condense_classes", "condense_per_class", "condense_options")
        return _digest({key: _jsonable(getattr(self, key)) for key in keys})


def _digest(payload) -> str:
    return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def _jsonable(value):
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


# --------------------------------------------------------------------------------------------------------------------
# Data


@dataclass
class ImageTensors:
    """Images held in memory: `images` uint8 (N, C, H, W), `labels` int64 (N,), and the class names."""

    images: torch.Tensor
    labels: torch.Tensor
    names: list[str]

    def __len__(self) -> int:
        return len(self.labels)


def dataset_to_tensors(
    dataset,
    *,
    image_size: int,
    num_channels: int,
    image_column: str | None = None,
    label_column: str | None = None,
) -> ImageTensors:
    """Decode an image-classification `datasets.Dataset` into uint8 tensors at the model's geometry.

    Args:
        dataset (`datasets.Dataset`):
            Any image-classification split (columns detected by `hf_learngene.data.find_columns`).
        image_size (`int`):
            Images are resized (bilinear) to `image_size` x `image_size` when they differ.
        num_channels (`int`):
            1 converts to grayscale, 3 to RGB.
    """
    from PIL import Image

    from .data import _to_pil, find_columns, label_maps

    if num_channels not in (1, 3):
        raise ValueError(f"`num_channels` must be 1 or 3, got {num_channels}.")
    image_column, label_column = find_columns(dataset, image_column, label_column)
    id2label, label2id = label_maps(dataset, label_column)
    mode = "L" if num_channels == 1 else "RGB"
    arrays = []
    for image in dataset[image_column]:
        image = _to_pil(image).convert(mode)
        if image.size != (image_size, image_size):
            image = image.resize((image_size, image_size), Image.Resampling.BILINEAR)
        array = np.asarray(image, dtype=np.uint8)
        arrays.append(array[None] if array.ndim == 2 else array.transpose(2, 0, 1))
    raw_labels = dataset[label_column]
    if raw_labels and isinstance(raw_labels[0], str):
        raw_labels = [label2id[v] for v in raw_labels]
    return ImageTensors(
        images=torch.from_numpy(np.stack(arrays)),
        labels=torch.tensor([int(v) for v in raw_labels], dtype=torch.long),
        names=[id2label[i] for i in range(len(id2label))],
    )


def _normalize(images: torch.Tensor) -> torch.Tensor:
    # The default image processor's mapping: rescale to [0, 1], then mean 0.5 / std 0.5.
    return images.float().div_(127.5).sub_(1.0)


@dataclass
class Task:
    """One descendant task: `classes` of the task set, a fixed test set, and per-class training pools.

    `train_indices(k)` takes the first k images of each class's shuffled pool, so the training sets of one task are
    nested (k=10 is inside k=50 inside all) and differences across k are not differences of draw.
    """

    index: int
    classes: list[int]
    test_indices: torch.Tensor
    pools: list[torch.Tensor]

    def train_indices(self, k_shot: int | str) -> torch.Tensor:
        if k_shot == ALL:
            return torch.cat(self.pools)
        short = [len(p) for p in self.pools if len(p) < k_shot]
        if short:
            raise ValueError(
                f"k_shot={k_shot} exceeds the images left for training in task {self.index} ({min(short)} in the "
                "smallest class after the test set): lower k_shot or test_per_class."
            )
        return torch.cat([p[:k_shot] for p in self.pools])

    def relabel(self, labels: torch.Tensor) -> torch.Tensor:
        """Map task-set labels to 0..ways-1 in the order of `classes`."""
        lookup = torch.full((int(labels.max()) + 1,), -1, dtype=torch.long)
        lookup[torch.tensor(self.classes)] = torch.arange(len(self.classes))
        return lookup[labels]


def sample_tasks(labels: torch.Tensor, *, num_tasks: int, ways: int, test_per_class: int, seed: int = 0) -> list[Task]:
    """Draw `num_tasks` `ways`-way tasks; task t depends only on (`seed`, t), so adding tasks keeps the old ones."""
    classes = sorted(int(c) for c in labels.unique())
    if ways > len(classes):
        raise ValueError(f"`ways={ways}` but the task set has only {len(classes)} classes.")
    tasks = []
    for t in range(num_tasks):
        generator = torch.Generator().manual_seed(seed * 1_000_003 + t)
        picked = [classes[i] for i in torch.randperm(len(classes), generator=generator)[:ways].tolist()]
        test, pools = [], []
        for c in picked:
            rows = torch.nonzero(labels == c).flatten()
            rows = rows[torch.randperm(len(rows), generator=generator)]
            if len(rows) <= test_per_class:
                raise ValueError(
                    f"Class {c} has {len(rows)} images, not enough for test_per_class={test_per_class} plus training."
                )
            test.append(rows[:test_per_class])
            pools.append(rows[test_per_class:])
        tasks.append(Task(index=t, classes=picked, test_indices=torch.cat(test), pools=pools))
    return tasks


# --------------------------------------------------------------------------------------------------------------------
# Training


def _schedule(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def _logits(model, pixel_values: torch.Tensor) -> torch.Tensor:
    return model(pixel_values=pixel_values).logits


@torch.no_grad()
def evaluate_accuracy(model, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 512) -> float:
    """Top-1 accuracy of `model` on uint8 `images` (normalised here) and `labels`."""
    was_training = model.training
    model.eval()
    correct = 0
    for start in range(0, len(labels), batch_size):
        x = _normalize(images[start : start + batch_size])
        correct += int((_logits(model, x).argmax(-1) == labels[start : start + batch_size]).sum())
    model.train(was_training)
    return correct / max(1, len(labels))


def train_model(
    model,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    lr: float,
    epochs: int,
    steps_per_epoch: int,
    batch_size: int,
    weight_decay: float = 0.05,
    warmup_fraction: float = 0.1,
    seed: int = 0,
    eval_images: torch.Tensor | None = None,
    eval_labels: torch.Tensor | None = None,
) -> tuple[list[float], float]:
    """Train with AdamW (warm-up + cosine) for `epochs * steps_per_epoch` steps and test after every epoch.

    Batches are drawn by reshuffled passes over the training set (every image once per pass), so small sets are
    repeated and large ones visited in order of a random permutation.

    Returns:
        `(acc_per_epoch, train_seconds)`; `train_seconds` excludes the evaluations.
    """
    device = next(model.parameters()).device
    total = epochs * steps_per_epoch
    batch_size = min(batch_size, len(labels))
    generator = torch.Generator().manual_seed(seed)
    passes = math.ceil(total * batch_size / len(labels))
    order = torch.cat([torch.randperm(len(labels), generator=generator) for _ in range(passes)])
    order = order[: total * batch_size].view(total, batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    warmup = max(1, round(warmup_fraction * total))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _schedule(s, total, warmup))
    images, labels = images.to(device), labels.to(device)
    if eval_images is not None:
        eval_images, eval_labels = eval_images.to(device), eval_labels.to(device)
    accuracies, seconds = [], 0.0
    model.train()
    for epoch in range(epochs):
        start = time.perf_counter()
        for step in range(epoch * steps_per_epoch, (epoch + 1) * steps_per_epoch):
            rows = order[step].to(device)
            loss = F.cross_entropy(_logits(model, _normalize(images[rows])).float(), labels[rows])
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds += time.perf_counter() - start
        if eval_images is not None:
            accuracies.append(evaluate_accuracy(model, eval_images, eval_labels))
    return accuracies, seconds


def train_ancestor(
    config: BenchmarkConfig,
    train: ImageTensors,
    test: ImageTensors | None,
    output_dir: str | os.PathLike,
    *,
    device: str = "cpu",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train a transformers `ViTForImageClassification` ancestor and `save_pretrained` it (with its image processor).

    Returns:
        `dict` with `test_accuracy` (on `test`, when given), `train_seconds` and the folder.
    """
    from transformers import ViTConfig, ViTForImageClassification

    from .data import default_image_processor

    vit_config = ViTConfig(
        hidden_size=config.hidden_size,
        num_hidden_layers=config.ancestor_layers,
        num_attention_heads=config.num_attention_heads,
        intermediate_size=config.intermediate_size,
        image_size=config.image_size,
        patch_size=config.patch_size,
        num_channels=config.num_channels,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        num_labels=len(train.names),
        id2label=dict(enumerate(train.names)),
        label2id={n: i for i, n in enumerate(train.names)},
    )
    torch.manual_seed(0)
    model = ViTForImageClassification(vit_config).to(device)
    steps_per_epoch = math.ceil(len(train) / config.ancestor_batch_size)
    log(
        f"Training the ancestor ViT ({config.ancestor_layers} layers, width {config.hidden_size}) on {len(train)} "
        f"images for {config.ancestor_epochs} epochs ({steps_per_epoch} steps each)..."
    )
    _, seconds = train_model(
        model,
        train.images,
        train.labels,
        lr=config.ancestor_lr,
        epochs=config.ancestor_epochs,
        steps_per_epoch=steps_per_epoch,
        batch_size=config.ancestor_batch_size,
        weight_decay=config.weight_decay,
        warmup_fraction=config.warmup_fraction,
        seed=0,
    )
    accuracy = None
    if test is not None:
        accuracy = evaluate_accuracy(model, test.images.to(device), test.labels.to(device))
    model.cpu().save_pretrained(output_dir)
    default_image_processor(vit_config).save_pretrained(output_dir)
    info = {"test_accuracy": accuracy, "train_seconds": seconds, "num_images": len(train)}
    with open(os.path.join(output_dir, "bench_ancestor.json"), "w") as f:
        json.dump(info, f, indent=2)
    log(f"Ancestor trained in {seconds:.0f} s; held-out accuracy {accuracy}.")
    return info


# --------------------------------------------------------------------------------------------------------------------
# Runs


@dataclass(frozen=True)
class RunSpec:
    """One planned run. `arm` is `"scratch"`, `"ancestor"` or a condensing method; `placement` says where new layers
    go (`"top"`, `"interleaved"`, or `"none"` for scratch and the whole ancestor)."""

    arm: str
    placement: str
    k_shot: int | str
    task: int
    seed: int
    lr: float

    def key(self) -> tuple:
        return (self.arm, self.placement, str(self.k_shot), self.task, self.seed, float(self.lr))


def record_key(record: dict[str, Any]) -> tuple:
    return (
        record["arm"],
        record.get("placement", "none"),
        str(record["k_shot"]),
        int(record["task"]),
        int(record["seed"]),
        float(record["lr"]),
    )


def make_layout(placement: str, inherited: int, depth: int) -> str:
    """`"top"`: every learngene layer then the new ones (`LLLRRR`); `"interleaved"`: alternate L and R from the
    bottom, the surplus of either at the top (`LRLRLR`)."""
    if not 1 <= inherited <= depth:
        raise ValueError(f"A learngene of {inherited} layers does not fit a descendant of depth {depth}.")
    new = depth - inherited
    if placement == "top":
        return "L" * inherited + "R" * new
    if placement == "interleaved":
        pairs = min(inherited, new)
        return "LR" * pairs + "L" * (inherited - pairs) + "R" * (new - pairs)
    raise ValueError(f"Unknown placement {placement!r}; choose one of {PLACEMENTS}.")


def plan_runs(config: BenchmarkConfig, methods: Sequence[str] | None = None) -> list[RunSpec]:
    """Every run of the protocol: the main runs (data-free arms first), then the learning-rate grid."""
    from .condensing import CONDENSING_METHODS

    methods = list(config.methods if methods is None else methods)
    data_free = [m for m in methods if m in CONDENSING_METHODS and not CONDENSING_METHODS[m].needs_data]
    data_driven = [m for m in methods if m in CONDENSING_METHODS and CONDENSING_METHODS[m].needs_data]
    arms: list[tuple[str, str]] = []
    if config.include_scratch:
        arms.append((SCRATCH, "none"))
    if config.include_ancestor:
        arms.append((ANCESTOR, "none"))
    arms_late = []
    for group, target in ((data_free, arms), (data_driven, arms_late)):
        for method in group:
            target.extend((method, placement) for placement in config.placements)
    grid_seeds = config.seeds if config.grid_seeds is None else config.grid_seeds

    def in_grid(arm: str, placement: str, k_shot) -> bool:
        if k_shot not in config.grid_k_shots:
            return False
        if arm in (SCRATCH, ANCESTOR):
            return True
        return placement in config.grid_placements and (config.grid_methods is None or arm in config.grid_methods)

    # Main runs of every arm first, then the lr grid, so an interrupted benchmark still compares all arms.
    runs = []
    for arm, placement in arms + arms_late:
        for k_shot in config.k_shots:
            for task in range(config.num_tasks):
                for seed in config.seeds:
                    runs.append(RunSpec(arm, placement, k_shot, task, seed, config.lr))
    for arm, placement in arms + arms_late:
        for k_shot in config.k_shots:
            if not in_grid(arm, placement, k_shot):
                continue
            for lr in config.lr_grid:
                if math.isclose(lr, config.lr):
                    continue
                for task in range(config.num_tasks):
                    for seed in grid_seeds:
                        runs.append(RunSpec(arm, placement, k_shot, task, seed, lr))
    return runs


def read_results(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of a JSON-lines results file (an empty list when it does not exist); a truncated last line (an
    interrupted write) is ignored."""
    if not os.path.isfile(path):
        return []
    records = []
    with open(path) as f:
        lines = f.read().splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            if number == len(lines):
                break
            raise ValueError(f"{path}:{number} is not valid JSON ({err}); fix or remove that line.") from err
    return records


def append_result(path: str | os.PathLike, record: dict[str, Any]) -> None:
    """Append one record as a JSON line and flush it to disk (so a crash loses at most the run in progress)."""
    with open(path, "a") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def _default_cache_dir() -> str:
    root = os.environ.get("HF_LEARNGENE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "hf_learngene")
    return os.path.join(root, "benchmark")


def load_default_data(
    config: BenchmarkConfig, parts: Sequence[str] = ("ancestor_train", "ancestor_test", "condense_dataset", "task_data")
) -> dict[str, Any]:
    """The paper-style sets, offline: Fashion-MNIST ancestry classes (`ancestor_train`, `ancestor_test`), Fashion-MNIST
    condensing classes (`condense_dataset`, a `datasets.Dataset`) and the 5,000 MNIST digits (`task_data`)."""
    from .data import load_fashion_mnist, load_mnist

    geometry = dict(image_size=config.image_size, num_channels=config.num_channels)
    loaders = {
        "ancestor_train": lambda: dataset_to_tensors(
            load_fashion_mnist(
                "train", classes=list(config.ancestor_classes), max_per_class=config.ancestor_max_per_class
            ),
            **geometry,
        ),
        "ancestor_test": lambda: dataset_to_tensors(
            load_fashion_mnist(
                "test", classes=list(config.ancestor_classes), max_per_class=config.ancestor_max_per_class
            ),
            **geometry,
        ),
        "condense_dataset": lambda: load_fashion_mnist(
            "train", classes=list(config.condense_classes), max_per_class=config.condense_per_class, seed=1
        ),
        "task_data": lambda: dataset_to_tensors(load_mnist(max_per_class=config.task_max_per_class), **geometry),
    }
    unknown = sorted(set(parts) - set(loaders))
    if unknown:
        raise ValueError(f"Unknown data parts {unknown}; choose from {sorted(loaders)}.")
    return {part: loaders[part]() for part in parts}


class _Learngenes:
    """Builds (once) and caches on disk the learngene of each arm; random-k gets one draw per training seed."""

    def __init__(self, ancestor_dir, cache_dir, num_layers, ancestor_depth, condense_dataset, options, data_id, log):
        self.ancestor_dir = ancestor_dir
        self.cache_dir = cache_dir
        self.num_layers = num_layers
        self.ancestor_depth = ancestor_depth
        self.condense_dataset = condense_dataset
        self.options = options
        self.data_id = data_id
        self.log = log
        self.info: dict[str, dict[str, Any]] = {}

    def get(self, arm: str, seed: int) -> tuple[str, dict[str, Any]]:
        from .condensing import CONDENSING_METHODS, condense

        method, num_layers, condense_seed = arm, self.num_layers, 0
        if arm == ANCESTOR:
            method, num_layers = "first", self.ancestor_depth
        if arm == "random":
            condense_seed = seed
        name = f"{arm}-k{num_layers}-s{condense_seed}"
        if CONDENSING_METHODS[method].needs_data:
            name += f"-{self.data_id}"
        folder = os.path.join(self.cache_dir, name)
        info_path = os.path.join(folder, "bench_condense.json")
        if name not in self.info:
            if not os.path.isfile(info_path):
                self.log(f"Condensing: method={method} num_layers={num_layers} seed={condense_seed}...")
                start = time.perf_counter()
                learngene = condense(
                    self.ancestor_dir,
                    method=method,
                    num_layers=num_layers,
                    condense_dataset=self.condense_dataset,
                    seed=condense_seed,
                    **self.options.get(method, {}),
                )
                seconds = time.perf_counter() - start
                learngene.save_pretrained(folder)
                info = {
                    "method": method,
                    "layer_indices": list(learngene.config.layer_indices),
                    "condensing_scores": learngene.config.condensing_scores,
                    "condense_seconds": seconds,
                    "learngene_params": _count(learngene),
                }
                with open(info_path, "w") as f:
                    json.dump(info, f, indent=2)
                self.log(f"  -> layers {info['layer_indices']} in {seconds:.1f} s")
            with open(info_path) as f:
                self.info[name] = json.load(f)
        return folder, self.info[name]


def config_for_ancestor(config: BenchmarkConfig, ancestor: str | os.PathLike) -> BenchmarkConfig:
    """`config` with the geometry (image size, channels, patch, width, depth) of a ViT you bring."""
    from transformers import AutoConfig

    geometry = AutoConfig.from_pretrained(os.fspath(ancestor))
    updates = {k: getattr(geometry, k) for k in ("image_size", "num_channels", "patch_size", "hidden_size")}
    updates["ancestor_layers"] = geometry.num_hidden_layers
    return dataclasses.replace(config, **updates)


def run_benchmark(
    config: BenchmarkConfig,
    results_path: str | os.PathLike,
    *,
    cache_dir: str | os.PathLike | None = None,
    device: str = "cpu",
    ancestor: str | os.PathLike | None = None,
    data: dict[str, Any] | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    max_runs: int | None = None,
) -> list[dict[str, Any]]:
    """Run (or resume) the protocol, appending one JSON line per finished run to `results_path`.

    Args:
        config ([`BenchmarkConfig`]):
            The protocol.
        results_path (`str`):
            The JSON-lines file. Runs already in it are skipped; records of another protocol make it an error.
        cache_dir (`str`, *optional*):
            Where the trained ancestor and the learngenes are cached (default `~/.cache/hf_learngene/benchmark`, or
            `$HF_LEARNGENE_CACHE/benchmark`).
        device (`str`, *optional*, defaults to `"cpu"`):
            Torch device for training.
        ancestor (`str`, *optional*):
            Bring your own ancestor (Hub id or folder of a ViT); then no ancestor is trained and its geometry rules.
        data (`dict`, *optional*):
            Your own sets: `task_data` ([`ImageTensors`], the descendant tasks), `condense_dataset` (anything
            `condense` accepts) and, when an ancestor is trained here, `ancestor_train` / `ancestor_test`
            ([`ImageTensors`]). Parts not given come from [`load_default_data`].
        max_runs (`int`, *optional*):
            Stop after this many new runs (the rest resumes later).

    Returns:
        Every record of the current protocol in `results_path`, old and new.
    """
    from tqdm.auto import tqdm

    from .condensing import CONDENSING_METHODS
    from .configuration_learngene import LearngeneConfig
    from .modeling_learngene import DescendantForImageClassification

    cache_dir = os.fspath(cache_dir or _default_cache_dir())
    if ancestor is not None:
        config = config_for_ancestor(config, ancestor)
    protocol_id = config.protocol_id(None if ancestor is None else os.fspath(ancestor))
    existing = read_results(results_path)
    other = {r.get("protocol_id") for r in existing} - {protocol_id}
    if other:
        raise ValueError(
            f"{results_path} holds runs of another protocol ({sorted(map(str, other))}; this one is {protocol_id}): "
            "write to another file (--output) or delete it to start over."
        )
    done = {record_key(r) for r in existing}
    missing_methods = [m for m in config.methods if m not in CONDENSING_METHODS]
    if missing_methods:
        log(f"Skipping condensing methods not available in this install: {missing_methods}.")
    plan = plan_runs(config)
    todo = [spec for spec in plan if spec.key() not in done]
    log(f"{len(plan)} runs planned, {len(plan) - len(todo)} already done, {len(todo)} to run.")
    if max_runs is not None:
        todo = todo[:max_runs]

    if ancestor is None:
        ancestor_dir = os.path.join(cache_dir, f"ancestor-{config.ancestor_id()}")
        learngene_dir = os.path.join(ancestor_dir, "learngenes")
    else:
        ancestor_dir = os.fspath(ancestor)
        learngene_dir = os.path.join(cache_dir, "learngenes-" + _digest(ancestor_dir))
    need_ancestor = ancestor is None and not os.path.isfile(os.path.join(ancestor_dir, "bench_ancestor.json"))
    data = dict(data or {})
    # A condensing set you pass is identified by its datasets fingerprint (the cache key of data-driven learngenes).
    condensing_id = config.condensing_id()
    if "condense_dataset" in data:
        condensing_id = "user-" + _digest(str(getattr(data["condense_dataset"], "_fingerprint", None)))
    needed = (["ancestor_train", "ancestor_test"] if need_ancestor else []) + (
        ["condense_dataset", "task_data"] if todo else []
    )
    missing = [part for part in needed if part not in data]
    if missing:
        data.update(load_default_data(config, missing))
    if need_ancestor:
        os.makedirs(ancestor_dir, exist_ok=True)
        train_ancestor(config, data["ancestor_train"], data.get("ancestor_test"), ancestor_dir, device=device, log=log)
    meta = {"protocol_id": protocol_id, "protocol": config.protocol(), "ancestor": ancestor or "trained here"}
    meta_path = os.path.splitext(os.fspath(results_path))[0] + ".meta.json"
    os.makedirs(os.path.dirname(os.path.abspath(results_path)), exist_ok=True)
    ancestor_info = os.path.join(ancestor_dir, "bench_ancestor.json")
    if os.path.isfile(ancestor_info):
        with open(ancestor_info) as f:
            meta["ancestor_training"] = json.load(f)
    meta["skipped_methods"] = missing_methods
    if not todo:
        _write_meta(meta_path, meta)
        return [r for r in read_results(results_path) if r.get("protocol_id") == protocol_id]

    ancestor_depth = config.ancestor_layers
    learngene_layers = config.learngene_layers or max(1, ancestor_depth // 2)
    depth = config.descendant_layers or ancestor_depth
    learngenes = _Learngenes(
        ancestor_dir,
        learngene_dir,
        learngene_layers,
        ancestor_depth,
        data.get("condense_dataset"),
        config.condense_options,
        condensing_id,
        log,
    )
    scratch_geometry = _ancestor_geometry(ancestor_dir)
    task_data: ImageTensors = data["task_data"]
    tasks = sample_tasks(
        task_data.labels,
        num_tasks=config.num_tasks,
        ways=config.ways,
        test_per_class=config.test_per_class,
        seed=config.task_seed,
    )
    # Condense every learngene before training anything: a method that fails is reported and its arm skipped.
    failed: dict[str, str] = {}
    for arm, seed in dict.fromkeys((s.arm, s.seed if s.arm == "random" else 0) for s in todo if s.arm != SCRATCH):
        if arm in failed:
            continue
        try:
            learngenes.get(arm, seed)
        except Exception as err:  # any failure of one method must not stop the other arms
            failed[arm] = f"{type(err).__name__}: {err}"
            log(f"Condensing for arm {arm!r} failed, its runs are skipped: {failed[arm]}")
    meta["failed_methods"] = failed
    meta["learngenes"] = learngenes.info
    _write_meta(meta_path, meta)  # now too, so a report of an interrupted run still shows the selections
    todo = [spec for spec in todo if spec.arm not in failed]
    device_obj = torch.device(device)
    bar = tqdm(todo, desc="runs", disable=not progress, dynamic_ncols=True)
    for spec in bar:
        bar.set_postfix_str(f"{spec.arm}/{spec.placement} k={spec.k_shot} t={spec.task} s={spec.seed} lr={spec.lr:g}")
        task = tasks[spec.task]
        train_rows = task.train_indices(spec.k_shot)
        run_seed = spec.seed * 7919 + spec.task * 104729 + 17
        torch.manual_seed(run_seed)
        info: dict[str, Any] = {}
        if spec.arm == SCRATCH:
            model = DescendantForImageClassification(
                LearngeneConfig(**scratch_geometry, layer_indices=list(range(depth)), num_labels=config.ways)
            )
            layout = "R" * depth
            inherited = 0
        else:
            folder, info = learngenes.get(spec.arm, spec.seed)
            num_inherited = len(info["layer_indices"])
            layout = "L" * num_inherited if spec.arm == ANCESTOR else make_layout(spec.placement, num_inherited, depth)
            model = DescendantForImageClassification.from_pretrained(folder, num_labels=config.ways, layout=layout)
            inherited = _count(model.learngene)
        model.to(device_obj)
        accs, seconds = train_model(
            model,
            task_data.images[train_rows],
            task.relabel(task_data.labels[train_rows]),
            lr=spec.lr,
            epochs=config.epochs,
            steps_per_epoch=config.steps_per_epoch,
            batch_size=config.batch_size,
            weight_decay=config.weight_decay,
            warmup_fraction=config.warmup_fraction,
            seed=run_seed,
            eval_images=task_data.images[task.test_indices],
            eval_labels=task.relabel(task_data.labels[task.test_indices]),
        )
        record = {
            "protocol_id": protocol_id,
            "arm": spec.arm,
            "placement": spec.placement,
            "layout": layout,
            "k_shot": spec.k_shot,
            "train_per_class": len(train_rows) // config.ways,
            "task": spec.task,
            "task_classes": task.classes,
            "seed": spec.seed,
            "lr": spec.lr,
            "epochs": config.epochs,
            "steps_per_epoch": config.steps_per_epoch,
            "best_acc": max(accs),
            "acc_per_epoch": accs,
            "train_seconds": seconds,
            "params": _count(model),
            "inherited_params": inherited,
            "layer_indices": info.get("layer_indices"),
            "device": device_obj.type,
        }
        append_result(results_path, record)
    meta["learngenes"] = learngenes.info
    _write_meta(meta_path, meta)
    return [r for r in read_results(results_path) if r.get("protocol_id") == protocol_id]


def _write_meta(path: str, meta: dict[str, Any]) -> None:
    # Keep what earlier (resumed) sessions learnt about learngenes that this session did not need to rebuild.
    if os.path.isfile(path):
        with open(path) as f:
            old = json.load(f)
        if old.get("protocol_id") == meta["protocol_id"]:
            meta["learngenes"] = {**old.get("learngenes", {}), **meta.get("learngenes", {})}
    with open(path, "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True)


def _ancestor_geometry(ancestor_dir: str) -> dict[str, Any]:
    from .ancestry import load_ancestor

    return load_ancestor(ancestor_dir).geometry()


# --------------------------------------------------------------------------------------------------------------------
# Summary


def mean_ci(values: Iterable[float], confidence: float = 0.95) -> tuple[float, float, int]:
    """Mean, half-width of the Student-t confidence interval, and n (half-width is NaN for n < 2)."""
    values = [float(v) for v in values]
    n = len(values)
    if n == 0:
        return float("nan"), float("nan"), 0
    mean = sum(values) / n
    if n < 2:
        return mean, float("nan"), n
    from scipy.stats import t

    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, float(t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n), n


def epochs_to_target(acc_per_epoch: Sequence[float], target: float) -> int | None:
    """First epoch (1-based) whose accuracy reaches `target`, or None when none does."""
    for epoch, acc in enumerate(acc_per_epoch, 1):
        if acc >= target - 1e-12:
            return epoch
    return None


def arm_label(record: dict[str, Any]) -> str:
    if record["arm"] in (SCRATCH, ANCESTOR):
        return record["arm"]
    return f"{record['arm']}/{record.get('placement', 'none')}"


def _k_order(k) -> tuple[int, float]:
    return (1, 0.0) if str(k) == ALL else (0, float(k))


def _label_order(label: str) -> tuple[int, str]:
    if label == SCRATCH:
        return (0, label)
    if label == ANCESTOR:
        return (2, label)
    return (1, label)


def summarize(records: Sequence[dict[str, Any]], main_lr: float | None = None) -> dict[str, Any]:
    """The four claims, measured against scratch, from benchmark records.

    Runs are paired with the scratch run of the same task, seed, k and lr, so task difficulty cancels out.

    Args:
        records (`list[dict]`):
            Benchmark records (see [`read_results`]).
        main_lr (`float`, *optional*):
            The learning rate of the main runs; the most frequent lr in `records` when `None`.

    Returns:
        `dict` with `main_lr`, `labels`, `k_shots` and, keyed by `(label, k)` (k as a string):
        `performance` (mean/CI/n of best accuracy, and of the paired difference to scratch),
        `convergence` (share of runs reaching the paired scratch run's best accuracy, mean epochs to get there,
        scratch's mean epochs to its own best over the same pairs, and their ratio),
        `sensitivity` (per lr mean accuracy, spread = max - min best accuracy over the lr grid, mean and worst over
        the grid, paired differences to scratch), `samples` (smallest k whose mean best accuracy reaches scratch's
        at the largest k).
    """
    if not records:
        raise ValueError("No benchmark records to summarize.")
    if main_lr is None:
        counts: dict[float, int] = defaultdict(int)
        for r in records:
            counts[float(r["lr"])] += 1
        main_lr = max(counts, key=lambda lr: (counts[lr], -lr))
    main = [r for r in records if math.isclose(float(r["lr"]), main_lr)]
    labels = sorted({arm_label(r) for r in records}, key=_label_order)
    k_shots = sorted({str(r["k_shot"]) for r in records}, key=_k_order)
    by_cell: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in main:
        by_cell[(arm_label(r), str(r["k_shot"]))].append(r)
    scratch_of = {
        (str(r["k_shot"]), int(r["task"]), int(r["seed"]), float(r["lr"])): r for r in records if r["arm"] == SCRATCH
    }

    def paired(r):
        return scratch_of.get((str(r["k_shot"]), int(r["task"]), int(r["seed"]), float(r["lr"])))

    performance, convergence = {}, {}
    for (label, k), runs in by_cell.items():
        best = [r["best_acc"] for r in runs]
        diffs = [r["best_acc"] - s["best_acc"] for r in runs if (s := paired(r)) is not None]
        m, ci, n = mean_ci(best)
        dm, dci, dn = mean_ci(diffs)
        performance[(label, k)] = {"mean": m, "ci": ci, "n": n, "diff": dm, "diff_ci": dci, "diff_n": dn}
        reached, arm_epochs, scratch_epochs = 0, [], []
        pairs = 0
        for r in runs:
            s = paired(r)
            if s is None:
                continue
            pairs += 1
            e = epochs_to_target(r["acc_per_epoch"], s["best_acc"])
            if e is not None:
                reached += 1
                arm_epochs.append(e)
                scratch_epochs.append(epochs_to_target(s["acc_per_epoch"], s["best_acc"]))
        ae = sum(arm_epochs) / len(arm_epochs) if arm_epochs else float("nan")
        se = sum(scratch_epochs) / len(scratch_epochs) if scratch_epochs else float("nan")
        convergence[(label, k)] = {
            "pairs": pairs,
            "reached": reached,
            "reach_rate": reached / pairs if pairs else float("nan"),
            "epochs_to_target": ae,
            "scratch_epochs_to_best": se,
            "speedup": se / ae if arm_epochs else float("nan"),
        }

    # Sensitivity: cells where several lrs were run for the same (label, k, task, seed).
    grid: dict[tuple[str, str], dict[tuple[int, int], dict[float, float]]] = defaultdict(lambda: defaultdict(dict))
    for r in records:
        grid[(arm_label(r), str(r["k_shot"]))][(int(r["task"]), int(r["seed"]))][float(r["lr"])] = r["best_acc"]
    sensitivity = {}
    for cell, per_run in grid.items():
        lrs = sorted({lr for accs in per_run.values() for lr in accs})
        if len(lrs) < 2:
            continue
        complete = {run: accs for run, accs in per_run.items() if len(accs) == len(lrs)}
        if not complete:
            continue
        scratch_cell = grid.get((SCRATCH, cell[1]), {})
        spreads, means, worsts, spread_diffs, mean_diffs = [], [], [], [], []
        for run, accs in complete.items():
            values = list(accs.values())
            spreads.append(max(values) - min(values))
            means.append(sum(values) / len(values))
            worsts.append(min(values))
            s = scratch_cell.get(run)
            if s is not None and len(s) == len(lrs) and set(s) == set(accs):
                s_values = list(s.values())
                spread_diffs.append(spreads[-1] - (max(s_values) - min(s_values)))
                mean_diffs.append(means[-1] - sum(s_values) / len(s_values))
        sensitivity[cell] = {
            "lrs": lrs,
            "per_lr": {lr: mean_ci([accs[lr] for accs in complete.values()]) for lr in lrs},
            "spread": mean_ci(spreads),
            "grid_mean": mean_ci(means),
            "worst": mean_ci(worsts),
            "spread_diff": mean_ci(spread_diffs),
            "grid_mean_diff": mean_ci(mean_diffs),
        }

    samples = {}
    largest = k_shots[-1]
    reference = performance.get((SCRATCH, largest), {}).get("mean")
    for label in labels:
        needed = None
        if reference is not None:
            for k in k_shots:
                cell = performance.get((label, k))
                if cell is not None and cell["mean"] >= reference:
                    needed = k
                    break
        samples[label] = {"k_to_match_scratch_at_largest": needed, "scratch_reference": reference, "largest": largest}
    return {
        "main_lr": main_lr,
        "labels": labels,
        "k_shots": k_shots,
        "performance": performance,
        "convergence": convergence,
        "sensitivity": sensitivity,
        "samples": samples,
    }


def _pct(value: float, ci: float | None = None, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    text = f"{100 * value:+.1f}" if signed else f"{100 * value:.1f}"
    if ci is not None and not math.isnan(ci):
        text += f" ± {100 * ci:.1f}"
    return text


def render_markdown(
    records: Sequence[dict[str, Any]],
    meta: dict[str, Any] | None = None,
    plots: Sequence[str] = (),
    title: str = "Learning efficiency: the four claims",
) -> str:
    """A markdown report of [`summarize`]`(records)`: setup, then one section per claim, then the plots."""
    summary = summarize(records)
    labels, k_shots = summary["labels"], summary["k_shots"]
    perf, conv, sens = summary["performance"], summary["convergence"], summary["sensitivity"]
    lines = [f"# {title}", ""]
    epochs = sorted({r["epochs"] for r in records})
    steps = sorted({r.get("steps_per_epoch") for r in records if r.get("steps_per_epoch")})
    devices = sorted({r.get("device", "?") for r in records})
    lines += [
        f"{len(records)} runs; main learning rate {summary['main_lr']:g}; {'/'.join(map(str, epochs))} epochs of "
        f"{'/'.join(map(str, steps))} optimiser steps; "
        f"device(s): {', '.join(devices)}. Accuracies are percentages: mean ± 95% CI (Student t) over tasks x seeds "
        "of each run's best test accuracy. Differences are paired with the scratch run of the same task, seed, k "
        "and lr.",
        "",
    ]
    if meta:
        training = meta.get("ancestor_training") or {}
        if training.get("test_accuracy") is not None:
            lines.append(
                f"Ancestor: held-out accuracy {100 * training['test_accuracy']:.1f}% after "
                f"{training.get('train_seconds', float('nan')):.0f} s of training on {training.get('num_images')} "
                "images."
            )
        if meta.get("learngenes"):
            lines += ["", "| learngene | ancestry layers kept | condensing time (s) |", "| --- | --- | --- |"]
            for name, info in sorted(meta["learngenes"].items()):
                lines.append(f"| {name} | {info['layer_indices']} | {info['condense_seconds']:.1f} |")
        if meta.get("skipped_methods"):
            lines.append(f"\nNot run (method not available): {', '.join(meta['skipped_methods'])}.")
        for method, error in (meta.get("failed_methods") or {}).items():
            lines.append(f"\nNot run (condensing failed): {method}: {error}")
        lines.append("")

    lines += ["## Claim 3, performance: best test accuracy (%)", ""]
    lines.append("| arm | " + " | ".join(f"k={k}" for k in k_shots) + " |")
    lines.append("| --- |" + " --- |" * len(k_shots))
    for label in labels:
        row = [_pct(perf[(label, k)]["mean"], perf[(label, k)]["ci"]) if (label, k) in perf else "-" for k in k_shots]
        lines.append(f"| {label} | " + " | ".join(row) + " |")
    lines += ["", "Paired difference to scratch (points):", ""]
    lines.append("| arm | " + " | ".join(f"k={k}" for k in k_shots) + " |")
    lines.append("| --- |" + " --- |" * len(k_shots))
    for label in labels:
        if label == SCRATCH:
            continue
        row = []
        for k in k_shots:
            cell = perf.get((label, k))
            row.append(_pct(cell["diff"], cell["diff_ci"], signed=True) if cell and cell["diff_n"] else "-")
        lines.append(f"| {label} | " + " | ".join(row) + " |")

    lines += [
        "",
        "## Claim 1, faster convergence: epochs to reach scratch's best accuracy",
        "",
        "Per pair: the first epoch at which the arm reaches the best accuracy its paired scratch run ever reached. "
        "`reached` = share of pairs where it does; `speedup` = scratch's epochs to its own best / the arm's epochs "
        "to that target, over the pairs that reach it.",
        "",
    ]
    lines.append("| arm | " + " | ".join(f"k={k}: reached, epochs (scratch), speedup" for k in k_shots) + " |")
    lines.append("| --- |" + " --- |" * len(k_shots))
    for label in labels:
        if label == SCRATCH:
            continue
        row = []
        for k in k_shots:
            c = conv.get((label, k))
            if not c or not c["pairs"]:
                row.append("-")
                continue
            if not c["reached"]:
                row.append(f"0/{c['pairs']}")
                continue
            row.append(
                f"{c['reached']}/{c['pairs']}, {c['epochs_to_target']:.1f} ({c['scratch_epochs_to_best']:.1f}), "
                f"{c['speedup']:.1f}x"
            )
        lines.append(f"| {label} | " + " | ".join(row) + " |")

    lines += ["", "## Claim 2, hyperparameter sensitivity: best accuracy over the learning-rate grid", ""]
    if not sens:
        lines += ["No learning-rate grid in these results.", ""]
    for k in k_shots:
        cells = [(label, sens[(label, k)]) for label in labels if (label, k) in sens]
        if not cells:
            continue
        lrs = cells[0][1]["lrs"]
        lines += [
            f"k={k}. `spread` = max - min best accuracy over the grid per task and seed; `grid mean` = mean over "
            "the grid; differences are paired with scratch.",
            "",
            "| arm | "
            + " | ".join(f"lr={lr:g}" for lr in lrs)
            + " | spread | Δ spread vs scratch | grid mean | Δ grid mean vs scratch | worst lr |",
            "| --- |" + " --- |" * (len(lrs) + 5),
        ]
        for label, cell in cells:
            per_lr = [_pct(*cell["per_lr"][lr][:2]) if lr in cell["per_lr"] else "-" for lr in lrs]
            lines.append(
                f"| {label} | "
                + " | ".join(per_lr)
                + f" | {_pct(*cell['spread'][:2])} | "
                + (_pct(*cell["spread_diff"][:2], signed=True) if label != SCRATCH else "")
                + f" | {_pct(*cell['grid_mean'][:2])} | "
                + (_pct(*cell["grid_mean_diff"][:2], signed=True) if label != SCRATCH else "")
                + f" | {_pct(*cell['worst'][:2])} |"
            )
        lines.append("")

    largest = k_shots[-1]
    lines += [
        "## Claim 4, fewer samples",
        "",
        f"Smallest k whose mean best accuracy reaches scratch's at k={largest} "
        f"({_pct(summary['samples'].get(SCRATCH, {}).get('scratch_reference'))}%), and each arm's accuracy at the "
        "smallest k minus scratch's at the largest.",
        "",
        f"| arm | k to match scratch at k={largest} | acc at k={k_shots[0]} - scratch at k={largest} |",
        "| --- | --- | --- |",
    ]
    reference = summary["samples"].get(SCRATCH, {}).get("scratch_reference")
    for label in labels:
        needed = summary["samples"][label]["k_to_match_scratch_at_largest"]
        small = perf.get((label, k_shots[0]), {}).get("mean")
        gap = _pct(small - reference, signed=True) if small is not None and reference is not None else "-"
        lines.append(f"| {label} | {needed if needed is not None else 'not reached'} | {gap} |")
    if plots:
        lines += ["", "## Plots", ""]
        lines += [f"![{os.path.splitext(os.path.basename(p))[0]}]({os.path.basename(p)})" for p in plots]
    return "\n".join(lines) + "\n"


def plot_results(
    records: Sequence[dict[str, Any]], output_dir: str | os.PathLike, prefix: str = "learning"
) -> list[str]:
    """Draw accuracy vs k, learning curves (main lr) and accuracy over the lr grid; returns the PNG paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = summarize(records)
    labels, k_shots, perf = summary["labels"], summary["k_shots"], summary["performance"]
    os.makedirs(output_dir, exist_ok=True)
    paths = []

    # One colour per condensing method, solid for new layers on top and dash-dot for interleaved.
    methods = sorted({label.split("/")[0] for label in labels} - {SCRATCH, ANCESTOR})
    palette = plt.get_cmap("tab10")

    def style(label):
        if label == SCRATCH:
            return {"color": "black", "linestyle": "--", "linewidth": 2}
        if label == ANCESTOR:
            return {"color": "gray", "linestyle": ":", "linewidth": 2}
        method, _, placement = label.partition("/")
        return {"color": palette(methods.index(method) % 10), "linestyle": "-" if placement == "top" else "-."}

    fig, ax = plt.subplots(figsize=(7, 4.5))
    xs = list(range(len(k_shots)))
    for label in labels:
        points = [(x, perf[(label, k)]) for x, k in zip(xs, k_shots, strict=True) if (label, k) in perf]
        if points:
            ax.errorbar(
                [p[0] for p in points],
                [100 * p[1]["mean"] for p in points],
                yerr=[100 * (0 if math.isnan(p[1]["ci"]) else p[1]["ci"]) for p in points],
                label=label,
                capsize=3,
                marker="o",
                **style(label),
            )
    ax.set_xticks(xs, [f"k={k}" for k in k_shots])
    ax.set_ylabel("best test accuracy (%)")
    ax.set_title("Accuracy vs training images per class (mean ± 95% CI)")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    paths.append(os.path.join(output_dir, f"{prefix}_accuracy_vs_k.png"))
    fig.tight_layout()
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    main = [r for r in records if math.isclose(float(r["lr"]), summary["main_lr"])]
    fig, axes = plt.subplots(1, len(k_shots), figsize=(4.2 * len(k_shots), 4), sharey=True, squeeze=False)
    for ax, k in zip(axes[0], k_shots, strict=True):
        for label in labels:
            curves = [r["acc_per_epoch"] for r in main if arm_label(r) == label and str(r["k_shot"]) == k]
            if curves:
                length = min(len(c) for c in curves)
                mean = np.mean([c[:length] for c in curves], axis=0)
                ax.plot(range(1, length + 1), 100 * mean, label=label, **style(label))
        ax.set_title(f"k={k}")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"test accuracy (%), lr={summary['main_lr']:g}")
    handles, names = axes[0][-1].get_legend_handles_labels()
    fig.legend(handles, names, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    paths.append(os.path.join(output_dir, f"{prefix}_curves.png"))
    fig.tight_layout()
    fig.savefig(paths[-1], dpi=110, bbox_inches="tight")
    plt.close(fig)

    sens = summary["sensitivity"]
    grid_ks = [k for k in k_shots if any((label, k) in sens for label in labels)]
    if grid_ks:
        fig, axes = plt.subplots(1, len(grid_ks), figsize=(5.5 * len(grid_ks), 4), sharey=True, squeeze=False)
        for ax, k in zip(axes[0], grid_ks, strict=True):
            for label in labels:
                cell = sens.get((label, k))
                if cell:
                    ax.plot(
                        cell["lrs"],
                        [100 * cell["per_lr"][lr][0] for lr in cell["lrs"]],
                        marker="o",
                        label=label,
                        **style(label),
                    )
            ax.set_xscale("log")
            ax.set_xlabel("peak learning rate")
            ax.set_title(f"k={k}")
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel("best test accuracy (%)")
        axes[0][-1].legend(fontsize=7)
        paths.append(os.path.join(output_dir, f"{prefix}_lr_grid.png"))
        fig.tight_layout()
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    return paths


def write_report(results_path: str | os.PathLike, output_dir: str | os.PathLike | None = None) -> str:
    """Summarize a results file into `<name>.md` and `<name>_*.png` beside it (or in `output_dir`)."""
    results_path = os.fspath(results_path)
    records = read_results(results_path)
    if not records:
        raise ValueError(f"{results_path} has no records: run the benchmark first.")
    output_dir = os.fspath(output_dir or os.path.dirname(os.path.abspath(results_path)))
    stem = os.path.splitext(os.path.basename(results_path))[0]
    meta_path = os.path.splitext(results_path)[0] + ".meta.json"
    meta = None
    if os.path.isfile(meta_path):
        with open(meta_path) as f:
            meta = json.load(f)
    plots = plot_results(records, output_dir, prefix=stem)
    markdown_path = os.path.join(output_dir, f"{stem}.md")
    with open(markdown_path, "w") as f:
        f.write(render_markdown(records, meta, plots))
    return markdown_path


__all__ = [
    "ALL",
    "BenchmarkConfig",
    "ImageTensors",
    "RunSpec",
    "Task",
    "append_result",
    "arm_label",
    "config_for_ancestor",
    "dataset_to_tensors",
    "epochs_to_target",
    "evaluate_accuracy",
    "load_default_data",
    "make_layout",
    "mean_ci",
    "plan_runs",
    "plot_results",
    "read_results",
    "record_key",
    "render_markdown",
    "run_benchmark",
    "sample_tasks",
    "summarize",
    "train_ancestor",
    "train_model",
    "write_report",
]
