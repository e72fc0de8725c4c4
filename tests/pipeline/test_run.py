"""End to end: `hgrec run` on a small synthetic dataset, then a rerun that reuses stages."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from hgrec.cli import main
from hgrec.datasets.synthetic import write_synthetic
from hgrec.utils import artifacts
from hgrec.utils.artifacts import RunDir


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("pipeline")
    data = root / "data"
    write_synthetic(data, 4000, n_users=300, n_items=150, seed=3, progress=False)
    config = root / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "runtime": {"seed": 0, "threads": 1, "progress": False},
                "data": {"name": "small", "adapter": "synthetic", "path": str(data)},
                "features": {"cache_dir": str(root / "cache")},
                "baselines": {
                    "enabled": ["popularity", "itemknn", "llm-knn"],
                    "itemknn": {"neighbors": [10, 20]},
                    "hgnn_w_users": {"params": {"max_epochs": 1, "max_steps_per_epoch": 2}},
                },
                "hgnn": {"training": {"max_epochs": 2, "max_steps_per_epoch": 2, "patience": 1}},
                "two_tower": {"max_epochs": 2, "patience": 1},
            }
        )
    )
    out = root / "run"
    assert main(["run", "--config", str(config), "--out", str(out)]) == 0
    return root, config, out


def test_run_writes_a_complete_run(small_run: tuple[Path, Path, Path]) -> None:
    _, _, out = small_run
    run = RunDir(out)
    assert run.is_complete()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 0 and manifest["versions"]["torch"].startswith("2.13")
    stages = {"data", "features", "baselines", "hgnn-w-users", "graph", "hgnn", "2t", "2t-hgnn"}
    assert stages <= set(manifest["stages"])
    metrics = json.loads((out / "metrics.json").read_text())
    expected = {"popularity", "itemknn", "llm-knn", "hgnn-w-users", "hgnn-knn", "2t", "2t-hgnn"}
    for protocol in ("cold", "warm"):
        for split in ("valid", "test"):
            block = metrics["protocols"][protocol][split]
            assert set(block["models"]) == expected
            assert block["users"] > 0
            for m in block["models"].values():
                assert 0.0 <= m["hr@10"] <= 1.0 and len(m["tiers"]) == 5
    report = (out / "report.md").read_text()
    assert all(name in report for name in expected)
    assert (out / "tiers.png").stat().st_size > 0
    history = json.loads((out / "hgnn" / "history.json").read_text())
    assert metrics["hgnn_training"]["best_epoch"] == history["best_epoch"]
    assert len(metrics["hgnn_training"]["epochs"]) == len(history["epochs"]) > 0
    assert (out / "hgnn_learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "# HGNN learning curve (hgnn)" in report and " (best) " in report
    assert "![HGNN learning curve](hgnn_learning_curve.png)" in report
    assert not (out / "hgnn" / "hgnn_learning_curve.png").exists()  # the stage stays as hashed
    users = pd.read_parquet(out / "vectors" / "users.parquet")
    items = pd.read_parquet(out / "vectors" / "items.parquet")
    assert len(users) == 300 and len(items) == 150 and len(items["vector"].iloc[0]) == 128
    assert (out / "index" / "2t-hgnn" / "index.json").exists()
    models = json.loads((out / "models.json").read_text())
    assert set(models) == expected and all((out / p / "params.json").exists() for p in models.values())


def test_rerun_reuses_stages_and_a_2t_change_reruns_only_2t(small_run: tuple[Path, Path, Path]) -> None:
    root, config, out = small_run
    before = json.loads((out / "manifest.json").read_text())["stages"]
    cfg = yaml.safe_load(config.read_text())
    cfg["two_tower"]["max_epochs"] = 1
    changed = root / "changed.yaml"
    changed.write_text(yaml.safe_dump(cfg))
    assert main(["run", "--config", str(changed), "--out", str(out)]) == 0
    after = json.loads((out / "manifest.json").read_text())["stages"]
    for stage in ("data", "features", "baselines", "hgnn-w-users", "graph", "hgnn"):
        assert after[stage]["finished_at"] == before[stage]["finished_at"], stage
    for stage in ("2t", "2t-hgnn"):
        assert after[stage]["key"] != before[stage]["key"], stage


def test_a_run_folder_of_an_older_layout_is_rebuilt(
    small_run: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under a new layout version (a file format changed) no stage of an older folder counts
    as done: hgrec run rebuilds every one instead of misreading it."""
    root, config, out = small_run
    copy = root / "older-layout"
    shutil.copytree(out, copy)
    before = json.loads((copy / "manifest.json").read_text())["stages"]
    monkeypatch.setattr(artifacts, "LAYOUT_VERSION", artifacts.LAYOUT_VERSION + 1)
    assert main(["run", "--config", str(config), "--out", str(copy)]) == 0
    after = json.loads((copy / "manifest.json").read_text())["stages"]
    for stage in ("data", "features", "baselines", "hgnn-w-users", "graph", "hgnn", "2t", "2t-hgnn"):
        assert after[stage]["finished_at"] != before[stage]["finished_at"], stage
    info = json.loads((copy / "hgnn" / "_STAGE.json").read_text())
    assert info["layout"] == artifacts.LAYOUT_VERSION


def test_similar_command(small_run: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    _, _, out = small_run
    first = str(pd.read_parquet(out / "data" / "items.parquet")["item_id"].iloc[0])
    assert main(["similar", first, "--run", str(out), "-k", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith(first) and len(lines) == 4
    assert main(["similar", "no-such-item", "--run", str(out)]) == 2


def test_bad_config_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("hgnn: {marign: 0.3}\n")
    assert main(["run", "--config", str(bad), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "marign" in err and "bad.yaml" in err


def test_experiments_and_reused_hgnn(small_run: tuple[Path, Path, Path]) -> None:
    """P1 Table 4 and two Table 1 ablations land in metrics.json and report.md; a run that
    reuses the first run's frozen HGNN trains no HGNN of its own."""
    root, config, first = small_run
    cfg = yaml.safe_load(config.read_text())
    cfg["experiments"] = {"established_type": "podcast", "ablations": ["A", "F"]}
    exp = root / "exp.yaml"
    exp.write_text(yaml.safe_dump(cfg))
    out = root / "run-exp"
    assert main(["run", "--config", str(exp), "--out", str(out), "--reuse-hgnn", str(first)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["established"]["target_type"] == "podcast"
    ablated = metrics["ablations"]["protocols"]["cold"]["test"]["models"]
    assert set(ablated) == {"2t-hgnn", "A) sampler off", "F) source-source relations only"}
    report = (out / "report.md").read_text()
    assert "Table 4" in report and "F) source-source relations only" in report
    history = json.loads((out / "hgnn" / "history.json").read_text())
    assert history == {"reused_from": str(first)}
    assert "hgnn_training" not in metrics and "HGNN learning curve" not in report
    assert not (out / "hgnn_learning_curve.png").exists()  # frozen weights: no curve
    assert not list((out / "checkpoints").glob("hgnn-*"))  # no main HGNN was trained
    assert list((out / "checkpoints").glob("ablation-A-hgnn-*"))  # the ablations were


def test_report_holds_the_hgnn_learning_curve(tmp_path: Path) -> None:
    """read_hgnn_history keeps trained histories only; render_full_report adds their section
    after the tables and before the stage times."""
    from hgrec.pipeline.report import render_full_report
    from hgrec.pipeline.run_dir import read_hgnn_history

    path = tmp_path / "history.json"
    assert read_hgnn_history(path) is None
    path.write_text('{"reused_from": "/runs/a"}')
    assert read_hgnn_history(path) is None
    rows = [{"epoch": 0, "loss": 0.5, "valid_mrr": float("nan"), "valid_hr10": 0.2, "seconds": 1.0}]
    path.write_text(json.dumps({"best_epoch": 0, "epochs": rows}))
    history = read_hgnn_history(path)
    assert history is not None and history["epochs"][0]["loss"] == 0.5
    metrics = {"dataset": "d", "target_type": "t", "protocols": {}, "stage_seconds": {"x": 1.0},
               "hgnn_training": history}
    report = render_full_report(metrics)
    assert report.index("# HGNN learning curve (hgnn)") < report.index("# Stage times")
    assert "| 0 (best) |" in report


def test_cuda_without_a_gpu_fails_before_any_stage(tmp_path: Path, monkeypatch) -> None:
    import torch

    from hgrec.config import Config
    from hgrec.errors import UserError
    from hgrec.pipeline.run import run_pipeline

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = Config.model_validate(
        {"runtime": {"device": "cuda"}, "data": {"adapter": "synthetic", "path": str(tmp_path)}}
    )
    with pytest.raises(UserError, match="runtime.device"):
        run_pipeline(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_new_item_protocol_retrains_in_its_own_run(small_run: tuple[Path, Path, Path]) -> None:
    """eval.protocols + new_items: the main stages are reused, every model is retrained in
    new-items/ without the held-out items (a complete run naming its parent), and the
    new-item table lands in metrics.json and report.md."""
    root, config, first = small_run
    cfg = yaml.safe_load(config.read_text())
    cfg["eval"] = {"protocols": ["cold", "warm", "new_items"], "new_items_share": 0.25}
    path = root / "new-items.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = root / "run-new-items"
    import shutil

    shutil.copytree(first, out)
    before = json.loads((out / "manifest.json").read_text())["stages"]
    assert main(["run", "--config", str(path), "--out", str(out)]) == 0
    after = json.loads((out / "manifest.json").read_text())["stages"]
    # the main run is not retrained (the 2T stages may hold another test's settings)
    for stage in ("data", "features", "baselines", "hgnn-w-users", "graph", "hgnn"):
        assert after[stage]["finished_at"] == before[stage]["finished_at"], stage
    child = out / "new-items"
    assert RunDir(child).is_complete()
    manifest = json.loads((child / "manifest.json").read_text())
    extra = manifest["extra"]
    assert extra["parent"] == str(out) and extra["new_items"]["new_items"] == 8  # of 30
    held = pd.read_parquet(child / "held_out_items.parquet")
    assert len(held) == 8 and set(held["item_type"]) == {"audiobook"}
    # the held-out items have no training interaction and no graph edge in the child run
    inter = pd.read_parquet(child / "data" / "interactions.parquet")
    users = pd.read_parquet(child / "data" / "users.parquet").set_index("user_id")["split"]
    train_items = inter.loc[inter["user_id"].map(users).eq("train").to_numpy(), "item_id"]
    assert not set(held["item_id"]) & set(train_items)
    metrics = json.loads((out / "metrics.json").read_text())
    block = metrics["new_items"]["protocols"]["cold"]["test"]
    assert set(block["models"]) == set(metrics["protocols"]["cold"]["test"]["models"])
    assert block["models"]["itemknn"]["scores_new_items"] is False
    assert block["models"]["itemknn"]["new_coverage@10"] == 0.0
    assert block["models"]["llm-knn"]["scores_new_items"] is True
    assert block["users"] > 0
    report = (out / "report.md").read_text()
    assert "# New items (held out of training, text only): 8 of 30 audiobook items" in report
    assert "itemknn (ranks new items last)" in report
