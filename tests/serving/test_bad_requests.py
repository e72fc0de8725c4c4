"""Every bad request of docs/serving.md ("Bad requests") gets the status and message the docs
say, and the limits table there equals :mod:`hgrec.serving.limits`; docs and code cannot drift.

Also: a lone surrogate against a real uvicorn server leaves the keep-alive connection usable.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from hgrec.serving import limits
from hgrec.serving.app import StateHolder, create_app
from hgrec.serving.state import ServingState
from tests.serving.conftest import AUTH, TEST_HOSTS
from tests.serving.docs_tables import doc_table

JSON = {"content-type": "application/json"}
Send = Callable[[TestClient, TestClient], httpx.Response]


def _raw(path: str, body: bytes, headers: dict[str, str] | None = None) -> Send:
    return lambda c, admin: (admin if headers is AUTH else c).post(
        path, content=body, headers={**JSON, **(headers or {})})


def _post(body: object) -> Send:
    return lambda c, admin: c.post("/recommend", json=body)


def _admin(body: object, headers: dict[str, str] | None = AUTH) -> Send:
    return lambda c, admin: admin.post("/admin/reload", json=body, headers=headers)


def _get(path: str, **kwargs: object) -> Send:
    return lambda c, admin: c.get(path, **kwargs)  # type: ignore[arg-type]


def _chunked(size: int) -> Send:
    def send(c: TestClient, admin: TestClient) -> httpx.Response:
        chunks = iter([b'{"user":{"bio":"'] + [b"x" * 65536] * (size // 65536) + [b'"}}'])
        return c.post("/recommend", content=chunks, headers=JSON)
    return send


BIG = b'{"user":{"bio":"' + b"x" * 5_000_000 + b'"}}'
#: How each case of the docs table is sent: (plain client, admin client) -> answer.
CASES: dict[str, Send] = {
    "lone-surrogate-item": _raw("/recommend", rb'{"history":[{"item_id":"\ud800"}]}'),
    "lone-surrogate-user-key": _raw("/recommend", rb'{"user":{"\udc00":"SE"}}'),
    "lone-surrogate-run-dir": _raw("/admin/reload", rb'{"run_dir":"\ud800"}', AUTH),
    "oversize-body": _raw("/recommend", BIG),
    "oversize-chunked-body": _chunked(5_000_000),
    "long-user-value": _post({"user": {"bio": "x" * 201}}),
    "long-user-key": _post({"user": {"x" * 65: 1}}),
    "many-user-fields": _post({"user": {f"f{i}": i for i in range(33)}}),
    "long-item-id": _post({"history": [{"item_id": "x" * 201}]}),
    "long-history": _post({"history": [{"item_id": "k0_1"}] * 501}),
    "k-true": _post({"k": True}),
    "k-string": _post({"k": "10"}),
    "k-zero": _post({"k": 0}),
    "k-over": _post({"k": 1001}),
    "exclude-seen-string": _post({"exclude_seen": "yes"}),
    "nan-timestamp": _raw("/recommend", b'{"history":[{"item_id":"k0_1","timestamp":NaN}]}'),
    "infinite-timestamp": _raw("/recommend", b'{"history":[{"item_id":"k0_1","timestamp":Infinity}]}'),
    "some-timestamps": _post({"history": [{"item_id": "k0_1", "timestamp": 1.0}, {"item_id": "k0_2"}]}),
    "unknown-item": _post({"history": [{"item_id": "nope"}]}),
    "unknown-item-type": _post({"item_type": "books"}),
    "unknown-event": _post({"history": [{"item_id": "k0_1", "event": "teleport"}]}),
    "extra-field": _post({"history": [{"item_id": "k0_1", "colour": "red"}]}),
    "not-json": _raw("/recommend", b'{"k":'),
    "huge-integer": _raw("/recommend", b'{"k":1' + b"0" * 5000 + b"}"),
    "unknown-user": _get("/users/nobody/recommendations"),
    "long-user-id": _get(f"/users/{'x' * 201}/recommendations"),
    "unknown-similar-item": _get("/items/zzz/similar"),
    "empty-search": _get("/items/search", params={"q": ""}),
    "long-search": _get("/items/search", params={"q": "x" * 201}),
    "bad-host": _get("/healthz", headers={"host": "evil.example"}),
    "admin-off": lambda c, admin: c.post("/admin/reload", json={}, headers=AUTH),
    "reload-without-token": _admin({}, headers=None),
    "reload-wrong-token": _admin({}, headers={"Authorization": "Bearer wrong-token-0123456789"}),
    "reload-cross-origin": lambda c, admin: admin.post(
        "/admin/reload", headers={"Origin": "https://evil.example", "Content-Type": "text/plain"}),
    "reload-outside-root": _admin({"run_dir": "../"}),
    "reload-absolute-outside-root": _admin({"run_dir": "/etc"}),
    "reload-missing-run": _admin({"run_dir": "no-such-run"}),
    "wrong-method": _get("/recommend"),
}
ROWS = doc_table("case")


def answer(r: httpx.Response) -> str:
    """What the docs quote: ``detail``, or the first error's ``msg`` of a 422."""
    detail = r.json().get("detail")
    return detail[0]["msg"] if isinstance(detail, list) else str(detail)


def test_docs_table_lists_every_case() -> None:
    assert [row[0] for row in ROWS] == list(CASES)


@pytest.mark.parametrize("case, request_text, status, expected", ROWS, ids=[r[0] for r in ROWS])
def test_bad_request_gets_what_the_docs_say(
    client: TestClient, admin_client: TestClient, case: str, request_text: str, status: str,
    expected: str,
) -> None:
    r = CASES[case](client, admin_client)
    assert r.status_code == int(status), r.text[:300]
    assert r.headers["content-type"] == "application/json"
    if r.status_code == 200:
        assert expected in r.text
    else:
        assert answer(r) == expected, r.text[:300]
    # The client connection still works after any of them.
    assert client.get("/healthz").status_code == 200


def test_limits_table_matches_the_code() -> None:
    documented = {name: int(value) for name, value, _ in doc_table("limit")}
    constants = {k: v for k, v in vars(limits).items() if k.startswith(("MAX_", "MIN_"))}
    assert documented == dict(limits.LIMITS) == constants


@pytest.mark.parametrize("field, body", [
    ("item_id", rb'{"history":[{"item_id":"\ud800"}]}'),
    ("event", rb'{"history":[{"item_id":"k0_1","event":"a\udfffb"}]}'),
    ("item_type", rb'{"item_type":"\ud83d"}'),
    ("user key", rb'{"user":{"\ud800":1}}'),
    ("user value", rb'{"user":{"country":"S\udc00E"}}'),
])
def test_every_string_field_refuses_lone_surrogates(client: TestClient, field: str, body: bytes) -> None:
    r = client.post("/recommend", content=body, headers=JSON)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["type"] == "string_unicode"
    r.content.decode("ascii")  # error bodies are ASCII: any input can be described
    assert client.post("/recommend", json={"k": 1}).status_code == 200


def test_a_paired_surrogate_is_ordinary_text(client: TestClient) -> None:
    # "\ud83d\ude00" is one character (an emoji): valid Unicode, just an unknown item.
    r = client.post("/recommend", content=rb'{"history":[{"item_id":"\ud83d\ude00"}]}', headers=JSON)
    assert r.status_code == 200 and r.json()["unknown_items"] == ["\U0001F600"]


def test_echoed_inputs_are_cut(client: TestClient) -> None:
    r = client.post("/recommend", json={"history": [{"item_id": "y" * 10_000}]})
    echoed = r.json()["detail"][0]["input"]
    assert r.status_code == 422 and len(echoed) == limits.MAX_ECHO + 1 and echoed.endswith("…")


# ---------------------------------------------------------------------- a real server


@pytest.fixture(scope="module")
def server_port(run_dir: Path, state: ServingState) -> Iterator[int]:
    """A real uvicorn server on a free loopback port, in a background thread."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    app = create_app(StateHolder(run_dir, state=state), allowed_hosts=TEST_HOSTS)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield sock.getsockname()[1]
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def test_lone_surrogate_keeps_the_keep_alive_connection(server_port: int) -> None:
    """The raw bytes go over one HTTP/1.1 connection; the next request on it is answered."""
    conn = http.client.HTTPConnection("127.0.0.1", server_port, timeout=10)
    try:
        conn.request("POST", "/recommend", body=rb'{"history":[{"item_id":"\ud800"}]}', headers=JSON)
        first = conn.getresponse()
        body = json.loads(first.read())
        assert first.status == 422 and body["detail"][0]["loc"] == ["body", "history", 0, "item_id"]
        assert first.getheader("connection") != "close"
        sock = conn.sock
        conn.request("POST", "/recommend", body=b'{"k":2}', headers=JSON)
        second = conn.getresponse()
        assert second.status == 200 and len(json.loads(second.read())["items"]) == 2
        assert conn.sock is sock  # the same connection, not a new one
    finally:
        conn.close()
