from __future__ import annotations

import numpy as np
import pytest
import torch

from hgrec.models.hgnn import HGNN, HeteroSAGEConv, embed_items
from hgrec.models.hgnn_losses import hinge_loss
from hgrec.sampling.neighbors import build_computation_graph, graph_adjacency
from tests.sampling.graphs import cograph_from_pairs

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# 5 nodes: 0, 1 type a; 2, 3, 4 type b; node 4 has no edges.
TYPES = np.array([0, 0, 1, 1, 1], dtype=np.int16)
SRC, DST = [0, 0, 1, 2], [1, 2, 3, 3]  # a-a (0,1); a-b (0,2), (1,3); b-b (2,3)

# A tiny architecture; the real defaults live in HGNNConfig.
ARCH = {"hidden_dim": 4, "out_dim": 3, "n_layers": 2, "n_types": 1, "final_activation": False,
        "pool_impl": "auto"}


def _graph():
    return cograph_from_pairs(TYPES, ("a", "b"), SRC, DST)


def _reference_layer(conv: HeteroSAGEConv, x: np.ndarray, graph, act: bool) -> np.ndarray:
    """Eqs. 2-3 node by node with Python loops (the slow, obvious version)."""
    out = np.zeros((x.shape[0], conv.out_channels))
    for v in range(x.shape[0]):
        total = conv.self_lin[0].weight.detach().numpy() @ x[v]
        for r, rel in graph.relations.items():
            w = conv.rel_lin[r].weight.detach().numpy()
            b = conv.rel_lin[r].bias.detach().numpy()
            nbrs = [d for s, d in zip(rel.src, rel.dst) if s == v] + [
                s for s, d in zip(rel.src, rel.dst) if d == v
            ]
            if nbrs:
                total = total + np.max([np.maximum(w @ x[u] + b, 0) for u in nbrs], axis=0)
        out[v] = np.maximum(total, 0) if act else total
    return out


@pytest.mark.parametrize("final_activation", [False, True])
def test_layers_match_loop_reference(final_activation):
    g = _graph()
    torch.manual_seed(0)
    model = HGNN(6, sorted(g.relations), **{**ARCH, "final_activation": final_activation})
    x = np.random.default_rng(0).normal(size=(5, 6)).astype(np.float32)
    h1 = _reference_layer(model.convs[0], x, g, act=True)
    h2 = _reference_layer(model.convs[1], h1.astype(np.float32), g, act=final_activation)
    z_ref = h2 / np.linalg.norm(h2, axis=1, keepdims=True)
    z_full = embed_items(model, g, x)
    assert np.allclose(z_full, z_ref, atol=1e-5)
    # The sampled path with full neighbourhoods computes the same thing.
    cg = build_computation_graph(graph_adjacency(g), np.arange(5), [-1, -1], None, 5)
    z_s = model(torch.from_numpy(x[cg.nodes]), cg.blocks)[torch.from_numpy(cg.seed_local)]
    assert np.allclose(z_s.detach().numpy(), z_ref, atol=1e-5)
    assert np.allclose(np.linalg.norm(z_full, axis=1), 1.0, atol=1e-5)
    if final_activation:
        assert (z_full >= 0).all()


def test_empty_neighbourhood_is_self_term_only():
    g = _graph()
    torch.manual_seed(1)
    model = HGNN(6, sorted(g.relations), **ARCH)
    x = np.random.default_rng(1).normal(size=(5, 6)).astype(np.float32)
    z = embed_items(model, g, x)
    w1 = model.convs[0].self_lin[0].weight.detach().numpy()
    w2 = model.convs[1].self_lin[0].weight.detach().numpy()
    h = w2 @ np.maximum(w1 @ x[4], 0)
    assert np.allclose(z[4], h / np.linalg.norm(h), atol=1e-5)


def test_inductive_item_in_larger_catalogue():
    """An item added after training (no edges) = the model on its features alone, and the
    old items' embeddings do not change."""
    g = _graph()
    torch.manual_seed(2)
    model = HGNN(6, sorted(g.relations), **{**ARCH, "hidden_dim": 8, "out_dim": 4})
    x = np.random.default_rng(2).normal(size=(7, 6)).astype(np.float32)
    bigger = cograph_from_pairs(np.r_[TYPES, 1, 0].astype(np.int16), ("a", "b"), SRC, DST)
    z_big = embed_items(model, bigger, x)
    alone = cograph_from_pairs(np.array([1], np.int16), ("a", "b"), [], [])
    assert np.allclose(z_big[5], embed_items(model, alone, x[5:6])[0], atol=1e-6)
    assert np.allclose(z_big[:5], embed_items(model, g, x[:5]), atol=1e-6)


@pytest.mark.parametrize("batch_size", [1, 2, 3, 1000])
def test_inference_blocks_do_not_change_result(batch_size):
    g = _graph()
    torch.manual_seed(3)
    model = HGNN(6, sorted(g.relations), **ARCH)
    x = np.random.default_rng(3).normal(size=(5, 6)).astype(np.float32)
    assert np.allclose(embed_items(model, g, x, batch_size), embed_items(model, g, x, 10**6), atol=1e-6)


def test_per_type_self_weights():
    g = _graph()
    torch.manual_seed(4)
    model = HGNN(6, sorted(g.relations), **{**ARCH, "n_types": 2, "n_layers": 1})
    x = np.random.default_rng(4).normal(size=(5, 6)).astype(np.float32)
    z = embed_items(model, g, x)
    w_b = model.convs[0].self_lin[1].weight.detach().numpy()
    assert np.allclose(z[4], (w_b @ x[4]) / np.linalg.norm(w_b @ x[4]), atol=1e-5)


def test_hinge_loss_hand_case():
    z_a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z_p = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    z_n = torch.tensor([[[0.0, 1.0], [1.0, 0.0]], [[0.0, -1.0], [0.0, 1.0]]])
    # anchor 0: pos 1; negs 0, 1 -> max(0, 0-1+.5)=0, max(0, 1-1+.5)=.5
    # anchor 1: pos .8; negs -1, 1 -> 0, max(0, 1-.8+.5)=.7
    assert hinge_loss(z_a, z_p, z_n, 0.5).item() == pytest.approx((0 + 0.5 + 0 + 0.7) / 4)


def test_unknown_relation_and_bad_features():
    g = _graph()
    model = HGNN(6, ["a__a"], **ARCH)
    with pytest.raises(KeyError, match="unknown to the model"):
        embed_items(model, g, np.zeros((5, 6), np.float32))
    with pytest.raises(ValueError, match="features has shape"):
        embed_items(HGNN(6, sorted(g.relations), **ARCH), g, np.zeros((4, 6), np.float32))


def test_repr_and_reset():
    model = HGNN(6, ["a__b", "a__a"], **ARCH)
    assert "HeteroSAGEConv(6, 4, relations=['a__a', 'a__b']" in repr(model)
    assert "pool='auto'" in repr(model)
    with pytest.raises(ValueError, match="pool_impl"):
        HGNN(6, ["a__a"], **{**ARCH, "pool_impl": "mean"})
    before = model.convs[0].rel_lin["a__a"].weight.detach().clone()
    model.reset_parameters()
    assert not torch.equal(before, model.convs[0].rel_lin["a__a"].weight)


def _random_edges(n_src: int, n_dst: int, max_deg: int, seed: int) -> torch.Tensor:
    """Edges with distinct sources per destination, in-degrees 0..max_deg, shuffled."""
    rng = np.random.default_rng(seed)
    deg = rng.integers(0, max_deg + 1, n_dst)
    dst = np.repeat(np.arange(n_dst), deg)
    src = np.concatenate([rng.choice(n_src, d, replace=False) for d in deg])  # test-size loop
    order = rng.permutation(len(dst))
    return torch.from_numpy(np.stack([src[order], dst[order]]).astype(np.int64))


@pytest.mark.parametrize("impl", ["dense", "scatter", "auto", "pyg"])
@pytest.mark.parametrize("max_deg", [0, 1, 5])
def test_max_pools_match_loop_reference(impl, max_deg):
    """Every pool kernel = the per-destination max (0 when empty), and the gradient reaches
    exactly the winning message of each (destination, channel)."""
    n_src, n_dst, d = 9, 6, 4
    ei = _random_edges(n_src, n_dst, max_deg, seed=max_deg)
    # Distinct non-negative values (no ties), as post-ReLU messages are.
    gen = torch.Generator().manual_seed(0)
    msg = torch.randperm(n_src * d, generator=gen).float().view(n_src, d)
    msg.requires_grad_(True)
    conv = HeteroSAGEConv(2, d, ["a__a"], pool_impl=impl)
    out = conv.pool(msg, ei, n_dst)
    ref = np.zeros((n_dst, d))
    grad_ref = np.zeros((n_src, d))
    m = msg.detach().numpy()
    for v in range(n_dst):  # loop reference
        srcs = ei[0][ei[1] == v].numpy()
        if len(srcs):
            ref[v] = m[srcs].max(0)
            for c in range(d):
                grad_ref[srcs[m[srcs, c].argmax()], c] += v + 1
    assert np.allclose(out.detach().numpy(), ref)
    if ei.size(1) == 0:  # nothing to differentiate: a constant 0 (the dense kernels)
        return
    (out * torch.arange(1, n_dst + 1).float()[:, None]).sum().backward()
    assert np.allclose(msg.grad.numpy(), grad_ref)


def test_dense_pool_ties_give_one_subgradient():
    """Equal messages: the gradient goes to one of them, never doubled nor lost."""
    msg = torch.ones(3, 2, requires_grad=True)
    ei = torch.tensor([[0, 1, 2], [0, 0, 0]])
    from hgrec.models.hgnn_pool import dense_max_pool

    dense_max_pool(msg, ei, 1).sum().backward()
    assert msg.grad.sum(0).tolist() == [1.0, 1.0]


def test_auto_pool_falls_back_on_skewed_degrees(monkeypatch):
    """One heavy destination among many light ones: padding would cost far more than the
    edges, so the scatter kernel runs (and gives the same result)."""
    import hgrec.models.hgnn_pool as hgnn

    used = []
    real = hgnn.scatter_max_pool
    monkeypatch.setattr(hgnn, "scatter_max_pool", lambda *a: used.append(1) or real(*a))
    src = torch.arange(50)
    dst = torch.cat([torch.zeros(40, dtype=torch.long), torch.arange(1, 11)])
    msg = torch.rand(50, 3)
    out = hgnn.max_pool(msg, torch.stack([src, dst]), 11)
    assert used and torch.allclose(out, hgnn.dense_max_pool(msg, torch.stack([src, dst]), 11))


def test_shared_hinge_loss_hand_case():
    from hgrec.models.hgnn_losses import shared_hinge_loss

    z_a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z_p = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    pool = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, -1.0]])
    # anchor 0 (pos 1): scores 0, 1, 0 -> hinge 0, .5, 0
    # anchor 1 (pos .8): scores 1, 0, -1 -> hinge .7, 0, 0
    assert shared_hinge_loss(z_a, z_p, pool, 0.5).item() == pytest.approx(1.2 / 6)
    valid = torch.tensor([[True, False, True], [True, True, False]])
    assert shared_hinge_loss(z_a, z_p, pool, 0.5, valid).item() == pytest.approx(0.7 / 4)
    # Equals the per-anchor loss when every anchor gets the whole pool as its negatives.
    per_anchor = hinge_loss(z_a, z_p, pool.expand(2, 3, 2), 0.5)
    assert shared_hinge_loss(z_a, z_p, pool, 0.5).item() == pytest.approx(per_anchor.item())
    assert shared_hinge_loss(z_a, z_p, pool, 0.5, torch.zeros(2, 3, dtype=torch.bool)).item() == 0.0


def test_shared_infonce_matches_cross_entropy_reference():
    """InfoNCE over the pool = cross-entropy with the positive as class 0 and the masked pool
    entries removed, averaged over anchors (or summed over ``denominator``)."""
    from hgrec.models.hgnn_losses import shared_infonce_loss

    g = torch.Generator().manual_seed(0)
    z_a, z_p = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    pool = torch.randn(5, 4, generator=g)
    valid = torch.rand(6, 5, generator=g) > 0.3
    tau = 0.2
    ref = []
    for i in range(6):  # loop reference
        logits = torch.cat([(z_a[i] @ z_p[i])[None], (pool[valid[i]] @ z_a[i])]) / tau
        ref.append(torch.nn.functional.cross_entropy(logits[None], torch.tensor([0])))
    got = shared_infonce_loss(z_a, z_p, pool, tau, valid)
    assert torch.allclose(got, torch.stack(ref).mean(), atol=1e-6)
    half = shared_infonce_loss(z_a[:3], z_p[:3], pool, tau, valid[:3], denominator=6.0)
    rest = shared_infonce_loss(z_a[3:], z_p[3:], pool, tau, valid[3:], denominator=6.0)
    assert torch.allclose(half + rest, got, atol=1e-6)


def test_per_anchor_infonce_is_the_shared_loss_with_each_anchors_own_pool():
    from hgrec.models.hgnn_losses import infonce_loss, shared_infonce_loss

    g = torch.Generator().manual_seed(1)
    z_a, z_p, z_n = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g), torch.randn(4, 5, 3, generator=g)
    per = torch.stack([shared_infonce_loss(z_a[i:i + 1], z_p[i:i + 1], z_n[i], 0.3) for i in range(4)])
    assert torch.allclose(infonce_loss(z_a, z_p, z_n, 0.3), per.mean(), atol=1e-6)
