"""load_canonical: every validation error, message content, ordering, duplicates, splits."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hgrec.data.load import load_canonical, random_split
from hgrec.data.schema import DataValidationError

FORMATS = ["csv", "tsv", "parquet", "frame"]


def _items() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": ["a", "b", "c", "d"],
            "item_type": ["kitchen", "kitchen", "food", "food"],
            "title": ["pan", "pot", "tea", "jam"],
            "genre": ["x", "y", "z", "w"],
        }
    )


def _interactions() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u2", "u2", "u3"],
            "item_id": ["a", "c", "b", "d", "a"],
            "position": [0, 1, 0, 1, 0],
        }
    )


def _users() -> pd.DataFrame:
    return pd.DataFrame(
        {"user_id": ["u1", "u2", "u3"], "split": ["train", "valid", "test"], "age": [30, 40, 50]}
    )


def _set(table: pd.DataFrame, column: str, row: int, value: object) -> pd.DataFrame:
    col = table[column].to_numpy(dtype=object, copy=True)
    col[row] = value
    table[column] = col
    return table


Tables = dict[str, pd.DataFrame]
# (id, mutation of the three tables, file role, column, message fragment, bad rows (1-based), values)
CASES: list[tuple[str, Callable[[Tables], object], str, str | None, str, list[int], list[str]]] = [
    ("item missing column", lambda t: t.update(items=t["items"].drop(columns="title")),
     "items", "title", "missing column", [], []),
    ("item null id", lambda t: _set(t["items"], "item_id", 2, None),
     "items", "item_id", "null or empty item id", [3], []),
    ("item blank id", lambda t: _set(t["items"], "item_id", 1, "  "),
     "items", "item_id", "null or empty item id", [2], []),
    ("item duplicate id", lambda t: _set(t["items"], "item_id", 3, "b"),
     "items", "item_id", "duplicate item id", [4], ["b"]),
    ("item empty type", lambda t: _set(t["items"], "item_type", 1, None),
     "items", "item_type", "null or empty item type", [2], []),
    ("unknown item", lambda t: _set(t["interactions"], "item_id", 3, "zz"),
     "interactions", "item_id", "reference items not in", [4], ["zz"]),
    ("unknown user", lambda t: _set(t["interactions"], "user_id", 4, "u9"),
     "interactions", "user_id", "reference users not in", [5], ["u9"]),
    ("null user id", lambda t: _set(t["interactions"], "user_id", 1, None),
     "interactions", "user_id", "null or empty user id", [2], []),
    ("interactions missing item_id", lambda t: t.update(interactions=t["interactions"].drop(columns="item_id")),
     "interactions", "item_id", "missing column", [], []),
    ("no order column", lambda t: t.update(interactions=t["interactions"].drop(columns="position")),
     "interactions", None, "no order column", [], []),
    ("non-integer position", lambda t: _set(t["interactions"], "position", 2, 1.5),
     "interactions", "position", "non-integer", [3], ["1.5"]),
    ("text position", lambda t: t["interactions"].__setitem__("position", ["0", "abc", "0", "1", "0"]),
     "interactions", "position", "non-integer", [2], ["abc"]),
    ("bad timestamp", lambda t: t["interactions"].__setitem__(
        "timestamp", ["2024-01-01T00:00:00Z", "1700000000", "yesterday", "2024-01-02", "5"]),
     "interactions", "timestamp", "unparseable", [3], ["yesterday"]),
    ("text weight", lambda t: t["interactions"].__setitem__("weight", ["1", "heavy", "2", "1", "1"]),
     "interactions", "weight", "non-numeric", [2], ["heavy"]),
    ("negative weight", lambda t: t["interactions"].__setitem__("weight", [1.0, 1.0, 1.0, -2.0, 0.0]),
     "interactions", "weight", "negative weights", [4], ["-2.0"]),
    ("infinite weight", lambda t: t["interactions"].__setitem__("weight", ["1", "1", "inf", "1", "1"]),
     "interactions", "weight", "non-finite weights", [3], ["inf"]),
    ("unknown split", lambda t: _set(t["users"], "split", 1, "training"),
     "users", "split", "unknown split", [2], ["training"]),
    ("duplicate user", lambda t: _set(t["users"], "user_id", 2, "u1"),
     "users", "user_id", "duplicate user id", [3], ["u1"]),
]  # fmt: skip


def _materialise(tables: Tables, fmt: str, tmp_path: Path) -> dict[str, object]:
    if fmt == "frame":
        return dict(tables)
    out: dict[str, object] = {}
    for role, df in tables.items():
        path = tmp_path / f"{role}.{fmt}"
        if fmt == "parquet":
            df.to_parquet(path, index=False)
        else:
            df.to_csv(path, sep="," if fmt == "csv" else "\t", index=False)
        out[role] = path
    return out


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    "mutate, role, column, fragment, rows, values",
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_validation_errors(
    tmp_path: Path,
    fmt: str,
    mutate: Callable[[Tables], object],
    role: str,
    column: str | None,
    fragment: str,
    rows: list[int],
    values: list[str],
) -> None:
    tables = {"items": _items(), "interactions": _interactions(), "users": _users()}
    mutate(tables)
    src = _materialise(tables, fmt, tmp_path)
    with pytest.raises(DataValidationError) as info:
        load_canonical(src["items"], src["interactions"], src["users"], target_type="food")
    err = info.value
    msg = str(err)
    file = role if fmt == "frame" else f"{role}.{fmt}"
    assert err.file == file and msg.startswith(file)
    assert err.column == column
    if column is not None:
        assert f"column '{column}'" in msg
    assert fragment in msg
    assert err.rows == rows
    assert err.n_rows == len(rows)
    for v in values:
        assert v in msg
    assert "expected" in msg


def test_message_lists_count_rows_values_and_expectation(tmp_path: Path) -> None:
    inter = _interactions()
    inter["item_id"] = ["a", "zz", "b", "yy", "zz"]
    path = tmp_path / "interactions.tsv"
    inter.to_csv(path, sep="\t", index=False)
    with pytest.raises(DataValidationError) as info:
        load_canonical(_items(), path, target_type="food")
    msg = str(info.value)
    assert msg.startswith("interactions.tsv, column 'item_id': rows reference items not in items")
    assert "(3 rows; first: row 2, 4, 5; values 'zz', 'yy', 'zz')" in msg
    assert msg.endswith("expected every item_id to be in items")


@pytest.mark.parametrize("target", [None, "books"])
def test_target_type_must_be_an_item_type(target: str | None) -> None:
    with pytest.raises(DataValidationError, match=r"\['food', 'kitchen'\]"):
        load_canonical(_items(), _interactions(), target_type=target)


def test_single_type_needs_no_target() -> None:
    items = _items().assign(item_type="food")
    ds = load_canonical(items, _interactions())
    assert ds.target_type == "food" and any("only item type" in n for n in ds.report.notes)


def test_output_contract_and_round_trip() -> None:
    inter = _interactions().assign(weight=[1.0, 2.5, 1.0, 0.0, 3.0], event="stream")
    ds = load_canonical(_items(), inter, _users(), target_type="food")
    df = ds.interactions
    assert df.dtypes.to_dict() == {
        "user": np.dtype("int64"),
        "item": np.dtype("int64"),
        "order": np.dtype("float64"),
        "event": pd.CategoricalDtype(["stream"]),
        "weight": np.dtype("float32"),
    }
    # Users row u = user u, items row i = item i: mapping back gives the input rows.
    back = pd.DataFrame(
        {
            "user_id": ds.user_ids[df["user"]],
            "item_id": ds.catalog.item_ids[df["item"]],
            "weight": df["weight"].astype(float),
        }
    )
    want = inter[["user_id", "item_id", "weight"]]
    pd.testing.assert_frame_equal(
        back.sort_values(["user_id", "item_id"]).reset_index(drop=True),
        want.sort_values(["user_id", "item_id"]).reset_index(drop=True),
        check_dtype=False,
    )
    assert ds.users.columns.tolist() == ["user_id", "split", "age"]
    assert ds.order_kind == "position"
    assert ds.catalog.items["genre"].tolist() == ["x", "y", "z", "w"]
    assert ds.report.counts["interactions_food"] == 2
    assert ds.report.counts["users_valid"] == 1


def test_sorted_by_user_then_order_ties_in_file_order() -> None:
    inter = pd.DataFrame(
        {
            "user_id": ["u2", "u1", "u1", "u1", "u2"],
            "item_id": ["d", "a", "b", "c", "a"],
            "position": [5, 1, 0, 1, 5],
        }
    )
    ds = load_canonical(_items(), inter, target_type="food")
    # Users in order of first appearance: u2 = 0, u1 = 1.
    assert ds.user_ids.tolist() == ["u2", "u1"]
    items = ds.catalog.item_ids[ds.interactions["item"]].tolist()
    assert items == ["d", "a", "b", "a", "c"]
    assert ds.interactions["user"].tolist() == [0, 0, 1, 1, 1]


def test_timestamp_ties_broken_by_position() -> None:
    inter = pd.DataFrame(
        {
            "user_id": ["u1"] * 3,
            "item_id": ["a", "b", "c"],
            "timestamp": [100, 100, 50],
            "position": [2, 1, 0],
        }
    )
    ds = load_canonical(_items(), inter, target_type="food")
    assert ds.catalog.item_ids[ds.interactions["item"]].tolist() == ["c", "b", "a"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_iso_and_epoch_timestamps_give_the_same_order(tmp_path: Path, fmt: str) -> None:
    epoch = [1_704_074_400, 1_704_067_200, 1_704_067_201, 1_700_000_000, 1_704_067_200]
    iso = [
        "2024-01-01T02:00:00Z",
        "2024-01-01T02:00:00+02:00",  # = 00:00Z
        "2024-01-01 00:00:01",  # no offset: read as UTC
        "2023-11-14T22:13:20Z",
        "1704067200",  # epoch seconds as text mixed with ISO
    ]
    base = _interactions().drop(columns="position").assign(user_id="u1")
    orders = []
    for k, ts in enumerate((epoch, iso)):
        sub = tmp_path / str(k)
        sub.mkdir()
        src = _materialise({"interactions": base.assign(timestamp=ts)}, fmt, sub)
        ds = load_canonical(_items(), src["interactions"], target_type="food")
        orders.append((ds.interactions["order"].to_numpy(), ds.interactions["item"].to_numpy()))
    assert ds.order_kind == "timestamp"
    np.testing.assert_array_equal(orders[0][0], orders[1][0])
    np.testing.assert_array_equal(orders[0][1], orders[1][1])
    assert np.all(np.diff(orders[0][0]) >= 0)


def test_datetime_column() -> None:
    ts = pd.to_datetime(
        ["2024-01-01T00:00:01Z", "2024-01-01T00:00:00Z"] * 2 + ["2024-01-02T00:00:00Z"]
    )
    inter = _interactions().assign(timestamp=ts).drop(columns="position")
    ds = load_canonical(_items(), inter, target_type="food")
    assert ds.interactions["order"].min() == 1_704_067_200.0


def test_exact_duplicates_are_collapsed_and_counted() -> None:
    inter = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u1", "u1", "u1", "u2"],
            "item_id": ["a", "a", "a", "a", "b", "a"],
            "position": [0, 0, 0, 1, 0, 0],
            "event": ["stream", "stream", "follow", "stream", "stream", "stream"],
        }
    )
    ds = load_canonical(_items(), inter, target_type="food")
    # Row 2 repeats row 1 exactly; the others differ in event, position, item or user.
    assert ds.report.counts["duplicate_interactions_collapsed"] == 1
    assert ds.report.counts["interaction_rows_read"] == 6
    assert len(ds.interactions) == 5
    assert sorted(ds.event_names) == ["follow", "stream"]


def test_missing_events_default_to_stream_and_are_counted() -> None:
    inter = _interactions().assign(event=["follow", None, "", "stream", "preview"])
    ds = load_canonical(_items(), inter, target_type="food")
    assert ds.report.counts["events_defaulted"] == 2
    assert (ds.interactions["event"] == "stream").sum() == 3


def test_unused_users_and_items_are_kept_and_counted() -> None:
    users = pd.concat([_users(), pd.DataFrame({"user_id": ["u4"], "split": ["train"], "age": [1]})])
    inter = _interactions().iloc[:4]  # u3 and item a's second use gone; d still used
    ds = load_canonical(_items(), inter, users, target_type="food")
    assert ds.n_users == 4 and ds.catalog.n_items == 4
    assert ds.report.counts["users_without_interactions"] == 2
    assert ds.report.counts["items_without_interactions"] == 0


@pytest.mark.parametrize("n, valid, test", [(1000, 0.1, 0.1), (997, 0.15, 0.05), (10, 0.0, 0.3)])
def test_random_split_is_seeded_and_exact(n: int, valid: float, test: float) -> None:
    a = random_split(n, valid, test, seed=7)
    assert (a == "valid").sum() == round(n * valid)
    assert (a == "test").sum() == round(n * test)
    assert (a == "train").sum() == n - round(n * valid) - round(n * test)
    np.testing.assert_array_equal(a, random_split(n, valid, test, seed=7))
    if n >= 100:
        assert not np.array_equal(a, random_split(n, valid, test, seed=8))


def test_users_without_split_are_split_at_random() -> None:
    n = 200
    inter = pd.DataFrame(
        {"user_id": [f"u{k}" for k in range(n)], "item_id": "a", "position": 0}
    )
    kw = {"target_type": "food", "valid_fraction": 0.2, "test_fraction": 0.1, "seed": 3}
    ds = load_canonical(_items(), inter, **kw)  # type: ignore[arg-type]
    assert ds.report.counts["users_valid"] == 40 and ds.report.counts["users_test"] == 20
    again = load_canonical(_items(), inter, **kw)  # type: ignore[arg-type]
    np.testing.assert_array_equal(ds.users["split"].to_numpy(), again.users["split"].to_numpy())
    assert any("split at random" in note for note in ds.report.notes)


@pytest.mark.parametrize("valid, test", [(0.5, 0.5), (-0.1, 0.1), (0.1, 1.0)])
def test_bad_fractions(valid: float, test: float) -> None:
    with pytest.raises(ValueError, match="fraction"):
        load_canonical(
            _items(), _interactions(), target_type="food", valid_fraction=valid, test_fraction=test
        )
