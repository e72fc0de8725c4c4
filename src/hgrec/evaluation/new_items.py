"""The new-item protocol: items launched after the last training run (P1 section 4.3, P2).

A deterministic share of the target type's items is held out of everything the models train
on, as if published after training; their text stays (that is all a new item has). Valid and
test users never train, so their logs are untouched and they keep interacting with the new
items; the users whose relevant target items include a new item are asked to rank the *whole*
target catalogue, old and new items together.

Which items are new (:func:`hold_out_items`):
    with timestamps (``Dataset.order_kind == "timestamp"``): the ``share`` of target items
    whose first interaction (any user) is the latest, i.e. the most recently launched ones;
    items never interacted with count as the latest (ties: by a seeded random key);
    otherwise: a uniformly random ``share`` of the target items, drawn with ``seed``.

Training data (:func:`without_items`): every *training* user's interactions with a new item
are removed (their other interactions stay); a training user left with no interaction stays,
with an empty log. So the new items have no edge in the co-interaction graph, no 2T example,
no id-table row (they map to the shared rare row) and no popularity.

Queries (:func:`new_item_queries`): the cold / warm queries of
:func:`hgrec.evaluation.protocols.build_queries`, restricted to the users whose relevant items
include a new item; each query set is reported twice: over all the users' relevant items
("all") and over their new relevant items alone ("new"). WARM has one relevant item, the last
target item, so its users are those whose last target item is new and both views agree.

Metrics (:func:`evaluate_new_items`), per model: HR@hr_k and MRR@mrr_k over all and over new
relevant items (95% bootstrap interval over users on HR), the share of new items in the top
hr_k ("new_share@k", averaged over users) and the coverage of the new items (the share of
them in at least one user's top hr_k, "new_coverage@k"), and HR@hr_k / MRR@mrr_k with the
new items ranked among themselves only ("among_new": how well the model places a new item by
what it knows of it, apart from the popularity of the old items; a random order's HR@hr_k
is "among_new_chance_hr@k"). A model that cannot score an item
it never saw in training (``Recommender.scores_unseen_items`` False: ALS, EASE, ItemKNN,
Popularity) ranks every new item last: it is asked to rank the old items only, so its new-item
figures are 0 by construction and the report says so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from hgrec.config import EvalConfig
from hgrec.data.dataset import Catalog, Dataset
from hgrec.data.schema import SPLIT
from hgrec.evaluation.evaluate import json_safe
from hgrec.evaluation.metrics import RetrievalMetrics, check_topk
from hgrec.evaluation.protocols import Queries, build_queries
from hgrec.evaluation.report import format_interval
from hgrec.models.base import Recommender

#: The protocols whose queries are restricted to users with a new relevant item.
BASE_PROTOCOLS: tuple[str, ...] = ("cold", "warm")


def hold_out_items(
    dataset: Dataset, share: float, seed: int, target_type: str | None = None
) -> np.ndarray:
    """(m,) int64 ascending indices of the held-out ("new") target items.

    ``m = round(share * n_target)``, at least 1 and at most n_target - 1 (some old items stay).
    See the module docstring for which items (latest first interaction, else seeded random).

    Raises:
        ValueError: ``share`` outside (0, 1), or fewer than 2 target items.
    """
    if not 0.0 < share < 1.0:
        raise ValueError(f"eval.new_items_share must be in (0, 1), got {share}")
    target = dataset.target_type if target_type is None else target_type
    items = dataset.catalog.items_of_type(target)  # (n_t,)
    n_t = len(items)
    if n_t < 2:
        raise ValueError(f"the new-item protocol needs 2 or more {target!r} items, got {n_t}")
    m = min(max(int(round(share * n_t)), 1), n_t - 1)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x11E7]))
    tie = rng.random(n_t)  # (n_t,) seeded random key
    if dataset.order_kind == "timestamp":
        inter = dataset.interactions
        first = np.full(dataset.catalog.n_items, np.inf)
        np.minimum.at(first, inter["item"].to_numpy(), inter["order"].to_numpy(dtype=np.float64))
        by = np.lexsort((tie, -first[items]))  # latest first interaction first, then random
    else:
        by = np.argsort(tie, kind="stable")
    return np.sort(items[by[:m]]).astype(np.int64)


def without_items(dataset: Dataset, items: np.ndarray) -> tuple[Dataset, dict[str, int]]:
    """``dataset`` without the training users' interactions with ``items`` (valid / test
    users keep theirs: they are query-time histories).

    Returns:
        (the reduced Dataset, counts {"new_items", "train_interactions_removed",
        "train_users_touched", "train_users_left_empty"}).
    """
    inter = dataset.interactions
    is_new = np.zeros(dataset.catalog.n_items, dtype=bool)
    is_new[np.asarray(items, dtype=np.int64)] = True
    train_user = dataset.users[SPLIT].to_numpy() == "train"  # (n_users,)
    user = inter["user"].to_numpy()
    drop = is_new[inter["item"].to_numpy()] & train_user[user]  # (n_interactions,)
    kept = inter.loc[~drop].reset_index(drop=True)
    before = np.bincount(user[train_user[user]], minlength=dataset.n_users)
    after = np.bincount(kept["user"].to_numpy(), minlength=dataset.n_users)
    touched = train_user & (after < before)
    counts = {
        "new_items": int(is_new.sum()),
        "train_interactions_removed": int(drop.sum()),
        "train_users_touched": int(touched.sum()),
        "train_users_left_empty": int((touched & (after == 0)).sum()),
    }
    return replace(dataset, interactions=kept), counts


@dataclass(frozen=True)
class NewItemQueries:
    """One (protocol, split)'s new-item queries: the same users seen two ways.

    Attributes:
        all: the queries with every relevant target item of those users.
        new: the same rows with only the new relevant items.
    """

    all: Queries
    new: Queries


def new_item_queries(
    dataset: Dataset, split: str, protocol: str, new_items: np.ndarray
) -> NewItemQueries:
    """The ``protocol`` queries of ``split`` whose relevant items include a new item.

    ``counts`` gains ``users_with_new_relevant`` (kept) and ``new_relevant_pairs``.
    """
    if protocol not in BASE_PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {list(BASE_PROTOCOLS)}")
    q = build_queries(dataset, split, protocol)
    is_new = np.zeros(dataset.catalog.n_items, dtype=bool)
    is_new[np.asarray(new_items, dtype=np.int64)] = True
    rel_new = is_new[q.relevant.items]  # (pairs,)
    has_new = np.bincount(q.relevant.row_ids()[rel_new], minlength=q.n_users) > 0
    rows = np.flatnonzero(has_new)
    all_q = q.take(rows)
    counts = dict(q.counts)
    counts.update(
        users_with_new_relevant=len(rows), new_relevant_pairs=int(rel_new.sum())
    )
    all_q = replace(all_q, counts=counts)
    new_rel = all_q.relevant.mask(is_new[all_q.relevant.items])
    return NewItemQueries(all=all_q, new=replace(all_q, relevant=new_rel))


def evaluate_new_items(
    models: dict[str, Recommender],
    queries: dict[tuple[str, str], NewItemQueries],
    new_items: np.ndarray,
    catalog: Catalog,
    cfg: EvalConfig | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Every model on every (protocol, split) of new-item queries (one ranking per user,
    scored against both views).

    Returns:
        {"protocols": {protocol: {split: {"users": n, "counts": {...}, "models": {name:
        {"scores_new_items": bool, "all": {"hr@k", "hr@k_ci", "mrr@k"}, "new": {same},
        "new_share@k", "new_coverage@k"}}}}}}; an undefined value is None.
    """
    cfg = EvalConfig() if cfg is None else cfg
    new_items = np.asarray(new_items, dtype=np.int64)
    is_new = np.zeros(catalog.n_items, dtype=bool)
    is_new[new_items] = True
    out: dict[str, Any] = {"protocols": {}}
    for (protocol, split), nq in queries.items():  # a handful of query sets
        entry: dict[str, Any] = {"users": nq.all.n_users, "counts": dict(nq.all.counts),
                                 "models": {}}
        candidates = catalog.items_of_type(nq.all.target_type)  # (c,)
        entry[f"among_new_chance_hr@{cfg.hr_k}"] = chance_hit_rate(
            nq.new.relevant.lengths, int(is_new[candidates].sum()), cfg.hr_k
        )
        for name, model in models.items():
            entry["models"][name] = _evaluate_one(
                model, nq, candidates, is_new, cfg, progress, f"new items {name} {protocol}/{split}"
            )
        out["protocols"].setdefault(protocol, {})[split] = entry
    return json_safe(out)


def chance_hit_rate(n_relevant: np.ndarray, n_candidates: int, k: int) -> float:
    """Mean HR@k of a uniformly random ranking of ``n_candidates`` items, for users with
    ``n_relevant`` (n,) relevant items each: 1 - C(c - r, k) / C(c, k), averaged."""
    r = np.asarray(n_relevant, dtype=np.float64)
    if len(r) == 0:
        return float("nan")
    i = np.arange(min(k, n_candidates), dtype=np.float64)  # (k,)
    miss = np.prod(np.clip((n_candidates - r[:, None] - i) / (n_candidates - i), 0.0, 1.0), axis=1)
    return float(np.mean(1.0 - miss))


def _evaluate_one(
    model: Recommender,
    nq: NewItemQueries,
    candidates: np.ndarray,
    is_new: np.ndarray,
    cfg: EvalConfig,
    progress: bool,
    desc: str,
) -> dict[str, Any]:
    """One model's new-item metrics (see :func:`evaluate_new_items`)."""
    scores_new = bool(getattr(model, "scores_unseen_items", False))
    ranked = candidates if scores_new else candidates[~is_new[candidates]]
    new_candidates = candidates[is_new[candidates]]  # (m,)
    accs = {view: RetrievalMetrics(hr_k=cfg.hr_k, mrr_k=cfg.mrr_k, catalog_size=len(candidates),
                                   keep_per_user=True) for view in ("all", "new")}
    among_new = RetrievalMetrics(hr_k=cfg.hr_k, mrr_k=cfg.mrr_k, catalog_size=len(new_candidates))
    k, n, bs = max(cfg.hr_k, cfg.mrr_k), nq.all.n_users, cfg.batch_size
    n_new_top = 0
    seen = np.zeros(len(is_new), dtype=bool)  # new items in any user's top hr_k
    for start in tqdm(range(0, n, bs), desc=desc, disable=not progress, leave=False):
        rows = np.arange(start, min(start + bs, n))
        batch = nq.all.take(rows)
        ids, _ = model.recommend(batch.histories, ranked, k, exclude=batch.exclude, batch_size=bs)
        ids = check_topk(ids)
        accs["all"].update(ids, batch.relevant)
        accs["new"].update(ids, nq.new.relevant.take(rows))
        top = ids[:, : cfg.hr_k]
        top_new = (top >= 0) & is_new[np.maximum(top, 0)]  # (b, hr_k)
        n_new_top += int(top_new.sum())
        seen[top[top_new]] = True
        if scores_new:  # the new items ranked among themselves: placement by content alone
            new_ids, _ = model.recommend(batch.histories, new_candidates, k,
                                         exclude=batch.exclude, batch_size=bs)
            among_new.update(new_ids, nq.new.relevant.take(rows))
    hr, mrr = f"hr@{cfg.hr_k}", f"mrr@{cfg.mrr_k}"
    views = {}
    for view, acc in accs.items():
        m = acc.compute()
        views[view] = {hr: m[hr], f"{hr}_ci": m.get(f"{hr}_ci"), mrr: m[mrr]}
    n_new = int(is_new[candidates].sum())
    among = among_new.compute() if scores_new else {}
    return {
        "scores_new_items": scores_new,
        **views,
        # None for a model that cannot score new items (it has no order among them)
        "among_new": {hr: among.get(hr), mrr: among.get(mrr)},
        f"new_share@{cfg.hr_k}": n_new_top / (n * cfg.hr_k) if n else float("nan"),
        f"new_coverage@{cfg.hr_k}": int(seen.sum()) / n_new if n_new else float("nan"),
    }


def new_items_table(block: dict[str, Any], split: str = "test", hr_k: int = 10,
                    mrr_k: int = 100) -> str:
    """Markdown: one row per model; per protocol HR@k over all / new relevant items (95% CI
    on the new view), MRR@k over new items, the new items' share of the top k and their
    coverage. A model that cannot score unseen items is marked "(ranks new items last)"."""
    protocols = [p for p in BASE_PROTOCOLS if split in block.get("protocols", {}).get(p, {})]
    hr, mrr = f"hr@{hr_k}", f"mrr@{mrr_k}"
    cols = [f"HR@{hr_k} all", f"HR@{hr_k} new (95% CI)", f"MRR@{mrr_k} new",
            f"new share@{hr_k}", f"new coverage@{hr_k}", f"HR@{hr_k} among new"]
    header = ["model"] + [f"{p} {c}" for p in protocols for c in cols]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    names: list[str] = []
    for p in protocols:
        names += [n for n in block["protocols"][p][split]["models"] if n not in names]
    for name in names:
        cells: list[str] = []
        label = name
        for p in protocols:
            m = block["protocols"][p][split]["models"].get(name)
            if m is None:
                cells += ["-"] * len(cols)
                continue
            if not m["scores_new_items"]:
                label = f"{name} (ranks new items last)"
            cells += [
                _fmt(m["all"][hr]),
                format_interval(m["new"][hr], m["new"].get(f"{hr}_ci")),
                _fmt(m["new"][mrr]),
                _fmt(m[f"new_share@{hr_k}"]),
                _fmt(m[f"new_coverage@{hr_k}"]),
                _fmt(m.get("among_new", {}).get(hr)),
            ]
        lines.append("| " + " | ".join([label, *cells]) + " |")
    users = ", ".join(
        f"{p}: {block['protocols'][p][split]['users']:,} users (a random order of the new items "
        f"scores {_fmt(block['protocols'][p][split].get(f'among_new_chance_{hr}'))} among them)"
        for p in protocols
    )
    return "\n".join(lines) + f"\n\n{split} users with a new relevant item: {users}.\n"


def render_new_items(block: dict[str, Any], hr_k: int = 10, mrr_k: int = 100) -> str:
    """The report section of the new-item protocol (test users; valid figures are in
    metrics.json)."""
    c = block.get("counts", {})
    head = (
        f"# New items (held out of training, text only): {c.get('new_items', 0):,} of "
        f"{c.get('target_items', 0):,} {block.get('target_type', '')} items\n\n"
        f"Held out: {block.get('held_out', '')}. Removed from training: "
        f"{c.get('train_interactions_removed', 0):,} interactions of "
        f"{c.get('train_users_touched', 0):,} training users "
        f"({c.get('train_users_left_empty', 0):,} left with an empty log). Every model is "
        "retrained without them (run folder `new-items/`); users rank old and new items "
        "together.\n"
    )
    return head + "\n" + new_items_table(block, "test", hr_k, mrr_k)


def _fmt(value: Any) -> str:
    return "-" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{float(value):.4f}"


def held_out_table(catalog: Catalog, items: np.ndarray) -> pd.DataFrame:
    """item_id, item_type of the held-out items (saved with the new-items run)."""
    items = np.asarray(items, dtype=np.int64)
    return pd.DataFrame({
        "item_id": catalog.item_ids[items].astype(str),
        "item_type": np.asarray(catalog.type_names, dtype=object)[catalog.item_type[items]].astype(str),
    })
