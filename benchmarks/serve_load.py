"""Load test of ``POST /recommend``: open-loop fixed rate against a server on 127.0.0.1.

Starts ``python -m hgrec.serving.cli`` in a subprocess on a free loopback port (never any
other address), sends ``--rate`` requests per second for ``--duration`` seconds with
realistic histories (sampled from the run's stored users), then stops the server. Reports
client-side p50/p95/p99 latency, errors, the achieved rate, and the in-process split between
the user tower and the index read from the server's ``/metrics`` (P1 section 4.3: the user
vector is computed in real time, then the nearest-neighbour index is queried).

The reference in the same run is ``GET /healthz`` at the same rate: the HTTP + event-loop
floor, so ``recommend / healthz`` shows what the recommender itself adds.

Without ``--run`` a synthetic run is written to a temp folder: a catalogue of
``--items`` items (90% of the new type "food", 10% "kitchen"), random L2-normalised
vectors of width ``--dim`` (random vectors: the *index* part is realistic in size, not in
structure) served by HGNN-KNN, whose user tower is the mean of the history's vectors.

Examples:
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", help="a finished run directory (default: a synthetic one)")
    ap.add_argument("--items", type=int, default=36_000, help="synthetic catalogue size")
    ap.add_argument("--dim", type=int, default=128, help="synthetic vector width")
    ap.add_argument("--rate", type=float, default=200.0, help="requests per second")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of load per phase")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds of unmeasured load first")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--item-type", dest="item_type", help="default: the run's target type")
    ap.add_argument("--exact-threshold", dest="exact_threshold", type=int, default=100_000)
    ap.add_argument("--threads", type=int, default=1, help="server torch threads")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.rate <= 0 or args.duration <= 0 or args.rate * args.duration > 1_000_000:
        raise SystemExit("--rate and --duration must be positive and bounded (<= 1e6 requests)")

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
               "--threads", str(args.threads)]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
        t = time.perf_counter()
        server = subprocess.Popen(cmd, env=env)
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
            meta = httpx.get(url + "/metadata").json()
            print(f"server ready in {time.perf_counter() - t:.1f}s; index: "
                  + json.dumps({k: v for k, v in meta["index"]["user"]["types"].items()}))
            bodies = sample_bodies(run, 2000, args.k, args.item_type, args.seed)
            asyncio.run(open_loop(port, bodies, args.rate, args.warmup))
            before = _stage_seconds(url)
            results = []
            for name, b in (("healthz (reference)", None), ("recommend", bodies)):
                lat, errors, wall = asyncio.run(open_loop(port, b, args.rate, args.duration))
                results.append(summary(name, lat, errors, wall, int(args.rate * args.duration)))
            after = _stage_seconds(url)
        finally:
            server.terminate()
            server.wait(timeout=30)

    n = results[1]["ok"] + results[1]["errors"]
    split = {part: round(1000.0 * (after[part] - before[part]) / max(n, 1), 3) for part in after}
    print("\n| phase | requests | errors | rps | p50 ms | p95 ms | p99 ms |\n|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['name']} | {r['requests']} | {r['errors']} | {r['achieved_rps']} | "
              f"{r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} |")
    ref = results[0]
    print(f"\nrecommend / healthz: p50 x{results[1]['p50_ms'] / ref['p50_ms']:.2f}, "
          f"p99 x{results[1]['p99_ms'] / ref['p99_ms']:.2f}")
    print(f"in-process mean per recommend (ms): {json.dumps(split)}")


def _stage_seconds(url: str) -> dict[str, float]:
    """Cumulative in-process seconds of /recommend (tower, index, explain, total), read
    from the server's Prometheus text ``/metrics``."""
    from hgrec.serving.metrics import parse_text

    samples = parse_text(httpx.get(url + "/metrics").text)
    stage = 'hgrec_recommend_stage_seconds_sum{{route="/recommend",stage="{}"}}'
    out = {part: samples.get(stage.format(part), 0.0) for part in ("tower", "index", "explain")}
    out["total"] = samples.get(
        'hgrec_http_request_duration_seconds_sum{route="/recommend",method="POST"}', 0.0)
    return out


if __name__ == "__main__":
    main()
