"""Open-set identification by FPIR: impostor tails on one half of LFW, predicted vs measured FPIR on the other.

Development numbers: LFW (and UTKFace / ORL as distractors) is the data the project is developed
on; a user's population can score differently (see the README's threshold section).

1. **Impostor tail** (per model key, ``sface`` and ``sface+flip``): every cross-identity pair among
   the LFW images of the *calibration half* (``faceprint.thresholds.is_tail_calibration_identity``:
   ``sha256(name)[0]`` even), ~18 M pairs: empirical quantiles from FMR 1e-1 down to 10 exceedances,
   and a generalized-Pareto fit to the top 2,000 scores, trusted two decades further (extrapolated).
   ``--write-calibration`` stores it as ``models[key]["impostor_tail"]`` in
   ``src/faceprint/calibration.json`` (the other keys are kept as they are).
2. **Open set** on the *evaluation half* (the other people): a seeded third of them are strangers
   (up to 10 photos each: the non-mated searches); the rest are enrolled with one photo each (their
   other photos, up to 10: the mated searches). The gallery grows by nesting: enrolled people, then
   distractors (ORL 400, UTKFace ~5,000: ``bench/distractor_embeddings.py``), then calibration-half
   LFW photos (whose pairs with the evaluation probes were never in the tail sample). At each
   gallery size N and target FPIR the threshold is ``threshold_for_fpir(key, fpir, N)``; measured:
   FPIR (stranger searches whose best template reaches it, 95 % Clopper-Pearson interval), DIR
   (mated searches whose best template is the right person and reaches it), and the per-comparison
   FMR of those stranger-vs-gallery pairs, overall and by gallery source (does the LFW tail transfer
   to these distractors?). The
   same is reported at the 1:1 thresholds of ``calibration.json``.

    python bench/open_set.py                       # -> bench/results/open_set.json
    python bench/open_set.py --write-calibration   # also the impostor tails -> calibration.json

Runs in about a minute on 2 cores once the embedding caches exist (they take ~15 min to build).
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
from faceprint.embedding import load_calibration  # noqa: E402
from faceprint.errors import UnsupportedOperatingPointError  # noqa: E402
from faceprint.thresholds import ImpostorTail, fmr_for_fpir, is_tail_calibration_identity  # noqa: E402

CALIBRATION = ROOT / "src" / "faceprint" / "calibration.json"
SIZES = (100, 300, 1_000, 3_000, 10_000)
FPIRS = (0.1, 0.01, 1e-3)
ONE_TO_ONE = ("1e-2", "1e-3", "1e-4")
MAX_PHOTOS = 10  # probes per person, so that a few people with 100+ photos do not dominate


def impostor_scores(emb: np.ndarray, names: np.ndarray, block: int = 1024) -> np.ndarray:
    """Cosine similarity of every pair of images of different people (each pair once)."""
    codes = np.unique(names, return_inverse=True)[1]
    out = []
    for r0 in range(0, len(emb), block):
        s = emb[r0 : r0 + block] @ emb.T
        rows = np.arange(r0, min(r0 + block, len(emb)))[:, None]
        keep = (np.arange(len(emb))[None, :] > rows) & (codes[r0 : r0 + block, None] != codes[None, :])
        out.append(s[keep])
    return np.concatenate(out)


def clopper_pearson(k: int, n: int, conf: float = 0.95) -> tuple[float, float]:
    a = (1 - conf) / 2
    lo = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - a, k + 1, n - k))
    return lo, hi


def capped(indices: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return indices if len(indices) <= MAX_PHOTOS else np.sort(rng.choice(indices, MAX_PHOTOS, replace=False))


def open_set(key: str, tail: ImpostorTail, flip: bool, seed: int) -> dict[str, Any]:
    paths, names, emb = lfw_embeddings.load(flip=flip)
    _, d_sources, _, d_emb = distractor_embeddings.load(flip=flip)
    rng = np.random.default_rng(seed)
    cal = np.array([is_tail_calibration_identity(n) for n in names])
    people = np.unique(names[~cal])
    strangers = set(rng.choice(people, len(people) // 3, replace=False).tolist())
    enrolled = rng.permutation([p for p in people if p not in strangers])

    by_person: dict[str, np.ndarray] = {}
    for i, n in enumerate(names):
        by_person.setdefault(str(n), []).append(i)  # type: ignore[attr-defined]
    by_person = {p: np.array(v) for p, v in by_person.items()}

    gallery_idx, mated_idx, mated_col = [], [], []
    for col, p in enumerate(enrolled):
        photos = rng.permutation(by_person[p])
        gallery_idx.append(photos[0])
        rest = capped(photos[1:], rng)
        mated_idx.extend(rest.tolist())
        mated_col.extend([col] * len(rest))
    nonmated_idx = np.concatenate([capped(by_person[p], rng) for p in sorted(strangers)])
    n_enrolled = len(gallery_idx)

    cal_idx = rng.permutation(np.flatnonzero(cal))
    perm = rng.permutation(len(d_emb))
    distractors = np.concatenate([d_emb[perm], emb[cal_idx]])
    sources = np.concatenate([d_sources[perm], np.full(len(cal_idx), "lfw-calibration-half")])
    # order of the distractor block: ORL + UTKFace (shuffled together), then calibration-half LFW
    gallery = np.concatenate([emb[np.array(gallery_idx)], distractors])
    kinds = np.concatenate([np.full(n_enrolled, "lfw-enrolled"), sources])
    n_max = len(gallery)

    s_nm = emb[nonmated_idx] @ gallery.T  # (non-mated probes, gallery)
    s_m = emb[np.array(mated_idx)] @ gallery.T
    mated_col_a = np.array(mated_col)
    calib = load_calibration()["models"][key]["thresholds"]

    def measure(threshold: float, n: int) -> dict[str, Any]:
        best_nm = s_nm[:, :n].max(axis=1)
        k = int((best_nm >= threshold).sum())
        lo, hi = clopper_pearson(k, len(best_nm))
        in_gallery = mated_col_a < n
        sm = s_m[in_gallery, :n]
        top = sm.argmax(axis=1)
        hit = (top == mated_col_a[in_gallery]) & (sm[np.arange(len(sm)), top] >= threshold)
        above = s_nm[:, :n] >= threshold
        pair_fmr = float(above.mean())
        by_source = {str(k): float(above[:, kinds[:n] == k].mean()) for k in np.unique(kinds[:n])}
        return {
            "threshold": round(float(threshold), 6),
            "fpir_measured": k / len(best_nm),
            "fpir_ci95": [round(lo, 6), round(hi, 6)],
            "strangers_named": k,
            "dir": float(hit.mean()) if len(hit) else None,
            "mated_searches": int(in_gallery.sum()),
            "pair_fmr_measured": pair_fmr,
            "pair_fmr_by_gallery_source": by_source,
            "fpir_from_measured_pair_fmr": float(1 - (1 - pair_fmr) ** n),
        }

    rows = []
    for n in [*[s for s in SIZES if s <= n_max], n_max]:
        composition = {str(k): int(v) for k, v in zip(*np.unique(kinds[:n], return_counts=True))}
        row: dict[str, Any] = {"gallery_size": n, "composition": composition, "by_fpir": {}, "by_1to1_fmr": {}}
        for fpir in FPIRS:
            fmr = fmr_for_fpir(fpir, n)
            try:
                thr = tail.threshold(fmr)
            except UnsupportedOperatingPointError as err:
                row["by_fpir"][f"{fpir:g}"] = {"refused": str(err), "fmr_per_comparison": fmr}
                continue
            m = measure(thr, n)
            row["by_fpir"][f"{fpir:g}"] = {
                "fpir_predicted": fpir,
                "fmr_per_comparison": float(f"{fmr:.4g}"),
                "extrapolated": tail.is_extrapolated(fmr),
                **m,
            }
        for point in ONE_TO_ONE:
            thr = float(calib[point])
            m = measure(thr, n)
            fmr_tail = _tail_fmr(tail, thr)
            m["fpir_predicted_from_tail"] = None if fmr_tail is None else float(1 - (1 - fmr_tail) ** n)
            row["by_1to1_fmr"][point] = m
        rows.append(row)
        f01 = row["by_fpir"].get("0.01", {})
        print(
            f"  {key:10s} N={n:6d}  fpir 1e-2: thr {f01.get('threshold', float('nan')):.3f} measured "
            f"{100 * f01.get('fpir_measured', float('nan')):5.2f} %  "
            f"DIR {100 * (f01.get('dir') or float('nan')):5.1f} %"
            f"  | 1:1 '1e-3': strangers named {100 * row['by_1to1_fmr']['1e-3']['fpir_measured']:5.1f} %",
            flush=True,
        )
    return {
        "model": key,
        "seed": seed,
        "evaluation_half_people": int(len(people)),
        "enrolled_people": n_enrolled,
        "stranger_people": len(strangers),
        "nonmated_searches": int(len(nonmated_idx)),
        "mated_searches_total": int(len(mated_idx)),
        "distractors": {str(k): int(v) for k, v in zip(*np.unique(sources, return_counts=True))},
        "sizes": rows,
    }


def _tail_fmr(tail: ImpostorTail, threshold: float) -> float | None:
    """The tail's per-comparison FMR at ``threshold`` (inverse of ``tail.threshold``), None outside its range."""
    lo, hi = np.log10(tail.fmr_min), np.log10(tail.fmr_max)
    try:
        if threshold < tail.threshold(tail.fmr_max) or threshold > tail.threshold(tail.fmr_min):
            return None
    except UnsupportedOperatingPointError:
        return None
    for _ in range(60):  # bisection in log10(FMR): thresholds fall as FMR rises
        mid = (lo + hi) / 2
        if tail.threshold(10**mid) > threshold:
            lo = mid
        else:
            hi = mid
    return float(10 ** ((lo + hi) / 2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write-calibration", action="store_true", help="store the impostor tails in calibration.json")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "open_set.json")
    args = ap.parse_args()
    t0 = time.perf_counter()
    tails: dict[str, ImpostorTail] = {}
    tail_info: dict[str, Any] = {}
    for key, flip in (("sface", False), ("sface+flip", True)):
        _, names, emb = lfw_embeddings.load(flip=flip)
        cal = np.array([is_tail_calibration_identity(n) for n in names])
        scores = impostor_scores(emb[cal], names[cal])
        source = (
            f"LFW deep-funneled, YuNet central face; calibration half (sha256(name)[0] even): "
            f"{len(set(names[cal].tolist()))} people, {int(cal.sum())} images, every cross-identity pair"
        )
        tails[key] = ImpostorTail.from_scores(key, scores, source=source)
        t = tails[key]
        tail_info[key] = t.to_dict()
        ext = t.extrapolation
        print(
            f"{key}: {t.n_pairs:,} impostor pairs; FMR 1e-2 -> {t.threshold(1e-2):.4f}, "
            f"1e-4 -> {t.threshold(1e-4):.4f}, "
            f"measured to {t.fmr_min_measured:.2g} ({t.threshold(t.fmr_min_measured):.4f}); "
            f"GPD shape {ext.shape if ext else float('nan'):.3f}, extrapolated to {t.fmr_min:.2g}",
            flush=True,
        )
    if args.write_calibration:
        cal_json = json.loads(CALIBRATION.read_text())
        for key, t in tails.items():
            cal_json["models"][key]["impostor_tail"] = t.to_dict()
        cal_json["impostor_tail_about"] = (
            "models[key].impostor_tail: upper-tail quantiles of impostor cosine similarity (score at FMR 1e-1 "
            "down to 10 exceedances, four steps a decade), from every cross-identity pair of the LFW calibration "
            "half, and a generalized-Pareto fit to the top scores (extrapolation: not measured, trusted two "
            "decades below the last measured point). Written by bench/open_set.py --write-calibration; used by "
            "faceprint.thresholds.threshold_for_fpir (identify --fpir)."
        )
        CALIBRATION.write_text(json.dumps(cal_json, indent=2) + "\n")
        print(f"wrote impostor tails to {CALIBRATION}")

    results = [open_set(key, tails[key], flip, args.seed) for key, flip in (("sface", False), ("sface+flip", True))]
    out = {
        "about": "Open-set identification by FPIR: thresholds from threshold_for_fpir(model, fpir, N) and what they "
        "give on held-out LFW people. DEVELOPMENT NUMBERS: LFW is the data the project is developed on "
        "(the tail is estimated on the other half of LFW's people); UTKFace / ORL distractors and a user's own "
        "population can score differently.",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "faceprint": __version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "protocol": __doc__.split("2. **Open set**")[1].split("    python")[0].strip(),
        "impostor_tails": tail_info,
        "results": results,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out} in {out['seconds']} s")


if __name__ == "__main__":
    main()
