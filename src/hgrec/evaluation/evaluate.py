"""Run a fitted :class:`~hgrec.models.base.Recommender` on evaluation queries and score it.

Every model is asked the same question through the shared contract: rank the whole target-type
catalogue for each query history, with the query's exclusions, and return the top
max(hr_k, mrr_k). The metrics (P1 Appendix A) come from :mod:`hgrec.evaluation.metrics`.

Spread: HR@k and MRR@k carry a 95% percentile bootstrap interval over users ("hr@k_ci",
"mrr@k_ci"; :func:`hgrec.evaluation.metrics.bootstrap_ci`, B = 1000, seed 0). Within one
(protocol, split), :func:`evaluate_all` also compares each model's HR@k with the best other
model's on the same resampled users ("hr@k_vs_best_other", :func:`paired_vs_best_other`), so
a win (interval excluding 0) reads apart from a tie.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from hgrec.config import EvalConfig
from hgrec.data.dataset import Catalog
from hgrec.data.schema import SPLITS
from hgrec.evaluation.metrics import RetrievalMetrics, bootstrap_ci, tier_lookup
from hgrec.evaluation.protocols import PROTOCOLS, Queries
from hgrec.models.base import Recommender


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (strict JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def evaluate(
    model: Recommender,
    queries: Queries,
    catalog: Catalog,
    popularity: np.ndarray,
    cfg: EvalConfig | None = None,
    progress: bool = True,
    intervals: bool = True,
) -> dict[str, Any]:
    """Metrics of ``model`` on ``queries``.

    Args:
        model: a fitted recommender.
        queries: from :func:`hgrec.evaluation.protocols.build_queries`.
        catalog: the item catalogue; the ranked candidates are ``catalog.items_of_type(T)``.
        popularity: (n_items,) training interaction counts, for the popularity tiers.
        cfg: k's, number of tiers and users per batch.
        progress: show a tqdm bar over batches.
        intervals: add the bootstrap intervals "hr@{hr_k}_ci" and "mrr@{mrr_k}_ci".

    Returns:
        {"hr@{hr_k}", "mrr@{mrr_k}", "recall@{hr_k}", "ndcg@{hr_k}", "coverage@{mrr_k}",
        ["hr@{hr_k}_ci": [lo, hi], "mrr@{mrr_k}_ci": [lo, hi],]
        "tiers": [{"tier", "items", "pairs", "hr@{hr_k}", "mrr@{mrr_k}"}, ...]}; an undefined
        value (no users, or a tier without pairs) is None.
    """
    metrics, _ = _evaluate(model, queries, catalog, popularity, cfg, progress, intervals)
    return json_safe(metrics)


def _evaluate(
    model: Recommender,
    queries: Queries,
    catalog: Catalog,
    popularity: np.ndarray,
    cfg: EvalConfig | None,
    progress: bool,
    intervals: bool,
) -> tuple[dict[str, Any], dict[str, np.ndarray] | None]:
    """:func:`evaluate` before :func:`json_safe` (NaN kept), and the per-user values
    {"hr", "rr"} (query order, users with a relevant item) when ``intervals``, else None."""
    cfg = EvalConfig() if cfg is None else cfg
    popularity = np.asarray(popularity)
    if popularity.shape != (catalog.n_items,):
        raise ValueError(
            f"popularity has shape {popularity.shape}, expected ({catalog.n_items},) "
            "(one count per catalogue item, from Dataset.item_popularity())"
        )
    candidates = catalog.items_of_type(queries.target_type)  # (c,)
    if len(candidates) == 0:
        raise ValueError(f"the catalogue has no item of the target type {queries.target_type!r}")
    tier_of = tier_lookup(candidates, popularity, cfg.n_tiers, catalog.n_items)  # (n_items,)
    acc = RetrievalMetrics(
        hr_k=cfg.hr_k, mrr_k=cfg.mrr_k, catalog_size=len(candidates), tier_of=tier_of,
        n_tiers=cfg.n_tiers, keep_per_user=intervals,
    )
    k = max(cfg.hr_k, cfg.mrr_k)
    n, bs = queries.n_users, cfg.batch_size
    desc = f"eval {model.name} {queries.protocol}/{queries.split}"
    for start in tqdm(range(0, n, bs), desc=desc, disable=not progress, leave=False):
        batch = queries.take(np.arange(start, min(start + bs, n)))
        ids, _ = model.recommend(
            batch.histories, candidates, k, exclude=batch.exclude, batch_size=bs
        )
        acc.update(ids, batch.relevant)
    return acc.compute(), (acc.per_user() if intervals else None)


def paired_vs_best_other(
    per_user: Mapping[str, np.ndarray], points: Mapping[str, float] | None = None
) -> dict[str, dict[str, Any]]:
    """Each model's paired bootstrap difference to the best other model on the same users.

    For model m, the best other o is the model other than m with the highest point value
    (the first in mapping order on ties); for the best model that is the runner-up. The
    difference m - o is resampled as one per-user vector (``per_user[m] - per_user[o]``) with
    :func:`~hgrec.evaluation.metrics.bootstrap_ci`, so both models see the same resampled users
    (paired). An interval excluding 0 is a significant difference; one holding 0 is a tie.

    Args:
        per_user: name -> (n,) per-user values (e.g. HR@k hits), the same n users for all.
        points: name -> point value (defaults to the per-user means); ``diff`` is
            ``points[m] - points[o]``, so it matches the reported values exactly.

    Returns:
        name -> {"other": o, "diff": d, "ci": [lo, hi]}; empty with fewer than two models or
        no user.
    """
    names = list(per_user)
    vectors = {n: np.asarray(per_user[n], dtype=np.float64) for n in names}
    sizes = {len(v) for v in vectors.values()}
    if len(sizes) > 1:
        raise ValueError(f"per-user vectors differ in length: {sorted(sizes)}")
    if len(names) < 2 or sizes == {0}:
        return {}
    pts = {n: float(vectors[n].mean()) if points is None else float(points[n]) for n in names}
    out: dict[str, dict[str, Any]] = {}
    for name in names:  # loop over models (a handful)
        other = max((o for o in names if o != name), key=lambda o: pts[o])  # first on ties
        lo, hi = bootstrap_ci(vectors[name] - vectors[other])
        out[name] = {"other": other, "diff": pts[name] - pts[other], "ci": [lo, hi]}
    return out


def _ordered_keys(queries: Mapping[tuple[str, str], Queries]) -> list[tuple[str, str]]:
    """(protocol, split) keys in PROTOCOLS x SPLITS order, checked against the queries."""
    for (protocol, split), q in queries.items():
        if (q.protocol, q.split) != (protocol, split):
            raise ValueError(
                f"queries[{(protocol, split)!r}] holds {q.protocol}/{q.split} queries"
            )
    rank = {(p, s): i for i, (p, s) in enumerate((p, s) for p in PROTOCOLS for s in SPLITS)}
    return sorted(queries, key=lambda key: rank.get(key, len(rank)))


def evaluate_all(
    models: Mapping[str, Recommender],
    queries: Mapping[tuple[str, str], Queries],
    catalog: Catalog,
    popularity: np.ndarray,
    cfg: EvalConfig | None = None,
    dataset_name: str = "dataset",
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate every model on every (protocol, split) and build the ``metrics.json`` structure.

    Args:
        models: name -> fitted model; report rows follow this order.
        queries: (protocol, split) -> queries, all of one target type.

    Returns:
        {"dataset", "target_type", "protocols": {protocol: {split: {"users": n,
        "counts": {...}, "models": {name: metrics}}}}}, with metrics as :func:`evaluate`
        returns them plus, with two models or more, "hr@{hr_k}_vs_best_other": {"other",
        "diff", "ci"} (:func:`paired_vs_best_other` on the per-user HR@hr_k).
    """
    cfg = EvalConfig() if cfg is None else cfg
    hr_key = f"hr@{cfg.hr_k}"
    targets = {q.target_type for q in queries.values()}
    if len(targets) != 1:
        raise ValueError(f"queries must share one target type, got {sorted(targets)}")
    out: dict[str, Any] = {
        "dataset": dataset_name,
        "target_type": targets.pop(),
        "protocols": {},
    }
    for protocol, split in _ordered_keys(queries):  # loop over a handful of query sets
        q = queries[(protocol, split)]
        entry = {"users": q.n_users, "counts": dict(q.counts), "models": {}}
        hits: dict[str, np.ndarray] = {}
        for name, model in models.items():
            metrics, per_user = _evaluate(model, q, catalog, popularity, cfg, progress, True)
            entry["models"][name], hits[name] = metrics, per_user["hr"]
        points = {name: m[hr_key] for name, m in entry["models"].items()}
        for name, paired in paired_vs_best_other(hits, points).items():
            entry["models"][name][f"{hr_key}_vs_best_other"] = paired
        out["protocols"].setdefault(protocol, {})[split] = json_safe(entry)
    return out
