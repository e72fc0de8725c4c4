"""What ``hgrec run`` prints and writes for people: the dataset's load report and report.md
(the main tables, P1 Table 4 and Table 1 when run, the new-item protocol, the HGNN's learning
curve, stage times)."""

from __future__ import annotations

from typing import Any

from hgrec.data.dataset import Dataset
from hgrec.evaluation.new_items import render_new_items
from hgrec.evaluation.report import render_learning_curve, render_report
from hgrec.pipeline.experiments import render_ablations


def render_full_report(metrics: dict[str, Any]) -> str:
    """report.md: the main tables, then Table 4 and Table 1 of P1 when run, then the main
    HGNN's learning curve (``metrics["hgnn_training"]``, its history.json), then stage times."""
    parts = [render_report(metrics)]
    if "established" in metrics:
        est = metrics["established"]
        parts.append(f"# Established type as target: {est['target_type']} (P1 Table 4)\n")
        parts.append(render_report(est))
    if "ablations" in metrics:
        parts.append("# Ablations (P1 Table 1), test users\n")
        parts.append(render_ablations(metrics["ablations"]["protocols"]))
    if "new_items" in metrics:
        parts.append(render_new_items(metrics["new_items"]))
    if "hgnn_training" in metrics:
        parts.append(render_learning_curve(metrics["hgnn_training"], "hgnn"))
    seconds = metrics.get("stage_seconds", {})
    rows = "\n".join(f"| {k} | {v:.1f} |" for k, v in seconds.items())
    parts.append(
        f"\n# Stage times\n\n| stage | seconds |\n|---|---:|\n{rows}\n"
        f"| total | {sum(seconds.values()):.1f} |\n"
    )
    return "\n".join(parts)


def print_load_report(dataset: Dataset) -> None:
    c = dataset.catalog
    types = ", ".join(f"{t}: {int((c.item_type == i).sum()):,}" for i, t in enumerate(c.type_names))
    splits = dataset.users["split"].value_counts().to_dict()
    print(
        f"[hgrec] {dataset.name}: {c.n_items:,} items ({types}); {dataset.n_users:,} users "
        f"{splits}; {len(dataset.interactions):,} interactions; target type {dataset.target_type!r}"
    )
    for k, v in dataset.report.counts.items():
        print(f"[hgrec]   {k}: {v:,}")
    for note in dataset.report.notes:
        print(f"[hgrec]   note: {note}")
