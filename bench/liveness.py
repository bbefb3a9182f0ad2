"""Passive PAD on NUAA: subject-disjoint cross-validation, robustness, and the shipped model.

Usage::

    python bench/liveness.py                 # CV + robustness -> bench/results/liveness.json,
                                             # session x subject cells -> bench/results/liveness_protocol.json
    python bench/liveness.py --write-model   # ... and retrain the shipped model on all subjects
    python bench/liveness.py --protocol-only # only the session x subject cells

Protocol: leave-one-subject-out over the 9 NUAA subjects. For each held-out subject the model is
trained on the other 8; its threshold is the EER threshold of *inner* leave-one-subject-out scores
on those 8 (no held-out data touches training or threshold). Metrics are pooled over the held-out
scores. Robustness: the real images of each held-out subject are degraded (blur, dark, JPEG,
rotation), re-detected and scored by that fold's model and threshold; BPCER is reported.
The shipped model is trained on all 9 subjects; its threshold is the EER threshold of the outer
leave-one-subject-out scores. Everything is deterministic (no randomness is used).

Honest protocol (``liveness_protocol.json``; ``liveness.json`` keeps its meaning): the folds of
:func:`faceprint.liveness.session_subject_folds` -- train on 6 subjects of one session (01 or 02),
hold out a fixed group of 3 subjects (:data:`faceprint.liveness.NUAA_SUBJECT_GROUPS`); test on the
held-out subjects in the OTHER session (the headline cell), on the training subjects in the other
session, and on the held-out subjects in the training session. Thresholds come from inner
leave-one-subject-out scores on the fold's training set only: at their EER ("eer") and at the
lowest threshold with inner APCER <= 5 % ("apcer5"). Every cell is reported.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

import faceprint.runtime  # noqa: E402
from faceprint.datasets import data_root, nuaa_dir, nuaa_images, nuaa_name  # noqa: E402
from faceprint.detection import get_detector  # noqa: E402
from faceprint.io import load_image  # noqa: E402
from faceprint.liveness import (  # noqa: E402
    CELL_KINDS,
    DEFAULT_MODEL_FILE,
    NUAA_SUBJECT_GROUPS,
    LBPSVMPassiveChecker,
    eer_threshold,
    pad_metrics,
    session_subject_folds,
    threshold_at_apcer,
)
from faceprint.liveness.protocol import cell_report  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "liveness.json"
PROTOCOL_RESULTS = REPO / "bench" / "results" / "liveness_protocol.json"
MODEL_DIR = REPO / "src" / "faceprint" / "models"
PARAMS: dict = {
    "crop_size": 128,
    "expand": 1.2,
    "radii": (1,),
    "lbp_method": "nri_uniform",
    "sample_steps": 2,
    "C": 1.0,
}


def _blur(im: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(im, (0, 0), 2.0)


def _dark(im: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(im.astype(np.float64) * 0.4), 0, 255).astype(np.uint8)


def _jpeg(im: np.ndarray) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(im, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 30])
    dec = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else None
    if dec is None:
        raise RuntimeError("JPEG round trip failed")
    return cv2.cvtColor(dec, cv2.COLOR_BGR2RGB)


def _rotate(im: np.ndarray) -> np.ndarray:
    h, w = im.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), 15.0, 1.0)
    return cv2.warpAffine(im, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


DEGRADATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "gaussian_blur_sigma2": _blur,
    "dark_x0.4": _dark,
    "jpeg_q30": _jpeg,
    "rotate_15deg": _rotate,
}


def _aug_blur(im: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(im, (0, 0), 1.5)


def _aug_dark(im: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(im.astype(np.float64) * 0.6), 0, 255).astype(np.uint8)


# training augmentation, applied to real AND attack images of the training subjects only; milder
# than (and different from) the test degradations above, so robustness is not measured on seen data
AUGMENTATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "blur_sigma1.5": _aug_blur,
    "dark_x0.6": _aug_dark,
}


def extract(items: list[tuple[Path, str, bool]], checker: LBPSVMPassiveChecker, *, degrade: bool = True) -> dict:
    """Features of clean images, and of degraded real images (NaN rows where no face was found)."""
    n = len(items)
    d = None
    clean: list[np.ndarray | None] = []
    degraded: dict[str, list[np.ndarray | None]] = {k: [] for k in DEGRADATIONS}
    augmented: dict[str, list[np.ndarray | None]] = {k: [] for k in AUGMENTATIONS}
    t0 = time.perf_counter()
    for i, (path, _, attack) in enumerate(items):
        im = load_image(path)
        clean.append(_feat(checker, im))
        for name, fn in DEGRADATIONS.items():
            degraded[name].append(None if attack or not degrade else _feat(checker, fn(im)))
        for name, fn in AUGMENTATIONS.items():
            augmented[name].append(_feat(checker, fn(im)))
        if (i + 1) % 200 == 0:
            print(f"  {i + 1}/{n} images, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    for f in clean:
        if f is not None:
            d = f.shape[0]
            break
    assert d is not None

    def stack(rows: list[np.ndarray | None]) -> np.ndarray:
        return np.stack([np.full(d, np.nan) if r is None else r for r in rows])

    return {
        "clean": stack(clean),
        "degraded": {k: stack(v) for k, v in degraded.items()},
        "augmented": {k: stack(v) for k, v in augmented.items()},
    }


def train_set(X: np.ndarray, attack: np.ndarray, rows: np.ndarray, aug: list[np.ndarray]) -> tuple:
    """Clean rows plus their augmented copies (rows where a face was found)."""
    Xs = [X[rows]] + [A[rows] for A in aug]
    As = [attack[rows]] * (1 + len(aug))
    Xt, At = np.concatenate(Xs), np.concatenate(As)
    ok = ~np.isnan(Xt).any(axis=1)
    return Xt[ok], At[ok]


def _feat(checker: LBPSVMPassiveChecker, im: np.ndarray) -> np.ndarray | None:
    faces = checker._detector().detect(im)
    if not faces:
        return None
    det = max(faces, key=lambda f: f.area)
    return checker.features(im, det)


def loso_scores(X: np.ndarray, attack: np.ndarray, subj: np.ndarray, aug: list[np.ndarray], params: dict) -> np.ndarray:
    """Out-of-fold scores on clean rows, each subject scored by a model trained on the others."""
    out = np.full(X.shape[0], np.nan)
    for s in np.unique(subj):
        te = subj == s
        m = LBPSVMPassiveChecker(**params).fit(*train_set(X, attack, ~te, aug))
        out[te] = m.score_features(X[te])
    return out


def protocol(
    X: np.ndarray, attack: np.ndarray, subj: np.ndarray, sess: np.ndarray, aug: list[np.ndarray], params: dict
) -> dict:
    """Every session x subject fold: thresholds from inner LOSO on its training set, every cell's metrics."""
    folds = session_subject_folds(sorted(set(sess.tolist())), sorted(set(subj.tolist())), NUAA_SUBJECT_GROUPS)
    out: dict = {}
    for fold in folds:
        tr = fold.train_mask(subj, sess)
        inner = loso_scores(X[tr], attack[tr], subj[tr], [A[tr] for A in aug], params)
        thresholds = {
            "eer": eer_threshold(inner, attack[tr])[1],
            "apcer5": threshold_at_apcer(inner, attack[tr], 0.05),
        }
        model = LBPSVMPassiveChecker(**params).fit(*train_set(X, attack, tr, aug))
        cells = {}
        for kind in CELL_KINDS:
            te = fold.test_mask(subj, sess, kind)
            assert not (te & tr).any()
            cells[kind] = cell_report(model.score_features(X[te]), attack[te], thresholds)
        out[fold.name] = {
            "train_session": fold.train_session,
            "test_session": fold.test_session,
            "train_subjects": list(fold.train_subjects),
            "test_subjects": list(fold.test_subjects),
            "n_train": {"bona_fide": int((tr & ~attack).sum()), "attack": int((tr & attack).sum())},
            "thresholds": thresholds,
            "cells": cells,
        }
    return out


def summarise_protocol(folds: dict) -> dict:
    """Mean and worst APCER / BPCER / ACER per cell kind and threshold, and the mean EER."""
    summary: dict = {}
    for kind in CELL_KINDS:
        rows = [f["cells"][kind] for f in folds.values()]
        entry: dict = {"mean_eer": float(np.mean([r["eer"] for r in rows]))}
        for t in rows[0]["at"]:
            for k in ("apcer", "bpcer", "acer"):
                vals = [r["at"][t][k] for r in rows]
                entry[f"{t}_mean_{k}"] = float(np.mean(vals))
                entry[f"{t}_max_{k}"] = float(np.max(vals))
        summary[kind] = entry
    return summary


def print_protocol(folds: dict) -> None:
    print(f"{'fold':34s} {'cell':28s} {'nBF':>4s} {'nPA':>4s}  APCER   BPCER   ACER    EER   (at inner-EER thr)")
    for name, f in folds.items():
        for kind, c in f["cells"].items():
            a = c["at"]["eer"]
            print(
                f"{name:34s} {kind:28s} {c['n_bona_fide']:4d} {c['n_attack']:4d}  {a['apcer']:.4f}  {a['bpcer']:.4f}  "
                f"{a['acer']:.4f}  {c['eer']:.4f}"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write-model", action="store_true", help="retrain the shipped model on all subjects")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--protocol-out", type=Path, default=PROTOCOL_RESULTS)
    ap.add_argument("--protocol-only", action="store_true", help="only the session x subject cells")
    args = ap.parse_args()
    faceprint.runtime.set_num_threads(2)

    root = data_root(required=True)
    assert root is not None
    nuaa = nuaa_dir(root)
    items = nuaa_images(nuaa)
    subj = np.array([s for _, s, _ in items])
    sess = np.array([nuaa_name(p).session for p, _, _ in items])
    attack = np.array([a for _, _, a in items])
    print(
        f"NUAA: {int((~attack).sum())} real + {int(attack.sum())} attack images, {len(np.unique(subj))} subjects",
        file=sys.stderr,
    )

    checker = LBPSVMPassiveChecker(**PARAMS, detector=get_detector("yunet"))
    feats = extract(items, checker, degrade=not args.protocol_only)
    X = feats["clean"]
    found = ~np.isnan(X).any(axis=1)
    print(f"faces found in {int(found.sum())}/{len(items)} clean images", file=sys.stderr)
    Xf, af, sf = X[found], attack[found], subj[found]
    augf = [A[found] for A in feats["augmented"].values()]

    folds = protocol(Xf, af, sf, sess[found], augf, PARAMS)
    proto = {
        "data": {
            "set": "NUAA Photograph Imposter Database, shared subset (every 2nd image, sessions 01-02)",
            "n_no_face_clean": int((~found).sum()),
            "per_session": {
                str(k): {"bona_fide": int(((sess == k) & ~attack).sum()), "attack": int(((sess == k) & attack).sum())}
                for k in sorted(set(sess.tolist()))
            },
        },
        "model": "lbp-svm",
        "params": {k: list(v) if isinstance(v, tuple) else v for k, v in PARAMS.items()},
        "training_augmentation": sorted(AUGMENTATIONS),
        "protocol": (
            "train on 6 subjects of one session; cells: held-out 3 subjects in the other session "
            "(unseen_session_and_subjects), training subjects in the other session (unseen_session), held-out "
            "subjects in the training session (unseen_subjects); thresholds from inner leave-one-subject-out "
            "scores on the training set: 'eer' at their EER, 'apcer5' the lowest with APCER <= 5 %"
        ),
        "subject_groups": [list(g) for g in NUAA_SUBJECT_GROUPS],
        "summary": summarise_protocol(folds),
        "folds": folds,
    }
    args.protocol_out.parent.mkdir(parents=True, exist_ok=True)
    args.protocol_out.write_text(json.dumps(proto, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print_protocol(folds)
    print(f"protocol -> {args.protocol_out}")
    if args.protocol_only:
        return

    # outer LOSO; threshold from inner LOSO on the training subjects
    scores = np.full(Xf.shape[0], np.nan)
    fold_thr: dict[str, float] = {}
    robust_scores: dict[str, list[float]] = {k: [] for k in DEGRADATIONS}
    robust_live: dict[str, list[bool]] = {k: [] for k in DEGRADATIONS}
    robust_noface: dict[str, int] = dict.fromkeys(DEGRADATIONS, 0)
    for s in np.unique(sf):
        te = sf == s
        inner = loso_scores(Xf[~te], af[~te], sf[~te], [A[~te] for A in augf], PARAMS)
        _, thr = eer_threshold(inner, af[~te])
        fold_thr[str(s)] = thr
        model = LBPSVMPassiveChecker(**PARAMS, threshold=thr).fit(*train_set(Xf, af, ~te, augf))
        scores[te] = model.score_features(Xf[te])
        real_rows = np.flatnonzero((subj == s) & ~attack)
        for name, D in feats["degraded"].items():
            Dr = D[real_rows]
            ok = ~np.isnan(Dr).any(axis=1)
            robust_noface[name] += int((~ok).sum())
            sc = model.score_features(Dr[ok])
            robust_scores[name].extend(sc.tolist())
            robust_live[name].extend((sc >= thr).tolist())

    types = ["print"] * len(af)
    # pooled held-out decisions, each subject at its own fold's threshold
    live = np.zeros(len(af), dtype=bool)
    for s, thr in fold_thr.items():
        live[sf == s] = scores[sf == s] >= thr
    apcer = float(np.mean(live[af]))
    bpcer = float(np.mean(~live[~af]))
    threshold_free = pad_metrics(scores, af, types, threshold=0.5)
    cv = {
        "protocol": (
            "leave-one-subject-out over 9 subjects; per-fold threshold at inner-LOSO EER of training subjects"
        ),
        "apcer": {"print": apcer},
        "apcer_max": apcer,
        "bpcer": bpcer,
        "acer": (apcer + bpcer) / 2.0,
        "eer": threshold_free["eer"],
        "bpcer_at_apcer_5pct": threshold_free["bpcer_at_apcer_5pct"],
        "bpcer_at_apcer_1pct": threshold_free["bpcer_at_apcer_1pct"],
        "n_bona_fide": int((~af).sum()),
        "n_attack": {"print": int(af.sum())},
        "fold_thresholds": fold_thr,
        "per_subject": {},
    }
    for s in np.unique(sf):
        m = sf == s
        cv["per_subject"][str(s)] = {
            "apcer": float(np.mean(live[m & af])) if (m & af).any() else None,
            "bpcer": float(np.mean(~live[m & ~af])) if (m & ~af).any() else None,
        }
    n_real = int((~attack).sum())
    robustness = {}
    for name in DEGRADATIONS:
        lv = np.array(robust_live[name], dtype=bool)
        nf = robust_noface[name]
        robustness[name] = {
            "bpcer": float(np.mean(~lv)) if lv.size else None,
            "bpcer_incl_no_face": float((np.sum(~lv) + nf) / n_real),
            "n_scored": int(lv.size),
            "n_no_face": nf,
            "median_score": float(np.median(robust_scores[name])) if lv.size else None,
        }
    robustness["clean_reference"] = {"bpcer": bpcer, "n_scored": int((~af).sum())}

    final_eer, final_thr = eer_threshold(scores, af)
    result: dict = {
        "data": {
            "set": "NUAA Photograph Imposter Database, shared subset (every 2nd image, sessions 01-02)",
            "n_images": len(items),
            "n_real": n_real,
            "n_attack": int(attack.sum()),
            "n_no_face_clean": int((~found).sum()),
            "subjects": sorted(str(s) for s in np.unique(subj)),
        },
        "params": {k: list(v) if isinstance(v, tuple) else v for k, v in PARAMS.items()},
        "training_augmentation": sorted(AUGMENTATIONS),
        "cv": cv,
        "robustness_bpcer_on_degraded_real": robustness,
        "final_model": {"threshold": final_thr, "threshold_source": "EER of outer LOSO scores"},
    }

    if args.write_model:
        all_rows = np.ones(len(af), dtype=bool)
        final = LBPSVMPassiveChecker(**PARAMS, threshold=final_thr).fit(*train_set(Xf, af, all_rows, augf))
        MODEL_DIR.mkdir(parents=True, exist_ok=True)
        path = MODEL_DIR / DEFAULT_MODEL_FILE
        final.save(path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        result["final_model"].update({"file": DEFAULT_MODEL_FILE, "bytes": path.stat().st_size, "sha256": digest})
        print(f"wrote {path} ({path.stat().st_size} bytes) sha256 {digest}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(
        f"CV (LOSO, 9 subjects): APCER(print) {apcer:.4f}  BPCER {bpcer:.4f}  ACER {cv['acer']:.4f}  "
        f"EER {cv['eer']:.4f}  BPCER@APCER5% {cv['bpcer_at_apcer_5pct']:.4f}  "
        f"BPCER@APCER1% {cv['bpcer_at_apcer_1pct']:.4f}"
    )
    for name, r in robustness.items():
        print(f"robustness {name:22s} BPCER {r['bpcer']:.4f}  (n={r['n_scored']}, no face {r.get('n_no_face', 0)})")
    print(f"results -> {args.out}")


if __name__ == "__main__":
    main()
