"""Admin token, runs root, allowed hosts, and no file-system paths in any public answer."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hgrec.errors import UserError
from hgrec.serving.app import RELOAD_REFUSED, StateHolder, create_app
from hgrec.serving.security import (
    ADMIN_TOKEN_ENV,
    admin_token,
    confine,
    default_allowed_hosts,
    host_of,
    parse_allowed_hosts,
    runs_root,
    token_matches,
)
from hgrec.serving.state import ServingState
from tests.serving.conftest import ADMIN_TOKEN, AUTH, TEST_HOSTS
from tests.serving.runs import make_run

TOKEN = "s3cret-token-0123456789"


# ---------------------------------------------------------------------- admin token


@pytest.mark.parametrize("given, env, expected", [
    (None, {}, None),
    (None, {ADMIN_TOKEN_ENV: ""}, None),
    (None, {ADMIN_TOKEN_ENV: TOKEN}, TOKEN),
    (TOKEN, {ADMIN_TOKEN_ENV: "another-token-0123456789"}, TOKEN),  # the flag wins
])
def test_admin_token_sources(given: str | None, env: dict[str, str], expected: str | None) -> None:
    assert admin_token(given, env) == expected


@pytest.mark.parametrize("bad", ["short", "x" * 513, "has a space in it 0123", "ünïcode-token-0123456"])
def test_admin_token_must_be_long_printable_ascii(bad: str) -> None:
    with pytest.raises(UserError, match="expected 16 to 512 printable ASCII"):
        admin_token(bad, {})
    with pytest.raises(UserError, match=ADMIN_TOKEN_ENV):
        admin_token(None, {ADMIN_TOKEN_ENV: bad})


@pytest.mark.parametrize("header, ok", [
    (f"Bearer {TOKEN}", True), (f"bearer {TOKEN}", True), (f"  Bearer   {TOKEN} ", True),
    (None, False), ("", False), (TOKEN, False), (f"Basic {TOKEN}", False),
    (f"Bearer {TOKEN}x", False), (f"Bearer {TOKEN[:-1]}", False), ("Bearer é", False),
])
def test_token_matches(header: str | None, ok: bool) -> None:
    assert token_matches(header, TOKEN) is ok


def test_admin_needs_the_token(admin_client: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer nope-nope-nope-nope"}, {"Authorization": ADMIN_TOKEN},
                    {"Cookie": f"token={ADMIN_TOKEN}"}):
        r = admin_client.post("/admin/reload", headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    r = admin_client.post("/admin/reload", headers=AUTH)  # no body: the served path again
    assert r.status_code == 200 and r.json()["run_id"] == "run-a"


def test_cross_origin_form_post_cannot_reload(admin_client: TestClient) -> None:
    """What any web page can send: a simple POST (no preflight), no body, its own Origin."""
    r = admin_client.post("/admin/reload", headers={"Origin": "https://evil.example",
                                                    "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 401
    assert "access-control-allow-origin" not in r.headers
    preflight = admin_client.options("/admin/reload", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization"})
    assert preflight.status_code >= 400 and "access-control-allow-origin" not in preflight.headers


def test_admin_route_documented_only_when_on(client: TestClient, admin_client: TestClient) -> None:
    assert "/admin/reload" not in client.get("/openapi.json").json()["paths"]
    responses = admin_client.get("/openapi.json").json()["paths"]["/admin/reload"]["post"]["responses"]
    assert {"200", "400", "401", "413", "422"} <= set(responses)


# ---------------------------------------------------------------------- runs root


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    (tmp_path / "runs" / "run-x").mkdir(parents=True)
    (tmp_path / "runs" / "nested" / "run-y").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "runs" / "escape").symlink_to(tmp_path / "outside")
    (tmp_path / "runs" / "current").symlink_to(tmp_path / "runs" / "run-x")
    return (tmp_path / "runs").resolve()


@pytest.mark.parametrize("run_dir, inside", [
    ("run-x", True), ("nested/run-y", True), ("current", True), ("run-x/../nested/run-y", True),
    ("escape", False), ("..", False), ("../outside", False), (".", False), ("", False),
    ("missing", False), ("run-x/\x00", False), ("/etc", False), ("run-x/../../outside", False),
])
def test_confine(root: Path, run_dir: str, inside: bool) -> None:
    got = confine(root, run_dir)
    assert (got is not None) is inside
    if inside:
        assert got == root / run_dir  # unresolved: a SIGHUP re-resolves a symlink


def test_confine_accepts_absolute_paths_inside(root: Path) -> None:
    assert confine(root, str(root / "run-x")) == root / "run-x"


def test_runs_root_defaults_to_the_folder_holding_the_run(tmp_path: Path) -> None:
    (tmp_path / "runs" / "run-x").mkdir(parents=True)
    (tmp_path / "runs" / "current").symlink_to(tmp_path / "runs" / "run-x")
    assert runs_root(None, tmp_path / "runs" / "current") == (tmp_path / "runs").resolve()
    assert runs_root(tmp_path, tmp_path / "runs" / "current") == tmp_path.resolve()
    with pytest.raises(UserError, match="not a folder"):
        runs_root(tmp_path / "missing", tmp_path / "runs" / "run-x")


def test_reload_outside_the_root_is_refused_alike(run_dir: Path, state: ServingState, tmp_path: Path) -> None:
    """An existing complete run outside the root and a missing path read the same, and a
    symlink inside the root pointing out of it does not help."""
    elsewhere = make_run(tmp_path / "run-elsewhere")
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(elsewhere)
    holder = StateHolder(run_dir, state=state)
    app = create_app(holder, admin_token=ADMIN_TOKEN, runs_root_dir=root, allowed_hosts=TEST_HOSTS)
    with TestClient(app) as c:
        answers = [c.post("/admin/reload", json={"run_dir": d}, headers=AUTH)
                   for d in (str(elsewhere), "../run-elsewhere", "link", "missing", "/etc")]
    assert {r.status_code for r in answers} == {422}
    assert {r.json()["detail"][0]["msg"] for r in answers} == {RELOAD_REFUSED}
    assert all(str(tmp_path) not in r.text for r in answers)
    assert holder.state.run_id == "run-a"


# ---------------------------------------------------------------------- no paths


def test_no_public_answer_names_a_path(client: TestClient, run_dir: Path) -> None:
    paths = [str(run_dir.resolve()), str(run_dir.parent.resolve()), str(run_dir.parent)]
    answers = [client.get(p) for p in ("/healthz", "/metadata", "/metrics", "/openapi.json",
                                       "/users/nobody/recommendations", "/items/zzz/similar")]
    answers.append(client.post("/recommend", json={"k": 3}))
    for r in answers:
        assert not any(p in r.text for p in paths), r.url
    assert client.get("/metadata").json()["run_id"] == "run-a"


# ---------------------------------------------------------------------- hosts


@pytest.mark.parametrize("header, host", [
    ("localhost", "localhost"), ("LocalHost:8000", "localhost"), ("127.0.0.1:80", "127.0.0.1"),
    ("[::1]:8000", "::1"), ("[::1]", "::1"), ("example.com.", "example.com"),
    (None, None), ("", None), ("a:b", None), ("[::1", None), ("[zz]:1", None),
    ("evil.com/x", None), ("user@localhost", None),
])
def test_host_of(header: str | None, host: str | None) -> None:
    assert host_of(header) == host


@pytest.mark.parametrize("bind, expected", [
    ("127.0.0.1", ("localhost", "127.0.0.1", "::1")),
    ("0.0.0.0", ("localhost", "127.0.0.1", "::1")),
    ("::", ("localhost", "127.0.0.1", "::1")),
    ("10.1.2.3", ("localhost", "127.0.0.1", "::1", "10.1.2.3")),
    ("Recs.Example.com", ("localhost", "127.0.0.1", "::1", "recs.example.com")),
])
def test_default_allowed_hosts(bind: str, expected: tuple[str, ...]) -> None:
    assert default_allowed_hosts(bind) == expected


def test_parse_allowed_hosts() -> None:
    assert parse_allowed_hosts(" a.example, [::1] ,B.example") == ("a.example", "::1", "b.example")
    with pytest.raises(UserError, match="no host names"):
        parse_allowed_hosts(" , ")


@pytest.mark.parametrize("allowed, host, status", [
    (("localhost",), "localhost:8000", 200), (("localhost",), "evil.example", 400),
    (("localhost",), "evil.example:8000", 400), (("::1",), "[::1]:8000", 200),
    (("recs.example",), "RECS.example", 200), (("*",), "anything.example", 200),
])
def test_allowed_hosts(run_dir: Path, state: ServingState, allowed: tuple[str, ...], host: str,
                       status: int) -> None:
    app = create_app(StateHolder(run_dir, state=state), allowed_hosts=allowed)
    with TestClient(app) as c:
        r = c.get("/healthz", headers={"host": host})
    assert r.status_code == status
    if status == 400:
        assert "Host header" in r.json()["detail"]


def test_default_app_answers_loopback_names_only(run_dir: Path, state: ServingState) -> None:
    app = create_app(StateHolder(run_dir, state=state))
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/healthz", headers={"host": "attacker.example"}).status_code == 400
