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
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from hgrec.data.histories import Histories
from hgrec.features.user import UserInputs
from hgrec.models.base import TrainSet

if TYPE_CHECKING:
    from hgrec.data.dataset import Dataset
    from hgrec.models.two_tower import TwoTowerRecommender


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
    lengths = targets - starts
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    src = np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1], dtype=np.int64)
    return Histories(
        indptr=indptr,
        items=histories.items[src],
        events=None if histories.events is None else histories.events[src],
        weights=None if histories.weights is None else histories.weights[src],
    )


def in_batch_softmax_loss(
    user: torch.Tensor,
    item: torch.Tensor,
    item_ids: torch.Tensor,
    temperature: float = 1.0,
    log_q: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
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

    Returns:
        scalar loss.
    """
    b = user.shape[0]
    logits = user @ item.T / temperature  # (B, B)
    if log_q is not None:
        logits = logits - log_q.unsqueeze(0)
    dup = item_ids.unsqueeze(0) == item_ids.unsqueeze(1)  # (B, B)
    dup.fill_diagonal_(False)
    logits = logits.masked_fill(dup, float("-inf"))
    per_example = F.cross_entropy(logits, torch.arange(b), reduction="none")  # (B,)
    if weights is not None:
        per_example = per_example * weights
    return per_example.mean()


def item_frequencies(target_items: np.ndarray, n_items: int) -> np.ndarray:
    """(n_items,) float64 q_j: share of the examples whose target is item j."""
    counts = np.bincount(target_items, minlength=n_items).astype(np.float64)
    return counts / max(len(target_items), 1)


def inverse_frequency_weights(target_items: np.ndarray, q: np.ndarray) -> np.ndarray:
    """(m,) float32 weights 1 / q(item) of each example, normalised to mean 1 (P1 eq. 5)."""
    w = 1.0 / q[target_items]
    return (w / w.mean()).astype(np.float32)


def train_two_tower(
    model: TwoTowerRecommender,
    train: TrainSet,
    validate: Callable[[TwoTowerRecommender], float] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Train the towers of a built ``model`` (Adam, in-batch softmax, early stopping).

    Each epoch visits a fresh seeded permutation of the examples (at most
    ``model.max_steps_per_epoch`` batches). After each epoch ``validate(model)`` (higher is
    better) decides early stopping with ``model.patience``; the best weights are restored.

    Returns:
        a report: n_examples, n_skipped_first (entries with no earlier interaction), per-epoch
        mean loss / validation score / seconds, best_epoch, best_score.
    """
    user_tower, item_tower, _, featurizer = model._require_fitted()
    h = train.histories
    rows, targets, n_skipped = build_examples(h)
    if len(rows) == 0:
        raise ValueError(
            f"no training examples: {h.n_users} training histories have no interaction "
            "after their first; expected users with at least two interactions"
        )
    target_items = h.items[targets]
    q = item_frequencies(target_items, train.catalog.n_items)
    log_q = torch.from_numpy(np.log(np.maximum(q, 1e-12)).astype(np.float32))
    weights = (
        torch.from_numpy(inverse_frequency_weights(target_items, q))
        if model.loss == "inverse-frequency"
        else None
    )
    demo = train.users if train.users is not None else h.users
    users_all = featurizer.encode_users(demo, h.n_users)  # once; rows picked per batch

    params = list(user_tower.parameters()) + list(item_tower.parameters())
    opt = torch.optim.Adam(params, lr=model.lr)
    gen = torch.Generator().manual_seed(seed)
    m, bs = len(rows), model.batch_size
    steps = math.ceil(m / bs)
    if model.max_steps_per_epoch is not None:
        steps = min(steps, model.max_steps_per_epoch)

    report: dict[str, Any] = {
        "n_examples": int(m),
        "n_skipped_first": n_skipped,
        "n_users": int(h.n_users),
        "steps_per_epoch": int(steps),
        "loss": model.loss,
        "epochs": [],
        "best_epoch": None,
        "best_score": None,
    }
    best_score, best_state, bad_epochs = -math.inf, None, 0
    user_tower.train()
    item_tower.train()
    for epoch in range(model.max_epochs):  # epochs
        t0 = time.perf_counter()
        perm = torch.randperm(m, generator=gen).numpy()
        total, seen = 0.0, 0
        bar = tqdm(range(steps), desc=f"{model.name} epoch {epoch + 1}", disable=not model.progress,
                   leave=False)
        for step in bar:  # batches
            idx = perm[step * bs : (step + 1) * bs]
            b_rows, b_targets = rows[idx], targets[idx]
            b_items = torch.from_numpy(target_items[idx])
            hist = prefix_histories(h, b_rows, b_targets, model.max_history)
            demo_b = UserInputs(
                dense=users_all.dense[b_rows], categorical=users_all.categorical[b_rows]
            )
            u = model.embed_users(featurizer.transform(hist, users=demo_b))  # (B, d)
            v = model.embed_items(b_items)  # (B, d)
            loss = in_batch_softmax_loss(
                u,
                v,
                b_items,
                temperature=model.temperature,
                log_q=log_q[b_items] if model.loss == "logq" else None,
                weights=None if weights is None else weights[idx],
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            seen += len(idx)
            if step % 20 == 0:
                bar.set_postfix(loss=f"{total / seen:.4f}")
        bar.close()
        model.refresh_item_vectors()
        entry: dict[str, Any] = {"epoch": epoch + 1, "loss": total / max(seen, 1)}
        if validate is not None:
            score = float(validate(model))
            entry["valid"] = score
            user_tower.train()
            item_tower.train()
            if score > best_score:
                best_score, best_state, bad_epochs = score, model.best_state_dicts(), 0
                report["best_epoch"], report["best_score"] = epoch + 1, score
            else:
                bad_epochs += 1
        entry["seconds"] = time.perf_counter() - t0
        report["epochs"].append(entry)
        if model.progress:
            tqdm.write(f"{model.name} epoch {epoch + 1}: " + ", ".join(
                f"{k}={v:.4f}" for k, v in entry.items() if isinstance(v, float)))
        if validate is not None and bad_epochs >= model.patience:
            break
    if best_state is not None:
        model.load_state_dicts(best_state)
    user_tower.eval()
    item_tower.eval()
    model.refresh_item_vectors()
    if validate is None:
        report["best_epoch"] = len(report["epochs"])
    return report



def quick_validate(
    model: TwoTowerRecommender,
    dataset: Dataset,
    split: str,
    target_type: str,
    protocol: str = "warm",
    max_users: int | None = None,
) -> float:
    """HR@10 of ``model`` on the ``protocol`` queries of ``split`` users (early-stopping signal).

    Uses :func:`hgrec.evaluation.protocols.build_queries` and
    :func:`hgrec.evaluation.evaluate.evaluate`; ``max_users`` keeps the first queries only
    (deterministic) to bound the cost per epoch. Returns 0.0 when there is no query.
    """
    from hgrec.config import EvalConfig
    from hgrec.evaluation.evaluate import evaluate
    from hgrec.evaluation.protocols import build_queries

    queries = build_queries(dataset, split, protocol, target_type)
    if max_users is not None and queries.n_users > max_users:
        queries = queries.take(np.arange(max_users))
    if queries.n_users == 0:
        return 0.0
    cfg = EvalConfig()
    metrics = evaluate(
        model, queries, dataset.catalog, dataset.item_popularity(), cfg, progress=False
    )
    value = metrics.get(f"hr@{cfg.hr_k}")
    return 0.0 if value is None else float(value)
