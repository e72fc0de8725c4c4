"""``metrics.json``, the Markdown report and the long-tail plot of a run.

metrics.json::

    {"dataset": str, "target_type": str,
     "protocols": {"cold" | "warm": {"valid" | "test": {
         "users": int, "counts": {...},
         "models": {name: {"hr@10", "mrr@100", "recall@10", "ndcg@10", "coverage@100",
                           "tiers": [{"tier", "items", "pairs", "hr@10", "mrr@100"}, ...]}}}}}}

Undefined values are null. Files are written atomically (temporary file, then ``os.replace``),
so a reader never sees half a file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hgrec.evaluation.evaluate import json_safe
from hgrec.utils.artifacts import atomic_write_bytes

METRICS_FILE = "metrics.json"
REPORT_FILE = "report.md"
TIERS_PLOT_FILE = "tiers.png"
LONG_TAIL_FROM = 3  # tiers 3..n are the long tail (P1 §5.2.2, with 5 tiers)


# ---------------------------------------------------------------------------------- files
def write_metrics(run_dir: str | Path, metrics: dict[str, Any]) -> Path:
    """Write ``run_dir/metrics.json`` (strict JSON: NaN becomes null) atomically."""
    text = json.dumps(json_safe(metrics), indent=2, allow_nan=False)
    return atomic_write_bytes(Path(run_dir) / METRICS_FILE, (text + "\n").encode())


def read_metrics(path: str | Path) -> dict[str, Any]:
    """Read a metrics.json (``path`` is the file or the run folder holding it)."""
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or "protocols" not in data:
        raise ValueError(f"{path}: expected a metrics.json object with a 'protocols' key")
    return data


# ---------------------------------------------------------------------------------- tables
def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]], bold_from: int = 1) -> list[str]:
    """Markdown table, padded to be readable raw; the best value of each numeric column
    (from column ``bold_from``) is bold, ties included."""
    cells = [[_fmt(v) for v in r] for r in rows]
    for j in range(bold_from, len(header)):  # loop over columns
        numbers = [r[j] for r in rows if isinstance(r[j], int | float) and r[j] is not None]
        if len(rows) > 1 and numbers:
            best = max(numbers)
            for i, r in enumerate(rows):
                if r[j] is not None and r[j] == best:
                    cells[i][j] = f"**{cells[i][j]}**"
    widths = [max(len(h), *(len(c[j]) for c in cells)) for j, h in enumerate(header)]

    def line(values: list[str]) -> str:
        padded = [v.rjust(w) if j else v.ljust(w) for j, (v, w) in enumerate(zip(values, widths))]
        return "| " + " | ".join(padded) + " |"

    sep = "|" + "|".join(("-" * (w + 1) + ":" if j else ":" + "-" * (w + 1))
                         for j, w in enumerate(widths)) + "|"
    return [line(header), sep, *(line(c) for c in cells)]


def _metric_keys(models: dict[str, dict[str, Any]]) -> list[str]:
    keys: list[str] = []
    for m in models.values():
        keys += [k for k in m if k != "tiers" and k not in keys]
    return keys


def _tail_mean(tiers: list[dict[str, Any]], key: str) -> float | None:
    """Pair-weighted mean of ``key`` over the long-tail tiers (3..n)."""
    tail = [t for t in tiers if t["tier"] >= LONG_TAIL_FROM and t["pairs"] and t[key] is not None]
    pairs = sum(t["pairs"] for t in tail)
    return sum(t[key] * t["pairs"] for t in tail) / pairs if pairs else None


def render_report(metrics: dict[str, Any]) -> str:
    """Markdown report: one table per protocol x split (models in insertion order, best value
    per column in bold), then the long-tail table (HR per popularity tier, test users)."""
    dataset, target = metrics.get("dataset", "?"), metrics.get("target_type", "?")
    lines = [f"# Evaluation: {dataset} (target type: {target})", ""]
    protocols: dict[str, Any] = metrics["protocols"]
    for protocol, splits in protocols.items():
        for split, entry in splits.items():
            models = entry["models"]
            lines.append(f"## {protocol} / {split} ({entry['users']} users)")
            lines.append("")
            if not models:
                lines += ["(no model evaluated)", ""]
                continue
            keys = _metric_keys(models)
            rows = [[name, *(m.get(k) for k in keys)] for name, m in models.items()]
            lines += [*_table(["model", *keys], rows), ""]
    lines += ["## Long tail: HR per popularity tier (test users)", ""]
    lines.append(
        "Tiers split the target catalogue into equal-count groups by training popularity "
        f"(tier 1 = most popular; tiers {LONG_TAIL_FROM}+ = long tail); a value is the mean over "
        "(user, relevant item) pairs whose item is in the tier."
    )
    lines.append("")
    any_test = False
    for protocol, splits in protocols.items():
        entry = splits.get("test")
        if entry is None or not entry["models"]:
            continue
        any_test = True
        models = entry["models"]
        first = next(iter(models.values()))
        tiers = first.get("tiers", [])
        hr_key = next((k for k in first if k.startswith("hr@")), "hr")
        header = ["model", *(f"tier {t['tier']} ({t['items']} items)" for t in tiers)]
        header.append(f"tail: tiers {LONG_TAIL_FROM}-{len(tiers)}")
        rows = []
        for name, m in models.items():
            by_tier = [t[hr_key] for t in m.get("tiers", [])]
            rows.append([name, *by_tier, _tail_mean(m.get("tiers", []), hr_key)])
        lines += [f"### {protocol} ({hr_key})", "", *_table(header, rows), ""]
    if not any_test:
        lines += ["(no test split evaluated)", ""]
    return "\n".join(lines)


def write_report(run_dir: str | Path, metrics: dict[str, Any]) -> Path:
    """Write ``run_dir/report.md`` atomically; returns its path."""
    return atomic_write_bytes(Path(run_dir) / REPORT_FILE, render_report(metrics).encode())


# ---------------------------------------------------------------------------------- plot
def plot_tiers(metrics: dict[str, Any], path: str | Path) -> Path:
    """PNG of HR per popularity tier per model, test users, one panel per protocol."""
    panels = [
        (p, s["test"])
        for p, s in metrics["protocols"].items()
        if "test" in s and s["test"]["models"]
    ]
    if not panels:
        raise ValueError("metrics hold no test-split results to plot")
    fig = Figure(figsize=(5.5 * len(panels), 4.0), layout="constrained")
    FigureCanvasAgg(fig)  # Agg canvas without touching pyplot's global state
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (protocol, entry) in zip(axes, panels, strict=True):
        models = entry["models"]
        first = next(iter(models.values()))
        hr_key = next((k for k in first if k.startswith("hr@")), "hr")
        n_models = len(models)
        width = 0.8 / n_models
        for j, (name, m) in enumerate(models.items()):  # loop over models
            tiers = m.get("tiers", [])
            x = [t["tier"] - 0.4 + width * (j + 0.5) for t in tiers]
            y = [t[hr_key] if t[hr_key] is not None else 0.0 for t in tiers]
            ax.bar(x, y, width=width, label=name)
        ax.set_title(f"{protocol}: {entry['users']} test users")
        ax.set_xlabel("popularity tier (1 = most popular)")
        ax.set_ylabel(hr_key.upper())
        ax.set_xticks([t["tier"] for t in first.get("tiers", [])])
        ax.legend(fontsize="small")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path
