"""Reading ancestry checkpoints: a Hub id, a local folder, or a loaded transformers ViT.

Checkpoint files (and the Hub) carry transformers 4 parameter names (`encoder.layer.0.attention.attention.query`),
models in memory under transformers 5 carry the new ones (`layers.0.attention.q_proj`); both are read and mapped to
this package's names. Weights are read from safetensors only: nothing is unpickled.

Provenance is recorded compactly and never as a path of this machine: a Hub ancestor by its id, the revision asked for
and the commit it resolved to; a local folder or an in-memory model by its name (the folder's last component) and
the SHA-256 of its weights.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import os
import re
from dataclasses import dataclass, field
from typing import Any

import torch
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import EntryNotFoundError
from safetensors import SafetensorError
from safetensors.torch import load_file
from transformers import AutoConfig, PretrainedConfig, PreTrainedModel

from .configuration_learngene import GEOMETRY_FIELDS, LearngeneConfig
from .data import default_image_processor, load_image_processor
from .modeling_learngene import LearngeneModel
from .utils import is_hub_id

# model_type values whose checkpoints use the plain ViT block (google/vit-*, facebook/dino-vit*, facebook/deit-*
# without distillation are all "vit").
SUPPORTED_MODEL_TYPES = ("vit", "learngene")


# (pattern, replacement) applied in order to a key with its model prefix removed.
_V4_TO_OURS = (
    (r"^encoder\.layer\.(\d+)\.", r"layers.\1."),
    (r"\.attention\.attention\.query\.", ".attention.q_proj."),
    (r"\.attention\.attention\.key\.", ".attention.k_proj."),
    (r"\.attention\.attention\.value\.", ".attention.v_proj."),
    (r"\.attention\.output\.dense\.", ".attention.o_proj."),
    (r"\.intermediate\.dense\.", ".mlp.fc1."),
    (r"\.output\.dense\.", ".mlp.fc2."),
)
_MODEL_PREFIXES = ("vit.", "learngene.", "model.")
_SKIPPED = re.compile(r"^(pooler\.|classifier\.|new_layers\.|embeddings\.mask_token)")


def normalize_key(key: str) -> str | None:
    """Map a ViT parameter name (v4 or v5 scheme, with or without a model prefix) to this package's name.

    Returns None for tensors a learngene does not keep (pooler, heads, mask token).
    """
    for prefix in _MODEL_PREFIXES:
        if key.startswith(prefix):
            key = key[len(prefix) :]
            break
    if _SKIPPED.match(key):
        return None
    for pattern, replacement in _V4_TO_OURS:
        key = re.sub(pattern, replacement, key)
    return key


@dataclass
class Ancestor:
    """An ancestry ViT in a form every condensing method can use: geometry, tensors and provenance."""

    config: PretrainedConfig
    state_dict: dict[str, torch.Tensor]
    name_or_path: str | None = None
    revision: str | None = None
    image_processor: Any = None
    layer_indices: list[int] = field(default_factory=list)
    commit: str | None = None
    weights_sha256: str | None = None
    image_processor_is_default: bool = False

    @property
    def num_layers(self) -> int:
        return len(self.layer_indices)

    def geometry(self) -> dict[str, Any]:
        return {name: getattr(self.config, name) for name in GEOMETRY_FIELDS if hasattr(self.config, name)}

    def learngene_config(self, layer_indices: list[int], **provenance) -> LearngeneConfig:
        """A `LearngeneConfig` for a learngene cut from this ancestor at `layer_indices`."""
        validate_layer_indices(layer_indices, self.num_layers)
        geometry = self.geometry()
        return LearngeneConfig(
            **geometry,
            layer_indices=[self.source_layer_indices[i] for i in layer_indices],
            ancestor_name_or_path=self.name_or_path,
            ancestor_revision=self.revision,
            ancestor_commit=self.commit,
            ancestor_sha256=self.weights_sha256,
            ancestor_num_layers=self.source_depth,
            **provenance,
        )

    @property
    def source_layer_indices(self) -> list[int]:
        """Index of each layer in the original ancestry model (differs from its position for a learngene)."""
        if getattr(self.config, "model_type", None) == "learngene":
            return list(self.config.layer_indices)
        return list(self.layer_indices)

    @property
    def source_depth(self) -> int:
        """Depth of the original ancestry model."""
        return int(getattr(self.config, "ancestor_num_layers", None) or self.num_layers)

    def cut(self, layer_indices: list[int], **provenance) -> LearngeneModel:
        """Build the `LearngeneModel` holding embeddings, the layers at `layer_indices` and the final LayerNorm.

        `layer_indices` are positions in this ancestor (0-based, strictly increasing order not required but kept).
        Tensors are cloned, so the learngene shares no memory with the ancestor.
        """
        config = self.learngene_config(layer_indices, **provenance)
        model = LearngeneModel(config)
        state = {}
        for key, tensor in self.state_dict.items():
            match = re.match(r"^layers\.(\d+)\.(.*)$", key)
            if match is None:
                state[key] = tensor
                continue
            position = int(match.group(1))
            if position in layer_indices:
                state[f"layers.{layer_indices.index(position)}.{match.group(2)}"] = tensor
        expected = set(model.state_dict())
        missing, unexpected = expected - set(state), set(state) - expected
        if missing or unexpected:
            raise ValueError(
                f"The ancestor's tensors do not fit a ViT of its config: missing {sorted(missing)[:5]}, "
                f"unexpected {sorted(unexpected)[:5]}. Is it a plain ViT checkpoint?"
            )
        with torch.no_grad():
            model.load_state_dict({k: v.detach().clone().contiguous() for k, v in state.items()}, strict=True)
        model.image_processor = self.image_processor
        return model

    def full_model(self) -> LearngeneModel:
        """The whole ancestor as a `LearngeneModel` (every layer kept), e.g. to extract per-layer features."""
        return self.cut(list(range(self.num_layers)))


def validate_layer_indices(layer_indices, num_layers: int) -> list[int]:
    """Check layer positions against an ancestor depth; returns them as a list of ints."""
    # Integers only: a float, a string ("13" is not [1, 3]) or a bool is a mistake, not something to coerce.
    if isinstance(layer_indices, (str, bytes)) or not hasattr(layer_indices, "__iter__"):
        raise ValueError(f"Layer indices must be a list of integers such as [0, 1, 11], got {layer_indices!r}.")
    layer_indices = list(layer_indices)
    bad_types = [i for i in layer_indices if isinstance(i, bool) or not isinstance(i, numbers.Integral)]
    if bad_types:
        raise ValueError(
            f"Layer indices must be integers such as [0, 1, 11]; {bad_types!r} in {layer_indices!r} are not."
        )
    indices = [int(i) for i in layer_indices]
    if not indices:
        raise ValueError("No layers selected: pass at least one ancestry layer index.")
    if len(set(indices)) != len(indices):
        raise ValueError(f"Layer indices {indices} contain duplicates; each ancestry layer can be kept once.")
    bad = [i for i in indices if not 0 <= i < num_layers]
    if bad:
        raise ValueError(
            f"Layer indices {bad} are out of range: the ancestor has {num_layers} layers (valid: 0..{num_layers - 1})."
        )
    return indices


def _check_model_type(config: PretrainedConfig, source: str) -> None:
    model_type = getattr(config, "model_type", None)
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ValueError(
            f"{source} is a {model_type!r} model, not a ViT: learngenes are cut from ViT checkpoints "
            f"(model_type one of {SUPPORTED_MODEL_TYPES}, e.g. google/vit-base-patch16-224, facebook/dino-vits16)."
        )


def _layer_positions(state_dict: dict[str, torch.Tensor]) -> list[int]:
    found = {int(m.group(1)) for k in state_dict if (m := re.match(r"^layers\.(\d+)\.", k))}
    return sorted(found)


def _normalize_state_dict(raw: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    state = {}
    for key, tensor in raw.items():
        new_key = normalize_key(key)
        if new_key is not None:
            state[new_key] = tensor
    return state


def _read_safetensors(name_or_path: str, hub_kwargs: dict) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Read the (possibly sharded) safetensors weights of a folder or Hub repo; returns the tensors and the files."""

    def fetch(filename: str) -> str | None:
        if os.path.isdir(name_or_path):
            path = os.path.join(name_or_path, hub_kwargs.get("subfolder", ""), filename)
            return path if os.path.isfile(path) else None
        try:
            return hf_hub_download(name_or_path, filename, **hub_kwargs)
        except EntryNotFoundError:
            return None

    single = fetch("model.safetensors")
    files = [single] if single else []
    if not files:
        index = fetch("model.safetensors.index.json")
        if index:
            with open(index) as f:
                shards = sorted(set(json.load(f)["weight_map"].values()))
            outside = [s for s in shards if os.path.isabs(s) or ".." in s.replace("\\", "/").split("/")]
            if outside:
                raise OSError(
                    f"The shard index of {name_or_path!r} names files outside the checkpoint folder {outside[:3]}; "
                    "refusing to read them. Re-save the checkpoint with save_pretrained."
                )
            files = [fetch(shard) for shard in shards]
    if not files or not all(files):
        pickled = fetch("pytorch_model.bin")
        hint = (
            " It only has pytorch_model.bin, which hf_learngene does not unpickle; convert it with "
            "`ViTModel.from_pretrained(path).save_pretrained(path)` (writes safetensors)."
            if pickled
            else ""
        )
        raise OSError(f"No safetensors weights (model.safetensors) found in {name_or_path!r}.{hint}")
    state = {}
    for path in files:
        try:
            state.update(load_file(path))
        except (SafetensorError, OSError) as err:
            raise OSError(f"Could not read weights from {path}: {err}. Is the file complete (not truncated)?") from err
    return state, files


def weights_sha256(state_dict: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the tensors of a state dict (names, dtypes, shapes and bytes, in name order): the same weights give
    the same digest whether they come from a file or from memory."""
    digest = hashlib.sha256()
    for key in sorted(state_dict):
        tensor = state_dict[key].detach().cpu().contiguous()
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _snapshot_commit(path: str) -> str | None:
    # huggingface_hub keeps every download under .../snapshots/<commit sha>/<file>.
    match = re.search(r"[\\/]snapshots[\\/]([0-9a-f]{40})[\\/]", path)
    return match.group(1) if match else None


def _set_provenance(result: Ancestor, name: str | None, commit: str | None) -> None:
    """Record where the ancestor came from, never as a path of this machine: a Hub id with its commit, else the
    folder's name and the SHA-256 of the weights. A learngene used as an ancestor passes its own provenance on."""
    config = result.config
    if getattr(config, "model_type", None) == "learngene" and config.ancestor_name_or_path:
        result.name_or_path = config.ancestor_name_or_path
        result.revision = result.revision or config.ancestor_revision
        result.commit = getattr(config, "ancestor_commit", None)
        result.weights_sha256 = getattr(config, "ancestor_sha256", None)
        return
    name = os.fspath(name) if name else None
    if name and not os.path.exists(name) and is_hub_id(name):
        result.name_or_path, result.commit = name, commit
        return
    result.name_or_path = os.path.basename(os.path.normpath(name)) if name else None
    result.weights_sha256 = weights_sha256(result.state_dict)


def load_ancestor(ancestor, *, revision: str | None = None, **hub_kwargs) -> Ancestor:
    """Read an ancestry ViT.

    Args:
        ancestor (`str`, `ViTModel`, `ViTForImageClassification`, `LearngeneModel` or `Ancestor`):
            A Hub id (e.g. `"google/vit-base-patch16-224"`), a local folder written by `save_pretrained`,
            or a loaded model.
        revision (`str`, *optional*):
            Branch, tag or commit of a Hub checkpoint.
        hub_kwargs:
            Passed to the Hub download (`cache_dir`, `local_files_only`, `token`, `subfolder`).
    """
    if isinstance(ancestor, Ancestor):
        return ancestor
    if isinstance(ancestor, PreTrainedModel):
        _check_model_type(ancestor.config, f"The model {type(ancestor).__name__}")
        state = _normalize_state_dict({k: v.detach() for k, v in ancestor.state_dict().items()})
        result = Ancestor(
            config=ancestor.config,
            state_dict=state,
            revision=revision,
            image_processor=getattr(ancestor, "image_processor", None),
        )
        _set_provenance(result, ancestor.config.name_or_path or None, getattr(ancestor.config, "_commit_hash", None))
    elif isinstance(ancestor, (str, os.PathLike)):
        ancestor = os.fspath(ancestor)
        hub_kwargs = {k: v for k, v in hub_kwargs.items() if v is not None}
        if revision is not None:
            hub_kwargs["revision"] = revision
        try:
            config = AutoConfig.from_pretrained(ancestor, **hub_kwargs)
        except ValueError as err:
            raise ValueError(f"Could not read the config of {ancestor!r}: {err}") from err
        _check_model_type(config, repr(ancestor))
        raw, files = _read_safetensors(ancestor, hub_kwargs)
        result = Ancestor(
            config=config,
            state_dict=_normalize_state_dict(raw),
            revision=revision,
            image_processor=load_image_processor(ancestor, hub_kwargs),
        )
        _set_provenance(result, ancestor, None if os.path.isdir(ancestor) else _snapshot_commit(files[0]))
    else:
        raise TypeError(
            f"`ancestor` must be a Hub id, a local folder or a loaded ViTModel / ViTForImageClassification, "
            f"got {type(ancestor).__name__}."
        )
    if getattr(result.config, "learngene_form", "layers") == "linear":
        raise ValueError(
            f"{result.name_or_path!r} is a linear learngene (theta_A, theta_B), not layers that can be cut: grow "
            "descendants from it (`num_hidden_layers=`), or condense its original ancestor."
        )
    if result.image_processor is None:
        # A learngene must carry a processor so that pipelines work on its descendants; the card says it is a default.
        result.image_processor = default_image_processor(result.config)
        result.image_processor_is_default = True
    result.layer_indices = _layer_positions(result.state_dict)
    if not result.layer_indices:
        raise ValueError(f"No transformer layers found in the ancestor {result.name_or_path!r}.")
    if result.layer_indices != list(range(len(result.layer_indices))):
        # A learngene used as an ancestor: positions are contiguous in its own numbering.
        raise ValueError(f"Layer numbering of the ancestor is not contiguous: {result.layer_indices}.")
    return result


__all__ = ["Ancestor", "load_ancestor", "normalize_key", "validate_layer_indices"]
