"""Video decoding: frames of a file, a camera or a stream URL, one at a time, at a chosen rate.

:class:`VideoReader` wraps OpenCV's ``VideoCapture`` (FFmpeg for files and URLs). It yields
:class:`VideoFrame` objects (RGB uint8, upright as a player shows them, downscaled to ``max_side``)
lazily, so memory stays one frame whatever the length; ``fps`` keeps about that many frames per
second of the source. A video source is

- a path of a regular file (``clip.mp4``); a missing file, a folder, a FIFO or a device is refused
  before OpenCV sees it (opening a FIFO would block),
- a camera index (``0``: the first camera),
- a stream URL that FFmpeg reads (``rtsp://``, ``rtsps://``, ``rtmp://``, ``http://``, ``https://``),
  opened and read with timeouts so a dead camera ends the run instead of hanging it.

Frame sizes over the pixel guard (``FACEPRINT_MAX_PIXELS``) are refused before any frame is decoded.
A file that ends before the frame count its header declares (a truncated upload) is read to where it
breaks and flagged: :attr:`VideoReader.ended_early`.

Examples
--------
>>> with VideoReader("clip.mp4", fps=10) as video:  # doctest: +SKIP
...     for frame in video:
...         print(frame.index, round(frame.time_s, 2), frame.image.shape)
0 0.0 (720, 1280, 3)
3 0.1 (720, 1280, 3)
>>> VideoReader("missing.mp4")
Traceback (most recent call last):
...
faceprint.errors.InvalidImageError: video not found: missing.mp4
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np

from .errors import InvalidArgumentError, InvalidImageError
from .settings import current_settings
from .types import Image

__all__ = [
    "VIDEO_SUFFIXES",
    "STREAM_SCHEMES",
    "VideoSource",
    "VideoFrame",
    "VideoInfo",
    "VideoReader",
    "is_video_path",
    "is_stream_url",
    "describe_video_source",
]

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".3gp", ".mpg", ".mpeg", ".wmv"})
"""File name endings taken as video (``faceprint identify clip.mp4`` reads a video, not an image)."""
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://")

VideoSource = str | Path | int
"""A video file path, a camera index, or a stream URL (see the module)."""

_DEFAULT_FPS = 30.0  # a source that reports no usable rate


def is_video_path(source: object) -> bool:
    """True for a path (or string) whose name ends in a video suffix."""
    return isinstance(source, str | Path) and Path(str(source)).suffix.lower() in VIDEO_SUFFIXES


def is_stream_url(source: object) -> bool:
    """True for a string that starts with one of :data:`STREAM_SCHEMES`."""
    return isinstance(source, str) and source.lower().startswith(STREAM_SCHEMES)


def describe_video_source(source: VideoSource) -> str:
    """How errors and reports name ``source``: the path, ``camera N``, or the URL without its credentials."""
    if isinstance(source, bool):
        return repr(source)
    if isinstance(source, int):
        return f"camera {source}"
    if is_stream_url(source):
        text = str(source)
        scheme, _, rest = text.partition("://")
        host, sep, tail = rest.partition("/")
        if "@" in host:  # rtsp://user:password@host/...: never echo the password
            host = "***@" + host.rsplit("@", 1)[1]
        return f"{scheme}://{host}{sep}{tail}"
    return str(source)


@dataclass(frozen=True)
class VideoFrame:
    """One decoded frame: its ``index`` among the source's frames, its time from the start, the image."""

    index: int
    time_s: float
    image: Image


@dataclass(frozen=True)
class VideoInfo:
    """What the source says about itself when opened.

    ``frame_count`` is None for cameras and streams (and files whose header has no count); ``width`` /
    ``height`` are the decoded size before ``max_side``.
    """

    source: str
    kind: str
    """``"file"``, ``"camera"`` or ``"stream"``."""
    native_fps: float
    frame_count: int | None
    width: int
    height: int

    @property
    def live(self) -> bool:
        """Cameras and streams: frame times are wall-clock seconds since opening."""
        return self.kind != "file"


def _downscale(frame: Image, max_side: int) -> Image:
    h, w = frame.shape[:2]
    if max_side <= 0 or max(h, w) <= max_side:
        return frame
    f = max_side / max(h, w)
    out = cv2.resize(frame, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    return np.asarray(out, dtype=np.uint8)


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """OpenCV's own warnings (``can't open camera by index``) off while opening: the error we raise says it."""
    try:
        previous = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    except Exception:  # pragma: no cover - a build without the logging module
        yield
        return
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(previous)


class VideoReader:
    """Frames of a video file, camera or stream (see the module).

    Parameters
    ----------
    source
        A file path, a camera index or a stream URL.
    fps
        Keep about this many frames per second of the source (None: every frame). A rate at or above
        the source's keeps every frame.
    max_side
        Downscale frames so that their longer side is at most this (0: never).
    max_seconds
        Stop after this many seconds of the source (None: at its end; a camera runs until closed).
    timeout_s
        Open and read timeout of stream URLs (FFmpeg's), seconds.
    max_pixels
        Refuse frames larger than this (default: ``FACEPRINT_MAX_PIXELS``).

    Raises
    ------
    InvalidImageError
        Missing or non-regular file, a source OpenCV cannot open or decode, frames over the pixel guard.
    InvalidArgumentError
        A bad ``fps`` / ``max_seconds`` / ``max_side`` / ``timeout_s``, or a source of the wrong type.
    """

    def __init__(
        self,
        source: VideoSource,
        *,
        fps: float | None = None,
        max_side: int = 1280,
        max_seconds: float | None = None,
        timeout_s: float = 10.0,
        max_pixels: int | None = None,
    ) -> None:
        if fps is not None and (not math.isfinite(fps) or fps <= 0):
            raise InvalidArgumentError(f"fps must be > 0 or None, got {fps}")
        if max_seconds is not None and (not math.isfinite(max_seconds) or max_seconds <= 0):
            raise InvalidArgumentError(f"max_seconds must be > 0 or None, got {max_seconds}")
        if max_side < 0:
            raise InvalidArgumentError(f"max_side must be >= 0, got {max_side}")
        if not math.isfinite(timeout_s) or timeout_s <= 0:
            raise InvalidArgumentError(f"timeout_s must be > 0, got {timeout_s}")
        self.name = describe_video_source(source)
        self.fps = fps
        self.max_side = max_side
        self.max_seconds = max_seconds
        self.frames_read = 0
        """Frames decoded so far (kept or not)."""
        self._max_pixels = max_pixels or current_settings().max_pixels
        self._cap = self._open(source, timeout_s)
        try:
            self.info = self._probe(self._max_pixels)
        except BaseException:
            self._cap.release()
            raise
        self._iterated = False
        self._stopped_by_limit = False

    def _open(self, source: VideoSource, timeout_s: float) -> cv2.VideoCapture:
        ms = int(timeout_s * 1000)
        with _quiet_opencv():
            if isinstance(source, bool):
                raise InvalidArgumentError(f"a video source is a path, a camera index or a URL, got {source!r}")
            if isinstance(source, int):
                if source < 0:
                    raise InvalidArgumentError(f"camera index must be >= 0, got {source}")
                self._kind = "camera"
                cap = cv2.VideoCapture(source)
                what = f"cannot open camera {source} (no such camera, or it is in use)"
            elif is_stream_url(source):
                self._kind = "stream"
                params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
                cap = cv2.VideoCapture(str(source), cv2.CAP_FFMPEG, params)
                what = f"cannot open stream {self.name} (unreachable, refused, or not a video OpenCV reads)"
            elif isinstance(source, str | Path):
                self._kind = "file"
                path = Path(source)
                try:
                    mode = os.stat(path).st_mode
                except FileNotFoundError:
                    raise InvalidImageError(f"video not found: {path}") from None
                except OSError as err:
                    raise InvalidImageError(f"cannot read {path}: {err.strerror or err}") from None
                if not stat.S_ISREG(mode):
                    raise InvalidImageError(f"{path} is not a regular file (a folder, FIFO or device is not a video)")
                cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
                what = f"cannot decode {path} as a video (not a video file, or an unsupported codec)"
            else:
                raise InvalidArgumentError(
                    f"a video source is a path, a camera index or a URL, got {type(source).__name__}"
                )
            if not cap.isOpened():
                cap.release()
                raise InvalidImageError(what)
        if self._kind == "file":
            cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
        return cap

    def _probe(self, max_pixels: int) -> VideoInfo:
        cap = self._cap
        native = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if not math.isfinite(native) or native <= 0 or native > 1000:
            native = _DEFAULT_FPS
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        frame_count = int(count) if self._kind == "file" and math.isfinite(count) and count > 0 else None
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        if w * h > max_pixels:
            raise InvalidImageError(
                f"{self.name}: frames of {w}x{h} pixels exceed the limit of {max_pixels} (FACEPRINT_MAX_PIXELS)"
            )
        return VideoInfo(self.name, self._kind, native, frame_count, w, h)

    # -- iteration ---------------------------------------------------------------------------
    def __iter__(self) -> Iterator[VideoFrame]:
        if self._iterated:
            raise InvalidArgumentError(f"{self.name}: a VideoReader is read once; open the video again")
        self._iterated = True
        return self._frames()

    def _frames(self) -> Iterator[VideoFrame]:
        cap, native = self._cap, self.info.native_fps
        step = 0.0 if self.fps is None or self.fps >= native else 1.0 / self.fps
        next_t = 0.0
        t0 = time.monotonic()
        while True:
            ok, bgr = cap.read()
            if not ok or bgr is None:
                break
            index = self.frames_read
            self.frames_read += 1
            t = time.monotonic() - t0 if self.info.live else index / native
            if self.max_seconds is not None and t >= self.max_seconds:
                self._stopped_by_limit = True
                break
            if step and t + 1e-6 < next_t:
                continue
            next_t = (next_t + step) if step else t
            if step and next_t <= t:  # a stall in the timestamps: resynchronise
                next_t = t + step
            if bgr.ndim == 2:
                bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
            if bgr.shape[0] * bgr.shape[1] > self._max_pixels:  # a stream that changes size mid-way
                raise InvalidImageError(
                    f"{self.name}: frame {index} of {bgr.shape[1]}x{bgr.shape[0]} pixels exceeds the limit of "
                    f"{self._max_pixels} (FACEPRINT_MAX_PIXELS)"
                )
            rgb = np.asarray(cv2.cvtColor(bgr[..., :3], cv2.COLOR_BGR2RGB), dtype=np.uint8)
            yield VideoFrame(index, t, np.ascontiguousarray(_downscale(rgb, self.max_side)))
        self.close()

    @property
    def output_fps(self) -> float:
        """The rate of the frames yielded: ``fps`` when it subsamples, else the source's."""
        native = self.info.native_fps
        return native if self.fps is None or self.fps >= native else float(self.fps)

    @property
    def stopped_at_limit(self) -> bool:
        """True when reading stopped at ``max_seconds`` before the end of the source."""
        return self._stopped_by_limit

    @property
    def ended_early(self) -> bool:
        """True when a file stopped decoding well before the frame count its header declares (truncated or
        corrupt); False for cameras, streams, files without a count, and reads stopped at ``max_seconds``."""
        count = self.info.frame_count
        if count is None or self._stopped_by_limit or not self._iterated:
            return False
        # container counts are estimates: allow a few frames (and 2 %) of slack
        return self.frames_read < count - max(3, int(0.02 * count))

    def close(self) -> None:
        self._cap.release()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
