"""Training-time sampling: balanced supervision edges, neighbourhoods, negatives."""

from hgrec.sampling.exclusion import PairSet, pair_keys
from hgrec.sampling.multilink import EdgeBatch, MultiLinkSampler
from hgrec.sampling.negatives import NegativeSampler
from hgrec.sampling.neighbors import (
    Block,
    ComputationGraph,
    build_computation_graph,
    graph_adjacency,
    sample_neighbors,
)

__all__ = [
    "Block",
    "ComputationGraph",
    "EdgeBatch",
    "MultiLinkSampler",
    "NegativeSampler",
    "PairSet",
    "build_computation_graph",
    "graph_adjacency",
    "pair_keys",
    "sample_neighbors",
]
