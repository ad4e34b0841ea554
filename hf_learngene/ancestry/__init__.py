"""Reading ancestry checkpoints: a Hub id, a local folder, or a loaded model, of any supported family.

One reader per ancestor family maps the checkpoint's tensors to this package's names and its config to the
[`LearngeneConfig`] fields that make a learngene compute what the family computes: `families.py` for transformers'
ViT, DeiT (distilled), DINOv2 (with registers), CLIP and SigLIP vision towers and ViT-MAE, `timm_vit.py` for timm ViT
checkpoints. Checkpoint files (and the Hub) carry transformers 4 parameter names
(`encoder.layer.0.attention.attention.query`), models in memory under transformers 5 the new ones
(`layers.0.attention.q_proj`); both are read. Weights are read from safetensors only: nothing is unpickled.

Provenance is recorded compactly and never as a path of this machine: a Hub ancestor by its id, the revision asked for
and the commit it resolved to; a local folder or an in-memory model by its name (the folder's last component) and
the SHA-256 of its weights.
"""

from .ancestor import Ancestor, validate_layer_indices
from .families import FAMILIES, AncestorFamily, FamilyRead, ReadOptions, normalize_key, supported_ancestors
from .loading import load_ancestor, weights_sha256
from .timm_vit import is_timm_config

__all__ = [
    "FAMILIES",
    "Ancestor",
    "AncestorFamily",
    "FamilyRead",
    "ReadOptions",
    "is_timm_config",
    "load_ancestor",
    "normalize_key",
    "supported_ancestors",
    "validate_layer_indices",
    "weights_sha256",
]
