"""Process-wide runtime settings (threads)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import cv2

from .errors import InvalidArgumentError

__all__ = ["set_num_threads", "get_num_threads", "quiet_native_stderr"]

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
    os.environ.setdefault("OMP_NUM_THREADS", str(_threads))


def get_num_threads() -> int:
    return _threads if _threads is not None else max(1, cv2.getNumThreads())
