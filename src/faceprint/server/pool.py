"""A bounded pool for inference: off the event loop, and a full queue refuses at once instead of hanging."""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

from ..errors import InvalidArgumentError

__all__ = ["BusyError", "InferencePool"]

T = TypeVar("T")
P = TypeVar("P")


class BusyError(Exception):
    """Every inference thread is busy and the queue is full: answer 503 with ``Retry-After``."""

    def __init__(self, capacity: int, retry_after_s: int) -> None:
        super().__init__(f"the service is busy ({capacity} requests running or queued); retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class InferencePool(Generic[P]):
    """``threads`` worker threads, each lending one of ``resources`` (e.g. a pipeline) to a job.

    At most ``threads + queue_size`` jobs are admitted (running or waiting); :meth:`run` raises
    :class:`BusyError` for one more, without waiting. A job counts until its thread finishes it,
    even when the request that submitted it has gone (a client that disconnects frees no thread).

    Parameters
    ----------
    resources : sequence
        One per thread (the same object may be given several times when it is thread-safe).
    queue_size : int
        Jobs that may wait for a free thread.
    retry_after_s : int
        What :class:`BusyError` tells the client to wait.
    """

    def __init__(self, resources: Sequence[P], *, queue_size: int, retry_after_s: int = 1) -> None:
        if not resources:
            raise InvalidArgumentError("InferencePool needs at least one resource (thread)")
        self.threads = len(resources)
        self.capacity = self.threads + queue_size
        self.retry_after_s = retry_after_s
        self.resources: tuple[P, ...] = tuple(resources)
        self._free: queue.SimpleQueue[P] = queue.SimpleQueue()
        for r in resources:
            self._free.put(r)
        self._executor = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="faceprint-infer")
        self._admitted = 0

    @property
    def admitted(self) -> int:
        """Jobs running or waiting now."""
        return self._admitted

    def _lend(self, fn: Callable[[P], T]) -> T:
        resource = self._free.get()  # never blocks: as many resources as threads
        try:
            return fn(resource)
        finally:
            self._free.put(resource)

    def refuse_if_full(self) -> None:
        """:class:`BusyError` now if :meth:`run` would refuse now: a request checks before it reads its
        upload, so a full pool costs a refused client no upload parsing (run checks again)."""
        if self._admitted >= self.capacity:
            raise BusyError(self.capacity, self.retry_after_s)

    async def run(self, fn: Callable[[P], T]) -> T:
        """Run ``fn(resource)`` on a pool thread; :class:`BusyError` at once when the pool is full."""
        self.refuse_if_full()
        loop = asyncio.get_running_loop()
        self._admitted += 1
        try:
            job: Future[T] = self._executor.submit(self._lend, fn)
        except BaseException:
            self._admitted -= 1
            raise

        def done(_: Future[T]) -> None:
            try:
                loop.call_soon_threadsafe(self._release)
            except RuntimeError:  # the loop has closed (shutdown): nobody counts any more
                pass

        job.add_done_callback(done)
        return await asyncio.wrap_future(job)

    def _release(self) -> None:
        self._admitted -= 1

    def shutdown(self) -> None:
        """Finish the running jobs, drop the waiting ones."""
        self._executor.shutdown(wait=True, cancel_futures=True)
