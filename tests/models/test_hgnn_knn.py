from __future__ import annotations

import numpy as np
import pytest

from hgrec.data.histories import Histories
from hgrec.models.base import Recommender, TrainSet
from hgrec.models.hgnn_knn import HGNNKNN, similar_items
from tests.conftest import make_tiny_dataset
from tests.models.contract import VectorRecommenderContract, cluster_text


class TestHGNNKNNContract(VectorRecommenderContract):
    """Over embeddings that carry the planted clusters (as trained HGNN embeddings would)."""

    def make_model(self) -> Recommender:
        return HGNNKNN(embeddings=cluster_text(make_tiny_dataset(), seed=7))


def _emb(n: int, d: int = 4) -> np.ndarray:
    e = np.random.default_rng(0).normal(size=(n, d)).astype(np.float32)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def _hist(rows: list[list[int]]) -> Histories:
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
    items = np.array([i for r in rows for i in r], dtype=np.int64)
    return Histories(indptr=indptr, items=items)


def test_scores_are_mean_dot_products(tiny_dataset):
    cat = tiny_dataset.catalog
    e = _emb(cat.n_items)
    model = HGNNKNN(embeddings=e).fit(TrainSet.build(cat, tiny_dataset.histories()))
    h = _hist([[0, 3, 5], [], [7]])
    cand = np.array([1, 2, 9, 40])
    s = model.score(h, cand)
    assert s.shape == (3, 4) and s.dtype == np.float32
    assert np.allclose(s[0], e[[0, 3, 5]].mean(0) @ e[cand].T, atol=1e-6)
    assert np.allclose(s[1], 0.0)  # empty history
    assert np.allclose(s[2], e[7] @ e[cand].T, atol=1e-6)


def test_recommend_save_load_round_trip(tiny_dataset, tmp_path):
    cat = tiny_dataset.catalog
    model = HGNNKNN(embeddings=_emb(cat.n_items)).fit(TrainSet.build(cat, tiny_dataset.histories()))
    h = tiny_dataset.histories(tiny_dataset.users_in("test"))
    food = cat.items_of_type("food")
    ids, scores = model.recommend(h, food, k=5, exclude=h)
    assert ids.shape == (h.n_users, 5) and np.isin(ids, food).all()
    assert (np.diff(scores, axis=1) <= 1e-7).all()
    model.save(tmp_path / "m")
    loaded = HGNNKNN.load(tmp_path / "m")
    ids2, scores2 = loaded.recommend(h, food, k=5, exclude=h)
    assert np.array_equal(ids, ids2) and np.allclose(scores, scores2)


@pytest.mark.parametrize("bad", [np.zeros((3,)), np.full((2, 2), np.nan)])
def test_bad_embeddings(bad):
    with pytest.raises(ValueError):
        HGNNKNN(embeddings=bad)


def test_fit_checks_rows(tiny_dataset):
    cat = tiny_dataset.catalog
    with pytest.raises(ValueError, match="rows"):
        HGNNKNN(embeddings=_emb(cat.n_items - 1)).fit(TrainSet.build(cat, tiny_dataset.histories()))
    with pytest.raises(ValueError, match="precomputed"):
        HGNNKNN().fit(TrainSet.build(cat, tiny_dataset.histories()))


@pytest.mark.parametrize("item_type", [None, "food", "kitchen"])
def test_similar_items(tiny_dataset, item_type):
    cat = tiny_dataset.catalog
    e = _emb(cat.n_items)
    ids, scores = similar_items(e, cat, 4, k=6, item_type=item_type)
    pool = np.arange(cat.n_items) if item_type is None else cat.items_of_type(item_type)
    pool = pool[pool != 4]
    want = pool[np.argsort(-(e[pool] @ e[4]), kind="stable")[:6]]
    assert list(ids) == list(cat.item_ids[want])
    assert cat.item_ids[4] not in set(ids)
    assert (np.diff(scores) <= 1e-7).all()
