"""Co-count engine on DuckDB: a self-join on user with GROUP BY, which spills to disk beyond
``GraphConfig.duckdb_memory_limit`` (P1 section 4.1.1).

The SQL mirrors the scipy engine exactly (same distinct (user, item) pairs, same window rule,
same top-K rule with ties by index), so the two engines give identical graphs.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa

from hgrec.config import GraphConfig
from hgrec.graph.edges import EngineResult
from hgrec.graph.inputs import SECONDS_PER_DAY, GraphInput

ALL_PAIRS_SQL = """
CREATE TEMP TABLE pairs AS
WITH t AS (SELECT DISTINCT u, i FROM inter)
SELECT a.i AS src, b.i AS dst, count(*)::INTEGER AS c
FROM t a JOIN t b ON a.u = b.u AND a.i < b.i
GROUP BY a.i, b.i
"""

# A user who meets the same pair twice within the window counts once: DISTINCT per user.
WINDOW_SQL = """
CREATE TEMP TABLE pairs AS
SELECT src, dst, count(*)::INTEGER AS c FROM (
    SELECT DISTINCT a.u, least(a.i, b.i) AS src, greatest(a.i, b.i) AS dst
    FROM inter a JOIN inter b
      ON a.u = b.u AND b.r > a.r AND {condition}
    WHERE a.i <> b.i
)
GROUP BY src, dst
"""

TOP_K_SQL = """
WITH d AS (
    SELECT src AS v, dst AS w, c FROM {kept} UNION ALL SELECT dst AS v, src AS w, c FROM {kept}
), ranked AS (
    SELECT v, w, c, row_number() OVER (PARTITION BY v, types.t ORDER BY c DESC, w) AS rk
    FROM d JOIN types ON d.w = types.i
)
SELECT DISTINCT least(v, w) AS src, greatest(v, w) AS dst, c FROM ranked WHERE rk <= {k}
"""


def connect(cfg: GraphConfig, progress: bool = False) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the memory limit and spill folder of ``cfg``."""
    con = duckdb.connect(":memory:")
    con.execute(f"SET memory_limit = '{cfg.duckdb_memory_limit}'")
    if cfg.duckdb_temp_dir is not None:
        con.execute(f"SET temp_directory = '{cfg.duckdb_temp_dir}'")
    con.execute(f"SET enable_progress_bar = {str(progress).lower()}")
    con.execute("SET preserve_insertion_order = false")  # lets large joins spill freely
    return con


def cocount_duckdb(inp: GraphInput, cfg: GraphConfig, progress: bool = True) -> EngineResult:
    """Co-counts, min_users and top-K pruning in SQL; returns the kept edges (src < dst)."""
    con = connect(cfg, progress)
    try:
        con.register(
            "inter",
            pa.table({"u": inp.user, "i": inp.item, "r": inp.rank, "o": inp.order}),
        )
        con.register(
            "types",
            pa.table({"i": np.arange(inp.n_items, dtype=np.int64), "t": inp.item_type}),
        )
        if cfg.window is None:
            con.execute(ALL_PAIRS_SQL)
        elif cfg.window_unit == "positions":
            con.execute(WINDOW_SQL.format(condition=f"b.r <= a.r + {int(cfg.window)}"))
        else:
            limit = float(cfg.window) * SECONDS_PER_DAY
            con.execute(WINDOW_SQL.format(condition=f"b.o - a.o <= {limit!r}"))
        distinct, cooc = con.execute("SELECT count(*), coalesce(sum(c), 0) FROM pairs").fetchone()
        (n_kept,) = con.execute(f"SELECT count(*) FROM pairs WHERE c >= {cfg.min_users}").fetchone()
        kept = f"(SELECT * FROM pairs WHERE c >= {cfg.min_users})"
        query = (
            f"SELECT src, dst, c FROM {kept}"
            if cfg.top_k is None
            else TOP_K_SQL.format(kept=kept, k=int(cfg.top_k))
        )
        out = con.execute(query).fetchnumpy()
    finally:
        con.close()
    # Both queries return unique pairs with src < dst (GROUP BY / DISTINCT).
    src = np.asarray(out["src"], dtype=np.int64)
    dst = np.asarray(out["dst"], dtype=np.int64)
    count = np.asarray(out["c"], dtype=np.int32)
    stats = {
        "distinct_pairs": int(distinct),
        "cooccurrences": int(cooc),
        "dropped_by_min_users": int(distinct) - int(n_kept),
        "dropped_by_top_k": int(n_kept) - len(src),
    }
    return EngineResult(src=src, dst=dst, count=count, stats=stats)
