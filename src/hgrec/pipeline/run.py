"""``hgrec run``: load -> text -> baselines -> graph -> HGNN -> 2T -> evaluate -> report.

Each expensive stage is cached in the run directory by a content hash of its inputs and
settings (:class:`hgrec.utils.artifacts.RunDir`): a rerun after changing only the two-tower
settings does not recompute the graph, the text features, the baselines or the HGNN. The run
only counts as complete when its manifest says so, written last.

Run directory::

    manifest.json  config, versions, input hashes, seed, stage keys and times, status
    data/          items, users, interactions (string ids) for serving
    features/      text.parquet: item_id + text embedding
    baselines/     <name>/ (params.json + state.npz) per baseline, tuning.json
    graph/         one Parquet edge list per relation + summary.json
    hgnn/          embeddings.parquet, model.pt, history.json, hgnn-knn/
    2t/, 2t-hgnn/  model/ + training.json
    ablation-X/    retrained HGNN embeddings + 2T-HGNN of P1 Table 1 ablation X
    new-items/     with eval.protocols new_items: a complete run of every model trained
                   without the held-out items (held_out_items.parquet lists them)
    models.json    model name -> folder, for `hgrec serve`
    metrics.json, report.md, tiers.png
    hgnn_learning_curve.png  loss and held-out-edge MRR per epoch of the main HGNN (from
                   hgnn/history.json; at the root, as hgnn/ is a finished, hashed stage folder)
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hgrec.config import Config, ExperimentsConfig, HGNNConfig
from hgrec.data.dataset import Dataset
from hgrec.data.vectors import read_item_vectors, write_vectors
from hgrec.datasets import check_inputs, load_dataset
from hgrec.evaluation.evaluate import evaluate_all
from hgrec.evaluation.new_items import (
    evaluate_new_items,
    held_out_table,
    hold_out_items,
    new_item_queries,
    without_items,
)
from hgrec.evaluation.protocols import Queries, build_queries
from hgrec.evaluation.report import (
    plot_learning_curve,
    plot_tiers,
    write_metrics,
)
from hgrec.evaluation.tuning import tune, valid_score
from hgrec.features.text import item_text_features, load_text_features, save_text_features
from hgrec.features.text_model import resolve_text_model
from hgrec.graph.build import build_cograph_with_report
from hgrec.graph.inputs import check_events
from hgrec.graph.io import read_graph, read_manifest, write_graph
from hgrec.graph.summary import format_summary
from hgrec.graph.types import CoGraph
from hgrec.models.base import Recommender, TrainSet, VectorRecommender
from hgrec.models.hgnn import embed_items
from hgrec.models.hgnn_knn import HGNNKNN
from hgrec.pipeline.experiments import ABLATIONS, ablation_setup
from hgrec.pipeline.inputs import build_eval_queries, make_train_set
from hgrec.pipeline.report import print_load_report, render_full_report
from hgrec.pipeline.run_dir import (
    check_out,
    input_paths,
    read_hgnn_history,
    reused_hgnn_config,
    save_dataset_tables,
)
from hgrec.recommenders.hgnn_w_users import HGNNWithUsers
from hgrec.recommenders.registry import BASELINES, baseline_grid, load_model
from hgrec.recommenders.two_tower import TwoTowerRecommender
from hgrec.sampling.neighbors import DRAWS_VERSION
from hgrec.serving.load import choose_model, load_state
from hgrec.training.hgnn import build_model, train_hgnn
from hgrec.utils import layout
from hgrec.utils.artifacts import (
    RunDir,
    atomic_torch_save,
    atomic_write_json,
    atomic_write_parquet,
    atomic_write_text,
    config_hash,
    file_sha256,
)
from hgrec.utils.device import resolve_device
from hgrec.utils.layout import RunLayout
from hgrec.utils.seed import seed_everything, set_threads


@dataclass
class StageClock:
    """Per-stage wall time, printed as a progress line and saved in the manifest."""

    seconds: dict[str, float] = field(default_factory=dict)
    current: str | None = None  # the step running now; kept when it raises, for the manifest

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        print(f"[hgrec] {name} ...", flush=True)
        self.current = name
        t0 = time.perf_counter()
        yield
        dt = time.perf_counter() - t0
        self.seconds[name] = self.seconds.get(name, 0.0) + dt
        self.current = None
        print(f"[hgrec] {name} done in {dt:.1f}s", flush=True)


def run_pipeline(
    config: Config, out: Path, fresh: bool = False, reuse_hgnn: Path | None = None
) -> dict[str, Any]:
    """Run every stage; returns the metrics dict (also in ``out/metrics.json``).

    Args:
        config: the validated run config.
        out: the run directory (created; finished stages in it are reused).
        fresh: delete the run directory first (only a run directory: see :func:`check_out`).
        reuse_hgnn: a finished run whose HGNN weights are reused frozen (P2's static layer):
            this run recomputes the embeddings over its own graph and trains only the 2T.

    Raises:
        UserError, DataValidationError, FileNotFoundError: bad input. What can be checked
            without reading the data (the run folder, the input files, the text model, the
            device) is checked before the run folder is touched; a failure after that marks
            the run ``failed`` in its manifest, with the reason.
    """
    return Pipeline(config, out, fresh, reuse_hgnn).run()


class Pipeline:
    """The stages of one run; each method is one stage (cached where it is expensive)."""

    def __init__(
        self,
        config: Config,
        out: Path,
        fresh: bool,
        reuse_hgnn: Path | None,
        held_out: HeldOut | None = None,
    ) -> None:
        """``held_out``: run on that reduced dataset instead of loading ``config.data`` (the
        new-item protocol's run, :meth:`new_items`), and evaluate the held-out items."""
        self.config = config
        self.held_out = held_out
        self.seed = config.runtime.seed
        self.progress = config.runtime.progress
        self.reuse_hgnn = reuse_hgnn
        if reuse_hgnn is not None:
            reused_hgnn_config(reuse_hgnn)  # fail before any stage runs

        device = resolve_device(config.runtime.device)  # cuda without a GPU: fail first
        check_out(out, fresh)
        check_inputs(config.data)
        resolve_text_model(config.features.text_model)  # the default is not checked by Config
        # Deterministic CPU kernels: with 2 threads a scatter-add's summation order varied
        # between runs and 30 HGNN epochs grew it to different metrics (issue 13); the
        # deterministic kernels measured no slower (docs/hgnn.md). CUDA keeps its defaults.
        seed_everything(self.seed, deterministic=device.type == "cpu")
        set_threads(config.runtime.threads)
        self.clock = StageClock()
        self.run_dir = RunDir(out)
        self.layout = RunLayout(out)
        if fresh:
            self.run_dir.clear()
        self.run_dir.start(
            config.model_dump(mode="json"),
            inputs=input_paths(config),
            extra={"reuse_hgnn": None if reuse_hgnn is None else str(reuse_hgnn),
                   **({} if held_out is None else held_out.manifest())},
        )
        self.models: dict[str, Recommender] = {}

    # ------------------------------------------------------------------ the whole job
    def run(self) -> dict[str, Any]:
        try:
            return self._run()
        except BaseException as e:
            # Any failure, bad data included, is recorded: a run never stays 'running'.
            self.run_dir.fail(e, self.clock.current)
            raise

    def _run(self) -> dict[str, Any]:
        cfg = self.config
        self.load()
        self.text()
        self.queries = build_eval_queries(self.dataset, cfg)
        self.valid = {p: q for (p, s), q in self.queries.items() if s == "valid"}
        self.train = make_train_set(self.dataset, self.item_text, self.seed)
        self.popularity = self.dataset.item_popularity()
        self.baselines()
        hgnn_emb = None
        if cfg.baselines.hgnn_w_users.enabled:
            self.models["hgnn-w-users"] = self.hgnn_w_users()
        if cfg.hgnn.enabled:
            self.graph_stage()
            hgnn_emb = self.hgnn("hgnn", self.graph, cfg.hgnn)
            self.models["hgnn-knn"] = load_model(self.layout.stage(layout.HGNN) / layout.HGNN_KNN)
        if cfg.two_tower.enabled:
            self.models["2t"] = self.two_tower("2t", None, None)
            if hgnn_emb is not None:
                self.models["2t-hgnn"] = self.two_tower("2t-hgnn", hgnn_emb, "hgnn")
        atomic_write_json(self.layout.models, {n: layout.model_folder(n) for n in self.models})
        with self.clock("evaluate"):
            metrics = evaluate_all(
                self.models, self.queries, self.dataset.catalog, self.popularity, cfg.eval,
                dataset_name=cfg.data.name, progress=self.progress,
            )
        self.vectors_and_index()
        metrics.update(self.experiments(hgnn_emb))
        if self.held_out is not None:
            metrics["new_items"] = self.evaluate_held_out()
        elif "new_items" in cfg.eval.protocols:
            metrics["new_items"] = self.new_items()
        self.run_dir.record_stage_seconds(self.clock.seconds)
        metrics["stage_seconds"] = {k: round(v, 1) for k, v in self.clock.seconds.items()}
        training = read_hgnn_history(self.layout.hgnn_history()) if cfg.hgnn.enabled else None
        if training is not None:
            metrics["hgnn_training"] = training
        write_metrics(self.layout.metrics, metrics)
        report = render_full_report(metrics)
        atomic_write_text(self.layout.report, report)
        plot_tiers(metrics, self.layout.tiers_plot)
        curve = self.layout.learning_curve_plot()
        if training is None or plot_learning_curve(training, curve, stage="hgnn") is None:
            curve.unlink(missing_ok=True)  # no stale curve of an earlier run in this folder
        self.run_dir.finish()
        print(report)
        return metrics

    # ------------------------------------------------------------------ stages
    def load(self) -> None:
        with self.clock("load"):
            if self.held_out is not None:
                self.dataset = self.held_out.dataset
            else:
                self.dataset = load_dataset(self.config.data, self.seed)
            # Settings that name things in the data: checked now, not when their stage runs.
            if self.config.hgnn.enabled:
                check_events(self.config.graph, self.dataset.event_names)
        print_load_report(self.dataset)
        self.data_key = config_hash(
            {"data": self.config.data.model_dump(mode="json"),
             "inputs": self.run_dir.input_hashes, "seed": self.seed,
             **({} if self.held_out is None else {"held_out": self.held_out.key})}
        )
        if not self.run_dir.is_done("data", self.data_key):
            with self.run_dir.stage("data", self.data_key) as tmp:
                save_dataset_tables(self.dataset, tmp)

    def text(self) -> None:
        key = config_hash({"data": self.data_key, "features": self.config.features.model_dump(mode="json")})
        with self.clock("text features"):
            if not self.run_dir.is_done("features", key):
                with self.run_dir.stage("features", key) as tmp:
                    f = item_text_features(self.dataset.catalog, self.config.features, self.progress)
                    save_text_features(tmp / layout.TEXT, self.dataset.catalog, f)
                    print(f"[hgrec] text: {f.n_embedded:,} embedded, {f.n_cached:,} cached, "
                          f"{f.n_empty:,} empty (zero vector)")
            self.item_text = load_text_features(self.layout.text_features,
                                                self.dataset.catalog).embeddings
        self.text_hash = self.run_dir.output_hash("features")

    def baselines(self) -> None:
        cfg = self.config
        key = config_hash(
            {"data": self.data_key, "text": self.text_hash,
             "baselines": cfg.baselines.model_dump(mode="json"),
             # what tuning reads of eval: the new-item protocol runs in its own folder
             "eval": {**cfg.eval.model_dump(mode="json", exclude={"new_items_share"}),
                      "protocols": cfg.eval.query_protocols}}
        )
        with self.clock("baselines"):
            if not self.run_dir.is_done("baselines", key):
                with self.run_dir.stage("baselines", key) as tmp:
                    _fit_baselines(cfg, self.train, self.valid, self.dataset, self.popularity, tmp)
            for name in cfg.baselines.enabled:
                self.models[name] = load_model(self.layout.baseline(name))

    def hgnn_w_users(self) -> Recommender:
        """P1's HGNN-w-users baseline: its own stage, as it trains an HGNN."""
        params = self.config.baselines.hgnn_w_users.params
        key = config_hash({"data": self.data_key, "text": self.text_hash, "seed": self.seed,
                           "params": params})
        with self.clock("hgnn-w-users"):
            if not self.run_dir.is_done("hgnn-w-users", key):
                with self.run_dir.stage("hgnn-w-users", key) as tmp:
                    model = HGNNWithUsers(hgnn_params=params or None, progress=self.progress)
                    model.fit(self.train).save(tmp / layout.MODEL)
            return load_model(self.layout.model("hgnn-w-users"))

    def graph_stage(self) -> None:
        key = config_hash({"data": self.data_key, "graph": self.config.graph.model_dump(mode="json")})
        with self.clock("graph"):
            if not self.run_dir.is_done("graph", key):
                with self.run_dir.stage("graph", key) as tmp:
                    graph, report = build_cograph_with_report(
                        self.dataset, self.config.graph, progress=self.progress
                    )
                    write_graph(graph, tmp, self.dataset.catalog, report.to_dict())
            summary = read_manifest(self.layout.graph)
            print(format_summary(summary.get("summary", summary)))
            self.graph = read_graph(self.layout.graph, self.dataset.catalog)

    def hgnn(self, stage: str, graph: CoGraph, hgnn_cfg: HGNNConfig) -> np.ndarray:
        """Train the HGNN on ``graph`` (or reuse frozen weights) and save its embeddings.

        Training resumes from ``<run>/checkpoints/<stage>-<key>`` after an interruption.
        """
        reuse = self.reuse_hgnn if stage == "hgnn" else None
        if reuse is not None:  # a clear error for a bad --reuse-hgnn before anything runs
            hgnn_cfg = reused_hgnn_config(reuse)
        key = config_hash(
            {"graph": self.run_dir.output_hash("graph"), "text": self.text_hash, "seed": self.seed,
             "hgnn": hgnn_cfg.model_dump(mode="json"), "stage": stage,
             "relations": {n: r.n_edges for n, r in graph.relations.items()},
             # the reused weights, not its training log (which holds wall times)
             "reuse": None if reuse is None
             else RunDir(reuse).output_hash(layout.HGNN, (layout.HGNN_WEIGHTS,)),
             "draws": DRAWS_VERSION}
        )
        with self.clock(stage):
            if not self.run_dir.is_done(stage, key):
                with self.run_dir.stage(stage, key) as tmp:
                    history: dict[str, Any]
                    if reuse is not None:
                        model = build_model(graph, self.item_text.shape[1], hgnn_cfg, self.seed)
                        model.load_state_dict(torch.load(RunLayout(reuse).hgnn_weights()))
                        model.eval()
                        emb = embed_items(model, graph, self.item_text, hgnn_cfg.inference.batch_edges,
                                          device=resolve_device(self.config.runtime.device))
                        history = {"reused_from": str(reuse)}
                    else:
                        ckpt = self.layout.checkpoint(f"{stage}-{key[:12]}")
                        result = train_hgnn(graph, self.item_text, hgnn_cfg, seed=self.seed,
                                            checkpoint_dir=ckpt, progress=self.progress,
                                            device=self.config.runtime.device)
                        model, emb = result.model, result.embeddings
                        history = {"best_epoch": result.best_epoch, "epochs": result.history,
                                   "untrained": result.untrained, "mode": result.mode,
                                   "loss_name": hgnn_cfg.training.loss}
                    write_vectors(tmp / layout.EMBEDDINGS, self.dataset.catalog.item_ids, emb,
                                  {"kind": "hgnn"})
                    atomic_torch_save(tmp / layout.HGNN_WEIGHTS, model.state_dict())
                    atomic_write_json(tmp / layout.HISTORY, history)
                    HGNNKNN(embeddings=emb).fit(self.train).save(tmp / layout.HGNN_KNN)
            return read_item_vectors(self.layout.embeddings(stage), self.dataset.catalog)[0]

    def two_tower(self, stage: str, hgnn_emb: np.ndarray | None, hgnn_stage: str | None) -> Recommender:
        """Train 2T (no HGNN features) or 2T-HGNN, early-stopped on valid users' mean HR@10."""
        cfg = self.config
        key = config_hash(
            {"data": self.data_key, "text": self.text_hash, "seed": self.seed,
             # what the 2T reads of the HGNN stage: its embeddings (history.json holds timings)
             "hgnn": None if hgnn_stage is None
             else self.run_dir.output_hash(hgnn_stage, (layout.EMBEDDINGS,)),
             "two_tower": cfg.two_tower.model_dump(mode="json")}
        )

        def validate(model: Recommender) -> float:
            return valid_score(model, self.valid, self.dataset.catalog, self.popularity, cfg.eval)[0]

        with self.clock(stage):
            if not self.run_dir.is_done(stage, key):
                with self.run_dir.stage(stage, key) as tmp:
                    model = TwoTowerRecommender.from_config(
                        cfg.two_tower, hgnn=hgnn_emb, progress=self.progress,
                        device=cfg.runtime.device,
                    )
                    model.fit(self.train, validate=validate)
                    model.save(tmp / layout.MODEL)
                    atomic_write_json(tmp / layout.TRAINING, getattr(model, "report_", {}))
            return load_model(self.layout.model(stage))

    def vectors_and_index(self) -> None:
        """The served model's item and user vectors as Parquet, and its nearest-neighbour index.

        The served model is the one ``hgrec serve`` picks by default (2T-HGNN when trained).
        The index is built the way the service builds it (exact below the size threshold,
        voyager above, recall@10 measured), so ``hgrec serve`` starts without rebuilding it.
        """
        name, folder = choose_model(self.run_dir.path, None)
        model = self.models[name]
        if not isinstance(model, VectorRecommender):
            return
        key = config_hash(
            {"model": name, "state": file_sha256(folder / layout.STATE), "data": self.data_key}
        )
        with self.clock("vectors + index"):
            if not self.run_dir.is_done("vectors", key):
                with self.run_dir.stage("vectors", key) as tmp:
                    users = np.arange(self.dataset.n_users)
                    write_vectors(tmp / layout.ITEM_VECTORS, self.dataset.catalog.item_ids,
                                  model.item_vectors(), {"kind": "items", "model": name})
                    write_vectors(tmp / layout.USER_VECTORS, self.dataset.user_ids,
                                  model.user_vectors(self.dataset.histories(users)),
                                  {"kind": "users", "model": name})
            state = load_state(self.run_dir.path, require_complete=False, progress=self.progress)
            print(f"[hgrec] index for {name}: {json.dumps(state.report.get('index', {}), default=str)[:300]}")

    def experiments(self, hgnn_emb: np.ndarray | None) -> dict[str, Any]:
        """P1 Table 4 (established type as target) and Table 1 (ablations), when configured."""
        cfg, out = self.config, {}
        est = cfg.experiments.established_type
        types = self.dataset.catalog.type_names
        if est is not None and (est not in types or est == self.dataset.target_type):
            # A config written for another dataset (e.g. the default one with --items): say
            # so and go on, so any canonical dataset runs without writing a config.
            print(f"[hgrec] note: experiments.established_type {est!r} is not another item type "
                  f"of this dataset {list(types)}; P1 Table 4 is skipped")
            est = None
        if est is not None:
            queries = {
                (p, s): build_queries(self.dataset, s, p, est)
                for p in cfg.eval.query_protocols for s in ("valid", "test")
            }
            with self.clock(f"evaluate ({est} as target)"):
                out["established"] = evaluate_all(
                    self.models, queries, self.dataset.catalog, self.popularity, cfg.eval,
                    dataset_name=cfg.data.name, progress=self.progress,
                )
        if cfg.experiments.ablations and hgnn_emb is not None and cfg.two_tower.enabled:
            ablated: dict[str, Recommender] = {"2t-hgnn": self.models["2t-hgnn"]}
            for letter in cfg.experiments.ablations:
                graph, hgnn_cfg = ablation_setup(letter, self.graph, cfg.hgnn, self.dataset.target_type)
                stage = f"ablation-{letter}"
                emb = self.hgnn(f"{stage}-hgnn", graph, hgnn_cfg)
                ablated[f"{letter}) {ABLATIONS[letter]}"] = self.two_tower(stage, emb, f"{stage}-hgnn")
            with self.clock("evaluate (ablations)"):
                out["ablations"] = evaluate_all(
                    ablated, self.queries, self.dataset.catalog, self.popularity, cfg.eval,
                    dataset_name=cfg.data.name, progress=self.progress,
                )
        return out

    def new_items(self) -> dict[str, Any]:
        """The new-item protocol: every model retrained without a share of the target items
        in ``<run>/new-items/`` (a complete run of its own, servable, stages cached like this
        one's), then evaluated on how it places them (:mod:`hgrec.evaluation.new_items`)."""
        cfg = self.config
        items = hold_out_items(self.dataset, cfg.eval.new_items_share, self.seed)
        reduced, counts = without_items(self.dataset, items)
        how = ("the latest first interactions" if reduced.order_kind == "timestamp"
               else f"a random {cfg.eval.new_items_share:.0%} of them, seed {self.seed}")
        held = HeldOut(dataset=reduced, items=items, counts=counts, parent=self.run_dir.path, how=how)
        print(f"[hgrec] new items: {counts['new_items']:,} {self.dataset.target_type} items held "
              f"out ({how}); {counts['train_interactions_removed']:,} training interactions "
              f"removed; retraining every model in {self.layout.new_items}")
        child_cfg = cfg.model_copy(update={
            "eval": cfg.eval.model_copy(update={"protocols": cfg.eval.query_protocols}),
            "experiments": ExperimentsConfig(),
        })
        with self.clock("new items (retrain + evaluate)"):
            child = Pipeline(child_cfg, self.layout.new_items, False, None, held)
            result: dict[str, Any] = child.run()["new_items"]
        return result

    def evaluate_held_out(self) -> dict[str, Any]:
        """The new-item metrics of this run's models (this run is the held-out one)."""
        held = self.held_out
        assert held is not None
        atomic_write_parquet(self.layout.held_out, held_out_table(self.dataset.catalog, held.items))
        queries = {
            (p, s): new_item_queries(self.dataset, s, p, held.items)
            for p in self.config.eval.query_protocols for s in ("valid", "test")
        }
        with self.clock("evaluate (new items)"):
            out = evaluate_new_items(self.models, queries, held.items, self.dataset.catalog,
                                     self.config.eval, progress=self.progress)
        t = self.dataset.target_type
        out.update(
            target_type=t, held_out=held.how,
            counts={**held.counts, "target_items": len(self.dataset.catalog.items_of_type(t))},
        )
        return out


@dataclass(frozen=True)
class HeldOut:
    """The new-item protocol's reduced dataset and what was held out (see
    :mod:`hgrec.evaluation.new_items`).

    Attributes:
        dataset: the dataset without the training users' interactions with ``items``.
        items: (m,) int64 held-out target item indices, ascending.
        counts: what was removed (:func:`hgrec.evaluation.new_items.without_items`).
        parent: the run folder this protocol belongs to.
        how: which items were held out, in words.
    """
    dataset: Dataset
    items: np.ndarray
    counts: dict[str, int]
    parent: Path
    how: str

    @property
    def key(self) -> str:
        """Content hash of the held-out item ids (part of the reduced data's stage key)."""
        ids = self.dataset.catalog.item_ids[self.items].astype(str).tolist()
        return config_hash({"held_out": ids})

    def manifest(self) -> dict[str, Any]:
        return {"parent": str(self.parent), "new_items": {"held_out": self.how, **self.counts}}


# ---------------------------------------------------------------------- helpers
def _fit_baselines(
    config: Config,
    train: TrainSet,
    valid: dict[str, Queries],
    dataset: Dataset,
    popularity: np.ndarray,
    folder: Path,
) -> None:
    """Tune every enabled baseline on valid users; save the best under ``folder/<name>``."""
    trials: dict[str, Any] = {}
    for name in config.baselines.enabled:
        if name not in BASELINES:
            raise ValueError(f"baselines.enabled: unknown model {name!r}; known: {sorted(BASELINES)}")
        cls = BASELINES[name]
        factory: Callable[[dict[str, Any]], Recommender] = lambda params, cls=cls: cls(**params)
        t0 = time.perf_counter()
        result = tune(factory, baseline_grid(name, config.baselines), train, valid,
                      dataset.catalog, popularity, config.eval, progress=config.runtime.progress)
        print(f"[hgrec] {name}: best {result.best_params} of {len(result.trials)} trial(s), "
              f"{time.perf_counter() - t0:.1f}s")
        result.best_model.save(folder / name)
        trials[name] = {"best": result.best_params, "trials": result.trials}
    atomic_write_json(folder / layout.TUNING, trials)


