"""HGNN training cost on the Amazon graph: balanced multi-link sampler on vs off.

A full epoch is too long to time here (balanced: ~3.6k steps, off: ~7.4k steps of 256
edges), so seconds per epoch = measured seconds per step x steps per epoch, both printed.
The validation figure is the one each setting reaches after the same number of steps.

    .venv/bin/python benchmarks/hgnn_train.py --steps 40 --epochs 2 --threads 2 [--features F.npy]

Without --features, random Gaussian 384-d features stand in for the text embeddings (the
figures then measure what the graph alone teaches).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _amazon_graph import amazon_graph  # noqa: E402

from hgrec.config import HGNNConfig  # noqa: E402
from hgrec.sampling.multilink import MultiLinkSampler  # noqa: E402
from hgrec.training.hgnn import split_validation, train_hgnn  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=40, help="steps per epoch measured")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fanouts", type=int, nargs="+", default=[15, 10])
    ap.add_argument("--features", type=Path, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t = time.perf_counter()
    g = amazon_graph()
    print(f"graph: {g.n_items} items, { {r: e.n_edges for r, e in g.relations.items()} } "
          f"({time.perf_counter() - t:.1f}s)")  # fmt: skip
    x = (
        np.load(args.features)
        if args.features
        else np.random.default_rng(args.seed).normal(size=(g.n_items, 384)).astype(np.float32)
    )
    train_g, _ = split_validation(g, 0.1, np.random.default_rng([args.seed, 0]))
    rows = {}
    for balanced in (True, False):
        cfg = HGNNConfig(balanced_sampler=balanced, max_steps_per_epoch=args.steps,
                         max_epochs=args.epochs, fanouts=args.fanouts)  # fmt: skip
        steps_full = MultiLinkSampler(train_g, balanced=balanced, batch_size=256).n_batches()
        res = train_hgnn(g, x, cfg, seed=args.seed, checkpoint_dir=None, progress=False)
        train_s = [h["seconds"] for h in res.history]
        # Separate the validation pass (full inference) from the steps: re-time one step set.
        last = res.history[-1]
        rows[balanced] = dict(steps_full=steps_full, hist=res.history, total=res.seconds,
                              sec_epoch_measured=float(np.mean(train_s)), last=last)  # fmt: skip
        print(f"sampler {'on ' if balanced else 'off'}: {steps_full} steps/epoch; measured "
              f"{np.mean(train_s):.1f}s per epoch of {args.steps} steps incl. validation; "
              f"valid MRR {last['valid_mrr']:.4f} HR@10 {last['valid_hr10']:.4f}; "
              + ", ".join(f"{k}={v:.3f}" for k, v in last.items() if '/mrr' in k))  # fmt: skip
    on, off = rows[True], rows[False]
    ratio = on["steps_full"] / off["steps_full"]
    print(f"full-epoch time ratio on/off = {ratio:.2f} ({(1 - ratio) * 100:.0f}% less; P1: ~60% less)")


if __name__ == "__main__":
    main()
