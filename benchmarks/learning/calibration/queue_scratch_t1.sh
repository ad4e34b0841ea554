#!/bin/bash
# Q2: second task/seed for the scratch budget series on MNIST (task 1, seed 1).
cd "$(dirname "$0")"
A="--ancestor _cache/random_anc --domain mnist --arm scratch --tasks 1 --seeds 1 --lr 1e-3 --tag plateau"
python descendant_runs.py $A --k 10 --steps 100,200
python descendant_runs.py $A --k 50 --steps 200,400
python descendant_runs.py $A --k all --steps 400,800
