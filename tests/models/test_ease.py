"""EASE: contract (full and restricted item sets), closed form against numpy, kept-set rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hgrec.data.dataset import Dataset
from hgrec.data.histories import Histories
from hgrec.models.base import Recommender, TrainSet
from hgrec.models.ease import EASE, ease_weights, most_popular
from tests.models.contract import RecommenderContract, build_train


class TestEASEContract(RecommenderContract):
    max_items = 1000

    def make_model(self) -> Recommender:
        return EASE(lam=50.0, max_items=self.max_items)


class TestEASERestrictedContract(TestEASEContract):
    """Only 30 of 54 items kept: candidates outside the set go through the fallback path, so
    only the top-1 (a kept item) is expected to follow the clusters."""

    max_items = 30
    cluster_k = 1


@pytest.mark.parametrize("lam", [0.5, 10.0, 300.0])
def test_weights_match_numpy_reference(lam: float) -> None:
    rng = np.random.default_rng(0)
    x = (rng.random((40, 12)) < 0.3).astype(np.float64)
    g = x.T @ x
    p = np.linalg.inv(g + lam * np.eye(12))
    ref = np.eye(12) - p / np.diag(p)[None, :]  # Steck (2019) eq. 8
    b = ease_weights(torch.from_numpy(g), lam).numpy()
    np.testing.assert_allclose(b, ref, atol=1e-10)
    assert (np.diag(b) == 0).all()
    # The closed form is the ridge solution: (G + lam I) B = G off the diagonal constraint,
    # i.e. G - (G + lam I) B is diagonal.
    resid = g - (g + lam * np.eye(12)) @ b
    np.testing.assert_allclose(resid - np.diag(np.diag(resid)), 0.0, atol=1e-9)


def test_overwrite_reuses_memory_and_matches() -> None:
    g = torch.tensor([[2.0, 1.0], [1.0, 3.0]], dtype=torch.float64)
    a = ease_weights(g.clone(), 1.0)
    g2 = g.clone()
    b = ease_weights(g2, 1.0, overwrite=True)
    torch.testing.assert_close(a, b)
    # By hand: P = inv([[3, 1], [1, 4]]) = [[4, -1], [-1, 3]] / 11, so B_01 = -P_01 / P_11 = 1/3.
    torch.testing.assert_close(a, torch.tensor([[0.0, 1 / 3], [0.25, 0.0]], dtype=torch.float64))


def test_most_popular_ties_and_zero_counts() -> None:
    counts = np.array([3, 0, 5, 3, 1, 3, 0], dtype=np.float32)
    assert most_popular(counts, 3).tolist() == [0, 2, 3]  # 5, then the 3s by index
    assert most_popular(counts, 100).tolist() == [0, 2, 3, 4, 5]  # zero-count never kept


def test_kept_report_and_fallback_ranks_after_kept(tiny_dataset: Dataset) -> None:
    train = build_train(tiny_dataset)
    model = EASE(lam=5.0, max_items=20).fit(train)
    assert model.kept_items is not None and len(model.kept_items) == 20
    n = tiny_dataset.catalog.n_items
    assert model.kept_report.startswith(f"EASE: kept 20 of {n} items")
    cand = np.arange(n)
    hist = tiny_dataset.histories(tiny_dataset.users_in("valid"))
    s = model.score(hist, cand)
    kept = np.isin(cand, model.kept_items)
    assert (s[:, ~kept].max(axis=1) < s[:, kept].min(axis=1)).all()
    # Among the others, the order is training popularity.
    counts = np.bincount(train.histories.items, minlength=n)
    other = cand[~kept]
    order = other[np.argsort(-s[0, ~kept], kind="stable")]
    assert (np.diff(counts[order]) <= 0).all()


def test_scores_equal_history_times_b(tiny_dataset: Dataset) -> None:
    hist = tiny_dataset.histories(tiny_dataset.users_in("train"))
    train = TrainSet.build(tiny_dataset.catalog, hist)
    model = EASE(lam=2.0, max_items=1000).fit(train)
    assert model.kept_items is not None and model.weights is not None
    b = np.zeros((tiny_dataset.catalog.n_items,) * 2, np.float32)
    b[np.ix_(model.kept_items, model.kept_items)] = model.weights
    hist = Histories.from_lists([[0, 3, 3, 25]])
    np.testing.assert_allclose(
        model.score(hist, np.array([1, 7, 40]))[0],
        b[[0, 3, 25]][:, [1, 7, 40]].sum(axis=0),
        rtol=1e-5,
    )


@pytest.mark.parametrize("kwargs", [{"lam": 0.0}, {"lam": -1.0}, {"max_items": 0}])
def test_rejects_bad_params(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        EASE(**kwargs)  # type: ignore[arg-type]
