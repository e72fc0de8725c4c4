"""Metrics against hand-computed cases, a brute-force reference, and batched == one-shot."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from hgrec.data.histories import Histories
from hgrec.evaluation import metrics as metrics_module
from hgrec.evaluation.metrics import (
    RetrievalMetrics,
    check_topk,
    coverage,
    hit_matrix,
    hit_rate,
    mrr,
    ndcg,
    popularity_tiers,
    recall,
    tier_lookup,
    tier_metrics,
)


def _dcg(ranks: list[int]) -> float:
    return sum(1.0 / math.log2(r + 1) for r in ranks)


# ------------------------------------------------------------------ hand-computed cases
@pytest.mark.parametrize(
    "rank, hr, rr",
    [(1, 1.0, 1.0), (10, 1.0, 0.1), (11, 0.0, 1 / 11), (100, 0.0, 0.01), (None, 0.0, 0.0)],
)
def test_single_relevant_item_at_rank(rank: int | None, hr: float, rr: float) -> None:
    topk = np.arange(1000, 1120, dtype=np.int64)[None, :]  # 120 columns: 101+ is past MRR@100
    rel_item = 5 if rank is None else 1000 + rank - 1
    rel = Histories.from_lists([[rel_item]])
    assert hit_rate(topk, rel, 10) == pytest.approx(hr)
    assert mrr(topk, rel, 100) == pytest.approx(rr)
    assert recall(topk, rel, 10) == pytest.approx(hr)
    expected_ndcg = 1.0 / math.log2(rank + 1) if rank is not None and rank <= 10 else 0.0
    assert ndcg(topk, rel, 10) == pytest.approx(expected_ndcg)


def test_rank_beyond_mrr_cutoff_counts_zero() -> None:
    topk = np.arange(200, dtype=np.int64)[None, :]
    assert mrr(topk, Histories.from_lists([[100]]), 100) == 0.0  # rank 101
    assert mrr(topk, Histories.from_lists([[99]]), 100) == pytest.approx(0.01)  # rank 100


def test_several_relevant_items() -> None:
    topk = np.array([[5, 3, 9, 1, 7, 8, 20, 21, 22, 23, 24]])
    rel = Histories.from_lists([[3, 1, 42]])  # hits at ranks 2 and 4; 42 never recommended
    assert hit_rate(topk, rel, 10) == 1.0
    assert mrr(topk, rel, 100) == pytest.approx(0.5)  # first relevant at rank 2
    assert recall(topk, rel, 10) == pytest.approx(2 / 3)
    assert ndcg(topk, rel, 10) == pytest.approx(_dcg([2, 4]) / _dcg([1, 2, 3]))
    assert hit_rate(topk, rel, 1) == 0.0


def test_repeated_relevant_items_count_once() -> None:
    topk = np.array([[3, 4, 5]])
    once = Histories.from_lists([[3, 9]])
    twice = Histories.from_lists([[3, 3, 9, 9]])
    assert recall(topk, twice, 3) == recall(topk, once, 3) == pytest.approx(0.5)
    assert ndcg(topk, twice, 3) == pytest.approx(ndcg(topk, once, 3))


@pytest.mark.parametrize("found", [10, 5, 0])
def test_ndcg_ideal_caps_at_k_when_more_relevant_than_k(found: int) -> None:
    rel_items = list(range(100, 115))  # 15 relevant > k = 10
    topk = np.array([rel_items[:found] + list(range(found, 10))])
    rel = Histories.from_lists([rel_items])
    expected = _dcg(list(range(1, found + 1))) / _dcg(list(range(1, 11)))
    assert ndcg(topk, rel, 10) == pytest.approx(expected)
    assert recall(topk, rel, 10) == pytest.approx(found / 15)


def test_padding_never_hits_and_never_aliases() -> None:
    # Row 1's padding key (1 * base - 1) equals row 0's key for item base - 1 = 5.
    topk = np.array([[0, 1], [2, -1]])
    rel = Histories.from_lists([[5], [2]])
    assert hit_rate(topk, rel, 2) == pytest.approx(0.5)
    assert hit_matrix(topk, rel)[0].tolist() == [[False, False], [True, False]]
    tiers = tier_metrics(topk, rel, tier_of=np.ones(6, dtype=np.int64), n_tiers=1, hr_k=2, mrr_k=2)
    assert tiers[0]["pairs"] == 2 and tiers[0]["hr@2"] == pytest.approx(0.5)
    assert coverage(topk, catalog_size=10, k=2) == pytest.approx(0.3)


@pytest.mark.parametrize("rows, expected", [([[], []], float("nan")), ([[0], []], 0.0)])
def test_all_padding(rows: list[list[int]], expected: float) -> None:
    topk = np.full((2, 3), -1)
    assert hit_rate(topk, Histories.from_lists(rows), 3) == pytest.approx(expected, nan_ok=True)
    assert coverage(topk, catalog_size=4, k=3) == 0.0


def test_users_without_relevant_are_not_averaged() -> None:
    topk = np.array([[1, 2], [1, 2]])
    rel = Histories.from_lists([[1], []])
    assert hit_rate(topk, rel, 2) == 1.0
    acc = RetrievalMetrics(hr_k=2, mrr_k=2, catalog_size=2)
    acc.update(topk, rel)
    assert (acc.n_users, acc.n_skipped) == (1, 1)
    assert math.isnan(hit_rate(topk, Histories.from_lists([[], []]), 2))


@pytest.mark.parametrize("k, expected", [(1, 2 / 10), (2, 3 / 10), (5, 3 / 10)])
def test_coverage(k: int, expected: float) -> None:
    topk = np.array([[1, 2, -1], [2, 3, -1]])
    assert coverage(topk, catalog_size=10, k=k) == pytest.approx(expected)


def test_csr_relevant_equals_histories() -> None:
    rows = [[3, 1], [7], []]
    h = Histories.from_lists(rows)
    m = h.to_csr(10)
    topk = np.array([[1, 2, 3], [4, 5, 7], [1, 2, 3]])
    for fn, k in ((hit_rate, 2), (mrr, 3), (recall, 2), (ndcg, 3)):
        assert fn(topk, m, k) == pytest.approx(fn(topk, h, k))
    m_zero = sp.csr_matrix(m)
    m_zero.data[:] = 0.0  # stored zeros are not relevant
    assert math.isnan(hit_rate(topk, m_zero, 2))


@pytest.mark.parametrize(
    "topk, match",
    [
        (np.array([1, 2]), "shape"),
        (np.array([[1, 1, 2]]), "repeats"),
        (np.array([[-2, 1]]), "below -1"),
    ],
)
def test_bad_topk_is_rejected(topk: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        check_topk(topk)


def test_row_count_mismatch_is_rejected() -> None:
    with pytest.raises(ValueError, match="rows"):
        hit_rate(np.array([[1, 2]]), Histories.from_lists([[1], [2]]), 1)


# ------------------------------------------------------------------ tiers
@pytest.mark.parametrize("m, n_tiers", [(5, 5), (7, 5), (23, 5), (100, 5), (3, 5), (10, 3)])
def test_tiers_partition_the_catalogue(m: int, n_tiers: int) -> None:
    rng = np.random.default_rng(m)
    n_items = m + 9
    items = np.sort(rng.choice(n_items, size=m, replace=False))
    popularity = rng.integers(0, 6, size=n_items)  # many ties on purpose
    tiers = popularity_tiers(items, popularity, n_tiers)
    sizes = np.bincount(tiers, minlength=n_tiers + 1)[1:]
    assert sizes.sum() == m and tiers.min() >= 1 and tiers.max() <= n_tiers
    assert sizes.max() - sizes.min() <= 1
    assert (np.diff(sizes) <= 0).all()  # the extra items go to the first tiers
    pop = popularity[items]
    for t in range(1, n_tiers):  # a more popular tier never holds a less popular item
        if sizes[t - 1] and sizes[t]:
            assert pop[tiers == t].min() >= pop[tiers == t + 1].max()


def test_tiers_hand_case() -> None:
    items = np.array([10, 11, 12, 13, 14, 15, 16])
    popularity = np.zeros(20, dtype=np.int64)
    popularity[items] = [5, 9, 0, 9, 3, 1, 2]
    # Sorted: 11(9), 13(9), 10(5), 14(3), 16(2), 15(1), 12(0); sizes 2,2,1,1,1.
    assert popularity_tiers(items, popularity, 5).tolist() == [2, 1, 5, 1, 2, 4, 3]
    lookup = tier_lookup(items, popularity, 5)
    assert lookup[:10].tolist() == [0] * 10 and lookup[11] == 1


def test_tier_metrics_hand_case() -> None:
    tier_of = np.array([0, 1, 1, 2, 2])  # items 1, 2 in tier 1; 3, 4 in tier 2
    topk = np.array([[1, 3, 4], [2, 4, -1]])
    rel = Histories.from_lists([[3, 2], [4]])  # pairs: (0,3) rank 2, (0,2) absent, (1,4) rank 2
    rows = tier_metrics(topk, rel, tier_of, n_tiers=2, hr_k=1, mrr_k=3)
    assert rows[0] == {"tier": 1, "items": 2, "pairs": 1, "hr@1": 0.0, "mrr@3": 0.0}
    assert rows[1] == {"tier": 2, "items": 2, "pairs": 2, "hr@1": 0.0, "mrr@3": 0.5}
    rows = tier_metrics(topk, rel, tier_of, n_tiers=2, hr_k=2, mrr_k=1)
    assert rows[1]["hr@2"] == 1.0 and rows[1]["mrr@1"] == 0.0


def test_tier_metrics_reject_untiered_relevant_item() -> None:
    with pytest.raises(ValueError, match="no popularity tier"):
        tier_metrics(np.array([[1]]), Histories.from_lists([[0]]), np.array([0, 1]), n_tiers=1)


# ------------------------------------------------------------------ reference + streaming
def _random_case(seed: int, n: int = 57, n_items: int = 40, width: int = 25):
    rng = np.random.default_rng(seed)
    topk = np.stack([rng.permutation(n_items)[:width] for _ in range(n)]).astype(np.int64)
    lengths = rng.integers(3, width + 1, size=n)
    topk[np.arange(width)[None, :] >= lengths[:, None]] = -1  # ragged padding
    rel = Histories.from_lists(
        [rng.choice(n_items, size=int(s), replace=False).tolist()
         for s in rng.integers(0, 13, size=n)]
    )
    tier_of = tier_lookup(np.arange(n_items), rng.integers(0, 50, size=n_items), 5)
    return topk, rel, tier_of


def _reference(topk: np.ndarray, rel: Histories, hr_k: int, mrr_k: int) -> dict[str, float]:
    """Plain-Python per-user definitions, independent of the vectorised code."""
    sums = {"hr": 0.0, "rr": 0.0, "recall": 0.0, "ndcg": 0.0}
    n = 0
    for u in range(topk.shape[0]):
        r = set(rel.row(u).tolist())
        if not r:
            continue
        n += 1
        row = [int(x) for x in topk[u]]
        ranks = [j + 1 for j, x in enumerate(row) if x in r]
        sums["hr"] += any(q <= hr_k for q in ranks)
        sums["rr"] += 1.0 / ranks[0] if ranks and ranks[0] <= mrr_k else 0.0
        sums["recall"] += sum(q <= hr_k for q in ranks) / len(r)
        ideal = _dcg(list(range(1, min(len(r), hr_k) + 1)))
        sums["ndcg"] += _dcg([q for q in ranks if q <= hr_k]) / ideal
    return {k: v / n for k, v in sums.items()}


@pytest.mark.parametrize("seed, mask_bytes", [(0, None), (1, 1), (2, 200)])
def test_vectorised_equals_reference(
    seed: int, mask_bytes: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if mask_bytes is not None:  # force the hit bitmap into blocks of 1 and 5 rows
        monkeypatch.setattr(metrics_module, "_MASK_BYTES", mask_bytes)
    topk, rel, _ = _random_case(seed)
    ref = _reference(topk, rel, hr_k=10, mrr_k=20)
    assert hit_rate(topk, rel, 10) == pytest.approx(ref["hr"])
    assert mrr(topk, rel, 20) == pytest.approx(ref["rr"])
    assert recall(topk, rel, 10) == pytest.approx(ref["recall"])
    assert ndcg(topk, rel, 10) == pytest.approx(ref["ndcg"])


@pytest.mark.parametrize("batch", [1, 7, 57])
def test_streaming_equals_one_shot(batch: int) -> None:
    topk, rel, tier_of = _random_case(seed=batch)
    n = topk.shape[0]
    acc = RetrievalMetrics(hr_k=10, mrr_k=20, catalog_size=40, tier_of=tier_of, n_tiers=5)
    for start in range(0, n, batch):
        rows = np.arange(start, min(start + batch, n))
        acc.update(topk[rows], rel.take(rows))
    out = acc.compute()
    assert out["hr@10"] == pytest.approx(hit_rate(topk, rel, 10))
    assert out["mrr@20"] == pytest.approx(mrr(topk, rel, 20))
    assert out["recall@10"] == pytest.approx(recall(topk, rel, 10))
    assert out["ndcg@10"] == pytest.approx(ndcg(topk, rel, 10))
    assert out["coverage@20"] == pytest.approx(coverage(topk, 40, 20))
    one_shot = tier_metrics(topk, rel, tier_of, 5, 10, 20)
    assert [t["pairs"] for t in out["tiers"]] == [t["pairs"] for t in one_shot]
    assert sum(t["pairs"] for t in one_shot) == len(np.unique(rel.row_ids() * 100 + rel.items))
    for a, b in zip(out["tiers"], one_shot, strict=True):
        assert a["hr@10"] == pytest.approx(b["hr@10"], nan_ok=True)
        assert a["mrr@20"] == pytest.approx(b["mrr@20"], nan_ok=True)
    acc.reset()
    assert acc.n_users == 0 and math.isnan(acc.compute()["hr@10"])
