"""The ``hgrec`` console script: ``run``, ``add-items``, ``synth``, ``similar``, ``serve``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from hgrec.config import Config, ConfigError
from hgrec.data.schema import DataValidationError
from hgrec.errors import UserError
from hgrec.serving.cli import add_serve_parser

# Each command handler imports its own stage when the command runs (torch, PyG, FastAPI take
# seconds to import), so `hgrec --help` and a mistyped flag answer at once. These are the
# package's only lazy hgrec imports besides pyspark's (docs/architecture.md).


def _run(args: argparse.Namespace) -> int:
    overrides: dict[str, object] = {}
    origins: dict[str, str] = {}  # overridden key -> the flag that set it, for error messages
    for flag, key in (
        ("items", "data.items"),
        ("interactions", "data.interactions"),
        ("users", "data.users"),
        ("target_type", "data.target_type"),
    ):
        value = getattr(args, flag)
        if value is not None:
            overrides[key] = str(Path(value).resolve()) if flag != "target_type" else value
            origins[key] = "--" + flag.replace("_", "-")
    if args.items is not None or args.interactions is not None:
        overrides["data.adapter"] = "canonical"
        origins["data.adapter"] = "--items/--interactions"
    if args.seed is not None:
        overrides["runtime.seed"] = args.seed
        origins["runtime.seed"] = "--seed"
    config = Config.from_yaml(args.config, overrides, origins)
    out = Path(args.out) if args.out else Path("runs") / config.data.name
    reuse = Path(args.reuse_hgnn) if args.reuse_hgnn else None
    from hgrec.pipeline.run import run_pipeline  # lazy: see the note at the imports

    run_pipeline(config, out, fresh=args.fresh, reuse_hgnn=reuse)
    return 0


def _add_items(args: argparse.Namespace) -> int:
    from hgrec.pipeline.add_items import add_items, format_report  # lazy: see the imports

    result = add_items(
        Path(args.run), Path(args.items), out=None if args.out is None else Path(args.out),
        interactions=None if args.interactions is None else Path(args.interactions),
        replace_existing=args.replace,
    )
    print(format_report(result.report))
    print(f"[hgrec] new run version: {result.out}")
    return 0


def _synth(args: argparse.Namespace) -> int:
    from hgrec.datasets.synthetic import write_synthetic  # lazy: see the imports

    paths = write_synthetic(
        Path(args.out), n_interactions=args.interactions, fmt=args.format, seed=args.seed
    )
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0


def _similar(args: argparse.Namespace) -> int:
    from hgrec.pipeline.similar import print_similar  # lazy: see the imports

    print_similar(Path(args.run), args.item_id, k=args.k, item_type=args.item_type)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hgrec",
        description="2T-HGNN recommendations for a new, sparse content type.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the whole pipeline and print the results table")
    run.add_argument("--config", required=True, help="YAML config (see configs/)")
    run.add_argument("--out", help="run directory (default runs/<dataset name>)")
    run.add_argument("--items", help="canonical items file (overrides the config)")
    run.add_argument("--interactions", help="canonical interactions file")
    run.add_argument("--users", help="canonical users file")
    run.add_argument("--target-type", dest="target_type", help="the new item type to evaluate")
    run.add_argument("--seed", type=int, help="overrides runtime.seed")
    run.add_argument(
        "--fresh", action="store_true", help="recompute every stage, ignoring cached ones"
    )
    run.add_argument(
        "--reuse-hgnn",
        dest="reuse_hgnn",
        metavar="RUN_DIR",
        help="reuse the frozen HGNN of a finished run (static layer); train only the 2T",
    )
    run.set_defaults(func=_run)

    add = sub.add_parser(
        "add-items",
        help="write a new version of a finished run whose catalogue holds new items",
        description="Embed new items with the run's frozen text model, HGNN and towers and "
        "write a new run folder (the parent is never modified); see docs/new-items.md.",
    )
    add.add_argument("--run", required=True, help="a finished run directory (the parent)")
    add.add_argument("--items", required=True, help="canonical items file of the new items")
    add.add_argument(
        "--interactions",
        help="recent interactions (canonical; old or new items and users): co-interaction "
        "edges of the new items, and entries of the served histories",
    )
    add.add_argument("--out", help="the new run folder (default: <run>+<n> next to the run)")
    add.add_argument(
        "--replace", action="store_true",
        help="an item id already in the run replaces that item (else it is an error)",
    )
    add.set_defaults(func=_add_items)

    synth = sub.add_parser("synth", help="write a synthetic canonical dataset")
    synth.add_argument("--out", required=True, help="output folder")
    synth.add_argument("--interactions", type=int, default=1_000_000, help="number of interactions")
    synth.add_argument("--format", choices=["parquet", "csv", "tsv"], default="parquet")
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(func=_synth)

    similar = sub.add_parser("similar", help="items similar to ITEM_ID by HGNN embedding")
    similar.add_argument("item_id")
    similar.add_argument("--run", required=True, help="a finished run directory")
    similar.add_argument("-k", type=int, default=10)
    similar.add_argument("--item-type", dest="item_type", help="restrict to one item type")
    similar.set_defaults(func=_similar)

    add_serve_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ConfigError, DataValidationError, UserError, FileNotFoundError) as e:
        # Bad input: one clear line, no traceback.
        print(f"hgrec {args.command}: error: {one_line(str(e))}", file=sys.stderr)
        return 2


def one_line(message: str) -> str:
    """``message`` with its lines joined by '; ', so an error is always one line."""
    return "; ".join(line.strip() for line in message.splitlines() if line.strip())


if __name__ == "__main__":
    sys.exit(main())
