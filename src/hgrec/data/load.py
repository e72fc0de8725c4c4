"""Load canonical items / interactions / users tables into a validated :class:`Dataset`.

The canonical format is described in :mod:`hgrec.data.schema` and ``docs/data-model.md``.
Every problem raises a :class:`DataValidationError` naming the file, the column, how many
rows, the first rows (1 = first data row after the header) and values, and what was
expected. Nothing is dropped silently: what loading changes is counted in ``LoadReport``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from hgrec.data import validate as check
from hgrec.data.dataset import Catalog, Dataset, LoadReport
from hgrec.data.io import read_table
from hgrec.data.schema import (
    DEFAULT_EVENT,
    EVENT,
    INTERACTION_REQUIRED,
    ITEM_ID,
    ITEM_REQUIRED,
    ITEM_TYPE,
    POSITION,
    SPLIT,
    SPLITS,
    TIMESTAMP,
    TITLE,
    USER_ID,
    WEIGHT,
    DataValidationError,
)

log = logging.getLogger(__name__)

TableSource = str | Path | pd.DataFrame


def load_canonical(
    items: TableSource,
    interactions: TableSource,
    users: TableSource | None = None,
    *,
    target_type: str | None = None,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    name: str = "dataset",
    display_names: Mapping[str, str] | None = None,
) -> Dataset:
    """Validate canonical tables and build a :class:`Dataset`.

    Args:
        items: path or DataFrame with item_id, item_type, title (+ optional columns, kept).
        interactions: path or DataFrame with user_id, item_id, timestamp or position,
            optional event (default "stream") and weight (default 1.0).
        users: optional path or DataFrame with user_id, optional split, demographics.
        target_type: the sparse item type to evaluate; required when there are several types.
        valid_fraction, test_fraction: fractions of users put in valid / test by a seeded
            random split when no users file or no split column is given.
        seed: seed of the random split.
        name: dataset name for reports.
        display_names: names used in error messages instead of the file name (or of "items",
            "interactions", "users" for a DataFrame), keyed by those three words.

    Returns:
        A Dataset: users row u = user u (users file order, else order of first appearance in
        the interactions); items row i = item i (items file order); interactions with user
        (int64), item (int64), order (float64), event (category), weight (float32), sorted by
        (user, order), ties broken by position when both timestamp and position are given,
        then by file order; ``order_kind`` says whether order is a timestamp or a position. Exact duplicates (same user, item, order, event) are collapsed.
    """
    if not (0.0 <= valid_fraction < 1 and 0.0 <= test_fraction < 1):
        raise ValueError(f"fractions must be in [0, 1), got {valid_fraction=}, {test_fraction=}")
    if valid_fraction + test_fraction >= 1.0:
        total = valid_fraction + test_fraction
        raise ValueError(f"valid_fraction + test_fraction must be below 1, got {total}")
    names = dict(display_names or {})
    counts: dict[str, int] = {}
    notes: list[str] = []
    files: dict[str, str] = {}

    items_df, items_name = _resolve(items, "items", names, files)
    item_table = _items(items_df, items_name, counts)
    type_names = sorted(item_table[ITEM_TYPE].unique().tolist())
    target_type = _target(target_type, type_names, items_name, notes)

    user_table, users_name = None, ""
    if users is not None:
        users_df, users_name = _resolve(users, "users", names, files)
        user_table = _users(users_df, users_name)

    inter_df, inter_name = _resolve(interactions, "interactions", names, files)
    inter = _interactions(
        inter_df, inter_name, item_table, items_name, user_table, users_name, counts
    )
    if user_table is None:
        user_table = pd.DataFrame({USER_ID: inter.pop("_user_ids")})
    else:
        inter.pop("_user_ids")

    if SPLIT not in user_table.columns:
        split = random_split(len(user_table), valid_fraction, test_fraction, seed)
        user_table.insert(1, SPLIT, split)
        notes.append(
            f"users split at random (seed {seed}): valid {valid_fraction:g}, test {test_fraction:g}"
        )
    frame = pd.DataFrame(
        {
            "user": inter["user"],
            "item": inter["item"],
            "order": inter["order"],
            "event": inter["event"],
            "weight": inter["weight"],
        }
    )
    catalog = Catalog.from_items(item_table)
    _summarise(frame, catalog, user_table, counts)
    report = LoadReport(files=files, counts=counts, notes=notes)
    log.info("loaded %s: %s", name, counts)
    return Dataset(
        name=name,
        catalog=catalog,
        users=user_table.reset_index(drop=True),
        interactions=frame,
        target_type=target_type,
        report=report,
        order_kind="timestamp" if TIMESTAMP in inter_df.columns else "position",
    )


def read_items(source: TableSource, display_name: str | None = None) -> tuple[pd.DataFrame, str]:
    """One items table checked as :func:`load_canonical` checks it (``hgrec add-items``).

    Returns:
        the validated table (item_id, item_type, title as strings, other columns kept) and
        the file name errors use.
    """
    names = {} if display_name is None else {"items": display_name}
    df, name = _resolve(source, "items", names, {})
    return _items(df, name, {}), name


def read_interactions(
    source: TableSource,
    items: pd.DataFrame,
    items_name: str,
    display_name: str | None = None,
) -> tuple[dict[str, np.ndarray | pd.Categorical | pd.Series], str]:
    """One interactions table checked as :func:`load_canonical` checks it, against ``items``.

    Users need not be known: they are numbered by first appearance and ``"_user_ids"`` holds
    their ids. Returns the columns (user, item, order, event, weight, sorted by (user,
    order), exact duplicates collapsed) and the file name errors use.
    """
    names = {} if display_name is None else {"interactions": display_name}
    df, name = _resolve(source, "interactions", names, {})
    return _interactions(df, name, items, items_name, None, "", {}), name


def random_split(
    n_users: int, valid_fraction: float, test_fraction: float, seed: int
) -> np.ndarray:
    """(n_users,) str array of 'train' | 'valid' | 'test', seeded.

    Exactly ``round(n * test_fraction)`` test users and ``round(n * valid_fraction)`` valid
    users, chosen by one random permutation; the rest are train.
    """
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n_users)
    n_test = int(round(n_users * test_fraction))
    n_valid = int(round(n_users * valid_fraction))
    split = np.full(n_users, "train", dtype=object)
    split[perm[:n_test]] = "test"
    split[perm[n_test : n_test + n_valid]] = "valid"
    return split


def _resolve(
    src: TableSource, role: str, names: dict[str, str], files: dict[str, str]
) -> tuple[pd.DataFrame, str]:
    """(table, name used in messages); records where it came from in ``files``."""
    if isinstance(src, pd.DataFrame):
        files[role] = names.get(role, f"<DataFrame {role}>")
        return src.reset_index(drop=True), names.get(role, role)
    path = Path(src)
    files[role] = str(path)
    return read_table(path), names.get(role, path.name)


def _items(df: pd.DataFrame, file: str, counts: dict[str, int]) -> pd.DataFrame:
    check.require_columns(df, file, ITEM_REQUIRED)
    check.has_rows(df, file, "item")
    ids = check.nonempty_strings(df, file, ITEM_ID, "item id")
    check.unique(ids, file, ITEM_ID, "item id")
    types = check.nonempty_strings(df, file, ITEM_TYPE, "item type")
    title = df[TITLE]
    empty_title = title.isna() | (title.astype("str").str.strip().str.len() == 0)
    counts["items_empty_title"] = int(empty_title.sum())
    out = df.copy()
    out[ITEM_ID] = ids
    out[ITEM_TYPE] = types
    out[TITLE] = title.astype("str").where(~empty_title, "")
    return out


def _target(target: str | None, type_names: list[str], file: str, notes: list[str]) -> str:
    if target is None:
        if len(type_names) == 1:
            notes.append(f"target_type not given; using the only item type {type_names[0]!r}")
            return type_names[0]
        raise DataValidationError(
            file,
            ITEM_TYPE,
            "target_type not given and the items have several types",
            expected=f"target_type set to one of {type_names}",
        )
    if target not in type_names:
        raise DataValidationError(
            file,
            ITEM_TYPE,
            f"target_type {target!r} is not an item type",
            expected=f"one of {type_names}",
        )
    return target


def _users(df: pd.DataFrame, file: str) -> pd.DataFrame:
    check.require_columns(df, file, (USER_ID,))
    check.has_rows(df, file, "user")
    ids = check.nonempty_strings(df, file, USER_ID, "user id")
    check.unique(ids, file, USER_ID, "user id")
    out = df.copy()
    out[USER_ID] = ids
    if SPLIT in out.columns:
        out[SPLIT] = check.allowed_values(out[SPLIT], file, SPLIT, SPLITS, "split")
    # user_id first, split second, then the demographics in file order.
    front = [c for c in (USER_ID, SPLIT) if c in out.columns]
    return out[front + [c for c in out.columns if c not in front]]


def _interactions(
    df: pd.DataFrame,
    file: str,
    items: pd.DataFrame,
    items_name: str,
    users: pd.DataFrame | None,
    users_name: str,
    counts: dict[str, int],
) -> dict[str, np.ndarray | pd.Categorical | pd.Series]:
    """Validated, mapped, sorted and de-duplicated interaction columns."""
    check.require_columns(df, file, INTERACTION_REQUIRED)
    check.has_rows(df, file, "interaction")
    counts["interaction_rows_read"] = len(df)
    user_codes, user_words, _ = check.encode_strings(df, file, USER_ID, "user id")
    item_codes, item_words, _ = check.encode_strings(df, file, ITEM_ID, "item id")
    order, tie = _order(df, file)
    weight = (
        check.weights(df[WEIGHT], file, WEIGHT)
        if WEIGHT in df.columns
        else np.ones(len(df), dtype=np.float32)
    )
    event_codes, event_names = _events(df, file, counts)

    # Look up the distinct ids only, then spread to rows: cheap with many rows per id.
    item = pd.Index(items[ITEM_ID]).get_indexer(item_words).astype(np.int64)[item_codes]
    check.known(item, df[ITEM_ID], file, ITEM_ID, items_name, "items")
    if users is None:
        user = user_codes  # users numbered by first appearance
        table_ids = pd.Series(user_words, dtype="str")
    else:
        user = pd.Index(users[USER_ID]).get_indexer(user_words).astype(np.int64)[user_codes]
        check.known(user, df[USER_ID], file, USER_ID, users_name, "users")
        table_ids = users[USER_ID]

    perm = _sort_by_user_order(user, order, tie)
    user, item, order, weight = user[perm], item[perm], order[perm], weight[perm]
    event_codes = event_codes[perm]
    dup = _exact_duplicates(user, order, item, event_codes)
    counts["duplicate_interactions_collapsed"] = int(dup.sum())
    keep = ~dup
    return {
        "user": user[keep],
        "item": item[keep],
        "order": order[keep],
        "event": pd.Categorical.from_codes(event_codes[keep], categories=event_names),
        "weight": weight[keep],
        "_user_ids": table_ids,
    }


def _sort_by_user_order(
    user: np.ndarray, order: np.ndarray, tie: np.ndarray | None
) -> np.ndarray:
    """(n,) permutation sorting rows by (user, order[, tie]); rows tying on all keep file order.

    One stable argsort of a combined int64 key (user, rank of order) is several times faster
    than ``np.lexsort`` and near-linear when the file is already grouped by user.
    """
    if tie is not None:
        return np.lexsort((tie, order, user))  # stable: full ties keep file order
    if len(order) == 0:
        return np.zeros(0, dtype=np.int64)
    lo, hi = float(order.min()), float(order.max())
    integral = hi - lo < 2.0**31 and bool(np.all(order == np.floor(order)))
    if integral:
        rank, span = (order - lo).astype(np.int64), int(hi - lo) + 1
    else:
        values, inverse = np.unique(order, return_inverse=True)
        rank, span = inverse.astype(np.int64), len(values)
    if (int(user.max()) + 1) * span >= 2**62:
        return np.lexsort((order, user))
    return np.argsort(user * span + rank, kind="stable")


def _exact_duplicates(
    user: np.ndarray, order: np.ndarray, item: np.ndarray, event: np.ndarray
) -> np.ndarray:
    """(n,) bool: rows repeating an earlier row's (user, order, item, event); input sorted by
    (user, order). Only runs of equal (user, order) can hold duplicates, so only they are hashed.
    """
    n = len(user)
    dup = np.zeros(n, dtype=bool)
    if n < 2:
        return dup
    same = (user[1:] == user[:-1]) & (order[1:] == order[:-1])
    if not same.any():
        return dup
    run = np.concatenate([[0], np.cumsum(~same)])  # (n,) id of the (user, order) run
    in_run = np.concatenate([same, [False]]) | np.concatenate([[False], same])
    rows = np.flatnonzero(in_run)
    sub = pd.DataFrame({"r": run[rows], "i": item[rows], "e": event[rows]})
    dup[rows] = sub.duplicated().to_numpy()
    return dup


def _order(df: pd.DataFrame, file: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(order (n,) float64, tie-breaker (n,) float64 or None) from timestamp and/or position."""
    has_ts, has_pos = TIMESTAMP in df.columns, POSITION in df.columns
    if not (has_ts or has_pos):
        raise DataValidationError(
            file,
            None,
            "no order column",
            expected=f"a '{TIMESTAMP}' column (epoch seconds or ISO 8601) or a '{POSITION}' "
            f"column (integer); the file has {list(map(str, df.columns))}",
        )
    pos = check.positions(df[POSITION], file, POSITION) if has_pos else None
    if not has_ts:
        return pos, None  # type: ignore[return-value]
    return check.timestamps(df[TIMESTAMP], file, TIMESTAMP), pos


def _events(df: pd.DataFrame, file: str, counts: dict[str, int]) -> tuple[np.ndarray, list[str]]:
    """((n,) int16 codes, sorted event names); null or empty events become the default
    event and are counted in ``events_defaulted``."""
    if EVENT not in df.columns:
        counts["events_defaulted"] = len(df)
        return np.zeros(len(df), dtype=np.int16), [DEFAULT_EVENT]
    codes, words, empty = check.encode_strings(df, file, EVENT, "event", allow_empty=True)
    counts["events_defaulted"] = int(empty.sum())
    names = sorted(set(words.tolist()) | ({DEFAULT_EVENT} if empty.any() else set()))
    # One entry per distinct event name (a handful), plus the default for code -1.
    default = names.index(DEFAULT_EVENT) if empty.any() else 0
    remap = np.array([names.index(w) for w in words] + [default], dtype=np.int16)
    return remap[codes].astype(np.int16), names


def _summarise(
    inter: pd.DataFrame, catalog: Catalog, users: pd.DataFrame, counts: dict[str, int]
) -> None:
    item = inter["item"].to_numpy()
    per_type = np.bincount(catalog.item_type[item], minlength=len(catalog.type_names))
    items_per_type = np.bincount(catalog.item_type, minlength=len(catalog.type_names))
    counts["items"] = catalog.n_items
    counts["users"] = len(users)
    counts["interactions"] = len(inter)
    for t, name in enumerate(catalog.type_names):
        counts[f"items_{name}"] = int(items_per_type[t])
        counts[f"interactions_{name}"] = int(per_type[t])
    for split in SPLITS:
        counts[f"users_{split}"] = int((users[SPLIT].to_numpy() == split).sum())
    counts["items_without_interactions"] = int(
        (np.bincount(item, minlength=catalog.n_items) == 0).sum()
    )
    counts["users_without_interactions"] = int(
        (np.bincount(inter["user"].to_numpy(), minlength=len(users)) == 0).sum()
    )
