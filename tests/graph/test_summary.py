"""Graph summary: counts, degree percentiles and isolated shares on a hand-built graph."""

from __future__ import annotations

import numpy as np
import pytest

from hgrec.config import GraphConfig
from hgrec.graph.build import build_cograph
from hgrec.graph.summary import format_summary, relation_degrees, summarize
from tests.graph._data import hand_dataset, random_dataset


def test_hand_summary() -> None:
    # Edges: a__a {(0,1)}, a__b {(0,3),(0,4),(1,3),(1,4)}, b__b {(3,4)}; a2 (2) has none.
    s = summarize(build_cograph(hand_dataset(), GraphConfig(), progress=False))
    assert s["nodes"] == {"a": 3, "b": 2}
    assert s["edges"] == {"a__a": 1, "a__b": 4, "b__b": 1} and s["n_edges"] == 6
    assert s["isolated"] == {"a": pytest.approx(1 / 3), "b": 0.0}
    # a-nodes in a__b have degrees [2, 2, 0]; b-nodes [2, 2].
    assert s["degree"]["a__b"]["a"] == {"p50": 2.0, "p90": 2.0, "p99": 2.0, "max": 2.0,
                                        "mean": pytest.approx(4 / 3)}
    assert s["degree"]["a__b"]["b"]["max"] == 2.0 and s["degree"]["a__b"]["b"]["p50"] == 2.0
    assert set(s["degree"]["a__a"]) == {"a"} and s["degree"]["a__a"]["a"]["p50"] == 1.0
    text = format_summary(s)
    for token in ("a__b", "b__b", "33.3%", "6 edges"):
        assert token in text


@pytest.mark.parametrize("seed", [0, 4])
def test_degrees_sum_to_twice_the_edges(seed: int) -> None:
    graph = build_cograph(random_dataset(seed), GraphConfig(), progress=False)
    for name, deg in relation_degrees(graph).items():
        assert deg.sum() == 2 * graph.relations[name].n_edges
        assert np.array_equal(deg, np.diff(graph.neighbors(name).indptr))
    s = summarize(graph)
    assert sum(s["nodes"].values()) == graph.n_items
