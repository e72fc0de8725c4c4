"""seed_everything and set_threads."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from hgrec.utils.seed import seed_everything, set_threads


def _draws() -> tuple[float, float, float]:
    return random.random(), float(np.random.rand()), float(torch.rand(1))


@pytest.fixture(autouse=True)
def _restore_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)  # restored after the test


@pytest.mark.parametrize("seed", [0, 1, 2**32 - 1])
def test_same_seed_same_draws(seed: int) -> None:
    rng = seed_everything(seed)
    first = _draws()
    first_rng = rng.random()
    rng = seed_everything(seed)
    assert _draws() == first
    assert rng.random() == first_rng == np.random.default_rng(seed).random()


def test_different_seeds_differ() -> None:
    seed_everything(1)
    a = _draws()
    seed_everything(2)
    b = _draws()
    assert all(x != y for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize(
    ("seed", "error"),
    [(-1, ValueError), (2**32, ValueError), (1.5, TypeError), (True, TypeError)],
)
def test_bad_seed(seed: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="seed"):
        seed_everything(seed)  # type: ignore[arg-type]


def test_deterministic_flag() -> None:
    try:
        seed_everything(0, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)


def test_set_threads() -> None:
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = torch.get_num_threads()
    # The context restores the BLAS pools' limits that set_threads changes for the process.
    with threadpoolctl.threadpool_limits(limits=None):
        try:
            assert set_threads(1) == 1 == torch.get_num_threads()
            assert set_threads(None) == 1  # None leaves the setting alone
            blas = [p["num_threads"] for p in threadpoolctl.threadpool_info()]
            assert all(n == 1 for n in blas)
        finally:
            torch.set_num_threads(before)


@pytest.mark.parametrize("n", [0, -2, True])
def test_bad_threads(n: object) -> None:
    with pytest.raises(ValueError, match="threads"):
        set_threads(n)  # type: ignore[arg-type]
