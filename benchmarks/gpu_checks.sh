#!/usr/bin/env bash
# Everything that needs a CUDA GPU, in one run sized for a short lease (about 6 minutes on one H100):
#   1. the speed benchmark, eager, at the Ti/S/B shapes (bf16 autocast, batch 256, with timm when importable);
#   2. tests/test_gpu.py (flash SDPA on the fused views, bf16, inductor, fused AdamW, condensing, training defaults) and
#      tests/test_families_timm.py (timm ViTs of 13 architectures against their learngenes; timm is installed there);
#   3. the compiled models at the B shape;
#   4. condensing a ViT-B/16 ancestor on 2,000 images (cka 5 epochs, auto 1 epoch);
#   5. a profile of one B-shape training step (kernel time by category, benchmarks/speed/profile_step.py).
# PARTS picks some of them (eager tests compiled profile condense); T_<PART> sets a part's time limit in seconds.
# Each part has its own time limit and writes as it goes, so a part cut short keeps what it measured.
#
#     OUT=/tmp/gpu bash benchmarks/gpu_checks.sh        # from the repository root, on the GPU machine
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

PARTS=${PARTS:-eager tests compiled condense profile}
has() { [[ " $PARTS " == *" $1 "* ]]; }
bench="$PY benchmarks/speed/bench_speed.py --device cuda --steps ${STEPS:-30} --warmup 5 --output $OUT/speed_gpu"
if has eager; then
    echo "== eager Ti/S/B"
    timeout "${T_EAGER:-160}" $bench --shapes ti,s,b --skip-condense 2>&1 | tee "$OUT/bench_eager.log"
fi
if has tests; then
    echo "== tests"
    timeout "${T_TESTS:-130}" $PY -m pytest -q -p no:cacheprovider tests/test_gpu.py tests/test_families_timm.py 2>&1 | tee "$OUT/test_gpu.log"
fi
if has compiled; then
    echo "== compiled B"
    timeout "${T_COMPILE:-170}" $bench --shapes b --compiled-only --no-timm --skip-load --skip-condense --append 2>&1 |
        tee "$OUT/bench_compiled.log"
fi
if has profile; then
    echo "== profile B"
    timeout "${T_PROFILE:-60}" $PY benchmarks/speed/profile_step.py --device cuda --shape b --output "$OUT/profile_gpu.json" 2>&1 |
        tee "$OUT/profile.log"
fi
if has condense; then
    echo "== condense ViT-B, 2,000 images"
    timeout "${T_CONDENSE:-110}" $bench --shapes none --condense-shape b --condense-images 2000 \
        --condense-batch-size 32 --condense-methods "${CONDENSE_METHODS:-heuristic,cka:5,auto:1}" --append 2>&1 |
        tee "$OUT/condense.log"
fi
echo "== done"
