"""Graph summary: nodes per type, edges per relation, degree percentiles, isolated items.

P1 gives no graph sizes (only that podcast-podcast and audiobook-podcast edges far outnumber
audiobook-audiobook ones, section 4.1.3); this summary is what we print and save so that
imbalance is visible for every dataset.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hgrec.graph.types import CoGraph

PERCENTILES = (50, 90, 99)


def relation_degrees(graph: CoGraph) -> dict[str, np.ndarray]:
    """Relation name -> (n_items,) int64 degree of every node in that relation."""
    return {
        name: np.bincount(np.concatenate([r.src, r.dst]), minlength=graph.n_items).astype(np.int64)
        for name, r in graph.relations.items()
    }


def summarize_degrees(
    item_type: np.ndarray,
    type_names: tuple[str, ...],
    relation_types: dict[str, tuple[str, str]],
    degrees: dict[str, np.ndarray],
    n_edges: dict[str, int],
) -> dict[str, Any]:
    """The summary from per-relation degree arrays (shared by :func:`summarize` and engines
    that never hold the edges in memory, such as Spark writing to Parquet).

    Args:
        item_type: (n_items,) int16 type codes into ``type_names``.
        relation_types: relation name -> (src_type, dst_type).
        degrees: relation name -> (n_items,) degrees.
        n_edges: relation name -> number of undirected edges.
    Returns:
        A JSON-ready dict: ``nodes`` {type: n}, ``edges`` {relation: n}, ``n_edges``,
        ``degree`` {relation: {type: {p50, p90, p99, max, mean}}} over ALL nodes of the type
        (edgeless ones count as 0), ``isolated`` {type: share of items with no edge at all}.
    """
    n_items = len(item_type)
    total = np.zeros(n_items, dtype=np.int64)
    degree: dict[str, dict[str, dict[str, float]]] = {}
    for name, (ta, tb) in relation_types.items():
        deg = degrees[name]
        total += deg
        degree[name] = {}
        for t in dict.fromkeys((ta, tb)):  # one entry per distinct type of the relation
            d = deg[item_type == type_names.index(t)]
            stats = {f"p{p}": float(np.percentile(d, p)) if len(d) else 0.0 for p in PERCENTILES}
            stats["max"] = float(d.max()) if len(d) else 0.0
            stats["mean"] = float(d.mean()) if len(d) else 0.0
            degree[name][t] = stats
    nodes = {t: int((item_type == c).sum()) for c, t in enumerate(type_names)}
    isolated = {
        t: float((total[item_type == c] == 0).mean()) if nodes[t] else 0.0
        for c, t in enumerate(type_names)
    }
    return {
        "n_items": int(n_items),
        "n_edges": int(sum(n_edges.values())),
        "nodes": nodes,
        "edges": {k: int(v) for k, v in n_edges.items()},
        "degree": degree,
        "isolated": isolated,
    }


def summarize(graph: CoGraph) -> dict[str, Any]:
    """Summary of ``graph``; see :func:`summarize_degrees` for the keys."""
    return summarize_degrees(
        graph.item_type,
        graph.type_names,
        {k: (r.src_type, r.dst_type) for k, r in graph.relations.items()},
        relation_degrees(graph),
        {k: r.n_edges for k, r in graph.relations.items()},
    )


def format_summary(summary: dict[str, Any]) -> str:
    """A readable table of a :func:`summarize` dict."""
    lines = [f"co-interaction graph: {summary['n_items']:,} items, {summary['n_edges']:,} edges"]
    lines.append(f"{'type':<20} {'items':>10} {'no edge':>8}")
    for t, n in summary["nodes"].items():
        lines.append(f"{t:<20} {n:>10,} {summary['isolated'][t]:>8.1%}")
    head = f"{'relation':<28} {'edges':>12} {'node type':<14}"
    head += "".join(f" {k:>7}" for k in ("p50", "p90", "p99", "max", "mean"))
    lines.append(head)
    for rel, n in summary["edges"].items():
        for j, (t, s) in enumerate(summary["degree"][rel].items()):
            left = f"{rel:<28} {n:>12,}" if j == 0 else f"{'':<28} {'':>12}"
            cells = "".join(f" {s[k]:>7.0f}" for k in ("p50", "p90", "p99", "max"))
            lines.append(f"{left} {t:<14}{cells} {s['mean']:>7.2f}")
    return "\n".join(lines)
