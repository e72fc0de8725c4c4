"""The retrieval contract every model's tests inherit (in the manner of implicit's
tests/recommender_base_test.py).

Usage::

    class TestItemKNN(RecommenderContract):
        def make_model(self) -> Recommender:
            return ItemKNN(neighbors=10)

pytest collects the inherited ``test_*`` methods for every subclass. Subclasses may override
``make_train`` (e.g. to add features) and set ``learns_clusters = False`` for models with no
personalisation. The train set deliberately hides one item from training so that every model
also meets histories holding an item it has never seen.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import pytest

from hgrec.data.dataset import Dataset
from hgrec.data.histories import Histories
from hgrec.models.base import Recommender, TrainSet, VectorRecommender

TEXT_DIM = 16


def cluster_text(dataset: Dataset, seed: int = 0, noise: float = 0.3) -> np.ndarray:
    """(n_items, TEXT_DIM) float32 unit vectors: a cluster direction plus Gaussian noise, so
    text similarity carries the planted clusters (as real text would carry topics)."""
    rng = np.random.default_rng(seed)
    cluster = dataset.catalog.items["cluster"].to_numpy()
    base = np.eye(TEXT_DIM, dtype=np.float32)[cluster]
    emb = base + noise * rng.standard_normal(base.shape).astype(np.float32)
    return emb / np.linalg.norm(emb, axis=1, keepdims=True)


def unseen_item(dataset: Dataset) -> int:
    """The item hidden from training: the first food item."""
    return int(dataset.catalog.items_of_type("food")[0])


def build_train(dataset: Dataset, seed: int = 0) -> TrainSet:
    """TrainSet of the train users with :func:`unseen_item` removed from their histories."""
    hist = dataset.histories(dataset.users_in("train"))
    hist = hist.mask(hist.items != unseen_item(dataset))
    return TrainSet.build(
        dataset.catalog,
        hist,
        item_text=cluster_text(dataset, seed),
        event_names=dataset.event_names,
        seed=seed,
    )


class RecommenderContract(ABC):
    """Tests every :class:`Recommender` must pass on the planted tiny dataset."""

    learns_clusters: bool = True
    cluster_k: int = 3  # list length of the planted-cluster check
    min_cluster_hits: float = 0.9  # share of those lists in the user's own cluster
    k: int = 5

    @abstractmethod
    def make_model(self) -> Recommender:
        """A fresh, unfitted model."""

    def make_train(self, dataset: Dataset, seed: int = 0) -> TrainSet:
        return build_train(dataset, seed)

    # ------------------------------------------------------------------ fixtures
    @pytest.fixture
    def dataset(self, tiny_dataset: Dataset) -> Dataset:
        return tiny_dataset

    @pytest.fixture
    def fitted(self, dataset: Dataset) -> Recommender:
        return self.make_model().fit(self.make_train(dataset))

    @pytest.fixture
    def eval_histories(self, dataset: Dataset) -> Histories:
        """Histories of the valid and test users (never seen in training)."""
        users = np.concatenate([dataset.users_in("valid"), dataset.users_in("test")])
        return dataset.histories(users)

    @pytest.fixture
    def candidates(self, dataset: Dataset) -> np.ndarray:
        return dataset.catalog.items_of_type("food")

    # ------------------------------------------------------------------ tests
    def test_fit_returns_self(self, dataset: Dataset) -> None:
        model = self.make_model()
        assert model.fit(self.make_train(dataset)) is model

    def test_score_shape_dtype_finite(
        self, fitted: Recommender, eval_histories: Histories, candidates: np.ndarray
    ) -> None:
        s = fitted.score(eval_histories, candidates)
        assert s.shape == (eval_histories.n_users, len(candidates))
        assert s.dtype == np.float32
        assert np.isfinite(s).all()

    def test_score_depends_only_on_candidate_identity(
        self, fitted: Recommender, eval_histories: Histories, candidates: np.ndarray
    ) -> None:
        """Permuting the candidates permutes the score columns (ordering is the model's)."""
        perm = np.random.default_rng(1).permutation(len(candidates))
        a = fitted.score(eval_histories, candidates)
        b = fitted.score(eval_histories, candidates[perm])
        np.testing.assert_allclose(b, a[:, perm], rtol=1e-5, atol=1e-6)

    @pytest.mark.parametrize("batch_size", [1, 3])
    def test_batch_equals_single(
        self,
        fitted: Recommender,
        eval_histories: Histories,
        candidates: np.ndarray,
        batch_size: int,
    ) -> None:
        ids_all, sc_all = fitted.recommend(eval_histories, candidates, self.k)
        ids_b, sc_b = fitted.recommend(eval_histories, candidates, self.k, batch_size=batch_size)
        np.testing.assert_allclose(sc_b, sc_all, rtol=1e-5, atol=1e-6)
        for u in range(eval_histories.n_users):  # one user at a time, as a live request
            ids_u, sc_u = fitted.recommend(eval_histories.take(np.array([u])), candidates, self.k)
            np.testing.assert_allclose(sc_u[0], sc_all[u], rtol=1e-5, atol=1e-6)
            # Ids agree wherever scores are not tied; ties (up to float rounding, which
            # differs between batch shapes) may come in either order.
            gap = np.abs(np.diff(sc_all[u], prepend=np.inf, append=-np.inf)) > 1e-5
            clear = gap[:-1] & gap[1:]
            np.testing.assert_array_equal(ids_u[0][clear], ids_all[u][clear])
        assert ids_b.shape == ids_all.shape

    def test_only_candidates_sorted_and_exclusion_honoured(
        self, fitted: Recommender, eval_histories: Histories, candidates: np.ndarray
    ) -> None:
        ids, scores = fitted.recommend(eval_histories, candidates, self.k, exclude=eval_histories)
        assert ids.shape == scores.shape == (eval_histories.n_users, self.k)
        assert np.isin(ids, candidates).all()
        assert (np.diff(scores, axis=1) <= 0).all()
        # No returned item is in the user's own history.
        rows = np.repeat(np.arange(len(ids)), ids.shape[1])
        flat = set(zip(eval_histories.row_ids().tolist(), eval_histories.items.tolist()))
        assert not any((r, i) in flat for r, i in zip(rows.tolist(), ids.ravel().tolist()))
        # Each row's ids are distinct.
        assert all(len(set(r)) == len(r) for r in ids.tolist())

    def test_exclude_all_candidates_gives_empty_tail(
        self, fitted: Recommender, candidates: np.ndarray
    ) -> None:
        hist = Histories.from_lists([candidates[:3].tolist()])
        exclude = Histories.from_lists([candidates[:-2].tolist()])
        ids, scores = fitted.recommend(hist, candidates, self.k, exclude=exclude)
        assert set(ids[0, :2].tolist()) == set(candidates[-2:].tolist())
        assert (ids[0, 2:] == -1).all() and np.isneginf(scores[0, 2:]).all()

    def test_k_larger_than_candidates(self, fitted: Recommender, eval_histories: Histories) -> None:
        cand = np.array([2, 5, 7], dtype=np.int64)
        ids, _ = fitted.recommend(eval_histories, cand, k=10)
        assert ids.shape == (eval_histories.n_users, 3)
        assert (np.sort(ids, axis=1) == cand).all()

    def test_new_users_unseen_items_and_empty_histories(
        self, dataset: Dataset, fitted: Recommender, candidates: np.ndarray
    ) -> None:
        unseen = unseen_item(dataset)
        hist = Histories.from_lists([[], [unseen], [unseen, int(candidates[3])], []])
        s = fitted.score(hist, candidates)
        assert s.shape == (4, len(candidates)) and not np.isnan(s).any()
        ids, _ = fitted.recommend(hist, candidates, self.k, exclude=hist)
        assert (ids >= 0).all() and not np.isin(ids[1:3], [unseen]).any()
        # Empty histories carry no information: both get the same scores.
        np.testing.assert_array_equal(s[0], s[3])

    def test_no_histories(self, fitted: Recommender, candidates: np.ndarray) -> None:
        ids, scores = fitted.recommend(Histories.empty(0), candidates, self.k)
        assert ids.shape == scores.shape == (0, self.k)

    def test_save_load_round_trip(
        self,
        fitted: Recommender,
        eval_histories: Histories,
        candidates: np.ndarray,
        tmp_path: Path,
    ) -> None:
        fitted.save(tmp_path / "model")
        loaded = type(fitted).load(tmp_path / "model")
        assert loaded.get_params() == fitted.get_params()
        np.testing.assert_array_equal(
            loaded.score(eval_histories, candidates), fitted.score(eval_histories, candidates)
        )

    def test_same_seed_same_scores(
        self, dataset: Dataset, eval_histories: Histories, candidates: np.ndarray
    ) -> None:
        a = self.make_model().fit(self.make_train(dataset, seed=3))
        b = self.make_model().fit(self.make_train(dataset, seed=3))
        np.testing.assert_array_equal(
            a.score(eval_histories, candidates), b.score(eval_histories, candidates)
        )

    def test_same_cluster_ranked_first(
        self,
        dataset: Dataset,
        fitted: Recommender,
        eval_histories: Histories,
        candidates: np.ndarray,
    ) -> None:
        """Planted structure: a user's own-cluster food items fill the top of the list (chance
        is 1/3: every cluster has the same number of food items)."""
        if not self.learns_clusters:
            pytest.skip("the model is not personalised")
        users = np.concatenate([dataset.users_in("valid"), dataset.users_in("test")])
        user_cluster = users % 3  # make_tiny_dataset assigns cluster u % n_clusters
        item_cluster = dataset.catalog.items["cluster"].to_numpy()
        ids, _ = fitted.recommend(
            eval_histories, candidates, self.cluster_k, exclude=eval_histories
        )
        hit = (item_cluster[ids] == user_cluster[:, None]).mean()
        assert hit >= self.min_cluster_hits, (
            f"only {hit:.2f} of the top-{self.cluster_k} in the user's cluster"
        )


class VectorRecommenderContract(RecommenderContract):
    """The contract of a :class:`VectorRecommender` (2T, 2T-HGNN, HGNN-KNN): the shared tests
    plus scores that are dot products of its user and item vectors, and similar items."""

    def test_scores_are_dot_products_of_the_vectors(
        self, fitted: Recommender, eval_histories: Histories, candidates: np.ndarray
    ) -> None:
        assert isinstance(fitted, VectorRecommender)
        users, items = fitted.user_vectors(eval_histories), fitted.item_vectors()
        assert users.dtype == items.dtype == np.float32
        assert users.shape == (eval_histories.n_users, items.shape[1])
        np.testing.assert_allclose(
            fitted.score(eval_histories, candidates), users @ items[candidates].T,
            rtol=1e-5, atol=1e-6,
        )

    def test_similar_items_sorted_without_the_query(
        self, dataset: Dataset, fitted: Recommender, candidates: np.ndarray
    ) -> None:
        assert isinstance(fitted, VectorRecommender)
        query = int(candidates[0])
        idx, scores = fitted.similar_items(query, self.k, pool=candidates)
        assert len(idx) == self.k and query not in idx.tolist()
        assert np.isin(idx, candidates).all() and (np.diff(scores) <= 0).all()
        items = fitted.item_vectors()
        np.testing.assert_allclose(scores, items[idx] @ items[query], rtol=1e-5, atol=1e-6)
        everything, _ = fitted.similar_items(query, dataset.catalog.n_items + 5)
        assert len(everything) == dataset.catalog.n_items - 1
