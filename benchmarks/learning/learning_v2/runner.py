"""Run a plan: the ancestor, the learngenes (each condensed once, timed), then every descendant run, on worker
processes that each use one thread (PROTOCOL.md section 9: two single-threaded workers are as fast as two threads
on a quiet machine and ten times faster on a busy one).

Results are appended, one JSON line per finished run, to `runs.jsonl` by the main process only; a run already
there (same key, same settings digest) is never repeated, so an interrupted benchmark resumes where it stopped.
Two runs whose models are bit-identical by construction (the same inherited layers, init, width, lr, cell, task
and seed: e.g. auto's 3 layers when they are the first 3) share one training run; the copy says `shared_from`.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import json
import math
import multiprocessing
import os
import shutil
import time
import traceback
from dataclasses import asdict

import torch

from .arms import ARMS, LEARNGENES, ancestor_geometry, build, sizes, width_file
from .data import FASHION_NAMES, condensing_set, domain, fashion, make_tasks, task_split
from .plan import Plan, Settings
from .training import accuracy, best_validation_point, plateau_gain, train


def _quiet():
    import warnings

    from transformers.utils import logging as hf_logging

    warnings.filterwarnings("ignore")
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def _init_worker():
    torch.set_num_threads(1)
    _quiet()


# --------------------------------------------------------------------------------------------------- the ancestor


def train_ancestor(folder: str, settings: Settings) -> dict:
    """A ViT trained on Fashion-MNIST classes 0-5 (PROTOCOL.md section 2), saved with save_pretrained."""
    from transformers import ViTConfig, ViTForImageClassification

    x, y = fashion("train")
    keep = y < 6
    x, y = x[keep], y[keep]
    w = settings.ancestor_width
    config = ViTConfig(
        hidden_size=w,
        num_hidden_layers=settings.ancestor_layers,
        num_attention_heads=settings.ancestor_heads,
        intermediate_size=4 * w,
        image_size=28,
        patch_size=settings.ancestor_patch,
        num_channels=1,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        num_labels=6,
        id2label=dict(enumerate(FASHION_NAMES[:6])),
        label2id={n: i for i, n in enumerate(FASHION_NAMES[:6])},
    )
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    model = ViTForImageClassification(config)
    batch = 128
    steps = max(1, round(settings.ancestor_epochs * math.ceil(len(y) / batch)))
    out = train(model, x, y, steps=steps, batch_size=batch, lr=1e-3, evals={}, evaluations=1)
    tmp = folder + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    os.replace(tmp, folder)
    return {"steps": steps, "batch_size": batch, "train_cpu_seconds": round(out["train_cpu_seconds"], 1)}


def ancestor_record(folder: str, settings: Settings) -> dict:
    from transformers import ViTForImageClassification

    model = ViTForImageClassification.from_pretrained(folder)
    xt, yt = fashion("test")
    keep = yt < 6
    return {
        "geometry": ancestor_geometry(folder),
        "layers": model.config.num_hidden_layers,
        "epochs": settings.ancestor_epochs,
        "heldout_accuracy": accuracy(model, xt[keep], yt[keep]),
        "heldout_images": int(keep.sum()),
    }


# ------------------------------------------------------------------------------------------------- the learngenes


def condense_job(name: str, ancestor: str, cache: str, settings: Settings) -> dict:
    """Condense learngene `name` into cache/learngenes/name; returns its timing and selection."""
    from hf_learngene import CONDENSING_METHODS, LearngeneConfig, condense
    from hf_learngene.condensing import top_k_layers

    spec = LEARNGENES[name]
    folder = os.path.join(cache, "learngenes", name)
    options = dict(spec.options)
    options.update(dict(dict(settings.condense_overrides).get(name, ())))
    kwargs = {"method": spec.method}
    if spec.from_scores:  # the top-k of another learngene's scores: the same condensing run, another k
        source = LearngeneConfig.from_pretrained(os.path.join(cache, "learngenes", spec.from_scores))
        kwargs["layers"] = top_k_layers(source.condensing_scores, spec.num_layers)
    elif spec.num_layers is not None:
        kwargs["num_layers"] = spec.num_layers
    if CONDENSING_METHODS[spec.method].needs_data:
        kwargs["condense_dataset"] = condensing_set(settings.condensing_per_class)
    c0, w0 = time.process_time(), time.perf_counter()
    learngene = condense(ancestor, output_dir=folder, overwrite=True, **kwargs, **options)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    scores = learngene.config.condensing_scores
    return {
        "learngene": name,
        "method": spec.method
        if not spec.from_scores
        else f"{LEARNGENES[spec.from_scores].method} (top-k of {spec.from_scores}'s scores)",
        "layers": list(learngene.config.layer_indices),
        "cpu_seconds": 0.0 if spec.from_scores else round(cpu, 1),
        "wall_seconds": 0.0 if spec.from_scores else round(wall, 1),
        "scores": [round(float(s), 4) for s in scores] if scores else None,
        "options": {k: v for k, v in options.items() if k != "quiet"},
    }


def width_job(arm_name: str, ancestor: str, cache: str, settings: Settings) -> dict:
    """The data-driven channel choice (select_width on the condensing set) for a half-width arm."""
    from hf_learngene.growth import select_width

    arm = ARMS[arm_name]
    folder = os.path.join(cache, "learngenes", arm.learngene)
    c0 = time.process_time()
    chosen = select_width(
        folder,
        condensing_set(settings.condensing_per_class),
        **sizes(arm, ancestor_geometry(ancestor)),
        max_samples=256,
    )
    path = width_file(folder, arm)
    with open(path + ".partial", "w") as f:
        json.dump(chosen, f)
    os.replace(path + ".partial", path)
    return {"arm": arm_name, "cpu_seconds": round(time.process_time() - c0, 1)}


# ---------------------------------------------------------------------------------------------- descendant runs

_FLOPS: dict = {}


def train_flops_per_image(model, arm_name: str) -> float:
    """Exact training FLOPs per image (forward + backward), counted once per arm by torch's flop counter."""
    if arm_name not in _FLOPS:
        from torch.utils.flop_counter import FlopCounterMode

        x = torch.zeros(4, 1, 28, 28)
        counter = FlopCounterMode(display=False)
        with counter:
            model(pixel_values=x).logits.sum().backward()
        model.zero_grad(set_to_none=True)
        _FLOPS[arm_name] = counter.get_total_flops() / 4
    return _FLOPS[arm_name]


@functools.cache
def _domain_tasks(name: str, cache: str, num_tasks: int):
    """A domain's images and tasks, read once per worker process (every run of the worker reuses them)."""
    x, y = domain(name, cache)
    return x, y, make_tasks(y, num_tasks)


def run_job(job: dict) -> dict:
    settings = job["settings"]
    arm = ARMS[job["arm"]]
    x, y, tasks = _domain_tasks(job["domain"], job["cache"], settings.tasks)
    k = job["k"] if job["k"] == "all" else int(job["k"])
    xtr, ytr, xva, yva, xte, yte = task_split(tasks[job["task"]], x, y, k)
    learngene_dir = os.path.join(job["cache"], "learngenes", arm.learngene) if arm.learngene else None
    model = build(arm, ancestor=job["ancestor"], learngene_dir=learngene_dir, seed=job["seed"])
    flops = train_flops_per_image(model, arm.name)
    steps = settings.steps(arm.name, job["k"], job["domain"])
    c0, w0 = time.process_time(), time.perf_counter()
    out = train(
        model,
        xtr,
        ytr,
        steps=steps,
        batch_size=settings.batch_size,
        lr=arm.lr,
        evals={"val": (xva, yva), "test": (xte, yte)},
        evaluations=settings.evaluations,
        weight_decay=settings.weight_decay,
        warmup_fraction=settings.warmup_fraction,
        seed=job["seed"],
    )
    curve = out["curve"]
    best = best_validation_point(curve)
    return {
        **{key: job[key] for key in ("key", "arm", "domain", "k", "task", "seed", "signature")},
        "settings": settings.digest(),
        "lr": arm.lr,
        "steps": steps,
        "batch_size": out["batch_size"],
        "n_train": len(ytr),
        "test_at_best_val": best["test"],
        "best_val": best["val"],
        "best_val_step": best["step"],
        "final_test": curve[-1]["test"],
        "plateau_gain": round(plateau_gain(curve), 2),
        "train_cpu_seconds": round(out["train_cpu_seconds"], 2),
        "run_cpu_seconds": round(time.process_time() - c0, 2),
        "run_wall_seconds": round(time.perf_counter() - w0, 2),
        "train_flops_per_image": flops,
        "params": sum(p.numel() for p in model.parameters()),
        "curve": curve,
    }


def _signature(arm_name: str, cache: str) -> str | None:
    """What makes two arms' runs identical, or None when the arm shares with no other (scratch, the one-liner)."""
    arm = ARMS[arm_name]
    if arm.kind != "learngene":
        return None
    with open(os.path.join(cache, "learngenes", arm.learngene, "config.json")) as f:
        stored = json.load(f)
    fields = [
        stored.get("learngene_form"),
        stored["layer_indices"],
        arm.depth,
        arm.width,
        arm.width_selection,
        arm.new_layer_init or "trunc_normal",
        arm.lr,
    ]
    return json.dumps(fields + (["scratch budget"] if arm.scratch_budget else []))


# ----------------------------------------------------------------------------------------------------- the plan


def read_jsonl(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def append_jsonl(path: str, record: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def run_plan(plan: Plan, *, output: str, cache: str, workers: int = 2, log=print) -> dict:
    """Run every missing run of `plan`; returns {"ran": n, "shared": n, "failed": [...]}."""
    settings = plan.settings
    os.makedirs(output, exist_ok=True)
    os.makedirs(os.path.join(cache, "learngenes"), exist_ok=True)
    _quiet()
    ancestor = os.path.join(cache, f"ancestor-{settings.ancestor_digest()}")
    runs_path = os.path.join(output, "runs.jsonl")
    condensing_path = os.path.join(output, "condensing.jsonl")
    done = {r["key"]: r for r in read_jsonl(runs_path) if r["settings"] == settings.digest()}
    with open(os.path.join(output, "plan.json"), "w") as f:
        json.dump(
            {"plan": plan.name, "settings": asdict(settings), "digest": settings.digest(), "runs": len(plan.runs())},
            f,
            indent=1,
        )

    jobs = []  # (kind, name, deps, payload)
    needed_lg, needed_width = set(), set()
    for arm_name, dom, k, task, seed in plan.runs():
        arm = ARMS[arm_name]
        key = f"{arm_name}|{dom}|{k}|{task}|{seed}"
        if key in done:
            continue
        deps = {"ancestor"}
        if arm.learngene:
            deps.add(f"lg:{arm.learngene}")
            needed_lg.add(arm.learngene)
        if arm.width_selection == "activation":
            deps.add(f"width:{arm_name}")
            needed_width.add(arm_name)
        jobs.append(("run", key, deps, {"arm": arm_name, "domain": dom, "k": k, "task": task, "seed": seed}))
    for name in sorted(needed_lg):
        if LEARNGENES[name].from_scores:
            needed_lg.add(LEARNGENES[name].from_scores)
    finished = set()
    if os.path.exists(os.path.join(ancestor, "config.json")):
        finished.add("ancestor")
    elif jobs:
        jobs.append(("ancestor", "ancestor", set(), {}))
    for name in needed_lg:
        if os.path.exists(os.path.join(cache, "learngenes", name, "config.json")):
            finished.add(f"lg:{name}")
        else:
            src = LEARNGENES[name].from_scores
            jobs.append(("condense", f"lg:{name}", {"ancestor"} | ({f"lg:{src}"} if src else set()), {"name": name}))
    for arm_name in needed_width:
        if os.path.exists(width_file(os.path.join(cache, "learngenes", ARMS[arm_name].learngene), ARMS[arm_name])):
            finished.add(f"width:{arm_name}")
        else:
            jobs.append(("width", f"width:{arm_name}", {f"lg:{ARMS[arm_name].learngene}"}, {"arm": arm_name}))

    def order(job):
        """Preparation first (it unlocks runs); then k=10, k=50, k=all, so that a benchmark stopped early has
        whole cells of the cheap k first; the longest runs first within each k, for balance between workers."""
        kind, _, _, p = job
        if kind != "run":
            return (-1, 0)
        cost = settings.steps(p["arm"], p["k"], p["domain"]) * (2.0 if ARMS[p["arm"]].depth == 12 else 1.0)
        return (("10", "50", "all").index(p["k"]), -cost)

    pending = sorted(jobs, key=order)
    by_signature = {r["signature"]: r for r in done.values() if r.get("signature")}
    inflight: dict = {}
    failed, failed_names, ran, shared = [], set(), 0, 0
    ctx = multiprocessing.get_context("spawn")
    start = time.perf_counter()
    total = sum(1 for j in jobs if j[0] == "run")
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker) as pool:
        while pending or inflight:
            busy_signatures = {j[3].get("signature") for j in inflight.values()}
            for job in list(pending):
                if len(inflight) >= workers:
                    break
                kind, name, deps, payload = job
                if not deps <= finished:
                    if deps & failed_names:
                        pending.remove(job)
                        failed_names.add(name)
                        failed.append(f"{name} (needs {sorted(deps & failed_names)}, which failed)")
                    continue
                if kind == "run":
                    sig = _signature(payload["arm"], cache)
                    payload["signature"] = (
                        f"{sig}|{payload['domain']}|{payload['k']}|{payload['task']}|{payload['seed']}" if sig else None
                    )
                    if payload["signature"] in by_signature:
                        twin = by_signature[payload["signature"]]
                        record = {**twin, "arm": payload["arm"], "key": name, "shared_from": twin["arm"]}
                        append_jsonl(runs_path, record)
                        pending.remove(job)
                        shared += 1
                        continue
                    if payload["signature"] and payload["signature"] in busy_signatures:
                        continue  # its twin is training now; take it when it is done
                    busy_signatures.add(payload["signature"])
                    payload = {
                        **payload,
                        "key": name,
                        "cache": cache,
                        "ancestor": ancestor,
                        "settings": settings,
                    }
                    future = pool.submit(run_job, payload)
                elif kind == "ancestor":
                    future = pool.submit(train_ancestor, ancestor, settings)
                elif kind == "condense":
                    future = pool.submit(condense_job, payload["name"], ancestor, cache, settings)
                else:
                    future = pool.submit(width_job, payload["arm"], ancestor, cache, settings)
                inflight[future] = (kind, name, deps, payload)
                pending.remove(job)
            if not inflight:
                if pending:  # nothing can start: every remaining job waits on a failure
                    failed.extend(f"{j[1]} (blocked)" for j in pending)
                break
            complete, _ = cf.wait(list(inflight), return_when=cf.FIRST_COMPLETED)
            for future in complete:
                kind, name, _, payload = inflight.pop(future)
                try:
                    result = future.result()
                except Exception as error:  # noqa: BLE001 - reported, counted and returned, never swallowed
                    failed.append(name)
                    failed_names.add(name)
                    log(f"FAILED {name}: {error}\n{''.join(traceback.format_exception(error))}")
                    continue
                finished.add(name)
                if kind == "run":
                    append_jsonl(runs_path, result)
                    if result.get("signature"):
                        by_signature[result["signature"]] = result
                    ran += 1
                    elapsed = (time.perf_counter() - start) / 60
                    accuracy_now = 100 * result["test_at_best_val"]
                    log(
                        f"[{ran + shared}/{total} {elapsed:.1f} min] {name}: test {accuracy_now:.1f} "
                        f"(best val at step {result['best_val_step']}/{result['steps']}, "
                        f"{result['train_cpu_seconds']:.0f} CPU-s)"
                    )
                elif kind == "condense":
                    append_jsonl(condensing_path, result)
                    log(f"condensed {result['learngene']}: layers {result['layers']} in {result['cpu_seconds']} CPU-s")
                elif kind == "ancestor":
                    log(f"ancestor trained: {result}")
                else:
                    log(f"width chosen for {result['arm']} in {result['cpu_seconds']} CPU-s")
    summary = os.path.join(output, "ancestor.json")
    if os.path.exists(os.path.join(ancestor, "config.json")) and (ran or not os.path.exists(summary)):
        record = ancestor_record(ancestor, settings)
        with open(summary, "w") as f:
            json.dump(record, f, indent=1)
    return {"ran": ran, "shared": shared, "failed": failed}
