"""Training: batch samplers, objectives and auxiliary heads, the trainer registry, checkpoints.

`python -m bench train --trainer hybrid --base me5-small --train-data mlqa-r --seed 1` (see run.py)."""
