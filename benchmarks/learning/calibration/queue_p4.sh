#!/bin/bash
# Risk check (section 2): does a patch-4 ancestor (49 tokens, 1 epoch) transfer better than patch 7 at k=10?
cd "$(dirname "$0")"
ANC=_cache/anc_p4_e1
while [ ! -f $ANC/model.safetensors ]; do sleep 20; done
A="--ancestor $ANC --domain mnist --lr 1e-3 --tag p4 --k 10 --evals 10"
python descendant_runs.py $A --arm first6 --tasks 0 --seeds 0 --steps 100 &
python descendant_runs.py $A --arm scratch --tasks 0 --seeds 0 --steps 200
wait
python descendant_runs.py $A --arm first6 --tasks 1 --seeds 1 --steps 100 &
python descendant_runs.py $A --arm scratch --tasks 1 --seeds 1 --steps 200
wait
