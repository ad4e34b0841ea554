"""`load_ancestor`: a Hub id, a local folder or a loaded model -> [`Ancestor`], through its family's reader.

Weights are read from safetensors only: nothing is unpickled. Provenance is recorded compactly and never as a path of
this machine: a Hub ancestor by its id, the revision asked for and the commit it resolved to; a local folder or an
in-memory model by its name (the folder's last component) and the SHA-256 of its weights.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Any

import torch
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import EntryNotFoundError
from safetensors import SafetensorError
from safetensors.torch import load_file
from transformers import AutoConfig, PretrainedConfig, PreTrainedModel

from ..data import default_image_processor, load_image_processor
from ..utils import is_hub_id
from .ancestor import Ancestor
from .families import AncestorFamily, FamilyRead, ReadOptions, check_options, family_for_model_type, supported_ancestors
from .timm_vit import TIMM_FAMILY, is_timm_config, timm_image_processor


def _family(config: PretrainedConfig, source: str) -> AncestorFamily:
    model_type = getattr(config, "model_type", None)
    family = family_for_model_type(model_type)
    if family is None:
        raise ValueError(
            f"{source} is a {model_type!r} model, not a ViT of a family hf_learngene can cut a learngene from. "
            f"Supported ancestors: {supported_ancestors()}."
        )
    return family


def _layer_positions(state_dict: dict[str, torch.Tensor]) -> list[int]:
    found = {int(m.group(1)) for k in state_dict if (m := re.match(r"^layers\.(\d+)\.", k))}
    return sorted(found)


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
            "`AutoModel.from_pretrained(path).save_pretrained(path)` (writes safetensors)."
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


def _set_provenance(
    result: Ancestor, name: str | None, commit: str | None, source_state: dict[str, torch.Tensor]
) -> None:
    """Record where the ancestor came from, never as a path of this machine: a Hub id with its commit, else the
    folder's name and the SHA-256 of the weights (every tensor, under this package's names, before any reading option).
    A learngene used as an ancestor passes its own provenance on."""
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
    result.weights_sha256 = weights_sha256(source_state)


def load_ancestor(
    ancestor,
    *,
    revision: str | None = None,
    distillation_token: str | None = None,
    pooling: str | None = None,
    timm_model_args: dict[str, Any] | None = None,
    **hub_kwargs,
) -> Ancestor:
    """Read an ancestry ViT of any supported family (`hf_learngene.ancestry.FAMILIES`).

    Args:
        ancestor (`str`, a loaded model, or `Ancestor`):
            A Hub id (e.g. `"google/vit-base-patch16-224"`, `"facebook/dinov2-small"`, `"openai/clip-vit-base-patch16"`,
            `"timm/vit_small_patch16_224.augreg_in21k_ft_in1k"`), a local folder (written by `save_pretrained`, or
            timm's `config.json` + `model.safetensors`), or a loaded model: `ViTModel`, `ViTForImageClassification`,
            `DeiTModel`, `DeiTForImageClassificationWithTeacher`, `Dinov2Model`, `Dinov2WithRegistersModel`,
            `CLIPVisionModel` / `CLIPModel`, `SiglipVisionModel` / `SiglipModel`, `ViTMAEModel`, `TimmWrapperModel`,
            a `LearngeneModel`.
        revision (`str`, *optional*):
            Branch, tag or commit of a Hub checkpoint.
        distillation_token (`str`, *optional*):
            DeiT distilled (and timm's): `"carry"` (default: descendants average a head on the CLS token and one on
            the distillation token, as DeiT does) or `"drop"` (the token and its position embedding are left out;
            descendants classify from the CLS token).
        pooling (`str`, *optional*):
            What descendants classify from, instead of the family's default (`"cls"`; DeiT distilled
            `"cls_distillation"`; SigLIP `"map"`, its attention pooling head, or `"mean"` when it has none): one of
            `"cls"`, `"cls_distillation"`, `"mean"` (patch tokens), `"map"` (SigLIP only).
        timm_model_args (`dict`, *optional*):
            For timm checkpoints, what their `config.json` does not store: `num_heads`, `act_layer` (timm's name, e.g.
            `"gelu"`, `"quick_gelu"`, `"gelu_tanh"`), `norm_eps`, `global_pool`, `img_size`, `init_values` (merged
            over its `model_args`).
        hub_kwargs:
            Passed to the Hub download (`cache_dir`, `local_files_only`, `token`, `subfolder`).

    Pass the result to `condense()` to keep these choices: `condense(load_ancestor(path, pooling="mean"), ...)`.
    """
    options = ReadOptions(distillation_token=distillation_token, pooling=pooling, timm_model_args=timm_model_args)
    if isinstance(ancestor, Ancestor):
        if options.given():
            raise ValueError(f"Reading options {options.given()} apply when an ancestor is read, not to an Ancestor.")
        return ancestor
    if isinstance(ancestor, PreTrainedModel):
        config = ancestor.config
        family = _family(config, f"The model {type(ancestor).__name__}")
        check_options(family, options)
        read = family.read(config, {k: v.detach() for k, v in ancestor.state_dict().items()}, options)
        result, source_state = _ancestor(family, read, revision, getattr(ancestor, "image_processor", None))
        name, commit = config.name_or_path or None, getattr(config, "_commit_hash", None)
    elif isinstance(ancestor, (str, os.PathLike)):
        ancestor = os.fspath(ancestor)
        hub_kwargs = {k: v for k, v in hub_kwargs.items() if v is not None}
        if revision is not None:
            hub_kwargs["revision"] = revision
        try:
            config_dict, _ = PretrainedConfig.get_config_dict(ancestor, **hub_kwargs)
            if is_timm_config(config_dict):
                family, config = TIMM_FAMILY, config_dict
            else:
                config = AutoConfig.from_pretrained(ancestor, **hub_kwargs)
                family = _family(config, repr(ancestor))
        except ValueError as err:
            if "Supported ancestors:" in str(err):
                raise
            raise ValueError(f"Could not read the config of {ancestor!r}: {err}") from err
        check_options(family, options)
        raw, files = _read_safetensors(ancestor, hub_kwargs)
        processor = load_image_processor(ancestor, hub_kwargs)
        if processor is None and family is TIMM_FAMILY:
            processor = timm_image_processor(config)
        result, source_state = _ancestor(family, family.read(config, raw, options), revision, processor)
        name, commit = ancestor, None if os.path.isdir(ancestor) else _snapshot_commit(files[0])
    else:
        raise TypeError(
            "`ancestor` must be a Hub id, a local folder or a loaded model (ViTModel, DeiTModel, Dinov2Model, "
            f"CLIPVisionModel, SiglipVisionModel, ViTMAEModel, ...), got {type(ancestor).__name__}."
        )
    _set_provenance(result, name, commit, source_state)
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


def _ancestor(
    family: AncestorFamily, read: FamilyRead, revision: str | None, image_processor
) -> tuple[Ancestor, dict[str, torch.Tensor]]:
    """The `Ancestor` of a family read, and every tensor the ancestor had (before reading options) for its digest."""
    if read.fields.get("pooling") == "map" and "map_head.probe" not in read.state_dict:
        raise ValueError(
            "pooling='map' needs a multi-head attention pooling head, which only SigLIP vision towers "
            "(vision_use_head=True) have; use pooling='cls' or 'mean'."
        )
    result = Ancestor(
        config=read.config,
        state_dict=read.state_dict,
        revision=revision,
        image_processor=image_processor,
        family=getattr(read.config, "ancestor_family", family.name) if family.name == "learngene" else family.name,
        fields=read.fields,
        choices=read.choices or None,
    )
    return result, read.state_dict if read.source_state is None else read.source_state


__all__ = ["load_ancestor", "weights_sha256"]
