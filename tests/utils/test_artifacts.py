"""Atomic writes, hashes, the stage cache and the manifest of a run directory."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from hgrec.config import Config, DataConfig
from hgrec.utils.artifacts import (
    MANIFEST,
    STAGE_FILE,
    TRACKED_PACKAGES,
    RunDir,
    array_sha256,
    atomic_torch_save,
    atomic_write,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_parquet,
    atomic_write_text,
    config_hash,
    file_sha256,
)

DF = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})

# (kind, write(path), read(path), expected read-back)
WRITERS: list[tuple[str, Callable[[Path], Any], Callable[[Path], Any], Any]] = [
    (
        "bytes",
        lambda p: atomic_write_bytes(p, b"\x00\x01ab"),
        lambda p: p.read_bytes(),
        b"\x00\x01ab",
    ),
    (
        "text",
        lambda p: atomic_write_text(p, "héllo"),
        lambda p: p.read_text(encoding="utf-8"),
        "héllo",
    ),
    (
        "json",
        lambda p: atomic_write_json(p, {"p": Path("/x"), "n": np.int64(3)}),
        lambda p: json.loads(p.read_text()),
        {"p": "/x", "n": 3},
    ),
    (
        "parquet",
        lambda p: atomic_write_parquet(p, DF),
        lambda p: pd.read_parquet(p).to_dict("list"),
        DF.to_dict("list"),
    ),
    (
        "torch",
        lambda p: atomic_torch_save(p, {"w": torch.arange(3)}),
        lambda p: torch.load(p)["w"].tolist(),
        [0, 1, 2],
    ),
]


@pytest.mark.parametrize(
    ("kind", "write", "read", "expected"), WRITERS, ids=[w[0] for w in WRITERS]
)
def test_atomic_writes_round_trip_without_temp_files(
    tmp_path: Path, kind: str, write: Callable, read: Callable, expected: Any
) -> None:
    path = tmp_path / "sub" / f"out.{kind}"
    (path.parent).mkdir()
    path.write_bytes(b"old content")  # replaced, not appended to
    write(path)
    assert read(path) == expected
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_failed_write_keeps_old_file(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_text("old")

    def boom(f: Any) -> None:
        f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, boom)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_file_sha256_matches_hashlib_and_folder_hash_tracks_content(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    f = tmp_path / "d" / "a.bin"
    f.write_bytes(b"abc" * 1000)
    assert file_sha256(f) == hashlib.sha256(b"abc" * 1000).hexdigest()
    before = file_sha256(tmp_path / "d")
    (tmp_path / "d" / "b.bin").write_bytes(b"")
    after_add = file_sha256(tmp_path / "d")
    f.write_bytes(b"abd" * 1000)
    assert len({before, after_add, file_sha256(tmp_path / "d")}) == 3
    with pytest.raises(FileNotFoundError, match="nope"):
        file_sha256(tmp_path / "nope")


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        (np.arange(6), np.arange(6), True),
        (np.arange(6), np.arange(6).reshape(2, 3), False),
        (np.arange(6, dtype=np.int64), np.arange(6, dtype=np.int32), False),
        (np.arange(6), np.arange(6)[::-1], False),
        (np.arange(6)[::2], np.array([0, 2, 4]), True),  # non-contiguous view: same content
    ],
)
def test_array_sha256(a: np.ndarray, b: np.ndarray, equal: bool) -> None:
    assert (array_sha256(a) == array_sha256(b)) is equal


def test_array_sha256_rejects_object_arrays() -> None:
    with pytest.raises(TypeError, match="object"):
        array_sha256(np.array(["a", None], dtype=object))


def test_config_hash_is_stable() -> None:
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})
    assert config_hash({"a": 1}) != config_hash({"a": 1.5})
    cfg = DataConfig(name="x", path=Path("/data"))
    assert config_hash(cfg) == config_hash(cfg.model_dump(mode="json"))
    assert config_hash(cfg) != config_hash(DataConfig(name="y", path=Path("/data")))


# --------------------------------------------------------------------------- RunDir


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    items = tmp_path / "in" / "items.tsv"
    items.parent.mkdir()
    items.write_text("item_id\ttitle\n1\tpan\n")
    return {"items": items}


def _config() -> dict[str, Any]:
    return Config(data=DataConfig(adapter="synthetic"), runtime={"seed": 7}).model_dump(mode="json")


def _started(path: Path, inputs: dict[str, Path]) -> RunDir:
    run = RunDir(path)
    run.start(_config(), inputs=inputs)
    return run


def test_manifest_content(tmp_path: Path, inputs: dict[str, Path]) -> None:
    run = _started(tmp_path / "run", inputs)
    m = json.loads((tmp_path / "run" / MANIFEST).read_text())
    assert m["status"] == "running" and not run.is_complete()
    assert m["seed"] == 7  # from config.runtime.seed
    assert m["config"] == _config() and m["config_hash"] == config_hash(_config())
    assert m["inputs"]["items"]["sha256"] == file_sha256(inputs["items"])
    assert set(TRACKED_PACKAGES) | {"python"} <= set(m["versions"])
    assert m["versions"]["numpy"] == np.__version__
    assert m["versions"]["torch"] == importlib.metadata.version("torch")
    assert m["versions"]["python"].count(".") == 2
    run.finish()
    m = json.loads((tmp_path / "run" / MANIFEST).read_text())
    assert m["status"] == "complete" and run.is_complete() and m["seconds"] >= 0


def test_stage_writes_outputs_and_record(tmp_path: Path, inputs: dict[str, Path]) -> None:
    run = _started(tmp_path / "run", inputs)
    assert not run.is_done("graph", "k1")
    with run.stage("graph", "k1") as tmp:
        assert tmp.is_dir() and tmp != run.path / "graph" and not any(tmp.iterdir())
        (tmp / "edges.npy").write_bytes(b"123")
        (tmp / "sub").mkdir()
        (tmp / "sub" / "x.txt").write_text("x")
        assert not (run.path / "graph").exists()  # nothing visible until the stage ends
    info = json.loads((run.path / "graph" / STAGE_FILE).read_text())
    assert info["key"] == "k1" and info["seconds"] >= 0
    assert info["outputs"] == {
        "edges.npy": hashlib.sha256(b"123").hexdigest(),
        "sub/x.txt": hashlib.sha256(b"x").hexdigest(),
    }
    assert run.is_done("graph", "k1") and not run.is_done("graph", "k2")
    assert run.manifest["stages"]["graph"]["key"] == "k1"
    on_disk = json.loads(run.manifest_path.read_text())
    assert on_disk["stages"]["graph"]["key"] == "k1" and on_disk["status"] == "running"
    assert sorted(p.name for p in run.path.iterdir()) == ["graph", MANIFEST]


@pytest.mark.parametrize("had_previous", [False, True])
def test_interrupted_stage_leaves_nothing_that_looks_done(
    tmp_path: Path, inputs: dict[str, Path], had_previous: bool
) -> None:
    run = _started(tmp_path / "run", inputs)
    if had_previous:
        with run.stage("graph", "old") as tmp:
            (tmp / "a.txt").write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with run.stage("graph", "new") as tmp:
            (tmp / "a.txt").write_text("half-written")
            raise KeyboardInterrupt
    assert not run.is_done("graph", "new")
    assert run.is_done("graph", "old") is had_previous
    if had_previous:
        assert (run.path / "graph" / "a.txt").read_text() == "old"
    else:
        assert not (run.path / "graph").exists()
    assert not [p for p in run.path.iterdir() if p.name.startswith(".")]
    m = json.loads(run.manifest_path.read_text())
    assert m["status"] == "failed" and m["error"]["stage"] == "graph"
    assert not run.is_complete()


def test_changed_key_redoes_and_replaces_stage(tmp_path: Path, inputs: dict[str, Path]) -> None:
    run = _started(tmp_path / "run", inputs)
    with run.stage("feat", "k1") as tmp:
        (tmp / "old_only.txt").write_text("1")
    h1 = run.output_hash("feat")
    with run.stage("feat", "k2") as tmp:
        (tmp / "new.txt").write_text("2")
    assert run.is_done("feat", "k2") and not run.is_done("feat", "k1")
    assert sorted(p.name for p in (run.path / "feat").iterdir()) == [STAGE_FILE, "new.txt"]
    assert run.output_hash("feat") != h1


def test_rerun_in_same_folder_resumes(tmp_path: Path, inputs: dict[str, Path]) -> None:
    first = _started(tmp_path / "run", inputs)
    with first.stage("graph", "k") as tmp:
        (tmp / "g.bin").write_bytes(b"g")
    first.finish()
    # Leftovers of a crash: a temp stage folder and a temp file.
    (tmp_path / "run" / ".model.tmp-abc").mkdir()
    (tmp_path / "run" / ".manifest.json.xyz.tmp").write_text("{")
    second = _started(tmp_path / "run", inputs)
    assert second.status() == "running" and not second.is_complete()
    assert second.is_done("graph", "k") and second.manifest["stages"]["graph"]["key"] == "k"
    assert not [p for p in second.path.iterdir() if p.name.startswith(".")]


def test_verify_detects_changed_outputs(tmp_path: Path, inputs: dict[str, Path]) -> None:
    run = _started(tmp_path / "run", inputs)
    with run.stage("graph", "k") as tmp:
        (tmp / "g.bin").write_bytes(b"g")
    assert run.is_done("graph", "k", verify=True)
    (run.path / "graph" / "g.bin").write_bytes(b"tampered")
    assert run.is_done("graph", "k") and not run.is_done("graph", "k", verify=True)


@pytest.mark.parametrize("name", ["", ".hidden", "a/b", MANIFEST])
def test_invalid_stage_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="stage name"):
        RunDir(tmp_path).stage_path(name)


def test_stage_before_start_is_an_error(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    assert run.status() is None and not run.is_complete()
    with pytest.raises(RuntimeError, match="start"):
        run.finish()


def test_timings_input_hashes_and_clear(tmp_path: Path, inputs: dict[str, Path]) -> None:
    run = _started(tmp_path / "run", inputs)
    assert run.input_hashes == {"items": file_sha256(inputs["items"])}
    assert run.input_hash("items") == file_sha256(inputs["items"])
    with pytest.raises(KeyError, match="expected one of"):
        run.input_hash("users")
    run.record_stage_seconds({"load": 1.23456, "graph": 2})
    assert json.loads(run.manifest_path.read_text())["timings"] == {"load": 1.235, "graph": 2.0}
    with run.stage("graph", "k") as tmp:
        (tmp / "g.bin").write_bytes(b"g")
    run.clear()
    assert run.path.is_dir() and not any(run.path.iterdir())
    assert not run.is_done("graph", "k")


def test_clear_refuses_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep")
    with pytest.raises(ValueError, match="refusing"):
        RunDir(tmp_path).clear()
    assert (tmp_path / "precious.txt").read_text() == "keep"
