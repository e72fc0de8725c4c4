"""What makes a run directory trustworthy: atomic writes, hashes, a stage cache and a manifest.

A reader never sees a half-written file or a half-written stage:

* every file goes to a temp file in the same folder, is fsynced, then ``os.replace``-d into place
  (atomic on POSIX when source and target share a file system, hence the same folder);
* a stage writes into a hidden temp sibling folder that is renamed to ``<run>/<name>/`` only
  after the stage body returned, with a ``_STAGE.json`` (key, seconds, output file hashes);
* ``manifest.json`` at the run root says ``"complete"`` only after :meth:`RunDir.finish`, which
  is written last.

Example:
    >>> run = RunDir(out)
    >>> run.start(cfg, inputs={"items": items_path}, seed=cfg.runtime.seed)
    >>> key = config_hash({"graph": cfg.graph, "data": run.input_hash()})
    >>> if not run.is_done("graph", key):
    ...     with run.stage("graph", key) as tmp:      # tmp: temp folder of the stage
    ...         write_graph(graph, tmp)
    >>> graph = read_graph(run.path / "graph")
    >>> run.finish()
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import importlib.metadata
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from hgrec.errors import UserError
from hgrec.utils.layout import LAYOUT_VERSION

MANIFEST = "manifest.json"
STAGE_FILE = "_STAGE.json"
# Distributions whose versions make a run reproducible; a missing one is recorded as None.
TRACKED_PACKAGES = (
    "hgrec",
    "torch",
    "torch_geometric",
    "numpy",
    "pandas",
    "scipy",
    "sentence-transformers",
    "implicit",
    "duckdb",
    "pyarrow",
    "voyager",
)
_HASH_CHUNK = 1 << 20


# --------------------------------------------------------------------------- atomic writes


def _fsync_dir(folder: Path) -> None:
    """Persist a rename: the directory entry lives in the folder, not in the file."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], object]) -> Path:
    """Call ``write(f)`` on a temp file next to ``path``, fsync it, then rename it onto ``path``.

    On any exception the temp file is removed and ``path`` keeps its previous content.
    Returns ``path`` as a :class:`Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same folder as the target: os.replace is only atomic within one file system.
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: str | Path, obj: Any, indent: int | None = 2) -> Path:
    """Write ``obj`` as JSON; pydantic models, Paths, numpy values and dataclasses are converted."""
    return atomic_write_text(path, json.dumps(obj, indent=indent, default=_jsonable) + "\n")


def atomic_write_parquet(path: str | Path, df: pd.DataFrame, index: bool = False) -> Path:
    return atomic_write(path, lambda f: df.to_parquet(f, index=index))


def atomic_torch_save(path: str | Path, obj: Any) -> Path:
    import torch  # lazy: most callers of this module never touch torch

    return atomic_write(path, lambda f: torch.save(obj, f))


# --------------------------------------------------------------------------- hashes


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, or of a folder: its relative file paths and their hashes."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        h = hashlib.sha256()
        for p in files:  # a loop over files, not over data rows
            h.update(p.relative_to(path).as_posix().encode() + b"\0" + file_sha256(p).encode())
        return h.hexdigest()
    if not path.exists():
        raise FileNotFoundError(f"cannot hash {path}: no such file or folder")
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def array_sha256(*arrays: np.ndarray) -> str:
    """Hex sha256 over the dtype, shape and bytes of each array (C order), in argument order."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.asarray(a)
        if a.dtype == object:
            raise TypeError(
                "array_sha256: object arrays have no stable bytes; expected numeric or fixed-width "
                "str arrays (convert first)"
            )
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _jsonable(obj: Any) -> Any:
    """``json.dumps`` fallback for the types configs and reports hold."""
    if hasattr(obj, "model_dump"):  # pydantic v2 model
        return obj.model_dump(mode="json")
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return {"ndarray_sha256": array_sha256(obj)} if obj.size > 64 else obj.tolist()
    if isinstance(obj, set | frozenset):
        return sorted(obj, key=repr)
    if isinstance(obj, datetime):
        return obj.isoformat()
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON: {obj!r:.80}")


def stable_json(obj: Any) -> str:
    """Canonical JSON: sorted keys, no whitespace; equal configs give equal strings."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_jsonable, allow_nan=True)


def config_hash(obj: Any) -> str:
    """Hex sha256 of :func:`stable_json` of ``obj`` (dicts, pydantic models, Paths, arrays...)."""
    return hashlib.sha256(stable_json(obj).encode()).hexdigest()


def package_versions() -> dict[str, str | None]:
    """Python and the :data:`TRACKED_PACKAGES` versions installed now (None when missing)."""
    out: dict[str, str | None] = {"python": sys.version.split()[0]}
    for name in TRACKED_PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def error_text(error: BaseException, limit: int = 2000) -> str:
    """One line saying what went wrong: the message, or the exception type when it has none."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:limit]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- run directory


class RunDir:
    """A run directory with per-stage caching by content hash and a manifest written last.

    Layout::

        <run>/manifest.json            config, versions, input hashes, seed, stages, status
        <run>/<stage>/_STAGE.json      key, seconds, sha256 of every output file
        <run>/<stage>/...              the stage's outputs
        <run>/.<stage>.tmp-<id>/       a stage being written (removed or renamed when it ends)

    A stage is *done* for a key when ``<run>/<stage>/_STAGE.json`` exists and records that key.
    The key should hash everything the stage depends on: its config section, the hashes of its
    input files, and :meth:`output_hash` of upstream stages, so that a change upstream
    invalidates everything downstream.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._manifest: dict[str, Any] | None = None
        self._t0 = time.perf_counter()

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r}, status={self.status()!r})"

    # -- manifest ------------------------------------------------------------------------

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    def read_manifest(self) -> dict[str, Any] | None:
        """The manifest on disk, or None when there is none."""
        if not self.manifest_path.exists():
            return None
        try:
            return json.loads(self.manifest_path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as e:  # written by something else
            raise UserError(
                f"{self.manifest_path}: not valid JSON ({e}); expected a run manifest"
            ) from e

    def finished_manifest(self, require_complete: bool = True) -> dict[str, Any]:
        """The manifest of a run others may read (``hgrec serve``, reloads, ``hgrec similar``).

        A run's files can be half written until its status is ``complete`` (written last).

        Raises:
            UserError: no manifest (not a run directory), a manifest that is not a JSON
                object, or (with ``require_complete``) a status other than ``complete``.
        """
        f = self.manifest_path
        manifest = self.read_manifest()
        if manifest is None:
            raise UserError(f"{f} does not exist; expected a run directory written by `hgrec run`")
        if not isinstance(manifest, dict):
            raise UserError(f"{f}: a JSON {type(manifest).__name__}; expected a run manifest object")
        status = manifest.get("status")
        if require_complete and status != "complete":
            hint = ("wait for `hgrec run` to finish" if status == "running"
                    else "run `hgrec run` again to finish it")
            raise UserError(f"{f}: status {status!r}; expected 'complete' (the run has not "
                            f"finished: {hint})")
        return manifest

    @property
    def manifest(self) -> dict[str, Any]:
        if self._manifest is None:
            raise RuntimeError(f"{self.path}: call RunDir.start(...) before running stages")
        return self._manifest

    def _write_manifest(self) -> None:
        atomic_write_json(self.manifest_path, self.manifest)

    def status(self) -> str | None:
        """'running' | 'complete' | 'failed' as on disk, None when no manifest was written."""
        m = self.read_manifest()
        return None if m is None else str(m.get("status"))

    def is_complete(self) -> bool:
        """True only when the manifest on disk says the run finished (it is written last)."""
        return self.status() == "complete"

    def start(
        self,
        config: Any,
        inputs: Mapping[str, str | Path] | None = None,
        seed: int | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Open the run: write a 'running' manifest with config, versions, input hashes and seed.

        Stages already in the folder are kept (their ``_STAGE.json`` is the source of truth), so
        a rerun in the same folder skips what is done; leftovers of interrupted stages are removed.

        Args:
            config: the run config (pydantic model or JSON-able mapping).
            inputs: name -> input file or folder; each is hashed with :func:`file_sha256`.
            seed: the seed driving the run; default ``config.runtime.seed`` when present.
            extra: any other JSON-able facts to record (dataset name, host...).
        Returns: the manifest dict.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        self._remove_leftovers()
        cfg = json.loads(stable_json(config))
        runtime = cfg.get("runtime") if isinstance(cfg, dict) else None
        if seed is None and isinstance(runtime, dict):
            seed = runtime.get("seed")
        hashes = {
            name: {"path": str(p), "sha256": file_sha256(p)} for name, p in (inputs or {}).items()
        }
        self._t0 = time.perf_counter()
        self._manifest = {
            "status": "running",
            "started_at": _now(),
            "finished_at": None,
            "seconds": None,
            "seed": seed,
            "config": cfg,
            "config_hash": config_hash(cfg),
            "inputs": hashes,
            "inputs_hash": config_hash(hashes),
            "versions": package_versions(),
            "stages": self._scan_stages(),
            "extra": dict(extra or {}),
        }
        self._write_manifest()
        return self.manifest

    @property
    def input_hashes(self) -> dict[str, str]:
        """Input name -> sha256, as recorded by :meth:`start`."""
        return {name: str(v["sha256"]) for name, v in self.manifest["inputs"].items()}

    def record_stage_seconds(self, seconds: Mapping[str, float]) -> None:
        """Record wall times of pipeline steps (cached or not) under ``timings`` in the manifest."""
        self.manifest.setdefault("timings", {}).update(
            {k: round(float(v), 3) for k, v in seconds.items()}
        )
        self._write_manifest()

    def clear(self) -> None:
        """Delete everything in the run folder, for a fresh run.

        Refuses a non-empty folder without a manifest: it may not be a run folder at all.

        Raises:
            UserError: ``path`` is a file, or a non-empty folder that is not a run.
        """
        if not self.path.exists():
            return
        if not self.path.is_dir():
            raise UserError(f"{self.path}: is a file; expected a run folder to clear")
        if any(self.path.iterdir()) and not self.manifest_path.is_file():
            raise UserError(
                f"{self.path}: refusing to clear a non-empty folder without {MANIFEST}; "
                "expected a run directory written by hgrec"
            )
        for p in self.path.iterdir():  # loop over run entries
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
        self._manifest = None

    def input_hash(self, name: str | None = None) -> str:
        """sha256 of input ``name``, or of all inputs together when ``name`` is None."""
        if name is None:
            return str(self.manifest["inputs_hash"])
        if name not in self.manifest["inputs"]:
            known = sorted(self.manifest["inputs"])
            raise KeyError(f"{self.path}: no input {name!r}; expected one of {known}")
        return str(self.manifest["inputs"][name]["sha256"])

    def fail(self, error: BaseException, stage: str | None = None) -> None:
        """Mark the run failed with the reason (``stage``: where it happened, when known)."""
        if self._manifest is None:
            return
        self.manifest.update(
            status="failed",
            finished_at=_now(),
            seconds=round(time.perf_counter() - self._t0, 3),
            error={"stage": stage, "type": type(error).__name__, "message": error_text(error)},
        )
        self._write_manifest()

    def finish(self) -> dict[str, Any]:
        """Mark the run complete; this manifest write is the last thing a run does."""
        m = self.manifest
        seconds = round(time.perf_counter() - self._t0, 3)
        m.update(status="complete", finished_at=_now(), seconds=seconds)
        self._write_manifest()
        return m

    # -- stages --------------------------------------------------------------------------

    def stage_path(self, name: str) -> Path:
        if not name or name.startswith(".") or "/" in name or "\\" in name or name == MANIFEST:
            raise ValueError(f"invalid stage name {name!r}; expected a plain folder name")
        return self.path / name

    def stage_info(self, name: str) -> dict[str, Any] | None:
        """The finished stage's ``_STAGE.json`` (key, seconds, outputs), or None."""
        f = self.stage_path(name) / STAGE_FILE
        if not f.exists():
            return None
        return json.loads(f.read_text())

    def is_done(self, name: str, key: str, verify: bool = False) -> bool:
        """True when stage ``name`` finished with this ``key`` in this run layout
        (:data:`hgrec.utils.layout.LAYOUT_VERSION`: a stage written in another layout is
        rebuilt, not misread); ``verify`` re-hashes its outputs."""
        info = self.stage_info(name)
        if info is None or info.get("key") != key or info.get("layout") != LAYOUT_VERSION:
            return False
        if verify:
            folder = self.stage_path(name)
            for rel, digest in info.get("outputs", {}).items():
                p = folder / rel
                if not p.is_file() or file_sha256(p) != digest:
                    return False
        return True

    def output_hash(self, name: str, files: tuple[str, ...] | None = None) -> str:
        """sha256 over a finished stage's output hashes: use it in downstream stage keys.

        Args:
            files: only these outputs (paths relative to the stage folder), e.g. the
                embeddings a later stage reads and not a training log that holds timings.
        """
        info = self.stage_info(name)
        if info is None:
            raise FileNotFoundError(f"{self.stage_path(name)}: stage {name!r} has not finished")
        outputs = info["outputs"]
        if files is not None:
            missing = [f for f in files if f not in outputs]
            if missing:
                raise FileNotFoundError(f"{self.stage_path(name)}: stage {name!r} has no {missing}")
            outputs = {f: outputs[f] for f in files}
        return config_hash(outputs)

    @contextmanager
    def stage(self, name: str, key: str) -> Iterator[Path]:
        """Run a stage: yield an empty temp folder; on success rename it to ``<run>/<name>/``.

        On an exception the temp folder is removed, the previous ``<run>/<name>/`` (if any) is
        left as it was, the manifest records the failure, and the exception propagates.
        """
        final = self.stage_path(name)
        tmp = self.path / f".{name}.tmp-{uuid.uuid4().hex[:12]}"
        tmp.mkdir(parents=True)
        t0 = time.perf_counter()
        try:
            yield tmp
        except BaseException as e:
            shutil.rmtree(tmp, ignore_errors=True)
            self.fail(e, name)
            raise
        seconds = round(time.perf_counter() - t0, 3)
        outputs = {
            p.relative_to(tmp).as_posix(): file_sha256(p)
            for p in sorted(tmp.rglob("*"))
            if p.is_file() and p.name != STAGE_FILE
        }
        info = {
            "name": name, "key": key, "layout": LAYOUT_VERSION, "seconds": seconds,
            "finished_at": _now(), "outputs": outputs,
        }
        atomic_write_json(tmp / STAGE_FILE, info)
        self._swap_in(tmp, final)
        if self._manifest is not None:
            self.manifest["stages"][name] = {k: info[k] for k in ("key", "seconds", "finished_at")}
            self.manifest["stages"][name]["outputs_hash"] = config_hash(outputs)
            if self.manifest.get("status") == "failed":
                self.manifest.update(status="running", error=None, finished_at=None, seconds=None)
            self._write_manifest()

    def _swap_in(self, tmp: Path, final: Path) -> None:
        """Replace ``final`` by ``tmp``. A rename cannot replace a non-empty folder, so the old
        one is moved aside first; a crash in between leaves no ``final``, i.e. 'not done'."""
        old = None
        if final.exists():
            old = self.path / f".{final.name}.old-{uuid.uuid4().hex[:12]}"
            os.replace(final, old)
        os.replace(tmp, final)
        _fsync_dir(self.path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def _scan_stages(self) -> dict[str, Any]:
        stages: dict[str, Any] = {}
        for f in sorted(self.path.glob(f"*/{STAGE_FILE}")):
            info = json.loads(f.read_text())
            stages[f.parent.name] = {
                "key": info.get("key"),
                "seconds": info.get("seconds"),
                "finished_at": info.get("finished_at"),
                "outputs_hash": config_hash(info.get("outputs", {})),
            }
        return stages

    def _remove_leftovers(self) -> None:
        """Temp stage folders and temp files of an interrupted run are never valid outputs."""
        for pattern in (".*.tmp-*", ".*.old-*", ".*.tmp"):
            for p in self.path.glob(pattern):
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
