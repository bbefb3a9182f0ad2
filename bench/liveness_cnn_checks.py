"""The shipped passive models (LBP and CNN) on the shared videos and on degraded out-of-domain real faces.

Usage::

    python bench/liveness_cnn_checks.py      # -> bench/results/liveness_cnn_checks.json

* Videos: :func:`faceprint.liveness.check_video_passive` (median of 15 evenly spaced frames) with
  each shipped checker on the five shared clips (two phone-screen replays: real replay attacks,
  which the CNN saw only as simulations).
* Degraded real faces: the first 200 images of the LFW and UTKFace *measurement* halves (as in
  ``bench/train_liveness_cnn.py``), blurred / darkened / JPEG-compressed / rotated as in
  ``bench/liveness.py``, re-detected and scored; the share not judged live (BPCER), spoof and unsure.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import faceprint.runtime  # noqa: E402
from faceprint.datasets import data_root  # noqa: E402
from faceprint.detection import get_detector  # noqa: E402
from faceprint.io import load_image  # noqa: E402
from faceprint.liveness import check_video_passive, get_passive_checker  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from liveness import DEGRADATIONS  # noqa: E402
from train_liveness_cnn import external_sources  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "results" / "liveness_cnn_checks.json"
VIDEOS = {
    "blink_selfie.mp4": "live",
    "person_a_live.mp4": "live",
    "person_a_replay.mp4": "replay",
    "person_b_live.mov": "live",
    "person_b_replay.mp4": "replay",
}


def main() -> None:
    faceprint.runtime.set_num_threads(1)
    root = data_root(required=True)
    assert root is not None
    det = get_detector("yunet")
    checkers = {name: get_passive_checker(name, detector=det) for name in ("lbp", "cnn")}
    result: dict = {"videos": {}, "degraded_out_of_domain_real": {}}
    for clip, truth in VIDEOS.items():
        path = root / "videos" / clip
        if not path.is_file():
            continue
        result["videos"][clip] = {"truth": truth}
        for name, c in checkers.items():
            lv = check_video_passive(path, checker=c)
            result["videos"][clip][name] = {
                "score": lv.score,
                "verdict": lv.verdict,
                "n_scored": lv.details["n_scored"],
            }
        print(
            clip,
            truth,
            {k: (round(v["score"], 3), v["verdict"]) for k, v in result["videos"][clip].items() if k != "truth"},
        )
    sources = external_sources(root, 200, 200, 0, fit=False)
    for src in ("lfw", "utkface"):
        paths = [p for p, s in sources if s == src]
        entry: dict = {"n_images": len(paths)}
        for deg_name, fn in {"none": lambda im: im, **DEGRADATIONS}.items():
            verdicts: dict[str, list[str]] = {k: [] for k in checkers}
            no_face = 0
            for p in paths:
                im = fn(load_image(p))
                faces = det.detect(im)
                if not faces:
                    no_face += 1
                    continue
                d = max(faces, key=lambda f: f.area)
                for name, c in checkers.items():
                    verdicts[name].append(c.score(im, d).verdict)
            row: dict = {"n_no_face": no_face}
            for name, v in verdicts.items():
                a = np.array(v)
                row[name] = {
                    "bpcer": float(np.mean(a != "live")) if a.size else None,
                    "spoof": float(np.mean(a == "spoof")) if a.size else None,
                    "unsure": float(np.mean(a == "unsure")) if a.size else None,
                    "n_scored": int(a.size),
                }
            entry[deg_name] = row
            print(src, deg_name, {k: row[k]["bpcer"] for k in checkers}, f"no face {no_face}")
        result["degraded_out_of_domain_real"][src] = entry
    OUT.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"-> {OUT}")


if __name__ == "__main__":
    main()
