"""read_table / TableWriter: formats by extension, ids as strings, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hgrec.data.io import TableWriter, read_table, table_format, write_table
from hgrec.data.schema import DataValidationError

FORMATS = ["parquet", "csv", "tsv", "csv.gz", "tsv.gz"]


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": ["007", "42", "x"],
            "item_id": ["1", "2", "NA"],
            "position": [0, 1, 2],
            "title": ["a, \"quoted\" title", "tab-free", "NA"],
        }
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_keeps_ids_and_text(tmp_path: Path, fmt: str) -> None:
    path = write_table(_frame(), tmp_path / f"t.{fmt}")
    got = read_table(path)
    assert got["user_id"].tolist() == ["007", "42", "x"]
    # "NA" is text, not a null: only empty fields are null.
    assert got["item_id"].tolist() == ["1", "2", "NA"]
    assert got["title"].tolist() == _frame()["title"].tolist()
    assert got["position"].tolist() == [0, 1, 2]


@pytest.mark.parametrize("fmt", ["parquet", "csv", "tsv"])
def test_integer_ids_are_read_as_strings(tmp_path: Path, fmt: str) -> None:
    df = pd.DataFrame({"user_id": [1, 20, 300], "item_id": [5, 6, 7], "other": [1, 2, 3]})
    path = tmp_path / f"t.{fmt}"
    if fmt == "parquet":
        df.to_parquet(path)
    else:
        df.to_csv(path, sep="," if fmt == "csv" else "\t", index=False)
    got = read_table(path)
    assert got["user_id"].tolist() == ["1", "20", "300"]
    assert got["item_id"].tolist() == ["5", "6", "7"]
    assert pd.api.types.is_integer_dtype(got["other"].dtype)


def test_empty_field_is_null(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("user_id,item_id\nu1,\n,i2\n")
    got = read_table(path)
    assert got["item_id"].isna().tolist() == [True, False]
    assert got["user_id"].isna().tolist() == [False, True]


def test_late_odd_value_falls_back_to_text(tmp_path: Path) -> None:
    # Arrow infers int64 from the first block; the odd value lies far beyond it.
    n = 200_000
    pos = np.arange(n).astype(str).astype(object)
    pos[-1] = "abc"
    path = tmp_path / "t.csv"
    pd.DataFrame({"user_id": "u", "item_id": "i", "position": pos}).to_csv(path, index=False)
    got = read_table(path)
    assert len(got) == n and got["position"].iloc[-1] == "abc"


@pytest.mark.parametrize(
    "name, expected",
    [("a.parquet", "parquet"), ("a.CSV", "csv"), ("a.tsv.gz", "tsv"), ("a.csv.gz", "csv")],
)
def test_table_format(name: str, expected: str) -> None:
    assert table_format(name) == expected


@pytest.mark.parametrize("name", ["a.json", "a.gz", "a.xlsx", "a"])
def test_unknown_extension(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_text("x")
    with pytest.raises(DataValidationError, match="unknown file extension.*\\.parquet"):
        read_table(tmp_path / name)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.tsv: file not found"):
        read_table(tmp_path / "nope.tsv")


@pytest.mark.parametrize("fmt", FORMATS)
def test_writer_appends_blocks_and_flattens_categoricals(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"t.{fmt}"
    blocks = [
        pd.DataFrame({"user_id": ["a", "b"], "event": pd.Categorical(["stream", "follow"])}),
        pd.DataFrame({"user_id": ["c"], "event": pd.Categorical(["preview"])}),
    ]
    with TableWriter(path) as w:
        for b in blocks:
            w.write(b)
    assert w.rows == 3
    got = read_table(path)
    assert got["user_id"].tolist() == ["a", "b", "c"]
    assert got["event"].astype(str).tolist() == ["stream", "follow", "preview"]
