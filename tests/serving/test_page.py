"""The try-it page end to end in headless Chromium (Debian's chromium + Python Playwright).

A person searches kitchen items by title, picks two, asks for food recommendations and sees
titles, scores and "because you liked ...". The screenshot is saved next to this test
(``tests/serving/artifacts/page.png``) for a human to look at.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from hgrec.serving.app import StateHolder, create_app
from hgrec.serving.state import ServingState

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOT = Path(__file__).parent / "artifacts" / "page.png"


@pytest.fixture(scope="module")
def server_url(run_dir: Path, state: ServingState) -> Iterator[str]:
    """A real uvicorn server on a free loopback port, in a background thread."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(StateHolder(run_dir, state=state))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def test_page_end_to_end(server_url: str) -> None:
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} missing: install Debian's chromium (apt-get install -y chromium)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright missing: pip install playwright (never run "
        "`playwright install`; the test uses /usr/bin/chromium)"
    )
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 1100})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server_url + "/")
            sync_api.expect(page.locator("#meta")).to_contain_text("model hgnn-knn")
            sync_api.expect(page.locator("#source-type")).to_have_text("kitchen")
            sync_api.expect(page.locator("#target-type")).to_have_text("food")
            for title in ("kitchen tool 1 3", "kitchen tool 1 7"):
                page.fill("#q", title)
                result = page.locator("#results li", has_text=title).first
                result.click()
            sync_api.expect(page.locator("#picked li")).to_have_count(2)
            page.click("#go")
            recs = page.locator("#recs li")
            sync_api.expect(recs).to_have_count(10)
            first = recs.first.inner_text()
            # Planted clusters: two cluster-1 kitchen picks give cluster-1 snacks first.
            assert first.startswith("snack flavour 1 "), first
            assert "because you liked “kitchen tool 1 " in first
            score = float(recs.first.locator(".score").inner_text())
            assert 0.5 < score <= 1.0
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
            assert SCREENSHOT.stat().st_size > 10_000
            assert errors == []
        finally:
            browser.close()
