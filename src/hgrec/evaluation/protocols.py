"""Evaluation queries: which history each held-out user shows the model, and what counts as a hit.

Target item type T (the new content type); every other type is a source. Valid and test users
never contribute training interactions: the model sees their history only at query time.

COLD (a user who has never touched T, simulated; P1 Table 3):
    users of the split with at least one source and one T interaction;
    history = all their source interactions (every T interaction removed);
    relevant = all their T items (unique); nothing is excluded from the ranking.

WARM (P1 Table 2):
    relevant = the user's last T interaction by order (interactions are sorted by (user, order),
    ties in file order, so the last such row wins);
    history = every interaction with order strictly smaller than it, of all types;
    the user counts only if that history holds at least one T item;
    exclude = the T items of that history.

Everything dropped is counted in ``Queries.counts``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from hgrec.data.dataset import Dataset
from hgrec.data.histories import Histories
from hgrec.data.schema import SPLITS
from hgrec.evaluation.metrics import sorted_unique

Protocol = Literal["cold", "warm"]
PROTOCOLS: tuple[str, ...] = ("cold", "warm")


@dataclass(frozen=True)
class Queries:
    """The evaluation queries of one (protocol, split).

    Attributes:
        users: (n,) int64 dataset user indices, ascending.
        histories: n query-time histories (items, events, weights and the users' table rows).
        relevant: n rows of relevant item indices (unique per row).
        exclude: n rows of items that must not be recommended, or None (exclude nothing).
        protocol: "cold" or "warm".
        split: the users' split ("valid" or "test"; "train" for diagnostics only).
        target_type: the ranked item type T.
        counts: users in the split, users kept, and users dropped per reason.
    """

    users: np.ndarray
    histories: Histories
    relevant: Histories
    exclude: Histories | None
    protocol: str
    split: str
    target_type: str
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.users)
        for name in ("histories", "relevant", "exclude"):
            h = getattr(self, name)
            if h is not None and h.n_users != n:
                raise ValueError(f"Queries.{name} has {h.n_users} rows, users has {n}")

    @property
    def n_users(self) -> int:
        return len(self.users)

    def take(self, rows: np.ndarray) -> Queries:
        """The queries of ``rows`` (int array), in that order."""
        return Queries(
            users=self.users[rows],
            histories=self.histories.take(rows),
            relevant=self.relevant.take(rows),
            exclude=None if self.exclude is None else self.exclude.take(rows),
            protocol=self.protocol,
            split=self.split,
            target_type=self.target_type,
            counts=dict(self.counts),
        )

    def __repr__(self) -> str:
        return (
            f"Queries(protocol={self.protocol!r}, split={self.split!r}, "
            f"target_type={self.target_type!r}, n_users={self.n_users}, counts={self.counts})"
        )


def _unique_rows(rows: np.ndarray, items: np.ndarray, n_rows: int) -> Histories:
    """Histories of n_rows rows from (row, item) entries, each row's items unique and sorted."""
    base = int(items.max(initial=-1)) + 1
    keys = sorted_unique(rows.astype(np.int64) * base + items)
    r, i = keys // max(base, 1), keys % max(base, 1)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(r, minlength=n_rows))]).astype(np.int64)
    return Histories(indptr=indptr, items=i.astype(np.int64))


def _items_only(h: Histories) -> Histories:
    return Histories(indptr=h.indptr, items=h.items)


def build_queries(
    dataset: Dataset, split: str, protocol: str, target_type: str | None = None
) -> Queries:
    """Build the queries of ``protocol`` for the users of ``split`` (vectorised over entries).

    Args:
        dataset: a validated Dataset (interactions sorted by (user, order)).
        split: "train", "valid" or "test".
        protocol: "cold" or "warm" (see the module docstring).
        target_type: the ranked item type; default ``dataset.target_type``.

    Returns:
        :class:`Queries` with counts ``users_in_split``, ``kept``, ``dropped_*`` (summing with
        ``kept`` to ``users_in_split``) and ``relevant_pairs``; WARM adds
        ``relevant_in_history`` (users whose relevant item is also earlier in their history,
        hence excluded and unreachable: a repeat purchase).
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {list(PROTOCOLS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {list(SPLITS)}")
    target = dataset.target_type if target_type is None else target_type
    t_code = dataset.catalog.type_code(target)  # raises on an unknown type
    users = dataset.users_in(split)
    n = len(users)
    h = dataset.histories(users)
    row = h.row_ids()  # (nnz,)
    is_t = dataset.catalog.item_type[h.items] == t_code  # (nnz,)
    n_t = np.bincount(row[is_t], minlength=n)  # (n,) T interactions per user
    has_t = n_t > 0
    counts: dict[str, int] = {"users_in_split": n}

    if protocol == "cold":
        has_src = (h.lengths - n_t) > 0
        keep = has_t & has_src
        rows = np.flatnonzero(keep)
        history = h.mask(~is_t).take(rows)
        relevant = _unique_rows(row[is_t], h.items[is_t], n).take(rows)
        exclude = None
        counts.update(
            kept=len(rows),
            dropped_no_target=int((~has_t).sum()),
            dropped_no_source=int((has_t & ~has_src).sum()),
        )
    else:
        _, order = dataset.orders(users)  # (nnz,) aligned with h
        t_idx = np.flatnonzero(is_t)
        t_row = row[t_idx]
        # The last T entry of each row: the next T entry belongs to another row (or none left).
        is_last = np.append(t_row[1:] != t_row[:-1], True) if len(t_idx) else np.zeros(0, bool)
        last_idx, last_row = t_idx[is_last], t_row[is_last]
        cutoff = np.full(n, -np.inf)
        cutoff[last_row] = order[last_idx]
        before = order < cutoff[row]  # strictly earlier than the user's last T interaction
        n_prior_t = np.bincount(row[before & is_t], minlength=n)
        keep = has_t & (n_prior_t > 0)
        rows = np.flatnonzero(keep)
        history = h.mask(before).take(rows)
        exclude = _items_only(h.mask(before & is_t).take(rows))
        target_item = np.full(n, -1, dtype=np.int64)
        target_item[last_row] = h.items[last_idx]
        rel_items = target_item[rows]
        relevant = Histories(indptr=np.arange(len(rows) + 1, dtype=np.int64), items=rel_items)
        ex_rows = exclude.row_ids()
        match = exclude.items == rel_items[ex_rows]
        in_history = np.bincount(ex_rows[match], minlength=len(rows)) > 0
        counts.update(
            kept=len(rows),
            dropped_no_target=int((~has_t).sum()),
            dropped_no_prior_target=int((has_t & (n_prior_t == 0)).sum()),
            relevant_in_history=int(in_history.sum()),
        )
    counts["relevant_pairs"] = len(relevant.items)
    return Queries(
        users=users[rows],
        histories=history,
        relevant=relevant,
        exclude=exclude,
        protocol=protocol,
        split=split,
        target_type=target,
        counts=counts,
    )
