"""``GET /metrics``: Prometheus text exposition 0.0.4, counts per route and status (errors
included), latency histograms, the tower / index / explain split."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hgrec.serving.app import StateHolder, create_app
from hgrec.serving.errors import INTERNAL_ERROR
from hgrec.serving.metrics import LATENCY_BUCKETS, Metrics, escape_label, parse_text
from hgrec.serving.state import ServingState, Timings
from tests.serving.conftest import TEST_HOSTS

_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(rf"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{{{_LABEL}(?:,{_LABEL})*\}})? (\S+)$")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def check_exposition(text: str) -> dict[str, str]:
    """Every line is a HELP/TYPE comment or a well-formed sample of a declared family;
    returns family -> type."""
    assert text.endswith("\n")
    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in TYPES and name not in types
            types[name] = kind
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        name = m.group(1)
        family = next((f for f in types if name == f or name in (f + "_bucket", f + "_sum", f + "_count")), None)
        assert family is not None, f"{name} has no # TYPE line before it"
        float(m.group(3).replace("Inf", "inf"))
    return types


@pytest.fixture()
def fresh(run_dir: Path, state: ServingState) -> TestClient:
    """An app with its own counters, and a route that fails (a 500 to count)."""
    app = create_app(StateHolder(run_dir, state=state), allowed_hosts=TEST_HOSTS)

    def boom() -> None:
        raise RuntimeError("/secret/path/that/must/not/leak")

    app.add_api_route("/boom", boom)
    return TestClient(app, raise_server_exceptions=False)


def _count(samples: dict[str, float], route: str, method: str, status: int) -> float:
    return samples.get(f'hgrec_http_requests_total{{route="{route}",method="{method}",status="{status}"}}', 0)


def test_metrics_format_and_counts(fresh: TestClient) -> None:
    c = fresh
    assert c.post("/recommend", json={"k": 2}).status_code == 200
    assert c.post("/recommend", json={"k": True}).status_code == 422
    assert c.get("/items/k0_1/similar").status_code == 200
    assert c.get("/items/zzz/similar").status_code == 404
    assert c.get("/items/k0_1/similar?k=0").status_code == 422
    assert c.get("/items/search", params={"q": "tool"}).status_code == 200
    assert c.get("/items/search", params={"q": ""}).status_code == 422
    assert c.get("/no/such/path").status_code == 404
    assert c.get("/healthz", headers={"host": "evil.example"}).status_code == 400
    assert c.post("/recommend", content=b"x" * 2_000_000, headers={"content-type": "application/json"}).status_code == 413
    boom = c.get("/boom")
    assert boom.status_code == 500 and boom.json() == {"detail": INTERNAL_ERROR}

    r = c.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    types = check_exposition(r.text)
    assert types == {"hgrec_http_requests_total": "counter",
                     "hgrec_http_request_duration_seconds": "histogram",
                     "hgrec_recommend_stage_seconds": "summary", "hgrec_run_info": "gauge",
                     "hgrec_recommend_batches_total": "counter",
                     "hgrec_recommend_batched_requests_total": "counter"}
    s = parse_text(r.text)
    expected = [("/recommend", "POST", 200), ("/recommend", "POST", 422), ("/recommend", "POST", 413),
                ("/items/{item_id}/similar", "GET", 200), ("/items/{item_id}/similar", "GET", 404),
                ("/items/{item_id}/similar", "GET", 422), ("/items/search", "GET", 200),
                ("/items/search", "GET", 422), ("unmatched", "GET", 404), ("unmatched", "GET", 400),
                ("/boom", "GET", 500)]
    for route, method, status in expected:
        assert _count(s, route, method, status) == 1, (route, status)
    assert s['hgrec_run_info{run_id="run-a",model="hgnn-knn"}'] == 1
    assert s['hgrec_recommend_stage_seconds_count{route="/recommend",stage="tower"}'] == 1
    assert "/secret/path" not in r.text and "/secret/path" not in boom.text


def test_latency_histogram_is_cumulative(fresh: TestClient) -> None:
    for _ in range(3):
        fresh.post("/recommend", json={"k": 2})
    s = parse_text(fresh.get("/metrics").text)
    base = 'hgrec_http_request_duration_seconds_bucket{route="/recommend",method="POST",le="%s"}'
    counts = [s[base % le] for le in [*(repr(b) if b != int(b) else str(int(b)) for b in LATENCY_BUCKETS), "+Inf"]]
    assert counts == sorted(counts) and counts[-1] == 3
    assert s['hgrec_http_request_duration_seconds_count{route="/recommend",method="POST"}'] == 3
    assert s['hgrec_http_request_duration_seconds_sum{route="/recommend",method="POST"}'] > 0


def test_histogram_buckets_by_hand() -> None:
    m = Metrics()
    for seconds in (0.0005, 0.003, 0.003, 20.0):
        m.observe("/r", "GET", 200, seconds)
    s = parse_text(m.render())
    le = 'hgrec_http_request_duration_seconds_bucket{route="/r",method="GET",le="%s"}'
    assert [s[le % b] for b in ("0.001", "0.0025", "0.005", "10", "+Inf")] == [1, 1, 3, 3, 4]
    assert s['hgrec_http_request_duration_seconds_sum{route="/r",method="GET"}'] == pytest.approx(20.0065)


def test_labels_are_escaped_and_methods_bounded() -> None:
    m = Metrics()
    m.observe('a"b\\c\nd', "BREW", 418, 0.1)
    m.record_stages("/recommend", Timings(tower=0.5, index=0.25, explain=0.0))
    text = m.render({"run_id": 'run "x"', "model": "m"})
    check_exposition(text)
    assert 'route="a\\"b\\\\c\\nd",method="other",status="418"' in text
    assert 'hgrec_run_info{run_id="run \\"x\\"",model="m"} 1' in text
    assert escape_label("plain") == "plain"
    assert parse_text(text)['hgrec_recommend_stage_seconds_sum{route="/recommend",stage="tower"}'] == 0.5
