"""tune(): every grid combination is tried, the best on valid users wins, test is refused."""

from __future__ import annotations

import numpy as np
import pytest

from hgrec.config import EvalConfig
from hgrec.data.dataset import Dataset
from hgrec.evaluation.protocols import build_queries
from hgrec.evaluation.tuning import tune
from hgrec.models.base import TrainSet
from tests.evaluation.helpers import FixedScores


def _setup(ds: Dataset):
    train = TrainSet.build(ds.catalog, ds.histories(ds.users_in("train")))
    valid = {p: build_queries(ds, "valid", p) for p in ("cold", "warm")}
    return train, valid


def _factory(ds: Dataset):
    """'good' scores food by training popularity; 'bad' by its reverse; 'flat' ties everything."""
    pop = ds.item_popularity().astype(np.float32)

    def make(params: dict) -> FixedScores:
        sign = {"good": 1.0, "bad": -1.0, "flat": 0.0}[params["kind"]]
        return FixedScores((sign * pop + params["offset"]).tolist())

    return make


def test_picks_the_best_and_records_every_trial(tiny_dataset: Dataset) -> None:
    ds = tiny_dataset
    train, valid = _setup(ds)
    grid = {"kind": ["bad", "good", "flat"], "offset": [0.0, 1.0]}
    res = tune(_factory(ds), grid, train, valid, ds.catalog, ds.item_popularity(), EvalConfig(),
               progress=False)
    assert len(res.trials) == 6
    assert [t["params"] for t in res.trials][:2] == [{"kind": "bad", "offset": 0.0},
                                                     {"kind": "bad", "offset": 1.0}]
    best = max(res.trials, key=lambda t: (t["hr"], t["mrr"]))
    assert (best["hr"], best["mrr"]) == max((t["hr"], t["mrr"]) for t in res.trials)
    # Offsets do not change a ranking, so the first of two equal trials is kept.
    assert res.best_params["offset"] == 0.0
    assert res.best_model.fitted
    assert res.best_params["kind"] == best["params"]["kind"]
    for t in res.trials:
        assert set(t["metrics"]) == {"cold", "warm"}
        hr = np.mean([t["metrics"][p]["hr@10"] for p in ("cold", "warm")])
        assert t["hr"] == pytest.approx(hr)
    good = [t for t in res.trials if t["params"]["kind"] == "good"][0]
    bad = [t for t in res.trials if t["params"]["kind"] == "bad"][0]
    assert good["hr"] >= bad["hr"]


def test_refuses_test_queries(tiny_dataset: Dataset) -> None:
    ds = tiny_dataset
    train, valid = _setup(ds)
    valid["warm"] = build_queries(ds, "test", "warm")
    with pytest.raises(ValueError, match="'valid' split only"):
        tune(_factory(ds), {"kind": ["good"], "offset": [0.0]}, train, valid, ds.catalog,
             ds.item_popularity(), progress=False)


@pytest.mark.parametrize("grid, match", [({"kind": []}, "no candidate value")])
def test_bad_grid(tiny_dataset: Dataset, grid: dict, match: str) -> None:
    train, valid = _setup(tiny_dataset)
    with pytest.raises(ValueError, match=match):
        tune(_factory(tiny_dataset), grid, train, valid, tiny_dataset.catalog,
             tiny_dataset.item_popularity(), progress=False)
