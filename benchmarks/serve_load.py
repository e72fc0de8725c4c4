"""Load test of ``POST /recommend``: open-loop rate sweep against a server on 127.0.0.1.

Starts ``python -m hgrec.serving.cli`` in a subprocess on a free loopback port (never any
other address); for each rate of ``--rates`` sends that many requests per second for
``--duration`` seconds with realistic histories (sampled from the run's stored users), then
stops the server. Reports per rate the client-side p50/p95/p99 latency, errors and the
achieved rate, the highest rate that holds the goal (p99 <= ``--goal-p99-ms`` with zero
errors), the mean micro-batch size, and the in-process split between the user tower and the
index read from the server's ``/metrics`` (P1 section 4.3: the user vector is computed in
real time, then the nearest-neighbour index is queried). With ``--workers`` > 1 the
``/metrics`` numbers are those of the worker that answered the scrape.

The reference at each rate, in the same run, is ``GET /healthz`` at that rate: the HTTP +
event-loop floor, so ``recommend / healthz`` shows what the recommender itself adds.

Without ``--run`` a synthetic run is written to a temp folder: a catalogue of
``--items`` items (90% of the new type "food", 10% "kitchen"), random L2-normalised
vectors of width ``--dim`` (random vectors: the *index* part is realistic in size, not in
structure) served by HGNN-KNN, whose user tower is the mean of the history's vectors.

Examples:
    python benchmarks/serve_load.py --run runs/amazon-food-kitchen --rates 100,200,400,600,800 \
        --duration 15 --workers 2
    python benchmarks/serve_load.py --rate 200 --duration 60
    python benchmarks/serve_load.py --items 1000000 --rate 200 --duration 60
    python benchmarks/serve_load.py --run runs/amazon-food-kitchen --rate 200 --duration 60
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def write_synthetic_run(folder: Path, n_items: int, dim: int, n_users: int, seed: int) -> Path:
    """A complete run folder with random item vectors and an HGNN-KNN model (vectorised)."""
    from hgrec.models.hgnn_knn import HGNNKNN

    rng = np.random.default_rng(seed)
    n_kitchen = max(1, n_items // 10)
    ids = np.char.add("i", np.arange(n_items).astype(str))
    types = np.where(np.arange(n_items) < n_kitchen, "kitchen", "food")
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"item_id": ids, "item_type": types,
                  "title": np.char.add("item ", np.arange(n_items).astype(str))}
                 ).to_parquet(data / "items.parquet", index=False)
    users = np.char.add("u", np.arange(n_users).astype(str))
    pd.DataFrame({"user_id": users, "split": "train"}).to_parquet(data / "users.parquet", index=False)
    # History lengths like the Amazon data (median ~6, long tail), items Zipf-popular.
    lengths = np.clip(rng.geometric(1 / 8, size=n_users), 1, 200)
    n = int(lengths.sum())
    items = np.minimum(rng.zipf(1.3, size=n) - 1, n_items - 1)
    items = rng.permutation(n_items)[items]
    pd.DataFrame({
        "user_id": np.repeat(users, lengths), "item_id": ids[items],
        "order": np.arange(n, dtype=np.float64), "event": "stream", "weight": np.float32(1.0),
    }).to_parquet(data / "interactions.parquet", index=False)
    z = rng.normal(size=(n_items, dim)).astype(np.float32)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    HGNNKNN(embeddings=z).save(folder / "models" / "hgnn-knn")
    (folder / "manifest.json").write_text(json.dumps({
        "status": "complete", "finished_at": None, "seed": seed,
        "config": {"data": {"name": "synthetic-serving", "target_type": "food"}},
        "versions": {}, "stages": {}, "extra": {"synthetic": "random normalised vectors"},
    }))
    return folder


def sample_bodies(run: Path, n: int, k: int, item_type: str | None, seed: int) -> list[bytes]:
    """``n`` request bodies from stored users' histories (last 50 items), as JSON bytes."""
    inter = pd.read_parquet(run / "data" / "interactions.parquet", columns=["user_id", "item_id", "order"])
    inter = inter.sort_values(["user_id", "order"], kind="stable")
    users = inter["user_id"].unique()
    rng = np.random.default_rng(seed)
    chosen = set(rng.choice(users, size=min(n, len(users)), replace=False).tolist())
    tail = inter[inter["user_id"].isin(chosen)].groupby("user_id", sort=False).tail(50)
    histories = tail.groupby("user_id", sort=False)["item_id"].agg(list).tolist()
    bodies = []
    for j in range(n):  # loop over requests to prepare, not over interactions
        h = histories[j % len(histories)]
        body: dict[str, Any] = {"history": [{"item_id": str(i)} for i in h], "k": k}
        if item_type is not None:
            body["item_type"] = item_type
        bodies.append(json.dumps(body).encode())
    return bodies


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _connection(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
                    ) -> int:
    """One HTTP/1.1 keep-alive request on an open connection; returns the status code.

    A minimal client on purpose: a full HTTP client library costs more CPU per request than
    the service under test, and it shares the same cores.
    """
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):  # loop over a dozen header lines
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


def _request_bytes(port: int, body: bytes | None) -> bytes:
    if body is None:
        return f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    return (f"POST /recommend HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body


async def open_loop(port: int, bodies: list[bytes] | None, rate: float, duration: float,
                    connections: int = 64) -> tuple[np.ndarray, int, float]:
    """Send at a fixed rate: request i is due at t0 + i / rate whatever came back; latency is
    measured from the due time, so queueing in the client or server counts. Returns the
    latencies in ms of the 200 answers, the number of other outcomes, and the wall time."""
    n = int(rate * duration)
    lat = np.full(n, np.nan)
    errors = 0
    payloads = [_request_bytes(port, None)] if bodies is None else [
        _request_bytes(port, b) for b in bodies]
    queue: asyncio.Queue[int] = asyncio.Queue()
    t0 = time.perf_counter() + 0.2

    async def producer() -> None:
        for i in range(n):  # one due time per request
            await asyncio.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
            queue.put_nowait(i)
        for _ in range(connections):
            queue.put_nowait(-1)

    async def worker() -> None:
        nonlocal errors
        reader, writer = await _connection(port)
        while (i := await queue.get()) >= 0:
            try:
                status = await asyncio.wait_for(
                    _exchange(reader, writer, payloads[i % len(payloads)]), timeout=10.0)
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError):
                errors += 1
                writer.close()
                reader, writer = await _connection(port)
                continue
            if status == 200:
                lat[i] = 1000.0 * (time.perf_counter() - (t0 + i / rate))
            else:
                errors += 1
        writer.close()

    await asyncio.gather(producer(), *(worker() for _ in range(connections)))
    return lat[np.isfinite(lat)], errors, time.perf_counter() - t0


def summary(name: str, lat: np.ndarray, errors: int, wall: float, n: int) -> dict[str, Any]:
    p = np.percentile(lat, [50, 95, 99]) if len(lat) else [np.nan] * 3
    return {"name": name, "requests": n, "ok": int(len(lat)), "errors": errors,
            "achieved_rps": round(n / wall, 1), "p50_ms": round(float(p[0]), 2),
            "p95_ms": round(float(p[1]), 2), "p99_ms": round(float(p[2]), 2)}


def parse_rates(text: str) -> list[float]:
    """``"100,200,400"`` -> [100.0, 200.0, 400.0] (positive, ascending)."""
    try:
        rates = [float(r) for r in text.split(",") if r.strip()]
    except ValueError:
        raise SystemExit(f"--rates {text!r}: expected comma-separated numbers, e.g. 100,200,400")
    if not rates or min(rates) <= 0:
        raise SystemExit(f"--rates {text!r}: expected positive requests per second")
    return sorted(rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", help="a finished run directory (default: a synthetic one)")
    ap.add_argument("--items", type=int, default=36_000, help="synthetic catalogue size")
    ap.add_argument("--dim", type=int, default=128, help="synthetic vector width")
    ap.add_argument("--rates", help="comma-separated requests per second to sweep, e.g. "
                    "100,200,400,600,800 (default: --rate)")
    ap.add_argument("--rate", type=float, default=200.0, help="one rate (without --rates)")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of load per phase")
    ap.add_argument("--warmup", type=float, default=3.0,
                    help="seconds of unmeasured load before each rate")
    ap.add_argument("--goal-p99-ms", dest="goal_p99_ms", type=float, default=15.0,
                    help="a rate holds the goal when recommend p99 <= this with zero errors")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--item-type", dest="item_type", help="default: the run's target type")
    ap.add_argument("--exact-threshold", dest="exact_threshold", type=int, default=100_000)
    ap.add_argument("--threads", type=int, default=1, help="server torch threads per worker")
    ap.add_argument("--workers", type=int, default=1, help="server processes (hgrec serve --workers)")
    ap.add_argument("--max-batch", dest="max_batch", type=int, default=32,
                    help="hgrec serve --max-batch (1: no micro-batching)")
    ap.add_argument("--batch-window-ms", dest="batch_window_ms", type=float, default=0.0,
                    help="hgrec serve --batch-window-ms")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rates = parse_rates(args.rates) if args.rates else [args.rate]
    if args.duration <= 0 or max(rates) * args.duration > 1_000_000:
        raise SystemExit("--rate(s) and --duration must be positive and bounded (<= 1e6 requests)")

    with tempfile.TemporaryDirectory(prefix="hgrec-serve-load-") as tmp:
        if args.run:
            run = Path(args.run)
        else:
            t = time.perf_counter()
            run = write_synthetic_run(Path(tmp) / "synthetic", args.items, args.dim, 20_000, args.seed)
            print(f"synthetic run: {args.items:,} items x {args.dim} in {time.perf_counter() - t:.1f}s")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "hgrec.serving.cli", "--run", str(run), "--host", "127.0.0.1",
               "--port", str(port), "--exact-threshold", str(args.exact_threshold),
               "--threads", str(args.threads), "--workers", str(args.workers),
               "--max-batch", str(args.max_batch), "--batch-window-ms", str(args.batch_window_ms)]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
        t = time.perf_counter()
        server = subprocess.Popen(cmd, env=env)
        results: list[dict[str, Any]] = []
        try:
            import httpx

            deadline = time.monotonic() + 1800
            while True:
                if server.poll() is not None:
                    raise SystemExit(f"server exited with {server.returncode}")
                try:
                    if httpx.get(url + "/healthz", timeout=1.0).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("server did not start")
                time.sleep(0.5)
            if args.workers > 1:
                time.sleep(5.0)  # the other workers may still be loading the run
            meta = httpx.get(url + "/metadata").json()
            print(f"server ready in {time.perf_counter() - t:.1f}s; index: "
                  + json.dumps({k: v for k, v in meta["index"]["user"]["types"].items()}))
            bodies = sample_bodies(run, 2000, args.k, args.item_type, args.seed)
            for rate in rates:  # one row of the sweep per rate
                asyncio.run(open_loop(port, bodies, rate, args.warmup))
                row: dict[str, Any] = {"rate": rate}
                for name, b in (("healthz", None), ("recommend", bodies)):
                    lat, errors, wall = asyncio.run(open_loop(port, b, rate, args.duration))
                    row[name] = summary(name, lat, errors, wall, int(rate * args.duration))
                results.append(row)
                print(json.dumps(row), flush=True)
            split = _stage_means(url)
        finally:
            server.terminate()
            server.wait(timeout=30)

    goal = args.goal_p99_ms
    print(f"\n| rate req/s | healthz p50 / p99 ms | recommend p50 ms | p95 ms | p99 ms | errors "
          f"| achieved req/s | p99 <= {goal:g} ms, 0 errors |")
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    held = []
    for row in results:
        h, r = row["healthz"], row["recommend"]
        ok = r["errors"] == 0 and r["p99_ms"] <= goal
        held += [row["rate"]] if ok else []
        print(f"| {row['rate']:g} | {h['p50_ms']} / {h['p99_ms']} | {r['p50_ms']} | {r['p95_ms']} | "
              f"{r['p99_ms']} | {r['errors']} | {r['achieved_rps']} | {'yes' if ok else 'no'} |")
    best = max(held) if held else None
    print(f"\nhighest rate holding the goal: {'none' if best is None else f'{best:g} req/s'} "
          f"(of {', '.join(f'{r:g}' for r in rates)})")
    print(f"in-process mean per recommend (ms), mean batch size: {json.dumps(split)}")


def _stage_means(url: str) -> dict[str, float]:
    """Mean in-process milliseconds of /recommend (tower, index, explain, total) and the mean
    micro-batch size since the server started, from the Prometheus text ``/metrics`` (of one
    worker when there are several)."""
    import httpx

    from hgrec.serving.metrics import parse_text

    samples = parse_text(httpx.get(url + "/metrics").text)
    stage = 'hgrec_recommend_stage_seconds_{}{{route="/recommend",stage="{}"}}'
    out = {part: round(1000.0 * samples.get(stage.format("sum", part), 0.0)
                       / max(samples.get(stage.format("count", part), 0.0), 1.0), 3)
           for part in ("tower", "index", "explain")}
    total = 'hgrec_http_request_duration_seconds_{}{{route="/recommend",method="POST"}}'
    out["total"] = round(1000.0 * samples.get(total.format("sum"), 0.0)
                         / max(samples.get(total.format("count"), 0.0), 1.0), 3)
    out["batch_size"] = round(samples.get("hgrec_recommend_batched_requests_total", 0.0)
                              / max(samples.get("hgrec_recommend_batches_total", 0.0), 1.0), 2)
    return out


if __name__ == "__main__":
    main()
