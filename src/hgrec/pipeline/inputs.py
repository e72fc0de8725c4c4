"""What every training stage starts from: the training set and the evaluation queries of a
dataset (shared by ``hgrec run``, the torchrun entry point and the benchmarks)."""

from __future__ import annotations

import numpy as np

from hgrec.config import Config
from hgrec.data.dataset import Dataset
from hgrec.evaluation.protocols import Queries, build_queries
from hgrec.models.base import TrainSet


def build_eval_queries(dataset: Dataset, config: Config) -> dict[tuple[str, str], Queries]:
    """Queries for every (protocol, split) of the config; the valid ones drive tuning."""
    return {
        (protocol, split): build_queries(dataset, split, protocol, dataset.target_type)
        for protocol in config.eval.query_protocols
        for split in ("valid", "test")
    }


def make_train_set(dataset: Dataset, item_text: np.ndarray | None, seed: int) -> TrainSet:
    train_users = dataset.users_in("train")
    return TrainSet.build(
        catalog=dataset.catalog,
        histories=dataset.histories(train_users),
        item_text=item_text,
        event_names=dataset.event_names,
        users=dataset.users.iloc[train_users].reset_index(drop=True),
        seed=seed,
    )
