#!/bin/bash
# Q2: budget series for the first-6 truncation of the trained ancestor (MNIST task 0 seed 0), lr 1e-3; then the
# lr check at k=50. Waits for the ancestor folder.
cd "$(dirname "$0")"
ANC=${ANC:-_cache/anc_p7_e1}
while [ ! -f $ANC/model.safetensors ]; do sleep 20; done
A="--ancestor $ANC --domain mnist --arm first6 --tasks 0 --seeds 0 --tag plateau"
python descendant_runs.py $A --lr 1e-3 --k 10 --steps 25,50,100
python descendant_runs.py $A --lr 1e-3 --k 50 --steps 50,100,200
python descendant_runs.py $A --lr 1e-3 --k all --steps 200,400,800
