"""Face-quality measures (size, brightness, sharpness, yaw) behind the passive checkers' "unsure" gate.

Usage::

    python bench/liveness_quality.py        # -> bench/results/liveness_quality.json

For NUAA (every image: the training domain, bona fide and print attacks) and the first 200 images
of the LFW and UTKFace *measurement* halves (as ``bench/liveness_cnn_checks.py``), clean and degraded
as in ``bench/liveness.py`` (blur sigma 2, dark x 0.4, JPEG q30, rotation 15 degrees): the
percentiles of each measure of :func:`faceprint.liveness.quality.assess_face`, and the share of
faces that :data:`~faceprint.liveness.quality.DEFAULT_QUALITY_LIMITS` lets through (with the
reason counts of the rest). The limits were read off these tables: NUAA bona fide should pass,
darkened and blurred photos should not.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import faceprint.runtime  # noqa: E402
from faceprint.datasets import data_root, nuaa_dir, nuaa_images  # noqa: E402
from faceprint.detection import get_detector  # noqa: E402
from faceprint.io import load_image  # noqa: E402
from faceprint.liveness.quality import DEFAULT_QUALITY_LIMITS, assess_face  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from liveness import DEGRADATIONS  # noqa: E402
from train_liveness_cnn import external_sources  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "results" / "liveness_quality.json"
MEASURES = ("face_px", "brightness", "sharpness", "yaw")


def measure(paths: list[Path], det, fn) -> dict:
    rows, reasons, no_face = [], Counter(), 0
    for p in paths:
        im = fn(load_image(p))
        faces = det.detect(im)
        if not faces:
            no_face += 1
            continue
        q = assess_face(im, max(faces, key=lambda f: f.area))
        rows.append([q.face_px, q.brightness, q.sharpness, abs(q.yaw)])
        reasons.update(r.split(" (")[0] for r in q.reasons)
        if q.ok:
            reasons["ok"] += 1
    a = np.array(rows).reshape(-1, len(MEASURES))
    pct = (1, 5, 50, 95, 99)
    return {
        "n_scored": int(a.shape[0]),
        "n_no_face": no_face,
        "pass_rate": reasons["ok"] / a.shape[0] if a.shape[0] else None,
        "reasons": {k: v for k, v in sorted(reasons.items()) if k != "ok"},
        "percentiles": {
            m: {str(q): round(float(np.percentile(a[:, i], q)), 2) for q in pct} for i, m in enumerate(MEASURES)
        }
        if a.shape[0]
        else {},
    }


def main() -> None:
    faceprint.runtime.set_num_threads(1)
    root = data_root(required=True)
    assert root is not None
    det = get_detector("yunet")
    result: dict = {"limits": DEFAULT_QUALITY_LIMITS.__dict__, "sets": {}}
    items = nuaa_images(nuaa_dir(root))
    sets = {
        "nuaa_bona_fide": [p for p, _, a in items if not a],
        "nuaa_attack": [p for p, _, a in items if a],
    }
    sources = external_sources(root, 200, 200, 0, fit=False)
    for src in ("lfw", "utkface"):
        sets[src] = [p for p, s in sources if s == src]
    for name, paths in sets.items():
        degs = {"none": lambda im: im}
        if name in ("lfw", "utkface", "nuaa_bona_fide"):
            degs.update(DEGRADATIONS)
        for deg, fn in degs.items():
            r = measure(paths, det, fn)
            result["sets"][f"{name}/{deg}"] = r
            print(f"{name}/{deg}: pass {r['pass_rate']:.3f} of {r['n_scored']} {r['reasons']}", flush=True)
            print("   ", {m: (v["5"], v["50"], v["95"]) for m, v in r["percentiles"].items()}, flush=True)
    OUT.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"-> {OUT}")


if __name__ == "__main__":
    main()
