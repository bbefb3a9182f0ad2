"""Image loading and validation: everything that enters faceprint goes through :func:`load_image`.

Accepts a path, raw bytes, a binary file object, a PIL image or a numpy array and returns an
RGB ``uint8`` ``(H, W, 3)`` array, with EXIF orientation applied. Grayscale, RGBA, palette,
16-bit and float inputs are converted; anything else raises :class:`InvalidImageError` with a
one-line reason. A decompression-bomb guard rejects images over ``max_pixels``.

Files are read only when they are regular files (a symlink to ``/dev/zero``, a FIFO or a device is
refused without reading from it) and never beyond ``max_bytes`` (``FACEPRINT_MAX_FILE_BYTES``).
Decoding costs little more than the decoded image itself: alpha compositing and 16-bit scaling run
over bands of rows, never over a floating-point copy of the whole image. A caller that needs less
than the full resolution (detection never needs more than ~1,280 px on the long side) can have a
JPEG decoded reduced, with libjpeg's DCT scaling: :func:`load_image_reduced`.
"""

from __future__ import annotations

import io
import math
import numbers
import os
import stat
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Union, cast

import numpy as np
from PIL import Image as PILImage
from PIL import ImageOps, UnidentifiedImageError

from .errors import ImageTooLargeError, InvalidArgumentError, InvalidImageError
from .settings import DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_PIXELS, current_settings
from .types import Image

__all__ = [
    "ImageInput",
    "NamedBytes",
    "load_image",
    "load_image_reduced",
    "read_image_bytes",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_FILE_BYTES",
    "max_pixels",
    "max_file_bytes",
    "describe_source",
]

ImageInput = Union[str, os.PathLike, bytes, bytearray, memoryview, IO[bytes], np.ndarray, PILImage.Image]  # noqa: UP007


def max_pixels() -> int:
    """The pixel limit from the environment: ``FACEPRINT_MAX_PIXELS``, else :data:`DEFAULT_MAX_PIXELS`.

    Raises
    ------
    InvalidImageError
        ``FACEPRINT_MAX_PIXELS`` is not a positive integer.
    """
    return current_settings().max_pixels


def max_file_bytes() -> int:
    """The byte limit from the environment: ``FACEPRINT_MAX_FILE_BYTES``, else :data:`DEFAULT_MAX_FILE_BYTES`.

    Raises
    ------
    InvalidImageError
        ``FACEPRINT_MAX_FILE_BYTES`` is not a positive integer.
    """
    return current_settings().max_file_bytes


class NamedBytes(io.BytesIO):
    """Bytes already read (a file's, an upload's) under the name messages and sources give them
    (:func:`describe_source` reads ``name``)."""

    def __init__(self, data: bytes, name: str) -> None:
        super().__init__(data)
        self.name = name


def describe_source(source: object) -> str:
    """How messages and gallery sources name ``source``: a path as text, where the bytes of a
    non-UTF-8 file name show as ``\\xe9`` escapes (never lone surrogates, which no UTF-8 output
    or database accepts); an array by dtype and shape; bytes by their length; a file object by its
    ``name`` when it has one (an open file, an upload), else its type.

    Examples
    --------
    >>> describe_source(os.fsdecode(b"caf\\xe9.jpg"))
    'caf\\\\xe9.jpg'
    """
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if isinstance(text, bytes):
            text = os.fsdecode(text)
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if isinstance(source, np.ndarray):
        return f"array {source.dtype} {source.shape}"
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"{len(source)} bytes"
    name = getattr(source, "name", None) if hasattr(source, "read") else None
    if isinstance(name, str) and name:
        return describe_source(name)
    return type(source).__name__


def load_image(source: ImageInput, *, max_pixels: int | None = None, max_bytes: int | None = None) -> Image:
    """Load ``source`` as an RGB uint8 ``(H, W, 3)`` array.

    Parameters
    ----------
    source
        A file path, encoded bytes, a binary file object, a PIL image or a numpy array
        (arrays are taken as RGB; 2-D arrays as grayscale; 4 channels as RGBA).
    max_pixels
        Reject images with more pixels than this (default :data:`DEFAULT_MAX_PIXELS`, or the
        ``FACEPRINT_MAX_PIXELS`` environment variable).
    max_bytes
        Read at most this many bytes of an encoded image (a path, bytes or a file object) and
        reject larger ones (default :data:`DEFAULT_MAX_FILE_BYTES`, or ``FACEPRINT_MAX_FILE_BYTES``).

    Raises
    ------
    InvalidImageError
        Missing / empty / corrupt / truncated / non-image input, a path that is not a regular file
        (a device, a FIFO, a socket, or a symlink to one), or an unsupported array.
    ImageTooLargeError
        More pixels than ``max_pixels``, or more bytes than ``max_bytes``.

    Examples
    --------
    >>> import numpy as np
    >>> load_image(np.zeros((4, 6), np.uint8)).shape
    (4, 6, 3)
    """
    limit = _resolve_limit(max_pixels)
    if isinstance(source, np.ndarray):
        return _from_array(source, limit)
    if isinstance(source, PILImage.Image):
        return _from_pil(source, limit, describe_source(source), owned=False)
    data, what = read_image_bytes(source, max_bytes=max_bytes)
    return _decode(data, limit, what)


def load_image_reduced(
    source: ImageInput, long_side: int, *, max_pixels: int | None = None, max_bytes: int | None = None
) -> tuple[Image, float]:
    """Load ``source`` as :func:`load_image` does, decoded reduced where that is cheap.

    A JPEG larger than ``long_side`` is decoded with libjpeg's DCT scaling (1/2, 1/4 or 1/8) at the
    smallest of those sizes whose long side is still at least ``long_side``; that decode costs a
    fraction of the full one in time and memory (measured in ``tests/test_io.py``: an 8000x6000
    JPEG). Other formats, arrays and PIL images come at full size: nothing is resized here, so a
    caller that needs at most ``long_side`` still resizes. Limits and errors are those of
    :func:`load_image`, ``max_pixels`` applying to the full size read from the header.

    Parameters
    ----------
    source
        As :func:`load_image`.
    long_side : int
        The long side the caller needs, in pixels (e.g. a detector's ``max_side``).
    max_pixels, max_bytes
        As :func:`load_image`.

    Returns
    -------
    image : ndarray
        RGB ``uint8`` ``(H, W, 3)``, EXIF orientation applied.
    scale : float
        The image's long side over the source's (1.0 when not reduced): a coordinate in the image
        is ``scale`` times the same point's coordinate in the source.

    Raises
    ------
    InvalidArgumentError
        ``long_side`` is not a positive integer.
    InvalidImageError, ImageTooLargeError
        As :func:`load_image`.

    Examples
    --------
    >>> import io
    >>> from PIL import Image as PILImage
    >>> buf = io.BytesIO()
    >>> PILImage.new("RGB", (4000, 3000), "gray").save(buf, "JPEG")
    >>> image, scale = load_image_reduced(buf.getvalue(), 1280)
    >>> image.shape, scale
    ((1500, 2000, 3), 0.5)
    """
    if isinstance(long_side, bool) or not isinstance(long_side, numbers.Integral) or long_side < 1:
        raise InvalidArgumentError(f"long_side must be a positive integer, got {long_side!r}")
    if isinstance(source, (np.ndarray, PILImage.Image)):
        return load_image(source, max_pixels=max_pixels), 1.0
    limit = _resolve_limit(max_pixels)
    data, what = read_image_bytes(source, max_bytes=max_bytes)
    sizes: list[int] = []
    image = _decode(data, limit, what, reduce_to=int(long_side), full_long_side=sizes)
    return image, max(image.shape[:2]) / sizes[0] if sizes else 1.0


def read_image_bytes(source: ImageInput, *, max_bytes: int | None = None) -> tuple[bytes, str]:
    """The encoded bytes of a path, bytes or binary file object, and the name errors give it.

    A path must name a regular file (symlinks are followed): a directory, a device (``/dev/zero``,
    ``/dev/urandom``), a FIFO or a socket is refused without reading from it, and a FIFO is opened
    non-blocking, so nothing waits for a writer. At most ``max_bytes`` bytes are read.

    Raises
    ------
    InvalidImageError
        Missing or unreadable path, not a regular file, a text-mode file object, or a source that
        is no path, bytes or file object.
    ImageTooLargeError
        More than ``max_bytes`` bytes (default ``FACEPRINT_MAX_FILE_BYTES``).

    Examples
    --------
    >>> read_image_bytes(b"GIF89a")
    (b'GIF89a', '6 bytes')
    """
    cap = _resolve_byte_limit(max_bytes)
    if isinstance(source, (str, os.PathLike)):
        what = describe_source(source)
        return _read_path(Path(os.fsdecode(source)), cap, what), what
    if isinstance(source, (bytes, bytearray, memoryview)):
        what = describe_source(source)
        if len(source) > cap:
            raise _too_many_bytes(what, len(source), cap)
        return bytes(source), what
    if hasattr(source, "read"):
        what = describe_source(str(getattr(source, "name", "file object")))
        data = _read_stream(cast(IO[bytes], source), cap + 1, what)
        if len(data) > cap:
            raise _too_many_bytes(what, None, cap)
        return data, what
    raise InvalidImageError(
        f"expected a path, bytes, file object, PIL image or numpy array, got {type(source).__name__}"
    )


def _read_stream(stream: IO[bytes], limit: int, what: str) -> bytes:
    """Up to ``limit`` bytes of ``stream``, in as many reads as a raw stream needs (it may return
    fewer bytes than asked before its end)."""
    parts: list[bytes] = []
    total = 0
    while total < limit:
        part = stream.read(min(limit - total, 1 << 22))
        if part is None:
            raise InvalidImageError(f"{what}: no data ready (a non-blocking stream)")
        if not isinstance(part, (bytes, bytearray, memoryview)):
            raise InvalidImageError("file object must be opened in binary mode")
        if not part:
            break
        parts.append(bytes(part))
        total += len(part)
    return b"".join(parts)


def _too_many_bytes(what: str, size: int | None, cap: int) -> ImageTooLargeError:
    size_text = f"{size:,} bytes" if size is not None else "more bytes"
    return ImageTooLargeError(
        f"{what}: {size_text} exceeds the file size limit of {cap:,} bytes "
        "(set max_bytes / FACEPRINT_MAX_FILE_BYTES to allow it)"
    )


def _file_kind(mode: int) -> str:
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _check_regular(path: str, mode: int) -> None:
    if stat.S_ISDIR(mode):
        raise InvalidImageError(f"{path}: is a directory, not an image")
    if not stat.S_ISREG(mode):
        raise InvalidImageError(f"{path}: is {_file_kind(mode)}, not a regular image file")


_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)


def _read_path(path: Path, cap: int, what: str) -> bytes:
    try:
        before = os.stat(path)  # follows symlinks: the file that would be read
    except (FileNotFoundError, NotADirectoryError):
        raise InvalidImageError(f"{what}: no such file") from None
    except (OSError, ValueError) as err:  # ValueError: an embedded NUL byte
        raise InvalidImageError(f"{what}: cannot read: {getattr(err, 'strerror', None) or err}") from err
    _check_regular(what, before.st_mode)
    if before.st_size > cap:
        raise _too_many_bytes(what, before.st_size, cap)
    try:
        # non-blocking, so a FIFO swapped in after the stat cannot hang the open; checked again below
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as err:
        raise InvalidImageError(f"{what}: cannot read: {err.strerror or err}") from err
    with os.fdopen(fd, "rb") as fh:
        _check_regular(what, os.fstat(fd).st_mode)
        try:
            data = fh.read(cap + 1)
        except OSError as err:
            raise InvalidImageError(f"{what}: cannot read: {err.strerror or err}") from err
    if len(data) > cap:  # the file grew after the stat
        raise _too_many_bytes(what, None, cap)
    return data


def _resolve_limit(limit: int | None) -> int:
    if limit is None:
        return max_pixels()
    if limit <= 0:
        raise InvalidImageError(f"max_pixels must be positive, got {limit}")
    return int(limit)


def _resolve_byte_limit(limit: int | None) -> int:
    if limit is None:
        return max_file_bytes()
    if limit <= 0:
        raise InvalidImageError(f"max_bytes must be positive, got {limit}")
    return int(limit)


def _check_size(width: int, height: int, limit: int, what: str) -> None:
    if width <= 0 or height <= 0:
        raise InvalidImageError(f"{what}: image has no pixels ({width}x{height})")
    if width * height > limit:
        raise ImageTooLargeError(
            f"{what}: {width}x{height} = {width * height:,} pixels exceeds the limit of {limit:,} "
            "(set max_pixels / FACEPRINT_MAX_PIXELS to allow it)"
        )


_pillow_lock = threading.Lock()


@contextmanager
def _pillow_limit(limit: int) -> Iterator[None]:
    """Raise Pillow's own bomb limit to ours while opening (Pillow errors at 2x its limit)."""
    with _pillow_lock:
        saved = PILImage.MAX_IMAGE_PIXELS
        if saved is not None and saved < limit:
            PILImage.MAX_IMAGE_PIXELS = limit
        try:
            yield
        finally:
            PILImage.MAX_IMAGE_PIXELS = saved


_libtiff_quiet = False


def _quiet_libtiff() -> None:
    """Stop libtiff printing its errors on stderr (``JPEGLib: Not a JPEG file ...`` for a damaged
    TIFF): Pillow silences libtiff's warnings but not its errors, and a damaged file is reported
    once, as our :class:`InvalidImageError`. Best effort: a libtiff that cannot be found is left as is."""
    global _libtiff_quiet
    if _libtiff_quiet:
        return
    _libtiff_quiet = True
    import ctypes
    import ctypes.util

    bundled = sorted((Path(PILImage.__file__).parent.parent / "pillow.libs").glob("libtiff*.so*"))
    candidates = [str(p) for p in bundled] + [name for name in [ctypes.util.find_library("tiff")] if name]
    for candidate in candidates:
        try:
            libtiff = ctypes.CDLL(candidate)
            libtiff.TIFFSetErrorHandler.restype = ctypes.c_void_p
            libtiff.TIFFSetErrorHandler.argtypes = [ctypes.c_void_p]
            libtiff.TIFFSetErrorHandler(None)
        except (OSError, AttributeError):
            continue


def _decode(
    data: bytes, limit: int, what: str, *, reduce_to: int | None = None, full_long_side: list[int] | None = None
) -> Image:
    """Decode ``data``; with ``reduce_to``, a JPEG at the smallest DCT scale whose long side is
    still >= ``reduce_to`` (its full long side then appended to ``full_long_side``)."""
    if not data:
        raise InvalidImageError(f"{what}: empty file")
    try:
        _quiet_libtiff()
        with warnings.catch_warnings(), _pillow_limit(limit):
            # Our own limit replaces Pillow's bomb guard (checked from the header, before any decoding);
            # Pillow's warnings about a damaged file ("Corrupt EXIF data" ...) are not for the user:
            # the file decodes, or the error below says what is wrong.
            warnings.simplefilter("ignore")
            pil = PILImage.open(io.BytesIO(data))
            _check_size(pil.width, pil.height, limit, what)
            if reduce_to is not None and pil.format == "JPEG" and max(pil.size) > reduce_to:
                full = max(pil.size)
                ratio = reduce_to / full
                # draft picks the largest DCT reduction that keeps the size >= the one asked for
                pil.draft(pil.mode, (math.ceil(pil.width * ratio), math.ceil(pil.height * ratio)))
                if full_long_side is not None:
                    full_long_side.append(full)
            pil.load()
    except (ImageTooLargeError, InvalidImageError):
        raise
    except UnidentifiedImageError as err:
        raise InvalidImageError(f"{what}: not a recognised image format") from err
    except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning) as err:
        raise ImageTooLargeError(f"{what}: {err}") from err
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise InvalidImageError(f"{what}: corrupt or truncated image ({err})") from err
    return _from_pil(pil, limit, what, owned=True)


def _oriented(pil: PILImage.Image, owned: bool) -> PILImage.Image:
    """``pil`` turned upright by its EXIF orientation; no copy when it is upright already, and
    none when we own it (``owned``: decoded here, so it may be turned in place)."""
    try:
        orientation = pil.getexif().get(0x0112, 1)  # ExifTags.Base.Orientation
        if orientation in (None, 1):
            return pil
        if owned:
            ImageOps.exif_transpose(pil, in_place=True)
            return pil
        return ImageOps.exif_transpose(pil) or pil
    except Exception:  # noqa: BLE001 - a broken EXIF block must not lose the image
        return pil


_BAND_PIXELS = 1 << 20
"""Pixels per band of rows in the band-wise conversions (a few MB of temporaries)."""


def _bands(height: int, width: int) -> range:
    return range(0, height, _band_rows(height, width))


def _band_rows(height: int, width: int) -> int:
    return max(1, _BAND_PIXELS // max(1, width))


def _from_pil(pil: PILImage.Image, limit: int, what: str, *, owned: bool) -> Image:
    _check_size(pil.width, pil.height, limit, what)
    pil = _oriented(pil, owned)
    mode = pil.mode
    width, height = pil.size
    step = _band_rows(height, width)
    if mode.startswith("I;16"):
        # 16-bit data is scaled by its full range, however dark the image is (band by band).
        gray = np.empty((height, width), np.uint8)
        for top in _bands(height, width):
            band = np.asarray(pil.crop((0, top, width, min(height, top + step)))).astype(np.float32)
            gray[top : top + step] = np.clip(band * np.float32(255.0 / 65535.0) + 0.5, 0, 255).astype(np.uint8)
        return _from_array(gray, limit)
    if mode in ("I", "F"):
        return _from_array(np.asarray(pil), limit)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in pil.info):
        if mode != "RGBA":
            pil = pil.convert("RGBA")
        opaque = pil.getchannel("A").getextrema() == (255, 255)  # then the colours as they are
        out = np.empty((height, width, 3), np.uint8)
        for top in _bands(height, width):
            band = np.asarray(pil.crop((0, top, width, min(height, top + step))))
            out[top : top + step] = band[..., :3] if opaque else _composite_rgba(band)
        return out
    if mode != "RGB":
        pil = pil.convert("RGB")
    # Band by band: np.asarray(pil) goes through a full-size bytes copy (the peak would be 3x the image).
    out = np.empty((height, width, 3), np.uint8)
    for top in _bands(height, width):
        out[top : top + step] = np.asarray(pil.crop((0, top, width, min(height, top + step))))
    return out


def _composite_rgba(arr: np.ndarray) -> Image:
    # Transparent pixels over white: a transparent background must not become a black face.
    # Band by band, so the float temporaries stay a few MB whatever the image size.
    height, width = arr.shape[:2]
    step = _band_rows(height, width)
    out = np.empty((height, width, 3), np.uint8)
    for top in _bands(height, width):
        band = arr[top : top + step]
        rgb = band[..., :3].astype(np.uint16)
        alpha = band[..., 3:4].astype(np.uint16)
        # round(rgb * a / 255 + 255 * (1 - a / 255)) in integers: at most 65,152, so uint16 holds it
        mixed = rgb * alpha + 255 * (255 - alpha) + 127
        out[top : top + step] = (mixed // 255).astype(np.uint8)
    return out


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            raise InvalidImageError("image array contains NaN or infinite values")
        hi = float(arr.max()) if arr.size else 0.0
        lo = float(arr.min()) if arr.size else 0.0
        if lo < 0.0 or hi > 255.0:
            raise InvalidImageError(f"float image values must lie in [0, 1] or [0, 255], got [{lo:g}, {hi:g}]")
        scale = 255.0 if hi <= 1.0 else 1.0
        return np.clip(arr * scale + 0.5, 0, 255).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.integer):
        if arr.size and int(arr.min()) < 0:
            raise InvalidImageError(f"integer image values must be non-negative, got dtype {arr.dtype}")
        hi = int(arr.max()) if arr.size else 0
        if hi <= 255:
            return arr.astype(np.uint8)
        # 16-bit (or wider) data: scale by the dtype's range, 65535 for 16-bit images.
        top = 65535 if hi <= 65535 else hi  # wider than 16 bit: stretch the data's own range
        return (arr.astype(np.float64) * (255.0 / top) + 0.5).astype(np.uint8)
    raise InvalidImageError(f"unsupported image dtype {arr.dtype}")


def _from_array(arr: np.ndarray, limit: int) -> Image:
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        _check_size(arr.shape[1], arr.shape[0], limit, "array")
        gray = _to_uint8(arr)
        return np.ascontiguousarray(np.repeat(gray[..., None], 3, axis=2))
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise InvalidImageError(f"expected an image array HxW, HxWx3 or HxWx4, got {arr.dtype} {arr.shape}")
    _check_size(arr.shape[1], arr.shape[0], limit, "array")
    out = _to_uint8(arr)
    if out.shape[2] == 4:
        return _composite_rgba(out)
    return np.ascontiguousarray(out)
