"""Retrieval metrics over top-k lists (P1 Appendix A; spec digest §6.1), one-shot and streaming.

Inputs shared by every function:

* ``topk``: (n, K) int64 item indices, best first; ``-1`` is padding (a row with fewer than K
  allowed candidates) and never counts as a hit. Ids must be unique within a row.
* ``relevant``: n rows of relevant item indices, as :class:`~hgrec.data.histories.Histories`
  or a CSR matrix (n, n_items) whose stored non-zeros are the relevant items. Repeated items
  in a row count once.

Definitions (rank r is 1-based; rel_u is user u's set of relevant items):

* HR@k = mean_u 1[top-k of u holds any item of rel_u]                       (P1 App. A)
* MRR@k = mean_u 1 / r_u, r_u = rank of the first relevant item if r_u <= k, else 0
* Recall@k = mean_u |rel_u in top-k| / |rel_u|
* NDCG@k = mean_u DCG_u / IDCG_u with binary gains, DCG = sum_{r <= k, hit} 1 / log2(r + 1),
  IDCG = sum_{r <= min(|rel_u|, k)} 1 / log2(r + 1)
* Coverage@k = |union_u top-k of u| / catalogue size                        (P1 App. A)

Means run over users with at least one relevant item; users without one are counted
(``RetrievalMetrics.n_skipped``), never averaged in as zeros. Undefined means are NaN.

Popularity tiers: the candidate catalogue is sorted by training popularity (descending, ties by
item index) and cut into ``n_tiers`` groups of equal size (the first ``m % n_tiers`` tiers hold
one extra item); tier 1 is the most popular, tiers 3-5 are the long tail (P1 §5.2.2). Per tier,
HR@k and MRR@k are means over (user, relevant item) pairs whose item is in the tier: the pair
hits when that item is in the top k, and its reciprocal rank is 1 / rank of that item when
within the top k (else 0).

The streaming :class:`RetrievalMetrics` follows PyG's ``metrics/link_pred.py``: ``update`` per
batch of users, ``compute`` at the end, equal to the one-shot functions on the whole batch.

Bootstrap intervals (:func:`bootstrap_means`, :func:`bootstrap_ci`): HR@k and MRR@k are means
of per-user values, so their spread is estimated by resampling the averaged users with
replacement, ``BOOTSTRAP_RESAMPLES`` = 1000 times, from ``np.random.default_rng(BOOTSTRAP_SEED)``
(seed 0): the same users give the same interval on every run, and two vectors over the same
users are resampled with the same indices (a paired comparison is the bootstrap of their
difference). The interval is the 2.5th and 97.5th percentile of the resampled means.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from hgrec.data.histories import Histories

Relevant = Histories | sp.spmatrix | sp.sparray


# ---------------------------------------------------------------------------------- inputs
def sorted_unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values of a 1-d integer array.

    Sort + neighbour comparison: several times faster than ``np.unique`` on int64 keys with
    numpy 2.x (benchmarks/evaluation_metrics.py).
    """
    s = np.sort(values)
    return s[np.concatenate([[True], s[1:] != s[:-1]])] if len(s) else s


def relevant_rows(relevant: Relevant) -> tuple[np.ndarray, np.ndarray]:
    """(indptr (n + 1,), items (nnz,)) int64 of ``relevant``, each row's items unique and sorted.

    Raises:
        TypeError: ``relevant`` is neither Histories nor a sparse matrix.
    """
    if isinstance(relevant, Histories):
        indptr, items = relevant.indptr.astype(np.int64), relevant.items.astype(np.int64)
    elif sp.issparse(relevant):
        m = sp.csr_matrix(relevant, copy=True)
        m.eliminate_zeros()  # an explicit zero is not relevant
        indptr, items = m.indptr.astype(np.int64), m.indices.astype(np.int64)
    else:
        raise TypeError(
            f"relevant must be Histories or a scipy sparse matrix, got {type(relevant)}"
        )
    n = len(indptr) - 1
    if len(items) and items.min() < 0:
        raise ValueError(f"relevant holds negative item indices (min {int(items.min())})")
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
    base = int(items.max(initial=-1)) + 1
    # One key per (row, item): sorting the keys orders each row by item and exposes repeats.
    keys = sorted_unique(rows * base + items)
    rows, items = keys // max(base, 1), keys % max(base, 1)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n))]).astype(np.int64)
    return indptr, items


def check_topk(topk: np.ndarray) -> np.ndarray:
    """Validate and return ``topk`` as a 2-d int64 array.

    Raises:
        ValueError: not 2-d, ids below -1, or an id repeated within a row.
    """
    topk = np.asarray(topk)
    if topk.ndim != 2:
        raise ValueError(f"topk must be (n, K), got shape {topk.shape}")
    if not np.issubdtype(topk.dtype, np.integer):
        raise ValueError(f"topk must hold integer item indices, got dtype {topk.dtype}")
    topk = topk.astype(np.int64, copy=False)
    if topk.size and topk.min() < -1:
        raise ValueError(f"topk holds ids below -1 (min {int(topk.min())}); -1 is the only padding")
    srt = np.sort(topk, axis=1)
    dup = (srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] >= 0)
    if dup.any():
        rows = np.flatnonzero(dup.any(axis=1))
        raise ValueError(
            f"topk repeats an item within a row ({len(rows)} rows; first: row {int(rows[0])}); "
            "expected unique ids per row"
        )
    return topk


# ---------------------------------------------------------------------------------- core
_MASK_BYTES = 1 << 24  # bitmap budget of _hits: 16 MB, whatever the catalogue size


def _hits(topk: np.ndarray, indptr: np.ndarray, items: np.ndarray) -> np.ndarray:
    """(n, K) bool hit cells, for ``topk`` checked and rows from :func:`relevant_rows`.

    A (rows, base) bitmap of the relevant (row, item) pairs is filled, gathered at the topk
    cells and cleared again, a block of rows at a time so it stays within ``_MASK_BYTES``
    (about 3x faster than a binary search of every cell; benchmarks/evaluation_metrics.py).
    """
    n, k = topk.shape
    if len(indptr) - 1 != n:
        raise ValueError(f"relevant has {len(indptr) - 1} rows, topk has {n}")
    base = max(int(max(topk.max(initial=-1), items.max(initial=-1))) + 1, 1)
    step = max(1, _MASK_BYTES // base)
    mask = np.zeros(min(step, max(n, 1)) * base, dtype=bool)
    out = np.zeros((n, k), dtype=bool)
    for s in range(0, n, step):  # loop over row blocks; one block unless the catalogue is huge
        e = min(s + step, n)
        offset = np.arange(e - s, dtype=np.int64) * base  # (b,)
        rel_keys = np.repeat(offset, np.diff(indptr[s : e + 1])) + items[indptr[s] : indptr[e]]
        mask[rel_keys] = True
        t = topk[s:e]  # (b, K)
        valid = t >= 0  # padding never hits
        out[s:e] = mask[np.where(valid, offset[:, None] + t, 0)] & valid
        mask[rel_keys] = False
    return out


def hit_matrix(topk: np.ndarray, relevant: Relevant) -> tuple[np.ndarray, np.ndarray]:
    """Which top-k cells are relevant.

    Returns:
        hits (n, K) bool, True where ``topk[u, j]`` is relevant to u; and n_rel (n,) int64, the
        number of distinct relevant items of each user.
    """
    topk = check_topk(topk)
    indptr, items = relevant_rows(relevant)
    return _hits(topk, indptr, items), np.diff(indptr)


def hits_at(hits: np.ndarray, k: int) -> np.ndarray:
    """(n,) float64: 1 where any of the first k cells hits (HR@k per user)."""
    return hits[:, :k].any(axis=1).astype(np.float64)


def reciprocal_rank_at(hits: np.ndarray, k: int) -> np.ndarray:
    """(n,) float64: 1 / rank of the first hit within the first k cells, else 0 (MRR@k per user)."""
    h = hits[:, :k]
    first = h.argmax(axis=1)
    return np.where(h.any(axis=1), 1.0 / (first + 1.0), 0.0)


def recall_at(hits: np.ndarray, n_rel: np.ndarray, k: int) -> np.ndarray:
    """(n,) float64: |relevant in top k| / |relevant| (0 where |relevant| = 0)."""
    found = hits[:, :k].sum(axis=1)
    return np.divide(found, n_rel, out=np.zeros(len(n_rel)), where=n_rel > 0)


def ndcg_at(hits: np.ndarray, n_rel: np.ndarray, k: int) -> np.ndarray:
    """(n,) float64 binary-gain NDCG@k; the ideal DCG places min(|relevant|, k) hits first."""
    h = hits[:, :k]
    discount = 1.0 / np.log2(np.arange(2, h.shape[1] + 2, dtype=np.float64))  # (K',)
    dcg = h @ discount if h.shape[1] else np.zeros(h.shape[0])
    # ideal[j] = DCG of j hits at the top, for j = 0..k.
    ideal = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64)))])
    idcg = ideal[np.minimum(n_rel, k)]
    return np.divide(dcg, idcg, out=np.zeros(len(n_rel)), where=idcg > 0)


def _masked_mean(values: np.ndarray, n_rel: np.ndarray) -> float:
    valid = n_rel > 0
    return float(values[valid].mean()) if valid.any() else float("nan")


def hit_rate(topk: np.ndarray, relevant: Relevant, k: int = 10) -> float:
    """HR@k over users with at least one relevant item (NaN if none)."""
    hits, n_rel = hit_matrix(topk, relevant)
    return _masked_mean(hits_at(hits, k), n_rel)


def mrr(topk: np.ndarray, relevant: Relevant, k: int = 100) -> float:
    """MRR@k over users with at least one relevant item (NaN if none)."""
    hits, n_rel = hit_matrix(topk, relevant)
    return _masked_mean(reciprocal_rank_at(hits, k), n_rel)


def recall(topk: np.ndarray, relevant: Relevant, k: int = 10) -> float:
    """Recall@k over users with at least one relevant item (NaN if none)."""
    hits, n_rel = hit_matrix(topk, relevant)
    return _masked_mean(recall_at(hits, n_rel, k), n_rel)


def ndcg(topk: np.ndarray, relevant: Relevant, k: int = 10) -> float:
    """NDCG@k over users with at least one relevant item (NaN if none)."""
    hits, n_rel = hit_matrix(topk, relevant)
    return _masked_mean(ndcg_at(hits, n_rel, k), n_rel)


def coverage(topk: np.ndarray, catalog_size: int, k: int = 100) -> float:
    """Coverage@k: distinct ids in the first k columns of ``topk`` / ``catalog_size``."""
    if catalog_size <= 0:
        raise ValueError(f"catalog_size must be positive, got {catalog_size}")
    top = check_topk(topk)[:, :k]
    return len(sorted_unique(top[top >= 0])) / catalog_size


# ---------------------------------------------------------------------------------- bootstrap
BOOTSTRAP_RESAMPLES = 1000  # B: resamples of the users
BOOTSTRAP_SEED = 0  # fixed: identical reruns give identical intervals
CI_LEVEL = 0.95  # two-sided percentile interval
_BOOT_CELLS = 1 << 22  # (resamples x users) index cells drawn at once: 32 MB of int64


def bootstrap_means(
    values: np.ndarray, n_resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> np.ndarray:
    """Means of ``values`` over ``n_resamples`` resamples of its users with replacement.

    Args:
        values: (n,) or (m, n) float per-user values (the last axis is the users).
        n_resamples: B.
        seed: seed of ``np.random.default_rng``; the resample indices depend only on
            (seed, n, B), so every vector over the same n users sees the same resamples.

    Returns:
        (B,) or (m, B) float64 resampled means; NaN when n = 0.
    """
    values = np.asarray(values, dtype=np.float64)
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    n = values.shape[-1]
    out = np.full((*values.shape[:-1], n_resamples), np.nan)
    if n == 0:
        return out
    rng = np.random.default_rng(seed)
    step = max(1, _BOOT_CELLS // n)  # depends on n only, so the draws do too
    for s in range(0, n_resamples, step):  # one block unless n_users * B > _BOOT_CELLS
        e = min(s + step, n_resamples)
        idx = rng.integers(0, n, size=(e - s, n))  # (b, n) resampled user indices
        out[..., s:e] = values[..., idx].mean(axis=-1)
    return out


def bootstrap_ci(
    values: np.ndarray,
    level: float = CI_LEVEL,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of (n,) per-user ``values``.

    Returns:
        (lo, hi): the (1 - level) / 2 and (1 + level) / 2 quantiles of
        :func:`bootstrap_means`; (NaN, NaN) when there is no user.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    means = bootstrap_means(np.asarray(values).reshape(-1), n_resamples, seed)
    if np.isnan(means).all():
        return float("nan"), float("nan")
    lo, hi = np.percentile(means, [50.0 * (1.0 - level), 50.0 * (1.0 + level)])
    return float(lo), float(hi)


# ---------------------------------------------------------------------------------- tiers
def popularity_tiers(items: np.ndarray, popularity: np.ndarray, n_tiers: int = 5) -> np.ndarray:
    """Tier of each item: equal-count groups by popularity, tier 1 = most popular.

    Args:
        items: (m,) int64 item indices (the target-type catalogue).
        popularity: (n_items,) training interaction counts (``Dataset.item_popularity()``).
        n_tiers: number of tiers.

    Returns:
        (m,) int64 tiers in 1..n_tiers aligned with ``items``; tier sizes differ by at most one
        (the first ``m % n_tiers`` tiers hold the extra items). Equal popularity is broken by
        item index so the assignment is deterministic.
    """
    items = np.asarray(items, dtype=np.int64)
    popularity = np.asarray(popularity)
    if n_tiers < 1:
        raise ValueError(f"n_tiers must be >= 1, got {n_tiers}")
    if len(items) and (items.min() < 0 or items.max() >= len(popularity)):
        raise ValueError(
            f"items index outside popularity (length {len(popularity)}): "
            f"min {int(items.min())}, max {int(items.max())}"
        )
    # lexsort: last key is primary -> popularity descending, then item index ascending.
    order = np.lexsort((items, -popularity[items].astype(np.float64)))
    m = len(items)
    sizes = np.full(n_tiers, m // n_tiers, dtype=np.int64)
    sizes[: m % n_tiers] += 1
    tiers = np.empty(m, dtype=np.int64)
    tiers[order] = np.repeat(np.arange(1, n_tiers + 1, dtype=np.int64), sizes)
    return tiers


def tier_lookup(
    items: np.ndarray, popularity: np.ndarray, n_tiers: int = 5, n_items: int | None = None
) -> np.ndarray:
    """(n_items,) int64 tier of every catalogue item; 0 for items outside ``items``."""
    n_items = len(popularity) if n_items is None else n_items
    tier_of = np.zeros(n_items, dtype=np.int64)
    tier_of[np.asarray(items, dtype=np.int64)] = popularity_tiers(items, popularity, n_tiers)
    return tier_of


def _tier_sums(
    topk: np.ndarray, hits: np.ndarray, rel_items: np.ndarray, tier_of: np.ndarray,
    n_tiers: int, hr_k: int, mrr_k: int,
) -> np.ndarray:
    """(3, n_tiers) per-tier sums: (user, relevant item) pairs, hits@hr_k, reciprocal ranks@mrr_k.

    Each hit cell is exactly one found pair (ids are unique per row on both sides), so the
    found pairs' ranks are the hit cells' columns + 1; pairs never found add 0.
    """
    if len(rel_items) and rel_items.max() >= len(tier_of):
        raise ValueError(
            f"relevant item {int(rel_items.max())} outside tier_of (length {len(tier_of)})"
        )
    pair_tier = tier_of[rel_items]
    if (pair_tier == 0).any():
        bad = np.unique(rel_items[pair_tier == 0])
        raise ValueError(
            f"{int((pair_tier == 0).sum())} relevant items have no popularity tier (items "
            f"{bad[:5].tolist()}); expected every relevant item in the ranked catalogue"
        )
    rows, cols = np.nonzero(hits)  # (h,) each
    rank = cols + 1.0
    tier = tier_of[topk[rows, cols]]
    out = np.zeros((3, n_tiers + 1))
    out[0] = np.bincount(pair_tier, minlength=n_tiers + 1)
    out[1] = np.bincount(tier, weights=(rank <= hr_k).astype(np.float64), minlength=n_tiers + 1)
    rr = np.where(rank <= mrr_k, 1.0 / rank, 0.0)
    out[2] = np.bincount(tier, weights=rr, minlength=n_tiers + 1)
    return out[:, 1:]


def _tier_rows(
    tier_of: np.ndarray, n_tiers: int, pairs: np.ndarray, hits: np.ndarray, rrs: np.ndarray,
    hr_k: int, mrr_k: int,
) -> list[dict[str, float | int]]:
    items = np.bincount(tier_of, minlength=n_tiers + 1)[1 : n_tiers + 1]
    out: list[dict[str, float | int]] = []
    for t in range(n_tiers):  # loop over tiers (a handful), not over items
        p = int(pairs[t])
        out.append({
            "tier": t + 1,
            "items": int(items[t]),
            "pairs": p,
            f"hr@{hr_k}": float(hits[t] / p) if p else float("nan"),
            f"mrr@{mrr_k}": float(rrs[t] / p) if p else float("nan"),
        })
    return out


def tier_metrics(
    topk: np.ndarray,
    relevant: Relevant,
    tier_of: np.ndarray,
    n_tiers: int = 5,
    hr_k: int = 10,
    mrr_k: int = 100,
) -> list[dict[str, float | int]]:
    """HR@hr_k and MRR@mrr_k per popularity tier over (user, relevant item) pairs.

    Args:
        topk: (n, K) int64.
        relevant: n rows.
        tier_of: (n_items,) int64 tier of each item (1..n_tiers; 0 = not ranked), from
            :func:`tier_lookup`.

    Returns:
        One dict per tier: {"tier", "items", "pairs", "hr@{hr_k}", "mrr@{mrr_k}"} (NaN where a
        tier has no pair).
    """
    topk = check_topk(topk)
    indptr, items = relevant_rows(relevant)
    sums = _tier_sums(topk, _hits(topk, indptr, items), items, tier_of, n_tiers, hr_k, mrr_k)
    return _tier_rows(tier_of, n_tiers, sums[0].astype(np.int64), sums[1], sums[2], hr_k, mrr_k)


# ---------------------------------------------------------------------------------- streaming
class RetrievalMetrics:
    """Streaming accumulator of every metric above: ``update`` per batch, ``compute`` once.

    Args:
        hr_k: k of HR, Recall and NDCG.
        mrr_k: k of MRR and Coverage.
        catalog_size: size of the ranked catalogue (denominator of Coverage).
        tier_of: (n_items,) int64 tiers from :func:`tier_lookup`, or None (no tier metrics).
        n_tiers: number of tiers in ``tier_of``.
        keep_per_user: keep the per-user HR@hr_k and reciprocal ranks@mrr_k (2 floats per
            averaged user) for :meth:`per_user`, and add their bootstrap intervals
            (:func:`bootstrap_ci`) to :meth:`compute` as "hr@k_ci" and "mrr@k_ci".

    Example:
        >>> acc = RetrievalMetrics(hr_k=10, mrr_k=100, catalog_size=len(candidates))
        >>> for topk, rel in batches:
        ...     acc.update(topk, rel)
        >>> acc.compute()["hr@10"]
    """

    def __init__(
        self,
        hr_k: int = 10,
        mrr_k: int = 100,
        catalog_size: int = 1,
        tier_of: np.ndarray | None = None,
        n_tiers: int = 5,
        keep_per_user: bool = False,
    ) -> None:
        if hr_k < 1 or mrr_k < 1:
            raise ValueError(f"hr_k and mrr_k must be >= 1, got {hr_k}, {mrr_k}")
        if catalog_size < 1:
            raise ValueError(f"catalog_size must be >= 1, got {catalog_size}")
        self.hr_k, self.mrr_k, self.catalog_size = hr_k, mrr_k, catalog_size
        self.tier_of = None if tier_of is None else np.asarray(tier_of, dtype=np.int64)
        self.n_tiers = n_tiers
        self.keep_per_user = keep_per_user
        self.reset()

    def reset(self) -> None:
        self.n_users = 0  # users with >= 1 relevant item (averaged over)
        self.n_skipped = 0  # users without a relevant item (counted, not averaged)
        self._sums = np.zeros(4)  # hr, rr, recall, ndcg
        self._seen = np.zeros(0, dtype=bool)  # (max id + 1,) ids seen in any top mrr_k
        self._tier = np.zeros((3, self.n_tiers))  # pairs, hits, rr sums
        self._per_user: list[np.ndarray] = []  # (2, b) hr, rr of each batch's averaged users

    def update(self, topk: np.ndarray, relevant: Relevant) -> None:
        """Add a batch: ``topk`` (b, K) int64 and ``relevant`` with b rows."""
        topk = check_topk(topk)
        indptr, items = relevant_rows(relevant)
        hits, n_rel = _hits(topk, indptr, items), np.diff(indptr)
        valid = n_rel > 0
        per_user = np.stack([
            hits_at(hits, self.hr_k),
            reciprocal_rank_at(hits, self.mrr_k),
            recall_at(hits, n_rel, self.hr_k),
            ndcg_at(hits, n_rel, self.hr_k),
        ])  # (4, b)
        self._sums += per_user[:, valid].sum(axis=1)
        if self.keep_per_user:
            self._per_user.append(per_user[:2, valid])
        self.n_users += int(valid.sum())
        self.n_skipped += int((~valid).sum())
        top = topk[:, : self.mrr_k]
        top = top[top >= 0]
        if len(top) and top.max() >= len(self._seen):  # grow the mask to the largest id
            grown = np.zeros(max(int(top.max()) + 1, 2 * len(self._seen)), dtype=bool)
            grown[: len(self._seen)] = self._seen
            self._seen = grown
        self._seen[top] = True
        if self.tier_of is not None:
            self._tier += _tier_sums(
                topk, hits, items, self.tier_of, self.n_tiers, self.hr_k, self.mrr_k
            )

    def per_user(self) -> dict[str, np.ndarray]:
        """{"hr": (n_users,), "rr": (n_users,)} float64 per-user HR@hr_k and reciprocal
        rank@mrr_k of the averaged users, in update order (needs ``keep_per_user``)."""
        if not self.keep_per_user:
            raise RuntimeError("per_user() needs RetrievalMetrics(keep_per_user=True)")
        both = np.concatenate([np.zeros((2, 0)), *self._per_user], axis=1)  # (2, n_users)
        return {"hr": both[0], "rr": both[1]}

    def compute(self) -> dict[str, object]:
        """{"hr@k", "mrr@k", "recall@k", "ndcg@k", "coverage@k"[, "hr@k_ci", "mrr@k_ci"]
        [, "tiers"]}; NaN if no user. The "_ci" entries ([lo, hi], with ``keep_per_user``)
        are 95% percentile bootstrap intervals over users (:func:`bootstrap_ci`)."""
        mean = self._sums / self.n_users if self.n_users else np.full(4, np.nan)
        out: dict[str, object] = {
            f"hr@{self.hr_k}": float(mean[0]),
            f"mrr@{self.mrr_k}": float(mean[1]),
            f"recall@{self.hr_k}": float(mean[2]),
            f"ndcg@{self.hr_k}": float(mean[3]),
            f"coverage@{self.mrr_k}": int(self._seen.sum()) / self.catalog_size,
        }
        if self.keep_per_user:
            per_user = self.per_user()
            out[f"hr@{self.hr_k}_ci"] = list(bootstrap_ci(per_user["hr"]))
            out[f"mrr@{self.mrr_k}_ci"] = list(bootstrap_ci(per_user["rr"]))
        if self.tier_of is not None:
            pairs, hits, rrs = self._tier
            out["tiers"] = _tier_rows(
                self.tier_of, self.n_tiers, pairs.astype(np.int64), hits, rrs, self.hr_k, self.mrr_k
            )
        return out

    def __repr__(self) -> str:
        return (
            f"RetrievalMetrics(hr_k={self.hr_k}, mrr_k={self.mrr_k}, "
            f"catalog_size={self.catalog_size}, n_users={self.n_users})"
        )
