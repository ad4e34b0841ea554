"""The settings of a demo run: the default (minutes on a laptop CPU) and a quick one (seconds, to check a set-up)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from ..condensing import DEFAULT_METHOD

# scratch: same architecture, all random; first: first k layers (plain truncation; the default condensing method, the
# best measured on the learning benchmark v2); heuristic: last k layers (Heur-LG); auto: the paper's condensing.
# first-half-width and first-identity grow from the first-k learngene what plain truncation cannot give: a descendant of
# half the width (hidden size, heads and MLP; every tensor sliced by weight selection's uniform rule), and one whose new
# layer starts as the identity instead of at random.
ARMS = ("scratch", "heuristic", "first", "auto", "first-half-width", "first-identity")
# The demo's own learngene and descendant (saved as learngene/ and descendant/) use the default method; the others are
# cut beside it for comparison.
PRIMARY_METHOD = DEFAULT_METHOD
COMPARED_METHODS = ("heuristic", "auto")
GROWN_ARMS = ("first-half-width", "first-identity")


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


def grown_kwargs(arm: str, settings: DemoSettings) -> dict:
    """The `from_pretrained` arguments that grow a `GROWN_ARMS` descendant from the first-k learngene."""
    if arm == "first-half-width":
        return {
            "hidden_size": settings.hidden_size // 2,
            "num_attention_heads": max(1, settings.num_attention_heads // 2),
            "intermediate_size": settings.intermediate_size // 2,
            "width_selection": "uniform",
        }
    if arm == "first-identity":
        return {"new_layer_init": "identity"}
    raise ValueError(f"{arm!r} is not one of {GROWN_ARMS}.")


__all__ = [
    "ARMS",
    "COMPARED_METHODS",
    "PRIMARY_METHOD",
    "DEFAULT_SETTINGS",
    "GROWN_ARMS",
    "QUICK_SETTINGS",
    "DemoSettings",
    "grown_kwargs",
]
