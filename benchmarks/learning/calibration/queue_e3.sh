#!/bin/bash
# Risk check (section 2): does the 3-epoch patch-7 ancestor transfer better than the 1-epoch one at k=10 / 50?
cd "$(dirname "$0")"
source ../../../.venv/bin/activate 2>/dev/null || true
ANC=_cache/anc_p7_e3
while [ ! -f $ANC/model.safetensors ]; do sleep 20; done
A="--ancestor $ANC --domain mnist --lr 1e-3 --tag e3 --evals 10"
python descendant_runs.py $A --arm first6 --k 10 --tasks 0 --seeds 0 --steps 100 &
python descendant_runs.py $A --arm first6 --k 10 --tasks 1 --seeds 1 --steps 100
wait
python descendant_runs.py $A --arm first6 --k 50 --tasks 0 --seeds 0 --steps 200 &
python descendant_runs.py $A --arm first6 --k 50 --tasks 1 --seeds 1 --steps 200
wait
