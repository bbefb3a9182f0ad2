"""Image loading and validation: everything that enters faceprint goes through :func:`load_image`.

Accepts a path, raw bytes, a binary file object, a PIL image or a numpy array and returns an
RGB ``uint8`` ``(H, W, 3)`` array, with EXIF orientation applied. Grayscale, RGBA, palette,
16-bit and float inputs are converted; anything else raises :class:`InvalidImageError` with a
one-line reason. A decompression-bomb guard rejects images over ``max_pixels``.
"""

from __future__ import annotations

import io
import os
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Union

import numpy as np
from PIL import Image as PILImage
from PIL import ImageOps, UnidentifiedImageError

from .errors import ImageTooLargeError, InvalidImageError
from .settings import DEFAULT_MAX_PIXELS, current_settings
from .types import Image

__all__ = ["ImageInput", "load_image", "DEFAULT_MAX_PIXELS", "max_pixels", "describe_source"]

ImageInput = Union[str, os.PathLike, bytes, bytearray, memoryview, IO[bytes], np.ndarray, PILImage.Image]  # noqa: UP007


def max_pixels() -> int:
    """The pixel limit from the environment: ``FACEPRINT_MAX_PIXELS``, else :data:`DEFAULT_MAX_PIXELS`.

    Raises
    ------
    InvalidImageError
        ``FACEPRINT_MAX_PIXELS`` is not a positive integer.
    """
    return current_settings().max_pixels


def describe_source(source: object) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, np.ndarray):
        return f"array {source.dtype} {source.shape}"
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"{len(source)} bytes"
    return type(source).__name__


def load_image(source: ImageInput, *, max_pixels: int | None = None) -> Image:
    """Load ``source`` as an RGB uint8 ``(H, W, 3)`` array.

    Parameters
    ----------
    source
        A file path, encoded bytes, a binary file object, a PIL image or a numpy array
        (arrays are taken as RGB; 2-D arrays as grayscale; 4 channels as RGBA).
    max_pixels
        Reject images with more pixels than this (default :data:`DEFAULT_MAX_PIXELS`, or the
        ``FACEPRINT_MAX_PIXELS`` environment variable).

    Raises
    ------
    InvalidImageError
        Missing / empty / corrupt / truncated / non-image input, or an unsupported array.
    ImageTooLargeError
        More pixels than ``max_pixels``.

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
        return _from_pil(source, limit, describe_source(source))
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise InvalidImageError(f"{path}: no such file")
        if path.is_dir():
            raise InvalidImageError(f"{path}: is a directory, not an image")
        try:
            data = path.read_bytes()
        except OSError as err:
            raise InvalidImageError(f"{path}: cannot read: {err.strerror or err}") from err
        return _decode(data, limit, str(path))
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _decode(bytes(source), limit, describe_source(source))
    if hasattr(source, "read"):
        data = source.read()
        if not isinstance(data, (bytes, bytearray)):
            raise InvalidImageError("file object must be opened in binary mode")
        return _decode(bytes(data), limit, getattr(source, "name", "file object"))
    raise InvalidImageError(
        f"expected a path, bytes, file object, PIL image or numpy array, got {type(source).__name__}"
    )


def _resolve_limit(limit: int | None) -> int:
    if limit is None:
        return max_pixels()
    if limit <= 0:
        raise InvalidImageError(f"max_pixels must be positive, got {limit}")
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


def _decode(data: bytes, limit: int, what: str) -> Image:
    if not data:
        raise InvalidImageError(f"{what}: empty file")
    try:
        with warnings.catch_warnings(), _pillow_limit(limit):
            # Our own limit replaces Pillow's bomb guard (checked from the header, before any decoding).
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            pil = PILImage.open(io.BytesIO(data))
            _check_size(pil.width, pil.height, limit, what)
            pil.load()
    except (ImageTooLargeError, InvalidImageError):
        raise
    except UnidentifiedImageError as err:
        raise InvalidImageError(f"{what}: not a recognised image format") from err
    except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning) as err:
        raise ImageTooLargeError(f"{what}: {err}") from err
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise InvalidImageError(f"{what}: corrupt or truncated image ({err})") from err
    return _from_pil(pil, limit, what)


def _from_pil(pil: PILImage.Image, limit: int, what: str) -> Image:
    _check_size(pil.width, pil.height, limit, what)
    try:
        pil = ImageOps.exif_transpose(pil) or pil
    except Exception:  # noqa: BLE001 - a broken EXIF block must not lose the image
        pass
    mode = pil.mode
    if mode.startswith("I;16"):
        # 16-bit data is scaled by its full range, however dark the image is.
        gray16 = np.asarray(pil).astype(np.float64) * (255.0 / 65535.0) + 0.5
        return _from_array(np.clip(gray16, 0, 255).astype(np.uint8), limit)
    if mode in ("I", "F"):
        return _from_array(np.asarray(pil), limit)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in pil.info):
        pil = pil.convert("RGBA")
        return _composite_rgba(np.asarray(pil))
    if mode != "RGB":
        pil = pil.convert("RGB")
    arr = np.asarray(pil, dtype=np.uint8)
    return np.ascontiguousarray(arr)


def _composite_rgba(arr: np.ndarray) -> Image:
    # Transparent pixels over white: a transparent background must not become a black face.
    rgb = arr[..., :3].astype(np.float32)
    alpha = arr[..., 3:4].astype(np.float32) / 255.0
    out = rgb * alpha + 255.0 * (1.0 - alpha)
    return np.ascontiguousarray(np.clip(out + 0.5, 0, 255).astype(np.uint8))


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
