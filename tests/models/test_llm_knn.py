"""LLM-KNN: contract, hand-computed cosine scores, type-restricted history, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from hgrec.data.dataset import Dataset
from hgrec.data.histories import Histories
from hgrec.models.base import Recommender, TrainSet
from hgrec.models.llm_knn import LLMKNN
from tests.models.contract import RecommenderContract, build_train


class TestLLMKNNContract(RecommenderContract):
    def make_model(self) -> Recommender:
        return LLMKNN()


class TestLLMKNNFoodHistoryContract(TestLLMKNNContract):
    """P1's variant: only target-type (food) history items form the user vector."""

    def make_model(self) -> Recommender:
        return LLMKNN(history_type="food")


def toy_train(tiny_dataset: Dataset, emb: np.ndarray) -> TrainSet:
    return TrainSet.build(
        tiny_dataset.catalog, tiny_dataset.histories(tiny_dataset.users_in("train")), item_text=emb
    )


def test_scores_by_hand(tiny_dataset: Dataset) -> None:
    n = tiny_dataset.catalog.n_items
    emb = np.zeros((n, 3), np.float32)
    emb[:, 2] = 1.0
    emb[0] = [3.0, 0.0, 0.0]  # norm 3: normalised first, so scale does not matter
    emb[1] = [0.0, 1.0, 0.0]
    emb[2] = [1.0, 1.0, 0.0]
    model = LLMKNN().fit(toy_train(tiny_dataset, emb))
    s = model.score(Histories.from_lists([[0, 1]]), np.array([0, 1, 2, 3]))
    # u = normalise((e0 + e1) / 2) = (1, 1, 0) / sqrt2.
    np.testing.assert_allclose(s[0], [1 / np.sqrt(2), 1 / np.sqrt(2), 1.0, 0.0], atol=1e-6)


def test_history_type_ignores_other_items(tiny_dataset: Dataset) -> None:
    cat = tiny_dataset.catalog
    emb = np.random.default_rng(0).standard_normal((cat.n_items, 8)).astype(np.float32)
    food, kitchen = cat.items_of_type("food"), cat.items_of_type("kitchen")
    model = LLMKNN(history_type="food").fit(toy_train(tiny_dataset, emb))
    both = Histories.from_lists([[int(food[0]), int(kitchen[0]), int(kitchen[1])]])
    only = Histories.from_lists([[int(food[0])]])
    np.testing.assert_allclose(model.score(both, food), model.score(only, food), atol=1e-6)
    # Without food history the user vector is zero: every score 0.
    np.testing.assert_array_equal(
        model.score(Histories.from_lists([[int(kitchen[0])]]), food), 0.0
    )


def test_missing_or_bad_text_is_a_clear_error(tiny_dataset: Dataset) -> None:
    train = build_train(tiny_dataset)
    with pytest.raises(ValueError, match="item_text is None"):
        LLMKNN().fit(TrainSet.build(train.catalog, train.histories))
    bad = np.ones((train.catalog.n_items - 1, 4), np.float32)
    with pytest.raises(ValueError, match="expected"):
        LLMKNN().fit(toy_train(tiny_dataset, bad))
    nan = np.ones((train.catalog.n_items, 4), np.float32)
    nan[5, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        LLMKNN().fit(toy_train(tiny_dataset, nan))
    with pytest.raises(ValueError, match="unknown item type"):
        LLMKNN(history_type="music").fit(train)
