"""Implicit-feedback matrix factorisation by alternating least squares (Hu, Koren & Volinsky 2008).

Fitted with ``implicit.cpu.als.AlternatingLeastSquares`` (implicit 0.7 semantics: the
confidence of an observed entry is ``c = alpha * x = alpha`` for binary x, unobserved entries
have confidence 1 and preference 0). Users are never looked up by id: every history is folded
in with the exact regularised least-squares solve given the item factors Y (n_items, f),

    x_u = (Y^T Y + reg I + sum_{i in h_u} (c - 1) y_i y_i^T)^-1  sum_{i in h_u} c y_i,

which is implicit's ``recalculate_user`` (Cholesky per user, native, threaded). A training
user's folded-in factors therefore equal one more user half-step of ALS.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from hgrec.data.histories import Histories
from hgrec.models.base import Recommender, TrainSet
from hgrec.models.inputs import check_candidates, history_matrix, require_fitted


class ALS(Recommender):
    """ALS matrix factorisation with exact fold-in of raw histories.

    Args:
        factors: latent dimension f.
        regularization: L2 weight ``reg`` on the factors.
        alpha: confidence of an observed interaction (implicit 0.7: ``c = alpha``).
        iterations: ALS sweeps (users then items).
        seed: seed of the factor initialisation; None uses ``TrainSet.seed``.
        num_threads: threads of implicit's solver (bounded: the machine is shared).

    Examples:
        >>> model = ALS(factors=64, regularization=0.1, alpha=10.0).fit(train)
        >>> scores = model.score(histories, candidates)  # (n, c) float32
    """

    name: ClassVar[str] = "als"

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.1,
        alpha: float = 10.0,
        iterations: int = 15,
        seed: int | None = None,
        num_threads: int = 1,
    ) -> None:
        for key, value in (("factors", factors), ("iterations", iterations),
                           ("num_threads", num_threads)):
            if int(value) < 1:
                raise ValueError(f"als: {key} must be >= 1, got {value}")
        if regularization < 0 or alpha <= 0:
            raise ValueError(
                f"als: need regularization >= 0 and alpha > 0, got {regularization}, {alpha}"
            )
        self.factors = int(factors)
        self.regularization = float(regularization)
        self.alpha = float(alpha)
        self.iterations = int(iterations)
        self.seed = seed
        self.num_threads = int(num_threads)
        self.item_factors: np.ndarray | None = None  # (n_items, f) float32
        self.train_user_factors: np.ndarray | None = None  # (n_train, f), not saved
        self._solver: AlternatingLeastSquares | None = None

    def _make_solver(self, seed: int) -> AlternatingLeastSquares:
        # implicit parallelises over users itself; a threaded BLAS underneath it oversubscribes
        # the cores (implicit warns of 10x slowdowns), so BLAS is held to one thread here.
        with threadpool_limits(1, "blas"):
            return self._new_solver(seed)

    def _new_solver(self, seed: int) -> AlternatingLeastSquares:
        return AlternatingLeastSquares(
            factors=self.factors,
            regularization=self.regularization,
            alpha=self.alpha,
            dtype=np.float32,
            iterations=self.iterations,
            num_threads=self.num_threads,
            random_state=seed,
        )

    def fit(self, train: TrainSet) -> ALS:
        x = history_matrix(train.histories, train.catalog.n_items, self.name)
        seed = train.seed if self.seed is None else int(self.seed)
        solver = self._make_solver(seed)
        with threadpool_limits(1, "blas"):
            solver.fit(x, show_progress=False)  # the tuning loop shows progress (runtime.progress)
        self.item_factors = np.ascontiguousarray(solver.item_factors, dtype=np.float32)
        self.train_user_factors = np.asarray(solver.user_factors, dtype=np.float32)
        self._solver = solver
        return self

    def user_factors(self, histories: Histories) -> np.ndarray:
        """(n, f) float32 folded-in user factors; an empty history gives the zero vector."""
        require_fitted(self._solver, self.name)
        assert self._solver is not None and self.item_factors is not None
        h = history_matrix(histories, len(self.item_factors), self.name)
        if histories.n_users == 0:
            return np.zeros((0, self.factors), dtype=np.float32)
        rows = np.arange(histories.n_users)
        with threadpool_limits(1, "blas"):
            u = self._solver.recalculate_user(rows, h)
        return np.asarray(u, dtype=np.float32).reshape(
            histories.n_users, self.factors
        )

    def score(self, histories: Histories, candidates: np.ndarray) -> np.ndarray:
        """(n, c) float32: ``x_u . y_j`` with x_u folded in from the history."""
        require_fitted(self.item_factors, self.name)
        assert self.item_factors is not None
        cand = check_candidates(candidates, len(self.item_factors), self.name)
        return self.user_factors(histories) @ self.item_factors[cand].T

    def get_params(self) -> dict[str, Any]:
        return {
            "factors": self.factors,
            "regularization": self.regularization,
            "alpha": self.alpha,
            "iterations": self.iterations,
            "seed": self.seed,
            "num_threads": self.num_threads,
        }

    def get_state(self) -> dict[str, np.ndarray]:
        require_fitted(self.item_factors, self.name)
        assert self.item_factors is not None
        return {"item_factors": self.item_factors}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        self.item_factors = np.ascontiguousarray(state["item_factors"], dtype=np.float32)
        if self.item_factors.shape[1] != self.factors:
            raise ValueError(
                f"als: saved item_factors have {self.item_factors.shape[1]} columns, "
                f"params say factors={self.factors}"
            )
        solver = self._make_solver(0)
        solver.item_factors = self.item_factors
        self._solver = solver
        self.train_user_factors = None
