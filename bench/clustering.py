"""Clustering benchmark: pairwise precision / recall / F1 on LFW identities with >= 2 images.

Uses the cached LFW embeddings of ``bench/lfw_embeddings.py`` (YuNet central face + SFace, no
flip: the default pipeline), keeps identities with at least two embedded images, and compares

* agglomerative clustering (average, complete, single linkage) cut at a cosine distance,
* DBSCAN (min_samples 2 and 3) with that distance as ``eps`` (min_samples 2 is single linkage
  with singletons as noise: the same pairs),
* HDBSCAN (min_cluster_size 2, min_samples 1 and 2) with that distance as ``cluster_selection_epsilon``,

over a small threshold grid that includes ``1 - t`` for each of SFace's calibrated similarity
thresholds ``t``. To avoid tuning on the test set, identities are split in two halves (seeded):
each method's threshold and the overall winner are chosen by F1 on the *tune* half; F1 is
reported on the *test* half, then on the full set at the chosen settings.

    python bench/clustering.py     # table on stdout -> bench/results/clustering.json
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
import sklearn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from faceprint import __version__  # noqa: E402
from faceprint.clustering import (  # noqa: E402
    DEFAULT_FMR,
    DEFAULT_LINKAGE,
    DEFAULT_METHOD,
    cluster_embeddings,
    pairwise_precision_recall_f1,
)
from faceprint.embedding import get_embedder  # noqa: E402
from faceprint.errors import FaceprintError  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "clustering.json"
SEED = 0
CAP = 10  # secondary view: at most this many images per identity, so no single person dominates the pairs

# (label, method, linkage, min_samples)
CONFIGS: list[tuple[str, str, str, int | None]] = [
    ("agglomerative average", "agglomerative", "average", None),
    ("agglomerative complete", "agglomerative", "complete", None),
    ("agglomerative single", "agglomerative", "single", None),
    ("dbscan min_samples=2", "dbscan", "average", 2),
    ("dbscan min_samples=3", "dbscan", "average", 3),
    ("hdbscan min_samples=1", "hdbscan", "average", 1),
    ("hdbscan min_samples=2", "hdbscan", "average", 2),
]
COARSE = [round(x, 3) for x in np.arange(0.40, 0.801, 0.025)]
HDBSCAN_GRID = [0.0, 0.6]
"""cluster_selection_epsilon values; scikit-learn <= 1.9 on NumPy >= 2 may crash on non-zero ones (issue #33219)."""


def multi_image(names: np.ndarray, emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ids, counts = np.unique(names, return_counts=True)
    keep = np.isin(names, ids[counts >= 2])
    return names[keep], emb[keep]


def counts(names: np.ndarray) -> dict[str, Any]:
    _, c = np.unique(names, return_counts=True)
    pairs = c * (c - 1) // 2
    return {
        "images": int(len(names)),
        "identities": int(len(c)),
        "true_pairs": int(pairs.sum()),
        "largest_identity_images": int(c.max()),
        "largest_identity_share_of_true_pairs_pct": round(100.0 * float(pairs.max()) / float(pairs.sum()), 1),
    }


def score(names: np.ndarray, emb: np.ndarray, cfg: tuple[str, str, str, int | None], thr: float) -> dict[str, Any]:
    _, method, linkage, min_samples = cfg
    t0 = time.perf_counter()
    try:
        labels = cluster_embeddings(emb, threshold=thr, method=method, linkage=linkage, min_samples=min_samples)  # type: ignore[arg-type]
    except FaceprintError as err:  # HDBSCAN epsilon bug: record it, keep going
        return {"threshold": round(thr, 4), "error": str(err)}
    secs = time.perf_counter() - t0
    p, r, f1 = pairwise_precision_recall_f1(names, labels)
    return {
        "threshold": round(thr, 4),
        "precision": round(p, 4),
        "recall": round(r, 4),
        "f1": round(f1, 4),
        "clusters": int(labels.max()) + 1 if (labels >= 0).any() else 0,
        "noise": int((labels < 0).sum()),
        "seconds": round(secs, 2),
    }


def capped(names: np.ndarray, emb: np.ndarray, cap: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    for n in np.unique(names):
        idx = np.flatnonzero(names == n)
        keep.extend(rng.choice(idx, size=min(cap, len(idx)), replace=False).tolist())
    k = np.sort(np.array(keep))
    return names[k], emb[k]


def run(names: np.ndarray, emb: np.ndarray) -> dict[str, Any]:
    thresholds = get_embedder("sface").thresholds
    calibrated = {f"1-t@{k}": round(1.0 - v, 4) for k, v in thresholds.items()}
    grid = sorted(set(COARSE) | set(calibrated.values()))

    ids = np.unique(names)
    rng = np.random.default_rng(SEED)
    perm = rng.permutation(len(ids))
    tune_ids = set(ids[perm[: len(ids) // 2]].tolist())
    is_tune = np.array([n in tune_ids for n in names])
    halves = {"tune": (names[is_tune], emb[is_tune]), "test": (names[~is_tune], emb[~is_tune])}
    info = {"full": counts(names), **{h: counts(v[0]) for h, v in halves.items()}}
    full_info = info["full"]
    print(
        f"LFW identities with >= 2 images: {full_info['images']} images of {full_info['identities']} people, "
        f"{full_info['true_pairs']:,} same-person pairs (largest identity: {full_info['largest_identity_images']} "
        f"images, {full_info['largest_identity_share_of_true_pairs_pct']} % of those pairs)"
    )
    print(
        f"split (seed {SEED}): tune {info['tune']['images']} images / {info['tune']['identities']} people, "
        f"test {info['test']['images']} images / {info['test']['identities']} people"
    )
    print(f"calibrated cuts (1 - SFace similarity threshold): {calibrated}\n")

    capped_set = capped(names, emb, CAP, SEED)
    info[f"full_capped_{CAP}"] = counts(capped_set[0])
    curves: dict[str, list[dict[str, Any]]] = {}
    best: dict[str, dict[str, Any]] = {}
    for cfg in CONFIGS:
        label = cfg[0]
        t0 = time.perf_counter()
        curve = [score(*halves["tune"], cfg, t) for t in (HDBSCAN_GRID if cfg[1] == "hdbscan" else grid)]
        curves[label] = curve
        top = max((row for row in curve if "error" not in row), key=lambda row: (row["f1"], -row["threshold"]))
        test = score(*halves["test"], cfg, top["threshold"])
        full = score(names, emb, cfg, top["threshold"])
        cap = score(*capped_set, cfg, top["threshold"])
        best[label] = {"threshold": top["threshold"], "tune": top, "test": test, "full": full, "capped": cap}
        errors = sum("error" in row for row in curve)
        print(
            f"  {label}: grid of {len(curve)} on the tune half in {time.perf_counter() - t0:.1f} s"
            + (f" ({errors} failed: {next(r['error'] for r in curve if 'error' in r)})" if errors else ""),
            flush=True,
        )

    winner = max(best, key=lambda k: float(best[k]["tune"]["f1"]))
    cfg = next(c for c in CONFIGS if c[0] == winner)
    thr = best[winner]["threshold"]
    nearest = min(calibrated, key=lambda k: abs(calibrated[k] - thr))

    # the library default (method, linkage, 1 - t at DEFAULT_FMR), whatever the grid chose
    default_cfg = next(c for c in CONFIGS if c[1] == DEFAULT_METHOD and c[2] == DEFAULT_LINKAGE)
    default_thr = round(1.0 - thresholds[DEFAULT_FMR], 4)
    default = {h: score(*halves[h], default_cfg, default_thr) for h in ("tune", "test")}
    default["full"] = score(names, emb, default_cfg, default_thr)
    default["capped"] = score(*capped_set, default_cfg, default_thr)

    header = (
        f"{'method':<28}{'cut':>7}{'tune F1':>9}{'test P':>8}{'test R':>8}{'test F1':>9}"
        f"{'full P':>8}{'full R':>8}{'full F1':>9}{'clusters':>10}{'secs':>7}{f'cap{CAP} P':>9}{f'cap{CAP} F1':>10}"
    )
    print("\n" + header)
    print("-" * len(header))

    def num(row: dict[str, Any], key: str, width: int, fmt: str = ".4f") -> str:
        return f"{row[key]:>{width}{fmt}}" if key in row else f"{'error':>{width}}"

    def line(label: str, r: dict[str, Any]) -> None:
        print(
            f"{label:<28}{r['threshold']:>7.3f}{num(r['tune'], 'f1', 9)}{num(r['test'], 'precision', 8)}"
            f"{num(r['test'], 'recall', 8)}{num(r['test'], 'f1', 9)}{num(r['full'], 'precision', 8)}"
            f"{num(r['full'], 'recall', 8)}{num(r['full'], 'f1', 9)}{num(r['full'], 'clusters', 10, 'd')}"
            f"{num(r['full'], 'seconds', 7, '.2f')}{num(r['capped'], 'precision', 9)}{num(r['capped'], 'f1', 10)}"
        )

    for label in best:
        line(label + (" *" if label == winner else ""), best[label])
    line(f"default: {DEFAULT_LINKAGE} @ 1-t({DEFAULT_FMR})", {"threshold": default_thr, **default})
    print(
        f"\n* chosen on the tune half: {winner}, cut {thr:.3f}"
        + f" (nearest calibrated cut: {nearest} = {calibrated[nearest]:.3f})"
        + f"; library default: {DEFAULT_METHOD} {DEFAULT_LINKAGE} at 1 - t@{DEFAULT_FMR} = {default_thr:.3f}"
    )
    print(
        f"cut = cosine distance; full = all {full_info['images']} images; cap{CAP} = at most {CAP} images per "
        f"identity ({info[f'full_capped_{CAP}']['images']} images, seed {SEED}), so no one person dominates the pairs"
    )
    print(f"\n{winner} F1 on the tune half by cut:")
    for row in curves[winner]:
        mark = [k for k, v in calibrated.items() if abs(v - row["threshold"]) < 1e-9]
        print(
            f"  {row['threshold']:.3f}  P {row['precision']:.4f}  R {row['recall']:.4f}  F1 {row['f1']:.4f}"
            + (f"  ({', '.join(mark)})" if mark else "")
        )

    return {
        "meta": {
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "faceprint": __version__,
            "scikit_learn": sklearn.__version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "embedder": "sface",
            "detector": "yunet",
            "face_selection": "central",
            "data": "LFW deep-funneled, identities with >= 2 embedded images",
            "counts": info,
            "split_seed": SEED,
            "metric": "pairwise precision / recall / F1 over all unordered pairs; noise = singletons",
            "calibrated_cuts": calibrated,
        },
        "chosen": {"config": winner, "threshold": thr, "nearest_calibrated_cut": nearest},
        "library_default": {
            "method": DEFAULT_METHOD,
            "linkage": DEFAULT_LINKAGE,
            "fmr": DEFAULT_FMR,
            "threshold": default_thr,
            **default,
        },
        "best_per_method": best,
        "tune_curves": curves,
    }


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    import lfw_embeddings

    t0 = time.perf_counter()
    _, names, emb = lfw_embeddings.load()
    names, emb = multi_image(names, emb)
    result = run(names, emb)
    result["meta"]["total_seconds"] = round(time.perf_counter() - t0, 1)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\ntotal {result['meta']['total_seconds']} s -> {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
