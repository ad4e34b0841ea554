"""Q5: is the HF one-liner `ViTForImageClassification.from_pretrained(anc, num_hidden_layers=6, num_labels=5,
ignore_mismatched_sizes=True)` the same model as `DescendantForImageClassification.from_pretrained(
condense(anc, method="first", num_layers=6) saved, num_labels=5)`?

python oneliner_vs_first.py ANCESTOR_FOLDER   (writes results/oneliner_vs_first.json)
Checks: every inherited tensor (name-mapped), which tensors are new in each, final layernorm, pooler, dropout,
attention implementation, classifier init statistics, logits with the classifier copied across (eval mode, fp32,
on real MNIST images), and the gradient of one training step. Then trains both for the same steps/seed/batches
to see whether their accuracy differs (same init for the head is copied in a 2nd variant).
"""
import json
import sys
import tempfile
import time
import warnings

import torch
import torch.nn.functional as F
from transformers import ViTForImageClassification
from transformers.utils import logging as hf_logging

from common import HERE, accuracy, mnist, norm, train

warnings.filterwarnings("ignore")
hf_logging.set_verbosity_error()
import hf_learngene  # noqa: E402
from hf_learngene import DescendantForImageClassification, condense  # noqa: E402

anc = sys.argv[1]
out = {"ancestor": anc}


def oneliner(seed=0):
    torch.manual_seed(seed)
    return ViTForImageClassification.from_pretrained(anc, num_hidden_layers=6, num_labels=5,
                                                     ignore_mismatched_sizes=True)


tmp = tempfile.mkdtemp()
lg = condense(anc, method="first", num_layers=6, output_dir=tmp)


def first(seed=0):
    torch.manual_seed(seed)
    return DescendantForImageClassification.from_pretrained(tmp, num_labels=5)


hf, lgm = oneliner(), first()
out["hf_config"] = {k: getattr(hf.config, k) for k in ("num_hidden_layers", "hidden_dropout_prob",
                                                        "attention_probs_dropout_prob", "qkv_bias", "layer_norm_eps")}
out["hf_attn_implementation"] = hf.config._attn_implementation
out["hf_has_pooler"] = hf.vit.pooler is not None
out["lg_config"] = {k: getattr(lgm.config, k) for k in ("num_hidden_layers", "hidden_dropout_prob",
                                                         "attention_probs_dropout_prob", "qkv_bias", "layer_norm_eps",
                                                         "layout", "layer_indices")}
out["lg_attn_implementation"] = lgm.config._attn_implementation

# map names: HF v5 ViT -> learngene
hf_sd = {k: v for k, v in hf.state_dict().items()}
lg_sd = {k: v for k, v in lgm.state_dict().items()}


def hf_to_lg(name):
    n = name.replace("vit.embeddings.", "learngene.embeddings.").replace("vit.layernorm.", "learngene.layernorm.")
    n = n.replace("vit.encoder.layer.", "learngene.layers.").replace("vit.layers.", "learngene.layers.")
    return n


mapped, diffs, unmatched_hf = 0, {}, []
for k, v in hf_sd.items():
    n = hf_to_lg(k)
    if n not in lg_sd:
        unmatched_hf.append(k)
        continue
    mapped += 1
    d = (v.float() - lg_sd[n].float()).abs().max().item() if v.shape == lg_sd[n].shape else "shape"
    if d != 0:
        diffs[k] = d
out["tensors_mapped"] = mapped
out["tensors_differing"] = diffs
out["hf_tensors_without_counterpart"] = unmatched_hf
out["lg_tensors_without_counterpart"] = sorted(set(lg_sd) - {hf_to_lg(k) for k in hf_sd})
out["classifier_std"] = {"hf": hf.classifier.weight.std().item(), "lg": lgm.classifier.weight.std().item(),
                         "hf_bias_absmax": hf.classifier.bias.abs().max().item(),
                         "lg_bias_absmax": lgm.classifier.bias.abs().max().item()}

out["classifier_identical_same_seed"] = bool(torch.equal(hf.classifier.weight, lgm.classifier.weight))
out["classifier_max_abs_diff_same_seed"] = (hf.classifier.weight - lgm.classifier.weight).abs().max().item()
_, info = ViTForImageClassification.from_pretrained(anc, num_hidden_layers=6, num_labels=5,
                                                   ignore_mismatched_sizes=True, output_loading_info=True)
out["hf_loading_info"] = {k: sorted({".".join(str(n if isinstance(n, str) else n[0]).split(".")[:3]) for n in v})
                          if isinstance(v, (list, set, tuple)) else str(v) for k, v in info.items()}
# logits with the same head
x, y = mnist()
idx = torch.arange(0, 5000, 25)
xb = norm(x[idx])
lgm.classifier.load_state_dict(hf.classifier.state_dict())
hf.eval(); lgm.eval()
with torch.no_grad():
    a, b = hf(pixel_values=xb).logits, lgm(pixel_values=xb).logits
    ha = hf.vit(pixel_values=xb).last_hidden_state[:, 0]
    hb = lgm.learngene(pixel_values=xb).last_hidden_state[:, 0]
out["logits_max_abs_diff_same_head"] = (a - b).abs().max().item()
out["logits_scale"] = a.abs().max().item()
out["cls_feature_max_abs_diff"] = (ha - hb).abs().max().item()
out["argmax_agree"] = (a.argmax(-1) == b.argmax(-1)).float().mean().item()
# one training step gradient
hf.train(); lgm.train()
yb = y[idx] % 5
F.cross_entropy(hf(pixel_values=xb).logits, yb).backward()
F.cross_entropy(lgm(pixel_values=xb).logits, yb).backward()
g = {}
for k, v in hf.named_parameters():
    n = hf_to_lg(k)
    pl = dict(lgm.named_parameters()).get(n)
    # k_proj.bias has an exactly-zero gradient in exact arithmetic (softmax is shift-invariant): only noise there
    if pl is not None and v.grad is not None and not k.endswith("k_proj.bias"):
        g[k] = ((v.grad - pl.grad).abs().max() / (v.grad.abs().max() + 1e-12)).item()
out["grad_rel_diff_max"] = max(g.values())
out["grad_rel_diff_top"] = dict(sorted(g.items(), key=lambda kv: -kv[1])[:6])

# training equivalence: same 5-way MNIST task (digits 0-4), k=50, same batches; (a) own heads, (b) copied head
torch.manual_seed(0)
classes = [0, 1, 2, 3, 4]
rows_tr, rows_te = [], []
for c in classes:
    r = torch.nonzero(y == c).flatten()
    r = r[torch.randperm(len(r), generator=torch.Generator().manual_seed(c))]
    rows_te.append(r[:100]); rows_tr.append(r[150:200])
tr, te = torch.cat(rows_tr), torch.cat(rows_te)
res = {}
for variant in (() if "--no-train" in sys.argv else ("own_head_seed0", "copied_head")):
    seed = 1 if variant.endswith("1") else 0
    m1, m2 = oneliner(seed), first(seed)
    if variant == "copied_head":
        m2.classifier.load_state_dict(m1.classifier.state_dict())
    accs = []
    for m in (m1, m2):
        t = time.perf_counter()
        r = train(m, x[tr], y[tr], steps=100, batch=50, lr=3e-4, seed=seed)
        accs.append({"test_acc": accuracy(m, x[te], y[te]), "train_s": round(r["train_seconds"], 1)})
    res[variant] = {"oneliner": accs[0], "first": accs[1]}
    print(variant, res[variant], flush=True)
out["training"] = res
print(json.dumps(out, indent=1))
json.dump(out, open(f"{HERE}/results/oneliner_vs_first{'_notrain' if '--no-train' in sys.argv else ''}.json", "w"), indent=1)
