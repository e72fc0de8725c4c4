"""Everything the service answers from, loaded from one finished run directory.

A :class:`ServingState` is immutable once loaded: the service holds one reference and a
reload builds a complete new state before swapping that reference (``app.StateHolder``), so
a request sees one run from start to end.

Run directory layout read here (written by ``hgrec run``)::

    manifest.json                 status must be "complete"
    data/items.parquet            catalogue
    data/users.parquet            users (user_id, split, demographics)
    data/interactions.parquet     user_id, item_id, order, event, weight
    hgnn/embeddings.parquet       item_id, embedding (optional: similar items, "because")
    models.json                   model name -> folder (params.json + state.npz); or models/<name>/
    index/<name>/, index/similar/ built here when missing (see :mod:`hgrec.serving.index`)
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hgrec.data.dataset import Catalog
from hgrec.data.histories import Histories
from hgrec.data.schema import DEFAULT_EVENT, ITEM_ID, SPLIT, TITLE, USER_ID
from hgrec.data.vectors import read_item_vectors
from hgrec.models.base import Recommender
from hgrec.recommenders.registry import load_model
from hgrec.serving.index import (
    EXACT_THRESHOLD,
    TypeIndexes,
    build_type_indexes,
    load_type_indexes,
    save_type_indexes,
)
from hgrec.utils import layout
from hgrec.utils.artifacts import RunDir, file_sha256
from hgrec.utils.layout import RunLayout

#: Served model when ``--model`` is not given: the first of these present, else the first
#: model folder in name order.
MODEL_PREFERENCE = ("2t-hgnn", "hgnn-knn")


class ServingError(ValueError):
    """A request the service cannot answer.

    Args:
        status: the HTTP status (401, 403, 404, 422).
        message: one sentence for the client; never a file-system path.
        loc: for a 422, the field it is about, e.g. ``("history", 3, "event")`` (the app
            prefixes "body" or "query").
        headers: extra answer headers (``WWW-Authenticate`` of a 401).
    """

    def __init__(
        self, status: int, message: str, loc: tuple[str | int, ...] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.loc = loc
        self.headers = headers


@dataclass(frozen=True)
class Timings:
    """Seconds spent inside one request: user tower, index search, "because" explanation."""

    tower: float = 0.0
    index: float = 0.0
    explain: float = 0.0


@dataclass(frozen=True)
class Recommendation:
    """Top-k of one request.

    Attributes:
        items: (k',) int64 catalogue indices, best first (fewer than k when the type is small).
        scores: (k',) float32.
        because: per recommended item, up to 3 (history item index, similarity) pairs.
        timings: where the time went.
    """
    items: np.ndarray
    scores: np.ndarray
    because: list[list[tuple[int, float]]]
    timings: Timings


@dataclass(frozen=True)
class HistoryRequest:
    """One request's history after :meth:`ServingState.check_history`, before the lookup.

    Attributes:
        item_ids: the entries' item ids in chronological order.
        events: (len(item_ids),) int16 event codes, same order.
        user: the request's demographic fields, or None.
    """
    item_ids: list[str]
    events: np.ndarray
    user: dict[str, Any] | None


@dataclass(frozen=True)
class ServingState:
    """A loaded run. See the module docstring for the files it comes from.

    Attributes:
        run_dir: resolved run directory.
        manifest: its manifest.json.
        catalog: the catalogue.
        users: user table indexed by user_id (demographic columns only).
        stored: (n_users rows) chronological histories of every user in ``users`` order.
        event_names: event vocabulary of ``Histories.events``.
        model: the served model; ``model_name`` its name.
        user_indexes: per-type indexes over the model's item vectors (None: the model has no
            vectors and is scored with ``model.recommend``).
        item_indexes: per-type indexes over the HGNN embeddings (or the model's item vectors
            when the run has none): similar items.
        explain_vectors: (n_items, d) vectors whose dot products rank "because" items.
        popularity: (n_items,) int64 interactions per item (title search ranking).
        titles, titles_lower: (n_items,) item titles, as given and lower-cased (search).
        item_lookup: hashed item ids -> position (built once: building a hash table of the
            catalogue per request would cost more than the whole recommendation).
        target_type: the run's new item type (default of ``item_type``), or None.
        report: counts of what loading skipped, index build facts.
    """
    run_dir: Path
    manifest: dict[str, Any]
    catalog: Catalog
    users: pd.DataFrame
    stored: Histories
    event_names: tuple[str, ...]
    model: Recommender
    model_name: str
    user_indexes: TypeIndexes | None
    item_indexes: TypeIndexes | None
    explain_vectors: np.ndarray | None
    popularity: np.ndarray
    titles: np.ndarray
    titles_lower: pd.Series
    item_lookup: pd.Index
    target_type: str | None = None
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return self.run_dir.name

    # ------------------------------------------------------------------ request inputs
    def item_type(self, name: str) -> str:
        if name not in self.catalog.type_names:
            raise ServingError(
                422, f"unknown item_type {name!r}; expected one of {list(self.catalog.type_names)}",
                loc=("item_type",),
            )
        return name

    @cached_property
    def event_codes(self) -> dict[str, int]:
        """Event name -> code of ``Histories.events`` (a dict: a request names a few events)."""
        return {name: code for code, name in enumerate(self.event_names)}

    def check_history(
        self,
        item_ids: list[str],
        events: list[str | None],
        timestamps: list[float | None],
        user: dict[str, Any] | None,
    ) -> HistoryRequest:
        """The checks of one request's history that need no catalogue lookup; 422 on failure.

        Entries are ordered by timestamp when every entry has one (stable, so ties keep the
        request order), in request order when none has; a mix is a 422, as is an event the
        run does not know.
        """
        n = len(item_ids)
        n_ts = sum(t is not None for t in timestamps)
        if 0 < n_ts < n:
            raise ServingError(
                422, f"history: {n_ts} of {n} entries have a timestamp; expected "
                "a timestamp on every entry or on none", loc=("history",),
            )
        lookup = self.event_codes
        # A run without "stream" serves entries without an event as its first event.
        default = lookup.get(DEFAULT_EVENT, 0)
        codes = [default if e is None else lookup.get(e, -1) for e in events]  # loop over entries
        if -1 in codes:
            bad = codes.index(-1)
            raise ServingError(
                422, f"history[{bad}].event {events[bad]!r} is not an event of this run; expected "
                f"one of {list(self.event_names)}", loc=("history", bad, "event"),
            )
        ev = np.asarray(codes, dtype=np.int16)
        if n and n_ts == n:
            order = np.argsort(np.asarray(timestamps, dtype=np.float64), kind="stable")
            item_ids, ev = [item_ids[i] for i in order.tolist()], ev[order]
        return HistoryRequest(item_ids=list(item_ids), events=ev, user=user or None)

    def batch_histories(self, requests: list[HistoryRequest]) -> tuple[Histories, list[list[str]]]:
        """One ``Histories`` row per checked request (one catalogue lookup for all of them)
        and, per request, its unknown item ids (skipped), in first-seen order.

        Demographics are read with ``pd.DataFrame(list of user dicts)``: mix only requests
        whose ``user`` dicts have the same keys and value types (see ``app``), so a column
        gets the dtype it would get for each request alone.
        """
        n = len(requests)
        lengths = np.array([len(r.item_ids) for r in requests], dtype=np.int64)
        ids = [i for r in requests for i in r.item_ids]  # the batch's entries (<= 500 a request)
        idx = (self.item_lookup.get_indexer(pd.Index(ids, dtype=object)).astype(np.int64)
               if ids else np.zeros(0, dtype=np.int64))
        known = idx >= 0
        rows = np.repeat(np.arange(n, dtype=np.int64), lengths)
        counts = np.bincount(rows[known], minlength=n)
        unknown: list[list[str]] = [[] for _ in range(n)]
        if not known.all():
            starts = np.concatenate([[0], np.cumsum(lengths)])
            for r in np.unique(rows[~known]).tolist():  # loop over requests with unknown ids
                seg = slice(int(starts[r]), int(starts[r + 1]))
                unknown[r] = list(dict.fromkeys(
                    np.asarray(ids[seg], dtype=object)[~known[seg]].tolist()))
        users = (pd.DataFrame([r.user or {} for r in requests])
                 if any(r.user for r in requests) else pd.DataFrame(index=pd.RangeIndex(n)))
        events = (np.concatenate([r.events for r in requests]) if n
                  else np.zeros(0, dtype=np.int16))
        h = Histories(
            indptr=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            items=idx[known],
            events=events[known].astype(np.int16),
            weights=np.ones(int(known.sum()), dtype=np.float32),
            users=users,
        )
        return h, unknown

    def history_from_request(
        self,
        item_ids: list[str],
        events: list[str | None],
        timestamps: list[float | None],
        user: dict[str, Any] | None,
    ) -> tuple[Histories, list[str]]:
        """One raw history from request entries; unknown item ids are skipped and returned
        (:meth:`check_history`, then :meth:`batch_histories` of one request)."""
        h, unknown = self.batch_histories([self.check_history(item_ids, events, timestamps, user)])
        return h, unknown[0]

    def stored_history(self, user_id: str) -> Histories:
        """The stored history (and demographics) of a user of the run; 404 when unknown."""
        row = self.users.index.get_indexer(pd.Index([user_id], dtype=object))[0]
        if row < 0:
            raise ServingError(404, f"unknown user_id {user_id!r}: not a user of run {self.run_id}")
        h = self.stored.take(np.array([row]))
        return Histories(h.indptr, h.items, h.events, h.weights, self.users.iloc[[row]].reset_index(drop=True))

    # ------------------------------------------------------------------ answers
    def recommend(
        self, history: Histories, item_type: str, k: int, exclude_seen: bool
    ) -> Recommendation:
        """Top-k items of ``item_type`` for one raw history (P1 section 4.3: real-time user
        vector, then the nearest-neighbour index): :meth:`recommend_batch` of one row."""
        out = self.recommend_batch(history, [item_type], [k], [exclude_seen])[0]
        if isinstance(out, ServingError):
            raise out
        return out

    def recommend_batch(
        self,
        histories: Histories,
        item_types: Sequence[str],
        ks: Sequence[int],
        exclude_seen: Sequence[bool],
    ) -> list[Recommendation | ServingError]:
        """Top-k of each of n histories: one user-tower forward and one index search per item
        type for the whole batch; row r's items equal those of row r alone, its scores to float32
        rounding (torch's CPU matmul blocks differently by batch size).

        A row whose user vector is not finite gets a 422 :class:`ServingError` instead (the
        other rows are answered). ``timings`` give each row an equal share of the batch's
        tower and index seconds, and its own explanation seconds.

        Args:
            histories: n raw histories (``users``: their demographics).
            item_types, ks, exclude_seen: per row, as :meth:`recommend`.
        """
        n = histories.n_users
        if not len(item_types) == len(ks) == len(exclude_seen) == n:
            raise ValueError(f"{n} histories need {n} item types, ks and exclude_seen flags")
        for t in set(item_types):
            self.item_type(t)
        if self.user_indexes is None:
            return [self._recommend_scored(histories.take(np.array([r])), item_types[r], ks[r],
                                           exclude_seen[r])
                    for r in range(n)]  # models without vectors: one row at a time
        t0 = time.perf_counter()
        u = np.asarray(self.model.user_vectors(histories), dtype=np.float32)  # type: ignore[attr-defined]
        t1 = time.perf_counter()
        finite = np.isfinite(u).all(axis=1)  # (n,)
        found: list[tuple[np.ndarray, np.ndarray] | None] = [None] * n
        no_items = np.zeros(0, dtype=np.int64)
        for t in dict.fromkeys(item_types):  # loop over the batch's item types
            rows = [r for r in range(n) if item_types[r] == t and finite[r]]
            if not rows:
                continue
            exclude = [np.unique(histories.row(r)) if exclude_seen[r] else no_items for r in rows]
            answers = self.user_indexes[t].search_each(u[rows], [ks[r] for r in rows], exclude)
            for r, answer in zip(rows, answers, strict=True):
                found[r] = answer
        t2 = time.perf_counter()
        out: list[Recommendation | ServingError] = []
        for r in range(n):  # loop over the batch
            answer = found[r]
            if answer is None:
                out.append(ServingError(
                    422, "the user fields give a non-finite user vector; expected numeric "
                    "demographic values of ordinary magnitude", loc=("user",),
                ))
                continue
            t3 = time.perf_counter()
            ids, scores = answer
            keep = (ids >= 0) & np.isfinite(scores)
            ids, scores = ids[keep], scores[keep]
            because = self.because(histories.row(r), ids)
            timings = Timings(tower=(t1 - t0) / n, index=(t2 - t1) / n,
                              explain=time.perf_counter() - t3)
            out.append(Recommendation(ids, scores, because, timings))
        return out

    def _recommend_scored(
        self, history: Histories, item_type: str, k: int, exclude_seen: bool
    ) -> Recommendation:
        """A model without vectors (baselines) scores the type's items itself: all "tower"."""
        t0 = time.perf_counter()
        exclude = history if exclude_seen else None
        candidates = self.catalog.items_of_type(item_type)
        ids, scores = self.model.recommend(history, candidates, k, exclude=exclude)
        t2 = time.perf_counter()
        ids, scores = ids[0], scores[0]
        keep = (ids >= 0) & np.isfinite(scores)
        ids, scores = ids[keep], scores[keep]
        because = self.because(history.items, ids)
        t3 = time.perf_counter()
        return Recommendation(ids, scores, because, Timings(tower=t2 - t0, explain=t3 - t2))

    def because(self, history_items: np.ndarray, recommended: np.ndarray, top: int = 3
                ) -> list[list[tuple[int, float]]]:
        """Per recommended item, the (up to ``top``) history items most similar to it.

        For a vector model whose user vector pools history items (HGNN-KNN: the mean of
        their HGNN embeddings z), an item's score is the mean of ``z_h . z_r`` over the
        history, so ranking history items by ``z_h . z_r`` ranks their contribution.

        Returns:
            len(recommended) lists of (history item index, similarity), most similar first.
        """
        hist = np.unique(history_items)
        if self.explain_vectors is None or len(hist) == 0 or len(recommended) == 0:
            return [[] for _ in range(len(recommended))]
        e = self.explain_vectors
        sim = e[hist] @ e[recommended].T  # (h, r)
        n_top = min(top, len(hist))
        # Best first, ties by smaller item index (hist is ascending and the sort is stable).
        order = np.argsort(-sim, axis=0, kind="stable")[:n_top]  # (n_top, r)
        best = hist[order]  # (n_top, r)
        vals = np.take_along_axis(sim, order, axis=0)
        return [
            list(zip(best[:, j].tolist(), vals[:, j].astype(float).tolist(), strict=True))
            for j in range(len(recommended))  # loop over the k results, not the catalogue
        ]

    def similar(self, item_id: str, item_type: str | None, k: int) -> tuple[int, np.ndarray, np.ndarray]:
        """The k items nearest to ``item_id`` in the HGNN space, across types unless given.

        Returns:
            the query's catalogue index, ids (k',) and scores (k',), the query excluded.
        """
        if self.item_indexes is None:
            raise ServingError(404, f"run {self.run_id} has no item embeddings for similar items")
        row = int(self.item_lookup.get_indexer(pd.Index([item_id], dtype=object))[0])
        if row < 0:
            raise ServingError(404, f"unknown item_id {item_id!r}: not in the catalogue of run {self.run_id}")
        q = self.item_indexes.vectors[row][None, :]
        ex = [np.array([row], dtype=np.int64)]
        if item_type is None:
            ids, scores = self.item_indexes.search_all(q, k, exclude=ex)
        else:
            ids, scores = self.item_indexes[self.item_type(item_type)].search(q, k, exclude=ex)
        keep = (ids[0] >= 0) & np.isfinite(scores[0])
        return row, ids[0][keep], scores[0][keep]

    def search_titles(self, q: str, item_type: str | None, limit: int) -> np.ndarray:
        """(<= limit,) catalogue indices whose title contains ``q`` (case-insensitive), most
        interacted-with first, ties by title."""
        mask = self.titles_lower.str.contains(q.strip().lower(), regex=False).to_numpy()
        if item_type is not None:
            mask = mask & (self.catalog.item_type == self.catalog.type_code(self.item_type(item_type)))
        hits = np.flatnonzero(mask)
        order = np.lexsort((self.titles_lower.to_numpy()[hits], -self.popularity[hits]))
        return hits[order[:limit]]

    def metadata(self) -> dict[str, Any]:
        """What ``GET /metadata`` shows: the run's name, never its path on the server."""
        m = self.manifest
        c = self.catalog
        sizes = {t: int((c.item_type == i).sum()) for i, t in enumerate(c.type_names)}
        return {
            "run_id": self.run_id,
            "status": m.get("status"),
            "trained_at": m.get("finished_at"),
            "seed": m.get("seed"),
            "catalogue": sizes,
            "n_users": len(self.users),
            "model": {"name": self.model_name, "params": self.model.get_params()},
            "item_types": list(c.type_names),
            "target_type": self.target_type,
            "events": list(self.event_names),
            "versions": m.get("versions", {}),
            "index": self.report.get("index", {}),
            "load": self.report.get("load", {}),
        }


# ---------------------------------------------------------------------- loading


def _target_type(run_dir: Path, manifest: dict[str, Any], catalog: Catalog) -> str | None:
    """The run's new item type: the config's, else the one metrics.json evaluated."""
    target = ((manifest.get("config") or {}).get("data") or {}).get("target_type")
    metrics = RunLayout(run_dir).metrics
    if target is None and metrics.exists():
        target = json.loads(metrics.read_text()).get("target_type")
    return target if target in catalog.type_names else None


def model_folders(run_dir: Path) -> dict[str, Path]:
    """Model name -> folder: from ``models.json`` (written by ``hgrec run``), else ``models/*``."""
    runs = RunLayout(run_dir)
    if runs.models.exists():
        entries = json.loads(runs.models.read_text())
        return {
            name: run_dir / rel
            for name, rel in entries.items()
            if (run_dir / rel / layout.PARAMS).exists()
        }
    return {p.name: p for p in sorted(runs.models_dir.glob("*")) if (p / layout.PARAMS).exists()}


def choose_model(run_dir: Path, name: str | None) -> tuple[str, Path]:
    """The model to serve, (name, folder): ``name``, else :data:`MODEL_PREFERENCE`, else the first."""
    folders = model_folders(run_dir)
    if not folders:
        raise FileNotFoundError(
            f"{run_dir}: no saved model (expected models.json or models/<name>/params.json)"
        )
    if name is not None:
        if name not in folders:
            raise ValueError(f"{run_dir}: no model {name!r}; the run has {sorted(folders)}")
        return name, folders[name]
    for preferred in MODEL_PREFERENCE:
        if preferred in folders:
            return preferred, folders[preferred]
    return next(iter(folders.items()))


def _stored_histories(
    inter: pd.DataFrame, user_ids: pd.Index, catalog: Catalog, event_names: tuple[str, ...]
) -> tuple[Histories, dict[str, int]]:
    """CSR histories of every user (rows in ``user_ids`` order, chronological by ``order``).

    Rows whose user, item or event is not in the run are counted and skipped.
    """
    u = user_ids.get_indexer(inter[USER_ID].astype(str))
    i = pd.Index(catalog.item_ids).get_indexer(inter[ITEM_ID].astype(str))
    ev = (
        pd.Index(event_names).get_indexer(inter["event"].astype(str))
        if "event" in inter.columns else np.zeros(len(inter), dtype=np.int64)
    )
    ok = (u >= 0) & (i >= 0) & (ev >= 0)
    skipped = {
        "interactions": int(len(inter)),
        "skipped_unknown_user": int((u < 0).sum()),
        "skipped_unknown_item": int((i < 0).sum()),
        "skipped_unknown_event": int((ev < 0).sum()),
    }
    order = inter["order"].to_numpy(dtype=np.float64) if "order" in inter.columns else np.arange(len(inter), dtype=np.float64)
    weight = inter["weight"].to_numpy(dtype=np.float32) if "weight" in inter.columns else np.ones(len(inter), np.float32)
    u, i, ev, order, weight = u[ok], i[ok], ev[ok], order[ok], weight[ok]
    perm = np.lexsort((order, u))  # by user, then chronological; stable for ties
    counts = np.bincount(u, minlength=len(user_ids))
    h = Histories(
        indptr=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        items=i[perm].astype(np.int64),
        events=ev[perm].astype(np.int16),
        weights=weight[perm],
    )
    return h, skipped


def model_item_vectors(model: Recommender) -> np.ndarray | None:
    """(n_items, d) item vectors of a vector model, None for other models.

    A vector model has ``user_vectors(histories)`` and scores by dot product with
    ``item_vectors()``; HGNN-KNN keeps its item vectors as ``embeddings``.
    """
    if not callable(getattr(model, "user_vectors", None)):
        return None
    if callable(getattr(model, "item_vectors", None)):
        return np.asarray(model.item_vectors(), dtype=np.float32)  # type: ignore[attr-defined]
    emb = getattr(model, "embeddings", None)
    return None if emb is None else np.asarray(emb, dtype=np.float32)


def _event_vocabulary(model: Recommender, inter: pd.DataFrame) -> tuple[str, ...]:
    # A two-tower model fixed its event codes at training time; use exactly those.
    featurizer = getattr(model, "user_featurizer", None)
    if featurizer is not None:
        return tuple(featurizer.event_names)
    if "event" not in inter.columns:
        return (DEFAULT_EVENT,)
    return tuple(sorted(inter["event"].astype(str).unique()))


def _indexes(
    vectors: np.ndarray, catalog: Catalog, folder: Path, expect: dict[str, Any],
    exact_threshold: int, seed: int, progress: bool,
) -> tuple[TypeIndexes, str]:
    """Reuse ``folder``'s index when it was built for the same vectors, else build and save."""
    cached = load_type_indexes(folder, vectors, catalog, expect)
    if cached is not None:
        return cached, "loaded"
    built = build_type_indexes(vectors, catalog, exact_threshold, seed=seed, progress=progress)
    try:
        save_type_indexes(built, folder, expect)
        return built, "built"
    except OSError as e:  # a read-only run directory still serves, from memory
        # strerror only: the full message names the path, and /metadata shows this.
        return built, f"built (not saved: {e.strerror or type(e).__name__})"


def load_state(
    run_dir: str | Path,
    model_name: str | None = None,
    exact_threshold: int = EXACT_THRESHOLD,
    require_complete: bool = True,
    progress: bool = False,
) -> ServingState:
    """Load a finished run for serving; builds (and saves) the indexes when missing.

    Args:
        run_dir: the run directory (a symlink is resolved now, so a reload after the link
            moved serves the new target).
        model_name: a model of the run (models.json); None picks :func:`choose_model`'s default.
        exact_threshold: item types with more items use the voyager HNSW index.
        require_complete: refuse runs whose manifest is not "complete" (``UserError``).
    """
    run_dir = Path(run_dir).resolve()
    manifest = RunDir(run_dir).finished_manifest(require_complete)
    seed = int(manifest.get("seed") or 0)
    runs = RunLayout(run_dir)
    for f in layout.TABLES:
        if not runs.table(f).exists():
            raise FileNotFoundError(f"{runs.table(f)} does not exist; expected the run's data stage")
    catalog = Catalog.from_items(pd.read_parquet(runs.table(layout.ITEMS)))
    users_raw = pd.read_parquet(runs.table(layout.USERS))
    users_raw[USER_ID] = users_raw[USER_ID].astype(str)
    users = users_raw.drop(columns=[c for c in (SPLIT, "user") if c in users_raw.columns])
    users = users.set_index(USER_ID, drop=True)
    inter = pd.read_parquet(runs.table(layout.INTERACTIONS))

    served_name, model_dir = choose_model(run_dir, model_name)
    model = load_model(model_dir)
    event_names = _event_vocabulary(model, inter)
    stored, load_report = _stored_histories(inter, users.index, catalog, event_names)
    threshold_key = {"exact_threshold": int(exact_threshold)}

    report: dict[str, Any] = {"load": load_report, "index": {}}
    user_indexes = None
    model_vectors = None
    model_vectors = model_item_vectors(model)
    if model_vectors is not None:
        expect = {"model": served_name, "state_sha256": file_sha256(model_dir / layout.STATE),
                  **threshold_key}
        user_indexes, how = _indexes(
            model_vectors, catalog, runs.index(served_name), expect,
            exact_threshold, seed, progress,
        )
        report["index"]["user"] = {"how": how, "types": user_indexes.meta}

    emb_file = runs.embeddings()
    item_vectors = None
    source = None
    if emb_file.exists():
        item_vectors = read_item_vectors(emb_file, catalog)[0]
        source = "hgnn"
        expect = {"source": "hgnn", "sha256": file_sha256(emb_file), **threshold_key}
    elif model_vectors is not None:
        item_vectors, source = model_vectors, f"model:{served_name}"
        expect = {"source": source, "state_sha256": file_sha256(model_dir / layout.STATE),
                  **threshold_key}
    item_indexes = None
    if item_vectors is not None:
        item_indexes, how = _indexes(
            item_vectors, catalog, runs.index("similar"), expect,
            exact_threshold, seed, progress,
        )
        report["index"]["similar"] = {"how": how, "source": source, "types": item_indexes.meta}

    popularity = np.bincount(stored.items, minlength=catalog.n_items).astype(np.int64)
    return ServingState(
        target_type=_target_type(run_dir, manifest, catalog),
        run_dir=run_dir,
        manifest=manifest,
        catalog=catalog,
        users=users,
        stored=stored,
        event_names=event_names,
        model=model,
        model_name=served_name,
        user_indexes=user_indexes,
        item_indexes=item_indexes,
        explain_vectors=item_vectors if item_vectors is not None else model_vectors,
        popularity=popularity,
        item_lookup=pd.Index(catalog.item_ids, dtype=object),
        titles=catalog.items[TITLE].fillna("").astype(str).to_numpy(dtype=object),
        titles_lower=catalog.items[TITLE].fillna("").astype(str).str.lower(),
        report=report,
    )
