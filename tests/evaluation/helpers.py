"""Test doubles and a hand-built dataset for the evaluation tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from hgrec.data.dataset import Catalog, Dataset
from hgrec.data.histories import Histories
from hgrec.models.base import Recommender, TrainSet


class FixedScores(Recommender):
    """Scores every user with the same (n_items,) vector: a popularity-like test model."""

    name = "fixed"

    def __init__(self, scores: list[float] | None = None) -> None:
        self.scores = np.asarray(scores if scores is not None else [], dtype=np.float32)
        self.fitted = False
        self.calls: list[tuple[int, np.ndarray]] = []

    def fit(self, train: TrainSet) -> FixedScores:
        self.fitted = True
        return self

    def score(self, histories: Histories, candidates: np.ndarray) -> np.ndarray:
        self.calls.append((histories.n_users, candidates.copy()))
        return np.tile(self.scores[candidates], (histories.n_users, 1))

    def get_params(self) -> dict[str, Any]:
        return {"scores": self.scores.tolist()}

    def get_state(self) -> dict[str, np.ndarray]:
        return {}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        pass


HAND_ITEMS = ["k0", "k1", "k2", "k3", "f0", "f1", "f2", "f3"]
# (user, split, [(item, order), ...]) in file order.
HAND_USERS: list[tuple[str, str, list[tuple[str, float]]]] = [
    ("u0", "valid", [("k0", 1), ("f0", 2), ("k1", 3), ("f1", 4)]),
    ("u1", "valid", [("k0", 1), ("k2", 2)]),  # no food
    ("u2", "valid", [("f0", 1), ("f2", 2)]),  # no kitchen
    ("u3", "valid", [("k1", 1), ("f1", 2), ("k2", 3), ("f2", 3), ("f3", 3)]),  # tie at 3
    ("u4", "valid", [("f0", 1), ("k0", 2)]),  # food only first
    ("u5", "train", [("k0", 1), ("f0", 2), ("f1", 3), ("k3", 4)]),
    ("u6", "valid", [("f1", 1), ("k3", 2), ("f1", 3)]),  # repeat purchase
    ("u7", "test", [("k0", 1), ("f0", 2), ("f3", 5)]),
]


def make_hand_dataset() -> Dataset:
    """8 items (kitchen k0-k3 = source, food f0-f3 = target), users covering every rule."""
    items = pd.DataFrame(
        {
            "item_id": HAND_ITEMS,
            "item_type": ["kitchen"] * 4 + ["food"] * 4,
            "title": HAND_ITEMS,
        }
    )
    catalog = Catalog.from_items(items)
    users = pd.DataFrame({"user_id": [u for u, _, _ in HAND_USERS],
                          "split": [s for _, s, _ in HAND_USERS]})
    rows = [(u, HAND_ITEMS.index(i), o) for u, (_, _, seq) in enumerate(HAND_USERS) for i, o in seq]
    df = pd.DataFrame(rows, columns=["user", "item", "order"])
    df["order"] = df["order"].astype(np.float64)
    df["event"] = pd.Categorical(["stream"] * len(df), categories=["stream"])
    df["weight"] = np.float32(1.0)
    df = df.sort_values(["user", "order"], kind="stable").reset_index(drop=True)
    return Dataset(name="hand", catalog=catalog, users=users, interactions=df, target_type="food")


def item(name: str) -> int:
    return HAND_ITEMS.index(name)
