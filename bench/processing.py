"""Does face processing help 1-shot identification? Augmentation at enrollment and normalisation of
both sides, measured on LFW with YuNet + SFace.

    python bench/processing.py                     # "main": 400 identities, every condition, ~11 min on 1 core
    python bench/processing.py --identities 0 --skip-identities 400 \
        --conditions flip,photometric,geometric,tta --section confirmation   # held-out check, ~12 min
    python bench/processing.py --identities 100 --out /tmp/p.json         # quick look

The confirmation run re-tests, on the identities the main run did not use (disjoint, about
1,280), only the conditions the main run left open (point estimate >= 0, CI touching 0), so a
pick made on the main run is not confirmed on the same data.

Protocol
--------
* Identities of LFW (deep-funneled) with >= 2 images; a seeded random subset of ``--identities``.
  Per identity, images in a seeded random order: the first with a detected face (YuNet, central
  face) is the gallery photo, up to ``--probes`` further ones are probes. Closed set: every probe's
  identity is enrolled.
* Gallery = one template per identity. Baseline: the embedding of the plain aligned crop.
  Enrollment augmentation: the re-normalised mean of the plain crop + ``--views`` augmented views
  (``faceprint.processing.augment_embeddings``; the flip family has one view, the mirror); probes
  are left plain. Normalisations (and flip test-time augmentation) apply to gallery *and* probes.
* Metrics: rank-1 identification rate; mean genuine similarity (probe vs own template); TAR at
  FMR 1e-3 from this run's own scores (impostors = every probe against every other identity's
  template).
* Deltas vs baseline are paired (same probes, same gallery photos): 95% bootstrap CIs resampling
  identities (clusters: a gallery photo is shared by its probes), and an exact McNemar test on
  the rank-1 outcomes. "helps" / "hurts" need a CI that excludes 0 (rank-1 or TAR); otherwise
  "no effect" (not distinguishable from noise at this size). With ~16 comparisons at 95%, about one
  spurious "effect" is expected: read borderline rows with that in mind.

Writes the run under ``--section`` in ``bench/results/processing.json`` (other sections are kept)
and prints a markdown table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from faceprint.datasets import data_root  # noqa: E402
from faceprint.detection import get_detector, select_faces  # noqa: E402
from faceprint.embedding import get_embedder, l2_normalize  # noqa: E402
from faceprint.evaluation import tar_at_fmr  # noqa: E402
from faceprint.io import load_image  # noqa: E402
from faceprint.processing import (  # noqa: E402
    AUGMENTER_PRESETS,
    Augmenter,
    augment_embeddings,
    crop_landmarks,
    flip,
    get_processor,
)
from faceprint.runtime import set_num_threads  # noqa: E402
from faceprint.types import Detection  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "processing.json"
FMR = 1e-3
NORMALISATIONS = ["clahe", "retinex", "gamma", "histeq", "symmetrize", "center_nose"]
AUG_FAMILIES = ["flip", "photometric", "geometric", "pose", "occlusion", "blur", "jpeg", "mixed"]
TOP_M = 64  # impostor scores kept per probe for the bootstrap thresholds (exactness is checked)


@dataclass
class Sample:
    identity: int
    path: str
    image: np.ndarray
    detection: Detection


def select_data(
    lfw: Path, n_ids: int, n_probes: int, seed: int, skip: int = 0
) -> tuple[list[Sample], list[Sample], dict[str, Any]]:
    """The first ``skip`` usable identities of the seeded order are passed over (the main run's set,
    for a disjoint confirmation run), then ``n_ids`` are kept (0: all the rest)."""
    det = get_detector("yunet")
    rng = np.random.default_rng(seed)
    people = sorted(d for d in lfw.iterdir() if d.is_dir() and len(list(d.glob("*.jpg"))) >= 2)
    order = rng.permutation(len(people))
    gallery: list[Sample] = []
    probes: list[Sample] = []
    no_face = 0
    skipped_ids = 0
    passed_over = 0
    for idx in order:
        if n_ids and len(gallery) == n_ids:
            break
        files = sorted(people[idx].glob("*.jpg"))
        files = [files[i] for i in rng.permutation(len(files))]
        found: list[Sample] = []
        for f in files:
            if len(found) == 1 + n_probes:
                break
            img = load_image(f)
            faces = select_faces(det.detect(img), img.shape, "central")
            if not faces:
                no_face += 1
                continue
            found.append(Sample(len(gallery), str(f.relative_to(lfw)), img, faces[0]))
        if len(found) < 2:
            skipped_ids += 1
            continue
        if passed_over < skip:
            passed_over += 1
            continue
        gallery.append(found[0])
        probes.extend(found[1:])
    meta = {
        "identities_with_2plus_images": len(people),
        "images_without_face": no_face,
        "identities_skipped_for_missing_faces": skipped_ids,
        "identities_passed_over": passed_over,
        "gallery_identities": [Path(g.path).parent.name for g in gallery],
    }
    return gallery, probes, meta


# -- metrics ----------------------------------------------------------------------------------


@dataclass
class Scores:
    """Per-probe outcomes of one condition."""

    correct: np.ndarray  # (n_probes,) bool, rank-1 hit
    genuine: np.ndarray  # (n_probes,) similarity to own template
    impostor: np.ndarray  # (n_probes, n_ids - 1)


def score(probe_emb: np.ndarray, sims_fn: Callable[[np.ndarray], np.ndarray], labels: np.ndarray) -> Scores:
    s = sims_fn(probe_emb)  # (n_probes, n_ids)
    n = len(labels)
    genuine = s[np.arange(n), labels]
    mask = np.ones_like(s, bool)
    mask[np.arange(n), labels] = False
    impostor = s[mask].reshape(n, -1)
    return Scores(genuine > impostor.max(axis=1), genuine, impostor)  # a tie counts as a miss


def tar(sc: Scores, fmr: float = FMR) -> float:
    scores = np.concatenate([sc.genuine, sc.impostor.ravel()])
    labels = np.concatenate([np.ones(sc.genuine.size, bool), np.zeros(sc.impostor.size, bool)])
    return tar_at_fmr(scores, labels, fmr)


def _kth_threshold(tops: np.ndarray, counts: np.ndarray, n_imp_each: int, fmr: float) -> float | None:
    """Value d_k (genuine must be > d_k) for probes weighted by ``counts``; None if TOP_M is not enough."""
    n = int(counts.sum()) * n_imp_each
    k = int(math.floor(fmr * n))
    while (k + 1) / n <= fmr:
        k += 1
    while k > 0 and k / n > fmr:
        k -= 1
    rows = np.repeat(tops, counts, axis=0)
    flat = rows.ravel()
    if k >= flat.size:
        return None
    d_k = -np.partition(-flat, k)[k]
    # exact only if no probe had more than TOP_M impostors at or above d_k
    if np.any(rows[:, -1] >= d_k):
        return None
    return float(d_k)


def _kth_threshold_full(imp: np.ndarray, counts: np.ndarray, fmr: float) -> float:
    flat = np.repeat(imp, counts, axis=0).ravel()
    n = flat.size
    k = int(math.floor(fmr * n))
    while (k + 1) / n <= fmr:
        k += 1
    while k > 0 and k / n > fmr:
        k -= 1
    return float(-np.partition(-flat, k)[k])


class Bootstrap:
    """Paired cluster bootstrap over identities (same draws for every condition)."""

    def __init__(self, labels: np.ndarray, n_ids: int, n_boot: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.labels = labels
        self.draws = rng.integers(0, n_ids, size=(n_boot, n_ids))
        # counts[b, i] = how often identity i was drawn; a probe's weight is its identity's count
        self.id_counts = np.stack([np.bincount(d, minlength=n_ids) for d in self.draws])
        self.probe_counts = self.id_counts[:, labels]

    def mean_delta(self, a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
        d = a.astype(np.float64) - b.astype(np.float64)
        w = self.probe_counts
        deltas = (w * d).sum(axis=1) / w.sum(axis=1)
        lo, hi = np.percentile(deltas, [2.5, 97.5])
        return float(lo), float(hi)

    def tar_delta(self, cond: Scores, base: Scores, fmr: float = FMR) -> tuple[float, float]:
        tops = {}
        for key, sc in (("c", cond), ("b", base)):
            tops[key] = -np.sort(-sc.impostor, axis=1)[:, :TOP_M]
        deltas = np.empty(len(self.probe_counts))
        n_imp_each = cond.impostor.shape[1]
        for i, w in enumerate(self.probe_counts):
            vals = []
            for key, sc in (("c", cond), ("b", base)):
                d_k = _kth_threshold(tops[key], w, n_imp_each, fmr)
                if d_k is None:
                    d_k = _kth_threshold_full(sc.impostor, w, fmr)
                vals.append(float((w * (sc.genuine > d_k)).sum() / w.sum()))
            deltas[i] = vals[0] - vals[1]
        lo, hi = np.percentile(deltas, [2.5, 97.5])
        return float(lo), float(hi)


def mcnemar(a: np.ndarray, b: np.ndarray) -> tuple[int, int, float]:
    """Exact two-sided McNemar test: (a right & b wrong, a wrong & b right, p)."""
    n10 = int(np.sum(a & ~b))
    n01 = int(np.sum(~a & b))
    n = n10 + n01
    if n == 0:
        return n10, n01, 1.0
    k = min(n10, n01)
    p = 2.0 * sum(math.comb(n, i) for i in range(k + 1)) / 2.0**n
    return n10, n01, min(1.0, p)


def verdict(d_r1_ci: tuple[float, float], d_tar_ci: tuple[float, float]) -> str:
    up = d_r1_ci[0] > 0 or d_tar_ci[0] > 0
    down = d_r1_ci[1] < 0 or d_tar_ci[1] < 0
    if up and down:
        return "mixed"
    if up:
        return "helps"
    if down:
        return "hurts"
    return "no effect"


# -- the run ------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--identities", type=int, default=400)
    ap.add_argument("--probes", type=int, default=3, help="max probes per identity")
    ap.add_argument("--views", type=int, default=8, help="augmented views per gallery photo (k)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--boot", type=int, default=1000, help="bootstrap resamples")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skip-identities", type=int, default=0, help="pass over the first N usable identities")
    ap.add_argument(
        "--conditions",
        default="all",
        help="comma list of: " + ",".join([*AUG_FAMILIES, "max", *NORMALISATIONS, "tta"]) + " (default all)",
    )
    ap.add_argument("--section", default="main", help="key of this run in the results file (others are kept)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    chosen = set(args.conditions.split(",")) if args.conditions != "all" else None

    def wanted(token: str) -> bool:
        return chosen is None or token in chosen

    set_num_threads(args.threads)
    t_start = time.time()
    root = data_root(required=True)
    assert root is not None
    lfw = root / "lfw" / "lfw-deepfunneled"
    gallery, probes, data_meta = select_data(lfw, args.identities, args.probes, args.seed, args.skip_identities)
    labels = np.array([p.identity for p in probes])
    n_ids = len(gallery)
    print(f"{n_ids} identities, {len(probes)} probes ({time.time() - t_start:.0f} s)", flush=True)

    emb = get_embedder("sface")
    template = emb.template  # type: ignore[attr-defined]

    def crops(samples: list[Sample]) -> list[np.ndarray]:
        return [emb.align(s.image, s.detection) for s in samples]  # type: ignore[attr-defined]

    def embed(cs: list[np.ndarray]) -> np.ndarray:
        return emb.embed(np.stack(cs))  # type: ignore[attr-defined]

    g_crops, p_crops = crops(gallery), crops(probes)
    g_lms = [crop_landmarks(s.detection, template) for s in gallery]
    p_lms = [crop_landmarks(s.detection, template) for s in probes]
    g_base, p_base = embed(g_crops), embed(p_crops)
    timings: dict[str, float] = {}

    conditions: dict[str, dict[str, Any]] = {}

    def against(gal: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        return lambda p: p @ gal.T

    def add(name: str, kind: str, sc: Scores, note: str = "") -> None:
        conditions[name] = {"kind": kind, "scores": sc, "note": note}

    add("baseline", "baseline", score(p_base, against(g_base), labels))

    # enrollment augmentation (gallery only)
    view_embs: dict[str, np.ndarray] = {}
    for fam in AUG_FAMILIES:
        if not (wanted(fam) or (fam == "mixed" and wanted("max"))):
            continue
        t0 = time.time()
        k = 1 if fam == "flip" else args.views
        base_aug = Augmenter.preset(fam, seed=args.seed)
        # the plain crop's embedding is g_base (identical to include_original=True, without re-embedding it)
        views = np.stack(
            [
                np.vstack(
                    [
                        g_base[i : i + 1],
                        augment_embeddings(
                            s.image,
                            s.detection,
                            emb,
                            replace(base_aug, seed=args.seed * 100_003 + i),
                            k,
                            include_original=False,
                            reduce="none",
                        ),
                    ]
                )
                for i, s in enumerate(gallery)
            ]
        )
        view_embs[fam] = views
        tpl = l2_normalize(views.mean(axis=1))
        add(f"enroll: {fam}", "augmentation", score(p_base, against(tpl), labels), f"k={k}")
        timings[f"enroll: {fam}"] = time.time() - t0
        print(f"  enroll: {fam:12s} {time.time() - t0:6.0f} s", flush=True)

    def max_over_views(p: np.ndarray) -> np.ndarray:
        return np.einsum("pd,gvd->pgv", p, view_embs["mixed"]).max(axis=2)

    if wanted("max"):
        add(
            "enroll: mixed, max over views",
            "augmentation",
            score(p_base, max_over_views, labels),
            f"k={args.views}, score = max over the {args.views + 1} view embeddings",
        )

    # normalisation of both sides
    changed_frac: dict[str, float] = {}
    for name in NORMALISATIONS:
        if not wanted(name):
            continue
        t0 = time.time()
        step = get_processor(name)
        out = []
        n_changed = 0
        for cs, lms, base in ((g_crops, g_lms, g_base), (p_crops, p_lms, p_base)):
            new = [step(c, lm) for c, lm in zip(cs, lms)]
            changed = [i for i, (a, b) in enumerate(zip(new, cs)) if not np.array_equal(a, b)]
            e = base.copy()
            if changed:
                e[changed] = embed([new[i] for i in changed])
            n_changed += len(changed)
            out.append(e)
        changed_frac[name] = n_changed / (len(g_crops) + len(p_crops))
        add(
            f"normalise: {name}",
            "normalisation",
            score(out[1], against(out[0]), labels),
            f"{100 * changed_frac[name]:.0f}% of crops changed",
        )
        timings[f"normalise: {name}"] = time.time() - t0
        print(f"  normalise: {name:12s} {time.time() - t0:6.0f} s", flush=True)

    if wanted("tta"):
        t0 = time.time()
        g_flip = l2_normalize(g_base + embed([flip(c) for c in g_crops]))
        p_flip = l2_normalize(p_base + embed([flip(c) for c in p_crops]))
        add("flip TTA (both sides)", "tta", score(p_flip, against(g_flip), labels), "crop + mirror, summed")
        timings["flip TTA"] = time.time() - t0

    # statistics
    t0 = time.time()
    boot = Bootstrap(labels, n_ids, args.boot, args.seed + 1)
    base = conditions["baseline"]["scores"]
    base_r1, base_tar, base_gen = float(base.correct.mean()), tar(base), float(base.genuine.mean())
    rows = []
    for name, c in conditions.items():
        sc: Scores = c["scores"]
        r1, t, gen = float(sc.correct.mean()), tar(sc), float(sc.genuine.mean())
        row: dict[str, Any] = {
            "condition": name,
            "kind": c["kind"],
            "note": c["note"],
            "rank1": r1,
            "tar_at_fmr_1e-3": t,
            "tar_at_fmr_1e-4": tar(sc, 1e-4),
            "mean_genuine_similarity": gen,
            "mean_impostor_similarity": float(sc.impostor.mean()),
        }
        if name != "baseline":
            n10, n01, p = mcnemar(sc.correct, base.correct)
            row.update(
                d_rank1=r1 - base_r1,
                d_rank1_ci95=boot.mean_delta(sc.correct, base.correct),
                mcnemar={"fixed": n10, "broken": n01, "p": p},
                d_tar=t - base_tar,
                d_tar_ci95=boot.tar_delta(sc, base),
                d_genuine=gen - base_gen,
                d_genuine_ci95=boot.mean_delta(sc.genuine, base.genuine),
            )
            row["verdict"] = verdict(row["d_rank1_ci95"], row["d_tar_ci95"])
        rows.append(row)
    timings["statistics"] = time.time() - t0
    runtime = time.time() - t_start

    # table
    def pct(v: float) -> str:
        return f"{100 * v:.1f}"

    def dpct(v: float, ci: tuple[float, float]) -> str:
        return f"{100 * v:+.1f} [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]"

    lines = [
        f"1-shot identification, LFW, {n_ids} identities, {len(probes)} probes; YuNet + SFace; "
        f"TAR at FMR 1e-3; deltas vs baseline with 95% cluster-bootstrap CIs; p = exact McNemar on rank-1",
        "",
        "| condition | applied to | rank-1 % | Δ rank-1 (pp) | fixed / broken, p | TAR@1e-3 % | Δ TAR (pp) | "
        "genuine sim | Δ genuine | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    where = {"baseline": "-", "augmentation": "gallery", "normalisation": "both", "tta": "both"}
    for r in rows:
        if r["condition"] == "baseline":
            lines.append(
                f"| baseline | - | {pct(r['rank1'])} | | | {pct(r['tar_at_fmr_1e-3'])} | | "
                f"{r['mean_genuine_similarity']:.3f} | | |"
            )
            continue
        m = r["mcnemar"]
        lines.append(
            f"| {r['condition']} ({r['note']}) | {where[r['kind']]} | {pct(r['rank1'])} | "
            f"{dpct(r['d_rank1'], r['d_rank1_ci95'])} | {m['fixed']} / {m['broken']}, {m['p']:.2g} | "
            f"{pct(r['tar_at_fmr_1e-3'])} | {dpct(r['d_tar'], r['d_tar_ci95'])} | "
            f"{r['mean_genuine_similarity']:.3f} | {r['d_genuine']:+.3f} "
            f"[{r['d_genuine_ci95'][0]:+.3f}, {r['d_genuine_ci95'][1]:+.3f}] | {r['verdict']} |"
        )
    table = "\n".join(lines)
    print()
    print(table)
    print(f"\nruntime {runtime:.0f} s ({args.threads} thread(s))")

    meta = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "dataset": "LFW deep-funneled",
        "identities": n_ids,
        "probes": len(probes),
        "max_probes_per_identity": args.probes,
        "views_k": args.views,
        "seed_selection": args.seed,
        "seed_augmentation": f"identity i uses Augmenter seed {args.seed} * 100003 + i",
        "seed_bootstrap": args.seed + 1,
        "bootstrap_resamples": args.boot,
        "bootstrap": "paired cluster bootstrap over identities",
        "fmr": FMR,
        "detector": "yunet (central face)",
        "embedder": emb.fingerprint,
        "presets": {k: AUGMENTER_PRESETS[k] for k in AUG_FAMILIES},
        "normalisations_changed_fraction": changed_frac,
        "opencv": cv2.__version__,
        "python": platform.python_version(),
        "threads": args.threads,
        "runtime_s": round(runtime, 1),
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
        **data_meta,
    }
    meta["conditions"] = args.conditions
    meta["command"] = "python bench/processing.py " + " ".join(sys.argv[1:])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {}
    if args.out.exists():
        doc = json.loads(args.out.read_text())
    doc[args.section] = {"meta": meta, "results": rows, "table_markdown": table}
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
