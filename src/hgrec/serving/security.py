"""Who may do what: the admin token, the runs root reloads are confined to, allowed hosts, and
how large a request body may be.

* ``POST /admin/reload`` exists only when an admin token is configured (``hgrec serve
  --admin-token`` or :data:`ADMIN_TOKEN_ENV`) and then needs ``Authorization: Bearer TOKEN``.
  A browser cannot add that header to a cross-origin request without a CORS preflight,
  which this service never grants, so a web page cannot trigger a reload.
* A reload may only name a run inside the runs root, after resolving ``..`` and symlinks; every
  refusal reads the same, whether the path exists or not, and names no path.
* A body over :data:`~hgrec.serving.limits.MAX_BODY_BYTES` gets a 413 before it is read (by
  its ``Content-Length``) or as soon as the bytes read pass the limit (chunked bodies).
* Requests whose ``Host`` header is not an allowed host get a 400 (DNS rebinding: a web page
  whose name resolves to 127.0.0.1 still sends its own name as Host).
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hgrec.errors import UserError
from hgrec.serving.errors import SafeJSONResponse
from hgrec.serving.limits import MAX_ADMIN_TOKEN, MAX_BODY_BYTES, MIN_ADMIN_TOKEN

#: Environment variable holding the admin token (preferred to ``--admin-token``, which other
#: users of the machine can read in the process list).
ADMIN_TOKEN_ENV = "HGREC_ADMIN_TOKEN"
#: Host names always allowed: the loopback interface.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
#: Bind addresses that mean "every interface": not a name clients use.
WILDCARD_BINDS = frozenset({"0.0.0.0", "::", ""})
#: ``detail`` of a body over the size limit.
TOO_LARGE = f"request body over {MAX_BODY_BYTES} bytes"
#: ``detail`` of a refused ``Host``.
BAD_HOST = "invalid or disallowed Host header (hgrec serve --allowed-hosts lists the allowed ones)"

_TOKEN = re.compile(r"[!-~]+")  # printable ASCII, no spaces


def admin_token(given: str | None, environ: Mapping[str, str]) -> str | None:
    """The admin token: ``given`` (``--admin-token``), else ``environ[ADMIN_TOKEN_ENV]``, else None.

    Raises:
        UserError: a token shorter than :data:`MIN_ADMIN_TOKEN` or longer than
            :data:`MAX_ADMIN_TOKEN` characters, or with characters other than printable ASCII.
    """
    token = given if given is not None else environ.get(ADMIN_TOKEN_ENV) or None
    if token is None:
        return None
    source = "--admin-token" if given is not None else ADMIN_TOKEN_ENV
    if not MIN_ADMIN_TOKEN <= len(token) <= MAX_ADMIN_TOKEN or not _TOKEN.fullmatch(token):
        raise UserError(
            f"{source}: a token of {len(token)} characters; expected {MIN_ADMIN_TOKEN} to "
            f"{MAX_ADMIN_TOKEN} printable ASCII characters without spaces (e.g. `openssl rand "
            "-hex 32`)"
        )
    return token


def token_matches(authorization: str | None, token: str) -> bool:
    """True when ``authorization`` is ``Bearer <token>`` (scheme case-insensitive), compared in
    constant time."""
    if authorization is None:
        return False
    scheme, _, given = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    # Header values are latin-1 text, so this encoding cannot fail.
    return hmac.compare_digest(given.strip().encode("latin-1", "replace"), token.encode("ascii"))


def runs_root(root: str | Path | None, run: str | Path) -> Path:
    """The folder reloads are confined to, resolved: ``root``, else the folder holding ``run``
    (the link itself when ``run`` is a symlink such as ``runs/current``).

    Raises:
        UserError: ``root`` is not an existing folder.
    """
    folder = Path(root) if root is not None else Path(run).absolute().parent
    if not folder.is_dir():
        raise UserError(f"--runs-root {folder}: not a folder; expected the folder holding the runs")
    return folder.resolve()


def confine(root: Path, run_dir: str) -> Path | None:
    """``root / run_dir`` when it resolves (``..`` and symlinks followed) to an existing folder
    strictly inside the resolved ``root``; None otherwise.

    The unresolved path is returned, so a later SIGHUP re-resolves a symlinked run.
    """
    candidate = root / run_dir  # an absolute run_dir replaces root, then must lie inside it
    try:
        resolved = candidate.resolve(strict=True)
    except (OSError, RuntimeError, ValueError):  # missing, a symlink loop, a NUL byte
        return None
    if resolved == root or not resolved.is_relative_to(root) or not resolved.is_dir():
        return None
    return candidate


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


def normalize_host(host: str) -> str:
    """Lower case, IPv6 brackets and a trailing dot removed: the form hosts are compared in."""
    return host.strip().lower().removeprefix("[").removesuffix("]").rstrip(".")


def default_allowed_hosts(bind_host: str) -> tuple[str, ...]:
    """Loopback names plus the bind address (unless it is a wildcard such as 0.0.0.0)."""
    extra = () if bind_host in WILDCARD_BINDS else (normalize_host(bind_host),)
    return tuple(dict.fromkeys((*LOOPBACK_HOSTS, *extra)))


def parse_allowed_hosts(value: str) -> tuple[str, ...]:
    """``--allowed-hosts`` (comma-separated names; ``*`` allows any) as normalized names.

    Raises:
        UserError: an empty list.
    """
    hosts = tuple(normalize_host(h) for h in value.split(",") if h.strip())
    if not hosts:
        raise UserError(f"--allowed-hosts {value!r}: no host names; expected e.g. "
                        "'localhost,127.0.0.1,recs.example.com' or '*'")
    return hosts


def host_of(header: str | None) -> str | None:
    """The host part of a ``Host`` header (port dropped), normalized; None when malformed."""
    if not header:
        return None
    h = header.strip().lower()
    if h.startswith("["):  # [v6]:port
        end = h.find("]")
        rest = h[end + 1:] if end > 0 else "?"
        if rest and not (rest.startswith(":") and rest[1:].isdigit()):
            return None
        host = h[1:end]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return None
        return host
    if h.count(":") == 1:
        h, _, port = h.partition(":")
        if not port.isdigit():
            return None
    if not h or any(c in h for c in "/@ \\?#"):
        return None
    return normalize_host(h)


class HostCheckMiddleware:
    """Answer 400 (JSON ``detail``) to requests whose ``Host`` is not in ``allowed``.

    Args:
        app: the wrapped application.
        allowed: normalized host names (see :func:`normalize_host`); ``"*"`` allows any.
    """

    def __init__(self, app: ASGIApp, allowed: Iterable[str]) -> None:
        self.app = app
        self.allowed = frozenset(normalize_host(h) for h in allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or "*" in self.allowed:
            await self.app(scope, receive, send)
            return
        if host_of(Headers(scope=scope).get("host")) in self.allowed:
            await self.app(scope, receive, send)
            return
        await SafeJSONResponse({"detail": BAD_HOST}, status_code=400)(scope, receive, send)


class BodyLimitMiddleware:
    """Answer 413 (JSON ``detail``) to a request body over ``max_bytes``.

    The route reads the body through this middleware: a declared ``Content-Length`` over the
    limit fails the first read before any byte is taken, a chunked body fails the read that
    passes the limit. The failure is a 413 ``HTTPException``, which FastAPI passes through its
    body parsing to the app's handler, so the answer is counted under its route.

    Args:
        app: the wrapped application.
        max_bytes: the largest body accepted.
    """

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        too_large = declared.isdigit() and int(declared) > self.max_bytes
        read = 0

        async def counted() -> Message:
            nonlocal read
            if too_large:
                raise HTTPException(413, TOO_LARGE)
            message = await receive()
            if message["type"] == "http.request":
                read += len(message.get("body", b""))
                if read > self.max_bytes:
                    raise HTTPException(413, TOO_LARGE)
            return message

        await self.app(scope, counted, send)
