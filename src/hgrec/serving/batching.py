"""Micro-batching of concurrent requests on the event loop: one computation for many.

Per ``POST /recommend`` the user tower and the index cost ~1.5 ms of which most is fixed
overhead (Python, torch dispatch, small matmuls), so answering the requests that wait at the
same moment in one batched forward and one batched search costs little more than answering
one. :class:`MicroBatcher` collects the jobs submitted while the event loop is busy and
computes them together:

* ``window=0`` (default): a batch is every job submitted before the event loop next runs
  its callbacks, i.e. the requests that were parsed in the same turn of the loop, typically
  those that arrived while the previous batch computed. A lone request waits for nothing.
* ``window>0``: the first job of a batch waits up to ``window`` seconds for company.
* at most ``max_batch`` jobs per computation; ``max_batch=1`` turns batching off.

The computation runs on the event loop thread: it holds the GIL for most of its ~2 ms
anyway, and running it in a worker thread made every request also wait for the GIL to be
handed over (CPython switches threads every 5 ms).

Example:
    >>> batcher = MicroBatcher(lambda jobs: [j * 2 for j in jobs], max_batch=32)
    >>> await asyncio.gather(*(batcher.submit(j) for j in range(3)))  # one call of 3 jobs
    [0, 2, 4]
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

J = TypeVar("J")
R = TypeVar("R")

#: Default largest batch (the tower's cost grows slowly up to a few dozen rows).
MAX_BATCH = 32


class MicroBatcher(Generic[J, R]):
    """Gather jobs submitted concurrently and compute them in one call.

    Args:
        compute: jobs -> one result per job, same order; a result that is an
            ``Exception`` is raised in that job's :meth:`submit` only. An exception raised by
            ``compute`` itself fails every job of the batch.
        max_batch: most jobs per call (1: no batching).
        window: seconds the first job of a batch waits for others (0: none, see the module
            docstring).

    Raises:
        ValueError: ``max_batch`` below 1 or a negative ``window``.
    """

    def __init__(
        self,
        compute: Callable[[list[J]], Sequence[R | Exception]],
        max_batch: int = MAX_BATCH,
        window: float = 0.0,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch {max_batch}: expected 1 or more jobs per batch")
        if window < 0:
            raise ValueError(f"window {window}: expected 0 or more seconds")
        self.compute = compute
        self.max_batch = int(max_batch)
        self.window = float(window)
        self._pending: list[tuple[J, asyncio.Future[R]]] = []
        self._scheduled: asyncio.Handle | asyncio.TimerHandle | None = None
        #: Largest batch computed so far (tests read it; ``/metrics`` has the counts).
        self.largest = 0

    async def submit(self, job: J) -> R:
        """The result of ``job``, computed in a batch with the jobs submitted alongside it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((job, future))
        if len(self._pending) >= self.max_batch:
            self._flush()
        elif self._scheduled is None:
            self._scheduled = (loop.call_soon(self._flush) if self.window == 0
                               else loop.call_later(self.window, self._flush))
        return await future

    def _flush(self) -> None:
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
        batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
        if self._pending:  # more than one batch was waiting: the rest goes next turn
            self._scheduled = asyncio.get_running_loop().call_soon(self._flush)
        if not batch:
            return
        self.largest = max(self.largest, len(batch))
        try:
            results = self.compute([job for job, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"compute answered {len(results)} of {len(batch)} jobs")
        except Exception as e:  # noqa: BLE001 - each waiting request gets the error
            for _, future in batch:
                if not future.done():
                    future.set_exception(e)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():  # the client went away
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)
