"""One seed for every random choice, and the number of CPU threads a run may use.

New code should take randomness from explicit generators built from the run seed
(``numpy.random.default_rng(seed)``, ``torch.Generator().manual_seed(seed)``);
:func:`seed_everything` covers the global generators that libraries use behind our back
(dropout, weight initialisation, ``random.shuffle`` in third-party code).
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

_MAX_SEED = 2**32 - 1  # numpy's legacy RandomState accepts [0, 2**32)


def seed_everything(seed: int, deterministic: bool = False) -> np.random.Generator:
    """Seed Python's ``random``, numpy's legacy global state and torch (CPU and CUDA).

    Args:
        seed: an integer in [0, 2**32).
        deterministic: also ask torch for deterministic kernels (slower on GPU; errors on
            operations that have no deterministic implementation).
    Returns: ``numpy.random.default_rng(seed)``, the generator new code should draw from.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be an int, got {type(seed).__name__} {seed!r}")
    seed = int(seed)
    if not 0 <= seed <= _MAX_SEED:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    # Child processes (data loader workers, subprocess tools) inherit a fixed hash seed.
    os.environ["PYTHONHASHSEED"] = str(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True)
        # cuBLAS needs this workspace setting for deterministic matmuls.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return np.random.default_rng(seed)


def set_threads(n: int | None) -> int:
    """Limit torch intra-op threads (and BLAS/OpenMP pools via threadpoolctl) to ``n``.

    ``None`` leaves the defaults (all cores). Returns the torch thread count now in effect.
    """
    if n is None:
        return torch.get_num_threads()
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"threads must be a positive int or None, got {n!r}")
    torch.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: numpy/scipy BLAS then keep their own default
        pass
    else:
        threadpool_limits(limits=n)
    return torch.get_num_threads()
