"""Build the descendant arms through the public hf_learngene API (condense, LearngeneConfig,
DescendantForImageClassification) and transformers (the one-liner). Learngenes are cached under _cache/lg/."""
import os
import warnings

import torch
from transformers.utils import logging as hf_logging

from common import CACHE

warnings.filterwarnings("ignore")
hf_logging.set_verbosity_error()
from hf_learngene import DescendantForImageClassification, LearngeneConfig, condense  # noqa: E402


def learngene_dir(ancestor, method, n, **kw):
    name = f"{os.path.basename(ancestor.rstrip('/'))}-{method}{n}"
    path = os.path.join(CACHE, "lg", name)
    if not os.path.exists(os.path.join(path, "config.json")):
        condense(ancestor, method=method, num_layers=n, output_dir=path, **kw)
    return path


def build(arm, ancestor, seed, num_labels=5, depth=6):
    """arm: scratch | first6 | first3 (LLLRRR) | whole (12 inherited) | oneliner | scratch_half (width/2)."""
    torch.manual_seed(seed)
    if arm == "oneliner":
        from transformers import ViTForImageClassification

        return ViTForImageClassification.from_pretrained(ancestor, num_hidden_layers=depth, num_labels=num_labels,
                                                         ignore_mismatched_sizes=True)
    if arm in ("scratch", "scratch_half"):
        lg = LearngeneConfig.from_pretrained(learngene_dir(ancestor, "first", depth))
        geo = {k: getattr(lg, k) for k in ("hidden_size", "num_attention_heads", "intermediate_size", "image_size",
                                           "patch_size", "num_channels", "hidden_act", "layer_norm_eps", "qkv_bias")}
        if arm == "scratch_half":
            geo["hidden_size"] //= 2
            geo["intermediate_size"] //= 2
            geo["num_attention_heads"] //= 2
        cfg = LearngeneConfig(**geo, num_hidden_layers=depth, num_labels=num_labels)
        return DescendantForImageClassification(cfg)
    if arm.startswith("first"):
        n = int(arm[5:])
        return DescendantForImageClassification.from_pretrained(learngene_dir(ancestor, "first", n),
                                                                num_labels=num_labels, num_new_layers=depth - n)
    if arm == "whole":
        from transformers import AutoConfig

        n = AutoConfig.from_pretrained(ancestor).num_hidden_layers
        return DescendantForImageClassification.from_pretrained(learngene_dir(ancestor, "first", n),
                                                                num_labels=num_labels)
    raise ValueError(arm)
