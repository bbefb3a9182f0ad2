"""A bad-input corpus made from one real face photo: a few hundred hostile or odd files (issue 16).

:func:`make_corpus` writes them into a folder and returns one :class:`Item` per file, each with the
class it belongs to and what a correct outcome is:

* ``container``: the face in every format Pillow writes (JPEG baseline / progressive / 4:4:4, PNG,
  GIF, BMP, TIFF raw / LZW / JPEG / deflate, WebP lossy / lossless, JPEG 2000, PPM, TGA, PCX, SGI,
  ICO, QOI, AVIF ...), and as OpenCV writes it: decodes, and the face is found;
* ``mode``: grayscale, LA, palette, palette + transparency, RGBA, CMYK JPEG, 16-bit PNG, 32-bit
  integer and float TIFF, 1-bit: decodes, the face is found;
* ``orientation``: EXIF orientations 1-8: decodes upright (the face is found);
* ``shape``: 1x1, 2x2, 1x100000, 100000x1: decodes or a clean error, never a face;
* ``truncated``: JPEG, PNG, GIF, TIFF and WebP cut at many offsets: a result or a clean error;
* ``bitflip``: seeded bit flips in headers and bodies: a result or a clean error;
* ``bomb``: PNG / GIF / TIFF / WebP / JPEG headers that claim huge sizes, and a large but allowed
  PNG that decompresses to 49 megapixels: :class:`ImageTooLargeError` (or a clean error) without
  the memory that size would take, or, for the allowed one, the image;
* ``special``: a symlink to ``/dev/zero`` and ``/dev/urandom``, a FIFO, a directory, a dangling
  symlink, an empty file, a text file: a clean error at once;
* ``name``: the face under hostile file names (Rich markup, a newline, a non-UTF-8 byte, a leading
  dash, 240 characters): decodes, and the CLI prints the name literally.

Nothing here reads the network; everything is seeded, so the corpus is the same on every run.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from PIL import features

__all__ = ["Item", "make_corpus", "CLASSES"]

CLASSES = ("container", "mode", "orientation", "shape", "truncated", "bitflip", "bomb", "special", "name")


@dataclass(frozen=True)
class Item:
    """One corpus file: its path, class, and whether a correct outcome must find the face."""

    path: Path
    kind: str
    face: bool = False  # decodes and the real face must be found
    refused: str | None = None  # the error class a correct outcome must raise (None: any clean one, or a result)


def _encode(img: PILImage.Image, fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_header(width: int, height: int, body: bytes = b"") -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", body) + _png_chunk(b"IEND", b"")


def make_corpus(face_path: Path, out: Path, *, seed: int = 0) -> list[Item]:
    """Write the corpus made from ``face_path`` (a clear one-face photo) into ``out``; see the module."""
    import cv2

    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    face = PILImage.open(face_path).convert("RGB")
    items: list[Item] = []

    def put(name: str, data: bytes, kind: str, **expect: object) -> None:
        path = out / name
        path.write_bytes(data)
        items.append(Item(path, kind, **expect))  # type: ignore[arg-type]

    # -- containers --------------------------------------------------------------------------
    writers: dict[str, Callable[[], bytes]] = {
        "baseline.jpg": lambda: _encode(face, "JPEG", quality=90),
        "progressive.jpg": lambda: _encode(face, "JPEG", quality=85, progressive=True),
        "444.jpg": lambda: _encode(face, "JPEG", quality=95, subsampling=0),
        "low_quality.jpg": lambda: _encode(face, "JPEG", quality=5),
        "face.png": lambda: _encode(face, "PNG"),
        "interlaced.png": lambda: _encode(face, "PNG", optimize=True),
        "face.gif": lambda: _encode(face, "GIF"),
        "face.bmp": lambda: _encode(face, "BMP"),
        "raw.tif": lambda: _encode(face, "TIFF"),
        "lzw.tif": lambda: _encode(face, "TIFF", compression="tiff_lzw"),
        "jpeg.tif": lambda: _encode(face, "TIFF", compression="jpeg"),
        "deflate.tif": lambda: _encode(face, "TIFF", compression="tiff_adobe_deflate"),
        "face.ppm": lambda: _encode(face, "PPM"),
        "face.tga": lambda: _encode(face, "TGA"),
        "face.pcx": lambda: _encode(face, "PCX"),
        "face.sgi": lambda: _encode(face, "SGI"),
        "face.ico": lambda: _encode(face.resize((256, 256)), "ICO", sizes=[(256, 256)]),
        "face.im": lambda: _encode(face, "IM"),
        "face.dib": lambda: _encode(face, "DIB"),
        "face.qoi": lambda: _encode(face, "QOI"),
        "multi.mpo": lambda: _encode(face, "MPO"),
        "animated.gif": lambda: _encode(face, "GIF", save_all=True, append_images=[face.rotate(10)], duration=100),
    }
    if features.check("webp"):
        writers["lossy.webp"] = lambda: _encode(face, "WEBP", quality=80)
        writers["lossless.webp"] = lambda: _encode(face, "WEBP", lossless=True)
    if features.check("jpg_2000"):
        writers["face.jp2"] = lambda: _encode(face, "JPEG2000")
    if features.check("avif"):
        writers["face.avif"] = lambda: _encode(face, "AVIF", quality=80)
    bgr = cv2.cvtColor(np.asarray(face), cv2.COLOR_RGB2BGR)
    for ext in (".jpg", ".png", ".bmp", ".tiff", ".webp", ".ppm"):
        ok, buf = cv2.imencode(ext, bgr)
        if ok:
            writers[f"opencv{ext}"] = lambda b=buf: b.tobytes()
    for name, write in writers.items():
        put(f"container_{name}", write(), "container", face=True)

    # -- modes -------------------------------------------------------------------------------
    gray = face.convert("L")
    arr16 = (np.asarray(gray).astype(np.uint16) * 257).astype(np.uint16)
    modes: dict[str, bytes] = {
        "gray.png": _encode(gray, "PNG"),
        "la.png": _encode(face.convert("LA"), "PNG"),
        "palette.png": _encode(face.convert("P", palette=PILImage.Palette.ADAPTIVE), "PNG"),
        "palette_transparent.png": _encode(face.convert("P", palette=PILImage.Palette.ADAPTIVE), "PNG", transparency=0),
        "rgba.png": _encode(face.convert("RGBA"), "PNG"),
        "cmyk.jpg": _encode(face.convert("CMYK"), "JPEG"),
        "cmyk.tif": _encode(face.convert("CMYK"), "TIFF"),
        "gray16.png": _encode(PILImage.fromarray(arr16), "PNG"),
        "int32.tif": _encode(PILImage.fromarray(np.asarray(gray).astype(np.int32) * 1000), "TIFF"),
        "float.tif": _encode(PILImage.fromarray(np.asarray(gray).astype(np.float32) / 255.0), "TIFF"),
        "gray.jpg": _encode(gray, "JPEG"),
    }
    for name, data in modes.items():
        put(f"mode_{name}", data, "mode", face=True)
    put("mode_one_bit.png", _encode(face.convert("1"), "PNG"), "mode")  # dithered: a face is not promised

    # -- EXIF orientations ---------------------------------------------------------------------
    stored_as = {  # what is stored so that the orientation tag turns it upright again
        1: lambda im: im,
        2: lambda im: im.transpose(PILImage.Transpose.FLIP_LEFT_RIGHT),
        3: lambda im: im.transpose(PILImage.Transpose.ROTATE_180),
        4: lambda im: im.transpose(PILImage.Transpose.FLIP_TOP_BOTTOM),
        5: lambda im: im.transpose(PILImage.Transpose.TRANSPOSE),
        6: lambda im: im.transpose(PILImage.Transpose.ROTATE_90),
        7: lambda im: im.transpose(PILImage.Transpose.TRANSVERSE),
        8: lambda im: im.transpose(PILImage.Transpose.ROTATE_270),
    }
    for orientation, stored in stored_as.items():
        exif = PILImage.Exif()
        exif[0x0112] = orientation
        put(
            f"orientation_{orientation}.jpg",
            _encode(stored(face), "JPEG", exif=exif.tobytes()),
            "orientation",
            face=True,
        )

    # -- shapes ------------------------------------------------------------------------------
    for w, h in ((1, 1), (2, 2), (1, 100_000), (100_000, 1), (3, 5000)):
        tile = PILImage.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8))
        put(f"shape_{w}x{h}.png", _encode(tile, "PNG"), "shape")
    put("shape_1x1.jpg", _encode(PILImage.new("RGB", (1, 1), (90, 60, 40)), "JPEG"), "shape")
    put("shape_1x1.gif", _encode(PILImage.new("P", (1, 1)), "GIF"), "shape")

    # -- truncations ---------------------------------------------------------------------------
    sources = {
        "jpg": _encode(face, "JPEG", quality=90),
        "png": _encode(face, "PNG"),
        "gif": _encode(face, "GIF"),
        "tif": _encode(face, "TIFF", compression="jpeg"),
    }
    if features.check("webp"):
        sources["webp"] = _encode(face, "WEBP")
    for ext, data in sources.items():
        n = len(data)
        cuts = sorted(
            {1, 2, 4, 8, 16, 33, 64, 128, 256, 512} | {int(n * f) for f in (0.1, 0.25, 0.5, 0.75, 0.9, 0.99)} | {n - 1}
        )
        for cut in cuts:
            if 0 < cut < n:
                put(f"truncated_{ext}_{cut}.{ext}", data[:cut], "truncated")

    # -- bit flips ---------------------------------------------------------------------------
    for ext, data in sources.items():
        for k in range(20):
            flipped = bytearray(data)
            region = (0, min(64, len(data))) if k < 10 else (64, len(data))
            for _ in range(1 + k % 3):
                pos = int(rng.integers(*region))
                flipped[pos] ^= 1 << int(rng.integers(0, 8))
            put(f"bitflip_{ext}_{k}.{ext}", bytes(flipped), "bitflip")

    # -- bombs -------------------------------------------------------------------------------
    put(
        "bomb_png_header.png",
        _png_header(100_000, 100_000, zlib.compress(b"\0" * 1000)),
        "bomb",
        refused="ImageTooLargeError",
    )
    put("bomb_png_65535.png", _png_header(65_535, 65_535), "bomb", refused="ImageTooLargeError")
    gif = bytearray(_encode(PILImage.new("P", (8, 8)), "GIF"))
    gif[6:10] = struct.pack("<HH", 65_535, 65_535)  # logical screen
    frame = gif.index(b"\x2c")  # image descriptor
    gif[frame + 5 : frame + 9] = struct.pack("<HH", 65_535, 65_535)
    put("bomb_gif.gif", bytes(gif), "bomb", refused="InvalidImageError")
    tif = bytearray(_encode(PILImage.new("L", (8, 8)), "TIFF"))
    ifd = struct.unpack("<I", tif[4:8])[0]
    for i in range(struct.unpack("<H", tif[ifd : ifd + 2])[0]):
        entry = ifd + 2 + 12 * i
        tag, typ = struct.unpack("<HH", tif[entry : entry + 4])
        if tag in (256, 257):  # ImageWidth, ImageLength
            fmt = "<H" if typ == 3 else "<I"
            tif[entry + 8 : entry + 8 + struct.calcsize(fmt)] = struct.pack(fmt, 60_000)
    put("bomb_tiff.tif", bytes(tif), "bomb", refused="ImageTooLargeError")
    if features.check("webp"):
        webp = bytearray(_encode(PILImage.new("RGB", (16, 16)), "WEBP", lossless=True))
        vp8l = webp.index(b"VP8L") + 8 + 1  # signature byte, then 14-bit width-1 and height-1
        bits = (16383) | (16383 << 14)
        webp[vp8l : vp8l + 4] = struct.pack(
            "<I", bits | (struct.unpack("<I", webp[vp8l : vp8l + 4])[0] & ~((1 << 28) - 1))
        )
        put("bomb_webp.webp", bytes(webp), "bomb", refused="InvalidImageError")
    jpg = bytearray(_encode(PILImage.new("RGB", (8, 8)), "JPEG"))
    sof = jpg.index(b"\xff\xc0")
    jpg[sof + 5 : sof + 9] = struct.pack(">HH", 65_500, 65_500)
    put("bomb_jpeg_sof.jpg", bytes(jpg), "bomb", refused="ImageTooLargeError")
    big = _encode(PILImage.new("RGBA", (7000, 7000), (200, 150, 100, 128)), "PNG")  # ~200 kB, 49 MP: allowed
    put("bomb_allowed_7000x7000_rgba.png", big, "bomb")

    # -- special files -------------------------------------------------------------------------
    def link(name: str, target: str) -> None:
        path = out / name
        path.symlink_to(target)
        items.append(Item(path, "special", refused="InvalidImageError"))

    if os.name == "posix":
        link("special_zero.jpg", "/dev/zero")
        link("special_urandom.png", "/dev/urandom")
        link("special_dangling.jpg", str(out / "not-there.jpg"))
        fifo = out / "special_fifo.jpg"
        os.mkfifo(fifo)
        items.append(Item(fifo, "special", refused="InvalidImageError"))
    folder = out / "special_folder.jpg"
    folder.mkdir()
    items.append(Item(folder, "special", refused="InvalidImageError"))
    put("special_empty.jpg", b"", "special", refused="InvalidImageError")
    put("special_text.jpg", b"this is not an image\n" * 20, "special", refused="InvalidImageError")
    put("special_html.png", b"<html><body>404</body></html>", "special", refused="InvalidImageError")

    # -- hostile names -------------------------------------------------------------------------
    jpeg = sources["jpg"]
    names = [
        "name_[bold]x[red].jpg",
        "name_[link=x]y.jpg",
        "name_new\nline.jpg",
        "name_tab\there.jpg",
        "-name_dash.jpg",
        " name_space .jpg",
        "name_" + "x" * 240 + ".jpg",
        "name_émoji_😀.jpg",
    ]
    if os.name == "posix":
        names.append(os.fsdecode(b"name_latin1_\xe9.jpg"))
    for name in names:
        path = out / name
        path.write_bytes(jpeg)
        items.append(Item(path, "name", face=True))
    return items
