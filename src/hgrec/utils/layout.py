"""Every path of a run directory, in one place: the pipeline writes there, serving, ``hgrec
similar``, ``hgrec add-items`` and the torchrun entry point read there.

    <run>/
      manifest.json                     hgrec.utils.artifacts.RunDir (stages, status, hashes)
      data/items|users|interactions.parquet   the dataset as served (string ids)
      features/text.parquet             text embeddings (hgrec.data.vectors, kind "text")
      graph/                            the co-interaction graph (hgrec.graph.io)
      hgnn/model.pt|embeddings.parquet|history.json|hgnn-knn/   HGNN weights, z, training log
      baselines/<name>/ + tuning.json   tuned baselines
      hgnn-w-users/model/, 2t/model/, 2t-hgnn/model/ (+ training.json)
      vectors/items|users.parquet       the served model's vectors (hgrec.data.vectors)
      index/<model>/, index/similar/    nearest-neighbour indexes (hgrec.serving.index)
      checkpoints/<stage>-<key>/        resumable HGNN training
      models.json                       model name -> its folder (what serving loads)
      metrics.json, report.md, tiers.png, <stage>_learning_curve.png
      held_out_items.parquet            the new-item protocol's run (<run>/new-items/)
      add_items.json                    a version made by ``hgrec add-items``

A saved model's folder holds ``params.json`` (class name and hyper-parameters) and
``state.npz`` (arrays): :meth:`hgrec.models.base.Recommender.save`.

Stages write into a temporary folder that replaces the stage's folder when complete
(:meth:`RunDir.stage`), so the names inside a stage are module constants used with that
folder; :class:`RunLayout` gives the final paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Bumped when a file of the run directory changes format (2: one vector format, 2026-12-08).
# Every finished stage records it (``_STAGE.json``), and a stage of another layout is not
# done (:meth:`hgrec.utils.artifacts.RunDir.is_done`): ``hgrec run`` rebuilds an older run
# folder instead of misreading it.
LAYOUT_VERSION = 2

# A saved model's folder.
PARAMS = "params.json"
STATE = "state.npz"

# Stage folders and the files inside them.
DATA = "data"
ITEMS = "items.parquet"
USERS = "users.parquet"
INTERACTIONS = "interactions.parquet"
TABLES = (ITEMS, USERS, INTERACTIONS)
FEATURES = "features"
TEXT = "text.parquet"
GRAPH = "graph"
HGNN = "hgnn"
HGNN_WEIGHTS = "model.pt"
EMBEDDINGS = "embeddings.parquet"
HISTORY = "history.json"
HGNN_KNN = "hgnn-knn"
BASELINES = "baselines"
TUNING = "tuning.json"
MODEL = "model"
TRAINING = "training.json"
VECTORS = "vectors"
ITEM_VECTORS = "items.parquet"
USER_VECTORS = "users.parquet"
INDEX = "index"
CHECKPOINTS = "checkpoints"

# Files at the top of a run.
MODELS = "models.json"
METRICS = "metrics.json"
REPORT = "report.md"
TIERS_PLOT = "tiers.png"
HELD_OUT = "held_out_items.parquet"
ADD_ITEMS = "add_items.json"
NEW_ITEMS = "new-items"
# A run assembled by hand (no models.json) may keep its models in models/<name>/.
MODELS_DIR = "models"


def model_folder(name: str) -> str:
    """Where model ``name`` lives, relative to the run root (the values of models.json)."""
    if name == "hgnn-knn":
        return f"{HGNN}/{HGNN_KNN}"
    if name in ("2t", "2t-hgnn", "hgnn-w-users"):
        return f"{name}/{MODEL}"
    return f"{BASELINES}/{name}"


def learning_curve(stage: str) -> str:
    """File name of an HGNN stage's learning-curve plot."""
    return f"{stage}_learning_curve.png"


@dataclass(frozen=True)
class RunLayout:
    """The paths of the run directory ``root``."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    def table(self, name: str) -> Path:
        """``data/<name>``: one of :data:`TABLES`."""
        return self.root / DATA / name

    @property
    def text_features(self) -> Path:
        return self.root / FEATURES / TEXT

    @property
    def graph(self) -> Path:
        return self.root / GRAPH

    def stage(self, name: str) -> Path:
        return self.root / name

    def hgnn_weights(self, stage: str = HGNN) -> Path:
        return self.root / stage / HGNN_WEIGHTS

    def embeddings(self, stage: str = HGNN) -> Path:
        return self.root / stage / EMBEDDINGS

    def hgnn_history(self, stage: str = HGNN) -> Path:
        return self.root / stage / HISTORY

    def model(self, stage: str) -> Path:
        """A trained model's folder: ``<stage>/model`` (2t, 2t-hgnn, hgnn-w-users)."""
        return self.root / stage / MODEL

    def baseline(self, name: str) -> Path:
        return self.root / BASELINES / name

    def vectors(self, file: str) -> Path:
        """``vectors/<file>``: :data:`ITEM_VECTORS` or :data:`USER_VECTORS`."""
        return self.root / VECTORS / file

    def index(self, name: str) -> Path:
        return self.root / INDEX / name

    def checkpoint(self, name: str) -> Path:
        return self.root / CHECKPOINTS / name

    @property
    def models(self) -> Path:
        return self.root / MODELS

    @property
    def metrics(self) -> Path:
        return self.root / METRICS

    @property
    def report(self) -> Path:
        return self.root / REPORT

    @property
    def tiers_plot(self) -> Path:
        return self.root / TIERS_PLOT

    def learning_curve_plot(self, stage: str = HGNN) -> Path:
        return self.root / learning_curve(stage)

    @property
    def held_out(self) -> Path:
        return self.root / HELD_OUT

    @property
    def new_items(self) -> Path:
        return self.root / NEW_ITEMS

    @property
    def models_dir(self) -> Path:
        return self.root / MODELS_DIR
