"""Fuzz: schemathesis generates requests from the app's OpenAPI schema; none may get a 5xx.

Bounded (about 400 examples over every operation, valid and invalid data, in-process ASGI,
no network, derandomised so a run is reproducible). Every answer, errors included, must be
documented: its status code among the operation's ``responses``, its content type and its
body matching the schema documented for that status (so a 422 has FastAPI's list shape).
The admin route is fuzzed with the token on but not sent: it must answer 401 or 422, never
reload anything.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hgrec.serving.app import StateHolder, create_app
from hgrec.serving.state import ServingState
from tests.serving.conftest import ADMIN_TOKEN, TEST_HOSTS

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis missing: pip install schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]

OPERATIONS = [
    "POST /recommend",
    "GET /users/{user_id}/recommendations",
    "GET /items/{item_id}/similar",
    "GET /items/search",
    "GET /healthz",
    "GET /metadata",
    "GET /metrics",
    "POST /admin/reload",
]
EXAMPLES = {"POST /recommend": 80, "GET /users/{user_id}/recommendations": 40,
            "GET /items/{item_id}/similar": 40, "GET /items/search": 30}


@pytest.fixture(scope="module")
def api_schema(run_dir: Path, state: ServingState):  # type: ignore[no-untyped-def]
    """The schema of an app with every route on (admin included)."""
    holder = StateHolder(run_dir, state=state)
    app = create_app(holder, admin_token=ADMIN_TOKEN, allowed_hosts=TEST_HOSTS)
    api = schemathesis.openapi.from_asgi("/openapi.json", app)
    yield api
    assert holder.state is state  # no generated request got past the admin token


def test_schema_lists_every_operation(api_schema) -> None:  # type: ignore[no-untyped-def]
    labels = {op.ok().label for op in api_schema.get_all_operations()}
    assert labels == set(OPERATIONS)


# Operations without parameters have no invalid inputs to generate.
CASES = [(label, "positive") for label in OPERATIONS] + [
    (label, "negative") for label in OPERATIONS if label in EXAMPLES or label.startswith("POST")
]


@pytest.mark.parametrize("label, mode", CASES)
def test_no_input_gives_a_server_error(api_schema, label: str, mode: str) -> None:  # type: ignore[no-untyped-def]
    from schemathesis import GenerationMode

    operation = api_schema.find_operation_by_label(label)
    strategy = operation.as_strategy(generation_mode=GenerationMode(mode))
    n = EXAMPLES.get(label, 5)

    @given(case=strategy)
    @settings(max_examples=n, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case) -> None:  # type: ignore[no-untyped-def]
        response = case.call()
        assert response.status_code < 500, (
            f"{case.method} {case.formatted_path} {case.query} {case.body!r:.300}: "
            f"{response.status_code} {response.text[:300]}"
        )
        case.validate_response(response, checks=CHECKS)

    run()
