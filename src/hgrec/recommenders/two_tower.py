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

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import ValidationError

from hgrec.config import TwoTowerConfig, format_validation_error
from hgrec.data.histories import Histories
from hgrec.features.item import (
    ItemFeatures,
    build_id_codes,
    build_item_features,
    extend_item_features,
)
from hgrec.features.user import UserFeaturizer, UserInputs
from hgrec.models.base import NewItems, TrainSet, VectorRecommender
from hgrec.models.towers import Tower, TwoTowers
from hgrec.training.two_tower import train_two_tower
from hgrec.utils.device import resolve_device
from hgrec.utils.layout import PARAMS


class TwoTowerRecommender(VectorRecommender):
    """Two-tower retriever over every item type (P1 section 4.2, P2 Figure 1).

    Constructing it with ``hgnn`` embeddings gives the 2T-HGNN model (name "2t-hgnn", an
    instance of :class:`TwoTowerHGNNRecommender`); without, the plain "2t" model whose item
    tower reads text and metadata only and whose user tower averages text embeddings.

    Args:
        hgnn: (n_items, d) HGNN embeddings z (P1 equation 3, L2-normalised), or None. Not a
            JSON parameter: it is saved in the model state.
        **params: the hyper-parameters, keys of the ``two_tower`` config section
            (:class:`hgrec.config.TwoTowerConfig`: layers (P1: 512, 256, 128), loss ("logq"
            or "inverse-frequency", P1 equation 5), temperature, negatives, lr, batch_size,
            max_epochs, patience, history window, id embeddings, cold twins, ...); a key
            left out takes the section's default, so each default lives in one place.
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
        progress: bool = True,
        device: str | torch.device = "cpu",
        **params: Any,
    ) -> None:
        self.device = resolve_device(device)  # first: a bad device fails before anything else
        try:  # the defaults live in the config section only
            self.cfg = TwoTowerConfig(**params)
        except ValidationError as e:
            raise ValueError(f"{type(self).__name__}: {format_validation_error(e)}") from None
        self.hgnn = None if hgnn is None else np.asarray(hgnn, dtype=np.float32)
        self.progress = bool(progress)
        self.towers: TwoTowers | None = None
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
        return cls(hgnn, progress=progress, device=device, **_params(cfg))

    @property
    def user_tower(self) -> Tower | None:
        return None if self.towers is None else self.towers.user_tower

    @property
    def item_tower(self) -> Tower | None:
        return None if self.towers is None else self.towers.item_tower

    @property
    def item_features(self) -> ItemFeatures | None:
        return None if self.towers is None else self.towers.item_features

    @property
    def user_featurizer(self) -> UserFeaturizer | None:
        return None if self.towers is None else self.towers.user_featurizer

    def to(self, device: str | torch.device) -> TwoTowerRecommender:
        """Move the towers (if built) to ``device``, where later training and inference run.

        Raises:
            UserError: an unknown device, or CUDA asked for but not available.
        """
        self.device = resolve_device(device)
        if self.towers is not None:
            self.towers.to(self.device)  # in place: a shared id table stays shared
        return self

    # ------------------------------------------------------------------ building
    def _build(self, items: ItemFeatures, users: UserFeaturizer, seed: int) -> None:
        """Create both towers on ``self.device`` (:class:`hgrec.models.towers.TwoTowers`)."""
        c = self.cfg
        self.towers = TwoTowers(items, users, c.layers, c.cat_dim, c.normalize, c.id_dim,
                                c.id_shared, seed, self.device)

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
        if self.name == "2t-hgnn" and self.hgnn is None:
            raise ValueError("the 2t-hgnn model needs HGNN embeddings (hgnn=...)")
        c = self.cfg
        items = build_item_features(train.catalog, train.item_text, self.hgnn, min_count=c.min_count)
        id_report: dict[str, int] = {}
        if c.id_dim:
            # Occurrences among training interactions = the examples' positives and histories.
            counts = np.bincount(train.histories.items, minlength=train.catalog.n_items)
            items = items.with_id_codes(build_id_codes(counts, c.id_min_count))
            id_report = {
                "id_rows": items.n_ids,
                "id_rare_items": int((counts < c.id_min_count).sum()),
                "id_unseen_items": int((counts == 0).sum()),
            }
        demo = train.users if train.users is not None else train.histories.users
        users = UserFeaturizer.fit(
            items, train.event_names, demo, max_history=c.max_history, min_count=c.min_count
        )
        self._build(items, users, train.seed)
        assert self.towers is not None

        def score_now() -> float:  # the trainer's validation callable: the current weights
            self.refresh_item_vectors()
            return float(validate(self))  # type: ignore[misc]

        self.report_ = train_two_tower(
            self.towers, c, train, validate=None if validate is None else score_now,
            seed=train.seed, name=self.name, progress=self.progress,
        )
        self._item_vectors = None
        self.refresh_item_vectors()
        self.report_.update(id_report)  # how many items fell back to the shared rare row
        return self

    # ------------------------------------------------------------------ inference
    def _require_towers(self) -> TwoTowers:
        if self.towers is None:
            raise RuntimeError(f"{self.name} model is not fitted; call fit() or load()")
        return self.towers

    def _require_fitted(self) -> tuple[Tower, Tower, ItemFeatures, UserFeaturizer]:
        t = self._require_towers()
        return t.user_tower, t.item_tower, t.item_features, t.user_featurizer

    def embed_users(self, inputs: UserInputs) -> torch.Tensor:
        """(n, out_dim) user-tower outputs of precomputed (CPU) inputs, on ``self.device``
        (with autograd)."""
        return self._require_towers().embed_users(inputs)

    def embed_items(self, items: torch.Tensor) -> torch.Tensor:
        """(m, out_dim) item-tower outputs of CPU item indices ``items`` (m,), on
        ``self.device`` (with autograd)."""
        return self._require_towers().embed_items(items)

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
        return {**_params(self.cfg), "progress": self.progress}

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
            self.cfg = self.cfg.model_copy(update={"id_dim": 0})  # saved before id embeddings
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
        meta = json.loads((Path(path) / PARAMS).read_text())
        target = TwoTowerHGNNRecommender if meta.get("name") == "2t-hgnn" else TwoTowerRecommender
        model = super(TwoTowerRecommender, target).load(path)  # checks the name; on the CPU
        assert isinstance(model, TwoTowerRecommender)
        return model.to(device)


class TwoTowerHGNNRecommender(TwoTowerRecommender):
    """The 2T-HGNN variant: :class:`TwoTowerRecommender` built with HGNN embeddings."""

    name: ClassVar[str] = "2t-hgnn"


def _params(cfg: TwoTowerConfig) -> dict[str, Any]:
    """The model's hyper-parameters: the ``two_tower`` section without the pipeline switch."""
    return cfg.model_dump(exclude={"enabled"})
