"""User- and item-tower inputs against hand computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from hgrec.data.dataset import Catalog
from hgrec.data.histories import Histories
from hgrec.features.item import (
    ItemFeatures,
    build_id_codes,
    build_item_features,
    encode_categorical,
)
from hgrec.features.user import UserFeaturizer, truncate_histories

# 5 items: types a (0, 1, 2) and b (3, 4); codes follow sorted type names (a=0, b=1).
TYPES = ["a", "a", "a", "b", "b"]
TEXT = np.array([[1, 0], [0, 1], [1, 1], [2, 0], [0, 2]], dtype=np.float32)
HGNN = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1]], dtype=np.float32)
EVENTS = ("preview", "stream")


def make_catalog(extra: dict[str, list[object]] | None = None) -> Catalog:
    items = pd.DataFrame(
        {"item_id": [f"i{j}" for j in range(5)], "item_type": TYPES, "title": ["t"] * 5}
    )
    for col, values in (extra or {}).items():
        items[col] = values
    return Catalog.from_items(items)


def make_featurizer(
    users: pd.DataFrame | None = None, max_history: int = 100, hgnn: bool = True
) -> UserFeaturizer:
    feats = build_item_features(make_catalog(), TEXT, HGNN if hgnn else None)
    return UserFeaturizer.fit(feats, EVENTS, users, max_history=max_history)


def hand_history_features(rows: list[list[int]], events: list[list[int]], hgnn: bool) -> np.ndarray:
    """Straightforward per-user computation of the documented layout."""
    code = np.array([0, 0, 0, 1, 1])
    out = []
    for items, evs in zip(rows, events, strict=True):
        parts: list[np.ndarray] = []
        for t in (0, 1):
            sel = [i for i in items if code[i] == t]
            parts.append(TEXT[sel].mean(0) if sel else np.zeros(2))
            if hgnn:
                parts.append(HGNN[sel].mean(0) if sel else np.zeros(3))
        counts = [sum(code[i] == t for i in items) for t in (0, 1)]
        ev_counts = [sum(e == k for e in evs) for k in range(len(EVENTS))]
        out.append(np.concatenate(parts + [np.log1p(counts), np.log1p(ev_counts)]))
    return np.array(out, dtype=np.float32)


def with_events(rows: list[list[int]], events: list[list[int]]) -> Histories:
    h = Histories.from_lists(rows)
    ev = np.array([e for row in events for e in row], dtype=np.int16)
    return Histories(indptr=h.indptr, items=h.items, events=ev)


# ---------------------------------------------------------------------------- item features
def test_item_categoricals_have_oov_code_zero() -> None:
    cat = make_catalog({"language": ["en", "de", None, "en", "fr"], "genre": [1, 1, 2, 2, 3]})
    feats = build_item_features(cat, TEXT, None, min_count=2)
    assert feats.vocab["language"] == ["en"]  # de/fr are rarer than min_count
    assert feats.categorical["language"].tolist() == [1, 0, 0, 1, 0]
    assert feats.vocab["genre"] == ["1", "2"]
    assert feats.categorical["genre"].tolist() == [1, 1, 2, 2, 0]
    assert feats.cardinalities() == {"item_type": 2, "language": 2, "genre": 3}


def test_item_tower_inputs_concatenate_text_and_hgnn() -> None:
    feats = build_item_features(make_catalog({"language": ["x"] * 5}), TEXT, HGNN)
    dense, cats = feats.tower_inputs(torch.tensor([4, 0]))
    np.testing.assert_array_equal(dense.numpy(), np.concatenate([TEXT, HGNN], 1)[[4, 0]])
    assert cats.tolist() == [[1, 1], [0, 1]]  # (item_type, language)
    assert feats.dense_dim == 5


def test_item_features_without_embeddings_have_empty_dense() -> None:
    feats = build_item_features(make_catalog(), None, None)
    dense, cats = feats.tower_inputs(torch.arange(5))
    assert dense.shape == (5, 0) and cats.shape == (5, 1)


@pytest.mark.parametrize(
    "text, match",
    [(TEXT[:4], "expected \\(n_items=5"), (np.where(np.eye(5, 2) > 0, np.nan, 0.0), "NaN")],
)
def test_item_features_reject_bad_embeddings(text: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_item_features(make_catalog(), text, None)


def test_item_features_state_round_trip() -> None:
    feats = build_item_features(make_catalog({"genre": ["g", None, "h", "g", "g"]}), TEXT, HGNN)
    back = ItemFeatures.from_state(feats.to_state())
    assert back.vocab == feats.vocab and back.type_names == feats.type_names
    assert torch.equal(back.categorical["genre"], feats.categorical["genre"])
    assert back.hgnn is not None and torch.equal(back.hgnn, torch.from_numpy(HGNN))


# ---------------------------------------------------------------------------- user features
@pytest.mark.parametrize("hgnn", [True, False])
def test_history_features_match_hand_computation(hgnn: bool) -> None:
    rows = [[0, 3, 1], [], [4, 4], [2]]
    events = [[1, 0, 1], [], [0, 0], [1]]
    fz = make_featurizer(hgnn=hgnn)
    got = fz.history_features(with_events(rows, events)).numpy()
    assert got.shape == (4, fz.history_dim)
    np.testing.assert_allclose(got, hand_history_features(rows, events, hgnn), rtol=1e-6)


def test_empty_history_gives_zeros() -> None:
    fz = make_featurizer()
    got = fz.history_features(Histories.empty(2)).numpy()
    assert got.shape == (2, fz.history_dim) and not got.any()


@pytest.mark.parametrize("max_history", [1, 2, 3, 10])
def test_max_history_keeps_the_last_items(max_history: int) -> None:
    rows = [[0, 1, 2, 3, 4], [4, 3], [1]]
    events = [[0, 1, 0, 1, 1], [1, 1], [0]]
    fz = make_featurizer(max_history=max_history)
    got = fz.history_features(with_events(rows, events)).numpy()
    last = [r[-max_history:] for r in rows]
    last_ev = [e[-max_history:] for e in events]
    np.testing.assert_allclose(got, hand_history_features(last, last_ev, True), rtol=1e-6)


@pytest.mark.parametrize("max_history", [1, 2, 4])
def test_truncate_histories(max_history: int) -> None:
    rows = [[5, 6, 7], [], [8], [1, 2, 3, 4]]
    h = truncate_histories(Histories.from_lists(rows), max_history)
    assert [h.row(u).tolist() for u in range(h.n_users)] == [r[-max_history:] for r in rows]


def test_missing_events_count_as_streams() -> None:
    fz = make_featurizer()
    got = fz.history_features(Histories.from_lists([[0, 1]])).numpy()
    np.testing.assert_allclose(got[0, -2:], np.log1p([0, 2]))  # (preview, stream)


@pytest.mark.parametrize(
    "h, match",
    [
        (Histories.from_lists([[0, 9]]), "outside \\[0, 5\\)"),
        (Histories(indptr=np.array([0, 1]), items=np.array([0]), events=np.array([2], np.int16)),
         "event codes"),
    ],
)
def test_bad_history_input_raises(h: Histories, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_featurizer().history_features(h)


def test_demographics_vocabulary_statistics_and_oov() -> None:
    train_users = pd.DataFrame(
        {
            "user_id": ["u0", "u1", "u2", "u3"],
            "split": ["train"] * 4,
            "country": ["se", "us", "se", None],
            "age": [20.0, 30.0, np.nan, 40.0],
        }
    )
    fz = make_featurizer(users=train_users)
    assert fz.categorical_vocab == {"country": ["se", "us"]}
    assert fz.numeric_mean["age"] == pytest.approx(30.0)
    sd = float(np.std([20.0, 30.0, 40.0]))
    query = pd.DataFrame({"country": ["us", "br", None], "age": [45.0, np.nan, 30.0]})
    enc = fz.encode_users(query, 3)
    assert enc.categorical[:, 0].tolist() == [2, 0, 0]  # unseen "br" and missing -> 0
    np.testing.assert_allclose(enc.dense[:, 0].numpy(), [15.0 / sd, 0.0, 0.0], rtol=1e-6)
    assert enc.dense[:, 1].tolist() == [0.0, 1.0, 0.0]  # missing flag
    # A request without a users table counts everything as missing.
    anon = fz.encode_users(None, 2)
    assert anon.categorical.tolist() == [[0], [0]] and anon.dense[:, 1].tolist() == [1.0, 1.0]
    # transform appends the demographics to the history aggregates.
    h = Histories(indptr=np.array([0, 1, 1, 2]), items=np.array([0, 3]), users=query)
    x = fz.transform(h)
    assert x.dense.shape == (3, fz.history_dim + 2) and fz.dense_dim == fz.history_dim + 2


def test_user_featurizer_state_round_trip() -> None:
    users = pd.DataFrame({"user_id": ["a", "b"], "country": ["se", "us"], "age": [1.0, 3.0]})
    fz = make_featurizer(users=users, max_history=7)
    back = UserFeaturizer.from_state(fz.to_state(), fz.items)
    assert back == fz


def test_encode_categorical_matches_vocab_positions() -> None:
    codes = encode_categorical(pd.Series(["b", "a", "zz", None]), ["a", "b"])
    assert codes.tolist() == [2, 1, 0, 0]


# ---------------------------------------------------------------------------- item-id bags
@pytest.mark.parametrize(
    "counts, min_count, expected",
    [
        ([0, 3, 1, 5, 2], 2, [0, 1, 0, 2, 3]),  # 0 and 1 occurrences -> shared rare row 0
        ([0, 3, 1, 5, 2], 1, [0, 1, 2, 3, 4]),  # only the unseen item is rare
        ([0, 3, 1, 5, 2], 9, [0, 0, 0, 0, 0]),  # everything rare: a one-row table
    ],
)
def test_id_codes_map_rare_items_to_row_zero(
    counts: list[int], min_count: int, expected: list[int]
) -> None:
    codes = build_id_codes(np.array(counts), min_count)
    assert codes.tolist() == expected
    feats = build_item_features(make_catalog(), TEXT, None).with_id_codes(codes)
    assert feats.n_ids == max(expected) + 1


@pytest.mark.parametrize("counts, min_count", [(np.array([1, -1]), 1), (np.array([1, 2]), 0)])
def test_id_codes_reject_bad_input(counts: np.ndarray, min_count: int) -> None:
    with pytest.raises(ValueError, match="id"):
        build_id_codes(counts, min_count)


def id_featurizer(max_history: int = 100) -> UserFeaturizer:
    """Items 0..4 with id rows 1..5 (row = item + 1), types a a a b b."""
    feats = build_item_features(make_catalog(), TEXT, HGNN).with_id_codes(np.arange(1, 6))
    return UserFeaturizer.fit(feats, EVENTS, None, max_history=max_history)


@pytest.mark.parametrize(
    "rows, max_history, codes, offsets",
    [
        # bag = user * 2 + type: u0a [0, 1], u0b [3], u1a empty, u1b [4], u2a, u2b empty
        ([[0, 3, 1], [4], []], 100, [1, 2, 4, 5], [0, 2, 3, 3, 4, 4]),
        # the last 2 items of u0 are 3, 1; u1 keeps its one item
        ([[0, 3, 1], [4], []], 2, [2, 4, 5], [0, 1, 2, 2, 3, 3]),
        ([[], []], 5, [], [0, 0, 0, 0]),
    ],
)
def test_id_bags_match_hand_case(
    rows: list[list[int]], max_history: int, codes: list[int], offsets: list[int]
) -> None:
    fz = id_featurizer(max_history)
    got_codes, got_offsets = fz.id_bags(Histories.from_lists(rows))
    assert got_codes.tolist() == codes and got_offsets.tolist() == offsets
    x = fz.transform(Histories.from_lists(rows))
    assert x.id_codes is not None and x.id_offsets is not None
    assert x.id_codes.tolist() == codes and x.id_offsets.tolist() == offsets


def test_id_bag_means_match_hand_means() -> None:
    """Mean-mode embedding bags over the offsets = per (user, type) means, zeros if empty."""
    rows = [[0, 3, 1, 2], [], [4, 4, 0]]
    fz = id_featurizer()
    codes, offsets = fz.id_bags(Histories.from_lists(rows))
    weight = torch.from_numpy(np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32))
    got = torch.nn.functional.embedding_bag(codes, weight, offsets, mode="mean").numpy()
    w, type_of = weight.numpy(), np.array([0, 0, 0, 1, 1])
    for u, items in enumerate(rows):  # hand computation, a few users
        for t in (0, 1):
            sel = [i + 1 for i in items if type_of[i] == t]
            want = w[sel].mean(0) if sel else np.zeros(3)
            np.testing.assert_allclose(got[u * 2 + t], want, rtol=1e-6, atol=1e-7)


def test_transform_without_id_codes_has_no_bags() -> None:
    x = make_featurizer().transform(Histories.from_lists([[0, 3]]))
    assert x.id_codes is None and x.id_offsets is None
    with pytest.raises(ValueError, match="no id codes"):
        make_featurizer().id_bags(Histories.from_lists([[0]]))


def test_item_features_id_codes_round_trip() -> None:
    feats = build_item_features(make_catalog(), TEXT, None).with_id_codes(np.array([0, 2, 1, 0, 3]))
    back = ItemFeatures.from_state(feats.to_state())
    assert back.id_code is not None and back.id_code.tolist() == [0, 2, 1, 0, 3]
    assert back.n_ids == 4
    plain = build_item_features(make_catalog(), TEXT, None)
    assert ItemFeatures.from_state(plain.to_state()).id_code is None
    assert len(plain.tower_inputs(torch.arange(2))) == 2  # no id codes: (dense, categorical)
    assert feats.tower_inputs(torch.tensor([1, 4]))[2].tolist() == [2, 3]
    with pytest.raises(ValueError, match="n_items=5"):
        feats.with_id_codes(np.zeros(4, np.int64))
