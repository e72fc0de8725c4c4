"""Uniform fixed fan-out neighbour sampling and the l-hop computation graph (P1 section 4.1.2).

GraphSAGE samples a fixed-size uniform neighbourhood per relation, redrawn every iteration.
Here a node with at most ``fanout`` neighbours in a relation keeps all of them; a node with
more gets ``fanout`` distinct ones drawn uniformly *without* replacement (Floyd's algorithm,
vectorised over nodes and looped over the fan-out positions only). Without replacement
because the aggregator is an element-wise max: a repeated neighbour adds no information, so
drawing distinct ones gets the most out of the fixed budget.

Draws are *node-keyed* in the computation graph: the uniforms behind node v's neighbours at
hop h in relation r are a hash of (batch salt, h, r, v, slot), not the next numbers of a
stream. A node's neighbourhood is then a pure function of the batch's salt and the node,
whatever else is in the batch, so data-parallel ranks that each sample only their own shard
of the seeds (``hgrec.training.hgnn`` under torchrun) build exactly the neighbourhoods the
single process builds for the same nodes, and their summed gradients are its gradient.

PyG's NeighborLoader needs pyg-lib or torch-sparse (not installed); this module needs
neither.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from hgrec.graph.types import CoGraph, NeighborCSR
from hgrec.sampling.exclusion import PairSet

# Changes whenever the same seed stops giving the same draws, so cached pipeline stages
# trained with other draws are retrained (part of the HGNN stage key).
DRAWS_VERSION = "node-keyed-1"

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # odd: multiplying by it permutes uint64


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, element-wise on uint64 (wrapping arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def stream_key(salt: int, *path: int) -> int:
    """A 64-bit key for one (salt, path...) stream, e.g. (batch salt, hop, relation)."""
    return int(np.random.SeedSequence([salt, *path]).generate_state(1, np.uint64)[0])


def node_uniforms(key: int, nodes: np.ndarray, slot: int) -> np.ndarray:
    """(n,) float64 uniforms in [0, 1), each a pure function of (key, node, slot).

    Args:
        key: stream key (:func:`stream_key`).
        nodes: (n,) int64 node indices.
        slot: draw number within the node (Floyd's step).
    """
    with np.errstate(over="ignore"):
        x = _mix64(nodes.astype(np.uint64) * _GOLDEN + np.uint64(slot))
        x = _mix64(x ^ np.uint64(key))
    return (x >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)


def graph_adjacency(graph: CoGraph) -> dict[str, NeighborCSR]:
    """Both-direction CSR of every relation, keyed by relation name (sorted)."""
    return {r: graph.neighbors(r) for r in sorted(graph.relations)}


def sample_neighbors(
    csr: NeighborCSR, nodes: np.ndarray, fanout: int, rng: np.random.Generator | int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Sample up to ``fanout`` distinct neighbours of each node, uniformly.

    Args:
        csr: one relation's adjacency.
        nodes: (n,) int64 node indices.
        fanout: neighbours per node; < 0 keeps the full neighbourhood.
        rng: a generator (draws taken from its stream), or an int key: node-keyed draws
            (:func:`node_uniforms`), so a node's sample does not depend on the other nodes
            and a node listed twice gets the same sample twice. Unused when fanout < 0.

    Returns:
        row (M,) int64 position in ``nodes`` and nbr (M,) int64 neighbour node index, grouped
        by row; M = sum over nodes of min(deg, fanout).
    """
    nodes = np.asarray(nodes, dtype=np.int64)
    start = csr.indptr[nodes]
    deg = csr.indptr[nodes + 1] - start
    full = deg if fanout < 0 else np.where(deg <= fanout, deg, 0)
    # Nodes within the fan-out keep every neighbour: segment offsets 0..deg-1 per node.
    row_full = np.repeat(np.arange(len(nodes), dtype=np.int64), full)
    seg_start = np.repeat(np.cumsum(full) - full, full)
    off_full = np.arange(len(row_full), dtype=np.int64) - seg_start
    nbr_full = csr.indices[start[row_full] + off_full]
    if fanout < 0:
        return row_full, nbr_full
    big = np.flatnonzero(deg > fanout)
    if len(big) == 0 or fanout == 0:
        return row_full, nbr_full
    if rng is None:
        raise ValueError("sample_neighbors needs an rng when fanout >= 0")
    d = deg[big]
    picks = np.empty((len(big), fanout), dtype=np.int64)
    # Floyd: for j in d-f .. d-1 draw t in [0, j]; keep t unless already chosen, else j.
    # Each step is vectorised over all high-degree nodes; the loop runs `fanout` times.
    for j in range(fanout):
        upper = d - fanout + j
        u = node_uniforms(rng, nodes[big], j) if isinstance(rng, int) else rng.random(len(big))
        t = np.minimum((u * (upper + 1)).astype(np.int64), upper)
        dup = (picks[:, :j] == t[:, None]).any(axis=1)
        picks[:, j] = np.where(dup, upper, t)
    row_big = np.repeat(big, fanout)
    nbr_big = csr.indices[(start[big][:, None] + picks).ravel()]
    row = np.concatenate([row_full, row_big])
    nbr = np.concatenate([nbr_full, nbr_big])
    order = np.argsort(row, kind="stable")
    return row[order], nbr[order]


@dataclass(frozen=True)
class Block:
    """One message-passing layer of a computation graph, in local indices.

    The destination nodes are the first ``n_dst`` source nodes (PyG's bipartite convention),
    so a node's own previous representation is ``h_src[:n_dst]``.

    Attributes:
        n_src: number of source nodes.
        n_dst: number of destination nodes (<= n_src).
        edges: relation name -> (2, E_r) int64 tensor of [src_local; dst_local].
    """

    n_src: int
    n_dst: int
    edges: dict[str, torch.Tensor]


@dataclass(frozen=True)
class ComputationGraph:
    """The sampled l-hop neighbourhood of a batch of seed nodes.

    Attributes:
        nodes: (n_0,) int64 global indices of every node whose input features are needed;
            the unique seeds come first, then hop-1 nodes, and so on.
        blocks: one Block per layer, input layer first (blocks[-1].n_dst = number of unique
            seeds).
        seed_local: (S,) int64 local index (into the final layer's output) of each seed as
            passed, duplicates included.
        n_excluded: sampled edges dropped because their pair was excluded (all hops, each
            direction counted).
    """

    nodes: np.ndarray
    blocks: list[Block]
    seed_local: np.ndarray
    n_excluded: int = 0


def build_computation_graph(
    adjacency: Mapping[str, NeighborCSR],
    seeds: np.ndarray,
    fanouts: Sequence[int],
    rng: np.random.Generator | None,
    n_items: int,
    exclude: PairSet | None = None,
) -> ComputationGraph:
    """Sample the ``len(fanouts)``-hop computation graph of ``seeds``, relabelled locally.

    ``fanouts[0]`` is the fan-out of the hop next to the seeds (the last layer), as in PyG.
    Pairs in ``exclude`` (a batch's supervision edges) are dropped from every hop, in both
    directions, after the draw, so no path of the computation graph uses them; a node whose
    draw hit an excluded neighbour keeps one neighbour fewer that step (a 1-in-fanout effect
    that keeps the draw identical to the unexcluded one, hence cheap and reproducible).

    The draws are node-keyed (module docstring): ``rng`` gives one salt, and node v's
    neighbours at hop h in relation r depend only on (salt, h, r, v). Sampling the union of
    two seed sets therefore gives each node the same neighbours as sampling either set.

    Args:
        adjacency: relation name -> CSR over all ``n_items`` nodes.
        seeds: (S,) int64 node indices (anchors, positives, negatives; may repeat).
        fanouts: per-hop fan-out, the same for every relation; -1 = full neighbourhood.
        rng: the generator of the batch salt (one draw per call, whatever the seeds, so
            generators that start equal stay equal); None only with full neighbourhoods.
        n_items: number of graph nodes (size of the relabelling table).
        exclude: node pairs withheld from message passing (None: none).

    Returns:
        the ComputationGraph.
    """
    seeds = np.asarray(seeds, dtype=np.int64)
    nodes, seed_local = np.unique(seeds, return_inverse=True)
    lut = np.full(n_items, -1, dtype=np.int64)
    lut[nodes] = np.arange(len(nodes))
    hops: list[Block] = []
    n_excluded = 0
    salt = None if rng is None else int(rng.integers(2**63))
    relation_names = sorted(adjacency)  # stream ids stable whatever the mapping's order
    for h, fanout in enumerate(fanouts):  # loop over hops
        n_dst = len(nodes)
        sampled = {
            r: sample_neighbors(
                csr, nodes, fanout,
                None if salt is None else stream_key(salt, h, relation_names.index(r)),
            )
            for r, csr in adjacency.items()
        }  # fmt: skip
        if exclude is not None and len(exclude):
            for r, (row, nbr) in sampled.items():  # loop over relations
                keep = ~exclude.contains(nodes[row], nbr)
                n_excluded += int(len(keep) - keep.sum())
                sampled[r] = (row[keep], nbr[keep])
        nbrs = np.concatenate([nbr for _, nbr in sampled.values()] or [np.zeros(0, np.int64)])
        new = np.unique(nbrs[lut[nbrs] < 0])
        lut[new] = np.arange(n_dst, n_dst + len(new))
        nodes = np.concatenate([nodes, new])
        edges = {
            r: torch.from_numpy(np.stack([lut[nbr], row])) for r, (row, nbr) in sampled.items()
        }
        hops.append(Block(n_src=len(nodes), n_dst=n_dst, edges=edges))
    return ComputationGraph(
        nodes=nodes, blocks=hops[::-1], seed_local=seed_local.reshape(-1), n_excluded=n_excluded
    )
