"""resolve_device: the ``runtime.device`` setting as a torch.device (CPU-only machines too)."""

from __future__ import annotations

import pytest
import torch

from hgrec.errors import UserError
from hgrec.utils.device import resolve_device


@pytest.mark.parametrize("name", ["cpu", None, torch.device("cpu")])
def test_cpu_resolves(name: str | torch.device | None) -> None:
    assert resolve_device(name) == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: cuda is valid here")
@pytest.mark.parametrize("name", ["cuda", "cuda:0"])
def test_cuda_without_a_gpu_is_a_user_error(name: str) -> None:
    with pytest.raises(UserError, match="runtime.device") as err:
        resolve_device(name)
    assert "\n" not in str(err.value)  # one line for the CLI


@pytest.mark.parametrize("name", ["cuda", "cuda:1"])
def test_cuda_unavailable_is_a_user_error_on_any_machine(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UserError, match="runtime.device.*CUDA is not available"):
        resolve_device(name)


@pytest.mark.parametrize("name", ["tpu", "nonsense", "cuda:x", ""])
def test_unknown_devices_are_user_errors(name: str) -> None:
    with pytest.raises(UserError, match="runtime.device"):
        resolve_device(name)
