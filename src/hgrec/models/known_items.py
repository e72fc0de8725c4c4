"""A fitted model served over a larger catalogue whose new items it cannot score.

Models that learned one parameter per item from interactions (popularity counts, ItemKNN
similarities, ALS factors, EASE weights, HGNN-w-users) know nothing about an item added after
training. ``hgrec add-items`` wraps them in :class:`KnownItemsOnly`: item indices
``[0, n_known)`` are the fitted catalogue and go to the wrapped model unchanged; new indices
``[n_known, n_items)`` are legal, are dropped from histories and score ``-inf``, so
:meth:`Recommender.recommend` never returns them (its tail is id -1 when fewer than k known
candidates are left).

Saved layout: ``params.json`` and an empty ``state.npz`` of the wrapper, and the wrapped
model's own folder under ``inner/``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from hgrec.data.histories import Histories
from hgrec.models.base import NewItems, Recommender, TrainSet
from hgrec.models.inputs import check_candidates, check_histories, require_fitted
from hgrec.utils.layout import PARAMS, STATE

INNER = "inner"


class KnownItemsOnly(Recommender):
    """``inner`` over a catalogue of ``n_items`` items of which it knows the first ``n_known``.

    Args:
        inner: the fitted model (set here or by :meth:`load`).
        n_known: the catalogue size ``inner`` was fitted on.
        n_items: the catalogue size served now (>= n_known).

    Example:
        >>> wrapped = KnownItemsOnly(ease, new.n_before, new.n_items)
        >>> wrapped.score(histories, np.arange(new.n_items))[:, new.n_before:]  # all -inf
    """

    name: ClassVar[str] = "known-items-only"

    def __init__(self, inner: Recommender | None = None, n_known: int = 0, n_items: int = 0) -> None:
        if n_items < n_known or n_known < 0:
            raise ValueError(f"need 0 <= n_known <= n_items, got n_known={n_known}, n_items={n_items}")
        if isinstance(inner, KnownItemsOnly):  # a second add-items: unwrap, keep the first size
            n_known, inner = inner.n_known, inner.inner
        self.inner = inner
        self.n_known = int(n_known)
        self.n_items = int(n_items)

    def fit(self, train: TrainSet) -> KnownItemsOnly:
        raise RuntimeError(
            f"{self.name} wraps a fitted model and is not trained; fit the model itself on the "
            "whole catalogue (hgrec run)"
        )

    def with_new_items(self, new: NewItems) -> Recommender:
        return KnownItemsOnly(self.inner, n_known=self.n_known, n_items=new.n_items)

    def score(self, histories: Histories, candidates: np.ndarray) -> np.ndarray:
        """(n, c) float32: the wrapped model's scores of known candidates, -inf for new ones."""
        require_fitted(self.inner, self.name)
        assert self.inner is not None
        cand = check_candidates(candidates, self.n_items, self.name)
        check_histories(histories, self.n_items, self.name)
        known_hist = histories.mask(histories.items < self.n_known)
        out = np.full((histories.n_users, len(cand)), -np.inf, dtype=np.float32)
        known = cand < self.n_known
        if known.any():
            out[:, known] = self.inner.score(known_hist, cand[known])
        return out

    def get_params(self) -> dict[str, Any]:
        return {"n_known": self.n_known, "n_items": self.n_items}

    def get_state(self) -> dict[str, np.ndarray]:
        return {}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        return None

    def save(self, path: str | Path) -> None:
        """The wrapper's params.json and state.npz, and ``inner`` saved under ``inner/``."""
        require_fitted(self.inner, self.name)
        assert self.inner is not None
        super().save(path)
        self.inner.save(Path(path) / INNER)

    @staticmethod
    def save_around(folder: str | Path, inner_folder: str | Path, n_known: int, n_items: int) -> None:
        """Write a wrapper around an already saved model without loading it: its files are
        hard-linked into ``folder/inner`` (copied across file systems)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = json.loads((Path(inner_folder) / PARAMS).read_text())
        if meta.get("name") == KnownItemsOnly.name:  # a second add-items: keep the first size
            n_known = int(meta["params"]["n_known"])
            inner_folder = Path(inner_folder) / INNER
        link_tree(Path(inner_folder), folder / INNER)
        KnownItemsOnly(None, n_known, n_items)._save_params(folder)

    def _save_params(self, folder: Path) -> None:
        (folder / PARAMS).write_text(
            json.dumps({"name": self.name, "params": self.get_params()}, indent=2)
        )
        np.savez(folder / STATE)

    @classmethod
    def load(
        cls, path: str | Path, load_inner: Callable[[Path], Recommender] | None = None
    ) -> KnownItemsOnly:
        """Rebuild a saved wrapper; ``load_inner`` rebuilds the wrapped model from its folder
        (:func:`hgrec.recommenders.registry.load_model`, which passes itself)."""
        if load_inner is None:
            raise ValueError(
                f"{path}: a {cls.name} model wraps another model; load it with "
                "hgrec.recommenders.registry.load_model"
            )
        model = super().load(path)
        assert isinstance(model, KnownItemsOnly)
        model.inner = load_inner(Path(path) / INNER)
        return model

    def __repr__(self) -> str:
        return f"KnownItemsOnly({self.inner!r}, n_known={self.n_known}, n_items={self.n_items})"


def link_file(src: str | Path, dst: str | Path) -> None:
    """Hard-link ``src`` at ``dst``; a copy when the two are on different file systems."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def link_tree(src: Path, dst: Path) -> None:
    """Recreate folder ``src`` at ``dst`` with hard links to its files (:func:`link_file`);
    ``dst`` must not exist."""
    shutil.copytree(src, dst, copy_function=link_file)
