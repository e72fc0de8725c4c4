"""Build the item-item co-interaction graph (P1 section 4.1.1) from a dataset.

An edge joins two items that at least ``min_users`` of the chosen (training) users interacted
with; one relation per unordered pair of item types; the co-count is kept as ``count``. Self
pairs are excluded and a user who interacts with the same item twice contributes once.
Options (``GraphConfig``): the events that count, a window in positions or days, and per-node
top-K pruning (rule in :mod:`hgrec.graph.edges`).

Example:
    >>> graph, report = build_cograph_with_report(dataset, GraphConfig(top_k=50))
    >>> print(report.format())
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from hgrec.config import GraphConfig
from hgrec.data.dataset import Dataset
from hgrec.graph.duckdb_engine import cocount_duckdb
from hgrec.graph.edges import graph_from_edges
from hgrec.graph.inputs import select_interactions
from hgrec.graph.scipy_engine import cocount_scipy
from hgrec.graph.types import CoGraph


@dataclass(frozen=True)
class GraphReport:
    """What the build used and left out, with counts; printed by the pipeline.

    Attributes:
        engine: the engine that counted.
        users: users whose interactions count (the train users by default).
        interactions_of_users: their interactions.
        dropped_by_events: of those, left out by ``GraphConfig.events``.
        interactions_used: the rest, which create edges.
        duplicate_user_items: repeats of a (user, item) pair among them (count once).
        distinct_pairs: item pairs with at least one common user (inside the window, if any).
        cooccurrences: sum of their co-counts (the (user, pair) incidences).
        dropped_by_min_users: pairs with fewer than ``min_users`` users.
        dropped_by_top_k: edges removed by top-K pruning.
        n_edges: edges in the graph.
        seconds: build wall time.
    """

    engine: str
    users: int
    interactions_of_users: int
    dropped_by_events: int
    interactions_used: int
    duplicate_user_items: int
    distinct_pairs: int
    cooccurrences: int
    dropped_by_min_users: int
    dropped_by_top_k: int
    n_edges: int
    seconds: float

    def to_dict(self) -> dict[str, int | float | str]:
        return asdict(self)

    def format(self) -> str:
        """One line per count, aligned."""
        rows = [(k, _fmt(v)) for k, v in self.to_dict().items()]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v:>15}" for k, v in rows)


def _fmt(value: int | float | str) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.2f}" if isinstance(value, float) else value


def build_cograph_with_report(
    dataset: Dataset,
    cfg: GraphConfig,
    users: np.ndarray | None = None,
    progress: bool = True,
) -> tuple[CoGraph, GraphReport]:
    """Build the graph from the interactions of ``users`` (default: the train users).

    Args:
        dataset: the validated dataset.
        cfg: graph options; ``cfg.engine`` picks "scipy", "duckdb" or "spark" (local Spark).
        users: (n,) int user indices whose interactions count; None = ``users_in("train")``.
        progress: show a progress bar.
    Returns:
        The graph (every item of the catalogue is a node) and the build report.
    """
    start = time.perf_counter()
    inp = select_interactions(dataset, cfg, users)
    if cfg.engine == "scipy":
        result = cocount_scipy(inp, cfg, progress)
    elif cfg.engine == "duckdb":
        result = cocount_duckdb(inp, cfg, progress)
    elif cfg.engine == "spark":
        from hgrec.graph.spark import cocount_spark  # pyspark is an optional dependency

        result = cocount_spark(inp, cfg)
    else:  # pragma: no cover - GraphConfig validates the engine
        raise ValueError(f"graph.engine: unknown engine {cfg.engine!r}")
    graph = graph_from_edges(result, inp)
    report = GraphReport(
        engine=cfg.engine,
        **inp.counts,
        **result.stats,
        n_edges=len(result.src),
        seconds=time.perf_counter() - start,
    )
    return graph, report


def build_cograph(
    dataset: Dataset,
    cfg: GraphConfig,
    users: np.ndarray | None = None,
    progress: bool = True,
) -> CoGraph:
    """The co-interaction graph of ``users`` (default: the train users); see
    :func:`build_cograph_with_report`."""
    return build_cograph_with_report(dataset, cfg, users, progress)[0]
