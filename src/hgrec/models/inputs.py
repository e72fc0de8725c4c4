"""Input checks and conversions shared by the baselines (histories and candidates -> arrays).

Every baseline scores raw histories of item indices. Items that exist in the catalogue but
had no training interaction are legal (they simply carry no signal); indices outside the
catalogue are a caller bug and raise an error that names the offending row and value.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from hgrec.data.histories import Histories


def check_candidates(candidates: np.ndarray, n_items: int, model: str) -> np.ndarray:
    """Validate candidate item indices.

    Args:
        candidates: (c,) item indices.
        n_items: catalogue size the model was fitted on.
        model: model name for the error message.

    Returns:
        (c,) int64 copy-free view when possible.
    """
    cand = np.asarray(candidates, dtype=np.int64)
    if cand.ndim != 1:
        raise ValueError(f"{model}: candidates must be 1-d, got shape {cand.shape}")
    bad = np.flatnonzero((cand < 0) | (cand >= n_items))
    if len(bad):
        raise ValueError(
            f"{model}: {len(bad)} candidates outside the catalogue [0, {n_items}): "
            f"positions {bad[:5].tolist()}, values {cand[bad[:5]].tolist()}"
        )
    return cand


def check_histories(histories: Histories, n_items: int, model: str) -> None:
    """Raise when a history holds an item index outside ``[0, n_items)``.

    The message names the first offending rows (users) and values.
    """
    items = histories.items
    bad = np.flatnonzero((items < 0) | (items >= n_items))
    if len(bad):
        rows = histories.row_ids()[bad[:5]]
        raise ValueError(
            f"{model}: {len(bad)} history entries outside the catalogue [0, {n_items}): "
            f"rows {rows.tolist()}, items {items[bad[:5]].tolist()}; expected item indices "
            f"of the catalogue the model was fitted on"
        )


def history_matrix(histories: Histories, n_items: int, model: str) -> sp.csr_matrix:
    """(n, n_items) float32 binary CSR matrix of validated histories (repeats count once)."""
    check_histories(histories, n_items, model)
    return histories.to_csr(n_items, binary=True)


def require_fitted(value: object, model: str) -> None:
    """Raise a clear error when ``score`` is called before ``fit``/``set_state``."""
    if value is None:
        raise RuntimeError(f"{model}: call fit() (or load a saved model) before score()")
