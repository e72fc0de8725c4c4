"""Grid search of a model's hyper-parameters on validation users only.

Each combination of the grid is fitted on the training set and evaluated on the valid queries
of every protocol; the best has the highest mean HR@k over protocols, ties broken by the mean
MRR@k, then by grid order. Test queries are refused, so no choice ever sees a test user.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from hgrec.config import EvalConfig
from hgrec.data.dataset import Catalog
from hgrec.evaluation.evaluate import evaluate
from hgrec.evaluation.protocols import Queries
from hgrec.models.base import Recommender, TrainSet


@dataclass
class TuneResult:
    """Outcome of :func:`tune`.

    Attributes:
        best_params: the chosen grid combination.
        best_model: the model fitted with it.
        trials: one dict per combination, in grid order: {"params", "metrics": {protocol:
            metrics}, "hr", "mrr", "fit_seconds"}.
    """

    best_params: dict[str, Any]
    best_model: Recommender
    trials: list[dict[str, Any]] = field(default_factory=list)


def _mean(values: list[float | None]) -> float:
    """Mean with None (undefined) counted as 0, so a model that cannot serve a protocol loses."""
    return float(np.mean([0.0 if v is None else v for v in values])) if values else 0.0


def valid_score(
    model: Recommender,
    valid: Mapping[str, Queries],
    catalog: Catalog,
    popularity: np.ndarray,
    cfg: EvalConfig,
) -> tuple[float, float, dict[str, dict[str, Any]]]:
    """The selection signal of every choice made on valid users (tuning, early stopping):
    mean HR@k and mean MRR@k over the protocols of ``valid``, and the per-protocol metrics."""
    results = {  # point values only: a selection signal needs no bootstrap interval
        p: evaluate(model, q, catalog, popularity, cfg, progress=False, intervals=False)
        for p, q in valid.items()
    }
    hr = _mean([r[f"hr@{cfg.hr_k}"] for r in results.values()])
    mrr = _mean([r[f"mrr@{cfg.mrr_k}"] for r in results.values()])
    return hr, mrr, results


def tune(
    factory: Callable[[dict[str, Any]], Recommender],
    grid: Mapping[str, list[Any]],
    train: TrainSet,
    valid: Mapping[str, Queries],
    catalog: Catalog,
    popularity: np.ndarray,
    cfg: EvalConfig | None = None,
    progress: bool = True,
) -> TuneResult:
    """Fit every combination of ``grid`` and keep the best on the valid queries.

    Args:
        factory: params -> unfitted model.
        grid: parameter name -> candidate values (every combination is tried,
            ``itertools.product`` in the grid's key order).
        train: what each model is fitted on.
        valid: protocol -> valid-split queries.
        catalog, popularity, cfg: as for :func:`hgrec.evaluation.evaluate.evaluate`.

    Raises:
        ValueError: a query set is not of the valid split, no query set is given, or a grid
            entry lists no value.
    """
    cfg = EvalConfig() if cfg is None else cfg
    if not valid:
        raise ValueError("tune needs at least one valid query set")
    for protocol, q in valid.items():
        if q.split != "valid":
            raise ValueError(
                f"tune got {q.split!r} queries for protocol {protocol!r}; hyper-parameters are "
                "chosen on the 'valid' split only"
            )
    empty = [k for k, v in grid.items() if len(v) == 0]
    if empty:
        raise ValueError(f"grid entries with no candidate value: {empty}")
    names = list(grid)
    combos = [dict(zip(names, values, strict=True)) for values in itertools.product(*grid.values())]
    trials: list[dict[str, Any]] = []
    best: tuple[float, float] | None = None
    best_params: dict[str, Any] = {}
    best_model: Recommender | None = None
    for params in tqdm(combos, desc="tune", disable=not progress):  # loop over combinations
        t0 = time.perf_counter()
        model = factory(dict(params)).fit(train)
        fit_s = time.perf_counter() - t0
        hr, mrr, results = valid_score(model, valid, catalog, popularity, cfg)
        trials.append(
            {"params": dict(params), "metrics": results, "hr": hr, "mrr": mrr, "fit_seconds": fit_s}
        )
        if best is None or (hr, mrr) > best:  # strict: the first of equal trials is kept
            best, best_params, best_model = (hr, mrr), dict(params), model
    assert best_model is not None  # combos is never empty: product() of no lists yields ()
    return TuneResult(best_params=best_params, best_model=best_model, trials=trials)
