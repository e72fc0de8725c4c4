"""load_dataset dispatch on DataConfig.adapter."""

from __future__ import annotations

from pathlib import Path

import pytest

from hgrec.config import DataConfig
from hgrec.datasets import load_dataset
from hgrec.datasets.synthetic import write_synthetic


@pytest.fixture
def synth_dir(tmp_path: Path) -> Path:
    write_synthetic(tmp_path / "synth", 4_000, fmt="tsv", progress=False, seed=1)
    return tmp_path / "synth"


def test_synthetic_folder_reads_target_from_meta(synth_dir: Path) -> None:
    ds = load_dataset(DataConfig(adapter="synthetic", path=synth_dir, name="s"), seed=0)
    assert ds.name == "s" and ds.target_type == "audiobook"
    assert ds.report.counts["interactions"] == 4_000


@pytest.mark.parametrize("seed", [0, 1])
def test_canonical_paths(synth_dir: Path, seed: int) -> None:
    cfg = DataConfig(
        items=synth_dir / "items.tsv",
        interactions=synth_dir / "interactions.tsv",
        target_type="podcast",
        valid_fraction=0.25,
        test_fraction=0.25,
    )
    ds = load_dataset(cfg, seed=seed)
    # No users file: a seeded random split by the config's fractions.
    assert ds.report.counts["users_valid"] == round(ds.n_users * 0.25)
    again = load_dataset(cfg, seed=seed)
    assert ds.users["split"].tolist() == again.users["split"].tolist()


def test_canonical_needs_target_type(synth_dir: Path) -> None:
    cfg = DataConfig(items=synth_dir / "items.tsv", interactions=synth_dir / "interactions.tsv")
    with pytest.raises(ValueError, match="target_type is missing"):
        load_dataset(cfg, seed=0)


@pytest.mark.parametrize("adapter", ["amazon-food-kitchen", "synthetic"])
def test_folder_adapters_need_a_path(adapter: str) -> None:
    with pytest.raises(ValueError, match="data.path is missing"):
        load_dataset(DataConfig(adapter=adapter), seed=0)  # type: ignore[arg-type]


def test_synthetic_folder_with_two_item_files(synth_dir: Path) -> None:
    (synth_dir / "items.csv").write_text("item_id,item_type,title\n")
    with pytest.raises(FileNotFoundError, match="exactly one items file"):
        load_dataset(DataConfig(adapter="synthetic", path=synth_dir), seed=0)
