"""End-to-end throughput (decode -> detect -> align -> embed) on 500 LFW images, side by side with
face_recognition 1.3.0 (dlib HOG detector + dlib ResNet encoder), at 1 and 2 threads.

Each configuration runs in its own subprocess so thread settings take effect before any library
loads; the configurations alternate in one run and the ratio is what we quote.

    python bench/throughput.py [--n 500]     # -> bench/results/throughput.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORKER = r"""
import json, sys, time
sys.path.insert(0, {src!r})
paths = json.loads(sys.argv[1]); tool = sys.argv[2]; threads = int(sys.argv[3])
if tool.startswith("faceprint"):
    from faceprint import FacePipeline, set_num_threads
    from faceprint.embedding import get_embedder
    set_num_threads(threads)
    model = tool.split(":")[1]
    pipe = FacePipeline(detector="yunet", embedder=get_embedder(model, flip=False))
    def run(p):
        return len(pipe.faces(p))
else:
    import face_recognition
    def run(p):
        img = face_recognition.load_image_file(p)
        locs = face_recognition.face_locations(img)
        return len(face_recognition.face_encodings(img, locs))
run(paths[0])  # warm-up: model loading is not counted
t = time.perf_counter(); faces = sum(run(p) for p in paths); dt = time.perf_counter() - t
print(json.dumps({{"seconds": dt, "faces": faces, "images": len(paths)}}))
"""


def measure(tool: str, threads: int, paths: list[str]) -> dict[str, float]:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    code = WORKER.format(src=str(ROOT / "src"))
    res = subprocess.run([sys.executable, "-c", code, json.dumps(paths), tool, str(threads)],
                         env=env, capture_output=True, text=True, check=True)
    r = json.loads(res.stdout.strip().splitlines()[-1])
    r["faces_per_s"] = r["faces"] / r["seconds"]
    r["images_per_s"] = r["images"] / r["seconds"]
    r["ms_per_image"] = 1000 * r["seconds"] / r["images"]
    return r


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--models", default="sface,facenet")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from faceprint.datasets import data_root

    root = data_root(required=True)
    assert root is not None
    images = sorted((root / "lfw" / "lfw-deepfunneled").glob("*/*.jpg"))
    step = max(1, len(images) // args.n)
    paths = [str(p) for p in images[::step][: args.n]]
    tools = [f"faceprint:{m}" for m in args.models.split(",")] + ["face_recognition"]
    results: dict[str, dict[str, dict[str, float]]] = {t: {} for t in tools}
    for threads in (1, 2):
        for tool in tools:
            r = measure(tool, threads, paths)
            results[tool][str(threads)] = r
            print(f"{tool:18s} threads={threads}: {r['faces_per_s']:.1f} faces/s, {r['ms_per_image']:.1f} ms/image, "
                  f"{r['faces']} faces")
    ratios = {}
    for tool in tools[:-1]:
        ratios[tool] = {
            t: results[tool][t]["faces_per_s"] / results["face_recognition"][t]["faces_per_s"] for t in ("1", "2")
        }
        pretty = ", ".join(f"{t} thread(s) {v:.2f}x" for t, v in ratios[tool].items())
        print(f"ratio {tool} / face_recognition: {pretty}")
    import cv2

    try:
        import dlib

        dlib_version = dlib.__version__
    except ImportError:
        dlib_version = None
    out = {
        "meta": {
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": platform.machine(), "processor": platform.processor(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "opencv": cv2.__version__, "dlib": dlib_version,
            "images": len(paths), "dataset": "LFW deep-funneled, every k-th image in sorted order",
            "pipeline": "decode -> detect (yunet) -> align -> embed, all faces per image",
            "baseline": "face_recognition 1.3.0: load_image_file, face_locations (HOG), face_encodings",
        },
        "results": results,
        "ratio_vs_face_recognition": ratios,
    }
    (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench" / "results" / "throughput.json").write_text(json.dumps(out, indent=2))
    print("wrote bench/results/throughput.json")


if __name__ == "__main__":
    main()
