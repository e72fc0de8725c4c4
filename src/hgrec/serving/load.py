"""A finished run directory loaded for serving (:func:`load_state`).

What is read (paths: :mod:`hgrec.utils.layout`, written by ``hgrec run``)::

    manifest.json                 status must be "complete"
    data/items|users|interactions.parquet   catalogue, users (split, demographics), history
    hgnn/embeddings.parquet       HGNN embeddings (optional: similar items, "because")
    models.json                   model name -> folder (params.json + state.npz); or models/<name>/
    index/<name>/, index/similar/ built here when missing (see :mod:`hgrec.serving.index`)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hgrec.data.dataset import Catalog
from hgrec.data.histories import Histories
from hgrec.data.schema import DEFAULT_EVENT, ITEM_ID, SPLIT, TITLE, USER_ID
from hgrec.data.vectors import read_item_vectors
from hgrec.models.base import Recommender, VectorRecommender
from hgrec.recommenders.registry import load_model
from hgrec.serving.index import (
    EXACT_THRESHOLD,
    TypeIndexes,
    build_type_indexes,
    load_type_indexes,
    save_type_indexes,
)
from hgrec.serving.state import ServingState
from hgrec.utils import layout
from hgrec.utils.artifacts import RunDir, file_sha256
from hgrec.utils.layout import RunLayout

#: Served model when ``--model`` is not given: the first of these present, else the first
#: model folder in name order.
MODEL_PREFERENCE = ("2t-hgnn", "hgnn-knn")


def _target_type(run_dir: Path, manifest: dict[str, Any], catalog: Catalog) -> str | None:
    """The run's new item type: the config's, else the one metrics.json evaluated."""
    target = ((manifest.get("config") or {}).get("data") or {}).get("target_type")
    metrics = RunLayout(run_dir).metrics
    if target is None and metrics.exists():
        target = json.loads(metrics.read_text()).get("target_type")
    return target if target in catalog.type_names else None


def model_folders(run_dir: Path) -> dict[str, Path]:
    """Model name -> folder: from ``models.json`` (written by ``hgrec run``), else ``models/*``."""
    runs = RunLayout(run_dir)
    if runs.models.exists():
        entries = json.loads(runs.models.read_text())
        return {
            name: run_dir / rel
            for name, rel in entries.items()
            if (run_dir / rel / layout.PARAMS).exists()
        }
    return {p.name: p for p in sorted(runs.models_dir.glob("*")) if (p / layout.PARAMS).exists()}


def choose_model(run_dir: Path, name: str | None) -> tuple[str, Path]:
    """The model to serve, (name, folder): ``name``, else :data:`MODEL_PREFERENCE`, else the first."""
    folders = model_folders(run_dir)
    if not folders:
        raise FileNotFoundError(
            f"{run_dir}: no saved model (expected models.json or models/<name>/params.json)"
        )
    if name is not None:
        if name not in folders:
            raise ValueError(f"{run_dir}: no model {name!r}; the run has {sorted(folders)}")
        return name, folders[name]
    for preferred in MODEL_PREFERENCE:
        if preferred in folders:
            return preferred, folders[preferred]
    return next(iter(folders.items()))


def _stored_histories(
    inter: pd.DataFrame, user_ids: pd.Index, catalog: Catalog, event_names: tuple[str, ...]
) -> tuple[Histories, dict[str, int]]:
    """CSR histories of every user (rows in ``user_ids`` order, chronological by ``order``).

    Rows whose user, item or event is not in the run are counted and skipped.
    """
    u = user_ids.get_indexer(inter[USER_ID].astype(str))
    i = pd.Index(catalog.item_ids).get_indexer(inter[ITEM_ID].astype(str))
    ev = (
        pd.Index(event_names).get_indexer(inter["event"].astype(str))
        if "event" in inter.columns else np.zeros(len(inter), dtype=np.int64)
    )
    ok = (u >= 0) & (i >= 0) & (ev >= 0)
    skipped = {
        "interactions": int(len(inter)),
        "skipped_unknown_user": int((u < 0).sum()),
        "skipped_unknown_item": int((i < 0).sum()),
        "skipped_unknown_event": int((ev < 0).sum()),
    }
    order = inter["order"].to_numpy(dtype=np.float64) if "order" in inter.columns else np.arange(len(inter), dtype=np.float64)
    weight = inter["weight"].to_numpy(dtype=np.float32) if "weight" in inter.columns else np.ones(len(inter), np.float32)
    u, i, ev, order, weight = u[ok], i[ok], ev[ok], order[ok], weight[ok]
    perm = np.lexsort((order, u))  # by user, then chronological; stable for ties
    counts = np.bincount(u, minlength=len(user_ids))
    h = Histories(
        indptr=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        items=i[perm].astype(np.int64),
        events=ev[perm].astype(np.int16),
        weights=weight[perm],
    )
    return h, skipped


def model_item_vectors(model: Recommender) -> np.ndarray | None:
    """(n_items, d) item vectors of a vector model (:class:`VectorRecommender`), else None."""
    if not isinstance(model, VectorRecommender):
        return None
    return np.asarray(model.item_vectors(), dtype=np.float32)


def _event_vocabulary(model: Recommender, inter: pd.DataFrame) -> tuple[str, ...]:
    # A two-tower model fixed its event codes at training time; use exactly those.
    featurizer = getattr(model, "user_featurizer", None)
    if featurizer is not None:
        return tuple(featurizer.event_names)
    if "event" not in inter.columns:
        return (DEFAULT_EVENT,)
    return tuple(sorted(inter["event"].astype(str).unique()))


def _indexes(
    vectors: np.ndarray, catalog: Catalog, folder: Path, expect: dict[str, Any],
    exact_threshold: int, seed: int, progress: bool,
) -> tuple[TypeIndexes, str]:
    """Reuse ``folder``'s index when it was built for the same vectors, else build and save."""
    cached = load_type_indexes(folder, vectors, catalog, expect)
    if cached is not None:
        return cached, "loaded"
    built = build_type_indexes(vectors, catalog, exact_threshold, seed=seed, progress=progress)
    try:
        save_type_indexes(built, folder, expect)
        return built, "built"
    except OSError as e:  # a read-only run directory still serves, from memory
        # strerror only: the full message names the path, and /metadata shows this.
        return built, f"built (not saved: {e.strerror or type(e).__name__})"


def load_state(
    run_dir: str | Path,
    model_name: str | None = None,
    exact_threshold: int = EXACT_THRESHOLD,
    require_complete: bool = True,
    progress: bool = False,
) -> ServingState:
    """Load a finished run for serving; builds (and saves) the indexes when missing.

    Args:
        run_dir: the run directory (a symlink is resolved now, so a reload after the link
            moved serves the new target).
        model_name: a model of the run (models.json); None picks :func:`choose_model`'s default.
        exact_threshold: item types with more items use the voyager HNSW index.
        require_complete: refuse runs whose manifest is not "complete" (``UserError``).
    """
    run_dir = Path(run_dir).resolve()
    manifest = RunDir(run_dir).finished_manifest(require_complete)
    seed = int(manifest.get("seed") or 0)
    runs = RunLayout(run_dir)
    for f in layout.TABLES:
        if not runs.table(f).exists():
            raise FileNotFoundError(f"{runs.table(f)} does not exist; expected the run's data stage")
    catalog = Catalog.from_items(pd.read_parquet(runs.table(layout.ITEMS)))
    users_raw = pd.read_parquet(runs.table(layout.USERS))
    users_raw[USER_ID] = users_raw[USER_ID].astype(str)
    users = users_raw.drop(columns=[c for c in (SPLIT, "user") if c in users_raw.columns])
    users = users.set_index(USER_ID, drop=True)
    inter = pd.read_parquet(runs.table(layout.INTERACTIONS))

    served_name, model_dir = choose_model(run_dir, model_name)
    model = load_model(model_dir)
    event_names = _event_vocabulary(model, inter)
    stored, load_report = _stored_histories(inter, users.index, catalog, event_names)
    threshold_key = {"exact_threshold": int(exact_threshold)}

    report: dict[str, Any] = {"load": load_report, "index": {}}
    user_indexes = None
    model_vectors = None
    model_vectors = model_item_vectors(model)
    if model_vectors is not None:
        expect = {"model": served_name, "state_sha256": file_sha256(model_dir / layout.STATE),
                  **threshold_key}
        user_indexes, how = _indexes(
            model_vectors, catalog, runs.index(served_name), expect,
            exact_threshold, seed, progress,
        )
        report["index"]["user"] = {"how": how, "types": user_indexes.meta}

    emb_file = runs.embeddings()
    item_vectors = None
    source = None
    if emb_file.exists():
        item_vectors = read_item_vectors(emb_file, catalog)[0]
        source = "hgnn"
        expect = {"source": "hgnn", "sha256": file_sha256(emb_file), **threshold_key}
    elif model_vectors is not None:
        item_vectors, source = model_vectors, f"model:{served_name}"
        expect = {"source": source, "state_sha256": file_sha256(model_dir / layout.STATE),
                  **threshold_key}
    item_indexes = None
    if item_vectors is not None:
        item_indexes, how = _indexes(
            item_vectors, catalog, runs.index("similar"), expect,
            exact_threshold, seed, progress,
        )
        report["index"]["similar"] = {"how": how, "source": source, "types": item_indexes.meta}

    popularity = np.bincount(stored.items, minlength=catalog.n_items).astype(np.int64)
    return ServingState(
        target_type=_target_type(run_dir, manifest, catalog),
        run_dir=run_dir,
        manifest=manifest,
        catalog=catalog,
        users=users,
        stored=stored,
        event_names=event_names,
        model=model,
        model_name=served_name,
        user_indexes=user_indexes,
        item_indexes=item_indexes,
        explain_vectors=item_vectors if item_vectors is not None else model_vectors,
        popularity=popularity,
        item_lookup=pd.Index(catalog.item_ids, dtype=object),
        titles=catalog.items[TITLE].fillna("").astype(str).to_numpy(dtype=object),
        titles_lower=catalog.items[TITLE].fillna("").astype(str).str.lower(),
        report=report,
    )
