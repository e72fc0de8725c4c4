"""Vectorised operations on edge lists shared by the graph engines: top-K pruning, the split
into relations, and the blocking that bounds memory.

Top-K rule (``GraphConfig.top_k``): for every node v and every relation r, rank v's
neighbours in r by co-count (descending), ties by the smaller neighbour index; an edge is kept
when it is in the top K of EITHER endpoint. Why this rule:

* per relation, not over all neighbours, so the abundant relations (kitchen-kitchen in the
  Amazon data, podcast-podcast in P1) cannot crowd out the sparse target type's edges; the
  HGNN pools and samples per relation anyway (P1 equations 2-3);
* either endpoint (union), not both (mutual), so every node keeps its K strongest links in
  each relation and pruning never isolates a tail item whose best partners are hubs; hubs
  keep the links that name them as a top partner, so hub degree stays bounded by the number
  of nodes that rank them in their top K;
* ties by index make the result deterministic and identical across engines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hgrec.graph.inputs import GraphInput
from hgrec.graph.types import CoGraph, RelationEdges, relation_name


@dataclass(frozen=True)
class EngineResult:
    """What an engine returns: the final undirected edges and the counts for the report.

    Attributes:
        src, dst: (E,) int32 or int64 item indices (see index_dtype), src < dst, unique.
        count: (E,) int32 co-counts (users who interacted with both items).
        stats: distinct_pairs (item pairs seen at least once), cooccurrences (sum of their
            co-counts), dropped_by_min_users, dropped_by_top_k.
    """

    src: np.ndarray
    dst: np.ndarray
    count: np.ndarray
    stats: dict[str, int]


def index_dtype(n_items: int) -> type[np.signedinteger]:
    """int32 for item indices when they fit (halves the memory of large edge lists)."""
    return np.int32 if n_items < np.iinfo(np.int32).max else np.int64


def block_bounds(cost: np.ndarray, budget: int) -> np.ndarray:
    """Split a sequence with per-element ``cost`` (n,) into contiguous blocks of about
    ``budget`` total cost (at most 2 * budget, or one element that alone exceeds it).

    Returns:
        (n_blocks + 1,) int64 boundaries, from 0 to n, strictly increasing.
    """
    n = len(cost)
    if n == 0:
        return np.zeros(1, dtype=np.int64)
    cum = np.cumsum(cost, dtype=np.int64)
    n_targets = int(cum[-1] // budget) + 1
    targets = np.arange(1, n_targets + 1, dtype=np.int64) * budget
    cuts = np.searchsorted(cum, targets, side="right")
    return np.unique(np.concatenate([[0], cuts, [n]]).astype(np.int64))


def top_k_mask(
    rows: np.ndarray, cols: np.ndarray, counts: np.ndarray, col_type: np.ndarray, k: int
) -> np.ndarray:
    """Which directed entries (row -> col) are in the top ``k`` of their row within the
    neighbour type ``col_type`` (= within the relation), by count desc then col asc.

    Args:
        rows, cols, counts, col_type: (m,) arrays; col_type is the type code of ``cols``.
    Returns:
        (m,) bool.
    """
    m = len(rows)
    if m == 0:
        return np.zeros(0, dtype=bool)
    order = np.lexsort((cols, -counts.astype(np.int64), col_type, rows))
    r, t = rows[order], col_type[order]
    new = np.ones(m, dtype=bool)
    new[1:] = (r[1:] != r[:-1]) | (t[1:] != t[:-1])
    idx = np.arange(m, dtype=np.int64)
    rank = idx - np.maximum.accumulate(np.where(new, idx, 0))
    mask = np.empty(m, dtype=bool)
    mask[order] = rank < k
    return mask


def prune_top_k(
    src: np.ndarray, dst: np.ndarray, count: np.ndarray, item_type: np.ndarray, k: int
) -> np.ndarray:
    """(E,) bool: the undirected edges (src, dst) kept by the top-K rule of this module."""
    e = len(src)
    rows = np.concatenate([src, dst])
    cols = np.concatenate([dst, src])
    kept = top_k_mask(rows, cols, np.concatenate([count, count]), item_type[cols], k)
    return kept[:e] | kept[e:]


def unique_edges(
    src: np.ndarray, dst: np.ndarray, count: np.ndarray, n_items: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Canonical (src < dst) unique edges sorted by (src, dst); duplicates must share a count."""
    a, b = np.minimum(src, dst), np.maximum(src, dst)
    code = a.astype(np.int64) * n_items + b
    code, first = np.unique(code, return_index=True)
    return code // n_items, code % n_items, count[first]


def split_relations(
    src: np.ndarray,
    dst: np.ndarray,
    count: np.ndarray,
    item_type: np.ndarray,
    type_names: tuple[str, ...],
) -> dict[str, RelationEdges]:
    """One :class:`RelationEdges` per unordered pair of types (every pair, maybe empty).

    Args:
        src, dst: (E,) int64 undirected edges with src < dst, no duplicates.
        count: (E,) co-counts.
        item_type: (n_items,) int16 codes into the sorted ``type_names``.
    Returns:
        relation name -> edges with src of the smaller type code (for a cross-type relation)
        or src < dst (same type), sorted by (src, dst).
    """
    n_items = len(item_type)
    ts = item_type[src]
    td = item_type[dst]
    swap = ts > td
    n_t = len(type_names)
    small = np.int16 if n_t * n_t < np.iinfo(np.int16).max else np.int32
    code = np.minimum(ts, td).astype(small) * n_t + np.maximum(ts, td).astype(small)
    out: dict[str, RelationEdges] = {}
    # One pass per relation (few) keeps the peak memory at one relation's copy.
    for a in range(n_t):
        for b in range(a, n_t):
            mask = code == a * n_t + b
            s, d, sw = src[mask], dst[mask], swap[mask]
            s, d = np.where(sw, d, s).astype(np.int64), np.where(sw, s, d).astype(np.int64)
            c = count[mask].astype(np.int32)
            key = s * n_items + d
            if len(key) > 1 and not (key[1:] > key[:-1]).all():
                order = np.argsort(key)
                s, d, c = s[order], d[order], c[order]
            out[relation_name(type_names[a], type_names[b])] = RelationEdges(
                src_type=type_names[a], dst_type=type_names[b], src=s, dst=d, count=c
            )
    return out


def graph_from_edges(result: EngineResult, inp: GraphInput) -> CoGraph:
    """Wrap an engine's edges into a :class:`CoGraph` split by relation."""
    relations = split_relations(
        result.src, result.dst, result.count, inp.item_type, inp.type_names
    )
    return CoGraph(
        n_items=inp.n_items,
        item_type=inp.item_type,
        type_names=inp.type_names,
        relations=relations,
    )
