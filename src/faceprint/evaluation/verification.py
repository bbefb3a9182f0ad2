"""Verification metrics: 1:1 scores, thresholds at a false match rate, the k-fold accuracy protocol.

Pure metric / protocol code on similarity scores (numpy + scikit-learn); it never loads a model
and never reads a file (the LFW pair lists are parsed in :mod:`faceprint.datasets.lfw`).
A caller embeds the images of each pair with whatever embedder it evaluates, turns the two
embeddings into a score with :func:`cosine_scores`, and hands scores, labels and folds to
:func:`evaluate_verification`.

Conventions used throughout this module:

* a higher score means "more similar"; a pair is declared a *match* when ``score >= threshold``;
* ``labels`` are booleans (or 0 / 1): ``True`` for a genuine (same-person) pair, ``False`` for an
  impostor (different-people) pair;
* a ``NaN`` score marks a *failure to acquire* (no face found, embedding failed). For every
  decision it counts as a score of ``-inf``: always a non-match, so an FTA genuine pair is an error
  and an FTA impostor pair is (correctly) rejected. Reports count FTA pairs separately.

FMR keys in dictionaries are short scientific strings: ``1e-2``, ``1e-3``, ``1.5e-3``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import roc_auc_score, roc_curve

from ..errors import InvalidArgumentError

__all__ = [
    "FoldResult",
    "VerificationReport",
    "cosine_scores",
    "threshold_at_fmr",
    "tar_at_fmr",
    "best_accuracy_threshold",
    "kfold_accuracy",
    "evaluate_verification",
    "calibrate_thresholds",
    "fuse_scores",
    "fmr_key",
    "finite_scores",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


# --------------------------------------------------------------------------------------------
# Scores and input validation
# --------------------------------------------------------------------------------------------


def cosine_scores(emb_a: npt.ArrayLike, emb_b: npt.ArrayLike) -> FloatArray:
    """Row-wise cosine similarity of two embedding matrices.

    Rows are L2-normalised before the dot product, so for the unit-length embeddings that
    faceprint's embedders return this is the plain row-wise dot product. A row holding any NaN
    (a failure to acquire is stored as an all-NaN row) or of zero norm gives NaN.

    Parameters
    ----------
    emb_a, emb_b : array_like, shape (n, d)
        Embeddings of the first and second image of each pair.

    Returns
    -------
    ndarray of float64, shape (n,)

    Raises
    ------
    ValueError
        When the inputs are not 2-D or their shapes differ.

    Examples
    --------
    >>> cosine_scores([[1.0, 0.0], [np.nan, np.nan]], [[0.6, 0.8], [1.0, 0.0]])
    array([0.6, nan])
    """
    a = np.asarray(emb_a, dtype=np.float64)
    b = np.asarray(emb_b, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape:
        raise InvalidArgumentError(
            f"expected two (n, d) embedding matrices of the same shape, got {a.shape} and {b.shape}"
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
        dots = np.einsum("ij,ij->i", a, b)
        scores = dots / norms
    scores[~(norms > 0)] = np.nan
    return np.asarray(scores, dtype=np.float64)


def _check_scores_labels(scores: npt.ArrayLike, labels: npt.ArrayLike) -> tuple[FloatArray, BoolArray]:
    s = np.asarray(scores, dtype=np.float64)
    raw = np.asarray(labels)
    if s.ndim != 1 or raw.ndim != 1 or s.shape != raw.shape:
        raise InvalidArgumentError(f"expected 1-D scores and labels of the same length, got {s.shape} and {raw.shape}")
    if s.size == 0:
        raise InvalidArgumentError("expected at least one score, got none")
    if raw.dtype != np.bool_:
        if not np.isin(raw, (0, 1)).all():
            values = np.unique(raw)[:5]
            raise InvalidArgumentError(f"expected boolean or 0/1 labels, got values {values.tolist()}")
        raw = raw.astype(bool)
    return s, raw


def _decision_scores(scores: FloatArray) -> FloatArray:
    """NaN (failure to acquire) becomes -inf: a non-match for every finite threshold."""
    return np.where(np.isnan(scores), -np.inf, scores)


def finite_scores(scores: FloatArray) -> FloatArray:
    """Same ranking as :func:`_decision_scores`, but finite (for scikit-learn)."""
    finite = np.isfinite(scores)
    if not finite.any():
        return np.zeros_like(scores)
    low = float(scores[finite].min()) - 1.0
    high = float(scores[finite].max()) + 1.0
    out = np.where(np.isnan(scores) | np.isneginf(scores), low, scores)
    return np.where(np.isposinf(out), high, out)


def _check_fmr(fmr: float) -> float:
    value = float(fmr)
    if not 0.0 <= value <= 1.0:
        raise InvalidArgumentError(f"expected a false match rate in [0, 1], got {fmr!r}")
    return value


def fmr_key(fmr: float) -> str:
    """Short dictionary key of a false match rate.

    Examples
    --------
    >>> fmr_key(0.001), fmr_key(1.5e-3)
    ('1e-3', '1.5e-3')
    """
    return np.format_float_scientific(float(fmr), trim="-", exp_digits=1)


# --------------------------------------------------------------------------------------------
# Thresholds and rates
# --------------------------------------------------------------------------------------------


def _threshold_from_impostors(impostor: FloatArray, fmr: float) -> float:
    n = impostor.size
    # k = the largest number of accepted impostors with k / n <= fmr (computed the way a reader
    # checks it, as a float division, so 0.29 * 100 = 28.999... still allows 29).
    k = int(np.floor(fmr * n))
    while k < n and (k + 1) / n <= fmr:
        k += 1
    while k > 0 and k / n > fmr:
        k -= 1
    if k >= n:
        return -np.inf
    # With d sorted descending, count(impostor >= t) <= k  <=>  t > d[k]; the smallest such
    # float is the next one above d[k].
    d_k = np.sort(impostor)[::-1][k]
    return float(np.nextafter(d_k, np.inf))


def threshold_at_fmr(scores: npt.ArrayLike, labels: npt.ArrayLike, fmr: float) -> float:
    """Smallest threshold whose false match rate is at most ``fmr``.

    With the decision ``score >= t`` means match, returns the smallest ``t`` such that the fraction
    of impostor scores ``>= t`` is ``<= fmr``. That ``t`` is always the float just above an
    impostor score (:func:`numpy.nextafter`), so impostors tied at that score are rejected. When
    ``fmr`` is below ``1 / n_impostors`` no impostor may pass: ``t`` is just above the highest
    impostor score. When every impostor may pass (``fmr = 1``), ``t`` is ``-inf``.
    NaN scores count as ``-inf`` (never accepted).

    Parameters
    ----------
    scores : array_like, shape (n,)
        Similarity scores, higher = more similar.
    labels : array_like of bool, shape (n,)
        True for genuine pairs, False for impostor pairs.
    fmr : float
        Target false match rate in ``[0, 1]``.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        On malformed input, an ``fmr`` outside ``[0, 1]``, or no impostor pair.

    Examples
    --------
    >>> t = threshold_at_fmr([0.9, 0.8, 0.3, 0.1], [1, 1, 0, 0], fmr=0.5)
    >>> bool(0.1 < t < 0.3 + 1e-12)
    True
    """
    s, y = _check_scores_labels(scores, labels)
    fmr = _check_fmr(fmr)
    impostor = _decision_scores(s[~y])
    if impostor.size == 0:
        raise InvalidArgumentError("threshold_at_fmr needs at least one impostor (label False) score")
    return _threshold_from_impostors(impostor, fmr)


def tar_at_fmr(scores: npt.ArrayLike, labels: npt.ArrayLike, fmr: float) -> float:
    """True accept rate at the threshold of :func:`threshold_at_fmr`.

    The fraction of genuine scores ``>= threshold_at_fmr(scores, labels, fmr)``; a genuine NaN
    score (failure to acquire) counts as rejected. This equals the highest true positive rate
    among the points of :func:`sklearn.metrics.roc_curve` whose false positive rate is
    ``<= fmr`` (no interpolation).

    Parameters
    ----------
    scores : array_like, shape (n,)
    labels : array_like of bool, shape (n,)
    fmr : float
        Target false match rate in ``[0, 1]``.

    Returns
    -------
    float
        In ``[0, 1]``.

    Raises
    ------
    ValueError
        On malformed input, or when genuine or impostor pairs are missing.

    Examples
    --------
    >>> tar_at_fmr([0.9, 0.8, 0.3, 0.1], [1, 1, 0, 0], fmr=0.0)
    1.0
    """
    s, y = _check_scores_labels(scores, labels)
    if not y.any():
        raise InvalidArgumentError("tar_at_fmr needs at least one genuine (label True) score")
    threshold = threshold_at_fmr(s, y, fmr)
    genuine = _decision_scores(s[y])
    return float(np.mean(genuine >= threshold))


def _accuracy_candidates(scores: FloatArray) -> FloatArray:
    unique = np.unique(scores[np.isfinite(scores)])
    if unique.size == 0:
        return np.array([np.inf])
    midpoints = 0.5 * unique[:-1] + 0.5 * unique[1:]
    below = np.nextafter(unique[0], -np.inf)
    above = np.nextafter(unique[-1], np.inf)
    return np.concatenate(([below], midpoints, [above]))


def _accuracies(scores: FloatArray, labels: BoolArray, thresholds: FloatArray) -> FloatArray:
    """Accuracy of ``score >= t`` for every t, vectorised with sorted counts."""
    genuine = np.sort(scores[labels])
    impostor = np.sort(scores[~labels])
    accepted_genuine = genuine.size - np.searchsorted(genuine, thresholds, side="left")
    rejected_impostor = np.searchsorted(impostor, thresholds, side="left")
    return (accepted_genuine + rejected_impostor) / scores.size


def best_accuracy_threshold(scores: npt.ArrayLike, labels: npt.ArrayLike) -> tuple[float, float]:
    """Threshold of highest accuracy, scanned over midpoints of the sorted unique scores.

    Candidates are the midpoints between consecutive unique finite scores plus one value just
    below the lowest and one just above the highest (accept all / reject all). Ties go to the
    lowest candidate. NaN scores count as ``-inf`` (always rejected).

    Parameters
    ----------
    scores : array_like, shape (n,)
    labels : array_like of bool, shape (n,)

    Returns
    -------
    threshold : float
    accuracy : float
        Fraction of pairs decided correctly by ``score >= threshold``.

    Examples
    --------
    >>> best_accuracy_threshold([0.9, 0.8, 0.3, 0.1], [1, 1, 0, 0])
    (0.55, 1.0)
    """
    s, y = _check_scores_labels(scores, labels)
    s = _decision_scores(s)
    candidates = _accuracy_candidates(s)
    accuracies = _accuracies(s, y, candidates)
    best = int(np.argmax(accuracies))
    return float(candidates[best]), float(accuracies[best])


@dataclass(frozen=True)
class FoldResult:
    """Outcome of the k-fold accuracy protocol.

    Attributes
    ----------
    accuracies : tuple of float
        Accuracy on each held-out fold, in sorted fold order.
    thresholds : tuple of float
        The threshold chosen on the other folds and applied to each fold.
    mean : float
        Mean of ``accuracies``.
    std : float
        Population standard deviation of ``accuracies`` (``np.std`` with ``ddof=0``).
    """

    accuracies: tuple[float, ...]
    thresholds: tuple[float, ...]
    mean: float
    std: float


def kfold_accuracy(scores: npt.ArrayLike, labels: npt.ArrayLike, folds: npt.ArrayLike) -> FoldResult:
    """LFW view-2 accuracy: threshold chosen on the other folds, applied to the held-out one.

    For each fold ``f`` (in sorted order) the best-accuracy threshold
    (:func:`best_accuracy_threshold`) is chosen on the pairs of all other folds and the accuracy
    of ``score >= threshold`` is measured on fold ``f``. NaN scores (failure to acquire) count as
    ``-inf``, i.e. a non-match: an FTA genuine pair is an error.

    Parameters
    ----------
    scores : array_like, shape (n,)
    labels : array_like of bool, shape (n,)
    folds : array_like of int, shape (n,)
        Fold id of each pair; at least two distinct folds.

    Returns
    -------
    FoldResult
        ``std`` is the population standard deviation (``ddof=0``) over folds.

    Raises
    ------
    ValueError
        On malformed input or fewer than two folds.

    Examples
    --------
    >>> r = kfold_accuracy([0.9, 0.8, 0.3, 0.1], [1, 1, 0, 0], [0, 1, 0, 1])
    >>> r.accuracies, r.mean
    ((1.0, 1.0), 1.0)
    """
    s, y = _check_scores_labels(scores, labels)
    f = np.asarray(folds)
    if f.shape != s.shape:
        raise InvalidArgumentError(f"expected one fold id per score, got shape {f.shape} for {s.shape[0]} scores")
    fold_ids = np.unique(f)
    if fold_ids.size < 2:
        raise InvalidArgumentError(
            f"k-fold accuracy needs at least two folds, got {fold_ids.tolist()}; for a single-fold "
            "list (LFW view 1) pass a threshold calibrated on other pairs to evaluate_verification"
        )
    s = _decision_scores(s)
    accuracies: list[float] = []
    thresholds: list[float] = []
    for fold in fold_ids:
        test = f == fold
        threshold, _ = best_accuracy_threshold(s[~test], y[~test])
        accuracies.append(float(np.mean((s[test] >= threshold) == y[test])))
        thresholds.append(threshold)
    return FoldResult(
        accuracies=tuple(accuracies),
        thresholds=tuple(thresholds),
        mean=float(np.mean(accuracies)),
        std=float(np.std(accuracies)),
    )


def _fixed_threshold_accuracy(
    scores: FloatArray, labels: BoolArray, folds: npt.ArrayLike, threshold: float
) -> FoldResult:
    f = np.asarray(folds)
    if f.shape != scores.shape:
        raise InvalidArgumentError(f"expected one fold id per score, got shape {f.shape} for {scores.shape[0]} scores")
    decisions = _decision_scores(scores) >= threshold
    fold_ids = np.unique(f)
    accuracies = [float(np.mean(decisions[f == fold] == labels[f == fold])) for fold in fold_ids]
    return FoldResult(
        accuracies=tuple(accuracies),
        thresholds=(threshold,) * len(accuracies),
        mean=float(np.mean(accuracies)),
        std=float(np.std(accuracies)),
    )


def _eer(labels: BoolArray, finite_scores: FloatArray) -> float:
    fpr, tpr, _ = roc_curve(labels, finite_scores, drop_intermediate=False)
    fnr = 1.0 - tpr
    gap = fpr - fnr  # non-decreasing along the curve, from -1 to +1
    i = int(np.argmax(gap >= 0))
    if gap[i] == 0 or i == 0:
        return float(fpr[i])
    w = -gap[i - 1] / (gap[i] - gap[i - 1])
    return float(fpr[i - 1] + w * (fpr[i] - fpr[i - 1]))


# --------------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerificationReport:
    """Verification results of one model on one pair protocol.

    Attributes
    ----------
    model : str
        Name / fingerprint of the evaluated model.
    n_pairs, n_genuine, n_impostor : int
        Pair counts.
    failures_to_acquire : int
        Pairs with a NaN score; they count as non-matches everywhere.
    accuracy, accuracy_std : float
        Mean and population std of the k-fold accuracies (:func:`kfold_accuracy`).
    fold_accuracies : tuple of float
    auc : float
        Area under the ROC curve (FTA pairs ranked below every other pair).
    tar_at_fmr : dict of str to float
        True accept rate at each false match rate, keyed by :func:`fmr_key` (``"1e-3"``).
    thresholds : dict of str to float
        The :func:`threshold_at_fmr` thresholds on all pairs, same keys.
    eer : float
        Equal error rate, linearly interpolated between ROC points.
    """

    model: str
    n_pairs: int
    n_genuine: int
    n_impostor: int
    failures_to_acquire: int
    accuracy: float
    accuracy_std: float
    fold_accuracies: tuple[float, ...]
    auc: float
    tar_at_fmr: dict[str, float]
    thresholds: dict[str, float]
    eer: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary.

        Returns
        -------
        dict
            Keys ``model, n_pairs, failures_to_acquire, accuracy, accuracy_std, fold_accuracies,
            auc, eer``, one ``tar_at_fmr_<key>`` per FMR (``tar_at_fmr_1e-2``, ...) and
            ``thresholds``.

        Examples
        --------
        >>> r = evaluate_verification([0.9, 0.8, 0.3, 0.1], [1, 1, 0, 0], [0, 1, 0, 1], model="m")
        >>> r.to_dict()["tar_at_fmr_1e-3"]
        1.0
        """
        out: dict[str, Any] = {
            "model": self.model,
            "n_pairs": self.n_pairs,
            "failures_to_acquire": self.failures_to_acquire,
            "accuracy": self.accuracy,
            "accuracy_std": self.accuracy_std,
            "fold_accuracies": list(self.fold_accuracies),
            "auc": self.auc,
            "eer": self.eer,
        }
        for key, value in self.tar_at_fmr.items():
            out[f"tar_at_fmr_{key}"] = value
        out["thresholds"] = dict(self.thresholds)
        return out


def evaluate_verification(
    scores: npt.ArrayLike,
    labels: npt.ArrayLike,
    folds: npt.ArrayLike,
    *,
    model: str,
    fmrs: Sequence[float] = (1e-2, 1e-3),
    threshold: float | None = None,
) -> VerificationReport:
    """Full verification report for one model's pair scores.

    Accuracy follows :func:`kfold_accuracy` (threshold chosen on the other folds). A single-fold
    list (LFW view 1, ``pairsDevTest``) has no other folds: pass a ``threshold`` calibrated
    elsewhere (:func:`calibrate_thresholds` on ``pairsDevTrain``) and accuracy is measured with it.

    Parameters
    ----------
    scores : array_like, shape (n,)
        Similarity per pair; NaN marks a failure to acquire (counted, and treated as a non-match).
    labels : array_like of bool, shape (n,)
        True for genuine pairs.
    folds : array_like of int, shape (n,)
        Fold of each pair (e.g. ``Pair.fold``); at least two folds.
    model : str
        Name recorded in the report.
    fmrs : sequence of float, default (1e-2, 1e-3)
        False match rates at which TAR and thresholds are reported.
    threshold : float, optional
        A fixed decision threshold (``score >= threshold`` is a match). When given, each fold's
        accuracy uses it instead of the k-fold choice; ``accuracy`` / ``accuracy_std`` are the
        mean / population std over folds (one fold: its accuracy, std 0). Required with a single
        fold.

    Returns
    -------
    VerificationReport

    Raises
    ------
    ValueError
        On malformed input, fewer than two folds without a ``threshold``, or when genuine or
        impostor pairs are missing.

    Examples
    --------
    >>> r = evaluate_verification([0.9, 0.8, 0.3, 0.1], [1, 1, 0, 0], [0, 1, 0, 1], model="m")
    >>> r.accuracy, r.auc, r.eer
    (1.0, 1.0, 0.0)
    >>> evaluate_verification([0.9, 0.4, 0.5, 0.1], [1, 1, 0, 0], [0, 0, 0, 0], model="m",
    ...                       threshold=0.7).accuracy
    0.75
    """
    s, y = _check_scores_labels(scores, labels)
    n_genuine = int(y.sum())
    n_impostor = int((~y).sum())
    if n_genuine == 0 or n_impostor == 0:
        raise InvalidArgumentError(
            f"need genuine and impostor pairs, got {n_genuine} genuine and {n_impostor} impostor"
        )
    if threshold is None:
        folds_result = kfold_accuracy(s, y, folds)
    else:
        folds_result = _fixed_threshold_accuracy(s, y, folds, float(threshold))
    finite = finite_scores(s)
    tars = {fmr_key(fmr): tar_at_fmr(s, y, fmr) for fmr in fmrs}
    thresholds = {fmr_key(fmr): threshold_at_fmr(s, y, fmr) for fmr in fmrs}
    return VerificationReport(
        model=model,
        n_pairs=int(s.size),
        n_genuine=n_genuine,
        n_impostor=n_impostor,
        failures_to_acquire=int(np.isnan(s).sum()),
        accuracy=folds_result.mean,
        accuracy_std=folds_result.std,
        fold_accuracies=folds_result.accuracies,
        auc=float(roc_auc_score(y, finite)),
        tar_at_fmr=tars,
        thresholds=thresholds,
        eer=_eer(y, finite),
    )


def calibrate_thresholds(
    scores: npt.ArrayLike,
    labels: npt.ArrayLike,
    fmrs: Sequence[float] = (1e-2, 1e-3, 1e-4),
) -> dict[str, float]:
    """Operating thresholds for a model, e.g. calibrated on LFW ``pairsDevTrain``.

    Parameters
    ----------
    scores : array_like, shape (n,)
        NaN counts as a non-match.
    labels : array_like of bool, shape (n,)
    fmrs : sequence of float, default (1e-2, 1e-3, 1e-4)

    Returns
    -------
    dict of str to float
        :func:`threshold_at_fmr` for each FMR, keyed by :func:`fmr_key` (``"1e-3"``), plus
        ``"best_accuracy"`` from :func:`best_accuracy_threshold`. With ``n`` impostor pairs an
        FMR below ``1 / n`` just means "above every impostor seen": say how many pairs were used.

    Examples
    --------
    >>> t = calibrate_thresholds([0.9, 0.8, 0.3, 0.1], [1, 1, 0, 0])
    >>> sorted(t)
    ['1e-2', '1e-3', '1e-4', 'best_accuracy']
    """
    s, y = _check_scores_labels(scores, labels)
    out = {fmr_key(fmr): threshold_at_fmr(s, y, fmr) for fmr in fmrs}
    out["best_accuracy"] = best_accuracy_threshold(s, y)[0]
    return out


def fuse_scores(
    score_arrays: Sequence[npt.ArrayLike],
    weights: Sequence[float] | None = None,
) -> FloatArray:
    """Score-level fusion: weighted mean of several models' similarity scores, per pair.

    No z-score or other normalisation is applied: the scores are assumed to be on comparable
    scales (e.g. cosine similarities). For each pair the mean is taken over the models whose
    score is not NaN, with the weights renormalised over those models; the result is NaN only
    when every model failed (or every available model has weight 0).

    Parameters
    ----------
    score_arrays : sequence of array_like, each shape (n,)
        One score array per model.
    weights : sequence of float, optional
        One non-negative weight per model, not all zero; default equal weights.

    Returns
    -------
    ndarray of float64, shape (n,)

    Raises
    ------
    ValueError
        When no arrays are given, shapes differ, or the weights are malformed.

    Examples
    --------
    >>> fuse_scores([[0.2, np.nan, np.nan], [0.4, 0.5, np.nan]], weights=[1.0, 3.0])
    array([0.35, 0.5 ,  nan])
    """
    if len(score_arrays) == 0:
        raise InvalidArgumentError("expected at least one score array, got none")
    arrays = [np.asarray(a, dtype=np.float64) for a in score_arrays]
    shapes = [a.shape for a in arrays]
    if len(set(shapes)) != 1 or arrays[0].ndim != 1:
        raise InvalidArgumentError(f"expected 1-D score arrays of the same length, got shapes {shapes}")
    stacked = np.stack(arrays)
    n_models = stacked.shape[0]
    if weights is None:
        w = np.ones(n_models)
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (n_models,) or not np.isfinite(w).all() or (w < 0).any() or not (w > 0).any():
            raise InvalidArgumentError(
                f"expected {n_models} finite non-negative weights, not all zero, got {list(weights)}"
            )
    available = ~np.isnan(stacked)
    w_avail = np.where(available, w[:, None], 0.0)
    total = w_avail.sum(axis=0)
    weighted = np.where(available, stacked, 0.0) * w_avail
    with np.errstate(invalid="ignore", divide="ignore"):
        fused = weighted.sum(axis=0) / total
    fused[total == 0] = np.nan
    return np.asarray(fused, dtype=np.float64)
