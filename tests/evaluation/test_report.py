"""metrics.json round trip, atomic writes, the Markdown report and the tier plot."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from hgrec.evaluation.report import (
    plot_tiers,
    read_metrics,
    render_report,
    write_metrics,
    write_report,
)


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
    path = write_metrics(tmp_path, m)
    assert path == tmp_path / "metrics.json"
    back = read_metrics(tmp_path)
    assert back["protocols"]["cold"]["test"]["models"]["popularity"]["ndcg@10"] is None
    back["protocols"]["cold"]["test"]["models"]["popularity"]["ndcg@10"] = float("nan")
    assert json.dumps(back, sort_keys=True) == json.dumps(m, sort_keys=True)
    assert list(back["protocols"]["warm"]["test"]["models"]) == ["popularity", "2t-hgnn", "llm-knn"]
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temporary file left


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    write_metrics(tmp_path, _metrics())
    before = (tmp_path / "metrics.json").read_text()
    with pytest.raises(TypeError):
        write_metrics(tmp_path, {"protocols": {}, "bad": object()})
    assert (tmp_path / "metrics.json").read_text() == before
    assert len(list(tmp_path.iterdir())) == 1


def test_read_metrics_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_metrics(tmp_path / "nope.json")
    (tmp_path / "x.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="protocols"):
        read_metrics(tmp_path / "x.json")


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


def test_write_report_and_plot(tmp_path: Path) -> None:
    path = write_report(tmp_path, _metrics())
    assert path.read_text().startswith("# Evaluation: tiny")
    png = plot_tiers(_metrics(), tmp_path / "tiers.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_needs_test_results(tmp_path: Path) -> None:
    m = _metrics()
    for p in m["protocols"].values():
        del p["test"]
    with pytest.raises(ValueError, match="test"):
        plot_tiers(m, tmp_path / "x.png")
    assert "(no test split evaluated)" in render_report(m)
