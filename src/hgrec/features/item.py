"""Item-tower inputs of the two-tower model (P1 section 4.2), precomputed once per catalogue.

The item tower of P1 reads an audiobook's metadata (language, BISAC genre), its Sentence-BERT
title+description embedding and its HGNN embedding z_a. Following P2 (Figure 1), the same
tower embeds items of *every* type, so the item type itself is one more categorical input.

Categorical columns get a vocabulary with index 0 reserved for missing / out-of-vocabulary
values, so an item whose genre was unseen (or rarer than ``min_count``) still has an input.

Learned item-id embeddings (P1 section 4.2: interaction features "represented as lists of
embeddings") need an id code per item: :func:`build_id_codes` gives each item seen at least
``min_count`` times in training its own row and maps every other item (rare, unseen, new) to
the shared row 0, so the model stays inductive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch

from hgrec.data.dataset import Catalog
from hgrec.data.schema import GENRE, LANGUAGE

#: Optional catalogue columns embedded as categories when present (P1: language, BISAC genre).
ITEM_CATEGORICAL_COLUMNS: tuple[str, ...] = (LANGUAGE, GENRE)


def build_vocabulary(values: pd.Series, min_count: int = 1) -> list[str]:
    """Sorted distinct non-missing values seen at least ``min_count`` times.

    Code 0 is kept for missing/unseen values, so value ``vocab[k]`` has code ``k + 1``.
    """
    s = values.astype("string").dropna()
    s = s[s.str.len() > 0]
    counts = s.value_counts()
    return sorted(counts.index[counts >= min_count].tolist())


def encode_categorical(values: pd.Series, vocab: Sequence[str]) -> np.ndarray:
    """(n,) int64 codes: 1 + position in ``vocab``; 0 for missing or out-of-vocabulary."""
    codes = pd.Index(list(vocab), dtype="string").get_indexer(values.astype("string"))
    return codes.astype(np.int64) + 1


def build_id_codes(counts: np.ndarray, min_count: int = 1) -> np.ndarray:
    """(n_items,) int64 id-embedding rows: own row for frequent items, shared row 0 for the rest.

    Args:
        counts: (n_items,) occurrences of each item among the training interactions.
        min_count: items seen fewer times share the "rare" row 0 (a trained generic vector
            that unseen and new items also get).

    Returns:
        codes: frequent items get 1, 2, ... in catalogue order; the table has
        ``codes.max() + 1`` rows.
    """
    if min_count < 1:
        raise ValueError(f"id min_count must be >= 1, got {min_count}")
    counts = np.asarray(counts)
    if counts.ndim != 1 or (len(counts) and counts.min() < 0):
        raise ValueError(
            f"id counts must be a 1-d array of non-negative counts, got shape {counts.shape}"
        )
    frequent = counts >= min_count
    return np.where(frequent, np.cumsum(frequent), 0).astype(np.int64)


def _check_matrix(name: str, arr: np.ndarray | None, n_items: int) -> torch.Tensor | None:
    if arr is None:
        return None
    arr = np.asarray(arr)
    if arr.ndim != 2 or arr.shape[0] != n_items:
        raise ValueError(
            f"{name} embeddings have shape {arr.shape}; expected (n_items={n_items}, d)"
        )
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(
            f"{name} embeddings: {len(rows)} rows hold NaN/inf (first item indices "
            f"{rows[:5].tolist()}); expected finite values for every item"
        )
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))


@dataclass(frozen=True)
class ItemFeatures:
    """Per-item inputs of the item tower (and the per-item embeddings the user tower averages).

    Attributes:
        item_type: (n_items,) int64 type codes into ``type_names``.
        type_names: the catalogue's item types.
        categorical: column name -> (n_items,) int64 codes (0 = missing/OOV).
        vocab: column name -> vocabulary (code k + 1 is ``vocab[k]``).
        text: (n_items, d_text) float32 text embeddings, or None.
        hgnn: (n_items, d_hgnn) float32 HGNN embeddings z, or None (the plain "2T" model).
        id_code: (n_items,) int64 rows of the learned id-embedding table (0 = the shared
            "rare" row, :func:`build_id_codes`), or None when the model has no id embeddings.
    """

    item_type: torch.Tensor
    type_names: tuple[str, ...]
    categorical: dict[str, torch.Tensor]
    vocab: dict[str, list[str]]
    text: torch.Tensor | None
    hgnn: torch.Tensor | None
    id_code: torch.Tensor | None = None

    @property
    def n_items(self) -> int:
        return int(self.item_type.shape[0])

    @property
    def n_types(self) -> int:
        return len(self.type_names)

    @property
    def dense_dim(self) -> int:
        """Width of the concatenated dense inputs (text + HGNN)."""
        return sum(0 if t is None else int(t.shape[1]) for t in (self.text, self.hgnn))

    @property
    def n_ids(self) -> int:
        """Rows of the id-embedding table (rare row 0 included); 0 without id codes."""
        if self.id_code is None:
            return 0
        return int(self.id_code.max()) + 1 if len(self.id_code) else 1

    def with_id_codes(self, codes: np.ndarray) -> ItemFeatures:
        """A copy with id codes ``codes`` (n_items,) int64 (see :func:`build_id_codes`)."""
        codes = np.asarray(codes)
        if codes.shape != (self.n_items,) or (len(codes) and codes.min() < 0):
            raise ValueError(
                f"id codes have shape {codes.shape}; expected (n_items={self.n_items},) "
                "non-negative codes"
            )
        return replace(self, id_code=torch.from_numpy(codes.astype(np.int64)))

    def cardinalities(self) -> dict[str, int]:
        """Embedding-table sizes: the item type first, then each categorical column."""
        out = {"item_type": self.n_types}
        out.update({c: len(v) + 1 for c, v in self.vocab.items()})
        return out

    def tower_inputs(self, items: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Positional inputs of the item tower for ``items`` (m,) int64.

        Returns:
            dense (m, dense_dim) float32 and categorical (m, 1 + n_columns) int64, columns in
            the order of :meth:`cardinalities`; then, only when the features carry id codes,
            the (m,) int64 id-embedding rows (so ``item_tower(*tower_inputs(items))`` works
            with and without id embeddings).
        """
        parts = [t[items] for t in (self.text, self.hgnn) if t is not None]
        dense = torch.cat(parts, dim=1) if parts else torch.zeros(len(items), 0)
        cats = [self.item_type[items]] + [self.categorical[c][items] for c in self.vocab]
        if self.id_code is not None:
            return dense, torch.stack(cats, dim=1), self.id_code[items]
        return dense, torch.stack(cats, dim=1)

    # ------------------------------------------------------------------ persistence
    def to_state(self, prefix: str = "item.") -> dict[str, np.ndarray]:
        state = {
            f"{prefix}item_type": self.item_type.numpy(),
            f"{prefix}type_names": np.array(self.type_names, dtype=str),
        }
        for c, codes in self.categorical.items():
            state[f"{prefix}cat.{c}"] = codes.numpy()
            state[f"{prefix}vocab.{c}"] = np.array(self.vocab[c], dtype=str)
        if self.text is not None:
            state[f"{prefix}text"] = self.text.numpy()
        if self.hgnn is not None:
            state[f"{prefix}hgnn"] = self.hgnn.numpy()
        if self.id_code is not None:
            state[f"{prefix}id_code"] = self.id_code.numpy()
        return state

    @staticmethod
    def from_state(state: dict[str, np.ndarray], prefix: str = "item.") -> ItemFeatures:
        cols = [k[len(prefix) + 4 :] for k in state if k.startswith(f"{prefix}cat.")]
        n = len(state[f"{prefix}item_type"])
        return ItemFeatures(
            item_type=torch.from_numpy(np.asarray(state[f"{prefix}item_type"], dtype=np.int64)),
            type_names=tuple(str(s) for s in state[f"{prefix}type_names"]),
            categorical={
                c: torch.from_numpy(np.asarray(state[f"{prefix}cat.{c}"], dtype=np.int64))
                for c in cols
            },
            vocab={c: [str(s) for s in state[f"{prefix}vocab.{c}"]] for c in cols},
            text=_check_matrix("text", state.get(f"{prefix}text"), n),
            hgnn=_check_matrix("HGNN", state.get(f"{prefix}hgnn"), n),
            id_code=(
                torch.from_numpy(np.asarray(state[f"{prefix}id_code"], dtype=np.int64))
                if f"{prefix}id_code" in state
                else None
            ),
        )


def build_item_features(
    catalog: Catalog,
    text: np.ndarray | None,
    hgnn: np.ndarray | None,
    columns: Sequence[str] = ITEM_CATEGORICAL_COLUMNS,
    min_count: int = 1,
) -> ItemFeatures:
    """Precompute the item-tower inputs of every catalogue item.

    Args:
        catalog: the n_items items; ``columns`` absent from ``catalog.items`` are skipped.
        text: (n_items, d_text) text embeddings (P1: Sentence-BERT of title + description),
            or None.
        hgnn: (n_items, d_hgnn) HGNN embeddings z (P1 equation 3 output, L2-normalised), or
            None for the plain 2T model.
        columns: categorical catalogue columns to embed (default: language, genre).
        min_count: values seen on fewer items share the out-of-vocabulary code 0.

    Raises:
        ValueError: an embedding matrix has the wrong number of rows or non-finite values.
    """
    n = catalog.n_items
    categorical: dict[str, torch.Tensor] = {}
    vocab: dict[str, list[str]] = {}
    for col in columns:  # a handful of metadata columns
        if col not in catalog.items.columns:
            continue
        vocab[col] = build_vocabulary(catalog.items[col], min_count=min_count)
        categorical[col] = torch.from_numpy(encode_categorical(catalog.items[col], vocab[col]))
    return ItemFeatures(
        item_type=torch.from_numpy(catalog.item_type.astype(np.int64)),
        type_names=tuple(catalog.type_names),
        categorical=categorical,
        vocab=vocab,
        text=_check_matrix("text", text, n),
        hgnn=_check_matrix("HGNN", hgnn, n),
    )


def extend_item_features(
    feats: ItemFeatures,
    catalog: Catalog,
    changed: np.ndarray,
    text: np.ndarray | None,
    hgnn: np.ndarray | None,
) -> ItemFeatures:
    """``feats`` over a larger catalogue (``hgrec add-items``), with the fitted vocabularies.

    Rows ``[0, feats.n_items)`` of ``catalog`` are the fitted items, in order; rows in
    ``changed`` (every appended row, and replaced ones) get their inputs from ``catalog``,
    ``text`` and ``hgnn``; the other rows keep theirs. Categorical values unseen at fit time
    get code 0, and new items the shared "rare" id row 0 (:func:`build_id_codes`), as any
    item unseen in training does.

    Args:
        feats: the fitted model's item features (n_before items).
        catalog: the extended catalogue (n_items >= n_before), same item types.
        changed: (m,) int64 rows to (re)compute; must include ``n_before .. n_items - 1``.
        text: (n_items, d_text) text embeddings, needed when ``feats.text`` is set.
        hgnn: (n_items, d_hgnn) HGNN embeddings, needed when ``feats.hgnn`` is set.

    Raises:
        ValueError: other item types, missing rows in ``changed``, or a missing matrix.
    """
    n, n_before = catalog.n_items, feats.n_items
    changed = np.asarray(changed, dtype=np.int64)
    if tuple(catalog.type_names) != feats.type_names:
        raise ValueError(
            f"the catalogue has item types {list(catalog.type_names)}; the model was fitted on "
            f"{list(feats.type_names)} (new item types need a new run)"
        )
    appended = np.zeros(n, dtype=bool)
    appended[changed] = True
    if n < n_before or not appended[n_before:].all():
        raise ValueError(f"changed must hold every appended row {n_before}..{n - 1}")
    rows = torch.from_numpy(changed)

    def grow(t: torch.Tensor, new_rows: torch.Tensor | None) -> torch.Tensor:
        out = t.new_zeros((n, *t.shape[1:]))  # (n, ...)
        out[:n_before] = t
        if new_rows is not None:
            out[rows] = new_rows
        return out

    def dense(name: str, old: torch.Tensor | None, arr: np.ndarray | None) -> torch.Tensor | None:
        if old is None:
            return None
        full = _check_matrix(name, arr, n)
        if full is None or full.shape[1] != old.shape[1]:
            raise ValueError(f"{name} embeddings of the {n} items are needed, width {old.shape[1]}")
        return grow(old, full[rows])

    missing = pd.Series([None] * len(changed), dtype="object")
    categorical = {
        c: grow(codes, torch.from_numpy(encode_categorical(
            catalog.items[c].iloc[changed] if c in catalog.items.columns else missing,
            feats.vocab[c],
        )))
        for c, codes in feats.categorical.items()  # a handful of metadata columns
    }
    return ItemFeatures(
        item_type=torch.from_numpy(catalog.item_type.astype(np.int64)),
        type_names=feats.type_names,
        categorical=categorical,
        vocab=feats.vocab,
        text=dense("text", feats.text, text),
        hgnn=dense("HGNN", feats.hgnn, hgnn),
        # replaced items keep their learned row, appended ones get the shared rare row 0
        id_code=None if feats.id_code is None else grow(feats.id_code, None),
    )
