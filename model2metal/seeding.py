"""Fixed seeds, so that a notebook prints the same numbers every run."""

from __future__ import annotations

import os
import random
import sys

__all__ = ["seed_everything"]


def seed_everything(seed: int = 0) -> int:
    """Seed Python's ``random``, NumPy's legacy global generator and, if it has been
    imported, PyTorch (CPU and CUDA). Returns the seed.

    Prefer ``np.random.default_rng(seed)`` objects in new code; this keeps older code
    and libraries that use the global state reproducible too. Call it after the imports
    of the set-up cell.
    """
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(
        seed
    )  # for subprocesses; this one is already set
    import numpy as np

    np.random.seed(seed)
    if "torch" in sys.modules:
        import torch

        torch.manual_seed(seed)  # also seeds every CUDA device
    return seed
