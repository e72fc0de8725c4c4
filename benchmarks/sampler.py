"""Sampled seed edges per second: our balanced sampler + neighbour sampling vs PyG's
LinkNeighborLoader with the same fan-outs (only when pyg-lib or torch-sparse is importable;
otherwise that column is skipped and said so).

    .venv/bin/python benchmarks/sampler.py --batches 20 --fanouts 10 5
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _amazon_graph import amazon_graph  # noqa: E402

from hgrec.sampling import (  # noqa: E402
    MultiLinkSampler,
    NegativeSampler,
    build_computation_graph,
    graph_adjacency,
)


def ours(g, fanouts: list[int], batches: int) -> float:
    adj = graph_adjacency(g)
    sampler = MultiLinkSampler(g, balanced=True)
    neg = NegativeSampler(g.item_type, 5)
    rng = np.random.default_rng(0)
    t, n = time.perf_counter(), 0
    for b in sampler.batches(rng, batches):
        seeds = np.concatenate([b.anchor, b.positive, neg.sample(b.positive, rng).ravel()])
        build_computation_graph(adj, seeds, fanouts, rng, g.n_items)
        n += len(b)
    return n / (time.perf_counter() - t)


def pyg(g, fanouts: list[int], batches: int) -> float:
    from torch_geometric.data import HeteroData
    from torch_geometric.loader import LinkNeighborLoader

    data = HeteroData()
    data["item"].num_nodes = g.n_items
    for r, e in g.relations.items():
        data["item", r, "item"].edge_index = torch.from_numpy(np.stack([np.r_[e.src, e.dst], np.r_[e.dst, e.src]]))
    rel = ("item", "kitchen__kitchen", "item")
    loader = LinkNeighborLoader(data, num_neighbors={k: fanouts for k in data.edge_types},
                                edge_label_index=(rel, data[rel].edge_index), batch_size=256,
                                shuffle=True, neg_sampling_ratio=5)  # fmt: skip
    t, n = time.perf_counter(), 0
    for i, _ in enumerate(loader):
        n += 256
        if i + 1 >= batches:
            break
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--fanouts", type=int, nargs="+", default=[10, 5])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    g = amazon_graph()
    a = ours(g, args.fanouts, args.batches)
    print(f"ours: {a:,.0f} seed edges/s (fan-outs {args.fanouts}, 5 negatives per edge)")
    if any(importlib.util.find_spec(m) for m in ("pyg_lib", "torch_sparse")):
        p = pyg(g, args.fanouts, args.batches)
        print(f"PyG LinkNeighborLoader: {p:,.0f} seed edges/s; ratio ours/PyG = {a / p:.2f}")
    else:
        print("PyG LinkNeighborLoader column skipped: neither pyg-lib nor torch-sparse is installed")


if __name__ == "__main__":
    main()
