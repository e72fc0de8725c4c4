"""Training-time sampling: balanced supervision edges, neighbourhoods, negatives."""

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
    "build_computation_graph",
    "graph_adjacency",
    "sample_neighbors",
]
