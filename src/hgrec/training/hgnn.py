"""Training loop of the heterogeneous GraphSAGE (P1 sections 4.1.2-4.1.3, 4.3.1).

Two kinds of step (``hgnn.training.step``; ``auto`` chooses by :func:`choose_step` and logs why):

* **full-graph** (:func:`full_graph_epoch`; the default data's case): every epoch splits
  the training edges afresh into message-passing and supervision edges
  (``supervision_fraction``), the balanced multi-link sampler draws the epoch's supervision
  edges from the latter, and each step computes every node once over sampled
  neighbourhoods of the message-passing edges and takes the loss of
  ``full_graph_batch_size`` edges (tens of thousands) against one shared negative pool;
* **minibatch** (:func:`minibatch_epoch`; catalogues where one batch's 2-hop graph is a
  small part of the whole), described below.

The loss is InfoNCE over the negatives (``loss: infonce``) or Eq. 4's hinge (``hinge``).

Mini-batch step, per epoch: the balanced multi-link sampler draws the supervision edges; each batch of
(anchor, positive) edges gets random catalogue negatives (by default one pool of
``shared_negatives`` nodes shared by all anchors; P1: ``n_negatives`` per anchor), the
sampled 2-hop computation graph of all those seeds, and one Adam step on the hinge loss of
Eq. 4. A batch's computation graph already covers most of the catalogue, so a step costs
about the same for 256 or 4096 edges: large batches with shared negatives buy supervision
almost for free (docs/hgnn.md). The batch's own (anchor, positive) pairs are dropped from
its sampled computation graph (``exclude_supervision_edges``), so the model never reads the
link it must predict (message-passing leakage). 10% of every relation's edges are held out
(removed from message passing and from supervision); after each epoch they are ranked
against fixed random same-type negatives with full-neighbourhood inference, and training
stops after ``patience`` epochs without a better validation MRR (never before ``min_epochs``), keeping the best model.

Data-parallel mode (``torchrun --nproc_per_node=N``, see :mod:`hgrec.pipeline.ddp_main`):
every rank draws the same global batch, negatives and batch salt from the same generator,
takes its contiguous shard of the batch's supervision edges (the multi-link sampler's seed
edges) and samples the computation graph of its own seeds only. Neighbour draws are
node-keyed (:mod:`hgrec.sampling.neighbors`) and every rank withholds the whole batch's
supervision pairs, so a node gets the same neighbourhood on any rank as in one process;
each rank's loss is its terms' sum over the *global* batch's term count, DDP all-reduces
the gradients, and a step is the single-process step up to floating-point summation
order (tests/training/test_distributed.py measures the difference). Validation and the
final inference are sharded over the ranks (:func:`hgrec.models.hgnn.embed_items`), so
every rank takes the same early-stopping decision; rank 0 alone writes checkpoints.

Every draw derives from the one ``seed``: the split and validation negatives from
``default_rng([seed, 0])``, epoch e's draws from ``default_rng([seed, 1, e])``, the weights
from ``torch.manual_seed(seed)``. Because each epoch's generator is a pure function of
(seed, epoch), a run resumed from the checkpoint of epoch e continues exactly as an
uninterrupted run would.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from hgrec.config import HGNNConfig
from hgrec.errors import UserError
from hgrec.graph.types import CoGraph, RelationEdges
from hgrec.models.hgnn import HGNN, embed_items
from hgrec.models.hgnn_losses import (
    hinge_loss,
    infonce_loss,
    shared_hinge_loss,
    shared_infonce_loss,
)
from hgrec.sampling.exclusion import PairSet
from hgrec.sampling.multilink import MultiLinkSampler
from hgrec.sampling.negatives import NegativeSampler
from hgrec.sampling.neighbors import build_computation_graph, graph_adjacency
from hgrec.training.checkpoint import load_checkpoint, save_checkpoint
from hgrec.utils.device import resolve_device
from hgrec.utils.distributed import DistInfo, all_reduce_sum, current_dist, shard_bounds

CHECKPOINT_NAME = "hgnn_last.pt"


@dataclass
class HGNNResult:
    """Attributes:
    model: the best model (by validation MRR), in eval mode.
    embeddings: (n_items, out_dim) float32 unit rows, full-neighbourhood inference over the
        whole graph (held-out edges included: they were withheld only to select the model).
    history: one dict per epoch (epoch, loss, valid_hr10, valid_mrr, per-relation figures,
        steps, edges, seconds, train_seconds: the steps alone, without validation, mode).
    best_epoch: epoch of the kept model (0-based), -1 if no epoch ran.
    seconds: wall time of this call.
    mode: the training step used, "full-graph" or "minibatch" (:func:`choose_step`).
    untrained: the validation figures of the model before its first step (same weights
        init, same inference): the reference a trained model has to beat.
    """

    model: HGNN
    embeddings: np.ndarray
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = -1
    seconds: float = 0.0
    mode: str = "minibatch"
    untrained: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ValidationSet:
    """Held-out edges, oriented both ways, each with fixed random same-type negatives.

    Attributes:
        anchor, positive: (V,) int64.
        relation: (V,) int64 index into ``relation_names``.
        negatives: (V, n_neg) int64 nodes of the positive's type.
        relation_names: relation names.
    """

    anchor: np.ndarray
    positive: np.ndarray
    relation: np.ndarray
    negatives: np.ndarray
    relation_names: tuple[str, ...]


def split_validation(
    graph: CoGraph, fraction: float, rng: np.random.Generator
) -> tuple[CoGraph, dict[str, RelationEdges]]:
    """Hold out ``round(fraction * |E_r|)`` uniformly drawn edges of every relation.

    Returns:
        the training graph (held-out edges removed) and relation -> held-out edges.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"valid_fraction must be in [0, 1), got {fraction}")
    train, valid = {}, {}
    for name in sorted(graph.relations):  # loop over relations
        e = graph.relations[name]
        k = int(round(fraction * e.n_edges))
        held = np.zeros(e.n_edges, dtype=bool)
        held[rng.choice(e.n_edges, size=k, replace=False)] = True
        pick = lambda m: RelationEdges(e.src_type, e.dst_type, e.src[m], e.dst[m], e.count[m])  # noqa: E731
        train[name], valid[name] = pick(~held), pick(held)
    return CoGraph(graph.n_items, graph.item_type, graph.type_names, train), valid


def isolate_nodes(graph: CoGraph, cold: np.ndarray) -> tuple[CoGraph, int]:
    """``graph`` without every edge that touches a node of ``cold``.

    Args:
        graph: message-passing edges.
        cold: (n_items,) bool, the nodes to cut off.

    Returns:
        the graph, and how many edges were removed (each counted once).
    """
    rel, removed = {}, 0
    for name, e in graph.relations.items():  # loop over relations
        keep = ~(cold[e.src] | cold[e.dst])
        removed += int((~keep).sum())
        rel[name] = RelationEdges(e.src_type, e.dst_type, e.src[keep], e.dst[keep], e.count[keep])
    return CoGraph(graph.n_items, graph.item_type, graph.type_names, rel), removed


def make_validation_set(
    graph: CoGraph,
    held_out: dict[str, RelationEdges],
    n_negatives: int,
    max_edges: int | None,
    rng: np.random.Generator,
) -> ValidationSet:
    """Both orientations of (at most ``max_edges`` per relation) held-out edges, each with
    ``n_negatives`` random nodes of the positive's type, drawn once."""
    names = tuple(sorted(held_out))
    a_parts, p_parts, r_parts = [], [], []
    for r, name in enumerate(names):  # loop over relations
        e = held_out[name]
        keep = np.arange(e.n_edges)
        if max_edges is not None and e.n_edges > max_edges:
            keep = np.sort(rng.choice(e.n_edges, size=max_edges, replace=False))
        a_parts += [e.src[keep], e.dst[keep]]
        p_parts += [e.dst[keep], e.src[keep]]
        r_parts.append(np.full(2 * len(keep), r, dtype=np.int64))
    anchor = np.concatenate(a_parts or [np.zeros(0, np.int64)]).astype(np.int64)
    positive = np.concatenate(p_parts or [np.zeros(0, np.int64)]).astype(np.int64)
    relation = np.concatenate(r_parts or [np.zeros(0, np.int64)])
    negs = NegativeSampler(graph.item_type, n_negatives, type_matched=True).sample(positive, rng)
    return ValidationSet(anchor, positive, relation, negs, names)


def rank_validation(z: np.ndarray, valid: ValidationSet, k: int = 10) -> dict[str, float]:
    """HR@k and MRR of each held-out positive among its fixed negatives.

    rank = 1 + #(negatives scoring strictly above the positive), negatives equal to the
    positive ignored. Figures are per relation and their macro mean (so the rare relation
    weighs as much as the abundant one).

    Args:
        z: (n_items, d) embeddings.
        valid: the validation set.

    Returns:
        {"valid_hr10", "valid_mrr", "<rel>/hr10", "<rel>/mrr", ...}.
    """
    if len(valid.anchor) == 0:
        return {"valid_hr10": float("nan"), "valid_mrr": float("nan")}
    za = torch.from_numpy(z[valid.anchor])  # (V, d)
    pos = (za * torch.from_numpy(z[valid.positive])).sum(-1)  # (V,)
    neg = torch.einsum("vd,vkd->vk", za, torch.from_numpy(z[valid.negatives]))  # (V, K)
    real = torch.from_numpy(valid.negatives != valid.positive[:, None])
    rank = 1 + ((neg > pos[:, None]) & real).sum(1).numpy()
    hit, rr = (rank <= k).astype(np.float64), 1.0 / rank
    out: dict[str, float] = {}
    for r, name in enumerate(valid.relation_names):  # loop over relations
        m = valid.relation == r
        if m.any():
            out[f"{name}/hr{k}"], out[f"{name}/mrr"] = float(hit[m].mean()), float(rr[m].mean())
    names = [n for r, n in enumerate(valid.relation_names) if (valid.relation == r).any()]
    out[f"valid_hr{k}"] = float(np.mean([out[f"{n}/hr{k}"] for n in names]))
    out["valid_mrr"] = float(np.mean([out[f"{n}/mrr"] for n in names]))
    return out


def build_model(graph: CoGraph, in_dim: int, cfg: HGNNConfig, seed: int) -> HGNN:
    """The HGNN of ``cfg`` for ``graph``, its weights drawn from ``seed`` (global torch RNG
    untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return HGNN(
            in_dim,
            sorted(graph.relations),
            hidden_dim=cfg.model.hidden_dim,
            out_dim=cfg.model.out_dim,
            n_layers=len(cfg.model.fanouts),
            n_types=len(graph.type_names) if cfg.model.per_type_self else 1,
            final_activation=cfg.model.final_activation,
            pool_impl=cfg.model.pool_impl,
        )



# A full-graph step runs the two layers over every node once; it is chosen when one
# mini-batch's sampled computation graph would already cover at least this share of the
# catalogue, i.e. when a mini-batch step costs about a full-graph pass anyway.
FULL_GRAPH_COVERAGE = 0.5
# Supervision edges whose loss is computed at once in a full-graph step (bounds the
# (chunk, pool) score matrix; the gradient is accumulated over the chunks).
LOSS_CHUNK = 8192


def choose_step(
    cfg: HGNNConfig,
    adjacency: dict[str, Any],
    sampler: MultiLinkSampler,
    negatives: NegativeSampler,
    n_items: int,
    seed: int,
) -> tuple[str, str]:
    """"full-graph" or "minibatch", and why (logged by the caller).

    ``cfg.training.step`` forces one. With "auto" one mini-batch computation graph is sampled (from
    its own generator, so the training draws are untouched) and the full-graph step is
    chosen when it covers at least ``FULL_GRAPH_COVERAGE`` of the nodes: a mini-batch step
    then costs about a full-graph pass but supervises ``batch_size`` edges, where the
    full-graph step supervises ``full_graph_batch_size``.
    """
    if cfg.training.step != "auto":
        return cfg.training.step, "forced by hgnn.training.step"
    rng = np.random.default_rng([seed, 2])
    batch = next(iter(sampler.batches(rng, 1)), None)
    if batch is None:
        return "full-graph", "no supervision edges"
    if cfg.sampler.shared_negatives is None:
        neg = negatives.sample(batch.positive, rng).ravel()
    else:
        neg = negatives.sample_pool(cfg.sampler.shared_negatives, rng)
    seeds = np.concatenate([batch.anchor, batch.positive, neg])
    cg = build_computation_graph(adjacency, seeds, cfg.model.fanouts, rng, n_items)
    coverage = len(cg.nodes) / max(n_items, 1)
    mode = "full-graph" if coverage >= FULL_GRAPH_COVERAGE else "minibatch"
    return mode, (
        f"one mini-batch of {len(batch):,} edges reaches {coverage:.0%} of the {n_items:,} "
        f"nodes; full-graph from {FULL_GRAPH_COVERAGE:.0%}"
    )


@dataclass
class StepContext:
    """What every training step needs besides its batch (one per ``train_hgnn`` call)."""

    net: torch.nn.Module
    optimiser: torch.optim.Optimizer
    negatives: NegativeSampler
    cfg: HGNNConfig
    info: DistInfo
    device: torch.device
    n_items: int


def link_loss(
    cfg: HGNNConfig, z_a: torch.Tensor, z_p: torch.Tensor, z_pool: torch.Tensor,
    valid: torch.Tensor, denominator: float,
) -> torch.Tensor:
    """The configured link loss over a shared negative pool: Eq. 4's hinge or InfoNCE.

    ``denominator`` is the global count the terms are averaged over (valid pairs for the
    hinge, anchors for InfoNCE), so chunks and ranks add up to the batch mean.
    """
    if cfg.training.loss == "infonce":
        return shared_infonce_loss(z_a, z_p, z_pool, cfg.training.temperature, valid, denominator)
    return shared_hinge_loss(z_a, z_p, z_pool, cfg.training.margin, valid, denominator)


def loss_denominator(cfg: HGNNConfig, negatives: NegativeSampler, anchor: np.ndarray,
                     positive: np.ndarray, pool: np.ndarray) -> float:
    """The batch's term count: valid (anchor, pool node) pairs (hinge) or anchors (InfoNCE)."""
    if cfg.training.loss == "infonce":
        return float(len(anchor))
    return float(negatives.pool_valid_count(anchor, positive, pool))


def minibatch_epoch(
    step: StepContext,
    sampler: MultiLinkSampler,
    adjacency: dict[str, Any],
    x_all: torch.Tensor,
    types_all: torch.Tensor,
    rng: np.random.Generator,
) -> tuple[list[float], int, int]:
    """One epoch of mini-batch steps: per batch of ``batch_size`` supervision edges, the
    sampled 2-hop computation graph of its anchors, positives and negatives, one Adam step.

    Returns:
        per-step losses, supervision edges, sampled edges excluded by the leakage guard.
    """
    cfg, info, negatives, n = step.cfg, step.info, step.negatives, step.n_items
    losses, n_edges, n_excluded = [], 0, 0
    for batch in sampler.batches(rng, cfg.training.max_steps_per_epoch):  # loop over batches
        b = len(batch)
        if cfg.sampler.shared_negatives is None:
            neg = negatives.sample(batch.positive, rng)  # (B, K)
        else:
            neg = negatives.sample_pool(cfg.sampler.shared_negatives, rng)  # (P,)
        lo, hi = shard_bounds(b, info)  # this rank's supervision edges (all in one process)
        own_neg = neg[lo:hi].ravel() if cfg.sampler.shared_negatives is None else neg
        seeds = np.concatenate([batch.anchor[lo:hi], batch.positive[lo:hi], own_neg])
        exclude = (  # the whole batch's pairs, on every rank
            PairSet.from_pairs(batch.anchor, batch.positive, n)
            if cfg.sampler.exclude_supervision_edges
            else None
        )
        cg = build_computation_graph(adjacency, seeds, cfg.model.fanouts, rng, n, exclude)
        n_excluded += cg.n_excluded
        nodes = torch.from_numpy(cg.nodes).to(step.device)
        blocks = _blocks_to(cg.blocks, step.device)
        z = step.net(x_all[nodes], blocks, types_all[nodes])
        z = z[torch.from_numpy(cg.seed_local).to(step.device)]
        m = hi - lo
        z_a, z_p = z[:m], z[m : 2 * m]
        if cfg.sampler.shared_negatives is None:
            z_n = z[2 * m :].view(m, cfg.sampler.n_negatives, -1)
            if cfg.training.loss == "infonce":
                loss = infonce_loss(z_a, z_p, z_n, cfg.training.temperature, denominator=b)
            else:
                loss = hinge_loss(z_a, z_p, z_n, cfg.training.margin, denominator=b * cfg.sampler.n_negatives)
        else:
            pairs = negatives.pool_mask(batch.anchor[lo:hi], batch.positive[lo:hi], neg)
            denominator = loss_denominator(cfg, negatives, batch.anchor, batch.positive, neg)
            loss = link_loss(cfg, z_a, z_p, z[2 * m :], torch.from_numpy(pairs).to(step.device),
                             denominator)  # fmt: skip
        step.optimiser.zero_grad(set_to_none=True)
        # DDP averages gradients over ranks; the ranks' losses sum to the global loss.
        (loss * info.world_size).backward()
        step.optimiser.step()
        losses.append(float(loss.detach()))
        n_edges += b
    return losses, n_edges, n_excluded


def full_graph_epoch(
    step: StepContext,
    train_graph: CoGraph,
    x_all: torch.Tensor,
    types_all: torch.Tensor,
    rng: np.random.Generator,
) -> tuple[list[float], int, int]:
    """One epoch of full-graph steps (every node computed once per step).

    The epoch's training edges are split afresh into message-passing edges and supervision
    edges (``supervision_fraction`` of every relation; PyG's ``RandomLinkSplit(
    disjoint_train_ratio=...)``), so no step predicts an edge it passes messages over. The
    balanced multi-link sampler draws the epoch's supervision edges from the supervision
    part, in batches of ``full_graph_batch_size``. With ``cold_node_fraction`` > 0 a fresh
    share of the nodes also loses every message-passing edge (:func:`isolate_nodes`) while
    keeping its supervision edges: those nodes are embedded from their text alone, as an
    item added after training is, and still have to predict their links. Per batch: every
    node's neighbours are sampled once at ``fanouts`` over the message-passing edges (node-keyed draws), both
    layers run over all n nodes, and the loss of the batch's edges against one shared
    negative pool is computed in chunks of ``LOSS_CHUNK`` edges on detached embeddings,
    whose summed gradient is then sent back through the network once (exact, and memory
    bounded by the chunk, not the batch). One Adam step per batch.

    Returns:
        per-step losses, supervision edges, message-passing edges withheld (both
        directions counted, like the mini-batch step's exclusions).
    """
    cfg, info, negatives, n, dev = step.cfg, step.info, step.negatives, step.n_items, step.device
    mp_graph, held = split_validation(train_graph, cfg.sampler.supervision_fraction, rng)
    n_isolated = 0
    if cfg.sampler.cold_node_fraction > 0:
        mp_graph, n_isolated = isolate_nodes(mp_graph, rng.random(n) < cfg.sampler.cold_node_fraction)
    sup_graph = CoGraph(n, train_graph.item_type, train_graph.type_names, held)
    adjacency = graph_adjacency(mp_graph)
    sampler = MultiLinkSampler(
        sup_graph, balanced=cfg.sampler.balanced_sampler, cap=cfg.sampler.sampler_cap,
        batch_size=cfg.training.full_graph_batch_size,
    )  # fmt: skip
    everyone = np.arange(n, dtype=np.int64)
    n_withheld = 2 * (sum(e.n_edges for e in held.values()) + n_isolated)
    losses, n_edges = [], 0
    for batch in sampler.batches(rng, cfg.training.max_steps_per_epoch):  # loop over steps
        b = len(batch)
        pool = negatives.sample_pool(cfg.sampler.shared_negatives or cfg.sampler.n_negatives, rng)  # (P,)
        cg = build_computation_graph(adjacency, everyone, cfg.model.fanouts, rng, n)
        z = step.net(x_all, _blocks_to(cg.blocks, dev), types_all)  # (n, d), node order
        z_leaf = z.detach().requires_grad_()
        pool_t = torch.from_numpy(pool).to(dev)
        denominator = loss_denominator(cfg, negatives, batch.anchor, batch.positive, pool)
        lo, hi = shard_bounds(b, info)  # this rank's share of the batch
        total = 0.0
        for c in range(lo, hi, LOSS_CHUNK):  # loop over chunks of edges, not edges
            a, p = batch.anchor[c : min(c + LOSS_CHUNK, hi)], batch.positive[c : min(c + LOSS_CHUNK, hi)]
            valid = torch.from_numpy(negatives.pool_mask(a, p, pool)).to(dev)
            part = link_loss(cfg, z_leaf[torch.from_numpy(a).to(dev)],
                             z_leaf[torch.from_numpy(p).to(dev)], z_leaf[pool_t], valid, denominator)  # fmt: skip
            part.backward()  # accumulates into z_leaf.grad
            total += float(part.detach())
        step.optimiser.zero_grad(set_to_none=True)
        if z_leaf.grad is None:  # a rank without edges still joins the gradient all-reduce
            z_leaf.grad = torch.zeros_like(z_leaf)
        # DDP averages gradients over ranks; the ranks' losses sum to the global loss.
        z.backward(z_leaf.grad * info.world_size)
        step.optimiser.step()
        losses.append(total)
        n_edges += b
    return losses, n_edges, n_withheld


def _blocks_to(blocks: list[Any], device: torch.device) -> list[Any]:
    """The computation graph's blocks with their edge tensors on ``device``."""
    if device.type == "cpu":
        return blocks
    return [replace(b, edges={r: e.to(device) for r, e in b.edges.items()}) for b in blocks]

def train_hgnn(
    graph: CoGraph,
    features: np.ndarray,
    cfg: HGNNConfig,
    *,
    seed: int,
    checkpoint_dir: Path | None = None,
    progress: bool = True,
    dist_info: DistInfo | None = None,
    device: str | torch.device | None = None,
) -> HGNNResult:
    """Train the HGNN on ``graph`` with ``features`` and embed every item.

    Args:
        graph: the co-interaction graph over the whole catalogue (n_items nodes).
        features: (n_items, d) float32 node features (text embeddings).
        cfg: the HGNN section of the config.
        seed: drives every random choice.
        checkpoint_dir: where ``hgnn_last.pt`` is written after every epoch; a rerun with
            the same folder resumes after the last completed epoch (None: no checkpoints).
        progress: show a tqdm bar (rank 0 only under DDP).
        dist_info: the process group, or None for the one initialised in this process (a
            single process when there is none); see the module docstring.
        device: ``runtime.device`` ("cpu", "cuda", "cuda:N"; None = cpu). Training and
            inference run there; the returned model is on the CPU.

    Returns:
        HGNNResult (the same on every rank under DDP).
    """
    t0 = time.perf_counter()
    info = current_dist() if dist_info is None else dist_info
    if info.distributed and info.backend != "gloo":
        raise ValueError(
            f"HGNN DDP runs on CPU tensors and needs the gloo backend, got {info.backend!r}; "
            "call init_distributed(backend='gloo')"
        )
    features = np.ascontiguousarray(features, dtype=np.float32)
    if features.ndim != 2 or features.shape[0] != graph.n_items:
        raise ValueError(
            f"features has shape {features.shape}, expected ({graph.n_items}, d): one row per "
            "graph node"
        )
    if not np.isfinite(features).all():
        bad = np.flatnonzero(~np.isfinite(features).all(1))
        raise ValueError(f"features rows {bad[:5].tolist()} ({len(bad)} rows) are not finite")

    dev = resolve_device(device)
    if info.distributed and dev.type != "cpu":
        raise UserError(
            f"runtime.device is {str(dev)!r}, but HGNN data-parallel training runs on CPU "
            "tensors (gloo); set runtime.device: cpu under torchrun"
        )
    setup_rng = np.random.default_rng([seed, 0])
    train_graph, held_out = split_validation(graph, cfg.training.valid_fraction, setup_rng)
    valid = make_validation_set(
        train_graph, held_out, cfg.training.valid_negatives, cfg.training.valid_max_edges, setup_rng
    )
    sampler = MultiLinkSampler(
        train_graph,
        balanced=cfg.sampler.balanced_sampler,
        cap=cfg.sampler.sampler_cap,
        batch_size=cfg.training.batch_size,
    )
    negatives = NegativeSampler(
        graph.item_type, cfg.sampler.n_negatives, type_matched=cfg.sampler.type_matched_negatives
    )
    adjacency = graph_adjacency(train_graph)
    mode, why = choose_step(cfg, adjacency, sampler, negatives, graph.n_items, seed)
    if progress and info.is_main:
        print(f"[hgrec] hgnn: {mode} step ({why})", flush=True)
    if cfg.sampler.cold_node_fraction > 0 and mode != "full-graph":
        raise UserError(
            f"hgnn.sampler.cold_node_fraction is {cfg.sampler.cold_node_fraction} but the HGNN "
            f"trains with the {mode} step ({why}); cold nodes need the full-graph step: set "
            "hgnn.training.step: full-graph, or hgnn.sampler.cold_node_fraction: 0"
        )
    x_all = torch.from_numpy(features).to(dev)
    types_all = torch.from_numpy(graph.item_type.astype(np.int64)).to(dev)

    model = build_model(graph, features.shape[1], cfg, seed).to(dev)
    net: torch.nn.Module = model
    if info.distributed:
        # A relation absent from one rank's sampled graph leaves its weights unused there.
        net = DistributedDataParallel(model, find_unused_parameters=True)
    optimiser = torch.optim.Adam(model.parameters(), lr=cfg.training.lr)
    state: dict[str, Any] = {
        "epoch": -1, "best_metric": -np.inf, "best_epoch": -1, "bad_epochs": 0,
        "history": [], "best_state": copy.deepcopy(model.state_dict()), "untrained": None,
    }  # fmt: skip
    ckpt_path = None if checkpoint_dir is None else Path(checkpoint_dir) / CHECKPOINT_NAME
    # max_epochs, patience and min_epochs may change between runs (extend a finished run).
    fingerprint = {
        "config": cfg.model_dump(
            mode="json", exclude={"training": {"max_epochs", "patience", "min_epochs"}}
        ),
        "seed": seed,
        "n_items": graph.n_items,
        "n_edges": {r: e.n_edges for r, e in graph.relations.items()},
    }
    if ckpt_path is not None and (saved := load_checkpoint(ckpt_path)) is not None:
        if saved["fingerprint"] != fingerprint:
            raise ValueError(
                f"{ckpt_path} was written by a run with another config, seed or graph; use a "
                "fresh checkpoint_dir or delete it"
            )
        model.load_state_dict(saved["model"])
        optimiser.load_state_dict(saved["optimiser"])
        torch.set_rng_state(saved["torch_rng"])
        state = saved["state"]
    if state.get("untrained") is None:  # the reference line of the learning curve
        emb0 = embed_items(model, train_graph, features, cfg.inference.batch_edges, info, dev)
        state["untrained"] = rank_validation(emb0, valid)

    bar = tqdm(
        range(state["epoch"] + 1, cfg.training.max_epochs),
        desc="hgnn",
        unit="epoch",
        disable=not (progress and info.is_main),
    )
    step = StepContext(net, optimiser, negatives, cfg, info, dev, graph.n_items)
    for epoch in bar:  # loop over epochs
        if state["bad_epochs"] >= cfg.training.patience and epoch >= cfg.training.min_epochs:  # stopped already
            break
        te = time.perf_counter()
        rng = np.random.default_rng([seed, 1, epoch])
        model.train()
        if mode == "full-graph":
            losses, n_edges, n_excluded = full_graph_epoch(step, train_graph, x_all, types_all, rng)
        else:
            losses, n_edges, n_excluded = minibatch_epoch(
                step, sampler, adjacency, x_all, types_all, rng
            )
        train_seconds = time.perf_counter() - te
        if info.distributed:  # global per-step losses; exclusions summed over the ranks'
            # graphs (a node sampled on two ranks counts twice, unlike in one process)
            summed = all_reduce_sum([*losses, n_excluded], info)
            losses, n_excluded = summed[:-1].tolist(), int(summed[-1])
        emb = embed_items(model, train_graph, features, cfg.inference.batch_edges, info, dev)
        figures = rank_validation(emb, valid)
        row = {
            "epoch": epoch,
            "loss": float(np.mean(losses)) if losses else float("nan"),
            **figures,
            "steps": len(losses),
            "edges": n_edges,
            "excluded": n_excluded,
            "seconds": time.perf_counter() - te,
            "train_seconds": train_seconds,
            "world_size": info.world_size,
            "mode": mode,
        }
        state["history"].append(row)
        metric = figures["valid_mrr"]
        if np.isnan(metric) or metric > state["best_metric"]:
            # With no validation edges every epoch counts as best: the last one is kept.
            state["best_metric"] = -np.inf if np.isnan(metric) else metric
            state["best_epoch"], state["bad_epochs"] = epoch, 0
            state["best_state"] = copy.deepcopy(model.state_dict())
        else:
            state["bad_epochs"] += 1
        state["epoch"] = epoch
        stop = state["bad_epochs"] >= cfg.training.patience and epoch + 1 >= cfg.training.min_epochs
        if ckpt_path is not None and info.is_main:
            save_checkpoint(
                ckpt_path,
                {
                    "fingerprint": fingerprint,
                    "model": model.state_dict(),
                    "optimiser": optimiser.state_dict(),
                    "torch_rng": torch.get_rng_state(),
                    "epoch_rng": rng.bit_generator.state,
                    "state": state,
                },
            )
        bar.set_postfix(loss=f"{row['loss']:.4f}", val_mrr=f"{metric:.4f}",
                        val_hr10=f"{figures['valid_hr10']:.3f}")  # fmt: skip
        if stop:
            break
    bar.close()

    model.load_state_dict(state["best_state"])
    model.eval()
    embeddings = embed_items(model, graph, features, cfg.inference.batch_edges, info, dev)
    del net, step  # drop the DDP wrapper (and its gradient hooks)
    return HGNNResult(
        model=model.cpu(),
        embeddings=embeddings,
        history=list(state["history"]),
        best_epoch=int(state["best_epoch"]),
        seconds=time.perf_counter() - t0,
        mode=mode,
        untrained=dict(state["untrained"]),
    )
