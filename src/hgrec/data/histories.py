"""A batch of user histories in CSR form: the one input type of every recommender."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp


@dataclass(frozen=True)
class Histories:
    """Ragged rows of item indices, one row per user, in chronological order.

    Attributes:
        indptr: (n_users + 1,) int64; row u is ``items[indptr[u]:indptr[u + 1]]``.
        items: (nnz,) int64 item indices into the catalogue.
        events: (nnz,) int16 event codes into ``Dataset.event_names``, or None.
        weights: (nnz,) float32 interaction weights, or None (all 1).
        users: (n_users rows) per-user features such as demographics (country, age), or None;
            models that use them (the two-tower user tower) read them from here.
    """

    indptr: np.ndarray
    items: np.ndarray
    events: np.ndarray | None = None
    weights: np.ndarray | None = None
    users: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        if self.indptr.ndim != 1 or len(self.indptr) == 0 or self.indptr[0] != 0:
            raise ValueError("indptr must be a 1-d array starting at 0")
        if int(self.indptr[-1]) != len(self.items):
            raise ValueError(f"indptr[-1]={int(self.indptr[-1])} != len(items)={len(self.items)}")
        for name in ("events", "weights"):
            arr = getattr(self, name)
            if arr is not None and len(arr) != len(self.items):
                raise ValueError(f"{name} has {len(arr)} entries, items has {len(self.items)}")
        if self.users is not None and len(self.users) != self.n_users:
            raise ValueError(f"users has {len(self.users)} rows, expected {self.n_users}")

    @property
    def n_users(self) -> int:
        return len(self.indptr) - 1

    @property
    def lengths(self) -> np.ndarray:
        """(n_users,) int64 row lengths."""
        return np.diff(self.indptr)

    def row_ids(self) -> np.ndarray:
        """(nnz,) int64: the row of each entry."""
        return np.repeat(np.arange(self.n_users, dtype=np.int64), self.lengths)

    def row(self, u: int) -> np.ndarray:
        return self.items[self.indptr[u] : self.indptr[u + 1]]

    def to_csr(self, n_items: int, binary: bool = True) -> sp.csr_matrix:
        """(n_users, n_items) float32 matrix; repeated items are summed, then clipped if binary."""
        data = (
            np.ones(len(self.items), dtype=np.float32)
            if binary or self.weights is None
            else self.weights.astype(np.float32)
        )
        m = sp.csr_matrix(
            (data, self.items.astype(np.int64), self.indptr.astype(np.int64)),
            shape=(self.n_users, n_items),
        )
        m.sum_duplicates()
        if binary:
            m.data[:] = 1.0
        return m

    def take(self, rows: np.ndarray) -> Histories:
        """The histories of ``rows`` (int array), in that order; vectorised."""
        rows = np.asarray(rows, dtype=np.int64)
        out = self.spans(self.indptr[rows], self.indptr[rows + 1])
        if self.users is None:
            return out
        return replace(out, users=self.users.iloc[rows].reset_index(drop=True))

    def spans(self, starts: np.ndarray, ends: np.ndarray) -> Histories:
        """Row k of the result is ``items[starts[k]:ends[k]]`` (with events and weights), for
        (b,) int64 positions into the flat arrays; no user table. Vectorised gather."""
        starts = np.asarray(starts, dtype=np.int64)
        lengths = np.asarray(ends, dtype=np.int64) - starts
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        # Position of each output entry in the source arrays.
        src = np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1], dtype=np.int64)
        return Histories(
            indptr=indptr,
            items=self.items[src],
            events=None if self.events is None else self.events[src],
            weights=None if self.weights is None else self.weights[src],
        )

    def mask(self, keep: np.ndarray) -> Histories:
        """Keep the entries where ``keep`` (nnz,) bool is True; rows keep their positions."""
        keep = np.asarray(keep, dtype=bool)
        kept_before = np.concatenate([[0], np.cumsum(keep, dtype=np.int64)])
        counts = kept_before[self.indptr[1:]] - kept_before[self.indptr[:-1]]
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return Histories(
            indptr=indptr,
            items=self.items[keep],
            events=None if self.events is None else self.events[keep],
            weights=None if self.weights is None else self.weights[keep],
            users=self.users,
        )

    @staticmethod
    def from_lists(rows: list[list[int]]) -> Histories:
        """Build from Python lists (for tests and single requests, not bulk data)."""
        lengths = np.array([len(r) for r in rows], dtype=np.int64)
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        items = (
            np.concatenate([np.asarray(r, dtype=np.int64) for r in rows])
            if len(rows) and indptr[-1] > 0
            else np.zeros(0, dtype=np.int64)
        )
        return Histories(indptr=indptr, items=items)

    @staticmethod
    def empty(n_users: int) -> Histories:
        return Histories(
            indptr=np.zeros(n_users + 1, dtype=np.int64), items=np.zeros(0, dtype=np.int64)
        )
