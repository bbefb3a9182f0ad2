"""Calibration on the user's own labelled photos: thresholds at target FMRs with bootstrap intervals, as a file.

faceprint ships thresholds measured on LFW; on another population the same threshold can match
strangers several times more often than its label says. :func:`fit_calibration` measures them on
the user's people instead: from embeddings and person labels it forms **every** pair of images
(genuine: same person; impostor: different people), and at each target false-match rate sets the
threshold by the rule of :func:`faceprint.evaluation.verification.threshold_at_fmr` (the smallest
similarity at which at most that fraction of impostor pairs matches). The uncertainty is a
bootstrap that resamples **people** (the pairs of one person are not independent), and the
genuine pairs give the TAR / FNMR at each threshold. An :class:`~faceprint.thresholds.ImpostorTail`
of the impostor scores serves ``identify(..., fpir=)``.

A target the data cannot support is refused with
:class:`~faceprint.errors.UnsupportedOperatingPointError`: FMR ``f`` needs at least ``3 / f``
impostor pairs (three expected false matches), so 100 people with 5 photos each (123,750
impostor pairs) support 1e-4 but not 1e-5.

:meth:`Calibration.save` writes a ``faceprint-calibration/1`` file shaped like the shipped
``calibration.json`` (``models[key].thresholds`` and ``.impostor_tail``, keys ``"1e-3"`` ...).
Setting ``FACEPRINT_CALIBRATION`` to it makes ``verify``, ``identify`` (1:1 thresholds and
``fpir=``), ``cluster``'s default threshold and the CLI use it for that model and fingerprint;
:func:`calibration_in_force` says which calibration an embedder uses.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> centres = rng.normal(size=(60, 32))
>>> x = np.repeat(centres, 4, axis=0) + 0.8 * rng.normal(size=(240, 32))
>>> cal = fit_calibration(x, np.repeat(np.arange(60), 4), model="toy", fingerprint="toy@0", fmrs=(1e-2, 1e-3))
>>> cal.counts.people, cal.counts.genuine_pairs, cal.counts.impostor_pairs
(60, 360, 28320)
>>> cal.thresholds["1e-2"] < cal.thresholds["1e-3"]
True
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from .calibration_file import FORMAT, read_calibration_file, user_calibration, user_model_entry
from .embedding import load_calibration
from .errors import InvalidArgumentError, InvalidFileError, UnsupportedOperatingPointError
from .settings import Settings
from .thresholds import ImpostorTail, accepted_impostors, fmr_for_fpir

__all__ = [
    "FORMAT",
    "DEFAULT_FMRS",
    "MIN_ERRORS",
    "Calibration",
    "CalibrationCounts",
    "CalibrationSource",
    "OperatingPoint",
    "calibration_in_force",
    "describe_models",
    "check_targets",
    "fit_calibration",
    "load_calibration_file",
    "pair_counts",
    "supported_fmrs",
]

DEFAULT_FMRS: tuple[float, ...] = (1e-2, 1e-3, 1e-4)
"""The operating points of the shipped calibration."""

MIN_ERRORS = 3
"""A target FMR ``f`` needs at least ``MIN_ERRORS / f`` impostor pairs."""

MAX_IMPOSTOR_PAIRS = 20_000_000
"""Above this many impostor pairs a seeded uniform sample of this size is used (and recorded as sampled)."""


def _rate_key(rate: float) -> str:
    """``0.001 -> "1e-3"``, ``1.5e-3 -> "1.5e-3"``: the keys of ``thresholds`` (as ``fmr_key``)."""
    return np.format_float_scientific(float(rate), trim="-", exp_digits=1)


@dataclass(frozen=True)
class OperatingPoint:
    """One measured operating point: the threshold at a target per-comparison FMR.

    ``interval`` is the bootstrap (by people) percentile interval of the threshold, ``tar`` the
    fraction of genuine pairs at or above the threshold (None without genuine pairs) and
    ``tar_interval`` its bootstrap interval. An FPIR point (``fpir`` and ``gallery_size`` set) is
    the per-comparison FMR ``fmr_for_fpir(fpir, gallery_size)``.
    """

    key: str
    fmr: float
    threshold: float
    interval: tuple[float, float] | None
    impostors_accepted: int
    tar: float | None = None
    tar_interval: tuple[float, float] | None = None
    fpir: float | None = None
    gallery_size: int | None = None

    @property
    def fnmr(self) -> float | None:
        return None if self.tar is None else 1.0 - self.tar

    def to_dict(self) -> dict[str, Any]:
        def pair(v: tuple[float, float] | None) -> list[float] | None:
            return None if v is None else [round(v[0], 6), round(v[1], 6)]

        return {
            "key": self.key,
            "fmr": float(f"{self.fmr:.6g}"),
            "threshold": self.threshold,
            "interval": pair(self.interval),
            "impostors_accepted": self.impostors_accepted,
            "tar": None if self.tar is None else round(self.tar, 6),
            "tar_interval": pair(self.tar_interval),
            "fnmr": None if self.fnmr is None else round(self.fnmr, 6),
            "fpir": self.fpir,
            "gallery_size": self.gallery_size,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> OperatingPoint:
        def pair(v: Any) -> tuple[float, float] | None:
            return None if v is None else (float(v[0]), float(v[1]))

        return cls(
            key=str(raw["key"]),
            fmr=float(raw["fmr"]),
            threshold=float(raw["threshold"]),
            interval=pair(raw.get("interval")),
            impostors_accepted=int(raw.get("impostors_accepted", 0)),
            tar=None if raw.get("tar") is None else float(raw["tar"]),
            tar_interval=pair(raw.get("tar_interval")),
            fpir=None if raw.get("fpir") is None else float(raw["fpir"]),
            gallery_size=None if raw.get("gallery_size") is None else int(raw["gallery_size"]),
        )


@dataclass(frozen=True)
class CalibrationCounts:
    """What a calibration was measured on.

    ``impostor_pairs`` were used; ``impostor_pairs_total`` exist among the images (they differ only
    when ``impostor_pairs_sampled``: a seeded uniform sample, above :data:`MAX_IMPOSTOR_PAIRS`).
    """

    people: int
    images: int
    people_with_genuine_pairs: int
    genuine_pairs: int
    impostor_pairs: int
    impostor_pairs_total: int
    impostor_pairs_sampled: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "people": self.people,
            "images": self.images,
            "people_with_genuine_pairs": self.people_with_genuine_pairs,
            "genuine_pairs": self.genuine_pairs,
            "impostor_pairs": self.impostor_pairs,
            "impostor_pairs_total": self.impostor_pairs_total,
            "impostor_pairs_sampled": self.impostor_pairs_sampled,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> CalibrationCounts:
        return cls(
            people=int(raw["people"]),
            images=int(raw["images"]),
            people_with_genuine_pairs=int(raw["people_with_genuine_pairs"]),
            genuine_pairs=int(raw["genuine_pairs"]),
            impostor_pairs=int(raw["impostor_pairs"]),
            impostor_pairs_total=int(raw["impostor_pairs_total"]),
            impostor_pairs_sampled=bool(raw.get("impostor_pairs_sampled", False)),
        )


@dataclass(frozen=True)
class Calibration:
    """Thresholds of one model measured on the user's labelled photos (:func:`fit_calibration`).

    ``thresholds`` has the keys the rest of faceprint uses (``"1e-2"``, ``"1e-3"``, ...,
    ``"best_accuracy"`` when there are genuine pairs), so ``verify --fmr 1e-3`` reads them once the
    file is in force (``FACEPRINT_CALIBRATION``).
    """

    model: str
    fingerprint: str
    points: tuple[OperatingPoint, ...]
    counts: CalibrationCounts
    impostor_tail: ImpostorTail | None = None
    best_accuracy: float | None = None
    """The threshold maximising TAR - FMR (the balanced accuracy, as the shipped ``best_accuracy``)."""
    n_boot: int = 0
    seed: int = 0
    confidence: float = 0.95
    source: str = ""
    date: str = ""
    notes: tuple[str, ...] = ()
    path: Path | None = field(default=None, compare=False)
    """The file it was loaded from (None when fitted here)."""

    @property
    def thresholds(self) -> dict[str, float]:
        """Operating point -> similarity threshold: the FMR points, and ``best_accuracy`` when measured."""
        table = {p.key: p.threshold for p in self.points if p.fpir is None}
        if self.best_accuracy is not None:
            table["best_accuracy"] = self.best_accuracy
        return table

    def point(self, key: str) -> OperatingPoint:
        for p in self.points:
            if p.key == key:
                return p
        raise InvalidArgumentError(f"no operating point {key!r}; have: {', '.join(p.key for p in self.points)}")

    def to_dict(self) -> dict[str, Any]:
        """The ``models[key]`` entry of a calibration file."""
        return {
            "fingerprint": self.fingerprint,
            "thresholds": dict(self.thresholds),  # full precision: what is applied is what was fitted
            "impostor_tail": None if self.impostor_tail is None else self.impostor_tail.to_dict(),
            "calibration": {
                "source": self.source,
                "date": self.date,
                "counts": self.counts.to_dict(),
                "operating_points": [p.to_dict() for p in self.points],
                "best_accuracy": self.best_accuracy,
                "bootstrap": {
                    "n": self.n_boot,
                    "seed": self.seed,
                    "confidence": self.confidence,
                    "resampled": "people",
                },
                "rule": "smallest threshold at which at most FMR of the impostor pairs score >= it (threshold_at_fmr)",
                "notes": list(self.notes),
            },
        }

    @classmethod
    def from_dict(cls, model: str, raw: Mapping[str, Any], *, path: Path | None = None) -> Calibration:
        """A calibration from its file entry; :class:`InvalidFileError` when the entry is malformed."""
        where = f"{path or 'calibration'}: models[{model!r}]"
        try:
            meta = raw.get("calibration") or {}
            boot = meta.get("bootstrap") or {}
            tail = raw.get("impostor_tail")
            return cls(
                model=model,
                fingerprint=str(raw["fingerprint"]),
                points=tuple(OperatingPoint.from_dict(p) for p in meta["operating_points"]),
                counts=CalibrationCounts.from_dict(meta["counts"]),
                impostor_tail=None if not tail else ImpostorTail.from_dict(model, tail),
                best_accuracy=None if meta.get("best_accuracy") is None else float(meta["best_accuracy"]),
                n_boot=int(boot.get("n", 0)),
                seed=int(boot.get("seed", 0)),
                confidence=float(boot.get("confidence", 0.95)),
                source=str(meta.get("source", "")),
                date=str(meta.get("date", "")),
                notes=tuple(str(n) for n in meta.get("notes", ())),
                path=path,
            )
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as err:
            raise InvalidFileError(f"{where}: malformed calibration entry ({type(err).__name__}: {err})") from None

    def save(self, path: str | os.PathLike[str], *, merge: bool = False) -> Path:
        """Write the calibration file (``faceprint-calibration/1``); returns its path.

        With ``merge`` an existing calibration file keeps its other models' entries (this model's is
        replaced). The file is written to a temporary name and renamed, so a reader never sees half a file.
        """
        p = Path(path).expanduser()
        models: dict[str, Any] = {}
        if merge and p.exists():
            models = dict(read_calibration_file(p)["models"])
        models[self.model] = self.to_dict()
        doc = {
            "format": FORMAT,
            "about": (
                "Cosine-similarity thresholds measured by faceprint calibrate on the user's photos "
                "(all genuine and impostor pairs; intervals: bootstrap over people). Use it with "
                "FACEPRINT_CALIBRATION=<this file>; it applies to the models below with these fingerprints."
            ),
            "date": self.date,
            "models": models,
        }
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, p)
        return p


def load_calibration_file(path: str | os.PathLike[str]) -> dict[str, Calibration]:
    """Every model's :class:`Calibration` in a calibration file, by model key.

    Raises
    ------
    InvalidFileError
        Missing, not JSON, another format or version, or an entry of the wrong shape.
    """
    p = Path(path).expanduser()
    raw = read_calibration_file(p)
    return {key: Calibration.from_dict(key, entry, path=p) for key, entry in raw["models"].items()}


# -- fitting --------------------------------------------------------------------------------------


def pair_counts(labels: npt.ArrayLike) -> tuple[int, int, int]:
    """``(people, genuine pairs, impostor pairs)`` among images labelled by person.

    Examples
    --------
    >>> pair_counts(["a", "a", "b", "c"])
    (3, 1, 5)
    """
    _, sizes = np.unique(np.asarray(labels), return_counts=True)
    n = int(sizes.sum())
    genuine = int((sizes * (sizes - 1) // 2).sum())
    return len(sizes), genuine, n * (n - 1) // 2 - genuine


def supported_fmrs(labels: npt.ArrayLike, candidates: Sequence[float] = DEFAULT_FMRS) -> tuple[float, ...]:
    """The ``candidates`` these labelled images support (at least :data:`MIN_ERRORS` / FMR impostor pairs).

    Examples
    --------
    >>> supported_fmrs(np.repeat(np.arange(40), 3))  # 7,020 impostor pairs
    (0.01, 0.001)
    """
    n_imp = min(pair_counts(labels)[2], MAX_IMPOSTOR_PAIRS)
    return tuple(f for f in candidates if n_imp >= MIN_ERRORS / f)


def _refusal(what: str, fmr: float, n_imp: int, people: int, images: int) -> UnsupportedOperatingPointError:
    need = math.ceil(MIN_ERRORS / fmr - 1e-9)
    smallest = np.format_float_scientific(MIN_ERRORS / n_imp, precision=2, exp_digits=1) if n_imp else "none"
    return UnsupportedOperatingPointError(
        f"{what} needs at least {need:,} impostor pairs ({MIN_ERRORS} / FMR); these photos give {n_imp:,} "
        f"({people:,} people, {images:,} images), so the smallest FMR they support is {smallest}: "
        "add people (impostor pairs grow with the square of the images) or choose a larger target"
    )


def check_targets(
    labels: npt.ArrayLike,
    fmrs: Sequence[float],
    fpirs: Sequence[float] = (),
    gallery_size: int | None = None,
    *,
    max_impostor_pairs: int = MAX_IMPOSTOR_PAIRS,
) -> list[tuple[str, float, float | None]]:
    """Refuse what images labelled by person cannot support; else the targets as ``(key, fmr, fpir)``.

    Raises
    ------
    UnsupportedOperatingPointError
        Fewer than 2 people, a rate outside (0, 1), or a target FMR ``f`` (an FPIR's per-comparison
        FMR at ``gallery_size``) with fewer than ``3 / f`` impostor pairs; the message gives the
        pair count, the count needed and the smallest FMR the pairs support.
    InvalidArgumentError
        ``fpirs`` without a ``gallery_size >= 1``.

    Examples
    --------
    >>> check_targets(np.repeat(np.arange(40), 3), [1e-2])
    [('1e-2', 0.01, None)]
    """
    y = np.asarray(labels)
    people, genuine, n_imp_total = pair_counts(y) if y.size else (0, 0, 0)
    n = int(y.size)
    if people < 2:
        raise UnsupportedOperatingPointError(
            f"calibration needs photos of at least 2 people (impostor pairs), got {people} "
            f"({n} image{'s' if n != 1 else ''})"
        )
    if fpirs and (gallery_size is None or isinstance(gallery_size, bool) or int(gallery_size) < 1):
        raise InvalidArgumentError("fpirs need gallery_size: the number of templates the gallery will hold (>= 1)")
    for f in list(fmrs) + list(fpirs):
        if isinstance(f, bool) or not isinstance(f, (int, float, np.floating)) or not 0.0 < float(f) < 1.0:
            raise UnsupportedOperatingPointError(f"a target rate must be strictly between 0 and 1, got {f!r}")
    targets: list[tuple[str, float, float | None]] = [(_rate_key(f), float(f), None) for f in fmrs]
    for rate_fpir in fpirs:
        size = int(gallery_size)  # type: ignore[arg-type]
        per_comparison = fmr_for_fpir(float(rate_fpir), size)
        targets.append((f"fpir {_rate_key(rate_fpir)} @ {size:,}", per_comparison, float(rate_fpir)))
    used = min(n_imp_total, max_impostor_pairs)
    for key, f, fp in targets:
        if used < MIN_ERRORS / f:
            what = f"FMR {key}" if fp is None else f"FPIR {_rate_key(fp)} at {gallery_size:,} templates (FMR {f:.3g})"
            raise _refusal(what, f, used, people, n)
    return targets


def _threshold_at(desc: np.ndarray, n: int, fmr: float) -> tuple[float, int]:
    """``threshold_at_fmr``'s rule on the ``desc``-sorted top of ``n`` impostor scores: (threshold, k accepted)."""
    k = accepted_impostors(n, fmr)
    if k >= n:
        return -math.inf, n
    t = float(np.nextafter(desc[k], np.inf))
    return t, int(np.searchsorted(-desc, -t, side="right"))  # scores >= t among the top


def _interval(values: np.ndarray, confidence: float) -> tuple[float, float] | None:
    v = values[np.isfinite(values)]
    if v.size < 2:
        return None
    a = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(v, [a, 1.0 - a])
    return float(lo), float(hi)


def fit_calibration(
    embeddings: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    model: str,
    fingerprint: str,
    fmrs: Sequence[float] = DEFAULT_FMRS,
    fpirs: Sequence[float] = (),
    gallery_size: int | None = None,
    n_boot: int = 200,
    seed: int = 0,
    confidence: float = 0.95,
    max_impostor_pairs: int = MAX_IMPOSTOR_PAIRS,
    source: str = "",
) -> Calibration:
    """Thresholds at target FMRs (and FPIRs at a gallery size) measured on labelled embeddings.

    Parameters
    ----------
    embeddings : array_like, shape (n, dim)
        One embedding per image, from the embedder to calibrate (rows are L2-normalised here;
        drop images that failed to embed first: NaN rows are refused).
    labels : array_like, shape (n,)
        The person of each image (any hashable values). Every pair of images is used: genuine
        when the labels are equal, impostor otherwise. People with one photo add impostor pairs only.
    model, fingerprint : str
        ``Embedder.key`` and ``Embedder.fingerprint`` of that embedder: the file applies to it only.
    fmrs : sequence of float
        Target false-match rates, each refused unless there are ``3 / fmr`` impostor pairs.
    fpirs : sequence of float
        Target open-set FPIRs at ``gallery_size`` templates: measured at the per-comparison
        ``fmr_for_fpir(fpir, gallery_size)`` (``identify(..., fpir=)`` uses the tail at the
        gallery's size at search time).
    n_boot : int
        Bootstrap replicates; each draws the people with replacement (0: no intervals).
    seed : int
        Seeds the bootstrap and the impostor-pair sample.
    max_impostor_pairs : int
        Above this many impostor pairs a seeded uniform sample of about this size is used (``counts`` says so).
    source : str
        Where the photos came from (written to the file).

    Returns
    -------
    Calibration

    Raises
    ------
    UnsupportedOperatingPointError
        Fewer than 2 people, or a target that needs more impostor pairs than there are (the message
        gives both numbers and the smallest FMR the data support).
    InvalidArgumentError
        Malformed embeddings / labels / arguments.
    """
    x = np.asarray(embeddings, np.float32)
    y = np.asarray(labels)
    if x.ndim != 2 or x.shape[0] != y.shape[0] or y.ndim != 1:
        raise InvalidArgumentError(f"expected embeddings (n, dim) and n labels, got {x.shape} and {y.shape}")
    if not np.isfinite(x).all():
        raise InvalidArgumentError("embeddings hold NaN or infinite values: leave out the images that failed to embed")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise InvalidArgumentError("an embedding is all zeros")
    x = x / norms
    if not 0.0 < confidence < 1.0 or n_boot < 0 or max_impostor_pairs < 1:
        raise InvalidArgumentError("need 0 < confidence < 1, n_boot >= 0 and max_impostor_pairs >= 1")
    targets = check_targets(y, fmrs, fpirs, gallery_size, max_impostor_pairs=max_impostor_pairs)
    names, codes = np.unique(y, return_inverse=True)
    people, n = len(names), len(y)
    sizes = np.bincount(codes).astype(np.int64)
    n_gen = int((sizes * (sizes - 1) // 2).sum())
    n_imp_total = n * (n - 1) // 2 - n_gen
    rate = min(1.0, max_impostor_pairs / n_imp_total)
    expected_used = n_imp_total if rate >= 1.0 else int(round(n_imp_total * rate))

    # -- every pair, a block of rows at a time (columns > row only) ---------------------------------
    order = np.argsort(codes, kind="stable")
    x, codes = x[order], codes[order].astype(np.int32)
    f_max = max((f for _, f, _ in targets), default=1e-2)
    keep_top = min(expected_used, max(int(10 * f_max * expected_used), 20_000))
    rng = np.random.default_rng(seed)
    imp_parts: list[np.ndarray] = []
    gen_parts: list[np.ndarray] = []
    gen_code_parts: list[np.ndarray] = []
    top_s = np.zeros(0, np.float32)
    top_a = np.zeros(0, np.int32)
    top_b = np.zeros(0, np.int32)
    block = max(1, 4_000_000 // max(n, 1))
    for r0 in range(0, n, block):
        r1 = min(n, r0 + block)
        s = x[r0:r1] @ x[r0:].T
        upper = np.arange(r0, n)[None, :] > np.arange(r0, r1)[:, None]
        same = codes[r0:r1, None] == codes[None, r0:]
        gi, gj = np.nonzero(upper & same)
        gen_parts.append(s[gi, gj])
        gen_code_parts.append(codes[r0 + gi])
        ii, jj = np.nonzero(upper & ~same)
        if rate < 1.0:
            pick = rng.random(ii.size) < rate
            ii, jj = ii[pick], jj[pick]
        sc = s[ii, jj]
        imp_parts.append(sc)
        top_s = np.concatenate([top_s, sc])
        top_a = np.concatenate([top_a, codes[r0 + ii]])
        top_b = np.concatenate([top_b, codes[r0 + jj]])
        if top_s.size > 2 * keep_top:
            idx = np.argpartition(-top_s, keep_top)[:keep_top]
            top_s, top_a, top_b = top_s[idx], top_a[idx], top_b[idx]
    if top_s.size > keep_top:  # exactly the top keep_top scores (the buffer's tail beyond them has gaps)
        idx = np.argpartition(-top_s, keep_top)[:keep_top]
        top_s, top_a, top_b = top_s[idx], top_a[idx], top_b[idx]
    imp = np.concatenate(imp_parts)
    gen = np.concatenate(gen_parts) if gen_parts else np.zeros(0, np.float32)
    gen_code = np.concatenate(gen_code_parts) if gen_code_parts else np.zeros(0, np.int32)
    n_imp = int(imp.size)
    for key, f, fp in targets:  # a sample can fall a little short of its expected size
        if n_imp < MIN_ERRORS / f:
            raise _refusal(f"FMR {key}" if fp is None else f"FPIR {_rate_key(fp)}", f, n_imp, people, n)
    desc_idx = np.argsort(-top_s, kind="stable")
    top_s, top_a, top_b = top_s[desc_idx].astype(np.float64), top_a[desc_idx], top_b[desc_idx]

    # -- point estimates -------------------------------------------------------------------------
    estimates = [_threshold_at(top_s, n_imp, f) for _, f, _ in targets]
    tars = [float(np.mean(gen >= t)) if gen.size else None for t, _ in estimates]

    # -- bootstrap over people -------------------------------------------------------------------
    boot_t = np.full((n_boot, len(targets)), np.nan)
    boot_tar = np.full((n_boot, len(targets)), np.nan)
    brng = np.random.default_rng([seed, 1])
    scale = n_imp / n_imp_total
    for b in range(n_boot):
        w = brng.multinomial(people, np.full(people, 1.0 / people)).astype(np.float64)
        wn = w * sizes
        total = (wn.sum() ** 2 - (wn**2).sum()) / 2.0 * scale
        if total <= 0:
            continue
        cum = np.cumsum(w[top_a] * w[top_b])
        gw = w[gen_code] if gen.size else None
        for j, (_, f, _) in enumerate(targets):
            i = int(np.searchsorted(cum, f * total, side="right"))
            if i < top_s.size:
                t = float(np.nextafter(top_s[i], np.inf))
            elif top_s.size == n_imp:
                t = -math.inf
            else:
                continue  # beyond the kept top: leave the replicate out (rare: 10x the largest rate is kept)
            boot_t[b, j] = t
            if gw is not None and gw.sum() > 0:
                boot_tar[b, j] = float((gw * (gen >= t)).sum() / gw.sum())

    points = []
    for j, (key, f, fp) in enumerate(targets):
        t, k = estimates[j]
        points.append(
            OperatingPoint(
                key=key,
                fmr=f,
                threshold=t,
                interval=_interval(boot_t[:, j], confidence) if n_boot else None,
                impostors_accepted=k,
                tar=tars[j],
                tar_interval=_interval(boot_tar[:, j], confidence) if n_boot and gen.size else None,
                fpir=fp,
                gallery_size=None if fp is None else int(gallery_size),  # type: ignore[arg-type]
            )
        )

    notes: list[str] = []
    best = None
    if gen.size:
        imp_sorted = np.sort(imp)
        cand = np.unique(gen)
        far = 1.0 - np.searchsorted(imp_sorted, cand, side="left") / n_imp
        tar_c = 1.0 - np.searchsorted(np.sort(gen), cand, side="left") / gen.size
        best = float(cand[int(np.argmax(tar_c - far))])
    else:
        notes.append(
            "no person has two photos: there are no genuine pairs, so no TAR / FNMR and no best_accuracy threshold"
        )
    if rate < 1.0:
        notes.append(
            f"impostor pairs sampled: {n_imp:,} of {n_imp_total:,} (seeded uniform sample, seed {seed})"
        )
    tail = None
    try:
        tail = ImpostorTail.from_scores(model, imp, source=source or "faceprint calibrate")
    except UnsupportedOperatingPointError as err:
        notes.append(f"no impostor tail for fpir= ({err})")

    counts = CalibrationCounts(
        people=people,
        images=n,
        people_with_genuine_pairs=int((sizes >= 2).sum()),
        genuine_pairs=n_gen,
        impostor_pairs=n_imp,
        impostor_pairs_total=n_imp_total,
        impostor_pairs_sampled=rate < 1.0,
    )
    return Calibration(
        model=model,
        fingerprint=fingerprint,
        points=tuple(points),
        counts=counts,
        impostor_tail=tail,
        best_accuracy=best,
        n_boot=n_boot,
        seed=seed,
        confidence=confidence,
        source=source,
        date=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        notes=tuple(notes),
    )


# -- which calibration is in force --------------------------------------------------------------


@dataclass(frozen=True)
class CalibrationSource:
    """Which calibration an embedder's thresholds come from.

    ``kind`` is ``"file"`` (the ``FACEPRINT_CALIBRATION`` file, at ``path``), ``"shipped"`` (the
    LFW calibration in the package) or ``"none"``. ``ignored`` says why a file that names this model
    was not applied (a fingerprint mismatch), else None.
    """

    kind: Literal["file", "shipped", "none"]
    model: str
    source: str
    path: Path | None = None
    date: str | None = None
    people: int | None = None
    ignored: str | None = None

    @property
    def label(self) -> str:
        """One line: ``"shipped (LFW view 1 DevTrain)"`` or ``"FILE (2026-12-02, 40 people)"``."""
        if self.kind == "file":
            return f"{self.path} ({(self.date or '?')[:10]}, {self.people:,} people)"
        text = "shipped (LFW view 1 DevTrain)" if self.kind == "shipped" else "none"
        return text + (f"; {self.ignored}" if self.ignored else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "source": self.source,
            "path": None if self.path is None else str(self.path),
            "date": self.date,
            "people": self.people,
            "ignored": self.ignored,
        }


def calibration_in_force(model: str, fingerprint: str, settings: Settings | None = None) -> CalibrationSource:
    """Where the thresholds of the embedder ``model`` / ``fingerprint`` come from now.

    Raises :class:`InvalidFileError` when ``FACEPRINT_CALIBRATION`` names a missing or broken file.

    Examples
    --------
    >>> from faceprint.embedding import get_embedder
    >>> emb = get_embedder("sface")
    >>> calibration_in_force(emb.key, emb.fingerprint, Settings(calibration=None)).kind
    'shipped'
    """
    found = user_calibration(settings)
    ignored = None
    if found is not None:
        path, raw = found
        entry = raw["models"].get(model)
        if entry is not None and user_model_entry(model, fingerprint, settings) is not None:
            cal = Calibration.from_dict(model, entry, path=path)
            return CalibrationSource(
                kind="file",
                model=model,
                source=cal.source or str(path),
                path=path,
                date=cal.date or None,
                people=cal.counts.people,
            )
        if entry is not None:
            ignored = f"{path} not applied: measured with {entry['fingerprint']}, this embedder is {fingerprint}"
    shipped = load_calibration()
    if shipped.get("models", {}).get(model, {}).get("thresholds"):
        return CalibrationSource(
            kind="shipped",
            model=model,
            source="LFW view 1 pairsDevTrain (1,100 genuine / 1,100 impostor pairs), shipped calibration.json",
            date=shipped.get("date"),
            ignored=ignored,
        )
    return CalibrationSource(kind="none", model=model, source="", ignored=ignored)


_ROLES = {"face_landmarker": "liveness landmarks"}


def describe_models(settings: Settings | None = None) -> list[dict[str, Any]]:
    """Every model faceprint knows: package, pin, installed version, sha256, weight licence, calibrated
    thresholds and the calibration in force (plain and ``+flip``); what ``faceprint models --json``
    prints and ``GET /v1/models`` answers. Nothing is downloaded; embedders are built (cached) to read
    their thresholds."""
    from .embedding import EMBEDDERS, get_embedder
    from .weights import WEIGHT_FILES, installed_version, is_installed

    rows: list[dict[str, Any]] = []
    for key, wf in WEIGHT_FILES.items():
        thresholds: dict[str, float] = {}
        calibration: dict[str, Any] | None = None
        calibration_flip: dict[str, Any] | None = None
        if key in EMBEDDERS:
            emb, flipped = get_embedder(key), get_embedder(key, flip=True)
            thresholds = dict(emb.thresholds)
            calibration = calibration_in_force(emb.key, emb.fingerprint, settings).to_dict()
            calibration_flip = calibration_in_force(flipped.key, flipped.fingerprint, settings).to_dict()
        rows.append({
            "model": key,
            "role": "embedder" if key in EMBEDDERS else _ROLES.get(key, "detector"),
            "description": wf.description,
            "package": wf.distribution,
            "pinned": wf.version,
            "installed": installed_version(key) if is_installed(key) else None,
            "sha256": wf.sha256,
            "licence": wf.licence,
            "source": wf.source,
            "thresholds": thresholds,
            "install": wf.install_hint,
            "calibration": calibration,
            "calibration_flip": calibration_flip,
        })
    return rows
