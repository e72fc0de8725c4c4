"""Cold and warm queries on a hand-built dataset (every rule) and invariants on tiny_dataset."""

from __future__ import annotations

import numpy as np
import pytest

from hgrec.data.dataset import Dataset
from hgrec.evaluation.protocols import Queries, build_queries
from tests.conftest import make_tiny_dataset
from tests.evaluation.helpers import HAND_ITEMS, item, make_hand_dataset


def _names(ids: np.ndarray) -> list[str]:
    return [HAND_ITEMS[i] for i in ids]


def _by_user(q: Queries, dataset: Dataset) -> dict[str, tuple[list[str], list[str], list[str]]]:
    ids = dataset.user_ids[q.users]
    return {
        str(u): (
            _names(q.histories.row(r)),
            sorted(_names(q.relevant.row(r))),
            [] if q.exclude is None else _names(q.exclude.row(r)),
        )
        for r, u in enumerate(ids)
    }


def test_cold_on_hand_dataset() -> None:
    ds = make_hand_dataset()
    q = build_queries(ds, "valid", "cold")
    assert q.exclude is None and q.protocol == "cold" and q.target_type == "food"
    assert _by_user(q, ds) == {
        "u0": (["k0", "k1"], ["f0", "f1"], []),
        "u3": (["k1", "k2"], ["f1", "f2", "f3"], []),
        "u4": (["k0"], ["f0"], []),
        "u6": (["k3"], ["f1"], []),  # the repeated f1 is relevant once
    }
    # u1 has no food, u2 no kitchen; u5 is a training user and u7 a test user.
    assert q.counts == {
        "users_in_split": 6, "kept": 4, "dropped_no_target": 1, "dropped_no_source": 1,
        "relevant_pairs": 7,
    }


def test_warm_on_hand_dataset() -> None:
    ds = make_hand_dataset()
    q = build_queries(ds, "valid", "warm")
    assert _by_user(q, ds) == {
        "u0": (["k0", "f0", "k1"], ["f1"], ["f0"]),
        "u2": (["f0"], ["f2"], ["f0"]),  # a food-only user is warm
        # Ties at order 3: f3 is the last row; k2 and f2 share its order, so are not "before".
        "u3": (["k1", "f1"], ["f3"], ["f1"]),
        "u6": (["f1", "k3"], ["f1"], ["f1"]),  # repeat purchase: relevant item is excluded
    }
    assert q.counts == {
        "users_in_split": 6, "kept": 4, "dropped_no_target": 1, "dropped_no_prior_target": 1,
        "relevant_in_history": 1, "relevant_pairs": 4,
    }


def test_histories_keep_events_weights_and_user_rows() -> None:
    ds = make_hand_dataset()
    q = build_queries(ds, "valid", "warm")
    h = q.histories
    assert h.events is not None and h.weights is not None and len(h.events) == len(h.items)
    assert h.users is not None and h.users["user_id"].tolist() == ["u0", "u2", "u3", "u6"]


@pytest.mark.parametrize("protocol", ["cold", "warm"])
def test_split_selects_users(protocol: str) -> None:
    ds = make_hand_dataset()
    q = build_queries(ds, "test", protocol)
    assert ds.user_ids[q.users].tolist() == ["u7"]
    assert q.split == "test"
    expected = ["f0", "f3"] if protocol == "cold" else ["f3"]
    assert sorted(_names(q.relevant.row(0))) == expected


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"split": "valid", "protocol": "lukewarm"}, "unknown protocol"),
        ({"split": "holdout", "protocol": "cold"}, "unknown split"),
        ({"split": "valid", "protocol": "cold", "target_type": "music"}, "unknown item type"),
    ],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_queries(make_hand_dataset(), **kwargs)


def test_target_type_override_swaps_roles() -> None:
    ds = make_hand_dataset()
    q = build_queries(ds, "valid", "cold", target_type="kitchen")
    t = ds.catalog.type_code("kitchen")
    assert (ds.catalog.item_type[q.relevant.items] == t).all()
    assert (ds.catalog.item_type[q.histories.items] != t).all()
    assert item("k0") in q.relevant.row(0)


# ------------------------------------------------------------------ invariants on tiny_dataset
@pytest.mark.parametrize("split", ["valid", "test"])
def test_cold_invariants(tiny_dataset: Dataset, split: str) -> None:
    ds = tiny_dataset
    q = build_queries(ds, split, "cold")
    t = ds.catalog.type_code("food")
    types_h = ds.catalog.item_type[q.histories.items]
    assert (types_h != t).all() and (ds.catalog.item_type[q.relevant.items] == t).all()
    assert (q.histories.lengths > 0).all() and (q.relevant.lengths > 0).all()
    assert set(ds.users["split"].iloc[q.users]) == {split}
    assert q.counts["kept"] + q.counts["dropped_no_target"] + q.counts["dropped_no_source"] == len(
        ds.users_in(split)
    )
    # History + relevant is the user's whole history (no duplicates in the tiny data).
    full = ds.histories(q.users)
    assert q.histories.n_users == full.n_users
    assert (q.histories.lengths + q.relevant.lengths == full.lengths).all()


@pytest.mark.parametrize("split", ["valid", "test"])
def test_warm_invariants(tiny_dataset: Dataset, split: str) -> None:
    ds = tiny_dataset
    q = build_queries(ds, split, "warm")
    t = ds.catalog.type_code("food")
    assert (q.relevant.lengths == 1).all()
    assert (ds.catalog.item_type[q.relevant.items] == t).all()
    assert (ds.catalog.item_type[q.exclude.items] == t).all() and (q.exclude.lengths > 0).all()
    full = ds.histories(q.users)
    indptr, order = ds.orders(q.users)
    row = full.row_ids()
    is_t = ds.catalog.item_type[full.items] == t
    # The relevant item is the user's last food row; the history is the prefix before it.
    last_t = np.zeros(full.n_users, dtype=np.int64)
    np.maximum.at(last_t, row[is_t], np.flatnonzero(is_t))
    assert (full.items[last_t] == q.relevant.items).all()
    assert (q.histories.lengths == last_t - indptr[:-1]).all()
    pos_in_row = np.arange(len(full.items)) - indptr[row]
    prefix = pos_in_row < q.histories.lengths[row]
    assert (full.items[prefix] == q.histories.items).all()
    assert (order[prefix] < order[last_t][row[prefix]]).all()
    kept = q.counts["kept"] + q.counts["dropped_no_target"] + q.counts["dropped_no_prior_target"]
    assert kept == len(ds.users_in(split))


def test_warm_drops_users_without_prior_target() -> None:
    ds = make_tiny_dataset(seed=3)
    q = build_queries(ds, "valid", "warm")
    # Every kept user shows at least one food item in the history it is queried with.
    t = ds.catalog.type_code("food")
    food_rows = q.histories.row_ids()[ds.catalog.item_type[q.histories.items] == t]
    assert np.bincount(food_rows, minlength=q.n_users).min() >= 1
