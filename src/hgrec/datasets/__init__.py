"""Dataset adapters: turn a :class:`hgrec.config.DataConfig` into a validated Dataset.

Adapters:
    canonical: ``data.items``, ``data.interactions`` (and optional ``data.users``) in the
        canonical format (:mod:`hgrec.data.schema`); ``data.target_type`` is required.
    amazon-food-kitchen: ``data.path`` = folder with the Amazon Food / Kitchen TSVs.
    synthetic: ``data.path`` = folder written by :func:`hgrec.datasets.synthetic.write_synthetic`.
"""

from __future__ import annotations

import json
from pathlib import Path

from hgrec.config import DataConfig
from hgrec.data.dataset import Dataset
from hgrec.data.io import FORMATS, table_format
from hgrec.data.load import load_canonical
from hgrec.datasets.amazon_food_kitchen import (
    INTERACTIONS_FILE,
    ITEMS_FILE,
    load_amazon_food_kitchen,
)
from hgrec.errors import UserError

__all__ = ["check_inputs", "load_dataset", "load_amazon_food_kitchen", "load_synthetic"]


def check_inputs(cfg: DataConfig) -> None:
    """What can be checked of ``cfg``'s inputs without reading them: files and folders exist,
    table extensions are known, the target type is named. Run before anything is written.

    Raises:
        FileNotFoundError: a file or folder is missing (the message names it and its key).
        DataValidationError: a table file with an unknown extension.
        UserError: a config the adapter cannot use (no target type, no data.path, ...).
    """
    if cfg.adapter == "canonical":
        for key in ("items", "interactions", "users"):
            path = getattr(cfg, key)
            if path is None:
                if key != "users":
                    raise UserError(f"data.{key} is missing: the canonical adapter needs it")
                continue
            fmt = table_format(path)
            if not Path(path).is_file():
                raise FileNotFoundError(
                    f"{path}: file not found; expected the {key} table (data.{key} or --{key}) "
                    f"as a {fmt} file at this path"
                )
        if cfg.target_type is None:
            raise UserError("data.target_type is missing: the canonical adapter needs it")
        return
    folder = _data_folder(cfg)
    if cfg.adapter == "amazon-food-kitchen":
        for name in (ITEMS_FILE, INTERACTIONS_FILE):
            if not (folder / name).is_file():
                raise FileNotFoundError(
                    f"{folder / name}: file not found; expected the Amazon Food / Kitchen "
                    f"{ITEMS_FILE} and {INTERACTIONS_FILE} in data.path"
                )
    elif cfg.adapter == "synthetic":
        for role in ("items", "interactions", "users"):
            _find(folder, role)
        _synthetic_target(folder, cfg.target_type)


def load_dataset(cfg: DataConfig, seed: int) -> Dataset:
    """Load the dataset ``cfg`` describes; ``seed`` drives the random user split if needed."""
    if cfg.adapter == "canonical":
        if cfg.items is None or cfg.interactions is None or cfg.target_type is None:
            check_inputs(cfg)  # raises, naming the missing key
        assert cfg.items is not None and cfg.interactions is not None
        return load_canonical(
            cfg.items,
            cfg.interactions,
            cfg.users,
            target_type=cfg.target_type,
            valid_fraction=cfg.valid_fraction,
            test_fraction=cfg.test_fraction,
            seed=seed,
            name=cfg.name,
        )
    folder = _data_folder(cfg)
    if cfg.adapter == "amazon-food-kitchen":
        return load_amazon_food_kitchen(folder, cfg.target_type or "food", name=cfg.name)
    if cfg.adapter == "synthetic":
        return load_synthetic(
            folder,
            target_type=cfg.target_type,
            valid_fraction=cfg.valid_fraction,
            test_fraction=cfg.test_fraction,
            seed=seed,
            name=cfg.name,
        )
    raise UserError(f"unknown data.adapter {cfg.adapter!r}")  # pragma: no cover - Config checks


def _data_folder(cfg: DataConfig) -> Path:
    if cfg.path is None:
        what = "written by `hgrec synth`" if cfg.adapter == "synthetic" else "of data files"
        raise UserError(f"data.path is missing: the {cfg.adapter!r} adapter reads a folder {what}")
    folder = Path(cfg.path)
    if not folder.is_dir():
        what = "is a file" if folder.exists() else "does not exist"
        raise FileNotFoundError(
            f"data.path {folder}: {what}; expected the folder the {cfg.adapter!r} adapter reads"
        )
    return folder


def load_synthetic(
    folder: str | Path,
    *,
    target_type: str | None = None,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    name: str = "synthetic",
) -> Dataset:
    """Load a folder written by ``write_synthetic`` (target type from its meta.json by default)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{folder}: synthetic data folder not found; expected a folder written by `hgrec synth`"
        )
    files = {role: _find(folder, role) for role in ("items", "interactions", "users")}
    target = _synthetic_target(folder, target_type)
    return load_canonical(
        files["items"],
        files["interactions"],
        files["users"],
        target_type=target,
        valid_fraction=valid_fraction,
        test_fraction=test_fraction,
        seed=seed,
        name=name,
    )


def _synthetic_target(folder: Path, target_type: str | None) -> str:
    """``target_type``, else the one ``folder/meta.json`` names (written by ``hgrec synth``)."""
    if target_type is not None:
        return target_type
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        raise UserError(
            f"{folder}: no meta.json naming the target type; expected data.target_type set to "
            "one of the item types of this folder's items file"
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(
            f"{meta_path}: not valid JSON ({e}); expected the meta.json of `hgrec synth`"
        ) from None
    target = meta.get("target_type") if isinstance(meta, dict) else None
    if not isinstance(target, str):
        raise UserError(
            f"{meta_path}: no 'target_type' string; expected data.target_type in the config, "
            "or the meta.json of `hgrec synth`"
        )
    return target


def _find(folder: Path, role: str) -> Path:
    found = [folder / f"{role}{ext}" for ext in FORMATS if (folder / f"{role}{ext}").is_file()]
    if len(found) != 1:
        raise FileNotFoundError(
            f"{folder}: expected exactly one {role} file ({', '.join(role + e for e in FORMATS)}), "
            f"found {[p.name for p in found]}"
        )
    return found[0]
