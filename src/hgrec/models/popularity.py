"""Popularity baseline (P1 section 5.1.3): the same ranking for every user."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from hgrec.data.histories import Histories
from hgrec.models.base import Recommender, TrainSet
from hgrec.models.inputs import check_candidates, check_histories, require_fitted


class Popularity(Recommender):
    """Score of item i = number of training interactions of i (repeats and weak events count).

    Examples:
        >>> model = Popularity().fit(train)
        >>> ids, scores = model.recommend(histories, catalog.items_of_type("food"), k=10)
    """

    name: ClassVar[str] = "popularity"

    def __init__(self) -> None:
        self.counts: np.ndarray | None = None  # (n_items,) float32

    def fit(self, train: TrainSet) -> Popularity:
        n_items = train.catalog.n_items
        check_histories(train.histories, n_items, self.name)
        self.counts = np.bincount(train.histories.items, minlength=n_items).astype(np.float32)
        return self

    def score(self, histories: Histories, candidates: np.ndarray) -> np.ndarray:
        """(n, c) float32: the candidates' counts, broadcast to every history."""
        require_fitted(self.counts, self.name)
        assert self.counts is not None
        cand = check_candidates(candidates, len(self.counts), self.name)
        check_histories(histories, len(self.counts), self.name)
        return np.broadcast_to(self.counts[cand], (histories.n_users, len(cand))).copy()

    def get_params(self) -> dict[str, Any]:
        return {}

    def get_state(self) -> dict[str, np.ndarray]:
        require_fitted(self.counts, self.name)
        assert self.counts is not None
        return {"counts": self.counts}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        self.counts = np.asarray(state["counts"], dtype=np.float32)
