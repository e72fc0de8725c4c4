"""Graph on disk: one Parquet file per relation plus ``summary.json``.

Layout of ``folder``::

    <relation>.parquet   columns src, dst (int64 item indices), src_id, dst_id (item id
                         strings), count (int32 co-count); a file, or a folder of part files
                         when Spark wrote it
    summary.json         {"format": {n_items, type_names, relations: {name: {src_type,
                         dst_type, file}}, catalog_sha256}, "summary": summarize(graph),
                         "report": build report without its timing, or null}

Everything in the folder depends on the graph's content only: the folder's hash is part of
every downstream stage key (``RunDir.output_hash``), so a wall time saved here would make two
builds of the same graph look different. Build times live in the run's manifest.

The ids are stored next to the indices so :func:`read_graph` can check that the graph still
belongs to the catalogue it is read with (indices silently shift when a catalogue changes).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from hgrec.data.dataset import Catalog
from hgrec.data.schema import DataValidationError
from hgrec.graph.summary import summarize
from hgrec.graph.types import CoGraph, RelationEdges

SUMMARY_FILE = "summary.json"
COLUMNS = ("src", "dst", "src_id", "dst_id", "count")
TIMING_KEYS = ("seconds",)  # build report entries that vary between identical builds


def catalog_fingerprint(catalog: Catalog) -> str:
    """sha256 of the item ids in index order."""
    return hashlib.sha256("\n".join(catalog.item_ids.tolist()).encode()).hexdigest()


def relation_file(folder: Path, name: str) -> Path:
    return folder / f"{name}.parquet"


def write_manifest(
    folder: Path,
    catalog: Catalog,
    relation_types: dict[str, tuple[str, str]],
    summary: dict[str, Any],
    report: dict[str, Any] | None = None,
) -> Path:
    """Write ``summary.json`` describing the relation files of ``folder``; returns its path.

    ``report``'s timings (:data:`TIMING_KEYS`) are left out, so equal graphs give equal files.
    """
    if report is not None:
        report = {k: v for k, v in report.items() if k not in TIMING_KEYS}
    manifest = {
        "format": {
            "n_items": catalog.n_items,
            "type_names": list(catalog.type_names),
            "relations": {
                name: {"src_type": a, "dst_type": b, "file": relation_file(Path(), name).name}
                for name, (a, b) in relation_types.items()
            },
            "catalog_sha256": catalog_fingerprint(catalog),
        },
        "summary": summary,
        "report": report,
    }
    path = folder / SUMMARY_FILE
    path.write_text(json.dumps(manifest, indent=2))
    return path


def write_graph(
    graph: CoGraph, folder: str | Path, catalog: Catalog, report: dict[str, Any] | None = None
) -> Path:
    """Write ``graph`` under ``folder`` (created); ``report`` (e.g. ``GraphReport.to_dict()``)
    is saved in summary.json. Returns the folder."""
    folder = Path(folder)
    if graph.n_items != catalog.n_items or graph.type_names != catalog.type_names:
        raise ValueError(
            f"graph has {graph.n_items} items of types {list(graph.type_names)}, the catalogue "
            f"{catalog.n_items} of types {list(catalog.type_names)}; expected the catalogue "
            "the graph was built from"
        )
    folder.mkdir(parents=True, exist_ok=True)
    ids = catalog.item_ids
    for name, r in graph.relations.items():
        table = pa.table(
            {
                "src": pa.array(r.src, pa.int64()),
                "dst": pa.array(r.dst, pa.int64()),
                "src_id": pa.array(ids[r.src], pa.string()),
                "dst_id": pa.array(ids[r.dst], pa.string()),
                "count": pa.array(r.count, pa.int32()),
            }
        )
        pq.write_table(table, relation_file(folder, name))
    relation_types = {k: (r.src_type, r.dst_type) for k, r in graph.relations.items()}
    write_manifest(folder, catalog, relation_types, summarize(graph), report)
    return folder


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The parsed summary.json of a graph folder."""
    path = Path(folder) / SUMMARY_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; expected a folder written by write_graph")
    return json.loads(path.read_text())


def read_graph(folder: str | Path, catalog: Catalog) -> CoGraph:
    """Read a graph written by :func:`write_graph` (or the Spark engine) for ``catalog``.

    Raises:
        DataValidationError: the catalogue differs from the one the graph was built with
            (size, types, or item ids at the stored indices), or a file is malformed. Rows are
            numbered from 1 (first edge of the file).
    """
    folder = Path(folder)
    fmt = read_manifest(folder)["format"]
    if fmt["n_items"] != catalog.n_items or tuple(fmt["type_names"]) != catalog.type_names:
        raise DataValidationError(
            str(folder / SUMMARY_FILE),
            None,
            f"the graph was built for {fmt['n_items']} items of types {fmt['type_names']}, the "
            f"catalogue has {catalog.n_items} items of types {list(catalog.type_names)}",
            expected="the catalogue the graph was built from",
        )
    relations: dict[str, RelationEdges] = {}
    for name, meta in fmt["relations"].items():
        path = folder / meta["file"]
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist; summary.json lists relation {name!r}")
        table = pq.read_table(path)
        missing = [c for c in COLUMNS if c not in table.column_names]
        if missing:
            raise DataValidationError(
                str(path), missing[0], "column missing", expected=f"columns {list(COLUMNS)}"
            )
        src = table.column("src").to_numpy().astype(np.int64)
        dst = table.column("dst").to_numpy().astype(np.int64)
        for col, idx, ids, t in (
            ("src", src, table.column("src_id"), meta["src_type"]),
            ("dst", dst, table.column("dst_id"), meta["dst_type"]),
        ):
            _check_ids(str(path), col, idx, ids.to_numpy().astype(object), catalog, t)
        relations[name] = RelationEdges(
            src_type=meta["src_type"],
            dst_type=meta["dst_type"],
            src=src,
            dst=dst,
            count=table.column("count").to_numpy().astype(np.int32),
        )
    return CoGraph(
        n_items=catalog.n_items,
        item_type=catalog.item_type,
        type_names=catalog.type_names,
        relations=relations,
    )


def _check_ids(
    file: str, col: str, idx: np.ndarray, ids: np.ndarray, catalog: Catalog, type_name: str
) -> None:
    """Indices in range, stored ids equal to the catalogue's, and the relation's item type."""
    out = np.flatnonzero((idx < 0) | (idx >= catalog.n_items))
    if len(out):
        raise DataValidationError(
            file, col, "item indices outside the catalogue", rows=out + 1, values=idx[out],
            expected=f"indices in [0, {catalog.n_items})",
        )
    bad = np.flatnonzero(catalog.item_ids[idx] != ids)
    if len(bad):
        raise DataValidationError(
            file, f"{col}_id", "item ids differ from the catalogue's ids at the stored indices",
            rows=bad + 1, values=ids[bad],
            expected=f"{catalog.item_ids[idx[bad[0]]]!r} (the catalogue's id at index "
            f"{idx[bad[0]]}); was the graph built from another catalogue?",
        )
    wrong = np.flatnonzero(catalog.item_type[idx] != catalog.type_code(type_name))
    if len(wrong):
        raise DataValidationError(
            file, col, f"items that are not of type {type_name!r}", rows=wrong + 1,
            values=ids[wrong], expected=f"only {type_name!r} items in this column",
        )
