#!/bin/bash
# Q2/Q3: scratch budget series on the animal-silhouette domain (task 0, seed 0), lr 1e-3.
cd "$(dirname "$0")"
A="--ancestor _cache/random_anc --domain animals --arm scratch --tasks 0 --seeds 0 --lr 1e-3 --tag plateau"
python descendant_runs.py $A --k 10 --steps 100,200
python descendant_runs.py $A --k 50 --steps 200,400
python descendant_runs.py $A --k all --steps 400,800
