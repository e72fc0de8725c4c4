"""HGNN data-parallel training: one epoch under torchrun (W ranks) against one process.

Both runs train the same HGNN on the Amazon co-interaction graph (the default dataset's train
users; random 384-d features stand in for the text, the cost does not depend on the values)
for one epoch of ``--steps`` global batches, including the epoch's validation inference and
the final inference (both sharded over the ranks under DDP). The single process gets all
``--threads`` threads; each of the W ranks gets ``threads / W``, so both use the same cores
and the ratio shows what sharding the work costs or saves on this machine. The embeddings of
the two runs are compared too (the DDP step is the single-process step up to floating-point
summation order: docs/hgnn.md), against the difference between two single processes that
differ only in their thread count (the same computation, summed in another order): the
floating-point noise floor of the same run.

    .venv/bin/python benchmarks/hgnn_ddp.py --world 2 --threads 2 --steps 10

On a multi-core or multi-node machine give each rank its own cores (``--threads`` = W x the
threads per rank) and the ratio is the speed-up.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def worker(args: argparse.Namespace) -> None:
    """Train one epoch (single process, or one rank under torchrun); rank 0 writes the result."""
    import torch

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _amazon_graph import amazon_graph

    from hgrec.config import HGNNConfig
    from hgrec.training.hgnn import train_hgnn
    from hgrec.utils.distributed import cleanup, init_distributed

    torch.set_num_threads(args.threads_per_process)
    info = init_distributed(backend="gloo")
    g = amazon_graph()
    x = np.random.default_rng([args.seed, 7]).standard_normal((g.n_items, 384), dtype=np.float32)
    cfg = HGNNConfig().updated(max_epochs=1, max_steps_per_epoch=args.steps)
    start = time.perf_counter()
    res = train_hgnn(g, x, cfg, seed=args.seed, progress=False, dist_info=info)
    seconds = time.perf_counter() - start
    if info.is_main:
        np.save(args.out / "embeddings.npy", res.embeddings)
        h = res.history[0]
        (args.out / "result.json").write_text(json.dumps(
            {"seconds": seconds, "epoch_seconds": h["seconds"], "steps": h["steps"],
             "loss": h["loss"], "valid_mrr": h["valid_mrr"], "world": info.world_size}))  # fmt: skip
    cleanup(info)


def launch(world: int, threads: int, args: argparse.Namespace, out: Path) -> dict[str, float]:
    """Run :func:`worker` in fresh processes (``world`` ranks under torchrun when > 1)."""
    out.mkdir(parents=True, exist_ok=True)
    per = max(1, threads // world)
    me = [str(Path(__file__).resolve()), "--worker", "--out", str(out), "--steps",
          str(args.steps), "--seed", str(args.seed), "--threads-per-process", str(per)]  # fmt: skip
    if world > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={world}",
               "--nnodes=1", "--master_addr=127.0.0.1", f"--master_port={_free_port()}", *me]  # fmt: skip
    else:
        cmd = [sys.executable, *me]
    env = {**os.environ, "OMP_NUM_THREADS": str(per), "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}  # fmt: skip
    subprocess.run(cmd, check=True, env=env, cwd=ROOT)
    return json.loads((out / "result.json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--world", type=int, default=2, help="ranks of the DDP run")
    ap.add_argument("--threads", type=int, default=2, help="threads of the single process")
    ap.add_argument("--steps", type=int, default=10, help="global batches of the epoch")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--threads-per-process", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    print(f"cpu cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}; one epoch of "
          f"{args.steps} global batches (HGNNConfig defaults), validation and final inference "
          "included")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        single = launch(1, args.threads, args, Path(tmp) / "single")
        ddp = launch(args.world, args.threads, args, Path(tmp) / "ddp")
        launch(1, 1, args, Path(tmp) / "single-1-thread")
        emb = {k: np.load(Path(tmp) / k / "embeddings.npy") for k in ("single", "ddp", "single-1-thread")}
    diff = float(np.abs(emb["single"] - emb["ddp"]).max())
    noise = float(np.abs(emb["single"] - emb["single-1-thread"]).max())
    for name, r, procs in (("single", single, 1), (f"ddp x{args.world}", ddp, args.world)):
        print(f"{name:<9} {procs} process(es) x {max(1, args.threads // procs)} thread(s): "
              f"train_hgnn {r['seconds']:7.1f} s (epoch {r['epoch_seconds']:.1f} s, "
              f"{r['steps']} steps), loss {r['loss']:.4f}, valid MRR {r['valid_mrr']:.4f}")  # fmt: skip
    print(f"ratio ddp / single (time): {ddp['seconds'] / single['seconds']:.2f}; "
          f"embeddings max |diff| ddp vs single {diff:.2e}; single {args.threads} threads vs "
          f"1 thread (float noise floor) {noise:.2e}")


if __name__ == "__main__":
    main()
