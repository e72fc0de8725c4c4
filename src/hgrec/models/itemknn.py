"""Item-based k-nearest-neighbour CF (Sarwar et al. 2001; Deshpande & Karypis 2004).

Similarity is cosine over the binary training matrix X (n_users, n_items):

    S_ij = (X^T X)_ij / (||x_i|| ||x_j||),   i != j,

pruned to the ``neighbors`` largest entries of each row i. A history h (binary row) scores
candidate j as ``(h S)_j = sum_{i in h} S_ij``: every history item votes for its neighbours.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from hgrec.data.histories import Histories
from hgrec.models.base import Recommender, TrainSet
from hgrec.models.inputs import check_candidates, history_matrix, require_fitted


def topk_per_row(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the ``k`` largest stored entries of each row; ties go to the lower column index.

    Vectorised: one lexsort of all entries by (row, -value, column), then the rank of each
    entry inside its row comes from the row offsets.

    Args:
        m: (r, c) CSR matrix.
        k: entries kept per row (>= 1).

    Returns:
        (r, c) CSR matrix with at most ``k`` entries per row, columns sorted.
    """
    m = m.tocsr()
    m.sum_duplicates()
    rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
    order = np.lexsort((m.indices, -m.data, rows))
    # After sorting by row first, entry p of row r sits at position p - indptr[r].
    rank = np.arange(len(order), dtype=np.int64) - m.indptr[rows[order]]
    keep = order[rank < k]
    out = sp.csr_matrix((m.data[keep], (rows[keep], m.indices[keep])), shape=m.shape)
    out.sort_indices()
    return out


def cosine_item_similarity(x: sp.csr_matrix, neighbors: int) -> sp.csr_matrix:
    """Pruned item-item cosine similarity.

    Args:
        x: (n_users, n_items) binary user-item matrix.
        neighbors: entries kept per item row.

    Returns:
        (n_items, n_items) float32 CSR; zero diagonal (an item is not its own neighbour, so
        every slot goes to another item); items without training users have empty rows.
    """
    x = x.tocsr().astype(np.float32)
    xt = x.T.tocsr()
    gram = (xt @ x).tocsr()  # (n_items, n_items) co-occurrence counts
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel())
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0).astype(np.float32)
    sim = (sp.diags(inv) @ gram @ sp.diags(inv)).tocoo()
    off = sim.row != sim.col
    sim = sp.csr_matrix((sim.data[off], (sim.row[off], sim.col[off])), shape=sim.shape)
    return topk_per_row(sim, neighbors).astype(np.float32)


class ItemKNN(Recommender):
    """Cosine item-kNN; users are scored from their raw history, so fold-in is exact.

    Args:
        neighbors: similar items kept per item (>= 1).

    Examples:
        >>> model = ItemKNN(neighbors=100).fit(train)
        >>> scores = model.score(histories, candidates)  # (n, c) float32
    """

    name: ClassVar[str] = "itemknn"

    def __init__(self, neighbors: int = 100) -> None:
        if int(neighbors) < 1:
            raise ValueError(f"itemknn: neighbors must be >= 1, got {neighbors}")
        self.neighbors = int(neighbors)
        self.similarity: sp.csc_matrix | None = None  # (n_items, n_items), CSC for column slices

    def fit(self, train: TrainSet) -> ItemKNN:
        x = history_matrix(train.histories, train.catalog.n_items, self.name)
        self.similarity = cosine_item_similarity(x, self.neighbors).tocsc()
        return self

    def score(self, histories: Histories, candidates: np.ndarray) -> np.ndarray:
        """(n, c) float32: ``H S[:, candidates]`` with H the binary history matrix."""
        require_fitted(self.similarity, self.name)
        assert self.similarity is not None
        n_items = self.similarity.shape[0]
        cand = check_candidates(candidates, n_items, self.name)
        h = history_matrix(histories, n_items, self.name)
        return np.asarray((h @ self.similarity[:, cand]).toarray(), dtype=np.float32)

    def get_params(self) -> dict[str, Any]:
        return {"neighbors": self.neighbors}

    def get_state(self) -> dict[str, np.ndarray]:
        require_fitted(self.similarity, self.name)
        assert self.similarity is not None
        s = self.similarity
        return {
            "indptr": s.indptr,
            "indices": s.indices,
            "data": s.data,
            "shape": np.asarray(s.shape, dtype=np.int64),
        }

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        shape = tuple(int(v) for v in state["shape"])
        self.similarity = sp.csc_matrix(
            (state["data"].astype(np.float32), state["indices"], state["indptr"]), shape=shape
        )
