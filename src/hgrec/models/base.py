"""The retrieval contract every model implements (in the manner of implicit's RecommenderBase).

A model is fitted on the training users' interactions, then asked for the top k items of one
item type for a batch of *raw histories*, so users never seen in training are served the same
way as known ones. Scores are computed by :meth:`Recommender.score`; exclusion, type
restriction, batching and top-k are shared here.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from hgrec.data.dataset import Catalog
from hgrec.data.histories import Histories
from hgrec.utils.layout import PARAMS, STATE


@dataclass(frozen=True)
class TrainSet:
    """What a model is fitted on.

    Attributes:
        catalog: the item catalogue (n_items items).
        histories: chronological histories of the training users (n_train rows).
        matrix: (n_train, n_items) float32 binary user-item matrix of ``histories``.
        item_text: (n_items, d) float32 L2-normalised text embeddings, or None.
        event_names: event vocabulary of ``histories.events``.
        users: (n_train rows) user table of the training users (demographics), or None.
        seed: the run's seed; every random choice of a model derives from it.
    """

    catalog: Catalog
    histories: Histories
    matrix: sp.csr_matrix
    item_text: np.ndarray | None = None
    event_names: tuple[str, ...] = ("stream",)
    users: pd.DataFrame | None = None
    seed: int = 0

    @staticmethod
    def build(
        catalog: Catalog,
        histories: Histories,
        item_text: np.ndarray | None = None,
        event_names: tuple[str, ...] = ("stream",),
        users: pd.DataFrame | None = None,
        seed: int = 0,
    ) -> TrainSet:
        return TrainSet(
            catalog=catalog,
            histories=histories,
            matrix=histories.to_csr(catalog.n_items, binary=True),
            item_text=item_text,
            event_names=event_names,
            users=users,
            seed=seed,
        )


@dataclass(frozen=True)
class NewItems:
    """Items added to a fitted model's catalogue after training (``hgrec add-items``).

    Attributes:
        catalog: the extended catalogue; rows ``[0, n_before)`` are the fitted catalogue's
            items in their order, the new items follow.
        n_before: size of the catalogue the model was fitted on.
        changed: (m,) int64 rows whose features are new: the appended items and the replaced
            ones (``--replace``: same row, new text and metadata).
        item_text: (n_items, d_text) float32 text embeddings of the extended catalogue, or None.
        hgnn: (n_items, d_hgnn) float32 HGNN embeddings of the extended catalogue, or None.
    """

    catalog: Catalog
    n_before: int
    changed: np.ndarray
    item_text: np.ndarray | None = None
    hgnn: np.ndarray | None = None

    @property
    def n_items(self) -> int:
        return self.catalog.n_items


class Recommender(ABC):
    """Base class: ``fit``, ``score``, ``recommend``, ``save``, ``load``.

    Subclasses set ``name``, implement :meth:`fit`, :meth:`score`, :meth:`get_state` and
    :meth:`set_state`, and take their hyper-parameters as keyword arguments of ``__init__``
    (returned by :meth:`get_params`, so a saved model is rebuilt with the same ones).
    """

    name: ClassVar[str] = "base"
    #: Whether the model scores an item that had no training interaction from what it knows
    #: of the item itself (text, graph position): True for the text / HGNN / two-tower
    #: models. False: such an item gets no meaningful score, and the new-item protocol
    #: ranks it last (:mod:`hgrec.evaluation.new_items`).
    scores_unseen_items: ClassVar[bool] = False
    #: Whether :meth:`with_new_items` embeds items added to the catalogue after training
    #: (``hgrec add-items``), or only keeps serving the fitted ones (the default wrapper: new
    #: items are never recommended). HGNN-w-users scores unseen catalogue items but cannot
    #: take new ones.
    embeds_new_items: ClassVar[bool] = False

    @abstractmethod
    def fit(self, train: TrainSet) -> Recommender:
        """Fit on the training users; returns self."""

    @abstractmethod
    def score(self, histories: Histories, candidates: np.ndarray) -> np.ndarray:
        """Scores of ``candidates`` for each history.

        Args:
            histories: n users' raw histories (item indices, chronological).
            candidates: (c,) int64 item indices.

        Returns:
            (n, c) float32 scores; higher is better.
        """

    @abstractmethod
    def get_params(self) -> dict[str, Any]:
        """Constructor keyword arguments (JSON-serialisable)."""

    @abstractmethod
    def get_state(self) -> dict[str, np.ndarray]:
        """Fitted arrays, saved with ``np.savez``."""

    @abstractmethod
    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`get_state` returned."""

    # ------------------------------------------------------------------ new items
    def with_new_items(self, new: NewItems) -> Recommender:
        """This model over the extended catalogue ``new.catalog`` (``hgrec add-items``).

        Inductive models (``embeds_new_items``) override. The others learned one parameter
        per item from interactions (popularity, ItemKNN, ALS, EASE, HGNN-w-users) and are
        served wrapped instead: :class:`hgrec.models.known_items.KnownItemsOnly` accepts the
        larger catalogue, ignores new items in histories and scores them -inf.

        Raises:
            NotImplementedError: this model cannot embed new items.
        """
        raise NotImplementedError(
            f"{self.name} cannot embed new items (embeds_new_items is False); serve it as "
            f"KnownItemsOnly(model, n_known={new.n_before}, n_items={new.n_items})"
        )

    # ------------------------------------------------------------------ shared machinery
    def recommend(
        self,
        histories: Histories,
        candidates: np.ndarray,
        k: int,
        exclude: Histories | None = None,
        batch_size: int = 1024,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k of ``candidates`` for each history.

        Args:
            histories: n raw histories.
            candidates: (c,) int64 item indices to rank, typically ``catalog.items_of_type(T)``.
            k: list length; ``min(k, c)`` columns are returned.
            exclude: n rows of item indices that must not be returned (None: exclude nothing).
            batch_size: users scored at once (bounds memory at batch_size x c floats).

        Returns:
            ids (n, k') int64 item indices, best first, and scores (n, k') float32. Where a row
            has fewer than k' allowed candidates, the tail is id -1 with score -inf.
        """
        candidates = np.asarray(candidates, dtype=np.int64)
        if exclude is not None and exclude.n_users != histories.n_users:
            raise ValueError(
                f"exclude has {exclude.n_users} rows, histories has {histories.n_users}"
            )
        n, c = histories.n_users, len(candidates)
        k_eff = min(int(k), c)
        if k_eff <= 0 or n == 0:
            return np.zeros((n, max(k_eff, 0)), np.int64), np.zeros((n, max(k_eff, 0)), np.float32)
        # Position of each catalogue item among the candidates (-1 when not a candidate).
        n_items = int(max(candidates.max(), histories.items.max(initial=-1)) + 1)
        if exclude is not None:
            n_items = max(n_items, int(exclude.items.max(initial=-1)) + 1)
        pos = np.full(n_items, -1, dtype=np.int64)
        pos[candidates] = np.arange(c)
        out_ids = np.empty((n, k_eff), dtype=np.int64)
        out_scores = np.empty((n, k_eff), dtype=np.float32)
        for start in range(0, n, batch_size):
            rows = np.arange(start, min(start + batch_size, n))
            batch = histories.take(rows)
            s = np.asarray(self.score(batch, candidates), dtype=np.float32)
            if s.shape != (len(rows), c):
                raise RuntimeError(f"{self.name}.score returned {s.shape}, expected {(len(rows), c)}")
            s = s.copy()
            s[~np.isfinite(s)] = -np.inf
            if exclude is not None:
                ex = exclude.take(rows)
                p = pos[ex.items]
                keep = p >= 0
                s[ex.row_ids()[keep], p[keep]] = -np.inf
            top = torch.topk(torch.from_numpy(s), k_eff, dim=1, sorted=True)
            vals, idx = top.values.numpy(), top.indices.numpy()
            ids = candidates[idx]
            ids[~np.isfinite(vals)] = -1
            out_ids[rows], out_scores[rows] = ids, vals
        return out_ids, out_scores

    def save(self, path: str | Path) -> None:
        """Write ``params.json`` and ``state.npz`` under directory ``path``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / PARAMS).write_text(
            json.dumps({"name": self.name, "params": self.get_params()}, indent=2)
        )
        np.savez(path / STATE, **self.get_state())

    @classmethod
    def load(cls, path: str | Path) -> Recommender:
        """Rebuild a model saved by :meth:`save`."""
        path = Path(path)
        meta = json.loads((path / PARAMS).read_text())
        if meta["name"] != cls.name:
            raise ValueError(f"{path} holds a {meta['name']!r} model, not {cls.name!r}")
        model = cls(**meta["params"])
        with np.load(path / STATE, allow_pickle=False) as z:
            model.set_state({k: z[k] for k in z.files})
        return model

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


class VectorRecommender(Recommender):
    """A retriever that scores by dot product of a user vector and an item vector (P1 section
    4.2, P2 Figure 1): 2T, 2T-HGNN and HGNN-KNN.

    Subclasses implement :meth:`user_vectors` (from raw histories, so unseen users need
    nothing else) and :meth:`item_vectors`; :meth:`score` and :meth:`similar_items` follow.
    Serving indexes :meth:`item_vectors` and computes a user vector per request.
    """

    @abstractmethod
    def user_vectors(self, histories: Histories) -> np.ndarray:
        """(n, d) float32 vector of each history."""

    @abstractmethod
    def item_vectors(self) -> np.ndarray:
        """(n_items, d) float32 vector of every catalogue item."""

    def score(self, histories: Histories, candidates: np.ndarray) -> np.ndarray:
        """(n, c) float32 dot products user_vector · item_vector[candidates]."""
        candidates = np.asarray(candidates, dtype=np.int64)
        items = self.item_vectors()
        if len(candidates) and (candidates.min() < 0 or candidates.max() >= len(items)):
            raise ValueError(f"candidates must be item indices in [0, {len(items)})")
        return (self.user_vectors(histories) @ items[candidates].T).astype(np.float32)

    def similar_items(
        self, item: int, k: int, pool: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` items of ``pool`` (default: every item) nearest to ``item`` by dot
        product of item vectors, ``item`` itself left out.

        Returns:
            (k',) int64 item indices, best first (ties by index), and (k',) float32 scores;
            k' = min(k, |pool| without ``item``).
        """
        return nearest_items(self.item_vectors(), item, k, pool)


def nearest_items(
    vectors: np.ndarray, item: int, k: int, pool: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """:meth:`VectorRecommender.similar_items` over (n_items, d) ``vectors``."""
    n = vectors.shape[0]
    if not 0 <= item < n:
        raise IndexError(f"item {item} outside [0, {n})")
    pool = np.arange(n, dtype=np.int64) if pool is None else np.asarray(pool, dtype=np.int64)
    pool = pool[pool != item]
    s = vectors[pool] @ vectors[item]  # (|pool|,)
    k = min(int(k), len(pool))
    top = np.argpartition(-s, k - 1)[:k] if k > 0 else np.zeros(0, np.int64)
    top = top[np.lexsort((pool[top], -s[top]))]  # best first, ties by index
    return pool[top], s[top].astype(np.float32)
