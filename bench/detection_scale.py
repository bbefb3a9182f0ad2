"""Failures to acquire of YuNet by the scale it detects at (issue 16, item 3): large faces are missed.

YuNet misses faces that are very large in pixels: a clear 1024x768 close portrait gives no face at
native size, and the same image downscaled to <= 640 px does. This bench measures, per detector
configuration (``max_side``: the first pass's longer side; ``coarse_side``: a second pass at that
side when the image is larger, merged by NMS), the share of images where no face is found:

* ``lfw`` 250x250, ``utkface`` 200x200, ``nuaa_real`` 640x480 webcam frames: the data sets as they
  are (fixed samples, sorted then strided);
* ``lfw_portrait_1024x768``: the repro, LFW photos cropped to their central 200x150 and upscaled to
  1024x768 (face ~500 px wide); ``lfw_closeup_1024x768`` (central 140x105: face ~750 px, filling
  the frame) and ``lfw_closeup_1600x1200`` (central 160x120: face ~1,100 px); ``nuaa_x3``: NUAA
  frames upscaled 3x to 1920x1440;
* ``lfw_grid_8x8``: 8x8 LFW photos tiled into one 2000x2000 image (faces ~100 px): the small-face
  side, where a single coarse pass loses faces; the share of the 64 faces *not* found.

    python bench/detection_scale.py   # -> bench/results/detection_scale.json (a few minutes, 1 thread)
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from faceprint.datasets import data_root  # noqa: E402
from faceprint.detection import YuNetDetector  # noqa: E402
from faceprint.io import load_image  # noqa: E402
from faceprint.runtime import set_num_threads  # noqa: E402
from faceprint.types import Image  # noqa: E402

CONFIGS: dict[str, dict[str, Any]] = {
    "before: one pass <= 1280": {"max_side": 1280, "coarse_side": None},
    "one pass <= 960": {"max_side": 960, "coarse_side": None},
    "one pass <= 640": {"max_side": 640, "coarse_side": None},
    "two passes 1280 + 640": {"max_side": 1280, "coarse_side": 640},
    "two passes 1280 + 480": {"max_side": 1280, "coarse_side": 480},
}


def sample(paths: list[Path], n: int, offset: int = 0) -> list[Path]:
    paths = sorted(paths)
    step = max(1, len(paths) // n)
    return paths[offset::step][:n]


def crop_up(image: Image, crop_w: int, out_w: int) -> Image:
    """The central ``crop_w`` x ``crop_w * 3/4`` of an LFW photo, upscaled to ``out_w`` x ``out_w * 3/4``."""
    h, w = image.shape[:2]
    ch = crop_w * 3 // 4
    y0, x0 = (h - ch) // 2, (w - crop_w) // 2
    crop = image[y0 : y0 + ch, x0 : x0 + crop_w]
    return np.ascontiguousarray(cv2.resize(crop, (out_w, out_w * 3 // 4), interpolation=cv2.INTER_CUBIC))


def grid(images: list[Image], n: int) -> Image:
    rows = [np.concatenate(images[r * n : (r + 1) * n], axis=1) for r in range(n)]
    return np.ascontiguousarray(np.concatenate(rows, axis=0))


def main() -> None:
    set_num_threads(1)
    root = data_root(required=True)
    lfw = sample(list((root / "lfw" / "lfw-deepfunneled").glob("*/*.jpg")), 300)
    lfw_up = sample(list((root / "lfw" / "lfw-deepfunneled").glob("*/*.jpg")), 100, offset=7)
    utk = sample(list((root / "utkface" / "UTKFace").glob("*.jpg")), 300)
    nuaa = sample(list((root / "nuaa" / "ClientRaw").glob("*/*.jpg")), 200)
    grid_src = sample(list((root / "lfw" / "lfw-deepfunneled").glob("*/*.jpg")), 5 * 64, offset=3)

    def loaded(paths: list[Path]) -> list[Image]:
        return [load_image(p) for p in paths]

    up_src = loaded(lfw_up)
    sets: dict[str, list[Image]] = {
        "lfw": loaded(lfw),
        "utkface": loaded(utk),
        "nuaa_real": loaded(nuaa),
        "lfw_portrait_1024x768": [crop_up(im, 200, 1024) for im in up_src],
        "lfw_closeup_1024x768": [crop_up(im, 140, 1024) for im in up_src],
        "lfw_closeup_1600x1200": [crop_up(im, 160, 1600) for im in up_src],
        "nuaa_x3": [
            np.ascontiguousarray(cv2.resize(im, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC))
            for im in loaded(nuaa[::2])
        ],
    }
    grids = [grid(loaded(grid_src[k * 64 : (k + 1) * 64]), 8) for k in range(5)]

    results: dict[str, Any] = {}
    for label, options in CONFIGS.items():
        det = YuNetDetector(**options)
        det.warm_up()
        row: dict[str, Any] = {"options": options}
        for name, images in sets.items():
            start = time.perf_counter()
            missed = sum(1 for im in images if not det.detect(im))
            ms = (time.perf_counter() - start) / len(images) * 1000
            row[name] = {"images": len(images), "failures_to_acquire": missed, "fta": missed / len(images), "ms": ms}
        found = 0
        start = time.perf_counter()
        for g in grids:
            tiles = set()
            for d in det.detect(g):
                cx, cy = (d.box[0] + d.box[2]) / 2, (d.box[1] + d.box[3]) / 2
                tiles.add((int(cy // 250), int(cx // 250)))
            found += len(tiles)
        faces = 64 * len(grids)
        row["lfw_grid_8x8"] = {
            "faces": faces,
            "missed_faces": faces - found,
            "miss_rate": (faces - found) / faces,
            "ms": (time.perf_counter() - start) / len(grids) * 1000,
        }
        results[label] = row
        print(label, {k: v.get("failures_to_acquire", v.get("missed_faces")) for k, v in row.items() if k != "options"})
        print("   ms", {k: round(v["ms"], 1) for k, v in row.items() if k != "options"}, flush=True)

    out = {
        "meta": {
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "threads": 1,
            "opencv": cv2.__version__,
            "machine": platform.machine(),
            "detector": "yunet",
        },
        "results": results,
    }
    path = ROOT / "bench" / "results" / "detection_scale.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
