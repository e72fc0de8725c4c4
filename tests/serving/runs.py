"""Tiny run directories for the serving tests, built without the pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from hgrec.data.dataset import Dataset
from hgrec.data.vectors import write_vectors
from hgrec.models.base import TrainSet
from hgrec.models.hgnn_knn import HGNNKNN
from hgrec.models.popularity import Popularity
from tests.conftest import make_tiny_dataset


def planted_embeddings(dataset: Dataset, seed: int, dim: int = 8) -> np.ndarray:
    """(n_items, dim) L2-normalised: a cluster direction plus small noise, so items of one
    taste cluster (across both types) are each other's nearest neighbours."""
    rng = np.random.default_rng(seed)
    cluster = dataset.catalog.items["cluster"].to_numpy()
    z = np.eye(dim, dtype=np.float32)[cluster] + 0.15 * rng.normal(size=(len(cluster), dim))
    return (z / np.linalg.norm(z, axis=1, keepdims=True)).astype(np.float32)


def write_embeddings(path: Path, item_ids: np.ndarray, z: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_vectors(path, item_ids, z, {"kind": "hgnn"})


def make_run(
    path: Path, seed: int = 0, title_tag: str = "", models: tuple[str, ...] = ("hgnn-knn",)
) -> Path:
    """A complete run directory: data tables, HGNN embeddings, saved models, manifest.

    ``title_tag`` is appended to every title so tests can tell two runs apart.
    """
    ds = make_tiny_dataset(seed=seed)
    data = path / "data"
    data.mkdir(parents=True, exist_ok=True)
    items = ds.catalog.items.copy()
    items["title"] = items["title"] + title_tag
    items.to_parquet(data / "items.parquet", index=False)
    users = ds.users.copy()
    users["country"] = np.where(np.arange(len(users)) % 2 == 0, "SE", "US")
    users.to_parquet(data / "users.parquet", index=False)
    inter = ds.interactions
    pd.DataFrame({
        "user_id": ds.user_ids[inter["user"].to_numpy()],
        "item_id": ds.catalog.item_ids[inter["item"].to_numpy()],
        "order": inter["order"].to_numpy(),
        "event": inter["event"].astype(str).to_numpy(),
        "weight": inter["weight"].to_numpy(),
    }).to_parquet(data / "interactions.parquet", index=False)
    z = planted_embeddings(ds, seed)
    write_embeddings(path / "hgnn" / "embeddings.parquet", ds.catalog.item_ids, z)
    if "hgnn-knn" in models:
        HGNNKNN(embeddings=z).save(path / "models" / "hgnn-knn")
    if "popularity" in models:
        train = TrainSet.build(ds.catalog, ds.histories(ds.users_in("train")))
        Popularity().fit(train).save(path / "models" / "popularity")
    manifest = {
        "status": "complete", "started_at": "2024-01-01T00:00:00+00:00",
        "finished_at": "2024-01-01T00:01:00+00:00", "seed": seed,
        "config": {"data": {"name": "tiny", "target_type": "food"}},
        "versions": {"python": "3.11", "hgrec": "0.1.0"}, "stages": {}, "extra": {},
    }
    (path / "manifest.json").write_text(json.dumps(manifest))
    return path
