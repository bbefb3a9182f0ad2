"""Demographic bias: error rates per group at one global operating threshold.

Pure metric code on similarity scores and embeddings (numpy); nothing here loads a model.

* :func:`group_error_rates`: FMR and FNMR per group of verification pairs, with percentile
  bootstrap confidence intervals; :func:`worst_best_ratio` and :func:`bias_sentences` summarise
  the disparity between groups, and :func:`disparity_claim` (on counts: :func:`ratio_claim`) says
  whether the counts support a claim about it (:data:`MIN_ERRORS_FOR_CLAIM`, exact interval of
  the ratio).
* identity-free data sets such as UTKFace: :func:`utkface_impostor_fmr` (every cross pair inside
  a group is an impostor pair) and :func:`group_proportions` (e.g. detection failure rates per
  group); :func:`cross_pair_threshold` and :func:`cross_pair_matches` set and check a threshold on
  every cross pair of a set of images.

Pairs are streamed: the functions on embeddings compute the similarity matrix a block of rows at a
time (:data:`BLOCK_ELEMENTS` scores at once) and keep counters, never the ``n x n`` matrix or the
list of ``n (n - 1) / 2`` pair scores, so memory grows with the number of images, not of pairs.

The groups themselves come from the data set parsers in :mod:`faceprint.datasets`
(:func:`~faceprint.datasets.lfw.pair_gender_groups`, :func:`~faceprint.datasets.utkface.utkface_groups`).

Conventions follow :mod:`faceprint.evaluation`: a pair is a match when ``score >= threshold``;
a NaN score (failure to acquire) is a non-match.

Bootstrap: resampling the ``n`` pairs of a group with replacement and counting errors gives an
error count distributed exactly as ``Binomial(n, k / n)``, so the bootstrap draws that count
directly (fast for millions of pairs). Pairs that share an image or a person are *not*
independent, so these intervals are optimistic (too narrow). A group with no error gets the
degenerate interval ``[0, 0]``; read it as "fewer than about 3 / n" (rule of three).

Claims: a worst / best ratio is called a material disparity only when the counts support it
(:func:`ratio_claim`): both groups have at least :data:`MIN_ERRORS_FOR_CLAIM` errors and the exact
interval of the ratio lies wholly above the limit (2). Otherwise the sentence says plainly that the
counts cannot support a claim.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from ..errors import InvalidArgumentError

__all__ = [
    "Metric",
    "Claim",
    "MIN_ERRORS_FOR_CLAIM",
    "BLOCK_ELEMENTS",
    "GroupRate",
    "GroupProportion",
    "RatioClaim",
    "group_error_rates",
    "group_proportions",
    "worst_best_ratio",
    "ratio_claim",
    "disparity_claim",
    "bias_sentences",
    "utkface_impostor_fmr",
    "cross_pair_threshold",
    "cross_pair_matches",
]

logger = logging.getLogger(__name__)

Metric = Literal["fmr", "fnmr", "rate"]
Claim = Literal["disparity", "no disparity", "inconclusive"]

MIN_ERRORS_FOR_CLAIM = 5
"""Errors each of the worst and best groups needs before a worst / best ratio can support a claim.

With fewer errors (false matches, false non-matches, detection failures) a group's rate rests on a
handful of events: one more or one fewer moves the ratio by 20 % or more, and pairs sharing images
make even that spread optimistic. :func:`ratio_claim` also needs the exact interval of the ratio to
exclude the limit."""

BLOCK_ELEMENTS = 1 << 19
"""Similarity scores computed at once (a block of rows of the similarity matrix): 4 MB of float64.

The counts do not depend on it; a score may differ in its last bit from a full-matrix product (the
BLAS kernel of a block), which moves a count only for a score within that bit of the threshold."""


# --------------------------------------------------------------------------------------------
# Result types
# --------------------------------------------------------------------------------------------


def _r(x: float) -> float | None:
    return None if math.isnan(x) else round(float(x), 6)


@dataclass(frozen=True)
class GroupRate:
    """FMR and FNMR of one group at one threshold.

    Attributes
    ----------
    group : str
    threshold : float
    n_genuine, n_impostor : int
        Pairs of each kind in the group.
    false_non_matches, false_matches : int
        Genuine pairs with ``score < threshold``; impostor pairs with ``score >= threshold``.
    fnmr, fmr : float
        The rates (NaN when the group has no pair of that kind).
    fnmr_ci, fmr_ci : tuple of float
        Percentile bootstrap interval at ``ci`` (NaN, NaN when undefined).
    ci : float
        The confidence level.
    n_impostor_total : int, optional
        When ``n_impostor`` is a sample: the impostor pairs the group has (``to_dict`` then says
        ``"sampled": true``). None when every impostor pair was counted.
    """

    group: str
    threshold: float
    n_genuine: int
    n_impostor: int
    false_non_matches: int
    false_matches: int
    fnmr: float
    fmr: float
    fnmr_ci: tuple[float, float]
    fmr_ci: tuple[float, float]
    ci: float
    n_impostor_total: int | None = None

    @property
    def sampled(self) -> bool:
        """True when ``n_impostor`` is a sample of the group's impostor pairs."""
        return self.n_impostor_total is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON form; ``n_impostor_total`` is the group's impostor pairs (``n_impostor`` unless ``sampled``)."""
        return {
            "group": self.group,
            "threshold": round(self.threshold, 6),
            "n_genuine": self.n_genuine,
            "n_impostor": self.n_impostor,
            "false_non_matches": self.false_non_matches,
            "false_matches": self.false_matches,
            "fnmr": _r(self.fnmr),
            "fnmr_ci": [_r(v) for v in self.fnmr_ci],
            "fmr": _r(self.fmr),
            "fmr_ci": [_r(v) for v in self.fmr_ci],
            "ci": self.ci,
            "n_impostor_total": self.n_impostor if self.n_impostor_total is None else self.n_impostor_total,
            "sampled": self.sampled,
        }


@dataclass(frozen=True)
class GroupProportion:
    """A proportion per group, e.g. the detection failure rate: ``count / n`` with a bootstrap CI."""

    group: str
    n: int
    count: int
    rate: float
    rate_ci: tuple[float, float]
    ci: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "n": self.n,
            "count": self.count,
            "rate": _r(self.rate),
            "rate_ci": [_r(v) for v in self.rate_ci],
            "ci": self.ci,
        }


# --------------------------------------------------------------------------------------------
# Rates and bootstrap
# --------------------------------------------------------------------------------------------


def _check_ci(ci: float, n_boot: int) -> None:
    if not 0.0 < ci < 1.0:
        raise InvalidArgumentError(f"ci must lie in (0, 1), got {ci}")
    if n_boot < 1:
        raise InvalidArgumentError(f"n_boot must be >= 1, got {n_boot}")


def _rate_ci(count: int, n: int, rng: np.random.Generator, n_boot: int, ci: float) -> tuple[float, float, float]:
    """(rate, low, high); the bootstrap of resampled pairs drawn as Binomial(n, count / n)."""
    if n == 0:
        return math.nan, math.nan, math.nan
    rate = count / n
    boots = rng.binomial(n, rate, size=n_boot) / n
    alpha = (1.0 - ci) / 2.0
    low, high = np.quantile(boots, [alpha, 1.0 - alpha])
    return rate, float(low), float(high)


def group_error_rates(
    scores: npt.ArrayLike,
    labels: npt.ArrayLike,
    groups: Sequence[str] | npt.ArrayLike,
    threshold: float,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
) -> list[GroupRate]:
    """FMR and FNMR per group at one (global) threshold, with percentile bootstrap CIs.

    Parameters
    ----------
    scores : array_like, shape (n,)
        Similarity of each pair; NaN (failure to acquire) is a non-match.
    labels : array_like of bool, shape (n,)
        True for a genuine pair.
    groups : sequence of str, shape (n,)
        The group of each pair.
    threshold : float
        A pair matches when ``score >= threshold``.
    n_boot : int, default 1000
        Bootstrap resamples of the pairs within each group (see the module docstring: pairs that
        share images are not independent, so the intervals are optimistic).
    seed : int, default 0
    ci : float, default 0.95

    Returns
    -------
    list of GroupRate
        One per group, sorted by group name.

    Examples
    --------
    >>> rates = group_error_rates([0.9, 0.2, 0.6, 0.1], [1, 1, 0, 0], ["a", "a", "a", "b"], 0.5, n_boot=10)
    >>> [(r.group, r.fnmr, r.fmr) for r in rates]
    [('a', 0.5, 1.0), ('b', nan, 0.0)]
    """
    _check_ci(ci, n_boot)
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    g = np.asarray(groups).astype(str)
    if s.ndim != 1 or s.shape != y.shape or s.shape != g.shape:
        raise InvalidArgumentError(
            f"expected 1-D scores, labels and groups of one length, got {s.shape}, {y.shape}, {g.shape}"
        )
    match = np.where(np.isnan(s), False, s >= threshold)
    rng = np.random.default_rng(seed)
    out: list[GroupRate] = []
    for name in sorted(set(g.tolist())):
        in_group = g == name
        gen = in_group & y
        imp = in_group & ~y
        counts = int(gen.sum()), int(imp.sum()), int((gen & ~match).sum()), int((imp & match).sum())
        out.append(_group_rate(name, threshold, *counts, rng=rng, n_boot=n_boot, ci=ci))
    return out


def _group_rate(
    name: str,
    threshold: float,
    n_gen: int,
    n_imp: int,
    fnm: int,
    fm: int,
    *,
    rng: np.random.Generator,
    n_boot: int,
    ci: float,
    n_impostor_total: int | None = None,
) -> GroupRate:
    """A GroupRate from counts; the bootstrap draws FNMR then FMR from ``rng`` (in that order)."""
    fnmr, fnmr_lo, fnmr_hi = _rate_ci(fnm, n_gen, rng, n_boot, ci)
    fmr, fmr_lo, fmr_hi = _rate_ci(fm, n_imp, rng, n_boot, ci)
    return GroupRate(
        group=name,
        threshold=float(threshold),
        n_genuine=n_gen,
        n_impostor=n_imp,
        false_non_matches=fnm,
        false_matches=fm,
        fnmr=fnmr,
        fmr=fmr,
        fnmr_ci=(fnmr_lo, fnmr_hi),
        fmr_ci=(fmr_lo, fmr_hi),
        ci=ci,
        n_impostor_total=n_impostor_total,
    )


def group_proportions(
    flags: npt.ArrayLike,
    groups: Sequence[str] | npt.ArrayLike,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
) -> list[GroupProportion]:
    """Share of True ``flags`` per group (e.g. detection failures), with a percentile bootstrap CI.

    Examples
    --------
    >>> [(p.group, p.rate) for p in group_proportions([True, False, False, False], ["a", "a", "b", "b"])]
    [('a', 0.5), ('b', 0.0)]
    """
    _check_ci(ci, n_boot)
    f = np.asarray(flags).astype(bool)
    g = np.asarray(groups).astype(str)
    if f.ndim != 1 or f.shape != g.shape:
        raise InvalidArgumentError(f"expected 1-D flags and groups of one length, got {f.shape} and {g.shape}")
    rng = np.random.default_rng(seed)
    out = []
    for name in sorted(set(g.tolist())):
        sel = f[g == name]
        count, n = int(sel.sum()), int(sel.size)
        rate, lo, hi = _rate_ci(count, n, rng, n_boot, ci)
        out.append(GroupProportion(group=name, n=n, count=count, rate=rate, rate_ci=(lo, hi), ci=ci))
    return out


# --------------------------------------------------------------------------------------------
# Disparity
# --------------------------------------------------------------------------------------------


def _metric_of(rate: GroupRate | GroupProportion, metric: Metric) -> tuple[float, int]:
    if isinstance(rate, GroupProportion):
        if metric != "rate":
            raise InvalidArgumentError(f"a GroupProportion has only metric 'rate', got {metric!r}")
        return rate.rate, rate.n
    if metric == "fmr":
        return rate.fmr, rate.n_impostor
    if metric == "fnmr":
        return rate.fnmr, rate.n_genuine
    raise InvalidArgumentError(f"metric must be 'fmr' or 'fnmr' for a GroupRate, got {metric!r}")


@dataclass(frozen=True)
class _Ratio:
    ratio: float
    worst: GroupRate | GroupProportion
    best: GroupRate | GroupProportion
    floored: bool


def _ratio(
    rates: Sequence[GroupRate | GroupProportion], metric: Metric, exclude: Collection[str], floor: bool
) -> _Ratio | None:
    usable = [r for r in rates if r.group not in exclude and _metric_of(r, metric)[1] > 0]
    if len(usable) < 2:
        return None
    worst = max(usable, key=lambda r: (_metric_of(r, metric)[0], -_metric_of(r, metric)[1]))
    best = min(usable, key=lambda r: (_metric_of(r, metric)[0], -_metric_of(r, metric)[1]))
    w, _ = _metric_of(worst, metric)
    b, n_best = _metric_of(best, metric)
    if w == 0.0:
        return _Ratio(math.nan, worst, best, False)
    if b > 0.0:
        return _Ratio(w / b, worst, best, False)
    if floor:
        floored = w / (1.0 / n_best)
        # A floor above the worst rate means the zero-error group has too few pairs to tell.
        return _Ratio(floored if floored > 1.0 else math.nan, worst, best, True)
    return _Ratio(math.inf, worst, best, False)


def worst_best_ratio(
    rates: Sequence[GroupRate | GroupProportion],
    metric: Metric = "fmr",
    *,
    exclude: Collection[str] = (),
    floor: bool = True,
) -> tuple[float, GroupRate | GroupProportion, GroupRate | GroupProportion]:
    """Ratio of the worst group's error rate to the best group's.

    Groups in ``exclude`` and groups without a pair of the metric's kind are ignored.
    When the best group has no error at all the ratio is undefined: with ``floor=True`` (default)
    its rate is floored at ``1 / n`` (one error in its ``n`` pairs), which gives a *lower bound*
    on the ratio; with ``floor=False`` the ratio is ``inf``. :func:`bias_sentences` says when the
    floor was used. The ratio is NaN when no group has an error, and when the floor ``1 / n`` is
    not below the worst rate (the zero-error group has too few pairs to resolve the difference).

    Parameters
    ----------
    rates : sequence of GroupRate or GroupProportion
    metric : {"fmr", "fnmr", "rate"}
        ``rate`` for :class:`GroupProportion`.
    exclude : collection of str
        Groups to leave out (e.g. ``"mixed"`` or ``"unknown"``).
    floor : bool, default True

    Returns
    -------
    (ratio, worst, best)

    Raises
    ------
    ValueError
        With fewer than two usable groups.

    Examples
    --------
    >>> rates = group_error_rates([0.9, 0.9, 0.1, 0.9, 0.1, 0.1], [0] * 6, list("aabbbb"), 0.5, n_boot=10)
    >>> ratio, worst, best = worst_best_ratio(rates)
    >>> round(ratio, 2), worst.group, best.group
    (4.0, 'a', 'b')
    """
    got = _ratio(rates, metric, exclude, floor)
    if got is None:
        raise InvalidArgumentError(f"need at least two groups with {metric} data, got {[r.group for r in rates]}")
    return got.ratio, got.worst, got.best


def _errors_of(rate: GroupRate | GroupProportion, metric: Metric) -> int:
    if isinstance(rate, GroupProportion):
        return rate.count
    return rate.false_matches if metric == "fmr" else rate.false_non_matches


_NAMES = {"fmr": "FMR", "fnmr": "FNMR", "rate": "rate"}
_NOUNS: dict[str, tuple[str, str]] = {
    # metric -> (what an error is called, what n counts)
    "fmr": ("false matches", "impostor pairs"),
    "fnmr": ("false non-matches", "genuine pairs"),
    "rate": ("failures", "images"),
}


@dataclass(frozen=True)
class RatioClaim:
    """Whether the counts of a worst and a best group support a claim about their ratio.

    Attributes
    ----------
    ratio : float
        Worst rate / best rate; when the best group has no error its rate is floored at ``1 / n``
        (``floored``), a lower bound. NaN when the worst group has no error either.
    ci_low, ci_high : float
        Exact interval of the ratio at ``ci`` (``ci_high`` is ``inf`` when the best group has no
        error, ``ci_low`` is 0 when the worst has none).
    ci : float
    worst_errors, worst_n, best_errors, best_n : int
        The counts: errors and pairs (or images) of each group.
    floored : bool
    limit : float
        The disparity limit (2).
    min_errors : int
        Errors each group needs (:data:`MIN_ERRORS_FOR_CLAIM`).
    worst, best : str
        Group names ("" when built from bare counts).
    """

    ratio: float
    ci_low: float
    ci_high: float
    ci: float
    worst_errors: int
    worst_n: int
    best_errors: int
    best_n: int
    floored: bool
    limit: float
    min_errors: int
    worst: str = ""
    best: str = ""

    @property
    def enough_errors(self) -> bool:
        """Both groups have at least ``min_errors`` errors."""
        return min(self.worst_errors, self.best_errors) >= self.min_errors

    @property
    def claim(self) -> Claim:
        """``disparity`` (interval above the limit), ``no disparity`` (below it), else ``inconclusive``.

        Both need :attr:`enough_errors`.
        """
        if self.enough_errors and self.ci_low > self.limit:
            return "disparity"
        if self.enough_errors and self.ci_high < self.limit:
            return "no disparity"
        return "inconclusive"

    @property
    def supported(self) -> bool:
        """True when the counts support calling the ratio a material disparity."""
        return self.claim == "disparity"

    def reasons(self, events: str = "errors") -> list[str]:
        """Why the counts cannot support a disparity claim (empty when they can)."""
        out = []
        if not self.enough_errors:
            out.append(
                f"{self.worst_errors} and {self.best_errors} {events} (a claim needs at least "
                f"{self.min_errors} in each group)"
            )
        if not self.ci_low > self.limit:
            out.append(
                f"the {_pct(self.ci)} % interval of the ratio, {_fmt_ratio(self.ci_low)}-{_fmt_ratio(self.ci_high)}, "
                f"includes {self.limit:g}"
            )
        return out


def _pct(ci: float) -> str:
    return f"{100 * ci:g}"


def _fmt_ratio(x: float) -> str:
    return "inf" if math.isinf(x) else f"{x:.3g}"


def ratio_claim(
    worst_errors: int,
    worst_n: int,
    best_errors: int,
    best_n: int,
    *,
    limit: float = 2.0,
    min_errors: int = MIN_ERRORS_FOR_CLAIM,
    ci: float = 0.95,
) -> RatioClaim:
    """The worst / best rate ratio of two groups' counts, its exact interval and what it supports.

    The interval is the exact conditional one for a ratio of two rates: given the ``K`` errors of
    both groups, the worst group's share of them is binomial, and the Clopper-Pearson interval of
    that share ``p`` maps to the ratio ``p / (1 - p) * best_n / worst_n``. It is exact for rare
    errors (Poisson counts), conservative (too wide) for common ones, and like every interval here
    treats pairs as independent. A disparity is claimed only when both groups have at least
    ``min_errors`` errors and the interval lies wholly above ``limit``.

    Parameters
    ----------
    worst_errors, worst_n, best_errors, best_n : int
        Errors and pairs (or images) of the worst and the best group; ``n > 0``.
    limit : float, default 2
    min_errors : int, default :data:`MIN_ERRORS_FOR_CLAIM`
    ci : float, default 0.95

    Returns
    -------
    RatioClaim

    Examples
    --------
    >>> ratio_claim(50, 1000, 10, 1000).claim
    'disparity'
    >>> c = ratio_claim(5, 100, 1, 100)
    >>> round(c.ratio, 1), c.claim, c.ci_low < 2
    (5.0, 'inconclusive', True)
    """
    from scipy.stats import binomtest

    if not 0.0 < ci < 1.0:
        raise InvalidArgumentError(f"ci must lie in (0, 1), got {ci}")
    if worst_n < 1 or best_n < 1:
        raise InvalidArgumentError(f"both groups need pairs, got n = {worst_n} and {best_n}")
    if min(worst_errors, best_errors) < 0 or worst_errors > worst_n or best_errors > best_n:
        raise InvalidArgumentError(
            f"errors must lie in [0, n], got {worst_errors} of {worst_n} and {best_errors} of {best_n}"
        )
    w = worst_errors / worst_n
    floored = best_errors == 0
    if w == 0.0:
        ratio = math.nan
    else:
        ratio = w / (max(best_errors, 1) / best_n)
    total = worst_errors + best_errors
    if total == 0:
        low, high = 0.0, math.inf
    else:
        p = binomtest(worst_errors, total).proportion_ci(confidence_level=ci, method="exact")
        scale = best_n / worst_n
        low = 0.0 if p.low <= 0.0 else (math.inf if p.low >= 1.0 else p.low / (1.0 - p.low) * scale)
        high = math.inf if p.high >= 1.0 else p.high / (1.0 - p.high) * scale
    return RatioClaim(
        ratio=ratio,
        ci_low=float(low),
        ci_high=float(high),
        ci=ci,
        worst_errors=int(worst_errors),
        worst_n=int(worst_n),
        best_errors=int(best_errors),
        best_n=int(best_n),
        floored=floored,
        limit=float(limit),
        min_errors=int(min_errors),
    )


def disparity_claim(
    rates: Sequence[GroupRate | GroupProportion],
    metric: Metric = "fmr",
    *,
    exclude: Collection[str] = (),
    limit: float = 2.0,
    min_errors: int = MIN_ERRORS_FOR_CLAIM,
    ci: float = 0.95,
) -> RatioClaim | None:
    """:func:`ratio_claim` for the worst and best groups of :func:`worst_best_ratio`.

    None with fewer than two usable groups. ``ratio`` is :func:`worst_best_ratio`'s (NaN when no
    group has an error or the floor is not below the worst rate; the claim is then inconclusive).

    Examples
    --------
    >>> rates = group_error_rates([0.9] * 5 + [0.1] * 95 + [0.9] + [0.1] * 99, [0] * 200,
    ...                           ["a"] * 100 + ["b"] * 100, 0.5, n_boot=10)
    >>> c = disparity_claim(rates)
    >>> c.worst, c.best, round(c.ratio, 1), c.claim
    ('a', 'b', 5.0, 'inconclusive')
    """
    got = _ratio(rates, metric, exclude, True)
    if got is None:
        return None
    _, w_n = _metric_of(got.worst, metric)
    _, b_n = _metric_of(got.best, metric)
    claim = ratio_claim(
        _errors_of(got.worst, metric), w_n, _errors_of(got.best, metric), b_n,
        limit=limit, min_errors=min_errors, ci=ci,
    )
    return RatioClaim(**{**claim.__dict__, "ratio": got.ratio, "worst": got.worst.group, "best": got.best.group})


def bias_sentences(
    rates: Sequence[GroupRate | GroupProportion],
    metrics: Sequence[Metric] = ("fmr", "fnmr"),
    *,
    exclude: Collection[str] = (),
    limit: float = 2.0,
    what: str = "",
    events: str = "",
    unit: str = "",
    min_errors: int = MIN_ERRORS_FOR_CLAIM,
    ci: float = 0.95,
) -> list[str]:
    """One plain sentence per metric whose worst / best group ratio exceeds ``limit``.

    Where the counts support it (:func:`disparity_claim`: at least ``min_errors`` errors in both
    groups and the exact interval of the ratio above ``limit``): ``"FMR of group X is N.N times that
    of group Y (95 % interval L-H, above 2: a material disparity; A and B false matches)"``.
    Otherwise: ``"FMR of group X is N.N times that of group Y, but the counts cannot support a
    claim: ..."`` with the reasons. The floor is noted when the best group had no error. Nothing
    is said for a ratio at or below ``limit``, or when fewer than two groups have data.

    Parameters
    ----------
    rates, metrics, exclude, limit
        See :func:`worst_best_ratio`.
    what : str
        Names the metric for :class:`GroupProportion` (e.g. ``"detection failure rate"``).
    events, unit : str
        What an error is called and what ``n`` counts (default: ``false matches`` / ``impostor
        pairs`` for FMR, ``false non-matches`` / ``genuine pairs`` for FNMR, ``failures`` /
        ``images`` for a proportion).
    min_errors, ci
        See :func:`ratio_claim`.

    Examples
    --------
    >>> rates = group_error_rates([0.9] * 60 + [0.1] * 940 + [0.9] * 10 + [0.1] * 990, [0] * 2000,
    ...                           ["a"] * 1000 + ["b"] * 1000, 0.5, n_boot=10)
    >>> print(bias_sentences(rates)[0])  # doctest: +NORMALIZE_WHITESPACE
    FMR of group a is 6.0 times that of group b (95 % interval 3.05-13.1, above 2: a material
    disparity; 60 and 10 false matches)
    """
    out = []
    for metric in metrics:
        claim = disparity_claim(rates, metric, exclude=exclude, limit=limit, min_errors=min_errors, ci=ci)
        if claim is None or math.isnan(claim.ratio) or claim.ratio <= limit:
            continue
        name = what or _NAMES[metric]
        ev = events or _NOUNS[metric][0]
        un = unit or _NOUNS[metric][1]
        if claim.supported:
            sentence = (
                f"{name} of group {claim.worst} is {claim.ratio:.1f} times that of group {claim.best} "
                f"({_pct(ci)} % interval {_fmt_ratio(claim.ci_low)}-{_fmt_ratio(claim.ci_high)}, "
                f"above {limit:g}: a material disparity; {claim.worst_errors} and {claim.best_errors} {ev})"
            )
        else:
            sentence = f"{name} of group {claim.worst} is {claim.ratio:.1f} times that of group {claim.best}"
            if claim.floored:
                n = claim.best_n
                sentence += (
                    f" (group {claim.best} had no error in {n} {un}, its rate floored at 1/{n}, "
                    "so this is a lower bound)"
                )
            sentence += ", but the counts cannot support a claim: " + " and ".join(claim.reasons(ev))
        out.append(sentence)
    return out


# --------------------------------------------------------------------------------------------
# Identity-free data sets: streamed pairs
# --------------------------------------------------------------------------------------------


def _unit_rows(embeddings: npt.ArrayLike) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """(float64 unit rows, mask of usable rows: no NaN, non-zero norm)."""
    e = np.asarray(embeddings, dtype=np.float64)
    if e.ndim != 2:
        raise InvalidArgumentError(f"expected (n, d) embeddings, got shape {e.shape}")
    ok = ~np.isnan(e).any(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        e = e / np.linalg.norm(e, axis=1, keepdims=True)
    ok &= np.isfinite(e).all(axis=1)
    return e, ok


def _check_block(block_elements: int) -> None:
    if block_elements < 1:
        raise InvalidArgumentError(f"block_elements must be >= 1, got {block_elements}")


def _pair_blocks(e: npt.NDArray[np.float64], block_elements: int) -> Iterator[npt.NDArray[np.float64]]:
    """Scores of every pair ``i < j`` of the rows of ``e``, a block of rows of the matrix at a time.

    Each block is ``e[r0:r1] @ e[r0:].T`` with at most ``block_elements`` entries; only its part
    above the diagonal is yielded (flat). The ``n x n`` matrix is never built.
    """
    n = e.shape[0]
    r0 = 0
    while r0 < n - 1:
        rows = max(1, block_elements // max(n - r0, 1))
        r1 = min(n, r0 + rows)
        block = e[r0:r1] @ e[r0:].T
        above = np.arange(n - r0)[None, :] > np.arange(r1 - r0)[:, None]
        flat = block[above]
        del block, above  # one block alive at a time
        yield flat
        del flat
        r0 = r1


def _sampled_blocks(
    sub: npt.NDArray[np.float64], n_pairs: int, rng: np.random.Generator, block_elements: int
) -> Iterator[npt.NDArray[np.float64]]:
    """Scores of ``n_pairs`` uniform pairs ``i != j`` (with replacement), computed in chunks."""
    n = sub.shape[0]
    i = rng.integers(0, n, size=n_pairs)
    j = (i + rng.integers(1, n, size=n_pairs)) % n  # j != i, uniform
    step = max(1, block_elements // max(sub.shape[1], 1))
    for c0 in range(0, n_pairs, step):
        scores = np.einsum("ij,ij->i", sub[i[c0 : c0 + step]], sub[j[c0 : c0 + step]])
        yield scores
        del scores


def utkface_impostor_fmr(
    embeddings: npt.ArrayLike,
    groups: Sequence[str | None],
    threshold: float,
    *,
    max_pairs_per_group: int | None = 2_000_000,
    seed: int = 0,
    n_boot: int = 1000,
    ci: float = 0.95,
    block_elements: int = BLOCK_ELEMENTS,
) -> list[GroupRate]:
    """Impostor FMR within each group of an identity-free data set such as UTKFace.

    UTKFace has no identity labels, so every cross pair of images *inside* a group is treated as
    an impostor pair (different people). A very small number of same-person pairs may exist
    (the same person photographed twice); they can only inflate the FMR slightly. FNMR is
    undefined here (``n_genuine`` is 0).

    The pairs are streamed (blocks of the similarity matrix, counters per group): memory grows
    with the number of images, not of pairs. The counts equal those of the full matrix.

    Parameters
    ----------
    embeddings : array_like, shape (n, d)
        Unit embeddings; rows with NaN (detection failures) are left out.
    groups : sequence of str or None, shape (n,)
        Group of each image (e.g. ``"Black female"`` or ``"30-44"``); None is left out.
    threshold : float
    max_pairs_per_group : int or None, default 2,000,000
        Above this many cross pairs a group uses a seeded uniform sample of pairs (with
        replacement): its ``n_impostor`` is the sample and ``n_impostor_total`` the group's pairs.
        None: every pair is counted, however many.
    seed, n_boot, ci
        See :func:`group_error_rates`.
    block_elements : int, default :data:`BLOCK_ELEMENTS`
        Scores computed at once (the memory bound; any value gives the same counts).

    Returns
    -------
    list of GroupRate
        One per group with at least one pair, sorted by group name.

    Examples
    --------
    >>> e = np.eye(3, dtype=np.float32)[[0, 0, 1, 2]]
    >>> [(r.group, r.n_impostor, r.false_matches) for r in utkface_impostor_fmr(e, list("aabb"), 0.5)]
    [('a', 1, 1), ('b', 1, 0)]
    """
    _check_ci(ci, n_boot)
    _check_block(block_elements)
    e, ok = _unit_rows(embeddings)
    if e.shape[0] != len(groups):
        raise InvalidArgumentError(f"expected (n, d) embeddings and n groups, got {e.shape} and {len(groups)}")
    if max_pairs_per_group is not None and max_pairs_per_group < 1:
        raise InvalidArgumentError(f"max_pairs_per_group must be >= 1, got {max_pairs_per_group}")
    g = np.array([x if x is not None else "" for x in groups], dtype=str)
    sample_rng = np.random.default_rng(seed)  # the pair sample; the bootstrap has its own generator
    boot_rng = np.random.default_rng(seed)
    out: list[GroupRate] = []
    for name in sorted(set(g[ok].tolist()) - {""}):
        idx = np.flatnonzero(ok & (g == name))
        n = idx.size
        n_pairs = n * (n - 1) // 2
        if n_pairs == 0:
            continue
        sub = e[idx]
        total: int | None = None
        if max_pairs_per_group is None or n_pairs <= max_pairs_per_group:
            blocks = _pair_blocks(sub, block_elements)
            n_imp = n_pairs
        else:
            blocks = _sampled_blocks(sub, max_pairs_per_group, sample_rng, block_elements)
            n_imp, total = max_pairs_per_group, n_pairs
            logger.info("group %s: %d cross pairs, sampled %d", name, n_pairs, max_pairs_per_group)
        fm = _count_at_least(blocks, threshold)
        out.append(
            _group_rate(name, threshold, 0, n_imp, 0, fm, rng=boot_rng, n_boot=n_boot, ci=ci, n_impostor_total=total)
        )
    return out


def _count_at_least(blocks: Iterator[npt.NDArray[np.float64]], threshold: float) -> int:
    count = 0
    for block in blocks:
        count += int(np.count_nonzero(block >= threshold))
        del block  # before the generator computes the next one
    return count


_BINS = 1 << 16


def _bin_of(scores: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
    """Histogram bin of each cosine score on [-1, 1] (rounding beyond it falls in the end bins)."""
    b = np.floor((scores + 1.0) * (_BINS / 2.0)).astype(np.intp)
    return np.clip(b, 0, _BINS - 1)


def _accepted(n: int, fmr: float) -> int:
    """Most impostors ``k`` with ``k / n <= fmr``, computed as :func:`~faceprint.evaluation.threshold_at_fmr` does."""
    k = int(np.floor(fmr * n))
    while k < n and (k + 1) / n <= fmr:
        k += 1
    while k > 0 and k / n > fmr:
        k -= 1
    return k


def cross_pair_threshold(
    embeddings: npt.ArrayLike, fmr: float, *, block_elements: int = BLOCK_ELEMENTS
) -> tuple[float, int]:
    """Threshold at ``fmr`` over every cross pair of a set of images, all treated as impostors.

    The same rule as :func:`~faceprint.evaluation.threshold_at_fmr` (the smallest threshold whose
    share of pairs with ``score >= t`` is ``<= fmr``, just above a pair score), computed exactly
    in two streamed passes (a 65,536-bin histogram of the scores, then the scores of the one bin
    that holds the quantile): memory does not grow with the number of pairs. Rows with NaN are
    left out. On UTKFace (no identities) this matches the threshold to one global FMR on the
    data itself.

    Returns
    -------
    (threshold, n_pairs)
        ``-inf`` when every pair may match (``fmr = 1``).

    Raises
    ------
    ValueError
        With fewer than two usable rows or an ``fmr`` outside ``[0, 1]``.

    Examples
    --------
    >>> e = np.eye(4)[[0, 0, 1, 1, 2]]
    >>> t, n = cross_pair_threshold(e, 0.2)  # 10 pairs, 2 of them identical: 2 / 10 may match
    >>> bool(0.0 < t < 1e-300), n
    (True, 10)
    """
    _check_block(block_elements)
    if not 0.0 <= float(fmr) <= 1.0:
        raise InvalidArgumentError(f"fmr must lie in [0, 1], got {fmr}")
    e, ok = _unit_rows(embeddings)
    e = e[ok]
    n_img = e.shape[0]
    n_pairs = n_img * (n_img - 1) // 2
    if n_pairs == 0:
        raise InvalidArgumentError(f"need at least two usable embeddings, got {n_img}")
    k = _accepted(n_pairs, float(fmr))
    if k >= n_pairs:
        return -math.inf, n_pairs
    counts = np.zeros(_BINS, np.int64)
    for blk in _pair_blocks(e, block_elements):
        counts += np.bincount(_bin_of(blk), minlength=_BINS)
        del blk
    # d = every score sorted descending: d[k] lies in the bin where the count from the top passes k.
    above = np.cumsum(counts[::-1])[::-1] - counts  # pairs in higher bins
    b = int(np.flatnonzero((above <= k) & (k < above + counts))[0])
    kept = []
    for blk in _pair_blocks(e, block_elements):
        kept.append(blk[_bin_of(blk) == b])
        del blk
    in_bin = np.sort(np.concatenate(kept))[::-1]
    d_k = in_bin[k - int(above[b])]
    return float(np.nextafter(d_k, np.inf)), n_pairs


def cross_pair_matches(
    embeddings: npt.ArrayLike, threshold: float, *, block_elements: int = BLOCK_ELEMENTS
) -> tuple[int, int]:
    """(pairs with ``score >= threshold``, pairs) over every cross pair of the usable rows, streamed.

    Examples
    --------
    >>> cross_pair_matches(np.eye(3)[[0, 0, 1]], 0.5)
    (1, 3)
    """
    _check_block(block_elements)
    e, ok = _unit_rows(embeddings)
    e = e[ok]
    n = e.shape[0]
    matches = _count_at_least(_pair_blocks(e, block_elements), threshold)
    return matches, n * (n - 1) // 2
