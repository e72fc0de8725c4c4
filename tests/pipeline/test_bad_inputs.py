"""Every bad input of docs/reliability.md gets its documented one-line message, exit code 2.

The table in docs/reliability.md is the list of cases: each row's id names a setup below
(:data:`CASES`), and its message is the line ``hgrec run`` must print, with ``DIR`` standing
for the case's folder and `` ... `` for an elided part. A row without a setup, or a setup
without a row, fails :func:`test_docs_and_cases_agree`, so the page and the code cannot drift.
Every case fails before any training: the whole file runs in seconds.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

from hgrec.cli import main
from hgrec.datasets.synthetic import write_synthetic

DOC = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
TARGET = "audiobook"  # the synthetic data's target type


@dataclass(frozen=True)
class Documented:
    when: str  # "before": nothing written; "load": the run folder says failed, with the reason
    message: str


def documented_cases() -> dict[str, Documented]:
    """Case id -> its row of the table in docs/reliability.md."""
    rows: dict[str, Documented] = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\| `([a-z0-9-]+)` \|.*\| (before|load) \| (`+) (.+) \3 \|$", line)
        if m:
            assert m.group(1) not in rows, f"case {m.group(1)} documented twice"
            rows[m.group(1)] = Documented(m.group(2), m.group(4))
    return rows


@dataclass(frozen=True)
class Case:
    """What a setup gets: its own folder (``DIR`` in the docs) and the tiny dataset's files."""

    dir: Path
    data: Path

    def config(self, sections: dict[str, object] | None = None, text: str | None = None) -> str:
        """A config file: the synthetic dataset plus ``sections`` (or exactly ``text``)."""
        path = self.dir / "config.yaml"
        if text is None:
            base: dict[str, object] = {
                "runtime": {"progress": False, "threads": 1},
                "data": {"adapter": "synthetic", "path": str(self.data)},
            }
            for name, section in (sections or {}).items():
                merged = {**base.get(name, {}), **section}  # type: ignore[dict-item]
                base[name] = merged
            text = yaml.safe_dump(base)
        path.write_text(text)
        return str(path)

    def run(self, *flags: str, config: str | None = None) -> list[str]:
        """``hgrec run`` argv into ``DIR/run``."""
        out = [] if "--out" in flags else ["--out", str(self.dir / "run")]
        return ["run", "--config", config or self.config(), *out, *flags]

    def table(self, role: str) -> pd.DataFrame:
        return pd.read_csv(self.data / f"{role}.csv", dtype=str, keep_default_na=False)

    def write(self, df: pd.DataFrame, name: str) -> Path:
        path = self.dir / name
        df.to_csv(path, sep="\t" if name.endswith(".tsv") else ",", index=False)
        return path

    def canonical(
        self, items: Path | None = None, interactions: Path | None = None, *extra: str
    ) -> list[str]:
        """``hgrec run`` on canonical files (default: the tiny dataset's) for the target type."""
        return self.run(
            "--items", str(items or self.data / "items.csv"),
            "--interactions", str(interactions or self.data / "interactions.csv"),
            *extra,
        )


def _non_utf8_title(case: Case, name: str) -> list[str]:
    """The third item's title in Latin-1 ('Café'), the rest UTF-8."""
    path = case.write(case.table("items"), name)
    lines = path.read_bytes().split(b"\n")
    sep = b"\t" if name.endswith(".tsv") else b","
    cells = lines[3].split(sep)
    cells[2] = "Café crème".encode("latin-1")
    lines[3] = sep.join(cells)
    path.write_bytes(b"\n".join(lines))
    return case.canonical(path, None, "--target-type", TARGET)


def _mutated(
    role: str, change: Callable[[pd.DataFrame], pd.DataFrame]
) -> Callable[[Case], list[str]]:
    """A canonical run whose ``role`` table is ``change``-d (written as DIR/<role>.csv)."""

    def setup(case: Case) -> list[str]:
        path = case.write(change(case.table(role)), f"{role}.csv")
        if role == "users":
            return case.canonical(None, None, "--users", str(path), "--target-type", TARGET)
        items = path if role == "items" else None
        inter = path if role == "interactions" else None
        return case.canonical(items, inter, "--target-type", TARGET)

    return setup


def _set(column: str, row: int, value: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Set data row ``row`` (1 = first after the header) of ``column``."""

    def change(df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        if column not in df.columns:
            df[column] = "1"
        df.loc[row - 1, column] = value
        return df

    return change


def _synthetic_without_meta(case: Case) -> list[str]:
    folder = case.dir / "data"
    shutil.copytree(case.data, folder)
    (folder / "meta.json").unlink()
    return case.run(config=case.config({"data": {"path": str(folder)}}))


def _fresh_on_a_folder(case: Case) -> list[str]:
    (case.dir / "notes").mkdir()
    (case.dir / "notes" / "keep.txt").write_text("mine")
    return case.run("--fresh", "--out", str(case.dir / "notes"))


def _out_is_a_file(case: Case) -> list[str]:
    (case.dir / "results.txt").write_text("mine")
    return case.run("--out", str(case.dir / "results.txt"))


CASES: dict[str, Callable[[Case], list[str]]] = {
    # --- the config file and flags
    "config-missing": lambda c: c.run(config=str(c.dir / "nope.yaml")),
    "yaml-syntax": lambda c: c.run(config=c.config(text="runtime: {seed: 0\ndata: [\n")),
    "config-not-a-mapping": lambda c: c.run(config=c.config(text="- runtime\n- data\n")),
    "section-not-a-mapping": lambda c: c.run(config=c.config(text="data: synthetic\n")),
    "unknown-key": lambda c: c.run(config=c.config({"hgnn": {"marign": 0.3}})),
    "seed-in-config": lambda c: c.run(config=c.config({"runtime": {"seed": 2**32}})),
    "seed-flag": lambda c: c.run("--seed", "-1"),
    "temperature-zero": lambda c: c.run(config=c.config({"two_tower": {"temperature": 0}})),
    "temperature-negative": lambda c: c.run(config=c.config({"two_tower": {"temperature": -0.1}})),
    "layers-empty": lambda c: c.run(config=c.config({"two_tower": {"layers": []}})),
    "baseline-unknown": lambda c: c.run(
        config=c.config({"baselines": {"enabled": ["popularity", "bpr"]}})
    ),
    "baseline-twice": lambda c: c.run(
        config=c.config({"baselines": {"enabled": ["ease", "popularity", "ease"]}})
    ),
    "grid-empty": lambda c: c.run(config=c.config({"baselines": {"itemknn": {"neighbors": []}}})),
    "hgnn-w-users-params": lambda c: c.run(
        config=c.config({"baselines": {"hgnn_w_users": {"params": {"lr": 0}}}})
    ),
    "fanout-zero": lambda c: c.run(config=c.config({"hgnn": {"model": {"fanouts": [25, 0]}}})),
    "fractions": lambda c: c.run(
        config=c.config({"data": {"valid_fraction": 0.5, "test_fraction": 0.5}})
    ),
    "text-model": lambda c: c.run(config=c.config({"features": {"text_model": "no-such-model"}})),
    "device": lambda c: c.run(config=c.config({"runtime": {"device": "gpu"}})),
    "adapter-unknown": lambda c: c.run(config=c.config({"data": {"adapter": "movielens"}})),
    "canonical-without-target-type": lambda c: c.canonical(),
    "synthetic-without-path": lambda c: c.run(
        config=c.config(text="data: {adapter: synthetic}\n")
    ),
    "synthetic-without-target-type": _synthetic_without_meta,
    "data-path-missing": lambda c: c.run(config=c.config({"data": {"path": str(c.dir / "nope")}})),
    "items-file-missing": lambda c: c.canonical(c.dir / "items.csv", None, "--target-type", TARGET),
    "items-extension": lambda c: c.canonical(c.dir / "items.xlsx", None, "--target-type", TARGET),
    # --- the run folder
    "out-is-a-file": _out_is_a_file,
    "fresh-on-a-folder-that-is-not-a-run": _fresh_on_a_folder,
    "reuse-hgnn-not-a-run": lambda c: c.run("--reuse-hgnn", str(c.dir)),
    # --- the data
    "items-not-utf8-csv": lambda c: _non_utf8_title(c, "items.csv"),
    "items-not-utf8-tsv": lambda c: _non_utf8_title(c, "items.tsv"),
    "items-missing-column": _mutated("items", lambda df: df.drop(columns="title")),
    "items-duplicate-id": _mutated("items", _set("item_id", 4, "i0")),
    "items-empty-type": _mutated("items", _set("item_type", 2, "")),
    "target-type-unknown": lambda c: c.canonical(None, None, "--target-type", "ebook"),
    "interactions-empty": _mutated("interactions", lambda df: df.iloc[:0]),
    "interactions-missing-column": _mutated("interactions", lambda df: df.drop(columns="item_id")),
    "interactions-no-order": _mutated("interactions", lambda df: df.drop(columns="position")),
    "interactions-unknown-item": _mutated("interactions", _set("item_id", 7, "i999")),
    "interactions-bad-position": _mutated("interactions", _set("position", 3, "third")),
    "weight-nan": _mutated("interactions", _set("weight", 5, "NaN")),
    "weight-text": _mutated("interactions", _set("weight", 5, "heavy")),
    "weight-negative": _mutated("interactions", _set("weight", 6, "-1")),
    "users-unknown-split": _mutated("users", _set("split", 2, "training")),
    "graph-events-unknown": lambda c: c.run(config=c.config({"graph": {"events": ["play"]}})),
}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny") / "data"
    write_synthetic(
        folder, 400, n_users=40, n_items=60, n_topics=4, fmt="csv", seed=0, progress=False
    )
    return folder


def test_docs_and_cases_agree() -> None:
    documented = documented_cases()
    assert set(documented) == set(CASES), (
        f"documented only: {sorted(set(documented) - set(CASES))}; "
        f"tested only: {sorted(set(CASES) - set(documented))}"
    )


def _matches(line: str, documented: str) -> bool:
    """``documented`` is ``line``, where each `` ... `` of it stands for any text."""
    pattern = ".*".join(re.escape(part) for part in documented.split(" ... "))
    return re.fullmatch(pattern, line) is not None


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_gets_its_documented_message(
    name: str,
    data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # a relative text model is looked for here
    case = Case(tmp_path, data)
    argv = CASES[name](case)
    doc = documented_cases()[name]
    capsys.readouterr()  # only what main prints
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    expected = doc.message.replace("DIR", str(tmp_path))
    assert _matches(lines[0], expected), f"\n got: {lines[0]}\nwant: {expected}"
    run = tmp_path / "run"
    if doc.when == "before":  # nothing written, nothing deleted
        assert not run.exists()
        if name == "fresh-on-a-folder-that-is-not-a-run":
            assert (tmp_path / "notes" / "keep.txt").read_text() == "mine"
            assert not (tmp_path / "notes" / "manifest.json").exists()
    else:  # found while loading: the run says it failed, and why
        manifest = json.loads((run / "manifest.json").read_text())
        assert manifest["status"] == "failed"
        assert manifest["error"]["stage"] == "load"
        assert lines[0] == f"hgrec run: error: {manifest['error']['message']}"
        assert not (run / "data").exists()  # no stage ran
