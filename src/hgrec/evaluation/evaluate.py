"""Run a fitted :class:`~hgrec.models.base.Recommender` on evaluation queries and score it.

Every model is asked the same question through the shared contract: rank the whole target-type
catalogue for each query history, with the query's exclusions, and return the top
max(hr_k, mrr_k). The metrics (P1 Appendix A) come from :mod:`hgrec.evaluation.metrics`.
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
from hgrec.evaluation.metrics import RetrievalMetrics, tier_lookup
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
) -> dict[str, Any]:
    """Metrics of ``model`` on ``queries``.

    Args:
        model: a fitted recommender.
        queries: from :func:`hgrec.evaluation.protocols.build_queries`.
        catalog: the item catalogue; the ranked candidates are ``catalog.items_of_type(T)``.
        popularity: (n_items,) training interaction counts, for the popularity tiers.
        cfg: k's, number of tiers and users per batch.
        progress: show a tqdm bar over batches.

    Returns:
        {"hr@{hr_k}", "mrr@{mrr_k}", "recall@{hr_k}", "ndcg@{hr_k}", "coverage@{mrr_k}",
        "tiers": [{"tier", "items", "pairs", "hr@{hr_k}", "mrr@{mrr_k}"}, ...]}; an undefined
        value (no users, or a tier without pairs) is None.
    """
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
        n_tiers=cfg.n_tiers,
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
    return json_safe(acc.compute())


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
        returns them.
    """
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
        for name, model in models.items():
            entry["models"][name] = evaluate(model, q, catalog, popularity, cfg, progress)
        out["protocols"].setdefault(protocol, {})[split] = entry
    return out
