"""The HTTP service: FastAPI app over one :class:`~hgrec.serving.state.ServingState`.

Endpoints (OpenAPI at ``/docs`` and ``/openapi.json``):

* ``POST /recommend``: raw history (+ demographics) -> top-k of an item type, with the
  history items that explain each result ("because you liked"). Users never seen in
  training are served the same way (P1 section 4.3: real-time user vectors).
* ``GET /users/{user_id}/recommendations``: the same from a stored user's history.
* ``GET /items/{item_id}/similar``: nearest items in the HGNN space, across types.
* ``GET /items/search``: title search (the try-it page's picker).
* ``GET /healthz``, ``GET /metadata``, ``GET /metrics``.
* ``POST /admin/reload``: switch to another (newer) run; loopback clients only. SIGHUP does
  the same for the served path (see :func:`install_sighup`).

A reload loads the new state completely, then swaps one reference; a request reads that
reference once, so requests in flight finish on the state they started with.
"""

from __future__ import annotations

import ipaddress
import signal
import sys
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response

from hgrec.serving.index import EXACT_THRESHOLD
from hgrec.serving.metrics import Metrics, server_timing
from hgrec.serving.schemas import (
    MAX_K,
    MAX_STR,
    Because,
    ItemOut,
    RecommendedItem,
    RecommendRequest,
    RecommendResponse,
    ReloadRequest,
    ReloadResponse,
    SearchResponse,
    SimilarItem,
    SimilarResponse,
)
from hgrec.serving.state import Recommendation, ServingError, ServingState, load_state

RUN_HEADER = "X-Hgrec-Run"


class StateHolder:
    """The one reference to the served state, swapped atomically by :meth:`reload`.

    Args:
        run_dir: the served run directory (may be a symlink; re-resolved on each reload).
        model_name: model folder to serve (None: the default choice).
        exact_threshold: see :func:`hgrec.serving.index.build_type_indexes`.
        state: an already loaded state (tests); None loads ``run_dir`` now.
    """

    def __init__(
        self,
        run_dir: str | Path,
        model_name: str | None = None,
        exact_threshold: int = EXACT_THRESHOLD,
        state: ServingState | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.model_name = model_name
        self.exact_threshold = exact_threshold
        self._lock = threading.Lock()  # one reload at a time; readers never take it
        self.state: ServingState = state if state is not None else self._load(self.run_dir)

    def _load(self, run_dir: Path) -> ServingState:
        return load_state(run_dir, self.model_name, self.exact_threshold)

    def reload(self, run_dir: str | Path | None = None) -> tuple[ServingState, ServingState]:
        """Load ``run_dir`` (default: the served path) fully, then swap; returns (old, new).

        On any error the served state is unchanged and the error propagates.
        """
        with self._lock:
            target = self.run_dir if run_dir is None else Path(run_dir)
            new = self._load(target)
            old, self.state = self.state, new  # the swap: one reference assignment
            self.run_dir = target
            return old, new


def install_sighup(holder: StateHolder) -> None:
    """On SIGHUP, reload the served path in a background thread (the handler must return
    quickly); failures are printed and the current run keeps being served."""

    def _reload() -> None:
        try:
            old, new = holder.reload()
            print(f"[hgrec serve] SIGHUP: {old.run_id} -> {new.run_id}", file=sys.stderr, flush=True)
        except Exception as e:  # noqa: BLE001 - keep serving the old state whatever went wrong
            print(f"[hgrec serve] SIGHUP reload failed, still serving: {e}", file=sys.stderr, flush=True)

    signal.signal(signal.SIGHUP, lambda *_: threading.Thread(target=_reload, daemon=True).start())


def is_loopback(host: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and 'localhost'; False for anything else or None."""
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _item_out(state: ServingState, i: int) -> dict[str, Any]:
    c = state.catalog
    return {
        "item_id": str(c.item_ids[i]),
        "title": str(state.titles[i]),
        "item_type": c.type_names[int(c.item_type[i])],
    }


def _recommend_response(
    state: ServingState, rec: Recommendation, unknown: list[str], item_type: str
) -> RecommendResponse:
    items = [
        RecommendedItem(
            **_item_out(state, int(i)),
            score=float(s),
            because=[Because(**{k: v for k, v in _item_out(state, h).items() if k != "item_type"},
                             similarity=sim) for h, sim in why],
        )
        for i, s, why in zip(rec.items.tolist(), rec.scores.tolist(), rec.because, strict=True)
    ]  # loop over the k results
    return RecommendResponse(
        items=items, unknown_items=unknown, item_type=item_type, model=state.model_name,
        run_id=state.run_id,
    )


def _resolve_type(state: ServingState, item_type: str | None) -> str:
    if item_type is None:
        if state.target_type is None:
            raise ServingError(
                422, f"item_type is required (this run names no target type); expected one of "
                f"{list(state.catalog.type_names)}"
            )
        return state.target_type
    return state.item_type(item_type)


def create_app(holder: StateHolder, admin: bool = True) -> FastAPI:
    """The FastAPI app serving ``holder.state``.

    Args:
        holder: the state reference (swapped by reloads).
        admin: serve ``POST /admin/reload`` at all (the CLI turns it off when bound to a
            non-loopback address); it also refuses every non-loopback client.
    """
    app = FastAPI(
        title="hgrec",
        summary="2T-HGNN recommendations for a new, sparse item type (arXiv 2403.05185).",
        version="0.1.0",
    )
    metrics = Metrics()
    # Scoring is ~2 ms of torch/numpy work holding the GIL for most of it; FastAPI runs sync
    # endpoints on a pool of 40 threads, and letting them all compute at once made each
    # request wait on the others (measured: 167 ms "tower" time per request at 200 req/s).
    # One request computes at a time; the others queue for a few milliseconds.
    compute = threading.Lock()
    app.state.holder = holder
    app.state.metrics = metrics

    @app.exception_handler(ServingError)
    async def _serving_error(request: Request, exc: ServingError) -> JSONResponse:
        return JSONResponse(status_code=exc.status, content={"detail": exc.message})

    def _timed(route: str, state: ServingState, rec: Recommendation, t0: float,
               response: Response) -> None:
        total = time.perf_counter() - t0
        metrics.record(route, total, rec.timings)
        response.headers["Server-Timing"] = server_timing(rec.timings, total)
        response.headers[RUN_HEADER] = state.run_id

    @app.post("/recommend", response_model=RecommendResponse, tags=["recommend"])
    def recommend(body: RecommendRequest, response: Response) -> RecommendResponse:
        """Top-k items of ``item_type`` for a raw history; unknown item ids are skipped and
        listed in ``unknown_items``."""
        t0 = time.perf_counter()
        state = holder.state  # read once: a reload mid-request cannot mix two runs
        item_type = _resolve_type(state, body.item_type)
        history, unknown = state.history_from_request(
            [e.item_id for e in body.history], [e.event for e in body.history],
            [e.timestamp for e in body.history], body.user,
        )
        with compute:
            rec = state.recommend(history, item_type, body.k, body.exclude_seen)
        out = _recommend_response(state, rec, unknown, item_type)
        _timed("recommend", state, rec, t0, response)
        return out

    @app.get("/users/{user_id}/recommendations", response_model=RecommendResponse,
             tags=["recommend"])
    def user_recommendations(
        user_id: str,
        response: Response,
        item_type: str | None = Query(None, max_length=MAX_STR),
        k: int = Query(10, ge=1, le=MAX_K),
        exclude_seen: bool = True,
    ) -> RecommendResponse:
        """Recommendations from a stored user's history; 404 for users not in the run."""
        t0 = time.perf_counter()
        state = holder.state
        t = _resolve_type(state, item_type)
        with compute:
            rec = state.recommend(state.stored_history(user_id), t, k, exclude_seen)
        out = _recommend_response(state, rec, [], t)
        _timed("user_recommendations", state, rec, t0, response)
        return out

    @app.get("/items/search", response_model=SearchResponse, tags=["items"])
    def search_items(
        q: str = Query(min_length=1, max_length=MAX_STR, description="part of a title"),
        item_type: str | None = Query(None, max_length=MAX_STR),
        limit: int = Query(20, ge=1, le=100),
    ) -> SearchResponse:
        """Items whose title contains ``q`` (case-insensitive), most interacted-with first."""
        state = holder.state
        hits = state.search_titles(q, item_type, limit)
        return SearchResponse(
            items=[ItemOut(**_item_out(state, int(i))) for i in hits.tolist()], run_id=state.run_id
        )

    @app.get("/items/{item_id}/similar", response_model=SimilarResponse, tags=["items"])
    def similar_items(
        item_id: str,
        item_type: str | None = Query(None, max_length=MAX_STR, description="default: all"),
        k: int = Query(10, ge=1, le=MAX_K),
    ) -> SimilarResponse:
        """Nearest items by HGNN embedding (dot product), across item types unless given."""
        state = holder.state
        with compute:
            row, ids, scores = state.similar(item_id, item_type, k)
        return SimilarResponse(
            item=ItemOut(**_item_out(state, row)),
            items=[SimilarItem(**_item_out(state, int(i)), score=float(s))
                   for i, s in zip(ids.tolist(), scores.tolist(), strict=True)],
            run_id=state.run_id,
        )

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        state = holder.state
        return {"status": "ok", "run_id": state.run_id, "model": state.model_name}

    @app.get("/metadata", tags=["ops"])
    def metadata() -> dict[str, Any]:
        """Run id, when it was trained, catalogue sizes per type, model, versions, index."""
        return holder.state.metadata()

    @app.get("/metrics", tags=["ops"])
    def get_metrics() -> dict[str, Any]:
        """Requests and in-process seconds per route, split into tower / index / explain."""
        return metrics.snapshot()

    if admin:
        @app.post("/admin/reload", response_model=ReloadResponse, tags=["ops"],
                  responses={403: {"description": "client is not on the loopback interface"}})
        async def reload(request: Request, body: ReloadRequest | None = None) -> ReloadResponse:
            """Switch to ``run_dir`` (default: the served path again) without dropping requests."""
            host = request.client.host if request.client is not None else None
            if not is_loopback(host):
                raise ServingError(403, f"/admin/reload is only served to loopback clients, not {host!r}")
            t0 = time.perf_counter()
            try:
                old, new = await run_in_threadpool(holder.reload, body.run_dir if body else None)
            except Exception as e:  # noqa: BLE001 - the old run keeps serving; say why
                raise ServingError(422, f"reload failed, still serving the previous run: {e}") from e
            return ReloadResponse(
                previous_run_id=old.run_id, run_id=new.run_id, seconds=time.perf_counter() - t0
            )

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(resources.files("hgrec.serving").joinpath("static/index.html").read_text())

    return app
