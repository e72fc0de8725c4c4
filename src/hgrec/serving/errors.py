"""Error answers that can always be sent, in the shapes the OpenAPI schema documents.

* 422: FastAPI's shape, ``{"detail": [{"loc": [...], "msg": "...", "type": "..."}]}``, for
  pydantic's validation errors and for the service's own (:class:`ServingError` with status
  422), so a client reads one shape for every invalid request.
* every other 4xx/5xx: ``{"detail": "one sentence"}``.

An invalid input is echoed back escaped and cut to :data:`~hgrec.serving.limits.MAX_ECHO`
characters: JSON allows a lone surrogate (``"\\ud800"``), NaN or a megabyte-long string, and
an error answer that fails to encode them turns a 422 into a 500 (and, over HTTP/1.1, a
reset of the keep-alive connection). The body is rendered ASCII-only, which can encode
any string.
"""

from __future__ import annotations

import itertools
import json
import math
import reprlib
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from hgrec.serving.limits import MAX_ECHO, MAX_MESSAGE
from hgrec.serving.state import ServingError

#: Body of an error answer whose own rendering failed (never expected; the last resort).
FALLBACK_BODY = b'{"detail":"the error could not be described"}'
#: ``detail`` of a 500: nothing about the server's internals.
INTERNAL_ERROR = "internal error; the server log has the details"



def _short_repr() -> reprlib.Repr:
    """A repr that stops after a few elements and levels (Python 3.11 has no keyword form)."""
    r = reprlib.Repr()
    r.maxlevel, r.maxdict, r.maxlist, r.maxtuple, r.maxset = 3, 5, 5, 5, 5
    r.maxstring, r.maxother, r.maxlong = MAX_ECHO, MAX_ECHO, 40
    return r


_REPR = _short_repr()
#: Entries of a list or object echoed back.
_ECHO_ITEMS = 5


class SafeJSONResponse(JSONResponse):
    """A JSON answer rendered ASCII-only (``\\uXXXX`` escapes), so any string encodes; a body
    that still cannot be rendered (NaN, an unknown type) becomes :data:`FALLBACK_BODY`."""

    def render(self, content: Any) -> bytes:
        try:
            return json.dumps(content, ensure_ascii=True, allow_nan=False,
                              separators=(",", ":")).encode("ascii")
        except (TypeError, ValueError):
            return FALLBACK_BODY


def safe_text(value: str, limit: int = MAX_ECHO) -> str:
    """``value`` cut to ``limit`` characters (``…`` marks a cut), lone surrogates escaped."""
    cut = value if len(value) <= limit else value[:limit] + "…"
    return cut.encode("utf-8", "backslashreplace").decode("utf-8")


def echo(value: Any, depth: int = 0) -> Any:
    """A short, always-encodable stand-in for an invalid input: small ints, finite floats,
    booleans and None as they are; strings escaped and cut; lists and objects cut to their
    first few entries (3 levels deep); anything else as a cut repr."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and abs(value) < 10**15:
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, (list, tuple)) and depth < 3:
        head = [echo(v, depth + 1) for v in value[:_ECHO_ITEMS]]
        return head + ["…"] if len(value) > _ECHO_ITEMS else head
    if isinstance(value, Mapping) and depth < 3:
        return {safe_text(str(k)): echo(v, depth + 1)
                for k, v in itertools.islice(value.items(), _ECHO_ITEMS)}
    return safe_text(_REPR.repr(value))


def _loc(parts: Iterable[Any]) -> list[str | int]:
    return [p if isinstance(p, int) and not isinstance(p, bool) else safe_text(str(p))
            for p in parts]


def validation_detail(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Pydantic/FastAPI errors as the documented ``ValidationError`` objects, made safe."""
    out = []
    for e in errors:
        item: dict[str, Any] = {
            "loc": _loc(e.get("loc", ())),
            "msg": safe_text(str(e.get("msg", "")), limit=MAX_MESSAGE),
            "type": safe_text(str(e.get("type", "value_error"))),
        }
        if "input" in e:
            item["input"] = echo(e["input"])
        if isinstance(e.get("ctx"), Mapping):
            item["ctx"] = {safe_text(str(k)): echo(v) for k, v in e["ctx"].items()}
        out.append(item)
    return out


def _source(request: Request) -> str:
    """Where a handler's own 422 points: the JSON body of a POST, else the query string."""
    return "body" if request.method == "POST" else "query"


def install_error_handlers(app: FastAPI) -> None:
    """Route every error of ``app`` through the shapes of this module."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> SafeJSONResponse:
        detail = validation_detail(exc.errors())
        return SafeJSONResponse(status_code=422, content={"detail": detail})

    @app.exception_handler(ServingError)
    async def _serving(request: Request, exc: ServingError) -> SafeJSONResponse:
        if exc.status == 422:
            error = {"loc": [_source(request), *exc.loc], "msg": exc.message,
                     "type": "value_error"}
            return SafeJSONResponse(status_code=422, headers=exc.headers,
                                    content={"detail": validation_detail([error])})
        return SafeJSONResponse(status_code=exc.status, headers=exc.headers,
                                content={"detail": safe_text(exc.message, MAX_MESSAGE)})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> SafeJSONResponse:
        return SafeJSONResponse(status_code=exc.status_code,
                                content={"detail": safe_text(str(exc.detail), MAX_MESSAGE)},
                                headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> SafeJSONResponse:
        print(f"[hgrec serve] {request.method} {safe_text(request.url.path)}: internal error "
              f"{type(exc).__name__}", file=sys.stderr, flush=True)
        return SafeJSONResponse(status_code=500, content={"detail": INTERNAL_ERROR})
