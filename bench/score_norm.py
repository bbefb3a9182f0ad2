"""Score normalisation against demographic disparity: raw cosine vs AS-norm vs Fair Score Normalization.

    python bench/score_norm.py            # -> bench/results/score_norm.json
    python bench/score_norm.py --write    # also writes the shipped normalisers to src/faceprint/models/

Uses the embedding caches only (never re-embeds): ``bench/cache/lfw_all_sface.npz``
(bench/lfw_embeddings.py) and ``bench/cache/distractors_sface.npz`` (bench/distractor_embeddings.py),
both YuNet central face + SFace (no flip), the default pipeline's embedder key ``sface``.

Data, strictly split:

* **fit** (normalisers, their thresholds, the hyper-parameter choice): the UTKFace fit half
  (:func:`faceprint.datasets.utkface.is_fit_image`) and the LFW calibration-half people
  (:func:`faceprint.thresholds.is_tail_calibration_identity`). Hyper-parameters (AS-norm top-k,
  FSN clusters / cluster FMR) are chosen on the fit half alone: each candidate is fitted on one half
  of the UTKFace fit images (plus the LFW fit people) and scored on the other half (worst / best
  within-group FMR, race x gender and adult age bands, at a threshold matched to FMR 1e-3 there).
* **measure**: the UTKFace measurement half (every cross pair is an impostor pair: no identities),
  LFW view 2 (``pairs.txt``; also the pairs whose two people are both in the measurement half).

Normalised-score thresholds ("1e-2", "1e-3", "1e-4") are calibrated on LFW calibration-half people:
every genuine pair and 2,000,000 sampled impostor pairs; the raw cosine is calibrated the same way
for the fixed-threshold comparison (and the shipped DevTrain thresholds are reported too).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from faceprint.datasets import data_root, lfw_pairs  # noqa: E402
from faceprint.datasets.utkface import is_fit_image, utkface_groups  # noqa: E402
from faceprint.embedding import get_embedder  # noqa: E402
from faceprint.evaluation import calibrate_thresholds, evaluate_verification, threshold_at_fmr  # noqa: E402
from faceprint.evaluation.bias import disparity_claim, group_error_rates, worst_best_ratio  # noqa: E402
from faceprint.runtime import set_num_threads  # noqa: E402
from faceprint.scorenorm import AdaptiveSNorm, FairScoreNormalizer  # noqa: E402
from faceprint.thresholds import is_tail_calibration_identity  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "score_norm.json"
MODELS_DIR = ROOT / "src" / "faceprint" / "models"
MODEL = "sface"
FMR = 1e-3
ADULT = ("18-29", "30-44", "45-59", "60+")
CANDIDATES: dict[str, list[dict[str, Any]]] = {
    "s-norm": [{"top_k": k} for k in (25, 50, 100, 200, 400)],
    "fsn": [{"n_clusters": c, "fmr": f} for c in (10, 25, 50, 100) for f in (1e-3, 1e-2)],
}


def build(method: str, params: dict[str, Any], emb: np.ndarray, ids: np.ndarray) -> Any:
    if method == "s-norm":
        return AdaptiveSNorm(cohort_size=2000, **params).fit(emb, ids, model=MODEL)
    return FairScoreNormalizer(**params).fit(emb, ids, model=MODEL)


class Scorer:
    """Raw or normalised score matrices of a set of embeddings (side stats computed once)."""

    def __init__(self, norm: Any, emb: np.ndarray) -> None:
        self.norm, self.emb = norm, emb
        self.stats = None if norm is None else norm.side_stats(emb)

    def block(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        s = self.emb[i].astype(np.float64) @ self.emb[j].astype(np.float64).T
        if self.norm is None:
            return s
        assert self.stats is not None
        return self.norm.combine(s, self.stats[i][:, None, :], self.stats[j][None, :, :])

    def pairs(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        s = np.einsum("ij,ij->i", self.emb[i].astype(np.float64), self.emb[j].astype(np.float64))
        if self.norm is None:
            return s
        assert self.stats is not None
        return self.norm.combine(s, self.stats[i], self.stats[j])


def upper(m: np.ndarray) -> np.ndarray:
    return m[np.triu_indices(m.shape[0], k=1)]


def disparity(scorer: Scorer, cells: list, bands: list, n_boot: int) -> dict[str, Any]:
    """Threshold matched to FMR on all cross pairs, then within-group FMR, worst / best, claim."""
    n = scorer.emb.shape[0]
    every = np.arange(n)
    thr = threshold_at_fmr(upper(scorer.block(every, every)), np.zeros(n * (n - 1) // 2, bool), FMR)
    out: dict[str, Any] = {"threshold": thr, "images": n}
    for title, groups, exclude in (("race x gender", cells, ()), ("age band", bands, ()),
                                   ("adult age band", bands, ("0-17",))):
        g = np.array([x or "" for x in groups])
        scores, names = [], []
        for name in sorted(set(g.tolist()) - {""} - set(exclude)):
            idx = np.flatnonzero(g == name)
            s = upper(scorer.block(idx, idx))
            scores.append(s)
            names += [name] * s.size
        sc = np.concatenate(scores)
        rates = group_error_rates(sc, np.zeros(sc.size, bool), names, thr, n_boot=n_boot)
        ratio, worst, best = worst_best_ratio(rates, "fmr")
        claim = disparity_claim(rates, "fmr")
        assert claim is not None
        out[title] = {
            "ratio": None if np.isnan(ratio) else round(float(ratio), 3),
            "worst": worst.group,
            "best": best.group,
            "ci": [round(claim.ci_low, 3), None if np.isinf(claim.ci_high) else round(claim.ci_high, 3)],
            "errors": [claim.worst_errors, claim.best_errors],
            "claim": claim.claim,
            "groups": [{"group": r.group, "impostor_pairs": r.n_impostor, "false_matches": r.false_matches,
                        "fmr": round(r.fmr, 6), "fmr_ci": [round(v, 6) for v in r.fmr_ci]} for r in rates],
        }
    return out


def lfw_view2(root: Path, paths: np.ndarray, emb: np.ndarray) -> tuple[np.ndarray, ...]:
    index = {p: i for i, p in enumerate(paths.tolist())}
    pairs = lfw_pairs(root, "pairs.txt")
    images = root / "lfw" / "lfw-deepfunneled"

    def at(p: Path) -> int:
        return index.get(str(p.relative_to(images)), -1)

    ia = np.array([at(p.path_a) for p in pairs])
    ib = np.array([at(p.path_b) for p in pairs])
    same = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])
    measure = np.array([not is_tail_calibration_identity(p.path_a.parent.name)
                        and not is_tail_calibration_identity(p.path_b.parent.name) for p in pairs])
    return ia, ib, same, folds, measure


def lfw_scores(scorer: Scorer, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
    ok = (ia >= 0) & (ib >= 0)
    s = np.full(ia.size, np.nan)
    s[ok] = scorer.pairs(ia[ok], ib[ok])
    return s


def calibration_pairs(names: np.ndarray, seed: int = 0, n_imp: int = 2_000_000) -> tuple[np.ndarray, ...]:
    """Every genuine pair and ``n_imp`` sampled impostor pairs among the given images (LFW fit people)."""
    gi, gj = [], []
    for name in np.unique(names):
        idx = np.flatnonzero(names == name)
        if idx.size > 1:
            a, b = np.triu_indices(idx.size, k=1)
            gi.append(idx[a])
            gj.append(idx[b])
    rng = np.random.default_rng(seed)
    i = rng.integers(0, names.size, size=n_imp)
    j = (i + rng.integers(1, names.size, size=n_imp)) % names.size
    keep = names[i] != names[j]
    ii = np.concatenate(gi + [i[keep]])
    jj = np.concatenate(gj + [j[keep]])
    labels = np.concatenate([np.ones(sum(x.size for x in gi), bool), np.zeros(int(keep.sum()), bool)])
    return ii, jj, labels


def verification_summary(s: np.ndarray, same: np.ndarray, folds: np.ndarray, thr: float) -> dict[str, Any]:
    rep = evaluate_verification(s, same, folds, model="x", fmrs=(1e-2, 1e-3))
    m = np.where(np.isnan(s), False, s >= thr)
    return {
        "pairs": int(s.size),
        "accuracy": round(rep.accuracy, 5),
        "accuracy_std": round(rep.accuracy_std, 5),
        "auc": round(rep.auc, 6),
        "tar_at_fmr_1e-3": round(rep.tar_at_fmr["1e-3"], 5),
        "tar_at_fmr_1e-2": round(rep.tar_at_fmr["1e-2"], 5),
        "at_calibrated_1e-3": {"threshold": round(thr, 6), "fnmr": round(float((~m[same]).mean()), 5),
                               "fmr": round(float(m[~same].mean()), 5)},
    }


def speed(norm: Any, emb: np.ndarray, reps: int = 2000) -> dict[str, float]:
    a, b = emb[:reps].astype(np.float32), emb[reps : 2 * reps].astype(np.float32)
    t0 = time.perf_counter()
    for k in range(reps):
        float(a[k] @ b[k])
    raw = (time.perf_counter() - t0) / reps
    t0 = time.perf_counter()
    for k in range(reps):
        norm.normalize(a[k], b[k], [float(a[k] @ b[k])])
    one = (time.perf_counter() - t0) / reps
    t0 = time.perf_counter()
    norm.normalize(a, b)
    batch = (time.perf_counter() - t0) / reps
    return {"raw_us": round(raw * 1e6, 2), "one_pair_us": round(one * 1e6, 1),
            "added_us_one_pair": round((one - raw) * 1e6, 1), "batch_of_2000_us_per_pair": round(batch * 1e6, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--write", action="store_true", help="write the chosen normalisers to src/faceprint/models")
    ap.add_argument("--n-boot", type=int, default=1000)
    args = ap.parse_args()
    set_num_threads(1)
    root = data_root(required=True)
    assert root is not None
    import distractor_embeddings
    import lfw_embeddings

    t0 = time.time()
    d_paths, d_src, _, d_emb = distractor_embeddings.load()
    utk = d_src == "utkface"
    u_names = np.array([Path(p).name for p in d_paths[utk]])
    u_emb = d_emb[utk].astype(np.float64)
    u_fit = np.array([is_fit_image(n) for n in u_names])
    cells, bands, _ = utkface_groups(u_names.tolist())
    cells_a, bands_a = np.array(cells, dtype=object), np.array(bands, dtype=object)
    l_paths, l_names, l_emb = lfw_embeddings.load()
    l_emb = l_emb.astype(np.float64)
    l_fit = np.array([is_tail_calibration_identity(n) for n in l_names])
    print(f"UTKFace: {utk.sum()} images with a face, fit half {u_fit.sum()}, measurement half {(~u_fit).sum()}")
    print(f"LFW: {len(l_names)} images; calibration-half people {len(set(l_names[l_fit].tolist()))} "
          f"({l_fit.sum()} images), measurement-half people {len(set(l_names[~l_fit].tolist()))}")

    fit_emb = np.concatenate([u_emb[u_fit], l_emb[l_fit]])
    fit_ids = np.concatenate([np.array(["utk:" + n for n in u_names[u_fit]]), l_names[l_fit]])

    # -- hyper-parameters on the fit half only --------------------------------------------------
    inner_b = np.array([hashlib.sha256(n.encode()).digest()[1] % 2 == 1 for n in u_names]) & u_fit
    inner_a = u_fit & ~inner_b
    sel_emb = np.concatenate([u_emb[inner_a], l_emb[l_fit]])
    sel_ids = np.concatenate([np.array(["utk:" + n for n in u_names[inner_a]]), l_names[l_fit]])
    print(f"\nhyper-parameters: fit on {inner_a.sum()} UTKFace fit images + LFW fit people, "
          f"scored on the other {inner_b.sum()} UTKFace fit images")
    selection: dict[str, list[dict[str, Any]]] = {}
    chosen: dict[str, dict[str, Any]] = {}
    raw_sel = disparity(Scorer(None, u_emb[inner_b]), list(cells_a[inner_b]), list(bands_a[inner_b]), 10)
    print(f"  raw: race x gender {raw_sel['race x gender']['ratio']}, adult {raw_sel['adult age band']['ratio']}")
    for method, cands in CANDIDATES.items():
        selection[method] = []
        for params in cands:
            norm = build(method, params, sel_emb, sel_ids)
            d = disparity(Scorer(norm, u_emb[inner_b]), list(cells_a[inner_b]), list(bands_a[inner_b]), 10)
            rg, ad = d["race x gender"]["ratio"], d["adult age band"]["ratio"]
            crit = max(rg or np.inf, ad or np.inf)
            selection[method].append({"params": params, "race x gender": rg, "adult age band": ad, "criterion": crit})
            print(f"  {norm.key:32s} race x gender {rg}, adult age band {ad}")
        best = min(selection[method], key=lambda r: r["criterion"])
        chosen[method] = best["params"]
        print(f"  -> {method}: {best['params']}")

    # -- fit the chosen normalisers on the whole fit data; thresholds on LFW fit people -------------
    ci_, cj_, c_lab = calibration_pairs(l_names[l_fit])
    lfw_fit_emb = l_emb[l_fit]
    raw_cal = calibrate_thresholds(Scorer(None, lfw_fit_emb).pairs(ci_, cj_), c_lab)
    raw_cal.pop("best_accuracy")
    print(f"\ncalibration pairs (LFW fit people): {int(c_lab.sum())} genuine, {int((~c_lab).sum())} impostor; "
          f"raw thresholds {raw_cal}")
    methods: dict[str, Any] = {"raw": None}
    for method, params in chosen.items():
        norm = build(method, params, fit_emb, fit_ids)
        thr = calibrate_thresholds(Scorer(norm, lfw_fit_emb).pairs(ci_, cj_), c_lab)
        thr.pop("best_accuracy")
        norm.set_thresholds(thr, source=(
            f"LFW calibration-half people ({len(set(l_names[l_fit].tolist()))} people, {l_fit.sum()} images): "
            f"{int(c_lab.sum())} genuine pairs, {int((~c_lab).sum())} sampled impostor pairs"))
        norm.about_["fit"] = (
            f"UTKFace fit half ({u_fit.sum()} images, is_fit_image) + LFW calibration-half people "
            f"({l_fit.sum()} images, is_tail_calibration_identity); YuNet central face + SFace (no flip)"
        )
        methods[norm.key] = norm

    # -- measure ------------------------------------------------------------------------------------
    shipped = get_embedder(MODEL).thresholds
    ia, ib, same, folds, measure = lfw_view2(root, l_paths, l_emb)
    results: dict[str, Any] = {}
    m_emb = u_emb[~u_fit]
    for key, norm in methods.items():
        print(f"\n== {key}")
        d = disparity(Scorer(norm, m_emb), list(cells_a[~u_fit]), list(bands_a[~u_fit]), args.n_boot)
        for title in ("race x gender", "age band", "adult age band"):
            r = d[title]
            print(f"  UTKFace {title:15s} worst/best {r['ratio']} ({r['worst']} / {r['best']}), "
                  f"95 % {r['ci']}, errors {r['errors']}: {r['claim']}")
        s = lfw_scores(Scorer(norm, l_emb), ia, ib)
        thr = raw_cal["1e-3"] if norm is None else norm.threshold("1e-3")
        lfw = {"view2": verification_summary(s, same, folds, thr),
               "view2_measurement_people": verification_summary(s[measure], same[measure], folds[measure], thr)}
        if norm is None:
            lfw["view2_at_shipped_devtrain_1e-3"] = verification_summary(s, same, folds, shipped["1e-3"])[
                "at_calibrated_1e-3"]
        for part in ("view2", "view2_measurement_people"):
            v = lfw[part]
            print(f"  LFW {part:26s} acc {100 * v['accuracy']:.2f}  TAR@1e-3 {100 * v['tar_at_fmr_1e-3']:.2f}  "
                  f"at calibrated 1e-3: FNMR {100 * v['at_calibrated_1e-3']['fnmr']:.2f} "
                  f"FMR {100 * v['at_calibrated_1e-3']['fmr']:.3f}  ({v['pairs']} pairs)")
        entry: dict[str, Any] = {"utkface_measurement_half": d, "lfw": lfw}
        if norm is not None:
            entry["speed"] = speed(norm, l_emb)
            entry["thresholds"] = norm.thresholds_
            entry["fingerprint"] = norm.fingerprint
            print(f"  speed: {entry['speed']}")
        else:
            entry["thresholds"] = raw_cal
        results[key] = entry

    # -- table --------------------------------------------------------------------------------------
    print(f"\n{'method':34s} {'race x gender':>14s} {'adult age':>10s} {'all ages':>9s} {'LFW acc':>8s} "
          f"{'TAR@1e-3':>9s} {'meas. acc':>9s} {'+us/cmp':>8s}")
    for key, e in results.items():
        u = e["utkface_measurement_half"]
        v, vm = e["lfw"]["view2"], e["lfw"]["view2_measurement_people"]
        sp = e.get("speed", {}).get("added_us_one_pair", 0.0)
        print(f"{key:34s} {u['race x gender']['ratio']!s:>14s} {u['adult age band']['ratio']!s:>10s} "
              f"{u['age band']['ratio']!s:>9s} {100 * v['accuracy']:8.2f} {100 * v['tar_at_fmr_1e-3']:9.2f} "
              f"{100 * vm['accuracy']:9.2f} {sp:8.1f}")

    out: dict[str, Any] = {
        "model": MODEL,
        "fmr_matched": FMR,
        "data": {
            "fit": "UTKFace fit half (faceprint.datasets.utkface.is_fit_image) + LFW calibration-half people "
                   "(faceprint.thresholds.is_tail_calibration_identity)",
            "measure": "UTKFace measurement half (every cross pair an impostor pair; threshold matched to FMR "
                       "1e-3 over all its cross pairs, per method); LFW view 2 pairs.txt (all; and pairs of two "
                       "measurement-half people)",
            "utkface_images": {"fit": int(u_fit.sum()), "measure": int((~u_fit).sum())},
            "lfw_images": {"fit": int(l_fit.sum()), "measure": int((~l_fit).sum())},
            "note": "UTKFace has no identities: the same person could appear in both halves",
        },
        "hyper_parameter_selection": {
            "how": "fit on UTKFace fit images with sha256(name)[1] even + LFW fit people, scored on the other "
                   "UTKFace fit images: max(worst/best race x gender, worst/best adult age band) at FMR 1e-3 "
                   "matched there; the measurement half is not used",
            "raw": {"race x gender": raw_sel["race x gender"]["ratio"],
                    "adult age band": raw_sel["adult age band"]["ratio"]},
            "candidates": selection,
            "chosen": chosen,
        },
        "thresholds_calibration": f"LFW calibration-half people: {int(c_lab.sum())} genuine pairs, "
                                  f"{int((~c_lab).sum())} sampled impostor pairs",
        "results": results,
        "threads": 1,
        "seconds": round(time.time() - t0, 1),
    }
    if args.write:
        for key, norm in methods.items():
            if norm is None:
                continue
            file = MODELS_DIR / f"scorenorm_{MODEL}_{norm.method.replace('-', '')}.npz"
            norm.save(file)
            sha = hashlib.sha256(file.read_bytes()).hexdigest()
            print(f"wrote {file} ({file.stat().st_size} bytes) sha256 {sha}")
            out.setdefault("written", {})[key] = {"file": file.name, "bytes": file.stat().st_size, "sha256": sha}
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(f"\n-> {RESULTS} ({out['seconds']} s)")


if __name__ == "__main__":
    main()
