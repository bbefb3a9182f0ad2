"""LFW benchmark for every shipped embedder, with flip and fusion variants; calibrates thresholds.

Steps (one pass over the images; each distinct image is detected once with YuNet and embedded
by every model, with and without its mirror image):

1. calibrate each variant's thresholds on LFW view 1 ``pairsDevTrain.txt`` (FMR 1e-2 / 1e-3 /
   1e-4 and best accuracy), and choose fusion weights there;
2. report view 2 (``pairs.txt``): 10-fold accuracy (threshold chosen on 9 folds), ROC AUC, EER,
   TAR at FMR 1e-2 / 1e-3, failures to acquire; and ``pairsDevTest.txt`` accuracy at the
   DevTrain best-accuracy threshold.

    python bench/lfw.py                       # results -> bench/results/lfw.json
    python bench/lfw.py --write-calibration   # also -> src/faceprint/calibration.json

Embeddings are cached in bench/cache/ (git-ignored).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from faceprint import __version__  # noqa: E402
from faceprint.datasets import data_root, read_lfw_pairs  # noqa: E402
from faceprint.detection import get_detector, select_faces  # noqa: E402
from faceprint.embedding import get_embedder, l2_normalize  # noqa: E402
from faceprint.evaluation import calibrate_thresholds, cosine_scores, evaluate_verification  # noqa: E402
from faceprint.io import load_image  # noqa: E402
from faceprint.runtime import set_num_threads  # noqa: E402

MODELS = ("sface", "facenet")


def embed_all(paths: list[Path], cache: Path, recompute: set[str]) -> dict[str, np.ndarray]:
    """{model, model_flipped}: (n, dim) arrays, NaN rows for failures to acquire.

    Cached per model in ``cache``; models in ``recompute`` (or missing from the cache) are embedded again.
    """
    keys = [str(p) for p in paths]
    out: dict[str, np.ndarray] = {}
    if cache.exists():
        z = np.load(cache, allow_pickle=False)
        if list(z["keys"]) == keys:
            out = {k: z[k] for k in z.files if k != "keys"}
    todo = [m for m in MODELS if m in recompute or m not in out]
    if not todo:
        print(f"using cached embeddings {cache}")
        return out
    print(f"embedding with {', '.join(todo)}; cached: {', '.join(m for m in MODELS if m not in todo) or 'none'}")
    det = get_detector("yunet")
    embs = {m: get_embedder(m) for m in todo}
    for m, e in embs.items():
        out[m] = np.full((len(paths), e.dim), np.nan, np.float32)
        out[m + "_flipped"] = np.full((len(paths), e.dim), np.nan, np.float32)
    t0 = time.time()
    for i, p in enumerate(paths):
        img = load_image(p)
        faces = select_faces(det.detect(img), img.shape, "central")
        if faces:
            for m, e in embs.items():
                crop = e.align(img, faces[0])  # type: ignore[attr-defined]
                out[m][i] = e.embed(crop[None])[0]  # type: ignore[attr-defined]
                out[m + "_flipped"][i] = e.embed(np.ascontiguousarray(crop[None, :, ::-1]))[0]  # type: ignore[attr-defined]
        if (i + 1) % 500 == 0:
            rate = (i + 1) / (time.time() - t0)
            print(f"  {i + 1}/{len(paths)} images, {rate:.1f} img/s", flush=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, keys=np.array(keys), **out)
    return out


def variants(raw: dict[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Per-model unit embeddings for the plain and +flip variants (same maths as the library)."""
    v: dict[str, list[np.ndarray]] = {}
    for m in MODELS:
        v[m] = [raw[m]]
        v[m + "+flip"] = [l2_normalize(raw[m] + raw[m + "_flipped"])]
    return v


def scores_for(parts: list[np.ndarray], weights: list[float], ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
    s = np.zeros(len(ia))
    for e, w in zip(parts, weights):
        s += w * cosine_scores(e[ia], e[ib])
    return s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--write-calibration", action="store_true")
    ap.add_argument("--recompute", default="", help="comma-separated models to embed again (cache otherwise)")
    args = ap.parse_args()
    set_num_threads(args.threads)
    root = data_root(required=True)
    assert root is not None
    lfw = root / "lfw"
    images = lfw / "lfw-deepfunneled"
    sets = {name: read_lfw_pairs(lfw / name, images) for name in ("pairsDevTrain.txt", "pairsDevTest.txt", "pairs.txt")}
    paths = sorted({p for pairs in sets.values() for pr in pairs for p in (pr.path_a, pr.path_b)})
    index = {p: i for i, p in enumerate(paths)}
    print(f"{len(paths)} distinct images")
    t0 = time.time()
    recompute = set(filter(None, args.recompute.split(",")))
    raw = embed_all(paths, ROOT / "bench" / "cache" / "lfw_embeddings.npz", recompute)
    embed_s = time.time() - t0
    fta_images = int(np.isnan(raw["sface"][:, 0]).sum())
    print(f"failures to acquire: {fta_images} of {len(paths)} images")
    base = variants(raw)

    def idx(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        pr = sets[name]
        return (np.array([index[p.path_a] for p in pr]), np.array([index[p.path_b] for p in pr]),
                np.array([p.same for p in pr]), np.array([p.fold for p in pr]))

    tr, te, v2 = idx("pairsDevTrain.txt"), idx("pairsDevTest.txt"), idx("pairs.txt")

    configs: dict[str, tuple[list[np.ndarray], list[float], str]] = {}
    for name, parts in base.items():
        configs[name] = (parts, [1.0], name)
    # fusion: weights chosen on DevTrain (best-accuracy, then AUC) on a coarse grid
    for flip in (False, True):
        suffix = "+flip" if flip else ""
        parts = [base["sface" + suffix][0], base["facenet" + suffix][0]]
        best = None
        for w in np.linspace(0.3, 0.8, 11):
            s = scores_for(parts, [w, 1 - w], tr[0], tr[1])
            rep = evaluate_verification(s, tr[2], np.arange(len(s)) % 10, model="x")
            cand = (rep.accuracy, rep.auc, w)
            if best is None or cand[:2] > best[:2]:
                best = cand
        assert best is not None
        w = round(float(best[2]), 2)
        key = f"fusion(sface{suffix}+facenet{suffix};{w:.2f},{1 - w:.2f})"
        configs[key] = (parts, [w, 1 - w], key)

    results = {}
    calibration = {}
    for parts, wts, key in configs.values():
        s_tr = scores_for(parts, wts, tr[0], tr[1])
        thr = calibrate_thresholds(s_tr, tr[2])
        calibration[key] = {"thresholds": thr, "fusion_weights": wts if len(wts) > 1 else None}
        s_te = scores_for(parts, wts, te[0], te[1])
        dev_acc = float((np.where(np.isnan(s_te), -np.inf, s_te) >= thr["best_accuracy"]).__eq__(te[2]).mean())
        s_v2 = scores_for(parts, wts, v2[0], v2[1])
        rep = evaluate_verification(s_v2, v2[2], v2[3], model=key).to_dict()
        rep["devtest_accuracy_at_devtrain_threshold"] = dev_acc
        results[key] = rep
        print(f"{key:45s} acc {100 * rep['accuracy']:.2f} ± {100 * rep['accuracy_std']:.2f}  "
              f"AUC {rep['auc']:.5f}  TAR@1e-3 {100 * rep['tar_at_fmr_1e-3']:.2f}  "
              f"devtest {100 * dev_acc:.2f}  FTA {rep['failures_to_acquire']}")

    best_key = max(results, key=lambda k: (results[k]["accuracy"], results[k]["auc"]))
    meta = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "faceprint": __version__,
        "machine": platform.machine(),
        "processor": platform.processor(),
        "python": platform.python_version(),
        "opencv": cv2.__version__,
        "threads": args.threads,
        "detector": "yunet (central face)",
        "distinct_images": len(paths),
        "images_failed_to_acquire": fta_images,
        "embedding_seconds_this_run": round(embed_s, 1),
        "recomputed_models": sorted(recompute),
    }
    out = {"meta": meta, "best": best_key, "results": results}
    (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench" / "results" / "lfw.json").write_text(json.dumps(out, indent=2))
    print(f"best: {best_key}; wrote bench/results/lfw.json")
    if args.write_calibration:
        cal = {
            "about": "Cosine-similarity thresholds calibrated on LFW view 1 pairsDevTrain.txt (1100 genuine, "
                     "1100 impostor pairs), detector yunet, by bench/lfw.py --write-calibration. "
                     "FMR keys: smallest threshold whose impostor match rate on DevTrain is <= FMR. With 1100 "
                     "impostor pairs, 1e-3 admits exactly one impostor (thin evidence) and 1e-4 lies below 1/1100: "
                     "it sits just above the highest impostor score, an extrapolation, not a measurement.",
            "date": meta["date"],
            "models": calibration,
        }
        path = ROOT / "src" / "faceprint" / "calibration.json"
        old = json.loads(path.read_text()) if path.exists() else {}  # keep bench/open_set.py's impostor tails
        for key, entry in old.get("models", {}).items():
            if "impostor_tail" in entry and key in calibration:
                calibration[key]["impostor_tail"] = entry["impostor_tail"]
        if "impostor_tail_about" in old:
            cal["impostor_tail_about"] = old["impostor_tail_about"]
        path.write_text(json.dumps(cal, indent=2) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
