"""HGNN-KNN: the paper's "HGNN" baseline (P1 section 5.1.3) as a retrieval model.

A user is the mean HGNN embedding of the items in their history (the P2 user
representation); an item's score is its dot product with that mean. Users with an empty
history score 0 everywhere. The embeddings come from :func:`hgrec.training.hgnn.train_hgnn`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from hgrec.data.dataset import Catalog
from hgrec.data.histories import Histories
from hgrec.models.base import NewItems, TrainSet, VectorRecommender, nearest_items


class HGNNKNN(VectorRecommender):
    """Mean-of-history HGNN embedding, scored by dot product.

    Args:
        embeddings: (n_items, d) item embeddings (set here or later via ``set_state``).
        weighted: weight history items by ``Histories.weights`` instead of equally.

    Example:
        >>> model = HGNNKNN(embeddings=result.embeddings).fit(train)
        >>> ids, scores = model.recommend(histories, catalog.items_of_type("food"), k=10)
    """

    name: ClassVar[str] = "hgnn-knn"
    scores_unseen_items: ClassVar[bool] = True  # from the item's text (and edges)
    embeds_new_items: ClassVar[bool] = True  # with_new_items below

    def __init__(self, embeddings: np.ndarray | None = None, weighted: bool = False) -> None:
        self.embeddings = None if embeddings is None else self._check(embeddings)
        self.weighted = weighted

    @staticmethod
    def _check(embeddings: np.ndarray) -> np.ndarray:
        e = np.asarray(embeddings, dtype=np.float32)
        if e.ndim != 2 or e.shape[0] == 0:
            raise ValueError(f"embeddings must be (n_items, d), got shape {e.shape}")
        if not np.isfinite(e).all():
            raise ValueError(f"embeddings rows {np.flatnonzero(~np.isfinite(e).all(1))[:5].tolist()} are not finite")
        return e

    def fit(self, train: TrainSet) -> HGNNKNN:
        """Nothing is learned here; checks the embeddings cover ``train.catalog``."""
        if self.embeddings is None:
            raise ValueError("HGNNKNN needs precomputed HGNN embeddings: HGNNKNN(embeddings=...)")
        if self.embeddings.shape[0] != train.catalog.n_items:
            raise ValueError(
                f"embeddings have {self.embeddings.shape[0]} rows, the catalogue has "
                f"{train.catalog.n_items} items"
            )
        return self

    def user_vectors(self, histories: Histories) -> np.ndarray:
        """(n, d) float32 mean embedding of each history (zeros for empty ones)."""
        if self.embeddings is None:
            raise RuntimeError("HGNNKNN has no embeddings: fit or set_state first")
        n_items = self.embeddings.shape[0]
        if len(histories.items) and (histories.items.min() < 0 or histories.items.max() >= n_items):
            bad = histories.items[(histories.items < 0) | (histories.items >= n_items)]
            raise ValueError(f"history item indices {bad[:5].tolist()} outside [0, {n_items})")
        w = (
            histories.weights.astype(np.float32)
            if self.weighted and histories.weights is not None
            else np.ones(len(histories.items), np.float32)
        )
        m = sp.csr_matrix((w, histories.items, histories.indptr), shape=(histories.n_users, n_items))
        total = np.asarray(m.sum(axis=1)).ravel()
        mean = sp.diags(np.divide(1.0, total, out=np.zeros_like(total), where=total > 0)) @ m
        return np.asarray(mean @ self.embeddings, dtype=np.float32)

    def item_vectors(self) -> np.ndarray:
        """(n_items, d) float32: the HGNN embeddings themselves."""
        if self.embeddings is None:
            raise RuntimeError("HGNNKNN has no embeddings: fit or set_state first")
        return self.embeddings

    def with_new_items(self, new: NewItems) -> HGNNKNN:
        """The same scoring over ``new.hgnn``, the (n_items, d) embeddings of the extended
        catalogue (new items embedded by the frozen HGNN)."""
        if new.hgnn is None or new.hgnn.shape[0] != new.n_items:
            raise ValueError(f"{self.name}: new items need HGNN embeddings of all {new.n_items} items")
        return HGNNKNN(embeddings=new.hgnn, weighted=self.weighted)

    def get_params(self) -> dict[str, Any]:
        return {"weighted": self.weighted}

    def get_state(self) -> dict[str, np.ndarray]:
        if self.embeddings is None:
            raise RuntimeError("HGNNKNN has no embeddings to save")
        return {"embeddings": self.embeddings}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        self.embeddings = self._check(state["embeddings"])


def similar_items(
    embeddings: np.ndarray,
    catalog: Catalog,
    item_index: int,
    k: int,
    item_type: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The k items nearest to one item by dot product, across types unless restricted
    (``hgrec similar``; :func:`hgrec.models.base.nearest_items` over the catalogue).

    Args:
        embeddings: (n_items, d) item embeddings.
        catalog: the catalogue the rows belong to.
        item_index: the query item's index.
        k: number of neighbours (fewer when the pool is smaller).
        item_type: only items of this type (None: all types).

    Returns:
        ids (k',) item id strings, best first, the query item excluded, and scores (k',)
        float32.
    """
    if embeddings.shape[0] != catalog.n_items:
        raise ValueError(f"embeddings have {embeddings.shape[0]} rows, catalogue has {catalog.n_items}")
    pool = None if item_type is None else catalog.items_of_type(item_type)
    idx, scores = nearest_items(embeddings, item_index, k, pool)
    return catalog.item_ids[idx], scores
