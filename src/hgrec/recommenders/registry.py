"""The baselines by name, their hyper-parameter grids (tuned on the valid users), and
:func:`load_model`, which rebuilds any saved model from its folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hgrec.config import BaselinesConfig
from hgrec.models.als import ALS
from hgrec.models.base import Recommender
from hgrec.models.ease import EASE
from hgrec.models.hgnn_knn import HGNNKNN
from hgrec.models.itemknn import ItemKNN
from hgrec.models.known_items import KnownItemsOnly
from hgrec.models.llm_knn import LLMKNN
from hgrec.models.popularity import Popularity
from hgrec.recommenders.hgnn_w_users import HGNNWithUsers
from hgrec.recommenders.two_tower import TwoTowerRecommender
from hgrec.utils.layout import PARAMS

BASELINES: dict[str, type[Recommender]] = {
    "popularity": Popularity,
    "itemknn": ItemKNN,
    "als": ALS,
    "ease": EASE,
    "llm-knn": LLMKNN,
}


def baseline_grid(name: str, cfg: BaselinesConfig) -> dict[str, list[Any]]:
    """Grid of ``__init__`` keyword arguments for baseline ``name``: keyword -> values.

    The cartesian product of the lists is the set of models to fit; a one-point grid (every
    list of length 1, or no keyword at all) means there is nothing to tune.

    Examples:
        >>> baseline_grid("ease", BaselinesConfig())
        {'lam': [50.0, 100.0, 250.0], 'max_items': [10000]}
    """
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; known: {sorted(BASELINES)}")
    section = {"itemknn": cfg.itemknn, "als": cfg.als, "ease": cfg.ease}.get(name)
    return {} if section is None else section.grid()  # popularity, llm-knn: nothing to tune


def load_model(path: str | Path) -> Recommender:
    """Rebuild any saved model (baseline, "hgnn-knn", "2t", "2t-hgnn") from its folder.

    Reads ``params.json``'s ``name`` and dispatches to that class's ``load``.
    """
    path = Path(path)
    meta_file = path / PARAMS
    if not meta_file.exists():
        raise FileNotFoundError(f"{meta_file} does not exist; expected a model saved with .save()")
    name = json.loads(meta_file.read_text()).get("name")
    classes = model_classes()
    if name not in classes:
        raise ValueError(f"{meta_file}: unknown model name {name!r}; known: {sorted(classes)}")
    if name == KnownItemsOnly.name:
        return KnownItemsOnly.load(path, load_inner=load_model)
    return classes[name].load(path)


def model_classes() -> dict[str, type[Recommender]]:
    """Saved model name (``params.json``'s ``name``) -> class, every model included."""
    return {
        **BASELINES, HGNNKNN.name: HGNNKNN, HGNNWithUsers.name: HGNNWithUsers,
        "2t": TwoTowerRecommender,
        "2t-hgnn": TwoTowerRecommender,
        KnownItemsOnly.name: KnownItemsOnly,
    }
