"""torchrun entry point: train the HGNN or a two-tower model data-parallel over processes or
nodes.

Usage::

    torchrun --nproc_per_node=2 -m hgrec.pipeline.ddp_main --config CONFIG --out DIR \
        --stage hgnn          # then --stage 2t-hgnn (reads DIR/hgnn), or --stage 2t
    # several nodes: add --nnodes=N --rdzv_backend=c10d --rdzv_endpoint=HOST:PORT

``--stage hgnn``: every rank reads the co-interaction graph from ``DIR/graph`` when it is
there (a pipeline run directory, or the Spark engine's output) or builds it from the config
(deterministic, so the ranks agree), trains with :func:`hgrec.training.hgnn.train_hgnn` under
DDP (each rank samples its shard of every batch's supervision edges; checkpoints in
``DIR/checkpoints/hgnn-ddp``, so a relaunch resumes), and rank 0 writes ``DIR/hgnn/``
(``model.pt``, ``embeddings.parquet``, ``history.json``: the pipeline's HGNN layout).
``--stage 2t-hgnn`` trains the 2T-HGNN on ``DIR/hgnn/embeddings.parquet`` into
``DIR/2t-hgnn/``. ``--stage hgnn-embed`` trains nothing: it recomputes
``DIR/hgnn/embeddings.parquet`` from the frozen ``DIR/hgnn/model.pt`` over the current graph
(P2's static layer, e.g. after a daily graph rebuild), the full-neighbourhood inference
sharded over the ranks.

Every rank loads the dataset from the config (the same seed gives the same split) and the
text features: ``DIR/features/text.parquet`` when ``DIR`` is a pipeline run directory,
otherwise rank 0 embeds the catalogue through the text cache (``features.cache_dir``) and the
other ranks read the cache once it is filled. For the two-tower stages all ranks run
``TwoTowerRecommender.fit``, whose :func:`hgrec.training.two_tower.train_two_tower` finds the
process group and trains under DDP (gloo, global in-batch negatives), early-stopped on rank
0's valid mean HR@10 like ``hgrec run``. Rank 0 alone writes ``DIR/<stage>/model``
(params.json + state.npz, loadable with :func:`hgrec.recommenders.registry.load_model`) and
``DIR/<stage>/training.json``. The run directory's stage manifest is not updated:
``hgrec run`` still trains its own stages.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from hgrec.config import Config
from hgrec.data.dataset import Dataset
from hgrec.data.vectors import read_item_vectors, write_vectors
from hgrec.datasets import load_dataset
from hgrec.evaluation.tuning import valid_score
from hgrec.features.text import item_text_features, load_text_features
from hgrec.graph.build import build_cograph
from hgrec.graph.io import SUMMARY_FILE, read_graph
from hgrec.graph.types import CoGraph
from hgrec.models.base import Recommender
from hgrec.models.hgnn import embed_items
from hgrec.pipeline.inputs import build_eval_queries, make_train_set
from hgrec.recommenders.two_tower import TwoTowerRecommender
from hgrec.training.hgnn import build_model, train_hgnn
from hgrec.utils import layout
from hgrec.utils.artifacts import atomic_torch_save, atomic_write_json
from hgrec.utils.distributed import DistInfo, barrier, cleanup, init_distributed
from hgrec.utils.layout import RunLayout
from hgrec.utils.seed import seed_everything, set_threads

STAGES = ("2t", "hgnn", "2t-hgnn", "hgnn-embed")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="torchrun --nproc_per_node=N -m hgrec.pipeline.ddp_main",
        description="Train the HGNN or a two-tower model with DistributedDataParallel (gloo).",
    )
    p.add_argument("--stage", choices=STAGES, default="2t",
                   help="what to train (default 2t); 2t-hgnn and hgnn-embed need DIR/hgnn from --stage hgnn")
    p.add_argument("--config", type=Path, required=True, help="run config (YAML)")
    p.add_argument("--out", type=Path, required=True, help="run directory; writes OUT/<stage>/")
    p.add_argument("--no-validate", action="store_true",
                   help="train two_tower.max_epochs epochs without early stopping")
    return p


def load_item_text(config: Config, dataset: Dataset, out: Path, info: DistInfo) -> np.ndarray:
    """(n_items, d) text embeddings: the run directory's features, else the text cache.

    Rank 0 embeds what the cache lacks first; the others wait at a barrier and then find
    every text cached, so the text model runs once.
    """
    run_features = RunLayout(out).text_features
    if run_features.exists():
        return load_text_features(run_features, dataset.catalog).embeddings
    progress = config.runtime.progress and info.is_main
    if info.is_main:
        emb = item_text_features(dataset.catalog, config.features, progress).embeddings
    barrier(info)
    if not info.is_main:
        emb = item_text_features(dataset.catalog, config.features, progress).embeddings
    return emb


def main(argv: list[str] | None = None) -> int:
    """Train and save ``--stage`` under DDP; returns the exit code (0 on success)."""
    args = _parser().parse_args(argv)
    config = Config.from_yaml(args.config)
    # The models train on CPU tensors: gloo even on a GPU machine.
    info = init_distributed(backend="gloo")
    try:
        seed = config.runtime.seed
        seed_everything(seed, deterministic=True)  # CPU kernels; see pipeline.run
        set_threads(config.runtime.threads)
        dataset = load_dataset(config.data, seed)
        item_text = load_item_text(config, dataset, args.out, info)
        if args.stage == "hgnn":
            _train_hgnn(config, dataset, item_text, args.out, info)
        elif args.stage == "hgnn-embed":
            _embed_hgnn(config, dataset, item_text, args.out, info)
        else:
            _train_two_tower(config, dataset, item_text, args, info)
        barrier(info)  # no rank leaves (and tears the group down) before rank 0 has written
    finally:
        cleanup(info)
    return 0


def _train_two_tower(
    config: Config, dataset: Dataset, item_text: np.ndarray, args: argparse.Namespace,
    info: DistInfo,
) -> None:
    """The 2T (or 2T-HGNN on ``OUT/hgnn``) under DDP; rank 0 writes ``OUT/<stage>/``."""
    hgnn_emb = None
    if args.stage == "2t-hgnn":
        path = RunLayout(args.out).embeddings()
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: run --stage hgnn first")
        hgnn_emb = read_item_vectors(path, dataset.catalog)[0]
    train = make_train_set(dataset, item_text, config.runtime.seed)
    popularity = dataset.item_popularity()
    valid = {p: q for (p, s), q in build_eval_queries(dataset, config).items() if s == "valid"}

    def validate(model: Recommender) -> float:  # called on rank 0 only
        return valid_score(model, valid, dataset.catalog, popularity, config.eval)[0]

    # runtime.device: a CUDA device is refused with a UserError (no GPU here, or
    # train_two_tower: DDP of the 2T runs on gloo / CPU only).
    model = TwoTowerRecommender.from_config(
        config.two_tower, hgnn=hgnn_emb, progress=config.runtime.progress and info.is_main,
        device=config.runtime.device,
    )
    model.fit(train, validate=None if args.no_validate else validate)
    if info.is_main:
        runs = RunLayout(args.out)
        _write_folder_atomically(runs.model(args.stage), model.save)
        atomic_write_json(runs.stage(args.stage) / layout.TRAINING, model.report_)
        print(f"[hgrec] ddp: world_size {info.world_size}, best epoch "
              f"{model.report_['best_epoch']}, saved {runs.model(args.stage)}", flush=True)


def _graph(config: Config, dataset: Dataset, out: Path) -> CoGraph:
    """``OUT/graph`` when there (a pipeline run, or the Spark engine's output), else built
    from the config (deterministic, so every rank builds the same graph)."""
    graph = RunLayout(out).graph
    if (graph / SUMMARY_FILE).is_file():
        return read_graph(graph, dataset.catalog)
    return build_cograph(dataset, config.graph, progress=False)


def _embed_hgnn(
    config: Config, dataset: Dataset, item_text: np.ndarray, out: Path, info: DistInfo
) -> None:
    """Frozen ``OUT/hgnn/model.pt`` over the current graph; rank 0 rewrites the embeddings."""
    weights = RunLayout(out).hgnn_weights()
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} is missing: run --stage hgnn first")
    graph = _graph(config, dataset, out)
    model = build_model(graph, item_text.shape[1], config.hgnn, config.runtime.seed)
    model.load_state_dict(torch.load(weights))
    emb = embed_items(model, graph, item_text, config.hgnn.inference.batch_edges, info)
    if info.is_main:
        write_vectors(RunLayout(out).embeddings(), dataset.catalog.item_ids, emb, {"kind": "hgnn"})
        print(f"[hgrec] ddp: world_size {info.world_size}, embedded {len(emb):,} items with "
              f"{weights}", flush=True)


def _train_hgnn(
    config: Config, dataset: Dataset, item_text: np.ndarray, out: Path, info: DistInfo
) -> None:
    """The HGNN under DDP; rank 0 writes ``OUT/hgnn/`` atomically (the pipeline's layout)."""
    graph = _graph(config, dataset, out)
    result = train_hgnn(
        graph, item_text, config.hgnn, seed=config.runtime.seed,
        checkpoint_dir=RunLayout(out).checkpoint("hgnn-ddp"),
        progress=config.runtime.progress, dist_info=info, device=config.runtime.device,
    )  # fmt: skip
    if info.is_main:
        folder = RunLayout(out).stage(layout.HGNN)

        def write(tmp: Path) -> None:
            tmp.mkdir(parents=True)
            write_vectors(tmp / layout.EMBEDDINGS, dataset.catalog.item_ids, result.embeddings,
                          {"kind": "hgnn"})
            atomic_torch_save(tmp / layout.HGNN_WEIGHTS, result.model.state_dict())
            history = {"best_epoch": result.best_epoch, "epochs": result.history,
                       "untrained": result.untrained, "mode": result.mode,
                       "loss_name": config.hgnn.training.loss, "world_size": info.world_size}
            atomic_write_json(tmp / layout.HISTORY, history)

        _write_folder_atomically(folder, write)
        print(f"[hgrec] ddp: world_size {info.world_size}, best epoch {result.best_epoch}, "
              f"saved {folder}", flush=True)


def _write_folder_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """``write(tmp)`` fills a sibling temporary folder, which is then moved into place, so a
    crash never leaves a half-written folder where a loader would find it."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    write(tmp)
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
