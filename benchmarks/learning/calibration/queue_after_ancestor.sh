#!/bin/bash
# After the ancestor exists: Q5 (one-liner vs first, with training), Q4 (condense timing), Q2 (first-3 series).
cd "$(dirname "$0")"
ANC=${ANC:-_cache/anc_p7_e1}
while [ ! -f $ANC/model.safetensors ]; do sleep 20; done
python oneliner_vs_first.py $ANC > results/log_oneliner.txt 2>&1 &
python condense_timing.py $ANC --per-class 300 --methods cka,auto --layers 6 > results/log_condense.txt 2>&1 &
A="--ancestor $ANC --domain mnist --arm first3 --tasks 0 --seeds 0 --tag plateau --lr 1e-3"
python descendant_runs.py $A --k 10 --steps 50,100
python descendant_runs.py $A --k 50 --steps 100,200
python descendant_runs.py $A --k all --steps 200,400
wait
