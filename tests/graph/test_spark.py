"""The Spark engine in local mode gives exactly the scipy graph (collected and written)."""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from hgrec.config import GraphConfig
from hgrec.graph.build import build_cograph
from hgrec.graph.io import read_graph, read_manifest
from hgrec.graph.types import CoGraph
from tests.graph._data import random_dataset

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
