#!/bin/bash
# Q2 / risk check: does first-6 (1-epoch ancestor) beat converged scratch? Second MNIST task and the animal domain.
cd "$(dirname "$0")"
ANC=${ANC:-_cache/anc_p7_e1}
python descendant_runs.py --ancestor $ANC --domain mnist --arm first6 --tasks 1 --seeds 1 --lr 1e-3 --tag plateau --k 10 --steps 100
python descendant_runs.py --ancestor $ANC --domain animals --arm first6 --tasks 0 --seeds 0 --lr 1e-3 --tag plateau --k 10 --steps 100
python descendant_runs.py --ancestor $ANC --domain animals --arm first6 --tasks 0 --seeds 0 --lr 1e-3 --tag plateau --k 50 --steps 200
python descendant_runs.py --ancestor $ANC --domain mnist --arm first6 --tasks 1 --seeds 1 --lr 1e-3 --tag plateau --k 50 --steps 200
