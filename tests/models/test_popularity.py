"""Popularity: contract, and the order equals hand-counted training interactions."""

from __future__ import annotations

import numpy as np

from hgrec.data.dataset import Dataset
from hgrec.data.histories import Histories
from hgrec.models.base import Recommender
from hgrec.models.popularity import Popularity
from tests.models.contract import RecommenderContract, build_train


class TestPopularityContract(RecommenderContract):
    learns_clusters = False

    def make_model(self) -> Recommender:
        return Popularity()


def test_counts_and_order_match_hand_count(tiny_dataset: Dataset) -> None:
    train = build_train(tiny_dataset)
    model = Popularity().fit(train)
    expected = np.zeros(tiny_dataset.catalog.n_items)
    for item in train.histories.items.tolist():  # the slow, obvious count
        expected[item] += 1
    cand = np.arange(tiny_dataset.catalog.n_items)
    scores = model.score(Histories.from_lists([[], [0, 1]]), cand)
    np.testing.assert_array_equal(scores[0], expected)
    np.testing.assert_array_equal(scores[1], expected)  # same for every user
    ids, _ = model.recommend(Histories.empty(1), cand, k=len(cand))
    assert (np.diff(expected[ids[0]]) <= 0).all()


def test_repeated_interactions_count_each_time(tiny_dataset: Dataset) -> None:
    hist = Histories.from_lists([[0, 0, 1], [0]])
    train = build_train(tiny_dataset)
    train = type(train).build(train.catalog, hist)
    scores = Popularity().fit(train).score(Histories.empty(1), np.array([0, 1, 2]))
    np.testing.assert_array_equal(scores[0], [3.0, 1.0, 0.0])
