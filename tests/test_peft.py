"""peft LoRA and other wrapped or hooked Linears: every projection of every layer is really used.

The attention computes query, key and value as one fused matmul only when the three projections are plain
`nn.Linear`s; a LoRA layer (or any other module in their place, or a hook on them) must be called as a module.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hf_learngene import DescendantForImageClassification, LearngeneConfig

peft = pytest.importorskip("peft")

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "fc1", "fc2"]
LAYOUT = "LRRL"  # inherited and new layers, first and last (the last one runs the CLS-only shortcut)


def descendant(seed: int = 0) -> DescendantForImageClassification:
    torch.manual_seed(seed)
    config = LearngeneConfig(
        hidden_size=32,
        num_attention_heads=4,
        intermediate_size=37,
        image_size=30,
        patch_size=2,
        layout=LAYOUT,
        num_labels=3,
    )
    return DescendantForImageClassification(config).eval()


def pixel_values(batch: int = 3) -> torch.Tensor:
    return torch.randn(batch, 3, 30, 30, generator=torch.Generator().manual_seed(0))


def lora_layer_names(model: nn.Module, target: str) -> list[str]:
    return [name for name, module in model.named_modules() if name.endswith(target) and hasattr(module, "lora_B")]


@pytest.mark.parametrize("target", TARGETS)
def test_lora_changes_the_logits_and_every_lora_weight_learns(target):
    model = descendant()
    x, labels = pixel_values(), torch.tensor([0, 1, 2])
    with torch.no_grad():
        base = model(x).logits
    lora = peft.get_peft_model(model, peft.LoraConfig(r=4, lora_alpha=8, target_modules=[target]))
    wrapped = lora_layer_names(lora, target)
    assert len(wrapped) == len(LAYOUT)  # one per layer, inherited and new
    with torch.no_grad():
        # Fresh LoRA has B = 0: the model is unchanged until B moves (up to the rounding of unfused matmuls).
        torch.testing.assert_close(lora(x).logits, base, atol=1e-6, rtol=0)
        for name, param in lora.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.5, generator=torch.Generator().manual_seed(len(name)))
    lora.train()
    outputs = lora(pixel_values=x, labels=labels)
    assert (outputs.logits - base).abs().max() > 1e-3
    outputs.loss.backward()
    lora_params = {name: p for name, p in lora.named_parameters() if "lora_" in name}
    assert len(lora_params) == 2 * len(LAYOUT)
    assert all(p.requires_grad for p in lora_params.values())
    silent = [name for name, p in lora_params.items() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not silent, f"LoRA weights without gradient: {silent}"
    # Every layer's adapter matters on its own: zeroing one layer's B changes the logits.
    for layer_name in wrapped:
        module = lora.get_submodule(layer_name)
        saved = {k: v.weight.detach().clone() for k, v in module.lora_B.items()}
        with torch.no_grad():
            lora.eval()
            before = lora(x).logits
            for v in module.lora_B.values():
                v.weight.zero_()
            after = lora(x).logits
            for k, v in module.lora_B.items():
                v.weight.copy_(saved[k])
        assert (before - after).abs().max() > 1e-6, f"{layer_name}: its LoRA does not reach the output"


def test_merged_lora_equals_the_adapter():
    lora = peft.get_peft_model(descendant(), peft.LoraConfig(r=4, target_modules=["q_proj", "k_proj", "v_proj"]))
    with torch.no_grad():
        for name, param in lora.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.5)
        x = pixel_values()
        adapted = lora(x).logits
        merged = lora.merge_and_unload()  # plain nn.Linear again: the fused path runs on the merged weights
        torch.testing.assert_close(merged(x).logits, adapted, atol=1e-5, rtol=0)


def test_plain_linears_keep_the_fused_projection(monkeypatch):
    calls = []
    linear = F.linear

    def spy(input, weight, bias=None):
        calls.append(weight.shape[0])
        return linear(input, weight, bias)

    model = descendant()
    monkeypatch.setattr(F, "linear", spy)
    with torch.no_grad():
        model(pixel_values(batch=1))
    # One (3 * hidden)-row matmul per full layer, one (2 * hidden) for the CLS-only last layer's key and value.
    assert calls.count(96) == len(LAYOUT) - 1 and calls.count(64) == 1


def test_hooked_or_replaced_projections_are_called():
    model = descendant()
    layer = model.descendant_layers()[0]
    seen = []
    layer.attention.k_proj.register_forward_hook(lambda module, args, output: seen.append(output.shape))
    with torch.no_grad():
        model(pixel_values(batch=2))
    assert seen == [(2, 226, 32)]

    class Scaled(nn.Linear):
        def forward(self, input):
            return super().forward(input) * 0.0

    with torch.no_grad():
        before = model(pixel_values(batch=2)).logits
        old = layer.attention.v_proj
        layer.attention.v_proj = Scaled(32, 32)
        layer.attention.v_proj.load_state_dict(old.state_dict())
        after = model(pixel_values(batch=2)).logits
    assert (before - after).abs().max() > 1e-4
