"""Edges withheld from message passing: a batch's own supervision pairs (P1 section 4.1.3).

An anchor's positive is also its graph neighbour, so a sampled computation graph that keeps
the edge (anchor, positive) lets the model read the very link it is asked to predict
(message-passing leakage; PyG's ``disjoint_train_ratio`` addresses the same pitfall). A
``PairSet`` holds a batch's supervision pairs as undirected keys so the sampler can drop
them, in both directions and at every hop, from that batch's computation graph. Inference
uses the whole graph: there the graph is input, nothing is predicted from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def pair_keys(u: np.ndarray, v: np.ndarray, n_items: int) -> np.ndarray:
    """(E,) int64 key ``min(u, v) * n_items + max(u, v)``: one key per undirected pair."""
    u, v = np.asarray(u, dtype=np.int64), np.asarray(v, dtype=np.int64)
    return np.minimum(u, v) * n_items + np.maximum(u, v)


@dataclass(frozen=True)
class PairSet:
    """A set of undirected node pairs with a vectorised membership test.

    Attributes:
        keys: (K,) int64 sorted unique pair keys (``pair_keys``).
        touched: (n_items,) bool, True for nodes that are an endpoint of some pair: a cheap
            pre-filter, since most sampled edges touch no supervision endpoint.
        n_items: number of graph nodes.
    """

    keys: np.ndarray
    touched: np.ndarray
    n_items: int

    @classmethod
    def from_pairs(cls, u: np.ndarray, v: np.ndarray, n_items: int) -> PairSet:
        """The set of pairs {u[i], v[i]} (u, v: (E,) node indices < n_items)."""
        u, v = np.asarray(u, dtype=np.int64), np.asarray(v, dtype=np.int64)
        if u.shape != v.shape:
            raise ValueError(f"pair endpoints differ in shape: {u.shape} vs {v.shape}")
        if len(u) and (min(u.min(), v.min()) < 0 or max(u.max(), v.max()) >= n_items):
            raise ValueError(f"pair endpoints must lie in [0, {n_items}), got values outside")
        touched = np.zeros(n_items, dtype=bool)
        touched[u] = touched[v] = True
        return cls(np.unique(pair_keys(u, v, n_items)), touched, n_items)

    def __len__(self) -> int:
        return len(self.keys)

    def contains(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """(E,) bool: is {u[i], v[i]} one of the pairs (either orientation)?"""
        u, v = np.asarray(u, dtype=np.int64), np.asarray(v, dtype=np.int64)
        out = np.zeros(len(u), dtype=bool)
        cand = np.flatnonzero(self.touched[u] & self.touched[v])
        if len(cand) and len(self.keys):
            k = pair_keys(u[cand], v[cand], self.n_items)
            pos = np.minimum(np.searchsorted(self.keys, k), len(self.keys) - 1)
            out[cand] = self.keys[pos] == k
        return out
