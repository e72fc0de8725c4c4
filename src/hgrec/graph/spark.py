"""The co-interaction graph build on Apache Spark (P1 section 4.1.1), for data beyond one machine.

Same rules as the scipy and DuckDB engines, in PySpark DataFrames: distinct (user, item);
self-join on user with i < j (or within the window, de-duplicated per user); groupBy + count;
``min_users``; top-K with a ``row_number`` window per (node, neighbour type), ties by index.
Locally the edges are collected back into a :class:`CoGraph`; with ``output`` they are written
as Parquet in the layout of :mod:`hgrec.graph.io` (a folder of part files per relation) and
nothing is collected but per-node degrees, which is how it runs on a cluster.

Two ways in: :func:`build_cograph_spark` (here) ships a loaded :class:`Dataset`'s selected
rows from the driver (fine up to tens of millions of interactions);
:func:`hgrec.graph.spark_job.build_cograph_spark_from_parquet`, the cluster job, reads the
canonical interactions Parquet on the executors, so the interactions never pass through the
driver (P1 scale); the driver holds only the catalogue and the train user ids.

pyspark is an optional dependency (``pip install hgrec[test]`` or ``pyspark>=3.5``), imported
only here; Spark needs a Java runtime (17).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hgrec.config import GraphConfig
from hgrec.data.dataset import Catalog, Dataset
from hgrec.graph.edges import EngineResult, graph_from_edges, unique_edges
from hgrec.graph.inputs import SECONDS_PER_DAY, GraphInput, select_interactions
from hgrec.graph.io import SUMMARY_FILE, relation_file, write_manifest
from hgrec.graph.summary import summarize_degrees
from hgrec.graph.types import CoGraph, relation_name

try:
    from pyspark.sql import DataFrame, SparkSession, Window
    from pyspark.sql import functions as F
except ImportError:  # pragma: no cover - exercised only without pyspark
    SparkSession = None  # type: ignore[assignment,misc]


# For tiny local runs (tests): JVM warm-up and code generation dominate, so skip them.
SMALL_DATA_CONF = {
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.adaptive.enabled": "false",
}


def spark_session(
    master: str = "local[2]",
    shuffle_partitions: int = 4,
    driver_memory: str = "2g",
    conf: dict[str, str] | None = None,
) -> SparkSession:
    """A small Spark session (UI off, few shuffle partitions, Arrow transfers); ``conf`` adds
    settings (e.g. :data:`SMALL_DATA_CONF`)."""
    if SparkSession is None:
        raise ImportError("the spark engine needs pyspark>=3.5 (pip install) and Java 17")
    builder = SparkSession.builder
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    spark = (
        builder.master(master)
        .appName("hgrec-graph")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.driver.memory", driver_memory)
        .config("spark.default.parallelism", str(shuffle_partitions))
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _inter_frame(spark: SparkSession, inp: GraphInput) -> DataFrame:
    """The selected interactions of ``inp`` uploaded from the driver as (u, i, r, o)."""
    return spark.createDataFrame(
        pd.DataFrame({"u": inp.user, "i": inp.item, "r": inp.rank, "o": inp.order})
    )


def items_frame(spark: SparkSession, catalog: Catalog) -> DataFrame:
    """(i, t, id): item index, type code and id string of every catalogue item."""
    return spark.createDataFrame(
        pd.DataFrame({
            "i": np.arange(catalog.n_items, dtype=np.int64),
            "t": catalog.item_type.astype(np.int64),
            "id": catalog.item_ids.astype(str),
        })
    )


def _pairs(inter: DataFrame, cfg: GraphConfig) -> DataFrame:
    """(src, dst, c) co-counts of every item pair with src < dst (inside the window, if any).

    ``inter`` has one row per used interaction: u (user key), i (item index), r (rank within
    the user after the event filter, 0, 1, ...) and o (order: position or epoch seconds).
    """
    if cfg.window is None:
        t = inter.select("u", "i").distinct()
        a, b = t.alias("a"), t.alias("b")
        joined = a.join(b, (F.col("a.u") == F.col("b.u")) & (F.col("a.i") < F.col("b.i")))
        pairs = joined.select(F.col("a.i").alias("src"), F.col("b.i").alias("dst"))
    else:
        a, b = inter.alias("a"), inter.alias("b")
        cond = (F.col("a.u") == F.col("b.u")) & (F.col("b.r") > F.col("a.r"))
        if cfg.window_unit == "positions":
            cond &= F.col("b.r") <= F.col("a.r") + int(cfg.window)
        else:
            cond &= F.col("b.o") - F.col("a.o") <= float(cfg.window) * SECONDS_PER_DAY
        joined = a.join(b, cond).where(F.col("a.i") != F.col("b.i"))
        # A user who meets the same pair twice inside the window counts once.
        pairs = joined.select(
            F.col("a.u").alias("u"),
            F.least("a.i", "b.i").alias("src"),
            F.greatest("a.i", "b.i").alias("dst"),
        ).distinct()
    return pairs.groupBy("src", "dst").agg(F.count(F.lit(1)).cast("int").alias("c"))


def _top_k(kept: DataFrame, types: DataFrame, k: int) -> DataFrame:
    """Edges in the top ``k`` of either endpoint per (node, neighbour type); see graph.edges."""
    both = kept.select(F.col("src").alias("v"), F.col("dst").alias("w"), "c").unionByName(
        kept.select(F.col("dst").alias("v"), F.col("src").alias("w"), "c")
    )
    both = both.join(F.broadcast(types.select(F.col("i").alias("w"), "t")), on="w")
    rank = F.row_number().over(Window.partitionBy("v", "t").orderBy(F.desc("c"), F.asc("w")))
    top = both.withColumn("rk", rank).where(F.col("rk") <= k)
    return top.select(
        F.least("v", "w").alias("src"), F.greatest("v", "w").alias("dst"), "c"
    ).distinct()


def edge_frame(
    inter: DataFrame, types: DataFrame, cfg: GraphConfig
) -> tuple[DataFrame, dict[str, int]]:
    """Pairs, ``min_users`` and top-K from a (u, i, r, o) DataFrame; ``types`` has (i, t)."""
    pairs = _pairs(inter, cfg).persist()
    row = pairs.agg(F.count(F.lit(1)).alias("n"), F.sum("c").alias("s")).collect()[0]
    kept = pairs.where(F.col("c") >= cfg.min_users).persist()
    n_kept = kept.count()
    edges = kept if cfg.top_k is None else _top_k(kept, types, cfg.top_k)
    stats = {
        "distinct_pairs": int(row["n"]),
        "cooccurrences": int(row["s"] or 0),
        "dropped_by_min_users": int(row["n"]) - int(n_kept),
    }
    return edges, stats


def spark_edges(
    spark: SparkSession, inp: GraphInput, cfg: GraphConfig
) -> tuple[DataFrame, DataFrame, dict[str, int]]:
    """The final edges (src < dst, c) as a DataFrame, the item table (i, t) and the counts."""
    types = spark.createDataFrame(
        pd.DataFrame(
            {"i": np.arange(inp.n_items, dtype=np.int64), "t": inp.item_type.astype(np.int64)}
        )
    )
    edges, stats = edge_frame(_inter_frame(spark, inp), types, cfg)
    return edges, types, stats


def cocount_spark(
    inp: GraphInput, cfg: GraphConfig, spark: SparkSession | None = None, master: str = "local[2]"
) -> EngineResult:
    """The Spark engine, collected back: same result as ``cocount_scipy``."""
    spark = spark or spark_session(master)
    edges, _, stats = spark_edges(spark, inp, cfg)
    out = edges.toPandas()
    src, dst, count = unique_edges(
        out["src"].to_numpy(np.int64), out["dst"].to_numpy(np.int64),
        out["c"].to_numpy(np.int32), inp.n_items,
    )
    stats["dropped_by_top_k"] = stats["distinct_pairs"] - stats["dropped_by_min_users"] - len(src)
    return EngineResult(src=src, dst=dst, count=count, stats=stats)


def build_cograph_spark(
    dataset: Dataset,
    cfg: GraphConfig,
    users: np.ndarray | None = None,
    master: str = "local[2]",
    output: str | Path | None = None,
    spark: SparkSession | None = None,
) -> CoGraph | None:
    """Build the graph on Spark from a loaded dataset (its rows are uploaded by the driver).

    Args:
        dataset, cfg, users: as :func:`hgrec.graph.build.build_cograph`.
        master: Spark master URL when no ``spark`` session is given.
        output: when given, write the graph there in the :mod:`hgrec.graph.io` layout (read it
            back with ``read_graph``) and return None instead of collecting the edges. A local
            folder or a URI (``gs://``, ``s3://``, ``hdfs://``, ``file://``).
        spark: an existing session (tests, clusters).
    Returns:
        The graph, or None when written to ``output``.
    """
    inp = select_interactions(dataset, cfg, users)
    spark = spark or spark_session(master)
    if output is None:
        return graph_from_edges(cocount_spark(inp, cfg, spark), inp)
    start = time.perf_counter()
    items = items_frame(spark, dataset.catalog)
    edges, stats = edge_frame(_inter_frame(spark, inp), items.select("i", "t"), cfg)
    write_edges(edges, items, dataset.catalog, str(output), {**inp.counts, **stats}, start)
    return None


def write_edges(
    edges: DataFrame,
    items: DataFrame,
    catalog: Catalog,
    output: str,
    counts: dict[str, Any],
    start: float,
) -> dict[str, Any]:
    """Write one Parquet folder per relation and summary.json, from per-node degrees only.

    ``items`` is (i, t, id) of ``catalog``; ``output`` a local folder or a URI. Returns the
    build report saved in summary.json.
    """
    remote = "://" in output
    if not remote:
        Path(output).mkdir(parents=True, exist_ok=True)
    ta = F.broadcast(items.selectExpr("i AS src", "t AS ts", "id AS a_id"))
    tb = F.broadcast(items.selectExpr("i AS dst", "t AS td", "id AS b_id"))
    e = edges.join(ta, on="src").join(tb, on="dst")
    # A cross-type edge is stored with its smaller type code first, as in CoGraph.
    swap = F.col("ts") > F.col("td")
    e = e.select(
        F.when(swap, F.col("dst")).otherwise(F.col("src")).alias("src"),
        F.when(swap, F.col("src")).otherwise(F.col("dst")).alias("dst"),
        F.when(swap, F.col("b_id")).otherwise(F.col("a_id")).alias("src_id"),
        F.when(swap, F.col("a_id")).otherwise(F.col("b_id")).alias("dst_id"),
        F.col("c").cast("int").alias("count"),
        F.least("ts", "td").alias("ts"),
        F.greatest("ts", "td").alias("td"),
    ).persist()
    names = catalog.type_names
    relation_types: dict[str, tuple[str, str]] = {}
    for a in range(len(names)):
        for b in range(a, len(names)):
            name = relation_name(names[a], names[b])
            relation_types[name] = (names[a], names[b])
            file = relation_file(Path(), name).name
            target = f"{output.rstrip('/')}/{file}" if remote else str(Path(output) / file)
            rel = e.where((F.col("ts") == a) & (F.col("td") == b)).drop("ts", "td")
            rel.sortWithinPartitions("src", "dst").write.mode("overwrite").parquet(target)
    # Degrees of every node in every relation in one job: at most n_items rows per relation.
    ends = e.select(F.col("src").alias("v"), "ts", "td").unionByName(
        e.select(F.col("dst").alias("v"), "ts", "td")
    )
    deg = ends.groupBy("ts", "td", "v").count().toPandas()
    e.unpersist()
    n_t = len(names)
    pair = deg["ts"].to_numpy(np.int64) * n_t + deg["td"].to_numpy(np.int64)
    degrees: dict[str, np.ndarray] = {}
    n_edges: dict[str, int] = {}
    for name, (ta_name, tb_name) in relation_types.items():
        sel = pair == names.index(ta_name) * n_t + names.index(tb_name)
        degrees[name] = np.bincount(
            deg["v"].to_numpy(np.int64)[sel],
            weights=deg["count"].to_numpy(np.float64)[sel],
            minlength=catalog.n_items,
        ).astype(np.int64)
        n_edges[name] = int(degrees[name].sum() // 2)
    summary = summarize_degrees(catalog.item_type, names, relation_types, degrees, n_edges)
    report = {
        "engine": "spark",
        **counts,
        "dropped_by_top_k": counts["distinct_pairs"]
        - counts["dropped_by_min_users"]
        - summary["n_edges"],
        "n_edges": summary["n_edges"],
        "seconds": time.perf_counter() - start,
    }
    if remote:
        _write_remote_manifest(output, catalog, relation_types, summary, report)
    else:
        write_manifest(Path(output), catalog, relation_types, summary, report)
    return report


def _write_remote_manifest(
    uri: str,
    catalog: Catalog,
    relation_types: dict[str, tuple[str, str]],
    summary: dict[str, Any],
    report: dict[str, Any],
) -> None:
    """summary.json next to relation folders Spark wrote at a URI (gs://, s3://, hdfs://)."""
    import pyarrow.fs as pafs

    fs, base = pafs.FileSystem.from_uri(uri)
    with tempfile.TemporaryDirectory() as tmp:
        local = write_manifest(Path(tmp), catalog, relation_types, summary, report)
        pafs.copy_files(
            str(local), f"{base.rstrip('/')}/{SUMMARY_FILE}",
            source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs,
        )
