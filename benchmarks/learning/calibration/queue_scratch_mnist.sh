#!/bin/bash
# Q2: budget-doubling series for scratch on MNIST (task 0, seed 0), lr 1e-3, batch 64.
cd "$(dirname "$0")"
A="--ancestor _cache/random_anc --domain mnist --arm scratch --tasks 0 --seeds 0 --lr 1e-3 --tag plateau"
python descendant_runs.py $A --k 10 --steps 50,100,200,400
python descendant_runs.py $A --k 50 --steps 100,200,400,800
python descendant_runs.py $A --k all --steps 500,1000,2000
