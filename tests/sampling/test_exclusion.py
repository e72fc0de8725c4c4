from __future__ import annotations

import numpy as np
import pytest

from hgrec.sampling.exclusion import PairSet, pair_keys
from hgrec.sampling.multilink import MultiLinkSampler
from hgrec.sampling.neighbors import build_computation_graph, graph_adjacency
from tests.sampling.graphs import cograph_from_pairs


def _random_graph(n: int = 60, m: int = 400, seed: int = 0):
    rng = np.random.default_rng(seed)
    item_type = (np.arange(n) % 3 == 0).astype(np.int16)
    return cograph_from_pairs(item_type, ("a", "b"), rng.integers(0, n, m), rng.integers(0, n, m))


def _global_pairs(cg, blk):
    """Set of undirected global pairs used by one block, all relations."""
    out = set()
    for ei in blk.edges.values():
        s, d = ei.numpy()
        out |= {(min(a, b), max(a, b)) for a, b in zip(cg.nodes[s].tolist(), cg.nodes[d].tolist())}
    return out


def test_pairset_contains_both_orientations():
    ps = PairSet.from_pairs(np.array([1, 4, 4]), np.array([2, 3, 3]), 6)
    u = np.array([1, 2, 3, 4, 1, 5, 0])
    v = np.array([2, 1, 4, 3, 3, 5, 0])
    assert ps.contains(u, v).tolist() == [True, True, True, True, False, False, False]
    assert len(ps) == 2  # (4, 3) given twice
    assert pair_keys(np.array([2]), np.array([1]), 6).tolist() == [1 * 6 + 2]


@pytest.mark.parametrize("bad", [(np.array([0]), np.array([6])), (np.array([-1]), np.array([2]))])
def test_pairset_rejects_out_of_range(bad):
    with pytest.raises(ValueError, match=r"\[0, 6\)"):
        PairSet.from_pairs(*bad, 6)


@pytest.mark.parametrize("fanouts", [[-1], [-1, -1], [3, 2], [5, 5]])
@pytest.mark.parametrize("seed", [0, 1])
def test_batch_computation_graph_never_holds_its_supervision_edges(fanouts, seed):
    """Seeds = a real sampler batch's anchors, positives and extra negatives; no hop of the
    computation graph may use an (anchor, positive) pair, and nothing else is removed."""
    g = _random_graph(seed=seed)
    adj = graph_adjacency(g)
    rng = np.random.default_rng(seed)
    batch = next(MultiLinkSampler(g, balanced=True, batch_size=24).batches(rng))
    neg = rng.integers(0, g.n_items, 10)
    seeds = np.concatenate([batch.anchor, batch.positive, neg])
    ex = PairSet.from_pairs(batch.anchor, batch.positive, g.n_items)
    sup = {(min(a, b), max(a, b)) for a, b in zip(batch.anchor.tolist(), batch.positive.tolist())}

    draw = lambda: np.random.default_rng(seed + 7)  # noqa: E731  (same draw for both)
    cg = build_computation_graph(adj, seeds, fanouts, draw(), g.n_items, ex)
    ref = build_computation_graph(adj, seeds, fanouts, draw(), g.n_items)
    for blk in cg.blocks:
        assert not _global_pairs(cg, blk) & sup
    # The hop next to the seeds uses the same draw: exactly the reference minus the pairs.
    assert _global_pairs(cg, cg.blocks[-1]) == _global_pairs(ref, ref.blocks[-1]) - sup
    assert ref.n_excluded == 0
    if fanouts == [-1]:
        # Both endpoints of every pair are seeds: each pair is dropped once per direction.
        assert cg.n_excluded == 2 * len(sup)
    if fanouts == [-1, -1]:
        # Full neighbourhoods: the second hop's destinations hold the seeds again.
        assert cg.n_excluded == 4 * len(sup)
