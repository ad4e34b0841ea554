"""Training: descendants with the `Trainer` or a plain loop, ancestors (accumulating), learning curves.

- [`train_descendant`] trains a descendant with the `Trainer` and sound defaults; [`LearngeneTrainer`] is a `Trainer`
  whose `push_to_hub()` keeps the descendant's own card.
- [`parameter_groups`] gives optimizer groups with separate learning rates for inherited (`model.learngene`) and new
  (`model.new_layers`, `model.classifier`) parameters; [`freeze_inherited`] / [`FreezeInheritedCallback`] keep the
  inherited ones fixed throughout or for the first N steps.
- [`learning_curves`], [`LearningCurvesCallback`] and [`plot_learning_curves`] rebuild and draw per-epoch curves from
  the Trainer's own log history.
- Resuming: [`latest_checkpoint`] (newest *complete* checkpoint), [`atomic_checkpoint`] and [`rotate_checkpoints`]
  (for hand-written loops), [`check_rng_state`]; [`SeededAugmentation`] makes each image's augmentation a function
  of (seed, epoch, index), so a run resumed mid-epoch is exact. [`check_launch`] refuses launches that silently
  train otherwise than asked (processes training alone, FSDP quietly running as DDP on CPUs).
- [`fit`] is a plain loop over tensors in memory for small models; [`train_ancestor`] trains and saves an ancestry
  ViT (the *accumulating* step).
- The metrics (`compute_metrics`, `make_compute_metrics`, `load_metric`, `available_metrics`) live in
  [`hf_learngene.evaluation`] and are re-exported here.
"""

from ..evaluation import available_metrics, compute_metrics, load_metric, make_compute_metrics
from .checkpoints import (
    COMPLETE_FILE,
    ResumeError,
    atomic_checkpoint,
    check_rng_state,
    checkpoint_info,
    checkpoint_step,
    is_complete_checkpoint,
    latest_checkpoint,
    list_checkpoints,
    resolve_checkpoint,
    rotate_checkpoints,
)
from .curves import (
    LEARNING_CURVES_FILE,
    LEARNING_CURVES_IMAGE,
    LearningCurvesCallback,
    learning_curves,
    load_learning_curves,
    plot_learning_curves,
)
from .launch import LaunchError, check_launch, check_sharding_device, launched_world_size
from .loop import ANCESTOR_INFO_FILE, FitResult, fit, train_ancestor
from .parameters import (
    FreezeInheritedCallback,
    drop_inherited_gradients,
    freeze_inherited,
    inherited_parameters,
    new_parameters,
    parameter_groups,
)
from .seeding import SeededAugmentation, SeededAugmentationCallback, row_seed
from .trainer import (
    CLASSIFICATION_REPORT_FILE,
    DescendantTrainingResult,
    LearngeneTrainer,
    default_compute_metrics,
    train_descendant,
)

__all__ = [
    "ANCESTOR_INFO_FILE",
    "CLASSIFICATION_REPORT_FILE",
    "COMPLETE_FILE",
    "LaunchError",
    "ResumeError",
    "SeededAugmentation",
    "SeededAugmentationCallback",
    "atomic_checkpoint",
    "check_launch",
    "check_sharding_device",
    "check_rng_state",
    "checkpoint_info",
    "checkpoint_step",
    "default_compute_metrics",
    "is_complete_checkpoint",
    "latest_checkpoint",
    "list_checkpoints",
    "launched_world_size",
    "resolve_checkpoint",
    "rotate_checkpoints",
    "row_seed",
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
