"""The one Parquet format of vectors in a run: text features, HGNN embeddings, served vectors.

A file has two columns and a JSON note in the schema metadata:

    id      string                      an item id (or a user id for user vectors)
    vector  fixed_size_list<float32>[d] one row per id
    metadata ``hgrec.vectors``: {"kind": "text" | "hgnn" | "items" | "users", ...}

``kind`` says what the vectors are; the rest is the writer's (the text model id, the served
model's name). Files are written atomically. :func:`read_item_vectors` returns the rows in
catalogue order and names every id that does not match the catalogue.

Example:
    >>> write_vectors(path, catalog.item_ids, z, {"kind": "hgnn"})
    >>> z2, meta = read_item_vectors(path, catalog)   # (n_items, d) float32, {"kind": "hgnn"}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from hgrec.data.dataset import Catalog
from hgrec.data.schema import DataValidationError
from hgrec.utils.artifacts import atomic_write

ID_COLUMN = "id"
VECTOR_COLUMN = "vector"
META_KEY = b"hgrec.vectors"
# Text features and HGNN embeddings of runs written before this format (layout version 1)
# named the columns item_id / embedding; they are read as kind "text" or "hgnn" alike.
LEGACY_COLUMNS = ("item_id", "embedding")


@dataclass(frozen=True)
class VectorFile:
    """What a vector file holds: ids (n,) str, vectors (n, d) float32, and its note."""

    ids: np.ndarray
    vectors: np.ndarray
    meta: dict[str, Any]


def write_vectors(path: str | Path, ids: np.ndarray, vectors: np.ndarray,
                  meta: dict[str, Any]) -> Path:
    """Write ``vectors`` (n, d) keyed by ``ids`` (n,), ``meta`` (JSON, with a ``kind``) in the
    schema metadata. Atomic."""
    v = np.ascontiguousarray(vectors, dtype=np.float32)
    ids = np.asarray(ids).astype(str)
    if v.ndim != 2 or len(ids) != len(v):
        raise ValueError(f"expected (n, d) vectors for {len(ids)} ids, got shape {v.shape}")
    if "kind" not in meta:
        raise ValueError(f"meta needs a 'kind' (what the vectors are), got {sorted(meta)}")
    table = pa.table({
        ID_COLUMN: pa.array(ids, type=pa.string()),
        VECTOR_COLUMN: pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1)), v.shape[1]),
    }).replace_schema_metadata({META_KEY: json.dumps(meta, sort_keys=True).encode()})
    return atomic_write(path, lambda f: pq.write_table(table, f))


def read_vectors(path: str | Path) -> VectorFile:
    """Read a :func:`write_vectors` file as written (file order).

    Raises:
        FileNotFoundError: no file at ``path``.
        DataValidationError: a column is missing or the vectors are not fixed-size lists.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"vector file {path} does not exist")
    table = pq.read_table(path)
    notes = table.schema.metadata or {}
    if ID_COLUMN not in table.column_names and set(LEGACY_COLUMNS) <= set(table.column_names):
        table = table.select(list(LEGACY_COLUMNS)).rename_columns([ID_COLUMN, VECTOR_COLUMN])
    for col in (ID_COLUMN, VECTOR_COLUMN):
        if col not in table.column_names:
            raise DataValidationError(
                str(path), col, "column missing",
                expected=f"columns {ID_COLUMN!r}, {VECTOR_COLUMN!r} (hgrec.data.vectors)",
            )
    col = table.column(VECTOR_COLUMN).combine_chunks()
    if not pa.types.is_fixed_size_list(col.type):
        raise DataValidationError(
            str(path), VECTOR_COLUMN, f"type {col.type}", expected="fixed-size list of float32"
        )
    dim = col.type.list_size
    vectors = col.values.to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1, dim)
    ids = table.column(ID_COLUMN).to_numpy(zero_copy_only=False).astype(str)
    raw = notes.get(META_KEY, notes.get(b"hgrec.text_features"))  # the latter: layout 1
    return VectorFile(ids, vectors, json.loads(raw) if raw else {})


def read_item_vectors(path: str | Path, catalog: Catalog) -> tuple[np.ndarray, dict[str, Any]]:
    """(n_items, d) float32 vectors in ``catalog`` order (row i = item i), and the note.

    Raises:
        DataValidationError: duplicate ids, ids not in the catalogue, or catalogue items
            without a vector (rows and values named).
    """
    f = read_vectors(path)
    ids = f.ids
    dup = pd.Index(ids).duplicated()
    if dup.any():
        rows = np.flatnonzero(dup)
        raise DataValidationError(
            str(path), ID_COLUMN, "duplicate item ids", rows=rows.tolist(),
            values=ids[rows[:5]].tolist(), n_rows=len(rows), expected="one row per item",
        )
    idx = catalog.index_of(ids)
    unknown = np.flatnonzero(idx < 0)
    if len(unknown):
        raise DataValidationError(
            str(path), ID_COLUMN, "item ids not in the catalogue", rows=unknown.tolist(),
            values=ids[unknown[:5]].tolist(), n_rows=len(unknown),
            expected="vectors written for this catalogue",
        )
    have = np.zeros(catalog.n_items, dtype=bool)
    have[idx] = True
    if not have.all():
        missing = np.flatnonzero(~have)
        raise DataValidationError(
            str(path), ID_COLUMN, "catalogue items without a vector (rows are catalogue rows)",
            rows=missing.tolist(), values=catalog.item_ids[missing[:5]].tolist(),
            n_rows=len(missing), expected="a vector for every catalogue item (rerun the stage)",
        )
    out = np.empty((catalog.n_items, f.vectors.shape[1]), dtype=np.float32)
    out[idx] = f.vectors
    return out, f.meta
