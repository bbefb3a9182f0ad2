"""Detector comparison: detection rate, landmark agreement, speed, and the verification accuracy
each detector gives SFace, to choose the default detector (accuracy first, speed second).

Sets (each a fixed sample, sorted then strided):
* LFW deep-funneled 250x250 (1000 images): exactly the central face must be found;
* UTKFace 200x200 crops (1000 images, every race x gender cell): a face must be found;
* NUAA real webcam frames 640x480 (400 images): a face must be found (in-the-wild-ish: one
  webcam, varied light);
* LFW view 1 DevTest (1000 pairs): accuracy of SFace at the DevTrain-calibrated threshold
  ... computed here from scratch on DevTrain per detector, so each detector gets its own threshold.

    python bench/detection.py   # -> bench/results/detection.json
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from faceprint.datasets import data_root, read_lfw_pairs  # noqa: E402
from faceprint.detection import get_detector, select_faces  # noqa: E402
from faceprint.embedding import get_embedder  # noqa: E402
from faceprint.evaluation import best_accuracy_threshold, cosine_scores  # noqa: E402
from faceprint.io import load_image  # noqa: E402
from faceprint.runtime import set_num_threads  # noqa: E402


def sample(paths: list[Path], n: int) -> list[Path]:
    paths = sorted(paths)
    return paths[:: max(1, len(paths) // n)][:n]


def pair_scores(det: object, emb: object, pairs: list) -> tuple[np.ndarray, np.ndarray]:
    vec: dict[Path, np.ndarray] = {}
    for p in sorted({q for pr in pairs for q in (pr.path_a, pr.path_b)}):
        im = load_image(p)
        f = select_faces(det.detect(im), im.shape, "central")  # type: ignore[attr-defined]
        vec[p] = emb.embed_faces(im, f[:1])[0] if f else np.full(emb.dim, np.nan, np.float32)  # type: ignore[attr-defined]
    a = np.stack([vec[pr.path_a] for pr in pairs])
    b = np.stack([vec[pr.path_b] for pr in pairs])
    return cosine_scores(a, b), np.array([pr.same for pr in pairs])


def main() -> None:
    set_num_threads(2)
    root = data_root(required=True)
    assert root is not None
    sets = {
        "lfw": sample(list((root / "lfw" / "lfw-deepfunneled").glob("*/*.jpg")), 1000),
        "utkface": sample(list((root / "utkface" / "UTKFace").glob("*.jpg")), 1000),
        "nuaa_real": sample(list((root / "nuaa" / "ClientRaw").glob("*/*.jpg")), 400),
    }
    detectors = {n: get_detector(n) for n in ("yunet", "retinaface")}
    results: dict[str, dict] = {n: {} for n in detectors}
    images = {k: [load_image(p) for p in v] for k, v in sets.items()}
    for name, det in detectors.items():
        det.detect(images["lfw"][0])
        for set_name, imgs in images.items():
            t = time.perf_counter()
            found = [select_faces(det.detect(im), im.shape, "central") for im in imgs]
            dt = time.perf_counter() - t
            results[name][set_name] = {
                "images": len(imgs),
                "detection_rate": float(np.mean([bool(f) for f in found])),
                "ms_per_image": 1000 * dt / len(imgs),
            }
            if set_name == "lfw":
                results[name]["_lfw_faces"] = found  # type: ignore[assignment]
            print(f"{name:10s} {set_name:9s} rate {results[name][set_name]['detection_rate']:.4f} "
                  f"{results[name][set_name]['ms_per_image']:.1f} ms/image", flush=True)
    # landmark agreement on LFW where both found the face
    a, b = results["yunet"].pop("_lfw_faces"), results["retinaface"].pop("_lfw_faces")  # type: ignore[arg-type]
    d = [np.linalg.norm(x[0].landmarks - y[0].landmarks, axis=1).mean() for x, y in zip(a, b) if x and y]
    agreement = {"mean_landmark_distance_px": float(np.mean(d)), "median": float(np.median(d))}
    print(f"landmark agreement yunet vs retinaface on LFW: mean {agreement['mean_landmark_distance_px']:.2f} px")

    # verification accuracy with SFace: threshold on DevTrain, accuracy on DevTest, per detector
    lfw = root / "lfw"
    train = read_lfw_pairs(lfw / "pairsDevTrain.txt", lfw / "lfw-deepfunneled")
    test = read_lfw_pairs(lfw / "pairsDevTest.txt", lfw / "lfw-deepfunneled")
    emb = get_embedder("sface")
    for name, det in detectors.items():
        s_tr, y_tr = pair_scores(det, emb, train)
        thr, _ = best_accuracy_threshold(s_tr, y_tr)
        s_te, y_te = pair_scores(det, emb, test)
        acc = float(((np.nan_to_num(s_te, nan=-np.inf) >= thr) == y_te).mean())
        results[name]["sface_devtest_accuracy"] = acc
        results[name]["devtest_failures_to_acquire"] = int(np.isnan(s_te).sum())
        print(f"{name:10s} SFace DevTest accuracy {100 * acc:.2f} % (threshold from DevTrain)", flush=True)
    out = {
        "meta": {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "threads": 2,
                 "opencv": cv2.__version__, "machine": platform.machine()},
        "results": results,
        "landmark_agreement": agreement,
    }
    (ROOT / "bench" / "results" / "detection.json").write_text(json.dumps(out, indent=2))
    print("wrote bench/results/detection.json")


if __name__ == "__main__":
    main()
