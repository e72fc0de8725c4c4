"""Graph on disk: round trip, layout, and the catalogue checks of read_graph."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from hgrec.config import GraphConfig
from hgrec.data.dataset import Catalog
from hgrec.data.schema import DataValidationError
from hgrec.graph.build import build_cograph_with_report
from hgrec.graph.io import read_graph, write_graph
from tests.graph._data import hand_dataset, random_dataset


@pytest.mark.parametrize("seed", [0, 1])
def test_round_trip(tmp_path: Path, seed: int) -> None:
    ds = random_dataset(seed)
    graph, report = build_cograph_with_report(ds, GraphConfig(top_k=3), progress=False)
    write_graph(graph, tmp_path / "g", ds.catalog, report.to_dict())
    back = read_graph(tmp_path / "g", ds.catalog)
    assert back.type_names == graph.type_names and back.n_items == graph.n_items
    assert back.relations.keys() == graph.relations.keys()
    for k, r in graph.relations.items():
        b = back.relations[k]
        assert (b.src_type, b.dst_type) == (r.src_type, r.dst_type)
        assert np.array_equal(b.src, r.src) and np.array_equal(b.dst, r.dst)
        assert np.array_equal(b.count, r.count) and b.count.dtype == np.int32
    manifest = json.loads((tmp_path / "g" / "summary.json").read_text())
    assert manifest["report"]["n_edges"] == sum(r.n_edges for r in graph.relations.values())
    assert manifest["summary"]["edges"] == {k: r.n_edges for k, r in graph.relations.items()}


def test_layout_has_ids(tmp_path: Path) -> None:
    ds = hand_dataset()
    graph, _ = build_cograph_with_report(ds, GraphConfig(), progress=False)
    write_graph(graph, tmp_path, ds.catalog)
    table = pq.read_table(tmp_path / "a__b.parquet").to_pandas()
    assert list(table.columns) == ["src", "dst", "src_id", "dst_id", "count"]
    ids = table[["src_id", "dst_id"]].values.tolist()
    assert ids == [["a0", "b0"], ["a0", "b1"], ["a1", "b0"], ["a1", "b1"]]
    assert table["count"].tolist() == [1, 2, 2, 2]


def _catalog_with(ds_items: pd.DataFrame, index: int, new_id: str) -> Catalog:
    items = ds_items.copy()
    items.loc[index, "item_id"] = new_id
    return Catalog.from_items(items)


def test_id_mismatch_is_a_clear_error(tmp_path: Path) -> None:
    ds = hand_dataset()
    graph, _ = build_cograph_with_report(ds, GraphConfig(), progress=False)
    write_graph(graph, tmp_path, ds.catalog)
    other = _catalog_with(ds.catalog.items, 1, "a1-renamed")
    with pytest.raises(DataValidationError) as err:
        read_graph(tmp_path, other)
    msg = str(err.value)
    # a__a holds the single edge (a0, a1): a1 is its dst, in row 1.
    assert "a__a.parquet, column 'dst_id'" in msg and "row 1;" in msg
    assert "values 'a1'" in msg and "expected 'a1-renamed'" in msg and "another catalogue" in msg


def test_size_mismatch_is_a_clear_error(tmp_path: Path) -> None:
    ds = hand_dataset()
    graph, _ = build_cograph_with_report(ds, GraphConfig(), progress=False)
    write_graph(graph, tmp_path, ds.catalog)
    smaller = Catalog.from_items(ds.catalog.items.iloc[:4])
    with pytest.raises(DataValidationError, match=r"summary.json.*5 items.*4 items"):
        read_graph(tmp_path, smaller)
    with pytest.raises(ValueError, match="graph has 5 items"):
        write_graph(graph, tmp_path / "x", smaller)
    with pytest.raises(FileNotFoundError, match="summary.json does not exist"):
        read_graph(tmp_path / "missing", ds.catalog)
