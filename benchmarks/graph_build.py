"""Graph build benchmark: our engines against a plain DuckDB self-join, on synthetic data.

For each size, a child process generates the synthetic dataset (``hgrec.datasets.synthetic``)
and pickles the loaded :class:`Dataset`; then every build runs in its own child process, so
its peak memory is that child's ``ru_maxrss`` (from ``os.wait4``), and its time is the build
alone (the child times it after unpickling). Ratios are against the reference measured in
the same run:

    reference  = SELECT a.i, b.i, count(*) FROM t a JOIN t b ON a.u = b.u AND a.i < b.i
                 GROUP BY ALL, with t = distinct (user, item) of the train users (DuckDB
                 defaults: all cores, memory limit 80% of RAM), fetched to numpy;
    scipy      = hgrec.graph.build with engine="scipy" (blocked X^T X, relation split);
    duckdb     = hgrec.graph.build with engine="duckdb" (memory_limit 4GB, spills).

Usage:
    python benchmarks/graph_build.py                       # 1M and 10M interactions
    python benchmarks/graph_build.py --sizes 1M,10M,50M --top-k 50
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PREPARE = """
import pickle, sys, time
from hgrec.data.load import load_canonical
from hgrec.datasets.synthetic import generate
n, seed, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
t = time.perf_counter()
items, inter, users = generate(n, seed=seed)
ds = load_canonical(items, inter, users, target_type="audiobook", name=f"synthetic-{n}")
del items, inter, users
with open(out, "wb") as f:
    pickle.dump(ds, f, protocol=pickle.HIGHEST_PROTOCOL)
print(f"prepared {n:,} interactions in {time.perf_counter() - t:.1f}s", file=sys.stderr)
"""

BUILD = """
import json, pickle, sys, time
import numpy as np
engine, path, options = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
with open(path, "rb") as f:
    ds = pickle.load(f)
base = int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) // 1024
t = time.perf_counter()
if engine == "reference":
    import duckdb, pyarrow as pa
    inter = ds.interactions
    train = np.zeros(ds.n_users, dtype=bool)
    train[ds.users_in("train")] = True
    keep = train[inter["user"].to_numpy()]
    table = pa.table({"u": inter["user"].to_numpy()[keep], "i": inter["item"].to_numpy()[keep]})
    con = duckdb.connect()
    con.register("inter", table)
    out = con.execute(
        "WITH t AS (SELECT DISTINCT u, i FROM inter) "
        "SELECT a.i AS src, b.i AS dst, count(*) AS c "
        "FROM t a JOIN t b ON a.u = b.u AND a.i < b.i GROUP BY ALL"
    ).fetchnumpy()
    n_edges = len(out["src"])
else:
    from hgrec.config import GraphConfig
    from hgrec.graph.build import build_cograph
    graph = build_cograph(ds, GraphConfig(engine=engine, **options), progress=False)
    n_edges = sum(r.n_edges for r in graph.relations.values())
seconds = time.perf_counter() - t
print(json.dumps({"seconds": seconds, "base_mb": base, "n_edges": int(n_edges)}))
"""


def parse_size(text: str) -> int:
    """'1M' -> 1_000_000, '500k' -> 500_000, '2000' -> 2000."""
    text = text.strip().lower()
    scale = {"k": 10**3, "m": 10**6, "g": 10**9}.get(text[-1:], 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def run_child(code: str, args: list[str]) -> tuple[str, float]:
    """Run ``python -c code args``; returns (stdout, peak RSS in MB of that child alone)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"child failed with exit code {proc.returncode}: {args}")
    return out, usage.ru_maxrss / 1024  # Linux reports kilobytes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1M,10M", help="interaction counts, e.g. 1M,10M,50M")
    parser.add_argument("--engines", default="scipy,duckdb")
    parser.add_argument("--top-k", type=int, default=None, help="GraphConfig.top_k for our engines")
    parser.add_argument("--block-pairs", type=int, default=None, help="GraphConfig.block_pairs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None, help="where datasets are pickled")
    args = parser.parse_args(argv)
    options: dict[str, int] = {}
    if args.top_k is not None:
        options["top_k"] = args.top_k
    if args.block_pairs is not None:
        options["block_pairs"] = args.block_pairs
    engines = ["reference", *[e for e in args.engines.split(",") if e]]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="hgrec-graph-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0]
    print(f"cpu cores: {os.cpu_count()}, load average: {load:.1f}, options: {options}")
    header = f"{'interactions':>12} {'engine':<10} {'seconds':>8} {'x ref':>6} {'peak MB':>8} " \
             f"{'x ref':>6} {'data MB':>8} {'edges':>13}"
    rows = [header, "-" * len(header)]
    for size in [parse_size(s) for s in args.sizes.split(",")]:
        path = workdir / f"synthetic-{size}.pkl"
        if not path.exists():
            run_child(PREPARE, [str(size), str(args.seed), str(path)])
        ref: dict[str, float] = {}
        for engine in engines:
            out, peak = run_child(BUILD, [engine, str(path), json.dumps(options)])
            res = json.loads(out.strip().splitlines()[-1])
            if engine == "reference":
                ref = {"seconds": res["seconds"], "peak": peak}
            rows.append(
                f"{size:>12,} {engine:<10} {res['seconds']:>8.2f} "
                f"{res['seconds'] / ref['seconds']:>6.2f} {peak:>8.0f} {peak / ref['peak']:>6.2f} "
                f"{res['base_mb']:>8.0f} {res['n_edges']:>13,}"
            )
            print(rows[-1], flush=True)
    print("\n" + "\n".join(rows))
    print("peak MB = the build child's ru_maxrss (includes the unpickled dataset, 'data MB');")
    print("x ref = ratio to the plain DuckDB self-join measured in the same run (lower is better).")
    if options.get("top_k"):
        print("note: with top_k, our engines return fewer edges than the unpruned reference.")


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"total {time.perf_counter() - t0:.0f}s", file=sys.stderr)
