"""``hgrec serve`` and ``hgrec similar`` refuse what they cannot serve with one line and exit
code 2, as the command-line table of docs/serving.md ("Bad requests") says, row by row."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from hgrec.cli import main
from hgrec.serving.cli import add_serve_parser, check_serve_args
from hgrec.serving.security import ADMIN_TOKEN_ENV
from tests.serving.docs_tables import doc_table


def _run(folder: Path, status: str | None) -> Path:
    """A run folder whose manifest says ``status`` (None: no manifest at all)."""
    folder.mkdir(parents=True, exist_ok=True)
    if status is not None:
        (folder / "manifest.json").write_text(json.dumps({"status": status}))
    return folder


#: Docs row (command cell) -> (argv, the folder that RUN / DIR stands for) in ``tmp``.
SETUPS: dict[str, Callable[[Path], tuple[list[str], Path]]] = {
    "`hgrec serve --run RUN` on a run whose manifest says `running`":
        lambda tmp: (["serve", "--run", str(_run(tmp / "r", "running"))], tmp / "r"),
    "`hgrec serve --run DIR` on a folder without `manifest.json`":
        lambda tmp: (["serve", "--run", str(_run(tmp / "d", None))], tmp / "d"),
    "hgrec serve --run RUN --threads 0":
        lambda tmp: (["serve", "--run", str(_run(tmp / "r", "complete")), "--threads", "0"], tmp / "r"),
    "hgrec serve --run RUN --admin-token short":
        lambda tmp: (["serve", "--run", str(_run(tmp / "r", "complete")), "--admin-token", "short"], tmp / "r"),
    "hgrec serve --run RUN --workers 0":
        lambda tmp: (["serve", "--run", str(_run(tmp / "r", "complete")), "--workers", "0"], tmp / "r"),
    "hgrec serve --run RUN --workers 2 --admin-token 0123456789abcdef":
        lambda tmp: (["serve", "--run", str(_run(tmp / "r", "complete")), "--workers", "2",
                      "--admin-token", "0123456789abcdef"], tmp / "r"),
    "hgrec serve --run RUN --max-batch 0":
        lambda tmp: (["serve", "--run", str(_run(tmp / "r", "complete")), "--max-batch", "0"], tmp / "r"),
    "`hgrec similar ITEM --run RUN` on a run whose manifest says `running`":
        lambda tmp: (["similar", "k0_1", "--run", str(_run(tmp / "r", "running"))], tmp / "r"),
}
ROWS = doc_table("command")


@pytest.fixture(autouse=True)
def never_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    """A check that lets a command through must not start a server that never returns."""
    import uvicorn

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("uvicorn.run was reached")

    monkeypatch.setattr(uvicorn, "run", refuse)
    monkeypatch.delenv(ADMIN_TOKEN_ENV, raising=False)


def test_docs_table_lists_every_setup() -> None:
    assert [row[0] for row in ROWS] == list(SETUPS)


@pytest.mark.parametrize("command, message", ROWS, ids=[f"row{i}" for i in range(len(ROWS))])
def test_cli_error_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str,
                               message: str) -> None:
    argv, folder = SETUPS[command](tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.strip() == message.replace("RUN", str(folder)).replace("DIR", str(folder))


@pytest.mark.parametrize("status", ["failed", None])
def test_similar_refuses_unfinished_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         status: str | None) -> None:
    run = _run(tmp_path / "r", status)
    assert main(["similar", "k0_1", "--run", str(run)]) == 2
    assert capsys.readouterr().err.startswith("hgrec similar: error: ")


def _args(argv: list[str]):  # type: ignore[no-untyped-def]
    import argparse

    return add_serve_parser(argparse.ArgumentParser().add_subparsers()).parse_args(argv)


def test_serve_defaults(tmp_path: Path) -> None:
    run = _run(tmp_path / "runs" / "run-a", "complete")
    token, root, hosts = check_serve_args(_args(["--run", str(run)]), {})
    assert token is None and root == (tmp_path / "runs").resolve()
    assert hosts == ("localhost", "127.0.0.1", "::1")
    token, root, hosts = check_serve_args(
        _args(["--run", str(run), "--host", "0.0.0.0", "--runs-root", str(tmp_path),
               "--allowed-hosts", "recs.example"]),
        {ADMIN_TOKEN_ENV: "env-token-0123456789"},
    )
    assert token == "env-token-0123456789" and root == tmp_path.resolve() and hosts == ("recs.example",)


def test_serve_refuses_a_short_token_from_the_environment(tmp_path: Path) -> None:
    from hgrec.errors import UserError

    run = _run(tmp_path / "r", "complete")
    with pytest.raises(UserError, match=ADMIN_TOKEN_ENV):
        check_serve_args(_args(["--run", str(run)]), {ADMIN_TOKEN_ENV: "short"})


def test_similar_still_answers_a_complete_run(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["similar", "k1_3", "--run", str(run_dir), "-k", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("k1_3 [kitchen]") and len(lines) == 4


@pytest.mark.parametrize("argv, match", [
    (["--workers", "65"], "--workers 65: expected 1 to 64"),
    (["--batch-window-ms", "-1"], "--batch-window-ms -1: expected 0 to 100"),
    (["--batch-window-ms", "101"], "--batch-window-ms 101: expected 0 to 100"),
])
def test_serve_refuses_bad_worker_and_batch_settings(tmp_path: Path, argv: list[str], match: str) -> None:
    from hgrec.errors import UserError

    run = _run(tmp_path / "r", "complete")
    with pytest.raises(UserError, match=match):
        check_serve_args(_args(["--run", str(run), *argv]), {})


def test_workers_start_uvicorn_with_the_worker_factory(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--workers 2``: uvicorn gets the factory and the settings travel in the environment;
    a worker built from them serves the run without an admin route."""
    import uvicorn
    from fastapi.testclient import TestClient

    from hgrec.serving.cli import WORKER_ENV, worker_app

    calls: list[tuple[tuple[object, ...], dict[str, object]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: calls.append((a, kw)))
    monkeypatch.delenv(WORKER_ENV, raising=False)
    assert main(["serve", "--run", str(run_dir), "--workers", "2", "--max-batch", "8",
                 "--batch-window-ms", "0.5"]) == 0
    (args, kwargs), = calls
    assert args == ("hgrec.serving.cli:worker_app",)
    assert kwargs["factory"] is True and kwargs["workers"] == 2 and kwargs["host"] == "127.0.0.1"
    settings = json.loads(__import__("os").environ[WORKER_ENV])
    assert settings["max_batch"] == 8 and settings["batch_window"] == 0.0005
    app = worker_app()
    assert app.state.batcher.max_batch == 8 and app.state.batcher.window == 0.0005
    with TestClient(app) as c:
        assert c.get("/healthz", headers={"Host": "localhost"}).json()["run_id"] == "run-a"
        assert c.post("/admin/reload", headers={"Host": "localhost"}).status_code == 404
