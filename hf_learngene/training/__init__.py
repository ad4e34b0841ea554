"""Training: descendants with the `Trainer` or a plain loop, ancestors (accumulating), learning curves.

- [`train_descendant`] trains a descendant with the `Trainer` and sound defaults; [`LearngeneTrainer`] is a `Trainer`
  whose `push_to_hub()` keeps the descendant's own card.
- [`parameter_groups`] gives optimizer groups with separate learning rates for inherited (`model.learngene`) and new
  (`model.new_layers`, `model.classifier`) parameters; [`freeze_inherited`] / [`FreezeInheritedCallback`] keep the
  inherited ones fixed throughout or for the first N steps.
- [`learning_curves`], [`LearningCurvesCallback`] and [`plot_learning_curves`] rebuild and draw per-epoch curves from
  the Trainer's own log history.
- [`fit`] is a plain loop over tensors in memory for small models; [`train_ancestor`] trains and saves an ancestry
  ViT (the *accumulating* step).
- The metrics (`compute_metrics`, `make_compute_metrics`, `load_metric`, `available_metrics`) live in
  [`hf_learngene.evaluation`] and are re-exported here.
"""

from ..evaluation import available_metrics, compute_metrics, load_metric, make_compute_metrics
from .curves import (
    LEARNING_CURVES_FILE,
    LEARNING_CURVES_IMAGE,
    LearningCurvesCallback,
    learning_curves,
    load_learning_curves,
    plot_learning_curves,
)
from .loop import ANCESTOR_INFO_FILE, FitResult, fit, train_ancestor
from .parameters import (
    FreezeInheritedCallback,
    drop_inherited_gradients,
    freeze_inherited,
    inherited_parameters,
    new_parameters,
    parameter_groups,
)
from .trainer import DescendantTrainingResult, LearngeneTrainer, train_descendant

__all__ = [
    "ANCESTOR_INFO_FILE",
    "LEARNING_CURVES_FILE",
    "LEARNING_CURVES_IMAGE",
    "DescendantTrainingResult",
    "FitResult",
    "FreezeInheritedCallback",
    "LearngeneTrainer",
    "LearningCurvesCallback",
    "available_metrics",
    "compute_metrics",
    "drop_inherited_gradients",
    "fit",
    "freeze_inherited",
    "inherited_parameters",
    "learning_curves",
    "load_learning_curves",
    "load_metric",
    "make_compute_metrics",
    "new_parameters",
    "parameter_groups",
    "plot_learning_curves",
    "train_ancestor",
    "train_descendant",
]
