"""Measured cost curves of every pipeline stage on synthetic data, and their growth exponents.

For each size (interactions) a synthetic dataset is written with
``hgrec.datasets.synthetic.write_synthetic`` and every stage runs in its own child process
(``python benchmarks/scale.py --child STAGE ...``), so the stage's peak memory is that child's
``ru_maxrss`` (from ``os.wait4``) and its time is the stage alone (the child times it after
reading its inputs). Stages and what their cost column means:

    generate    write_synthetic (Parquet), seconds
    load        hgrec.datasets.load_synthetic (validation, indexing), seconds
    graph       hgrec.graph.build.build_cograph (scipy engine, train users), seconds
    text        hgrec.features.text.embed_texts on a sample of ``--text-sample`` catalogue
                texts; cost = model load + (seconds per text) x n_items  [extrapolated]
    hgnn        train_hgnn(max_epochs=1, max_steps_per_epoch=--steps); cost = measured seconds
                per step x the balanced sampler's steps per epoch  [projected full epoch]
    inference   hgrec.models.hgnn.embed_items, full neighbourhood over the catalogue, seconds
    2t          TwoTowerRecommender(hgnn=z).fit(max_epochs=1, max_steps_per_epoch=--steps);
                cost = seconds per step x ceil(examples / batch)  [projected full epoch]
    exact       exact index: the (n_items, d) item-vector matrix + 1,000 top-10 queries
    hnsw        voyager HNSW (InnerProduct) add_items over all item vectors; recall@10 of
                1,000 queries against the exact top 10 is printed

The HGNN and two-tower stages read random unit 384-d features in place of the text
embeddings (their cost does not depend on the values); the quality guard uses real ones.

After the table, the growth exponent k of each stage (cost ~ size^k, least squares on
log-log over the sizes measured) for time and for peak memory, and a projection to
``--project`` interactions (P1: 800M). A stage whose projected peak memory exceeds
``--memory-gb`` (from the exponent fitted on the smaller sizes) is skipped and the table says
so; a child killed for memory is reported, not hidden.

Quality guard (smallest size, ``--quality``): a short 2T-HGNN and Popularity, HR@10 of valid
users (cold and warm protocols); and the planted topics: the share of each item's 10 nearest
neighbours (HGNN embeddings; text embeddings for comparison) with the same topic vs chance.

Usage:
    python benchmarks/scale.py                                 # 1M, 10M, 50M
    python benchmarks/scale.py --sizes 1M,10M --text-sample 2000 --steps 20 --quality
    python benchmarks/scale.py --sizes 200k --stages load,graph --no-quality
    python benchmarks/scale.py --sizes 1M,10M --previous rows.json --json all.json  # add 10M
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

STAGES = ("generate", "load", "graph", "text", "hgnn", "inference", "2t", "exact", "hnsw")
FEATURE_DIM = 384  # all-MiniLM-L6-v2 width: the stand-in features have the same shape
# The 2T of the scale figures (2026-11): no id table, no cold twins; --two-tower adds to it.
PLAIN_2T = {"id_dim": 0, "cold_twins": False}
# Stages whose cost follows the catalogue rather than the interactions.
ITEM_STAGES = frozenset({"text", "exact", "hnsw"})
# The stage whose output each stage reads; a stage whose input failed or was skipped is
# skipped too. Model outputs are not inputs here: without the HGNN's weights, embeddings or
# the 2T's item vectors a stage runs on stand-ins of the same shape (its cost does not
# depend on the values) and says so.
NEEDS = {"load": "generate", "graph": "load", "text": "load", "hgnn": "graph",
         "inference": "graph", "2t": "load", "exact": "load", "hnsw": "load"}  # fmt: skip


# --------------------------------------------------------------------------- small helpers


def parse_size(text: str) -> int:
    """'1M' -> 1_000_000, '500k' -> 500_000, '2000' -> 2000."""
    text = text.strip().lower()
    scale = {"k": 10**3, "m": 10**6, "g": 10**9}.get(text[-1:], 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def fmt_size(n: int) -> str:
    """1_000_000 -> '1M', 200_000 -> '200k'."""
    for unit, div in (("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if n >= div and n % (div // 10) == 0:
            return f"{n / div:g}{unit}"
    return str(n)


def growth_exponent(sizes: Sequence[float], costs: Sequence[float]) -> float | None:
    """Least-squares slope k of log(cost) = k log(size) + c; None with < 2 distinct sizes.

    Args:
        sizes: (m,) positive sizes.
        costs: (m,) positive costs (seconds or MB) measured at those sizes.
    """
    s, c = np.asarray(sizes, dtype=float), np.asarray(costs, dtype=float)
    ok = (s > 0) & (c > 0) & np.isfinite(c)
    if len(np.unique(s[ok])) < 2:
        return None
    return float(np.polyfit(np.log(s[ok]), np.log(c[ok]), 1)[0])


def project(size: float, at: float, cost: float, k: float) -> float:
    """Cost at ``at`` given ``cost`` at ``size`` and exponent ``k`` (cost ~ size^k)."""
    return cost * (at / size) ** k


def stand_in_features(n_items: int, seed: int, dim: int = FEATURE_DIM) -> np.ndarray:
    """(n_items, dim) float32 random unit rows (default: the shape of the text embeddings)."""
    x = np.random.default_rng([seed, 7]).standard_normal((n_items, dim), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _load_or_stand_in(path: Path, n_items: int, seed: int, what: str) -> tuple[np.ndarray, str]:
    """``path`` (.npy) when an earlier stage wrote it, else random unit (n_items, 128) rows."""
    if path.is_file():
        return np.load(path), ""
    return stand_in_features(n_items, seed, 128), f"; stand-in {what} (not run at this size)"


def _n_items(a: ChildArgs) -> int:
    return int(json.loads((a.folder / "meta.json").read_text())["n_items"])


def topic_agreement(emb: np.ndarray, topic: np.ndarray, k: int = 10, block: int = 2048) -> float:
    """Share of each item's ``k`` nearest neighbours (inner product, itself excluded) that
    have its topic, averaged over items.

    Args:
        emb: (n, d) float32 item vectors (unit rows for cosine).
        topic: (n,) int topic per item.
    """
    n = len(emb)
    same = 0
    for a in range(0, n, block):  # blocks of query rows
        b = min(a + block, n)
        sim = emb[a:b] @ emb.T  # (b - a, n)
        sim[np.arange(b - a), np.arange(a, b)] = -np.inf  # not its own neighbour
        nn = np.argpartition(-sim, k, axis=1)[:, :k]  # (b - a, k)
        same += int((topic[nn] == topic[a:b, None]).sum())
    return same / (n * k)


def chance_agreement(topic: np.ndarray) -> float:
    """Probability that a random other item shares an item's topic (sum of squared shares)."""
    p = np.bincount(topic) / len(topic)
    return float((p**2).sum())


# --------------------------------------------------------------------------- child stages


@dataclass(frozen=True)
class ChildArgs:
    """What a stage child needs: the size's folder and the benchmark options."""

    folder: Path
    size: int
    seed: int
    steps: int
    text_sample: int
    threads: int
    top_k: int | None
    text_cache: Path | None = None
    hgnn: str = "{}"  # JSON overrides of HGNNConfig (pins the measured config)
    two_tower: str = "{}"  # JSON keyword arguments of TwoTowerRecommender


def _dataset(a: ChildArgs) -> Any:
    with open(a.folder / "dataset.pkl", "rb") as f:
        return pickle.load(f)


def _graph(a: ChildArgs) -> Any:
    with open(a.folder / "graph.pkl", "rb") as f:
        return pickle.load(f)


def _hgnn_cfg(a: ChildArgs, **over: Any) -> Any:
    from hgrec.config import HGNNConfig

    return HGNNConfig().updated(
        **{"max_epochs": 1, "max_steps_per_epoch": a.steps, **json.loads(a.hgnn), **over}
    )


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def stage_generate(a: ChildArgs) -> dict[str, Any]:
    from hgrec.datasets.synthetic import write_synthetic

    _, s = _timed(lambda: write_synthetic(a.folder / "data", a.size, seed=a.seed, progress=False))
    return {"seconds": s, "cost": s}


def stage_load(a: ChildArgs) -> dict[str, Any]:
    from hgrec.datasets import load_synthetic

    ds, s = _timed(lambda: load_synthetic(a.folder / "data", seed=a.seed))
    with open(a.folder / "dataset.pkl", "wb") as f:
        pickle.dump(ds, f, protocol=pickle.HIGHEST_PROTOCOL)
    (a.folder / "meta.json").write_text(json.dumps({"n_items": ds.catalog.n_items}))
    info = f"{ds.n_users:,} users, {ds.catalog.n_items:,} items"
    return {"seconds": s, "cost": s, "info": info, "n_items": ds.catalog.n_items}


def stage_graph(a: ChildArgs) -> dict[str, Any]:
    from hgrec.config import GraphConfig
    from hgrec.graph.build import build_cograph

    ds = _dataset(a)
    g, s = _timed(lambda: build_cograph(ds, GraphConfig(top_k=a.top_k), progress=False))
    with open(a.folder / "graph.pkl", "wb") as f:
        pickle.dump(g, f, protocol=pickle.HIGHEST_PROTOCOL)
    n_edges = sum(r.n_edges for r in g.relations.values())
    return {"seconds": s, "cost": s, "info": f"{n_edges:,} edges"}


def stage_text(a: ChildArgs) -> dict[str, Any]:
    from hgrec.features.text import embed_texts

    ds = _dataset(a)
    texts = np.asarray(ds.catalog.texts(), dtype=object)
    n = len(texts)
    pick = np.random.default_rng([a.seed, 3]).choice(n, size=min(a.text_sample, n), replace=False)
    # A tiny call first pays the model load, so the sample's rate is the marginal cost.
    _, load_s = _timed(lambda: embed_texts(list(texts[pick[:8]]), progress=False))
    _, s = _timed(lambda: embed_texts(list(texts[pick]), progress=False))
    per_text = s / len(pick)
    full = load_s + per_text * n
    label = "measured" if len(pick) == n else f"extrapolated from {len(pick):,} texts"
    return {"seconds": load_s + s, "cost": full,
            "info": f"{1 / per_text:.0f} texts/s, full {full:.0f}s {label}"}  # fmt: skip


def stage_hgnn(a: ChildArgs) -> dict[str, Any]:
    import torch

    import hgrec.training.hgnn as th
    from hgrec.sampling.multilink import MultiLinkSampler

    g = _graph(a)
    x = stand_in_features(g.n_items, a.seed)
    cfg = _hgnn_cfg(a)
    # train_hgnn also runs two full inference passes and a validation ranking; time them
    # apart so the step time is the training steps alone.
    spent: dict[str, list[float]] = {"embed_items": [], "rank_validation": []}
    for name in spent:
        orig = getattr(th, name)

        def wrapped(*args: Any, _orig: Any = orig, _name: str = name, **kw: Any) -> Any:
            out, s = _timed(lambda: _orig(*args, **kw))
            spent[_name].append(s)
            return out

        setattr(th, name, wrapped)
    res, total = _timed(lambda: th.train_hgnn(g, x, cfg, seed=a.seed, progress=False))
    epoch = res.history[0]
    train_s = epoch["seconds"] - spent["embed_items"][0] - sum(spent["rank_validation"])
    per_step = train_s / max(epoch["steps"], 1)
    train_g, _ = th.split_validation(g, cfg.training.valid_fraction, np.random.default_rng([a.seed, 0]))
    full_steps = MultiLinkSampler(
        train_g, balanced=cfg.sampler.balanced_sampler, cap=cfg.sampler.sampler_cap, batch_size=cfg.training.batch_size
    ).n_batches()
    torch.save(res.model.state_dict(), a.folder / "hgnn.pt")
    # The inference stage rebuilds this exact model, whatever the defaults are by then.
    (a.folder / "hgnn_cfg.json").write_text(cfg.model_dump_json())
    return {"seconds": train_s, "cost": per_step * full_steps, "info":
            f"{per_step:.3f} s/step x {full_steps:,} steps (balanced sampler); "
            f"call {total:.0f}s incl. 2 inference passes"}  # fmt: skip


def stage_inference(a: ChildArgs) -> dict[str, Any]:
    import torch

    from hgrec.models.hgnn import embed_items
    from hgrec.training.hgnn import build_model

    g = _graph(a)
    x = stand_in_features(g.n_items, a.seed)
    from hgrec.config import HGNNConfig

    saved = a.folder / "hgnn_cfg.json"
    cfg = HGNNConfig.model_validate_json(saved.read_text()) if saved.is_file() else _hgnn_cfg(a)
    model = build_model(g, FEATURE_DIM, cfg, a.seed)
    note = "; untrained weights (hgnn stage not run at this size)"
    if (a.folder / "hgnn.pt").is_file():
        model.load_state_dict(torch.load(a.folder / "hgnn.pt"))
        note = ""
    z, s = _timed(lambda: embed_items(model, g, x, cfg.inference.batch_edges))
    np.save(a.folder / "hgnn_emb.npy", z)
    return {"seconds": s, "cost": s, "info": f"{g.n_items / s:,.0f} items/s{note}"}


def stage_2t(a: ChildArgs) -> dict[str, Any]:
    from hgrec.pipeline.inputs import make_train_set
    from hgrec.recommenders.two_tower import TwoTowerRecommender

    ds = _dataset(a)
    z, note = _load_or_stand_in(a.folder / "hgnn_emb.npy", ds.catalog.n_items, a.seed, "HGNN embeddings")
    train = make_train_set(ds, stand_in_features(ds.catalog.n_items, a.seed), a.seed)
    kw = {**PLAIN_2T, **json.loads(a.two_tower), "max_epochs": 1, "max_steps_per_epoch": a.steps}
    model = TwoTowerRecommender(hgnn=z, progress=False, **kw)
    _, total = _timed(lambda: model.fit(train))
    rep = model.report_
    # Without a validation callable the epoch's seconds hold its steps only (the item
    # vectors are refreshed after the epoch, outside them).
    per_step = rep["epochs"][0]["seconds"] / rep["steps_per_epoch"]
    full_steps = math.ceil(rep["n_examples"] / model.cfg.batch_size)
    np.save(a.folder / "item_vectors.npy", model.item_vectors())
    return {"seconds": per_step * rep["steps_per_epoch"], "cost": per_step * full_steps, "info":
            f"{per_step:.3f} s/step x {full_steps:,} steps; fit call {total:.0f}s{note}"}  # fmt: skip


def _queries(v: np.ndarray, seed: int, n: int = 1000) -> np.ndarray:
    """(min(n, n_items), d) query vectors: item vectors of random items (self-match is fine)."""
    return v[np.random.default_rng([seed, 5]).choice(len(v), size=min(n, len(v)), replace=False)]


def _exact_top(v: np.ndarray, q: np.ndarray, k: int = 10) -> np.ndarray:
    """(m, k) exact top-k item indices by inner product (blocked over queries)."""
    out = []
    for a in range(0, len(q), 256):  # blocks of queries
        s = q[a : a + 256] @ v.T  # (b, n_items)
        out.append(np.argpartition(-s, k, axis=1)[:, :k])
    return np.concatenate(out)


def stage_exact(a: ChildArgs) -> dict[str, Any]:
    v0, note = _load_or_stand_in(a.folder / "item_vectors.npy", _n_items(a), a.seed, "item vectors")
    v, build = _timed(lambda: np.ascontiguousarray(v0, dtype=np.float32))
    q = _queries(v, a.seed)
    _, s = _timed(lambda: _exact_top(v, q))
    return {"seconds": build + s, "cost": build + s,
            "info": f"{len(q) / s:,.0f} queries/s (top-10 of {len(v):,}){note}"}  # fmt: skip


def stage_hnsw(a: ChildArgs) -> dict[str, Any]:
    import voyager

    v0, note = _load_or_stand_in(a.folder / "item_vectors.npy", _n_items(a), a.seed, "item vectors")
    v = np.ascontiguousarray(v0, dtype=np.float32)

    def build() -> Any:
        index = voyager.Index(voyager.Space.InnerProduct, num_dimensions=v.shape[1],
                              random_seed=a.seed, max_elements=len(v))  # fmt: skip
        index.add_items(v, np.arange(len(v)), num_threads=a.threads)
        return index

    index, s = _timed(build)
    q = _queries(v, a.seed)
    (ids, _), qs = _timed(lambda: index.query(q, k=10, num_threads=a.threads))
    exact = _exact_top(v, q)
    recall = float((ids[:, :, None] == exact[:, None, :]).any(2).mean())
    return {"seconds": s, "cost": s,
            "info": f"recall@10 {recall:.3f}, {len(q) / qs:,.0f} queries/s{note}"}  # fmt: skip


def stage_quality(a: ChildArgs) -> dict[str, Any]:
    """Short 2T-HGNN vs Popularity (HR@10, valid users) and topic recovery; real text."""
    from hgrec.config import EvalConfig
    from hgrec.evaluation.evaluate import evaluate
    from hgrec.evaluation.protocols import build_queries
    from hgrec.features.text import embed_texts
    from hgrec.models.popularity import Popularity
    from hgrec.pipeline.inputs import make_train_set
    from hgrec.recommenders.two_tower import TwoTowerRecommender
    from hgrec.training.hgnn import train_hgnn

    ds, g = _dataset(a), _graph(a)
    text = embed_texts(ds.catalog.texts(), cache_dir=a.text_cache, progress=False).embeddings
    cfg = _hgnn_cfg(a, max_epochs=2, max_steps_per_epoch=max(a.steps, 20))
    z = train_hgnn(g, text, cfg, seed=a.seed, progress=False).embeddings
    train = make_train_set(ds, text, a.seed)
    models = {
        "popularity": Popularity().fit(train),
        "2t-hgnn": TwoTowerRecommender(
            hgnn=z, max_epochs=2, max_steps_per_epoch=max(2 * a.steps, 40), progress=False,
            **PLAIN_2T,
        ).fit(train),
    }
    pop = ds.item_popularity()
    hr: dict[str, float] = {}
    for protocol in ("cold", "warm"):  # loop over protocols
        q = build_queries(ds, "valid", protocol)
        for name, m in models.items():
            hr[f"{name}/{protocol}"] = evaluate(m, q, ds.catalog, pop, EvalConfig(), False)["hr@10"]
    topic = ds.catalog.items["topic"].to_numpy()
    return {
        "hr10": hr,
        "topic_hgnn": topic_agreement(z, topic),
        "topic_text": topic_agreement(text, topic),
        "topic_chance": chance_agreement(topic),
    }


CHILD_STAGES: dict[str, Callable[[ChildArgs], dict[str, Any]]] = {
    "generate": stage_generate, "load": stage_load, "graph": stage_graph, "text": stage_text,
    "hgnn": stage_hgnn, "inference": stage_inference, "2t": stage_2t, "exact": stage_exact,
    "hnsw": stage_hnsw, "quality": stage_quality,
}  # fmt: skip


TORCH_STAGES = frozenset({"text", "hgnn", "inference", "2t", "quality"})


def child_main(stage: str, a: ChildArgs) -> None:
    """Run one stage in this process; its result is the last stdout line (JSON)."""
    if stage in TORCH_STAGES:  # torch takes seconds to import: only where it runs
        import torch

        torch.set_num_threads(a.threads)
    base_mb = int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) // 1024
    res = CHILD_STAGES[stage](a)
    print(json.dumps({**res, "base_mb": base_mb}))


# --------------------------------------------------------------------------- parent


@dataclass
class Row:
    """One measured (or skipped) stage at one size."""

    size: int
    stage: str
    seconds: float = math.nan  # the measured part
    cost: float = math.nan  # measured, extrapolated or projected full-stage seconds
    peak_mb: float = math.nan  # the child's ru_maxrss
    info: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return math.isfinite(self.cost)


def run_child(stage: str, a: ChildArgs) -> tuple[dict[str, Any] | None, float, str]:
    """Run one stage child; returns (its JSON result or None on failure, peak RSS MB, error)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", stage, "--dir", str(a.folder),
           "--sizes", str(a.size), "--seed", str(a.seed), "--steps", str(a.steps),
           "--text-sample", str(a.text_sample), "--threads", str(a.threads)]  # fmt: skip
    if a.top_k is not None:
        cmd += ["--top-k", str(a.top_k)]
    if a.text_cache is not None:
        cmd += ["--text-cache", str(a.text_cache)]
    cmd += ["--hgnn", a.hgnn, "--two-tower", a.two_tower]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(a.threads),
           "TQDM_DISABLE": "1"}  # fmt: skip
    with tempfile.TemporaryFile("w+") as err_file:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err_file, text=True, env=env)
        assert proc.stdout is not None
        out = proc.stdout.read()
        # wait4 (not wait) returns this child's own rusage: its peak RSS alone.
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        err_file.seek(0)
        err = err_file.read()
    peak = usage.ru_maxrss / 1024  # Linux reports kilobytes
    if code != 0:
        why = "killed (SIGKILL: out of memory?)" if code == -9 else err.strip()[-400:]
        return None, peak, f"exit {code}: {why}"
    return json.loads(out.strip().splitlines()[-1]), peak, ""


def memory_projection(rows: list[Row], stage: str, size: int) -> float | None:
    """Projected peak MB of ``stage`` at ``size`` from the smaller sizes measured (exponent
    from >= 2 sizes, else linear from one)."""
    done = [r for r in rows if r.stage == stage and r.ok and r.size < size]
    if not done:
        return None
    k = growth_exponent([r.size for r in done], [r.peak_mb for r in done])
    last = max(done, key=lambda r: r.size)
    return project(last.size, size, last.peak_mb, 1.0 if k is None else k)


def measure(args: argparse.Namespace) -> list[Row]:
    """Every requested stage at every size, smallest first; skips what cannot fit."""
    rows: list[Row] = []
    previous = {(r["size"], r["stage"]): r for r in (
        json.loads(args.previous.read_text()) if args.previous else [])}  # fmt: skip
    limit_mb = args.memory_gb * 1024
    for size in sorted(parse_size(s) for s in args.sizes.split(",")):
        folder = args.workdir / f"n{size}"
        folder.mkdir(parents=True, exist_ok=True)
        a = ChildArgs(folder, size, args.seed, args.steps, args.text_sample, args.threads,
                      args.top_k, None, args.hgnn, args.two_tower)  # fmt: skip
        failed: dict[str, str] = {}  # stage -> why it has no output at this size
        for stage in args.stages:  # loop over stages
            if (size, stage) in previous and math.isfinite(previous[(size, stage)]["cost"]):
                # measured by an earlier run: reused as is
                rows.append(Row(**previous[(size, stage)]))
                print(format_row(rows[-1]), flush=True)
                continue
            row = Row(size, stage)
            rows.append(row)
            if stage == "generate" and (folder / "data" / "meta.json").is_file():
                row.info = "reused"
                continue
            proj = memory_projection(rows, stage, size)
            if NEEDS.get(stage) in failed:
                row.info = f"skipped: needs {NEEDS[stage]}"
                failed[stage] = row.info
            elif proj is not None and proj > 0.9 * limit_mb:
                row.info = f"skipped: projected peak {proj / 1024:.1f} GB > {args.memory_gb} GB"
                failed[stage] = row.info
            else:
                print(f"[scale] {fmt_size(size)} {stage} ...", file=sys.stderr, flush=True)
                res, peak, err = run_child(stage, a)
                if res is None:
                    row.info = failed[stage] = f"failed: {err}"
                else:
                    row.seconds, row.cost, row.peak_mb = res["seconds"], res["cost"], peak
                    row.info = res.get("info", "")
                    row.extra = {"base_mb": res["base_mb"]}
            if not row.ok and row.info.startswith("skipped") and proj is not None:
                row.extra["projected_mb"] = proj
            print(format_row(row), flush=True)
    return rows


def format_row(r: Row) -> str:
    sec = f"{r.seconds:9.1f}" if r.ok else f"{'-':>9}"
    cost = f"{r.cost:10.1f}" if r.ok else f"{'-':>10}"
    peak = f"{r.peak_mb:8.0f}" if r.ok else f"{'-':>8}"
    return f"{fmt_size(r.size):>6} {r.stage:<10} {sec} {cost} {peak}  {r.info}"


HEADER = f"{'size':>6} {'stage':<10} {'seconds':>9} {'cost s':>10} {'peak MB':>8}  notes"


def synthetic_items(size: int) -> int:
    """Catalogue size of the default synthetic dataset of ``size`` interactions."""
    from hgrec.datasets.synthetic import make_params

    return make_params(size).n_items


def summarize(rows: list[Row], stages: Sequence[str], at: int, at_items: int) -> list[str]:
    """Per stage: time and memory exponents, the projection to ``at`` interactions and, for
    the stages driven by the catalogue, to ``at_items`` items (synthetic data grows items
    with interactions, so k holds for either; real catalogues grow slower)."""
    out = [f"{'stage':<10} {'k time':>7} {'k mem':>6}   projection to {fmt_size(at)} interactions"
           f"{'':>14}to {fmt_size(at_items)} items"]  # fmt: skip
    for stage in stages:  # loop over stages
        done = [r for r in rows if r.stage == stage and r.ok]
        if not done:
            continue
        kt = growth_exponent([r.size for r in done], [r.cost for r in done])
        km = growth_exponent([r.size for r in done], [r.peak_mb for r in done])
        last = max(done, key=lambda r: r.size)
        if kt is None or km is None:
            out.append(f"{stage:<10} {'-':>7} {'-':>6}   (one size measured)")
            continue
        t, m = project(last.size, at, last.cost, kt), project(last.size, at, last.peak_mb, km)
        line = f"{stage:<10} {kt:7.2f} {km:6.2f}   {t / 3600:9.1f} h, {m / 1024:6.1f} GB"
        if stage in ITEM_STAGES:
            n_last = synthetic_items(last.size)
            ti = project(n_last, at_items, last.cost, kt)
            mi = project(n_last, at_items, last.peak_mb, km)
            line += f"   {ti / 3600:9.2f} h, {mi / 1024:6.1f} GB"
        out.append(line + f"   (from {fmt_size(last.size)}; projection)")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1M,10M,50M", help="interaction counts, e.g. 1M,10M")
    ap.add_argument("--stages", default=",".join(STAGES), help=f"subset of {','.join(STAGES)}")
    ap.add_argument("--steps", type=int, default=20, help="training steps timed per stage")
    ap.add_argument("--text-sample", type=int, default=2000, help="texts embedded (extrapolated)")
    ap.add_argument("--threads", type=int, default=2, help="torch / BLAS / index threads")
    ap.add_argument("--top-k", type=int, default=None, help="GraphConfig.top_k (default none)")
    ap.add_argument("--memory-gb", type=float, default=24.0, help="skip stages projected above")
    ap.add_argument("--project", default="800M", help="interactions to project to (P1: 800M+)")
    ap.add_argument("--project-items", default="3.75M", help="items to project to (P1: 3.75M)")
    ap.add_argument("--quality", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--hgnn", default="{}", help='HGNNConfig overrides, JSON: \'{"batch_size": 256}\'')
    ap.add_argument("--two-tower", default="{}", help="TwoTowerRecommender kwargs, JSON")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=Path(".cache/scale"))
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    ap.add_argument("--previous", type=Path, default=None,
                    help="rows (--json) of an earlier run: those (size, stage) are not rerun")
    ap.add_argument("--child", choices=sorted(CHILD_STAGES), help=argparse.SUPPRESS)
    ap.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--text-cache", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child_main(args.child, ChildArgs(args.dir, parse_size(args.sizes), args.seed, args.steps,
                                         args.text_sample, args.threads, args.top_k,
                                         args.text_cache, args.hgnn, args.two_tower))  # fmt: skip
        return
    args.stages = [s for s in args.stages.split(",") if s]
    unknown = sorted(set(args.stages) - set(STAGES))
    if unknown:
        ap.error(f"--stages: unknown {unknown}; expected a subset of {list(STAGES)}")
    args.stages = [s for s in STAGES if s in args.stages]  # pipeline order: inputs first
    print(f"cpu cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}, threads: "
          f"{args.threads}, steps timed: {args.steps}, text sample: {args.text_sample}, "
          f"graph top_k: {args.top_k}")  # fmt: skip
    from hgrec.config import HGNNConfig

    h = HGNNConfig().updated(**json.loads(args.hgnn))
    print(f"hgnn: batch_size {h.training.batch_size}, fanouts {h.model.fanouts}, hidden_dim {h.model.hidden_dim}, "
          f"out_dim {h.model.out_dim}, shared_negatives {h.sampler.shared_negatives}; two-tower overrides: "
          f"{args.two_tower}")  # fmt: skip
    print(HEADER, flush=True)
    rows = measure(args)
    print("\n" + HEADER)
    print("\n".join(format_row(r) for r in rows))
    print("seconds = measured part; cost s = full-stage seconds: measured, or for text "
          "extrapolated from the sample, for hgnn/2t projected to one full epoch (s/step x "
          "steps); peak MB = the stage child's ru_maxrss (includes its inputs).\n")
    print("\n".join(summarize(rows, args.stages, parse_size(args.project), parse_size(args.project_items))))
    if args.quality:
        smallest = min(parse_size(s) for s in args.sizes.split(","))
        folder = args.workdir / f"n{smallest}"
        a = ChildArgs(folder, smallest, args.seed, args.steps, args.text_sample, args.threads,
                      args.top_k, args.workdir / "text-cache", args.hgnn, args.two_tower)  # fmt: skip
        res, peak, err = run_child("quality", a) if (folder / "graph.pkl").is_file() else (
            None, 0.0, "needs the load and graph stages of the smallest size")
        print("\n" + quality_lines(fmt_size(smallest), res, err))
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in rows], indent=1, default=str) + "\n")


def quality_lines(size: str, res: dict[str, Any] | None, err: str) -> str:
    """The quality guard's verdict lines."""
    if res is None:
        return f"quality guard at {size}: not run ({err})"
    hr = res["hr10"]
    lines = []
    for protocol in ("cold", "warm"):
        a, b = hr[f"2t-hgnn/{protocol}"], hr[f"popularity/{protocol}"]
        verdict = "PASS" if a is not None and b is not None and a > b else "FAIL"
        lines.append(f"quality guard at {size} ({protocol}, valid users): 2T-HGNN HR@10 "
                     f"{a:.4f} vs Popularity {b:.4f}: {verdict}")  # fmt: skip
    lines.append(f"planted topics at {size}: share of 10 nearest neighbours with the same topic: "
                 f"HGNN {res['topic_hgnn']:.3f}, text {res['topic_text']:.3f}, chance "
                 f"{res['topic_chance']:.3f}")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"total {time.perf_counter() - t0:.0f}s", file=sys.stderr)
