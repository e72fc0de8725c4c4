"""Small hand-built datasets with known co-counts, a brute-force reference and edge helpers."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from hgrec.data.dataset import Catalog, Dataset
from hgrec.graph.types import CoGraph

DAY = 86_400.0


def make_dataset(
    items: list[tuple[str, str]],
    histories: list[tuple[str, list[tuple[str, str]] | list[tuple[str, str, float]]]],
    order_kind: str = "position",
) -> Dataset:
    """items: (item_id, item_type); histories: (split, [(item_id, event[, order])]) per user,
    in chronological order (order defaults to the position)."""
    catalog = Catalog.from_items(
        pd.DataFrame(items, columns=["item_id", "item_type"]).assign(title="t")
    )
    index = {s: i for i, s in enumerate(catalog.item_ids)}
    rows = []
    for u, (_, hist) in enumerate(histories):
        for pos, entry in enumerate(hist):
            order = float(entry[2]) if len(entry) == 3 else float(pos)
            rows.append((u, index[entry[0]], order, entry[1]))
    inter = pd.DataFrame(rows, columns=["user", "item", "order", "event"])
    events = sorted(inter["event"].unique())
    inter["event"] = pd.Categorical(inter["event"], categories=events)
    inter["weight"] = np.float32(1.0)
    users = pd.DataFrame(
        {"user_id": [f"u{u}" for u in range(len(histories))], "split": [h[0] for h in histories]}
    )
    return Dataset(
        name="hand",
        catalog=catalog,
        users=users,
        interactions=inter,
        target_type=catalog.type_names[-1],
        order_kind=order_kind,  # type: ignore[arg-type]
    )


def hand_dataset() -> Dataset:
    """Items a0, a1, a2 (type a) = 0, 1, 2 and b0, b1 (type b) = 3, 4.

    u0 train: a0, a1, b0 (follow)       u3 valid: a0, a2, b0, b1 (must not count)
    u1 train: a0, a1, a1, b1            u4 train: a2 (alone: no pair)
    u2 train: a1, b0 (follow), b1       u5 train: a0, b1, a0, b1 (repeats)
    """
    items = [("a0", "a"), ("a1", "a"), ("a2", "a"), ("b0", "b"), ("b1", "b")]
    s, f = "stream", "follow"
    histories = [
        ("train", [("a0", s), ("a1", s), ("b0", f)]),
        ("train", [("a0", s), ("a1", s), ("a1", s), ("b1", s)]),
        ("train", [("a1", s), ("b0", f), ("b1", s)]),
        ("valid", [("a0", s), ("a2", s), ("b0", s), ("b1", s)]),
        ("train", [("a2", s)]),
        ("train", [("a0", s), ("b1", s), ("a0", s), ("b1", s)]),
    ]
    return make_dataset(items, histories)


def random_dataset(seed: int, n_users: int = 80, n_items: int = 40, n_types: int = 3) -> Dataset:
    """Random histories with repeats, two events and a heavy user; splits at random."""
    rng = np.random.default_rng(seed)
    types = [f"t{k}" for k in range(n_types)]
    items = [(f"i{j}", types[int(rng.integers(n_types))]) for j in range(n_items)]
    histories = []
    for u in range(n_users):
        n = 30 if u == 0 else int(rng.integers(0, 9))
        picks = rng.integers(0, n_items, size=n)
        ev = rng.choice(["stream", "follow"], size=n, p=[0.8, 0.2])
        split = str(rng.choice(["train", "train", "train", "valid"]))
        histories.append((split, [(f"i{j}", str(e)) for j, e in zip(picks, ev)]))
    return make_dataset(items, histories)


def edges_of(graph: CoGraph) -> dict[tuple[int, int], int]:
    """All edges as {(min, max): count} over every relation."""
    out: dict[tuple[int, int], int] = {}
    for r in graph.relations.values():
        for s, d, c in zip(r.src.tolist(), r.dst.tolist(), r.count.tolist()):
            out[(min(s, d), max(s, d))] = c
    return out


def brute_force(
    dataset: Dataset, events: list[str] | None = None, window: int | None = None
) -> dict[tuple[int, int], int]:
    """Co-counts by plain Python over the train users (window in positions after the filter)."""
    inter = dataset.interactions
    train = set(dataset.users_in("train").tolist())
    counts: dict[tuple[int, int], int] = {}
    for u, grp in inter.groupby("user", sort=True):
        if u not in train:
            continue
        hist = [int(i) for i, e in zip(grp["item"], grp["event"]) if events is None or e in events]
        pairs = set()
        for (p, a), (q, b) in combinations(enumerate(hist), 2):
            if a != b and (window is None or q - p <= window):
                pairs.add((min(a, b), max(a, b)))
        for pair in pairs:
            counts[pair] = counts.get(pair, 0) + 1
    return counts
