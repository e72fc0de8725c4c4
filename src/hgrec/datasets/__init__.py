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
from hgrec.data.io import FORMATS
from hgrec.data.load import load_canonical
from hgrec.datasets.amazon_food_kitchen import load_amazon_food_kitchen

__all__ = ["load_dataset", "load_amazon_food_kitchen", "load_synthetic"]


def load_dataset(cfg: DataConfig, seed: int) -> Dataset:
    """Load the dataset ``cfg`` describes; ``seed`` drives the random user split if needed."""
    if cfg.adapter == "canonical":
        if cfg.items is None or cfg.interactions is None:
            raise ValueError("data: the canonical adapter needs data.items and data.interactions")
        if cfg.target_type is None:
            raise ValueError(
                "data.target_type is missing: canonical data must name the sparse item type to "
                "evaluate (one of the values of the items' item_type column)"
            )
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
    if cfg.path is None:
        raise ValueError(f"data.path is missing: the {cfg.adapter!r} adapter reads a folder")
    if cfg.adapter == "amazon-food-kitchen":
        return load_amazon_food_kitchen(cfg.path, cfg.target_type or "food", name=cfg.name)
    if cfg.adapter == "synthetic":
        return load_synthetic(
            cfg.path,
            target_type=cfg.target_type,
            valid_fraction=cfg.valid_fraction,
            test_fraction=cfg.test_fraction,
            seed=seed,
            name=cfg.name,
        )
    raise ValueError(f"unknown data.adapter {cfg.adapter!r}")


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
        raise FileNotFoundError(f"{folder}: synthetic data folder not found")
    meta_path = folder / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    target = target_type or meta.get("target_type")
    if target is None:
        raise ValueError(f"{folder}: no target_type given and no meta.json naming one")
    files = {role: _find(folder, role) for role in ("items", "interactions", "users")}
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


def _find(folder: Path, role: str) -> Path:
    found = [folder / f"{role}{ext}" for ext in FORMATS if (folder / f"{role}{ext}").is_file()]
    if len(found) != 1:
        raise FileNotFoundError(
            f"{folder}: expected exactly one {role} file ({', '.join(role + e for e in FORMATS)}), "
            f"found {[p.name for p in found]}"
        )
    return found[0]
