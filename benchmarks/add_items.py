"""``hgrec add-items`` time per phase for N synthetic new items on an existing run.

The new items are the run's own items with a fresh title (the original title plus a random
pseudo-word and a counter, so every text misses the embedding cache and is embedded now) and
a random item type of the run; with ``--recent`` each new item also gets that many recent
interactions of random existing users (co-interaction edges for the frozen HGNN). Each
version goes to a temp folder, deleted afterwards; the parent run is only read.

Reference, timed in the same process: the run's text model embedding ``--ref`` of the run's
own titles with no cache (texts/s), the rate the text phase should approach.

Printed per N: seconds of each phase (validate, text, hgnn, towers, index, write), total,
items/s, and the ratios of the text phase's and the whole command's items/s to the reference.

Usage (2 cores, after ``make run``):
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/add_items.py --n 1000
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/add_items.py --n 1000 100000 --recent 2
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from hgrec.config import Config
from hgrec.features.text import embed_texts
from hgrec.pipeline.add_items import PHASES, add_items
from hgrec.utils.artifacts import RunDir
from hgrec.utils.seed import set_threads

RUN = Path(__file__).resolve().parents[1] / "runs" / "amazon-food-kitchen"


def new_items(parent: Path, n: int, seed: int) -> pd.DataFrame:
    """(n rows) canonical items: the run's items resampled, fresh titles, fresh ids."""
    rng = np.random.default_rng(seed)
    items = pd.read_parquet(parent / "data" / "items.parquet")
    rows = items.iloc[rng.integers(len(items), size=n)].reset_index(drop=True)
    words = np.array(["".join(rng.choice(list("bdfgklmnprstvz"), 3)) for _ in range(64)])
    rows["item_id"] = [f"bench-{seed}-{k}" for k in range(n)]
    rows["title"] = rows["title"].astype(str) + " " + words[rng.integers(64, size=n)] + \
        " " + pd.Series(np.arange(n)).astype(str)
    return rows[[c for c in rows.columns if c in ("item_id", "item_type", "title", "description",
                                                   "language", "genre")]]


def recent(parent: Path, ids: pd.Series, per_item: int, seed: int) -> pd.DataFrame:
    """``per_item`` interactions per new item by random users of the run (positions after
    their history: the rows' position only orders them within the file)."""
    rng = np.random.default_rng(seed + 1)
    users = pd.read_parquet(parent / "data" / "users.parquet")["user_id"].astype(str).to_numpy()
    item = np.repeat(ids.to_numpy(), per_item)
    return pd.DataFrame({"user_id": users[rng.integers(len(users), size=len(item))],
                         "item_id": item, "position": np.arange(len(item))})


def reference_rate(parent: Path, config: Config, n: int) -> float:
    """Texts/s of the run's text model on ``n`` of its own titles, no cache."""
    titles = pd.read_parquet(parent / "data" / "items.parquet")["title"].astype(str)
    texts = titles.sample(min(n, len(titles)), random_state=0).tolist()
    f = config.features
    t0 = time.perf_counter()
    embed_texts(texts, model=f.text_model, batch_size=f.batch_size,
                max_seq_length=f.max_seq_length, cache_dir=None, progress=False,
                backend=f.backend)
    return len(texts) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, default=RUN, help="a finished run (default: make run's)")
    ap.add_argument("--n", type=int, nargs="+", default=[1000], help="new items per version")
    ap.add_argument("--recent", type=int, default=0, help="recent interactions per new item")
    ap.add_argument("--ref", type=int, default=1000, help="titles embedded for the reference")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    manifest = RunDir(args.run).finished_manifest()
    config = Config.model_validate(manifest["config"])
    set_threads(args.threads)
    ref = reference_rate(args.run, config, args.ref)
    print(f"reference: text model on {args.ref:,} of the run's titles, no cache: {ref:,.0f} texts/s")
    header = ("| new items | " + " | ".join(PHASES)
              + " | total s | items/s | text phase rate / reference | total rate / reference |")
    rows = [header, "|" + "---:|" * (len(PHASES) + 5)]
    with tempfile.TemporaryDirectory(dir=args.run.parent, prefix=".bench-add-items-") as tmp:
        for n in args.n:  # one version per size
            items = new_items(args.run, n, args.seed)
            items_file = Path(tmp) / f"items-{n}.tsv"
            items.to_csv(items_file, sep="\t", index=False)
            inter_file = None
            if args.recent:
                inter_file = Path(tmp) / f"recent-{n}.tsv"
                recent(args.run, items["item_id"], args.recent, args.seed).to_csv(
                    inter_file, sep="\t", index=False)
            out = Path(tmp) / f"v-{n}"
            t0 = time.perf_counter()
            result = add_items(args.run, items_file, out=out, interactions=inter_file,
                               progress=True)
            total = time.perf_counter() - t0
            s = result.report["seconds"]
            rows.append(f"| {n:,} | " + " | ".join(f"{s[p]:.1f}" for p in PHASES)
                        + f" | {total:.1f} | {n / total:,.0f} | {n / max(s['text'], 1e-9) / ref:.2f}"
                        + f" | {n / total / ref:.3f} |")
            print(json.dumps({"n": n, "seconds": s, "total": round(total, 1)}))
            shutil.rmtree(out)
    print(f"\nrun {args.run.name}, {args.threads} threads, recent/item {args.recent}; "
          f"reference {ref:,.0f} texts/s")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
