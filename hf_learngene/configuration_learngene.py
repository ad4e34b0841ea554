"""Learngene configuration.

This file travels as remote code next to saved checkpoints, so it imports only torch, transformers,
the standard library and its sibling ``modeling_learngene.py``.
"""

from __future__ import annotations

import inspect
from typing import Any

from transformers import PretrainedConfig
from transformers.utils import logging

logger = logging.get_logger(__name__)

LAYOUT_INHERITED = "L"
LAYOUT_NEW = "R"
NEW_LAYER_INITS = ("trunc_normal", "mimetic", "identity", "copy", "linear")
# What the stored layers of a learngene are: ancestry layers, or the two tensors of a linear fit over depth.
LEARNGENE_FORMS = ("layers", "linear")
# How a narrower descendant's channels were chosen from the learngene's (see `width_selection`).
WIDTH_SELECTIONS = ("uniform", "heads", "activation", "given")
# The dimensions a width selection names: the residual stream, the attention channels (q/k/v outputs, o_proj input)
# and the MLP neurons (fc1 outputs, fc2 input).
WIDTH_DIMENSIONS = ("hidden", "attention", "intermediate")

# The ancestor families hf_learngene reads (`ancestor_family`); their differences from a plain ViT are recorded in the
# architecture fields below, so the family name itself is provenance only.
ANCESTOR_FAMILIES = ("vit", "deit", "dinov2", "dinov2_with_registers", "clip", "siglip", "vit_mae", "timm")
# The MLP of each layer: fc1 -> activation -> fc2, or SwiGLU with fc1 holding the gate and up projections stacked.
MLP_TYPES = ("mlp", "swiglu")
# What a descendant's classifier reads (see `pooling`).
POOLINGS = ("cls", "cls_distillation", "mean", "map")
# Where the final LayerNorm applies: to every token, or to the pooled vector only (CLIP, timm's `fc_norm`).
FINAL_LAYERNORMS = ("sequence", "pooled")
# Which prefix tokens carry position embeddings besides the patches.
POSITION_EMBEDDING_PREFIXES = ("class", "all", "none")
# How position embeddings are resized to another input size.
POSITION_INTERPOLATIONS = ("bicubic", "bicubic_fp32", "bicubic_fp32_antialias")

# The ViT geometry a learngene shares with its ancestor and every descendant: the fields ViTConfig also has, then what
# an ancestor family changes in the embeddings, the layers and the pooling (defaults: a plain transformers ViT).
GEOMETRY_FIELDS = (
    "hidden_size",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "initializer_range",
    "layer_norm_eps",
    "image_size",
    "patch_size",
    "num_channels",
    "qkv_bias",
    "class_token",
    "distillation_token",
    "num_register_tokens",
    "position_embedding_prefix",
    "position_interpolation",
    "interpolate_pos_encoding",
    "patch_bias",
    "pre_layernorm",
    "final_layernorm",
    "layer_scale",
    "layer_scale_init_value",
    "mlp_type",
    "pooling",
)


def _library_version() -> str | None:
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover - Python without importlib.metadata
        return None
    try:
        return version("hf_learngene")
    except PackageNotFoundError:
        return None


def resolve_layout(layout: str | None, num_new_layers: int | None, num_inherited: int) -> str:
    """Turn ``layout`` / ``num_new_layers`` into a validated layout string over {L, R}.

    Each ``L`` takes the next learngene layer (in order) and each ``R`` the next new, randomly initialised
    layer. Without either argument every learngene layer is used and no new layer is added.
    """
    if layout is not None and num_new_layers is not None:
        expected = LAYOUT_INHERITED * num_inherited + LAYOUT_NEW * num_new_layers
        if layout != expected:
            raise ValueError(
                f"Pass either `layout` or `num_new_layers`, not both (got layout={layout!r} and "
                f"num_new_layers={num_new_layers}). `num_new_layers={num_new_layers}` means layout={expected!r}."
            )
    if layout is None:
        if num_new_layers is None:
            num_new_layers = 0
        if not isinstance(num_new_layers, int) or isinstance(num_new_layers, bool) or num_new_layers < 0:
            raise ValueError(f"`num_new_layers` must be an integer >= 0, got {num_new_layers!r}.")
        return LAYOUT_INHERITED * num_inherited + LAYOUT_NEW * num_new_layers
    if not isinstance(layout, str) or not layout:
        raise ValueError(f"`layout` must be a non-empty string over {{L, R}} such as 'LLRRLL', got {layout!r}.")
    layout = layout.upper()
    bad = sorted(set(layout) - {LAYOUT_INHERITED, LAYOUT_NEW})
    if bad:
        raise ValueError(
            f"`layout` may only contain 'L' (inherited learngene layer) and 'R' (new random layer); "
            f"{layout!r} contains {', '.join(repr(c) for c in bad)}."
        )
    num_l = layout.count(LAYOUT_INHERITED)
    if num_l != num_inherited:
        raise ValueError(
            f"`layout` {layout!r} has {num_l} 'L' but the learngene has {num_inherited} layers: use exactly "
            f"{num_inherited} 'L' (e.g. {LAYOUT_INHERITED * num_inherited + 'RR'!r}), or pass "
            "`num_new_layers=n` to stack n new layers on top."
        )
    return layout


def _default_layer_indices(
    layer_indices: list[int] | None, num_hidden_layers: int | None, layout: str | None, num_new_layers: int | None
) -> list[int]:
    """`layer_indices` as given, else as many first ancestry layers as the learngene needs."""
    if layer_indices is not None:
        return layer_indices
    if layout is not None:
        if not isinstance(layout, str) or LAYOUT_INHERITED not in layout.upper():
            raise ValueError(
                f"`layout` must be a string over {{L, R}} with at least one 'L' (inherited learngene layer), such "
                f"as 'LLRR'; got {layout!r}."
            )
        return list(range(layout.upper().count(LAYOUT_INHERITED)))
    if num_hidden_layers is None:
        return list(range(12))
    _check_positive_int("num_hidden_layers", num_hidden_layers)
    num_inherited = num_hidden_layers - (num_new_layers if isinstance(num_new_layers, int) else 0)
    if num_inherited < 1:
        raise ValueError(
            f"`num_hidden_layers` ({num_hidden_layers}) is the descendant's depth, so it must exceed `num_new_layers` "
            f"({num_new_layers}) by at least one inherited layer."
        )
    return list(range(num_inherited))


def _model_depth(num_hidden_layers: int | None, layout: str | None, num_inherited: int) -> int:
    """The validated depth: `len(layout)` for a descendant config, the learngene's layer count otherwise."""
    depth = num_inherited if layout is None else len(layout)
    if num_hidden_layers is None or num_hidden_layers == depth:
        return depth
    _check_positive_int("num_hidden_layers", num_hidden_layers)
    if num_hidden_layers == num_inherited:
        # Written before num_hidden_layers became the descendant's depth: it counted the learngene layers.
        return depth
    raise ValueError(
        f"`num_hidden_layers` ({num_hidden_layers}) must be the model's depth: "
        + (
            f"len(layout) = {depth} for the layout {layout!r}"
            if layout is not None
            else f"len(layer_indices) = {depth} for a learngene"
        )
        + ". Leave it out (it is derived), or change `layout` / `layer_indices`."
    )


def _depth_as_new_layers(given: dict[str, Any], stored: dict[str, Any]) -> None:
    """`num_hidden_layers=d` passed while growing a descendant from a learngene (no layout yet): `d - k` new layers
    after the k inherited ones, the way `ViTForImageClassification.from_pretrained(name, num_hidden_layers=d)` sets
    the depth. Rewrites `given` in place."""
    depth = given.get("num_hidden_layers")
    if depth is None or given.keys() & {"layout", "num_new_layers"} or stored.get("layout") is not None:
        return
    layer_indices = given.get("layer_indices", stored.get("layer_indices"))
    if layer_indices is None or isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        return  # left to `__init__`, which says what is wrong
    linear = given.get("learngene_form", stored.get("learngene_form")) == "linear"
    inherited = 0 if linear else len(layer_indices)
    if not linear and depth == inherited:
        return
    if depth < inherited:
        raise ValueError(
            f"`num_hidden_layers` ({depth}) must be the model's depth, at least the learngene's {inherited} inherited "
            "layers (a descendant keeps every learngene layer): use num_hidden_layers >= "
            f"{inherited} (the extra layers are new, set by `new_layer_init`), or condense a learngene of {depth} "
            f"layer(s) (condense(ancestor, ..., num_layers={depth}))."
        )
    given["num_new_layers"] = depth - inherited
    del given["num_hidden_layers"]


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")


def encode_indices(indices: list[int]) -> str:
    """Write channel indices compactly: arithmetic runs of three or more as `start:stop[:step]` (Python slice
    bounds), other indices as themselves, comma-separated. `[0, 2, 4, 6, 9]` -> `"0:8:2,9"`."""
    values = [int(i) for i in indices]
    parts, i = [], 0
    while i < len(values):
        step = values[i + 1] - values[i] if i + 2 < len(values) else 0
        if step > 0 and values[i + 2] - values[i + 1] == step:
            j = i + 2
            while j + 1 < len(values) and values[j + 1] - values[j] == step:
                j += 1
            parts.append(f"{values[i]}:{values[j] + step}" + (f":{step}" if step != 1 else ""))
            i = j + 1
        else:
            parts.append(str(values[i]))
            i += 1
    return ",".join(parts)


def decode_indices(text: str | list[int]) -> list[int]:
    """The indices [`encode_indices`] wrote (a list of ints is returned as a list of ints)."""
    if not isinstance(text, str):
        return [int(i) for i in text]
    indices = []
    for part in filter(None, text.split(",")):
        bounds = part.split(":")
        try:
            numbers = [int(b) for b in bounds]
        except ValueError:
            raise ValueError(
                f"Cannot read channel indices {text!r}: {part!r} is not `i` or `start:stop[:step]`."
            ) from None
        if len(numbers) == 1:
            indices.append(numbers[0])
        elif len(numbers) in (2, 3) and (len(numbers) == 2 or numbers[2] > 0):
            indices.extend(range(*numbers))
        else:
            raise ValueError(f"Cannot read channel indices {text!r}: {part!r} is not `i` or `start:stop[:step]`.")
    return indices


def _normalize_width_indices(
    width_indices: dict[str, Any], num_stored_layers: int, sizes: dict[str, int]
) -> dict[str, Any]:
    """`width_indices` as config.json stores it: every index list written by [`encode_indices`], checked for its
    length (the config's sizes) and range (the source sizes in `"from"`, when recorded)."""
    if not isinstance(width_indices, dict):
        raise ValueError(
            "`width_indices` must be a dict with the kept indices of each dimension "
            f"({', '.join(WIDTH_DIMENSIONS)}), e.g. what hf_learngene.growth.select_width returns; got "
            f"{type(width_indices).__name__}."
        )
    unknown = sorted(set(width_indices) - {*WIDTH_DIMENSIONS, "from"})
    missing = [d for d in WIDTH_DIMENSIONS if d not in width_indices]
    if unknown or missing:
        raise ValueError(
            f"`width_indices` needs exactly the keys {list(WIDTH_DIMENSIONS)} (and `from`, which hf_learngene "
            f"records); got unknown {unknown}, missing {missing}."
        )
    source = width_indices.get("from")
    if source is not None:
        source = {key: int(source[key]) for key in ("hidden_size", "num_attention_heads", "intermediate_size")}
    expected = {
        "hidden": sizes["hidden_size"],
        "attention": sizes["hidden_size"],
        "intermediate": sizes["intermediate_size"],
    }
    bound = (
        None
        if source is None
        else {
            "hidden": source["hidden_size"],
            "attention": source["hidden_size"],
            "intermediate": source["intermediate_size"],
        }
    )
    size_name = {"hidden": "hidden_size", "attention": "hidden_size", "intermediate": "intermediate_size"}
    out: dict[str, Any] = {} if source is None else {"from": source}
    for dim in WIDTH_DIMENSIONS:
        value = width_indices[dim]
        # One list shared by every layer (a string or ints), or one per stored layer (strings or lists of ints).
        per_layer = isinstance(value, (list, tuple)) and bool(value) and isinstance(value[0], (list, tuple, str))
        if dim == "hidden" and per_layer:
            raise ValueError("`width_indices['hidden']` is one list: the residual stream is shared by every layer.")
        lists = [decode_indices(v) for v in value] if per_layer else [decode_indices(value)]
        if per_layer and len(lists) != num_stored_layers:
            raise ValueError(
                f"`width_indices[{dim!r}]` has {len(lists)} per-layer lists but the learngene stores "
                f"{num_stored_layers} layers: give one list per stored layer, or one list shared by all."
            )
        for indices in lists:
            if len(indices) != expected[dim]:
                raise ValueError(
                    f"`width_indices[{dim!r}]` keeps {len(indices)} indices but {size_name[dim]} is {expected[dim]}: "
                    f"pass {size_name[dim]}={len(indices)} with them (select_width returns the sizes with the "
                    "indices: from_pretrained(path, num_labels=..., **selection))."
                )
            if any(i < 0 for i in indices) or (bound is not None and any(i >= bound[dim] for i in indices)):
                limit = "" if bound is None else f" below {bound[dim]}"
                raise ValueError(f"`width_indices[{dim!r}]` has indices out of range (valid: 0{limit}).")
        encoded = [encode_indices(indices) for indices in lists]
        out[dim] = encoded if per_layer else encoded[0]
    return out


def _check_architecture(
    *,
    class_token: bool,
    distillation_token: bool,
    num_register_tokens: int,
    position_embedding_prefix: str,
    position_interpolation: str,
    final_layernorm: str,
    mlp_type: str,
    pooling: str,
    ancestor_family: str,
) -> None:
    """The architecture fields an ancestor family sets, each against its allowed values and the tokens it needs."""
    for name, value, allowed in (
        ("position_embedding_prefix", position_embedding_prefix, POSITION_EMBEDDING_PREFIXES),
        ("position_interpolation", position_interpolation, POSITION_INTERPOLATIONS),
        ("final_layernorm", final_layernorm, FINAL_LAYERNORMS),
        ("mlp_type", mlp_type, MLP_TYPES),
        ("pooling", pooling, POOLINGS),
    ):
        if value not in allowed:
            raise ValueError(f"`{name}` must be one of {allowed}, got {value!r}.")
    if isinstance(num_register_tokens, bool) or not isinstance(num_register_tokens, int) or num_register_tokens < 0:
        raise ValueError(f"`num_register_tokens` must be an integer >= 0, got {num_register_tokens!r}.")
    if distillation_token and not class_token:
        raise ValueError(
            "`distillation_token=True` needs `class_token=True`: DeiT's distillation token follows its CLS."
        )
    if pooling == "cls" and not class_token:
        raise ValueError("pooling='cls' reads the CLS token, but `class_token=False`: use pooling='mean' or 'map'.")
    if pooling == "cls_distillation" and not distillation_token:
        raise ValueError(
            "pooling='cls_distillation' averages the heads on the CLS and distillation tokens, but "
            "`distillation_token=False`: use pooling='cls'."
        )
    if not isinstance(ancestor_family, str) or not ancestor_family:
        raise ValueError(
            f"`ancestor_family` must be a family name such as {ANCESTOR_FAMILIES}, got {ancestor_family!r}."
        )


def _init_fields(cls: type) -> set[str]:
    parameters = inspect.signature(cls.__init__).parameters.values()
    return {p.name for p in parameters if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and p.name != "self"}


class LearngeneConfig(PretrainedConfig):
    r"""
    Configuration of a learngene (a few integral layers condensed out of a ViT ancestry model) and of the
    descendants grown from it.

    One config serves [`LearngeneModel`] and [`DescendantForImageClassification`], the way one `ViTConfig`
    serves `ViTModel` and `ViTForImageClassification`. The ViT geometry follows `ViTConfig`; the learngene
    fields record where the layers came from.

    Args:
        hidden_size (`int`, *optional*, defaults to 768):
            Width of the token representations.
        num_attention_heads (`int`, *optional*, defaults to 12):
            Attention heads per layer.
        intermediate_size (`int`, *optional*, defaults to 3072):
            Width of the MLP inside each layer.
        hidden_act (`str`, *optional*, defaults to `"gelu"`):
            MLP activation (any key of `transformers.activations.ACT2FN`).
        hidden_dropout_prob (`float`, *optional*, defaults to 0.0):
            Dropout on the residual branches and the embeddings.
        attention_probs_dropout_prob (`float`, *optional*, defaults to 0.0):
            Dropout on the attention probabilities.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the truncated normal used for new weights.
        layer_norm_eps (`float`, *optional*, defaults to 1e-12):
            LayerNorm epsilon.
        image_size (`int`, *optional*, defaults to 224):
            Input resolution the position embeddings were trained for.
        patch_size (`int`, *optional*, defaults to 16):
            Patch size of the patch embedding.
        num_channels (`int`, *optional*, defaults to 3):
            Input channels.
        qkv_bias (`bool`, *optional*, defaults to `True`):
            Whether the query, key and value projections have a bias.
        class_token (`bool`, *optional*, defaults to `True`):
            Whether the sequence starts with a learned CLS token (SigLIP has none).
        distillation_token (`bool`, *optional*, defaults to `False`):
            Whether a learned distillation token follows the CLS token (DeiT distilled).
        num_register_tokens (`int`, *optional*, defaults to 0):
            Learned register tokens after the CLS (and distillation) token (DINOv2 with registers, timm `reg_tokens`).
            The sequence is `[CLS] [DIST] [REG]... patches`, each prefix token present only when configured.
        position_embedding_prefix (`str`, *optional*, defaults to `"class"`):
            Which prefix tokens have position embeddings besides the patches: `"class"` (the CLS and distillation
            tokens; registers have none, as in transformers' DINOv2 with registers), `"all"` (every prefix token,
            registers included: timm's default) or `"none"` (patches only: SigLIP, timm's `no_embed_class`).
        position_interpolation (`str`, *optional*, defaults to `"bicubic"`):
            How the patch position embeddings are resized to another input size: `"bicubic"` (in the model's dtype,
            as transformers' ViT, DeiT, CLIP, SigLIP and ViT-MAE do), `"bicubic_fp32"` (in float32, as DINOv2 does)
            or `"bicubic_fp32_antialias"` (float32 with antialiasing, as DINOv2 with registers and timm do).
        interpolate_pos_encoding (`bool`, *optional*, defaults to `False`):
            The default of the forward's `interpolate_pos_encoding`: `True` for DINOv2, which always resizes its
            position grid (37x37 at 518/14) to the input.
        patch_bias (`bool`, *optional*, defaults to `True`):
            Whether the patch projection has a bias (CLIP's has none).
        pre_layernorm (`bool`, *optional*, defaults to `False`):
            A LayerNorm (`pre_layernorm`) on the embeddings before the first layer (CLIP's `pre_layrnorm`, timm's
            `norm_pre`).
        final_layernorm (`str`, *optional*, defaults to `"sequence"`):
            Where the final LayerNorm (`layernorm`) applies: `"sequence"` (every token of `last_hidden_state`) or
            `"pooled"` (only the pooled vector, as CLIP's `post_layernorm` and timm's `fc_norm`; `last_hidden_state`
            is then the last layer's output).
        layer_scale (`bool`, *optional*, defaults to `False`):
            Whether each layer scales its attention and MLP branches by learned vectors (`layer_scale1`,
            `layer_scale2`) before the residual sums (DINOv2, timm `ls1`/`ls2`).
        layer_scale_init_value (`float`, *optional*, defaults to 1.0):
            The value layer-scale vectors of new layers start at.
        mlp_type (`str`, *optional*, defaults to `"mlp"`):
            `"mlp"`: fc2(act(fc1(x))). `"swiglu"`: fc1 holds the gate and up projections stacked (2 x
            `intermediate_size` outputs, gate first) and the MLP computes fc2(act(gate) * up), `hidden_act` being the
            gate's activation (`"silu"`: DINOv2's `use_swiglu_ffn`, timm's `SwiGLUPacked`).
        pooling (`str`, *optional*, defaults to `"cls"`):
            What a descendant's classifier reads: `"cls"` (the CLS token), `"cls_distillation"` (the mean of two
            heads, on the CLS and on the distillation token, as DeiT distilled does), `"mean"` (the mean of the
            patch tokens, prefix tokens excluded) or `"map"` (a multi-head attention pooling head, `map_head`: a
            learned probe attends over the tokens, then a residual MLP; SigLIP's).
        ancestor_family (`str`, *optional*, defaults to `"vit"`):
            The family of the ancestor the layers came from (one of `ANCESTOR_FAMILIES`); provenance only, the fields
            above say what the layers compute.
        family_choices (`dict`, *optional*):
            What hf_learngene chose when reading the ancestor's family, in words (e.g. whether DeiT's distillation
            token was carried or dropped, SigLIP's pooling, ViT-MAE's masking), for the model card and `info`.
        layer_indices (`list[int]`, *optional*):
            Indices of the ancestry layers kept, in order. Defaults to one per `L` of `layout` when a layout is
            given, else to `range(num_hidden_layers - num_new_layers)`, else to `range(12)`.
        num_hidden_layers (`int`, *optional*):
            Depth of the model the config describes: `len(layout)` for a descendant, `len(layer_indices)` for a
            learngene. Derived when left out. A value equal to `len(layer_indices)` beside a longer `layout` (what
            configs written before hf_learngene 0.2 store) is read as that layout's depth.
        ancestor_name_or_path (`str`, *optional*):
            Hub id of the ancestry model; for a local folder or an in-memory model, its name only (never a path).
        ancestor_revision (`str`, *optional*):
            Revision (branch, tag or commit) of a Hub ancestor, as asked for.
        ancestor_commit (`str`, *optional*):
            The commit a Hub ancestor resolved to.
        ancestor_sha256 (`str`, *optional*):
            SHA-256 of the ancestor's weights, for an ancestor without a Hub id.
        ancestor_num_layers (`int`, *optional*):
            Depth of the ancestry model. Defaults to `max(layer_indices) + 1`.
        condensing_method (`str`, *optional*):
            How the layers were chosen (`"manual"`, `"heuristic"`, `"first"`, `"random"`, `"cka"`, `"auto"`).
        condensing_scores (`list[float]`, *optional*):
            One score per ancestry layer (higher = more worth inheriting), when the method computes them.
        condensing_details (`dict`, *optional*):
            A compact record of how the layers were chosen: the method's summary and settings, the condensing set's
            name and size. Histories and score matrices go to `condense_report.json` beside the weights.
        layout (`str`, *optional*):
            Descendant layout over {L, R}: each `L` takes the next learngene layer, each `R` the next new layer.
        num_new_layers (`int`, *optional*):
            Shortcut for `layout`: all learngene layers followed by this many new layers.
        new_layer_init (`str`, *optional*):
            How a descendant's new layers (`R`) start; `"linear"` for a linear learngene, else `"trunc_normal"` by
            default. `"trunc_normal"`: transformers' ViT scheme. `"mimetic"`: attention initialised so that
            W_q W_k^T ~ I and W_v W_o ~ -I (Trockman & Kolter 2023). `"identity"`: random, but both residual
            branches end in zeros (attention `o_proj` and MLP `fc2`, weights and biases), so the layer passes its
            input through and the descendant starts out computing exactly what its inherited layers compute
            (function-preserving growth, Net2Net / bert2BERT). `"copy"`: a copy of the nearest inherited layer in the
            layout (a tie goes to the earlier one). `"linear"`: the layer at position l (1-based) of a descendant of
            depth D gets theta_A + (l / D) * theta_B per tensor (TLEG), with (theta_A, theta_B) the linear
            learngene's, or, for a learngene of kept layers, the least-squares fit over the inherited layers at their
            own positions in the layout (at least two needed).
        learngene_form (`str`, *optional*, defaults to `"layers"`):
            What the learngene stores. `"layers"`: one layer per `layer_indices` entry, the ancestry's own.
            `"linear"`: two tensors per layer parameter, theta_A (`layers.0`) and theta_B (`layers.1`), fitted by
            least squares so that ancestry layer i of L is close to theta_A + ((i + 1) / L) * theta_B over the
            ancestry layers in `layer_indices` (see `hf_learngene.condensing.linear`). A linear learngene's
            descendants inherit no layer: their layout is all `R` (`num_hidden_layers=` gives the depth) and every
            layer is generated with `new_layer_init="linear"`; its own forward runs the fitted layers at the
            positions of `layer_indices`.
        width_selection (`str`, *optional*):
            How a model narrower than its learngene chose its channels; None at the learngene's width.
            `"uniform"`: evenly spaced indices in every dimension (weight selection, Xu et al. 2024). `"heads"`:
            whole heads (head_dim unchanged), evenly spaced heads, residual channels and MLP neurons. `"activation"`:
            the residual channels, heads and MLP neurons with the largest activations on sample images
            (`hf_learngene.growth.select_width`). `"given"`: indices passed as `width_indices`.
        width_indices (`dict`, *optional*):
            The kept indices of each dimension: `"hidden"` (the residual stream: patch projection, CLS and position
            embeddings, every LayerNorm, every projection's input or output), `"attention"` (q/k/v outputs and
            o_proj input) and `"intermediate"` (MLP fc1 outputs and fc2 input), the last two one list shared by every
            layer or one per stored layer; plus `"from"`, the learngene's sizes. Lists of ints are accepted and stored
            compactly (`"0:768:2"` is every other index of 768; see `encode_indices`).

    The geometry (`hidden_size` divisible by `num_attention_heads`, positive sizes, a known `hidden_act`) is
    checked when a model is built from the config, so that partial configs can be written field by field; the
    learngene and layout fields are checked here, also when they come as `from_pretrained` keyword arguments.

    Example:

    ```python
    >>> from hf_learngene import LearngeneConfig, LearngeneModel
    >>> config = LearngeneConfig(
    ...     hidden_size=192, num_attention_heads=3, intermediate_size=768, layer_indices=[0, 1, 11]
    ... )
    >>> model = LearngeneModel(config)
    ```"""

    model_type = "learngene"

    def __init__(
        self,
        hidden_size: int = 768,
        num_attention_heads: int = 12,
        intermediate_size: int = 3072,
        hidden_act: str = "gelu",
        hidden_dropout_prob: float = 0.0,
        attention_probs_dropout_prob: float = 0.0,
        initializer_range: float = 0.02,
        layer_norm_eps: float = 1e-12,
        image_size: int = 224,
        patch_size: int = 16,
        num_channels: int = 3,
        qkv_bias: bool = True,
        class_token: bool = True,
        distillation_token: bool = False,
        num_register_tokens: int = 0,
        position_embedding_prefix: str = "class",
        position_interpolation: str = "bicubic",
        interpolate_pos_encoding: bool = False,
        patch_bias: bool = True,
        pre_layernorm: bool = False,
        final_layernorm: str = "sequence",
        layer_scale: bool = False,
        layer_scale_init_value: float = 1.0,
        mlp_type: str = "mlp",
        pooling: str = "cls",
        ancestor_family: str = "vit",
        family_choices: dict[str, str] | None = None,
        layer_indices: list[int] | None = None,
        num_hidden_layers: int | None = None,
        ancestor_name_or_path: str | None = None,
        ancestor_revision: str | None = None,
        ancestor_commit: str | None = None,
        ancestor_sha256: str | None = None,
        ancestor_num_layers: int | None = None,
        condensing_method: str | None = None,
        condensing_scores: list[float] | None = None,
        condensing_details: dict[str, Any] | None = None,
        layout: str | None = None,
        num_new_layers: int | None = None,
        new_layer_init: str | None = None,
        learngene_form: str = "layers",
        width_selection: str | None = None,
        width_indices: dict[str, Any] | None = None,
        hf_learngene_version: str | None = None,
        **kwargs,
    ):
        layer_indices = _default_layer_indices(layer_indices, num_hidden_layers, layout, num_new_layers)
        layer_indices = [int(i) for i in layer_indices]
        if not layer_indices:
            raise ValueError("`layer_indices` is empty: a learngene needs at least one ancestry layer.")
        if len(set(layer_indices)) != len(layer_indices):
            raise ValueError(f"`layer_indices` {layer_indices} contains duplicates; each ancestry layer once.")
        if min(layer_indices) < 0:
            raise ValueError(f"`layer_indices` {layer_indices} contains negative indices.")
        if ancestor_num_layers is None:
            ancestor_num_layers = max(layer_indices) + 1
        if max(layer_indices) >= ancestor_num_layers:
            raise ValueError(
                f"`layer_indices` {layer_indices} out of range for an ancestor of {ancestor_num_layers} layers "
                f"(valid: 0..{ancestor_num_layers - 1})."
            )
        if learngene_form not in LEARNGENE_FORMS:
            raise ValueError(f"`learngene_form` must be one of {LEARNGENE_FORMS}, got {learngene_form!r}.")
        if new_layer_init is None:
            new_layer_init = "linear" if learngene_form == "linear" else "trunc_normal"
        if new_layer_init not in NEW_LAYER_INITS:
            raise ValueError(f"`new_layer_init` must be one of {NEW_LAYER_INITS}, got {new_layer_init!r}.")
        if learngene_form == "linear":
            if new_layer_init != "linear":
                raise ValueError(
                    "A linear learngene (learngene_form='linear') generates every descendant layer from its "
                    f"(theta_A, theta_B), so `new_layer_init` must be 'linear', not {new_layer_init!r}. For "
                    f"{new_layer_init!r} new layers, grow from a learngene of kept layers (e.g. condense(ancestor, "
                    'method="first", num_layers=k)).'
                )
            if len(layer_indices) < 2:
                raise ValueError(
                    f"A linear learngene is fitted over at least 2 ancestry layers; `layer_indices` is {layer_indices}."
                )
        num_stored = 2 if learngene_form == "linear" else len(layer_indices)
        if width_selection is not None and width_selection not in WIDTH_SELECTIONS:
            raise ValueError(f"`width_selection` must be one of {WIDTH_SELECTIONS}, got {width_selection!r}.")
        if width_indices is not None:
            if width_selection in ("uniform", "heads") and not (
                isinstance(width_indices, dict) and "from" in width_indices
            ):
                raise ValueError(
                    f"`width_indices` are explicit indices, but width_selection={width_selection!r} computes its own: "
                    "pass one of them (explicit indices are recorded as width_selection='given')."
                )
            width_selection = width_selection or "given"
            sizes = {"hidden_size": hidden_size, "intermediate_size": intermediate_size}
            width_indices = _normalize_width_indices(width_indices, num_stored, sizes)
        elif width_selection in ("activation", "given"):
            raise ValueError(
                f"width_selection={width_selection!r} needs the kept indices: `selection = "
                "hf_learngene.growth.select_width(learngene, dataset, hidden_size=..., num_attention_heads=..., "
                "intermediate_size=...)`, then `from_pretrained(path, num_labels=..., **selection)` (or pass "
                '`width_indices={"hidden": [...], "attention": [...], "intermediate": [...]}` yourself).'
            )
        _check_architecture(
            class_token=class_token,
            distillation_token=distillation_token,
            num_register_tokens=num_register_tokens,
            position_embedding_prefix=position_embedding_prefix,
            position_interpolation=position_interpolation,
            final_layernorm=final_layernorm,
            mlp_type=mlp_type,
            pooling=pooling,
            ancestor_family=ancestor_family,
        )
        if condensing_scores is not None and len(condensing_scores) != ancestor_num_layers:
            raise ValueError(
                f"`condensing_scores` has {len(condensing_scores)} entries; expected one per ancestry layer "
                f"({ancestor_num_layers})."
            )

        self.hidden_size = hidden_size
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.initializer_range = initializer_range
        self.layer_norm_eps = layer_norm_eps
        self.image_size = image_size
        self.patch_size = patch_size
        self.num_channels = num_channels
        self.qkv_bias = qkv_bias
        self.class_token = class_token
        self.distillation_token = distillation_token
        self.num_register_tokens = num_register_tokens
        self.position_embedding_prefix = position_embedding_prefix
        self.position_interpolation = position_interpolation
        self.interpolate_pos_encoding = interpolate_pos_encoding
        self.patch_bias = patch_bias
        self.pre_layernorm = pre_layernorm
        self.final_layernorm = final_layernorm
        self.layer_scale = layer_scale
        self.layer_scale_init_value = layer_scale_init_value
        self.mlp_type = mlp_type
        self.pooling = pooling
        self.ancestor_family = ancestor_family
        self.family_choices = family_choices
        self.layer_indices = layer_indices
        self.ancestor_name_or_path = ancestor_name_or_path
        self.ancestor_revision = ancestor_revision
        self.ancestor_commit = ancestor_commit
        self.ancestor_sha256 = ancestor_sha256
        self.ancestor_num_layers = ancestor_num_layers
        self.condensing_method = condensing_method
        self.condensing_scores = condensing_scores
        self.condensing_details = condensing_details
        self.layout = layout
        self.num_new_layers = num_new_layers
        self.new_layer_init = new_layer_init
        self.learngene_form = learngene_form
        self.width_selection = width_selection
        self.width_indices = width_indices
        self.hf_learngene_version = hf_learngene_version or _library_version()
        # Whether the task head size was given explicitly; a bare learngene config has none.
        self._labels_given = layout is not None or "num_labels" in kwargs or kwargs.get("id2label") is not None
        if layout is not None or num_new_layers is not None:
            self.layout = self.resolved_layout()
            self.num_new_layers = None
        self.num_hidden_layers = _model_depth(num_hidden_layers, self.layout, len(layer_indices))
        super().__init__(**kwargs)
        current = _library_version()
        if hf_learngene_version and current and hf_learngene_version != current:
            logger.info(f"This config was written by hf_learngene {hf_learngene_version}; running {current}.")

    def geometry(self) -> dict[str, Any]:
        """The ViT geometry fields (`GEOMETRY_FIELDS`), e.g. to build a scratch model of the same shape."""
        return {name: getattr(self, name) for name in GEOMETRY_FIELDS}

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **kwargs) -> LearngeneConfig:
        """`PretrainedConfig.from_dict`, with the keyword arguments that are fields of this config passed to
        `__init__` (transformers sets them with `setattr` after construction, which would skip their validation)."""
        fields = _init_fields(cls)
        given = {key: kwargs.pop(key) for key in list(kwargs) if key in fields}
        config_dict = dict(config_dict)
        _depth_as_new_layers(given, config_dict)
        if given.keys() & {"layout", "num_new_layers", "layer_indices"} and "num_hidden_layers" not in given:
            # The stored depth belongs to the stored layout; the one given now defines it again.
            config_dict.pop("num_hidden_layers", None)
        if "num_new_layers" in given and "layout" not in given:
            # "All learngene layers, then n new ones" replaces a stored descendant layout.
            config_dict.pop("layout", None)
        labels_stored = any(config_dict.get(key) is not None for key in ("num_labels", "id2label"))
        labels_passed = "num_labels" in kwargs or kwargs.get("id2label") is not None
        config_dict.update(given)
        loaded = super().from_dict(config_dict, **kwargs)
        config = loaded[0] if isinstance(loaded, tuple) else loaded
        if labels_passed:
            # `num_labels=` or `id2label=` sizes the head (transformers sets them after construction).
            config._labels_given = True
        elif given.keys() & {"layout", "num_new_layers"} and not labels_stored:
            # A layout passed while growing a descendant from a bare learngene does not size the head.
            config._labels_given = False
        return loaded

    @property
    def num_inherited_layers(self) -> int:
        """How many layers a descendant inherits (its `L`): every stored layer, or none for a linear learngene."""
        return 0 if self.learngene_form == "linear" else len(self.layer_indices)

    @property
    def num_stored_layers(self) -> int:
        """How many layers the learngene stores: one per `layer_indices` entry, or theta_A and theta_B."""
        return 2 if self.learngene_form == "linear" else len(self.layer_indices)

    def resolved_layout(self) -> str:
        """The validated descendant layout (all learngene layers and no new one when none was set)."""
        if self.learngene_form == "linear" and isinstance(self.layout, str) and LAYOUT_INHERITED in self.layout.upper():
            raise ValueError(
                f"`layout` {self.layout!r} inherits layers, but a linear learngene has none to inherit: every "
                "descendant layer is generated from (theta_A, theta_B). Use an all-'R' layout ('R' * depth) or "
                "`num_hidden_layers=<depth>`."
            )
        layout = resolve_layout(self.layout, self.num_new_layers, self.num_inherited_layers)
        if not layout:
            raise ValueError(
                "A linear learngene has no layer to inherit: every descendant layer is generated from (theta_A, "
                f"theta_B). Give the depth: `num_hidden_layers=<depth>` (e.g. {len(self.layer_indices)}, the fitted "
                "ancestry depth) or `num_new_layers=<depth>`."
            )
        if (
            self.new_layer_init == "linear"
            and self.learngene_form == "layers"
            and LAYOUT_NEW in layout
            and layout.count(LAYOUT_INHERITED) < 2
        ):
            raise ValueError(
                "new_layer_init='linear' fits theta_A + t * theta_B over the inherited layers at their positions in "
                f"the layout, which needs at least 2 of them; {layout!r} has {layout.count(LAYOUT_INHERITED)}. Use "
                "'copy' or 'identity', or grow from a linear learngene (condense(ancestor, method='linear'))."
            )
        return layout

    def to_dict(self) -> dict[str, Any]:
        output = super().to_dict()
        output.pop("_labels_given", None)
        return output

    @property
    def num_prefix_tokens(self) -> int:
        """Tokens before the patches: CLS, distillation and register tokens, as configured."""
        return int(self.class_token) + int(self.distillation_token) + self.num_register_tokens

    @property
    def has_pooled_output(self) -> bool:
        """Whether a learngene's output carries `pooler_output`: when what the classifier reads is not simply the
        first token of `last_hidden_state` (mean or MAP pooling, or a final LayerNorm on the pooled vector only)."""
        return self.pooling in ("mean", "map") or self.final_layernorm == "pooled"


__all__ = ["ANCESTOR_FAMILIES", "GEOMETRY_FIELDS", "LearngeneConfig", "decode_indices", "encode_indices"]
