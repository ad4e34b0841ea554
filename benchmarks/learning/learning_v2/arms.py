"""The arms: one row each. An arm is data, not code: the learngene it inherits (a condensing method and k, or none),
the descendant's depth and width, how its new layers start, and its learning rate. New arms join by adding a row.

Every arm is built through the public API a user would call: `condense` (in the runner), `LearngeneConfig`,
`DescendantForImageClassification.from_pretrained`, `hf_learngene.growth.select_width`, or, for the named baseline,
transformers' `ViTForImageClassification.from_pretrained(ancestor, num_hidden_layers=6)`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import torch

DEPTH = 6  # every descendant has 6 layers, except the whole-ancestor arm (12)
HALF = 0.5  # half width: hidden size, heads and MLP halved, head_dim kept (6 x 64 for the 128-wide ancestor)


@dataclass(frozen=True)
class Learngene:
    """How a learngene is condensed from the ancestor: `condense(ancestor, method=..., num_layers=...)`.

    `from_scores` takes the top `num_layers` layers of another learngene's scores (one condensing run gives the 3- and
    the 6-layer learngene, as the protocol asks), through `method="manual"`."""

    name: str
    method: str
    num_layers: int | None = None
    options: tuple = ()
    from_scores: str | None = None


LEARNGENES = {
    lg.name: lg
    for lg in [
        Learngene("first3", "first", 3),
        Learngene("first6", "first", 6),
        Learngene("first12", "first", 12),
        Learngene("cka6", "cka", 6, (("epochs", 5), ("quiet", True))),
        Learngene("cka3", "manual", 3, from_scores="cka6"),
        Learngene("auto6", "auto", 6, (("epochs", 5), ("quiet", True))),
        Learngene("auto3", "manual", 3, from_scores="auto6"),
        Learngene("block_influence6", "block_influence", 6, (("quiet", True),)),
        Learngene("block_influence3", "manual", 3, from_scores="block_influence6"),
        Learngene("angular_distance6", "angular_distance", 6, (("quiet", True),)),
        Learngene("search6", "search", 6, (("max_candidates", 16), ("time_budget_s", 60), ("quiet", True))),
        Learngene("linear12", "linear"),
    ]
}


@dataclass(frozen=True)
class Arm:
    name: str
    issue: int
    label: str
    kind: str = "learngene"  # "scratch", "learngene" or "oneliner"
    learngene: str | None = None
    depth: int = DEPTH
    width: float = 1.0  # a narrower descendant's fraction of the ancestor's hidden size, heads and MLP
    width_selection: str | None = None  # "uniform", "heads" or "activation"
    new_layer_init: str | None = None
    lr: float = 1e-3
    baseline: str = "scratch"  # the arm its paired differences are also taken against (besides scratch)
    scratch_budget: bool = False  # an inheriting arm trained for scratch's steps instead of the inheriting budget
    load_options: tuple = field(default=())

    @property
    def inherits(self) -> bool:
        return self.kind != "scratch"


def _arms():
    rows = [
        Arm("scratch", 14, "scratch (6 random layers)", kind="scratch"),
        Arm(
            "oneliner",
            14,
            "HF one-liner: ViTForImageClassification(num_hidden_layers=6)",
            kind="oneliner",
            baseline="first6",
        ),
        Arm("first6", 14, "first-6 (= the one-liner)", learngene="first6"),
        Arm("first3", 14, "first-3 + 3 random", learngene="first3", baseline="first6"),
        Arm(
            "first6_long", 14, "first-6 at scratch's budget", learngene="first6", scratch_budget=True, baseline="first6"
        ),
        Arm("auto6", 14, "auto-6 (the paper's method)", learngene="auto6", baseline="first6"),
        Arm("auto3", 14, "auto-3 + 3 random", learngene="auto3", baseline="first3"),
        Arm("cka6", 14, "cka-6", learngene="cka6", baseline="first6"),
        Arm("cka3", 14, "cka-3 + 3 random", learngene="cka3", baseline="first3"),
        Arm("whole", 14, "whole ancestor (12 layers)", learngene="first12", depth=12, baseline="first6"),
        Arm("block_influence6", 16, "block influence-6", learngene="block_influence6", baseline="first6"),
        Arm("block_influence3", 16, "block influence-3 + 3 random", learngene="block_influence3", baseline="first3"),
        Arm("angular_distance6", 16, "angular distance-6", learngene="angular_distance6", baseline="first6"),
        Arm("search6", 16, "search-6", learngene="search6", baseline="first6"),
        Arm("scratch_half", 15, "scratch, half width (6 x 64)", kind="scratch", width=HALF),
        Arm(
            "half_uniform",
            15,
            "first-6, half width, uniform",
            learngene="first6",
            width=HALF,
            width_selection="uniform",
            baseline="scratch_half",
        ),
        Arm(
            "half_heads",
            15,
            "first-6, half width, heads",
            learngene="first6",
            width=HALF,
            width_selection="heads",
            baseline="scratch_half",
        ),
        Arm(
            "half_activation",
            15,
            "first-6, half width, activation",
            learngene="first6",
            width=HALF,
            width_selection="activation",
            baseline="scratch_half",
        ),
        Arm(
            "grow_identity",
            15,
            "first-3 grown to 6, identity",
            learngene="first3",
            new_layer_init="identity",
            baseline="first3",
        ),
        Arm("grow_copy", 15, "first-3 grown to 6, copy", learngene="first3", new_layer_init="copy", baseline="first3"),
        Arm(
            "grow_linear",
            15,
            "first-3 grown to 6, linear",
            learngene="first3",
            new_layer_init="linear",
            baseline="first3",
        ),
        Arm("tleg6", 15, "linear learngene (12 fitted) -> 6 layers", learngene="linear12", baseline="first6"),
    ]
    for lr in (3e-4, 3e-3):
        rows.append(Arm(f"scratch@{lr:g}", 14, f"scratch, lr {lr:g}", kind="scratch", lr=lr))
        rows.append(
            Arm(f"first6@{lr:g}", 14, f"first-6, lr {lr:g}", learngene="first6", lr=lr, baseline=f"scratch@{lr:g}")
        )
    return {a.name: a for a in rows}


ARMS = _arms()


def ancestor_geometry(ancestor: str) -> dict:
    from transformers import AutoConfig

    c = AutoConfig.from_pretrained(ancestor)
    return {
        k: getattr(c, k)
        for k in (
            "hidden_size",
            "num_attention_heads",
            "intermediate_size",
            "image_size",
            "patch_size",
            "num_channels",
            "hidden_act",
            "layer_norm_eps",
            "qkv_bias",
        )
    }


def sizes(arm: Arm, geometry: dict) -> dict:
    """The descendant's hidden size, heads and MLP size ({} at the ancestor's width)."""
    if arm.width == 1.0:
        return {}
    return {
        k: max(1, round(geometry[k] * arm.width)) for k in ("hidden_size", "num_attention_heads", "intermediate_size")
    }


def width_file(learngene_dir: str, arm: Arm) -> str:
    return os.path.join(learngene_dir, f"width_activation_{arm.width:g}.json")


def build(arm: Arm, *, ancestor: str, learngene_dir: str | None, seed: int, num_labels: int = 5):
    """The arm's model for one run, its new weights drawn from `seed`."""
    from hf_learngene import DescendantForImageClassification, LearngeneConfig

    torch.manual_seed(seed)
    if arm.kind == "oneliner":
        from transformers import ViTForImageClassification

        return ViTForImageClassification.from_pretrained(
            ancestor, num_hidden_layers=arm.depth, num_labels=num_labels, ignore_mismatched_sizes=True
        )
    if arm.kind == "scratch":
        geometry = ancestor_geometry(ancestor)
        geometry.update(sizes(arm, geometry))
        return DescendantForImageClassification(
            LearngeneConfig(**geometry, num_hidden_layers=arm.depth, num_labels=num_labels)
        )
    kwargs = {"num_labels": num_labels}
    stored = LearngeneConfig.from_pretrained(learngene_dir)
    if stored.learngene_form == "linear":
        kwargs["num_hidden_layers"] = arm.depth
    else:
        kwargs["num_new_layers"] = arm.depth - len(stored.layer_indices)
    if arm.new_layer_init:
        kwargs["new_layer_init"] = arm.new_layer_init
    if arm.width_selection == "activation":
        with open(width_file(learngene_dir, arm)) as f:
            kwargs.update(json.load(f))
    elif arm.width_selection:
        kwargs.update(sizes(arm, ancestor_geometry(ancestor)), width_selection=arm.width_selection)
    return DescendantForImageClassification.from_pretrained(learngene_dir, **kwargs)
