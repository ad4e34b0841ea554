"""The learning benchmark v2 (benchmarks/learning): its statistics, its arm list, and the whole pipeline on the
`quick` plan in a real subprocess, resumed."""

import json
import math
import os
import subprocess
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "benchmarks", "learning")
sys.path.insert(0, BENCH)

from learning_v2 import report  # noqa: E402
from learning_v2.arms import ARMS, LEARNGENES, build  # noqa: E402
from learning_v2.data import make_tasks, task_split  # noqa: E402
from learning_v2.plan import PLANS  # noqa: E402
from learning_v2.training import best_validation_point, eval_steps, plateau_gain  # noqa: E402


def _run(arm, task, seed, acc, curve=None):
    return {
        "domain": "mnist",
        "k": "10",
        "arm": arm,
        "task": task,
        "seed": seed,
        "test_at_best_val": acc,
        "batch_size": 50,
        "n_train": 50,
        "train_flops_per_image": 1e8,
        "curve": curve or [],
    }


def test_t_interval_matches_the_t_table():
    # t(0.975, 2 df) = 4.303 from any printed table; mean 2, sd 1, n 3.
    mean, lo, hi = report.t_ci([1.0, 2.0, 3.0])
    assert mean == 2.0
    assert hi - mean == pytest.approx(4.303 / math.sqrt(3), abs=1e-3)
    assert mean - lo == pytest.approx(hi - mean)
    assert all(math.isnan(v) for v in report.t_ci([5.0])[1:])


def test_paired_difference_uses_only_common_pairs():
    runs = [
        _run("scratch", 0, 0, 0.5),
        _run("scratch", 1, 0, 0.6),
        _run("first6", 0, 0, 0.7),
        _run("first6", 2, 0, 0.9),
    ]
    d = report.paired(report.index(runs), "mnist", "10", "first6", "scratch")
    assert d["n"] == 1 and d["mean"] == pytest.approx(20.0)
    assert report.paired(report.index(runs), "mnist", "50", "first6", "scratch") is None


def test_reported_point_is_the_earliest_best_validation_never_the_best_test():
    curve = [
        {"step": 1, "val": 0.5, "test": 0.9},
        {"step": 2, "val": 0.8, "test": 0.6},
        {"step": 3, "val": 0.8, "test": 0.7},
        {"step": 4, "val": 0.7, "test": 0.95},
    ]
    assert best_validation_point(curve)["step"] == 2
    # best val 0.8, best of the first half (steps <= 2) 0.8 -> no gain in the second half
    assert plateau_gain(curve) == 0.0
    assert plateau_gain([{"step": 1, "val": 0.5}, {"step": 2, "val": 0.6}, {"step": 4, "val": 0.75}]) == pytest.approx(
        15
    )


def test_time_to_accuracy_takes_the_first_evaluation_reaching_scratch():
    curve = [{"step": s, "cpu_seconds": s / 10, "test": t} for s, t in ((10, 0.4), (20, 0.62), (30, 0.7))]
    runs = [_run("scratch", 0, 0, 0.6), _run("first6", 0, 0, 0.7, curve)]
    tta = report.time_to_accuracy(report.index(runs), "mnist", "10", "first6")
    assert (tta["reached"], tta["n"], tta["steps"], tta["seconds"], tta["epochs"]) == (1, 1, 20, 2.0, 20.0)
    assert tta["gflop"] == pytest.approx(20 * 50 * 1e8 / 1e9)


def test_condensing_cost_is_amortised_over_the_descendants_it_served():
    runs = [
        _run("cka6", 0, 0, 0.5),
        _run("cka3", 0, 0, 0.5),
        _run("cka3", 1, 0, 0.5),
        _run("first6", 0, 0, 0.5),
        _run("scratch", 0, 0, 0.5),
    ]
    uses = report.condensing_uses(runs)
    assert uses == {"cka6": 3, "first6": 1}  # cka3 is the top 3 of cka6's scores: the same condensing run
    assert report.amortised(30.0, uses["cka6"]) == pytest.approx(10.0)
    assert report.amortised(0.0, 4) is None and report.amortised(5.0, 0) is None


def test_evaluation_steps_are_evenly_spaced_and_end_at_the_last_step():
    assert eval_steps(200, 8) == [25, 50, 75, 100, 125, 150, 175, 200]
    assert eval_steps(4, 8) == [1, 2, 3, 4]


def test_tasks_are_nested_in_k_and_splits_disjoint():
    labels = torch.arange(10).repeat_interleave(200)
    x = torch.arange(2000).view(2000, 1, 1, 1)
    task = make_tasks(labels, 2)[1]
    tr10, _, va, _, te, _ = task_split(task, x, labels, 2)[:6]
    tr_all = task_split(task, x, labels, "all")[0]
    ids = lambda t: set(t.flatten().tolist())  # noqa: E731
    assert ids(tr10) < ids(tr_all)
    assert not (ids(tr_all) & ids(va)) and not (ids(tr_all) & ids(te)) and not (ids(va) & ids(te))
    assert len(set(task["classes"])) == 5


def test_every_plan_names_known_arms_and_learngenes():
    for plan in PLANS.values():
        assert plan.runs()
    for arm in ARMS.values():
        assert arm.learngene is None or arm.learngene in LEARNGENES
        assert arm.baseline in ARMS


def test_the_one_liner_arm_is_the_first_arm(tmp_path):
    """The named HF baseline and first-6 start as the same function (the benchmark reports them side by side)."""
    from transformers import ViTConfig, ViTForImageClassification

    from hf_learngene import condense

    config = ViTConfig(
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=28,
        patch_size=7,
        num_channels=1,
        num_labels=3,
    )
    torch.manual_seed(0)
    ViTForImageClassification(config).save_pretrained(tmp_path / "anc")
    condense(str(tmp_path / "anc"), method="first", num_layers=2, output_dir=tmp_path / "lg")
    from dataclasses import replace

    first, oneliner = replace(ARMS["first6"], depth=2), replace(ARMS["oneliner"], depth=2)
    a = build(first, ancestor=str(tmp_path / "anc"), learngene_dir=str(tmp_path / "lg"), seed=3).eval()
    b = build(oneliner, ancestor=str(tmp_path / "anc"), learngene_dir=None, seed=3).eval()
    pixels = torch.randn(4, 1, 28, 28)
    torch.testing.assert_close(a(pixel_values=pixels).logits, b(pixel_values=pixels).logits, atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_quick_plan_runs_end_to_end_and_resumes(tmp_path):
    """`run.py --quick`: tiny ancestor, learngenes, every run, the report; a second call repeats nothing."""
    cmd = [
        sys.executable,
        os.path.join(BENCH, "run.py"),
        "--quick",
        "--output",
        str(tmp_path / "out"),
        "--cache",
        str(tmp_path / "cache"),
        "--workers",
        "1",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    runs = [json.loads(line) for line in open(tmp_path / "out" / "runs.jsonl")]
    assert len(runs) == len(PLANS["quick"].runs())
    assert all(len(r["curve"]) == PLANS["quick"].settings.evaluations for r in runs)
    assert all(0.0 <= r["test_at_best_val"] <= 1.0 and r["train_flops_per_image"] > 0 for r in runs)
    half = [r for r in runs if r["arm"] == "half_uniform"]
    full = [r for r in runs if r["arm"] == "first6"]
    assert half[0]["params"] < full[0]["params"]
    text = (tmp_path / "out" / "learning_v2.md").read_text()
    assert "## 1. Claims" in text and "first-6" in text
    assert str(tmp_path) not in text and str(tmp_path) not in (tmp_path / "out" / "plan.json").read_text()
    assert (tmp_path / "out" / "accuracy_vs_k.png").stat().st_size > 0
    # Resuming (in this process, through the runner's API): every run is on record, so nothing runs again.
    from learning_v2.runner import run_plan

    outcome = run_plan(PLANS["quick"], output=str(tmp_path / "out"), cache=str(tmp_path / "cache"), workers=1,
                       log=lambda line: None)  # fmt: skip
    assert outcome == {"ran": 0, "shared": 0, "failed": []}
    assert len(open(tmp_path / "out" / "runs.jsonl").readlines()) == len(runs)


def test_claim_verdicts_follow_the_paired_intervals():
    def curve(*tests):
        return [{"step": 10 * (i + 1), "cpu_seconds": i + 1.0, "test": t, "val": t} for i, t in enumerate(tests)]

    runs = []
    for task in range(3):
        for seed in range(2):
            jitter = 0.01 * (task + seed)
            # scratch reaches its accuracy (0.6) at its 4th evaluation; first-6 beats it at its 1st
            runs.append(_run("scratch", task, seed, 0.6 + jitter, curve(0.3, 0.4, 0.5, 0.6 + jitter)))
            runs.append(_run("first6", task, seed, 0.7 + jitter, curve(0.65 + jitter, 0.7 + jitter)))
    verdicts = {c["claim"]: c["verdict"] for c in report.claims(report.index(runs), ["mnist"])}
    assert verdicts["1. converges faster"] == "holds"  # 6/6 pairs sooner: sign test p = 1/64
    assert verdicts["3. performs better"] == "holds"  # +10 points in every pair
    worse = [dict(r, test_at_best_val=r["test_at_best_val"] - 0.2) if r["arm"] == "first6" else r for r in runs]
    verdicts = {c["claim"]: c["verdict"] for c in report.claims(report.index(worse), ["mnist"])}
    assert verdicts["3. performs better"] == "holds in 0 of 1 cells"
