"""P1's offline study beyond the main tables: the established-type table (Table 4) and the
graph / sampler ablations of Table 1, each a retrained HGNN + 2T-HGNN evaluated like the rest.

Ablations (P1 Table 1; B, "no weak signals", needs event types the default data lacks):
    A  the balanced multi-link sampler off (every edge supervises every epoch)
    C  no source-source relation (P1: w/o PC-PC)
    D  no target-target relation (P1: w/o AB-AB)
    E  target-target relation only (P1: 2T-GNN AB-AB only)
    F  source-source relations only; target items are embedded inductively from their text
       and whatever edges they have left (none), P1: 2T-GNN PC-PC only
"""

from __future__ import annotations

from typing import Any

from hgrec.config import HGNNConfig
from hgrec.evaluation.report import format_interval, lead_line
from hgrec.graph.types import CoGraph, relation_name

ABLATIONS: dict[str, str] = {
    "A": "sampler off",
    "C": "no source-source relation",
    "D": "no target-target relation",
    "E": "target-target relation only",
    "F": "source-source relations only",
}


def ablation_setup(
    letter: str, graph: CoGraph, hgnn: HGNNConfig, target_type: str
) -> tuple[CoGraph, HGNNConfig]:
    """The graph and HGNN settings of ablation ``letter`` (see the module docstring)."""
    if letter not in ABLATIONS:
        raise ValueError(f"unknown ablation {letter!r}; known: {sorted(ABLATIONS)}")
    if target_type not in graph.type_names:
        raise ValueError(f"target type {target_type!r} is not in the graph {graph.type_names}")
    target_target = relation_name(target_type, target_type)
    source_source = [
        name
        for name, r in graph.relations.items()
        if target_type not in (r.src_type, r.dst_type)
    ]
    if letter == "A":
        return graph, hgnn.updated(balanced_sampler=False)
    if letter == "C":
        return graph.without(*source_source), hgnn
    if letter == "D":
        return graph.without(target_target), hgnn
    if letter == "E":
        return graph.without(*(n for n in graph.relations if n != target_target)), hgnn
    return graph.without(*(n for n in graph.relations if n not in source_source)), hgnn


def render_ablations(block: dict[str, Any], split: str = "test") -> str:
    """Markdown: one row per model, HR@10 / MRR@100 / Coverage@100 for cold and warm.

    HR@10 is followed by its 95% bootstrap interval over users when the metrics hold one
    ("hr@10_ci", e.g. ``0.297 (0.268-0.326)``), and each protocol gets a line on whether the
    best HR@10 leads the runner-up significantly (:func:`hgrec.evaluation.report.lead_line`).
    """
    protocols = [p for p in ("cold", "warm") if p in block]
    keys = ("hr@10", "mrr@100", "coverage@100")
    with_ci = any("hr@10_ci" in m for p in protocols for m in block[p][split]["models"].values())
    header = ["model"] + [
        f"{p} {m}" + (" (95% CI)" if with_ci and m == "hr@10" else "")
        for p in protocols for m in keys
    ]
    names: list[str] = []
    for p in protocols:
        names += [n for n in block[p][split]["models"] if n not in names]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in names:
        cells = [name]
        for p in protocols:
            m = block[p][split]["models"].get(name, {})
            hr = m.get("hr@10")
            hr = format_interval(hr, m.get("hr@10_ci")) if with_ci else _fmt(hr)
            cells += [hr, *(_fmt(m.get(k)) for k in keys[1:])]
        lines.append("| " + " | ".join(cells) + " |")
    leads = [(p, lead_line(block[p][split]["models"], "hr@10")) for p in protocols]
    if any(line is not None for _, line in leads):
        lines.append("")
        lines += [f"{p}: {line}" for p, line in leads if line is not None]
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{float(value):.4f}"
