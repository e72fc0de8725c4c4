"""The item-item co-interaction graph (P1 section 4.1.1): the type every graph stage shares.

Nodes are items (users are not nodes). There is one relation per unordered pair of item
types; a relation named ``"a__b"`` joins types a <= b (sorted names). Each relation stores
its undirected edges once; :meth:`CoGraph.neighbors` gives the directed view in both
directions used by message passing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def relation_name(type_a: str, type_b: str) -> str:
    a, b = sorted((type_a, type_b))
    return f"{a}__{b}"


@dataclass(frozen=True)
class RelationEdges:
    """Undirected edges of one relation.

    Attributes:
        src_type, dst_type: the two item types, src_type <= dst_type.
        src, dst: (E,) int64 item indices; src has src_type, dst has dst_type; for a
            same-type relation src < dst. No duplicates, no self loops.
        count: (E,) int32 number of users who interacted with both items (co-count).
    """

    src_type: str
    dst_type: str
    src: np.ndarray
    dst: np.ndarray
    count: np.ndarray

    @property
    def name(self) -> str:
        return relation_name(self.src_type, self.dst_type)

    @property
    def n_edges(self) -> int:
        return len(self.src)


@dataclass(frozen=True)
class NeighborCSR:
    """Directed adjacency of one relation over all n_items nodes: the neighbours of node v in
    this relation are ``indices[indptr[v]:indptr[v + 1]]``."""

    indptr: np.ndarray  # (n_items + 1,) int64
    indices: np.ndarray  # (2E,) int64


@dataclass(frozen=True)
class CoGraph:
    """Attributes:
    n_items: number of nodes (the whole catalogue, edgeless items included).
    item_type: (n_items,) int16 codes into ``type_names``.
    type_names: item type names, sorted (as in ``Catalog``).
    relations: relation name -> edges; every unordered pair of types present, maybe empty.
    """

    n_items: int
    item_type: np.ndarray
    type_names: tuple[str, ...]
    relations: dict[str, RelationEdges]

    def neighbors(self, relation: str) -> NeighborCSR:
        """Both directions of ``relation`` as CSR, rows sorted by node; vectorised."""
        r = self.relations[relation]
        heads = np.concatenate([r.src, r.dst])
        tails = np.concatenate([r.dst, r.src])
        order = np.argsort(heads, kind="stable")
        counts = np.bincount(heads, minlength=self.n_items)
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return NeighborCSR(indptr=indptr, indices=tails[order].astype(np.int64))

    def without(self, *names: str) -> CoGraph:
        """The same graph with the named relations emptied (ablations C, D, E, F)."""
        empty = np.zeros(0, dtype=np.int64)
        rel = {
            k: (
                RelationEdges(v.src_type, v.dst_type, empty, empty, np.zeros(0, np.int32))
                if k in names
                else v
            )
            for k, v in self.relations.items()
        }
        return CoGraph(self.n_items, self.item_type, self.type_names, rel)
