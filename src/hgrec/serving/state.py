"""Everything the service answers from, and how it answers: :class:`ServingState`.

A :class:`ServingState` is immutable once loaded (:func:`hgrec.serving.load.load_state`):
the service holds one reference and a reload builds a complete new state before swapping
that reference (``app.StateHolder``), so a request sees one run from start to end.
"""

from __future__ import annotations

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
from hgrec.data.schema import DEFAULT_EVENT
from hgrec.models.base import Recommender
from hgrec.serving.index import (
    TypeIndexes,
)


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
