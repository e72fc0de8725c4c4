"""Switching runs: the new state is loaded fully, then swapped; requests in flight succeed.

Reloads over HTTP need the admin token and stay inside the runs root; SIGHUP needs neither.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from hgrec.errors import UserError
from hgrec.serving.app import RELOAD_REFUSED, RUN_HEADER, StateHolder, create_app, install_sighup
from hgrec.serving.security import is_loopback
from tests.serving.conftest import ADMIN_TOKEN, AUTH
from tests.serving.runs import make_run


@pytest.fixture(scope="module")
def run_b(run_dir: Path) -> Path:
    """A second run next to ``run_dir``, so inside the default runs root."""
    return make_run(run_dir.parent / "run-b", seed=1, title_tag=" (b)")


def _admin_app(run_dir: Path) -> tuple[StateHolder, httpx.ASGITransport]:
    holder = StateHolder(run_dir)
    app = create_app(holder, admin_token=ADMIN_TOKEN)
    return holder, httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))


@pytest.mark.parametrize("host, expected", [("127.0.0.1", True), ("127.0.0.9", True), ("::1", True),
                                            ("localhost", True), ("10.0.0.1", False),
                                            ("testclient", False), (None, False)])
def test_is_loopback(host: str | None, expected: bool) -> None:
    assert is_loopback(host) is expected


def test_reload_under_concurrent_requests(run_dir: Path, run_b: Path) -> None:
    holder, transport = _admin_app(run_dir)

    async def scenario() -> tuple[list[httpx.Response], httpx.Response]:
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
            body = {"history": [{"item_id": "k0_1"}, {"item_id": "k0_2"}], "k": 5}
            requests = [c.post("/recommend", json=body) for _ in range(150)]
            reload = c.post("/admin/reload", json={"run_dir": run_b.name}, headers=AUTH)
            results = await asyncio.gather(*requests[:75], reload, *requests[75:])
            after = await c.post("/recommend", json=body)
            return [*results[:75], *results[76:], after], results[75]

    responses, reload_response = asyncio.run(scenario())
    assert reload_response.status_code == 200, reload_response.text
    assert reload_response.json()["previous_run_id"] == "run-a"
    assert reload_response.json()["run_id"] == "run-b"
    assert all(r.status_code == 200 for r in responses)
    assert responses[-1].headers[RUN_HEADER] == "run-b"  # sent after the swap
    # Every response is consistent with one run: its header and its titles agree.
    for r in responses:
        run = r.headers[RUN_HEADER]
        assert run in ("run-a", "run-b") and r.json()["run_id"] == run
        tagged = [it["title"].endswith(" (b)") for it in r.json()["items"]]
        assert all(tagged) if run == "run-b" else not any(tagged)
    assert holder.state.run_id == "run-b"


def test_failed_reload_keeps_serving_and_names_no_path(run_dir: Path, tmp_path: Path) -> None:
    holder, transport = _admin_app(run_dir)
    unfinished = make_run(run_dir.parent / "run-unfinished")
    (unfinished / "manifest.json").write_text('{"status": "running"}')

    async def scenario() -> tuple[list[httpx.Response], httpx.Response]:
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
            bad = [await c.post("/admin/reload", json={"run_dir": d}, headers=AUTH)
                   for d in ("missing", unfinished.name, str(tmp_path), "../", "/etc")]
            ok = await c.post("/recommend", json={"k": 2})
            return bad, ok

    bad, ok = asyncio.run(scenario())
    for r in bad:
        assert r.status_code == 422
        assert r.json()["detail"] == [{"loc": ["body", "run_dir"], "msg": RELOAD_REFUSED,
                                       "type": "value_error"}]
        assert str(run_dir.parent) not in r.text and "manifest" not in r.text
    assert ok.status_code == 200 and ok.json()["run_id"] == "run-a"
    assert holder.state.run_id == "run-a"


def test_incomplete_run_is_refused(run_dir: Path, tmp_path: Path) -> None:
    bad = make_run(tmp_path / "run-c")
    (bad / "manifest.json").write_text('{"status": "running"}')
    holder = StateHolder(run_dir)
    with pytest.raises(UserError, match="expected 'complete'"):
        holder.reload(bad)
    assert holder.state.run_id == "run-a"


def test_sighup_switches_the_symlinked_run(run_dir: Path, run_b: Path, tmp_path: Path) -> None:
    link = tmp_path / "current"
    link.symlink_to(run_dir)
    holder = StateHolder(link)
    assert holder.state.run_id == "run-a"
    previous = signal.getsignal(signal.SIGHUP)
    try:
        install_sighup(holder)
        link.unlink()
        link.symlink_to(run_b)  # the deploy step: move the link, then SIGHUP
        os.kill(os.getpid(), signal.SIGHUP)
        deadline = time.monotonic() + 20
        while holder.state.run_id != "run-b" and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert holder.state.run_id == "run-b"
