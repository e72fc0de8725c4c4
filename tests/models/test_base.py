"""The shared machinery of :class:`Recommender`: recommend (top-k, exclusion, tails, batching)
and save/load, checked on a stub whose scores are fixed by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from hgrec.data.histories import Histories
from hgrec.models.base import Recommender, TrainSet


class TableModel(Recommender):
    """score(u, j) = table[row u of the batch's first item, j]; row = first history item."""

    name: ClassVar[str] = "table"

    def __init__(self, n_items: int = 6, bad_shape: bool = False) -> None:
        self.n_items, self.bad_shape = n_items, bad_shape
        self.table = np.zeros((n_items, n_items), np.float32)

    def fit(self, train: TrainSet) -> TableModel:
        return self

    def score(self, histories: Histories, candidates: np.ndarray) -> np.ndarray:
        first = histories.items[histories.indptr[:-1].clip(max=len(histories.items) - 1)]
        out = self.table[first][:, candidates]
        return out[:, :-1] if self.bad_shape else out

    def get_params(self) -> dict[str, Any]:
        return {"n_items": self.n_items, "bad_shape": self.bad_shape}

    def get_state(self) -> dict[str, np.ndarray]:
        return {"table": self.table}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        self.table = state["table"]


def make_model() -> TableModel:
    m = TableModel()
    m.table = np.array(
        [
            [0, 5, 4, 3, 2, 1],
            [1, 0, 2, 3, 4, 5],
            [0, np.nan, np.inf, -np.inf, 1, 2],
            [9, 9, 1, 1, 1, 1],
            [0, 0, 0, 0, 0, 0],
            [6, 5, 4, 3, 2, 1],
        ],
        dtype=np.float32,
    )
    return m


HIST = Histories.from_lists([[0], [1, 4], [2], [5, 0]])


@pytest.mark.parametrize("batch_size", [1, 2, 1024])
def test_topk_by_hand(batch_size: int) -> None:
    ids, scores = make_model().recommend(HIST, np.arange(6), k=3, batch_size=batch_size)
    assert ids[0].tolist() == [1, 2, 3] and scores[0].tolist() == [5, 4, 3]
    assert ids[1].tolist() == [5, 4, 3]
    assert ids[2].tolist() == [5, 4, 0]
    assert ids[3].tolist() == [0, 1, 2]


def test_non_finite_scores_are_not_ranked() -> None:
    # Row of item 2: [0, nan, inf, -inf, 1, 2]; NaN and +inf become -inf like -inf itself,
    # so only items 5, 4, 0 are ranked and the tail is id -1 with score -inf.
    ids, scores = make_model().recommend(HIST.take(np.array([2])), np.arange(6), k=6)
    assert ids[0].tolist() == [5, 4, 0, -1, -1, -1]
    assert scores[0, :3].tolist() == [2, 1, 0] and np.isneginf(scores[0, 3:]).all()


def test_exclude_and_candidate_subset() -> None:
    cand = np.array([5, 1, 3], dtype=np.int64)
    exclude = Histories.from_lists([[1], [], [5, 3], [0, 1, 2, 3, 4, 5]])
    ids, scores = make_model().recommend(HIST, cand, k=5, exclude=exclude)
    assert ids.shape == (4, 3)  # k is capped at the number of candidates
    assert ids[0].tolist() == [3, 5, -1]
    assert ids[1].tolist() == [5, 3, 1]
    assert ids[2].tolist() == [-1, -1, -1]  # 5, 3 excluded; 1 scores NaN
    assert ids[3].tolist() == [-1, -1, -1] and np.isneginf(scores[3]).all()


def test_excluded_items_outside_candidates_are_ignored() -> None:
    exclude = Histories.from_lists([[4], [0], [], [4]])
    a, _ = make_model().recommend(HIST, np.array([1, 2, 3]), k=2, exclude=exclude)
    b, _ = make_model().recommend(HIST, np.array([1, 2, 3]), k=2)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("k", [0, -1])
def test_non_positive_k_gives_empty(k: int) -> None:
    ids, scores = make_model().recommend(HIST, np.arange(6), k=k)
    assert ids.shape == scores.shape == (4, 0)


def test_errors() -> None:
    with pytest.raises(ValueError, match="exclude has 1 rows"):
        make_model().recommend(HIST, np.arange(6), k=2, exclude=Histories.empty(1))
    bad = make_model()
    bad.bad_shape = True
    with pytest.raises(RuntimeError, match="expected"):
        bad.recommend(HIST, np.arange(6), k=2)


def test_save_load(tmp_path: Path) -> None:
    model = make_model()
    model.save(tmp_path / "m")
    loaded = TableModel.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.table, model.table)
    assert repr(loaded) == "TableModel(n_items=6, bad_shape=False)"

    class Other(TableModel):
        name = "other"

    with pytest.raises(ValueError, match="holds a 'table' model"):
        Other.load(tmp_path / "m")
