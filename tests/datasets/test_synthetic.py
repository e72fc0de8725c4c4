"""Synthetic generator: determinism, planted structure, and the write -> load round trip."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from hgrec.data.load import load_canonical
from hgrec.datasets.synthetic import generate, write_synthetic

N = 60_000


@functools.cache
def _gen(seed: int = 0, **kw: object) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return generate(N, seed=seed, **kw)


def _joined(seed: int = 0) -> pd.DataFrame:
    items, inter, _ = _gen(seed)
    idx = pd.Index(items["item_id"]).get_indexer(inter["item_id"])
    return inter.assign(
        item=idx,
        item_type=items["item_type"].to_numpy()[idx],
        topic=items["topic"].to_numpy()[idx],
        user=inter["user_id"].str[1:].astype(np.int64),
    )


def test_deterministic_by_seed() -> None:
    a, b, c = generate(5_000, seed=4), generate(5_000, seed=4), generate(5_000, seed=5)
    for x, y in zip(a, b):
        pd.testing.assert_frame_equal(x, y)
    assert not a[1]["item_id"].equals(c[1]["item_id"])


def test_sizes_and_basic_invariants() -> None:
    items, inter, users = _gen()
    assert len(inter) == N and len(users) == N // 20
    counts = inter.groupby("user_id").size()
    assert counts.min() >= 3 and len(counts) == len(users)
    # Heavy-tailed activity: the most active user has many times the mean.
    assert counts.max() > 5 * counts.mean()
    # Positions are 0..k-1 per user.
    pos = inter["position"].to_numpy()
    first = ~inter["user_id"].duplicated().to_numpy()
    lengths = counts.loc[inter["user_id"][first]].to_numpy()
    np.testing.assert_array_equal(pos, np.arange(N) - np.repeat(np.flatnonzero(first), lengths))
    assert set(users["split"]) == {"train", "valid", "test"}
    assert (users["split"] == "test").sum() == round(len(users) * 0.1)
    assert users["age"].between(16, 80).all()


def test_target_type_is_sparse_with_weak_signals() -> None:
    j = _joined()
    items, _, _ = _gen()
    target = j["item_type"] == "audiobook"
    assert abs(target.mean() - 0.1) < 0.02
    assert abs((items["item_type"] == "audiobook").mean() - 0.2) < 0.01
    assert set(j.loc[~target, "event"]) == {"stream"}
    ev = j.loc[target, "event"].value_counts(normalize=True)
    assert ev["stream"] > 0.7 and ev["preview"] > 0.05 and ev["follow"] > 0.03
    # Only some users ever touch the target type: the others are cold-start users.
    warm = j.loc[target, "user_id"].nunique() / j["user_id"].nunique()
    assert 0.3 < warm < 0.5


def test_popularity_skew_80_20() -> None:
    items, inter, _ = generate(200_000, seed=1)
    pop = inter["item_id"].value_counts().reindex(items["item_id"], fill_value=0).to_numpy()
    pop = np.sort(pop)[::-1]
    top = pop[: len(pop) // 5].sum() / pop.sum()
    assert 0.7 < top < 0.9


def test_topics_cross_types() -> None:
    j = _joined()
    n_topics = int(j["topic"].max()) + 1
    target = (j["item_type"] == "audiobook").to_numpy()
    n_users = int(j["user"].max()) + 1

    def topic_counts(mask: np.ndarray) -> np.ndarray:
        m = sp.csr_matrix(
            (np.ones(mask.sum()), (j["user"].to_numpy()[mask], j["topic"].to_numpy()[mask])),
            shape=(n_users, n_topics),
        )
        return m.toarray()

    est, tgt = topic_counts(~target), topic_counts(target)
    users = (tgt.sum(1) >= 3) & (est.sum(1) >= 3)
    # The main target-type topic of a user is one of their two main established-type topics.
    top2 = np.argsort(-est[users], axis=1)[:, :2]
    hit = (top2 == tgt[users].argmax(1)[:, None]).any(1).mean()
    assert users.sum() > 100 and hit > 0.8  # chance is 2 / n_topics = 0.1


def test_text_carries_topic() -> None:
    items, _, _ = _gen()
    words = (items["title"].str.lower() + " " + items["description"]).str.split().explode()
    codes, _ = pd.factorize(words)
    row = words.index.to_numpy()
    x = sp.csr_matrix((np.ones(len(codes)), (row, codes)), shape=(len(items), codes.max() + 1))
    topic = items["topic"].to_numpy()
    onehot = sp.csr_matrix((np.ones(len(topic)), (np.arange(len(topic)), topic)))
    profile = (onehot.T @ x).toarray()  # (n_topics, n_words) word counts per topic
    profile /= np.linalg.norm(profile, axis=1, keepdims=True)
    predicted = np.asarray((x @ profile.T).argmax(1)).ravel()
    assert (predicted == topic).mean() > 0.9


@pytest.mark.parametrize("types", [("podcast", "audiobook", "music"), ("kitchen", "food")])
def test_more_types(types: tuple[str, ...]) -> None:
    target = types[1]
    items, inter, _ = generate(20_000, item_types=types, target_type=target, seed=2)
    assert set(items["item_type"]) == set(types)
    per_type_topic = items.groupby(["item_type", "topic"]).size()
    assert len(per_type_topic) == len(types) * 20  # every (type, topic) has items
    used = set(items.set_index("item_id").loc[inter["item_id"], "item_type"])
    assert used == set(types)


@pytest.mark.parametrize(
    "kw",
    [
        {"target_type": "ebook"},
        {"item_types": ("podcast",), "target_type": "podcast"},
        {"n_users": 10_000},
        {"n_items": 50},
        {"topic_affinity": 1.5},
    ],
)
def test_bad_knobs(kw: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        generate(20_000, **kw)


def test_timestamps_follow_positions() -> None:
    _, inter, _ = generate(5_000, timestamps=True, seed=3)
    same = inter["user_id"].to_numpy()[1:] == inter["user_id"].to_numpy()[:-1]
    assert np.all(np.diff(inter["timestamp"].to_numpy())[same] >= 0)
    assert inter["timestamp"].min() >= 1_704_067_200


@pytest.mark.parametrize("fmt", ["parquet", "csv", "tsv"])
def test_write_then_load_round_trip(tmp_path: Path, fmt: str) -> None:
    # 55k users > one 50k-user block: the writer's blocks must equal generate().
    n, kw = 170_000, {"n_users": 55_000, "seed": 9}
    paths = write_synthetic(tmp_path, n, fmt=fmt, progress=False, **kw)
    names = {p.name for p in paths.values()}
    assert names == {f"items.{fmt}", f"interactions.{fmt}", f"users.{fmt}", "meta.json"}
    items, inter, users = generate(n, **kw)
    ds = load_canonical(
        paths["items"], paths["interactions"], paths["users"], target_type="audiobook"
    )
    assert ds.report.counts["interactions"] == len(inter)
    assert ds.report.counts["duplicate_interactions_collapsed"] == 0
    assert ds.user_ids.tolist() == users["user_id"].tolist()
    assert ds.catalog.item_ids.tolist() == items["item_id"].tolist()
    # Loaded histories are the generated ones, in position order.
    got = ds.catalog.item_ids[ds.interactions["item"].to_numpy()]
    np.testing.assert_array_equal(got, inter["item_id"].to_numpy(dtype=object))
    assert ds.users.columns.tolist() == ["user_id", "split", "country", "age"]
