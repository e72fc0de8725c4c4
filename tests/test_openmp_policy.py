"""Every hgrec entry point makes OpenMP workers sleep when idle (docs/scaling.md), unless the
user chose a policy; it must be set before torch loads libgomp."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = "import hgrec, torch, os; print(os.environ['OMP_WAIT_POLICY'])"


@pytest.mark.parametrize("given, expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_wait_policy_is_passive_unless_the_user_set_one(given: str | None, expected: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given is not None:
        env["OMP_WAIT_POLICY"] = given
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == expected
