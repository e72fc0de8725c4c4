"""The HTTP service: FastAPI app over one :class:`~hgrec.serving.state.ServingState`.

Endpoints (OpenAPI at ``/docs`` and ``/openapi.json``; every error status is documented):

* ``POST /recommend``: raw history (+ demographics) -> top-k of an item type, with the
  history items that explain each result ("because you liked"). Users never seen in
  training are served the same way (P1 section 4.3: real-time user vectors).
* ``GET /users/{user_id}/recommendations``: the same from a stored user's history.
* ``GET /items/{item_id}/similar``: nearest items in the HGNN space, across types.
* ``GET /items/search``: title search (the try-it page's picker).
* ``GET /healthz``, ``GET /metadata``, ``GET /metrics`` (Prometheus text format).
* ``POST /admin/reload``: switch to another run under the runs root; only served when an
  admin token is configured, and only to requests carrying it (see
  :mod:`hgrec.serving.security`). SIGHUP reloads the served path (see :func:`install_sighup`).

A reload loads the new state completely, then swaps one reference; a request reads that
reference once, so requests in flight finish on the state they started with.

``POST /recommend`` requests that wait at the same moment are answered together: one user
tower forward and one index search (:mod:`hgrec.serving.batching`); each answer has the
items the request would get alone, scores equal to float32 rounding (matmul blocking
depends on the batch size). Answers are rendered straight to JSON bytes with
``pydantic_core.to_json`` (the same bytes the response models give, without building them).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from pydantic_core import to_json

from hgrec.serving.batching import MAX_BATCH, MicroBatcher
from hgrec.serving.errors import install_error_handlers, safe_text
from hgrec.serving.index import EXACT_THRESHOLD
from hgrec.serving.limits import MAX_BODY_BYTES, MAX_K, MAX_MESSAGE, MAX_SEARCH_LIMIT
from hgrec.serving.load import load_state
from hgrec.serving.metrics import CONTENT_TYPE, Metrics, MetricsMiddleware, server_timing
from hgrec.serving.schemas import (
    ErrorMessage,
    HealthResponse,
    Id,
    ItemOut,
    RecommendRequest,
    RecommendResponse,
    ReloadRequest,
    ReloadResponse,
    SearchResponse,
    SearchText,
    SimilarItem,
    SimilarResponse,
)
from hgrec.serving.security import (
    LOOPBACK_HOSTS,
    BodyLimitMiddleware,
    HostCheckMiddleware,
    confine,
    runs_root,
    token_matches,
)
from hgrec.serving.state import (
    HistoryRequest,
    Recommendation,
    ServingError,
    ServingState,
)

RUN_HEADER = "X-Hgrec-Run"
#: The one answer to a refused reload: the same whether the path exists, lies outside the
#: runs root or holds an unfinished run, so it tells nothing about the server's files.
RELOAD_REFUSED = (
    "reload refused: run_dir does not name a complete run under the runs root; still serving "
    "the previous run (the server log says why)"
)
#: Answer to an admin request without the right token.
ADMIN_UNAUTHORIZED = "missing or wrong admin token; send 'Authorization: Bearer <token>'"

# Documented error answers (OpenAPI ``responses=``); 422 is added by FastAPI where a route
# has parameters, in its own shape, which the service's 422s share.
_Responses = dict[int | str, dict[str, Any]]
_HOST: _Responses = {400: {"model": ErrorMessage,
                           "description": "Host header not allowed, or a body that is not JSON"}}
# The same for a route whose own answers are not JSON (its error answers still are).
_HOST_JSON: _Responses = {400: {"description": _HOST[400]["description"], "content": {
    "application/json": {"schema": {"$ref": "#/components/schemas/ErrorMessage"}}}}}
_TOO_LARGE: _Responses = {413: {"model": ErrorMessage,
                                "description": f"body over {MAX_BODY_BYTES} bytes"}}
_NOT_FOUND: _Responses = {404: {"model": ErrorMessage,
                                "description": "unknown id (named in the message)"}}
_UNAUTHORIZED: _Responses = {401: {"model": ErrorMessage,
                                   "description": "missing or wrong admin token"}}


class PrometheusResponse(PlainTextResponse):
    """The text exposition format's content type (Starlette adds the charset)."""

    media_type = CONTENT_TYPE.removesuffix("; charset=utf-8")


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
            _log(f"SIGHUP: {old.run_id} -> {new.run_id}")
        except Exception as e:  # noqa: BLE001 - keep serving the old state whatever went wrong
            _log(f"SIGHUP reload failed, still serving: {e}")

    signal.signal(signal.SIGHUP, lambda *_: threading.Thread(target=_reload, daemon=True).start())


def _item_out(state: ServingState, i: int) -> dict[str, Any]:
    c = state.catalog
    return {
        "item_id": str(c.item_ids[i]),
        "title": str(state.titles[i]),
        "item_type": c.type_names[int(c.item_type[i])],
    }


def _recommend_payload(
    state: ServingState, rec: Recommendation, unknown: list[str], item_type: str
) -> dict[str, Any]:
    """A :class:`RecommendResponse` as plain JSON values, fields in the model's order."""
    items = []
    for i, score, why in zip(rec.items.tolist(), rec.scores.tolist(), rec.because, strict=True):
        out = _item_out(state, i)  # loop over the k results
        out["score"] = score
        out["because"] = [{"item_id": str(state.catalog.item_ids[h]), "title": str(state.titles[h]),
                           "similarity": sim} for h, sim in why]
        items.append(out)
    return {"items": items, "unknown_items": unknown, "item_type": item_type,
            "model": state.model_name, "run_id": state.run_id}


@dataclass(frozen=True)
class _RecommendJob:
    """One ``POST /recommend`` waiting for its micro-batch."""

    state: ServingState  # read once per request: a reload mid-batch cannot mix two runs
    request: HistoryRequest
    item_type: str
    k: int
    exclude_seen: bool
    t0: float  # perf_counter() when the request reached the endpoint


def _demographics_key(user: dict[str, Any] | None) -> tuple[tuple[str, str], ...]:
    """Requests that may share one demographics table: the same fields with the same value
    types, so every column gets the dtype it gets for each request alone."""
    return tuple(sorted((k, type(v).__name__) for k, v in (user or {}).items()))


def _resolve_type(state: ServingState, item_type: str | None) -> str:
    if item_type is None:
        if state.target_type is None:
            raise ServingError(
                422, f"item_type is required (this run names no target type); expected one of "
                f"{list(state.catalog.type_names)}", loc=("item_type",),
            )
        return state.target_type
    return state.item_type(item_type)


def create_app(
    holder: StateHolder,
    admin_token: str | None = None,
    runs_root_dir: str | Path | None = None,
    allowed_hosts: Iterable[str] = LOOPBACK_HOSTS,
    max_batch: int = MAX_BATCH,
    batch_window: float = 0.0,
) -> FastAPI:
    """The FastAPI app serving ``holder.state``.

    Args:
        holder: the state reference (swapped by reloads).
        admin_token: serve ``POST /admin/reload`` to requests with ``Authorization: Bearer
            <admin_token>``; None: no admin route at all (404).
        runs_root_dir: reloads may only name runs inside this folder (resolved); default: the
            folder holding ``holder.run_dir``.
        allowed_hosts: ``Host`` names answered (port ignored); others get 400; ``"*"``: any.
        max_batch: most ``POST /recommend`` requests computed together (1: one at a time).
        batch_window: seconds the first request of a batch waits for others (0: it takes
            only those already parsed; see :mod:`hgrec.serving.batching`).
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
    # One computation at a time (a micro-batch of /recommend, or one request of the others).
    compute = threading.Lock()
    app.state.holder = holder
    app.state.metrics = metrics
    install_error_handlers(app)
    # Added last = outermost: metrics also count the host check's 400s and the 413s.
    app.add_middleware(BodyLimitMiddleware, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(HostCheckMiddleware, allowed=tuple(allowed_hosts))
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    def _answer(route: str, state: ServingState, rec: Recommendation, unknown: list[str],
                item_type: str, t0: float) -> Response:
        body = to_json(_recommend_payload(state, rec, unknown, item_type))
        metrics.record_stages(route, rec.timings)
        return Response(body, media_type="application/json", headers={
            "Server-Timing": server_timing(rec.timings, time.perf_counter() - t0),
            RUN_HEADER: state.run_id,
        })

    def compute_batch(jobs: list[_RecommendJob]) -> list[Response | Exception]:
        out: list[Response | Exception | None] = [None] * len(jobs)
        metrics.record_batch(len(jobs))
        groups: dict[tuple[int, tuple[tuple[str, str], ...]], list[int]] = {}
        for j, job in enumerate(jobs):  # loop over the batch
            groups.setdefault((id(job.state), _demographics_key(job.request.user)), []).append(j)
        with compute:
            for rows in groups.values():  # usually one group: same run, no demographics
                try:
                    answers = compute_group([jobs[j] for j in rows])
                except Exception:  # noqa: BLE001 - one at a time, so only the culprit fails
                    answers = []
                    for j in rows:  # loop over the failed group
                        try:
                            answers += compute_group([jobs[j]])
                        except Exception as e:  # noqa: BLE001 - its own 500 (or 4xx)
                            answers.append(e)
                for j, answer in zip(rows, answers, strict=True):
                    out[j] = answer
        return [o if o is not None else RuntimeError("job not computed") for o in out]

    def compute_group(jobs: list[_RecommendJob]) -> list[Response | Exception]:
        """Jobs of one run whose demographics can share a table: one batched computation."""
        state = jobs[0].state
        history, unknown = state.batch_histories([job.request for job in jobs])
        recs = state.recommend_batch(history, [job.item_type for job in jobs],
                                     [job.k for job in jobs], [job.exclude_seen for job in jobs])
        return [rec if isinstance(rec, Exception) else
                _answer("/recommend", state, rec, missing, job.item_type, job.t0)
                for job, missing, rec in zip(jobs, unknown, recs, strict=True)]

    batcher: MicroBatcher[_RecommendJob, Response] = MicroBatcher(
        compute_batch, max_batch=max_batch, window=batch_window)
    app.state.batcher = batcher

    @app.post("/recommend", response_model=RecommendResponse, tags=["recommend"],
              responses={**_HOST, **_TOO_LARGE})
    async def recommend(body: RecommendRequest) -> Response:
        """Top-k items of ``item_type`` for a raw history; unknown item ids are skipped and
        listed in ``unknown_items``."""
        t0 = time.perf_counter()
        state = holder.state  # read once: a reload mid-request cannot mix two runs
        item_type = _resolve_type(state, body.item_type)
        entries = body.history
        request = state.check_history(
            [e.item_id for e in entries], [e.event for e in entries],
            [e.timestamp for e in entries], body.user,
        )
        return await batcher.submit(
            _RecommendJob(state, request, item_type, body.k, body.exclude_seen, t0))

    @app.get("/users/{user_id}/recommendations", response_model=RecommendResponse,
             tags=["recommend"], responses={**_HOST, **_NOT_FOUND})
    def user_recommendations(
        user_id: Annotated[Id, PathParam(description="a user of the run")],
        item_type: Annotated[Id | None, Query()] = None,
        k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
        exclude_seen: bool = True,
    ) -> Response:
        """Recommendations from a stored user's history; 404 for users not in the run."""
        t0 = time.perf_counter()
        state = holder.state
        t = _resolve_type(state, item_type)
        with compute:
            rec = state.recommend(state.stored_history(user_id), t, k, exclude_seen)
        return _answer("/users/{user_id}/recommendations", state, rec, [], t, t0)

    @app.get("/items/search", response_model=SearchResponse, tags=["items"], responses=_HOST)
    def search_items(
        q: Annotated[SearchText, Query(description="part of a title")],
        item_type: Annotated[Id | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_SEARCH_LIMIT)] = 20,
    ) -> SearchResponse:
        """Items whose title contains ``q`` (case-insensitive), most interacted-with first."""
        state = holder.state
        hits = state.search_titles(q, item_type, limit)
        return SearchResponse(
            items=[ItemOut(**_item_out(state, int(i))) for i in hits.tolist()], run_id=state.run_id
        )

    @app.get("/items/{item_id}/similar", response_model=SimilarResponse, tags=["items"],
             responses={**_HOST, **_NOT_FOUND})
    def similar_items(
        item_id: Annotated[Id, PathParam(description="a catalogue item id")],
        item_type: Annotated[Id | None, Query(description="default: all")] = None,
        k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
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

    @app.get("/healthz", response_model=HealthResponse, tags=["ops"], responses=_HOST)
    async def healthz() -> HealthResponse:  # on the event loop: no thread hand-off
        state = holder.state
        return HealthResponse(status="ok", run_id=state.run_id, model=state.model_name)

    @app.get("/metadata", tags=["ops"], responses=_HOST)
    def metadata() -> dict[str, Any]:
        """Run id (its folder's name, never its path), when it was trained, catalogue sizes per
        type, model, versions, index."""
        return holder.state.metadata()

    @app.get("/metrics", response_class=PrometheusResponse, tags=["ops"], responses=_HOST_JSON)
    def get_metrics() -> PrometheusResponse:
        """Request counts by route and status, latency histograms and the tower / index /
        explain split, in the Prometheus text exposition format 0.0.4."""
        state = holder.state
        info = {"run_id": state.run_id, "model": state.model_name}
        return PrometheusResponse(metrics.render(info))

    if admin_token is not None:
        _add_admin(app, holder, admin_token, runs_root(runs_root_dir, holder.run_dir))

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(resources.files("hgrec.serving").joinpath("static/index.html").read_text())

    return app


def _add_admin(app: FastAPI, holder: StateHolder, token: str, root: Path) -> None:
    """``POST /admin/reload``, for requests carrying ``token``, confined to runs under ``root``."""

    async def require_token(request: Request) -> None:
        if not token_matches(request.headers.get("authorization"), token):
            raise ServingError(401, ADMIN_UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})

    @app.post("/admin/reload", response_model=ReloadResponse, tags=["ops"],
              dependencies=[Depends(require_token)],
              responses={**_HOST, **_UNAUTHORIZED, **_TOO_LARGE})
    async def reload(body: ReloadRequest | None = None) -> ReloadResponse:
        """Switch to ``run_dir`` (a run under the runs root; default: the served path again)
        without dropping requests."""
        t0 = time.perf_counter()
        target: Path | None = None
        if body is not None and body.run_dir is not None:
            target = confine(root, body.run_dir)
            if target is None:
                _log(f"reload refused: {safe_text(body.run_dir)!r} is not a folder inside the "
                     "runs root")
                raise ServingError(422, RELOAD_REFUSED, loc=("run_dir",))
        try:
            old, new = await run_in_threadpool(holder.reload, target)
        except Exception as e:  # noqa: BLE001 - the old run keeps serving; the log says why
            _log(f"reload failed, still serving: {safe_text(str(e), MAX_MESSAGE)}")
            raise ServingError(422, RELOAD_REFUSED, loc=("run_dir",)) from e
        _log(f"reload: {old.run_id} -> {new.run_id}")
        return ReloadResponse(
            previous_run_id=old.run_id, run_id=new.run_id, seconds=time.perf_counter() - t0
        )


def _log(message: str) -> None:
    print(f"[hgrec serve] {message}", file=sys.stderr, flush=True)
