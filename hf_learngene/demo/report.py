"""The demo's outputs: the summary table, the learning-curve figure and `report.md`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..evaluation import first_epoch_reaching
from .settings import COMPARED_METHODS, PRIMARY_METHOD, DemoSettings

# Best-accuracy differences this small are not read as a difference in one run of one task (a guess at its noise).
_NOISE = 0.03


@dataclass
class DemoResult:
    """What [`run_demo`] produced: per-arm results, the table rows and where the files are."""

    output_dir: str
    arms: dict[str, dict[str, Any]]
    table: list[dict[str, Any]]
    ancestor: dict[str, Any]
    timings: dict[str, float]
    files: dict[str, str]


def summary_table(arms: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per arm: parameters, best accuracy, its epoch, and the first epoch reaching scratch's best."""
    scratch_best = max(e["eval_accuracy"] for e in arms["scratch"]["curve"] if e.get("eval_accuracy") is not None)
    rows = []
    for name, arm in arms.items():
        accuracies = [(e["eval_accuracy"], e["epoch"]) for e in arm["curve"] if e.get("eval_accuracy") is not None]
        best = max(a for a, _ in accuracies)
        best_epoch = min(epoch for a, epoch in accuracies if a == best)
        accuracy_curve = [e.get("eval_accuracy") for e in arm["curve"]]
        reached = first_epoch_reaching(accuracy_curve, scratch_best)
        rows.append(
            {
                "arm": name,
                "learngene_layers": arm["layer_indices"],
                "parameters": arm["parameters"],
                "inherited_parameters": arm["inherited_parameters"],
                "best_accuracy": best,
                "best_epoch": best_epoch,
                "epoch_reaching_scratch_best": None if reached is None else arm["curve"][reached - 1]["epoch"],
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

    colors = {
        "scratch": "tab:gray",
        "heuristic": "tab:blue",
        "first": "tab:green",
        "auto": "tab:orange",
        "first-half-width": "tab:purple",
        "first-identity": "tab:olive",
    }
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
    for arm in (PRIMARY_METHOD, *COMPARED_METHODS):
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
    auto, default = rows["auto"]["best_accuracy"], rows[PRIMARY_METHOD]["best_accuracy"]
    gap = auto - default
    if rows["auto"]["learngene_layers"] == rows[PRIMARY_METHOD]["learngene_layers"]:
        lines.append(f"- auto (the paper's method) kept the same layers as {PRIMARY_METHOD}: the same model.")
    elif abs(gap) <= _NOISE:
        lines.append(
            f"- auto (the paper's method) and {PRIMARY_METHOD} (the default) are within {_NOISE} of each other "
            f"({auto:.3f} vs {default:.3f}): one run cannot tell them apart."
        )
    elif gap > 0:
        lines.append(
            f"- auto (the paper's method) beat {PRIMARY_METHOD} (the default) by {gap:.3f} in best accuracy in this "
            "run; over many tasks and seeds it does not (the learning benchmark v2)."
        )
    else:
        lines.append(
            f"- auto (the paper's method) did not beat {PRIMARY_METHOD} (the default) ({auto:.3f} vs "
            f"{default:.3f}): in this run the data-driven choice added nothing over plain truncation."
        )
    first = rows["first"]
    if "first-half-width" in rows:
        half = rows["first-half-width"]
        lines.append(
            f"- **first-half-width** (the first-k learngene at half the width, {half['parameters']:,} parameters "
            f"against {first['parameters']:,}): best accuracy {half['best_accuracy']:.3f}, against "
            f"{first['best_accuracy']:.3f} at full width and {scratch['best_accuracy']:.3f} for scratch at full width."
        )
    if "first-identity" in rows:
        grown = rows["first-identity"]
        lines.append(
            f"- **first-identity** (the same descendant as first, its new layer starting as the identity): best "
            f"accuracy {grown['best_accuracy']:.3f} against {first['best_accuracy']:.3f} with a random new layer."
        )
    return lines


def write_report(path: str, result: DemoResult, settings: DemoSettings, quick: bool) -> None:
    ancestor = result.ancestor
    selection = result.arms["auto"]  # the paper's method: its scores are reported
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
        f"{ancestor['heldout_accuracy']:.3f} on {ancestor['heldout_images']:,} held-out test images.",
        f"2. **Condensing**: `condense(ancestor, num_layers={settings.num_layers})` with the default method, "
        f"first-k truncation, kept layers {result.arms[PRIMARY_METHOD]['layer_indices']} (the default because no "
        "data-driven method beat it on the learning benchmark v2). For comparison, the paper's "
        f'`condense(method="auto")` on {selection.get("condensing_set") or "Fashion-MNIST classes 6-9"} kept '
        f"{selection['layer_indices']} (scores per layer: {score_text}) and the heuristic learngene keeps the last "
        f"{settings.num_layers} layers {result.arms['heuristic']['layer_indices']}.",
        f"3. **Inheriting**: descendants with layout `{settings.layout}` (L = inherited layer, R = new layer) for a "
        f"5-way MNIST task (digits {', '.join(map(str, settings.task_classes))}; "
        f"{settings.train_per_class} training and {settings.test_per_class} held-out images per class), trained "
        f"{settings.epochs} epochs with the Trainer (AdamW, lr {settings.learning_rate:g}, batch "
        f"{settings.batch_size}, cosine schedule, same seed); scratch is the same architecture with every weight "
        "random. Two more arms grow from the first-k learngene what truncation cannot: first-half-width (half the "
        "hidden size, heads and MLP, every tensor sliced by weight selection's uniform rule) and first-identity (its "
        "new layer starts as the identity).",
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
        "- `learngene/`: the first-k learngene (`LearngeneModel.from_pretrained`, card in README.md)",
        "- `learngene-heuristic/`, `learngene-auto/`: the learngenes compared with it",
        "- `descendant/`: the trained first-k descendant (`DescendantForImageClassification.from_pretrained`, card)",
        "- `results.json`: settings, per-epoch curves of every arm, timings",
        "",
        f"Timings: {timing}. Device: {result.arms[PRIMARY_METHOD].get('device', 'cpu')}.",
        "",
    ]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


__all__ = ["DemoResult", "format_table", "plot_learning_curves", "summary_table", "write_report"]
