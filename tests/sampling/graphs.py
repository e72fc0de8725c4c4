"""Small CoGraphs for the HGNN tests, built independently of the graph builder."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from hgrec.data.dataset import Dataset
from hgrec.graph.types import CoGraph, RelationEdges, relation_name


def cograph_from_pairs(item_type: np.ndarray, type_names: tuple[str, ...], src, dst) -> CoGraph:
    """A CoGraph from undirected pairs (any order, duplicates removed), one relation per type
    pair (empty ones included)."""
    item_type = np.asarray(item_type, dtype=np.int16)
    s, d = np.asarray(src, np.int64), np.asarray(dst, np.int64)
    # Orient each pair as the relation wants: smaller type first, then smaller index.
    key_s = item_type[s].astype(np.int64) * 10**9 + s
    key_d = item_type[d].astype(np.int64) * 10**9 + d
    s, d = np.where(key_s <= key_d, s, d), np.where(key_s <= key_d, d, s)
    pairs = np.unique(np.stack([s, d], 1)[s != d], axis=0).reshape(-1, 2)
    rels = {}
    for i in range(len(type_names)):
        for j in range(i, len(type_names)):
            m = (item_type[pairs[:, 0]] == i) & (item_type[pairs[:, 1]] == j)
            rels[relation_name(type_names[i], type_names[j])] = RelationEdges(
                type_names[i], type_names[j], pairs[m, 0], pairs[m, 1],
                np.ones(int(m.sum()), np.int32),
            )
    return CoGraph(len(item_type), item_type, type_names, rels)


def cograph_from_dataset(ds: Dataset) -> CoGraph:
    """Items co-interacted by at least one train user: the upper triangle of X^T X."""
    x = ds.histories(ds.users_in("train")).to_csr(ds.catalog.n_items)
    co = sp.triu(x.T @ x, k=1).tocoo()
    return cograph_from_pairs(ds.catalog.item_type, tuple(ds.catalog.type_names), co.row, co.col)

