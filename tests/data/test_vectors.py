"""The run's one vector file format: round trip, catalogue alignment, errors, older runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hgrec.data.dataset import Catalog
from hgrec.data.schema import DataValidationError
from hgrec.data.vectors import read_item_vectors, read_vectors, write_vectors


def _catalog(n: int) -> Catalog:
    return Catalog.from_items(pd.DataFrame(
        {"item_id": [f"i{k}" for k in range(n)], "item_type": ["a"] * n, "title": ["t"] * n}
    ))


def test_round_trip_keeps_ids_vectors_and_note(tmp_path: Path) -> None:
    v = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    path = write_vectors(tmp_path / "v.parquet", np.array(["b", "a", "d", "c"]), v,
                         {"kind": "users", "model": "2t"})
    back = read_vectors(path)
    assert back.ids.tolist() == ["b", "a", "d", "c"] and back.meta == {"kind": "users", "model": "2t"}
    np.testing.assert_array_equal(back.vectors, v)


def test_item_vectors_come_back_in_catalogue_order(tmp_path: Path) -> None:
    cat = _catalog(5)
    v = np.arange(15, dtype=np.float32).reshape(5, 3)
    order = np.array([3, 0, 4, 1, 2])
    write_vectors(tmp_path / "v.parquet", cat.item_ids[order], v[order], {"kind": "hgnn"})
    back, meta = read_item_vectors(tmp_path / "v.parquet", cat)
    np.testing.assert_array_equal(back, v)
    assert meta == {"kind": "hgnn"}


@pytest.mark.parametrize(("n_file", "n_catalog", "problem"),
                         [(4, 5, "without a vector"), (5, 4, "not in the catalogue")])
def test_mismatched_catalogue_names_rows(
    tmp_path: Path, n_file: int, n_catalog: int, problem: str
) -> None:
    write_vectors(tmp_path / "v.parquet", _catalog(n_file).item_ids,
                  np.zeros((n_file, 2), np.float32), {"kind": "hgnn"})
    with pytest.raises(DataValidationError, match=problem):
        read_item_vectors(tmp_path / "v.parquet", _catalog(n_catalog))


def test_writer_refuses_what_a_reader_could_not_trust(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="kind"):
        write_vectors(tmp_path / "v.parquet", np.array(["a"]), np.zeros((1, 2)), {})
    with pytest.raises(ValueError, match=r"\(n, d\)"):
        write_vectors(tmp_path / "v.parquet", np.array(["a", "b"]), np.zeros((1, 2)), {"kind": "x"})
    assert not (tmp_path / "v.parquet").exists()


def test_a_file_of_an_older_run_is_read(tmp_path: Path) -> None:
    """Layout 1 wrote item_id / embedding, with the text note under hgrec.text_features."""
    cat = _catalog(3)
    v = np.eye(3, dtype=np.float32)
    table = pa.table({
        "item_id": pa.array(cat.item_ids.astype(str)),
        "embedding": pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1)), 3),
    }).replace_schema_metadata({b"hgrec.text_features": json.dumps({"model": "m"}).encode()})
    pq.write_table(table, tmp_path / "old.parquet")
    back, meta = read_item_vectors(tmp_path / "old.parquet", cat)
    np.testing.assert_array_equal(back, v)
    assert meta == {"model": "m"}


def test_missing_column_is_named(tmp_path: Path) -> None:
    pq.write_table(pa.table({"id": ["a"]}), tmp_path / "bad.parquet")
    with pytest.raises(DataValidationError, match="'vector'"):
        read_vectors(tmp_path / "bad.parquet")
