"""The learning-efficiency benchmark: summary statistics on hand-made results, task sampling, resumability, and the
`--quick` protocol end to end."""

from __future__ import annotations

import importlib.util
import json
import math
import os

import pytest
import torch

from hf_learngene.benchmarking import (
    ALL,
    BenchmarkConfig,
    append_result,
    dataset_to_tensors,
    epochs_to_target,
    make_layout,
    mean_ci,
    plan_runs,
    read_results,
    render_markdown,
    run_benchmark,
    sample_tasks,
    summarize,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
T_975_DF2 = 4.302652729911275  # Student t, 97.5% quantile, 2 degrees of freedom (statistical tables)


def _record(arm, placement, k, task, accs, lr=1e-3, seed=0):
    return {
        "arm": arm,
        "placement": placement,
        "layout": "LLRR",
        "k_shot": k,
        "task": task,
        "seed": seed,
        "lr": lr,
        "epochs": len(accs),
        "steps_per_epoch": 5,
        "best_acc": max(accs),
        "acc_per_epoch": accs,
        "train_seconds": 1.0,
        "params": 100,
    }


@pytest.fixture
def hand_made(tmp_path):
    """Three tasks at k=10 and k=all, scratch / first-top / ancestor, and a two-lr grid on task 0 at k=10."""
    records = [
        _record("scratch", "none", 10, 0, [0.2, 0.4, 0.6, 0.6]),
        _record("scratch", "none", 10, 1, [0.3, 0.5, 0.5, 0.7]),
        _record("scratch", "none", 10, 2, [0.4, 0.8, 0.8, 0.8]),
        _record("first", "top", 10, 0, [0.5, 0.6, 0.7, 0.7]),
        _record("first", "top", 10, 1, [0.7, 0.8, 0.9, 0.9]),
        _record("first", "top", 10, 2, [0.5, 0.6, 0.7, 0.7]),
        _record("ancestor", "none", 10, 0, [0.92, 0.92, 0.92, 0.92]),
        _record("ancestor", "none", 10, 1, [0.92, 0.92, 0.92, 0.92]),
        _record("ancestor", "none", 10, 2, [0.92, 0.92, 0.92, 0.92]),
        *[_record("scratch", "none", ALL, t, [0.5, 0.9, 0.9, 0.9]) for t in range(3)],
        *[_record("first", "top", ALL, t, [0.9, 0.95, 0.95, 0.95]) for t in range(3)],
        _record("scratch", "none", 10, 0, [0.1, 0.3, 0.3, 0.3], lr=1e-4),
        _record("first", "top", 10, 0, [0.6, 0.65, 0.65, 0.65], lr=1e-4),
    ]
    path = tmp_path / "learning.jsonl"
    for record in records:
        append_result(path, record)
    return path


def test_mean_ci_matches_student_t():
    mean, ci, n = mean_ci([0.5, 0.6, 0.7])
    assert n == 3
    assert mean == pytest.approx(0.6)
    assert ci == pytest.approx(T_975_DF2 * 0.1 / math.sqrt(3))
    mean, ci, n = mean_ci([0.4])
    assert (mean, n) == (0.4, 1) and math.isnan(ci)


def test_epochs_to_target():
    assert epochs_to_target([0.2, 0.4, 0.6, 0.6], 0.6) == 3
    assert epochs_to_target([0.7, 0.8], 0.6) == 1
    assert epochs_to_target([0.5, 0.59], 0.6) is None


def test_summary_of_hand_made_results(hand_made):
    summary = summarize(read_results(hand_made))
    assert summary["main_lr"] == pytest.approx(1e-3)
    assert summary["k_shots"] == ["10", "all"]
    assert summary["labels"] == ["scratch", "first/top", "ancestor"]

    perf = summary["performance"]
    scratch = perf[("scratch", "10")]
    assert (scratch["mean"], scratch["n"]) == (pytest.approx(0.7), 3)
    assert scratch["ci"] == pytest.approx(T_975_DF2 * 0.1 / math.sqrt(3))
    first = perf[("first/top", "10")]
    sd = math.sqrt(((0.7 - 0.7667) ** 2 * 2 + (0.9 - 0.7667) ** 2) / 2)
    assert first["mean"] == pytest.approx(0.7667, abs=1e-4)
    assert first["ci"] == pytest.approx(T_975_DF2 * sd / math.sqrt(3), abs=1e-3)
    assert first["diff"] == pytest.approx((0.1 + 0.2 - 0.1) / 3)  # paired with scratch task by task
    assert perf[("first/top", "all")]["diff"] == pytest.approx(0.05)

    # Task 0: target 0.6 reached at epoch 2 (scratch: 3); task 1: 0.7 at epoch 1 (scratch: 4); task 2: never.
    conv = summary["convergence"][("first/top", "10")]
    assert (conv["pairs"], conv["reached"]) == (3, 2)
    assert conv["epochs_to_target"] == pytest.approx(1.5)
    assert conv["scratch_epochs_to_best"] == pytest.approx(3.5)
    assert conv["speedup"] == pytest.approx(3.5 / 1.5)

    # The lr grid is complete for task 0 only: scratch 0.6 / 0.3, first-top 0.7 / 0.65.
    sens = summary["sensitivity"]
    assert sens[("scratch", "10")]["lrs"] == [pytest.approx(1e-4), pytest.approx(1e-3)]
    assert sens[("scratch", "10")]["spread"][0] == pytest.approx(0.3)
    assert sens[("first/top", "10")]["spread"][0] == pytest.approx(0.05)
    assert sens[("first/top", "10")]["grid_mean"][0] == pytest.approx(0.675)
    assert sens[("first/top", "10")]["spread_diff"][0] == pytest.approx(-0.25)
    assert sens[("first/top", "10")]["grid_mean_diff"][0] == pytest.approx(0.225)
    assert sens[("first/top", "10")]["worst"][0] == pytest.approx(0.65)
    assert ("first/top", "all") not in sens

    samples = summary["samples"]
    assert samples["scratch"]["scratch_reference"] == pytest.approx(0.9)
    assert samples["ancestor"]["k_to_match_scratch_at_largest"] == "10"
    assert samples["first/top"]["k_to_match_scratch_at_largest"] == "all"


def test_markdown_states_each_claim(hand_made):
    text = render_markdown(read_results(hand_made))
    for heading in ("Claim 1", "Claim 2", "Claim 3", "Claim 4"):
        assert heading in text
    assert "| first/top | 76.7 ± 28.7 | 95.0 ± 0.0 |" in text
    assert "2/3, 1.5 (3.5), 2.3x" in text


def test_truncated_last_line_is_ignored_but_corruption_elsewhere_is_an_error(tmp_path):
    path = tmp_path / "r.jsonl"
    append_result(path, _record("scratch", "none", 10, 0, [0.5]))
    with open(path, "a") as f:
        f.write('{"arm": "scr')
    assert len(read_results(path)) == 1
    with open(path, "a") as f:
        f.write("\n" + json.dumps(_record("scratch", "none", 10, 1, [0.5])) + "\n")
    with pytest.raises(ValueError, match=r"r.jsonl:2 is not valid JSON"):
        read_results(path)


def test_layouts():
    assert make_layout("top", 3, 6) == "LLLRRR"
    assert make_layout("interleaved", 3, 6) == "LRLRLR"
    assert make_layout("interleaved", 4, 6) == "LRLRLL"
    assert make_layout("top", 6, 6) == "LLLLLL"
    with pytest.raises(ValueError, match="does not fit"):
        make_layout("top", 7, 6)


def test_tasks_are_nested_disjoint_and_stable():
    labels = torch.arange(10).repeat_interleave(30)
    tasks = sample_tasks(labels, num_tasks=3, ways=5, test_per_class=8, seed=0)
    assert sample_tasks(labels, num_tasks=1, ways=5, test_per_class=8, seed=0)[0].classes == tasks[0].classes
    for task in tasks:
        assert len(set(task.classes)) == 5
        test = set(task.test_indices.tolist())
        small, large, full = (set(task.train_indices(k).tolist()) for k in (2, 10, ALL))
        assert len(test) == 40 and len(small) == 10 and len(large) == 50 and len(full) == 5 * 22
        assert small < large < full and not (full & test)
        assert set(labels[task.test_indices].tolist()) == set(task.classes)
        assert sorted(task.relabel(labels[task.test_indices]).unique().tolist()) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="k_shot=23 exceeds"):
        tasks[0].train_indices(23)


def test_plan_runs_grid_cells():
    config = BenchmarkConfig(
        methods=("first", "random"), k_shots=(10, ALL), grid_k_shots=(10,), num_tasks=2, seeds=(0, 1)
    )
    runs = plan_runs(config)
    # 6 arms x 2 k x 2 tasks x 2 seeds; then 3 more lrs x 2 tasks x 1 grid seed for scratch, ancestor, first/top.
    assert len(runs) == 6 * 2 * 2 * 2 + 3 * 3 * 2
    assert {r.lr for r in runs if r.placement == "interleaved" or r.arm == "random"} == {1e-3}
    assert {r.seed for r in runs if r.lr != 1e-3} == {0}
    assert [r.arm for r in runs][:2] == ["scratch", "scratch"]
    assert {r.lr for r in runs[: 6 * 2 * 2 * 2]} == {1e-3}  # main runs of every arm come first


def test_dataset_to_tensors_resizes_real_digits():
    from hf_learngene.data import load_digits_dataset

    data = dataset_to_tensors(load_digits_dataset(classes=[3, 7], max_per_class=5), image_size=28, num_channels=1)
    assert data.images.shape == (10, 1, 28, 28) and data.images.dtype == torch.uint8
    assert sorted(data.labels.tolist()) == [0] * 5 + [1] * 5
    assert data.names == ["3", "7"]
    assert int(data.images.max()) > 100  # real ink, not an empty canvas


def test_other_protocol_in_results_file_is_refused(tmp_path):
    path = tmp_path / "learning.jsonl"
    append_result(path, {**_record("scratch", "none", 5, 0, [0.5]), "protocol_id": "something-else"})
    with pytest.raises(ValueError, match="another protocol"):
        run_benchmark(BenchmarkConfig.quick(), path, cache_dir=tmp_path, progress=False, log=lambda _: None)


def _script():
    spec = importlib.util.spec_from_file_location("bench_learning", os.path.join(REPO, "scripts", "bench_learning.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_quick_end_to_end_and_resume(tmp_path, capsys):
    script = _script()
    output = tmp_path / "results" / "learning.jsonl"
    args = ["--quick", "--output", str(output), "--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    args += ["--methods", "heuristic,first", "--threads", "1"]
    assert script.main(args) == 0
    records = read_results(output)
    planned = plan_runs(script.build_config(script.parse_args(args)))
    assert len(records) == len(planned) > 0
    for record in records:
        for field in ("arm", "layout", "k_shot", "task", "seed", "lr", "epochs", "best_acc", "acc_per_epoch"):
            assert field in record
        assert record["train_seconds"] > 0 and record["params"] > 0
        assert len(record["acc_per_epoch"]) == record["epochs"] and 0 <= record["best_acc"] <= 1
    arms = {(r["arm"], r["layout"]) for r in records}
    assert ("heuristic", "LR") in arms and ("scratch", "RR") in arms and ("ancestor", "LL") in arms
    inherited = [r for r in records if r["arm"] == "heuristic"]
    assert all(r["layer_indices"] == [1] for r in inherited)  # the last half of a 2-layer ancestor
    report = (tmp_path / "results" / "learning.md").read_text()
    assert "Claim 4" in report and (tmp_path / "results" / "learning_accuracy_vs_k.png").stat().st_size > 1000

    capsys.readouterr()
    assert script.main(args) == 0  # resumes: nothing left to run
    assert f"{len(planned)} already done, 0 to run" in capsys.readouterr().out
    assert len(read_results(output)) == len(records)
