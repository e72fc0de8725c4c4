"""Data-parallel training helpers: the process group torchrun describes, shards, collectives.

``torchrun --nproc_per_node=G`` (or ``python -m torch.distributed.run``) starts G processes
and tells each who it is through environment variables (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR, MASTER_PORT). :func:`init_distributed` reads them and joins the group (gloo on
CPU, nccl on CUDA); launched without torchrun it is a no-op and returns rank 0 of a world of
one, so the same training code runs single-process unchanged.

Sharding follows ``torch.utils.data.DistributedSampler``'s contract (every rank draws the same
seeded permutation and takes its own part) but with contiguous parts, so concatenating the
ranks' parts in rank order gives back the original order: a global batch gathered from the
ranks is the single-process batch, row for row.

Example:
    >>> info = init_distributed()                     # DistInfo(rank=0, world_size=1, ...)
    >>> start, stop = shard_bounds(len(batch), info)  # this rank's rows of a global batch
    >>> if info.is_main: model.save(out)
    >>> cleanup(info)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistInfo:
    """Who this process is in the training job.

    Attributes:
        rank: global rank in [0, world_size).
        world_size: number of processes.
        local_rank: rank on this node (picks the GPU under nccl).
        backend: "gloo" / "nccl" when a process group is in use, None for a single process.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def distributed(self) -> bool:
        """True when collectives must be called (a process group with more than one rank)."""
        return self.backend is not None and self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that validates, prints and writes files."""
        return self.rank == 0


SINGLE = DistInfo()


def _env_int(name: str, env: dict[str, str]) -> int:
    raw = env.get(name)
    if raw is None:
        raise RuntimeError(
            f"environment variable {name} is missing; expected torchrun to set all of "
            f"{', '.join(ENV_VARS)} (launch with `torchrun --nproc_per_node=N -m ...`)"
        )
    try:
        return int(raw)
    except ValueError:
        raise RuntimeError(f"environment variable {name}={raw!r}: expected an integer") from None


def launched_by_torchrun(env: dict[str, str] | None = None) -> bool:
    """True when the torchrun variables RANK and WORLD_SIZE are both set."""
    env = dict(os.environ) if env is None else env
    return "RANK" in env and "WORLD_SIZE" in env


def init_distributed(
    backend: str | None = None, timeout_s: float = 1800.0, env: dict[str, str] | None = None
) -> DistInfo:
    """Join the process group torchrun describes, or return :data:`SINGLE` without torchrun.

    Args:
        backend: "gloo" or "nccl"; None picks nccl when CUDA is available, else gloo.
        timeout_s: collective timeout (a rank stuck in validation makes others wait this long).
        env: the environment to read (default ``os.environ``, joined through ``env://``;
            an explicit dict is joined through ``tcp://MASTER_ADDR:MASTER_PORT``).

    Returns:
        :class:`DistInfo`. Calling it again in the same process returns the group in use.

    Raises:
        RuntimeError: a torchrun variable is missing or not an integer, or the ranks disagree
            (RANK outside [0, WORLD_SIZE)).
    """
    from_os = env is None
    env = dict(os.environ) if env is None else env
    if dist.is_available() and dist.is_initialized():
        return current_dist()
    if not launched_by_torchrun(env):
        return SINGLE
    rank, world = _env_int("RANK", env), _env_int("WORLD_SIZE", env)
    local_rank = int(env.get("LOCAL_RANK", "0"))
    if world < 1 or not 0 <= rank < world:
        raise RuntimeError(f"RANK={rank}, WORLD_SIZE={world}: expected 0 <= RANK < WORLD_SIZE")
    if "MASTER_ADDR" not in env:
        raise RuntimeError("environment variable MASTER_ADDR is missing; torchrun sets it")
    port = _env_int("MASTER_PORT", env)
    addr = env["MASTER_ADDR"]
    host = f"[{addr}]" if ":" in addr else addr  # an IPv6 address needs brackets in a URL
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend not in ("gloo", "nccl"):
        raise ValueError(f"backend must be 'gloo' or 'nccl', got {backend!r}")
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    # env:// lets torchrun's agent share its store (TORCHELASTIC_USE_AGENT_STORE); a tcp://
    # URL would make rank 0 bind MASTER_PORT a second time.
    init = "env://" if from_os else f"tcp://{host}:{port}"
    dist.init_process_group(
        backend=backend, init_method=init, rank=rank, world_size=world,
        timeout=timedelta(seconds=timeout_s),
    )
    return DistInfo(rank=rank, world_size=world, local_rank=local_rank, backend=backend)


def current_dist() -> DistInfo:
    """The initialised default process group as a :class:`DistInfo`, or :data:`SINGLE`."""
    if not (dist.is_available() and dist.is_initialized()):
        return SINGLE
    return DistInfo(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        backend=str(dist.get_backend()),
    )


def is_main(info: DistInfo | None = None) -> bool:
    """True on rank 0 (and in a single process)."""
    return (current_dist() if info is None else info).is_main


def shard_bounds(n: int, info: DistInfo) -> tuple[int, int]:
    """[start, stop) of this rank's contiguous part of ``n`` rows.

    Parts differ by at most one row, the first ``n % world_size`` ranks taking one more
    (``numpy.array_split``'s rule); concatenated in rank order they are ``range(n)``.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    base, extra = divmod(n, info.world_size)
    start = info.rank * base + min(info.rank, extra)
    return start, start + base + (1 if info.rank < extra else 0)


def shard(n: int, info: DistInfo) -> np.ndarray:
    """(stop - start,) int64 indices of this rank's part of ``range(n)`` (see :func:`shard_bounds`)."""
    start, stop = shard_bounds(n, info)
    return np.arange(start, stop, dtype=np.int64)


def padded_shard(n: int, info: DistInfo) -> tuple[np.ndarray, np.ndarray]:
    """This rank's part of ``range(n)`` padded to ``ceil(n / world_size)`` rows.

    Collectives such as all_gather need the same shape on every rank; padding rows repeat
    index 0 (any valid row works) and are flagged so losses can ignore them.

    Returns:
        idx (ceil(n/W),) int64 indices into range(n) and valid (ceil(n/W),) bool.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1 to pad a shard, got {n}")
    width = -(-n // info.world_size)
    own = shard(n, info)
    idx = np.zeros(width, dtype=np.int64)
    idx[: len(own)] = own
    valid = np.zeros(width, dtype=bool)
    valid[: len(own)] = True
    return idx, valid


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sends each rank the summed gradient of its own rows."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        world = dist.get_world_size()
        parts = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(parts, x.contiguous())
        ctx.rank, ctx.rows = dist.get_rank(), x.shape[0]
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        # Every rank's loss may depend on this rank's rows: sum the gradients over ranks.
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.rank * ctx.rows : (ctx.rank + 1) * ctx.rows]


def all_gather_rows(x: torch.Tensor, info: DistInfo, grad: bool = False) -> torch.Tensor:
    """Rows of ``x`` from every rank, in rank order.

    Args:
        x: (b, ...) tensor, the same shape on every rank.
        info: the process group; a single process returns ``x`` itself.
        grad: keep the autograd graph (the backward sums each row's gradient over ranks).

    Returns:
        (world_size * b, ...) tensor.
    """
    if not info.distributed:
        return x
    if grad:
        out = _GatherWithGrad.apply(x)
        assert isinstance(out, torch.Tensor)
        return out
    parts = [torch.empty_like(x) for _ in range(info.world_size)]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


def all_reduce_sum(values: np.ndarray | list[float], info: DistInfo) -> np.ndarray:
    """(k,) float64 element-wise sum of ``values`` over ranks (itself in a single process)."""
    arr = np.asarray(values, dtype=np.float64)
    if not info.distributed:
        return arr
    t = torch.from_numpy(arr.copy())
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.numpy()


def broadcast_object(obj: Any, info: DistInfo, src: int = 0) -> Any:
    """``obj`` of rank ``src`` on every rank (pickled; for small things: scores, decisions)."""
    if not info.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def barrier(info: DistInfo) -> None:
    """Wait for every rank (no-op in a single process)."""
    if info.distributed:
        dist.barrier()


def cleanup(info: DistInfo) -> None:
    """Leave the process group (no-op in a single process or when already left)."""
    if info.backend is not None and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
