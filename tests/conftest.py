"""Shared fixtures: a tiny dataset with planted structure, built in memory (no files)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from hgrec.data.dataset import Catalog, Dataset

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def make_tiny_dataset(seed: int = 0, n_users: int = 60, n_clusters: int = 3) -> Dataset:
    """Two item types (kitchen: established, food: target); each user has a taste cluster and
    interacts mostly with items of that cluster in both types, so structure crosses types.

    Items: 10 kitchen + 8 food per cluster. Users: 60%/20%/20% train/valid/test.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n_clusters):
        rows += [(f"k{c}_{j}", "kitchen", f"kitchen tool {c} {j}", c) for j in range(10)]
        rows += [(f"f{c}_{j}", "food", f"snack flavour {c} {j}", c) for j in range(8)]
    items = pd.DataFrame(rows, columns=["item_id", "item_type", "title", "cluster"])
    catalog = Catalog.from_items(items)
    cluster = items["cluster"].to_numpy()
    splits = np.array(["train"] * int(n_users * 0.6) + ["valid"] * int(n_users * 0.2))
    splits = np.concatenate([splits, ["test"] * (n_users - len(splits))])
    users = pd.DataFrame({"user_id": [f"u{u}" for u in range(n_users)], "split": splits})
    inter = []
    for u in range(n_users):
        c = u % n_clusters
        same = np.flatnonzero(cluster == c)
        picks = rng.choice(same, size=8, replace=False)
        noise = rng.choice(len(items), size=1)
        for pos, i in enumerate(np.concatenate([picks, noise])):
            inter.append((u, int(i), float(pos)))
    df = pd.DataFrame(inter, columns=["user", "item", "order"]).drop_duplicates(["user", "item"])
    df["event"] = pd.Categorical(["stream"] * len(df), categories=["stream"])
    df["weight"] = np.float32(1.0)
    df = df.sort_values(["user", "order"], kind="stable").reset_index(drop=True)
    return Dataset(
        name="tiny",
        catalog=catalog,
        users=users,
        interactions=df,
        target_type="food",
    )


@pytest.fixture
def tiny_dataset() -> Dataset:
    return make_tiny_dataset()


@pytest.fixture
def amazon_path() -> Path:
    path = SHARED_DATA / "amazon-food-kitchen"
    if not path.exists():
        pytest.skip(f"{path} not present")
    return path


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Tiny tensors: one torch thread avoids oversubscription on a shared 2-core machine
    (measured 10x faster there); the previous setting is restored afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
