"""Train the compact passive-PAD CNN (MiniFASNet-like + Fourier auxiliary loss) and measure it.

Usage::

    python bench/train_liveness_cnn.py                  # held-out cells + out-of-domain BPCER
                                                        #   -> bench/results/liveness_cnn.json, and the shipped
                                                        #   model -> src/faceprint/models/passive_cnn.{onnx,json}
    python bench/train_liveness_cnn.py --no-protocol    # only rebuild the shipped model
    python bench/train_liveness_cnn.py --smoke --out-dir /tmp/m   # a tiny rebuild (tests)

Data. Bona fide: NUAA ClientRaw, and the *fit* halves of LFW (people with
``faceprint.thresholds.is_tail_calibration_identity``, one image each), UTKFace
(``faceprint.datasets.utkface.is_fit_image``) and all of ORL. Attacks: NUAA ImposterRaw (real
prints) and one synthetic attack per bona fide source image (:func:`faceprint.liveness.simulate_attack`,
print and replay alternately; for NUAA only from the real images a model may train on). Every
image is detected with YuNet and cropped by :func:`faceprint.liveness.cnn.cnn_crop` (the crop the
checker uses); attacks are simulated on the ``work_size`` crop before it is resized.

Training (seeded). 1) *pretrain* on LFW / UTKFace / ORL bona fide + their synthetic attacks only
(no NUAA image, so the pretrained net may serve every fold); 2) *fine-tune* on the fold's NUAA
training images (+ synthetic attacks from their real images) mixed with the pretraining data.

Protocol: the folds of :func:`faceprint.liveness.session_subject_folds` (as ``bench/liveness.py``,
whose LBP cells are copied beside). A fold fine-tunes on 4 of its 6 training subjects (training
session only); the other 2 training subjects (same session) are its validation set, which fixes
the thresholds ("eer": validation EER; "apcer5" / "apcer1" / "apcer0": lowest with validation APCER
<= 5 / 1 / 0 %; "bpcer1": highest with validation BPCER <= 1 %; "mid": the logit midpoint of the
gap between the validation classes, :func:`gap_midpoint`). No image of
a test subject or of the test session is used for training or thresholds. Ablations on the same
cells: "synthetic_only" (the pretrained net, no NUAA image) and "nuaa_only" (same recipe from
scratch without the external / synthetic data). The shipped model fine-tunes on all NUAA images;
it says "live" at or above the median of the folds' ``--threshold-rule`` thresholds (default
"mid"), "spoof" below the median of their ``--spoof-rule`` thresholds (default "apcer5"), "unsure"
in between (each cell also reports this two-threshold decision). Training batches get random
capture conditions (``--capture``, :func:`faceprint.liveness.simulate_capture`) on both classes.
Out-of-domain bona fide: BPCER (and spoof / unsure rates) of the shipped CNN and LBP models on the
*measurement* halves of LFW and UTKFace.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

import faceprint.runtime  # noqa: E402
from faceprint.datasets import data_root, nuaa_dir, nuaa_images, nuaa_name, orl_images, utkface_images  # noqa: E402
from faceprint.datasets.utkface import is_fit_image  # noqa: E402
from faceprint.detection import get_detector  # noqa: E402
from faceprint.io import load_image  # noqa: E402
from faceprint.liveness import (  # noqa: E402
    CELL_KINDS,
    NUAA_SUBJECT_GROUPS,
    default_passive_checker,
    eer_threshold,
    session_subject_folds,
    simulate_attack,
    threshold_at_apcer,
    threshold_at_bpcer,
)
from faceprint.liveness.cnn import CNNPassiveChecker, cnn_crop, resize_crop, write_cnn_spec  # noqa: E402
from faceprint.liveness.protocol import cell_report  # noqa: E402
from faceprint.thresholds import is_tail_calibration_identity  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "liveness_cnn.json"
PROTOCOL_LBP = REPO / "bench" / "results" / "liveness_protocol.json"
MODEL_DIR = REPO / "src" / "faceprint" / "models"
CROP = {"input_size": 64, "work_size": 96, "expand": 2.0}
SEED = 0
CAPTURE = 0.5  # share of each training batch given random capture conditions (exposure, blur, ...)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- data ------------------------------------------------------------------------------------
def external_sources(root: Path, n_lfw: int, n_utk: int, n_orl: int, *, fit: bool) -> list[tuple[Path, str]]:
    """(path, source) of LFW (one image per person), UTKFace and ORL images of the fit or measurement half."""
    lfw = root / "lfw" / "lfw-deepfunneled"
    people = sorted(d for d in lfw.iterdir() if d.is_dir() and is_tail_calibration_identity(d.name) == fit)
    rng = np.random.default_rng(SEED)
    people = [people[i] for i in sorted(rng.permutation(len(people))[:n_lfw].tolist())]
    out = [(sorted(d.glob("*.jpg"))[0], "lfw") for d in people]
    utk = [p for p in utkface_images(root) if is_fit_image(p) == fit]
    utk = [utk[i] for i in sorted(rng.permutation(len(utk))[:n_utk].tolist())]
    out += [(p, "utkface") for p in utk]
    if fit and n_orl:
        orl = [p for p, _ in orl_images(root)]
        out += [(orl[i], "orl") for i in sorted(rng.permutation(len(orl))[:n_orl].tolist())]
    return out


def detect_and_crop(paths: list[Path], detector, *, lbp=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Work-size crops (zeros where no face), found mask, and the shipped LBP model's score (NaN if not asked)."""
    w = CROP["work_size"]
    crops = np.zeros((len(paths), w, w, 3), np.uint8)
    found = np.zeros(len(paths), bool)
    lbp_scores = np.full(len(paths), np.nan)
    t0 = time.perf_counter()
    for i, p in enumerate(paths):
        im = load_image(p)
        faces = detector.detect(im)
        if faces:
            det = max(faces, key=lambda d: d.area)
            crops[i] = cnn_crop(im, det, input_size=w, work_size=w, expand=CROP["expand"])
            found[i] = True
            if lbp is not None:
                lbp_scores[i] = lbp.score(im, det).score
        if (i + 1) % 500 == 0:
            log(f"  detected {i + 1}/{len(paths)} ({time.perf_counter() - t0:.0f} s)")
    return crops, found, lbp_scores


def synth(crops: np.ndarray, offset: int) -> np.ndarray:
    """One synthetic attack per work-size crop (print for even, replay for odd global index), input-size."""
    out = np.empty((crops.shape[0], CROP["input_size"], CROP["input_size"], 3), np.uint8)
    for i, c in enumerate(crops):
        kind = "print" if (offset + i) % 2 == 0 else "replay"
        out[i] = resize_crop(simulate_attack(c, kind, seed=(SEED, offset + i)), CROP["input_size"])
    return out


def small(crops: np.ndarray) -> np.ndarray:
    return np.stack([resize_crop(c, CROP["input_size"]) for c in crops]) if len(crops) else crops


def load_data(root: Path, cache: Path | None, sizes: dict) -> dict:
    key = hashlib.sha256(json.dumps([CROP, sizes, SEED], sort_keys=True).encode()).hexdigest()[:12]
    path = None if cache is None else cache / f"liveness_cnn_{key}.npz"
    if path is not None and path.is_file():
        log(f"crops from {path}")
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    det = get_detector("yunet")
    items = nuaa_images(nuaa_dir(root))
    if sizes["nuaa_per_class"]:
        rng = np.random.default_rng(SEED)
        keep = []
        for attack in (False, True):
            rows = [i for i, it in enumerate(items) if it[2] == attack]
            keep += sorted(rng.permutation(rows)[: sizes["nuaa_per_class"]].tolist())
        items = [items[i] for i in sorted(keep)]
    log(f"NUAA: {len(items)} images")
    n_crops, n_found, _ = detect_and_crop([p for p, _, _ in items], det)
    ext = external_sources(root, sizes["lfw_fit"], sizes["utk_fit"], sizes["orl"], fit=True)
    log(f"external fit half: {len(ext)} images")
    e_crops, e_found, _ = detect_and_crop([p for p, _ in ext], det)
    ev = external_sources(root, sizes["lfw_eval"], sizes["utk_eval"], 0, fit=False)
    log(f"external measurement half: {len(ev)} images")
    lbp = default_passive_checker(detector=det)
    v_crops, v_found, v_lbp = detect_and_crop([p for p, _ in ev], det, lbp=lbp)
    n_attack = np.array([a for _, _, a in items])
    data = {
        "nuaa_x": small(n_crops),
        "nuaa_found": n_found,
        "nuaa_attack": n_attack,
        "nuaa_subject": np.array([s for _, s, _ in items]),
        "nuaa_session": np.array([nuaa_name(p).session for p, _, _ in items]),
        # synthetic attacks from NUAA real images (rows of NUAA; unused for attack rows)
        "nuaa_synth": synth(n_crops, 0),
        "ext_x": small(e_crops[e_found]),
        "ext_source": np.array([s for (_, s), f in zip(ext, e_found, strict=True) if f]),
        "ext_synth": synth(e_crops[e_found], len(items)),
        "ext_n_no_face": np.array(int((~e_found).sum())),
        "eval_x": small(v_crops[v_found]),
        "eval_source": np.array([s for (_, s), f in zip(ev, v_found, strict=True) if f]),
        "eval_lbp": v_lbp[v_found],
        "eval_n_no_face": np.array([int((~v_found[[s == k for _, s in ev]]).sum()) for k in ("lfw", "utkface")]),
    }
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **data)
    return data


# -- training sets ---------------------------------------------------------------------------
def external_set(data: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.concatenate([data["ext_x"], data["ext_synth"]])
    a = np.concatenate([np.zeros(len(data["ext_x"]), bool), np.ones(len(data["ext_synth"]), bool)])
    w = np.full(len(a), 1.0 / len(a))
    return x, a, w


def fold_set(data: dict, rows: np.ndarray, *, with_external: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NUAA rows (+ synthetic attacks of their real images) [+ the external set]; group-balanced weights."""
    att = data["nuaa_attack"]
    real, prints = rows & ~att, rows & att
    parts = [
        (data["nuaa_x"][real], False, 1.0),
        (data["nuaa_x"][prints], True, 1.0),
        (data["nuaa_synth"][real], True, 0.5),
    ]
    if with_external:
        parts += [(data["ext_x"], False, 1.5), (data["ext_synth"], True, 1.5)]
    parts = [p for p in parts if len(p[0])]
    x = np.concatenate([p[0] for p in parts])
    a = np.concatenate([np.full(len(p[0]), p[1]) for p in parts])
    w = np.concatenate([np.full(len(p[0]), p[2] / len(p[0])) for p in parts])
    return x, a, w


def validation_subjects(subjects: tuple[str, ...], subj: np.ndarray, sess: np.ndarray, att: np.ndarray, session: str):
    """Two training subjects with bona fide and attack images in the training session (deterministic)."""
    ok = [
        s
        for s in subjects
        if ((subj == s) & (sess == session) & ~att).any() and ((subj == s) & (sess == session) & att).any()
    ]
    return (ok[0], ok[len(ok) // 2])


# -- main ------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-protocol", action="store_true", help="only rebuild the shipped model")
    ap.add_argument("--no-ablation", action="store_true", help="skip the synthetic-only / NUAA-only cells")
    ap.add_argument("--smoke", action="store_true", help="tiny subset, a few steps (tests)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--out-dir", type=Path, default=MODEL_DIR, help="where passive_cnn.onnx / .json go")
    ap.add_argument("--cache", type=Path, default=REPO / "bench" / "cache", help="crop cache folder ('' for none)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--pretrain-epochs", type=int, default=4)
    ap.add_argument("--finetune-epochs", type=int, default=3)
    ap.add_argument(
        "--protocol-from",
        type=Path,
        default=None,
        help="with --no-protocol: take the folds (cells and thresholds) from this earlier results file "
        "(same recipe), e.g. to ship another --threshold-rule without retraining the folds",
    )
    ap.add_argument(
        "--capture",
        type=float,
        default=CAPTURE,
        help="share of each batch given random capture conditions (simulate_capture; 0 = off)",
    )
    ap.add_argument(
        "--threshold-rule",
        default="mid",
        choices=["eer", "apcer5", "apcer1", "apcer0", "mid"],
        help="validation rule whose median over the folds is the shipped threshold ('live' at or above)",
    )
    ap.add_argument(
        "--spoof-rule",
        default="apcer5",
        choices=["eer", "apcer5", "apcer1", "apcer0", "bpcer1", "mid"],
        help="validation rule whose median over the folds is the shipped 'spoof below' (else 'unsure')",
    )
    args = ap.parse_args()
    faceprint.runtime.set_num_threads(args.threads)
    from faceprint.training.liveness import (
        LivenessTrainConfig,
        export_liveness_onnx,
        predict_live,
        train_liveness_cnn,
    )

    sizes = {"nuaa_per_class": 0, "lfw_fit": 1000, "utk_fit": 800, "orl": 400, "lfw_eval": 500, "utk_eval": 500}
    max_steps = None
    if args.smoke:
        sizes = {"nuaa_per_class": 12, "lfw_fit": 8, "utk_fit": 8, "orl": 4, "lfw_eval": 4, "utk_eval": 4}
        max_steps = 3
        args.no_protocol = True
    root = data_root(required=True)
    assert root is not None
    cache = None if str(args.cache) in ("", ".") else args.cache
    t_data = time.perf_counter()
    data = load_data(root, cache, sizes)
    t_data = time.perf_counter() - t_data
    found = data["nuaa_found"]
    subj, sess, att = data["nuaa_subject"], data["nuaa_session"], data["nuaa_attack"]
    pre_cfg = LivenessTrainConfig(
        epochs=args.pretrain_epochs, lr=3e-3, seed=SEED, threads=args.threads, max_steps=max_steps, capture=args.capture
    )
    ft_cfg = LivenessTrainConfig(
        epochs=args.finetune_epochs,
        lr=1e-3,
        seed=SEED + 1,
        threads=args.threads,
        max_steps=max_steps,
        capture=args.capture,
    )
    t0 = time.perf_counter()
    x, a, w = external_set(data)
    log(f"pretrain on {len(a)} external samples ({int(a.sum())} synthetic attacks)")
    import torch

    from faceprint.training.liveness import MiniFASNet

    pre_key = hashlib.sha256(json.dumps([CROP, sizes, SEED, pre_cfg.__dict__], sort_keys=True).encode()).hexdigest()[
        :12
    ]
    pre_path = None if cache is None else cache / f"liveness_cnn_pretrained_{pre_key}.pt"
    pre_cached = pre_path is not None and pre_path.is_file()
    if pre_path is not None and pre_cached:
        pre = MiniFASNet(input_size=CROP["input_size"])
        pre.load_state_dict(torch.load(pre_path, weights_only=True))
        pre.eval()
        log(f"pretrained net from {pre_path}")
    else:
        pre = train_liveness_cnn(x, a, pre_cfg, sample_weights=w, progress=log)
        if pre_path is not None:
            torch.save(pre.state_dict(), pre_path)
    t_pre = time.perf_counter() - t0
    log(f"pretrained in {t_pre:.0f} s")

    result: dict = {
        "model": "MiniFASNet-like CNN + Fourier auxiliary loss (faceprint.training.liveness)",
        "crop": CROP,
        "sizes": sizes,
        "config": {"pretrain": pre_cfg.__dict__, "finetune": ft_cfg.__dict__},
        "data": {
            "n_external_bona_fide": int(len(data["ext_x"])),
            "n_external_synthetic_attacks": int(len(data["ext_synth"])),
            "external_sources": {k: int((data["ext_source"] == k).sum()) for k in ("lfw", "utkface", "orl")},
            "external_no_face": int(data["ext_n_no_face"]),
            "nuaa_no_face": int((~found).sum()),
        },
        "timing_s": {"data": round(t_data, 1), "pretrain": round(t_pre, 1)},
        "pretrained_net_from_cache": pre_cached,
        "threads": args.threads,
    }

    fold_thresholds: list[float] = []
    fold_spoof: list[float] = []
    saved: dict[str, np.ndarray] = {}
    if not args.no_protocol:
        folds = session_subject_folds(sorted(set(sess.tolist())), sorted(set(subj.tolist())), NUAA_SUBJECT_GROUPS)
        lbp_proto = json.loads(PROTOCOL_LBP.read_text()) if PROTOCOL_LBP.is_file() else None
        out_folds: dict = {}
        t_ft: list[float] = []
        for fold in folds:
            tr_all = fold.train_mask(subj, sess) & found
            val_subj = validation_subjects(fold.train_subjects, subj, sess, att, fold.train_session)
            val = tr_all & np.isin(subj, val_subj)
            tr = tr_all & ~val
            assert not (tr & fold.excluded_mask(subj, sess)).any()
            variants: dict = {}
            t1 = time.perf_counter()
            xf, af, wf = fold_set(data, tr, with_external=True)
            model = train_liveness_cnn(xf, af, ft_cfg, sample_weights=wf, model=copy.deepcopy(pre), progress=log)
            t_ft.append(time.perf_counter() - t1)
            variants["cnn"] = model
            if not args.no_ablation:
                variants["synthetic_only"] = pre
                xs, as_, ws = fold_set(data, tr, with_external=False)
                nuaa_cfg = LivenessTrainConfig(
                    epochs=args.pretrain_epochs + args.finetune_epochs,
                    lr=3e-3,
                    seed=SEED,
                    threads=args.threads,
                    capture=args.capture,
                )
                variants["nuaa_only"] = train_liveness_cnn(xs, as_, nuaa_cfg, sample_weights=ws)
            entry: dict = {
                "train_session": fold.train_session,
                "test_session": fold.test_session,
                "train_subjects": [s for s in fold.train_subjects if s not in val_subj],
                "validation_subjects": list(val_subj),
                "test_subjects": list(fold.test_subjects),
                "n_train_nuaa": {"bona_fide": int((tr & ~att).sum()), "attack": int((tr & att).sum())},
                "models": {},
            }
            for name, m in variants.items():
                vs = predict_live(m, data["nuaa_x"][val])
                thresholds = {
                    "eer": eer_threshold(vs, att[val])[1],
                    "apcer5": threshold_at_apcer(vs, att[val], 0.05),
                    "apcer1": threshold_at_apcer(vs, att[val], 0.01),
                    "apcer0": threshold_at_apcer(vs, att[val], 0.0),
                    "bpcer1": threshold_at_bpcer(vs, att[val], 0.01),
                    "mid": gap_midpoint(vs, att[val]),
                    "fixed_0.5": 0.5,
                }
                if name == "cnn":
                    fold_thresholds.append(thresholds[args.threshold_rule])
                    fold_spoof.append(min(thresholds[args.spoof_rule], thresholds[args.threshold_rule]))
                cells = {}
                saved[f"{fold.name}/{name}/validation"] = np.stack([vs, att[val]])
                for kind in CELL_KINDS:
                    te = fold.test_mask(subj, sess, kind) & found
                    ts = predict_live(m, data["nuaa_x"][te])
                    saved[f"{fold.name}/{name}/{kind}"] = np.stack([ts, att[te]])
                    cells[kind] = cell_report(ts, att[te], thresholds)
                    cells[kind]["two_threshold"] = two_threshold(
                        ts, att[te], thresholds[args.threshold_rule], thresholds[args.spoof_rule]
                    )
                entry["models"][name] = {"thresholds": thresholds, "cells": cells}
            if lbp_proto is not None and fold.name in lbp_proto["folds"]:
                entry["models"]["lbp"] = {
                    "thresholds": lbp_proto["folds"][fold.name]["thresholds"],
                    "cells": lbp_proto["folds"][fold.name]["cells"],
                    "note": "from bench/results/liveness_protocol.json (trained on all 6 training subjects)",
                }
            out_folds[fold.name] = entry
            c = entry["models"]["cnn"]["cells"]["unseen_session_and_subjects"]
            op = c["at"]["apcer5"]
            log(
                f"{fold.name}: CNN headline APCER {op['apcer']:.3f} BPCER {op['bpcer']:.3f} "
                f"EER {c['eer']:.3f} (fine-tune {t_ft[-1]:.0f} s)"
            )
        result["folds"] = out_folds
        result["summary"] = summarise(out_folds)
        result["rules"] = {"live": args.threshold_rule, "spoof": args.spoof_rule}
        result["timing_s"]["finetune_per_fold_mean"] = round(float(np.mean(t_ft)), 1)
    elif args.protocol_from is not None:
        earlier = json.loads(args.protocol_from.read_text())
        if earlier["config"] != result["config"] or earlier["sizes"] != result["sizes"]:
            raise SystemExit(f"{args.protocol_from}: another recipe (config / sizes differ)")
        result["folds"] = earlier["folds"]
        result["timing_s"]["finetune_per_fold_mean"] = earlier["timing_s"].get("finetune_per_fold_mean")
        scores_path = None if cache is None else cache / "liveness_cnn_scores.npz"
        old = np.load(scores_path) if scores_path is not None and scores_path.is_file() else None
        for fold_name, entry in earlier["folds"].items():
            th = entry["models"]["cnn"]["thresholds"]
            fold_thresholds.append(th[args.threshold_rule])
            fold_spoof.append(min(th[args.spoof_rule], th[args.threshold_rule]))
            for name, m in entry["models"].items():  # the two-threshold decision of the rules now shipped
                for kind, cell in m["cells"].items():
                    key = f"{fold_name}/{name}/{kind}"
                    cell.pop("two_threshold", None)
                    rules_known = {args.threshold_rule, args.spoof_rule} <= set(m["thresholds"])
                    if old is not None and key in old.files and rules_known:
                        ts, ta = old[key][0], old[key][1].astype(bool)
                        cell["two_threshold"] = two_threshold(
                            ts, ta, m["thresholds"][args.threshold_rule], m["thresholds"][args.spoof_rule]
                        )
        result["summary"] = summarise(result["folds"])
        result["rules"] = {"live": args.threshold_rule, "spoof": args.spoof_rule}

    # the shipped model: fine-tune on every NUAA image
    t1 = time.perf_counter()
    xs, as_, ws = fold_set(data, found.copy(), with_external=True)
    final = train_liveness_cnn(xs, as_, ft_cfg, sample_weights=ws, model=copy.deepcopy(pre), progress=log)
    result["timing_s"]["final_finetune"] = round(time.perf_counter() - t1, 1)
    threshold = float(np.median(fold_thresholds)) if fold_thresholds else 0.5
    spoof_below = min(float(np.median(fold_spoof)), threshold) if fold_spoof else threshold
    if saved and cache is not None:
        np.savez(cache / "liveness_cnn_scores.npz", **saved)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = args.out_dir / "passive_cnn.onnx"
    diff = export_liveness_onnx(final, onnx_path, data["nuaa_x"][:16])
    spec = write_cnn_spec(
        args.out_dir / "passive_cnn.json",
        onnx_path,
        threshold=threshold,
        spoof_below=spoof_below,
        **CROP,
        extra={
            "trained_by": "python bench/train_liveness_cnn.py",
            "threshold_source": f"median over the protocol folds of the validation '{args.threshold_rule}' threshold"
            if fold_thresholds
            else "0.5 (no protocol run)",
            "spoof_below_source": f"median over the protocol folds of the validation '{args.spoof_rule}' threshold"
            if fold_spoof
            else "= threshold (no protocol run)",
        },
    )
    checker = CNNPassiveChecker(spec)
    onnx_scores = checker.score_crops(data["eval_x"]) if len(data["eval_x"]) else np.zeros(0)
    result["final_model"] = {
        "threshold": threshold,
        "spoof_below": spoof_below,
        "onnx_bytes": onnx_path.stat().st_size,
        "onnx_sha256": hashlib.sha256(onnx_path.read_bytes()).hexdigest(),
        "spec_sha256": hashlib.sha256(spec.read_bytes()).hexdigest(),
        "max_abs_torch_vs_onnx": diff,
        "parameters": int(sum(p.numel() for n, p in final.named_parameters() if not n.startswith("ft_"))),
        "nuaa_train_scores_sample": [round(float(v), 6) for v in checker.score_crops(data["nuaa_x"][:4])],
    }
    # out-of-domain bona fide (measurement halves)
    lbp_thr = default_passive_checker().threshold
    ood: dict = {}
    for k, src in enumerate(("lfw", "utkface")):
        m = data["eval_source"] == src
        if not m.any():
            continue
        ood[src] = {
            "n_scored": int(m.sum()),
            "n_no_face": int(data["eval_n_no_face"][k]),
            "cnn": {
                "bpcer": float(np.mean(onnx_scores[m] < threshold)),
                "spoof": float(np.mean(onnx_scores[m] < spoof_below)),
                "unsure": float(np.mean((onnx_scores[m] >= spoof_below) & (onnx_scores[m] < threshold))),
                "spoof_below": spoof_below,
                "median_score": float(np.median(onnx_scores[m])),
                "threshold": threshold,
            },
            "lbp": {
                "bpcer": float(np.mean(data["eval_lbp"][m] < lbp_thr)),
                "median_score": float(np.median(data["eval_lbp"][m])),
                "threshold": lbp_thr,
            },
        }
    result["out_of_domain_bona_fide"] = ood
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    log(json.dumps({"summary": result.get("summary"), "ood": ood, "final": result["final_model"]}, indent=1))
    print(f"model -> {onnx_path} ({onnx_path.stat().st_size} bytes), results -> {args.out}")


def gap_midpoint(scores: np.ndarray, attack: np.ndarray) -> float:
    """The logit-space midpoint between the validation attacks' APCER-5 % threshold and the bona fide
    BPCER-5 % one: the middle of the gap between the classes, robust to a shift of either class on
    a new session (the APCER / BPCER rules sit at one edge of the gap). EER threshold if no gap."""
    lo, hi = threshold_at_apcer(scores, attack, 0.05), threshold_at_bpcer(scores, attack, 0.05)
    if hi <= lo:
        return float(eer_threshold(scores, attack)[1])
    p = np.clip([lo, hi], 1e-6, 1 - 1e-6)
    mid_logit = float(np.mean(np.log(p / (1 - p))))
    return float(1.0 / (1.0 + np.exp(-mid_logit)))


def two_threshold(scores: np.ndarray, attack: np.ndarray, t_live: float, t_spoof: float) -> dict:
    """Live at >= t_live, spoof below min(t_spoof, t_live), unsure between: the rates of each outcome."""
    lo = min(t_spoof, t_live)
    live, spoof = scores >= t_live, scores < lo
    bf, pa = ~attack, attack
    return {
        "threshold": float(t_live),
        "spoof_below": float(lo),
        "apcer": float(np.mean(live[pa])),
        "bpcer_not_live": float(np.mean(~live[bf])),
        "bona_fide_spoof": float(np.mean(spoof[bf])),
        "bona_fide_unsure": float(np.mean(~live[bf] & ~spoof[bf])),
        "attack_unsure": float(np.mean(~live[pa] & ~spoof[pa])),
    }


def summarise(folds: dict) -> dict:
    """Mean / worst APCER, BPCER, ACER per model, cell kind and threshold; mean EER."""
    out: dict = {}
    names = sorted({n for f in folds.values() for n in f["models"]})
    for name in names:
        out[name] = {}
        for kind in CELL_KINDS:
            rows = [f["models"][name]["cells"][kind] for f in folds.values() if name in f["models"]]
            e: dict = {
                "mean_eer": float(np.mean([r["eer"] for r in rows])),
                "mean_bpcer_at_apcer_5pct": float(np.mean([r["bpcer_at_apcer_5pct"] for r in rows])),
            }
            if "two_threshold" in rows[0]:
                for k in rows[0]["two_threshold"]:
                    if k not in ("threshold", "spoof_below"):
                        e[f"two_threshold_mean_{k}"] = float(np.mean([r["two_threshold"][k] for r in rows]))
            for t in rows[0]["at"]:
                for k in ("apcer", "bpcer", "acer"):
                    v = [r["at"][t][k] for r in rows]
                    e[f"{t}_mean_{k}"] = float(np.mean(v))
                    e[f"{t}_max_{k}"] = float(np.max(v))
            out[name][kind] = e
    return out


if __name__ == "__main__":
    cv2.setNumThreads(1)
    main()
