"""Smoke and unit tests of benchmarks/scale.py (its helpers, and two stages at a tiny size)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "scale.py"


@pytest.fixture(scope="module")
def scale() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_scale", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_scale"] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "text, expected", [("1M", 1_000_000), ("500k", 500_000), ("2000", 2000), ("0.5G", 500_000_000)]
)
def test_parse_and_format_size_round_trip(scale: ModuleType, text: str, expected: int) -> None:
    assert scale.parse_size(text) == expected
    assert scale.parse_size(scale.fmt_size(expected)) == expected


@pytest.mark.parametrize("k", [0.5, 1.0, 1.7])
def test_growth_exponent_recovers_a_power_law(scale: ModuleType, k: float) -> None:
    sizes = [1e6, 1e7, 5e7]
    costs = [3.0 * s**k for s in sizes]
    assert scale.growth_exponent(sizes, costs) == pytest.approx(k, abs=1e-9)
    # Projection from the last point follows the same law.
    assert scale.project(5e7, 8e8, costs[-1], k) == pytest.approx(3.0 * 8e8**k, rel=1e-9)


def test_growth_exponent_needs_two_sizes(scale: ModuleType) -> None:
    assert scale.growth_exponent([1e6], [2.0]) is None
    assert scale.growth_exponent([1e6, 1e6], [2.0, 3.0]) is None


def test_topic_agreement_hand_computed(scale: ModuleType) -> None:
    # Two tight clusters of 3 items: each item's 2 nearest neighbours are its cluster mates,
    # except item 5 whose topic label disagrees with its cluster.
    emb = np.array([[1, 0], [1, 0.01], [1, -0.01], [0, 1], [0.01, 1], [-0.01, 1]], np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    topic = np.array([0, 0, 0, 1, 1, 0])
    # Items 0-2: 2/2 each; items 3, 4: 1/2 (item 5 has topic 0); item 5: 0/2.
    assert scale.topic_agreement(emb, topic, k=2, block=4) == pytest.approx((6 + 2) / 12)
    assert scale.chance_agreement(topic) == pytest.approx((4 / 6) ** 2 + (2 / 6) ** 2)


def test_memory_projection_skips_what_would_not_fit(scale: ModuleType) -> None:
    rows = [scale.Row(10**6, "graph", 1.0, 1.0, 500.0), scale.Row(10**7, "graph", 9.0, 9.0, 5000.0)]
    proj = scale.memory_projection(rows, "graph", 5 * 10**7)
    assert proj == pytest.approx(25_000.0)  # exponent 1 fitted: 5000 MB x 5
    assert scale.memory_projection(rows, "hgnn", 5 * 10**7) is None


def test_tiny_run_measures_each_stage_in_a_child(scale: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    scale.main(["--sizes", "20k", "--stages", "generate,load", "--workdir", str(tmp_path),
                "--no-quality", "--json", str(out)])  # fmt: skip
    import json

    rows = json.loads(out.read_text())
    assert [r["stage"] for r in rows] == ["generate", "load"]
    for r in rows:
        assert r["seconds"] > 0 and r["peak_mb"] > 0, r
    assert "1,000 users" in rows[1]["info"]
    assert (tmp_path / "n20000" / "dataset.pkl").is_file()


def test_summarize_projects_with_the_fitted_exponent(scale: ModuleType) -> None:
    # time ~ size^2 and memory ~ size^1: from 10M (100 s, 1000 MB) to 100M -> 10^4 s, 10^4 MB.
    rows = [scale.Row(n, "graph", 0.0, 100.0 * (n / 10**7) ** 2, 1000.0 * n / 10**7)
            for n in (10**6, 10**7)]  # fmt: skip
    lines = scale.summarize(rows, ["graph", "hgnn"], 10**8, 10**6)
    assert len(lines) == 2  # header + graph; hgnn was not measured
    assert lines[1].split()[:3] == ["graph", "2.00", "1.00"]
    assert f"{1e4 / 3600:.1f} h" in lines[1] and f"{1e4 / 1024:.1f} GB" in lines[1]
