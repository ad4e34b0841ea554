"""Q4: exact training FLOPs per image (torch.utils.flop_counter, one fwd+bwd of a batch of 64) for each arm's
model class, against the analytical formula in common.train_flops_per_image. -> results/flops.json"""
import json

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode
from transformers import ViTForImageClassification

from arms import build
from common import CACHE, HERE, norm, train_flops_per_image, vit_config

out = {}
for arm in ("scratch", "oneliner", "whole", "scratch_half", "ancestor"):
    m = ViTForImageClassification(vit_config(12, 128, 4, 512, 7, 6)) if arm == "ancestor" else build(arm, f"{CACHE}/random_anc", 0)
    x = norm(torch.randint(0, 255, (64, 1, 28, 28), dtype=torch.uint8))
    y = torch.randint(0, 5, (64,))
    with FlopCounterMode(display=False) as fc:
        F.cross_entropy(m(pixel_values=x).logits, y).backward()
    with FlopCounterMode(display=False) as fe, torch.no_grad():
        m.eval(); m(pixel_values=x)
    out[arm] = {"train_gflop_per_img": fc.get_total_flops() / 64 / 1e9, "eval_gflop_per_img": fe.get_total_flops() / 64 / 1e9,
                "params": sum(p.numel() for p in m.parameters())}
    print(arm, out[arm], flush=True)
out["analytical_6x128"] = train_flops_per_image(6, 128, 512, 17) / 1e9
out["analytical_12x128"] = train_flops_per_image(12, 128, 512, 17, 6) / 1e9
json.dump(out, open(f"{HERE}/results/flops.json", "w"), indent=1)
print(out)
