"""`python -m hf_learngene.cli ...`, also `accelerate launch -m hf_learngene.cli ...` and
`torchrun --nproc-per-node N -m hf_learngene.cli ...`."""

import sys

from .main import main

if __name__ == "__main__":
    sys.exit(main())
