"""Open-set thresholds: the score a 1:N search must reach so that at most a fraction FPIR of strangers get a name.

A 1:1 threshold names a false-match rate (FMR): the chance that *one* comparison of two different
people scores above it. A search compares the probe with every template of the gallery, so a
stranger is named when *any* of the N templates scores above the threshold. With N independent
templates the false-positive identification rate is

    FPIR(t) ~ 1 - (1 - FMR(t)) ** N

and the open-set threshold for a target FPIR is the impostor score quantile at the per-comparison
rate ``FMR = 1 - (1 - FPIR) ** (1 / N)`` (about ``FPIR / N``): it rises as the gallery grows.

The impostor quantiles come from an :class:`ImpostorTail` per model key, stored in
``calibration.json`` (``models[key]["impostor_tail"]``) by ``bench/open_set.py --write-calibration``:
empirical upper-tail quantiles of the cosine similarity between different people over millions of
LFW impostor pairs (the people of the calibration half, :func:`is_tail_calibration_identity`), down
to the smallest FMR the pair count supports, and below it a generalized-Pareto fit to the top scores,
marked as extrapolated, for at most two more decades. A target beyond that is refused with
:class:`~faceprint.errors.UnsupportedOperatingPointError`.

The independence assumption is conservative where a subject has several (correlated) templates;
the tail is LFW's, so a population whose impostors score higher (see the UTKFace numbers in the
README) gets more false positives than predicted.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .calibration_file import user_model_entry
from .embedding import EMBEDDERS, get_embedder, load_calibration
from .errors import UnsupportedOperatingPointError

__all__ = [
    "operating_point_key",
    "ImpostorTail",
    "TailExtrapolation",
    "fmr_for_fpir",
    "accepted_impostors",
    "impostor_tail",
    "is_tail_calibration_identity",
    "threshold_for_fmr",
    "threshold_for_fpir",
    "UnsupportedOperatingPointError",
]

TAIL_FMRS: tuple[float, ...] = tuple(float(10 ** (-k / 4)) for k in range(4, 41))
"""The FMR grid of a tail table: 1e-1 down to 1e-10, four steps a decade (cut at what the data support)."""


def operating_point_key(value: str | None) -> str | None:
    """An FMR operating point in the calibration's spelling: ``0.001``, ``1E-3``, ``1e-03`` -> ``1e-3``.

    Powers of ten become ``1e-k``; anything else (``best_accuracy``, ``5e-4``, a typo) is left
    as given, for the threshold look-up to accept or to refuse with the list of operating points.

    Examples
    --------
    >>> [operating_point_key(v) for v in ("0.001", "1E-3", "1e-03", ".01", "best_accuracy", "5e-4")]
    ['1e-3', '1e-3', '1e-3', '1e-2', 'best_accuracy', '5e-4']
    """
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return value
    if not math.isfinite(number) or not 0.0 < number < 1.0:
        return value
    k = round(-math.log10(number))
    return f"1e-{k}" if math.isclose(number, 10.0**-k, rel_tol=1e-9) else value


def is_tail_calibration_identity(name: str) -> bool:
    """Whether the LFW person ``name`` belongs to the half the shipped impostor tails were estimated from.

    The split is fixed by a hash of the name (``sha256(name)[0]`` even), so it carries no order of
    the alphabet; evaluate open-set behaviour on the other half.

    Examples
    --------
    >>> [is_tail_calibration_identity(n) for n in ("George_W_Bush", "Tony_Blair")]
    [True, False]
    """
    return hashlib.sha256(name.encode("utf-8")).digest()[0] % 2 == 0


def accepted_impostors(n: int, fmr: float) -> int:
    """The most impostors of ``n`` a threshold at ``fmr`` may accept: the largest ``k`` with ``k / n <= fmr``.

    Computed the way a reader checks it, as a float division (``0.29 * 100`` is 28.999..., yet 29 of 100
    is allowed). The one rule of every FMR threshold in faceprint (evaluation, calibration, normalisers).

    Examples
    --------
    >>> accepted_impostors(100, 0.29), accepted_impostors(1100, 1e-3), accepted_impostors(10, 1.0)
    (29, 1, 10)
    """
    k = int(math.floor(fmr * n))
    while k < n and (k + 1) / n <= fmr:
        k += 1
    while k > 0 and k / n > fmr:
        k -= 1
    return k


def fmr_for_fpir(fpir: float, n_templates: int) -> float:
    """Per-comparison FMR at which ``n_templates`` independent comparisons give ``fpir``.

    ``1 - (1 - fpir) ** (1 / n_templates)``, computed without cancellation.

    Examples
    --------
    >>> fmr_for_fpir(0.01, 1)
    0.01
    >>> round(fmr_for_fpir(0.01, 1000) * 1e6, 3)  # about fpir / N
    10.05
    """
    _check_fpir(fpir)
    if isinstance(n_templates, bool) or not isinstance(n_templates, (int, np.integer)) or n_templates < 1:
        raise UnsupportedOperatingPointError(f"n_templates must be an integer >= 1, got {n_templates!r}")
    if n_templates == 1:
        return float(fpir)
    return float(-math.expm1(math.log1p(-fpir) / int(n_templates)))


def _check_fpir(fpir: float) -> None:
    if isinstance(fpir, bool) or not isinstance(fpir, (int, float, np.floating)) or not 0.0 < float(fpir) < 1.0:
        raise UnsupportedOperatingPointError(f"fpir must be a number strictly between 0 and 1, got {fpir!r}")


@dataclass(frozen=True)
class TailExtrapolation:
    """A generalized-Pareto fit to the impostor scores above ``threshold`` (exceeded at rate ``fmr``).

    Below ``fmr`` the score at rate ``f`` is ``threshold + scale / shape * ((f / fmr) ** -shape - 1)``
    (``threshold - scale * log(f / fmr)`` when ``shape`` is 0). Trusted down to ``fmr_min``.
    """

    threshold: float
    fmr: float
    shape: float
    scale: float
    n_exceedances: int
    fmr_min: float

    def score_at(self, fmr: float) -> float:
        r = fmr / self.fmr
        if abs(self.shape) < 1e-9:
            return self.threshold - self.scale * math.log(r)
        return self.threshold + self.scale / self.shape * (r ** (-self.shape) - 1.0)


@dataclass(frozen=True)
class ImpostorTail:
    """Upper-tail quantiles of one model's impostor cosine similarities.

    ``fmrs`` (descending) and ``thresholds`` (ascending) are parallel: a comparison of two different
    people scores ``>= thresholds[i]`` at rate ``<= fmrs[i]`` on the calibration pairs. Between grid
    points the score is interpolated linearly in ``log10(FMR)``; below ``fmrs[-1]`` (the smallest
    rate the pair count measures) the :class:`TailExtrapolation` takes over, down to its ``fmr_min``.
    """

    model: str
    fmrs: tuple[float, ...]
    thresholds: tuple[float, ...]
    n_pairs: int
    extrapolation: TailExtrapolation | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if len(self.fmrs) < 2 or len(self.fmrs) != len(self.thresholds):
            raise UnsupportedOperatingPointError("an impostor tail needs >= 2 (fmr, threshold) points of equal count")
        if any(a <= b for a, b in zip(self.fmrs, self.fmrs[1:])) or any(
            a > b for a, b in zip(self.thresholds, self.thresholds[1:])
        ):
            raise UnsupportedOperatingPointError("impostor tail: fmrs must decrease and thresholds not decrease")

    @property
    def fmr_max(self) -> float:
        return self.fmrs[0]

    @property
    def fmr_min_measured(self) -> float:
        return self.fmrs[-1]

    @property
    def fmr_min(self) -> float:
        """The smallest FMR this tail answers (extrapolated when below :attr:`fmr_min_measured`)."""
        ext = self.extrapolation
        return min(ext.fmr_min, self.fmr_min_measured) if ext is not None else self.fmr_min_measured

    def is_extrapolated(self, fmr: float) -> bool:
        return fmr < self.fmr_min_measured

    def threshold(self, fmr: float) -> float:
        """The similarity threshold at which a comparison of two different people matches at rate ``fmr``."""
        if not 0.0 < fmr <= self.fmr_max:
            raise UnsupportedOperatingPointError(
                f"model {self.model!r}: FMR {fmr:.3g} is outside the impostor tail table "
                f"({self.fmr_min:.3g} .. {self.fmr_max:.3g})"
            )
        if fmr >= self.fmr_min_measured:
            x = np.log10(np.asarray(self.fmrs[::-1]))
            return float(np.interp(math.log10(fmr), x, np.asarray(self.thresholds[::-1])))
        ext = self.extrapolation
        if ext is None or fmr < ext.fmr_min:
            supported = f"{self.fmr_min:.3g}" + (" (extrapolated)" if ext is not None else " (measured)")
            raise UnsupportedOperatingPointError(
                f"model {self.model!r}: FMR {fmr:.3g} per comparison lies beyond what its impostor tail supports "
                f"(smallest: {supported}, from {self.n_pairs:,} impostor pairs); use a smaller gallery, a larger "
                "fpir, or calibrate on more impostor pairs"
            )
        return max(ext.score_at(fmr), self.thresholds[-1])

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_pairs": self.n_pairs,
            "source": self.source,
            "fmr": [float(f"{f:.6g}") for f in self.fmrs],
            "threshold": [round(t, 6) for t in self.thresholds],
            "fmr_min_measured": float(f"{self.fmr_min_measured:.6g}"),
            "extrapolation": None
            if self.extrapolation is None
            else {
                "method": "generalized Pareto fit to the scores above threshold (extrapolated, not measured)",
                "threshold": round(self.extrapolation.threshold, 6),
                "fmr": float(f"{self.extrapolation.fmr:.6g}"),
                "shape": round(self.extrapolation.shape, 6),
                "scale": round(self.extrapolation.scale, 8),
                "n_exceedances": self.extrapolation.n_exceedances,
                "fmr_min": float(f"{self.extrapolation.fmr_min:.6g}"),
            },
        }

    @classmethod
    def from_dict(cls, model: str, raw: Mapping[str, Any]) -> ImpostorTail:
        ext = raw.get("extrapolation")
        return cls(
            model=model,
            fmrs=tuple(float(f) for f in raw["fmr"]),
            thresholds=tuple(float(t) for t in raw["threshold"]),
            n_pairs=int(raw["n_pairs"]),
            source=str(raw.get("source", "")),
            extrapolation=None
            if not ext
            else TailExtrapolation(
                threshold=float(ext["threshold"]),
                fmr=float(ext["fmr"]),
                shape=float(ext["shape"]),
                scale=float(ext["scale"]),
                n_exceedances=int(ext["n_exceedances"]),
                fmr_min=float(ext["fmr_min"]),
            ),
        )

    @classmethod
    def from_scores(
        cls,
        model: str,
        impostor_scores: npt.ArrayLike,
        *,
        min_exceedances: int = 10,
        fit_exceedances: int = 2000,
        extrapolate_decades: float = 2.0,
        source: str = "",
        fmrs: Sequence[float] = TAIL_FMRS,
    ) -> ImpostorTail:
        """Estimate a tail from impostor similarities (needs SciPy for the Pareto fit).

        Grid points need ``>= min_exceedances`` impostors above them; the generalized-Pareto fit
        uses the top ``fit_exceedances`` scores and is trusted ``extrapolate_decades`` below the last
        measured point.
        """
        s = np.sort(np.asarray(impostor_scores, np.float64).ravel())[::-1]
        s = s[np.isfinite(s)]
        n = int(s.size)
        levels = [f for f in fmrs if f * n >= min_exceedances]
        if len(levels) < 2:
            raise UnsupportedOperatingPointError(
                f"{n} impostor scores support fewer than two tail points (need {min_exceedances}/FMR pairs)"
            )
        # smallest t with #(s >= t) <= f n: just above the (floor(f n) + 1)-th largest score
        thr = [float(np.nextafter(s[int(math.floor(f * n))], np.inf)) for f in levels]
        thr = list(np.maximum.accumulate(thr))
        ext = None
        k = min(fit_exceedances, n // 10)
        if k >= 50:
            from scipy.stats import genpareto

            u = float(s[k])
            shape, _, scale = genpareto.fit(s[:k] - u, floc=0.0)
            ext = TailExtrapolation(
                threshold=u,
                fmr=k / n,
                shape=float(shape),
                scale=float(scale),
                n_exceedances=k,
                fmr_min=levels[-1] / 10**extrapolate_decades,
            )
        return cls(
            model=model, fmrs=tuple(levels), thresholds=tuple(thr), n_pairs=n, extrapolation=ext, source=source
        )


def _installed_fingerprint(model_key: str) -> str | None:
    """The fingerprint of the registered single-network embedder ``model_key`` (``"sface+flip"``), else None."""
    base, flip = (model_key[: -len("+flip")], True) if model_key.endswith("+flip") else (model_key, False)
    if base not in EMBEDDERS or base == "fusion":
        return None
    return get_embedder(base, flip=flip).fingerprint


def impostor_tail(model_key: str, fingerprint: str | None = None) -> ImpostorTail:
    """The impostor tail of ``model_key`` (``"sface"``, ``"sface+flip"``, ...): the shipped one, or the
    ``FACEPRINT_CALIBRATION`` file's when that file holds this model measured with ``fingerprint``.

    ``fingerprint`` is the embedder's (``Embedder.fingerprint``); None means the installed registered
    model of that key (a fusion or a trained model must pass its own, else the file is not applied).
    """
    user = user_model_entry(model_key, fingerprint or _installed_fingerprint(model_key))
    if user is not None:
        if not user.get("impostor_tail"):
            raise UnsupportedOperatingPointError(
                f"the calibration file in force (FACEPRINT_CALIBRATION) has no impostor tail for model "
                f"{model_key!r} (too few impostor pairs), so no FPIR threshold; calibrate on more people"
            )
        return ImpostorTail.from_dict(model_key, user["impostor_tail"])
    models = load_calibration().get("models", {})
    raw = models.get(model_key, {}).get("impostor_tail")
    if not raw:
        have = sorted(k for k, v in models.items() if v.get("impostor_tail"))
        raise UnsupportedOperatingPointError(
            f"no impostor tail for model {model_key!r}, so no FPIR threshold; models with one: "
            f"{', '.join(have) or 'none'} (bench/open_set.py --write-calibration)"
        )
    return ImpostorTail.from_dict(model_key, raw)


def threshold_for_fmr(model_key: str, fmr: float, *, fingerprint: str | None = None) -> float:
    """Similarity threshold of ``model_key`` at per-comparison ``fmr``, from its impostor tail."""
    return impostor_tail(model_key, fingerprint).threshold(fmr)


def threshold_for_fpir(
    model_key: str,
    fpir: float,
    n_templates: int,
    *,
    tail: ImpostorTail | None = None,
    fingerprint: str | None = None,
) -> float:
    """The open-set threshold of ``model_key`` for a target FPIR against ``n_templates`` templates.

    Parameters
    ----------
    model_key
        The embedder's key (``Embedder.key``: ``"sface"``, ``"sface+flip"``).
    fpir
        Target false-positive identification rate: the fraction of searches by people not in the
        gallery that may return a name, strictly between 0 and 1.
    n_templates
        Gallery size in templates at search time (>= 1).
    tail
        An impostor tail to use instead of the one of ``model_key``.
    fingerprint
        The embedder's fingerprint, so that a ``FACEPRINT_CALIBRATION`` file's tail applies only to
        the embedder it was measured with (see :func:`impostor_tail`).

    Raises
    ------
    UnsupportedOperatingPointError
        ``fpir`` outside (0, 1), ``n_templates < 1``, no tail for the model, or a per-comparison FMR
        beyond what the tail (with its extrapolation) supports. Also a ``ValueError``.

    Examples
    --------
    >>> t100, t10k = threshold_for_fpir("sface", 0.01, 100), threshold_for_fpir("sface", 0.01, 10_000)
    >>> t100 < t10k
    True
    """
    per_comparison = fmr_for_fpir(fpir, n_templates)
    return (tail or impostor_tail(model_key, fingerprint)).threshold(per_comparison)
