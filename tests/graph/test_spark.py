"""The Spark engine in local mode gives exactly the scipy graph (collected and written)."""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hgrec.config import GraphConfig
from hgrec.data.dataset import Catalog, Dataset
from hgrec.data.load import load_canonical
from hgrec.data.schema import DataValidationError
from hgrec.graph.build import build_cograph, build_cograph_with_report
from hgrec.graph.io import TIMING_KEYS, read_graph, read_manifest
from hgrec.graph.types import CoGraph
from tests.graph._data import DAY, random_dataset

if importlib.util.find_spec("pyspark") is None:
    pytest.skip("pyspark is not installed (pip install 'pyspark>=3.5')", allow_module_level=True)
if shutil.which("java") is None:
    pytest.skip("Spark needs a Java runtime (java not on PATH)", allow_module_level=True)

pytestmark = [
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]


@pytest.fixture(scope="module")
def spark() -> Iterator[object]:
    from hgrec.graph.spark import SMALL_DATA_CONF, spark_session

    session = spark_session(
        "local[1]", shuffle_partitions=1, driver_memory="1g", conf=SMALL_DATA_CONF
    )
    yield session
    session.stop()


def _assert_same(a: CoGraph, b: CoGraph) -> None:
    assert a.relations.keys() == b.relations.keys()
    for k, r in a.relations.items():
        o = b.relations[k]
        order = np.lexsort((o.dst, o.src))  # Spark part files need not be sorted globally
        assert np.array_equal(r.src, o.src[order]) and np.array_equal(r.dst, o.dst[order])
        assert np.array_equal(r.count, o.count[order])


def test_spark_equals_scipy(spark: object, tmp_path: Path) -> None:
    from hgrec.graph.spark import build_cograph_spark

    ds = random_dataset(11)
    options = {"window": 3, "top_k": 2, "min_users": 1}
    expected = build_cograph(ds, GraphConfig(**options), progress=False)
    assert sum(r.n_edges for r in expected.relations.values()) > 0
    got = build_cograph(ds, GraphConfig(engine="spark", **options), progress=False)
    _assert_same(expected, got)

    plain = build_cograph(ds, GraphConfig(min_users=2), progress=False)
    assert build_cograph_spark(ds, GraphConfig(min_users=2), output=tmp_path, spark=spark) is None
    _assert_same(plain, read_graph(tmp_path, ds.catalog))
    report = read_manifest(tmp_path)["report"]
    assert report["engine"] == "spark"
    assert report["n_edges"] == sum(r.n_edges for r in plain.relations.values())


def _canonical(seed: int, timestamps: bool) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(items, users, interactions) canonical tables of ``random_dataset(seed)`` made harder:
    coarse orders (ties kept in file order), exact duplicate rows, empty events (= "stream")
    and shuffled file order."""
    ds = random_dataset(seed)
    inter = ds.interactions
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({
        "user_id": ds.users["user_id"].to_numpy()[inter["user"].to_numpy()],
        "item_id": ds.catalog.item_ids[inter["item"].to_numpy()],
        "position": inter["order"].to_numpy().astype(np.int64) // 2,
        "event": inter["event"].astype(str).to_numpy(dtype=object),
    })
    if timestamps:  # ties on the timestamp are broken by position, then file order
        table["timestamp"] = 1.7e9 + (table["position"].to_numpy() // 2) * 0.6 * DAY
        table["position"] = rng.integers(0, 3, size=len(table))
    table = pd.concat([table, table.iloc[rng.choice(len(table), 25)]], ignore_index=True)
    table.loc[rng.choice(len(table), 10, replace=False), "event"] = None
    table = table.iloc[rng.permutation(len(table))].reset_index(drop=True)
    return ds.catalog.items, ds.users[["user_id", "split"]], table


def _write_parquet(table: pd.DataFrame, folder: Path, parts: int) -> tuple[Path, Path]:
    """(what Spark reads: one file or a folder of ``parts`` files, the same rows in one file)."""
    whole = folder / "whole.parquet"
    pq.write_table(pa.Table.from_pandas(table, preserve_index=False), whole)
    if parts == 1:
        return whole, whole
    split = folder / "parts"
    split.mkdir()
    for k, chunk in enumerate(np.array_split(np.arange(len(table)), parts)):
        piece = pa.Table.from_pandas(table.iloc[chunk], preserve_index=False)
        pq.write_table(piece, split / f"part-{k}.parquet")  # path order = file order of whole
    return split, whole


@pytest.mark.parametrize(
    ("options", "timestamps", "parts"),
    [
        ({}, False, 1),
        ({"window": 3, "top_k": 2, "min_users": 2}, False, 2),
        ({"events": ["stream"], "window": 2}, True, 1),
        ({"window": 1, "window_unit": "days", "top_k": 3}, True, 2),
    ],
)
def test_from_parquet_equals_scipy(
    spark: object, tmp_path: Path, options: dict[str, object], timestamps: bool, parts: int
) -> None:
    from hgrec.graph.spark_job import build_cograph_spark_from_parquet

    items, users, table = _canonical(5, timestamps)
    source, whole = _write_parquet(table, tmp_path, parts)
    ds: Dataset = load_canonical(items, whole, users, target_type="t2")
    cfg = GraphConfig(**options)
    expected, want = build_cograph_with_report(ds, cfg, progress=False)
    assert want.n_edges > 0 and want.duplicate_user_items > 0
    train = ds.users.loc[ds.users["split"] == "train", "user_id"].to_numpy()
    out = tmp_path / "graph"
    report = build_cograph_spark_from_parquet(
        spark, str(source), ds.catalog, train, cfg, f"file://{out}" if parts == 2 else out
    )
    _assert_same(expected, read_graph(out, ds.catalog))
    for key, value in want.to_dict().items():
        if key not in ("engine", "seconds"):
            assert report[key] == value, key
    timing = {k: report[k] for k in TIMING_KEYS}
    assert read_manifest(out)["report"] | timing == report  # summary.json: content only
    assert report["rows_read"] == ds.report.counts["interaction_rows_read"] == len(table)
    # The 25 repeated rows: those of train users are collapsed, the rest belong to others.
    assert 0 < report["exact_duplicates_collapsed"] <= 25
    assert report["rows_of_other_users"] == len(table) - report["exact_duplicates_collapsed"] - (
        report["interactions_of_users"]
    ) > 0


@pytest.mark.parametrize(
    ("change", "column", "words"),
    [
        ("drop_item_id", "item_id", ["missing column 'item_id'"]),
        ("drop_order", None, ["no order column"]),
        ("unknown_items", "item_id", ["not in the catalogue", "3 rows", "'zz1'"]),
        ("bad_position", "position", ["non-integer or missing positions", "1 row", "2.5"]),
    ],
)
def test_from_parquet_bad_input(
    spark: object, tmp_path: Path, change: str, column: str | None, words: list[str]
) -> None:
    from hgrec.graph.spark_job import build_cograph_spark_from_parquet

    items, users, table = _canonical(3, False)
    if change == "drop_item_id":
        table = table.drop(columns="item_id")
    elif change == "drop_order":
        table = table.drop(columns="position")
    elif change == "bad_position":
        table["position"] = table["position"].astype(np.float64)
        table.loc[4, "position"] = 2.5
    else:
        rows = [7, 2, 40]
        table.loc[rows, "item_id"] = ["zz1", "zz2", "zz1"]
    path = tmp_path / "interactions.parquet"
    pq.write_table(pa.Table.from_pandas(table, preserve_index=False), path)
    catalog = Catalog.from_items(items)
    with pytest.raises(DataValidationError) as err:
        build_cograph_spark_from_parquet(
            spark, str(path), catalog, users["user_id"].to_numpy(), GraphConfig(), tmp_path / "g"
        )
    assert err.value.file == str(path) and err.value.column == column
    for word in words:
        assert word in str(err.value)
    if change == "unknown_items":
        assert err.value.rows == [3, 8, 41]  # 1-based, file order
