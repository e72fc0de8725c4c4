"""``hgrec serve``: the HTTP service over a finished run (wired into ``hgrec.cli``).

Every problem found before serving (an unfinished run, ``--threads 0``, a short admin token,
a missing runs root, ``--workers 0``) is a :class:`~hgrec.errors.UserError`: one line, exit
code 2.

With ``--workers N`` (N > 1) uvicorn starts N processes on one listening socket; each loads
the run itself (:func:`worker_app`, configured through :data:`WORKER_ENV`) and keeps its own
``/metrics``. SIGHUP to the parent replaces the workers one by one, each new one loading the
served path before the old one stops. ``POST /admin/reload`` would switch only the worker
that answers it, so an admin token with more than one worker is refused.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hgrec.errors import UserError
from hgrec.serving.batching import MAX_BATCH
from hgrec.serving.index import EXACT_THRESHOLD
from hgrec.serving.limits import MIN_ADMIN_TOKEN
from hgrec.serving.security import (
    ADMIN_TOKEN_ENV,
    admin_token,
    default_allowed_hosts,
    is_loopback,
    parse_allowed_hosts,
    runs_root,
)
from hgrec.utils.artifacts import RunDir

if TYPE_CHECKING:
    from fastapi import FastAPI

    from hgrec.serving.app import StateHolder

#: Environment variable carrying the settings of ``--workers`` processes (JSON, no token).
WORKER_ENV = "HGREC_SERVE_WORKER"
#: Most worker processes (``--workers``).
MAX_WORKERS = 64
#: Longest micro-batch window (``--batch-window-ms``).
MAX_BATCH_WINDOW_MS = 100.0
#: Seconds a new worker may take to load the run (uvicorn's health check waits this long
#: before giving up on a SIGHUP restart).
WORKER_START_SECONDS = 600


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
        help="torch threads per worker process (1 suits many small concurrent requests)",
    )
    p.add_argument(
        "--workers", type=int, default=1,
        help=f"server processes sharing the port, each with its own copy of the run (1 to "
        f"{MAX_WORKERS}; more than 1 excludes the admin token: reload with SIGHUP)",
    )
    p.add_argument(
        "--max-batch", dest="max_batch", type=int, default=MAX_BATCH,
        help="most concurrent POST /recommend requests computed together (1: no batching)",
    )
    p.add_argument(
        "--batch-window-ms", dest="batch_window_ms", type=float, default=0.0,
        help="milliseconds the first request of a batch waits for others (0: only those "
        f"already received; at most {MAX_BATCH_WINDOW_MS:g})",
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
        UserError: ``--threads`` below 1, ``--workers``, ``--max-batch`` or
            ``--batch-window-ms`` out of range, a run that is missing or not complete, a bad
            admin token (or one with ``--workers`` > 1), a runs root that is not a folder, an
            empty ``--allowed-hosts``.
    """
    if args.threads < 1:
        raise UserError(f"--threads {args.threads}: expected 1 or more torch threads")
    if not 1 <= args.workers <= MAX_WORKERS:
        raise UserError(f"--workers {args.workers}: expected 1 to {MAX_WORKERS} processes")
    if args.max_batch < 1:
        raise UserError(f"--max-batch {args.max_batch}: expected 1 or more requests")
    if not 0.0 <= args.batch_window_ms <= MAX_BATCH_WINDOW_MS:
        raise UserError(f"--batch-window-ms {args.batch_window_ms:g}: expected 0 to "
                        f"{MAX_BATCH_WINDOW_MS:g} milliseconds")
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port {args.port}: expected 0 to 65535")
    RunDir(Path(args.run)).finished_manifest()  # unfinished runs are refused before anything is loaded
    token = admin_token(args.admin_token, environ)
    if token is not None and args.workers > 1:
        raise UserError(
            f"--workers {args.workers} with an admin token: POST /admin/reload would switch only "
            "the worker that answers it; serve with --workers 1, or reload every worker with "
            "SIGHUP (no token needed)"
        )
    root = runs_root(args.runs_root, args.run)
    hosts = (parse_allowed_hosts(args.allowed_hosts) if args.allowed_hosts is not None
             else default_allowed_hosts(args.host))
    return token, root, hosts


def run_serve(args: argparse.Namespace) -> int:
    """Load the run, then serve until interrupted; SIGHUP reloads the run path."""
    token, root, hosts = check_serve_args(args, os.environ)
    import uvicorn

    settings = {
        "run": str(args.run), "model": args.model, "exact_threshold": args.exact_threshold,
        "threads": args.threads, "runs_root": str(root), "allowed_hosts": list(hosts),
        "max_batch": args.max_batch, "batch_window": args.batch_window_ms / 1000.0,
    }
    admin = "off" if token is None else "on (token required)"
    if token is not None and not (is_loopback(args.host) or is_loopback(_resolve(args.host))):
        print("[hgrec serve] warning: the admin token travels in clear text over plain HTTP; "
              "put TLS in front of a server bound to a network address", flush=True)
    if args.workers > 1:
        os.environ[WORKER_ENV] = json.dumps(settings)  # read by each spawned worker
        print(f"[hgrec serve] {args.workers} workers on http://{args.host}:{args.port}/ "
              f"(admin reload off; allowed hosts {', '.join(hosts)})", flush=True)
        uvicorn.run("hgrec.serving.cli:worker_app", factory=True, workers=args.workers,
                    host=args.host, port=args.port, log_level="warning", access_log=False,
                    timeout_worker_healthcheck=WORKER_START_SECONDS)
        return 0

    from hgrec.serving.app import install_sighup  # lazy: FastAPI and torch load on `serve` only

    app, holder = _build_app(settings, token)
    install_sighup(holder)
    s = holder.state
    print(
        f"[hgrec serve] run {s.run_id}, model {s.model_name}; http://{args.host}:{args.port}/ "
        f"(admin reload {admin}; allowed hosts {', '.join(hosts)})",
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


def _build_app(settings: Mapping[str, Any], token: str | None) -> tuple[FastAPI, StateHolder]:
    """Load the run and build the app from the settings :func:`run_serve` checked."""
    import torch

    from hgrec.serving.app import StateHolder, create_app  # lazy: as in run_serve

    torch.set_num_threads(int(settings["threads"]))
    holder = StateHolder(Path(settings["run"]), settings["model"], int(settings["exact_threshold"]))
    app = create_app(holder, admin_token=token, runs_root_dir=settings["runs_root"],
                     allowed_hosts=settings["allowed_hosts"],
                     max_batch=int(settings["max_batch"]),
                     batch_window=float(settings["batch_window"]))
    return app, holder


def worker_app() -> FastAPI:
    """The app of one ``--workers`` process (a uvicorn factory): settings from
    :data:`WORKER_ENV`, never an admin token."""
    app, holder = _build_app(json.loads(os.environ[WORKER_ENV]), None)
    s = holder.state
    print(f"[hgrec serve] worker {os.getpid()}: run {s.run_id}, model {s.model_name}", flush=True)
    return app


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
