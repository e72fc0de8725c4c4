from __future__ import annotations

import numpy as np
import pytest

from hgrec.sampling.multilink import MultiLinkSampler
from tests.sampling.graphs import cograph_from_pairs


def _graph(sizes: tuple[int, int, int]):
    """Types a (0..19), b (20..119); a__a, a__b, b__b with the given edge counts."""
    rng = np.random.default_rng(1)
    item_type = np.r_[np.zeros(20), np.ones(100)].astype(np.int16)
    src, dst = [], []
    for (lo_s, hi_s, lo_d, hi_d), n in zip([(0, 20, 0, 20), (0, 20, 20, 120), (20, 120, 20, 120)], sizes):
        pairs = set()
        while len(pairs) < n:
            s, d = int(rng.integers(lo_s, hi_s)), int(rng.integers(lo_d, hi_d))
            if s != d:
                pairs.add((min(s, d), max(s, d)))
        src += [p[0] for p in pairs]
        dst += [p[1] for p in pairs]
    return cograph_from_pairs(item_type, ("a", "b"), src, dst)


@pytest.mark.parametrize(
    "balanced,cap,expected",
    [(True, None, [30, 30, 30]), (True, 50, [30, 50, 50]), (True, 500, [30, 200, 400]),
     (False, None, [30, 200, 400])],
)  # fmt: skip
def test_counts_per_relation(balanced, cap, expected):
    g = _graph((30, 200, 400))
    s = MultiLinkSampler(g, balanced=balanced, cap=cap, batch_size=16)
    assert s.counts().tolist() == expected
    e = s.epoch_edges(np.random.default_rng(0))
    assert np.bincount(e.relation, minlength=3).tolist() == expected
    # Every drawn edge is a real edge of its relation (in either orientation), no repeats.
    for r, name in enumerate(s.relation_names):
        rel = g.relations[name]
        real = set(zip(rel.src.tolist(), rel.dst.tolist()))
        m = e.relation == r
        drawn = {(min(a, p), max(a, p)) for a, p in zip(e.anchor[m].tolist(), e.positive[m].tolist())}
        assert drawn <= real and len(drawn) == m.sum()


def test_off_uses_every_edge_each_epoch():
    g = _graph((30, 200, 400))
    s = MultiLinkSampler(g, balanced=False)
    e = s.epoch_edges(np.random.default_rng(3))
    got = set(zip(np.minimum(e.anchor, e.positive).tolist(), np.maximum(e.anchor, e.positive).tolist()))
    want = {(a, b) for r in g.relations.values() for a, b in zip(r.src.tolist(), r.dst.tolist())}
    assert got == want


def test_fresh_draw_per_epoch_and_deterministic_per_seed():
    g = _graph((30, 200, 400))
    s = MultiLinkSampler(g, balanced=True, batch_size=7)
    e0 = s.epoch_edges(np.random.default_rng([5, 1, 0]))
    e0b = s.epoch_edges(np.random.default_rng([5, 1, 0]))
    e1 = s.epoch_edges(np.random.default_rng([5, 1, 1]))
    assert np.array_equal(e0.anchor, e0b.anchor) and np.array_equal(e0.positive, e0b.positive)
    key = lambda e: set(zip(np.minimum(e.anchor, e.positive).tolist(), np.maximum(e.anchor, e.positive).tolist()))  # noqa: E731
    assert key(e0) != key(e1)


@pytest.mark.parametrize("max_batches", [None, 2])
def test_batches_cover_epoch(max_batches):
    g = _graph((30, 200, 400))
    s = MultiLinkSampler(g, balanced=True, batch_size=16)
    batches = list(s.batches(np.random.default_rng(0), max_batches))
    assert len(batches) == (s.n_batches() if max_batches is None else max_batches)
    assert all(len(b) <= 16 for b in batches)
    if max_batches is None:
        assert sum(len(b) for b in batches) == 90 and s.n_batches() == 6


def test_empty_relation_ignored_for_n():
    g = _graph((30, 200, 400)).without("a__a")
    s = MultiLinkSampler(g, balanced=True)
    assert s.n_per_relation == 200 and s.counts().tolist() == [0, 200, 200]


@pytest.mark.parametrize("kwargs", [{"cap": 0}, {"batch_size": 0}])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        MultiLinkSampler(_graph((3, 3, 3)), **kwargs)
