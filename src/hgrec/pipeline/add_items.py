"""``hgrec add-items``: a new version of a finished run whose catalogue holds new items.

Nothing is retrained. The new rows are validated like any items file; their text is embedded
with the run's text model; the run's frozen HGNN embeds them over the run's co-interaction
graph, grown by the edges that the optional recent interactions give them (without them a
new item is an isolated node, embedded from its text alone); every model is carried over to
the larger catalogue (:meth:`hgrec.models.base.Recommender.with_new_items`); the serving index
is rebuilt. The parent run is never written to.

The new version is a complete run folder (``--out``, default ``<parent>+<n>`` next to the
parent, the first free n), written with :class:`~hgrec.utils.artifacts.RunDir`: status
"running" until its manifest says "complete", last; a crash leaves it "failed" or "running",
which ``hgrec serve`` refuses. Its layout is the parent's (``hgrec run``), plus::

    manifest.json   the parent's config; "parent": path, manifest sha256, run id, status;
                    "extra.add_items": counts, per-model handling, phase seconds
    add_items.json  the same report

    data/           items (parent rows, replaced rows updated in place, new rows appended),
                    users (+ new users of the recent interactions, split "train"),
                    interactions (+ the recent interactions: they enter served histories)
    features/       text.parquet of the extended catalogue (parent rows reused)
    graph/          parent edges + edges of the recent interactions touching a new item
    hgnn/           embeddings.parquet (parent rows kept, new rows from the frozen model),
                    model.pt and history.json hard-linked, hgnn-knn/ over the new embeddings
    2t/, 2t-hgnn/   model/ with the new items' item-tower vectors (training.json linked)
    baselines/, hgnn-w-users/  models wrapped in KnownItemsOnly (inner/ hard-linked)
    vectors/, index/  the served model's vectors and indexes, rebuilt

Not carried over: metrics.json and report.md (they measured the parent's catalogue), P1
ablation folders and checkpoints.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from hgrec.config import Config, HGNNConfig
from hgrec.data import validate as check
from hgrec.data.dataset import Catalog, Dataset
from hgrec.data.io import read_table
from hgrec.data.load import read_interactions, read_items
from hgrec.data.schema import EVENT, ITEM_ID, ITEM_TYPE, SPLIT, USER_ID
from hgrec.data.vectors import read_item_vectors, write_vectors
from hgrec.errors import UserError
from hgrec.features.text import item_text_features, load_text_features, save_text_features
from hgrec.graph.build import build_cograph_with_report
from hgrec.graph.edges import split_relations, unique_edges
from hgrec.graph.io import read_graph, write_graph
from hgrec.graph.types import CoGraph
from hgrec.models.base import NewItems, Recommender, VectorRecommender
from hgrec.models.hgnn import embed_items
from hgrec.models.hgnn_knn import HGNNKNN
from hgrec.models.known_items import KnownItemsOnly, link_file, link_tree
from hgrec.pipeline.run_dir import save_dataset_tables
from hgrec.recommenders.registry import load_model, model_classes
from hgrec.serving.load import choose_model, load_state
from hgrec.training.hgnn import build_model
from hgrec.utils import layout
from hgrec.utils.artifacts import (
    MANIFEST,
    STAGE_FILE,
    RunDir,
    atomic_write_json,
    config_hash,
    file_sha256,
)
from hgrec.utils.device import resolve_device
from hgrec.utils.layout import RunLayout
from hgrec.utils.seed import seed_everything, set_threads

#: Split given to users who first appear in the recent interactions (served like any user).
NEW_USER_SPLIT = "train"
#: Stage folders a new version never carries over.
SKIPPED = ("checkpoints",)
#: Phases timed and reported, in order.
PHASES = ("validate", "text", "hgnn", "towers", "index", "write")


@dataclass(frozen=True)
class AddItemsResult:
    """What :func:`add_items` wrote: the new run folder and its report (``add_items.json``)."""

    out: Path
    report: dict[str, Any]


@dataclass
class PhaseClock:
    """Seconds per phase of :data:`PHASES`, printed as progress lines."""

    seconds: dict[str, float]
    quiet: bool = False

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        yield
        dt = time.perf_counter() - t0
        self.seconds[name] = self.seconds.get(name, 0.0) + dt
        if not self.quiet:
            print(f"[hgrec] add-items {name}: {dt:.1f}s", flush=True)


def add_items(
    run: str | Path,
    items: str | Path | pd.DataFrame,
    out: str | Path | None = None,
    interactions: str | Path | pd.DataFrame | None = None,
    replace_existing: bool = False,
    progress: bool | None = None,
) -> AddItemsResult:
    """Write a new version of the finished run ``run`` whose catalogue holds ``items``.

    Args:
        run: a complete run folder (``hgrec run``, or an earlier ``add-items``).
        items: canonical items file (or table) of the new items.
        out: the new run folder (must not exist, or be an unfinished one); default
            :func:`default_out`.
        interactions: recent interactions (canonical; items old or new, users old or new):
            co-interaction edges for the new items, and entries of the served histories.
        replace_existing: an item id of the run in ``items`` replaces that item's row (same
            index; its text and HGNN embedding are recomputed). Without it, an error.
        progress: tqdm bars; default the run's ``runtime.progress``.

    Raises:
        UserError, DataValidationError, FileNotFoundError: bad input, each one line naming
            the file, column, rows and values. Checked before ``out`` is created.
    """
    clock = PhaseClock({})
    with clock("validate"):
        parent = Path(run)
        manifest = RunDir(parent).finished_manifest()
        try:
            config = Config.model_validate(manifest["config"])
        except Exception as e:  # noqa: BLE001 - any config the current code cannot read
            raise UserError(f"{parent / MANIFEST}: its config does not validate ({e})") from None
        show = config.runtime.progress if progress is None else progress
        out = default_out(parent) if out is None else Path(out)
        _check_out(out, parent)
        base = _read_parent(parent)
        merged = _merge_items(base.items, items, replace_existing, base.catalog.type_names)
        catalog = Catalog.from_items(merged.items)
        dataset, recent_users, n_recent = _extended_dataset(base, catalog, interactions, config)
    seed_everything(config.runtime.seed, deterministic=True)
    set_threads(config.runtime.threads)

    run_dir = RunDir(out)
    if out.exists():
        run_dir.clear()  # an unfinished version (checked by _check_out)
    inputs = {"items": items} if not isinstance(items, pd.DataFrame) else {}
    if interactions is not None and not isinstance(interactions, pd.DataFrame):
        inputs["interactions"] = interactions
    run_dir.start(config.model_dump(mode="json"), inputs=inputs,
                  extra={"add_items": {"replace": replace_existing}})
    run_dir.manifest["parent"] = {
        "path": str(parent.resolve()), "run_id": parent.resolve().name,
        "manifest_sha256": file_sha256(parent / MANIFEST),
        "config_hash": manifest.get("config_hash"), "finished_at": manifest.get("finished_at"),
    }
    writer = _Writer(run_dir, parent, base, catalog, merged, dataset, config, show, clock)
    try:
        report = writer.write(recent_users, n_recent)
    except BaseException as e:
        run_dir.fail(e)
        raise
    return AddItemsResult(out, report)


def default_out(parent: Path) -> Path:
    """``<parent>+<n>`` next to the parent, the first n from 1 that does not exist (a version
    of ``runs/x+2`` is ``runs/x+3``: the suffix is counted, not stacked)."""
    stem = re.sub(r"\+\d+$", "", parent.resolve().name)
    folder = parent.resolve().parent
    n = 1
    while (folder / f"{stem}+{n}").exists():
        n += 1
    return folder / f"{stem}+{n}"


# ---------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class _Parent:
    """The parent run's tables (string ids) and catalogue."""

    path: Path
    items: pd.DataFrame
    users: pd.DataFrame
    interactions: pd.DataFrame
    catalog: Catalog
    event_names: tuple[str, ...]
    models: dict[str, str]


@dataclass(frozen=True)
class _Merged:
    """The extended items table; rows [0, n_before) are the parent's, in order."""

    items: pd.DataFrame
    n_before: int
    changed: np.ndarray  # (m,) int64 rows with new features (appended + replaced)
    n_added: int
    n_replaced: int


def _check_out(out: Path, parent: Path) -> None:
    if out.resolve() == parent.resolve():
        raise UserError(f"--out {out}: is the parent run; expected a new folder (the parent "
                        "is never modified)")
    for p in (out, *out.parents):
        if p.exists():
            if not p.is_dir():
                raise UserError(f"--out {out}: {p} is a file; expected a new folder")
            break
    if not out.exists() or not any(out.iterdir()):
        return
    try:
        status = RunDir(out).status()
    except UserError as e:
        raise UserError(f"--out {out}: {e}") from None
    if status in (None, "complete"):
        what = "a complete run" if status == "complete" else "a non-empty folder that is not a run"
        raise UserError(f"--out {out}: is {what}; expected a new folder (or an unfinished "
                        "add-items folder, which is replaced)")


def _read_parent(parent: Path) -> _Parent:
    runs = RunLayout(parent)
    for f in layout.TABLES:
        if not runs.table(f).is_file():
            raise FileNotFoundError(f"{runs.table(f)} does not exist; expected the run's data stage")
    models = runs.models
    if not models.is_file():
        raise FileNotFoundError(f"{models} does not exist; expected a run written by hgrec run")
    items = pd.read_parquet(runs.table(layout.ITEMS))
    inter = pd.read_parquet(runs.table(layout.INTERACTIONS))
    events = tuple(sorted(inter[EVENT].astype(str).unique())) if EVENT in inter.columns else ("stream",)
    return _Parent(
        path=parent, items=items, users=pd.read_parquet(runs.table(layout.USERS)),
        interactions=inter, catalog=Catalog.from_items(items), event_names=events,
        models=json.loads(models.read_text()),
    )


def _merge_items(
    old: pd.DataFrame, source: str | Path | pd.DataFrame, replace_existing: bool,
    type_names: tuple[str, ...],
) -> _Merged:
    """Validate the new rows and merge them into the parent's items table."""
    new, name = read_items(source)
    known = new[ITEM_TYPE].isin(list(type_names)).to_numpy()
    if not known.all():
        check.fail(name, ITEM_TYPE, "item types the run was not trained on", ~known,
                   new[ITEM_TYPE], f"one of {list(type_names)} (a new type needs hgrec run)")
    row = pd.Index(old[ITEM_ID].astype(str)).get_indexer(new[ITEM_ID])  # (m,) -1: new id
    exists = row >= 0
    if exists.any() and not replace_existing:
        check.fail(name, ITEM_ID, "item ids already in the run", exists, new[ITEM_ID],
                   "new item ids (or --replace to replace those items)")
    if exists.any():
        same = old[ITEM_TYPE].astype(str).to_numpy()[row[exists]] == new.loc[exists, ITEM_TYPE]
        if not same.all():
            bad = np.zeros(len(new), dtype=bool)
            bad[np.flatnonzero(exists)[~same.to_numpy()]] = True
            check.fail(name, ITEM_TYPE, "--replace would change an item's type", bad,
                       new[ITEM_TYPE], "a replaced item to keep its item type")
    items = pd.concat([old, new[~exists]], ignore_index=True)
    if exists.any():
        # Replaced rows take the new file's values; columns it lacks become missing.
        updated = new[exists].reindex(columns=items.columns)
        updated.index = pd.Index(row[exists])
        items.loc[updated.index] = updated
    n_before = len(old)
    changed = np.concatenate([np.sort(row[exists]), np.arange(n_before, len(items))]).astype(np.int64)
    return _Merged(items, n_before, changed, int((~exists).sum()), int(exists.sum()))


def _extended_dataset(
    base: _Parent, catalog: Catalog, recent: str | Path | pd.DataFrame | None, config: Config,
) -> tuple[Dataset, np.ndarray, int]:
    """The parent's users and interactions plus the recent ones, over the extended catalogue.

    Recent interactions follow the user's stored history, in their own order (their
    ``order`` becomes the user's last stored order + 1, 2, ...), so they enter served
    histories and ``max_history`` windows as the most recent entries.

    Returns:
        the dataset, the (r,) int64 indices of the users of the recent interactions, and
        how many recent interactions were added.
    """
    users = base.users.copy()
    users[USER_ID] = users[USER_ID].astype(str)
    inter = base.interactions
    u = pd.Index(users[USER_ID]).get_indexer(inter[USER_ID].astype(str))
    i = pd.Index(catalog.item_ids).get_indexer(inter[ITEM_ID].astype(str))
    events = list(base.event_names)
    ev = (pd.Index(events).get_indexer(inter[EVENT].astype(str)) if EVENT in inter.columns
          else np.zeros(len(inter), dtype=np.int64))
    order = inter["order"].to_numpy(dtype=np.float64)
    weight = (inter["weight"].to_numpy(dtype=np.float32) if "weight" in inter.columns
              else np.ones(len(inter), dtype=np.float32))
    recent_users = np.zeros(0, dtype=np.int64)
    n_recent = 0
    if recent is not None:
        r_user, r_item, r_order, r_event, r_weight, new_ids = _read_recent(recent, catalog, events)
        n_old_users = len(users)
        index = pd.Index(users[USER_ID]).get_indexer(new_ids)  # (distinct recent users,)
        fresh = index < 0
        index[fresh] = n_old_users + np.arange(int(fresh.sum()))
        added = pd.DataFrame({USER_ID: new_ids[fresh], SPLIT: NEW_USER_SPLIT})
        users = pd.concat([users, added], ignore_index=True)
        r_user = index[r_user]
        # last stored order of each user (-1 for none), then 1, 2, ... within the user
        last = np.full(len(users), -1.0)
        np.maximum.at(last, u, order)
        first = np.ones(len(r_user), dtype=bool)
        first[1:] = r_user[1:] != r_user[:-1]  # r_user is sorted by (user, order)
        rank = np.arange(len(r_user)) - np.maximum.accumulate(np.where(first, np.arange(len(r_user)), 0))
        r_order = np.maximum(last[r_user], 0.0) + 1.0 + rank
        u, i, ev = np.concatenate([u, r_user]), np.concatenate([i, r_item]), np.concatenate([ev, r_event])
        order, weight = np.concatenate([order, r_order]), np.concatenate([weight, r_weight])
        recent_users = np.unique(r_user)
        n_recent = len(r_user)
    perm = np.lexsort((order, u))  # stable: parent rows before recent ones on ties
    frame = pd.DataFrame({
        "user": u[perm].astype(np.int64), "item": i[perm].astype(np.int64),
        "order": order[perm],
        "event": pd.Categorical.from_codes(ev[perm].astype(np.int16), categories=events),
        "weight": weight[perm],
    })
    target = (config.data.target_type if config.data.target_type in catalog.type_names
              else catalog.type_names[0])
    dataset = Dataset(name=config.data.name, catalog=catalog, users=users, interactions=frame,
                      target_type=target)
    return dataset, recent_users, n_recent


def _read_recent(
    source: str | Path | pd.DataFrame, catalog: Catalog, events: list[str],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validated recent interactions: (user code, item, order, event code, weight, user ids)."""
    if isinstance(source, pd.DataFrame):
        df, name = source.reset_index(drop=True), "interactions"
    else:
        df, name = read_table(source), Path(source).name
    if EVENT in df.columns:
        given = df[EVENT].notna().to_numpy() & (df[EVENT].astype(str).str.strip() != "").to_numpy()
        bad = given & ~df[EVENT].astype(str).isin(events).to_numpy()
        if bad.any():
            check.fail(name, EVENT, "events the run does not know", bad, df[EVENT],
                       f"one of {events}")
    cols, _ = read_interactions(df, catalog.items, "the run's catalogue + the new items",
                                display_name=name)
    ev = cols["event"]
    assert isinstance(ev, pd.Categorical)
    code = pd.Index(events).get_indexer(np.asarray(ev.categories, dtype=object))[ev.codes]
    user_ids = np.asarray(cols["_user_ids"], dtype=object).astype(str)
    return (np.asarray(cols["user"], dtype=np.int64), np.asarray(cols["item"], dtype=np.int64),
            np.asarray(cols["order"], dtype=np.float64), code.astype(np.int64),
            np.asarray(cols["weight"], dtype=np.float32), user_ids)


# ---------------------------------------------------------------------- writing
class _Writer:
    """The stages of one new version, each written with :meth:`RunDir.stage`."""

    def __init__(self, run_dir: RunDir, parent: Path, base: _Parent, catalog: Catalog,
                 merged: _Merged, dataset: Dataset, config: Config, progress: bool,
                 clock: PhaseClock) -> None:
        self.run_dir, self.parent, self.base = run_dir, parent, base
        self.parent_layout = RunLayout(parent)
        self.catalog, self.merged, self.dataset = catalog, merged, dataset
        self.config, self.progress, self.clock = config, progress, clock
        self.key = config_hash({"parent": run_dir.manifest["parent"]["manifest_sha256"],
                                "inputs": run_dir.manifest["inputs_hash"]})

    def stage(self, name: str) -> Any:
        return self.run_dir.stage(name, config_hash({"add_items": self.key, "stage": name}))

    def write(self, recent_users: np.ndarray, n_recent: int) -> dict[str, Any]:
        m, clock, out = self.merged, self.clock, self.run_dir.path
        with clock("write"), self.stage(layout.DATA) as tmp:
            save_dataset_tables(self.dataset, tmp)
        with clock("text"):
            text = self.text()
        hgnn, graph_report = None, {}
        if self.parent_layout.hgnn_weights().is_file() and self.parent_layout.graph.is_dir():
            with clock("hgnn"):
                graph, graph_report = self.graph(recent_users)
                hgnn = self.hgnn(graph, text)
        new = NewItems(self.catalog, m.n_before, m.changed, text, hgnn)
        with clock("towers"):
            handling = self.models(new)
        with clock("write"):
            atomic_write_json(RunLayout(out).models, self.base.models)
        with clock("index"):
            self.vectors_and_index()
        report = {
            "parent": self.run_dir.manifest["parent"],
            "items_added": m.n_added, "items_replaced": m.n_replaced,
            "items": self.catalog.n_items, "recent_interactions": n_recent,
            "recent_users": len(recent_users),
            "users_added": self.dataset.n_users - len(self.base.users),
            "graph": graph_report, "models": handling,
            "seconds": {p: round(clock.seconds.get(p, 0.0), 3) for p in PHASES},
        }
        with clock("write"):
            atomic_write_json(out / layout.ADD_ITEMS, report)
            report["seconds"]["write"] = round(clock.seconds["write"], 3)
            self.run_dir.manifest["extra"]["add_items"] = report
            self.run_dir.record_stage_seconds(clock.seconds)
            self.run_dir.finish()
        return report

    # ------------------------------------------------------------------ stages
    def text(self) -> np.ndarray:
        """(n_items, d) text embeddings: the parent's rows, the changed rows embedded now."""
        parent_feats = load_text_features(self.parent_layout.text_features, self.base.catalog)
        changed = Catalog.from_items(self.catalog.items.iloc[self.merged.changed])
        feats = item_text_features(changed, self.config.features, self.progress)
        if feats.model != parent_feats.model:
            raise UserError(
                f"text model {self.config.features.text_model!r} is now {feats.model}, the run "
                f"embedded with {parent_feats.model}; expected the same model files (install "
                "the run's model version, or rerun hgrec run)"
            )
        emb = np.zeros((self.catalog.n_items, parent_feats.dim), dtype=np.float32)
        emb[: self.merged.n_before] = parent_feats.embeddings
        emb[self.merged.changed] = feats.embeddings
        with self.stage(layout.FEATURES) as tmp:
            whole = replace(parent_feats, embeddings=emb, n_empty=int((~emb.any(axis=1)).sum()))
            save_text_features(tmp / layout.TEXT, self.catalog, whole)
        return emb

    def graph(self, recent_users: np.ndarray) -> tuple[CoGraph, dict[str, Any]]:
        """The parent's graph plus the edges of the recent users' interactions (their stored
        and recent ones) that touch a changed item, built by the run's graph settings."""
        old = read_graph(self.parent_layout.graph, self.base.catalog)
        parts = [(r.src, r.dst, r.count) for r in old.relations.values()]
        n_new_edges = 0
        if len(recent_users):
            built, _ = build_cograph_with_report(self.dataset, self.config.graph, recent_users,
                                                 progress=self.progress)
            touched = np.zeros(self.catalog.n_items, dtype=bool)
            touched[self.merged.changed] = True
            for r in built.relations.values():  # loop over relations (a few)
                keep = touched[r.src] | touched[r.dst]
                parts.append((r.src[keep], r.dst[keep], r.count[keep]))
                n_new_edges += int(keep.sum())
        src, dst, count = (np.concatenate([p[k] for p in parts]) for k in range(3))
        src, dst, count = unique_edges(src.astype(np.int64), dst.astype(np.int64),
                                       count.astype(np.int32), self.catalog.n_items)
        c = self.catalog
        graph = CoGraph(c.n_items, c.item_type, c.type_names,
                        split_relations(src, dst, count, c.item_type, c.type_names))
        report = {"parent_edges": sum(r.n_edges for r in old.relations.values()),
                  "new_item_edges": n_new_edges, "edges": int(len(src))}
        with self.stage(layout.GRAPH) as tmp:
            write_graph(graph, tmp, c, {"add_items": report})
        return graph, report

    def hgnn(self, graph: CoGraph, text: np.ndarray) -> np.ndarray:
        """(n_items, d) HGNN embeddings: the parent's rows, the changed rows by the frozen
        model over the extended graph (parent rows are kept, so every fitted item keeps its
        vector in every model)."""
        cfg = _hgnn_config(self.parent, self.config)
        model = build_model(graph, text.shape[1], cfg, self.config.runtime.seed)
        model.load_state_dict(torch.load(self.parent_layout.hgnn_weights()))
        full = embed_items(model, graph, text, cfg.inference.batch_edges,
                           device=resolve_device(self.config.runtime.device))
        emb = np.zeros_like(full)
        emb[: self.merged.n_before] = read_item_vectors(
            self.parent_layout.embeddings(), self.base.catalog)[0]
        emb[self.merged.changed] = full[self.merged.changed]
        parent_hgnn = self.parent_layout.stage(layout.HGNN)
        with self.stage(layout.HGNN) as tmp:
            _link_stage(parent_hgnn, tmp, skip=(layout.EMBEDDINGS, layout.HGNN_KNN))
            write_vectors(tmp / layout.EMBEDDINGS, self.catalog.item_ids, emb, {"kind": "hgnn"})
            if (parent_hgnn / layout.HGNN_KNN).is_dir():
                HGNNKNN(embeddings=emb).save(tmp / layout.HGNN_KNN)
        return emb

    def models(self, new: NewItems) -> dict[str, str]:
        """Every served model over the new catalogue; name -> how it handles new items."""
        classes = model_classes()
        by_stage: dict[str, list[tuple[str, str]]] = {}
        for name, rel in self.base.models.items():  # a handful of models
            stage, _, inner = rel.partition("/")
            by_stage.setdefault(stage, []).append((name, inner))
        handling: dict[str, str] = {}
        for stage, entries in by_stage.items():  # loop over stage folders
            if stage == layout.HGNN:  # written with the embeddings
                handling.update({n: "embedded: frozen HGNN embeddings of the new items"
                                 for n, _ in entries})
                continue
            with self.stage(stage) as tmp:
                _link_stage(self.parent / stage, tmp, skip=tuple(i for _, i in entries))
                for name, inner in entries:  # the stage's models (one, or the baselines)
                    folder = self.parent / stage / inner
                    meta = json.loads((folder / layout.PARAMS).read_text())
                    cls = classes.get(meta.get("name"))
                    if cls is not None and cls.embeds_new_items:
                        model: Recommender = load_model(folder).with_new_items(new)
                        model.save(tmp / inner)
                        handling[name] = "embedded: item vectors of the new items computed"
                    else:
                        KnownItemsOnly.save_around(tmp / inner, folder, new.n_before, new.n_items)
                        handling[name] = ("known items only: new items are never recommended "
                                          "(the model has no parameters for them)")
        return handling

    def vectors_and_index(self) -> None:
        """The served model's vectors (as ``hgrec run`` writes them) and its indexes."""
        out = self.run_dir.path
        name, folder = choose_model(out, None)
        model = load_model(folder)
        if isinstance(model, VectorRecommender):
            with self.stage(layout.VECTORS) as tmp:
                write_vectors(tmp / layout.ITEM_VECTORS, self.catalog.item_ids,
                              model.item_vectors(),
                              {"kind": "items", "model": name})
                write_vectors(tmp / layout.USER_VECTORS, self.dataset.user_ids,
                              model.user_vectors(self.dataset.histories()),
                              {"kind": "users", "model": name})
        load_state(out, require_complete=False, progress=self.progress)


# ---------------------------------------------------------------------- helpers
def _hgnn_config(parent: Path, config: Config) -> HGNNConfig:
    """The settings the parent's HGNN weights were built with (those of a reused run when
    the parent reused frozen weights)."""
    reuse = (RunDir(parent).read_manifest() or {}).get("extra", {}).get("reuse_hgnn")
    if reuse:
        m = RunDir(Path(reuse)).read_manifest()
        if m is not None and "hgnn" in m.get("config", {}):
            return HGNNConfig.from_saved(m["config"]["hgnn"])
    return config.hgnn


def _link_stage(src: Path, dst: Path, skip: tuple[str, ...] = ()) -> None:
    """Hard-link the files of a parent stage folder into ``dst`` (copies across file
    systems), leaving out its ``_STAGE.json`` and the top-level entries in ``skip``."""
    for entry in sorted(src.iterdir()):  # the stage's top-level entries
        if entry.name in skip or entry.name == STAGE_FILE:
            continue
        if entry.is_dir():
            link_tree(entry, dst / entry.name)
        else:
            link_file(entry, dst / entry.name)


def format_report(report: dict[str, Any]) -> str:
    """The lines ``hgrec add-items`` prints."""
    lines = [f"[hgrec] add-items: {report['items_added']:,} added, {report['items_replaced']:,} "
             f"replaced; {report['items']:,} items; {report['recent_interactions']:,} recent "
             f"interactions of {report['recent_users']:,} users ({report['users_added']:,} new)"]
    lines += [f"[hgrec]   {name}: {how}" for name, how in report["models"].items()]
    seconds = report["seconds"]
    lines.append("[hgrec]   seconds: " + ", ".join(f"{p} {seconds[p]:.1f}" for p in PHASES))
    return "\n".join(lines)

