"""Training of the two-tower model: next-item examples, in-batch softmax, early stopping.

Examples (P1 section 4.2 trains on audiobook streams; P2 on every item type): for each
training user and each interaction t of ANY type, the user tower reads the history strictly
before t and the item tower the item of t. Interactions with no earlier interaction (the
first of each user) give no example and are counted in the report.

Loss (``loss``):

* "logq": in-batch sampled softmax with the sampling-bias correction of Yi et al. 2019,
  logits_ij = u_i · v_j / τ - log q_j, q_j = frequency of item j among the examples.
* "inverse-frequency": P1 equation 5 realised as an in-batch softmax where example i is
  weighted by 1 / p(item_i), normalised to mean 1 over the examples.

In both, other in-batch occurrences of the positive item are masked, so an item is never
its own negative.

Distributed (torchrun, see :mod:`hgrec.utils.distributed` and docs/two-tower.md): both
towers are wrapped in DistributedDataParallel; every rank draws the same permutation, takes
its contiguous part of each global batch (``batch_size / world_size`` rows) and, with
``global_negatives`` (default), scores its users against the item vectors gathered from all
ranks, so the loss and its gradient are the single-process ones. Rank 0 validates; the
score is broadcast and every rank takes the same early-stopping decision.

Device: the towers live on ``runtime.device``; each batch's inputs are
featurised on the CPU and moved there, and the loss is computed there. The permutations are
drawn on the CPU, so a seed gives the same batches on every device. DDP training runs on the
CPU only (gloo).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from hgrec.config import TwoTowerConfig
from hgrec.data.histories import Histories
from hgrec.errors import UserError
from hgrec.features.user import UserInputs
from hgrec.models.base import TrainSet
from hgrec.models.towers import TwoTowers, to_device
from hgrec.utils.distributed import (
    DistInfo,
    all_gather_rows,
    all_reduce_sum,
    broadcast_object,
    current_dist,
    padded_shard,
)


def build_examples(histories: Histories) -> tuple[np.ndarray, np.ndarray, int]:
    """Next-item examples of every history entry that has an earlier entry.

    Returns:
        rows (m,) int64 history row of each example, targets (m,) int64 position of the
        target entry in ``histories.items`` (its history is ``items[indptr[row]:target]``),
        and the number of entries skipped because nothing precedes them.
    """
    rows = histories.row_ids()
    pos = np.arange(len(histories.items), dtype=np.int64) - histories.indptr[rows]
    keep = pos > 0
    return rows[keep], np.flatnonzero(keep).astype(np.int64), int((~keep).sum())


def prefix_histories(
    histories: Histories, rows: np.ndarray, targets: np.ndarray, max_history: int
) -> Histories:
    """Histories of examples: the last ``max_history`` entries strictly before each target.

    Args:
        histories: full chronological histories.
        rows: (b,) int64 history row of each example.
        targets: (b,) int64 positions in ``histories.items`` of the examples' targets.
        max_history: entries kept at most per example.

    Returns:
        b rows; row k is ``items[max(indptr[rows[k]], targets[k] - max_history):targets[k]]``
        (events and weights alike; no user table: demographics are passed separately).
    """
    starts = np.maximum(histories.indptr[rows], targets - max_history)
    return histories.spans(starts, targets)


def cold_twin_examples(
    histories: Histories,
    item_type: np.ndarray,
    rows: np.ndarray,
    targets: np.ndarray,
    max_history: int,
    history: str = "before",
) -> tuple[Histories, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every example, plus a *cold twin* of each example that could not be served cold.

    A user who has never touched type T is asked, at query time, for T items from a history
    with no T item at all (the cold protocol); among next-item examples that situation is
    rare (on the default data 4.7% of the food-positive examples). The twin of an example
    whose positive is of type T and whose history holds both T items and items of other
    types is the same example with the T items removed from its history: what the user had
    consumed of the other types before, and the T item they went on to. The original
    example is kept, so the warm signal is untouched.

    Args:
        histories: (n_users rows) chronological training histories.
        item_type: (n_items,) type code of every item.
        rows, targets: the examples of :func:`build_examples`.
        max_history: entries a history keeps at most (the last ones).
        history: "before": a twin's history is the other-type entries before its positive;
            "all": every other-type entry of the user, before and after (the cold protocol's
            history: all of a user's source items), and every example of a user who has
            other-type entries gets a twin (also those with no type-T entry before it).

    Returns:
        pool: one flat Histories holding ``histories`` then, per type T, the histories
            without T (rows are not meaningful; index it with ``spans``);
        rows (m',) user row of each example (originals first, then twins);
        starts, ends (m',) span of each example's history in ``pool``;
        positives (m',) item of each example.
    """
    h = histories
    item_t = item_type[h.items]  # (nnz,)
    starts = np.maximum(h.indptr[rows], targets - max_history)
    parts_items, parts_events, parts_weights = [h.items], [h.events], [h.weights]
    out_rows, out_starts, out_ends, out_pos = [rows], [starts], [targets], [h.items[targets]]
    offset = len(h.items)
    pos_t = item_t[targets]
    for t in np.unique(pos_t):  # loop over item types
        keep = item_t != t
        before = np.concatenate([[0], np.cumsum(keep, dtype=np.int64)])  # kept before position
        row_start = before[h.indptr[rows]]
        n_other = before[targets] - row_start  # other-type entries before the target
        n_same = (targets - h.indptr[rows]) - n_other  # entries of type t before it
        if history == "all":
            n_all = before[h.indptr[rows + 1]] - row_start  # other-type entries of the user
            twin = (pos_t == t) & (n_all > 0)
            end = offset + before[h.indptr[rows[twin] + 1]]
        else:
            twin = (pos_t == t) & (n_other > 0) & (n_same > 0)
            end = offset + before[targets[twin]]
        out_rows.append(rows[twin])
        out_ends.append(end)
        out_starts.append(np.maximum(offset + row_start[twin], end - max_history))
        out_pos.append(h.items[targets[twin]])
        parts_items.append(h.items[keep])
        parts_events.append(None if h.events is None else h.events[keep])
        parts_weights.append(None if h.weights is None else h.weights[keep])
        offset += int(keep.sum())
    items = np.concatenate(parts_items)
    pool = Histories(
        indptr=np.array([0, len(items)], dtype=np.int64),
        items=items,
        events=None if h.events is None else np.concatenate(parts_events),
        weights=None if h.weights is None else np.concatenate(parts_weights),
    )
    return (pool, np.concatenate(out_rows), np.concatenate(out_starts),
            np.concatenate(out_ends), np.concatenate(out_pos))  # fmt: skip


def in_batch_softmax_terms(
    user: torch.Tensor,
    item: torch.Tensor,
    item_ids: torch.Tensor,
    positives: torch.Tensor,
    temperature: float = 1.0,
    log_q: torch.Tensor | None = None,
    column_valid: torch.Tensor | None = None,
    column_type: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-example in-batch softmax cross-entropy; users may be a part of the item batch.

    logits_ij = user_i · item_j / temperature [- log_q_j]; column positives_i is user i's
    positive; other columns whose item equals it, columns flagged invalid (padding) and, when
    ``column_type`` is given, columns of another item type than the positive's are masked;
    term_i = -log softmax(logits_i)[positives_i].

    Args:
        user: (b, d) user vectors.
        item: (B, d) item vectors (B >= b: under DDP, the global batch gathered from ranks).
        item_ids: (B,) int64 catalogue index of each item row (for the duplicate mask).
        positives: (b,) int64 row of ``item`` holding each user's positive.
        temperature: divides the dot products.
        log_q: (B,) log sampling probability of each item row (logQ correction), or None.
        column_valid: (B,) bool, False for padding rows that must never be a negative.
        column_type: (B,) int64 item type of each item row: a user's negatives are then the
            in-batch items of its positive's type only (P1 equation 5: "in-batch negative
            audiobook samples"), or None for every in-batch item.

    Returns:
        (b,) per-example losses.
    """
    b = user.shape[0]
    logits = user @ item.T / temperature  # (b, B)
    if log_q is not None:
        logits = logits - log_q.unsqueeze(0)
    dup = item_ids.unsqueeze(0) == item_ids[positives].unsqueeze(1)  # (b, B)
    dup[torch.arange(b, device=dup.device), positives] = False
    if column_valid is not None:
        dup |= ~column_valid.unsqueeze(0)
    if column_type is not None:  # the positive's own column has its type: never masked
        dup |= column_type.unsqueeze(0) != column_type[positives].unsqueeze(1)
    logits = logits.masked_fill(dup, float("-inf"))
    return F.cross_entropy(logits, positives, reduction="none")  # (b,)


def in_batch_softmax_loss(
    user: torch.Tensor,
    item: torch.Tensor,
    item_ids: torch.Tensor,
    temperature: float = 1.0,
    log_q: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
    item_type: torch.Tensor | None = None,
) -> torch.Tensor:
    """In-batch sampled softmax: each user's positive against the batch's other items.

    logits_ij = user_i · item_j / temperature [- log_q_j]; entries j != i whose item equals
    item i are masked (a duplicate positive is not a negative); loss_i = cross-entropy of
    row i with target i; result = mean_i(weights_i * loss_i).

    Args:
        user: (B, d) user vectors.
        item: (B, d) item vectors; row i is user i's positive.
        item_ids: (B,) int64 catalogue index of each positive (for the duplicate mask).
        temperature: divides the dot products.
        log_q: (B,) log sampling probability of each in-batch item (Yi et al. 2019 logQ
            correction), or None.
        weights: (B,) per-example weights (P1 equation 5: inverse item probability), or None.
        item_type: (B,) int64 type of each positive: negatives of other types are masked
            (``negatives="same-type"``), or None.

    Returns:
        scalar loss.
    """
    positives = torch.arange(user.shape[0], device=user.device)
    per_example = in_batch_softmax_terms(
        user, item, item_ids, positives, temperature, log_q, column_type=item_type
    )
    if weights is not None:
        per_example = per_example * weights
    return per_example.mean()


def item_frequencies(
    target_items: np.ndarray, n_items: int, draw_prob: np.ndarray | None = None
) -> np.ndarray:
    """(n_items,) float64 q_j: expected share of the trained examples whose target is item j.

    ``draw_prob``: (m,) probability that an epoch draws each example (type balancing,
    :func:`balanced_epoch`); None: every example every epoch.
    """
    counts = np.bincount(target_items, weights=draw_prob, minlength=n_items).astype(np.float64)
    return counts / max(counts.sum(), 1e-12)


def balanced_draw_prob(example_type: np.ndarray) -> np.ndarray:
    """(m,) float64 probability that :func:`balanced_epoch` draws each example: n_min / n_t
    for an example whose positive is of type t (n_t examples; n_min of the rarest type)."""
    counts = np.bincount(example_type)
    n_min = counts[counts > 0].min()
    return n_min / counts[example_type]


def balanced_epoch(example_type: np.ndarray, gen: torch.Generator) -> np.ndarray:
    """One epoch's example order with every positive type equally represented.

    Args:
        example_type: (m,) int64 item type of each example's positive.
        gen: the seeded generator of the run (the same draws on every rank).

    Returns:
        (T * n_min,) int64 example indices, shuffled: for each of the T types present, a
        uniform draw without replacement of n_min of its examples (n_min = the rarest type's
        count); every example of the rarest type each epoch.
    """
    key = torch.rand(len(example_type), generator=gen, dtype=torch.float64).numpy()
    grouped = np.lexsort((key, example_type))  # (m,) by type, random within a type
    counts = np.bincount(example_type)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])[counts > 0]  # (T,)
    n_min = int(counts[counts > 0].min())
    chosen = grouped[(starts[:, None] + np.arange(n_min)).ravel()]  # (T * n_min,)
    return chosen[torch.randperm(len(chosen), generator=gen).numpy()]


def inverse_frequency_weights(target_items: np.ndarray, q: np.ndarray) -> np.ndarray:
    """(m,) float32 weights 1 / q(item) of each example, normalised to mean 1 (P1 eq. 5)."""
    w = 1.0 / q[target_items]
    return (w / w.mean()).astype(np.float32)


def train_two_tower(
    towers: TwoTowers,
    cfg: TwoTowerConfig,
    train: TrainSet,
    validate: Callable[[], float] | None = None,
    seed: int = 0,
    dist_info: DistInfo | None = None,
    global_negatives: bool = True,
    name: str = "2t",
    progress: bool = True,
) -> dict[str, Any]:
    """Train built ``towers`` (Adam, in-batch softmax of P1 equation 5, early stopping).

    Each epoch visits a fresh seeded permutation of the examples (at most
    ``cfg.max_steps_per_epoch`` batches). After each epoch ``validate()`` (higher is better;
    it scores the towers' current weights) decides early stopping with ``cfg.patience``; the
    best weights are restored.

    Data-parallel mode (``dist_info.distributed``; by default the process group initialised
    in this process, see :func:`hgrec.utils.distributed.init_distributed`): the towers are
    wrapped in DistributedDataParallel, every rank draws the same permutation and takes its
    contiguous part of each global batch of ``cfg.batch_size`` examples (padded to
    ``ceil(batch_size / world_size)`` rows so collectives see equal shapes; padding carries
    no loss and is never a negative). Each rank's loss is ``sum(its terms) * world_size /
    global batch``, so after DDP averages the gradients every step is the single-process
    step. ``validate`` runs on rank 0 only; its score is broadcast and all ranks apply the same
    early-stopping rule, so they stop together and restore identical best weights.

    Runs on the towers' device: each batch's inputs are moved there, the permutations are
    drawn on the CPU (the same batches on every device).

    Args:
        towers: both towers and their featurisers, built on the device to train on.
        cfg: the ``two_tower`` config section (loss, negatives, optimiser, epochs, examples).
        train: the training set.
        validate: the early-stopping score, higher is better (rank 0 only), or None.
        seed: drives the per-epoch permutations (identical on every rank).
        dist_info: the process group, or None for the one initialised in this process.
        global_negatives: under DDP, gather every rank's item vectors so a user's softmax
            sees the whole global batch (the single-process loss, an all_gather per step with
            gradient); False keeps each rank's softmax to its own ``batch_size / world_size``
            items (fewer, easier negatives; no gather).
        name: the model's name, shown on progress bars.
        progress: show progress bars and per-epoch lines (rank 0).

    Returns:
        a report: n_examples, n_skipped_first (entries with no earlier interaction), per-epoch
        mean loss / validation score / seconds, best_epoch, best_score, world_size, negatives.
    """
    user_tower, item_tower = towers.user_tower, towers.item_tower
    feats, featurizer = towers.item_features, towers.user_featurizer
    info = current_dist() if dist_info is None else dist_info
    device = towers.device
    if info.distributed and device.type != "cpu":
        raise UserError(
            f"runtime.device is {str(device)!r} but two-tower DDP training (torchrun, gloo) "
            "runs on the CPU only; set runtime.device: cpu"
        )
    h = train.histories
    rows, targets, n_skipped = build_examples(h)
    if len(rows) == 0:
        raise ValueError(
            f"no training examples: {h.n_users} training histories have no interaction "
            "after their first; expected users with at least two interactions"
        )
    n_plain = len(rows)
    if cfg.cold_twins:
        pool, rows, starts, ends, target_items = cold_twin_examples(
            h, train.catalog.item_type, rows, targets, cfg.max_history,
            history=cfg.cold_twin_history,
        )
    else:
        pool, target_items = h, h.items[targets]
        starts, ends = np.maximum(h.indptr[rows], targets - cfg.max_history), targets
    example_type = np.asarray(train.catalog.item_type, dtype=np.int64)[target_items]  # (m,)
    draw_prob = balanced_draw_prob(example_type) if cfg.balance_types else None
    q = item_frequencies(target_items, train.catalog.n_items, draw_prob)
    log_q = torch.from_numpy(np.log(np.maximum(q, 1e-12)).astype(np.float32)).to(device)
    weights = (
        torch.from_numpy(inverse_frequency_weights(target_items, q))  # CPU, picked by idx
        if cfg.loss == "inverse-frequency"
        else None
    )
    types = (  # (n_items,) on the device, for same-type negatives
        torch.from_numpy(np.asarray(train.catalog.item_type, dtype=np.int64)).to(device)
        if cfg.negatives == "same-type"
        else None
    )
    demo = train.users if train.users is not None else h.users
    users_all = featurizer.encode_users(demo, h.n_users)  # once; rows picked per batch

    user_fwd: torch.nn.Module = user_tower
    item_fwd: torch.nn.Module = item_tower
    if info.distributed:
        if info.backend != "gloo":
            raise ValueError(
                f"two-tower DDP runs on CPU tensors and needs the gloo backend, got "
                f"{info.backend!r}; call init_distributed(backend='gloo')"
            )
        # DDP broadcasts rank 0's initial weights and all-reduces (averages) gradients.
        user_fwd = DistributedDataParallel(user_tower)
        item_fwd = DistributedDataParallel(item_tower)
    gather = info.distributed and global_negatives

    params = list(user_tower.parameters()) + list(item_tower.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr)
    gen = torch.Generator().manual_seed(seed)
    m, bs = len(rows), cfg.batch_size
    id_drop = cfg.id_dropout > 0 and feats.id_code is not None
    m_epoch = m if draw_prob is None else int(round(draw_prob.sum()))  # examples per epoch
    steps = math.ceil(m_epoch / bs)
    if cfg.max_steps_per_epoch is not None:
        steps = min(steps, cfg.max_steps_per_epoch)

    report: dict[str, Any] = {
        "n_examples": int(m),
        "n_cold_twins": int(m - n_plain),
        "examples_per_epoch": int(m_epoch),
        "balance_types": cfg.balance_types,
        "n_skipped_first": n_skipped,
        "n_users": int(h.n_users),
        "steps_per_epoch": int(steps),
        "loss": cfg.loss,
        "negatives_type": cfg.negatives,
        "world_size": info.world_size,
        "negatives": "global batch" if not info.distributed or gather else "rank batch",
        "epochs": [],
        "best_epoch": None,
        "best_score": None,
    }
    best_score, best_state, bad_epochs = -math.inf, None, 0
    user_tower.train()
    item_tower.train()
    for epoch in range(cfg.max_epochs):  # epochs
        t0 = time.perf_counter()
        perm = (  # the same on every rank
            torch.randperm(m, generator=gen).numpy() if draw_prob is None
            else balanced_epoch(example_type, gen)
        )
        # (m,) examples whose positive shows the rare id row this epoch (same on every rank)
        drop_id = (torch.rand(m, generator=gen) < cfg.id_dropout).numpy() if id_drop else None
        total, seen = 0.0, 0
        bar = tqdm(range(steps), desc=f"{name} epoch {epoch + 1}",
                   disable=not (progress and info.is_main), leave=False)
        for step in bar:  # batches
            idx = perm[step * bs : (step + 1) * bs]  # the global batch
            global_n = len(idx)
            valid: np.ndarray | None = None
            if info.distributed:
                part, valid = padded_shard(len(idx), info)
                idx = idx[part]  # (ceil(B / W),) this rank's rows (padding repeats one)
            b_rows = rows[idx]
            b_items_cpu = torch.from_numpy(target_items[idx])  # indexes the CPU features
            b_items = b_items_cpu.to(device)
            hist = pool.spans(starts[idx], ends[idx])  # as prefix_histories
            demo_b = UserInputs(
                dense=users_all.dense[b_rows], categorical=users_all.categorical[b_rows]
            )
            inputs = featurizer.transform(hist, users=demo_b)
            u = user_fwd(*to_device(inputs.tower_args(), device))  # (b, d), as embed_users
            item_in = feats.tower_inputs(b_items_cpu)
            if drop_id is not None:  # the id input is last (ItemFeatures.tower_inputs)
                item_in = (*item_in[:-1], item_in[-1].masked_fill(torch.from_numpy(drop_id[idx]), 0))
            v = item_fwd(*to_device(item_in, device))  # as embed_items
            if valid is None:  # single process: the original step, unchanged
                loss = in_batch_softmax_loss(
                    u,
                    v,
                    b_items,
                    temperature=cfg.temperature,
                    log_q=log_q[b_items] if cfg.loss == "logq" else None,
                    weights=None if weights is None else weights[idx].to(device),
                    item_type=None if types is None else types[b_items],
                )
                batch_sum, batch_n = float(loss.detach()) * len(idx), len(idx)
            else:
                loss, batch_sum, batch_n = _ddp_loss(
                    cfg, u, v, b_items, torch.from_numpy(valid), global_n, info, gather,
                    log_q, None if weights is None else weights[idx], types,
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += batch_sum
            seen += batch_n
            if step % 20 == 0:
                bar.set_postfix(loss=f"{total / max(seen, 1):.4f}")
        bar.close()
        total, seen = all_reduce_sum([total, seen], info).tolist()
        entry: dict[str, Any] = {"epoch": epoch + 1, "loss": total / max(seen, 1)}
        if validate is not None:
            # Rank 0 scores; every rank receives the score and applies the same rule.
            score = broadcast_object(float(validate()) if info.is_main else None, info)
            entry["valid"] = score
            user_tower.train()
            item_tower.train()
            if score > best_score:
                best_score, best_state, bad_epochs = score, towers.state_copies(), 0
                report["best_epoch"], report["best_score"] = epoch + 1, score
            else:
                bad_epochs += 1
        entry["seconds"] = time.perf_counter() - t0
        report["epochs"].append(entry)
        if progress and info.is_main:
            tqdm.write(f"{name} epoch {epoch + 1}: " + ", ".join(
                f"{k}={v:.4f}" for k, v in entry.items() if isinstance(v, float)))
        if validate is not None and bad_epochs >= cfg.patience:
            break
    del user_fwd, item_fwd  # drop the DDP wrappers (and their gradient hooks)
    if best_state is not None:
        towers.load_state_copies(best_state)
    user_tower.eval()
    item_tower.eval()
    if validate is None:
        report["best_epoch"] = len(report["epochs"])
    return report


def _ddp_loss(
    cfg: TwoTowerConfig,
    u: torch.Tensor,
    v: torch.Tensor,
    b_items: torch.Tensor,
    valid: torch.Tensor,
    global_n: int,
    info: DistInfo,
    gather: bool,
    log_q: torch.Tensor,
    weights: torch.Tensor | None,
    types: torch.Tensor | None = None,
) -> tuple[torch.Tensor, float, int]:
    """One rank's share of the global in-batch loss.

    Args:
        u, v: (b, d) this rank's user and positive-item vectors (b = ceil(global_n / W)).
        b_items: (b,) int64 their items; valid: (b,) bool, False on padding rows.
        global_n: examples in the global batch.
        gather: score against every rank's items (global negatives) or this rank's only.
        log_q: (n_items,) log q of every item; weights: (b,) example weights or None.
        types: (n_items,) item type of every item (same-type negatives), or None.

    Returns:
        the loss to backpropagate (sum of valid terms * W / global_n: DDP's gradient average
        then gives the mean over the global batch), the sum of this rank's valid weighted
        terms and their count (for the epoch's mean loss).
    """
    b = u.shape[0]
    if gather:
        items = all_gather_rows(v, info, grad=True)  # (W*b, d), rank order = batch order
        ids = all_gather_rows(b_items, info)
        cols_valid = all_gather_rows(valid, info)
        offset = info.rank * b
    else:
        items, ids, cols_valid, offset = v, b_items, valid, 0
    keep = valid.nonzero().flatten()  # (n_valid,) this rank's real rows
    terms = in_batch_softmax_terms(
        u[keep], items, ids, keep + offset, cfg.temperature,
        log_q[ids] if cfg.loss == "logq" else None, cols_valid,
        None if types is None else types[ids],
    )  # (n_valid,)
    if weights is not None:
        terms = terms * weights[keep]
    total = terms.sum()
    return total * (info.world_size / global_n), float(total.detach()), int(len(keep))
