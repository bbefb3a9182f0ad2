"""The evaluation report model: one JSON-ready dict per evaluation run (rendered by :mod:`.report_html`).

:func:`build_report` turns the pair scores of one or more models into a JSON-ready ``dict``: k-fold
accuracy, AUC, EER, a threshold table at fixed false match rates, failures to acquire, ROC / DET
points, score histograms and, when identification was run, the CMC curve. Every number comes from
:mod:`faceprint.evaluation.verification` or :func:`sklearn.metrics.roc_curve`; nothing is
recomputed here. :func:`~faceprint.evaluation.report_html.write_report` writes that dict unchanged
to ``report.json`` and renders ``report.html``.

Non-finite values (a threshold of ``-inf`` at FMR 1, a CMC entry with no mated probe) are stored
as ``null`` so that ``report.json`` is strict JSON.

The optional bias section (:class:`BiasSection`, built with :func:`bias_section`, or for LFW by
gender with :func:`faceprint.evaluation.lfw.lfw_gender_bias`) holds error rates per demographic
group at one global threshold (:mod:`faceprint.evaluation.bias`): the table rows, the worst / best
group ratio with its exact interval, and a sentence when that ratio exceeds 2: a material disparity
where the counts support it (:func:`faceprint.evaluation.bias.ratio_claim`), else a plain statement
that they cannot.

Pure computation: no file is read or written here, and nothing is drawn.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import roc_curve

from ..errors import InvalidArgumentError
from .verification import evaluate_verification, finite_scores, fmr_key, tar_at_fmr, threshold_at_fmr

if TYPE_CHECKING:
    from .bias import GroupProportion, GroupRate, Metric

__all__ = [
    "ModelScores",
    "BiasSection",
    "bias_section",
    "build_report",
    "MAX_CURVE_POINTS",
    "HISTOGRAM_BINS",
    "BIAS_RATIO_LIMIT",
    "CI_NOTE",
    "CI_NOTE_IMAGES",
    "CLAIM_NOTE",
    "UTKFACE_IMPOSTOR_NOTE",
]

MAX_CURVE_POINTS = 500
"""Most ROC / DET points stored per model (a subset of :func:`sklearn.metrics.roc_curve`'s points)."""

HISTOGRAM_BINS = 50
"""Bins of the genuine / impostor score histograms (shared edges per model)."""


@dataclass(frozen=True)
class ModelScores:
    """Pair scores of one model, the input of :func:`build_report`.

    Attributes
    ----------
    model : str
        Name shown in the report (unique within a report).
    scores : ndarray of float, shape (n,)
        Similarity per pair, higher = more similar; NaN marks a failure to acquire.
    labels : ndarray of bool, shape (n,)
        True for genuine pairs.
    folds : ndarray of int, shape (n,)
        Fold of each pair (at least two folds unless ``threshold`` is given).
    failures_to_acquire : int
        Failures to acquire as counted by the caller (e.g. images without a face); the report also
        counts the pairs with a NaN score (``fta_pairs``).
    cmc : ndarray of float, optional
        Rank-1 .. rank-k identification rates, when identification was run.
    threshold : float, optional
        Fixed decision threshold for a single-fold pair list (see
        :func:`~faceprint.evaluation.evaluate_verification`).

    Examples
    --------
    >>> m = ModelScores("m", np.array([0.9, 0.8, 0.3, 0.1]), np.array([1, 1, 0, 0], bool),
    ...                 np.array([0, 1, 0, 1]), failures_to_acquire=0)
    >>> m.model
    'm'
    """

    model: str
    scores: npt.NDArray[np.float64]
    labels: npt.NDArray[np.bool_]
    folds: npt.NDArray[np.int64]
    failures_to_acquire: int
    cmc: npt.NDArray[np.float64] | None = None
    threshold: float | None = None


# --------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------


def _num(value: float) -> float | None:
    """A JSON-safe float: non-finite becomes None."""
    v = float(value)
    return v if math.isfinite(v) else None


def _curve_indices(fpr: npt.NDArray[np.float64], max_points: int) -> npt.NDArray[np.intp]:
    """At most ``max_points`` indices of ROC points, spread evenly in index and in log FMR."""
    n = fpr.size
    if n <= max_points:
        return np.arange(n)
    half = max_points // 2
    even = np.linspace(0, n - 1, half).round().astype(np.intp)
    positive = fpr[fpr > 0]
    low = float(positive.min()) if positive.size else 1.0
    log_spaced = np.searchsorted(fpr, np.geomspace(low, 1.0, max_points - half), side="left")
    # `even` holds 0 and n - 1; the union has at most half + (max_points - half) indices.
    return np.unique(np.concatenate((even, np.minimum(log_spaced, n - 1))))


def _check_model(m: ModelScores) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_], npt.NDArray[Any]]:
    s = np.asarray(m.scores, dtype=np.float64)
    y = np.asarray(m.labels)
    f = np.asarray(m.folds)
    if s.ndim != 1 or y.shape != s.shape or f.shape != s.shape:
        raise InvalidArgumentError(
            f"model {m.model!r}: expected 1-D scores, labels and folds of one length, "
            f"got {s.shape}, {y.shape}, {f.shape}"
        )
    if y.dtype != np.bool_:
        if not np.isin(y, (0, 1)).all():
            raise InvalidArgumentError(
                f"model {m.model!r}: expected boolean or 0/1 labels, got {np.unique(y)[:5].tolist()}"
            )
        y = y.astype(bool)
    if int(m.failures_to_acquire) < 0:
        raise InvalidArgumentError(f"model {m.model!r}: failures_to_acquire must be >= 0, got {m.failures_to_acquire}")
    return s, y, f


def _model_entry(m: ModelScores, fmrs: Sequence[float], operating_fmr: float) -> dict[str, Any]:
    s, y, f = _check_model(m)
    rep = evaluate_verification(s, y, f, model=m.model, fmrs=tuple(fmrs), threshold=m.threshold)
    decision = np.where(np.isnan(s), -np.inf, s)
    impostor = decision[~y]

    rows: list[dict[str, Any]] = []
    for fmr in fmrs:
        t = threshold_at_fmr(s, y, fmr)
        tar = tar_at_fmr(s, y, fmr)
        rows.append(
            {
                "fmr": float(fmr),
                "threshold": _num(t),
                "fnmr": 1.0 - tar,
                "tar": tar,
                "fmr_measured": float(np.mean(impostor >= t)),
                # False when fmr < 1 / n_impostor: the threshold only says "above every impostor seen".
                "resolved": bool(float(fmr) * impostor.size >= 1.0),
            }
        )

    fpr, tpr, _ = roc_curve(y, finite_scores(s))
    keep = _curve_indices(fpr, MAX_CURVE_POINTS)
    roc_fmr = [float(v) for v in fpr[keep]]
    roc_tar = [float(v) for v in tpr[keep]]

    finite = np.isfinite(s)
    if finite.any():
        lo, hi = float(s[finite].min()), float(s[finite].max())
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
    else:
        lo, hi = 0.0, 1.0
    edges = np.linspace(lo, hi, HISTOGRAM_BINS + 1)
    genuine_counts, _ = np.histogram(s[finite & y], bins=edges)
    impostor_counts, _ = np.histogram(s[finite & ~y], bins=edges)

    fta_pairs = int(np.isnan(s).sum())
    return {
        "model": m.model,
        "n_pairs": rep.n_pairs,
        "n_genuine": rep.n_genuine,
        "n_impostor": rep.n_impostor,
        "failures_to_acquire": int(m.failures_to_acquire),
        "fta_pairs": fta_pairs,
        "fta_rate": fta_pairs / rep.n_pairs,
        "accuracy": rep.accuracy,
        "accuracy_std": rep.accuracy_std,
        "fold_accuracies": list(rep.fold_accuracies),
        "fixed_threshold": None if m.threshold is None else float(m.threshold),
        "auc": rep.auc,
        "eer": rep.eer,
        "operating_threshold": _num(threshold_at_fmr(s, y, operating_fmr)),
        "thresholds": rows,
        "roc": {"fmr": roc_fmr, "tar": roc_tar},
        "det": {"fmr": roc_fmr, "fnmr": [1.0 - v for v in roc_tar]},
        "histogram": {
            "edges": [float(e) for e in edges],
            "genuine": [int(c) for c in genuine_counts],
            "impostor": [int(c) for c in impostor_counts],
        },
        "cmc": None if m.cmc is None else [_num(v) for v in np.asarray(m.cmc, dtype=np.float64).ravel()],
    }


# --------------------------------------------------------------------------------------------
# Bias sections
# --------------------------------------------------------------------------------------------

BIAS_RATIO_LIMIT = 2.0
"""A worst / best group ratio above this gets a sentence; the highlighted box when the counts support it."""

CI_NOTE = (
    "Intervals: percentile bootstrap over the pairs of each group; pairs sharing an image or a person are "
    "not independent, so the intervals are optimistic (too narrow). A group with no error gets [0, 0]: "
    "read it as fewer than about 3 / n."
)

CI_NOTE_IMAGES = (
    "Intervals: percentile bootstrap over the images of each group. A group with no failure gets [0, 0]: "
    "read it as fewer than about 3 / n."
)

CLAIM_NOTE = (
    "A worst / best ratio above 2 is called a material disparity only when the counts support it: at least "
    "{min_errors} errors in each of the two groups and an exact 95 % interval of the ratio that lies above 2. "
    "Otherwise the sentence says that the counts cannot support a claim."
)

UTKFACE_IMPOSTOR_NOTE = (
    "UTKFace has no identity labels: every cross pair of images inside a group is treated as an impostor "
    "pair (a very small number of same-person pairs may exist, which can only inflate the FMR). "
    "FNMR cannot be measured here."
)

_METRIC_FIELDS: dict[str, tuple[str, str, str, str]] = {
    # metric -> (n field, error-count field, rate field, interval field) of GroupRate / GroupProportion.to_dict()
    "fmr": ("n_impostor", "false_matches", "fmr", "fmr_ci"),
    "fnmr": ("n_genuine", "false_non_matches", "fnmr", "fnmr_ci"),
    "rate": ("n", "count", "rate", "rate_ci"),
}
_METRIC_LABELS = {"fmr": "FMR", "fnmr": "FNMR", "rate": "rate"}
_METRIC_NOUNS = {
    # metric -> (what an error is called, what n counts)
    "fmr": ("false matches", "impostor pairs"),
    "fnmr": ("false non-matches", "genuine pairs"),
    "rate": ("failures", "images"),
}


@dataclass(frozen=True)
class BiasSection:
    """Error rates per demographic group at one global threshold, as shown in a report.

    Build it with :func:`bias_section` (or :func:`faceprint.evaluation.lfw.lfw_gender_bias`), which fills
    ``ratios`` and ``sentences`` from :func:`faceprint.evaluation.bias.worst_best_ratio` and
    :func:`faceprint.evaluation.bias.bias_sentences`.

    Attributes
    ----------
    title : str
    model : str
    metrics : tuple of str
        ``"fnmr"`` / ``"fmr"`` for :class:`~faceprint.evaluation.bias.GroupRate` rates, ``"rate"`` for
        :class:`~faceprint.evaluation.bias.GroupProportion` rates.
    rates : tuple of dict
        ``GroupRate.to_dict()`` or ``GroupProportion.to_dict()`` per group.
    ratios : tuple of dict
        One per metric: ``{metric, label, ratio, worst, best, floored, excluded, status, exceeds_limit,
        ci_low, ci_high, ci, worst_errors, best_errors, worst_n, best_n, min_errors, claim, supported,
        events, unit}``; ``ratio`` is None when undefined (``status`` says why); ``exceeds_limit`` is the
        point ratio above ``limit``, ``supported`` whether the counts support calling it a disparity
        (``claim``: ``disparity``, ``no disparity`` or ``inconclusive``, see
        :func:`faceprint.evaluation.bias.ratio_claim`).
    sentences : tuple of str
        One per metric whose ratio exceeds ``limit``: a disparity where the counts support it, else
        a statement that they cannot.
    note : str
        Caveats shown under the title (e.g. the UTKFace impostor-pair assumption).
    threshold : float, optional
        The global operating threshold the rates were measured at.
    label : str
        Name of the metric ``"rate"`` (e.g. ``"detection failure rate"``).
    limit : float
    events, unit : str
        What an error of the ``"rate"`` metric is called and what its ``n`` counts (default
        ``failures`` / ``images``); FMR and FNMR count false (non-)matches in impostor (genuine) pairs.
    """

    title: str
    model: str
    metrics: tuple[str, ...]
    rates: tuple[dict[str, Any], ...]
    ratios: tuple[dict[str, Any], ...]
    sentences: tuple[str, ...]
    note: str = ""
    threshold: float | None = None
    label: str = ""
    limit: float = BIAS_RATIO_LIMIT
    events: str = ""
    unit: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in ``report["bias"]``: also the per-metric table rows that are rendered.

        Each table holds ``metric, label, events, unit, rows``; a row ``group, n, errors, rate, ci_low,
        ci_high, n_total, sampled`` (``n_total``: the group's pairs when ``n`` is a sample of them).
        """
        tables = []
        for metric in self.metrics:
            n_key, k_key, r_key, ci_key = _METRIC_FIELDS[metric]
            rows = [
                {
                    "group": r["group"],
                    "n": int(r[n_key]),
                    "errors": int(r[k_key]),
                    "rate": r[r_key],
                    "ci_low": r[ci_key][0],
                    "ci_high": r[ci_key][1],
                    "n_total": int(r.get("n_impostor_total", r[n_key])) if metric == "fmr" else int(r[n_key]),
                    "sampled": bool(r.get("sampled", False)) and metric == "fmr",
                }
                for r in self.rates
                if int(r[n_key]) > 0
            ]
            events, unit = self._nouns(metric)
            tables.append(
                {"metric": metric, "label": self._label(metric), "events": events, "unit": unit, "rows": rows}
            )
        return {
            "title": self.title,
            "model": self.model,
            "threshold": None if self.threshold is None else _num(self.threshold),
            "metrics": list(self.metrics),
            "rates": [dict(r) for r in self.rates],
            "tables": tables,
            "ratios": [dict(r) for r in self.ratios],
            "sentences": list(self.sentences),
            "highlight": any(r.get("supported", False) for r in self.ratios),
            "limit": float(self.limit),
            "note": self.note,
        }

    def _label(self, metric: str) -> str:
        return self.label if metric == "rate" and self.label else _METRIC_LABELS[metric]

    def _nouns(self, metric: str) -> tuple[str, str]:
        events, unit = _METRIC_NOUNS[metric]
        if metric == "rate":
            return self.events or events, self.unit or unit
        return events, unit


def _ratio_info(
    rates: Sequence[GroupRate | GroupProportion],
    metric: Metric,
    exclude: Collection[str],
    limit: float,
    label: str,
    nouns: tuple[str, str],
    min_errors: int,
) -> dict[str, Any]:
    from .bias import disparity_claim, worst_best_ratio

    info: dict[str, Any] = {
        "metric": metric,
        "label": label,
        "ratio": None,
        "worst": None,
        "best": None,
        "floored": False,
        "excluded": sorted(exclude),
        "status": "too few groups",
        "exceeds_limit": False,
        "ci_low": None,
        "ci_high": None,
        "ci": 0.95,
        "worst_errors": None,
        "best_errors": None,
        "worst_n": None,
        "best_n": None,
        "min_errors": int(min_errors),
        "claim": None,
        "supported": False,
        "events": nouns[0],
        "unit": nouns[1],
    }
    try:
        ratio, worst, best = worst_best_ratio(rates, metric, exclude=exclude)
    except ValueError:
        return info
    rate_key = _METRIC_FIELDS[metric][2]
    worst_rate, best_rate = float(getattr(worst, rate_key)), float(getattr(best, rate_key))
    if math.isnan(ratio) and worst_rate == 0.0:
        info["status"] = "no errors"  # no worst or best group to name
        return info
    info.update(worst=worst.group, best=best.group)
    claim = disparity_claim(rates, metric, exclude=exclude, limit=limit, min_errors=min_errors)
    if claim is not None:
        info.update(
            ci_low=_num(round(claim.ci_low, 6)),
            ci_high=_num(round(claim.ci_high, 6)),
            ci=claim.ci,
            worst_errors=claim.worst_errors,
            best_errors=claim.best_errors,
            worst_n=claim.worst_n,
            best_n=claim.best_n,
            claim=claim.claim,
            supported=claim.supported,
        )
    if math.isnan(ratio):
        info["status"] = "not resolvable"
        return info
    info.update(
        ratio=_num(round(ratio, 6)),
        floored=best_rate == 0.0,
        status="ok",
        exceeds_limit=bool(ratio > limit),
    )
    return info


def bias_section(
    title: str,
    model: str,
    rates: Sequence[GroupRate | GroupProportion],
    metrics: Sequence[Metric] = ("fnmr", "fmr"),
    *,
    threshold: float | None = None,
    exclude: Collection[str] = (),
    note: str = "",
    label: str = "",
    limit: float = BIAS_RATIO_LIMIT,
    events: str = "",
    unit: str = "",
    min_errors: int | None = None,
) -> BiasSection:
    """A :class:`BiasSection` from per-group rates of :mod:`faceprint.evaluation.bias`.

    Parameters
    ----------
    title, model : str
    rates : sequence of GroupRate or GroupProportion
    metrics : sequence of {"fnmr", "fmr", "rate"}
        Metrics shown (``"rate"`` for GroupProportion).
    threshold : float, optional
        The global threshold (shown; the rates must already be measured at it).
    exclude : collection of str
        Groups listed but left out of the worst / best ratio (e.g. ``"mixed"``, ``"unknown"``).
    note : str
        Caveats shown with the section.
    label : str
        Name of the ``"rate"`` metric (e.g. ``"detection failure rate"``).
    limit : float, default 2
        Ratios above it get a sentence; the highlighted box where the counts support the claim.
    events, unit : str
        What an error of the ``"rate"`` metric is called and what its ``n`` counts (default
        ``failures`` and ``images``).
    min_errors : int, optional
        Errors each of the worst and best groups needs for a claim (default
        :data:`~faceprint.evaluation.bias.MIN_ERRORS_FOR_CLAIM`).

    Examples
    --------
    >>> from faceprint.evaluation.bias import group_error_rates
    >>> rates = group_error_rates([0.9, 0.9, 0.1, 0.9, 0.1, 0.1], [0] * 6, list("aabbbb"), 0.5, n_boot=10)
    >>> s = bias_section("demo", "m", rates, ("fmr",), threshold=0.5)
    >>> s.ratios[0]["ratio"], s.ratios[0]["claim"], s.sentences[0].split(": ")[0]
    (4.0, 'inconclusive', 'FMR of group a is 4.0 times that of group b, but the counts cannot support a claim')
    """
    from .bias import MIN_ERRORS_FOR_CLAIM, bias_sentences

    need = MIN_ERRORS_FOR_CLAIM if min_errors is None else int(min_errors)

    ms = tuple(metrics)
    if not ms:
        raise InvalidArgumentError("expected at least one metric")
    for m in ms:
        if m not in _METRIC_FIELDS:
            raise InvalidArgumentError(f"unknown metric {m!r}; valid: {', '.join(_METRIC_FIELDS)}")
    ratios, sentences = [], []
    for m in ms:
        name = label if m == "rate" and label else _METRIC_LABELS[m]
        nouns = (events or _METRIC_NOUNS[m][0], unit or _METRIC_NOUNS[m][1]) if m == "rate" else _METRIC_NOUNS[m]
        ratios.append(_ratio_info(rates, m, exclude, limit, name, nouns, need))
        sentences += bias_sentences(
            rates, (m,), exclude=exclude, limit=limit, what=label if m == "rate" else "",
            events=nouns[0], unit=nouns[1], min_errors=need,
        )
    return BiasSection(
        title=str(title),
        model=str(model),
        metrics=ms,
        rates=tuple(r.to_dict() for r in rates),
        ratios=tuple(ratios),
        sentences=tuple(sentences),
        note=note,
        threshold=None if threshold is None else float(threshold),
        label=label,
        limit=float(limit),
        events=events,
        unit=unit,
    )


def build_report(
    models: Sequence[ModelScores],
    *,
    title: str,
    fmrs: Sequence[float] = (1e-2, 1e-3, 1e-4),
    operating_fmr: float = 1e-3,
    bias: Sequence[BiasSection] | None = None,
) -> dict[str, Any]:
    """JSON-ready evaluation report of one or more models on the same pair protocol.

    Parameters
    ----------
    models : sequence of ModelScores
        One entry per model, names unique; shown side by side in that order.
    title : str
        Report title.
    fmrs : sequence of float, default (1e-2, 1e-3, 1e-4)
        False match rates of the threshold table (in ``(0, 1]``).
    operating_fmr : float, default 1e-3
        FMR whose threshold is drawn on the score histograms (``operating_threshold``).
    bias : sequence of BiasSection, optional
        Demographic bias sections; when given the report holds ``bias`` (``BiasSection.to_dict()``
        each, rendered as the ``bias`` section of the page) and ``models`` may be empty.

    Returns
    -------
    dict
        ``{"title", "fmrs", "operating_fmr", "fmr_keys", "has_cmc", "models": [...]}``; each model
        entry holds ``model, n_pairs, n_genuine, n_impostor, failures_to_acquire, fta_pairs,
        fta_rate, accuracy, accuracy_std, fold_accuracies, fixed_threshold, auc, eer,
        operating_threshold``, ``thresholds`` (rows ``{fmr, threshold, fnmr, tar, fmr_measured,
        resolved}``, from :func:`~faceprint.evaluation.threshold_at_fmr` and
        :func:`~faceprint.evaluation.tar_at_fmr`; ``fmr_measured`` is the impostor fraction
        ``>=`` the threshold), ``roc`` ``{fmr, tar}`` and ``det`` ``{fmr, fnmr}`` (at most
        :data:`MAX_CURVE_POINTS` points of :func:`sklearn.metrics.roc_curve`, NaN scores ranked
        lowest), ``histogram`` ``{edges, genuine, impostor}`` and ``cmc`` (list or None).
        Only lists, dicts, str, int, float, bool and None: ``json.loads(json.dumps(r)) == r``.

    Raises
    ------
    ValueError
        On no models (and no bias section), duplicate names, malformed scores, or an FMR outside ``(0, 1]``.

    Examples
    --------
    >>> m = ModelScores("m", np.array([0.9, 0.8, 0.3, 0.1]), np.array([1, 1, 0, 0], bool),
    ...                 np.array([0, 1, 0, 1]), failures_to_acquire=0)
    >>> r = build_report([m], title="demo", fmrs=(0.5,))
    >>> r["models"][0]["thresholds"][0]["tar"], r["models"][0]["auc"]
    (1.0, 1.0)
    """
    if len(models) == 0 and not bias:
        raise InvalidArgumentError("expected at least one model, got none")
    names = [m.model for m in models]
    if len(set(names)) != len(names):
        raise InvalidArgumentError(f"model names must be unique, got {names}")
    fmr_list = [float(v) for v in fmrs]
    for v in [*fmr_list, float(operating_fmr)]:
        if not 0.0 < v <= 1.0:
            raise InvalidArgumentError(f"expected false match rates in (0, 1], got {v!r}")
    entries = [_model_entry(m, fmr_list, float(operating_fmr)) for m in models]
    report: dict[str, Any] = {
        "title": str(title),
        "fmrs": fmr_list,
        "fmr_keys": [fmr_key(v) for v in fmr_list],
        "operating_fmr": float(operating_fmr),
        "has_cmc": any(e["cmc"] is not None for e in entries),
        "models": entries,
    }
    if bias is not None:
        report["bias"] = [b.to_dict() for b in bias]
    return report
