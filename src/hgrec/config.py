"""One typed config per run, made of sections, loaded from one YAML file and validated first.

Every section forbids unknown keys, so a typo in the YAML fails before anything runs. The
resolved config is saved next to the run's artifacts (``config.yaml``). Relative paths in
the YAML are resolved against the YAML file's folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from hgrec.errors import UserError
from hgrec.features.text_backends import TextBackend, check_backend
from hgrec.features.text_model import DEFAULT_MODEL, resolve_text_model

# numpy's legacy RandomState (seeded by hgrec.utils.seed) accepts [0, 2**32).
SEED_LIMIT = 2**32
BaselineName = Literal["popularity", "itemknn", "als", "ease", "llm-knn"]
BASELINE_NAMES: tuple[str, ...] = get_args(BaselineName)  # hgrec.recommenders.registry.BASELINES
PositiveInt = Annotated[int, Field(ge=1)]
PositiveFloat = Annotated[float, Field(gt=0.0)]
NonNegativeFloat = Annotated[float, Field(ge=0.0)]


class ConfigError(UserError):
    """An invalid config file or flag; the message says which key and what is allowed."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class RuntimeConfig(Section):
    seed: int = Field(0, ge=0, lt=SEED_LIMIT, description="seeds numpy, torch and random")
    threads: int | None = Field(None, ge=1, description="torch/BLAS threads; None = all cores")
    device: str = "cpu"
    progress: bool = True


class DataConfig(Section):
    """Where the data is. ``adapter`` names a dataset in ``hgrec.datasets`` or 'canonical'."""

    name: str = "dataset"
    adapter: Literal["canonical", "amazon-food-kitchen", "synthetic"] = "canonical"
    path: Path | None = Field(None, description="root folder for an adapter")
    items: Path | None = None
    interactions: Path | None = None
    users: Path | None = None
    target_type: str | None = None
    valid_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    test_fraction: float = Field(0.1, ge=0.0, lt=1.0)


class FeaturesConfig(Section):
    text_model: str = Field(
        DEFAULT_MODEL,
        description="an installed model package or a local sentence-transformers folder; "
        "checked when the config is read, as nothing is downloaded at run time",
    )
    # Measured on 2 cores, 1,000 Amazon titles (docs/decisions.md "Text backend"): onnx 0.82x
    # and onnx-int8 1.04x the texts/s of torch, int8 at min cosine 0.987 to torch; so
    # torch stays the default.
    backend: TextBackend = Field(
        "torch",
        description="torch: sentence-transformers (CPU or CUDA); onnx / onnx-int8: an ONNX "
        "Runtime export (float32 / int8 dynamically quantised weights), CPU only, exported once "
        "into cache_dir/models and reused; the backend is part of the text-cache key",
    )
    batch_size: int = Field(128, ge=1)
    max_seq_length: int = Field(128, ge=8)
    cache_dir: Path = Path(".cache/text")

    @field_validator("text_model")
    @classmethod
    def _model_exists(cls, name: str) -> str:
        resolve_text_model(name)  # TextModelError (a ValueError) names what was tried
        return name

    @field_validator("backend")
    @classmethod
    def _backend_installed(cls, backend: str) -> str:
        check_backend(backend)  # TextBackendError (a ValueError) names the missing packages
        return backend


class ItemKNNConfig(Section):
    """ItemKNN's grid, tuned on valid users."""

    neighbors: list[PositiveInt] = Field([20, 50, 100, 200], min_length=1)

    def grid(self) -> dict[str, list[Any]]:
        return {"neighbors": list(self.neighbors)}


class ALSConfig(Section):
    """ALS's grid (``implicit``), tuned on valid users."""

    factors: list[PositiveInt] = Field([64, 128], min_length=1)
    regularization: list[NonNegativeFloat] = Field([0.01, 0.1], min_length=1)
    iterations: int = Field(15, ge=1)
    # alpha made little difference on amazon-food-kitchen (docs/baselines.md); one value keeps
    # the grid at 4 fits (~2 minutes on 2 cores).
    alpha: list[PositiveFloat] = Field([10.0], min_length=1)

    def grid(self) -> dict[str, list[Any]]:
        return {"factors": list(self.factors), "regularization": list(self.regularization),
                "alpha": list(self.alpha), "iterations": [self.iterations]}


class EASEConfig(Section):
    """EASE's grid, tuned on valid users."""

    # Measured on amazon-food-kitchen (valid users, last food item held out, HR@10 at 8k
    # items): lam 20 .146, 50 .148, 100 .156, 200 .151, 500 .142, 2000 .132; see
    # docs/baselines.md.
    lambdas: list[PositiveFloat] = Field([50.0, 100.0, 250.0], min_length=1)
    # One fit is O(max_items^3): 10k items took 38 s on 1 busy core (12k: 68 s), so three
    # lambdas stay under ~2 minutes; the kept items cover 69% of training interactions.
    max_items: int = Field(10_000, ge=1)

    def grid(self) -> dict[str, list[Any]]:
        return {"lam": list(self.lambdas), "max_items": [self.max_items]}


class HGNNWithUsersConfig(Section):
    """P1's HGNN-w-users: an HGNN over the user-item graph
    (:mod:`hgrec.recommenders.hgnn_w_users`), its own stage."""

    enabled: bool = True
    params: dict[str, Any] = Field(
        {}, description="HGNN settings by name (e.g. max_epochs, fanouts: any setting of the "
        "hgnn sections) overriding the model's defaults (empty: none)",
    )

    @field_validator("params")
    @classmethod
    def _hgnn_params(cls, params: dict[str, Any]) -> dict[str, Any]:
        HGNNConfig().updated(**params)  # ValueError: an unknown setting or a bad value
        return params


class BaselinesConfig(Section):
    """Which baselines run, and one section per baseline with the grid tuned on valid users."""

    enabled: list[BaselineName] = list(BASELINE_NAMES)
    itemknn: ItemKNNConfig = ItemKNNConfig()
    als: ALSConfig = ALSConfig()
    ease: EASEConfig = EASEConfig()
    hgnn_w_users: HGNNWithUsersConfig = HGNNWithUsersConfig()

    @field_validator("enabled")
    @classmethod
    def _distinct(cls, names: list[str]) -> list[str]:
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"{repeated} listed more than once; expected each baseline once")
        return names


class EvalConfig(Section):
    hr_k: int = Field(10, ge=1)
    mrr_k: int = Field(100, ge=1)
    n_tiers: int = Field(5, ge=1)
    batch_size: int = Field(1024, ge=1)
    # "new_items" retrains every model without a share of the target items (run folder
    # new-items/, about the cost of the main run again) and reports how they are placed
    # (hgrec.evaluation.new_items); `make new-items` turns it on for the default data.
    protocols: list[Literal["cold", "warm", "new_items"]] = Field(["cold", "warm"], min_length=1)
    new_items_share: float = Field(
        0.2, gt=0.0, lt=1.0, description="share of target items held out by new_items"
    )

    @field_validator("protocols")
    @classmethod
    def _one_query_protocol(cls, protocols: list[str]) -> list[str]:
        if not set(protocols) & {"cold", "warm"}:
            raise ValueError("expected 'cold' or 'warm' among the protocols (new_items adds to them)")
        return protocols

    @property
    def query_protocols(self) -> list[str]:
        """The protocols with queries of their own (cold, warm), in config order."""
        return [p for p in self.protocols if p != "new_items"]


class GraphConfig(Section):
    """Co-interaction graph (P1 section 4.1.1); see docs/graph.md.

    An edge joins two items that at least ``min_users`` training users interacted with; the
    co-count is kept as the edge attribute. ``top_k`` keeps an edge when it is among the
    ``top_k`` strongest edges (co-count, ties by smaller neighbour index) of either endpoint
    within the same relation.
    """

    min_users: int = Field(1, ge=1)
    events: list[str] | None = Field(
        None, min_length=1, description="events that count; None = all"
    )
    window: int | None = Field(None, ge=1, description="max distance within a history")
    window_unit: Literal["positions", "days"] = "positions"
    top_k: int | None = Field(None, ge=1, description="per-node pruning by co-count")
    engine: Literal["scipy", "duckdb", "spark"] = "scipy"
    block_pairs: int = Field(
        20_000_000, ge=1, description="co-occurrences held at once (bounds build memory)"
    )
    duckdb_memory_limit: str = Field("4GB", description="DuckDB memory_limit; spills beyond")
    duckdb_temp_dir: Path | None = Field(None, description="DuckDB spill folder; None = default")


class HGNNModelConfig(Section):
    """The network (P1 Eqs. 2-3): widths, hops, activations, the max-pool kernel."""

    hidden_dim: int = Field(128, ge=1, description="P1: not stated; 128 measured best per second")
    out_dim: int = Field(128, ge=1)
    # One mini-batch's 2-hop neighbourhood already covers ~97% of the Amazon graph, so the
    # full-graph step is the default there (docs/hgnn.md); fan-outs close to inference's full
    # neighbourhoods were measured best (docs/hgnn.md "History").
    fanouts: list[int] = Field(
        [25, 10], min_length=1, description="per hop, seeds' hop first; -1: all neighbours"
    )
    final_activation: bool = Field(False, description="ReLU before the L2 norm (literal Eq. 3)")
    per_type_self: bool = Field(False, description="one W_self per node type")
    pool_impl: Literal["auto", "dense", "scatter", "pyg"] = Field(
        "auto", description="max-pool kernel; all exact, they differ in speed"
    )

    @field_validator("fanouts")
    @classmethod
    def _fanouts(cls, fanouts: list[int]) -> list[int]:
        bad = [f for f in fanouts if f == 0 or f < -1]
        if bad:
            raise ValueError(f"{bad} not allowed; expected neighbours per hop >= 1, or -1 for all")
        return fanouts


class HGNNSamplerConfig(Section):
    """Which supervision edges and negatives a step sees (P1 section 4.1.3)."""

    balanced_sampler: bool = True
    sampler_cap: int | None = Field(None, ge=1)
    exclude_supervision_edges: bool = Field(
        True, description="drop a batch's (anchor, positive) pairs from its computation graph"
    )
    n_negatives: int = Field(5, ge=1, description="per-anchor negatives (P1) when shared_negatives is None")
    shared_negatives: int | None = Field(
        1024, ge=1,
        description="pool of random negatives shared by the batch's anchors; None: n_negatives "
        "per anchor (mini-batch step; the full-graph step then shares a pool of n_negatives)",
    )
    type_matched_negatives: bool = False
    supervision_fraction: float = Field(
        0.3, gt=0.0, lt=1.0,
        description="full-graph step: share of each relation's training edges drawn afresh "
        "every epoch as supervision and withheld from message passing (PyG disjoint_train_ratio)",
    )
    cold_node_fraction: float = Field(
        0.0, ge=0.0, lt=1.0,
        description="full-graph step: share of the nodes drawn afresh every epoch that pass "
        "and receive no message (all their message-passing edges withheld) while their "
        "supervision edges stay, so the model learns to place an edgeless (new) item from its "
        "text; docs/hgnn.md",
    )


class HGNNTrainingConfig(Section):
    """The loss (P1 Eq. 4 or InfoNCE), the step, the optimiser, validation and early stopping."""

    loss: Literal["hinge", "infonce"] = Field(
        "infonce",
        description="InfoNCE (sampled softmax) over the negative pool, or Eq. 4's margin loss "
        "(hinge); InfoNCE measured better on valid users (docs/hgnn.md)",
    )
    margin: float = Field(0.2, gt=0.0, description="Eq. 4 hinge margin; P1: not stated")
    temperature: float = Field(0.1, gt=0.0, description="InfoNCE temperature tau")
    step: Literal["auto", "full-graph", "minibatch"] = Field(
        "auto",
        description="full-graph: every node computed once per step, many supervision edges; "
        "minibatch: sampled computation graph of batch_size edges; auto: full-graph when one "
        "mini-batch's computation graph covers half the catalogue (logged)",
    )
    full_graph_batch_size: int = Field(
        65_536, ge=1, description="supervision edges per full-graph step"
    )
    lr: float = Field(1e-3, gt=0.0)
    batch_size: int = Field(4096, ge=1, description="supervision edges per mini-batch step; P1: 256")
    # Full-graph epochs on the default data: 4 steps of 65,536 edges + validation, ~10 s on
    # 2 cores; held-out MRR rises for ~30 epochs (docs/hgnn.md), which fits make run's budget.
    max_epochs: int = Field(30, ge=1, description="P1: 50")
    patience: int = Field(3, ge=1, description="P1: 10")
    # Held-out MRR is flat (or dips) for the first ~4 epochs while training relearns the
    # degree signal of the untrained full-neighbourhood embeddings; one seed stopped there at
    # epoch 5 with patience 3 (docs/hgnn.md), so early stopping waits this long.
    min_epochs: int = Field(10, ge=1, description="no early stop before this many epochs")
    max_steps_per_epoch: int | None = Field(
        20, ge=1, description="cap on steps per epoch (a full-graph epoch has fewer); None: no cap"
    )
    valid_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    valid_negatives: int = Field(100, ge=1, description="fixed same-type negatives per edge")
    valid_max_edges: int | None = Field(2000, ge=1, description="held-out edges ranked per relation")


class HGNNInferenceConfig(Section):
    """Full-neighbourhood inference over the whole catalogue (``embed_items``)."""

    batch_edges: int = Field(262_144, ge=1, description="edges per inference block")


# The hgnn config's sections, by name; a setting's name is unique across them.
HGNN_SECTIONS: dict[str, type[Section]] = {
    "model": HGNNModelConfig, "sampler": HGNNSamplerConfig,
    "training": HGNNTrainingConfig, "inference": HGNNInferenceConfig,
}


class HGNNConfig(Section):
    """Heterogeneous GraphSAGE (P1 equations 2-4) and its training (see docs/hgnn.md), one
    typed section per concern. Every setting's name is unique across the sections, so
    :meth:`updated` changes settings by name."""

    enabled: bool = True
    model: HGNNModelConfig = HGNNModelConfig()
    sampler: HGNNSamplerConfig = HGNNSamplerConfig()
    training: HGNNTrainingConfig = HGNNTrainingConfig()
    inference: HGNNInferenceConfig = HGNNInferenceConfig()

    @staticmethod
    def section_of(setting: str) -> str:
        """The section a setting belongs to ("model", "sampler", "training", "inference").

        Raises:
            ValueError: no section has this setting (the message lists them all).
        """
        for name, section in HGNN_SECTIONS.items():
            if setting in section.model_fields:
                return name
        known = sorted(f for section in HGNN_SECTIONS.values() for f in section.model_fields)
        raise ValueError(f"unknown HGNN setting {setting!r}; expected one of {known}")

    @classmethod
    def from_saved(cls, saved: Mapping[str, Any]) -> HGNNConfig:
        """The ``hgnn`` section a run's manifest recorded: by sections, or flat as runs
        written before the sections (2026-12-08) recorded it.

        Raises:
            ValueError: an unknown setting or a bad value (one line).
        """
        if set(saved) <= {"enabled", *HGNN_SECTIONS}:
            try:
                return cls.model_validate(saved)
            except ValidationError as e:
                raise ValueError(format_validation_error(e)) from None
        flat = dict(saved)
        if "inference_batch_edges" in flat:  # the flat name of inference.batch_edges
            flat["batch_edges"] = flat.pop("inference_batch_edges")
        return cls().updated(**flat)

    def updated(self, **settings: Any) -> HGNNConfig:
        """A validated copy with ``settings`` changed by name, e.g.
        ``cfg.updated(max_epochs=2, fanouts=[5, 5])``.

        Raises:
            ValueError: an unknown setting, or a value out of range (one line).
        """
        data = self.model_dump()
        for key, value in settings.items():
            if key == "enabled":
                data[key] = value
            else:
                data[self.section_of(key)][key] = value
        try:
            return HGNNConfig.model_validate(data)
        except ValidationError as e:
            raise ValueError(format_validation_error(e)) from None


class TwoTowerConfig(Section):
    """Two-tower adaptation layer (P1 section 4.2, equation 5)."""

    enabled: bool = True
    layers: list[PositiveInt] = Field(
        [512, 256, 128], min_length=1, description="widths of each tower's layers, last = output"
    )
    loss: Literal["logq", "inverse-frequency"] = "logq"
    temperature: float = Field(0.05, gt=0.0, description="softmax temperature of Eq. 5")
    negatives: Literal["batch", "same-type"] = Field(
        "batch",
        description="in-batch negatives: every other item, or only items of the positive's "
        "type (P1 Eq. 5: 'in-batch negative audiobook samples'); docs/two-tower.md",
    )
    normalize: bool = Field(True, description="L2-normalise tower outputs (cosine / temperature)")
    lr: float = Field(1e-3, gt=0.0)
    # 3 epochs of batch 1024 train the 2T-HGNN on Amazon (351k examples) in ~3 min on one
    # busy core (docs/two-tower.md); P1 used batch 128 and 10 epochs.
    batch_size: int = Field(1024, ge=1)
    max_epochs: int = Field(3, ge=1)
    patience: int = Field(2, ge=1)
    max_history: int = Field(100, ge=1, description="history items the user tower reads (last)")
    cat_dim: int = Field(16, ge=1, description="width of each categorical embedding")
    min_count: int = Field(1, ge=1, description="rarer categorical values share the unseen code")
    # P1's "lists of embeddings": learned item-id embeddings in both towers. A shared 64-d
    # table lifted Amazon valid HR@10 of the 2T-HGNN (docs/two-tower.md); 0 = off.
    id_dim: int = Field(64, ge=0, description="width of learned item-id embeddings; 0 = off")
    id_min_count: int = Field(
        2, ge=1, description="items seen fewer times in training share the 'rare' id row"
    )
    id_shared: bool = Field(True, description="user and item towers read one id table")
    max_steps_per_epoch: int | None = Field(None, ge=1, description="cap on batches per epoch")
    # Twins with the whole other-type history lifted valid cold HR@10 on both targets of the
    # default data (kitchen +0.040, food +0.013) and steadied the seeds (docs/two-tower.md).
    cold_twins: bool = Field(
        True,
        description="add a twin of each example without its positive's type in the history "
        "(the situation of a user new to that type); docs/two-tower.md",
    )
    cold_twin_history: Literal["before", "all"] = Field(
        "all",
        description="a cold twin's history: the other-type items before its positive, or all "
        "of the user's other-type items (as a cold query sees them)",
    )
    balance_types: bool = Field(
        False,
        description="each epoch, as many examples per positive item type as the rarest type "
        "has (fresh draw per epoch); docs/two-tower.md",
    )
    id_dropout: float = Field(
        0.0, ge=0.0, lt=1.0,
        description="probability that a training positive is shown to the item tower with the "
        "rare id row (learns to place new items from their features); docs/two-tower.md",
    )


class ExperimentsConfig(Section):
    """P1's offline study beyond the main tables (Tables 1 and 4)."""

    established_type: str | None = Field(
        None, description="evaluate again with this type as target (P1 Table 4); None = off"
    )
    ablations: list[Literal["A", "C", "D", "E", "F"]] = Field(
        [],
        description="P1 Table 1: A sampler off, C no source-source relation, D no target-target "
        "relation, E target-only graph, F source-only graph (targets embedded from text)",
    )


class Config(Section):
    runtime: RuntimeConfig = RuntimeConfig()
    data: DataConfig = DataConfig()
    features: FeaturesConfig = FeaturesConfig()
    baselines: BaselinesConfig = BaselinesConfig()
    eval: EvalConfig = EvalConfig()
    graph: GraphConfig = GraphConfig()
    hgnn: HGNNConfig = HGNNConfig()
    two_tower: TwoTowerConfig = TwoTowerConfig()
    experiments: ExperimentsConfig = ExperimentsConfig()

    @model_validator(mode="after")
    def _check(self) -> Config:
        d = self.data
        if d.adapter == "canonical":
            missing = [k for k in ("items", "interactions") if getattr(d, k) is None]
            if missing:
                raise ValueError(
                    f"data: the canonical adapter needs data.{' and data.'.join(missing)} "
                    "(or --items and --interactions)"
                )
            if d.target_type is None:
                raise ValueError(
                    "data.target_type is missing: the canonical adapter needs the new item type "
                    "to evaluate (a value of the items' item_type column; or --target-type)"
                )
        # A folder adapter's data.path is checked with the files, before the run starts
        # (hgrec.datasets.check_inputs): a Config without it still describes the settings.
        if d.valid_fraction + d.test_fraction >= 1.0:
            raise ValueError(
                f"data.valid_fraction + data.test_fraction is "
                f"{d.valid_fraction + d.test_fraction:g}; expected a sum below 1"
            )
        return self

    @staticmethod
    def from_yaml(
        path: str | Path,
        overrides: dict[str, Any] | None = None,
        origins: Mapping[str, str] | None = None,
    ) -> Config:
        """Load ``path``; ``overrides`` maps 'section.key' (or 'section.sub.key') to a value
        (CLI flags).

        ``origins`` maps an overridden 'section.key' to where its value came from (a flag such
        as '--seed'), named in errors next to the key.

        Raises:
            FileNotFoundError: no file at ``path``.
            ConfigError: a one-line message naming the file (and line, for YAML syntax), the
                key, the value given and what is allowed.
        """
        path = Path(path)
        if not path.is_file():
            what = "is a folder" if path.is_dir() else "does not exist"
            raise FileNotFoundError(f"config file {path} {what}; expected a YAML file")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except UnicodeDecodeError as e:
            raise ConfigError(
                f"{path}: byte {e.start} is not UTF-8 text ({e.object[e.start:e.start + 1]!r}); "
                "expected a UTF-8 YAML file"
            ) from None
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}{_yaml_where(e)}: invalid YAML: {_yaml_problem(e)}") from None
        if not isinstance(raw, dict):
            raise ConfigError(
                f"{path}: the file holds a {type(raw).__name__}; expected a mapping of sections "
                f"({', '.join(Config.model_fields)})"
            )
        for name, section in raw.items():
            if name in Config.model_fields and not isinstance(section, dict):
                raise ConfigError(
                    f"{path}: section {name!r} is {section!r}; expected a mapping of keys "
                    f"({', '.join(_section(name).model_fields)})"
                )
        for dotted, value in (overrides or {}).items():  # 'section.key' or deeper
            *parents, key = dotted.split(".")
            node = raw
            for name in parents:
                child = node.get(name)
                node[name] = child = dict(child) if isinstance(child, dict) else {}
                node = child
            node[key] = value
        data = raw.get("data", {})
        for key in ("path", "items", "interactions", "users"):
            if isinstance(data.get(key), str) and not Path(data[key]).is_absolute():
                if (overrides or {}).get(f"data.{key}") is None:
                    data[key] = str((path.parent / data[key]).resolve())
        try:
            return Config.model_validate(raw)
        except ValidationError as e:
            text = format_validation_error(e, origins)
            raise ConfigError(f"{path}: invalid config: {text}") from None

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def _section(name: str) -> type[BaseModel]:
    annotation = Config.model_fields[name].annotation
    assert isinstance(annotation, type) and issubclass(annotation, BaseModel)
    return annotation


def _yaml_where(e: yaml.YAMLError) -> str:
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    return "" if mark is None else f", line {mark.line + 1}, column {mark.column + 1}"


def _yaml_problem(e: yaml.YAMLError) -> str:
    context, problem = getattr(e, "context", None), getattr(e, "problem", None)
    start, mark = getattr(e, "context_mark", None), getattr(e, "problem_mark", None)
    if context and start is not None and mark is not None and start.line != mark.line:
        context += f" (from line {start.line + 1}, column {start.column + 1})"
    text = "; ".join(p for p in (context, problem) if p) or str(e)
    return " ".join(text.split())


def format_validation_error(e: ValidationError, origins: Mapping[str, str] | None = None) -> str:
    """pydantic's errors on one line: ``key: what is wrong (got value)``, joined by '; '.

    ``origins`` maps a dotted key to the flag that set it, shown as ``runtime.seed (--seed)``.
    """
    parts = []
    for err in e.errors():
        loc = ".".join(str(p) for p in err["loc"])
        key = loc.rsplit(".", 1)[0] if err["loc"] and isinstance(err["loc"][-1], int) else loc
        if origins and key in origins:
            loc += f" ({origins[key]})"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            parent = _model_at(err["loc"][:-1])
            allowed = f"; expected one of {', '.join(parent.model_fields)}" if parent else ""
            parts.append(f"{loc}: unknown key{allowed}")
            continue
        if not loc:  # a whole-config check: its message names the keys
            parts.append(msg)
            continue
        given = err.get("input")
        quoted = isinstance(given, str) and repr(given) in msg  # the message names it already
        shown = "" if isinstance(given, dict) or quoted else f" (got {given!r:.80})"
        parts.append(f"{loc}: {msg}{shown}")
    return "; ".join(" ".join(p.split()) for p in parts)


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The section model at ``loc`` (() = Config), or None when ``loc`` is not a section."""
    model: type[BaseModel] = Config
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = None if field is None else field.annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model
