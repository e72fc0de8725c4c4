"""evaluate() on a hand-computed case and evaluate_all()'s metrics.json structure."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from hgrec.config import EvalConfig
from hgrec.data.dataset import Dataset
from hgrec.evaluation.evaluate import evaluate, evaluate_all
from hgrec.evaluation.protocols import build_queries
from tests.evaluation.helpers import FixedScores, item, make_hand_dataset


def _ranked_food_model(ds: Dataset) -> FixedScores:
    """Ranks food f0 > f1 > f2 > f3 for everyone."""
    scores = np.zeros(ds.catalog.n_items, dtype=np.float32)
    scores[[item("f0"), item("f1"), item("f2"), item("f3")]] = [4, 3, 2, 1]
    return FixedScores(scores.tolist())


@pytest.mark.parametrize("batch_size", [1, 3, 1024])
def test_warm_hand_computed(batch_size: int) -> None:
    ds = make_hand_dataset()
    q = build_queries(ds, "valid", "warm")
    popularity = np.zeros(ds.catalog.n_items, dtype=np.int64)
    popularity[[item("f0"), item("f1"), item("f2"), item("f3")]] = [4, 3, 2, 1]
    cfg = EvalConfig(hr_k=2, mrr_k=3, n_tiers=2, batch_size=batch_size)
    model = _ranked_food_model(ds)
    out = evaluate(model, q, ds.catalog, popularity, cfg, progress=False)
    # Users (relevant; excluded -> ranking): u0 (f1; f0 -> f1 f2 f3) rank 1,
    # u2 (f2; f0 -> f1 f2 f3) rank 2, u3 (f3; f1 -> f0 f2 f3) rank 3, u6 (f1; f1) absent.
    assert out["hr@2"] == pytest.approx(2 / 4)
    assert out["mrr@3"] == pytest.approx((1 + 1 / 2 + 1 / 3) / 4)
    assert out["recall@2"] == pytest.approx(2 / 4)
    assert out["ndcg@2"] == pytest.approx((1 + 1 / math.log2(3)) / 4)
    assert out["coverage@3"] == pytest.approx(1.0)
    # Tiers: {f0, f1} and {f2, f3}. Pairs: tier 1 = u0-f1 (rank 1), u6-f1 (absent);
    # tier 2 = u2-f2 (rank 2), u3-f3 (rank 3).
    assert out["tiers"] == [
        {"tier": 1, "items": 2, "pairs": 2, "hr@2": 0.5, "mrr@3": 0.5},
        {"tier": 2, "items": 2, "pairs": 2, "hr@2": 0.5,
         "mrr@3": pytest.approx((1 / 2 + 1 / 3) / 2)},
    ]
    # Only food items were ever scored, in batches of at most batch_size users.
    food = ds.catalog.items_of_type("food")
    assert all((c == food).all() and n <= batch_size for n, c in model.calls)


def test_cold_hand_computed() -> None:
    ds = make_hand_dataset()
    q = build_queries(ds, "valid", "cold")
    cfg = EvalConfig(hr_k=1, mrr_k=4, n_tiers=1)
    out = evaluate(_ranked_food_model(ds), q, ds.catalog, ds.item_popularity(), cfg, progress=False)
    # Nothing excluded: everyone sees f0 f1 f2 f3. Relevant: u0 {f0,f1}, u3 {f1,f2,f3},
    # u4 {f0}, u6 {f1}.
    assert out["hr@1"] == pytest.approx(2 / 4)
    assert out["mrr@4"] == pytest.approx((1 + 1 / 2 + 1 + 1 / 2) / 4)
    assert out["recall@1"] == pytest.approx((1 / 2 + 0 + 1 + 0) / 4)
    assert out["coverage@4"] == pytest.approx(1.0)
    assert out["tiers"][0]["pairs"] == 7


def test_undefined_values_are_none() -> None:
    ds = make_hand_dataset()
    q = build_queries(ds, "valid", "warm")
    empty = q.take(np.zeros(0, dtype=np.int64))
    out = evaluate(_ranked_food_model(ds), empty, ds.catalog, ds.item_popularity(), progress=False)
    assert out["hr@10"] is None and out["coverage@100"] == 0.0
    assert all(t["hr@10"] is None for t in out["tiers"])


def test_popularity_shape_is_checked() -> None:
    ds = make_hand_dataset()
    q = build_queries(ds, "valid", "warm")
    with pytest.raises(ValueError, match="popularity"):
        evaluate(_ranked_food_model(ds), q, ds.catalog, np.zeros(3), progress=False)


def test_evaluate_all_structure(tiny_dataset: Dataset) -> None:
    ds = tiny_dataset
    rng = np.random.default_rng(0)
    models = {"b": FixedScores(rng.random(ds.catalog.n_items).tolist()),
              "a": FixedScores(rng.random(ds.catalog.n_items).tolist())}
    queries = {(p, s): build_queries(ds, s, p) for s in ("test", "valid") for p in ("warm", "cold")}
    out = evaluate_all(models, queries, ds.catalog, ds.item_popularity(), dataset_name="tiny",
                       progress=False)
    assert out["dataset"] == "tiny" and out["target_type"] == "food"
    assert list(out["protocols"]) == ["cold", "warm"]
    for p in ("cold", "warm"):
        assert list(out["protocols"][p]) == ["valid", "test"]
        for s in ("valid", "test"):
            entry = out["protocols"][p][s]
            assert entry["users"] == queries[(p, s)].n_users
            assert list(entry["models"]) == ["b", "a"]  # insertion order
            assert len(entry["models"]["a"]["tiers"]) == 5
    json.dumps(out, allow_nan=False)  # strict JSON


def test_evaluate_all_rejects_mislabelled_queries() -> None:
    ds = make_hand_dataset()
    q = build_queries(ds, "valid", "warm")
    with pytest.raises(ValueError, match="holds warm/valid"):
        evaluate_all({"m": _ranked_food_model(ds)}, {("cold", "valid"): q}, ds.catalog,
                     ds.item_popularity(), progress=False)
