"""The graph builder: hand-computed co-counts, options, engines agreeing, the report."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from hgrec.config import GraphConfig
from hgrec.graph.build import build_cograph, build_cograph_with_report
from tests.conftest import make_tiny_dataset
from tests.graph._data import DAY, brute_force, edges_of, hand_dataset, make_dataset, random_dataset

ENGINES = ["scipy", "duckdb"]

# Hand-computed from the histories in tests/graph/_data.py::hand_dataset.
ALL_PAIRS = {(0, 1): 2, (0, 3): 1, (1, 3): 2, (0, 4): 2, (1, 4): 2, (3, 4): 1}
CASES = [
    ({}, ALL_PAIRS),
    ({"min_users": 2}, {(0, 1): 2, (1, 3): 2, (0, 4): 2, (1, 4): 2}),
    ({"events": ["stream"]}, {(0, 1): 2, (0, 4): 2, (1, 4): 2}),
    ({"window": 1}, {(0, 1): 2, (1, 3): 2, (1, 4): 1, (3, 4): 1, (0, 4): 1}),
    ({"window": 2}, {(0, 1): 2, (0, 3): 1, (1, 3): 2, (1, 4): 2, (3, 4): 1, (0, 4): 1}),
    # The follow between a1 and b1 of u2 is dropped first, so they become adjacent.
    ({"window": 1, "events": ["stream"]}, {(0, 1): 2, (1, 4): 2, (0, 4): 1}),
    # Ties by smaller index: node 1 keeps b0 (3) over b1 (4), node 4 keeps a0 over a1, so
    # (1, 4) is in nobody's top 1; (0, 3) loses to (0, 4) and (1, 3).
    ({"top_k": 1}, {(0, 1): 2, (0, 4): 2, (1, 3): 2, (3, 4): 1}),
]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("options, expected", CASES)
def test_hand_built_counts(engine: str, options: dict, expected: dict) -> None:
    graph = build_cograph(hand_dataset(), GraphConfig(engine=engine, **options), progress=False)
    assert edges_of(graph) == expected


@pytest.mark.parametrize("engine", ENGINES)
def test_relations_and_types_two_types(engine: str) -> None:
    graph = build_cograph(hand_dataset(), GraphConfig(engine=engine), progress=False)
    assert set(graph.relations) == {"a__a", "a__b", "b__b"}
    ab = graph.relations["a__b"]
    assert (ab.src_type, ab.dst_type) == ("a", "b")
    assert list(zip(ab.src.tolist(), ab.dst.tolist())) == [(0, 3), (0, 4), (1, 3), (1, 4)]
    assert graph.relations["a__a"].count.tolist() == [2]
    assert graph.relations["b__b"].count.dtype == np.int32


@pytest.mark.parametrize("engine", ENGINES)
def test_relation_split_three_types_with_empty_relations(engine: str) -> None:
    # Row order is not type order, so cross-type edges must be flipped to (smaller type, larger).
    items = [("z0", "z"), ("y0", "y"), ("x0", "x"), ("z1", "z")]
    ds = make_dataset(items, [("train", [("z0", "s"), ("y0", "s"), ("x0", "s"), ("z1", "s")])])
    graph = build_cograph(ds, GraphConfig(engine=engine), progress=False)
    expected = {
        "x__x": [], "y__y": [],
        "x__y": [(2, 1)], "x__z": [(2, 0), (2, 3)], "y__z": [(1, 0), (1, 3)], "z__z": [(0, 3)],
    }
    got = {k: list(zip(r.src.tolist(), r.dst.tolist())) for k, r in graph.relations.items()}
    assert got == expected
    for r in graph.relations.values():
        assert (graph.item_type[r.src] == graph.type_names.index(r.src_type)).all()
        assert (graph.item_type[r.dst] == graph.type_names.index(r.dst_type)).all()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("window, expected", [(1, {(0, 1): 1}), (2, {(0, 1): 1, (1, 2): 1}),
                                              (3, {(0, 1): 1, (1, 2): 1, (0, 2): 1})])
def test_window_in_days(engine: str, window: int, expected: dict) -> None:
    items = [("a0", "a"), ("a1", "a"), ("b0", "b")]
    hist = [("a0", "s", 0.0), ("a1", "s", DAY), ("b0", "s", 3 * DAY)]
    ds = make_dataset(items, [("train", hist)], order_kind="timestamp")
    cfg = GraphConfig(engine=engine, window=window, window_unit="days")
    assert edges_of(build_cograph(ds, cfg, progress=False)) == expected


def test_window_in_days_needs_timestamps() -> None:
    with pytest.raises(ValueError, match="needs timestamps.*ordered by position"):
        build_cograph(hand_dataset(), GraphConfig(window=2, window_unit="days"), progress=False)


def test_unknown_event_and_bad_users_are_clear_errors() -> None:
    unknown = r"unknown event names \['click'\].*\['follow', 'stream'\]"
    with pytest.raises(ValueError, match=unknown):
        build_cograph(hand_dataset(), GraphConfig(events=["click"]), progress=False)
    with pytest.raises(ValueError, match=r"users: 1 indices outside \[0, 6\).*\[9\]"):
        build_cograph(hand_dataset(), GraphConfig(), users=np.array([0, 9]), progress=False)


@pytest.mark.parametrize("engine", ENGINES)
def test_only_chosen_users_contribute(engine: str) -> None:
    ds = hand_dataset()
    cfg = GraphConfig(engine=engine)
    # The valid user u3 alone brings a2 (2) into the graph.
    assert all(2 not in e for e in edges_of(build_cograph(ds, cfg, progress=False)))
    only_valid = build_cograph(ds, cfg, users=ds.users_in("valid"), progress=False)
    assert edges_of(only_valid) == {e: 1 for e in [(0, 2), (0, 3), (0, 4), (2, 3), (2, 4), (3, 4)]}


@pytest.mark.parametrize("engine", ENGINES)
def test_report_counts(engine: str) -> None:
    ds = hand_dataset()
    _, report = build_cograph_with_report(
        ds, GraphConfig(engine=engine, events=["stream"]), progress=False
    )
    assert report.users == 5
    assert report.interactions_of_users == 3 + 4 + 3 + 1 + 4
    assert report.dropped_by_events == 2
    assert report.duplicate_user_items == 3  # u1: a1 twice; u5: a0 and b1 twice
    assert (report.distinct_pairs, report.cooccurrences) == (3, 6)
    _, report = build_cograph_with_report(
        ds, GraphConfig(engine=engine, min_users=2, top_k=1), progress=False
    )
    assert (report.distinct_pairs, report.cooccurrences) == (6, 10)
    assert report.dropped_by_min_users == 2  # (0, 3) and (3, 4)
    # Among the 4 left, (1, 4) loses both ties: node 1 keeps 3, node 4 keeps 0.
    assert (report.dropped_by_top_k, report.n_edges) == (1, 3)
    assert "dropped_by_min_users" in report.format()


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("options", [{}, {"window": 3}, {"events": ["stream"], "window": 2}])
def test_scipy_matches_brute_force_on_random_data(seed: int, options: dict) -> None:
    ds = random_dataset(seed)
    # A tiny block budget forces many blocks / chunks: the result must not depend on it.
    cfg = GraphConfig(block_pairs=40, **options)
    got = edges_of(build_cograph(ds, cfg, progress=False))
    assert got == brute_force(ds, options.get("events"), options.get("window"))


OPTION_GRID = [
    {}, {"min_users": 2}, {"top_k": 2}, {"top_k": 1, "min_users": 2},
    {"window": 2, "top_k": 3}, {"events": ["stream"], "window": 4, "min_users": 2},
]


@pytest.mark.parametrize("options", OPTION_GRID)
@pytest.mark.parametrize("dataset", ["tiny", "random"])
def test_engines_agree(options: dict, dataset: str) -> None:
    ds = make_tiny_dataset() if dataset == "tiny" else random_dataset(3)
    if dataset == "tiny" and "events" in options:
        options = {k: v for k, v in options.items() if k != "events"}
    graphs = [
        build_cograph(ds, GraphConfig(engine=e, block_pairs=b, **options), progress=False)
        for e, b in (("scipy", 10**9), ("scipy", 30), ("duckdb", 10**9))
    ]
    for g in graphs[1:]:
        assert g.relations.keys() == graphs[0].relations.keys()
        for k, r in graphs[0].relations.items():
            o = g.relations[k]
            assert np.array_equal(r.src, o.src) and np.array_equal(r.dst, o.dst)
            assert np.array_equal(r.count, o.count)
    assert sum(r.n_edges for r in graphs[0].relations.values()) > 0


@pytest.mark.parametrize("k", [1, 2, 4])
def test_top_k_rule_invariants(k: int) -> None:
    ds = random_dataset(5)
    full = build_cograph(ds, GraphConfig(), progress=False)
    pruned = build_cograph(ds, GraphConfig(top_k=k, block_pairs=50), progress=False)
    for name, r in full.relations.items():
        kept = set(zip(pruned.relations[name].src.tolist(), pruned.relations[name].dst.tolist()))
        # Each node's ranking in this relation: count desc, neighbour index asc.
        nbrs: dict[int, list[tuple[int, int]]] = {}
        for s, d, c in zip(r.src.tolist(), r.dst.tolist(), r.count.tolist()):
            nbrs.setdefault(s, []).append((-c, d))
            nbrs.setdefault(d, []).append((-c, s))
        top = {v: {w for _, w in sorted(lst)[:k]} for v, lst in nbrs.items()}
        pairs = zip(r.src.tolist(), r.dst.tolist())
        expected = {(s, d) for s, d in pairs if d in top[s] or s in top[d]}
        assert kept == expected
        # Every node keeps min(k, degree) of its edges in the relation.
        ends = np.array([x for e in kept for x in e], dtype=np.int64)
        deg_kept = np.bincount(ends, minlength=ds.catalog.n_items)
        for v, lst in nbrs.items():
            assert deg_kept[v] >= min(k, len(lst))


@pytest.mark.parametrize("engine", ENGINES)
def test_symmetric_without_self_loops(engine: str) -> None:
    ds = random_dataset(7)
    graph = build_cograph(ds, GraphConfig(engine=engine), progress=False)
    for name, r in graph.relations.items():
        assert not (r.src == r.dst).any()
        if r.src_type == r.dst_type:
            assert (r.src < r.dst).all()
        assert len(set(zip(r.src.tolist(), r.dst.tolist()))) == r.n_edges
        nb = graph.neighbors(name)
        adj = sp.csr_matrix((np.ones(len(nb.indices)), nb.indices, nb.indptr),
                            shape=(graph.n_items, graph.n_items))
        assert (adj != adj.T).nnz == 0
