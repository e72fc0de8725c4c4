"""``hgrec run``: load -> text features -> graph -> HGNN -> baselines -> 2T -> evaluate -> report.

Each expensive stage is cached in the run directory by a content hash of its inputs and
settings (``RunDir``), so a rerun after changing, say, only the two-tower settings does not
recompute the graph, the text features or the HGNN.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hgrec.config import Config
from hgrec.data.dataset import Dataset
from hgrec.evaluation.protocols import Queries, build_queries
from hgrec.models.base import Recommender, TrainSet
from hgrec.graph.types import CoGraph
from hgrec.utils.artifacts import (
    RunDir,
    atomic_torch_save,
    atomic_write,
    atomic_write_json,
    config_hash,
)


@dataclass
class StageClock:
    """Per-stage wall time, printed as a progress line and saved in the manifest."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        print(f"[hgrec] {name} ...", flush=True)
        t0 = time.perf_counter()
        yield
        dt = time.perf_counter() - t0
        self.seconds[name] = self.seconds.get(name, 0.0) + dt
        print(f"[hgrec] {name} done in {dt:.1f}s", flush=True)


def _input_paths(config: Config) -> dict[str, Path]:
    d = config.data
    paths: dict[str, Path] = {}
    if d.adapter == "canonical":
        for key in ("items", "interactions", "users"):
            p = getattr(d, key)
            if p is not None:
                paths[key] = Path(p)
    elif d.path is not None:
        root = Path(d.path)
        if root.is_dir():
            paths.update({f.name: f for f in sorted(root.iterdir()) if f.is_file()})
    return paths


def save_dataset_tables(dataset: Dataset, folder: Path) -> None:
    """The catalogue, users and interactions (with string ids) a served run needs."""
    from hgrec.utils.artifacts import atomic_write_parquet

    atomic_write_parquet(folder / "items.parquet", dataset.catalog.items)
    atomic_write_parquet(folder / "users.parquet", dataset.users)
    inter = dataset.interactions
    atomic_write_parquet(
        folder / "interactions.parquet",
        pd.DataFrame(
            {
                "user_id": dataset.user_ids[inter["user"].to_numpy()],
                "item_id": dataset.catalog.item_ids[inter["item"].to_numpy()],
                "order": inter["order"].to_numpy(),
                "event": inter["event"].astype(str).to_numpy(),
                "weight": inter["weight"].to_numpy(),
            }
        ),
    )


def build_eval_queries(dataset: Dataset, config: Config) -> dict[tuple[str, str], Queries]:
    """Queries for every (protocol, split) of the config; the valid ones drive tuning."""
    return {
        (protocol, split): build_queries(dataset, split, protocol, dataset.target_type)
        for protocol in config.eval.protocols
        for split in ("valid", "test")
    }


def make_train_set(dataset: Dataset, item_text: np.ndarray | None, seed: int) -> TrainSet:
    train_users = dataset.users_in("train")
    return TrainSet.build(
        catalog=dataset.catalog,
        histories=dataset.histories(train_users),
        item_text=item_text,
        event_names=dataset.event_names,
        users=dataset.users.iloc[train_users].reset_index(drop=True),
        seed=seed,
    )


def run_pipeline(config: Config, out: Path, fresh: bool = False) -> dict[str, Any]:
    """Run every stage; returns the metrics dict (also written to ``out/metrics.json``)."""
    from hgrec.datasets import load_dataset
    from hgrec.evaluation.evaluate import evaluate_all
    from hgrec.evaluation.report import plot_tiers, render_report, write_metrics, write_report
    from hgrec.features.text import item_text_features, load_text_features, save_text_features
    from hgrec.utils.seed import seed_everything, set_threads

    seed = config.runtime.seed
    seed_everything(seed)
    set_threads(config.runtime.threads)
    clock = StageClock()
    run = RunDir(out)
    if fresh:
        run.clear()
    inputs = _input_paths(config)
    run.start(config.model_dump(mode="json"), inputs=inputs)

    with clock("load"):
        dataset = load_dataset(config.data, seed)
    _print_load_report(dataset)
    data_key = config_hash({"data": config.data.model_dump(mode="json"), "inputs": run.input_hashes, "seed": seed})

    if not run.is_done("data", data_key):
        with run.stage("data", data_key) as tmp:
            save_dataset_tables(dataset, tmp)

    text_key = config_hash({"data": data_key, "features": config.features.model_dump(mode="json")})
    with clock("text features"):
        if not run.is_done("features", text_key):
            with run.stage("features", text_key) as tmp:
                feats = item_text_features(dataset.catalog, config.features, config.runtime.progress)
                save_text_features(tmp / "text.parquet", dataset.catalog, feats)
                print(f"[hgrec] text: {feats.n_embedded} embedded, {feats.n_cached} cached, {feats.n_empty} empty (zero vector)")
        item_text = load_text_features(run.path / "features" / "text.parquet", dataset.catalog).embeddings

    queries = build_eval_queries(dataset, config)
    valid = {p: q for (p, s), q in queries.items() if s == "valid"}
    train = make_train_set(dataset, item_text, seed)
    popularity = dataset.item_popularity()
    text_hash = run.output_hash("features")

    models: dict[str, Recommender] = {}
    base_key = config_hash(
        {"data": data_key, "text": text_hash, "baselines": config.baselines.model_dump(mode="json"),
         "eval": config.eval.model_dump(mode="json")}
    )
    with clock("baselines"):
        if not run.is_done("baselines", base_key):
            with run.stage("baselines", base_key) as tmp:
                _fit_baselines(config, train, valid, dataset, popularity, tmp)
        models.update(_load_models(run.path / "baselines", config.baselines.enabled))

    hgnn_emb: np.ndarray | None = None
    if config.hgnn.enabled:
        graph_key = config_hash({"data": data_key, "graph": config.graph.model_dump(mode="json")})
        with clock("graph"):
            graph = _graph_stage(run, dataset, config, graph_key)
        hgnn_key = config_hash(
            {"graph": run.output_hash("graph"), "text": text_hash, "seed": seed,
             "hgnn": config.hgnn.model_dump(mode="json")}
        )
        with clock("hgnn"):
            hgnn_emb = _hgnn_stage(run, dataset, config, graph, item_text, hgnn_key)
        models["hgnn-knn"] = _load_models(run.path / "hgnn", ["hgnn-knn"])["hgnn-knn"]

    if config.two_tower.enabled:
        variants: list[tuple[str, np.ndarray | None]] = [("2t", None)]
        if hgnn_emb is not None:
            variants.append(("2t-hgnn", hgnn_emb))
        for name, emb in variants:
            key = config_hash(
                {"data": data_key, "text": text_hash, "seed": seed,
                 "hgnn": run.output_hash("hgnn") if emb is not None else None,
                 "two_tower": config.two_tower.model_dump(mode="json")}
            )
            with clock(name):
                models[name] = _two_tower_stage(run, name, key, config, train, valid, dataset, popularity, emb)

    atomic_write_json(
        run.path / "models.json",
        {name: _model_folder(name) for name in models},
    )
    with clock("evaluate"):
        metrics = evaluate_all(
            models, queries, dataset.catalog, popularity, config.eval,
            dataset_name=config.data.name, progress=config.runtime.progress,
        )
    run.record_stage_seconds(clock.seconds)
    write_metrics(run.path, metrics)
    write_report(run.path, metrics)
    plot_tiers(metrics, run.path / "tiers.png")
    run.finish()
    print(render_report(metrics))
    print(_format_times(clock.seconds))
    return metrics


def _model_folder(name: str) -> str:
    """Where a model lives in the run directory, relative to its root."""
    if name == "hgnn-knn":
        return "hgnn/hgnn-knn"
    if name in ("2t", "2t-hgnn"):
        return f"{name}/model"
    return f"baselines/{name}"


def _load_models(folder: Path, names: list[str]) -> dict[str, Recommender]:
    from hgrec.models.registry import load_model

    return {name: load_model(folder / name) for name in names}


def _fit_baselines(
    config: Config,
    train: TrainSet,
    valid: dict[str, Queries],
    dataset: Dataset,
    popularity: np.ndarray,
    folder: Path,
) -> None:
    """Tune every enabled baseline on valid users; save the best under ``folder/<name>``."""
    from hgrec.evaluation.tuning import tune
    from hgrec.models.registry import BASELINES, baseline_grid

    trials: dict[str, Any] = {}
    for name in config.baselines.enabled:
        if name not in BASELINES:
            raise ValueError(f"baselines.enabled: unknown model {name!r}; known: {sorted(BASELINES)}")
        cls = BASELINES[name]
        grid = baseline_grid(name, config.baselines)
        factory: Callable[[dict[str, Any]], Recommender] = lambda params, cls=cls: cls(**params)
        t0 = time.perf_counter()
        result = tune(factory, grid, train, valid, dataset.catalog, popularity, config.eval,
                      progress=config.runtime.progress)
        print(f"[hgrec] {name}: best {result.best_params} of {len(result.trials)} trial(s), "
              f"{time.perf_counter() - t0:.1f}s")
        result.best_model.save(folder / name)
        trials[name] = {"best": result.best_params, "trials": result.trials}
    atomic_write_json(folder / "tuning.json", trials)


def _graph_stage(run: RunDir, dataset: Dataset, config: Config, key: str) -> CoGraph:
    from hgrec.graph.build import build_cograph_with_report
    from hgrec.graph.io import read_graph, read_manifest, write_graph
    from hgrec.graph.summary import format_summary

    if not run.is_done("graph", key):
        with run.stage("graph", key) as tmp:
            graph, report = build_cograph_with_report(dataset, config.graph, progress=config.runtime.progress)
            write_graph(graph, tmp, dataset.catalog, report.to_dict())
    summary = read_manifest(run.path / "graph")
    print(format_summary(summary.get("summary", summary)))
    return read_graph(run.path / "graph", dataset.catalog)


def _hgnn_stage(
    run: RunDir, dataset: Dataset, config: Config, graph: CoGraph, item_text: np.ndarray, key: str
) -> np.ndarray:
    """Train the HGNN (resuming from ``<run>/checkpoints/hgnn``) and save its embeddings."""
    import torch

    from hgrec.models.hgnn_knn import HGNNKNN
    from hgrec.training.hgnn import train_hgnn

    folder = run.path / "hgnn"
    if not run.is_done("hgnn", key):
        ckpt = run.path / "checkpoints" / f"hgnn-{key[:12]}"
        with run.stage("hgnn", key) as tmp:
            result = train_hgnn(graph, item_text, config.hgnn, seed=config.runtime.seed,
                                checkpoint_dir=ckpt, progress=config.runtime.progress)
            save_item_embeddings(tmp / "embeddings.parquet", dataset, result.embeddings)
            atomic_torch_save(tmp / "model.pt", result.model.state_dict())
            atomic_write_json(tmp / "history.json", {"best_epoch": result.best_epoch, "epochs": result.history})
            HGNNKNN(embeddings=result.embeddings).fit(make_train_set(dataset, None, config.runtime.seed)).save(tmp / "hgnn-knn")
    return load_item_embeddings(folder / "embeddings.parquet", dataset)


def save_item_embeddings(path: Path, dataset: Dataset, emb: np.ndarray) -> None:
    """Parquet: item_id, item_type, embedding (fixed-size float32 list)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    c = dataset.catalog
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    table = pa.table(
        {
            "item_id": pa.array(c.item_ids.astype(str)),
            "item_type": pa.array(np.asarray(c.type_names, dtype=object)[c.item_type].astype(str)),
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(emb.reshape(-1)), emb.shape[1]),
        }
    )
    atomic_write(path, lambda f: pq.write_table(table, f))


def load_item_embeddings(path: Path, dataset: Dataset) -> np.ndarray:
    """(n_items, d) float32 in catalogue order; errors if ids do not match the catalogue."""
    from hgrec.pipeline.similar import load_run_embeddings

    return load_run_embeddings(path.parent.parent, dataset.catalog)


def _two_tower_stage(
    run: RunDir,
    name: str,
    key: str,
    config: Config,
    train: TrainSet,
    valid: dict[str, Queries],
    dataset: Dataset,
    popularity: np.ndarray,
    hgnn: np.ndarray | None,
) -> Recommender:
    """Train 2T (hgnn None) or 2T-HGNN, early-stopped on valid users' mean HR@10."""
    from hgrec.evaluation.evaluate import evaluate
    from hgrec.models.two_tower import TwoTowerRecommender

    def validate(model: Recommender) -> float:
        scores = [
            evaluate(model, q, dataset.catalog, popularity, config.eval, progress=False)[f"hr@{config.eval.hr_k}"]
            for q in valid.values()
        ]
        return float(np.mean([s or 0.0 for s in scores]))

    if not run.is_done(name, key):
        with run.stage(name, key) as tmp:
            model = TwoTowerRecommender.from_config(config.two_tower, hgnn=hgnn)
            model.fit(train, validate=validate)
            model.save(tmp / "model")
            atomic_write_json(tmp / "training.json", getattr(model, "report_", {}))
    return _load_models(run.path / name, ["model"])["model"]


def _print_load_report(dataset: Dataset) -> None:
    c = dataset.catalog
    types = ", ".join(f"{t}: {int((c.item_type == i).sum()):,}" for i, t in enumerate(c.type_names))
    splits = dataset.users["split"].value_counts().to_dict()
    print(
        f"[hgrec] {dataset.name}: {c.n_items:,} items ({types}); {dataset.n_users:,} users "
        f"{splits}; {len(dataset.interactions):,} interactions; target type {dataset.target_type!r}"
    )
    for k, v in dataset.report.counts.items():
        print(f"[hgrec]   {k}: {v:,}")
    for note in dataset.report.notes:
        print(f"[hgrec]   note: {note}")


def _format_times(seconds: dict[str, float]) -> str:
    total = sum(seconds.values())
    rows = "\n".join(f"| {k} | {v:.1f} |" for k, v in seconds.items())
    return f"\n| stage | seconds |\n|---|---:|\n{rows}\n| total | {total:.1f} |\n"
