"""Demographic bias: error rates per group at one global operating threshold.

Pure metric code on similarity scores and embeddings (numpy); nothing here loads a model.

* :func:`group_error_rates`: FMR and FNMR per group of verification pairs, with percentile
  bootstrap confidence intervals; :func:`worst_best_ratio` and :func:`bias_sentences` summarise
  the disparity between groups.
* identity-free data sets such as UTKFace: :func:`utkface_impostor_fmr` (every cross pair inside
  a group is an impostor pair) and :func:`group_proportions` (e.g. detection failure rates per
  group).

The groups themselves come from the data set parsers in :mod:`faceprint.datasets`
(:func:`~faceprint.datasets.lfw.pair_gender_groups`, :func:`~faceprint.datasets.utkface.utkface_groups`).

Conventions follow :mod:`faceprint.evaluation`: a pair is a match when ``score >= threshold``;
a NaN score (failure to acquire) is a non-match.

Bootstrap: resampling the ``n`` pairs of a group with replacement and counting errors gives an
error count distributed exactly as ``Binomial(n, k / n)``, so the bootstrap draws that count
directly (fast for millions of pairs). Pairs that share an image or a person are *not*
independent, so these intervals are optimistic (too narrow). A group with no error gets the
degenerate interval ``[0, 0]``; read it as "fewer than about 3 / n" (rule of three).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from ..errors import InvalidArgumentError

__all__ = [
    "Metric",
    "GroupRate",
    "GroupProportion",
    "group_error_rates",
    "group_proportions",
    "worst_best_ratio",
    "bias_sentences",
    "utkface_impostor_fmr",
]

logger = logging.getLogger(__name__)

Metric = Literal["fmr", "fnmr", "rate"]


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

    def to_dict(self) -> dict[str, Any]:
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
        n_gen, n_imp = int(gen.sum()), int(imp.sum())
        fnm = int((gen & ~match).sum())
        fm = int((imp & match).sum())
        fnmr, fnmr_lo, fnmr_hi = _rate_ci(fnm, n_gen, rng, n_boot, ci)
        fmr, fmr_lo, fmr_hi = _rate_ci(fm, n_imp, rng, n_boot, ci)
        out.append(
            GroupRate(
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
            )
        )
    return out


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


_NAMES = {"fmr": "FMR", "fnmr": "FNMR", "rate": "rate"}


def bias_sentences(
    rates: Sequence[GroupRate | GroupProportion],
    metrics: Sequence[Metric] = ("fmr", "fnmr"),
    *,
    exclude: Collection[str] = (),
    limit: float = 2.0,
    what: str = "",
) -> list[str]:
    """One plain sentence per metric whose worst / best group ratio exceeds ``limit``.

    ``"FMR of group X is N.N times that of group Y (above 2: a material disparity)"``, with the
    floor noted when the best group had no error. Nothing is said for a ratio at or below
    ``limit``, or when fewer than two groups have data. ``what`` names the metric for
    :class:`GroupProportion` (e.g. ``"detection failure rate"``).

    Examples
    --------
    >>> rates = group_error_rates([0.9, 0.9, 0.1, 0.9, 0.1, 0.1], [0] * 6, list("aabbbb"), 0.5, n_boot=10)
    >>> bias_sentences(rates)
    ['FMR of group a is 4.0 times that of group b (above 2: a material disparity)']
    """
    out = []
    for metric in metrics:
        got = _ratio(rates, metric, exclude, True)
        if got is None or math.isnan(got.ratio) or got.ratio <= limit:
            continue
        name = what or _NAMES[metric]
        sentence = (
            f"{name} of group {got.worst.group} is {got.ratio:.1f} times that of group {got.best.group} "
            f"(above {limit:g}: a material disparity)"
        )
        if got.floored:
            n = _metric_of(got.best, metric)[1]
            sentence += (
                f"; group {got.best.group} had no error in {n} pairs, its rate floored at 1/{n}, "
                "so this is a lower bound"
            )
        out.append(sentence)
    return out


# --------------------------------------------------------------------------------------------
# Identity-free data sets
# --------------------------------------------------------------------------------------------


def utkface_impostor_fmr(
    embeddings: npt.ArrayLike,
    groups: Sequence[str | None],
    threshold: float,
    *,
    max_pairs_per_group: int = 2_000_000,
    seed: int = 0,
    n_boot: int = 1000,
    ci: float = 0.95,
) -> list[GroupRate]:
    """Impostor FMR within each group of an identity-free data set such as UTKFace.

    UTKFace has no identity labels, so every cross pair of images *inside* a group is treated as
    an impostor pair (different people). A very small number of same-person pairs may exist
    (the same person photographed twice); they can only inflate the FMR slightly. FNMR is
    undefined here (``n_genuine`` is 0).

    Parameters
    ----------
    embeddings : array_like, shape (n, d)
        Unit embeddings; rows with NaN (detection failures) are left out.
    groups : sequence of str or None, shape (n,)
        Group of each image (e.g. ``"Black female"`` or ``"30-44"``); None is left out.
    threshold : float
    max_pairs_per_group : int, default 2,000,000
        Above this many cross pairs a group uses a seeded uniform sample of pairs (with replacement).
    seed, n_boot, ci
        See :func:`group_error_rates`.

    Returns
    -------
    list of GroupRate

    Examples
    --------
    >>> e = np.eye(3, dtype=np.float32)[[0, 0, 1, 2]]
    >>> [(r.group, r.n_impostor, r.false_matches) for r in utkface_impostor_fmr(e, list("aabb"), 0.5)]
    [('a', 1, 1), ('b', 1, 0)]
    """
    e = np.asarray(embeddings, dtype=np.float64)
    if e.ndim != 2 or e.shape[0] != len(groups):
        raise InvalidArgumentError(f"expected (n, d) embeddings and n groups, got {e.shape} and {len(groups)}")
    if max_pairs_per_group < 1:
        raise InvalidArgumentError(f"max_pairs_per_group must be >= 1, got {max_pairs_per_group}")
    ok = ~np.isnan(e).any(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        e = e / np.linalg.norm(e, axis=1, keepdims=True)
    ok &= np.isfinite(e).all(axis=1)
    g = np.array([x if x is not None else "" for x in groups], dtype=str)
    rng = np.random.default_rng(seed)
    all_scores: list[np.ndarray] = []
    all_groups: list[np.ndarray] = []
    for name in sorted(set(g[ok].tolist()) - {""}):
        idx = np.flatnonzero(ok & (g == name))
        n = idx.size
        n_pairs = n * (n - 1) // 2
        if n_pairs == 0:
            continue
        sub = e[idx]
        if n_pairs <= max_pairs_per_group:
            iu, ju = np.triu_indices(n, k=1)
            scores = (sub @ sub.T)[iu, ju]
        else:
            i = rng.integers(0, n, size=max_pairs_per_group)
            j = (i + rng.integers(1, n, size=max_pairs_per_group)) % n  # j != i, uniform
            scores = np.einsum("ij,ij->i", sub[i], sub[j])
            logger.info("group %s: %d cross pairs, sampled %d", name, n_pairs, max_pairs_per_group)
        all_scores.append(scores)
        all_groups.append(np.full(scores.size, name))
    if not all_scores:
        return []
    s = np.concatenate(all_scores)
    return group_error_rates(
        s, np.zeros(s.size, bool), np.concatenate(all_groups), threshold, n_boot=n_boot, seed=seed, ci=ci
    )
