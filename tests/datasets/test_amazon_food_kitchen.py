"""The Amazon Food / Kitchen adapter: real files against SOURCE.md, and its own checks."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hgrec.data.dataset import Dataset
from hgrec.data.schema import DataValidationError
from hgrec.datasets.amazon_food_kitchen import load_amazon_food_kitchen

# The table in SOURCE.md: user_group -> (users, food rows, kitchen rows).
SOURCE_GROUPS = {
    "food_only": (5_472, 37_281, 0),
    "kitchen_only": (38_191, 0, 265_817),
    "overlap_train": (7_501, 45_849, 53_321),
    "overlap_valid": (960, 8_739, 9_394),
    "overlap_test": (937, 6_447, 9_279),
}


@functools.cache
def _load(path: str) -> Dataset:
    return load_amazon_food_kitchen(path)  # ~2 s: load once for all tests of this module


@pytest.fixture
def amazon(amazon_path: Path) -> Dataset:
    return _load(str(amazon_path))


def test_counts_match_source(amazon: Dataset) -> None:
    c = amazon.report.counts
    assert c["items_food"] == 8_661 and c["items_kitchen"] == 27_637
    assert c["interactions"] == 436_127 == sum(f + k for _, f, k in SOURCE_GROUPS.values())
    assert c["interactions_food"] == sum(f for _, f, _ in SOURCE_GROUPS.values())
    assert c["users_valid"] == 960 and c["users_test"] == 937
    assert c["users"] == sum(u for u, _, _ in SOURCE_GROUPS.values())
    assert c["duplicate_interactions_collapsed"] == 0 and c["items_empty_title"] == 0
    assert amazon.target_type == "food" and amazon.catalog.type_names == ("food", "kitchen")


def test_split_and_no_group_leak(amazon: Dataset) -> None:
    assert amazon.users.columns.tolist() == ["user_id", "split"]
    # Test users are the overlap_test group: they hold exactly its food/kitchen rows.
    test = amazon.users_in("test")
    h = amazon.histories(test)
    types = amazon.catalog.item_type[h.items]
    food = amazon.catalog.type_code("food")
    assert (types == food).sum() == SOURCE_GROUPS["overlap_test"][1]
    assert (types != food).sum() == SOURCE_GROUPS["overlap_test"][2]
    assert all(u.startswith("overlap_test") for u in amazon.user_ids[test])
    assert any("user_group" in n for n in amazon.report.notes)
    assert sum("sha256" in n and "matches" in n for n in amazon.report.notes) == 2


def test_histories_follow_positions(amazon: Dataset) -> None:
    inter = amazon.interactions
    same_user = np.diff(inter["user"].to_numpy()) == 0
    assert np.all(np.diff(inter["order"].to_numpy())[same_user] >= 0)
    assert {"asin", "title_raw"} <= set(amazon.catalog.items.columns)


def _write_small(folder: Path, groups: list[str], domains: list[str]) -> None:
    folder.mkdir()
    pd.DataFrame(
        {"item_id": [0, 1], "domain": ["food", "kitchen"], "asin": ["A", "B"],
         "title_raw": ["t0", "t1"], "title": ["t0", "t1"]}
    ).to_csv(folder / "items.tsv", sep="\t", index=False)  # fmt: skip
    pd.DataFrame(
        {"user_key": ["x:1", "x:1", "y:1"], "user_group": groups, "position": [0, 1, 0],
         "item_id": [0, 1, 1], "domain": domains}
    ).to_csv(folder / "interactions.tsv", sep="\t", index=False)  # fmt: skip


def test_small_copy_without_source_md(tmp_path: Path) -> None:
    groups = ["overlap_valid"] * 2 + ["kitchen_only"]
    _write_small(tmp_path / "d", groups, ["food", "kitchen", "kitchen"])
    ds = load_amazon_food_kitchen(tmp_path / "d")
    assert ds.users["split"].tolist() == ["valid", "train"]
    assert any("no SOURCE.md" in n for n in ds.report.notes)


def test_checksum_difference_is_a_note(tmp_path: Path) -> None:
    _write_small(tmp_path / "d", ["food_only"] * 3, ["food", "kitchen", "kitchen"])
    (tmp_path / "d" / "SOURCE.md").write_text("sha256: items.tsv " + "0" * 64 + "\n")
    ds = load_amazon_food_kitchen(tmp_path / "d")
    assert any("items.tsv" in n and "differ" in n for n in ds.report.notes)
    assert any("no sha256 for interactions.tsv" in n for n in ds.report.notes)


@pytest.mark.parametrize(
    "groups, domains, column, row",
    [
        (
            ["overlap_valid", "overlap_test", "food_only"],
            ["food", "kitchen", "kitchen"],
            "user_group",
            2,
        ),
        (["food_only"] * 3, ["food", "food", "kitchen"], "domain", 2),
    ],
)
def test_inconsistent_files(
    tmp_path: Path, groups: list[str], domains: list[str], column: str, row: int
) -> None:
    _write_small(tmp_path / "d", groups, domains)
    with pytest.raises(DataValidationError) as info:
        load_amazon_food_kitchen(tmp_path / "d")
    assert info.value.file == "interactions.tsv" and info.value.column == column
    assert info.value.rows == [row]
