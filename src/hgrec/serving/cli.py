"""``hgrec serve``: the HTTP service over a finished run (wired into ``hgrec.cli``)."""

from __future__ import annotations

import argparse
import socket
from pathlib import Path

from hgrec.serving.index import EXACT_THRESHOLD


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
    p.set_defaults(func=run_serve)
    return p


def run_serve(args: argparse.Namespace) -> int:
    """Load the run, then serve until interrupted; SIGHUP reloads the run path."""
    import torch
    import uvicorn

    from hgrec.serving.app import StateHolder, create_app, install_sighup, is_loopback

    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    holder = StateHolder(Path(args.run), args.model, args.exact_threshold)
    host = args.host
    loopback = is_loopback(host) or is_loopback(_resolve(host))
    # The reload endpoint exists only on a loopback-bound server (and checks clients too).
    app = create_app(holder, admin=loopback)
    install_sighup(holder)
    s = holder.state
    print(
        f"[hgrec serve] run {s.run_id}, model {s.model_name}; http://{host}:{args.port}/ "
        f"(admin reload {'on' if loopback else 'off'})",
        flush=True,
    )
    uvicorn.run(app, host=host, port=args.port, log_level="warning", access_log=False)
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
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
