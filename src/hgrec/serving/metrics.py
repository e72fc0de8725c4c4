"""In-process request timing: counts and seconds per component, served at ``GET /metrics``.

The split between the user tower and the index (P1 section 4.3) is measured here, inside the
app, so that a load test can tell where its latency goes without guessing.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

from hgrec.serving.state import Timings


class Metrics:
    """Thread-safe running totals; one instance per app."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count: dict[str, int] = defaultdict(int)
        self._seconds: dict[str, float] = defaultdict(float)

    def record(self, route: str, total: float, timings: Timings | None = None) -> None:
        with self._lock:
            self._count[route] += 1
            self._seconds[f"{route}.total"] += total
            if timings is not None:
                for part in ("tower", "index", "explain"):
                    self._seconds[f"{route}.{part}"] += getattr(timings, part)

    def snapshot(self) -> dict[str, Any]:
        """{"requests": {route: n}, "seconds": {route.part: s}, "mean_ms": {route.part: ms}}."""
        with self._lock:
            count, seconds = dict(self._count), dict(self._seconds)
        mean = {
            key: 1000.0 * s / count[key.split(".")[0]]
            for key, s in seconds.items() if count.get(key.split(".")[0])
        }
        return {"requests": count, "seconds": seconds, "mean_ms": mean}


def server_timing(timings: Timings, total: float) -> str:
    """A ``Server-Timing`` header value in milliseconds (readable in browser dev tools)."""
    return ", ".join(
        f"{name};dur={1000.0 * value:.3f}"
        for name, value in (("tower", timings.tower), ("index", timings.index),
                            ("explain", timings.explain), ("total", total))
    )
