"""Two-tower quality for one or more settings, over the data and HGNN embeddings of a run.

Trains the 2T (``--hgnn none``) or the 2T-HGNN (``--hgnn run``: the run's HGNN embeddings;
``--hgnn FILE.npy``: embeddings saved by ``benchmarks/hgnn_quality.py --save``) once per
setting (``--set``-style ``key=value`` TwoTowerConfig overrides, ``;``-separated) and seed,
early-stopped on valid users as the pipeline does, and prints HR@10 / MRR@100 on VALID
users (cold, warm); test users only with ``--test`` (never use them to choose). On a new-item
run (``<run>/new-items``: trained without its held-out items) also the new-item figures
(HR@10 over the new relevant items, the new items' share of the top 10). Mean and standard
deviation over ``--seeds``.

    .venv/bin/python benchmarks/two_tower_quality.py --run runs/amazon-food-kitchen \\
        --hgnn run --settings "max_epochs=3;max_epochs=6" --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hgnn_quality import load_run, new_item_figures, parse_settings, summarise  # noqa: E402

from hgrec.config import TwoTowerConfig  # noqa: E402
from hgrec.evaluation.evaluate import evaluate  # noqa: E402
from hgrec.evaluation.tuning import valid_score  # noqa: E402
from hgrec.features.text import load_text_features  # noqa: E402
from hgrec.pipeline.inputs import build_eval_queries, make_train_set  # noqa: E402
from hgrec.recommenders.two_tower import TwoTowerRecommender  # noqa: E402
from hgrec.utils.seed import set_threads  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True, help="a finished hgrec run directory")
    ap.add_argument("--hgnn", default="run", help="'none', 'run' or an .npy of (n_items, d)")
    ap.add_argument("--settings", default="", help="';'-separated settings of 'key=value,...'")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--target", default=None, help="evaluate with this item type as target")
    ap.add_argument("--test", action="store_true", help="also report test users (never to choose)")
    ap.add_argument("--json", type=Path, default=None, help="write all rows here")
    args = ap.parse_args()
    set_threads(args.threads)
    torch.use_deterministic_algorithms(True)  # identical reruns, as `hgrec run` on the CPU

    config, dataset, text, _ = load_run(args.run, args.target)
    hgnn = None
    if args.hgnn == "run":
        hgnn = load_text_features(args.run / "hgnn" / "embeddings.parquet", dataset.catalog).embeddings
    elif args.hgnn != "none":
        hgnn = np.load(args.hgnn)
    queries = build_eval_queries(dataset, config)
    valid = {p: q for (p, s), q in queries.items() if s == "valid"}
    popularity = dataset.item_popularity()
    splits = ("valid", "test") if args.test else ("valid",)

    rows = []
    for setting in parse_settings(args.settings):
        cfg = TwoTowerConfig.model_validate({**config.two_tower.model_dump(), **setting})
        for seed in [int(s) for s in args.seeds.split(",")]:
            train = make_train_set(dataset, text, seed)
            t0 = time.perf_counter()
            model = TwoTowerRecommender.from_config(cfg, hgnn=hgnn, progress=False)
            model.fit(train, validate=lambda m: valid_score(m, valid, dataset.catalog, popularity, config.eval)[0])
            row = {"setting": setting, "seed": seed, "seconds": time.perf_counter() - t0,
                   "best_epoch": model.report_["best_epoch"],
                   "valid_per_epoch": [round(e["valid"], 4) for e in model.report_["epochs"]]}
            for (protocol, split), q in queries.items():
                if split in splits:
                    m = evaluate(model, q, dataset.catalog, popularity, config.eval, progress=False)
                    row[f"{split}_{protocol}_hr10"] = m[f"hr@{config.eval.hr_k}"]
                    row[f"{split}_{protocol}_mrr"] = m[f"mrr@{config.eval.mrr_k}"]
            row.update(new_item_figures(model, args.run, dataset, config, splits))
            rows.append(row)
            print(json.dumps(row, default=str), flush=True)
    summarise(rows, parse_settings(args.settings), ("_hr10", "_mrr", "_share", "seconds"), args.json)


if __name__ == "__main__":
    main()
