"""Demographic bias of the verification pipeline: FMR / FNMR per group at the global threshold.

    python bench/bias.py [--models sface facenet] [--n-boot 1000] [--fmr 1e-3]   # -> bench/results/bias.json
    python bench/bias.py --utkface-only            # -> bench/results/bias_utkface.json (no LFW cache needed)

* LFW: the 6,000 view-2 pairs (``pairs.txt``) by gender (``male_names.txt`` / ``female_names.txt``),
  scored with the embeddings ``bench/lfw.py`` cached (every model in --models).
* UTKFace: every image embedded with YuNet + the model (cached in ``bench/cache/utkface_<model>.npz``);
  detection failure rate per race x gender cell, and impostor FMR per race x gender cell and per age
  band. UTKFace has no identity labels: every cross pair inside a group is treated as an impostor
  pair (a very small number of same-person pairs may exist, which can only inflate the FMR).

The threshold is the model's calibrated threshold at --fmr (default 1e-3; LFW DevTrain), the global
operating point; UTKFace is also measured at the threshold matched to that FMR on all its cross
pairs (``utkface_matched``: disparities at one matched global FMR). CIs are percentile bootstrap over
pairs (optimistic: pairs sharing images are not independent); a ratio above 2 is called a disparity
only where the counts support it (:func:`faceprint.evaluation.bias.ratio_claim`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from faceprint.datasets import data_root  # noqa: E402
from faceprint.runtime import set_num_threads  # noqa: E402

CACHE_DIR = ROOT / "bench" / "cache"
RESULTS = ROOT / "bench" / "results" / "bias.json"
RESULTS_UTKFACE = ROOT / "bench" / "results" / "bias_utkface.json"


def utkface_embeddings(model: str, images: Path) -> tuple[list[str], np.ndarray, list[str]]:
    """(file names, embeddings with NaN rows for failures, error strings '' for success); cached."""
    cache = CACHE_DIR / f"utkface_{model}.npz"
    if not cache.exists():
        from faceprint.pipeline import FacePipeline

        paths = sorted(images.glob("*.jpg"))
        pipe = FacePipeline(detector="yunet", embedder=model)
        t0 = time.time()
        done = [0]

        def tick(n: int) -> None:
            done[0] += n
            if done[0] % 500 == 0:
                print(f"  {model}: {done[0]}/{len(paths)} images, {done[0] / (time.time() - t0):.1f} img/s", flush=True)

        emb, errors = pipe.embed_many(paths, select="central", progress=tick)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            cache,
            names=np.array([p.name for p in paths]),
            embeddings=emb,
            errors=np.array([e or "" for e in errors]),
        )
    z = np.load(cache, allow_pickle=False)
    return [str(n) for n in z["names"]], z["embeddings"], [str(e) for e in z["errors"]]


def _fmt(x: float) -> str:
    return "     -" if np.isnan(x) else f"{x:.4f}"


def _row(label: str, n: int, k: int, rate: float, lo: float, hi: float) -> str:
    return f"  {label:<16} {n:>9} {k:>7}  {_fmt(rate)} [{_fmt(lo)}, {_fmt(hi)}]"


def _ratio_line(rates: list, metric: str, exclude: tuple[str, ...] = ()) -> dict:
    from faceprint.evaluation.bias import disparity_claim, worst_best_ratio

    try:
        ratio, worst, best = worst_best_ratio(rates, metric, exclude=exclude)  # type: ignore[arg-type]
    except ValueError:
        return {}
    floored = getattr(best, metric) == 0.0
    name = metric.upper() if metric != "rate" else "detection failure rate"
    if np.isnan(ratio) and getattr(worst, metric) == 0.0:
        print(f"  worst/best {name}: undefined (no error in any group)")
    elif np.isnan(ratio):
        n = getattr(best, {"fmr": "n_impostor", "fnmr": "n_genuine", "rate": "n"}[metric])
        unit = {"fmr": "impostor pairs", "fnmr": "genuine pairs", "rate": "images"}[metric]
        print(f"  worst/best {name}: not resolvable ({best.group} had no error in {n} {unit}; 1/{n} = "
              f"{1 / n:.4f} exceeds the worst rate {getattr(worst, metric):.4f} of {worst.group})")
    else:
        note = f" (no error in {best.group}: its rate floored at 1/n, a lower bound)" if floored else ""
        print(f"  worst/best {name}: {ratio:.2f}  ({worst.group} / {best.group}){note}")
    claim = disparity_claim(rates, metric, exclude=exclude)  # type: ignore[arg-type]
    out = {"ratio": None if np.isnan(ratio) else round(ratio, 4), "worst": worst.group, "best": best.group,
           "floored": floored}
    if claim is not None and out["ratio"] is not None:
        out.update(ci=[round(claim.ci_low, 4), None if np.isinf(claim.ci_high) else round(claim.ci_high, 4)],
                   errors=[claim.worst_errors, claim.best_errors], claim=claim.claim)
        print(f"    95 % exact interval {claim.ci_low:.2f}-{claim.ci_high:.2f}, {claim.worst_errors} and "
              f"{claim.best_errors} errors: {claim.claim}")
    return out


def lfw_by_gender(root: Path, model: str, threshold: float, n_boot: int, fmr: str = "1e-3") -> dict:
    """Per-gender FMR / FNMR on pairs.txt from the embeddings bench/lfw.py cached (one row per image)."""
    from faceprint.datasets import lfw_gender, lfw_pairs, pair_gender_groups, read_gender_lists
    from faceprint.evaluation import cosine_scores
    from faceprint.evaluation.bias import bias_sentences, group_error_rates

    cache = Path(__file__).resolve().parent / "cache" / "lfw_embeddings.npz"
    if not cache.exists():
        raise SystemExit(f"{cache} missing: run python bench/lfw.py first")
    z = np.load(cache, allow_pickle=False)
    emb = z[model]
    index = {k: i for i, k in enumerate(z["keys"].tolist())}
    pairs = lfw_pairs(root, "pairs.txt")
    nan = np.full(emb.shape[1], np.nan, np.float32)

    def vec(p: Path) -> np.ndarray:
        i = index.get(str(p))
        return nan if i is None else emb[i]

    a = np.stack([vec(p.path_a) for p in pairs])
    b = np.stack([vec(p.path_b) for p in pairs])
    scores = cosine_scores(a, b)
    labels = np.array([p.same for p in pairs])
    gender = lfw_gender(root)
    lists = read_gender_lists(root / "lfw" / "male_names.txt", root / "lfw" / "female_names.txt")
    groups = pair_gender_groups([p.path_a for p in pairs], [p.path_b for p in pairs], gender)
    rates = group_error_rates(scores, labels, groups, threshold, n_boot=n_boot)
    print(f"\nLFW pairs.txt (6,000 pairs) by gender, {model}, threshold {threshold:.4f} (calibrated FMR {fmr});")
    print(f"  {int(np.isnan(scores).sum())} pairs with a failure to acquire (count as non-matches); "
          f"{len(lists.in_both)} images in both gender lists excluded")
    head = f"  {'group':<16} {'genuine':>9} {'FNM':>7}  FNMR   [95% CI]        "
    print(head + f"  {'impostor':>9} {'FM':>7}  FMR    [95% CI]")
    for r in rates:
        print(_row(r.group, r.n_genuine, r.false_non_matches, r.fnmr, *r.fnmr_ci)
              + _row("", r.n_impostor, r.false_matches, r.fmr, *r.fmr_ci)[18:])
    excl = ("mixed", "unknown")
    sentences = bias_sentences(rates, exclude=excl)
    out = {
        "model": model,
        "threshold": threshold,
        "pairs": len(pairs),
        "fta_pairs": int(np.isnan(scores).sum()),
        "images_in_both_lists": len(lists.in_both),
        "groups": [r.to_dict() for r in rates],
        "ratio_fnmr": _ratio_line(rates, "fnmr", excl),
        "ratio_fmr": _ratio_line(rates, "fmr", excl),
        "sentences": sentences,
        "note": "ratios over male vs female pairs; 'mixed' (impostor pairs of a man and a woman) is listed, not ranked",
    }
    for s in sentences:
        print("  " + s)
    return out


def utkface(model: str, root: Path, threshold: float | None, n_boot: int, fmr: float = 1e-3) -> dict:
    """UTKFace per group at ``threshold`` (None: the threshold matched to ``fmr`` on all cross pairs)."""
    from faceprint.datasets import utkface_groups
    from faceprint.evaluation import fmr_key
    from faceprint.evaluation.bias import (
        bias_sentences,
        cross_pair_threshold,
        group_proportions,
        utkface_impostor_fmr,
    )

    names, emb, errors = utkface_embeddings(model, root / "utkface" / "UTKFace")
    failed = np.array([bool(e) for e in errors])
    cells, bands, malformed = utkface_groups(names)
    source = f"calibrated FMR {fmr_key(fmr)} on LFW"
    if threshold is None:
        threshold, n_pairs = cross_pair_threshold(emb, fmr)
        source = f"FMR {fmr_key(fmr)} matched on all {n_pairs:,} UTKFace cross pairs"
    print(f"\nUTKFace ({len(names)} images, {malformed} malformed names), YuNet + {model}, "
          f"threshold {threshold:.4f} ({source})")
    print("  every cross pair inside a group is treated as an impostor pair (no identity labels; "
          "a very small number of same-person pairs may exist)")
    out: dict = {"model": model, "threshold": threshold, "threshold_source": source, "images": len(names),
                 "malformed_names": malformed}
    # Baseline: every cross pair of all images (demographics not matched), same threshold, counted exactly.
    (base,) = utkface_impostor_fmr(emb, ["all"] * len(names), threshold, max_pairs_per_group=None, n_boot=n_boot)
    print(f"  baseline, all {base.n_impostor:,} cross pairs over all groups: FMR {base.fmr:.4f} "
          f"[{base.fmr_ci[0]:.4f}, {base.fmr_ci[1]:.4f}] (target {fmr_key(fmr)})")
    out["baseline_all_groups"] = base.to_dict()
    for title, groups in (("race x gender", cells), ("age band", bands)):
        keep = [g is not None for g in groups]
        g_ok = [g for g in groups if g is not None]
        det = group_proportions(failed[keep], g_ok, n_boot=n_boot)
        print(f"\n  detection failures by {title}:")
        print(f"  {'group':<16} {'images':>9} {'failed':>7}  rate   [95% CI]")
        for p in det:
            print(_row(p.group, p.n, p.count, p.rate, *p.rate_ci))
        det_ratio = _ratio_line(det, "rate")
        det_sent = bias_sentences(det, ("rate",), what="detection failure rate", events="detection failures")
        rates = utkface_impostor_fmr(emb, groups, threshold, n_boot=n_boot)
        print(f"  impostor FMR by {title}:")
        print(f"  {'group':<16} {'impostor':>9} {'FM':>7}  FMR    [95% CI]")
        for r in rates:
            print(_row(r.group, r.n_impostor, r.false_matches, r.fmr, *r.fmr_ci))
        fmr_ratio = _ratio_line(rates, "fmr")
        sentences = det_sent + bias_sentences(rates, ("fmr",))
        for s in sentences:
            print("  " + s)
        out[title] = {
            "detection": [p.to_dict() for p in det],
            "ratio_detection_failure": det_ratio,
            "impostor_fmr": [r.to_dict() for r in rates],
            "ratio_fmr": fmr_ratio,
            "sentences": sentences,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["sface", "facenet"], help="models (sface, facenet)")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--embed-only", action="store_true", help="only build the UTKFace embedding caches")
    parser.add_argument("--fmr", default="1e-3", help="operating point (a calibrated FMR key: 1e-2, 1e-3, 1e-4)")
    parser.add_argument("--utkface-only", action="store_true",
                        help=f"UTKFace only (no LFW embedding cache needed), written to {RESULTS_UTKFACE.name}")
    args = parser.parse_args()
    set_num_threads(1)
    root = data_root(required=True)
    assert root is not None
    from faceprint.embedding import get_embedder

    if args.embed_only:
        for m in args.models:
            n, _, err = utkface_embeddings(m, root / "utkface" / "UTKFace")
            print(m, len(n), sum(1 for x in err if x), "failures")
        return
    t0 = time.time()
    fmr = args.fmr
    result: dict[str, Any] = {
        "fmr_operating_point": fmr,
        "bootstrap": f"{args.n_boot} percentile resamples of pairs within each group; pairs sharing images are "
        "not independent, so intervals are optimistic",
    }
    if not args.utkface_only:
        result["lfw_gender"] = {
            m: lfw_by_gender(root, m, get_embedder(m).thresholds[fmr], args.n_boot, fmr) for m in args.models
        }
    result["utkface"] = {m: utkface(m, root, get_embedder(m).thresholds[fmr], args.n_boot, float(fmr))
                         for m in args.models}
    result["utkface_matched"] = {m: utkface(m, root, None, args.n_boot, float(fmr)) for m in args.models}
    result["seconds"] = round(time.time() - t0, 1)
    path = RESULTS_UTKFACE if args.utkface_only else RESULTS
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n-> {path}")


if __name__ == "__main__":
    main()
