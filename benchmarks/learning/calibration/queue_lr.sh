#!/bin/bash
# Q2/Q4: learning-rate check for the inheriting arm (first-6 fine-tuning forgets at lr 1e-3?) and scratch, MNIST task 0.
cd "$(dirname "$0")"
ANC=${ANC:-_cache/anc_p7_e1}
A="--ancestor $ANC --domain mnist --tasks 0 --seeds 0 --tag lr"
python descendant_runs.py $A --arm first6 --k 10 --lr 3e-4 --steps 50,100
python descendant_runs.py $A --arm first6 --k 10 --lr 1e-4 --steps 100
python descendant_runs.py $A --arm scratch --k 10 --lr 3e-4 --steps 100
python descendant_runs.py $A --arm first6 --k 50 --lr 3e-4 --steps 100,200
python descendant_runs.py $A --arm scratch --k 50 --lr 3e-4 --steps 200
