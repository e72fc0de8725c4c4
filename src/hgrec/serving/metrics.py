"""Request counts and latencies in the Prometheus text format, served at ``GET /metrics``.

Series (``route`` is the route template, e.g. ``/items/{item_id}/similar``, or ``unmatched``
for paths no route serves, so a client cannot grow the label set)::

    hgrec_http_requests_total{route, method, status}         counter: every answer, 4xx/5xx too
    hgrec_http_request_duration_seconds{route, method}       histogram: wall time in the app
    hgrec_recommend_stage_seconds{route, stage}              summary: tower / index / explain
    hgrec_recommend_batches_total                            counter: micro-batches computed
    hgrec_recommend_batched_requests_total                   counter: requests in them
    hgrec_run_info{run_id, model}                            gauge 1: what is served

The mean micro-batch size of ``POST /recommend`` is the ratio of the two batch counters.

The split between the user tower and the index (P1 section 4.3) is measured inside the app,
so that a load test can tell where its latency goes without guessing. The format is the
plain-text exposition format 0.0.4, written here (no client library needed).
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hgrec.serving.state import Timings

#: ``Content-Type`` of the text exposition format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Upper bounds (seconds) of the latency histogram buckets; +Inf is added.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Methods counted by name; any other is counted as "other" (bounded labels).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: ``route`` label of requests that no route matched.
UNMATCHED = "unmatched"
STAGES = ("tower", "index", "explain")


def escape_label(value: str) -> str:
    """A label value escaped for the text format (backslash, double quote, newline)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{escape_label(v)}"' for k, v in labels.items()) + "}"


def _number(x: float) -> str:
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return repr(float(x)) if not float(x).is_integer() else str(int(x))


class _Histogram:
    def __init__(self) -> None:
        self.buckets = [0] * len(LATENCY_BUCKETS)  # per bucket, not cumulative
        self.total = 0.0
        self.count = 0

    def observe(self, seconds: float) -> None:
        for i, bound in enumerate(LATENCY_BUCKETS):  # 13 bounds
            if seconds <= bound:
                self.buckets[i] += 1
                break
        self.total += seconds
        self.count += 1


class Metrics:
    """Thread-safe running totals; one instance per app."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self._latency: dict[tuple[str, str], _Histogram] = defaultdict(_Histogram)
        self._stages: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
        self._batches = [0, 0]  # micro-batches, requests in them

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answer of ``route`` with ``status`` that took ``seconds``."""
        method = method if method in METHODS else "other"
        with self._lock:
            self._requests[(route, method, int(status))] += 1
            self._latency[(route, method)].observe(seconds)

    def record_stages(self, route: str, timings: Timings) -> None:
        """Add one request's tower / index / explain seconds."""
        with self._lock:
            for stage in STAGES:
                total = self._stages[(route, stage)]
                total[0] += getattr(timings, stage)
                total[1] += 1

    def record_batch(self, size: int) -> None:
        """Count one micro-batch of ``size`` requests."""
        with self._lock:
            self._batches[0] += 1
            self._batches[1] += int(size)

    def render(self, info: Mapping[str, str] | None = None) -> str:
        """Everything in the text exposition format; ``info`` labels ``hgrec_run_info``."""
        with self._lock:
            requests = dict(self._requests)
            latency = {k: (list(h.buckets), h.total, h.count) for k, h in self._latency.items()}
            stages = {k: tuple(v) for k, v in self._stages.items()}
            batches, batched = self._batches
        lines = [
            "# HELP hgrec_http_requests_total HTTP answers by route template, method and status.",
            "# TYPE hgrec_http_requests_total counter",
        ]
        for (route, method, status), n in sorted(requests.items()):
            labels = _labels(route=route, method=method, status=str(status))
            lines.append(f"hgrec_http_requests_total{labels} {n}")
        lines += [
            "# HELP hgrec_http_request_duration_seconds Wall time from request to answer, "
            "in the app.",
            "# TYPE hgrec_http_request_duration_seconds histogram",
        ]
        name = "hgrec_http_request_duration_seconds"
        for (route, method), (buckets, total, count) in sorted(latency.items()):
            overflow = count - sum(buckets)  # observations above the largest bound
            cumulative = 0
            for bound, n in zip((*LATENCY_BUCKETS, math.inf), (*buckets, overflow), strict=True):
                cumulative += n
                le = _labels(route=route, method=method, le=_number(bound))
                lines.append(f"{name}_bucket{le} {cumulative}")
            base = _labels(route=route, method=method)
            lines += [f"{name}_sum{base} {_number(total)}", f"{name}_count{base} {count}"]
        lines += [
            "# HELP hgrec_recommend_stage_seconds Seconds per recommendation stage: user tower, "
            "index search, explanation.",
            "# TYPE hgrec_recommend_stage_seconds summary",
        ]
        for (route, stage), (total, count) in sorted(stages.items()):
            labels = _labels(route=route, stage=stage)
            lines += [f"hgrec_recommend_stage_seconds_sum{labels} {_number(total)}",
                      f"hgrec_recommend_stage_seconds_count{labels} {_number(count)}"]
        lines += [
            "# HELP hgrec_recommend_batches_total Micro-batches of POST /recommend computed "
            "(one tower forward and one index search each).",
            "# TYPE hgrec_recommend_batches_total counter",
            f"hgrec_recommend_batches_total {batches}",
            "# HELP hgrec_recommend_batched_requests_total Requests answered by those batches.",
            "# TYPE hgrec_recommend_batched_requests_total counter",
            f"hgrec_recommend_batched_requests_total {batched}",
        ]
        if info is not None:
            lines += ["# HELP hgrec_run_info The served run and model.",
                      "# TYPE hgrec_run_info gauge", f"hgrec_run_info{_labels(**info)} 1"]
        return "\n".join(lines) + "\n"


def parse_text(text: str) -> dict[str, float]:
    """Samples of a text exposition, ``{'name{labels}': value}`` (comments skipped).

    Enough for tests and load scripts to read counters back; not a general parser.
    """
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


class MetricsMiddleware:
    """ASGI middleware counting every answer (errors included) by route template and status.

    Args:
        app: the wrapped application.
        metrics: where to count.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status: int | None = None

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            # The router stores the matched route in the scope; an exception before any
            # answer is a 500 (ServerErrorMiddleware, outside this one, sends it).
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            self.metrics.observe(route, str(scope.get("method", "")), status or 500,
                                 time.perf_counter() - t0)


def server_timing(timings: Timings, total: float) -> str:
    """A ``Server-Timing`` header value in milliseconds (readable in browser dev tools)."""
    return ", ".join(
        f"{name};dur={1000.0 * value:.3f}"
        for name, value in (("tower", timings.tower), ("index", timings.index),
                            ("explain", timings.explain), ("total", total))
    )
