"""Two-tower training: examples, the in-batch losses on hand cases, learning on planted data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hgrec.data.dataset import Dataset
from hgrec.data.histories import Histories
from hgrec.recommenders.two_tower import TwoTowerRecommender
from hgrec.training.two_tower import (
    balanced_draw_prob,
    balanced_epoch,
    build_examples,
    in_batch_softmax_loss,
    inverse_frequency_weights,
    item_frequencies,
    prefix_histories,
)
from tests.models.test_two_tower import PLAIN, SMALL, planted_features, train_set

pytestmark = pytest.mark.usefixtures("one_torch_thread")

def test_build_examples_skips_first_interactions() -> None:
    h = Histories.from_lists([[4, 5, 6], [7], [], [8, 9]])
    rows, targets, skipped = build_examples(h)
    assert rows.tolist() == [0, 0, 3] and targets.tolist() == [1, 2, 5]
    assert skipped == 3  # the first entry of each non-empty history


@pytest.mark.parametrize("max_history", [1, 2, 5])
def test_prefix_histories_are_strictly_before_the_target(max_history: int) -> None:
    h = Histories.from_lists([[4, 5, 6, 7], [8, 9]])
    h = Histories(indptr=h.indptr, items=h.items, events=np.arange(6, dtype=np.int16))
    rows, targets, _ = build_examples(h)
    p = prefix_histories(h, rows, targets, max_history)
    full = [[4, 5, 6, 7], [8, 9]]
    expected = [full[r][: t - int(h.indptr[r])][-max_history:] for r, t in zip(rows, targets)]
    assert [p.row(k).tolist() for k in range(p.n_users)] == expected
    # events[k] == k, so the events carried along are the source positions of the entries
    src = [np.arange(max(int(h.indptr[r]), t - max_history), t) for r, t in zip(rows, targets)]
    assert p.events is not None
    np.testing.assert_array_equal(p.events, np.concatenate(src))


def hand_loss(u: np.ndarray, v: np.ndarray, ids: list[int], tau: float,
              log_q: np.ndarray | None, w: np.ndarray | None) -> float:
    logits = u @ v.T / tau
    if log_q is not None:
        logits = logits - log_q[None, :]
    losses = []
    for i in range(len(ids)):
        keep = [j for j in range(len(ids)) if j == i or ids[j] != ids[i]]
        row = logits[i, keep]
        losses.append(np.log(np.exp(row).sum()) - logits[i, i])
    losses_arr = np.array(losses) * (1.0 if w is None else w)
    return float(losses_arr.mean())


@pytest.mark.parametrize("use_log_q", [False, True])
@pytest.mark.parametrize("use_weights", [False, True])
@pytest.mark.parametrize("tau", [1.0, 0.1])
def test_in_batch_loss_matches_hand_computation(
    use_log_q: bool, use_weights: bool, tau: float
) -> None:
    rng = np.random.default_rng(3)
    u, v = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    ids = [5, 7, 5, 9]  # item 5 twice: rows 0 and 2 must not use each other as negatives
    log_q = np.log(np.array([0.5, 0.2, 0.5, 0.3])) if use_log_q else None
    w = np.array([0.5, 2.0, 0.5, 1.0]) if use_weights else None
    got = in_batch_softmax_loss(
        torch.tensor(u), torch.tensor(v), torch.tensor(ids), temperature=tau,
        log_q=None if log_q is None else torch.tensor(log_q),
        weights=None if w is None else torch.tensor(w),
    )
    assert float(got) == pytest.approx(hand_loss(u, v, ids, tau, log_q, w), rel=1e-9)


def test_log_q_correction_equals_shifting_the_item_logits() -> None:
    # Subtracting log q_j from every logit of column j is the same as appending a constant
    # feature to the user (1) and the item (-log q_j).
    rng = np.random.default_rng(0)
    u, v = torch.tensor(rng.normal(size=(5, 4))), torch.tensor(rng.normal(size=(5, 4)))
    q = torch.tensor([0.1, 0.4, 0.2, 0.2, 0.1], dtype=torch.float64)
    ids = torch.arange(5)
    corrected = in_batch_softmax_loss(u, v, ids, log_q=q.log())
    u2 = torch.cat([u, torch.ones(5, 1, dtype=torch.float64)], 1)
    v2 = torch.cat([v, -q.log().unsqueeze(1)], 1)
    assert float(corrected) == pytest.approx(float(in_batch_softmax_loss(u2, v2, ids)), rel=1e-12)
    assert float(corrected) != pytest.approx(float(in_batch_softmax_loss(u, v, ids)))


def test_duplicate_positive_is_not_a_negative() -> None:
    # Row 0's loss must not change when the vector of its duplicate (row 1, same item) moves.
    u = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    v = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    v_moved = v.clone()
    v_moved[1] = torch.tensor([9.0, 0.0])
    ids = torch.tensor([3, 3, 4])
    w = torch.tensor([3.0, 0.0, 0.0])  # isolate row 0
    assert float(in_batch_softmax_loss(u, v, ids, weights=w)) == pytest.approx(
        float(in_batch_softmax_loss(u, v_moved, ids, weights=w))
    )
    unmasked = torch.tensor([3, 8, 4])
    assert float(in_batch_softmax_loss(u, v_moved, unmasked, weights=w)) > float(
        in_batch_softmax_loss(u, v_moved, ids, weights=w)
    ) + 1.0


def test_same_type_negatives_are_the_positives_type_only() -> None:
    # Rows 0, 2 are type 0 and rows 1, 3 type 1: with item_type, row i's softmax holds only
    # the columns of its own type (hand computation), and moving a column of the other type
    # changes nothing for it.
    rng = np.random.default_rng(5)
    u, v = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    ids, types = [5, 6, 7, 8], torch.tensor([0, 1, 0, 1])
    tau = 0.5
    logits = u @ v.T / tau
    same = types.numpy()[:, None] == types.numpy()[None, :]
    hand = np.mean([np.log(np.exp(logits[i, same[i]]).sum()) - logits[i, i] for i in range(4)])
    got = in_batch_softmax_loss(
        torch.tensor(u), torch.tensor(v), torch.tensor(ids), temperature=tau, item_type=types
    )
    assert float(got) == pytest.approx(float(hand), rel=1e-9)
    assert float(in_batch_softmax_loss(torch.tensor(u), torch.tensor(v), torch.tensor(ids),
                                       temperature=tau)) > float(got)
    w = torch.tensor([1.0, 0.0, 1.0, 0.0])  # rows of type 0 only
    v_moved = torch.tensor(v).clone()
    v_moved[[1, 3]] = 7.0
    kw = dict(temperature=tau, item_type=types, weights=w)
    assert float(in_batch_softmax_loss(torch.tensor(u), v_moved, torch.tensor(ids), **kw)) == (
        pytest.approx(float(in_batch_softmax_loss(torch.tensor(u), torch.tensor(v),
                                                  torch.tensor(ids), **kw)), rel=1e-12)
    )


def test_same_type_negatives_train_and_round_trip(tiny_dataset: Dataset, tmp_path) -> None:
    ds = tiny_dataset
    text, z = planted_features(ds)
    model = TwoTowerRecommender(
        z, negatives="same-type", layers=[64, 32, 16], batch_size=32, max_epochs=6,
        progress=False, **PLAIN,
    ).fit(train_set(ds, text))
    losses = [e["loss"] for e in model.report_["epochs"]]
    assert losses[-1] < 0.9 * losses[0]
    assert model.report_["negatives_type"] == "same-type"
    model.save(tmp_path / "m")
    assert TwoTowerRecommender.load(tmp_path / "m").cfg.negatives == "same-type"
    with pytest.raises(ValueError, match="negatives"):
        TwoTowerRecommender(z, negatives="other")


def test_inverse_frequency_weights() -> None:
    targets = np.array([0, 0, 0, 1, 2, 2])
    q = item_frequencies(targets, n_items=4)
    np.testing.assert_allclose(q, [3 / 6, 1 / 6, 2 / 6, 0.0])
    w = inverse_frequency_weights(targets, q)
    assert w.mean() == pytest.approx(1.0)
    raw = np.array([2, 2, 2, 6, 3, 3], dtype=float)  # 1 / q
    np.testing.assert_allclose(w, raw / raw.mean(), rtol=1e-6)


@pytest.mark.parametrize("loss", ["logq", "inverse-frequency"])
def test_training_learns_planted_clusters(tiny_dataset: Dataset, loss: str) -> None:
    ds = tiny_dataset
    text, z = planted_features(ds)
    model = TwoTowerRecommender(
        z, loss=loss, layers=[64, 32, 16], batch_size=32, max_epochs=8, progress=False, **PLAIN
    ).fit(train_set(ds, text))
    losses = [e["loss"] for e in model.report_["epochs"]]
    assert losses[-1] < 0.9 * losses[0]
    assert model.report_["n_skipped_first"] == len(ds.users_in("train"))
    # Valid users (unseen in training): same-cluster food items outrank the others.
    users = ds.users_in("valid")
    food = ds.catalog.items_of_type("food")
    s = model.score(ds.histories(users), food)
    cluster = ds.catalog.items["cluster"].to_numpy()
    same = cluster[food][None, :] == (users % 3)[:, None]  # planted: cluster = user % 3
    gap = (s * same).sum(1) / same.sum(1) - (s * ~same).sum(1) / (~same).sum(1)
    assert (gap > 0).mean() >= 0.8  # chance level is 0.5


def test_early_stopping_restores_the_best_weights(tiny_dataset: Dataset) -> None:
    ds = tiny_dataset
    text, z = planted_features(ds)
    scores = iter([0.5, 0.9, 0.3, 0.2, 0.1, 0.0])
    seen: list[np.ndarray] = []

    def validate(m: TwoTowerRecommender) -> float:
        seen.append(m.item_vectors().copy())
        return next(scores)

    model = TwoTowerRecommender(z, **{**SMALL, "max_epochs": 6, "patience": 2})
    model.fit(train_set(ds, text), validate=validate)
    rep = model.report_
    assert len(rep["epochs"]) == 4 and rep["best_epoch"] == 2 and rep["best_score"] == 0.9
    np.testing.assert_allclose(model.item_vectors(), seen[1], rtol=1e-6)


def test_cold_twins_drop_the_positive_type_from_mixed_histories():
    """Hand case: types a=0 (items 0-2), b=1 (items 3-5). A twin exists only where the
    history before the positive holds its type and another type; it keeps the other type
    (last max_history of them) and the original examples come first, unchanged."""
    from hgrec.data.histories import Histories
    from hgrec.training.two_tower import build_examples, cold_twin_examples

    item_type = np.array([0, 0, 0, 1, 1, 1])
    h = Histories.from_lists([[3, 0, 4, 1], [0, 1], [3, 4, 0]])
    rows, targets, _ = build_examples(h)
    pool, r, s, e, pos = cold_twin_examples(h, item_type, rows, targets, max_history=10)
    n = len(rows)
    assert np.array_equal(r[:n], rows) and np.array_equal(pos[:n], h.items[targets])
    got = {(int(r[k]), int(pos[k]), tuple(pool.spans(s[k:k + 1], e[k:k + 1]).items.tolist()))
           for k in range(n, len(r))}
    # user 0: 4 after [3, 0] -> twin [0]; 1 after [3, 0, 4] -> twin [3, 4]
    # user 1: [0] -> 1 has no other type before it: no twin; user 2: 0 after [3, 4] is cold already
    assert got == {(0, 4, (0,)), (0, 1, (3, 4))}
    # the original examples' spans are the prefix histories
    for k in range(n):
        assert pool.spans(s[k:k + 1], e[k:k + 1]).items.tolist() == h.items[h.indptr[rows[k]]:targets[k]].tolist()
    _, _, s2, e2, _ = cold_twin_examples(h, item_type, rows, targets, max_history=1)
    assert (e2 - s2).max() == 1


def test_cold_twins_with_all_history_see_every_other_type_item():
    """history="all": a twin's history is all of the user's other-type items (as in a cold
    query), and every example of a user with other-type items has one."""
    from hgrec.data.histories import Histories
    from hgrec.training.two_tower import build_examples, cold_twin_examples

    item_type = np.array([0, 0, 0, 1, 1, 1])
    h = Histories.from_lists([[3, 0, 4, 1], [0, 1], [3, 4, 0], [0, 2]])
    rows, targets, _ = build_examples(h)
    pool, r, s, e, pos = cold_twin_examples(h, item_type, rows, targets, 10, history="all")
    n = len(rows)
    assert np.array_equal(r[:n], rows) and np.array_equal(pos[:n], h.items[targets])
    got = sorted((int(r[k]), int(pos[k]), tuple(pool.spans(s[k:k + 1], e[k:k + 1]).items.tolist()))
                 for k in range(n, len(r)))
    # user 0: 0 -> [3, 4]; 4 -> [0, 1]; 1 -> [3, 4] (the "before" twin of 0 would not exist,
    # that of 4 would be [0]). user 2: 4 -> [0]; 0 -> [3, 4]. Users 1 and 3 have one type.
    assert got == [(0, 0, (3, 4)), (0, 1, (3, 4)), (0, 4, (0, 1)),
                   (2, 0, (3, 4)), (2, 4, (0,))]
    _, _, s2, e2, _ = cold_twin_examples(h, item_type, rows, targets, 1, history="all")
    assert (e2 - s2).max() == 1


def test_balanced_epoch_draws_every_type_equally() -> None:
    example_type = np.array([0] * 50 + [1] * 7 + [2] * 20)  # type 1 is the rarest
    order = balanced_epoch(example_type, torch.Generator().manual_seed(3))
    assert len(order) == 21 and len(np.unique(order)) == 21  # 3 types x 7, no repeat
    assert np.array_equal(np.bincount(example_type[order]), [7, 7, 7])
    assert set(order[example_type[order] == 1]) == set(range(50, 57))  # every rare example
    again = balanced_epoch(example_type, torch.Generator().manual_seed(3))
    other = balanced_epoch(example_type, torch.Generator().manual_seed(4))
    assert np.array_equal(order, again) and not np.array_equal(order, other)
    prob = balanced_draw_prob(example_type)
    assert np.allclose(prob[[0, 50, 60]], [7 / 50, 1.0, 7 / 20]) and prob.sum() == pytest.approx(21)
    # logQ follows the draw: each type holds a third of the expected stream
    q = item_frequencies(np.arange(77), 77, prob)
    assert np.allclose([q[:50].sum(), q[50:57].sum(), q[57:].sum()], 1 / 3)


def test_balanced_types_train_and_round_trip(tiny_dataset: Dataset, tmp_path) -> None:
    ds = tiny_dataset
    text, z = planted_features(ds)
    model = TwoTowerRecommender(
        z, balance_types=True, layers=[64, 32, 16], batch_size=32, max_epochs=6, progress=False,
        **PLAIN,
    ).fit(train_set(ds, text))
    report = model.report_
    assert report["balance_types"] and report["examples_per_epoch"] < report["n_examples"]
    losses = [e["loss"] for e in report["epochs"]]
    assert losses[-1] < 0.9 * losses[0]
    model.save(tmp_path / "m")
    assert TwoTowerRecommender.load(tmp_path / "m").cfg.balance_types
