"""Atomic training checkpoints: written to a temporary file, then moved into place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from hgrec.utils.artifacts import atomic_torch_save


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` with ``torch.save`` atomically (temp file in the same folder +
    ``os.replace``), so a crash mid-write never leaves a truncated checkpoint."""
    atomic_torch_save(path, state)


def load_checkpoint(path: str | Path) -> dict[str, Any] | None:
    """The state saved at ``path``, or None when there is none."""
    path = Path(path)
    if not path.exists():
        return None
    # weights_only=False: the state holds numpy RNG states and plain Python history.
    return torch.load(path, map_location="cpu", weights_only=False)
