"""Turn `runs.jsonl` into the report: paired differences with Student-t 95% CIs over task-seed pairs, per domain
and k; time-to-accuracy; the condensing table; the learning-rate grid; plateau checks; and plots.

Every figure is computed here from the records; nothing is typed in by hand.
"""

from __future__ import annotations

import json
import math
import os
import statistics
from collections import defaultdict

from .arms import ARMS, LEARNGENES

KS = ("10", "50", "all")


def t_ci(values: list[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and the Student-t confidence interval of the mean (nan bounds for fewer than 2 values)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan, math.nan
    from scipy.stats import t

    half = t.ppf(0.5 + confidence / 2, n - 1) * statistics.stdev(values) / math.sqrt(n)
    return mean, mean - half, mean + half


def index(runs: list[dict]) -> dict:
    """(domain, k, arm) -> {(task, seed): run}."""
    table = defaultdict(dict)
    for r in runs:
        table[(r["domain"], r["k"], r["arm"])][(r["task"], r["seed"])] = r
    return table


def paired(table: dict, domain: str, k: str, arm: str, baseline: str):
    """Mean paired difference arm - baseline in points, its CI and n, over the pairs both have."""
    a, b = table.get((domain, k, arm), {}), table.get((domain, k, baseline), {})
    common = sorted(a.keys() & b.keys())
    if not common:
        return None
    diffs = [100 * (a[p]["test_at_best_val"] - b[p]["test_at_best_val"]) for p in common]
    mean, lo, hi = t_ci(diffs)
    return {"mean": mean, "lo": lo, "hi": hi, "n": len(common)}


def fmt_diff(d) -> str:
    if d is None:
        return "-"
    if math.isnan(d["lo"]):
        return f"{d['mean']:+.1f} (n={d['n']})"
    return f"{d['mean']:+.1f} [{d['lo']:+.1f}, {d['hi']:+.1f}]"


def accuracy_of(table, domain, k, arm):
    runs = list(table.get((domain, k, arm), {}).values())
    if not runs:
        return None
    values = [100 * r["test_at_best_val"] for r in runs]
    return {
        "mean": sum(values) / len(values),
        "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
        "n": len(values),
    }


def time_to_accuracy(table, domain, k, arm):
    """Against scratch's reported accuracy on the same pair: the fraction of pairs where the arm reaches it, and
    the median training CPU-seconds, steps and GFLOPs of the first evaluation that does."""
    scratch = table.get((domain, k, "scratch"), {})
    runs = table.get((domain, k, arm), {})
    reached, seconds, steps, flops, epochs = 0, [], [], [], []
    common = sorted(runs.keys() & scratch.keys())
    for pair in common:
        target = scratch[pair]["test_at_best_val"]
        run = runs[pair]
        for point in run["curve"]:
            if point["test"] >= target:
                reached += 1
                seconds.append(point["cpu_seconds"])
                steps.append(point["step"])
                epochs.append(point["step"] * run["batch_size"] / run["n_train"])
                flops.append(point["step"] * run["batch_size"] * run["train_flops_per_image"] / 1e9)
                break
    if not common:
        return None
    med = statistics.median
    return {
        "reached": reached,
        "n": len(common),
        "seconds": med(seconds) if seconds else None,
        "steps": med(steps) if steps else None,
        "gflop": med(flops) if flops else None,
        "epochs": med(epochs) if epochs else None,
    }


def throughput(table, arm):
    rates = [
        r["steps"] * r["batch_size"] / r["train_cpu_seconds"]
        for (_, _, a), runs in table.items()
        if a == arm
        for r in runs.values()
        if r["train_cpu_seconds"] > 0 and not r.get("shared_from")
    ]
    return statistics.median(rates) if rates else None


def condensing_uses(runs: list[dict]) -> dict:
    """How many descendant runs each condensing run served (a top-k learngene counts for its source run)."""
    uses = defaultdict(int)
    for r in runs:
        lg = ARMS[r["arm"]].learngene
        if lg:
            uses[LEARNGENES[lg].from_scores or lg] += 1
    return dict(uses)


def amortised(cost: float, descendants: int) -> float | None:
    """Condensing cost per descendant trained from the learngene (None when it served none or cost nothing)."""
    if not descendants or not cost:
        return None
    return cost / descendants


def _verdict(diff) -> str:
    if diff is None:
        return "not measured"
    if not math.isnan(diff["lo"]) and diff["lo"] > 0:
        return "holds"
    if not math.isnan(diff["hi"]) and diff["hi"] < 0:
        return "does not hold (reversed)"
    return "does not hold (no difference shown)"


def claims(table: dict, domains: list[str]) -> list[dict]:
    """The paper's four claims for first-6 (= the one-liner) against scratch, each with a verdict computed from the
    paired runs: a claim holds where the paired 95% CI excludes zero in its favour."""
    out = []
    # 1. Faster convergence: CPU-seconds to reach scratch's reported accuracy, against scratch's own.
    parts, ratios = [], []
    for d in domains:
        for k in KS:
            scratch = table.get((d, k, "scratch"), {})
            first = table.get((d, k, "first6"), {})
            for pair in sorted(scratch.keys() & first.keys()):
                target = scratch[pair]["test_at_best_val"]
                own = next(p["cpu_seconds"] for p in scratch[pair]["curve"] if p["test"] >= target)
                reach = next((p["cpu_seconds"] for p in first[pair]["curve"] if p["test"] >= target), None)
                ratios.append(math.inf if reach is None else reach / own)
            if scratch and first:
                tta = time_to_accuracy(table, d, k, "first6")
                parts.append(f"{d} k={k}: {tta['reached']}/{tta['n']}")
    if ratios:
        from scipy.stats import binomtest

        faster = sum(r < 1 for r in ratios)
        p_value = binomtest(faster, len(ratios), 0.5, alternative="greater").pvalue
        out.append(
            {
                "claim": "1. converges faster",
                "verdict": "holds" if p_value < 0.05 else "does not hold (not shown)",
                "evidence": f"first-6 reached scratch's accuracy in less training time than scratch itself needed "
                f"in {faster}/{len(ratios)} pairs (one-sided sign test p = {p_value:.2g}; median time ratio "
                f"{statistics.median(ratios):.2f}); pairs where it reached it at all: " + ", ".join(parts),
            }
        )
    # 2. Less sensitive to hyperparameters: the lr grid's spread, paired per task.
    spreads = []
    for d in domains:
        grid = {
            a: [table.get((d, "10", n), {}) for n in (f"{a}@0.0003", a, f"{a}@0.003")] for a in ("scratch", "first6")
        }
        pairs = (
            set.intersection(*(set(c.keys()) for cells in grid.values() for c in cells))
            if all(grid["scratch"]) and all(grid["first6"])
            else set()
        )
        for pair in sorted(pairs):
            spread = {
                a: 100
                * (max(c[pair]["test_at_best_val"] for c in cells) - min(c[pair]["test_at_best_val"] for c in cells))
                for a, cells in grid.items()
            }
            spreads.append(spread["scratch"] - spread["first6"])
    if spreads:
        mean, lo, hi = t_ci(spreads)
        diff = {"mean": mean, "lo": lo, "hi": hi, "n": len(spreads)}
        out.append(
            {
                "claim": "2. less sensitive to the learning rate",
                "verdict": _verdict(diff),
                "evidence": "accuracy spread (max - min) over lr 3e-4 / 1e-3 / 3e-3 at k=10, scratch minus "
                f"first-6: {fmt_diff(diff)} points over {len(spreads)} tasks",
            }
        )
    # 3. Better performance, per domain and k.
    cells = []
    for d in domains:
        for k in KS:
            diff = paired(table, d, k, "first6", "scratch")
            if diff:
                cells.append((d, k, diff))
    if cells:
        held = [f"{d} k={k}" for d, k, diff in cells if _verdict(diff) == "holds"]
        out.append(
            {
                "claim": "3. performs better",
                "verdict": "holds" if len(held) == len(cells) else f"holds in {len(held)} of {len(cells)} cells",
                "evidence": "; ".join(f"{d} k={k}: {fmt_diff(diff)}" for d, k, diff in cells),
            }
        )
    # 4. Fewer samples: first-6 with fewer images per class against scratch with more, same task and seed.
    rows = []
    for d in domains:
        for few, many in (("10", "50"), ("50", "all")):
            a, b = table.get((d, few, "first6"), {}), table.get((d, many, "scratch"), {})
            common = sorted(a.keys() & b.keys())
            if common:
                mean, lo, hi = t_ci([100 * (a[p]["test_at_best_val"] - b[p]["test_at_best_val"]) for p in common])
                rows.append((d, few, many, {"mean": mean, "lo": lo, "hi": hi, "n": len(common)}))
    if rows:
        matched = [r for r in rows if not math.isnan(r[3]["hi"]) and r[3]["hi"] > 0]
        out.append(
            {
                "claim": "4. needs fewer samples",
                "verdict": "holds"
                if len(matched) == len(rows)
                else f"holds in {len(matched)} of {len(rows)} comparisons",
                "evidence": "first-6 with fewer images per class minus scratch with more (holds where first-6 is not "
                "shown worse, i.e. the CI reaches above 0): "
                + "; ".join(f"{d} first-6 k={few} - scratch k={many}: {fmt_diff(diff)}" for d, few, many, diff in rows),
            }
        )
    return out


def _params(table, arm):
    runs = [r for (_, _, a), cell in table.items() if a == arm for r in cell.values()]
    return runs[0]["params"] if runs else None


def targets(table: dict, condensing: dict) -> list[list[str]]:
    """Issue 15's and 16's targets, each as [target, cell, measured, met]; a cell that did not run says so."""
    rows = []

    def check(label, d, k, arm, base, ok):
        diff = paired(table, d, k, arm, base)
        if diff is None:
            rows.append([label, f"{d} k={k}", "not run", "-"])
        else:
            rows.append([label, f"{d} k={k}", fmt_diff(diff), "yes" if ok(diff) else "**no**"])

    for arm in ("half_uniform", "half_heads", "half_activation"):
        name = ARMS[arm].label
        check(f"{name} >= scratch at half width + 8", "mnist", "10", arm, "scratch_half", lambda x: x["mean"] >= 8)
        check(f"{name} >= scratch at half width + 15", "mnist", "50", arm, "scratch_half", lambda x: x["mean"] >= 15)
        for k in ("10", "50"):
            check(f"{name} within 3 of full-width first-6", "mnist", k, arm, "first6", lambda x: x["mean"] >= -3)
    half, full = _params(table, "half_uniform"), _params(table, "first6")
    if half and full:
        rate_half, rate_full = throughput(table, "half_uniform"), throughput(table, "first6")
        rows.append(
            [
                "half width at about 1/4 of the parameters, throughput reported",
                "all",
                f"{half:,} / {full:,} parameters = {half / full:.2f}; {rate_half:.0f} / {rate_full:.0f} "
                f"training images per CPU-second = {rate_half / rate_full:.1f}x",
                "yes",
            ]
        )
    for arm in ("grow_identity", "grow_copy", "grow_linear"):
        name = ARMS[arm].label
        check(f"{name} >= first-3 + 3 random + 2", "mnist", "10", arm, "first3", lambda x: x["mean"] >= 2)
        check(f"{name} within 1 of first-6", "mnist", "10", arm, "first6", lambda x: x["mean"] >= -1)
    for arm in ("auto6", "cka6", "block_influence6", "angular_distance6", "search6"):
        name = ARMS[arm].label
        for d in ("mnist", "animals"):
            check(
                f"{name} >= first-6 + 1, CI above 0",
                d,
                "10",
                arm,
                "first6",
                lambda x: x["mean"] >= 1 and not math.isnan(x["lo"]) and x["lo"] > 0,
            )
        for k in ("50", "all"):
            if paired(table, "mnist", k, arm, "first6"):
                check(f"{name} no worse than first-6 - 0.5", "mnist", k, arm, "first6", lambda x: x["mean"] >= -0.5)
        lg = condensing.get(ARMS[arm].learngene)
        if lg:
            rows.append(
                [
                    f"{name} condenses in under 60 s (2-core CPU)",
                    "the ancestor",
                    f"{lg['cpu_seconds']:.1f} CPU-s on one core",
                    "yes" if lg["cpu_seconds"] < 60 else "**no**",
                ]
            )
    return rows


def _row(cells):
    return "| " + " | ".join(str(c) for c in cells) + " |"


def write_report(output: str, plot: bool = True) -> str:
    """Write learning_v2.md, README_table.md and the plots into `output`; returns the markdown."""
    from .runner import read_jsonl

    with open(os.path.join(output, "plan.json")) as f:
        plan = json.load(f)
    runs = [r for r in read_jsonl(os.path.join(output, "runs.jsonl")) if r["settings"] == plan["digest"]]
    condensing = {r["learngene"]: r for r in read_jsonl(os.path.join(output, "condensing.jsonl"))}
    ancestor = None
    if os.path.exists(os.path.join(output, "ancestor.json")):
        with open(os.path.join(output, "ancestor.json")) as f:
            ancestor = json.load(f)
    table = index(runs)
    domains = [d for d in ("mnist", "animals") if any(key[0] == d for key in table)]
    arms_present = [a for a in ARMS if any(key[2] == a for key in table)]
    lines = [f"# Learning benchmark v2: results (plan `{plan['plan']}`, settings {plan['digest']})", ""]
    lines += [
        f"{len(runs)} runs ({sum(1 for r in runs if r.get('shared_from'))} shared with a bit-identical twin). "
        "Accuracy is the test accuracy (500 images per task) at the earliest evaluation with the best validation "
        "accuracy (250 images); differences are paired over task-seed pairs with Student-t 95% CIs, in points.",
        "",
    ]
    if ancestor:
        g = ancestor["geometry"]
        lines += [
            f"Ancestor: ViT, {ancestor['layers']} layers, width {g['hidden_size']}, {g['num_attention_heads']} heads, "
            f"patch {g['patch_size']}, {ancestor['epochs']} epochs on Fashion-MNIST classes 0-5: "
            f"**{100 * ancestor['heldout_accuracy']:.1f}%** on its {ancestor['heldout_images']} held-out images.",
            "",
        ]

    # 0. The paper's four claims, each with its verdict.
    verdicts = claims(table, domains)
    lines += [
        "## The four claims at convergence (first-6 = the HF one-liner, against scratch)",
        "",
        _row(["claim", "verdict", "evidence"]),
        _row(["---"] * 3),
    ]
    lines += [_row([c["claim"], f"**{c['verdict']}**", c["evidence"]]) for c in verdicts]
    lines.append("")
    readme_claims = [_row(["claim", "verdict", "evidence"]), _row(["---"] * 3)]
    readme_claims += [_row([c["claim"], f"**{c['verdict']}**", c["evidence"]]) for c in verdicts]

    # 1. The claims: first-6 (= the one-liner) against scratch.
    lines += ["## 1. Claims: first-6 (= the HF one-liner) against scratch", ""]
    lines += [
        _row(
            [
                "domain",
                "k",
                "scratch",
                "first-6",
                "first-6 - scratch",
                "pairs",
                "scratch plateau gain",
                "first-6 plateau gain",
            ]
        ),
        _row(["---"] * 8),
    ]
    readme = [
        _row(["domain", "k", "scratch", "first-6 (= one-liner)", "difference [95% CI]", "pairs"]),
        _row(["---"] * 6),
    ]
    for d in domains:
        for k in KS:
            s, f = accuracy_of(table, d, k, "scratch"), accuracy_of(table, d, k, "first6")
            if not s or not f:
                continue
            diff = paired(table, d, k, "first6", "scratch")
            pg = {
                a: statistics.mean(r["plateau_gain"] for r in table[(d, k, a)].values()) for a in ("scratch", "first6")
            }
            lines.append(
                _row(
                    [
                        d,
                        k,
                        f"{s['mean']:.1f}",
                        f"{f['mean']:.1f}",
                        fmt_diff(diff),
                        diff["n"],
                        f"{pg['scratch']:+.1f}",
                        f"{pg['first6']:+.1f}",
                    ]
                )
            )
            readme.append(_row([d, k, f"{s['mean']:.1f}", f"{f['mean']:.1f}", fmt_diff(diff), diff["n"]]))
    lines += [
        "",
        "Plateau gain: best validation accuracy of a run minus the best in its first half (points, mean "
        "over runs); below ~1 point the run had plateaued.",
        "",
    ]

    # 2. Every arm.
    lines += ["## 2. Every arm", ""]
    for d in domains:
        for k in KS:
            present = [a for a in arms_present if (d, k, a) in table]
            if len(present) < 2:
                continue
            lines += [
                f"### {d}, k={k}",
                "",
                _row(["arm", "issue", "accuracy (sd)", "n", "- scratch", "- its baseline", "baseline"]),
                _row(["---"] * 7),
            ]
            for a in present:
                arm = ARMS[a]
                acc = accuracy_of(table, d, k, a)
                base = arm.baseline if arm.baseline != "scratch" else None
                lines.append(
                    _row(
                        [
                            arm.label,
                            arm.issue,
                            f"{acc['mean']:.1f} ({acc['sd']:.1f})",
                            acc["n"],
                            fmt_diff(paired(table, d, k, a, "scratch")) if a != "scratch" else "",
                            fmt_diff(paired(table, d, k, a, base)) if base else "",
                            base or "",
                        ]
                    )
                )
            lines.append("")

    # 3. Time to accuracy.
    lines += [
        "## 3. Time to scratch's accuracy",
        "",
        "Per pair, the target is scratch's reported accuracy; for each arm, the first evaluation (8 per run) "
        "whose test accuracy reaches it. Medians over the pairs that reach it; training CPU-seconds of one "
        "single-threaded worker, evaluations excluded.",
        "",
        _row(["domain", "k", "arm", "reached", "steps", "epochs", "CPU-s", "GFLOP", "train img / CPU-s"]),
        _row(["---"] * 9),
    ]
    for d in domains:
        for k in KS:
            for a in (
                "scratch",
                "oneliner",
                "first6",
                "first3",
                "auto6",
                "cka6",
                "block_influence6",
                "angular_distance6",
                "search6",
                "whole",
                "half_uniform",
                "half_heads",
                "half_activation",
                "scratch_half",
                "grow_identity",
                "grow_copy",
                "grow_linear",
                "tleg6",
            ):
                tta = time_to_accuracy(table, d, k, a) if (d, k, a) in table else None
                if not tta:
                    continue
                rate = throughput(table, a)
                lines.append(
                    _row(
                        [
                            d,
                            k,
                            ARMS[a].label,
                            f"{tta['reached']}/{tta['n']}",
                            "-" if tta["steps"] is None else f"{tta['steps']:.0f}",
                            "-" if tta["epochs"] is None else f"{tta['epochs']:.1f}",
                            "-" if tta["seconds"] is None else f"{tta['seconds']:.1f}",
                            "-" if tta["gflop"] is None else f"{tta['gflop']:.0f}",
                            "-" if rate is None else f"{rate:.0f}",
                        ]
                    )
                )
    lines.append("")

    ratios = [r["run_wall_seconds"] / r["run_cpu_seconds"] for r in runs if r["run_cpu_seconds"] > 0]
    if ratios:
        lines += [
            f"Wall-clock: each worker is one single-threaded process with a core of its own, so its wall-clock time "
            f"is its CPU time; measured over whole runs (evaluations included), wall / CPU = "
            f"{statistics.median(ratios):.2f} (median; {min(ratios):.2f} to {max(ratios):.2f}).",
            "",
        ]

    # 4. Condensing: cost and what it buys.
    uses = condensing_uses(runs)
    lines += [
        "## 4. Condensing methods: layers, cost, accuracy against first-k",
        "",
        "Cost is CPU-seconds of one single-threaded worker; amortised = cost / descendants trained from it in "
        "this plan. The 3-layer learngenes are the top 3 of the 6-layer run's scores (no extra cost).",
        "",
        _row(
            [
                "learngene",
                "method",
                "layers",
                "CPU-s",
                "amortised",
                "mnist k=10 vs first-k",
                "mnist k=50 vs first-k",
                "animals k=10 vs first-k",
            ]
        ),
        _row(["---"] * 8),
    ]
    for name, c in condensing.items():
        arm = next(
            (
                a
                for a in ARMS.values()
                if a.learngene == name
                and a.width == 1.0
                and not a.new_layer_init
                and a.lr == 1e-3
                and a.depth == 6
                and not a.scratch_budget
            ),
            None,
        )
        cells = []
        for d, k in (("mnist", "10"), ("mnist", "50"), ("animals", "10")):
            cells.append(
                fmt_diff(paired(table, d, k, arm.name, arm.baseline if arm.baseline != "scratch" else "first6"))
                if arm and arm.name not in ("first6", "first3") and (d, k, arm.name) in table
                else "-"
            )
        n = uses.get(name, 0)
        share = amortised(c["cpu_seconds"], n)
        lines.append(
            _row(
                [
                    name,
                    c["method"],
                    c["layers"],
                    c["cpu_seconds"],
                    "-" if share is None else f"{share:.1f}",
                    *cells,
                ]
            )
        )
    lines.append("")

    # 5. Learning-rate grid.
    grid = [(lr, a) for lr in ("0.0003", None, "0.003") for a in ("scratch", "first6")]
    if any((d, "10", f"{a}@{lr}") in table for d in domains for lr, a in grid if lr):
        lines += [
            "## 5. Learning-rate sensitivity (k=10)",
            "",
            _row(["domain", "arm", "lr 3e-4", "lr 1e-3", "lr 3e-3", "spread (max - min)"]),
            _row(["---"] * 6),
        ]
        for d in domains:
            for a in ("scratch", "first6"):
                accs = []
                for lr in ("0.0003", None, "0.003"):
                    name = a if lr is None else f"{a}@{lr}"
                    pairs = table.get((d, "10", name), {})
                    # the lr grid runs seed 0 only: compare on the same pairs
                    grid_pairs = table.get((d, "10", f"{a}@0.0003"), {}).keys()
                    vals = [100 * pairs[p]["test_at_best_val"] for p in grid_pairs if p in pairs]
                    accs.append(sum(vals) / len(vals) if vals else None)
                if all(v is not None for v in accs):
                    lines.append(_row([d, ARMS[a].label, *(f"{v:.1f}" for v in accs), f"{max(accs) - min(accs):.1f}"]))
        lines.append("")

    # 6. Plateau check.
    lines += [
        "## 6. Plateau check",
        "",
        "Mean in-run gain per arm and cell (best validation accuracy minus the best within the first half of "
        "the run, points). PROTOCOL.md section 5: a mean of 0.5 or more flags the arm as not plateaued at its "
        "budget.",
        "",
        _row(["domain", "k", "steps (scratch / inheriting)", "arm", "mean gain", "flag"]),
        _row(["---"] * 6),
    ]
    for d in domains:
        for k in KS:
            for a in arms_present:
                cell = table.get((d, k, a))
                if not cell:
                    continue
                gain = statistics.mean(r["plateau_gain"] for r in cell.values())
                steps = sorted({r["steps"] for r in cell.values()})
                lines.append(
                    _row(
                        [
                            d,
                            k,
                            "/".join(map(str, steps)),
                            ARMS[a].label,
                            f"{gain:+.1f}",
                            "not plateaued" if gain >= 0.5 else "",
                        ]
                    )
                )
    lines.append("")

    # 7. The default condensing method (issue 16's rule).
    lines += [
        "## 7. The default condensing method",
        "",
        "Rule (issue 16): the default is the data-driven method that beats first-k by at least 1 point at k=10 "
        "with the 95% CI above 0 on every domain it ran on; first-k if none does.",
        "",
    ]
    winners = []
    for a in ("auto6", "cka6", "block_influence6", "angular_distance6", "search6"):
        verdicts = []
        for d in domains:
            diff = paired(table, d, "10", a, "first6")
            if diff:
                ok = diff["mean"] >= 1 and not math.isnan(diff["lo"]) and diff["lo"] > 0
                verdicts.append(ok)
                lines.append(
                    f"- {ARMS[a].label}, {d} k=10: {fmt_diff(diff)} against first-6: "
                    + ("beats it" if ok else "does not beat it")
                )
        if verdicts and all(verdicts):
            winners.append(a)
    lines += [
        "",
        f"**Decision: {'`' + LEARNGENES[winners[0]].method + '`' if winners else '`first`'}**"
        + ("" if winners else " (no data-driven method beats first-k)."),
        "",
    ]

    # 8. The targets of issues 15 and 16, checked from the same runs.
    lines += [
        "## 8. Targets of the any-size and condensing issues",
        "",
        _row(["target", "cell", "measured (paired, points)", "met"]),
        _row(["---"] * 4),
    ]
    lines += [_row(t) for t in targets(table, condensing)]
    lines.append("")

    markdown = "\n".join(lines) + "\n"
    with open(os.path.join(output, "learning_v2.md"), "w") as f:
        f.write(markdown)
    with open(os.path.join(output, "README_table.md"), "w") as f:
        f.write("\n".join(readme) + "\n\n" + "\n".join(readme_claims) + "\n")
    if plot:
        draw(table, domains, output)
    return markdown


def draw(table, domains, output):
    import matplotlib

    matplotlib.use("Agg")  # the benchmark's own process: no window
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(domains), figsize=(5 * len(domains), 4), squeeze=False)
    for ax, d in zip(axes[0], domains, strict=True):
        lines = ("scratch", "first6", "first3", "auto6", "cka6", "block_influence6", "search6", "half_uniform")
        for j, a in enumerate(lines):
            xs, ys = [], []
            for i, k in enumerate(KS):
                acc = accuracy_of(table, d, k, a)
                if acc:
                    xs.append(i)
                    ys.append(acc["mean"])
            if xs:
                ax.plot(xs, ys, marker="o", label=ARMS[a].label, color=f"C{j}")
        ax.set_xticks(range(len(KS)), [f"k={k}" for k in KS])
        ax.set_title(d)
        ax.set_ylabel("test accuracy at best validation (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(output, "accuracy_vs_k.png"), dpi=110)
    plt.close(fig)

    bars = ("scratch", "first6", "auto6", "cka6", "block_influence6", "search6", "half_uniform", "grow_identity")
    fig, axes = plt.subplots(1, len(domains), figsize=(6 * len(domains), 4), squeeze=False)
    for ax, d in zip(axes[0], domains, strict=True):
        width = 0.8 / len(bars)
        for j, a in enumerate(bars):
            xs, ys = [], []
            for i, k in enumerate(KS):
                tta = time_to_accuracy(table, d, k, a) if (d, k, a) in table else None
                if tta and tta["seconds"] is not None:
                    xs.append(i + (j - len(bars) / 2) * width)
                    ys.append(tta["seconds"])
            if xs:
                ax.bar(xs, ys, width=width, label=ARMS[a].label, color=f"C{j}")
        ax.set_xticks(range(len(KS)), [f"k={k}" for k in KS])
        ax.set_title(f"{d}: time to reach scratch's accuracy (median)")
        ax.set_ylabel("training CPU-seconds")
        ax.grid(alpha=0.3, axis="y")
    for ax in axes[0]:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(output, "time_to_accuracy.png"), dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for ax, k in zip(axes, KS, strict=True):
        for a in ("scratch", "first6"):
            runs = list(table.get(("mnist", k, a), {}).values())
            if not runs:
                continue
            steps = [p["step"] for p in runs[0]["curve"]]
            mean = [100 * statistics.mean(r["curve"][i]["test"] for r in runs) for i in range(len(steps))]
            ax.plot(steps, mean, marker=".", label=ARMS[a].label)
        ax.set_title(f"MNIST, k={k}: test accuracy during training")
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(output, "curves_mnist.png"), dpi=110)
    plt.close(fig)
