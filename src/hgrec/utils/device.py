"""``runtime.device``: the one place a configured device name becomes a ``torch.device``.

Training and inference of the HGNN and the two-tower model run where the config says:
``cpu`` (the default, and what the tests use), ``cuda`` / ``cuda:N`` when a GPU is present.
Asking for CUDA on a machine without one is the user's mistake, so it is a one-line
:class:`~hgrec.errors.UserError` naming the setting, never a silent fall-back to the CPU.
"""

from __future__ import annotations

import torch

from hgrec.errors import UserError


def resolve_device(name: str | torch.device | None) -> torch.device:
    """The torch device for ``runtime.device``.

    Args:
        name: "cpu", "cuda", "cuda:N", a torch.device, or None (= "cpu").

    Returns:
        the device; CUDA only when available.

    Raises:
        UserError: an unknown name, CUDA asked for but not available, or a GPU index out of
            range.
    """
    if name is None:
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UserError(
            f"runtime.device: {name!r} is not a device; expected 'cpu', 'cuda' or 'cuda:N'"
        ) from None
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise UserError(f"runtime.device: {name!r} is not supported; expected 'cpu' or 'cuda[:N]'")
    if not torch.cuda.is_available():
        raise UserError(
            f"runtime.device is {name!r} but CUDA is not available on this machine "
            "(no GPU, or a CPU-only torch build); set runtime.device: cpu"
        )
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(
            f"runtime.device: {name!r} but only {torch.cuda.device_count()} CUDA device(s) exist"
        )
    return device
