"""Process-wide runtime settings (threads) and the lazily built shared objects (:class:`Lazy`)."""

from __future__ import annotations

import functools
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar, cast

import cv2

from .errors import InvalidArgumentError
from .settings import setdefault_omp_num_threads

__all__ = ["set_num_threads", "get_num_threads", "quiet_native_stderr", "Lazy", "lazy_singleton"]

T = TypeVar("T")

_threads: int | None = None


def quiet_opencv() -> None:
    """Silence OpenCV's INFO/WARN chatter (e.g. "Targets are not supported by the new graph engine")."""
    try:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    except AttributeError:  # pragma: no cover - very old builds
        pass


quiet_opencv()


@contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence what native code writes to file descriptor 2 inside the block (e.g. TFLite's
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." at interpreter creation).

    Only wrap short, model-loading steps: other threads' stderr output is lost meanwhile.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (embedded interpreters): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def set_num_threads(n: int) -> None:
    """Use ``n`` threads in OpenCV (and onnxruntime sessions created afterwards).

    Oversubscription (more threads than cores across libraries) makes inference many times
    slower; benchmarks and tests set this explicitly.
    """
    global _threads
    if n < 1:
        raise InvalidArgumentError(f"threads must be >= 1, got {n}")
    _threads = int(n)
    cv2.setNumThreads(_threads)
    setdefault_omp_num_threads(_threads)


def get_num_threads() -> int:
    return _threads if _threads is not None else max(1, cv2.getNumThreads())


class Lazy(Generic[T]):
    """A process-wide object built by ``factory`` on the first call, exactly once (thread-safe).

    Calling the :class:`Lazy` returns the object; concurrent first calls wait for the one build. A
    factory that raises builds nothing: the next call tries again. Use it through
    :func:`lazy_singleton`.
    """

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._value: T | None = None
        self._built = False
        self._lock = threading.Lock()
        functools.update_wrapper(self, factory)

    def __call__(self) -> T:
        if not self._built:
            with self._lock:
                if not self._built:
                    self._value = self._factory()
                    self._built = True
        return cast(T, self._value)  # set together with _built (None may be a built value)

    @property
    def built(self) -> bool:
        """Whether the object exists yet (nothing is built by asking)."""
        return self._built

    def reset(self) -> None:
        """Forget the object (the next call builds a new one); for tests."""
        with self._lock:
            self._value, self._built = None, False


def lazy_singleton(factory: Callable[[], T]) -> Lazy[T]:
    """Decorator: the function's result, built on its first call and shared by every later call.

    Examples
    --------
    >>> @lazy_singleton
    ... def shared() -> list[int]:
    ...     return []
    >>> shared() is shared()
    True
    """
    return Lazy(factory)
