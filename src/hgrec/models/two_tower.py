"""The two-tower retriever: 2T (text + metadata) and 2T-HGNN (plus HGNN embeddings).

P1 section 4.2: a user tower and an item tower, each three fully connected layers of 512,
256 and 128 units, scored by the dot product of their 128-d outputs and trained with
in-batch negatives (equation 5). P2 (Figure 1): one item tower embeds items of every type,
and the HGNN embeddings feed both towers (item: z_i; user: mean of z over the history), so
users and items of all types share one vector space.

Learned item-id embeddings (``id_dim`` > 0; P1: interaction features "represented as lists
of embeddings"): the item tower reads the item's row of an id table, the user tower the mean
id embedding of its history items of each type (an embedding bag per (user, type)). Items
seen fewer than ``id_min_count`` times in training share one "rare" row, which new items also
get, so the model stays inductive. ``id_shared`` lets both towers read one table.

Outputs are L2-normalised by default (``normalize=True``) and the loss divides the cosine by
a temperature (Yi et al. 2019); ``docs/two-tower.md`` records the measurement behind that
choice.

``device`` (the config's ``runtime.device``; "cpu" by default) is where the towers live and
where every training and inference batch is computed; the featurised inputs are built on the
CPU and moved per batch, outputs come back as CPU numpy arrays, and the saved state is CPU
tensors, so a model trained on a GPU loads anywhere (``load(path, device=...)``).

Example:
    >>> model = TwoTowerRecommender(hgnn=z, max_epochs=3)       # name "2t-hgnn"
    >>> model.fit(train, validate=lambda m: hr_at_10(m))
    >>> ids, scores = model.recommend(histories, catalog.items_of_type("food"), k=10)
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hgrec.config import TwoTowerConfig
from hgrec.data.histories import Histories
from hgrec.features.item import (
    ItemFeatures,
    build_id_codes,
    build_item_features,
    extend_item_features,
)
from hgrec.features.user import UserFeaturizer, UserInputs
from hgrec.models.base import NewItems, Recommender, TrainSet
from hgrec.utils.device import resolve_device

LOSSES = ("logq", "inverse-frequency")
NEGATIVES = ("batch", "same-type")
COLD_TWIN_HISTORIES = ("before", "all")


def to_device(tensors: Sequence[torch.Tensor], device: torch.device) -> tuple[torch.Tensor, ...]:
    """``tensors`` on ``device`` (the same objects when already there, e.g. on the CPU)."""
    return tuple(t.to(device) for t in tensors)


class Tower(nn.Module):
    """Categorical and item-id embeddings concatenated to dense inputs, then an MLP.

    ``layers`` (P1: 512, 256, 128) are the widths of the fully connected layers, with ReLU
    between them and none after the last; the output is optionally L2-normalised.

    Id inputs (``id_slots`` > 0) are rows of an (n_ids, id_dim) table: one row per example
    (item tower: ``id_codes`` (n,)) or the mean of the rows of each of ``id_slots`` bags per
    example (user tower: ``id_codes`` (nnz,) with ``id_offsets`` (n * id_slots,), as
    ``nn.EmbeddingBag(mode="mean")``; an empty bag gives zeros).

    Args:
        dense_dim: width of the dense input.
        cardinalities: embedding-table size of each categorical input column.
        cat_dim: width of each categorical embedding.
        layers: fully connected widths; the last one is the output dimension.
        normalize: L2-normalise the output.
        id_dim: width of the id embeddings (0: no id input).
        id_slots: id vectors per example (item tower 1, user tower n_types).
        n_ids: rows of this tower's own id table; 0 = read ``shared_ids``.
        shared_ids: another tower's id table to read (kept out of this tower's parameters
            and state, so an optimizer over both towers sees it once).
    """

    def __init__(
        self,
        dense_dim: int,
        cardinalities: Sequence[int],
        cat_dim: int,
        layers: Sequence[int],
        normalize: bool,
        id_dim: int = 0,
        id_slots: int = 0,
        n_ids: int = 0,
        shared_ids: nn.Embedding | None = None,
    ) -> None:
        super().__init__()
        if not layers:
            raise ValueError("a tower needs at least one layer")
        self.dense_dim = dense_dim
        self.normalize = normalize
        self.id_dim = int(id_dim) if id_slots > 0 else 0
        self.id_slots = int(id_slots) if self.id_dim > 0 else 0
        self.embeddings = nn.ModuleList(nn.Embedding(int(c), cat_dim) for c in cardinalities)
        self.id_table: nn.Embedding | None = None
        if self.id_slots and n_ids > 0:
            self.id_table = nn.Embedding(int(n_ids), self.id_dim)
            # rows of norm ~1, like the L2-normalised text / HGNN inputs beside them
            nn.init.normal_(self.id_table.weight, std=self.id_dim**-0.5)
        # a plain tuple, not a submodule: the owner registers and saves the shared table
        self._shared_ids: tuple[nn.Embedding, ...] = () if shared_ids is None else (shared_ids,)
        if self.id_slots and self.id_table is None and not self._shared_ids:
            raise ValueError("a tower with id inputs needs n_ids > 0 or shared_ids")
        dims = [dense_dim + cat_dim * len(cardinalities) + self.id_dim * self.id_slots, *layers]
        mods: list[nn.Module] = []
        for i in range(len(layers)):
            mods.append(nn.Linear(dims[i], dims[i + 1]))
            if i < len(layers) - 1:
                mods.append(nn.ReLU())
        self.mlp = nn.Sequential(*mods)

    @property
    def out_dim(self) -> int:
        last = self.mlp[-1]
        assert isinstance(last, nn.Linear)
        return int(last.out_features)

    def forward(
        self,
        dense: torch.Tensor,
        categorical: torch.Tensor,
        id_codes: torch.Tensor | None = None,
        id_offsets: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """dense (n, dense_dim) float32, categorical (n, n_cat) int64 -> (n, out_dim).

        With id inputs: ``id_codes`` (n,) int64 (one slot) or (nnz,) with ``id_offsets``
        (n * id_slots,) int64 bag starts.
        """
        embs = [emb(categorical[:, j]) for j, emb in enumerate(self.embeddings)]
        if self.id_slots:
            embs.append(self._id_input(dense.shape[0], id_codes, id_offsets))
        x = torch.cat([dense, *embs], dim=1)  # (n, in_dim)
        out = self.mlp(x)
        return F.normalize(out, dim=1) if self.normalize else out

    def _id_input(
        self,
        n: int,
        codes: torch.Tensor | None,
        offsets: torch.Tensor | None,
    ) -> torch.Tensor:
        """(n, id_slots * id_dim) id embeddings (bag means when ``offsets`` is given)."""
        table = self.id_table if self.id_table is not None else self._shared_ids[0]
        weight = table.weight
        if codes is None:
            raise ValueError(
                "this tower reads item-id embeddings: pass id_codes (UserInputs.tower_args() / "
                "ItemFeatures.tower_inputs() give them); got none"
            )
        if offsets is None:
            if self.id_slots != 1:
                raise ValueError(f"{self.id_slots} id slots need id_offsets (bags)")
            return F.embedding(codes, weight)  # (n, id_dim)
        if offsets.shape[0] != n * self.id_slots:
            raise ValueError(
                f"id_offsets has {offsets.shape[0]} bags; expected n * id_slots = "
                f"{n} * {self.id_slots}"
            )
        if n == 0:
            return weight.new_zeros((0, self.id_slots * self.id_dim))
        bags = F.embedding_bag(codes, weight, offsets, mode="mean")  # (n * id_slots, id_dim)
        return bags.view(n, self.id_slots * self.id_dim)

    def extra_repr(self) -> str:
        return (f"dense_dim={self.dense_dim}, id_dim={self.id_dim}, id_slots={self.id_slots}, "
                f"normalize={self.normalize}")


class TwoTowerRecommender(Recommender):
    """Two-tower retriever over every item type (P1 section 4.2, P2 Figure 1).

    Constructing it with ``hgnn`` embeddings gives the 2T-HGNN model (name "2t-hgnn", an
    instance of :class:`TwoTowerHGNNRecommender`); without, the plain "2t" model whose item
    tower reads text and metadata only and whose user tower averages text embeddings.

    Args:
        hgnn: (n_items, d) HGNN embeddings z (P1 equation 3, L2-normalised), or None. Not a
            JSON parameter: it is saved in the model state.
        layers: tower widths (P1: 512, 256, 128).
        loss: "logq" (in-batch softmax minus log q_j, Yi et al. 2019) or "inverse-frequency"
            (in-batch softmax, examples weighted by 1 / p(item), P1 equation 5).
        temperature: softmax temperature on the dot products.
        negatives: "batch" (every other in-batch item is a negative) or "same-type" (only the
            in-batch items of the positive's item type: P1 equation 5's "in-batch negative
            audiobook samples"; the softmax then ranks within a type, as the evaluation does).
        normalize: L2-normalise both towers' outputs.
        lr: Adam learning rate (P1: 1e-3).
        batch_size: examples per step (P1: 128).
        max_epochs: epochs at most (P1: 10).
        patience: epochs without validation improvement before stopping.
        max_history: a history's last ``max_history`` items feed the user tower.
        cat_dim: width of every categorical embedding.
        min_count: categorical values rarer than this share the unseen code 0.
        id_dim: width of the learned item-id embeddings (0: none, towers read features only).
        id_min_count: items seen fewer times among the training interactions share the
            "rare" id row (as do items unseen in training).
        id_shared: both towers read one id table (else each tower has its own).
        cold_twins: add cold twins, examples whose history holds no item of the positive's
            type (``hgrec.training.two_tower.cold_twin_examples``).
        cold_twin_history: "before": a twin of every example whose history holds items of
            the positive's type and of other types, keeping the other-type entries before
            the positive; "all" (the config default): a twin of every example of a user with
            other-type entries, holding all of them, as a cold query does.
        max_steps_per_epoch: cap on steps per epoch (each epoch draws a fresh permutation), or
            None for full passes; bounds the training time on large data.
        balance_types: each epoch draws, for every item type, as many examples whose positive
            is of that type as the rarest type has (a fresh draw per epoch), so every type
            supervises equally (the HGNN's balanced sampler, applied to the 2T's examples).
        id_dropout: probability that a training example's positive item is shown to the
            item tower with the shared rare id row instead of its own (per example and
            epoch), so the tower learns to place items it has no id for (new items) from
            their features; 0 = off.
        progress: show tqdm progress bars.
        device: where the towers train and run ("cpu", "cuda", "cuda:N"; the config's
            ``runtime.device``). Resolved here, so CUDA asked for on a machine without it is
            a :class:`~hgrec.errors.UserError` before any training. Not a hyper-parameter:
            not in :meth:`get_params` (a saved model loads on the CPU unless ``load`` is
            given a device).
    """

    name: ClassVar[str] = "2t"
    scores_unseen_items: ClassVar[bool] = True  # from the item's text (and edges)
    embeds_new_items: ClassVar[bool] = True  # with_new_items below

    def __new__(cls, hgnn: np.ndarray | None = None, **kwargs: Any) -> TwoTowerRecommender:
        # Like pathlib.Path: the constructor picks the variant, so `name` stays a class fact.
        if cls is TwoTowerRecommender and hgnn is not None:
            cls = TwoTowerHGNNRecommender
        return super().__new__(cls)

    def __init__(
        self,
        hgnn: np.ndarray | None = None,
        *,
        layers: Sequence[int] = (512, 256, 128),
        loss: str = "logq",
        temperature: float = 0.05,
        negatives: str = "batch",
        normalize: bool = True,
        lr: float = 1e-3,
        batch_size: int = 1024,
        max_epochs: int = 3,
        patience: int = 2,
        max_history: int = 100,
        cat_dim: int = 16,
        min_count: int = 1,
        id_dim: int = 0,
        id_min_count: int = 2,
        id_shared: bool = False,
        max_steps_per_epoch: int | None = None,
        cold_twins: bool = False,
        cold_twin_history: str = "before",
        balance_types: bool = False,
        id_dropout: float = 0.0,
        progress: bool = True,
        device: str | torch.device = "cpu",
    ) -> None:
        self.device = resolve_device(device)  # first: a bad device fails before anything else
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        for arg, value in (("batch_size", batch_size), ("max_epochs", max_epochs),
                           ("patience", patience), ("max_history", max_history),
                           ("cat_dim", cat_dim), ("min_count", min_count),
                           ("id_min_count", id_min_count)):
            if int(value) < 1:
                raise ValueError(f"{arg} must be >= 1, got {value}")
        if int(id_dim) < 0:
            raise ValueError(f"id_dim must be >= 0 (0 = no id embeddings), got {id_dim}")
        if negatives not in NEGATIVES:
            raise ValueError(f"negatives must be one of {NEGATIVES}, got {negatives!r}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not layers or any(int(w) < 1 for w in layers):
            raise ValueError(f"layers must be positive widths, got {list(layers)}")
        if max_steps_per_epoch is not None and max_steps_per_epoch < 1:
            raise ValueError(f"max_steps_per_epoch must be >= 1 or None, got {max_steps_per_epoch}")
        self.hgnn = None if hgnn is None else np.asarray(hgnn, dtype=np.float32)
        self.layers = [int(w) for w in layers]
        self.loss = loss
        self.temperature = float(temperature)
        self.negatives = negatives
        self.normalize = bool(normalize)
        self.lr = float(lr)
        self.batch_size = int(batch_size)
        self.max_epochs = int(max_epochs)
        self.patience = int(patience)
        self.max_history = int(max_history)
        self.cat_dim = int(cat_dim)
        self.min_count = int(min_count)
        self.id_dim = int(id_dim)
        self.id_min_count = int(id_min_count)
        self.id_shared = bool(id_shared)
        self.max_steps_per_epoch = max_steps_per_epoch
        self.cold_twins = bool(cold_twins)
        if cold_twin_history not in COLD_TWIN_HISTORIES:
            raise ValueError(
                f"cold_twin_history must be one of {COLD_TWIN_HISTORIES}, got {cold_twin_history!r}"
            )
        self.cold_twin_history = cold_twin_history
        self.balance_types = bool(balance_types)
        if not 0.0 <= float(id_dropout) < 1.0:
            raise ValueError(f"id_dropout must be in [0, 1), got {id_dropout}")
        self.id_dropout = float(id_dropout)
        self.progress = bool(progress)
        self.item_features: ItemFeatures | None = None
        self.user_featurizer: UserFeaturizer | None = None
        self.user_tower: Tower | None = None
        self.item_tower: Tower | None = None
        self._item_vectors: np.ndarray | None = None
        self.report_: dict[str, Any] = {}

    @classmethod
    def from_config(
        cls,
        cfg: TwoTowerConfig,
        hgnn: np.ndarray | None = None,
        progress: bool = True,
        device: str | torch.device = "cpu",
    ) -> TwoTowerRecommender:
        """Build from the ``two_tower`` config section (``hgnn`` None: the plain 2T) to run
        on ``device`` (the ``runtime.device`` setting)."""
        return cls(
            hgnn,
            layers=cfg.layers,
            loss=cfg.loss,
            temperature=cfg.temperature,
            negatives=cfg.negatives,
            normalize=cfg.normalize,
            lr=cfg.lr,
            batch_size=cfg.batch_size,
            max_epochs=cfg.max_epochs,
            patience=cfg.patience,
            max_history=cfg.max_history,
            cat_dim=cfg.cat_dim,
            min_count=cfg.min_count,
            id_dim=cfg.id_dim,
            id_min_count=cfg.id_min_count,
            id_shared=cfg.id_shared,
            max_steps_per_epoch=cfg.max_steps_per_epoch,
            cold_twins=cfg.cold_twins,
            cold_twin_history=cfg.cold_twin_history,
            balance_types=cfg.balance_types,
            id_dropout=cfg.id_dropout,
            progress=progress,
            device=device,
        )

    def to(self, device: str | torch.device) -> TwoTowerRecommender:
        """Move the towers (if built) to ``device``, where later training and inference run.

        Raises:
            UserError: an unknown device, or CUDA asked for but not available.
        """
        self.device = resolve_device(device)
        for tower in (self.user_tower, self.item_tower):
            if tower is not None:
                tower.to(self.device)  # in place: a shared id table stays shared
        return self

    # ------------------------------------------------------------------ building
    def _build(self, items: ItemFeatures, users: UserFeaturizer, seed: int) -> None:
        """Create both towers on ``self.device``; parameter init is drawn on the CPU from
        ``seed`` (the same weights on every device) without touching the global RNG state of
        the caller."""
        if self.id_dim and items.id_code is None:
            raise ValueError(f"id_dim={self.id_dim} needs item id codes (ItemFeatures.id_code)")
        self.item_features, self.user_featurizer = items, users
        n_ids = items.n_ids if self.id_dim else 0
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.item_tower = Tower(
                items.dense_dim, list(items.cardinalities().values()), self.cat_dim,
                self.layers, self.normalize, id_dim=self.id_dim, id_slots=1, n_ids=n_ids,
            )
            # A shared table lives in the item tower only, so the optimizer sees it once.
            self.user_tower = Tower(
                users.dense_dim, list(users.cardinalities().values()), self.cat_dim,
                self.layers, self.normalize, id_dim=self.id_dim, id_slots=items.n_types,
                n_ids=0 if self.id_shared else n_ids,
                shared_ids=self.item_tower.id_table if self.id_shared else None,
            )
        # Module.to moves parameters in place, so the user tower's reference to a shared
        # table follows it (the table is moved once, with the item tower).
        self.item_tower.to(self.device)
        self.user_tower.to(self.device)

    def fit(
        self,
        train: TrainSet,
        validate: Callable[[TwoTowerRecommender], float] | None = None,
    ) -> TwoTowerRecommender:
        """Train both towers on ``train`` (see :func:`hgrec.training.two_tower.train_two_tower`).

        Args:
            train: training users' histories, catalogue, text embeddings and seed.
            validate: called after each epoch with this model (item vectors refreshed);
                returns a score, higher is better (e.g. valid users' HR@10). Early stopping
                with ``patience`` keeps the best weights. None: train ``max_epochs`` epochs.
        """
        from hgrec.training.two_tower import train_two_tower  # training imports this module

        if self.name == "2t-hgnn" and self.hgnn is None:
            raise ValueError("the 2t-hgnn model needs HGNN embeddings (hgnn=...)")
        items = build_item_features(
            train.catalog, train.item_text, self.hgnn, min_count=self.min_count
        )
        id_report: dict[str, int] = {}
        if self.id_dim:
            # Occurrences among training interactions = the examples' positives and histories.
            counts = np.bincount(train.histories.items, minlength=train.catalog.n_items)
            items = items.with_id_codes(build_id_codes(counts, self.id_min_count))
            id_report = {
                "id_rows": items.n_ids,
                "id_rare_items": int((counts < self.id_min_count).sum()),
                "id_unseen_items": int((counts == 0).sum()),
            }
        demo = train.users if train.users is not None else train.histories.users
        users = UserFeaturizer.fit(
            items, train.event_names, demo, max_history=self.max_history, min_count=self.min_count
        )
        self._build(items, users, train.seed)
        self.report_ = train_two_tower(self, train, validate=validate, seed=train.seed)
        self.report_.update(id_report)  # how many items fell back to the shared rare row
        return self

    # ------------------------------------------------------------------ inference
    def _require_fitted(self) -> tuple[Tower, Tower, ItemFeatures, UserFeaturizer]:
        if (
            self.user_tower is None
            or self.item_tower is None
            or self.item_features is None
            or self.user_featurizer is None
        ):
            raise RuntimeError(f"{self.name} model is not fitted; call fit() or load()")
        return self.user_tower, self.item_tower, self.item_features, self.user_featurizer

    def embed_users(self, inputs: UserInputs) -> torch.Tensor:
        """(n, out_dim) user-tower outputs of precomputed (CPU) inputs, on ``self.device``
        (with autograd)."""
        user_tower, _, _, _ = self._require_fitted()
        return user_tower(*to_device(inputs.tower_args(), self.device))

    def embed_items(self, items: torch.Tensor) -> torch.Tensor:
        """(m, out_dim) item-tower outputs of CPU item indices ``items`` (m,), on
        ``self.device`` (with autograd)."""
        _, item_tower, feats, _ = self._require_fitted()
        return item_tower(*to_device(feats.tower_inputs(items), self.device))

    def refresh_item_vectors(self, batch_size: int = 8192) -> None:
        """Recompute the cached (n_items, out_dim) item vectors after the weights changed."""
        _, item_tower, feats, _ = self._require_fitted()
        was_training = item_tower.training
        item_tower.eval()
        out = []
        with torch.no_grad():
            for start in range(0, feats.n_items, batch_size):  # batches, not items
                idx = torch.arange(start, min(start + batch_size, feats.n_items))
                out.append(self.embed_items(idx))
        item_tower.train(was_training)
        self._item_vectors = torch.cat(out).cpu().numpy().astype(np.float32)

    def item_vectors(self) -> np.ndarray:
        """(n_items, out_dim) float32 item-tower outputs of every catalogue item (the index)."""
        self._require_fitted()
        if self._item_vectors is None:
            self.refresh_item_vectors()
        assert self._item_vectors is not None
        return self._item_vectors

    def user_vectors(self, histories: Histories, batch_size: int = 4096) -> np.ndarray:
        """(n, out_dim) float32 user-tower outputs computed from raw histories.

        ``histories.users`` supplies demographics when present; unseen users need nothing
        but their history.
        """
        user_tower, _, _, featurizer = self._require_fitted()
        was_training = user_tower.training
        user_tower.eval()
        out = []
        with torch.no_grad():
            for start in range(0, histories.n_users, batch_size):  # batches of users
                rows = np.arange(start, min(start + batch_size, histories.n_users))
                batch = histories if len(rows) == histories.n_users else histories.take(rows)
                out.append(self.embed_users(featurizer.transform(batch)))
        user_tower.train(was_training)
        if not out:
            return np.zeros((0, user_tower.out_dim), dtype=np.float32)
        return torch.cat(out).cpu().numpy().astype(np.float32)

    def score(self, histories: Histories, candidates: np.ndarray) -> np.ndarray:
        """(n, c) float32 dot products user_vector · item_vector[candidates]."""
        candidates = np.asarray(candidates, dtype=np.int64)
        items = self.item_vectors()
        if len(candidates) and (candidates.min() < 0 or candidates.max() >= len(items)):
            raise ValueError(f"candidates must be item indices in [0, {len(items)})")
        return (self.user_vectors(histories) @ items[candidates].T).astype(np.float32)

    # ------------------------------------------------------------------ new items
    def with_new_items(self, new: NewItems, batch_size: int = 8192) -> TwoTowerRecommender:
        """The same trained towers over the extended catalogue (``hgrec add-items``).

        The item features grow by the rows in ``new.changed`` (text, metadata and, for
        2T-HGNN, the frozen HGNN's embeddings of the new items; the shared rare id row);
        the item tower computes their vectors; every other item keeps its vector, so the
        index of the fitted items is unchanged. The user tower reads histories holding new
        items through the same extended features.
        """
        _, _, feats, _ = self._require_fitted()
        items = extend_item_features(feats, new.catalog, new.changed, new.item_text,
                                     new.hgnn if feats.hgnn is not None else None)
        old = self.item_vectors()  # (n_before, out_dim)
        vectors = np.zeros((new.n_items, old.shape[1]), dtype=np.float32)
        vectors[: len(old)] = old
        state = {k: v for k, v in self.get_state().items() if not k.startswith("item.")}
        state.update(items.to_state("item."))
        state["item_vectors"] = vectors
        hgnn = None if items.hgnn is None else items.hgnn.numpy()
        model = TwoTowerRecommender(hgnn, **self.get_params(), device=self.device)
        model.set_state(state)
        _, item_tower, _, _ = model._require_fitted()
        item_tower.eval()
        changed = np.asarray(new.changed, dtype=np.int64)
        with torch.no_grad():
            for start in range(0, len(changed), batch_size):  # batches of new items
                idx = changed[start : start + batch_size]
                vectors[idx] = model.embed_items(torch.from_numpy(idx)).cpu().numpy()
        model._item_vectors = vectors
        return model

    # ------------------------------------------------------------------ persistence
    def get_params(self) -> dict[str, Any]:
        return {
            "layers": list(self.layers),
            "loss": self.loss,
            "temperature": self.temperature,
            "negatives": self.negatives,
            "normalize": self.normalize,
            "lr": self.lr,
            "batch_size": self.batch_size,
            "max_epochs": self.max_epochs,
            "patience": self.patience,
            "max_history": self.max_history,
            "cat_dim": self.cat_dim,
            "min_count": self.min_count,
            "id_dim": self.id_dim,
            "id_min_count": self.id_min_count,
            "id_shared": self.id_shared,
            "max_steps_per_epoch": self.max_steps_per_epoch,
            "cold_twins": self.cold_twins,
            "cold_twin_history": self.cold_twin_history,
            "balance_types": self.balance_types,
            "id_dropout": self.id_dropout,
            "progress": self.progress,
        }

    def get_state(self) -> dict[str, np.ndarray]:
        """Tower weights, item features, user vocabularies/statistics and item vectors."""
        user_tower, item_tower, feats, featurizer = self._require_fitted()
        state: dict[str, np.ndarray] = {}
        state.update(feats.to_state("item."))
        state.update(featurizer.to_state("user."))
        for prefix, tower in (("user_tower.", user_tower), ("item_tower.", item_tower)):
            for key, tensor in tower.state_dict().items():
                state[prefix + key] = tensor.detach().cpu().numpy()
        state["item_vectors"] = self.item_vectors()
        return state

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        feats = ItemFeatures.from_state(state, "item.")
        featurizer = UserFeaturizer.from_state(state, feats, "user.")
        self.hgnn = None if feats.hgnn is None else feats.hgnn.numpy()
        if feats.id_code is None:
            self.id_dim = 0  # saved before id embeddings existed (params lack id_dim)
        self._build(feats, featurizer, seed=0)
        assert self.user_tower is not None and self.item_tower is not None
        for prefix, tower in (("user_tower.", self.user_tower), ("item_tower.", self.item_tower)):
            tower.load_state_dict(
                {k[len(prefix):]: torch.from_numpy(np.array(v)) for k, v in state.items()
                 if k.startswith(prefix)}
            )
        self._item_vectors = np.asarray(state["item_vectors"], dtype=np.float32)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> TwoTowerRecommender:
        """Rebuild a saved "2t" or "2t-hgnn" model as the variant that was saved, on
        ``device`` (the state is CPU tensors, so any saved model loads on the CPU)."""
        meta = json.loads((Path(path) / "params.json").read_text())
        target = TwoTowerHGNNRecommender if meta.get("name") == "2t-hgnn" else TwoTowerRecommender
        model = super(TwoTowerRecommender, target).load(path)  # checks the name; on the CPU
        assert isinstance(model, TwoTowerRecommender)
        return model.to(device)

    def best_state_dicts(self) -> dict[str, dict[str, torch.Tensor]]:
        """Deep copies of both towers' weights (for early stopping)."""
        user_tower, item_tower, _, _ = self._require_fitted()
        return {
            "user": copy.deepcopy(user_tower.state_dict()),
            "item": copy.deepcopy(item_tower.state_dict()),
        }

    def load_state_dicts(self, states: dict[str, dict[str, torch.Tensor]]) -> None:
        user_tower, item_tower, _, _ = self._require_fitted()
        user_tower.load_state_dict(states["user"])
        item_tower.load_state_dict(states["item"])
        self._item_vectors = None


class TwoTowerHGNNRecommender(TwoTowerRecommender):
    """The 2T-HGNN variant: :class:`TwoTowerRecommender` built with HGNN embeddings."""

    name: ClassVar[str] = "2t-hgnn"
