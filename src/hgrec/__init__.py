"""hgrec: 2T-HGNN recommendations for a new, sparse content type (De Nadai et al. 2024)."""

import os

__version__ = "0.1.0"

# OpenMP workers that sleep when idle instead of spinning. libgomp reads the variable once,
# when torch first loads it, and every hgrec entry point (``hgrec``, ``ddp_main``) imports
# this package before torch. With the default (spin, then sleep) a 2-thread stage beside one
# other 2-thread job on 2 cores slowed 2.7-3.1x instead of the fair 2x; with PASSIVE 1.4-1.8x,
# and alone the two tie within noise (benchmarks/shared_cpu.py, docs/scaling.md). A value
# the user has set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
