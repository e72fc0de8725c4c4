"""The co-interaction graph build on Apache Spark (P1 section 4.1.1), for data beyond one machine.

Same rules as the scipy and DuckDB engines, in PySpark DataFrames: distinct (user, item);
self-join on user with i < j (or within the window, de-duplicated per user); groupBy + count;
``min_users``; top-K with a ``row_number`` window per (node, neighbour type), ties by index.
Locally the edges are collected back into a :class:`CoGraph`; with ``output`` they are written
as Parquet in the layout of :mod:`hgrec.graph.io` (a folder of part files per relation) and
nothing is collected but per-node degrees, which is how it runs on a cluster.

Two ways in: :func:`build_cograph_spark` ships a loaded :class:`Dataset`'s selected rows from
the driver (fine up to tens of millions of interactions); :func:`build_cograph_spark_from_parquet`
reads the canonical interactions Parquet on the executors, so the interactions never pass
through the driver (P1 scale); the driver holds only the catalogue and the train user ids.

pyspark is an optional dependency (``pip install hgrec[test]`` or ``pyspark>=3.5``), imported
only here; Spark needs a Java runtime (17).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np
import pandas as pd

from hgrec.config import GraphConfig
from hgrec.data.dataset import Catalog, Dataset
from hgrec.data.schema import (
    DEFAULT_EVENT,
    EVENT,
    INTERACTION_REQUIRED,
    ITEM_ID,
    POSITION,
    TIMESTAMP,
    USER_ID,
    DataValidationError,
)
from hgrec.graph.edges import EngineResult, graph_from_edges, unique_edges
from hgrec.graph.inputs import SECONDS_PER_DAY, GraphInput, select_interactions
from hgrec.graph.io import SUMMARY_FILE, relation_file, write_manifest
from hgrec.graph.summary import summarize_degrees
from hgrec.graph.types import CoGraph, relation_name

try:
    from pyspark.errors import AnalysisException
    from pyspark.sql import Column, DataFrame, SparkSession, Window
    from pyspark.sql import functions as F
    from pyspark.sql.types import NumericType, StringType, TimestampNTZType, TimestampType
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


def _items_frame(spark: SparkSession, catalog: Catalog) -> DataFrame:
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


def _edges(
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
    edges, stats = _edges(_inter_frame(spark, inp), types, cfg)
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
    items = _items_frame(spark, dataset.catalog)
    edges, stats = _edges(_inter_frame(spark, inp), items.select("i", "t"), cfg)
    _write(edges, items, dataset.catalog, str(output), {**inp.counts, **stats}, start)
    return None


def build_cograph_spark_from_parquet(
    spark: SparkSession,
    interactions: str | Path,
    catalog: Catalog,
    train_users: np.ndarray | Sequence[str],
    cfg: GraphConfig,
    output: str | Path,
) -> dict[str, Any]:
    """Build the graph on Spark from the canonical interactions Parquet, read on the executors.

    The same rows count as with ``load_canonical`` + :func:`hgrec.graph.build.build_cograph`
    (tested equal): ids read as strings; the order is ``timestamp`` (epoch seconds, a
    timestamp type, or text that is a number or ISO 8601, read as UTC without an offset) with
    ``position`` breaking ties, else ``position``; null or empty events are ``"stream"``;
    rows tying on (user, order[, position]) keep file order (part files in path order, then
    row order); exact duplicates (user, order, item, event) count once; the rank used by a
    window in positions is taken within the user after the event filter (P1 section 4.1.1).

    Differences from the in-memory loader: ids of users that are not in ``train_users`` are
    not checked against a users table (valid/test users and unknown users are both just left
    out, counted in ``rows_of_other_users``), and the ``weight`` column is not read.

    Args:
        spark: the session (its master decides where the work runs).
        interactions: a Parquet file, a folder of part files, or a glob (any URI Spark reads).
            Columns: user_id, item_id, timestamp and/or position, optional event.
        catalog: the item catalogue; item ids become its indices (one row per item is
            uploaded, so millions of items are fine).
        train_users: (n,) user id strings whose interactions count (the train users).
        cfg: graph options; ``cfg.engine`` is ignored.
        output: where the graph goes, in the :mod:`hgrec.graph.io` layout (read it with
            ``read_graph(output, catalog)``): a local folder or a URI (``gs://``, ``s3://``,
            ``hdfs://``, ``file://``).
    Returns:
        The build report (also in summary.json): the keys of ``GraphReport`` plus
        ``rows_read`` (rows of the files), ``rows_of_other_users`` and
        ``exact_duplicates_collapsed`` (among the train users' rows).
    Raises:
        DataValidationError: a missing user_id / item_id column, no order column, a column
            of the wrong type, null or empty ids, unparseable orders, or item ids not in the
            catalogue (an error, as in the loader; the message counts them and shows the first
            rows and values, rows numbered from 1 within their part file).
        ValueError: unknown event names in ``cfg.events``, ``train_users`` not 1-d, or a window
            in days on data without a timestamp column.
    """
    start = time.perf_counter()
    path = str(interactions)
    if np.ndim(train_users) != 1:
        raise ValueError(
            f"train_users must be a 1-d array of user id strings, got shape {np.shape(train_users)}"
        )
    users = pd.unique(pd.Series(np.asarray(train_users, dtype=object), dtype=object).astype(str))
    zone = spark.conf.get("spark.sql.session.timeZone")
    # Zone-less timestamps (text, TIMESTAMP_NTZ) are UTC as in the loader; the session zone is
    # what Spark reads them in, so pin it for the jobs of this build.
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    try:
        raw = _read_interactions(spark, path, cfg)
        items = _items_frame(spark, catalog)
        rows_read, events = _validate(raw, items, path)
        if cfg.events is not None:
            unknown = sorted(set(cfg.events) - set(events))
            if unknown:
                raise ValueError(
                    f"graph.events: unknown event names {unknown}; the interactions {path} "
                    f"have {sorted(events)}"
                )
        user_frame = spark.createDataFrame(
            pd.DataFrame({"uid": users.astype(str), "u": np.arange(len(users), dtype=np.int64)}),
            schema="uid string, u long",
        )
        inter, counts = _select(raw, items, user_frame, cfg)
        counts = {"users": len(users), **counts}
        counts["rows_read"] = rows_read
        counts["rows_of_other_users"] = (
            rows_read - counts["interactions_of_users"] - counts["exact_duplicates_collapsed"]
        )
        edges, stats = _edges(inter, items.select("i", "t"), cfg)
        report = _write(edges, items, catalog, str(output), {**counts, **stats}, start)
        inter.unpersist()
    finally:
        spark.conf.set("spark.sql.session.timeZone", zone)
    return report


def _read_interactions(spark: SparkSession, path: str, cfg: GraphConfig) -> DataFrame:
    """The Parquet rows as (uid, iid, ev, o, tie, f, row, raw columns): ids as strings, the
    event with the default, the order in seconds or positions, the tie-breaker (position or 0)
    and the row's place in the files (file path, 0-based row index within the file)."""
    try:
        raw = spark.read.parquet(path)
    except AnalysisException as e:
        if "PATH_NOT_FOUND" in str(e) or "Path does not exist" in str(e):
            raise FileNotFoundError(f"{path}: no such Parquet file or folder") from None
        raise
    fields = {f.name: f.dataType for f in raw.schema.fields}
    missing = [c for c in INTERACTION_REQUIRED if c not in fields]
    if missing:
        raise DataValidationError(
            path, missing[0], "missing column" + ("s " if len(missing) > 1 else " ")
            + ", ".join(repr(c) for c in missing),
            expected=f"columns {list(INTERACTION_REQUIRED)}; the file has {raw.columns}",
        )
    has_ts, has_pos = TIMESTAMP in fields, POSITION in fields
    if not (has_ts or has_pos):
        raise DataValidationError(
            path, None, "no order column",
            expected=f"a '{TIMESTAMP}' column (epoch seconds or ISO 8601) or a '{POSITION}' "
            f"column (integer); the file has {raw.columns}",
        )
    if cfg.window is not None and cfg.window_unit == "days" and not has_ts:
        raise ValueError(
            f"graph.window_unit='days' needs timestamps, but {path} has no '{TIMESTAMP}' column; "
            "use window_unit='positions' or write a timestamp column"
        )
    for name in (TIMESTAMP, POSITION):
        kind = fields.get(name)
        times = (TimestampType, TimestampNTZType) if name == TIMESTAMP else ()
        ok = (NumericType, StringType, *times)
        if kind is not None and not isinstance(kind, ok):
            raise DataValidationError(
                path, name, f"column of type {kind.simpleString()}",
                expected="numbers" + (", timestamps" if name == TIMESTAMP else "") + " or text",
            )
    position = F.col(POSITION).try_cast("double") if has_pos else F.lit(0.0)
    order = _seconds(F.col(TIMESTAMP), fields[TIMESTAMP]) if has_ts else position
    event = F.col(EVENT).cast("string") if EVENT in fields else F.lit(None).cast("string")
    return raw.select(
        F.col(USER_ID).cast("string").alias("uid"),
        F.col(ITEM_ID).cast("string").alias("iid"),
        F.when(_blank(event), F.lit(DEFAULT_EVENT)).otherwise(event).alias("ev"),
        order.alias("o"),
        (position if has_ts else F.lit(0.0)).alias("tie"),
        F.col("_metadata.file_path").alias("f"),
        F.col("_metadata.row_index").alias("row"),
        *[F.col(c) for c in (TIMESTAMP, POSITION) if c in fields],
    )


def _seconds(col: Column, kind: Any) -> Column:
    """Epoch seconds (double) of a timestamp column of type ``kind``; null where unparseable."""
    if isinstance(kind, NumericType):
        return col.cast("double")
    if isinstance(kind, StringType):
        as_time = F.unix_micros(col.try_cast("timestamp")) / 1e6
        return F.coalesce(col.try_cast("double"), as_time)
    return F.unix_micros(col.cast("timestamp")) / 1e6


def _blank(col: Column) -> Column:
    """True where a string column is null or only whitespace (never null itself)."""
    return F.coalesce(col.rlike(r"^\s*$"), F.lit(True))


def _finite(col: Column) -> Column:
    """True where a double column is a finite number (null where it is null)."""
    return col.isNotNull() & ~F.isnan(col) & (F.abs(col) < float("inf"))


def _validate(raw: DataFrame, items: DataFrame, path: str) -> tuple[int, list[str]]:
    """Check every row in one job (ids, orders, item ids in the catalogue); returns (rows, the
    event names present). Raises DataValidationError for the first failing check, in the
    loader's order, with the first rows (1-based within their part file) and values."""
    v = raw.join(items.select(F.col("id").alias("iid"), "i"), on="iid", how="left")
    has_ts = TIMESTAMP in raw.columns
    finite = _finite(F.col("o"))
    checks: list[tuple[str, Column, str, str]] = [
        (USER_ID, _blank(F.col("uid")), "null or empty user id",
         "a non-empty user id on every row"),
        (ITEM_ID, _blank(F.col("iid")), "null or empty item id",
         "a non-empty item id on every row"),
    ]
    if has_ts:
        checks.append((
            TIMESTAMP, ~finite, "unparseable or missing timestamps",
            "epoch seconds (a number) or an ISO 8601 date-time such as '2024-03-08T12:00:00Z'",
        ))
    pos = F.col("tie") if has_ts else F.col("o")  # the position is the tie or the order
    pos_ok = _finite(pos) & (pos == F.floor(pos)) & (F.abs(pos) <= 2.0**53)
    if POSITION in raw.columns:
        checks.append((POSITION, ~pos_ok, "non-integer or missing positions",
                       "an integer on every row"))
    checks.append((
        ITEM_ID, ~_blank(F.col("iid")) & F.col("i").isNull(),
        "rows reference items not in the catalogue",
        "every item_id to be in the catalogue (the items file)",
    ))
    flags = [F.coalesce(bad, F.lit(True)) for _, bad, _, _ in checks]
    row = v.agg(
        F.count(F.lit(1)).alias("rows"),
        F.collect_set("ev").alias("events"),
        *[F.sum(flag.cast("long")).alias(f"bad{k}") for k, flag in enumerate(flags)],
    ).collect()[0]
    for k, (column, _, problem, expected) in enumerate(checks):
        n_bad = int(row[f"bad{k}"] or 0)
        if n_bad:
            value = F.col("iid") if column == ITEM_ID else F.col(column).cast("string")
            first = (
                v.where(flags[k]).select("f", "row", value.alias("value"))
                .orderBy("f", "row").limit(5).collect()
            )
            same = [r for r in first if r["f"] == first[0]["f"]]
            part = unquote(first[0]["f"])
            # A single file is named as given; in a folder or glob, the part file holding the
            # rows shown (rows are numbered within it).
            file = path if part.endswith("/" + Path(path).name) else part
            raise DataValidationError(
                file, column, problem,
                rows=[int(r["row"]) + 1 for r in same], values=[r["value"] for r in same],
                n_rows=n_bad, expected=expected,
            )
    return int(row["rows"]), list(row["events"])


def _select(
    raw: DataFrame, items: DataFrame, users: DataFrame, cfg: GraphConfig
) -> tuple[DataFrame, dict[str, int]]:
    """The used interactions as a persisted (u, i, r, o) DataFrame, and what was left out.

    Mirrors :func:`hgrec.graph.inputs.select_interactions` on the loader's output: the users'
    rows, exact duplicates (user, order, item, event) collapsed to their first row, then the
    event filter, and the rank within the user by (order, tie, file, row) after the filter.
    """
    sel = raw.join(users, on="uid").join(items.select(F.col("id").alias("iid"), "i"), on="iid")
    # One shuffle on u serves both the duplicate grouping and the per-user rank window.
    first = F.min(F.struct("tie", "f", "row")).alias("first")
    g = sel.repartition("u").groupBy("u", "i", "o", "ev").agg(F.count(F.lit(1)).alias("n"), first)
    ok = F.lit(True) if cfg.events is None else F.col("ev").isin(list(cfg.events))
    g = g.withColumn("ok", ok)
    rank = F.row_number().over(Window.partitionBy("u", "ok").orderBy("o", "first")) - 1
    cached = g.select("u", "i", rank.cast("long").alias("r"), "o", "ok", "n").persist()
    row = cached.agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum("n").alias("raw"),
        F.sum(F.col("ok").cast("long")).alias("used"),
        F.count_distinct(F.when(F.col("ok"), F.col("u")), F.col("i")).alias("distinct"),
    ).collect()[0]
    rows, used = int(row["rows"]), int(row["used"] or 0)
    counts = {
        "interactions_of_users": rows,
        "dropped_by_events": rows - used,
        "interactions_used": used,
        "duplicate_user_items": used - int(row["distinct"]),
        "exact_duplicates_collapsed": int(row["raw"] or 0) - rows,
    }
    return cached.where(F.col("ok")).select("u", "i", "r", "o"), counts


def _write(
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
