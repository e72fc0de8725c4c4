"""The two towers of P1 section 4.2 as networks: :class:`Tower` and the pair :class:`TwoTowers`.

Each tower concatenates dense inputs (text / HGNN embeddings, numeric features), categorical
embeddings and, optionally, learned item-id embeddings, then runs an MLP (P1: 512, 256, 128)
whose output is optionally L2-normalised. :class:`TwoTowers` builds both towers from the
featurisers that feed them; the recommender that trains and serves them is
:class:`hgrec.recommenders.two_tower.TwoTowerRecommender`, the trainer
:func:`hgrec.training.two_tower.train_two_tower`.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from hgrec.features.item import ItemFeatures
from hgrec.features.user import UserFeaturizer, UserInputs


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


class TwoTowers(nn.Module):
    """The user tower and the item tower, with the featurisers that build their inputs.

    Parameter init is drawn on the CPU from ``seed`` (the same weights on every device),
    without touching the caller's global RNG state; the towers are then moved to ``device``.
    With ``id_shared`` the id table lives in the item tower only (the user tower reads it), so
    an optimizer over both towers' parameters sees it once.

    Args:
        items: item features (row i = item i); ``items.id_code`` is needed when ``id_dim`` > 0.
        users: the user featuriser (history + demographics -> user-tower inputs).
        layers, cat_dim, normalize: :class:`Tower` arguments, the same for both towers.
        id_dim: width of the id embeddings (0: none).
        id_shared: one id table for both towers.
        seed: drives parameter init.
        device: where the towers live.
    """

    def __init__(
        self,
        items: ItemFeatures,
        users: UserFeaturizer,
        layers: Sequence[int],
        cat_dim: int,
        normalize: bool,
        id_dim: int,
        id_shared: bool,
        seed: int,
        device: torch.device,
    ) -> None:
        super().__init__()
        if id_dim and items.id_code is None:
            raise ValueError(f"id_dim={id_dim} needs item id codes (ItemFeatures.id_code)")
        self.item_features, self.user_featurizer = items, users
        n_ids = items.n_ids if id_dim else 0
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.item_tower = Tower(
                items.dense_dim, list(items.cardinalities().values()), cat_dim,
                layers, normalize, id_dim=id_dim, id_slots=1, n_ids=n_ids,
            )
            self.user_tower = Tower(
                users.dense_dim, list(users.cardinalities().values()), cat_dim,
                layers, normalize, id_dim=id_dim, id_slots=items.n_types,
                n_ids=0 if id_shared else n_ids,
                shared_ids=self.item_tower.id_table if id_shared else None,
            )
        # Module.to moves parameters in place, so the user tower's reference to a shared
        # table follows it (the table is moved once, with the item tower).
        self.to(device)

    @property
    def device(self) -> torch.device:
        return next(self.item_tower.parameters()).device

    def embed_users(self, inputs: UserInputs) -> torch.Tensor:
        """(n, out_dim) user-tower outputs of precomputed (CPU) inputs, on the towers' device
        (with autograd)."""
        return self.user_tower(*to_device(inputs.tower_args(), self.device))

    def embed_items(self, items: torch.Tensor) -> torch.Tensor:
        """(m, out_dim) item-tower outputs of CPU item indices ``items`` (m,), on the towers'
        device (with autograd)."""
        return self.item_tower(*to_device(self.item_features.tower_inputs(items), self.device))

    def state_copies(self) -> dict[str, dict[str, torch.Tensor]]:
        """Deep copies of both towers' weights (the best state kept by early stopping)."""
        return {
            "user": copy.deepcopy(self.user_tower.state_dict()),
            "item": copy.deepcopy(self.item_tower.state_dict()),
        }

    def load_state_copies(self, states: dict[str, dict[str, torch.Tensor]]) -> None:
        """Restore weights saved by :meth:`state_copies`."""
        self.user_tower.load_state_dict(states["user"])
        self.item_tower.load_state_dict(states["item"])
