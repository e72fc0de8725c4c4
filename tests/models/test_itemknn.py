"""ItemKNN: contract, top-k pruning and cosine similarity against hand computations."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from hgrec.data.dataset import Dataset
from hgrec.data.histories import Histories
from hgrec.models.base import Recommender, TrainSet
from hgrec.models.itemknn import ItemKNN, cosine_item_similarity, topk_per_row
from tests.models.contract import RecommenderContract


class TestItemKNNContract(RecommenderContract):
    neighbors = 10

    def make_model(self) -> Recommender:
        return ItemKNN(neighbors=self.neighbors)


class TestItemKNNFewNeighbors(TestItemKNNContract):
    """With 3 neighbours most items vote for kitchen items only; the top-1 still holds."""

    neighbors = 3
    cluster_k = 1


# Users x items: item 0 in users {0, 1}, item 1 in {0, 1, 2}, item 2 in {2}.
X3 = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 0], [0, 1, 1]], dtype=np.float32))


def test_cosine_3x3_by_hand() -> None:
    # ||x0|| = sqrt2, ||x1|| = sqrt3, ||x2|| = 1; co-counts: (0,1) = 2, (1,2) = 1, (0,2) = 0.
    s01, s12 = 2 / np.sqrt(6), 1 / np.sqrt(3)
    expected = np.array([[0, s01, 0], [s01, 0, s12], [0, s12, 0]])
    np.testing.assert_allclose(cosine_item_similarity(X3, 5).toarray(), expected, rtol=1e-6)
    # One neighbour per item: item 1 keeps its closer neighbour, item 0 (s01 = 0.816).
    kept = cosine_item_similarity(X3, 1).toarray()
    np.testing.assert_allclose(kept[1], [s01, 0, 0], rtol=1e-6)
    assert (kept > 0).sum(axis=1).tolist() == [1, 1, 1]


@pytest.mark.parametrize("k", [1, 2, 3, 10])
def test_topk_per_row_matches_dense_reference(k: int) -> None:
    rng = np.random.default_rng(k)
    dense = rng.integers(0, 5, size=(30, 12)).astype(np.float32)  # many ties and zeros
    dense[4] = 0.0  # an empty row
    out = topk_per_row(sp.csr_matrix(dense), k).toarray()
    for r in range(dense.shape[0]):
        nz = np.flatnonzero(dense[r])
        # Reference: stable sort by value descending, ties to the lower column.
        order = nz[np.argsort(-dense[r, nz], kind="stable")][:k]
        ref = np.zeros(dense.shape[1], np.float32)
        ref[order] = dense[r, order]
        np.testing.assert_array_equal(out[r], ref)


def test_score_is_history_times_similarity(tiny_dataset: Dataset) -> None:
    ds = tiny_dataset
    train = TrainSet.build(ds.catalog, ds.histories(ds.users_in("train")))
    model = ItemKNN(neighbors=4).fit(train)
    assert model.similarity is not None
    s = model.similarity.toarray()
    hist = Histories.from_lists([[0, 5, 5, 20]])  # the repeat counts once (binary history)
    cand = np.array([1, 2, 30, 40])
    np.testing.assert_allclose(
        model.score(hist, cand)[0], s[[0, 5, 20]][:, cand].sum(axis=0), rtol=1e-6
    )


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="neighbors"):
        ItemKNN(neighbors=0)
