"""The graph folder depends on the graph's content only, so downstream stage keys do too."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from hgrec.config import GraphConfig
from hgrec.graph import build
from hgrec.graph.build import build_cograph_with_report
from hgrec.graph.io import write_graph
from hgrec.utils.artifacts import RunDir, config_hash
from tests.graph._data import random_dataset


def _graph_stage(run: Path) -> str:
    """Build the graph as ``hgrec run`` does; return the HGNN stage key that depends on it."""
    ds = random_dataset(0)
    run_dir = RunDir(run)
    run_dir.start({"graph": {}})
    with run_dir.stage("graph", "same-inputs") as tmp:
        graph, report = build_cograph_with_report(ds, GraphConfig(top_k=3), progress=False)
        write_graph(graph, tmp, ds.catalog, report.to_dict())
    return config_hash({"graph": run_dir.output_hash("graph"), "hgnn": "same settings"})


def test_two_builds_of_one_graph_give_one_stage_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = itertools.count(step=7.5)  # every build takes a different wall time
    monkeypatch.setattr(build.time, "perf_counter", lambda: float(next(clock)))
    first = _graph_stage(tmp_path / "a")
    second = _graph_stage(tmp_path / "b")
    assert first == second
    summary = json.loads((tmp_path / "a" / "graph" / "summary.json").read_text())
    assert "seconds" not in summary["report"] and summary["report"]["n_edges"] > 0
