"""The Spark cluster job: the co-interaction graph from the canonical interactions Parquet,
read, validated and selected on the executors (:func:`build_cograph_spark_from_parquet`), then
built by the engine of :mod:`hgrec.graph.spark` and written in the :mod:`hgrec.graph.io`
layout. The interactions never pass through the driver.

pyspark is an optional dependency, imported by this module and :mod:`hgrec.graph.spark` only.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np
import pandas as pd

from hgrec.config import GraphConfig
from hgrec.data.dataset import Catalog
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
from hgrec.graph.spark import edge_frame, items_frame, write_edges

try:
    from pyspark.errors import AnalysisException
    from pyspark.sql import Column, DataFrame, SparkSession, Window
    from pyspark.sql import functions as F
    from pyspark.sql.types import NumericType, StringType, TimestampNTZType, TimestampType
except ImportError:  # pragma: no cover - exercised only without pyspark
    SparkSession = None  # type: ignore[assignment,misc]


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
        items = items_frame(spark, catalog)
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
        edges, stats = edge_frame(inter, items.select("i", "t"), cfg)
        report = write_edges(edges, items, catalog, str(output), {**counts, **stats}, start)
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
