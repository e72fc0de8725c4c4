"""``hgrec serve``: the HTTP service over a finished run (wired into ``hgrec.cli``).

Every problem found before serving (an unfinished run, ``--threads 0``, a short admin token,
a missing runs root) is a :class:`~hgrec.errors.UserError`: one line, exit code 2.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Mapping
from pathlib import Path

from hgrec.errors import UserError
from hgrec.serving.index import EXACT_THRESHOLD
from hgrec.serving.limits import MIN_ADMIN_TOKEN
from hgrec.utils.artifacts import RunDir
from hgrec.serving.security import (
    ADMIN_TOKEN_ENV,
    admin_token,
    default_allowed_hosts,
    is_loopback,
    parse_allowed_hosts,
    runs_root,
)


def add_serve_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    """Register ``hgrec serve --run RUN_DIR [--host] [--port] [--model] ...``."""
    p = subparsers.add_parser(
        "serve", help="serve recommendations over HTTP from a finished run (page at /)"
    )
    p.add_argument("--run", required=True, help="run directory written by `hgrec run`")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--model", help="model folder under <run>/models (default 2t-hgnn, hgnn-knn)")
    p.add_argument(
        "--exact-threshold", dest="exact_threshold", type=int, default=EXACT_THRESHOLD,
        help="item types with more items use the approximate voyager index",
    )
    p.add_argument(
        "--threads", type=int, default=1,
        help="torch threads per request (1 suits many small concurrent requests)",
    )
    p.add_argument(
        "--admin-token", dest="admin_token",
        help=f"serve POST /admin/reload to requests with 'Authorization: Bearer TOKEN' "
        f"(at least {MIN_ADMIN_TOKEN} characters; prefer the {ADMIN_TOKEN_ENV} environment "
        "variable, which the process list does not show); without either, no admin route",
    )
    p.add_argument(
        "--runs-root", dest="runs_root",
        help="reloads may only name runs inside this folder (default: the folder holding --run)",
    )
    p.add_argument(
        "--allowed-hosts", dest="allowed_hosts",
        help="comma-separated Host names answered, '*' for any (default: localhost, 127.0.0.1, "
        "::1 and --host)",
    )
    p.set_defaults(func=run_serve)
    return p


def check_serve_args(
    args: argparse.Namespace, environ: Mapping[str, str]
) -> tuple[str | None, Path, tuple[str, ...]]:
    """Everything ``hgrec serve`` can refuse before loading: (admin token, runs root, hosts).

    Raises:
        UserError: ``--threads`` below 1, a run that is missing or not complete, a bad admin
            token, a runs root that is not a folder, an empty ``--allowed-hosts``.
    """
    if args.threads < 1:
        raise UserError(f"--threads {args.threads}: expected 1 or more torch threads")
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port {args.port}: expected 0 to 65535")
    RunDir(Path(args.run)).finished_manifest()  # unfinished runs are refused before anything is loaded
    token = admin_token(args.admin_token, environ)
    root = runs_root(args.runs_root, args.run)
    hosts = (parse_allowed_hosts(args.allowed_hosts) if args.allowed_hosts is not None
             else default_allowed_hosts(args.host))
    return token, root, hosts


def run_serve(args: argparse.Namespace) -> int:
    """Load the run, then serve until interrupted; SIGHUP reloads the run path."""
    token, root, hosts = check_serve_args(args, os.environ)
    import torch
    import uvicorn

    from hgrec.serving.app import StateHolder, create_app, install_sighup

    torch.set_num_threads(args.threads)
    holder = StateHolder(Path(args.run), args.model, args.exact_threshold)
    app = create_app(holder, admin_token=token, runs_root_dir=root, allowed_hosts=hosts)
    install_sighup(holder)
    s = holder.state
    admin = "off" if token is None else "on (token required)"
    print(
        f"[hgrec serve] run {s.run_id}, model {s.model_name}; http://{args.host}:{args.port}/ "
        f"(admin reload {admin}; allowed hosts {', '.join(hosts)})",
        flush=True,
    )
    if token is not None and not (is_loopback(args.host) or is_loopback(_resolve(args.host))):
        print("[hgrec serve] warning: the admin token travels in clear text over plain HTTP; "
              "put TLS in front of a server bound to a network address", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


def _resolve(host: str) -> str | None:
    try:
        return socket.gethostbyname(host)
    except OSError:
        return None


def main(argv: list[str] | None = None) -> int:
    """``python -m hgrec.serving.cli --run RUN`` (same flags as ``hgrec serve``)."""
    parser = argparse.ArgumentParser(prog="hgrec")
    sub = parser.add_subparsers(dest="command")
    serve = add_serve_parser(sub)
    args = serve.parse_args(argv)
    try:
        return int(args.func(args))
    except UserError as e:
        print(f"hgrec serve: error: {e}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
