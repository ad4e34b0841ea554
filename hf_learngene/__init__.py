"""hf_learngene: the Learngene paradigm (Wang et al., arXiv 2305.02279) on Hugging Face transformers.

Condense a few integral layers out of a ViT ancestry model into a *learngene*, push it to the Hub like any model,
and grow task-specific descendants from it with `from_pretrained`, the `Trainer`, `datasets` and Accelerate.
"""

from transformers import AutoConfig, AutoModel, AutoModelForImageClassification

from . import serialization  # noqa: F401  (what travels with save_pretrained / from_pretrained / push_to_hub)
from .ancestry import Ancestor, load_ancestor
from .condensing import CONDENSING_METHODS, Selection, condense
from .configuration_learngene import LearngeneConfig
from .modeling_learngene import DescendantForImageClassification, LearngeneModel, LearngenePreTrainedModel
from .version import __version__

AutoConfig.register(LearngeneConfig.model_type, LearngeneConfig, exist_ok=True)
AutoModel.register(LearngeneConfig, LearngeneModel, exist_ok=True)
AutoModelForImageClassification.register(LearngeneConfig, DescendantForImageClassification, exist_ok=True)

# Saved checkpoints carry the two model files as remote code (auto_map), so they also load where hf_learngene is
# not installed: AutoModel.from_pretrained(path, trust_remote_code=True).
LearngeneConfig.register_for_auto_class()
LearngeneModel.register_for_auto_class("AutoModel")
DescendantForImageClassification.register_for_auto_class("AutoModelForImageClassification")

__all__ = [
    "CONDENSING_METHODS",
    "Ancestor",
    "DescendantForImageClassification",
    "LearngeneConfig",
    "LearngeneModel",
    "LearngenePreTrainedModel",
    "Selection",
    "__version__",
    "condense",
    "load_ancestor",
]
