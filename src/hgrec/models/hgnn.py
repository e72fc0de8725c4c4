"""Heterogeneous GraphSAGE over the item co-interaction graph (P1 section 4.1.2, Eqs. 2-4).

Per layer k and relation r (one relation per unordered pair of item types, its weights
shared by both directions):

    (2)  m_r(v) = max_{u in N(v, r)} sigma(W_r h_u + b_r)         (element-wise; empty -> 0)
    (3)  h_v'   = sigma(W_self h_v + sum_r m_r(v))

and the output is z_v = h_v^l / ||h_v^l||. sigma = ReLU. By default the last layer skips
sigma before the normalisation: a ReLU there would confine every z to the positive orthant,
so no two items could have a negative dot product and the hinge loss of Eq. 4 would have
half the sphere to work with (``final_activation=True`` restores the literal Eq. 3).
W_self is shared across node types by default so that a type with no training edges (P1
ablation F) is still embedded by trained weights.

The max of Eq. 2 is computed by :mod:`hgrec.models.hgnn_pool`; the losses of Eq. 4 (and the
InfoNCE variant) are in :mod:`hgrec.models.hgnn_losses`. :func:`embed_items` is full-
neighbourhood inference built from the layer's own parts (``relation_messages``, ``pool``,
``self_term``, ``update_nodes``), computed once per node and relation instead of per edge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing

from hgrec.graph.types import CoGraph
from hgrec.models.hgnn_pool import POOL_IMPLS, dense_max_pool, max_pool, scatter_max_pool
from hgrec.sampling.neighbors import Block, graph_adjacency
from hgrec.utils.distributed import SINGLE, DistInfo, all_gather_rows, shard_bounds


class HeteroSAGEConv(MessagePassing):
    """One layer of Eqs. 2-3.

    Args:
        in_channels: input width d_in.
        out_channels: output width d_out.
        relations: relation names; each gets its own W_r, b_r (shared by both directions).
        n_types: number of node types with their own W_self (1 = shared).
        act: apply sigma (ReLU) to the update of Eq. 3.
        pool_impl: "auto" (dense padded max for bounded in-degrees, else scatter max),
            "scatter" (torch ``scatter_reduce`` amax) or "pyg" (PyG's ``aggr="max"``); all
            exact, they differ only in speed (benchmarks/hgnn_train.py --pool).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        relations: Sequence[str],
        *,
        n_types: int = 1,
        act: bool = True,
        pool_impl: str = "auto",
    ) -> None:
        super().__init__(aggr="max")
        if pool_impl not in POOL_IMPLS:
            raise ValueError(f"pool_impl must be one of {POOL_IMPLS}, got {pool_impl!r}")
        self.pool_impl = pool_impl
        if n_types < 1:
            raise ValueError(f"n_types must be >= 1, got {n_types}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.relations = tuple(relations)
        self.n_types = n_types
        self.act = act
        self.rel_lin = nn.ModuleDict({r: nn.Linear(in_channels, out_channels) for r in self.relations})
        self.self_lin = nn.ModuleList(
            [nn.Linear(in_channels, out_channels, bias=False) for _ in range(n_types)]
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        for lin in self.rel_lin.values():
            lin.reset_parameters()
        for lin in self.self_lin:
            lin.reset_parameters()

    def relation_messages(self, relation: str, x: Tensor) -> Tensor:
        """sigma(W_r x + b_r): the per-source message of Eq. 2, (n, d_in) -> (n, d_out)."""
        return F.relu(self.rel_lin[relation](x))

    def pool(self, messages: Tensor, edge_index: Tensor, n_dst: int) -> Tensor:
        """Element-wise max of ``messages[src]`` per destination (Eq. 2).

        Uses the padded dense max (:func:`dense_max_pool`) when padding every destination to
        the largest in-degree costs at most ``DENSE_MAX_OVERHEAD`` times the edge count (the
        fixed fan-outs of training), else the scatter max (skewed full neighbourhoods of
        inference). Both are exact because messages are post-ReLU, hence >= 0.

        Args:
            messages: (n_src, d_out) per-source messages, >= 0.
            edge_index: (2, E) int64 [src; dst] local indices.
            n_dst: number of destinations.

        Returns:
            (n_dst, d_out); rows without edges are 0.
        """
        if self.pool_impl == "pyg":
            return self.propagate(edge_index, x=(messages, None), size=(messages.size(0), n_dst))
        if self.pool_impl == "scatter":
            return scatter_max_pool(messages, edge_index, n_dst)
        if self.pool_impl == "dense":
            return dense_max_pool(messages, edge_index, n_dst)
        return max_pool(messages, edge_index, n_dst)

    def message(self, x_j: Tensor) -> Tensor:
        return x_j

    def self_term(self, x_dst: Tensor, dst_type: Tensor | None) -> Tensor:
        """W_self h_v (per node type when n_types > 1): (n_dst, d_in) -> (n_dst, d_out)."""
        if self.n_types == 1:
            return self.self_lin[0](x_dst)
        if dst_type is None:
            raise ValueError("a per-type W_self needs dst_type")
        out = x_dst.new_zeros(x_dst.size(0), self.out_channels)
        for t, lin in enumerate(self.self_lin):  # loop over node types
            mask = dst_type == t
            out[mask] = lin(x_dst[mask])
        return out

    def update_nodes(self, self_part: Tensor, pooled: Tensor) -> Tensor:
        """Eq. 3: sigma(W_self h + sum_r m_r), the sum already in ``pooled``."""
        out = self_part + pooled
        return F.relu(out) if self.act else out

    def forward(
        self,
        x: Tensor,
        edge_index_dict: Mapping[str, Tensor],
        n_dst: int,
        dst_type: Tensor | None = None,
    ) -> Tensor:
        """Args:
            x: (n_src, d_in) source representations; the first n_dst rows are the
                destinations' own.
            edge_index_dict: relation -> (2, E_r) [src; dst] local indices.
            n_dst: number of destinations.
            dst_type: (n_dst,) int64 node type codes (needed when n_types > 1).

        Returns:
            (n_dst, d_out).
        """
        pooled = x.new_zeros(n_dst, self.out_channels)
        for r, ei in edge_index_dict.items():  # loop over relations
            if ei.size(1) == 0:
                continue
            if r not in self.rel_lin:
                raise KeyError(f"relation {r!r} unknown to this layer (knows {self.relations})")
            # Transform only the sources this relation uses: each once, not once per edge.
            used, src = torch.unique(ei[0], return_inverse=True)
            msg = self.relation_messages(r, x[used])
            pooled = pooled + self.pool(msg, torch.stack([src, ei[1]]), n_dst)
        return self.update_nodes(self.self_term(x[:n_dst], dst_type), pooled)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
            f"relations={list(self.relations)}, n_types={self.n_types}, act={self.act}, "
            f"pool={self.pool_impl!r})"
        )


class HGNN(nn.Module):
    """The l-layer heterogeneous GraphSAGE with L2-normalised output (P1 Eqs. 2-3).

    The defaults of every argument live in the ``hgnn`` config section
    (:class:`hgrec.config.HGNNConfig`); :func:`hgrec.training.hgnn.build_model` builds the
    model of a config for a graph.

    Args:
        in_dim: input feature width (text embeddings, e.g. 384).
        relations: relation names of the graph.
        hidden_dim: width of the hidden layers.
        out_dim: embedding width.
        n_layers: number of layers (P1: 2).
        n_types: node types with their own W_self (1 = shared).
        final_activation: apply ReLU in the last layer before normalising (literal Eq. 3).
        pool_impl: max-pool implementation of every layer (see HeteroSAGEConv).

    Example:
        >>> model = HGNN(384, ["food__food", "food__kitchen", "kitchen__kitchen"],
        ...              hidden_dim=128, out_dim=128, n_layers=2, n_types=1,
        ...              final_activation=False, pool_impl="auto")
        >>> z = model(x, cg.blocks)  # (n_unique_seeds, 128), unit rows
    """

    def __init__(
        self,
        in_dim: int,
        relations: Sequence[str],
        *,
        hidden_dim: int,
        out_dim: int,
        n_layers: int,
        n_types: int,
        final_activation: bool,
        pool_impl: str,
    ) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        dims = [in_dim] + [hidden_dim] * (n_layers - 1) + [out_dim]
        self.in_dim, self.hidden_dim, self.out_dim = in_dim, hidden_dim, out_dim
        self.relations = tuple(sorted(relations))
        self.n_types = n_types
        self.final_activation = final_activation
        self.convs = nn.ModuleList(
            [
                HeteroSAGEConv(
                    dims[i],
                    dims[i + 1],
                    self.relations,
                    n_types=n_types,
                    act=(i < n_layers - 1) or final_activation,
                    pool_impl=pool_impl,
                )
                for i in range(n_layers)
            ]
        )

    @property
    def n_layers(self) -> int:
        return len(self.convs)

    def reset_parameters(self) -> None:
        for conv in self.convs:
            conv.reset_parameters()

    def forward(self, x: Tensor, blocks: Sequence[Block], node_type: Tensor | None = None) -> Tensor:
        """Embed the seeds of a sampled computation graph.

        Args:
            x: (n_0, in_dim) features of ``ComputationGraph.nodes``.
            blocks: one Block per layer, input layer first.
            node_type: (n_0,) int64 type codes of those nodes (needed when n_types > 1).

        Returns:
            (blocks[-1].n_dst, out_dim) L2-normalised embeddings.
        """
        if len(blocks) != self.n_layers:
            raise ValueError(f"{len(blocks)} blocks for a {self.n_layers}-layer model")
        h = x
        for conv, block in zip(self.convs, blocks):  # loop over layers
            dst_type = None if node_type is None else node_type[: block.n_dst]
            h = conv(h, block.edges, block.n_dst, dst_type)
        return F.normalize(h, p=2.0, dim=-1)

    def extra_repr(self) -> str:
        return (
            f"in_dim={self.in_dim}, hidden_dim={self.hidden_dim}, out_dim={self.out_dim}, "
            f"n_types={self.n_types}, final_activation={self.final_activation}"
        )


@torch.no_grad()
def embed_items(
    model: HGNN,
    graph: CoGraph,
    features: np.ndarray,
    batch_size: int = 262_144,
    dist_info: DistInfo = SINGLE,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """Full-neighbourhood inference over the whole catalogue, layer by layer (no sampling).

    Every node gets an embedding: edgeless nodes (and items added after training, given a
    graph over the larger catalogue and their text features) get the model applied to
    their features with empty neighbourhoods. Memory stays bounded for heavy nodes because
    the max-pool runs over blocks of destination nodes holding about ``batch_size`` edges.

    In parallel (``dist_info.distributed``, every rank calling with the same model, graph
    and features) each rank computes its contiguous shard of every layer's rows and the
    shards are all-gathered before the next layer (a node needs all its neighbours'
    previous-layer states), so every rank returns the whole matrix and the pooling work,
    the dominant cost, divides by the number of ranks.

    Args:
        model: a trained HGNN (its relations must include the graph's non-empty ones).
        graph: the graph to propagate over (n_items nodes).
        features: (n_items, in_dim) float32 node features.
        batch_size: edge budget of one destination block.
        dist_info: the process group to share the work with (default: this process alone).
        device: where to compute (None: where the model's weights are).

    Returns:
        (n_items, out_dim) float32 L2-normalised embeddings (CPU numpy).
    """
    if features.shape != (graph.n_items, model.in_dim):
        raise ValueError(
            f"features has shape {features.shape}, expected ({graph.n_items}, {model.in_dim})"
        )
    unknown = [r for r, e in graph.relations.items() if e.n_edges and r not in model.relations]
    if unknown:
        raise KeyError(f"graph relations {unknown} unknown to the model ({model.relations})")
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device if device is None else torch.device(device)
    adjacency = {r: csr for r, csr in graph_adjacency(graph).items() if r in model.relations}
    node_type = torch.from_numpy(graph.item_type.astype(np.int64)).to(dev)
    code = {t: i for i, t in enumerate(graph.type_names)}
    rel_types = {
        r: [code[graph.relations[r].src_type], code[graph.relations[r].dst_type]] for r in adjacency
    }
    h = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)).to(dev)
    n = graph.n_items
    # Destination blocks holding about batch_size edges (over all relations) and at most
    # 65,536 rows, so the gathered messages stay bounded whatever the degrees.
    total_deg = sum((np.diff(c.indptr) for c in adjacency.values()), np.zeros(n, np.int64))
    cum = np.cumsum(total_deg)
    cuts = np.searchsorted(cum, np.arange(batch_size, int(cum[-1]) if n else 0, batch_size))
    lo, hi = shard_bounds(n, dist_info)  # this rank's rows (all of them in one process)
    bounds = np.concatenate([[0, n], cuts, np.arange(0, n, 65_536)])
    bounds = np.unique(np.clip(bounds, lo, hi))
    for conv in model.convs:  # loop over layers
        msgs = {}
        for r in adjacency:  # only the relation's two node types ever send its messages
            rows = torch.from_numpy(np.flatnonzero(np.isin(graph.item_type, rel_types[r]))).to(dev)
            msgs[r] = h.new_zeros(n, conv.out_channels)
            msgs[r][rows] = conv.relation_messages(r, h[rows])
        out = h.new_zeros(n, conv.out_channels)
        for a, b in zip(bounds[:-1], bounds[1:]):  # loop over node blocks
            a, b = int(a), int(b)
            pooled = h.new_zeros(b - a, conv.out_channels)
            for r, csr in adjacency.items():  # loop over relations
                lo, hi = int(csr.indptr[a]), int(csr.indptr[b])
                if hi == lo:
                    continue
                src = torch.from_numpy(csr.indices[lo:hi])
                dst = torch.from_numpy(np.repeat(np.arange(b - a), np.diff(csr.indptr[a : b + 1])))
                pooled = pooled + conv.pool(msgs[r], torch.stack([src, dst]).to(dev), b - a)
            out[a:b] = conv.update_nodes(conv.self_term(h[a:b], node_type[a:b]), pooled)
        h = _gather_shards(out, n, dist_info)
    model.train(was_training)
    return F.normalize(h, p=2.0, dim=-1).cpu().numpy()


def _gather_shards(rows: Tensor, n: int, info: DistInfo) -> Tensor:
    """(n, d) matrix whose shard ``shard_bounds(n, rank)`` every rank has filled in ``rows``.

    Each rank sends its shard padded to ceil(n / W) rows (all_gather needs equal shapes);
    the padding is dropped after the gather.
    """
    if not info.distributed:
        return rows
    width = -(-n // info.world_size)
    lo, hi = shard_bounds(n, info)
    mine = rows.new_zeros(width, rows.size(1))
    mine[: hi - lo] = rows[lo:hi]
    parts = all_gather_rows(mine, info).view(info.world_size, width, -1)
    keep = [parts[r, : b - a] for r in range(info.world_size)  # loop over ranks
            for a, b in [shard_bounds(n, DistInfo(rank=r, world_size=info.world_size))]]
    return torch.cat(keep)
