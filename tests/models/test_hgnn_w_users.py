"""HGNN-w-users: the shared retrieval contract, the tripartite graph, and inductive users
embedded exactly as if added alone to the training graph."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from hgrec.data.dataset import Dataset
from hgrec.data.histories import Histories
from hgrec.graph.types import relation_name
from hgrec.models.base import Recommender
from hgrec.models.hgnn import embed_items
from hgrec.recommenders.hgnn_w_users import (
    USER_TYPE,
    HGNNWithUsers,
    mean_text,
    tripartite_graph,
)
from tests.models.contract import RecommenderContract, build_train

# ~0.3 s per fit on tiny_dataset; enough for the planted clusters (contract: >= 90% of the
# top-3 in the user's own cluster, chance 1/3; 3 epochs of 4 steps reach only ~50%).
TINY = {
    "hidden_dim": 32,
    "out_dim": 16,
    "fanouts": [5, 5],
    "batch_size": 64,
    "shared_negatives": 64,
    "lr": 1e-2,
    "max_epochs": 8,
    "patience": 8,
    "max_steps_per_epoch": 10,
    "valid_negatives": 10,
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class TestHGNNWithUsersContract(RecommenderContract):
    """Includes the planted-cluster check: held-out users' top food items are their own
    cluster's (learnt: a 1-step model gets ~45%)."""

    def make_model(self) -> Recommender:
        return HGNNWithUsers(hgnn_params=TINY, progress=False)


@pytest.fixture
def fitted_tiny(tiny_dataset: Dataset) -> tuple[HGNNWithUsers, Dataset]:
    model = HGNNWithUsers(hgnn_params=TINY, progress=False).fit(build_train(tiny_dataset))
    return model, tiny_dataset


# ---------------------------------------------------------------------- the graph
@pytest.mark.parametrize(
    "names", [("food", "kitchen"), ("alpha", "zebra"), ("audiobook", "podcast", "video")]
)
def test_tripartite_graph_has_exactly_the_user_item_edges(names: tuple[str, ...]) -> None:
    rng = np.random.default_rng(0)
    n_users, n_items = 7, 11
    item_type = rng.integers(0, len(names), n_items).astype(np.int16)
    dense = (rng.random((n_users, n_items)) < 0.3).astype(np.float32)
    dense[2] = 0  # a user without edges stays a node
    # A repeated (user, item) entry must become one edge.
    rows, cols = np.nonzero(dense)
    rep = sp.csr_matrix(
        (np.ones(len(rows) + 1, np.float32), (np.append(rows, rows[0]), np.append(cols, cols[0]))),
        shape=(n_users, n_items),
    )
    g = tripartite_graph(item_type, names, rep)

    assert g.type_names == tuple(sorted((*names, USER_TYPE)))
    assert g.n_items == n_items + n_users
    assert set(g.relations) == {relation_name(t, USER_TYPE) for t in names}
    # Node types: items keep their own type name, users are "user".
    node_names = np.array(g.type_names)[g.item_type]
    np.testing.assert_array_equal(node_names[:n_items], np.array(names)[item_type])
    assert (node_names[n_items:] == USER_TYPE).all()
    got = set()
    for name, e in g.relations.items():  # loop over relations
        assert e.src_type <= e.dst_type
        assert (np.array(g.type_names)[g.item_type[e.src]] == e.src_type).all()
        assert (np.array(g.type_names)[g.item_type[e.dst]] == e.dst_type).all()
        item, user = (e.src, e.dst) if e.src_type != USER_TYPE else (e.dst, e.src)
        pairs = list(zip((user - n_items).tolist(), item.tolist()))
        assert len(pairs) == len(set(pairs))  # no duplicate edge
        got |= set(pairs)
    assert got == set(zip(rows.tolist(), cols.tolist()))


def test_no_item_item_relation_in_fitted_model(fitted_tiny: tuple[HGNNWithUsers, Dataset]) -> None:
    model, ds = fitted_tiny
    assert model.graph is not None and model.model is not None
    train = build_train(ds)
    assert set(model.model.relations) == {
        relation_name(t, USER_TYPE) for t in ds.catalog.type_names
    }
    n_edges = sum(e.n_edges for e in model.graph.relations.values())
    assert n_edges == train.matrix.nnz
    assert model.fit_report["train_users"] == train.histories.n_users


def test_user_features_are_normalised_mean_text() -> None:
    text = np.array([[1, 0], [0, 1], [3, 4]], dtype=np.float32)
    m = sp.csr_matrix(np.array([[1, 1, 0], [0, 0, 0], [0, 0, 1]], dtype=np.float32))
    want = np.array([[0.5**0.5, 0.5**0.5], [0, 0], [0.6, 0.8]], dtype=np.float32)
    np.testing.assert_allclose(mean_text(m, text), want, atol=1e-6)


# ---------------------------------------------------------------------- inductive users
@pytest.mark.parametrize("fanouts", [[4], [4, 3], [4, 3, 2]])
def test_query_user_equals_adding_it_alone_to_the_graph(tiny_dataset: Dataset, fanouts: list[int]) -> None:
    """The copy-augmented inference reproduces "training graph + this one user" exactly."""
    params = {**TINY, "fanouts": fanouts, "max_epochs": 1, "max_steps_per_epoch": 2}
    model = HGNNWithUsers(hgnn_params=params, progress=False).fit(build_train(tiny_dataset))
    assert model.graph is not None and model.features is not None and model.model is not None
    hist = tiny_dataset.histories(tiny_dataset.users_in("test"))
    z_batch = model.user_vectors(hist)
    train = build_train(tiny_dataset)
    for u in range(3):  # a few users, each added alone to the training graph
        row = hist.take(np.array([u])).to_csr(tiny_dataset.catalog.n_items)
        g = tripartite_graph(
            tiny_dataset.catalog.item_type,
            tiny_dataset.catalog.type_names,
            sp.vstack([train.matrix, row]).tocsr(),
        )
        feats = np.concatenate([model.features, mean_text(row, train.item_text)])
        z = embed_items(model.model, g, feats)
        np.testing.assert_allclose(z_batch[u], z[-1], rtol=1e-5, atol=1e-5)
    assert np.allclose(np.linalg.norm(z_batch, axis=1), 1.0, atol=1e-5)


def test_embedding_depends_only_on_the_history(fitted_tiny: tuple[HGNNWithUsers, Dataset]) -> None:
    model, ds = fitted_tiny
    food = ds.catalog.items_of_type("food")
    kit = ds.catalog.items_of_type("kitchen")
    a = [int(food[1]), int(kit[2]), int(food[5])]
    b = [int(kit[20]), int(food[18])]
    batch = Histories.from_lists([a, b, a[::-1], a + [a[0]], b])
    s = model.score(batch, food)
    np.testing.assert_allclose(s[0], s[2], rtol=1e-5, atol=1e-6)  # order-invariant
    np.testing.assert_allclose(s[0], s[3], rtol=1e-5, atol=1e-6)  # repeats count once
    np.testing.assert_allclose(s[1], s[4], rtol=1e-5, atol=1e-6)
    alone = model.score(Histories.from_lists([a]), food)  # batch mates change nothing
    np.testing.assert_allclose(alone[0], s[0], rtol=1e-5, atol=1e-6)
    assert not np.allclose(s[0], s[1])  # different histories, different users


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"no_such_field": 1}, "unknown HGNN setting"),
        ({"fanouts": [3, 3, 3, 3]}, "at most 3"),
        ({"lr": -1.0}, "lr"),
    ],
)
def test_bad_params(params: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        HGNNWithUsers(hgnn_params=params)


def test_fit_needs_text_and_score_needs_fit(tiny_dataset: Dataset) -> None:
    train = build_train(tiny_dataset)
    no_text = type(train)(**{**train.__dict__, "item_text": None})
    with pytest.raises(ValueError, match="item_text"):
        HGNNWithUsers(hgnn_params=TINY, progress=False).fit(no_text)
    with pytest.raises(RuntimeError, match="not fitted"):
        HGNNWithUsers().score(Histories.from_lists([[1]]), np.array([0]))


def test_item_type_named_user_is_refused() -> None:
    m = sp.csr_matrix(np.ones((2, 2), np.float32))
    with pytest.raises(ValueError, match="reserves"):
        tripartite_graph(np.array([0, 1]), ("food", "user"), m)


def test_out_of_catalogue_history_item(fitted_tiny: tuple[HGNNWithUsers, Dataset]) -> None:
    model, ds = fitted_tiny
    with pytest.raises(ValueError, match="outside the catalogue"):
        model.score(Histories.from_lists([[0, ds.catalog.n_items + 3]]), np.array([0, 1]))
