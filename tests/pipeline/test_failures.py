"""A failed run says so in its manifest, with the reason; runtime.progress reaches every stage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hgrec.config import Config
from hgrec.datasets.synthetic import write_synthetic
from hgrec.pipeline.run import Pipeline, StageClock, run_pipeline
from hgrec.utils.artifacts import RunDir


@pytest.fixture
def config(tmp_path: Path) -> Config:
    data = tmp_path / "data"
    write_synthetic(data, 400, n_users=40, n_items=60, n_topics=4, fmt="csv", progress=False)
    return Config.model_validate(
        {"runtime": {"progress": False, "threads": 1},
         "data": {"adapter": "synthetic", "path": str(data)},
         "features": {"cache_dir": str(tmp_path / "cache")}}
    )


def test_a_crash_in_a_stage_marks_the_run_failed(
    config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("out of\nmemory")

    monkeypatch.setattr("hgrec.pipeline.run.item_text_features", crash)
    with pytest.raises(RuntimeError):
        run_pipeline(config, tmp_path / "run")
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["finished_at"] is not None
    assert manifest["error"] == {
        "stage": "text features", "type": "RuntimeError", "message": "out of memory"
    }
    assert "data" in manifest["stages"] and "features" not in manifest["stages"]
    assert not RunDir(tmp_path / "run").is_complete()


def test_two_tower_gets_the_progress_setting(
    config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hgrec.recommenders.two_tower import TwoTowerRecommender

    seen: dict[str, object] = {}

    class Stop(Exception):
        pass

    def from_config(cfg: object, **kwargs: object) -> None:
        seen.update(kwargs)
        raise Stop

    monkeypatch.setattr(TwoTowerRecommender, "from_config", staticmethod(from_config))
    pipe = Pipeline.__new__(Pipeline)  # only what two_tower() reads
    pipe.config, pipe.seed, pipe.progress = config, 0, config.runtime.progress
    pipe.clock, pipe.run_dir = StageClock(), RunDir(tmp_path / "run")
    pipe.run_dir.start(config)
    pipe.data_key, pipe.text_hash = "data", "text"
    with pytest.raises(Stop):
        pipe.two_tower("2t", None, None)
    assert seen["progress"] is False
