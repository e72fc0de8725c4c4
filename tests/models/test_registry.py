"""The baseline registry and its hyper-parameter grids."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from hgrec.config import BaselinesConfig
from hgrec.data.dataset import Dataset
from hgrec.models.base import Recommender
from hgrec.recommenders.registry import BASELINES, baseline_grid, load_model
from tests.models.contract import build_train


def test_names_match_models() -> None:
    assert set(BASELINES) == {"popularity", "itemknn", "als", "ease", "llm-knn"}
    for name, cls in BASELINES.items():
        assert issubclass(cls, Recommender) and cls.name == name


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_every_grid_point_builds_a_model(name: str) -> None:
    cfg = BaselinesConfig(itemknn={"neighbors": [5, 7]}, ease={"lambdas": [1.0, 2.0]})
    grid = baseline_grid(name, cfg)
    points = [dict(zip(grid, v)) for v in itertools.product(*grid.values())]
    assert len(points) == int(np.prod([len(v) for v in grid.values()]))
    for params in points:
        model = BASELINES[name](**params)
        assert model.get_params().items() >= params.items()


@pytest.mark.parametrize("name", ["popularity", "llm-knn"])
def test_untuned_baselines_have_one_point(name: str) -> None:
    grid = baseline_grid(name, BaselinesConfig())
    assert len(list(itertools.product(*grid.values()))) == 1


def test_grid_follows_config() -> None:
    cfg = BaselinesConfig(ease={"lambdas": [3.0], "max_items": 123}, itemknn={"neighbors": [9]})
    assert baseline_grid("ease", cfg) == {"lam": [3.0], "max_items": [123]}
    assert baseline_grid("itemknn", cfg) == {"neighbors": [9]}


def test_unknown_name() -> None:
    with pytest.raises(ValueError, match="unknown baseline 'bpr'"):
        baseline_grid("bpr", BaselinesConfig())


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_load_model_dispatches_on_saved_name(
    tiny_dataset: Dataset, name: str, tmp_path: Path
) -> None:
    model = BASELINES[name]().fit(build_train(tiny_dataset))
    model.save(tmp_path / name)
    loaded = load_model(tmp_path / name)
    assert type(loaded) is type(model)
    hist = tiny_dataset.histories(tiny_dataset.users_in("test"))
    cand = tiny_dataset.catalog.items_of_type("food")
    np.testing.assert_array_equal(loaded.score(hist, cand), model.score(hist, cand))


def test_load_model_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="params.json"):
        load_model(tmp_path)
    (tmp_path / "params.json").write_text('{"name": "bpr", "params": {}}')
    with pytest.raises(ValueError, match="unknown model name 'bpr'"):
        load_model(tmp_path)
