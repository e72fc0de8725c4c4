"""Quick Amazon food/kitchen co-interaction graph for the HGNN benchmarks (scipy X^T X over
the training users), independent of the official graph builder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from hgrec.graph.types import CoGraph, RelationEdges, relation_name

AMAZON = Path(__file__).resolve().parents[2] / "shared" / "data" / "amazon-food-kitchen"


def amazon_graph(path: Path = AMAZON) -> CoGraph:
    """Items = the catalogue (item_id order); users = all but overlap_valid/overlap_test."""
    items = pd.read_csv(path / "items.tsv", sep="\t", usecols=["item_id", "domain"])
    inter = pd.read_csv(path / "interactions.tsv", sep="\t", usecols=["user_key", "user_group", "item_id"])
    inter = inter[~inter["user_group"].isin(["overlap_valid", "overlap_test"])]
    n = int(items["item_id"].max()) + 1
    names = ("food", "kitchen")
    item_type = np.zeros(n, dtype=np.int16)
    item_type[items["item_id"].to_numpy()] = (items["domain"] == "kitchen").to_numpy()
    users = pd.factorize(inter["user_key"])[0]
    x = sp.csr_matrix(
        (np.ones(len(inter), np.float32), (users, inter["item_id"].to_numpy())),
        shape=(users.max() + 1, n),
    )
    co = sp.triu(x.T @ x, k=1).tocoo()
    s, d, c = co.row.astype(np.int64), co.col.astype(np.int64), co.data.astype(np.int32)
    swap = item_type[s] > item_type[d]  # relation a__b stores the smaller type first
    s, d = np.where(swap, d, s), np.where(swap, s, d)
    rels = {}
    for i in range(2):
        for j in range(i, 2):
            m = (item_type[s] == i) & (item_type[d] == j)
            rels[relation_name(names[i], names[j])] = RelationEdges(names[i], names[j], s[m], d[m], c[m])
    return CoGraph(n, item_type, names, rels)
