"""Serving fixtures: one tiny run directory and its app, shared by the serving tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hgrec.serving.app import StateHolder, create_app
from hgrec.serving.load import load_state
from hgrec.serving.security import LOOPBACK_HOSTS
from hgrec.serving.state import ServingState
from tests.serving.runs import make_run

#: Host names the test apps answer: loopback plus the name TestClient and schemathesis send.
TEST_HOSTS = (*LOOPBACK_HOSTS, "testserver")
#: Admin token of the apps that serve ``/admin/reload``.
ADMIN_TOKEN = "test-admin-token-0123456789"
#: Header carrying it.
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("serving") / "run-a", models=("hgnn-knn", "popularity"))


@pytest.fixture(scope="session")
def state(run_dir: Path) -> ServingState:
    return load_state(run_dir)


@pytest.fixture(scope="session")
def client(run_dir: Path, state: ServingState) -> Iterator[TestClient]:
    """The app as ``hgrec serve`` starts it without an admin token."""
    app = create_app(StateHolder(run_dir, state=state), allowed_hosts=TEST_HOSTS)
    with TestClient(app) as c:
        yield c


@pytest.fixture()
def admin_client(run_dir: Path, state: ServingState) -> Iterator[TestClient]:
    """An app with the admin route on (:data:`ADMIN_TOKEN`), runs root = ``run_dir``'s folder;
    a fresh holder per test, since reloads change it."""
    app = create_app(StateHolder(run_dir, state=state), admin_token=ADMIN_TOKEN,
                     allowed_hosts=TEST_HOSTS)
    with TestClient(app) as c:
        yield c
