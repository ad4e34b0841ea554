#!/usr/bin/env bash
# Everything that needs a CUDA GPU, in one run sized for a short lease (about 9 minutes on one H100):
#   1. the speed benchmark, eager, at the Ti/S/B shapes (bf16 autocast, batch 256, with timm when importable);
#   2. tests/test_gpu.py (flash SDPA on the fused views, bf16, inductor, fused AdamW, condensing, training defaults);
#   3. the compiled models at the B shape;
#   4. condensing a ViT-B/16 ancestor on 2,000 images (cka 5 epochs, auto 1 epoch).
# Each part has its own time limit and writes as it goes, so a part cut short keeps what it measured.
#
#     OUT=/tmp/gpu bash scripts/gpu_checks.sh        # from the repository root, on the GPU machine
#
# The package is used from the checkout (PYTHONPATH), not installed. Wheels in .whl/ (e.g. datasets, evaluate, which
# the training test needs) are installed into /tmp/site first when present.
set -u
OUT=${OUT:-/tmp/gpu_checks}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if compgen -G ".whl/*.whl" >/dev/null; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl &&
        export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi

{
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm,temperature.gpu --format=csv
    $PY - <<'EOF'
import importlib
for name in ("torch", "transformers", "accelerate", "huggingface_hub", "safetensors", "timm", "datasets"):
    try:
        print(name, importlib.import_module(name).__version__)
    except ImportError as error:
        print(name, "missing:", error)
EOF
} 2>&1 | tee "$OUT/env.txt"

bench="$PY scripts/bench_speed.py --device cuda --steps ${STEPS:-30} --warmup 5 --output $OUT/speed_gpu"
echo "== 1. eager Ti/S/B" && timeout "${T_EAGER:-160}" $bench --shapes ti,s,b --skip-condense 2>&1 | tee "$OUT/bench_eager.log"
echo "== 2. tests" && timeout "${T_TESTS:-130}" $PY -m pytest -q -p no:cacheprovider tests/test_gpu.py 2>&1 | tee "$OUT/test_gpu.log"
echo "== 3. compiled B" && timeout "${T_COMPILE:-170}" $bench --shapes b --compiled-only --no-timm --skip-load \
    --skip-condense --append 2>&1 | tee "$OUT/bench_compiled.log"
echo "== 4. condense ViT-B" && timeout "${T_CONDENSE:-110}" $bench --shapes none --condense-shape b \
    --condense-images 2000 --condense-batch-size 32 --condense-methods heuristic,cka:5,auto:1 --append 2>&1 |
    tee "$OUT/condense.log"
echo "== done"
