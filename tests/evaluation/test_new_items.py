"""The new-item protocol: which items are held out, what leaves training, which users are
asked, and how the rankings are scored (hand-checked on the tiny planted dataset)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
import pytest

from hgrec.config import EvalConfig
from hgrec.data.dataset import Dataset
from hgrec.data.histories import Histories
from hgrec.evaluation.new_items import (
    evaluate_new_items,
    hold_out_items,
    new_item_queries,
    new_items_table,
    without_items,
)
from hgrec.evaluation.protocols import build_queries
from hgrec.models.base import Recommender, TrainSet


def test_hold_out_is_a_seeded_share_of_the_target_items(tiny_dataset: Dataset) -> None:
    food = tiny_dataset.catalog.items_of_type("food")  # 24 items
    a = hold_out_items(tiny_dataset, 0.25, seed=1)
    assert len(a) == 6 and set(a) <= set(food) and np.all(np.diff(a) > 0)
    assert np.array_equal(a, hold_out_items(tiny_dataset, 0.25, seed=1))
    assert not np.array_equal(a, hold_out_items(tiny_dataset, 0.25, seed=2))
    assert len(hold_out_items(tiny_dataset, 0.01, seed=1)) == 1  # at least one
    assert len(hold_out_items(tiny_dataset, 0.99, seed=1)) == 23  # one old item stays
    with pytest.raises(ValueError, match="new_items_share"):
        hold_out_items(tiny_dataset, 1.0, seed=1)


def test_with_timestamps_the_latest_launched_items_are_new(tiny_dataset: Dataset) -> None:
    inter = tiny_dataset.interactions.copy()
    food = tiny_dataset.catalog.items_of_type("food")
    # Every interaction at time 100 + position, except that food items f0_0..f0_2 are first
    # seen at 10_000 + index: they are the three latest launches.
    inter["order"] = 100.0 + inter["order"]
    late = food[:3]
    rows = np.isin(inter["item"].to_numpy(), late)
    inter.loc[rows, "order"] = 10_000.0 + inter.loc[rows, "item"].to_numpy()
    ds = replace(tiny_dataset, interactions=inter, order_kind="timestamp")
    assert np.array_equal(hold_out_items(ds, 3 / 24, seed=0), np.sort(late))


def test_only_training_users_lose_their_new_item_interactions(tiny_dataset: Dataset) -> None:
    new = hold_out_items(tiny_dataset, 0.25, seed=0)
    reduced, counts = without_items(tiny_dataset, new)
    inter, kept = tiny_dataset.interactions, reduced.interactions
    split = tiny_dataset.users["split"].to_numpy()
    was = np.isin(inter["item"].to_numpy(), new) & (split[inter["user"].to_numpy()] == "train")
    assert counts["new_items"] == 6 and counts["train_interactions_removed"] == int(was.sum()) > 0
    assert len(kept) == len(inter) - int(was.sum())
    in_train = split[kept["user"].to_numpy()] == "train"
    assert not np.isin(kept["item"].to_numpy()[in_train], new).any()
    # valid / test users keep theirs, so their queries are unchanged
    for s in ("valid", "test"):
        a, b = build_queries(tiny_dataset, s, "cold"), build_queries(reduced, s, "cold")
        assert np.array_equal(a.relevant.items, b.relevant.items)
    assert reduced.item_popularity()[new].sum() == 0


def test_queries_keep_the_users_with_a_new_relevant_item(tiny_dataset: Dataset) -> None:
    new = hold_out_items(tiny_dataset, 0.25, seed=0)
    full = build_queries(tiny_dataset, "test", "cold")
    nq = new_item_queries(tiny_dataset, "test", "cold", new)
    expected = [u for u, r in zip(full.users, np.split(full.relevant.items, full.relevant.indptr[1:-1]))
                if np.isin(r, new).any()]
    assert list(nq.all.users) == expected and 0 < len(expected) < full.n_users
    assert np.array_equal(nq.all.users, nq.new.users)
    assert np.isin(nq.new.relevant.items, new).all()
    assert nq.new.relevant.lengths.min() >= 1
    assert nq.all.counts["users_with_new_relevant"] == len(expected)
    warm = new_item_queries(tiny_dataset, "test", "warm", new)
    assert np.isin(warm.all.relevant.items, new).all()  # one relevant item: the last, new
    with pytest.raises(ValueError, match="unknown protocol"):
        new_item_queries(tiny_dataset, "test", "new_items", new)


class _Fixed(Recommender):
    """Scores items by a fixed vector (higher first), whatever the history."""

    name: ClassVar[str] = "fixed"

    def __init__(self, scores: np.ndarray, inductive: bool) -> None:
        self.scores = scores
        self.scores_unseen_items = inductive  # type: ignore[misc]

    def fit(self, train: TrainSet) -> Recommender:
        return self

    def score(self, histories: Histories, candidates: np.ndarray) -> np.ndarray:
        return np.tile(self.scores[candidates], (histories.n_users, 1)).astype(np.float32)

    def get_params(self) -> dict[str, Any]:
        return {}

    def get_state(self) -> dict[str, np.ndarray]:
        return {}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        pass


def test_models_that_cannot_score_new_items_rank_them_last(tiny_dataset: Dataset) -> None:
    cat = tiny_dataset.catalog
    new = hold_out_items(tiny_dataset, 0.25, seed=0)  # 6 new food items
    favour_new = np.zeros(cat.n_items)
    favour_new[new] = 1.0 + np.arange(len(new))  # new items on top, the last one first
    models = {"inductive": _Fixed(favour_new, True), "transductive": _Fixed(favour_new, False)}
    queries = {("cold", "test"): new_item_queries(tiny_dataset, "test", "cold", new)}
    out = evaluate_new_items(models, queries, new, cat, EvalConfig(hr_k=10, mrr_k=20),
                             progress=False)
    block = out["protocols"]["cold"]["test"]
    ind, tra = block["models"]["inductive"], block["models"]["transductive"]
    # every user has a new relevant item and all 6 new items lead every top 10
    assert ind["new"]["hr@10"] == 1.0 and ind["new_share@10"] == pytest.approx(0.6)
    assert ind["new_coverage@10"] == 1.0 and ind["scores_new_items"] is True
    assert ind["among_new"]["hr@10"] == 1.0 and tra["among_new"]["hr@10"] is None  # 6 <= 10
    assert block["among_new_chance_hr@10"] == 1.0  # any order of 6 items puts them in a top 10
    # ranked last = not in the top 20 of 18 old items... and never recommended
    assert tra["new"]["hr@10"] == 0.0 and tra["new"]["mrr@20"] == 0.0
    assert tra["new_share@10"] == 0.0 and tra["new_coverage@10"] == 0.0
    assert tra["scores_new_items"] is False
    # the "all" view counts old relevant items too, so it is at least the new view
    assert ind["all"]["hr@10"] >= ind["new"]["hr@10"] - 1e-12
    table = new_items_table(out, "test", 10, 20)
    assert "transductive (ranks new items last)" in table and "inductive |" in table


def test_chance_hit_rate_is_the_random_ranking_rate() -> None:
    from hgrec.evaluation.new_items import chance_hit_rate

    assert chance_hit_rate(np.array([1]), 100, 10) == pytest.approx(0.1)
    assert chance_hit_rate(np.array([2]), 4, 1) == pytest.approx(0.5)
    # 1 - C(8, 2) / C(10, 2) = 1 - 28 / 45
    assert chance_hit_rate(np.array([2, 1]), 10, 2) == pytest.approx(((1 - 28 / 45) + 0.2) / 2)
    rng = np.random.default_rng(0)
    sims = np.mean([len({0, 1, 2} & set(rng.permutation(30)[:5])) > 0 for _ in range(20000)])
    assert chance_hit_rate(np.array([3]), 30, 5) == pytest.approx(sims, abs=0.01)
