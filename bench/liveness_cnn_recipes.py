"""Training recipes of the liveness CNN compared on the held-out protocol cells (what each change adds).

Usage::

    python bench/liveness_cnn_recipes.py --name base --capture 0          # no capture augmentation
    python bench/liveness_cnn_recipes.py --name cap50 --capture 0.5       # the shipped recipe
    python bench/liveness_cnn_recipes.py --name cap50_ext3 --capture 0.5 --ext-weight 3.0

Each run writes ``bench/results/liveness_cnn_recipe_<name>.json`` (raw scores:
``bench/cache/liveness_cnn_recipe_<name>_scores.npz``). Same data, crops, folds, validation subjects
and threshold rules as ``bench/train_liveness_cnn.py`` (whose crop cache it reads). Per cell: EER,
BPCER at APCER 5 % and APCER at BPCER 5 % (threshold-free, read off the cell itself: what the scores
*can* separate), and APCER / BPCER at each validation rule (what a threshold fixed before the test
holds). Out-of-domain: BPCER of each fold's model at its validation thresholds on the LFW / UTKFace
measurement-half crops, clean and degraded *at crop level* (dark x0.4, blur sigma 0.9 on the 64 px
crop, JPEG q30): a quick proxy; ``bench/liveness_cnn_checks.py`` degrades the full photos and runs
the shipped checker.
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
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_liveness_cnn as T  # noqa: E402

from faceprint.datasets import data_root  # noqa: E402
from faceprint.liveness import (  # noqa: E402
    CELL_KINDS,
    NUAA_SUBJECT_GROUPS,
    eer_threshold,
    session_subject_folds,
    threshold_at_apcer,
    threshold_at_bpcer,
)
from faceprint.training.liveness import LivenessTrainConfig, MiniFASNet, predict_live, train_liveness_cnn  # noqa: E402

SIZES = {"nuaa_per_class": 0, "lfw_fit": 1000, "utk_fit": 800, "orl": 400, "lfw_eval": 500, "utk_eval": 500}
RULES = ("eer", "apcer1", "apcer5", "bpcer1", "mid")


def degrade(x: np.ndarray, kind: str) -> np.ndarray:
    if kind == "dark":
        return np.clip(x.astype(np.float32) * 0.4, 0, 255).astype(np.uint8)
    if kind == "blur":
        return np.stack([cv2.GaussianBlur(c, (0, 0), 0.9) for c in x])
    if kind == "jpeg":
        out = []
        for c in x:
            _, buf = cv2.imencode(".jpg", c, [cv2.IMWRITE_JPEG_QUALITY, 30])
            out.append(cv2.imdecode(buf, cv2.IMREAD_UNCHANGED))
        return np.stack(out)
    return x


def fold_set(data: dict, rows: np.ndarray, ext_weight: float, synth_weight: float):
    """As train_liveness_cnn.fold_set, with the external and synthetic group weights as parameters."""
    att = data["nuaa_attack"]
    real, prints = rows & ~att, rows & att
    parts = [
        (data["nuaa_x"][real], False, 1.0),
        (data["nuaa_x"][prints], True, 1.0),
        (data["nuaa_synth"][real], True, synth_weight),
        (data["ext_x"], False, ext_weight),
        (data["ext_synth"], True, ext_weight),
    ]
    parts = [p for p in parts if len(p[0])]
    x = np.concatenate([p[0] for p in parts])
    a = np.concatenate([np.full(len(p[0]), p[1]) for p in parts])
    w = np.concatenate([np.full(len(p[0]), p[2] / len(p[0])) for p in parts])
    return x, a, w


def pretrained(data: dict, cfg: LivenessTrainConfig, cache: Path) -> MiniFASNet:
    key = hashlib.sha256(json.dumps([T.CROP, SIZES, cfg.__dict__], sort_keys=True).encode()).hexdigest()[:12]
    path = cache / f"liveness_cnn_recipe_pre_{key}.pt"
    if path.is_file():
        net = MiniFASNet(input_size=T.CROP["input_size"])
        net.load_state_dict(torch.load(path, weights_only=True))
        return net.eval()
    t0 = time.perf_counter()
    x, a, w = T.external_set(data)
    net = train_liveness_cnn(x, a, cfg, sample_weights=w)
    torch.save(net.state_dict(), path)
    T.log(f"pretrained (seed {cfg.seed}) in {time.perf_counter() - t0:.0f} s")
    return net


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", required=True)
    ap.add_argument("--capture", type=float, default=0.0)
    ap.add_argument("--capture-p", type=float, default=0.4)
    ap.add_argument("--pre-epochs", type=int, default=4)
    ap.add_argument("--ft-epochs", type=int, default=3)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="several: a score-averaging ensemble")
    ap.add_argument("--ext-weight", type=float, default=1.5)
    ap.add_argument("--synth-weight", type=float, default=0.5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cache = T.REPO / "bench" / "cache"
    data = T.load_data(data_root(required=True), cache, SIZES)
    found = data["nuaa_found"]
    subj, sess, att = data["nuaa_subject"], data["nuaa_session"], data["nuaa_attack"]
    evals = {
        f"{src}/{k}": degrade(data["eval_x"][data["eval_source"] == src], k)
        for src in ("lfw", "utkface")
        for k in ("none", "dark", "blur", "jpeg")
    }
    cap = {"capture": args.capture, "capture_effect_p": args.capture_p}
    pres = [
        (s, pretrained(data, LivenessTrainConfig(epochs=args.pre_epochs, lr=3e-3, seed=s, threads=1, **cap), cache))
        for s in args.seeds
    ]
    folds = session_subject_folds(sorted(set(sess.tolist())), sorted(set(subj.tolist())), NUAA_SUBJECT_GROUPS)
    res: dict = {"args": vars(args), "folds": {}}
    saved: dict[str, np.ndarray] = {}
    for fold in folds:
        tr_all = fold.train_mask(subj, sess) & found
        val_subj = T.validation_subjects(fold.train_subjects, subj, sess, att, fold.train_session)
        val = tr_all & np.isin(subj, val_subj)
        xf, af, wf = fold_set(data, tr_all & ~val, args.ext_weight, args.synth_weight)
        t0 = time.perf_counter()
        models = [
            train_liveness_cnn(
                xf,
                af,
                LivenessTrainConfig(epochs=args.ft_epochs, lr=1e-3, seed=s + 1, threads=1, **cap),
                sample_weights=wf,
                model=copy.deepcopy(pre),
            )
            for s, pre in pres
        ]

        def score(x: np.ndarray, models: list = models) -> np.ndarray:
            return np.mean([predict_live(m, x) for m in models], axis=0)

        vs = score(data["nuaa_x"][val])
        saved[f"{fold.name}/validation"] = np.stack([vs, att[val]])
        thr = {
            "eer": eer_threshold(vs, att[val])[1],
            "apcer1": threshold_at_apcer(vs, att[val], 0.01),
            "apcer5": threshold_at_apcer(vs, att[val], 0.05),
            "bpcer1": threshold_at_bpcer(vs, att[val], 0.01),
            "mid": T.gap_midpoint(vs, att[val]),
        }
        entry: dict = {"thresholds": thr, "cells": {}, "ood": {}}
        for kind in CELL_KINDS:
            te = fold.test_mask(subj, sess, kind) & found
            ts, ta = score(data["nuaa_x"][te]), att[te]
            saved[f"{fold.name}/{kind}"] = np.stack([ts, ta])
            bona, attack = ts[~ta], ts[ta]
            entry["cells"][kind] = {
                "n_bona_fide": int(bona.size),
                "n_attack": int(attack.size),
                "eer": float(eer_threshold(ts, ta)[0]),
                "bpcer_at_apcer5": float(np.mean(bona < np.quantile(attack, 0.95))),
                "apcer_at_bpcer5": float(np.mean(attack >= np.quantile(bona, 0.05))),
                "at": {r: [float(np.mean(attack >= t)), float(np.mean(bona < t))] for r, t in thr.items()},
            }
        for k, x in evals.items():
            s = score(x)
            saved[f"{fold.name}/ood/{k}"] = s
            entry["ood"][k] = {r: float(np.mean(s < t)) for r, t in thr.items()}
        res["folds"][fold.name] = entry
        c = entry["cells"]["unseen_session_and_subjects"]
        T.log(
            f"{fold.name}: EER {c['eer']:.3f} BPCER@APCER5 {c['bpcer_at_apcer5']:.3f} "
            f"LFW not live {entry['ood']['lfw/none']} ({time.perf_counter() - t0:.0f} s)"
        )
    summary: dict = {}
    for kind in CELL_KINDS:
        cs = [f["cells"][kind] for f in res["folds"].values()]
        summary[kind] = {
            "mean_eer": float(np.mean([c["eer"] for c in cs])),
            "mean_bpcer_at_apcer5": float(np.mean([c["bpcer_at_apcer5"] for c in cs])),
            "max_bpcer_at_apcer5": float(np.max([c["bpcer_at_apcer5"] for c in cs])),
            "cells_bpcer_at_apcer5_le_5pct": int(sum(c["bpcer_at_apcer5"] <= 0.05 for c in cs)),
            "mean_at": {r: [float(np.mean([c["at"][r][i] for c in cs])) for i in (0, 1)] for r in RULES},
        }
    first = next(iter(res["folds"].values()))
    res["summary"] = summary
    res["ood_mean"] = {
        k: {r: float(np.mean([f["ood"][k][r] for f in res["folds"].values()])) for r in RULES} for k in first["ood"]
    }
    print(json.dumps({"summary": summary, "ood": res["ood_mean"]}, indent=1))
    out = T.REPO / "bench" / "results" / f"liveness_cnn_recipe_{args.name}.json"
    out.write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    np.savez(cache / f"liveness_cnn_recipe_{args.name}_scores.npz", **saved)
    print(f"-> {out}")


if __name__ == "__main__":
    main()
