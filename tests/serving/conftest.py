"""Serving fixtures: one tiny run directory and its app, shared by the serving tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hgrec.serving.app import StateHolder, create_app
from hgrec.serving.state import ServingState, load_state
from tests.serving.runs import make_run


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("serving") / "run-a", models=("hgnn-knn", "popularity"))


@pytest.fixture(scope="session")
def state(run_dir: Path) -> ServingState:
    return load_state(run_dir)


@pytest.fixture(scope="session")
def client(run_dir: Path, state: ServingState) -> Iterator[TestClient]:
    app = create_app(StateHolder(run_dir, state=state))
    with TestClient(app) as c:
        yield c
