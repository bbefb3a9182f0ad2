"""PAD error rates in ISO/IEC 30107-3 vocabulary (APCER per attack type, BPCER, ACER, EER).

Conventions: a score is the probability of a live (bona fide) presentation; a sample is
classified live when ``score >= threshold``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import roc_curve

from ..errors import InvalidArgumentError

__all__ = ["pad_metrics", "eer_threshold", "threshold_at_apcer", "threshold_at_bpcer"]

FloatArray = npt.NDArray[np.float64]


def _check_pad_inputs(scores: npt.ArrayLike, is_attack: npt.ArrayLike) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    s = np.asarray(scores, dtype=np.float64).ravel()
    a = np.asarray(is_attack).ravel()
    if s.shape != a.shape:
        raise InvalidArgumentError(f"scores and is_attack differ in length: {s.shape[0]} vs {a.shape[0]}")
    if not np.all(np.isfinite(s)):
        raise InvalidArgumentError("scores must be finite")
    a = a.astype(bool)
    if a.all() or not a.any():
        raise InvalidArgumentError("need both bona fide and attack samples")
    return s, a


def _roc(s: FloatArray, a: npt.NDArray[np.bool_]) -> tuple[FloatArray, FloatArray, FloatArray]:
    """APCER, BPCER and thresholds for every distinct operating point (live if score >= t)."""
    fpr, tpr, thr = roc_curve(~a, s, drop_intermediate=False)
    return fpr.astype(np.float64), (1.0 - tpr).astype(np.float64), thr.astype(np.float64)


def eer_threshold(scores: npt.ArrayLike, is_attack: npt.ArrayLike) -> tuple[float, float]:
    """Equal error rate and its threshold (pooled over attack types).

    The EER is ``(APCER + BPCER) / 2`` at the ROC point where ``|APCER - BPCER|`` is smallest
    (ties: the first, i.e. the highest threshold). The returned threshold is finite.

    Examples
    --------
    >>> eer_threshold([0.9, 0.8, 0.3, 0.1], [False, False, True, True])
    (0.0, 0.8)
    """
    s, a = _check_pad_inputs(scores, is_attack)
    apcer, bpcer, thr = _roc(s, a)
    i = int(np.argmin(np.abs(apcer - bpcer)))
    t = float(thr[i]) if np.isfinite(thr[i]) else float(np.max(s)) + 1e-12
    return float((apcer[i] + bpcer[i]) / 2.0), t


def threshold_at_apcer(scores: npt.ArrayLike, is_attack: npt.ArrayLike, target: float) -> float:
    """The lowest threshold whose APCER on these scores is at most ``target`` (least BPCER).

    Meant for scores of data *other than* the test data (e.g. inner cross-validation scores),
    so that the operating point is fixed before the test cell is seen.

    Examples
    --------
    >>> threshold_at_apcer([0.9, 0.8, 0.7, 0.3, 0.1], [False, False, True, True, True], 0.0)
    0.8
    """
    if not 0.0 <= target <= 1.0:
        raise InvalidArgumentError(f"target APCER must be in [0, 1], got {target}")
    s, a = _check_pad_inputs(scores, is_attack)
    apcer, _, thr = _roc(s, a)
    ok = np.flatnonzero(apcer <= target + 1e-12)
    i = int(ok[-1])  # ROC thresholds decrease: the last qualifying one is the lowest
    return float(thr[i]) if np.isfinite(thr[i]) else float(np.max(s)) + 1e-12


def threshold_at_bpcer(scores: npt.ArrayLike, is_attack: npt.ArrayLike, target: float) -> float:
    """The highest threshold whose BPCER on these scores is at most ``target`` (least APCER).

    The dual of :func:`threshold_at_apcer`: below it a sample can be called an attack while at most
    ``target`` of these bona fide samples would be. Fix it on data other than the test data.

    Examples
    --------
    >>> threshold_at_bpcer([0.9, 0.8, 0.7, 0.3, 0.1], [False, False, True, True, True], 0.0)
    0.8
    >>> threshold_at_bpcer([0.9, 0.8, 0.7, 0.3, 0.1], [False, False, True, True, True], 0.5)
    0.9
    """
    if not 0.0 <= target <= 1.0:
        raise InvalidArgumentError(f"target BPCER must be in [0, 1], got {target}")
    s, a = _check_pad_inputs(scores, is_attack)
    _, bpcer, thr = _roc(s, a)
    ok = np.flatnonzero((bpcer <= target + 1e-12) & np.isfinite(thr))
    return float(thr[ok[0]])  # ROC thresholds decrease: the first qualifying one is the highest


def _bpcer_at_apcer(apcer: FloatArray, bpcer: FloatArray, target: float) -> float:
    ok = apcer <= target + 1e-12
    return float(np.min(bpcer[ok]))  # the first ROC point (nothing accepted) always qualifies


def pad_metrics(
    scores: npt.ArrayLike,
    is_attack: npt.ArrayLike,
    attack_types: Sequence[str] | None = None,
    threshold: float = 0.5,
) -> dict[str, Any]:
    """PAD error rates in ISO/IEC 30107-3 vocabulary.

    Parameters
    ----------
    scores : array of float
        Probability of a bona fide (live) presentation; live if ``score >= threshold``.
    is_attack : array of bool
        True for attack presentations, False for bona fide ones.
    attack_types : sequence of str, optional
        Attack instrument species of each sample (ignored for bona fide ones); default "attack".
    threshold : float
        Decision threshold.

    Returns
    -------
    dict
        ``apcer`` (per attack type), ``apcer_max``, ``bpcer``, ``acer`` = (APCER_max + BPCER) / 2,
        ``eer``, ``eer_threshold``, ``bpcer_at_apcer_5pct``, ``bpcer_at_apcer_1pct``, counts.

    Examples
    --------
    >>> m = pad_metrics([0.9, 0.4, 0.6, 0.1], [False, False, True, True], ["print"] * 4, 0.5)
    >>> m["apcer"], m["bpcer"], m["acer"]
    ({'print': 0.5}, 0.5, 0.5)
    """
    s, a = _check_pad_inputs(scores, is_attack)
    if attack_types is None:
        types = np.array(["attack"] * s.shape[0], dtype=object)
    else:
        types = np.asarray(list(attack_types), dtype=object)
        if types.shape != s.shape:
            raise InvalidArgumentError(f"attack_types has {types.shape[0]} entries, expected {s.shape[0]}")
    live = s >= threshold
    apcer_per: dict[str, float] = {}
    for t in sorted({str(x) for x in types[a]}):
        sel = a & (types == t)
        apcer_per[t] = float(np.mean(live[sel]))
    apcer_max = max(apcer_per.values())
    bpcer = float(np.mean(~live[~a]))
    eer, eer_t = eer_threshold(s, a)
    roc_apcer, roc_bpcer, _ = _roc(s, a)
    return {
        "threshold": float(threshold),
        "apcer": apcer_per,
        "apcer_max": apcer_max,
        "bpcer": bpcer,
        "acer": (apcer_max + bpcer) / 2.0,
        "eer": eer,
        "eer_threshold": eer_t,
        "bpcer_at_apcer_5pct": _bpcer_at_apcer(roc_apcer, roc_bpcer, 0.05),
        "bpcer_at_apcer_1pct": _bpcer_at_apcer(roc_apcer, roc_bpcer, 0.01),
        "n_bona_fide": int((~a).sum()),
        "n_attack": {t: int((a & (types == t)).sum()) for t in apcer_per},
    }
