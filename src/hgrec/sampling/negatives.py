"""Random catalogue negatives for the hinge loss of Eq. 4 (P1 section 4.1.2)."""

from __future__ import annotations

import numpy as np


class NegativeSampler:
    """Draws ``n_negatives`` random catalogue nodes per anchor, optionally of the positive's type.

    P1 draws negatives "at random from the catalogue" without saying whether they are
    type-matched; type matching makes the loss contrast items the retriever actually has to
    separate (a food positive against food negatives). Collisions with true neighbours are
    not filtered: on a sparse graph they are rare and filtering would need an edge lookup.

    Args:
        item_type: (n_items,) integer type code of every catalogue node.
        n_negatives: negatives per anchor (>= 1).
        type_matched: draw each negative from the positive's type.
    """

    def __init__(self, item_type: np.ndarray, n_negatives: int, *, type_matched: bool = False) -> None:
        if n_negatives < 1:
            raise ValueError(f"n_negatives must be >= 1, got {n_negatives}")
        item_type = np.asarray(item_type, dtype=np.int64)
        if item_type.ndim != 1 or len(item_type) == 0:
            raise ValueError("item_type must be a non-empty 1-d array")
        self.n_items = len(item_type)
        self.n_negatives = n_negatives
        self.type_matched = type_matched
        # Items grouped by type: type t owns by_type[start[t]:start[t] + count[t]].
        self._by_type = np.argsort(item_type, kind="stable")
        self._count = np.bincount(item_type)
        self._start = np.concatenate([[0], np.cumsum(self._count)[:-1]])
        self._item_type = item_type

    def sample(self, positive: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Negatives for a batch.

        Args:
            positive: (B,) int64 positive item indices (their types drive type matching).
            rng: the epoch's generator.

        Returns:
            (B, n_negatives) int64 item indices.
        """
        b, k = len(positive), self.n_negatives
        u = rng.random((b, k))
        if not self.type_matched:
            return np.minimum((u * self.n_items).astype(np.int64), self.n_items - 1)
        t = self._item_type[np.asarray(positive, dtype=np.int64)]
        cnt = self._count[t][:, None]
        off = np.minimum((u * cnt).astype(np.int64), cnt - 1)
        return self._by_type[self._start[t][:, None] + off]

    def sample_pool(self, size: int, rng: np.random.Generator) -> np.ndarray:
        """A pool of ``size`` distinct uniformly random catalogue nodes, shared as negatives by
        every anchor of a batch (see ``hgrec.models.hgnn_losses.shared_hinge_loss``); with type
        matching the loss masks the pool down to each positive's type.

        Returns:
            (min(size, n_items),) int64 item indices.
        """
        if size < 1:
            raise ValueError(f"pool size must be >= 1, got {size}")
        pool = rng.choice(self.n_items, size=min(size, self.n_items), replace=False)
        return pool.astype(np.int64)

    def pool_mask(self, anchor: np.ndarray, positive: np.ndarray, pool: np.ndarray) -> np.ndarray:
        """(B, P) bool: which pool nodes count as negatives of each (anchor, positive) edge.

        A pool node equal to the anchor or to the positive is left out (it is no negative),
        and with type matching so is one of another type than the positive.
        """
        anchor, positive = np.asarray(anchor, np.int64), np.asarray(positive, np.int64)
        valid = (pool[None, :] != anchor[:, None]) & (pool[None, :] != positive[:, None])
        if self.type_matched:
            valid &= self._item_type[pool][None, :] == self._item_type[positive][:, None]
        return valid

    def pool_valid_count(self, anchor: np.ndarray, positive: np.ndarray, pool: np.ndarray) -> int:
        """``pool_mask(anchor, positive, pool).sum()`` without the (B, P) matrix.

        Per edge: the pool nodes of the right type (all, or the positive's type), less the
        positive when it is in the pool, less the anchor when it is in the pool and of the
        right type (anchor != positive: they are the two ends of an edge).
        """
        anchor, positive = np.asarray(anchor, np.int64), np.asarray(positive, np.int64)
        in_pool = np.zeros(self.n_items, dtype=bool)
        in_pool[pool] = True
        if self.type_matched:
            per_type = np.bincount(self._item_type[pool], minlength=len(self._count))
            base = per_type[self._item_type[positive]]
            anchor_counts = in_pool[anchor] & (self._item_type[anchor] == self._item_type[positive])
        else:
            base = np.full(len(positive), len(pool), dtype=np.int64)
            anchor_counts = in_pool[anchor] & (anchor != positive)
        return int(base.sum() - in_pool[positive].sum() - anchor_counts.sum())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_negatives={self.n_negatives}, type_matched={self.type_matched})"
