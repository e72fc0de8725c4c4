"""Bootstrap intervals over users: per-model HR/MRR intervals and the paired comparison."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.sparse as sp

from hgrec.config import EvalConfig
from hgrec.data.dataset import Dataset
from hgrec.evaluation import metrics as metrics_mod
from hgrec.evaluation.evaluate import evaluate, evaluate_all, paired_vs_best_other
from hgrec.evaluation.metrics import (
    BOOTSTRAP_RESAMPLES,
    RetrievalMetrics,
    bootstrap_ci,
    bootstrap_means,
    hit_matrix,
    hits_at,
    reciprocal_rank_at,
)
from hgrec.evaluation.protocols import build_queries
from tests.evaluation.helpers import FixedScores


def _planted(n: int, p: float, seed: int) -> np.ndarray:
    """(n,) per-user hits: exactly round(p * n) users hit, at seeded positions."""
    v = np.zeros(n)
    v[np.random.default_rng(seed).permutation(n)[: round(p * n)]] = 1.0
    return v


# ---------------------------------------------------------------------------------- one vector
def test_interval_contains_the_point_estimate() -> None:
    for p, seed in ((0.3, 1), (0.05, 2), (0.9, 3)):
        v = _planted(1000, p, seed)
        lo, hi = bootstrap_ci(v)
        assert lo < v.mean() < hi
        assert 0.0 <= lo and hi <= 1.0
    rr = 1.0 / np.random.default_rng(4).integers(1, 50, size=800)  # MRR-like values
    lo, hi = bootstrap_ci(rr)
    assert lo < rr.mean() < hi


def test_interval_is_identical_across_calls() -> None:
    v = _planted(1000, 0.3, 1)
    assert bootstrap_ci(v) == bootstrap_ci(v)
    assert np.array_equal(bootstrap_means(v), bootstrap_means(v))
    assert bootstrap_means(v).shape == (BOOTSTRAP_RESAMPLES,)


def test_interval_narrows_as_users_are_duplicated() -> None:
    v = _planted(500, 0.3, 1)
    lo1, hi1 = bootstrap_ci(v)
    lo4, hi4 = bootstrap_ci(np.tile(v, 4))
    # 4x the users: the standard error halves; allow for the bootstrap's own noise.
    assert 0.4 < (hi4 - lo4) / (hi1 - lo1) < 0.6
    assert lo4 < v.mean() < hi4


def test_no_user_gives_nan() -> None:
    lo, hi = bootstrap_ci(np.zeros(0))
    assert math.isnan(lo) and math.isnan(hi)


def test_rows_share_the_resamples() -> None:
    """(m, n) input: every row sees the same resampled users, so the resampled mean of a
    difference is the difference of the resampled means (the paired comparison)."""
    a, b = _planted(300, 0.4, 1), _planted(300, 0.2, 2)
    both = bootstrap_means(np.stack([a, b]))  # (2, B)
    assert np.array_equal(both[0], bootstrap_means(a))
    assert np.allclose(bootstrap_means(a - b), both[0] - both[1])


def test_blocks_of_resamples_bound_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    v = _planted(1000, 0.3, 1)
    monkeypatch.setattr(metrics_mod, "_BOOT_CELLS", 1000 * 7)  # 7 resamples per block
    means = bootstrap_means(v)
    assert means.shape == (BOOTSTRAP_RESAMPLES,) and not np.isnan(means).any()
    assert np.array_equal(means, bootstrap_means(v))
    lo, hi = bootstrap_ci(v)
    assert lo < v.mean() < hi


# ---------------------------------------------------------------------------------- paired
def test_paired_difference_with_itself_is_exactly_zero() -> None:
    v = _planted(1000, 0.3, 1)
    out = paired_vs_best_other({"a": v, "b": v.copy()})
    assert out["a"] == {"other": "b", "diff": 0.0, "ci": [0.0, 0.0]}
    assert out["b"] == {"other": "a", "diff": 0.0, "ci": [0.0, 0.0]}


def test_clearly_better_model_excludes_zero() -> None:
    good, bad, worse = _planted(1000, 0.35, 1), _planted(1000, 0.20, 2), _planted(1000, 0.1, 3)
    out = paired_vs_best_other({"bad": bad, "good": good, "worse": worse})
    assert out["good"]["other"] == "bad" and out["good"]["diff"] == pytest.approx(0.15)
    lo, hi = out["good"]["ci"]
    assert 0.0 < lo < 0.15 < hi
    # Every other model is compared with the best one, and is significantly behind it.
    assert out["bad"]["other"] == "good" and out["bad"]["ci"][1] < 0.0
    assert out["worse"]["other"] == "good" and out["worse"]["ci"][1] < 0.0


def test_close_models_tie() -> None:
    a = _planted(1000, 0.30, 1)
    b = a.copy()
    b[np.flatnonzero(a == 0)[:5]] = 1.0  # b finds 5 users a misses ...
    b[np.flatnonzero(a == 1)[:3]] = 0.0  # ... and misses 3 that a finds: +0.002
    out = paired_vs_best_other({"a": a, "b": b})
    assert out["b"]["other"] == "a" and out["b"]["diff"] == pytest.approx(0.002)
    lo, hi = out["b"]["ci"]
    assert lo < 0.0 < hi  # a tie, not a win
    assert out["a"]["ci"] == pytest.approx([-hi, -lo])  # the mirror image


def test_paired_uses_the_given_points_and_breaks_ties_by_order() -> None:
    a, b, c = _planted(100, 0.3, 1), _planted(100, 0.3, 2), _planted(100, 0.1, 3)
    out = paired_vs_best_other({"c": c, "a": a, "b": b}, {"c": 0.1, "a": 0.3, "b": 0.3})
    assert out["c"]["other"] == "a"  # a and b tie: the first in order
    assert out["a"]["other"] == "b" and out["a"]["diff"] == 0.0
    assert paired_vs_best_other({"a": a}) == {}
    assert paired_vs_best_other({"a": np.zeros(0), "b": np.zeros(0)}) == {}
    with pytest.raises(ValueError, match="length"):
        paired_vs_best_other({"a": a, "b": a[:5]})


# ---------------------------------------------------------------------------------- streaming
def test_streaming_keeps_per_user_values_in_order() -> None:
    rng = np.random.default_rng(0)
    topk = np.argsort(rng.random((60, 40)), axis=1)[:, :20]
    rel = (rng.random((60, 40)) < 0.05).astype(np.float64)
    rel[0] = 0.0  # a user without a relevant item is not averaged
    rel = sp.csr_matrix(rel)
    one = RetrievalMetrics(hr_k=5, mrr_k=20, catalog_size=40, keep_per_user=True)
    one.update(topk, rel)
    batched = RetrievalMetrics(hr_k=5, mrr_k=20, catalog_size=40, keep_per_user=True)
    for s in range(0, 60, 7):
        batched.update(topk[s : s + 7], rel[s : s + 7])
    hits, n_rel = hit_matrix(topk, rel)
    valid = n_rel > 0
    for acc in (one, batched):
        pu = acc.per_user()
        assert np.array_equal(pu["hr"], hits_at(hits, 5)[valid])
        assert np.array_equal(pu["rr"], reciprocal_rank_at(hits, 20)[valid])
    a, b = one.compute(), batched.compute()
    assert a["hr@5_ci"] == b["hr@5_ci"] and a["mrr@20_ci"] == b["mrr@20_ci"]
    assert a["hr@5_ci"] == list(bootstrap_ci(hits_at(hits, 5)[valid]))
    assert a["hr@5_ci"][0] <= a["hr@5"] <= a["hr@5_ci"][1]
    plain = RetrievalMetrics(hr_k=5, mrr_k=20, catalog_size=40)
    plain.update(topk, rel)
    assert "hr@5_ci" not in plain.compute()
    with pytest.raises(RuntimeError, match="keep_per_user"):
        plain.per_user()


# ---------------------------------------------------------------------------------- evaluate
def _models(ds: Dataset) -> dict[str, FixedScores]:
    rng = np.random.default_rng(0)
    return {"b": FixedScores(rng.random(ds.catalog.n_items).tolist()),
            "a": FixedScores(rng.random(ds.catalog.n_items).tolist())}


def test_evaluate_adds_intervals(tiny_dataset: Dataset) -> None:
    ds = tiny_dataset
    q = build_queries(ds, "test", "cold")
    model = _models(ds)["a"]
    out = evaluate(model, q, ds.catalog, ds.item_popularity(), progress=False)
    for key in ("hr@10", "mrr@100"):
        lo, hi = out[f"{key}_ci"]
        assert lo <= out[key] <= hi
    assert out == evaluate(model, q, ds.catalog, ds.item_popularity(), progress=False)
    bare = evaluate(model, q, ds.catalog, ds.item_popularity(), progress=False, intervals=False)
    assert "hr@10_ci" not in bare and bare["hr@10"] == out["hr@10"]
    empty = evaluate(model, q.take(np.zeros(0, dtype=np.int64)), ds.catalog,
                     ds.item_popularity(), progress=False)
    assert empty["hr@10_ci"] == [None, None]


def test_evaluate_all_adds_paired_comparisons(tiny_dataset: Dataset) -> None:
    ds = tiny_dataset
    queries = {(p, s): build_queries(ds, s, p) for s in ("valid", "test") for p in ("cold", "warm")}
    models = _models(ds)
    models["a-again"] = models["a"]
    cfg = EvalConfig()
    out = evaluate_all(models, queries, ds.catalog, ds.item_popularity(), cfg, progress=False)
    again = evaluate_all(models, queries, ds.catalog, ds.item_popularity(), cfg, progress=False)
    assert json.dumps(out, allow_nan=False) == json.dumps(again, allow_nan=False)  # identical
    for entry in (e for splits in out["protocols"].values() for e in splits.values()):
        ms = entry["models"]
        for name, m in ms.items():
            assert m["hr@10_ci"][0] <= m["hr@10"] <= m["hr@10_ci"][1]
            assert m["mrr@100_ci"][0] <= m["mrr@100"] <= m["mrr@100_ci"][1]
            paired = m["hr@10_vs_best_other"]
            other = paired["other"]
            assert other != name
            assert paired["diff"] == pytest.approx(m["hr@10"] - ms[other]["hr@10"])
            assert ms[other]["hr@10"] == max(v["hr@10"] for n, v in ms.items() if n != name)
            assert paired["ci"][0] <= paired["diff"] <= paired["ci"][1]
        # The same model twice: its best other is itself (or ties with it), never a win.
        if ms["a"]["hr@10_vs_best_other"]["other"] == "a-again":
            assert ms["a"]["hr@10_vs_best_other"] == {"other": "a-again", "diff": 0.0,
                                                      "ci": [0.0, 0.0]}
