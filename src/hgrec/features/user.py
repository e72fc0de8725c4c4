"""User-tower inputs of the two-tower model, computed from a *raw* history at query time.

P1 (section 4.2) feeds the user tower with demographics (age, country) and the mean HGNN
embeddings z̄_a, z̄_p of the audiobooks and podcasts the user interacted with (streams and
weak signals). P2 (Figure 1) averages the HGNN embeddings of all items the user touched, so
the HGNN embeddings are shared by both towers. Here, per item type t of the catalogue:

* the mean HGNN embedding of the history items of type t (z̄_t; zeros when none),
* the mean text embedding of the history items of type t,
* log1p(number of history items of type t),
* (when the item features carry id codes) the bag of the history items' id-embedding rows,
  which the user tower averages with a learned table (P1: interaction features "represented
  as lists of embeddings"): bag ``user * n_types + t``, empty bags give zeros,

plus log1p(count) per event type and the demographic columns of ``histories.users``: string
columns become categorical codes (vocabulary from training users, code 0 for missing/unseen
values), numeric columns are standardised with training statistics (NaN -> 0 plus a missing
flag). Only the last ``max_history`` items of each history are used.

The same :meth:`UserFeaturizer.transform` serves training examples, evaluation and the HTTP
service, so a user never seen in training is scored from the history sent with the request.
Everything is vectorised over the batch with segment sums over the CSR rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from hgrec.data.histories import Histories
from hgrec.data.schema import DEFAULT_EVENT, SPLIT, USER_ID
from hgrec.features.item import ItemFeatures, build_vocabulary, encode_categorical

#: user-table columns that are identifiers or bookkeeping, never features.
NON_FEATURE_COLUMNS: tuple[str, ...] = (USER_ID, SPLIT, "user")


def truncate_histories(histories: Histories, max_history: int) -> Histories:
    """Keep the last ``max_history`` entries of each row (rows are chronological).

    Returns:
        Histories with ``min(len(row), max_history)`` entries per row, same row order.
    """
    if max_history < 1:
        raise ValueError(f"max_history must be >= 1, got {max_history}")
    lengths = histories.lengths
    if len(lengths) == 0 or lengths.max(initial=0) <= max_history:
        return histories
    rows = histories.row_ids()
    pos = np.arange(len(histories.items), dtype=np.int64) - histories.indptr[rows]
    return histories.mask(pos >= lengths[rows] - max_history)


@dataclass(frozen=True)
class UserInputs:
    """A batch of user-tower inputs.

    Attributes:
        dense: (n, dense_dim) float32 history aggregates and standardised numerics.
        categorical: (n, n_categorical) int64 demographic codes (0 = missing/unseen).
        id_codes: (nnz,) int64 id-embedding rows of the (truncated) history items, grouped
            by bag, or None when the model has no id embeddings.
        id_offsets: (n * n_types,) int64 start of bag ``user * n_types + type`` in
            ``id_codes`` (``torch.nn.functional.embedding_bag`` offsets), or None.
    """

    dense: torch.Tensor
    categorical: torch.Tensor
    id_codes: torch.Tensor | None = None
    id_offsets: torch.Tensor | None = None

    def tower_args(self) -> tuple[torch.Tensor, ...]:
        """Positional arguments of the user tower: dense, categorical[, id_codes, id_offsets]."""
        if self.id_codes is None or self.id_offsets is None:
            return self.dense, self.categorical
        return self.dense, self.categorical, self.id_codes, self.id_offsets


@dataclass(frozen=True)
class UserFeaturizer:
    """Turns raw histories (+ demographics) into user-tower inputs; fitted on training users.

    Attributes:
        items: the per-item embeddings and types the history aggregates read.
        event_names: event vocabulary of ``Histories.events`` codes.
        categorical_vocab: demographic string column -> vocabulary (code k + 1 = vocab[k]).
        numeric_mean, numeric_std: demographic numeric column -> training mean / std.
        max_history: only the last ``max_history`` items of a history are read.
    """

    items: ItemFeatures
    event_names: tuple[str, ...]
    categorical_vocab: dict[str, list[str]]
    numeric_mean: dict[str, float]
    numeric_std: dict[str, float]
    max_history: int = 100

    @staticmethod
    def fit(
        items: ItemFeatures,
        event_names: Sequence[str],
        users: pd.DataFrame | None,
        max_history: int = 100,
        min_count: int = 1,
    ) -> UserFeaturizer:
        """Learn demographic vocabularies and statistics from the training users' table.

        Args:
            items: item features (types, text and HGNN embeddings).
            event_names: the event vocabulary of the histories' event codes.
            users: training users (one row each); columns other than user_id / split are
                demographics. None: no demographics.
            max_history: history truncation.
            min_count: demographic values rarer than this share the unseen code 0.
        """
        cat_vocab: dict[str, list[str]] = {}
        mean: dict[str, float] = {}
        std: dict[str, float] = {}
        if users is not None:
            for col in users.columns:  # a handful of demographic columns
                if col in NON_FEATURE_COLUMNS:
                    continue
                s = users[col]
                if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
                    v = s.to_numpy(dtype=np.float64)
                    ok = np.isfinite(v)
                    mean[col] = float(v[ok].mean()) if ok.any() else 0.0
                    sd = float(v[ok].std()) if ok.sum() > 1 else 0.0
                    # A constant column carries no signal; std 1 keeps it finite.
                    std[col] = sd if sd > 0 else 1.0
                else:
                    cat_vocab[col] = build_vocabulary(s, min_count=min_count)
        return UserFeaturizer(
            items=items,
            event_names=tuple(event_names),
            categorical_vocab=cat_vocab,
            numeric_mean=mean,
            numeric_std=std,
            max_history=max_history,
        )

    # ------------------------------------------------------------------ dimensions
    @property
    def n_types(self) -> int:
        return self.items.n_types

    @property
    def history_dim(self) -> int:
        """Width of :meth:`history_features`: per-type means and counts, event counts."""
        per_type = self.items.dense_dim + 1
        return self.n_types * per_type + len(self.event_names)

    @property
    def dense_dim(self) -> int:
        return self.history_dim + 2 * len(self.numeric_mean)

    def cardinalities(self) -> dict[str, int]:
        return {c: len(v) + 1 for c, v in self.categorical_vocab.items()}

    # ------------------------------------------------------------------ features
    def history_features(self, histories: Histories) -> torch.Tensor:
        """Aggregates of the last ``max_history`` items of each history.

        Layout of the (n, history_dim) float32 output: for each type t in order, the mean
        text embedding (d_text) and mean HGNN embedding z̄_t (d_hgnn) of the history items of
        type t (zeros when there are none); then log1p(items per type) (n_types); then
        log1p(count per event) (n_events).

        Raises:
            ValueError: an item index is outside the catalogue or an event code outside
                ``event_names``.
        """
        h = truncate_histories(histories, self.max_history)
        rows, items, seg = self._segments(h)
        n, n_t = h.n_users, self.n_types
        count = torch.bincount(seg, minlength=n * n_t).to(torch.float32)  # (n * n_t,)
        parts_by_type: list[torch.Tensor] = []
        for emb in (self.items.text, self.items.hgnn):  # at most two embedding tables
            if emb is None:
                continue
            total = torch.zeros(n * n_t, emb.shape[1]).index_add_(0, seg, emb[items])
            mean = total / count.clamp(min=1.0).unsqueeze(1)
            parts_by_type.append(mean.view(n, n_t, -1))
        per_type = (
            torch.cat(parts_by_type, dim=2).reshape(n, -1)
            if parts_by_type
            else torch.zeros(n, 0)
        )
        ev = self._event_codes(h)
        n_e = len(self.event_names)
        ev_count = torch.bincount(rows * n_e + ev, minlength=n * n_e).to(torch.float32)
        return torch.cat(
            [per_type, torch.log1p(count.view(n, n_t)), torch.log1p(ev_count.view(n, n_e))],
            dim=1,
        )

    def _segments(self, h: Histories) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Validated (nnz,) int64 row, item and bag (row * n_types + type) of each entry."""
        n_items = self.items.n_items
        items_np = h.items
        if len(items_np) and (items_np.min() < 0 or items_np.max() >= n_items):
            bad = np.flatnonzero((items_np < 0) | (items_np >= n_items))
            raise ValueError(
                f"histories: {len(bad)} entries hold item indices outside [0, {n_items}) "
                f"(first values {items_np[bad[:5]].tolist()}); expected catalogue indices"
            )
        rows = torch.from_numpy(h.row_ids())
        items = torch.from_numpy(items_np.astype(np.int64))
        seg = rows * self.n_types + self.items.item_type[items]  # (nnz,) row-and-type bag
        return rows, items, seg

    def id_bags(self, histories: Histories) -> tuple[torch.Tensor, torch.Tensor]:
        """Id-embedding bags of the last ``max_history`` items, one bag per (user, type).

        Returns:
            codes (nnz,) int64 id rows (``items.id_code``) of the history items sorted by bag
            (stable: chronological within a bag) and offsets (n * n_types,) int64 start of
            bag ``user * n_types + type``; an empty bag starts where the next one does
            (``embedding_bag(mode="mean")`` gives it zeros).

        Raises:
            ValueError: the item features carry no id codes, or an item index is outside
                the catalogue.
        """
        if self.items.id_code is None:
            raise ValueError("item features have no id codes; build them with with_id_codes()")
        h = truncate_histories(histories, self.max_history)
        _, items, seg = self._segments(h)
        n_bags = h.n_users * self.n_types
        order = torch.argsort(seg, stable=True)
        sizes = torch.bincount(seg, minlength=n_bags)  # (n_bags,)
        offsets = torch.cumsum(sizes, 0) - sizes  # exclusive prefix sum
        return self.items.id_code[items[order]], offsets

    def _event_codes(self, h: Histories) -> torch.Tensor:
        n_e = len(self.event_names)
        if h.events is None:
            # No events given: every entry is the default event (a stream).
            names = self.event_names
            default = names.index(DEFAULT_EVENT) if DEFAULT_EVENT in names else 0
            return torch.full((len(h.items),), default, dtype=torch.int64)
        ev = h.events.astype(np.int64)
        if len(ev) and (ev.min() < 0 or ev.max() >= n_e):
            bad = np.flatnonzero((ev < 0) | (ev >= n_e))
            raise ValueError(
                f"histories: {len(bad)} event codes outside [0, {n_e}) (first values "
                f"{ev[bad[:5]].tolist()}); expected codes into {list(self.event_names)}"
            )
        return torch.from_numpy(ev)

    def encode_users(self, users: pd.DataFrame | None, n: int) -> UserInputs:
        """Demographic inputs of ``n`` users.

        Missing columns (or ``users`` None, as for an anonymous request) count as missing
        values: categorical code 0, numeric 0 with missing flag 1.

        Returns:
            UserInputs with dense (n, 2 * n_numeric) [standardised values, missing flags] and
            categorical (n, n_categorical) int64 codes.
        """
        if users is not None and len(users) != n:
            raise ValueError(f"users table has {len(users)} rows, expected {n}")
        cats = []
        for col, vocab in self.categorical_vocab.items():
            if users is None or col not in users.columns:
                cats.append(np.zeros(n, dtype=np.int64))
            else:
                cats.append(encode_categorical(users[col].reset_index(drop=True), vocab))
        values, flags = [], []
        for col, mu in self.numeric_mean.items():
            if users is None or col not in users.columns:
                v = np.full(n, np.nan)
            else:
                v = pd.to_numeric(users[col], errors="coerce").to_numpy(dtype=np.float64)
            missing = ~np.isfinite(v)
            values.append(np.where(missing, 0.0, (v - mu) / self.numeric_std[col]))
            flags.append(missing.astype(np.float64))
        dense = np.stack(values + flags, axis=1) if values else np.zeros((n, 0))
        cat = np.stack(cats, axis=1) if cats else np.zeros((n, 0), dtype=np.int64)
        return UserInputs(
            dense=torch.from_numpy(dense.astype(np.float32)),
            categorical=torch.from_numpy(cat.astype(np.int64)),
        )

    def transform(self, histories: Histories, users: UserInputs | None = None) -> UserInputs:
        """User-tower inputs of a batch of raw histories.

        Args:
            histories: n chronological histories; ``histories.users`` holds demographics.
            users: precomputed :meth:`encode_users` of these n users (training reuses them
                across examples); None encodes ``histories.users``.

        Returns:
            UserInputs with dense (n, dense_dim), categorical (n, n_categorical) and, when
            the item features carry id codes, the id bags of :meth:`id_bags`.
        """
        demo = users if users is not None else self.encode_users(histories.users, histories.n_users)
        if demo.dense.shape[0] != histories.n_users:
            raise ValueError(
                f"demographics have {demo.dense.shape[0]} rows, histories {histories.n_users}"
            )
        h = truncate_histories(histories, self.max_history)  # once; idempotent below
        dense = torch.cat([self.history_features(h), demo.dense], dim=1)
        codes, offsets = self.id_bags(h) if self.items.id_code is not None else (None, None)
        return UserInputs(
            dense=dense, categorical=demo.categorical, id_codes=codes, id_offsets=offsets
        )

    # ------------------------------------------------------------------ persistence
    def to_state(self, prefix: str = "user.") -> dict[str, np.ndarray]:
        """Vocabularies and statistics (the item features are saved separately)."""
        state: dict[str, np.ndarray] = {
            f"{prefix}event_names": np.array(self.event_names, dtype=str),
            f"{prefix}max_history": np.array(self.max_history, dtype=np.int64),
            f"{prefix}numeric_columns": np.array(list(self.numeric_mean), dtype=str),
            f"{prefix}numeric_mean": np.array(list(self.numeric_mean.values()), dtype=np.float64),
            f"{prefix}numeric_std": np.array(list(self.numeric_std.values()), dtype=np.float64),
            f"{prefix}categorical_columns": np.array(list(self.categorical_vocab), dtype=str),
        }
        for col, vocab in self.categorical_vocab.items():
            state[f"{prefix}vocab.{col}"] = np.array(vocab, dtype=str)
        return state

    @staticmethod
    def from_state(
        state: dict[str, np.ndarray], items: ItemFeatures, prefix: str = "user."
    ) -> UserFeaturizer:
        num_cols = [str(c) for c in state[f"{prefix}numeric_columns"]]
        cat_cols = [str(c) for c in state[f"{prefix}categorical_columns"]]
        return UserFeaturizer(
            items=items,
            event_names=tuple(str(e) for e in state[f"{prefix}event_names"]),
            categorical_vocab={c: [str(v) for v in state[f"{prefix}vocab.{c}"]] for c in cat_cols},
            numeric_mean=dict(zip(num_cols, state[f"{prefix}numeric_mean"].tolist(), strict=True)),
            numeric_std=dict(zip(num_cols, state[f"{prefix}numeric_std"].tolist(), strict=True)),
            max_history=int(state[f"{prefix}max_history"]),
        )
