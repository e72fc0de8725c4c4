"""Balanced multi-link supervision-edge sampler (P1 section 4.1.3).

Each epoch draws, for every relation r, ``min(|E_r|, N)`` of its edges uniformly without
replacement, so abundant relations (kitchen-kitchen, podcast-podcast) do not dominate the
loss of Eq. 4 nor the epoch's runtime. N is the edge count of the rarest non-empty relation
(the paper's |E_aa|), a fixed cap, or unbounded (sampler off: every edge, every epoch).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from hgrec.graph.types import CoGraph


@dataclass(frozen=True)
class EdgeBatch:
    """A batch of oriented supervision edges (anchor -> positive).

    Attributes:
        anchor: (B,) int64 item indices.
        positive: (B,) int64 item indices, connected to ``anchor`` in the training graph.
        relation: (B,) int64 index into the sampler's ``relation_names``.
    """

    anchor: np.ndarray
    positive: np.ndarray
    relation: np.ndarray

    def __len__(self) -> int:
        return len(self.anchor)


class MultiLinkSampler:
    """Draws each epoch's supervision edges, balanced across relations, in shuffled batches.

    Args:
        graph: the (training) co-interaction graph whose edges are the positives.
        balanced: True draws ``min(|E_r|, N)`` edges per relation; False uses every edge.
        cap: N when given (balanced only); None: N = the edge count of the rarest non-empty
            relation.
        batch_size: edges per batch (P1: 256).

    Example:
        >>> sampler = MultiLinkSampler(graph, balanced=True)
        >>> for batch in sampler.batches(np.random.default_rng([seed, epoch])): ...
    """

    def __init__(
        self,
        graph: CoGraph,
        *,
        balanced: bool = True,
        cap: int | None = None,
        batch_size: int = 256,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if cap is not None and cap < 1:
            raise ValueError(f"cap must be >= 1 or None, got {cap}")
        self.relation_names: tuple[str, ...] = tuple(sorted(graph.relations))
        self._src = [graph.relations[r].src.astype(np.int64) for r in self.relation_names]
        self._dst = [graph.relations[r].dst.astype(np.int64) for r in self.relation_names]
        self.balanced = balanced
        self.cap = cap
        self.batch_size = batch_size

    @property
    def relation_sizes(self) -> np.ndarray:
        """(R,) int64 edge counts |E_r| in ``relation_names`` order."""
        return np.array([len(s) for s in self._src], dtype=np.int64)

    @property
    def n_per_relation(self) -> int | None:
        """N: the per-relation draw bound, or None when every edge is used."""
        if not self.balanced:
            return None
        if self.cap is not None:
            return self.cap
        sizes = self.relation_sizes
        nonempty = sizes[sizes > 0]
        return int(nonempty.min()) if len(nonempty) else 0

    def counts(self) -> np.ndarray:
        """(R,) int64 edges drawn per relation each epoch: ``min(|E_r|, N)``."""
        n = self.n_per_relation
        sizes = self.relation_sizes
        return sizes if n is None else np.minimum(sizes, n)

    def epoch_edges(self, rng: np.random.Generator) -> EdgeBatch:
        """One epoch's supervision edges, shuffled and randomly oriented.

        Orientation is random because edges are stored once (src type <= dst type); without
        it the anchor of a cross-type relation would always be the same type.

        Returns:
            an EdgeBatch of ``counts().sum()`` edges.
        """
        parts_a, parts_p, parts_r = [], [], []
        for r, k in enumerate(self.counts()):  # loop over relations, not edges
            size = len(self._src[r])
            pick = (
                np.arange(size, dtype=np.int64)
                if k == size
                else rng.choice(size, size=int(k), replace=False, shuffle=False)
            )
            parts_a.append(self._src[r][pick])
            parts_p.append(self._dst[r][pick])
            parts_r.append(np.full(len(pick), r, dtype=np.int64))
        a = np.concatenate(parts_a) if parts_a else np.zeros(0, np.int64)
        p = np.concatenate(parts_p) if parts_p else np.zeros(0, np.int64)
        rel = np.concatenate(parts_r) if parts_r else np.zeros(0, np.int64)
        flip = rng.random(len(a)) < 0.5
        a, p = np.where(flip, p, a), np.where(flip, a, p)
        order = rng.permutation(len(a))
        return EdgeBatch(anchor=a[order], positive=p[order], relation=rel[order])

    def n_batches(self) -> int:
        """Batches per epoch (the last one may be short)."""
        return -(-int(self.counts().sum()) // self.batch_size)

    def batches(self, rng: np.random.Generator, max_batches: int | None = None) -> Iterator[EdgeBatch]:
        """The epoch's edges in batches of ``batch_size``; a fresh draw per call.

        Args:
            rng: the epoch's generator (derive it from the run seed and the epoch).
            max_batches: stop after this many batches (None: the whole epoch).
        """
        edges = self.epoch_edges(rng)
        n = self.n_batches() if max_batches is None else min(self.n_batches(), max_batches)
        for b in range(n):
            sl = slice(b * self.batch_size, (b + 1) * self.batch_size)
            yield EdgeBatch(edges.anchor[sl], edges.positive[sl], edges.relation[sl])

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(relations={dict(zip(self.relation_names, self.relation_sizes.tolist()))}, "
            f"balanced={self.balanced}, N={self.n_per_relation}, batch_size={self.batch_size})"
        )
