"""Indexes: exact search equals brute force; voyager recall; exclusion; save/load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hgrec.data.dataset import Catalog
from hgrec.serving.index import (
    ExactIndex,
    VoyagerIndex,
    build_type_indexes,
    load_type_indexes,
    measure_recall,
    save_type_indexes,
)


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _brute(q: np.ndarray, v: np.ndarray, items: np.ndarray, k: int, ex: list[np.ndarray]):
    s = q @ v.T
    for r, e in enumerate(ex):  # reference implementation: loops are fine in a test
        s[r, np.isin(items, e)] = -np.inf
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return items[order], np.take_along_axis(s, order, 1)


@pytest.mark.parametrize("k", [1, 5, 40])
@pytest.mark.parametrize("with_exclusion", [False, True])
def test_exact_equals_brute_force(k: int, with_exclusion: bool) -> None:
    rng = np.random.default_rng(k)
    v, q = _unit(rng, 40, 6), _unit(rng, 7, 6)
    items = np.arange(100, 140, dtype=np.int64)  # catalogue indices, not row positions
    ex = [rng.choice(items, size=3, replace=False) for _ in range(7)] if with_exclusion else [
        np.zeros(0, np.int64) for _ in range(7)
    ]
    ids, scores = ExactIndex(v, items).search(q, k, exclude=ex)
    ref_ids, ref_scores = _brute(q, v, items, k, ex)
    n_allowed = 40 - (3 if with_exclusion else 0)
    valid = np.arange(k) < n_allowed
    np.testing.assert_allclose(scores[:, valid], ref_scores[:, valid], rtol=1e-5, atol=1e-6)
    assert (ids[:, valid] == ref_ids[:, valid]).mean() > 0.99  # ties could swap, none expected
    # Fewer allowed items than k: the tail is -1 / -inf.
    assert (ids[:, ~valid] == -1).all() and np.isneginf(scores[:, ~valid]).all()
    for r in range(7):
        assert not np.isin(ids[r], ex[r]).any()


def test_exact_hand_computed() -> None:
    v = np.array([[1, 0], [0, 1], [0.6, 0.8]], dtype=np.float32)
    ids, scores = ExactIndex(v, np.array([7, 8, 9])).search(np.array([1.0, 0.0]), k=2)
    assert ids.tolist() == [[7, 9]]
    np.testing.assert_allclose(scores, [[1.0, 0.6]], rtol=1e-6)
    ids, _ = ExactIndex(v, np.array([7, 8, 9])).search(np.array([1.0, 0.0]), 2, exclude=[np.array([7])])
    assert ids.tolist() == [[9, 8]]


@pytest.mark.parametrize("seed", [0, 1])
def test_voyager_recall_on_random_data(seed: int) -> None:
    rng = np.random.default_rng(seed)
    v = _unit(rng, 3000, 16)
    idx = VoyagerIndex.build(v, np.arange(3000), seed=seed, progress=False)
    recall = measure_recall(idx, v, k=10, n_queries=100, seed=seed)
    assert 0.9 <= recall <= 1.0
    # Scores are dot products (voyager's 1 - distance converted back).
    q = v[:3]
    ids, scores = idx.search(q, 3)
    np.testing.assert_allclose(scores, np.einsum("nd,nkd->nk", q, v[ids]), atol=1e-5)
    # Exclusion by over-fetching: the query's own item (its best match) is gone.
    ids_ex, _ = idx.search(q, 3, exclude=[np.array([i]) for i in range(3)])
    assert not (ids_ex == np.arange(3)[:, None]).any()


def test_measure_recall_of_exact_is_one() -> None:
    v = _unit(np.random.default_rng(3), 200, 8)
    assert measure_recall(ExactIndex(v, np.arange(200)), v, k=10, n_queries=50) == 1.0


def _catalog(n_a: int, n_b: int) -> Catalog:
    return Catalog.from_items(pd.DataFrame({
        "item_id": [f"i{j}" for j in range(n_a + n_b)],
        "item_type": ["a"] * n_a + ["b"] * n_b,
        "title": ["t"] * (n_a + n_b),
    }))


@pytest.mark.parametrize("threshold, kinds", [(10_000, ("exact", "exact")), (300, ("exact", "voyager"))])
def test_build_type_indexes_by_threshold(tmp_path: Path, threshold: int, kinds: tuple[str, str]) -> None:
    catalog = _catalog(200, 600)
    v = _unit(np.random.default_rng(0), 800, 8)
    built = build_type_indexes(v, catalog, exact_threshold=threshold, progress=False)
    assert (built["a"].kind, built["b"].kind) == kinds
    assert built.meta["b"]["n_items"] == 600 and 0.0 < built.meta["b"]["recall_at_10"] <= 1.0
    # Results of type b are items of type b only.
    ids, _ = built["b"].search(v[:4], 10)
    assert (catalog.item_type[ids] == catalog.type_code("b")).all()
    save_type_indexes(built, tmp_path, {"model": "m"})
    again = load_type_indexes(tmp_path, v, catalog, {"model": "m"})
    assert again is not None and again["b"].kind == kinds[1]
    np.testing.assert_array_equal(again["b"].search(v[:4], 10)[0], ids)
    assert load_type_indexes(tmp_path, v, catalog, {"model": "other"}) is None


def test_search_all_merges_types() -> None:
    catalog = _catalog(3, 3)
    v = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.95, 0.05], [0.5, 0.5], [-1, 0]], np.float32)
    built = build_type_indexes(v, catalog, progress=False)
    ids, scores = built.search_all(np.array([[1.0, 0.0]], np.float32), k=3)
    assert ids.tolist() == [[0, 3, 1]]  # 1.0 (a), 0.95 (b), 0.9 (a)
    assert np.all(np.diff(scores[0]) <= 0)


def test_bad_vectors_are_rejected() -> None:
    v = np.ones((4, 2), np.float32)
    v[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        build_type_indexes(v, _catalog(2, 2), progress=False)
    with pytest.raises(ValueError, match=r"\(4, d\)"):
        build_type_indexes(np.ones((3, 2), np.float32), _catalog(2, 2), progress=False)
