"""Saved learngenes and descendants load with trust_remote_code=True where hf_learngene cannot be imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import torch
from tiny_models import pixel_values, tiny_processor, tiny_vit

from hf_learngene import DescendantForImageClassification, condense

# Runs in a fresh interpreter where `import hf_learngene` fails, so only the files saved beside the weights
# (auto_map -> configuration_learngene.py / modeling_learngene.py) can provide the classes.
_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["hf_learngene"] = None  # makes `import hf_learngene` raise ImportError
    try:
        import hf_learngene  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("hf_learngene is importable; the test would prove nothing")
    import torch
    from transformers import AutoModel, AutoModelForImageClassification
    learngene = AutoModel.from_pretrained(sys.argv[1], trust_remote_code=True).eval()
    descendant = AutoModelForImageClassification.from_pretrained(sys.argv[2], trust_remote_code=True).eval()
    # A learngene's own remote code grows a new descendant (its auto_map names the classifier too).
    grown = AutoModelForImageClassification.from_pretrained(
        sys.argv[1], trust_remote_code=True, num_labels=5, layout="LRRL"
    ).eval()
    x = torch.load(sys.argv[3], weights_only=True)
    with torch.no_grad():
        torch.save(
            {
                "hidden": learngene(x).last_hidden_state,
                "logits": descendant(x).logits,
                "grown": grown(x).logits,
                "grown_inherited": grown.learngene.layers[1].mlp.fc1.weight,
                "classes": [type(learngene).__module__, type(descendant).__module__, type(grown).__module__],
            },
            sys.argv[4],
        )
    """
)


def test_remote_code_loading_without_package(tmp_path):
    learngene = condense(tiny_vit(seed=3), method="manual", layers=[1, 2])
    learngene.image_processor = tiny_processor()
    learngene.save_pretrained(tmp_path / "learngene")
    descendant = DescendantForImageClassification.from_pretrained(tmp_path / "learngene", num_labels=4, layout="LRL")
    descendant.save_pretrained(tmp_path / "descendant")
    auto_map = json.loads((tmp_path / "descendant" / "config.json").read_text())["auto_map"]
    assert auto_map["AutoModelForImageClassification"] == "modeling_learngene.DescendantForImageClassification"

    x = pixel_values(batch=2)
    torch.save(x, tmp_path / "x.pt")
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _SCRIPT,
            str(tmp_path / "learngene"),
            str(tmp_path / "descendant"),
            str(tmp_path / "x.pt"),
            str(tmp_path / "out.pt"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = torch.load(tmp_path / "out.pt", weights_only=True)
    assert all(module.startswith("transformers_modules") for module in out["classes"]), out["classes"]
    with torch.no_grad():
        torch.testing.assert_close(out["hidden"], learngene.eval()(x).last_hidden_state)
        torch.testing.assert_close(out["logits"], descendant.eval()(x).logits)
    assert out["grown"].shape == (2, 5)
    assert torch.equal(out["grown_inherited"], learngene.layers[1].mlp.fc1.weight)


def test_remote_code_model_saved_with_the_package_gets_the_right_card(tmp_path):
    # Loaded through remote code while hf_learngene is imported: the card kind comes from the architecture, so a
    # descendant keeps a descendant card (not a learngene card) when saved again.
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    learngene = condense(tiny_vit(seed=3), method="first", num_layers=2)
    learngene.save_pretrained(tmp_path / "learngene")
    DescendantForImageClassification.from_pretrained(
        tmp_path / "learngene", num_labels=3, layout="LRL"
    ).save_pretrained(tmp_path / "descendant")
    # The class from the checkpoint's own modeling file (the package's registered class would win in AutoModel...).
    remote_class = get_class_from_dynamic_module(
        "modeling_learngene.DescendantForImageClassification", str(tmp_path / "descendant")
    )
    remote = remote_class.from_pretrained(tmp_path / "descendant")
    assert (
        type(remote).__module__.startswith("transformers_modules")
        and remote_class is not DescendantForImageClassification
    )
    remote.save_pretrained(tmp_path / "again")
    card = (tmp_path / "again" / "README.md").read_text()
    assert "pipeline_tag: image-classification" in card and "# Descendant ViT (LRL)" in card
