"""HGNN training cost on the Amazon graph.

Two measurements (docs/hgnn.md):

* ``--mode sampler`` (default): the balanced multi-link sampler on vs off at the
  ``HGNNConfig`` defaults (or ``--batch-size``/``--fanouts`` overrides). A full epoch is too
  long to run here, so seconds per epoch = measured seconds per step x steps per epoch, both
  printed; the validation figure is the one each setting reaches after the same steps.
* ``--mode pool``: forward+backward seconds of one training step per max-pool kernel
  (PyG ``aggr="max"``, torch ``scatter_reduce`` amax, padded dense max), as ratios against
  PyG's, measured in the same run on the same computation graph.
* ``--mode exclusion``: seconds to sample one batch's computation graph with the batch's
  supervision pairs excluded (leakage fix) vs without, as a ratio, same seeds and draws.
* ``--mode step``: the full-graph step against the mini-batch step, in one run on the same
  graph and features: supervised edges per second of training (validation excluded) and
  the seconds each needs to reach the best held-out MRR of the mini-batch reference (the
  previous default budget, 4 epochs x 20 steps of 4,096 edges), as ratios.

    .venv/bin/python benchmarks/hgnn_train.py --steps 20 --epochs 2 --threads 1 [--features F.npy]
    .venv/bin/python benchmarks/hgnn_train.py --mode pool --threads 1
    .venv/bin/python benchmarks/hgnn_train.py --mode exclusion
    .venv/bin/python benchmarks/hgnn_train.py --mode step --threads 2 --run runs/amazon-food-kitchen

Without --features, random Gaussian 384-d features stand in for the text embeddings (the
figures then measure what the graph alone teaches).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _amazon_graph import amazon_graph  # noqa: E402

from hgrec.config import HGNNConfig  # noqa: E402
from hgrec.graph.types import CoGraph  # noqa: E402
from hgrec.models.hgnn_losses import shared_hinge_loss  # noqa: E402
from hgrec.sampling import (  # noqa: E402
    MultiLinkSampler,
    NegativeSampler,
    PairSet,
    build_computation_graph,
    graph_adjacency,
)
from hgrec.training.hgnn import build_model, split_validation, train_hgnn  # noqa: E402


def sampler_on_off(g: CoGraph, x: np.ndarray, cfg_kw: dict, args: argparse.Namespace) -> None:
    """Seconds per epoch and validation MRR with the balanced sampler on vs off."""
    train_g, _ = split_validation(g, 0.1, np.random.default_rng([args.seed, 0]))
    rows = {}
    for balanced in (True, False):
        cfg = HGNNConfig().updated(**cfg_kw, balanced_sampler=balanced, max_steps_per_epoch=args.steps,
                                   max_epochs=args.epochs, step="minibatch")  # fmt: skip
        steps_full = MultiLinkSampler(train_g, balanced=balanced, batch_size=cfg.training.batch_size).n_batches()
        res = train_hgnn(g, x, cfg, seed=args.seed, checkpoint_dir=None, progress=False)
        sec = float(np.mean([h["seconds"] for h in res.history]))
        best = max(res.history, key=lambda h: h["valid_mrr"])
        rows[balanced] = steps_full
        print(f"sampler {'on ' if balanced else 'off'}: {steps_full} steps/epoch of {cfg.training.batch_size}; "
              f"{sec:.1f}s per {args.steps} steps incl. validation; best valid MRR "
              f"{best['valid_mrr']:.4f} HR@10 {best['valid_hr10']:.4f}; "
              + ", ".join(f"{k}={v:.3f}" for k, v in best.items() if "/mrr" in k))  # fmt: skip
    ratio = rows[True] / rows[False]
    print(f"full-epoch time ratio on/off = {ratio:.2f} ({(1 - ratio) * 100:.0f}% less; P1: ~60% less)")


def pool_kernels(g: CoGraph, x: np.ndarray, cfg: HGNNConfig, repeats: int) -> None:
    """Median forward+backward seconds of one step per pool kernel, as ratios to PyG's."""
    adj = graph_adjacency(g)
    rng = np.random.default_rng(0)
    batch = next(MultiLinkSampler(g, batch_size=cfg.training.batch_size).batches(rng, 1))
    neg = NegativeSampler(g.item_type, 1)
    pool = neg.sample_pool(cfg.sampler.shared_negatives or 1024, rng)
    seeds = np.concatenate([batch.anchor, batch.positive, pool])
    cg = build_computation_graph(adj, seeds, cfg.model.fanouts, rng, g.n_items)
    valid = torch.from_numpy(neg.pool_mask(batch.anchor, batch.positive, pool))
    xs, b = torch.from_numpy(x[cg.nodes]), len(batch)
    print(f"batch {b}, fan-outs {cfg.model.fanouts}: {len(cg.nodes)} nodes, "
          f"{[sum(e.size(1) for e in bl.edges.values()) for bl in cg.blocks]} edges per block")  # fmt: skip
    times = {}
    for impl in ("pyg", "scatter", "dense"):
        torch.manual_seed(0)
        model = build_model(g, x.shape[1], cfg.updated(pool_impl=impl), seed=0)
        ts = []
        for _ in range(repeats):  # loop over repeats
            t = time.perf_counter()
            z = model(xs, cg.blocks)[torch.from_numpy(cg.seed_local)]
            shared_hinge_loss(z[:b], z[b : 2 * b], z[2 * b :], cfg.training.margin, valid).backward()
            ts.append(time.perf_counter() - t)
        times[impl] = float(np.median(ts))
    for impl, t in times.items():
        print(f"{impl:8s} {t:.2f}s/step fwd+bwd  ratio to pyg {t / times['pyg']:.2f}")


def exclusion_cost(g: CoGraph, cfg: HGNNConfig, repeats: int) -> None:
    """Median seconds of one batch's computation-graph sampling with vs without the
    exclusion of its supervision pairs (PairSet build included), as a ratio."""
    adj = graph_adjacency(g)
    rng = np.random.default_rng(0)
    batch = next(MultiLinkSampler(g, batch_size=cfg.training.batch_size).batches(rng, 1))
    pool = NegativeSampler(g.item_type, 1).sample_pool(cfg.sampler.shared_negatives or 1024, rng)
    seeds = np.concatenate([batch.anchor, batch.positive, pool])
    times: dict[bool, list[float]] = {False: [], True: []}
    for r in range(repeats):  # loop over repeats, alternating to share the load's drift
        for on in (False, True):
            t = time.perf_counter()
            ex = PairSet.from_pairs(batch.anchor, batch.positive, g.n_items) if on else None
            draw = np.random.default_rng(r)
            cg = build_computation_graph(adj, seeds, cfg.model.fanouts, draw, g.n_items, ex)
            times[on].append(time.perf_counter() - t)
    off, on = float(np.median(times[False])), float(np.median(times[True]))
    print(f"batch {len(batch)}, fan-outs {cfg.model.fanouts}: {cg.n_excluded} sampled edges excluded; "
          f"sampling {off:.3f}s without, {on:.3f}s with exclusion, ratio {on / off:.2f}")


def step_kinds(g: CoGraph, x: np.ndarray, cfg_kw: dict, args: argparse.Namespace) -> None:
    """Edges per second and seconds to the reference MRR: full-graph vs mini-batch step."""
    ref_cfg = HGNNConfig().updated(**{**cfg_kw, "step": "minibatch", "max_epochs": 4, "max_steps_per_epoch": 20,
                            "patience": 4})  # fmt: skip
    full_cfg = HGNNConfig().updated(**{**cfg_kw, "step": "full-graph", "max_epochs": args.epochs, "patience": 5})
    out = {}
    for name, cfg in (("mini-batch", ref_cfg), ("full-graph", full_cfg)):
        res = train_hgnn(g, x, cfg, seed=args.seed, checkpoint_dir=None, progress=False)
        train_s = sum(h["train_seconds"] for h in res.history)
        edges = sum(h["edges"] for h in res.history)
        out[name] = (res, edges / train_s)
        print(f"{name:10s}: {edges:,} edges in {train_s:.1f}s of steps ({sum(h['steps'] for h in res.history)} "
              f"steps) = {edges / train_s:,.0f} edges/s; untrained MRR {res.untrained['valid_mrr']:.4f}, "
              f"best {max(h['valid_mrr'] for h in res.history):.4f}; "
              f"{sum(h['seconds'] for h in res.history):.1f}s with validation")  # fmt: skip
    target = max(h["valid_mrr"] for h in out["mini-batch"][0].history)

    def seconds_to(res: object) -> float:
        t = 0.0
        for h in res.history:  # type: ignore[attr-defined]
            t += h["seconds"]
            if h["valid_mrr"] >= target:
                return t
        return float("nan")

    t_ref, t_full = seconds_to(out["mini-batch"][0]), seconds_to(out["full-graph"][0])
    print(f"edges/s ratio full-graph / mini-batch = {out['full-graph'][1] / out['mini-batch'][1]:.1f}")
    print(f"seconds to reach MRR {target:.4f} (validation included): mini-batch {t_ref:.1f}, "
          f"full-graph {t_full:.1f}, ratio {t_full / t_ref:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["sampler", "pool", "exclusion", "step"], default="sampler")
    ap.add_argument("--steps", type=int, default=20, help="steps per epoch measured")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--fanouts", type=int, nargs="+", default=None, help="default: HGNNConfig's")
    ap.add_argument("--batch-size", type=int, default=None, help="default: HGNNConfig's")
    ap.add_argument("--repeats", type=int, default=3, help="steps timed per pool kernel")
    ap.add_argument("--features", type=Path, default=None)
    ap.add_argument("--run", type=Path, default=None,
                    help="use this run directory's graph and text features (not the quick graph)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"load average {os.getloadavg()[0]:.1f}, torch threads {args.threads}")
    t = time.perf_counter()
    if args.run is not None:  # the run's graph and text features
        from hgnn_quality import load_run

        _, _, text, g = load_run(args.run)
        args.features, x_run = None, text
    else:
        g, x_run = amazon_graph(), None
    print(f"graph: {g.n_items} items, { {r: e.n_edges for r, e in g.relations.items()} } "
          f"({time.perf_counter() - t:.1f}s)")  # fmt: skip
    x = x_run if x_run is not None else (
        np.load(args.features).astype(np.float32)
        if args.features
        else np.random.default_rng(args.seed).normal(size=(g.n_items, 384)).astype(np.float32)
    )
    cfg_kw = {k: v for k, v in (("fanouts", args.fanouts), ("batch_size", args.batch_size)) if v}
    if args.mode == "pool":
        pool_kernels(g, x, HGNNConfig().updated(**cfg_kw), args.repeats)
    elif args.mode == "exclusion":
        exclusion_cost(g, HGNNConfig().updated(**cfg_kw), max(args.repeats, 5))
    elif args.mode == "step":
        step_kinds(g, x, cfg_kw, args)
    else:
        sampler_on_off(g, x, cfg_kw, args)


if __name__ == "__main__":
    main()
