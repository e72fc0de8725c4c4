"""LLM-KNN baseline (P1 section 5.1.3): cosine between the mean text embedding of a user's
history and each candidate's text embedding.

    u = normalise( mean_{i in h} e_i / ||e_i|| ),     score(u, j) = u . e_j / ||e_j||

P1 averages only the audiobook (target-type) vectors of the history; ``history_type`` selects
that variant, the default averages every history item (so users without target-type history
are still served). A history with no usable item gives u = 0 and a score of 0 for every
candidate (a tie, not an error).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from hgrec.data.histories import Histories
from hgrec.models.base import NewItems, Recommender, TrainSet
from hgrec.models.inputs import check_candidates, check_histories, require_fitted


def l2_normalise(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows of ``x`` (n, d) scaled to unit L2 norm; all-zero rows stay zero."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, eps)).astype(np.float32)


class LLMKNN(Recommender):
    """Content-only kNN over the items' text embeddings.

    Args:
        history_type: if set, average only history items of this item type (P1's variant).

    Examples:
        >>> model = LLMKNN().fit(TrainSet.build(catalog, histories, item_text=emb))
        >>> scores = model.score(histories, candidates)  # (n, c) cosine in [-1, 1]
    """

    name: ClassVar[str] = "llm-knn"
    scores_unseen_items: ClassVar[bool] = True  # from the item's text (and edges)
    embeds_new_items: ClassVar[bool] = True  # with_new_items below

    def __init__(self, history_type: str | None = None) -> None:
        self.history_type = history_type
        self.item_vectors: np.ndarray | None = None  # (n_items, d) float32, unit rows
        self.history_mask: np.ndarray | None = None  # (n_items,) bool, items averaged

    def fit(self, train: TrainSet) -> LLMKNN:
        if train.item_text is None:
            raise ValueError(
                "llm-knn: TrainSet.item_text is None; build the TrainSet with the (n_items, d) "
                "text embeddings (hgrec.features) to use this baseline"
            )
        emb = np.asarray(train.item_text, dtype=np.float32)
        n_items = train.catalog.n_items
        if emb.ndim != 2 or emb.shape[0] != n_items:
            raise ValueError(
                f"llm-knn: item_text has shape {emb.shape}, expected ({n_items}, d): one row "
                f"per catalogue item"
            )
        bad = np.flatnonzero(~np.isfinite(emb).all(axis=1))
        if len(bad):
            raise ValueError(
                f"llm-knn: item_text has {len(bad)} rows with NaN/inf, e.g. items "
                f"{bad[:5].tolist()} ({train.catalog.item_ids[bad[:5]].tolist()})"
            )
        self.item_vectors = l2_normalise(emb)
        if self.history_type is None:
            self.history_mask = np.ones(n_items, dtype=bool)
        else:
            self.history_mask = train.catalog.item_type == train.catalog.type_code(
                self.history_type
            )
        return self

    def user_vectors(self, histories: Histories) -> np.ndarray:
        """(n, d) float32 unit user vectors (zero rows for histories with no usable item)."""
        require_fitted(self.item_vectors, self.name)
        assert self.item_vectors is not None and self.history_mask is not None
        n_items = len(self.item_vectors)
        check_histories(histories, n_items, self.name)
        keep = self.history_mask[histories.items]
        rows, items = histories.row_ids()[keep], histories.items[keep]
        # Sparse (n, n_items) averaging operator; repeated items count each time they occur,
        # as a mean over the history's interactions.
        counts = np.bincount(rows, minlength=histories.n_users).astype(np.float32)
        data = 1.0 / counts[rows]
        avg = sp.csr_matrix((data, (rows, items)), shape=(histories.n_users, n_items))
        return l2_normalise(np.asarray(avg @ self.item_vectors))

    def score(self, histories: Histories, candidates: np.ndarray) -> np.ndarray:
        """(n, c) float32 cosine similarities."""
        require_fitted(self.item_vectors, self.name)
        assert self.item_vectors is not None
        cand = check_candidates(candidates, len(self.item_vectors), self.name)
        return self.user_vectors(histories) @ self.item_vectors[cand].T

    def with_new_items(self, new: NewItems) -> LLMKNN:
        """The same model over ``new.item_text``, the (n_items, d) text embeddings of the
        extended catalogue (nothing else is learned)."""
        if new.item_text is None or new.item_text.shape[0] != new.n_items:
            raise ValueError(f"{self.name}: new items need text embeddings of all {new.n_items} items")
        model = LLMKNN(history_type=self.history_type)
        model.item_vectors = l2_normalise(np.asarray(new.item_text, dtype=np.float32))
        cat = new.catalog
        model.history_mask = (
            np.ones(new.n_items, dtype=bool) if self.history_type is None
            else cat.item_type == cat.type_code(self.history_type)
        )
        return model

    def get_params(self) -> dict[str, Any]:
        return {"history_type": self.history_type}

    def get_state(self) -> dict[str, np.ndarray]:
        require_fitted(self.item_vectors, self.name)
        assert self.item_vectors is not None and self.history_mask is not None
        return {"item_vectors": self.item_vectors, "history_mask": self.history_mask}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        self.item_vectors = np.asarray(state["item_vectors"], dtype=np.float32)
        self.history_mask = np.asarray(state["history_mask"], dtype=bool)
