"""HGNN quality for one or more settings, on the data, text features and graph of a run.

Trains the HGNN once per setting (``--set key=value`` HGNNConfig overrides, ``;``-separated
settings) and per seed on the run's graph and text features, then prints per setting: the
held-out-edge MRR of the untrained and the trained model, their ratio, epochs, seconds, and
HGNN-KNN's HR@10 / MRR@100 on VALID users (cold, warm). Test users only with ``--test``
(never use them to choose). On a new-item run (``<run>/new-items``) also HGNN-KNN's
new-item figures. Mean and standard deviation over ``--seeds``.

    .venv/bin/python benchmarks/hgnn_quality.py --run runs/amazon-food-kitchen \\
        --settings "step=minibatch;step=full-graph;step=full-graph,loss=infonce" --seeds 0,1,2

Values are parsed as YAML (``fanouts=[25,10]``, ``shared_negatives=null``). Embeddings of each
trained model can be written with ``--save DIR`` (one .npy per setting and seed), for the
two-tower experiments (``benchmarks/two_tower_quality.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from hgrec.config import Config
from hgrec.evaluation.evaluate import evaluate
from hgrec.features.text import load_text_features
from hgrec.graph.io import read_graph
from hgrec.models.hgnn_knn import HGNNKNN
from hgrec.pipeline.inputs import build_eval_queries, make_train_set
from hgrec.training.hgnn import train_hgnn
from hgrec.utils.seed import set_threads


def parse_settings(text: str) -> list[dict[str, object]]:
    """"a=1,b=[2,3];c=x" -> [{"a": 1, "b": [2, 3]}, {"c": "x"}]; "" -> [{}]."""
    out = []
    for part in text.split(";"):
        setting: dict[str, object] = {}
        depth, key_vals, cur = 0, [], ""
        for ch in part:  # split on commas outside brackets
            depth += ch == "["
            depth -= ch == "]"
            if ch == "," and depth == 0:
                key_vals.append(cur)
                cur = ""
            else:
                cur += ch
        key_vals.append(cur)
        for kv in filter(None, (k.strip() for k in key_vals)):
            key, value = kv.split("=", 1)
            setting[key.strip()] = yaml.safe_load(value)
        out.append(setting)
    return out


def load_run(run: Path, target_type: str | None = None) -> tuple[Config, Any, np.ndarray, Any]:
    """The config, dataset, (n_items, d) text features and co-interaction graph of a run
    directory (its data, features and graph stages must be finished)."""
    from hgrec.datasets import load_dataset
    from hgrec.utils.artifacts import RunDir

    manifest = RunDir(run).read_manifest()
    if manifest is None:
        sys.exit(f"{run}: no manifest.json (not an hgrec run directory)")
    config = Config.model_validate(manifest["config"])
    if target_type is not None:
        data = config.data.model_copy(update={"target_type": target_type})
        config = config.model_copy(update={"data": data})
    dataset = load_dataset(config.data, config.runtime.seed)
    held = held_out_items(run, dataset)
    if held is not None:  # a new-item protocol run: train without the held-out items
        from hgrec.evaluation.new_items import without_items

        dataset, counts = without_items(dataset, held)
        print(f"{run}: new-item run, {counts}", file=sys.stderr)
    text = load_text_features(run / "features" / "text.parquet", dataset.catalog).embeddings
    return config, dataset, text, read_graph(run / "graph", dataset.catalog)


def held_out_items(run: Path, dataset: Any) -> np.ndarray | None:
    """(m,) item indices of a new-item protocol run's held-out items
    (``held_out_items.parquet``), or None for any other run."""
    import pandas as pd

    path = run / "held_out_items.parquet"
    if not path.is_file():
        return None
    idx = dataset.catalog.index_of(pd.read_parquet(path)["item_id"].astype(str).to_numpy())
    if (idx < 0).any():
        sys.exit(f"{path}: {int((idx < 0).sum())} held-out items are not in the catalogue")
    return np.sort(idx)


def new_item_figures(model: Any, run: Path, dataset: Any, config: Config,
                     splits: tuple[str, ...]) -> dict[str, float]:
    """On a new-item protocol run: per (split, protocol) the model's HR@10 over the new
    relevant items and the new items' share of the top 10; {} on any other run."""
    from hgrec.evaluation.new_items import evaluate_new_items, new_item_queries

    held = held_out_items(run, dataset)
    if held is None:
        return {}
    queries = {(p, s): new_item_queries(dataset, s, p, held)
               for p in config.eval.query_protocols for s in splits}
    block = evaluate_new_items({"m": model}, queries, held, dataset.catalog, config.eval,
                               progress=False)["protocols"]
    k, out = config.eval.hr_k, {}
    for protocol, split in queries:
        m = block[protocol][split]["models"]["m"]
        out[f"{split}_{protocol}_new_hr10"] = m["new"][f"hr@{k}"]
        out[f"{split}_{protocol}_new_share"] = m[f"new_share@{k}"]
    return out


def summarise(rows: list[dict], settings: list[dict], suffixes: tuple[str, ...], json_path: Path | None) -> None:
    """One line per setting: mean ± sample sd over seeds of every column ending in
    ``suffixes``; all rows to ``json_path`` when given."""
    keys = [k for k in rows[0] if k.endswith(suffixes)]
    print("\nsetting | " + " | ".join(keys))
    for setting in settings:
        rs = [r for r in rows if r["setting"] == setting]
        cells = []
        for k in keys:
            v = np.array([r[k] for r in rs], dtype=float)
            cells.append(f"{v.mean():.4f} ± {v.std(ddof=1) if len(v) > 1 else 0:.4f}")
        print(f"{setting or 'defaults'} | " + " | ".join(cells))
    if json_path is not None:
        json_path.write_text(json.dumps(rows, indent=1, default=str))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True, help="a finished hgrec run directory")
    ap.add_argument("--settings", default="", help="';'-separated settings of 'key=value,...'")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--test", action="store_true", help="also report test users (never to choose)")
    ap.add_argument("--save", type=Path, default=None, help="write embeddings here")
    ap.add_argument("--json", type=Path, default=None, help="write all rows here")
    args = ap.parse_args()
    set_threads(args.threads)
    torch.use_deterministic_algorithms(True)  # identical reruns, as `hgrec run` on the CPU

    config, dataset, text, graph = load_run(args.run)
    train = make_train_set(dataset, text, config.runtime.seed)
    queries = build_eval_queries(dataset, config)
    popularity = dataset.item_popularity()
    splits = ("valid", "test") if args.test else ("valid",)
    seeds = [int(s) for s in args.seeds.split(",")]

    rows = []
    for setting in parse_settings(args.settings):
        cfg = config.hgnn.updated(**setting)
        for seed in seeds:
            t0 = time.perf_counter()
            res = train_hgnn(graph, text, cfg, seed=seed, progress=False)
            seconds = time.perf_counter() - t0
            best = res.history[res.best_epoch] if res.best_epoch >= 0 else {}
            row = {
                "setting": setting, "seed": seed, "mode": res.mode, "seconds": seconds,
                "epochs": len(res.history), "best_epoch": res.best_epoch,
                "untrained_mrr": res.untrained.get("valid_mrr"),
                "trained_mrr": best.get("valid_mrr"),
                "edges_per_s": sum(h["edges"] for h in res.history) / max(seconds, 1e-9),
                "curve": [round(h["valid_mrr"], 4) for h in res.history],
            }
            model = HGNNKNN(embeddings=res.embeddings).fit(train)
            for (protocol, split), q in queries.items():
                if split in splits:
                    m = evaluate(model, q, dataset.catalog, popularity, config.eval, progress=False)
                    row[f"{split}_{protocol}_hr10"] = m[f"hr@{config.eval.hr_k}"]
                    row[f"{split}_{protocol}_mrr"] = m[f"mrr@{config.eval.mrr_k}"]
            row.update(new_item_figures(model, args.run, dataset, config, splits))
            if args.save is not None:
                args.save.mkdir(parents=True, exist_ok=True)
                name = "_".join(f"{k}-{v}" for k, v in setting.items()) or "default"
                np.save(args.save / f"{name}_seed{seed}.npy", res.embeddings)
            rows.append(row)
            print(json.dumps(row, default=str), flush=True)
    summarise(rows, parse_settings(args.settings), ("_hr10", "_mrr", "_share", "seconds", "epochs", "edges_per_s"),
              args.json)


if __name__ == "__main__":
    main()
