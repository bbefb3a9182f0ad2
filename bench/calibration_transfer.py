"""Calibration transfer: thresholds fitted on one set of people by ``fit_calibration``, realised FMR on others.

Uses the embedding caches only (``bench/lfw_embeddings.py``, ``bench/distractor_embeddings.py``:
YuNet central face + SFace, with and without flip); nothing is re-embedded.

Calibrations (each with :func:`faceprint.calibration.fit_calibration`, bootstrap over people):

* ``lfw-calibration-half``: the LFW people of the calibration half
  (``faceprint.thresholds.is_tail_calibration_identity``), every genuine and impostor pair;
* ``utkface-fit-half``: the UTKFace images of the fit half (``faceprint.datasets.utkface.is_fit_image``).
  UTKFace has no identities: each image is its own "person", every cross pair an impostor pair
  (a person photographed twice would make a few of them genuine), so only impostor-side statistics;
* ``shipped``: the thresholds in ``calibration.json`` (LFW view 1 pairsDevTrain, 1,100 impostor pairs), for comparison.

Measured on the other halves only: ``lfw-evaluation-half`` (impostor pairs among the other LFW people,
and their genuine pairs for TAR) and ``utkface-measure-half`` (every cross pair of the other UTKFace
images). For each calibration, target FMR and measurement set: the false matches among all impostor
pairs there, the realised FMR with its 95 % Clopper-Pearson interval, and realised / target.

    python bench/calibration_transfer.py   # -> bench/results/calibration_transfer.json

About two minutes on 2 cores once the caches exist.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import distractor_embeddings  # noqa: E402
import lfw_embeddings  # noqa: E402
from scipy.stats import beta  # noqa: E402

from faceprint import __version__  # noqa: E402
from faceprint.calibration import Calibration, fit_calibration  # noqa: E402
from faceprint.datasets.utkface import is_fit_image  # noqa: E402
from faceprint.embedding import load_calibration  # noqa: E402
from faceprint.runtime import set_num_threads  # noqa: E402
from faceprint.thresholds import is_tail_calibration_identity  # noqa: E402

FMRS = (1e-2, 1e-3, 1e-4, 1e-5)
SHIPPED_KEYS = ("1e-2", "1e-3", "1e-4")


def clopper_pearson(k: int, n: int, conf: float = 0.95) -> tuple[float, float]:
    a = (1 - conf) / 2
    lo = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - a, k + 1, n - k))
    return lo, hi


def pair_scores(emb: np.ndarray, labels: np.ndarray, block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """(sorted impostor scores, genuine scores) over every pair of images, each pair once."""
    codes = np.unique(labels, return_inverse=True)[1]
    imp, gen = [], []
    for r0 in range(0, len(emb), block):
        s = emb[r0 : r0 + block] @ emb[r0:].T
        upper = np.arange(r0, len(emb))[None, :] > np.arange(r0, min(r0 + block, len(emb)))[:, None]
        same = codes[r0 : r0 + block, None] == codes[None, r0:]
        imp.append(s[upper & ~same])
        gen.append(s[upper & same])
    return np.sort(np.concatenate(imp)), np.concatenate(gen)


def measure(
    imp_sorted: np.ndarray, gen: np.ndarray, threshold: float, target: float, interval: list[float] | None
) -> dict[str, Any]:
    n = int(imp_sorted.size)
    k = int(n - np.searchsorted(imp_sorted, threshold, side="left"))
    lo, hi = clopper_pearson(k, n)
    # the threshold that gives the target exactly on this set (threshold_at_fmr's rule), and whether
    # the calibration's bootstrap interval holds it
    exact = float(np.nextafter(imp_sorted[::-1][int(np.floor(target * n))], np.inf))
    out: dict[str, Any] = {
        "threshold": round(threshold, 6),
        "threshold_at_target_here": round(exact, 6),
        "calibration_interval_holds_it": None if interval is None else bool(interval[0] <= exact <= interval[1]),
        "impostor_pairs": n,
        "false_matches": k,
        "realised_fmr": k / n,
        "ci95": [lo, hi],
        "realised_over_target": round(k / n / target, 3),
        "ci95_over_target": [round(lo / target, 3), round(hi / target, 3)],
    }
    if gen.size:
        out["tar"] = round(float((gen >= threshold).mean()), 5)
        out["genuine_pairs"] = int(gen.size)
    return out


def calibration_summary(cal: Calibration) -> dict[str, Any]:
    return {
        "source": cal.source,
        "counts": cal.counts.to_dict(),
        "bootstrap": {"n": cal.n_boot, "seed": cal.seed, "resampled": "people"},
        "points": {
            p.key: {
                "threshold": round(p.threshold, 6),
                "interval": None if p.interval is None else [round(v, 6) for v in p.interval],
                "tar_on_calibration_set": None if p.tar is None else round(p.tar, 5),
            }
            for p in cal.points
        },
        "notes": list(cal.notes),
    }


def run_model(key: str, flip: bool, n_boot: int, seed: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    _, names, emb = lfw_embeddings.load(flip=flip)
    d_paths, d_sources, _, d_emb = distractor_embeddings.load(flip=flip)
    cal_half = np.array([is_tail_calibration_identity(str(n)) for n in names])
    utk = d_sources == "utkface"
    utk_fit = utk & np.array([is_fit_image(str(p)) for p in d_paths])
    utk_measure = utk & ~utk_fit

    fingerprint = f"{key}@bench-cache"
    lfw_source = (
        f"LFW deep-funneled calibration half (sha256(name)[0] even): {len(set(names[cal_half].tolist()))} people, "
        f"{int(cal_half.sum())} images"
    )
    lfw_cal = fit_calibration(
        emb[cal_half], names[cal_half], model=key, fingerprint=fingerprint, fmrs=FMRS, n_boot=n_boot, seed=seed,
        max_impostor_pairs=30_000_000, source=lfw_source,
    )
    print(f"{key}: LFW calibration half fitted ({time.perf_counter() - t0:.0f} s)", flush=True)
    utk_cal = fit_calibration(
        d_emb[utk_fit], np.arange(int(utk_fit.sum())), model=key, fingerprint=fingerprint, fmrs=FMRS, n_boot=n_boot,
        seed=seed, source=f"UTKFace fit half (is_fit_image): {int(utk_fit.sum())} images, each its own person",
    )
    print(f"{key}: UTKFace fit half fitted ({time.perf_counter() - t0:.0f} s)", flush=True)
    shipped = load_calibration()["models"][key]["thresholds"]

    sets = {
        "lfw-evaluation-half": pair_scores(emb[~cal_half], names[~cal_half]),
        "utkface-measure-half": pair_scores(d_emb[utk_measure], np.arange(int(utk_measure.sum()))),
    }
    sets_info = {
        "lfw-evaluation-half": {
            "people": len(set(names[~cal_half].tolist())),
            "images": int((~cal_half).sum()),
            "impostor_pairs": int(sets["lfw-evaluation-half"][0].size),
            "genuine_pairs": int(sets["lfw-evaluation-half"][1].size),
        },
        "utkface-measure-half": {
            "images": int(utk_measure.sum()),
            "impostor_pairs": int(sets["utkface-measure-half"][0].size),
            "note": "every cross pair of images counted as impostor (UTKFace has no identity labels): a person "
            "photographed twice, or a near-duplicate image, counts as a false match, which weighs most in the "
            "far tail (the UTKFace-fitted 1e-4 / 1e-5 thresholds partly track such pairs)",
        },
    }
    rows = []
    thresholds: dict[str, dict[str, float]] = {
        "lfw-calibration-half": lfw_cal.thresholds,
        "utkface-fit-half": utk_cal.thresholds,
        "shipped": {k: float(shipped[k]) for k in SHIPPED_KEYS},
    }
    fitted = {"lfw-calibration-half": lfw_cal, "utkface-fit-half": utk_cal}
    for cal_name, table in thresholds.items():
        for fmr_key, thr in table.items():
            if fmr_key == "best_accuracy":
                continue
            target = float(fmr_key)
            interval = None
            if cal_name in fitted:
                iv = fitted[cal_name].point(fmr_key).interval
                interval = None if iv is None else [float(iv[0]), float(iv[1])]
            for set_name, (imp, gen) in sets.items():
                rows.append({"calibration": cal_name, "target_fmr": fmr_key, "measured_on": set_name,
                             "calibration_interval": interval, **measure(imp, gen, float(thr), target, interval)})
    return {
        "model": key,
        "calibrations": {
            "lfw-calibration-half": calibration_summary(lfw_cal),
            "utkface-fit-half": calibration_summary(utk_cal),
            "shipped": {"source": "calibration.json: LFW view 1 pairsDevTrain, 1,100 impostor pairs",
                        "points": {k: {"threshold": round(float(shipped[k]), 6)} for k in SHIPPED_KEYS}},
        },
        "measurement_sets": sets_info,
        "results": rows,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def print_table(result: dict[str, Any]) -> None:
    print(f"\n{result['model']}: realised FMR (95% CI) on held-out pairs; ratio = realised / target")
    print(f"{'calibration':<22}{'target':>8}{'threshold':>11}  {'LFW other half':<40}{'UTKFace other half':<40}")
    by: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for r in result["results"]:
        by.setdefault((r["calibration"], r["target_fmr"]), {})[r["measured_on"]] = r
    for (cal, target), cells in by.items():
        parts = []
        for set_name in ("lfw-evaluation-half", "utkface-measure-half"):
            r = cells[set_name]
            lo, hi = r["ci95"]
            parts.append(f"{r['realised_fmr']:.2e} ({lo:.2e}-{hi:.2e}) x{r['realised_over_target']:<7}")
        thr = next(iter(cells.values()))["threshold"]
        print(f"{cal:<22}{target:>8}{thr:>11.4f}  {parts[0]:<40}{parts[1]:<40}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "calibration_transfer.json")
    args = ap.parse_args()
    set_num_threads(1)
    t0 = time.perf_counter()
    models = (("sface", False), ("sface+flip", True))
    results = [run_model(key, flip, args.bootstrap, args.seed) for key, flip in models]
    for r in results:
        print_table(r)
    out = {
        "about": "Calibration transfer: thresholds fitted by faceprint.calibration.fit_calibration on LFW's "
        "calibration-half people and on UTKFace's fit half, and the shipped LFW DevTrain thresholds, measured "
        "on the OTHER halves (LFW evaluation-half people, UTKFace measure half). Realised FMR = false matches / "
        "all impostor pairs of the measurement set, with 95 % Clopper-Pearson intervals.",
        "protocol": __doc__.split("Calibrations (")[1].split("    python")[0].strip(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "faceprint": __version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "models": results,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwrote {args.out} in {out['seconds']} s")


if __name__ == "__main__":
    main()
