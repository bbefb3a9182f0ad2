"""Open-set identification by FPIR: impostor tails on one half of LFW, predicted vs measured FPIR on the other.

Development numbers: LFW (and UTKFace / ORL as distractors) is the data the project is developed
on; a user's population can score differently (see the README's threshold section).

1. **Impostor tail** (per model key, ``sface`` and ``sface+flip``), two of them side by side:
   ``lfw``: every cross-identity pair among the LFW images of the *calibration half*
   (``faceprint.thresholds.is_tail_calibration_identity``: ``sha256(name)[0]`` even), ~21 M pairs;
   ``lfw+utkface``: those pairs plus each of those images against the UTKFace *fit half*
   (``faceprint.datasets.utkface.is_fit_image``), ~37 M; UTKFace-UTKFace pairs are left out (UTKFace
   has no identities: its near-duplicates of one person would pass for impostors at the very top).
   Each: empirical quantiles from FMR 1e-1 down to 10 exceedances, and a generalized-Pareto fit to the
   top 2,000 scores, trusted two decades further (extrapolated). ``--write-calibration`` stores the
   ``--tail`` one (default ``lfw``, the shipped one) as ``models[key]["impostor_tail"]`` in
   ``src/faceprint/calibration.json`` (the other keys are kept as they are).
2. **Open set** on the *evaluation half* (the other people): a seeded third of them are strangers
   (up to 10 photos each: the non-mated searches); the rest are enrolled with one photo each (their
   other photos, up to 10: the mated searches). The gallery grows by nesting: enrolled people, then
   distractors (ORL 400 and the UTKFace *measurement half*, ~2,500, never in either tail:
   ``bench/distractor_embeddings.py``), then calibration-half LFW photos (whose pairs with the
   evaluation probes were never in a tail sample). At each gallery size N and target FPIR the
   threshold is ``threshold_for_fpir(key, fpir, N)``; measured:
   FPIR (stranger searches whose best template reaches it, 95 % Clopper-Pearson interval), DIR
   (mated searches whose best template is the right person and reaches it), and the per-comparison
   FMR of those stranger-vs-gallery pairs, overall and by gallery source (does a tail transfer
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
from faceprint.datasets.utkface import is_fit_image  # noqa: E402
from faceprint.embedding import load_calibration  # noqa: E402
from faceprint.errors import UnsupportedOperatingPointError  # noqa: E402
from faceprint.thresholds import ImpostorTail, fmr_for_fpir, is_tail_calibration_identity  # noqa: E402

CALIBRATION = ROOT / "src" / "faceprint" / "calibration.json"
SIZES = (100, 300, 1_000, 3_000, 10_000)
FPIRS = (0.1, 0.01, 1e-3)
ONE_TO_ONE = ("1e-2", "1e-3", "1e-4")
TAILS = ("lfw", "lfw+utkface")
MAX_PHOTOS = 10

# Named strangers at FPIR 1e-2 and 1e-3 (both models, both tails, every N), each looked at by eye
# (2026-12-02): the same person is in the gallery under another label. UTKFace was scraped from the
# web and holds LFW celebrities; LFW files a few people under two names. These searches are not false
# matches, so the FPIR is also given without them (``fpir_excluding_same_person``).
SAME_PERSON = {
    "Charlotte_Rampling -> utkface:utkface/UTKFace/74_1_0_20170110153238490.jpg.chip.jpg",
    "Diana_Taurasi -> lfw-calibration-half:Shavon_Earp",  # LFW label error: the photo shows Taurasi
    "Kareena_Kapoor -> utkface:utkface/UTKFace/25_1_3_20170119172137400.jpg.chip.jpg",
    "Kevin_Spacey -> utkface:utkface/UTKFace/54_0_0_20170111171747448.jpg.chip.jpg",
    "Kimora_Lee -> utkface:utkface/UTKFace/32_1_2_20170109141342355.jpg.chip.jpg",
    "Liam_Neeson -> utkface:utkface/UTKFace/63_0_0_20170111201901467.jpg.chip.jpg",
    "Sepp_Blatter -> lfw-calibration-half:Joseph_Blatter",  # one person, two LFW names
    "Sharon_Stone -> utkface:utkface/UTKFace/34_1_0_20170120140756170.jpg.chip.jpg",
    "Sharon_Stone -> utkface:utkface/UTKFace/54_1_0_20170104235238436.jpg.chip.jpg",
    "Sidney_Poitier -> utkface:utkface/UTKFace/68_0_1_20170111195820243.jpg.chip.jpg",
}
# ... and looked at, different people: true false matches.
DIFFERENT_PEOPLE = {
    "Abdullah_Gul -> lfw-calibration-half:Recep_Tayyip_Erdogan",
    "Estelle_Morris -> lfw-enrolled:Juan_Carlos_Ferrero",
    "Jeff_Bridges -> lfw-enrolled:Kurt_Russell",
    "Julio_Rossi -> lfw-enrolled:Brian_Gregory",
    "Kim_Clijsters -> lfw-enrolled:Cathryn_Crawford",
    "Laura_Bush -> lfw-enrolled:Princess_Caroline",
    "Melanie_Griffith -> lfw-enrolled:Jeanne_Moreau",
    "Naomi_Watts -> lfw-enrolled:Danielle_Spencer",
    "Rachel_Roy -> lfw-enrolled:Laura_Romero",
}  # probes per person, so that a few people with 100+ photos do not dominate


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


def open_set(key: str, tails: dict[str, ImpostorTail], flip: bool, seed: int) -> dict[str, Any]:
    paths, names, emb = lfw_embeddings.load(flip=flip)
    d_paths, d_sources, _, d_emb = distractor_embeddings.load(flip=flip)
    keep = np.array([s != "utkface" or not is_fit_image(p) for p, s in zip(d_paths, d_sources)])
    d_paths, d_sources, d_emb = (
        d_paths[keep],
        d_sources[keep],
        d_emb[keep],
    )  # the UTKFace fit half is in the lfw+utkface tail
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
    g_names = np.concatenate([names[np.array(gallery_idx)], np.asarray(d_paths)[perm], names[cal_idx]])
    n_max = len(gallery)

    s_nm = emb[nonmated_idx] @ gallery.T  # (non-mated probes, gallery)
    s_m = emb[np.array(mated_idx)] @ gallery.T
    mated_col_a = np.array(mated_col)
    calib = load_calibration()["models"][key]["thresholds"]

    def measure(threshold: float, n: int) -> dict[str, Any]:
        best_nm = s_nm[:, :n].max(axis=1)
        named = best_nm >= threshold
        k = int(named.sum())
        lo, hi = clopper_pearson(k, len(best_nm))
        # who was named as whom: a few strangers with many photos (or LFW's own label errors, one person
        # under two names) make the searches far from independent
        hits = [
            (str(names[nonmated_idx[i]]), str(kinds[j]), str(g_names[j]))
            for i in np.flatnonzero(named)
            for j in [int(s_nm[i, :n].argmax())]
        ]
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
            "stranger_people_named": len({h[0] for h in hits}),
            "fpir_excluding_same_person": sum(f"{a} -> {b}:{c}" not in SAME_PERSON for a, b, c in hits) / len(best_nm),
            "named_not_reviewed": sum(f"{a} -> {b}:{c}" not in SAME_PERSON | DIFFERENT_PEOPLE for a, b, c in hits),
            "named_as": sorted({f"{a} -> {b}:{c}" for a, b, c in hits})[:40],  # the first 40
            "dir": float(hit.mean()) if len(hit) else None,
            "mated_searches": int(in_gallery.sum()),
            "pair_fmr_measured": pair_fmr,
            "pair_fmr_by_gallery_source": by_source,
            "fpir_from_measured_pair_fmr": float(1 - (1 - pair_fmr) ** n),
        }

    rows = []
    for n in [*[s for s in SIZES if s <= n_max], n_max]:
        composition = {str(k): int(v) for k, v in zip(*np.unique(kinds[:n], return_counts=True))}
        row: dict[str, Any] = {"gallery_size": n, "composition": composition, "by_tail": {}, "by_1to1_fmr": {}}
        for name, tail in tails.items():
            by_fpir: dict[str, Any] = {}
            for fpir in FPIRS:
                fmr = fmr_for_fpir(fpir, n)
                try:
                    thr = tail.threshold(fmr)
                except UnsupportedOperatingPointError as err:
                    by_fpir[f"{fpir:g}"] = {"refused": str(err), "fmr_per_comparison": fmr}
                    continue
                by_fpir[f"{fpir:g}"] = {
                    "fpir_predicted": fpir,
                    "fmr_per_comparison": float(f"{fmr:.4g}"),
                    "extrapolated": tail.is_extrapolated(fmr),
                    **measure(thr, n),
                }
            row["by_tail"][name] = {"by_fpir": by_fpir}
        for point in ONE_TO_ONE:
            thr = float(calib[point])
            m = measure(thr, n)
            for name, tail in tails.items():
                fmr_tail = _tail_fmr(tail, thr)
                m[f"fpir_predicted_from_{name}_tail"] = None if fmr_tail is None else float(1 - (1 - fmr_tail) ** n)
            row["by_1to1_fmr"][point] = m
        rows.append(row)
        line = f"  {key:10s} N={n:6d}"
        for name in tails:
            f01 = row["by_tail"][name]["by_fpir"].get("0.01", {})
            line += (
                f" | {name} tail, fpir 1e-2: thr {f01.get('threshold', float('nan')):.3f} measured "
                f"{100 * f01.get('fpir_measured', float('nan')):5.2f} % "
                f"DIR {100 * (f01.get('dir') or float('nan')):5.1f} %"
            )
        print(
            line + f" | 1:1 '1e-3': strangers named {100 * row['by_1to1_fmr']['1e-3']['fpir_measured']:5.1f} %",
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
    ap.add_argument("--tail", choices=TAILS, default="lfw", help="which tail --write-calibration stores")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "open_set.json")
    args = ap.parse_args()
    t0 = time.perf_counter()
    tails: dict[str, dict[str, ImpostorTail]] = {}
    tail_info: dict[str, Any] = {}
    for key, flip in (("sface", False), ("sface+flip", True)):
        _, names, emb = lfw_embeddings.load(flip=flip)
        cal = np.array([is_tail_calibration_identity(n) for n in names])
        d_paths, d_sources, _, d_emb = distractor_embeddings.load(flip=flip)
        fit = np.array([s == "utkface" and is_fit_image(p) for p, s in zip(d_paths, d_sources)])
        lfw_source = (
            f"LFW deep-funneled, YuNet central face; calibration half (sha256(name)[0] even): "
            f"{len(set(names[cal].tolist()))} people, {int(cal.sum())} images"
        )
        mixed_emb = np.concatenate([emb[cal], d_emb[fit]])
        # one label for all UTKFace images: their pairs with each other are left out (UTKFace has no
        # identities, and its near-duplicates of one person would pass for impostors at the very top)
        mixed_names = np.concatenate([names[cal], np.full(int(fit.sum()), "utkface")])
        sources = {
            "lfw": (emb[cal], names[cal], lfw_source + ", every cross-identity pair"),
            "lfw+utkface": (
                mixed_emb,
                mixed_names,
                lfw_source + f", every cross-identity pair; plus each of them against the UTKFace fit half "
                f"(sha256(file name)[0] even, {int(fit.sum())} images; UTKFace-UTKFace pairs left out: no identities)",
            ),
        }
        tails[key] = {}
        for name, (e, n, source) in sources.items():
            t = ImpostorTail.from_scores(key, impostor_scores(e, n), source=source)
            tails[key][name] = t
            tail_info.setdefault(name, {})[key] = t.to_dict()
            ext = t.extrapolation
            print(
                f"{key} {name} tail: {t.n_pairs:,} impostor pairs; FMR 1e-2 -> {t.threshold(1e-2):.4f}, "
                f"1e-4 -> {t.threshold(1e-4):.4f}, "
                f"measured to {t.fmr_min_measured:.2g} ({t.threshold(t.fmr_min_measured):.4f}); "
                f"GPD shape {ext.shape if ext else float('nan'):.3f}, extrapolated to {t.fmr_min:.2g}",
                flush=True,
            )
    if args.write_calibration:
        cal_json = json.loads(CALIBRATION.read_text())
        for key, by_name in tails.items():
            cal_json["models"][key]["impostor_tail"] = by_name[args.tail].to_dict()
        what = (
            "every cross-identity pair of the LFW calibration half"
            if args.tail == "lfw"
            else "every cross-identity pair of the LFW calibration half and every pair of those images with the "
            "UTKFace fit half"
        )
        cal_json["impostor_tail_about"] = (
            "models[key].impostor_tail: upper-tail quantiles of impostor cosine similarity (score at FMR 1e-1 "
            f"down to 10 exceedances, four steps a decade), from {what}, "
            "and a generalized-Pareto fit to the top scores (extrapolation: not measured, trusted two "
            "decades below the last measured point). Written by bench/open_set.py --write-calibration; used by "
            "faceprint.thresholds.threshold_for_fpir (identify --fpir)."
        )
        CALIBRATION.write_text(json.dumps(cal_json, indent=2) + "\n")
        print(f"wrote the {args.tail} impostor tails to {CALIBRATION}")

    results = [open_set(key, tails[key], flip, args.seed) for key, flip in (("sface", False), ("sface+flip", True))]
    out = {
        "about": "Open-set identification by FPIR: thresholds from threshold_for_fpir(model, fpir, N) and what they "
        "give on held-out LFW people. DEVELOPMENT NUMBERS: LFW is the data the project is developed on "
        "(the tails are estimated on the other half of LFW's people, and for lfw+utkface also on the other half of "
        "the UTKFace images); a user's own population can score differently: calibrate on it (faceprint calibrate).",
        "shipped_tail_source": json.loads(CALIBRATION.read_text())["models"]["sface"]["impostor_tail"]["source"],
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
