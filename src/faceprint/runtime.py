"""Process-wide runtime settings (threads)."""

from __future__ import annotations

import os

import cv2

__all__ = ["set_num_threads", "get_num_threads"]

_threads: int | None = None


def quiet_opencv() -> None:
    """Silence OpenCV's INFO/WARN chatter (e.g. "Targets are not supported by the new graph engine")."""
    try:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    except AttributeError:  # pragma: no cover - very old builds
        pass


quiet_opencv()


def set_num_threads(n: int) -> None:
    """Use ``n`` threads in OpenCV (and onnxruntime sessions created afterwards).

    Oversubscription (more threads than cores across libraries) makes inference many times
    slower; benchmarks and tests set this explicitly.
    """
    global _threads
    if n < 1:
        raise ValueError(f"threads must be >= 1, got {n}")
    _threads = int(n)
    cv2.setNumThreads(_threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(_threads))


def get_num_threads() -> int:
    return _threads if _threads is not None else max(1, cv2.getNumThreads())
