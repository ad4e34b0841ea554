"""`hf-learngene info`: what a learngene, descendant or ViT ancestor is, without loading its weights."""

from __future__ import annotations

import math
import os
from typing import Any

from .common import CLIError, Output, check_source, hub_kwargs, load_config

EPILOG = """\
examples:
  hf-learngene info ./learngene
  hf-learngene info org/vit-learngene --json
"""
_GEOMETRY_KEYS = ("hidden_size", "num_attention_heads", "intermediate_size", "image_size", "patch_size", "num_channels")


def add_parser(commands, parents, formatter) -> None:
    p = commands.add_parser(
        "info",
        parents=parents,
        help="what a learngene or descendant is: ancestor, layers, scores, size, usage",
        description="Describe a saved learngene, descendant or ViT ancestor without loading its weights.",
        epilog=EPILOG,
        formatter_class=formatter,
    )
    p.add_argument("model", help="Hub id or local folder")
    p.add_argument("--revision", help="revision of a Hub model")
    p.set_defaults(func=run)


def _parameter_count(name: str, kwargs: dict[str, Any]) -> tuple[int | None, int | None]:
    """(parameters, bytes on disk) from the safetensors headers, without loading the weights."""
    if not os.path.isdir(name):
        try:
            from huggingface_hub import get_safetensors_metadata

            metadata = get_safetensors_metadata(name, revision=kwargs.get("revision"))
            return sum(metadata.parameter_count.values()), None
        except Exception:  # noqa: BLE001 - size is a nicety; info still shows the rest
            return None, None
    from safetensors import safe_open

    files = [os.path.join(name, f) for f in sorted(os.listdir(name)) if f.endswith(".safetensors")]
    if not files:
        return None, None
    count = 0
    for path in files:
        with safe_open(path, framework="pt") as f:
            count += sum(math.prod(f.get_slice(key).get_shape()) for key in f.keys())
    return count, sum(os.path.getsize(path) for path in files)


def _usage(name: str, config) -> str:
    if config.layout is not None:
        return (
            "from hf_learngene import DescendantForImageClassification\n"
            f'model = DescendantForImageClassification.from_pretrained("{name}")\n'
            "logits = model(pixel_values).logits  # images prepared with model.image_processor"
        )
    if getattr(config, "learngene_form", "layers") == "linear":
        return (
            "from hf_learngene import DescendantForImageClassification\n"
            f'model = DescendantForImageClassification.from_pretrained("{name}", num_labels=10, num_hidden_layers=6)\n'
            f"# or: hf-learngene inherit {name} --dataset ... --depth 6 --output ./descendant"
        )
    layout = "L" * len(config.layer_indices) + "RR"
    return (
        "from hf_learngene import DescendantForImageClassification\n"
        "model = DescendantForImageClassification.from_pretrained(\n"
        f'    "{name}", num_labels=10, layout="{layout}"\n)\n'
        "# train it: hf_learngene.training.train_descendant(model, train_ds, eval_ds, output_dir=...)\n"
        f"# or: hf-learngene inherit {name} --dataset ... --layout {layout} --output ./descendant"
    )


def _learngene_info(name: str, config) -> dict[str, Any]:
    info = {
        "kind": "descendant" if config.layout is not None else "learngene",
        "ancestor": config.ancestor_name_or_path,
        "ancestor_revision": config.ancestor_revision,
        "ancestor_num_layers": config.ancestor_num_layers,
        "layer_indices": list(config.layer_indices),
        "condensing_method": config.condensing_method,
        "condensing_scores": config.condensing_scores,
        "condensing_set": (config.condensing_details or {}).get("condensing_set"),
        "hf_learngene_version": config.hf_learngene_version,
        "learngene_form": getattr(config, "learngene_form", "layers"),
        "usage": _usage(name, config),
    }
    if config.layout is not None:
        info.update(
            layout=config.layout,
            depth=len(config.layout),
            new_layer_init=config.new_layer_init,
            labels=[config.id2label[i] for i in sorted(config.id2label)],
        )
    indices = getattr(config, "width_indices", None)
    if indices:
        # Narrower than its learngene: the sizes it was cut from and the rule that chose what it kept.
        info.update(width_selection=config.width_selection, width_from=indices.get("from"))
    return info


def _ancestor_info(name: str, kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """`(info, geometry)` of a checkpoint of a supported ancestor family, read from its config alone."""
    from transformers import AutoConfig, PretrainedConfig

    from ..ancestry import is_timm_config
    from ..ancestry.families import family_for_model_type

    raw, _ = PretrainedConfig.get_config_dict(name, **kwargs)
    if is_timm_config(raw):
        model_args = raw.get("model_args") or {}
        info = {"kind": "ancestor", "family": "timm", "architecture": raw.get("architecture"), "model_type": "timm"}
        info["num_layers"] = model_args.get("depth")
        geometry = {"hidden_size": model_args.get("embed_dim"), "num_attention_heads": model_args.get("num_heads")}
        return info, geometry
    family = family_for_model_type(raw.get("model_type"))
    if family is None or family.name == "learngene":
        return None
    config = AutoConfig.from_pretrained(name, **kwargs)
    vision = getattr(config, "vision_config", None) or config  # CLIP and SigLIP keep the tower's geometry there
    info = {"kind": "ancestor", "family": family.name, "num_layers": vision.num_hidden_layers}
    return info, {key: getattr(vision, key, None) for key in _GEOMETRY_KEYS}


def describe(name: str, kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a saved learngene, descendant or ancestor is: a JSON-friendly dict for `hf-learngene info`, read from its
    config (and the safetensors headers for the size) without loading the weights."""
    from transformers import AutoConfig

    from ..ancestry import supported_ancestors
    from ..configuration_learngene import LearngeneConfig
    from ..model_card import family_description

    kwargs = kwargs or {}
    parameters, size = _parameter_count(name, kwargs)
    info: dict[str, Any] = {"path": name, "parameters": parameters, "size_bytes": size}
    ancestor = _ancestor_info(name, kwargs)
    if ancestor is not None:
        details, geometry = ancestor
        info.update(details, geometry=geometry)
        info["usage"] = (
            f"a {details['family']} ancestry model: condense it with\n"
            f"hf-learngene condense {name} --method first --num-layers K --output ./learngene"
        )
        return info
    config = AutoConfig.from_pretrained(name, **kwargs)
    info["model_type"] = getattr(config, "model_type", None)
    if not isinstance(config, LearngeneConfig):
        raise CLIError(
            f"{name!r} is a {info['model_type']!r} model: hf-learngene describes learngenes, descendants and "
            f"ancestors of the supported families ({supported_ancestors()})."
        )
    info["geometry"] = {key: getattr(config, key, None) for key in _GEOMETRY_KEYS}
    info.update(_learngene_info(name, config))
    described = family_description(config, escape=False)
    info.update(
        ancestor_family=getattr(config, "ancestor_family", "vit"),
        family=described["family"],
        architecture=described["architecture"],
        family_choices=getattr(config, "family_choices", None),
    )
    return info


def _print_scores(info: dict[str, Any]) -> None:
    scores = info.get("condensing_scores")
    if not scores:
        return
    kept = set(info["layer_indices"])
    top = max(abs(s) for s in scores) or 1.0
    print("  scores per ancestry layer (* = kept):")
    for i, score in enumerate(scores):
        bar = "#" * max(0, round(20 * score / top))
        print(f"    {'*' if i in kept else ' '} {i:>3}  {score:>10.4f}  {bar}")


def _print_lineage(info: dict[str, Any]) -> None:
    revision = f" @ {info['ancestor_revision']}" if info.get("ancestor_revision") else ""
    print(f"  ancestor: {info['ancestor'] or 'unknown'}{revision} ({info['ancestor_num_layers']} layers)")
    print(f"  learngene layers (ancestry indices): {info['layer_indices']}")
    print(f"  condensing method: {info['condensing_method'] or 'unknown'}")
    if info.get("condensing_set"):
        print(f"  condensing set: {info['condensing_set']}")
    _print_scores(info)
    if info.get("learngene_form") == "linear":
        print("  form: linear learngene (theta_A, theta_B); descendants generate every layer")
    if info.get("width_from"):
        sizes = ", ".join(f"{k} {v}" for k, v in info["width_from"].items())
        print(f"  width: narrowed from {sizes} by {info['width_selection']} selection")
    if info["kind"] == "descendant":
        print(f"  layout: {info['layout']} (L = inherited layer, R = new layer; new layers: {info['new_layer_init']})")
        labels = info["labels"]
        print(f"  labels ({len(labels)}): {', '.join(map(str, labels[:20]))}{' ...' if len(labels) > 20 else ''}")
    if info.get("hf_learngene_version"):
        print(f"  written by hf_learngene {info['hf_learngene_version']}")


def print_info(info: dict[str, Any]) -> None:
    size = f", {info['size_bytes'] / 1e6:.2f} MB" if info.get("size_bytes") else ""
    params = f"{info['parameters']:,} parameters" if info.get("parameters") is not None else "size unknown"
    print(f"{info['path']}: {info['kind']} ({params}{size})")
    geometry = info["geometry"]
    print("  geometry: " + ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in geometry.items() if value))
    if info["kind"] == "ancestor":
        print(f"  family: {info['family']}" + (f" ({info['architecture']})" if info.get("architecture") else ""))
        print(f"  layers: {info['num_layers']}")
    else:
        print(f"  ancestor family: {info['family']}; {info['architecture']}")
        _print_lineage(info)
    print("\nHow to use it:")
    for line in info["usage"].splitlines():
        print(f"  {line}")


def run(args, out: Output) -> dict[str, Any]:
    name = check_source(args.model, "Model")
    load_config(name, args, "model")  # a missing repository, revision or config: one line, exit code 2
    info = describe(name, hub_kwargs(args))
    print_info(info)
    return info
