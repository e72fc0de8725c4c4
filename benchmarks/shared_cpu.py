"""How much a training stage slows when another job shares the machine.

One workload (HGNN training on the Amazon food/kitchen graph, random 384-d features, a few
full-graph steps and one validation) runs alone, then two copies at once, each with
``--threads`` intra-op threads, under each OpenMP waiting policy. On a machine with as many
cores as one copy's threads, a fair share is a slowdown of 2.0 (two jobs, one machine);
busy-waiting OpenMP workers (libgomp's default ``OMP_WAIT_POLICY`` spins before sleeping)
burn the cores the other job needs, so the slowdown can be far larger.

    .venv/bin/python benchmarks/shared_cpu.py [--threads 2] [--steps 4] [--repeats 1] [--policies unset,PASSIVE,ACTIVE]

Prints, per policy: seconds alone, seconds of each copy when two run at once, and the
slowdown (pair / alone), with the fair share for reference. Run it on a machine doing
nothing else.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

POLICIES = {"unset": None, "PASSIVE": "PASSIVE", "ACTIVE": "ACTIVE"}


def worker(args: argparse.Namespace) -> None:
    """The workload, timed from after the imports and graph load."""
    import numpy as np
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _amazon_graph import amazon_graph

    from hgrec.config import HGNNConfig
    from hgrec.training.hgnn import train_hgnn

    torch.set_num_threads(args.threads)
    g = amazon_graph()
    x = np.random.default_rng(0).normal(size=(g.n_items, 384)).astype(np.float32)
    cfg = HGNNConfig().updated(step="full-graph", max_epochs=1, max_steps_per_epoch=args.steps,
                               min_epochs=1, patience=1)  # fmt: skip
    t0 = time.perf_counter()
    train_hgnn(g, x, cfg, seed=0, progress=False)
    print(f"SECONDS {time.perf_counter() - t0:.3f}", flush=True)


def _launch(args: argparse.Namespace, policy: str | None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy is not None:
        env["OMP_WAIT_POLICY"] = policy
    cmd = [sys.executable, __file__, "--worker", "--threads", str(args.threads),
           "--steps", str(args.steps)]  # fmt: skip
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)


def _seconds(p: subprocess.Popen[str]) -> float:
    out, _ = p.communicate()
    if p.returncode != 0:
        raise SystemExit(f"worker failed (exit {p.returncode})")
    return float(next(line for line in out.splitlines() if line.startswith("SECONDS")).split()[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--policies", default=",".join(POLICIES),
                    help=f"comma-separated, of {', '.join(POLICIES)}")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    print(f"{os.cpu_count()} cores; each copy: {args.threads} threads, {args.steps} "
          f"full-graph HGNN steps + validation; fair slowdown for two copies: "
          f"{max(1.0, 2 * args.threads / (os.cpu_count() or 1)):.1f}")
    print("| OMP_WAIT_POLICY | alone (s) | two at once (s, each) | slowdown |")
    print("|---|---:|---:|---:|")
    for name in args.policies.split(","):
        policy = POLICIES[name]
        for _ in range(args.repeats):
            alone = _seconds(_launch(args, policy))
            pair = [_launch(args, policy), _launch(args, policy)]
            both = [_seconds(p) for p in pair]
            print(f"| {name} | {alone:.1f} | {both[0]:.1f}, {both[1]:.1f} | "
                  f"{max(both) / alone:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
