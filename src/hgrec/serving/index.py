"""Nearest-neighbour indexes over item vectors, one per item type (P1 section 4.3).

P1 serves with brute-force search "since the number of audiobooks used is relatively small"
and plans an approximate k-NN index as the catalogue grows. Here a type with at most
``exact_threshold`` items gets an :class:`ExactIndex` (one matmul + top-k), a larger one a
:class:`VoyagerIndex` (Spotify's HNSW library, inner-product space). Both answer
:meth:`search` with *catalogue* item indices and dot-product scores, best first, and both
exclude items (seen ones) by over-fetching and filtering.

The approximate index's recall@10 against exact search is measured when it is built
(:func:`measure_recall`) and saved in ``<run>/index/index.json`` next to the index files.

Example:
    >>> indexes = build_type_indexes(model.item_vectors(), catalog, exact_threshold=100_000)
    >>> ids, scores = indexes["food"].search(user_vectors, k=10, exclude=[seen_items])
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from hgrec.data.dataset import Catalog
from hgrec.utils.artifacts import atomic_write, atomic_write_json

INDEX_META = "index.json"
#: Default catalogue size per type up to which exact search is used (P1: brute force).
EXACT_THRESHOLD = 100_000


def _as_queries(queries: np.ndarray, dim: int) -> np.ndarray:
    q = np.ascontiguousarray(queries, dtype=np.float32)
    if q.ndim == 1:
        q = q[None, :]
    if q.ndim != 2 or q.shape[1] != dim:
        raise ValueError(f"queries must be (n, {dim}), got shape {tuple(np.shape(queries))}")
    return q


def _exclusion_counts(exclude: Sequence[np.ndarray] | None, n: int) -> np.ndarray:
    if exclude is None:
        return np.zeros(n, dtype=np.int64)
    if len(exclude) != n:
        raise ValueError(f"exclude has {len(exclude)} rows, queries have {n}")
    return np.array([len(np.unique(e)) for e in exclude], dtype=np.int64)  # loop over queries


def _filter_excluded(
    ids: np.ndarray, scores: np.ndarray, k: int, exclude: Sequence[np.ndarray] | None
) -> tuple[np.ndarray, np.ndarray]:
    """Drop excluded ids from over-fetched (n, m) results and keep the first k per row.

    Rows left with fewer than k allowed ids are padded with id -1 and score -inf.
    """
    n, m = ids.shape
    drop = ids < 0
    if exclude is not None:
        for r, ex in enumerate(exclude):  # loop over the query batch, vectorised within a row
            if len(ex):
                drop[r] |= np.isin(ids[r], ex)
    # Stable sort moves kept entries first while keeping their best-first order.
    order = np.argsort(drop, axis=1, kind="stable")[:, :k]
    out_ids = np.take_along_axis(ids, order, axis=1)
    out_scores = np.take_along_axis(scores, order, axis=1).astype(np.float32)
    dropped = np.take_along_axis(drop, order, axis=1)
    out_ids[dropped], out_scores[dropped] = -1, -np.inf
    if out_ids.shape[1] < k:
        pad = k - out_ids.shape[1]
        out_ids = np.pad(out_ids, ((0, 0), (0, pad)), constant_values=-1)
        out_scores = np.pad(out_scores, ((0, 0), (0, pad)), constant_values=-np.inf)
    return out_ids, out_scores


class VectorIndex(ABC):
    """Top-k inner-product search over the vectors of a fixed set of catalogue items.

    Attributes:
        items: (m,) int64 catalogue indices of the indexed items; row j of the vectors.
        dim: vector width d.
    """

    kind: str = "base"

    def __init__(self, items: np.ndarray, dim: int) -> None:
        self.items = np.asarray(items, dtype=np.int64)
        self.dim = int(dim)

    def __len__(self) -> int:
        return len(self.items)

    @abstractmethod
    def _raw_search(self, queries: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
        """(n, m') catalogue indices and scores of the m best rows, best first (m' <= m)."""

    def search(
        self,
        queries: np.ndarray,
        k: int,
        exclude: Sequence[np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k items with the largest dot product with each query.

        Args:
            queries: (n, d) float32 query vectors (user vectors), or (d,).
            k: results per query.
            exclude: n arrays of catalogue indices that must not be returned (seen items);
                the search over-fetches ``k + len(exclude[r])`` and filters.

        Returns:
            ids (n, k) int64 catalogue indices and scores (n, k) float32, best first; a row
            with fewer than k allowed items ends in id -1 / score -inf.
        """
        q = _as_queries(queries, self.dim)
        k = int(k)
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        extra = _exclusion_counts(exclude, len(q))
        m = min(len(self), k + int(extra.max(initial=0)))
        if m == 0:
            return (np.full((len(q), k), -1, np.int64), np.full((len(q), k), -np.inf, np.float32))
        ids, scores = self._raw_search(q, m)
        return _filter_excluded(ids, scores, k, exclude)

    def search_each(
        self,
        queries: np.ndarray,
        ks: Sequence[int],
        exclude: Sequence[np.ndarray],
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Row r: the same answer as ``search(queries[r], ks[r], [exclude[r]])`` (row 0 of
        it), for a micro-batch of requests with their own k and seen items.

        Rows that over-fetch the same number of items are searched together; an exact
        index scores the whole batch with one matmul (see :meth:`_raw_search_each`).

        Returns:
            n pairs of ids (k_r,) int64 and scores (k_r,) float32, padded with -1 / -inf.
        """
        q = _as_queries(queries, self.dim)
        if not len(ks) == len(exclude) == len(q):
            raise ValueError(f"{len(q)} queries need {len(q)} ks and exclusions, got "
                             f"{len(ks)} and {len(exclude)}")
        if any(int(k) < 1 for k in ks):
            raise ValueError(f"every k must be >= 1, got {list(ks)}")
        extra = _exclusion_counts(exclude, len(q))
        ms = [min(len(self), int(k) + int(e)) for k, e in zip(ks, extra.tolist(), strict=True)]
        raw = self._raw_search_each(q, ms)
        out = []
        for (ids, scores), k, ex in zip(raw, ks, exclude, strict=True):  # loop over the batch
            if len(ids) == 0:
                out.append((np.full(int(k), -1, np.int64), np.full(int(k), -np.inf, np.float32)))
                continue
            i, s = _filter_excluded(ids[None, :], scores[None, :], int(k), [ex])
            out.append((i[0], s[0]))
        return out

    def _raw_search_each(self, queries: np.ndarray, ms: list[int]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per row r, (m_r,) ids and scores of :meth:`_raw_search` with ``m = ms[r]``."""
        out: list[tuple[np.ndarray, np.ndarray]] = [
            (np.zeros(0, np.int64), np.zeros(0, np.float32))] * len(queries)
        for m in sorted(set(ms) - {0}):  # loop over distinct fetch sizes
            rows = [r for r, mr in enumerate(ms) if mr == m]
            ids, scores = self._raw_search(queries[rows], m)
            for j, r in enumerate(rows):
                out[r] = (ids[j], scores[j])
        return out

    @abstractmethod
    def save(self, folder: Path, name: str) -> dict[str, Any]:
        """Write the index under ``folder``; returns its metadata for ``index.json``."""


class ExactIndex(VectorIndex):
    """Brute force: scores = queries @ vectors.T, then torch.topk (P1's serving choice).

    Args:
        vectors: (m, d) float32 item vectors.
        items: (m,) int64 catalogue indices of the rows.
    """

    kind = "exact"

    def __init__(self, vectors: np.ndarray, items: np.ndarray) -> None:
        v = np.ascontiguousarray(vectors, dtype=np.float32)
        if v.ndim != 2 or len(v) != len(items):
            raise ValueError(f"vectors must be ({len(items)}, d), got shape {v.shape}")
        super().__init__(items, v.shape[1])
        self.vectors = torch.from_numpy(v)  # (m, d), shared memory with v

    def _raw_search(self, queries: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
        s = torch.from_numpy(queries) @ self.vectors.T  # (n, m_all)
        top = torch.topk(s, m, dim=1, sorted=True)
        return self.items[top.indices.numpy()], top.values.numpy()

    def _raw_search_each(self, queries: np.ndarray, ms: list[int]) -> list[tuple[np.ndarray, np.ndarray]]:
        s = torch.from_numpy(queries) @ self.vectors.T  # (n, m_all): one matmul for the batch
        out = []
        for r, m in enumerate(ms):  # loop over the batch: each row's own top-m
            top = torch.topk(s[r : r + 1], m, dim=1, sorted=True)
            out.append((self.items[top.indices.numpy()[0]], top.values.numpy()[0]))
        return out

    def save(self, folder: Path, name: str) -> dict[str, Any]:
        # Exact search keeps nothing beyond the vectors, which the model already stores.
        return {"kind": self.kind, "n_items": len(self), "dim": self.dim}


class VoyagerIndex(VectorIndex):
    """Approximate search with a voyager HNSW index in inner-product space.

    voyager reports ``distance = 1 - dot`` for ``Space.InnerProduct``, converted back here.

    Args:
        index: a built ``voyager.Index`` whose ids are row positions 0..m-1.
        items: (m,) int64 catalogue indices of the rows.
        ef: search depth; each query uses ``max(ef, m)`` for m results.
    """

    kind = "voyager"

    def __init__(self, index: Any, items: np.ndarray, ef: int = 100) -> None:
        super().__init__(items, int(index.num_dimensions))
        self.index = index
        self.ef = int(ef)

    @staticmethod
    def build(
        vectors: np.ndarray,
        items: np.ndarray,
        seed: int = 0,
        m_links: int = 16,
        ef_construction: int = 200,
        ef: int = 100,
        batch_size: int = 50_000,
        threads: int = -1,
        progress: bool = True,
    ) -> VoyagerIndex:
        """Insert ``vectors`` (m, d) in batches (with a progress bar); ids are row positions."""
        from voyager import Index, Space

        v = np.ascontiguousarray(vectors, dtype=np.float32)
        index = Index(
            Space.InnerProduct, num_dimensions=v.shape[1], M=m_links,
            ef_construction=ef_construction, random_seed=seed, max_elements=len(v),
        )
        starts = range(0, len(v), batch_size)
        for start in tqdm(starts, desc="voyager index", unit="batch", disable=not progress):
            stop = min(start + batch_size, len(v))
            index.add_items(v[start:stop], ids=np.arange(start, stop), num_threads=threads)
        return VoyagerIndex(index, items, ef=ef)

    def _raw_search(self, queries: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
        rows, dist = self.index.query(queries, k=m, num_threads=1, query_ef=max(self.ef, m))
        rows = np.asarray(rows, dtype=np.int64).reshape(len(queries), m)
        scores = 1.0 - np.asarray(dist, dtype=np.float32).reshape(len(queries), m)
        return self.items[rows], scores

    def save(self, folder: Path, name: str) -> dict[str, Any]:
        file = f"{name}.voy"
        atomic_write(folder / file, lambda f: f.write(self.index.as_bytes()))
        np.save(folder / f"{name}.items.npy", self.items)
        return {"kind": self.kind, "n_items": len(self), "dim": self.dim, "file": file, "ef": self.ef}

    @staticmethod
    def load(folder: Path, name: str, ef: int = 100) -> VoyagerIndex:
        from voyager import Index

        index = Index.load(str(folder / f"{name}.voy"))
        items = np.load(folder / f"{name}.items.npy")
        return VoyagerIndex(index, items, ef=ef)


def measure_recall(
    approx: VectorIndex,
    vectors: np.ndarray,
    k: int = 10,
    n_queries: int = 200,
    seed: int = 0,
) -> float:
    """Recall@k of ``approx`` against exact search over the same ``vectors``.

    Queries are indexed vectors drawn with ``seed`` plus Gaussian noise of the same scale, so
    they sit where user vectors sit (near items) without being exact copies.

    Args:
        approx: the index under test; row j of ``vectors`` is ``approx.items[j]``.
        vectors: (m, d) the indexed vectors.
        k: list length.
        n_queries: queries drawn (fewer when m is smaller).

    Returns:
        mean over queries of |approx top-k ∩ exact top-k| / k.
    """
    rng = np.random.default_rng(seed)
    m = len(vectors)
    k = min(k, m)
    rows = rng.choice(m, size=min(n_queries, m), replace=False)
    scale = float(np.linalg.norm(vectors[rows], axis=1).mean()) / np.sqrt(vectors.shape[1])
    q = vectors[rows] + rng.normal(0.0, scale, size=(len(rows), vectors.shape[1]))
    q = q.astype(np.float32)
    exact_ids, _ = ExactIndex(vectors, approx.items).search(q, k)
    approx_ids, _ = approx.search(q, k)
    # Row-wise intersection size, vectorised: sort both and compare membership.
    hits = (approx_ids[:, :, None] == exact_ids[:, None, :]).any(axis=2) & (approx_ids >= 0)
    return float(hits.sum(axis=1).mean() / k)


@dataclass
class TypeIndexes:
    """One :class:`VectorIndex` per item type over one set of item vectors.

    Attributes:
        by_type: item type name -> index over that type's items.
        vectors: (n_items, d) float32 vectors of the whole catalogue (row i = item i).
        meta: per type: kind, size, recall@10 of approximate indexes, build seconds.
    """

    by_type: dict[str, VectorIndex]
    vectors: np.ndarray
    meta: dict[str, dict[str, Any]]

    def __getitem__(self, item_type: str) -> VectorIndex:
        return self.by_type[item_type]

    def search_all(
        self, queries: np.ndarray, k: int, exclude: Sequence[np.ndarray] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k across every type: each type's top-k, merged by score. Shapes as ``search``."""
        parts = [idx.search(queries, k, exclude) for idx in self.by_type.values()]
        ids = np.concatenate([p[0] for p in parts], axis=1)
        scores = np.concatenate([p[1] for p in parts], axis=1)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(ids, order, 1), np.take_along_axis(scores, order, 1)


def build_type_indexes(
    vectors: np.ndarray,
    catalog: Catalog,
    exact_threshold: int = EXACT_THRESHOLD,
    seed: int = 0,
    recall_queries: int = 200,
    progress: bool = True,
) -> TypeIndexes:
    """Exact indexes for types with at most ``exact_threshold`` items, voyager above.

    Args:
        vectors: (n_items, d) item vectors, row i = catalogue item i.
        catalog: the catalogue (types).
        exact_threshold: largest type size searched exactly.
        seed: drives the HNSW construction and the recall query sample.
        recall_queries: queries used to measure recall@10 of each approximate index.
    """
    import time

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) != catalog.n_items:
        raise ValueError(
            f"item vectors have shape {vectors.shape}; expected ({catalog.n_items}, d), one row "
            "per catalogue item"
        )
    bad = ~np.isfinite(vectors).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(
            f"item vectors: {len(rows)} rows hold NaN/inf (items "
            f"{catalog.item_ids[rows[:5]].tolist()}); expected finite vectors"
        )
    by_type: dict[str, VectorIndex] = {}
    meta: dict[str, dict[str, Any]] = {}
    for t in catalog.type_names:  # loop over item types
        t0 = time.perf_counter()
        items = catalog.items_of_type(t)
        if len(items) <= exact_threshold:
            by_type[t] = ExactIndex(vectors[items], items)
            meta[t] = {"kind": "exact", "n_items": len(items), "recall_at_10": 1.0}
        else:
            idx = VoyagerIndex.build(vectors[items], items, seed=seed, progress=progress)
            by_type[t] = idx
            recall = measure_recall(idx, vectors[items], 10, recall_queries, seed)
            meta[t] = {"kind": "voyager", "n_items": len(items), "recall_at_10": recall}
        meta[t]["build_seconds"] = round(time.perf_counter() - t0, 3)
    return TypeIndexes(by_type=by_type, vectors=vectors, meta=meta)


def save_type_indexes(indexes: TypeIndexes, folder: Path, extra: dict[str, Any]) -> Path:
    """Write approximate indexes and ``index.json`` (kinds, sizes, recall, ``extra``)."""
    folder.mkdir(parents=True, exist_ok=True)
    types = {}
    for t, idx in indexes.by_type.items():  # loop over item types
        types[t] = {**indexes.meta[t], **idx.save(folder, t)}
    return atomic_write_json(folder / INDEX_META, {**extra, "types": types})


def load_type_indexes(
    folder: Path, vectors: np.ndarray, catalog: Catalog, expect: dict[str, Any]
) -> TypeIndexes | None:
    """Reload what :func:`save_type_indexes` wrote, or None when it was built for something
    else (``expect`` keys differ: other model, other threshold) or is incomplete."""
    meta_file = folder / INDEX_META
    if not meta_file.exists():
        return None
    meta = json.loads(meta_file.read_text())
    if any(meta.get(k) != v for k, v in expect.items()):
        return None
    types = meta.get("types", {})
    if set(types) != set(catalog.type_names):
        return None
    by_type: dict[str, VectorIndex] = {}
    for t in catalog.type_names:  # loop over item types
        items = catalog.items_of_type(t)
        if types[t].get("n_items") != len(items):
            return None
        if types[t]["kind"] == "voyager":
            if not (folder / f"{t}.voy").exists():
                return None
            idx = VoyagerIndex.load(folder, t, ef=int(types[t].get("ef", 100)))
            if not np.array_equal(idx.items, items):
                return None
            by_type[t] = idx
        else:
            by_type[t] = ExactIndex(vectors[items], items)
    return TypeIndexes(by_type=by_type, vectors=np.ascontiguousarray(vectors, np.float32), meta=types)
