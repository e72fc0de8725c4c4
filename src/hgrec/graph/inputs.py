"""The interactions a co-interaction graph is built from: the chosen users, the chosen events.

Every engine (scipy, DuckDB, Spark) starts from the same :class:`GraphInput`, so they agree by
construction on which interactions count, and the counts of what was left out go into the
build report instead of disappearing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from hgrec.config import GraphConfig
from hgrec.data.dataset import Dataset
from hgrec.errors import UserError

SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class GraphInput:
    """The interactions that create edges, sorted by (user, order) as in the dataset.

    Attributes:
        user: (n,) int64 user indices (rows of ``dataset.users``).
        item: (n,) int64 item indices.
        order: (n,) float64 order within the user (position or epoch seconds).
        rank: (n,) int64 rank within the user's history after the event filter (0, 1, ...):
            the distance a window in positions is measured in.
        n_users, n_items: sizes of the index spaces.
        item_type: (n_items,) int16 type codes into ``type_names``.
        type_names: item type names, sorted.
        counts: what was selected and left out (users, interactions_of_users,
            dropped_by_events, duplicate_user_items), for the build report.
    """

    user: np.ndarray
    item: np.ndarray
    order: np.ndarray
    rank: np.ndarray
    n_users: int
    n_items: int
    item_type: np.ndarray
    type_names: tuple[str, ...]
    counts: dict[str, int]

    @property
    def n_interactions(self) -> int:
        return len(self.item)


def run_starts(user: np.ndarray) -> np.ndarray:
    """(n,) int64: for each entry of a sorted ``user`` (n,), where its user's run starts."""
    n = len(user)
    new = np.ones(n, dtype=bool)
    new[1:] = user[1:] != user[:-1]
    return np.maximum.accumulate(np.where(new, np.arange(n, dtype=np.int64), 0))


def distinct_user_items(user: np.ndarray, item: np.ndarray, n_users: int, n_items: int) -> int:
    """Number of distinct (user, item) pairs in (n,) arrays sorted by user: a user who repeats
    an item counts once, and the report shows how many repeats were collapsed."""
    indptr = np.concatenate([[0], np.cumsum(np.bincount(user, minlength=n_users))])
    x = sp.csr_matrix((np.ones(len(item), dtype=np.int32), item, indptr), shape=(n_users, n_items))
    x.sum_duplicates()  # sorts within each user's row: cheaper than one global sort
    return int(x.nnz)


def check_events(cfg: GraphConfig, names: Sequence[str]) -> None:
    """Raise when ``cfg.events`` names an event the dataset does not have (``names``)."""
    unknown = sorted(set(cfg.events or ()) - set(names))
    if unknown:
        raise UserError(
            f"graph.events: unknown event names {unknown}; expected events of the dataset "
            f"{list(names)}"
        )


def select_interactions(
    dataset: Dataset, cfg: GraphConfig, users: np.ndarray | None = None
) -> GraphInput:
    """Keep the interactions of ``users`` (default: the train users) with events in ``cfg.events``.

    Raises:
        ValueError: users out of range, an unknown event name, or a window in days on data
            ordered by position.
    """
    if users is None:
        users = dataset.users_in("train")
    users = np.asarray(users)
    if users.ndim != 1 or (len(users) and not np.issubdtype(users.dtype, np.integer)):
        raise ValueError(
            f"users must be a 1-d array of user indices, got {users.dtype} {users.shape}"
        )
    bad = (users < 0) | (users >= dataset.n_users)
    if bad.any():
        raise ValueError(
            f"users: {int(bad.sum())} indices outside [0, {dataset.n_users}) "
            f"(first: {users[bad][:5].tolist()}); expected rows of dataset.users"
        )
    if cfg.window is not None and cfg.window_unit == "days" and dataset.order_kind != "timestamp":
        raise ValueError(
            f"graph.window_unit='days' needs timestamps, but dataset {dataset.name!r} is ordered "
            f"by {dataset.order_kind} (its interactions have no timestamp column); use "
            "window_unit='positions' or load interactions with a timestamp column"
        )
    inter = dataset.interactions
    user = inter["user"].to_numpy(dtype=np.int64)
    chosen = np.zeros(dataset.n_users, dtype=bool)
    chosen[users] = True
    keep_user = chosen[user]
    keep = keep_user.copy()
    if cfg.events is not None:
        names = dataset.event_names
        check_events(cfg, names)
        allowed = np.isin(np.arange(len(names)), [names.index(e) for e in cfg.events])
        keep &= allowed[inter["event"].cat.codes.to_numpy().astype(np.int64)]
    user = user[keep]
    item = inter["item"].to_numpy(dtype=np.int64)[keep]
    order = inter["order"].to_numpy(dtype=np.float64)[keep]
    rank = np.arange(len(user), dtype=np.int64) - run_starts(user)
    n_distinct = distinct_user_items(user, item, dataset.n_users, dataset.catalog.n_items)
    counts = {
        "users": int(chosen.sum()),
        "interactions_of_users": int(keep_user.sum()),
        "dropped_by_events": int(keep_user.sum() - keep.sum()),
        "interactions_used": int(keep.sum()),
        "duplicate_user_items": int(keep.sum()) - n_distinct,
    }
    return GraphInput(
        user=user,
        item=item,
        order=order,
        rank=rank,
        n_users=dataset.n_users,
        n_items=dataset.catalog.n_items,
        item_type=dataset.catalog.item_type,
        type_names=dataset.catalog.type_names,
        counts=counts,
    )
