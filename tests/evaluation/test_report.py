"""metrics.json round trip, atomic writes, the Markdown report, the tier plot and the HGNN
learning curve."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from hgrec.evaluation.report import (
    plot_learning_curve,
    plot_tiers,
    render_learning_curve,
    render_report,
    write_metrics,
)
from hgrec.utils import layout

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _tiers(hrs: list[float | None]) -> list[dict[str, Any]]:
    return [
        {"tier": t + 1, "items": 10, "pairs": 4, "hr@10": h, "mrr@100": h}
        for t, h in enumerate(hrs)
    ]


def _model(hr: float, cov: float, tiers: list[float | None]) -> dict[str, Any]:
    return {"hr@10": hr, "mrr@100": hr / 2, "recall@10": hr, "ndcg@10": hr / 3,
            "coverage@100": cov, "tiers": _tiers(tiers)}


def _metrics() -> dict[str, Any]:
    models = {
        "popularity": _model(0.10, 0.01, [0.5, 0.0, 0.0, 0.0, 0.0]),
        "2t-hgnn": _model(0.30, 0.20, [0.4, 0.3, 0.2, 0.1, None]),
        "llm-knn": _model(0.20, 0.50, [0.2, 0.2, 0.3, 0.1, 0.1]),
    }
    def split() -> dict[str, Any]:
        return copy.deepcopy({"users": 12, "counts": {"kept": 12}, "models": models})

    return {"dataset": "tiny", "target_type": "food",
            "protocols": {"cold": {"valid": split(), "test": split()},
                          "warm": {"valid": split(), "test": split()}}}


def test_metrics_json_round_trip(tmp_path: Path) -> None:
    m = _metrics()
    m["protocols"]["cold"]["test"]["models"]["popularity"]["ndcg@10"] = float("nan")
    path = write_metrics(tmp_path / "metrics.json", m)
    assert path == tmp_path / "metrics.json"
    back = json.loads(path.read_text())
    assert back["protocols"]["cold"]["test"]["models"]["popularity"]["ndcg@10"] is None
    back["protocols"]["cold"]["test"]["models"]["popularity"]["ndcg@10"] = float("nan")
    assert json.dumps(back, sort_keys=True) == json.dumps(m, sort_keys=True)
    assert list(back["protocols"]["warm"]["test"]["models"]) == ["popularity", "2t-hgnn", "llm-knn"]
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temporary file left


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    write_metrics(tmp_path / "metrics.json", _metrics())
    before = (tmp_path / "metrics.json").read_text()
    with pytest.raises(TypeError):
        write_metrics(tmp_path / "metrics.json", {"protocols": {}, "bad": object()})
    assert (tmp_path / "metrics.json").read_text() == before
    assert len(list(tmp_path.iterdir())) == 1


def test_report_renders_every_model_and_bolds_the_best() -> None:
    text = render_report(_metrics())
    tables = [line for line in text.splitlines() if line.startswith("## ")]
    assert tables[:4] == ["## cold / valid (12 users)", "## cold / test (12 users)",
                          "## warm / valid (12 users)", "## warm / test (12 users)"]
    for name in ("popularity", "2t-hgnn", "llm-knn"):
        # 4 metric tables + 2 long-tail tables (test split, one per protocol).
        assert sum(line.startswith(f"| {name} ") for line in text.splitlines()) == 6
    head = [line for line in text.splitlines()[:12] if line.startswith("| ")]
    rows = {line.split("|")[1].strip(): line for line in head}
    assert "**0.3000**" in rows["2t-hgnn"] and "**0.5000**" in rows["llm-knn"]  # hr, coverage
    assert "**" not in rows["popularity"]
    # Long tail: tier 1 best = popularity; tail (tiers 3-5, pair-weighted): llm-knn (0.5/3).
    tail = [line for line in text.splitlines() if line.startswith("| popularity ")][-1]
    assert tail.split("|")[2].strip() == "**0.5000**"
    llm = [line for line in text.splitlines() if line.startswith("| llm-knn ")][-1]
    assert llm.split("|")[-2].strip() == f"**{0.5 / 3:.4f}**"
    hgnn = [line for line in text.splitlines() if line.startswith("| 2t-hgnn ")][-1]
    assert hgnn.split("|")[6].strip() == "-"  # tier 5 without pairs


def test_report_rows_follow_insertion_order() -> None:
    text = render_report(_metrics())
    names = [line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| ")]
    assert names[:4] == ["model", "popularity", "2t-hgnn", "llm-knn"]


def test_render_report_and_plot(tmp_path: Path) -> None:
    assert render_report(_metrics()).startswith("# Evaluation: tiny")
    png = plot_tiers(_metrics(), tmp_path / "tiers.png")
    assert png.read_bytes()[:8] == PNG_MAGIC


def test_plot_needs_test_results(tmp_path: Path) -> None:
    m = _metrics()
    for p in m["protocols"].values():
        del p["test"]
    with pytest.raises(ValueError, match="test"):
        plot_tiers(m, tmp_path / "x.png")
    assert "(no test split evaluated)" in render_report(m)


# ---------------------------------------------------------------------------------- intervals
def _with_intervals(lead: tuple[float, float]) -> dict[str, Any]:
    """_metrics() plus "_ci" intervals and paired comparisons; 2t-hgnn (best HR) leads
    llm-knn by +0.1 with paired interval ``lead``."""
    m = _metrics()
    for splits in m["protocols"].values():
        for entry in splits.values():
            ms = entry["models"]
            for name, v in ms.items():
                v["hr@10_ci"] = [v["hr@10"] - 0.03, v["hr@10"] + 0.025]
                v["mrr@100_ci"] = [v["mrr@100"] - 0.02, v["mrr@100"] + 0.02]
                other = "llm-knn" if name == "2t-hgnn" else "2t-hgnn"
                diff = v["hr@10"] - ms[other]["hr@10"]
                ci = list(lead) if name == "2t-hgnn" else [diff - 0.05, diff + 0.05]
                v["hr@10_vs_best_other"] = {"other": other, "diff": diff, "ci": ci}
    return m


def test_report_shows_intervals_and_keeps_the_bold_best() -> None:
    text = render_report(_with_intervals((0.04, 0.16)))
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("| model "))
    cols = [c.strip() for c in header.split("|")[1:-1]]
    assert cols == ["model", "hr@10 (95% CI)", "mrr@100 (95% CI)", "recall@10", "ndcg@10",
                    "coverage@100"]  # no "_ci" or paired column
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in lines[:20] if line.startswith("| ") and not line.startswith("| model")}
    assert rows["2t-hgnn"][0] == "**0.300** (0.270-0.325)"
    assert rows["popularity"][0] == "0.100 (0.070-0.125)"
    assert rows["2t-hgnn"][1] == "**0.150** (0.130-0.170)"
    assert rows["llm-knn"][4] == "**0.5000**"  # other columns as before
    leads = [line for line in lines if line.startswith("Best HR@10")]
    assert len(leads) == 4  # one under each protocol x split table
    assert leads[0] == ("Best HR@10: **2t-hgnn** (0.300), +0.100 over runner-up llm-knn "
                        "(paired 95% CI +0.040 to +0.160): significant lead.")
    # The line sits right under its table.
    i = lines.index(leads[0])
    assert lines[i - 1] == "" and lines[i - 2].startswith("| llm-knn ")


def test_report_calls_a_tie_when_the_paired_interval_holds_zero() -> None:
    text = render_report(_with_intervals((-0.02, 0.2)))
    lead = next(line for line in text.splitlines() if line.startswith("Best HR@10"))
    assert lead.endswith("(paired 95% CI -0.020 to +0.200): tie (the interval holds 0).")


def test_report_with_intervals_is_strict_json(tmp_path: Path) -> None:
    m = _with_intervals((0.04, 0.16))
    m["protocols"]["cold"]["test"]["models"]["popularity"]["hr@10_ci"] = [float("nan")] * 2
    back = json.loads(write_metrics(tmp_path / "metrics.json", m).read_text())
    assert back["protocols"]["cold"]["test"]["models"]["popularity"]["hr@10_ci"] == [None, None]
    text = render_report(back)  # an undefined interval renders as the value alone
    cold_test = text.split("## cold / test")[1].split("## ")[0]
    row = next(line for line in cold_test.splitlines() if line.startswith("| popularity "))
    assert row.split("|")[2].strip() == "0.100"


def test_report_without_intervals_has_no_lead_line() -> None:
    text = render_report(_metrics())  # an older metrics.json: no "_ci", no paired keys
    assert "Best HR@10" not in text and "95% CI" not in text and "bootstrap" not in text


def test_ablation_table_shows_hr_intervals() -> None:
    from hgrec.pipeline.experiments import render_ablations

    block = _with_intervals((0.04, 0.16))["protocols"]
    text = render_ablations(block)
    lines = text.splitlines()
    assert lines[0] == ("| model | cold hr@10 (95% CI) | cold mrr@100 | cold coverage@100 "
                        "| warm hr@10 (95% CI) | warm mrr@100 | warm coverage@100 |")
    assert lines[3] == ("| 2t-hgnn | 0.300 (0.270-0.325) | 0.1500 | 0.2000 "
                        "| 0.300 (0.270-0.325) | 0.1500 | 0.2000 |")
    assert lines[-2].startswith("cold: Best HR@10: **2t-hgnn** (0.300)")
    assert lines[-1].startswith("warm: Best HR@10") and lines[-1].endswith("significant lead.")
    plain = render_ablations(_metrics()["protocols"])  # without intervals: as before
    assert "(95% CI)" not in plain and "| 2t-hgnn | 0.3000 | 0.1500 |" in plain
    assert "Best" not in plain

# ---------------------------------------------------------------------------------- learning curve
def _history(untrained: bool = True, n: int = 4, best: int = 2) -> dict[str, Any]:
    mrr = [0.12, 0.20, 0.25, 0.24, 0.23, 0.22, 0.21, 0.20] * (n // 8 + 1)
    rows = [
        {"epoch": e, "loss": 1.0 / (e + 1), "valid_mrr": mrr[e], "valid_hr10": 2 * mrr[e],
         "seconds": 1.25, "steps": 3, "edges": 90, "rel/mrr": mrr[e]}
        for e in range(n)
    ]
    h: dict[str, Any] = {"best_epoch": best, "epochs": rows}
    if untrained:
        h |= {"untrained": {"valid_mrr": 0.10, "valid_hr10": 0.18}, "mode": "full-graph",
              "loss_name": "hinge"}
    return h


def _table_rows(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.split("|")[1:-1]] for line in text.splitlines()
            if line.startswith("| ")][1:]  # without the header


@pytest.mark.parametrize("untrained", [True, False])
def test_plot_learning_curve_writes_a_png(tmp_path: Path, untrained: bool) -> None:
    path = tmp_path / layout.learning_curve("hgnn")
    assert plot_learning_curve(_history(untrained), path, stage="hgnn") == path
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert [p.name for p in tmp_path.iterdir()] == ["hgnn_learning_curve.png"]  # no temp file


def test_plot_learning_curve_tolerates_missing_figures(tmp_path: Path) -> None:
    """NaN / null figures (a graph without held-out edges), a best epoch of -1, one epoch."""
    h = _history(untrained=False, n=1, best=-1)
    h["epochs"][0] |= {"valid_mrr": float("nan"), "valid_hr10": None}
    assert plot_learning_curve(h, tmp_path / "x.png").read_bytes()[:8] == PNG_MAGIC
    rows = _table_rows(render_learning_curve(h, "hgnn"))
    assert rows == [["0", "1.0000", "-", "-", "1.2"]]


def test_render_learning_curve_marks_the_best_epoch_and_the_ratio() -> None:
    text = render_learning_curve(_history(), "hgnn")
    assert text.startswith("# HGNN learning curve (hgnn)")
    assert "mode: full-graph" in text and "loss: hinge" in text
    rows = _table_rows(text)
    assert [r[0] for r in rows] == ["untrained", "0", "1", "2 (best)", "3"]
    assert rows[0] == ["untrained", "-", "0.1000", "0.1800", "-"]
    assert rows[3] == ["2 (best)", f"{1 / 3:.4f}", "0.2500", "0.5000", "1.2"]
    assert "**" not in text  # no bold: the best loss is the lowest, the best MRR is marked
    assert "trained/untrained MRR = 2.50" in text  # best epoch's 0.25 over the untrained 0.10
    assert text.rstrip().endswith("![HGNN learning curve](hgnn_learning_curve.png)")


def test_render_learning_curve_without_untrained_figures() -> None:
    """Older runs: no untrained row, no ratio, no mode; the image link all the same."""
    text = render_learning_curve(_history(untrained=False), "ablation-A-hgnn")
    assert [r[0] for r in _table_rows(text)] == ["0", "1", "2 (best)", "3"]
    assert "trained/untrained" not in text and "mode:" not in text
    assert "![HGNN learning curve](ablation-A-hgnn_learning_curve.png)" in text
    h = _history(untrained=False)
    for row in h["epochs"]:
        row |= {"mode": "minibatch", "seconds": 0.04}  # mode per row, as some runs record it
    text = render_learning_curve(h, "hgnn")
    assert "mode: minibatch" in text and _table_rows(text)[0][-1] == "0.04"
    h = _history()
    h["untrained"]["valid_mrr"] = 0.0  # no ratio to a zero MRR
    assert "trained/untrained" not in render_learning_curve(h, "hgnn")


def test_render_learning_curve_shortens_long_histories() -> None:
    rows = _table_rows(render_learning_curve(_history(n=40, best=20), "hgnn"))
    labels = [r[0] for r in rows]
    assert labels[:2] == ["untrained", "0"] and labels[-1] == "39"
    assert "20 (best)" in labels and labels.count("...") == 2 and len(rows) <= 1 + 15 + 2


def test_learning_curve_without_epochs(tmp_path: Path) -> None:
    """A history with no epochs: no plot (nothing written), a note instead of the table."""
    for h in ({"best_epoch": -1, "epochs": []}, {"reused_from": "/runs/a"}):
        path = tmp_path / "curve.png"
        assert plot_learning_curve(h, path) is None
        assert not path.exists() and not list(tmp_path.iterdir())
        text = render_learning_curve(h, "hgnn")
        assert "(no training epochs recorded)" in text and "![" not in text and "| " not in text
