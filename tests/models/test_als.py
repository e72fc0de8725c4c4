"""ALS: contract, exact fold-in against a numpy solve, fold-in of training users."""

from __future__ import annotations

import numpy as np
import pytest

from hgrec.data.dataset import Dataset
from hgrec.data.histories import Histories
from hgrec.models.als import ALS
from hgrec.models.base import Recommender
from tests.models.contract import RecommenderContract, build_train


class TestALSContract(RecommenderContract):
    factors = 4
    alpha = 10.0

    def make_model(self) -> Recommender:
        return ALS(factors=self.factors, regularization=0.1, alpha=self.alpha, iterations=15)


class TestALSUnitConfidence(TestALSContract):
    """alpha = 1: observed entries get no extra confidence (implicit 0.7 semantics)."""

    alpha = 1.0
    learns_clusters = False  # with c = 1 the positives barely count against 53 zeros


def reference_fold_in(y: np.ndarray, items: list[int], reg: float, alpha: float) -> np.ndarray:
    """x = (Y^T Y + reg I + (c - 1) Y_h^T Y_h)^-1 c Y_h^T 1, with c = alpha (Hu et al. 2008)."""
    y = y.astype(np.float64)
    yh = y[items]
    a = y.T @ y + reg * np.eye(y.shape[1]) + (alpha - 1.0) * yh.T @ yh
    return np.linalg.solve(a, alpha * yh.sum(axis=0))


@pytest.mark.parametrize("alpha,reg", [(1.0, 0.01), (10.0, 0.1), (40.0, 1.0)])
def test_fold_in_is_the_exact_least_squares_solve(
    tiny_dataset: Dataset, alpha: float, reg: float
) -> None:
    model = ALS(factors=6, regularization=reg, alpha=alpha, iterations=5).fit(
        build_train(tiny_dataset)
    )
    assert model.item_factors is not None
    rows = [[0, 4, 11], [30], [2, 2, 7]]  # the repeat counts once (binary history)
    got = model.user_factors(Histories.from_lists(rows))
    for u, items in enumerate(rows):
        ref = reference_fold_in(model.item_factors, sorted(set(items)), reg, alpha)
        np.testing.assert_allclose(got[u], ref, rtol=1e-3, atol=1e-5)


def test_fold_in_of_training_users_reproduces_trained_factors(tiny_dataset: Dataset) -> None:
    train = build_train(tiny_dataset)
    model = ALS(factors=4, regularization=0.1, alpha=10.0, iterations=60).fit(train)
    assert model.train_user_factors is not None
    folded = model.user_factors(train.histories)
    trained = model.train_user_factors
    # Trained factors come from a CG half-step against the previous item factors; at
    # convergence the exact solve against the final ones is the same point.
    err = np.linalg.norm(folded - trained, axis=1) / np.linalg.norm(trained, axis=1)
    assert err.max() < 0.05, f"max relative fold-in error {err.max():.3f}"


def test_empty_history_folds_to_zero(tiny_dataset: Dataset) -> None:
    model = ALS(factors=4, iterations=3).fit(build_train(tiny_dataset))
    np.testing.assert_array_equal(model.user_factors(Histories.empty(2)), 0.0)


def test_seed_none_uses_trainset_seed(tiny_dataset: Dataset) -> None:
    a = ALS(factors=4, iterations=3).fit(build_train(tiny_dataset, seed=7))
    b = ALS(factors=4, iterations=3, seed=7).fit(build_train(tiny_dataset, seed=0))
    c = ALS(factors=4, iterations=3, seed=8).fit(build_train(tiny_dataset, seed=0))
    assert a.item_factors is not None and b.item_factors is not None
    np.testing.assert_array_equal(a.item_factors, b.item_factors)
    assert not np.array_equal(a.item_factors, c.item_factors)


@pytest.mark.parametrize(
    "kwargs", [{"factors": 0}, {"iterations": 0}, {"alpha": 0.0}, {"regularization": -1.0}]
)
def test_rejects_bad_params(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        ALS(**kwargs)  # type: ignore[arg-type]
