"""The run directory as the pipeline reads and writes it: the output folder checked before
anything is written, the inputs hashed into the manifest, the dataset tables a served run
needs, the HGNN stage's training log and the settings of a run whose weights are reused.

Paths come from :mod:`hgrec.utils.layout`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from hgrec.config import Config, HGNNConfig
from hgrec.data.dataset import Dataset
from hgrec.errors import UserError
from hgrec.utils import layout
from hgrec.utils.artifacts import MANIFEST, RunDir, atomic_write_parquet
from hgrec.utils.layout import RunLayout


def check_out(out: Path, fresh: bool) -> None:
    """Refuse a run folder that cannot be one, before anything is written or deleted.

    Raises:
        UserError: ``out`` (or a parent) is a file; ``out`` has an unreadable manifest; or
            ``fresh`` would delete a non-empty folder that is not a run.
    """
    expected = "expected a new folder or a run folder written by hgrec run"
    for parent in (out, *out.parents):
        if parent.exists():
            if not parent.is_dir():
                what = "names an existing file" if parent == out else f"is inside the file {parent}"
                raise UserError(f"--out {out}: {what}; {expected}")
            break
    if not out.is_dir():
        return
    manifest = out / MANIFEST
    if manifest.exists():
        try:
            RunDir(out).read_manifest()
        except (ValueError, OSError) as e:
            raise UserError(f"--out {out}: {e}") from None
    elif fresh and any(out.iterdir()):
        raise UserError(
            f"--out {out}: --fresh would delete a non-empty folder that is not a run "
            f"(no {MANIFEST}); {expected}, or an empty one"
        )


def input_paths(config: Config) -> dict[str, Path]:
    d = config.data
    paths: dict[str, Path] = {}
    if d.adapter == "canonical":
        for key in ("items", "interactions", "users"):
            p = getattr(d, key)
            if p is not None:
                paths[key] = Path(p)
    elif d.path is not None:
        root = Path(d.path)
        if root.is_dir():
            paths.update({f.name: f for f in sorted(root.iterdir()) if f.is_file()})
    return paths


def save_dataset_tables(dataset: Dataset, folder: Path) -> None:
    """The catalogue, users and interactions (with string ids) a served run needs."""
    atomic_write_parquet(folder / layout.ITEMS, dataset.catalog.items)
    atomic_write_parquet(folder / layout.USERS, dataset.users)
    inter = dataset.interactions
    atomic_write_parquet(
        folder / layout.INTERACTIONS,
        pd.DataFrame(
            {
                "user_id": dataset.user_ids[inter["user"].to_numpy()],
                "item_id": dataset.catalog.item_ids[inter["item"].to_numpy()],
                "order": inter["order"].to_numpy(),
                "event": inter["event"].astype(str).to_numpy(),
                "weight": inter["weight"].to_numpy(),
            }
        ),
    )


def read_hgnn_history(path: Path) -> dict[str, Any] | None:
    """An HGNN stage's ``history.json`` when it records training epochs, else None (no file,
    or a run that reused frozen weights: ``{"reused_from": ...}``)."""
    if not path.is_file():
        return None
    history = json.loads(path.read_text())
    if not isinstance(history, dict) or not isinstance(history.get("epochs"), list):
        return None
    return history


def reused_hgnn_config(run: Path) -> HGNNConfig:
    """The HGNN settings a finished run trained with (its weights only fit those)."""
    manifest = RunDir(run).read_manifest()
    if (manifest is None or manifest.get("status") != "complete"
            or not RunLayout(run).hgnn_weights().exists()):
        raise UserError(f"--reuse-hgnn {run}: not a complete run with an HGNN stage (hgnn/model.pt)")
    try:
        return HGNNConfig.from_saved(manifest["config"]["hgnn"])
    except ValueError as e:
        raise UserError(f"--reuse-hgnn {run}: its manifest's hgnn settings: {e}") from None
