"""Single-machine co-count engine on scipy.sparse, bounded in memory.

All pairs (no window): with X the (n_users, n_items) binary interaction matrix, the co-count
matrix is C = X^T X (P1 section 4.1.1: an edge where at least one user interacted with both
items). C is computed in blocks of item rows, C[lo:hi] = X^T[lo:hi] X, each block sized so its
number of (user, item, item) triples stays near ``GraphConfig.block_pairs``; a block holds full
rows, so per-node top-K is exact inside it, and only the kept edges are carried over. Memory
is therefore one block plus the output graph, whatever the heaviest user does.

Window: each interaction is paired with the next ones of the same user (vectorised shifts
over the history) while they stay within N positions or N days; pairs are de-duplicated per
user so a co-count is a count of users, and users are processed in chunks of about
``block_pairs`` candidate pairs.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from hgrec.config import GraphConfig
from hgrec.graph.edges import (
    EngineResult,
    block_bounds,
    index_dtype,
    prune_top_k,
    top_k_mask,
    unique_edges,
)
from hgrec.graph.inputs import SECONDS_PER_DAY, GraphInput


def interaction_matrix(inp: GraphInput) -> sp.csr_matrix:
    """(n_users, n_items) int32 binary CSR: a repeated (user, item) counts once."""
    indptr = np.concatenate([[0], np.cumsum(np.bincount(inp.user, minlength=inp.n_users))])
    x = sp.csr_matrix(
        (np.ones(inp.n_interactions, dtype=np.int32), inp.item, indptr.astype(np.int64)),
        shape=(inp.n_users, inp.n_items),
    )
    x.sum_duplicates()
    x.data[:] = 1
    return x


def cocount_all_pairs(inp: GraphInput, cfg: GraphConfig, progress: bool = True) -> EngineResult:
    """Co-counts of every item pair with a common user, by blocks of rows of X^T X."""
    x = interaction_matrix(inp)
    xt = x.T.tocsr()  # (n_items, n_users)
    user_degree = np.diff(x.indptr).astype(np.int64)
    # Triples (user, i, j) produced by row i of X^T X: an upper bound on the row's entries.
    row_cost = xt @ user_degree  # (n_items,) int64
    bounds = block_bounds(row_cost, cfg.block_pairs)
    item_type = inp.item_type.astype(np.int64)
    idx = index_dtype(inp.n_items)
    parts: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
    stats = {"distinct_pairs": 0, "cooccurrences": 0, "kept_by_min_users": 0}
    blocks = zip(bounds[:-1].tolist(), bounds[1:].tolist())
    for lo, hi in tqdm(blocks, total=len(bounds) - 1, desc="graph blocks", disable=not progress):
        block = xt[lo:hi] @ x  # (hi - lo, n_items) co-counts of items lo..hi-1
        block.sort_indices()  # blocks in row order + sorted rows = edges sorted by (src, dst)
        rows = np.repeat(np.arange(lo, hi, dtype=idx), np.diff(block.indptr))
        cols = block.indices.astype(idx, copy=False)
        counts = block.data
        del block
        upper = cols > rows
        stats["distinct_pairs"] += int(upper.sum())
        stats["cooccurrences"] += int(counts[upper].sum(dtype=np.int64))
        keep = (counts >= cfg.min_users) & (cols != rows)
        stats["kept_by_min_users"] += int((keep & upper).sum())
        if cfg.top_k is None:
            keep &= upper
        else:
            rows, cols, counts = rows[keep], cols[keep], counts[keep]
            keep = top_k_mask(rows, cols, counts, item_type[cols], cfg.top_k)
        for part, values in zip(parts, (rows, cols, counts)):
            part.append(values[keep])
        del rows, cols, counts, keep, upper
    src, dst, count = _concat(parts)
    if cfg.top_k is not None:
        # An edge in the top K of both endpoints arrives twice, once from each row.
        src, dst, count = unique_edges(src, dst, count, inp.n_items)
    return _result(src, dst, count, stats)


def window_pairs(
    user: np.ndarray, item: np.ndarray, dist: np.ndarray, limit: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of interactions of the same user at most ``limit`` apart in ``dist``.

    Args:
        user, item: (m,) int64, sorted by user, then by ``dist`` within a user.
        dist: (m,) float64 rank (positions) or order (seconds), non-decreasing within a user.
    Returns:
        (user, a, b): (p,) int64 each, with a < b item indices, unique per user (a user who
        meets the same pair twice counts once); self pairs are left out.
    """
    m = len(user)
    heads: list[np.ndarray] = []
    tails: list[np.ndarray] = []
    active = np.arange(m, dtype=np.int64)
    shift = 1
    # dist is non-decreasing within a user, so once k + s leaves the window (or the user),
    # every larger shift does too: the active set only shrinks.
    while len(active):
        active = active[active + shift < m]
        nxt = active + shift
        ok = (user[nxt] == user[active]) & (dist[nxt] - dist[active] <= limit)
        active, nxt = active[ok], nxt[ok]
        heads.append(active)
        tails.append(nxt)
        shift += 1
    h, t = np.concatenate(heads), np.concatenate(tails)
    a, b = np.minimum(item[h], item[t]), np.maximum(item[h], item[t])
    u = user[h]
    differ = a != b
    u, a, b = u[differ], a[differ], b[differ]
    order = np.lexsort((b, a, u))
    u, a, b = u[order], a[order], b[order]
    first = np.ones(len(u), dtype=bool)
    first[1:] = (u[1:] != u[:-1]) | (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    return u[first], a[first], b[first]


def cocount_window(inp: GraphInput, cfg: GraphConfig, progress: bool = True) -> EngineResult:
    """Co-counts of item pairs within ``cfg.window`` positions or days, in chunks of users."""
    assert cfg.window is not None
    n = inp.n_interactions
    if cfg.window_unit == "positions":
        dist, limit = inp.rank.astype(np.float64), float(cfg.window)
    else:
        dist, limit = inp.order, float(cfg.window) * SECONDS_PER_DAY
    starts = np.flatnonzero(inp.rank == 0)
    run_bounds = np.append(starts, n).astype(np.int64)
    length = np.diff(run_bounds)
    all_pairs = length * (length - 1) // 2
    if cfg.window_unit == "positions":
        w = cfg.window
        cost = np.where(length <= w, all_pairs, w * length - w * (w + 1) // 2)
    else:
        cost = all_pairs  # unknown before looking at the times: the all-pairs bound
    chunk = run_bounds[block_bounds(np.maximum(cost, 1), cfg.block_pairs)]
    total = sp.csr_matrix((inp.n_items, inp.n_items), dtype=np.int32)
    spans = zip(chunk[:-1].tolist(), chunk[1:].tolist())
    for lo, hi in tqdm(spans, total=len(chunk) - 1, desc="graph chunks", disable=not progress):
        _, a, b = window_pairs(inp.user[lo:hi], inp.item[lo:hi], dist[lo:hi], limit)
        ones = np.ones(len(a), dtype=np.int32)
        total = total + sp.csr_matrix((ones, (a, b)), shape=total.shape)
    upper = total.tocoo()
    src, dst, count = upper.row.astype(np.int64), upper.col.astype(np.int64), upper.data
    stats = {
        "distinct_pairs": len(src),
        "cooccurrences": int(count.sum(dtype=np.int64)),
    }
    keep = count >= cfg.min_users
    src, dst, count = src[keep], dst[keep], count[keep]
    stats["kept_by_min_users"] = len(src)
    if cfg.top_k is not None:
        keep = prune_top_k(src, dst, count, inp.item_type.astype(np.int64), cfg.top_k)
        src, dst, count = src[keep], dst[keep], count[keep]
    src, dst, count = unique_edges(src, dst, count, inp.n_items)
    return _result(src, dst, count, stats)


def cocount_scipy(inp: GraphInput, cfg: GraphConfig, progress: bool = True) -> EngineResult:
    """The scipy engine: all pairs, or pairs within a window when ``cfg.window`` is set."""
    if cfg.window is None:
        return cocount_all_pairs(inp, cfg, progress)
    return cocount_window(inp, cfg, progress)


def _concat(
    parts: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Concatenate the blocks' rows, cols and counts one column at a time, emptying each list
    as soon as it is joined so the peak holds one column twice, not all three."""
    if not parts[0]:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.int32)
    out = []
    for part in parts:
        out.append(np.concatenate(part))
        part.clear()
    return out[0], out[1], out[2]


def _result(
    src: np.ndarray, dst: np.ndarray, count: np.ndarray, stats: dict[str, int]
) -> EngineResult:
    kept = stats.pop("kept_by_min_users")
    stats["dropped_by_min_users"] = stats["distinct_pairs"] - kept
    stats["dropped_by_top_k"] = kept - len(src)
    return EngineResult(src=src, dst=dst, count=count.astype(np.int32, copy=False), stats=stats)
