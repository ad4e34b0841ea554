"""Q4: wall time of condense(method="auto"/"cka") on the trained 12-layer ancestor, with the condensing set
Fashion-MNIST classes 6-9 (N per class from the training split), through the public API.

python condense_timing.py ANCESTOR --per-class 300 --methods cka,auto --layers 3,6 [--epochs 5]
-> results/condense_timing.jsonl (method, k, seconds, selected layers, scores)
"""
import argparse
import json
import time

import torch

from arms import condense  # silences warnings
from common import CACHE, HERE, fashion, write_jsonl

p = argparse.ArgumentParser()
p.add_argument("ancestor")
p.add_argument("--per-class", type=int, default=300)
p.add_argument("--methods", default="cka,auto")
p.add_argument("--layers", default="3,6")
p.add_argument("--epochs", type=int, default=5)
a = p.parse_args()

from datasets import ClassLabel, Dataset, Features, Image  # noqa: E402
from PIL import Image as PILImage  # noqa: E402

x, y = fashion("train")
g = torch.Generator().manual_seed(0)
rows = torch.cat([torch.nonzero(y == c).flatten()[torch.randperm(int((y == c).sum()), generator=g)[:a.per_class]]
                  for c in (6, 7, 8, 9)])
names = ["Shirt", "Sneaker", "Bag", "Ankle boot"]
ds = Dataset.from_dict({"image": [PILImage.fromarray(x[i, 0].numpy()) for i in rows],
                        "label": [int(y[i]) - 6 for i in rows]},
                       features=Features({"image": Image(), "label": ClassLabel(names=names)}))
for method in a.methods.split(","):
    for n in [int(v) for v in a.layers.split(",")]:
        t, c = time.perf_counter(), time.process_time()
        lg = condense(a.ancestor, method=method, num_layers=n, condense_dataset=ds, epochs=a.epochs, quiet=True,
                      output_dir=f"{CACHE}/lg/timing-{method}{n}")
        dt, dc = time.perf_counter() - t, time.process_time() - c
        rec = dict(method=method, num_layers=n, per_class=a.per_class, images=len(ds), epochs=a.epochs,
                   seconds=round(dt, 1), cpu_seconds=round(dc, 1), threads=torch.get_num_threads(), layers=lg.config.layer_indices,
                   scores=[round(s, 4) for s in (lg.config.condensing_scores or [])],
                   loadavg=open("/proc/loadavg").read().split()[:3])
        print(rec, flush=True)
        write_jsonl(f"{HERE}/results/condense_timing.jsonl", rec)
