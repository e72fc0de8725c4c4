"""``hgrec similar ITEM_ID --run RUN``: the nearest items by HGNN embedding, across types."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from hgrec.data.dataset import Catalog
from hgrec.data.vectors import read_item_vectors
from hgrec.errors import UserError
from hgrec.models.hgnn_knn import similar_items
from hgrec.utils import layout
from hgrec.utils.artifacts import RunDir
from hgrec.utils.layout import RunLayout


def load_run_catalog(run: Path) -> Catalog:
    """The catalogue a finished run was trained on (``<run>/data/items.parquet``)."""
    path = RunLayout(run).table(layout.ITEMS)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; expected a run directory written by `hgrec run`")
    return Catalog.from_items(pd.read_parquet(path))


def load_run_embeddings(run: Path, catalog: Catalog) -> np.ndarray:
    """(n_items, d) HGNN embeddings of a run, in catalogue order."""
    path = RunLayout(run).embeddings()
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; the run has no HGNN stage (hgnn.enabled)")
    return read_item_vectors(path, catalog)[0]


def print_similar(run: Path, item_id: str, k: int = 10, item_type: str | None = None) -> None:
    """Print the k items nearest to ``item_id`` in a finished run's HGNN space.

    Raises:
        UserError: the run has not finished (its files may be half written), an unknown
            item id or item type.
    """
    RunDir(run).finished_manifest()
    catalog = load_run_catalog(run)
    index = int(catalog.index_of([item_id])[0])
    if index < 0:
        raise UserError(f"item_id {item_id!r} is not in the run's catalogue ({catalog.n_items:,} items)")
    if item_type is not None and item_type not in catalog.type_names:
        raise UserError(f"unknown item type {item_type!r}; the catalogue has {list(catalog.type_names)}")
    emb = load_run_embeddings(run, catalog)
    ids, scores = similar_items(emb, catalog, index, k, item_type)
    rows = catalog.index_of(ids)
    titles = catalog.items["title"].to_numpy()
    types = np.asarray(catalog.type_names)[catalog.item_type]
    print(f"{item_id} [{types[index]}] {titles[index]}")
    for rank, (i, s) in enumerate(zip(rows, scores, strict=True), start=1):
        print(f"{rank:>3}. {s:.3f}  {catalog.item_ids[i]} [{types[i]}] {titles[i]}")
