"""``metrics.json``, the Markdown report and the long-tail plot of a run.

metrics.json::

    {"dataset": str, "target_type": str,
     "protocols": {"cold" | "warm": {"valid" | "test": {
         "users": int, "counts": {...},
         "models": {name: {"hr@10", "mrr@100", "recall@10", "ndcg@10", "coverage@100",
                           "hr@10_ci": [lo, hi], "mrr@100_ci": [lo, hi],
                           "tiers": [{"tier", "items", "pairs", "hr@10", "mrr@100"}, ...],
                           "hr@10_vs_best_other": {"other", "diff", "ci": [lo, hi]}}}}}}}

"_ci" are 95% percentile bootstrap intervals over users; "hr@10_vs_best_other" (present with
two models or more) is the paired bootstrap interval of the HR@10 difference to the best other
model (:func:`hgrec.evaluation.evaluate.paired_vs_best_other`). Older files without them still
render, without intervals. Undefined values are null. Files are written atomically
(temporary file, then ``os.replace``), so a reader never sees half a file.

The HGNN learning curve (:func:`plot_learning_curve`, :func:`render_learning_curve`) reads an
HGNN stage's ``history.json``::

    {"best_epoch": int, "epochs": [{"epoch", "loss", "valid_mrr", "valid_hr10", "seconds",
                                    "steps", "edges", ...}, ...],
     "untrained": {"valid_mrr", "valid_hr10"},   # optional: the model before any training
     "mode": str, "loss_name": str}              # optional
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from hgrec.evaluation.evaluate import json_safe
from hgrec.utils import layout
from hgrec.utils.artifacts import atomic_write, atomic_write_bytes

LONG_TAIL_FROM = 3  # tiers 3..n are the long tail (P1 §5.2.2, with 5 tiers)


# ---------------------------------------------------------------------------------- files
def write_metrics(path: str | Path, metrics: dict[str, Any]) -> Path:
    """Write ``metrics`` to ``path`` (a run's metrics.json; strict JSON: NaN becomes null)
    atomically."""
    text = json.dumps(json_safe(metrics), indent=2, allow_nan=False)
    return atomic_write_bytes(path, (text + "\n").encode())


# ---------------------------------------------------------------------------------- tables
CI_DIGITS = 3  # decimals of a value shown with its interval: "0.297 (0.268-0.326)"


def _ci_bounds(ci: Any) -> tuple[float, float] | None:
    """(lo, hi) of a metrics.json interval, or None when absent or undefined."""
    if isinstance(ci, list | tuple) and len(ci) == 2 and all(_num(v) is not None for v in ci):
        return float(ci[0]), float(ci[1])
    return None


def format_interval(value: Any, ci: Any, digits: int = CI_DIGITS, bold: bool = False) -> str:
    """``value`` followed by its interval ``ci`` = [lo, hi]: "0.297 (0.268-0.326)"; the value
    alone when ``ci`` is missing or undefined, "-" when ``value`` is. ``bold`` bolds the value."""
    v = _num(value)
    if v is None:
        return "-"
    text = f"**{v:.{digits}f}**" if bold else f"{v:.{digits}f}"
    bounds = _ci_bounds(ci)
    return text if bounds is None else f"{text} ({bounds[0]:.{digits}f}-{bounds[1]:.{digits}f})"


@dataclass(frozen=True)
class _Interval:
    """A table cell holding a point value and its bootstrap interval."""

    value: float | None
    ci: Any


def _fmt(value: Any, bold: bool = False) -> str:
    if isinstance(value, _Interval):
        return format_interval(value.value, value.ci, bold=bold)
    if value is None:
        return "-"
    text = f"{value:.4f}" if isinstance(value, float) else str(value)
    return f"**{text}**" if bold else text


def _point(value: Any) -> Any:
    """The comparable number of a cell (an interval's point value), else None."""
    if isinstance(value, _Interval):
        return value.value
    return value if isinstance(value, int | float) else None


def _table(header: list[str], rows: list[list[Any]], bold_from: int = 1) -> list[str]:
    """Markdown table, padded to be readable raw; the best value of each numeric column
    (from column ``bold_from``) is bold, ties included (of an interval cell, the point)."""
    cells = [[_fmt(v) for v in r] for r in rows]
    for j in range(bold_from, len(header)):  # loop over columns
        numbers = [_point(r[j]) for r in rows if _point(r[j]) is not None]
        if len(rows) > 1 and numbers:
            best = max(numbers)
            for i, r in enumerate(rows):
                if _point(r[j]) is not None and _point(r[j]) == best:
                    cells[i][j] = _fmt(r[j], bold=True)
    widths = [max(len(h), *(len(c[j]) for c in cells)) for j, h in enumerate(header)]

    def line(values: list[str]) -> str:
        padded = [v.rjust(w) if j else v.ljust(w) for j, (v, w) in enumerate(zip(values, widths))]
        return "| " + " | ".join(padded) + " |"

    sep = "|" + "|".join(("-" * (w + 1) + ":" if j else ":" + "-" * (w + 1))
                         for j, w in enumerate(widths)) + "|"
    return [line(header), sep, *(line(c) for c in cells)]


def _is_column(key: str) -> bool:
    """A scalar metric key: not the tiers, an interval or a paired comparison."""
    return key != "tiers" and not key.endswith("_ci") and "_vs_" not in key


def _metric_keys(models: dict[str, dict[str, Any]]) -> list[str]:
    keys: list[str] = []
    for m in models.values():
        keys += [k for k in m if _is_column(k) and k not in keys]
    return keys


def _hr_key(m: dict[str, Any]) -> str:
    """The HR key of a model's metrics ("hr@10")."""
    return next((k for k in m if k.startswith("hr@") and _is_column(k)), "hr")


def _cell(m: dict[str, Any], key: str, with_ci: bool) -> Any:
    """``m[key]``, as an interval cell when the table shows intervals and ``key`` has one."""
    return _Interval(m.get(key), m.get(f"{key}_ci")) if with_ci and f"{key}_ci" in m else m.get(key)


def lead_line(models: dict[str, dict[str, Any]], hr_key: str | None = None) -> str | None:
    """One line naming the best model by ``hr_key`` (the first on ties) and whether its lead
    over the runner-up is significant: the paired bootstrap interval of the difference
    (``{hr_key}_vs_best_other``) excludes 0, else a tie. None with fewer than two models or
    without the paired comparison (older metrics.json)."""
    if len(models) < 2:
        return None
    hr_key = hr_key or _hr_key(next(iter(models.values())))
    scored = [(name, v) for name, m in models.items() if (v := _num(m.get(hr_key))) is not None]
    if not scored:
        return None
    best, value = max(scored, key=lambda nv: nv[1])  # max keeps the first on ties
    paired = models[best].get(f"{hr_key}_vs_best_other")
    bounds = _ci_bounds(paired.get("ci")) if isinstance(paired, dict) else None
    diff = _num(paired.get("diff")) if isinstance(paired, dict) else None
    if bounds is None or diff is None:
        return None
    lo, hi = bounds
    verdict = "significant lead" if lo > 0 or hi < 0 else "tie (the interval holds 0)"
    d = CI_DIGITS
    return (f"Best {hr_key.upper()}: **{best}** ({value:.{d}f}), {diff:+.{d}f} over runner-up "
            f"{paired.get('other')} (paired 95% CI {lo:+.{d}f} to {hi:+.{d}f}): {verdict}.")


def _tail_mean(tiers: list[dict[str, Any]], key: str) -> float | None:
    """Pair-weighted mean of ``key`` over the long-tail tiers (3..n)."""
    tail = [t for t in tiers if t["tier"] >= LONG_TAIL_FROM and t["pairs"] and t[key] is not None]
    pairs = sum(t["pairs"] for t in tail)
    return sum(t[key] * t["pairs"] for t in tail) / pairs if pairs else None


def render_report(metrics: dict[str, Any]) -> str:
    """Markdown report: one table per protocol x split (models in insertion order, best value
    per column in bold; HR and MRR followed by their 95% bootstrap interval when metrics.json
    holds one, and a line on whether the best HR leads the runner-up significantly), then the
    long-tail table (HR per popularity tier, test users)."""
    dataset, target = metrics.get("dataset", "?"), metrics.get("target_type", "?")
    lines = [f"# Evaluation: {dataset} (target type: {target})", ""]
    protocols: dict[str, Any] = metrics["protocols"]
    if any(k.endswith("_ci") for splits in protocols.values() for e in splits.values()
           for m in e["models"].values() for k in m):
        lines += [
            "HR and MRR: value (95% percentile bootstrap interval over users, 1000 resamples, "
            "fixed seed). Under each table, the best HR's lead over the runner-up is "
            "significant when the paired interval of the difference excludes 0, else a tie.",
            "",
        ]
    for protocol, splits in protocols.items():
        for split, entry in splits.items():
            models = entry["models"]
            lines.append(f"## {protocol} / {split} ({entry['users']} users)")
            lines.append("")
            if not models:
                lines += ["(no model evaluated)", ""]
                continue
            keys = _metric_keys(models)
            with_ci = {k: any(f"{k}_ci" in m for m in models.values()) for k in keys}
            header = ["model", *(f"{k} (95% CI)" if with_ci[k] else k for k in keys)]
            rows = [[name, *(_cell(m, k, with_ci[k]) for k in keys)] for name, m in models.items()]
            lines += [*_table(header, rows), ""]
            lead = lead_line(models)
            if lead is not None:
                lines += [lead, ""]
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
        hr_key = _hr_key(first)
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
        hr_key = _hr_key(first)
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
    return _save_png(fig, path)


def _save_png(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as a PNG atomically (temp file next to ``path``, then ``os.replace``)."""
    return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=120))


# ---------------------------------------------------------------------------------- learning curve
LEARNING_CURVE_MAX_ROWS = 15  # epochs shown in the Markdown table; the plot shows them all


def _num(value: Any) -> float | None:
    """``value`` as a finite float, else None (NaN, null, missing, non-numeric)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def _epochs(history: dict[str, Any]) -> list[dict[str, Any]]:
    rows = history.get("epochs")
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def _best_epoch(history: dict[str, Any]) -> int | None:
    """``best_epoch`` when it names a recorded epoch (it is -1 when no epoch ran)."""
    best = history.get("best_epoch")
    if isinstance(best, bool) or not isinstance(best, int):
        return None
    return best if any(r.get("epoch") == best for r in _epochs(history)) else None


def _setting(history: dict[str, Any], key: str) -> str | None:
    """``history[key]`` ("mode", "loss_name"), else the last epoch row's, else None."""
    rows = _epochs(history)
    value = history.get(key) or (rows[-1].get(key) if rows else None)
    return str(value) if value else None


def _untrained(history: dict[str, Any]) -> dict[str, Any] | None:
    u = history.get("untrained")
    return u if isinstance(u, dict) else None


def mrr_ratio(history: dict[str, Any]) -> tuple[float, float, float] | None:
    """(trained / untrained valid MRR, trained, untrained); trained = the best epoch's (the kept
    model). None without an untrained figure, a best epoch, or with an untrained MRR of 0."""
    best, untrained = _best_epoch(history), _untrained(history)
    if best is None or untrained is None:
        return None
    row = next(r for r in _epochs(history) if r.get("epoch") == best)
    trained, before = _num(row.get("valid_mrr")), _num(untrained.get("valid_mrr"))
    if trained is None or before is None or before <= 0:
        return None
    return trained / before, trained, before


def _shown(n: int, keep: int | None, limit: int) -> list[int | None]:
    """Row indices to show of ``n`` (first and last ones, and ``keep``); None marks a gap."""
    if n <= limit:
        return list(range(n))
    half = (limit - 1) // 2
    wanted = sorted({*range(half), *range(n - half, n), *([keep] if keep is not None else [])})
    out: list[int | None] = []
    for i in wanted:
        if out and out[-1] is not None and i != out[-1] + 1:
            out.append(None)
        out.append(i)
    return out


def render_learning_curve(history: dict[str, Any], stage: str = "hgnn") -> str:
    """Markdown section of an HGNN stage's training: loss and held-out-edge ranking per epoch
    (the untrained model first when recorded, the kept epoch marked ``(best)``), the
    trained/untrained MRR ratio when known, and a link to its plot (:func:`hgrec.utils.layout.learning_curve`).

    With no epochs (a run that trained none) it is a one-line note and no image link.
    """
    lines = [f"# HGNN learning curve ({stage})", ""]
    epochs = _epochs(history)
    if not epochs:
        lines += ["(no training epochs recorded)", ""]
        return "\n".join(lines)
    best = _best_epoch(history)
    facts = [f"{len(epochs)} epoch(s)"]
    facts += [f"{label}: {value}" for key, label in (("mode", "mode"), ("loss_name", "loss"))
              if (value := _setting(history, key))]
    facts.append("kept model: best epoch by valid MRR" if best is not None else "no best epoch")
    lines += [
        "Training loss per epoch, and valid MRR / HR@10 = ranking of held-out graph edges among "
        f"sampled negatives ({'; '.join(facts)}).",
        "",
    ]
    header = ["epoch", "loss", "valid MRR", "valid HR@10", "seconds"]
    rows: list[list[Any]] = []
    untrained = _untrained(history)
    if untrained is not None:
        rows.append(["untrained", None, _num(untrained.get("valid_mrr")),
                     _num(untrained.get("valid_hr10")), None])
    best_index = next((i for i, r in enumerate(epochs) if r.get("epoch") == best), None)
    for i in _shown(len(epochs), best_index, LEARNING_CURVE_MAX_ROWS):
        if i is None:
            rows.append(["...", "", "", "", ""])
            continue
        r = epochs[i]
        seconds = _num(r.get("seconds"))  # 2 decimals below a second: tiny runs are not 0.0
        label = str(r.get("epoch", i)) + (" (best)" if i == best_index else "")
        rows.append([label, _num(r.get("loss")), _num(r.get("valid_mrr")),
                     _num(r.get("valid_hr10")),
                     None if seconds is None else f"{seconds:.{1 if seconds >= 1 else 2}f}"])
    lines += [*_table(header, rows, bold_from=len(header)), ""]
    ratio = mrr_ratio(history)
    if ratio is not None:
        lines += [f"trained/untrained MRR = {ratio[0]:.2f} ({ratio[1]:.4f} at epoch {best} vs "
                  f"{ratio[2]:.4f} before training)", ""]
    lines += [f"![HGNN learning curve]({layout.learning_curve(stage)})", ""]
    return "\n".join(lines)


def plot_learning_curve(
    history: dict[str, Any], path: str | Path, stage: str = "hgnn"
) -> Path | None:
    """PNG of an HGNN stage's training, written atomically: left, training loss per epoch;
    right, held-out-edge MRR (solid, left axis) and HR@10 (dashed, right axis) per epoch, the
    untrained model's MRR as a horizontal dashed line when recorded, the best epoch starred.

    Returns ``path``, or None (nothing written) when the history holds no epochs.
    """
    epochs = _epochs(history)
    if not epochs:
        return None
    nan = float("nan")

    def series(key: str) -> list[float]:
        return [v if (v := _num(r.get(key))) is not None else nan for r in epochs]

    x = [r.get("epoch", i) for i, r in enumerate(epochs)]
    loss, mrr, hr10 = series("loss"), series("valid_mrr"), series("valid_hr10")
    best = _best_epoch(history)
    u_mrr = _num((_untrained(history) or {}).get("valid_mrr"))
    loss_name = _setting(history, "loss_name")

    fig = Figure(figsize=(11.0, 4.0), layout="constrained")
    FigureCanvasAgg(fig)  # Agg canvas without touching pyplot's global state
    ax_loss, ax_mrr = fig.subplots(1, 2, sharex=True)
    ax_hr = ax_mrr.twinx()
    title = f"HGNN learning curve: stage {stage}"
    extra = [v for k in ("mode", "loss_name") if (v := _setting(history, k))]
    fig.suptitle(title + (f" ({', '.join(extra)})" if extra else ""))

    ax_loss.plot(x, loss, marker="o", color="C3")
    ax_loss.set_title("training loss")
    ax_loss.set_ylabel(f"{loss_name} loss" if loss_name else "loss")

    handles = ax_mrr.plot(x, mrr, marker="o", color="C0", label="valid MRR")
    handles += ax_hr.plot(x, hr10, marker="s", markersize=4, linestyle="--", color="C1",
                          label="valid HR@10")
    if u_mrr is not None:
        handles.append(ax_mrr.axhline(u_mrr, linestyle="--", color="0.45", linewidth=1.2,
                                      label=f"untrained MRR ({u_mrr:.3f})"))
    if best is not None:
        i = x.index(best)
        for ax in (ax_loss, ax_mrr):
            ax.axvline(best, linestyle=":", color="0.6", linewidth=1.0)
        if not math.isnan(mrr[i]):
            handles += ax_mrr.plot([best], [mrr[i]], marker="*", markersize=15, color="C2",
                                   linestyle="none", label=f"best epoch {best}")
    if all(math.isnan(v) for v in mrr):
        ax_mrr.text(0.5, 0.5, "no held-out edges", transform=ax_mrr.transAxes, ha="center",
                    color="0.4")
    ax_mrr.set_title("held-out edges")
    ax_mrr.set_ylabel("valid MRR")
    ax_hr.set_ylabel("valid HR@10")
    # From 0, so the gap to the untrained model reads as a ratio; headroom for the markers.
    for ax, values in ((ax_mrr, [*mrr, u_mrr if u_mrr is not None else nan]), (ax_hr, hr10)):
        finite = [v for v in values if not math.isnan(v)]
        ax.set_ylim(0.0, 1.1 * max(finite) if finite and max(finite) > 0 else 1.0)
    ax_mrr.legend(handles=handles, fontsize="small", loc="best")
    for ax in (ax_loss, ax_mrr):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    return _save_png(fig, path)
