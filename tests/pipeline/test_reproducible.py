"""Same config and seed, same metrics: the whole pipeline rerun from scratch, at two threads
and at one, gives every metric exactly (issue: two 2-thread runs of the default job once
differed in the third decimal)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from hgrec.cli import main
from hgrec.datasets.synthetic import write_synthetic


def _config(root: Path, data: Path, threads: int) -> Path:
    """Every trained model of the pipeline (ALS and EASE too), a few epochs each."""
    config = root / f"config-{threads}.yaml"
    config.write_text(yaml.safe_dump({
        "runtime": {"seed": 0, "threads": threads, "progress": False},
        "data": {"name": "small", "adapter": "synthetic", "path": str(data)},
        "features": {"cache_dir": str(root / "cache")},
        "baselines": {
            "enabled": ["popularity", "itemknn", "als", "ease"],
            "hgnn_w_users": {"params": {"max_epochs": 1, "max_steps_per_epoch": 2}},
        },
        "hgnn": {"training": {"max_epochs": 2, "patience": 1}},
        "two_tower": {"max_epochs": 2, "patience": 1},
    }))
    return config


def _run(root: Path, data: Path, threads: int, name: str) -> Path:
    out = root / name
    n = torch.get_num_threads()
    try:
        assert main(["run", "--config", str(_config(root, data, threads)), "--out", str(out)]) == 0
    finally:
        torch.set_num_threads(n)  # the run sets the process's threads; restore for others
    return out


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("repro")
    data = root / "data"
    write_synthetic(data, 4000, n_users=300, n_items=150, seed=3, progress=False)
    return _run(root, data, 2, "a"), _run(root, data, 2, "b"), _run(root, data, 1, "one")


def _metrics(run: Path) -> dict[str, object]:
    return json.loads((run / "metrics.json").read_text())["protocols"]


def test_two_runs_give_identical_metrics_and_embeddings(three_runs: tuple[Path, Path, Path]) -> None:
    a, b, _ = three_runs
    assert _metrics(a) == _metrics(b)  # every model, protocol, split, metric, tier and CI
    for part in ("hgnn/embeddings.parquet", "vectors/items.parquet", "vectors/users.parquet"):
        x, y = pd.read_parquet(a / part), pd.read_parquet(b / part)
        col = "vector" if "vector" in x else x.columns[-1]
        np.testing.assert_array_equal(np.stack(x[col]), np.stack(y[col]), err_msg=part)
    # The stage keys depend on the content only, so the second run would reuse the first's.
    keys = {r: {s: v["key"] for s, v in json.loads((r / "manifest.json").read_text())["stages"]
                .items()} for r in (a, b)}
    assert keys[a] == keys[b]


def test_the_thread_count_does_not_change_the_metrics(three_runs: tuple[Path, Path, Path]) -> None:
    a, _, one = three_runs
    assert _metrics(a) == _metrics(one)
