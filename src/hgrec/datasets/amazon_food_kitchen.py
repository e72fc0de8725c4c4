"""Adapter for the Amazon Food / Kitchen cross-domain data (see its SOURCE.md).

Mapping to the canonical model:

* ``items.tsv``: item_id -> item_id (str), domain -> item_type (food | kitchen),
  title -> title; asin and title_raw are kept as item metadata.
* ``interactions.tsv``: user_key -> user_id, position -> position, item_id -> item_id;
  no timestamps, no ratings (implicit feedback, event "stream", weight 1).
* users: one per user_key; user_group overlap_valid -> valid, overlap_test -> test, any
  other group -> train. user_group itself is NOT kept as a users column: it is the split in
  disguise and would leak into the user tower as a demographic.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd

from hgrec.data import validate as check
from hgrec.data.dataset import Dataset, LoadReport
from hgrec.data.io import read_table
from hgrec.data.load import load_canonical
from hgrec.data.schema import ITEM_ID, ITEM_TYPE, POSITION, SPLIT, USER_ID

ITEMS_FILE = "items.tsv"
INTERACTIONS_FILE = "interactions.tsv"
GROUP_SPLIT = {"overlap_valid": "valid", "overlap_test": "test"}
_CHUNK = 1 << 20


def load_amazon_food_kitchen(
    path: str | Path, target_type: str = "food", *, name: str = "amazon-food-kitchen"
) -> Dataset:
    """Load ``path/{items,interactions}.tsv`` as a Dataset (kitchen established, food target).

    Args:
        path: the folder holding items.tsv, interactions.tsv and SOURCE.md.
        target_type: the item type to evaluate ("food" or "kitchen").
        name: dataset name for reports.

    Returns:
        The validated Dataset; ``report.notes`` records the sha256 check and the user_group
        mapping.
    """
    path = Path(path)
    notes = verify_checksums(path, (ITEMS_FILE, INTERACTIONS_FILE))
    items = read_table(path / ITEMS_FILE)
    check.require_columns(items, ITEMS_FILE, (ITEM_ID, "domain", "title"))
    items = items.rename(columns={"domain": ITEM_TYPE})
    front = [ITEM_ID, ITEM_TYPE, "title"]
    items = items[front + [c for c in items.columns if c not in front]]

    raw = read_table(path / INTERACTIONS_FILE, str_columns=("user_key",))
    check.require_columns(raw, INTERACTIONS_FILE, ("user_key", "user_group", POSITION, ITEM_ID))
    if "domain" in raw.columns:
        _check_domains(raw, items)
    users = _users(raw)
    interactions = pd.DataFrame(
        {USER_ID: raw["user_key"], ITEM_ID: raw[ITEM_ID], POSITION: raw[POSITION]}
    )
    ds = load_canonical(
        items,
        interactions,
        users,
        target_type=target_type,
        name=name,
        display_names={
            "items": ITEMS_FILE,
            "interactions": INTERACTIONS_FILE,
            "users": f"{INTERACTIONS_FILE} (users from user_key/user_group)",
        },
    )
    notes.append(
        "user_group mapped to split (overlap_valid -> valid, overlap_test -> test, others -> "
        "train) and not kept as a users column, since it would leak the split as a demographic"
    )
    files = {"items": str(path / ITEMS_FILE), "interactions": str(path / INTERACTIONS_FILE)}
    report = LoadReport(files=files, counts=ds.report.counts, notes=ds.report.notes + notes)
    return Dataset(
        name=ds.name,
        catalog=ds.catalog,
        users=ds.users,
        interactions=ds.interactions,
        target_type=ds.target_type,
        report=report,
        order_kind=ds.order_kind,
    )


def _users(raw: pd.DataFrame) -> pd.DataFrame:
    """One row per user_key (order of first appearance) with its split; one group per user."""
    pairs = raw[["user_key", "user_group"]].drop_duplicates()
    clash = pairs["user_key"].duplicated(keep="first").to_numpy()
    if clash.any():
        rows = pairs.index.to_numpy()
        bad = np.zeros(len(raw), dtype=bool)
        bad[rows[clash]] = True
        check.fail(
            INTERACTIONS_FILE,
            "user_group",
            "users with more than one user_group",
            bad,
            raw["user_group"],
            "one user_group per user_key",
        )
    pairs = pairs.reset_index(drop=True)
    group = pairs["user_group"].astype("str")
    split = group.map(GROUP_SPLIT).fillna("train").astype("str")
    return pd.DataFrame({USER_ID: pairs["user_key"], SPLIT: split})


def _check_domains(raw: pd.DataFrame, items: pd.DataFrame) -> None:
    """The domain repeated in interactions.tsv must be the item's domain in items.tsv."""
    idx = pd.Index(items[ITEM_ID]).get_indexer(raw[ITEM_ID].astype("str"))
    known = idx >= 0
    item_domain = items[ITEM_TYPE].to_numpy(dtype=object)[np.where(known, idx, 0)]
    bad = known & (item_domain != raw["domain"].to_numpy(dtype=object))
    if bad.any():
        check.fail(
            INTERACTIONS_FILE,
            "domain",
            "interaction domain differs from the item's domain in items.tsv",
            bad,
            raw["domain"],
            "the same domain as the item",
        )


def verify_checksums(folder: Path, names: tuple[str, ...]) -> list[str]:
    """Notes comparing each file's sha256 with the one written in ``folder/SOURCE.md``.

    A difference is a note, not an error: the data may have been re-exported on purpose.
    """
    source = folder / "SOURCE.md"
    if not source.is_file():
        return [f"no SOURCE.md in {folder}; sha256 not checked"]
    text = source.read_text()
    notes = []
    for fname in names:
        m = re.search(re.escape(fname) + r"\s+([0-9a-f]{64})", text)
        if m is None:
            notes.append(f"SOURCE.md gives no sha256 for {fname}; not checked")
            continue
        got = sha256(folder / fname)
        if got == m.group(1):
            notes.append(f"sha256 of {fname} matches SOURCE.md")
        else:
            notes.append(f"sha256 of {fname} is {got}, SOURCE.md says {m.group(1)}: data differ")
    return notes


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()
