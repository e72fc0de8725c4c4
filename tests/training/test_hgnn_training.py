from __future__ import annotations

import numpy as np
import pytest
import torch

import hgrec.training.hgnn as training
from hgrec.config import HGNNConfig
from hgrec.training.hgnn import make_validation_set, rank_validation, split_validation, train_hgnn
from tests.sampling.graphs import cograph_from_pairs

pytestmark = pytest.mark.usefixtures("one_torch_thread")

N_CLUSTERS, PER_TYPE = 12, 3


def _planted():
    """12 clusters of 3 'a' + 3 'b' items, complete inside a cluster, nothing across; plus
    2 edgeless items. Features: random, so the structure must come from the graph."""
    n = N_CLUSTERS * 2 * PER_TYPE
    cluster = np.repeat(np.arange(N_CLUSTERS), 2 * PER_TYPE)
    item_type = np.tile(np.r_[np.zeros(PER_TYPE), np.ones(PER_TYPE)], N_CLUSTERS).astype(np.int16)
    iu = np.triu_indices(n, 1)
    same = cluster[iu[0]] == cluster[iu[1]]
    g = cograph_from_pairs(np.r_[item_type, 0, 1].astype(np.int16), ("a", "b"), iu[0][same], iu[1][same])
    x = np.random.default_rng(0).normal(size=(n + 2, 16)).astype(np.float32)
    return g, x


def _cfg(**kw) -> HGNNConfig:
    base = dict(hidden_dim=32, out_dim=16, fanouts=[4, 3], batch_size=32, max_epochs=6,
                patience=10, valid_fraction=0.2, valid_negatives=50, lr=5e-3)  # fmt: skip
    return HGNNConfig().updated(**{**base, **kw})


@pytest.mark.parametrize(
    "negatives",
    [
        dict(shared_negatives=None, step="minibatch"),
        dict(shared_negatives=None, step="minibatch", loss="hinge"),
        dict(shared_negatives=16, step="minibatch"),
        dict(shared_negatives=16, type_matched_negatives=True, step="minibatch"),
        dict(shared_negatives=16, step="minibatch", loss="infonce"),
        dict(shared_negatives=16, step="full-graph", full_graph_batch_size=24),
        dict(shared_negatives=16, step="full-graph", full_graph_batch_size=24, loss="infonce"),
        dict(shared_negatives=16, step="full-graph", type_matched_negatives=True,
             full_graph_batch_size=24, loss="infonce"),
    ],
)
def test_training_lowers_loss_and_beats_random(negatives):
    """Both steps, both losses, per-anchor negatives (P1) and a shared pool all learn the
    planted clusters."""
    g, x = _planted()
    res = train_hgnn(g, x, _cfg(max_epochs=8, **negatives), seed=0, checkpoint_dir=None, progress=False)
    assert res.mode == negatives["step"]
    assert all(h["mode"] == negatives["step"] for h in res.history)
    losses = [h["loss"] for h in res.history]
    assert losses[-1] < losses[0]
    assert res.embeddings.shape == (g.n_items, 16)
    assert np.allclose(np.linalg.norm(res.embeddings, axis=1), 1.0, atol=1e-5)
    # Random embeddings on the same validation set (same seed-derived split).
    rng = np.random.default_rng([0, 0])
    train_g, held = split_validation(g, 0.2, rng)
    valid = make_validation_set(train_g, held, 50, 2000, rng)
    rand = np.mean([
        rank_validation(np.random.default_rng(s).normal(size=(g.n_items, 16)), valid)["valid_mrr"]
        for s in range(5)
    ])  # fmt: skip
    best = max(h["valid_mrr"] for h in res.history)
    assert best > 2 * rand
    assert res.history[res.best_epoch]["valid_mrr"] == best


def test_validation_split_is_disjoint_and_sized():
    g, _ = _planted()
    train_g, held = split_validation(g, 0.2, np.random.default_rng(0))
    for r, e in g.relations.items():
        tr, va = train_g.relations[r], held[r]
        assert va.n_edges == round(0.2 * e.n_edges) and tr.n_edges + va.n_edges == e.n_edges
        assert not set(zip(tr.src, tr.dst)) & set(zip(va.src, va.dst))


@pytest.mark.parametrize("step", ["minibatch", "full-graph"])
def test_resume_matches_uninterrupted(tmp_path, monkeypatch, step):
    g, x = _planted()
    cfg = _cfg(max_epochs=4, step=step, full_graph_batch_size=24)
    full = train_hgnn(g, x, cfg, seed=3, checkpoint_dir=None, progress=False)

    real = training.rank_validation
    calls = {"n": 0}

    def crash_at_third(*a, **k):  # call 1 ranks the untrained model, then one per epoch
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(training, "rank_validation", crash_at_third)
    with pytest.raises(KeyboardInterrupt):
        train_hgnn(g, x, cfg, seed=3, checkpoint_dir=tmp_path, progress=False)
    monkeypatch.setattr(training, "rank_validation", real)
    saved = torch.load(tmp_path / training.CHECKPOINT_NAME, weights_only=False)
    assert saved["state"]["epoch"] == 1  # epochs 0 and 1 completed
    resumed = train_hgnn(g, x, cfg, seed=3, checkpoint_dir=tmp_path, progress=False)
    assert [h["epoch"] for h in resumed.history] == [0, 1, 2, 3]
    assert [h["loss"] for h in resumed.history] == pytest.approx([h["loss"] for h in full.history], rel=1e-5)
    assert resumed.best_epoch == full.best_epoch
    assert np.allclose(resumed.embeddings, full.embeddings, atol=1e-5)
    assert resumed.untrained == full.untrained
    with pytest.raises(ValueError, match="another config"):
        train_hgnn(g, x, _cfg(max_epochs=4, shared_negatives=None, step=step), seed=3,
                   checkpoint_dir=tmp_path, progress=False)  # fmt: skip
    with pytest.raises(ValueError, match="another config"):
        train_hgnn(g, x, _cfg(max_epochs=4, margin=0.3, step=step), seed=3, checkpoint_dir=tmp_path,
                   progress=False)


def test_early_stopping_and_max_steps():
    g, x = _planted()
    res = train_hgnn(g, x, _cfg(max_epochs=30, patience=1, max_steps_per_epoch=1, lr=1e-6),
                     seed=1, checkpoint_dir=None, progress=False)  # fmt: skip
    assert len(res.history) < 30
    assert all(h["steps"] == 1 for h in res.history)


def test_bad_features():
    g, x = _planted()
    with pytest.raises(ValueError, match="one row per graph node"):
        train_hgnn(g, x[:-1], _cfg(), seed=0, progress=False)
    x[3, 2] = np.nan
    with pytest.raises(ValueError, match="not finite"):
        train_hgnn(g, x, _cfg(), seed=0, progress=False)


@pytest.mark.parametrize("exclude", [True, False])
def test_batches_never_see_their_supervision_edges(monkeypatch, exclude):
    """Every training step's computation graph lacks the step's (anchor, positive) pairs
    (message-passing leakage); with the option off they do appear."""
    g, x = _planted()
    pool = 16
    real = training.build_computation_graph
    seen = {"steps": 0, "leaks": 0, "excluded": 0}

    def checked(adjacency, seeds, fanouts, rng, n_items, exclude_pairs=None):
        cg = real(adjacency, seeds, fanouts, rng, n_items, exclude_pairs)
        b = (len(seeds) - pool) // 2
        pairs = zip(seeds[:b].tolist(), seeds[b : 2 * b].tolist())
        sup = {(min(a, p), max(a, p)) for a, p in pairs}
        for blk in cg.blocks:
            for ei in blk.edges.values():
                s, d = cg.nodes[ei.numpy()]
                used = zip(s.tolist(), d.tolist())
                seen["leaks"] += sum((min(u, v), max(u, v)) in sup for u, v in used)
        seen["steps"] += 1
        seen["excluded"] += cg.n_excluded
        return cg

    monkeypatch.setattr(training, "build_computation_graph", checked)
    cfg = _cfg(max_epochs=2, shared_negatives=pool, exclude_supervision_edges=exclude,
               step="minibatch")
    res = train_hgnn(g, x, cfg, seed=0, checkpoint_dir=None, progress=False)
    assert seen["steps"] == sum(h["steps"] for h in res.history) > 0
    assert sum(h["excluded"] for h in res.history) == seen["excluded"]
    if exclude:
        assert seen["leaks"] == 0 and seen["excluded"] > 0
    else:
        assert seen["leaks"] > 0 and seen["excluded"] == 0


def test_untrained_reference_is_the_first_model():
    """``untrained`` ranks the initial weights: a model trained with lr ~ 0 stays there."""
    g, x = _planted()
    res = train_hgnn(g, x, _cfg(max_epochs=1, lr=1e-12), seed=2, progress=False)
    assert res.untrained["valid_mrr"] == pytest.approx(res.history[0]["valid_mrr"], abs=1e-6)
    trained = train_hgnn(g, x, _cfg(max_epochs=8), seed=2, progress=False)
    assert trained.untrained == res.untrained
    assert max(h["valid_mrr"] for h in trained.history) > 1.2 * trained.untrained["valid_mrr"]


def _record_batches(monkeypatch) -> list:
    """The supervision batches the multi-link sampler yields from now on, in order."""
    batches: list = []
    real_batches = training.MultiLinkSampler.batches

    def recording(self, rng, max_batches=None):
        for b in real_batches(self, rng, max_batches):
            batches.append(b)
            yield b

    monkeypatch.setattr(training.MultiLinkSampler, "batches", recording)
    return batches


def test_full_graph_step_never_passes_messages_over_supervision_edges(monkeypatch):
    """In a full-graph step, the step's supervision pairs are absent from the message-passing
    adjacency its computation graph is sampled from, and every node is computed."""
    g, x = _planted()
    seen = {"steps": 0, "leaks": 0}
    batches = _record_batches(monkeypatch)
    real_build = training.build_computation_graph

    def checked(adjacency, seeds, fanouts, rng, n_items, exclude_pairs=None):
        if len(seeds) == n_items:  # a full-graph step (choose_step's probe is smaller)
            b = batches[-1]
            sup = {(min(a, p), max(a, p)) for a, p in zip(b.anchor.tolist(), b.positive.tolist())}
            for csr in adjacency.values():
                src = np.repeat(np.arange(n_items), np.diff(csr.indptr))
                seen["leaks"] += sum((min(u, v), max(u, v)) in sup
                                     for u, v in zip(src.tolist(), csr.indices.tolist()))  # fmt: skip
            assert np.array_equal(np.sort(seeds), np.arange(n_items))
            seen["steps"] += 1
        return real_build(adjacency, seeds, fanouts, rng, n_items, exclude_pairs)

    monkeypatch.setattr(training, "build_computation_graph", checked)
    cfg = _cfg(max_epochs=2, step="full-graph", full_graph_batch_size=16, supervision_fraction=0.3)
    res = train_hgnn(g, x, cfg, seed=0, progress=False)
    assert seen["steps"] == sum(h["steps"] for h in res.history) > 2
    assert seen["leaks"] == 0
    assert all(h["excluded"] > 0 for h in res.history)


def test_full_graph_loss_chunks_give_the_unchunked_step(monkeypatch):
    """The loss computed in chunks of edges (gradient accumulated on detached embeddings and
    sent back once) trains exactly as one chunk does."""
    g, x = _planted()
    cfg = _cfg(max_epochs=2, step="full-graph", full_graph_batch_size=40, loss="infonce")
    whole = train_hgnn(g, x, cfg, seed=4, progress=False)
    monkeypatch.setattr(training, "LOSS_CHUNK", 7)
    chunked = train_hgnn(g, x, cfg, seed=4, progress=False)
    assert [h["loss"] for h in chunked.history] == pytest.approx([h["loss"] for h in whole.history], rel=1e-5)
    assert np.allclose(chunked.embeddings, whole.embeddings, atol=1e-5)


def test_choose_step_auto_and_forced():
    """auto: full-graph when one mini-batch's computation graph covers half the nodes."""
    from hgrec.sampling.multilink import MultiLinkSampler
    from hgrec.sampling.negatives import NegativeSampler
    from hgrec.sampling.neighbors import graph_adjacency

    g, _ = _planted()
    neg = NegativeSampler(g.item_type, 5)
    dense = MultiLinkSampler(g, batch_size=64)
    assert training.choose_step(_cfg(shared_negatives=16), graph_adjacency(g), dense, neg, g.n_items, 0)[0] == "full-graph"
    tiny = MultiLinkSampler(g, batch_size=1)
    mode, why = training.choose_step(_cfg(shared_negatives=1, fanouts=[1]), graph_adjacency(g), tiny,
                                     neg, g.n_items, 0)  # fmt: skip
    assert mode == "minibatch" and "nodes" in why
    forced = _cfg(step="minibatch", shared_negatives=16)
    assert training.choose_step(forced, graph_adjacency(g), dense, neg, g.n_items, 0) == ("minibatch", "forced by hgnn.training.step")


def test_cuda_without_a_gpu_is_a_clear_error(monkeypatch):
    from hgrec.errors import UserError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    g, x = _planted()
    with pytest.raises(UserError, match="runtime.device"):
        train_hgnn(g, x, _cfg(), seed=0, progress=False, device="cuda")


def test_no_early_stop_before_min_epochs():
    """A model that never improves stops after `patience` epochs, but not before min_epochs."""
    g, x = _planted()
    cfg = _cfg(max_epochs=12, patience=1, lr=1e-12, max_steps_per_epoch=1)
    assert len(train_hgnn(g, x, cfg.updated(min_epochs=1), seed=1, progress=False).history) == 2
    assert len(train_hgnn(g, x, cfg.updated(min_epochs=7), seed=1, progress=False).history) == 7


def test_isolate_nodes_cuts_every_edge_of_the_cold_nodes():
    g, _ = _planted()
    cold = np.zeros(g.n_items, dtype=bool)
    cold[[0, 7, 40]] = True
    cut, removed = training.isolate_nodes(g, cold)
    before = sum(e.n_edges for e in g.relations.values())
    after = sum(e.n_edges for e in cut.relations.values())
    assert removed == before - after > 0
    for e in cut.relations.values():
        assert not (cold[e.src] | cold[e.dst]).any()
    for name, e in g.relations.items():  # every edge away from the cold nodes stays
        keep = ~(cold[e.src] | cold[e.dst])
        assert np.array_equal(cut.relations[name].src, e.src[keep])


def test_cold_nodes_pass_no_message_but_keep_their_supervision(monkeypatch):
    """With cold_node_fraction, each full-graph epoch's message-passing adjacency leaves a
    share of the nodes without any neighbour, while edges of those nodes still supervise."""
    g, x = _planted()
    isolated_with_supervision = []
    real_isolate = training.isolate_nodes

    def recording(graph, cold):
        out, removed = real_isolate(graph, cold)
        isolated_with_supervision.append((int(cold.sum()), removed))
        return out, removed

    batches = _record_batches(monkeypatch)
    real_build = training.build_computation_graph
    degrees, supervised_cold = [], []

    def checked(adjacency, seeds, fanouts, rng, n_items, exclude_pairs=None):
        if len(seeds) == n_items:
            d = sum(np.diff(csr.indptr) for csr in adjacency.values())
            degrees.append(d)
            b = batches[-1]  # edges of this step that touch a node without messages
            supervised_cold.append(int(((d[b.anchor] == 0) | (d[b.positive] == 0)).sum()))
        return real_build(adjacency, seeds, fanouts, rng, n_items, exclude_pairs)

    monkeypatch.setattr(training, "isolate_nodes", recording)
    monkeypatch.setattr(training, "build_computation_graph", checked)
    cfg = _cfg(max_epochs=3, step="full-graph", full_graph_batch_size=64, cold_node_fraction=0.25)
    res = train_hgnn(g, x, cfg, seed=0, progress=False)
    assert len(isolated_with_supervision) == len(res.history) == 3
    assert all(n > 0 and removed > 0 for n, removed in isolated_with_supervision)
    # more edgeless nodes than the graph's own 2, in every step
    assert all(int((d == 0).sum()) > 2 + 5 for d in degrees)
    assert all(n > 0 for n in supervised_cold)  # and they still have links to predict
    with pytest.raises(Exception, match="cold_node_fraction"):
        train_hgnn(g, x, _cfg(step="minibatch", cold_node_fraction=0.2), seed=0, progress=False)
