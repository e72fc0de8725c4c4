"""In-memory dataset after loading and validation: integer-indexed items, users and interactions.

Loaders (``hgrec.data.load``, ``hgrec.datasets``) build a :class:`Dataset`; every later stage
(graph, features, models, evaluation) works on integer indices:

* item ``i`` is row ``i`` of ``catalog.items``;
* user ``u`` is row ``u`` of ``users``;
* ``interactions`` is sorted by (user, order), ties kept in file order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from hgrec.data.histories import Histories
from hgrec.data.schema import DESCRIPTION, ITEM_ID, SPLIT, TITLE, USER_ID


@dataclass(frozen=True)
class Catalog:
    """The item catalogue.

    Attributes:
        items: canonical items table; row i is item i (item_id, item_type, title, ...).
        item_ids: (n_items,) object array of item id strings.
        item_type: (n_items,) int16 codes into ``type_names``.
        type_names: item type names, sorted.
    """

    items: pd.DataFrame
    item_ids: np.ndarray
    item_type: np.ndarray
    type_names: tuple[str, ...]
    _index: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    @staticmethod
    def from_items(items: pd.DataFrame) -> Catalog:
        items = items.reset_index(drop=True)
        type_names = tuple(sorted(items["item_type"].astype(str).unique()))
        codes = pd.Categorical(items["item_type"].astype(str), categories=type_names).codes
        ids = items[ITEM_ID].astype(str).to_numpy(dtype=object)
        return Catalog(
            items=items,
            item_ids=ids,
            item_type=codes.astype(np.int16),
            type_names=type_names,
            _index={s: i for i, s in enumerate(ids)},
        )

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def type_code(self, name: str) -> int:
        if name not in self.type_names:
            raise ValueError(f"unknown item type {name!r}; the catalogue has {list(self.type_names)}")
        return self.type_names.index(name)

    def items_of_type(self, name: str) -> np.ndarray:
        """(n,) int64 indices of the items of type ``name``, ascending."""
        return np.flatnonzero(self.item_type == self.type_code(name)).astype(np.int64)

    def index_of(self, ids: list[str] | np.ndarray) -> np.ndarray:
        """(n,) int64 item indices; -1 for ids not in the catalogue."""
        return np.fromiter((self._index.get(str(s), -1) for s in ids), dtype=np.int64, count=len(ids))

    def texts(self) -> list[str]:
        """Title and description joined by '. ' (description omitted when empty)."""
        title = self.items[TITLE].fillna("").astype(str).str.strip()
        if DESCRIPTION in self.items.columns:
            desc = self.items[DESCRIPTION].fillna("").astype(str).str.strip()
            text = np.where(desc.str.len() > 0, title + ". " + desc, title)
            return [str(t) for t in text]
        return title.tolist()


@dataclass(frozen=True)
class LoadReport:
    """What loading changed or filtered, with counts; printed and saved in the run."""

    files: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Dataset:
    """A validated dataset.

    Attributes:
        name: dataset name for reports.
        catalog: the items.
        users: one row per user; columns user_id, split (train|valid|test), demographics.
        interactions: columns user (int64), item (int64), order (float64), event (category
            with categories ``event_names``), weight (float32); sorted by (user, order).
        target_type: the new, sparse item type that is evaluated.
        report: what loading collapsed or filtered.
        order_kind: what ``interactions.order`` holds: "position" (ranks) or "timestamp"
            (epoch seconds); windows in days need "timestamp".
    """

    name: str
    catalog: Catalog
    users: pd.DataFrame
    interactions: pd.DataFrame
    target_type: str
    report: LoadReport = field(default_factory=LoadReport)
    order_kind: Literal["position", "timestamp"] = "position"

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def event_names(self) -> tuple[str, ...]:
        return tuple(self.interactions["event"].cat.categories)

    @property
    def user_ids(self) -> np.ndarray:
        return self.users[USER_ID].astype(str).to_numpy(dtype=object)

    def users_in(self, split: str) -> np.ndarray:
        """(n,) int64 indices of the users of ``split``."""
        return np.flatnonzero(self.users[SPLIT].to_numpy() == split).astype(np.int64)

    def histories(self, users: np.ndarray | None = None) -> Histories:
        """Chronological histories of ``users`` (default: all users, in index order)."""
        inter = self.interactions
        counts = np.bincount(inter["user"].to_numpy(), minlength=self.n_users)
        full = Histories(
            indptr=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            items=inter["item"].to_numpy(dtype=np.int64),
            events=inter["event"].cat.codes.to_numpy().astype(np.int16),
            weights=inter["weight"].to_numpy(dtype=np.float32),
            users=self.users.reset_index(drop=True),
        )
        return full if users is None else full.take(users)

    def orders(self, users: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(indptr, order) aligned with :meth:`histories` of the same users."""
        inter = self.interactions
        counts = np.bincount(inter["user"].to_numpy(), minlength=self.n_users)
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        order = inter["order"].to_numpy(dtype=np.float64)
        if users is None:
            return indptr, order
        h = Histories(indptr=indptr, items=np.arange(len(order), dtype=np.int64)).take(users)
        return h.indptr, order[h.items]

    def train_matrix(self, binary: bool = True) -> sp.csr_matrix:
        """(n_train_users, n_items) float32 interaction matrix of the train users."""
        return self.histories(self.users_in("train")).to_csr(self.catalog.n_items, binary)

    def item_popularity(self) -> np.ndarray:
        """(n_items,) int64 count of training interactions per item."""
        train = self.users[SPLIT].to_numpy() == "train"
        inter = self.interactions
        mask = train[inter["user"].to_numpy()]
        return np.bincount(inter["item"].to_numpy()[mask], minlength=self.catalog.n_items)
