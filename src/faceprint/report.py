"""Evaluation reports: one JSON file and one self-contained HTML page per evaluation run.

:func:`build_report` turns the pair scores of one or more models into a JSON-ready ``dict``: k-fold
accuracy, AUC, EER, a threshold table at fixed false match rates, failures to acquire, ROC / DET
points, score histograms and, when identification was run, the CMC curve. Every number comes from
:mod:`faceprint.evaluation` or :func:`sklearn.metrics.roc_curve`; nothing is recomputed here.

:func:`write_report` writes that dict unchanged to ``report.json`` and renders ``report.html``:
plain HTML with inline CSS and matplotlib figures embedded as base64 PNG, so the page opens
offline (no CDN, no external file). Each table cell carries its raw JSON value in a
``data-value`` attribute; the text shown is that value through one formatter.

Non-finite values (a threshold of ``-inf`` at FMR 1, a CMC entry with no mated probe) are stored
as ``null`` so that ``report.json`` is strict JSON.

The optional bias section (:class:`BiasSection`, built with :func:`bias_section` or
:func:`lfw_gender_bias`) shows error rates per demographic group at one global threshold
(:mod:`faceprint.bias`): a table and a bar chart with bootstrap intervals, the worst / best group
ratio, and a highlighted sentence when that ratio exceeds 2.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import roc_curve

from .errors import InvalidArgumentError
from .evaluation import evaluate_verification, finite_scores, fmr_key, tar_at_fmr, threshold_at_fmr

if TYPE_CHECKING:
    from .bias import GroupProportion, GroupRate, Metric
    from .evaluation import Pair

__all__ = [
    "ModelScores",
    "BiasSection",
    "bias_section",
    "lfw_gender_bias",
    "build_report",
    "write_report",
    "MAX_CURVE_POINTS",
    "HISTOGRAM_BINS",
    "BIAS_RATIO_LIMIT",
    "CI_NOTE",
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
"""A worst / best group ratio above this is called out (sentence, highlighted box)."""

CI_NOTE = (
    "Intervals: percentile bootstrap over the pairs of each group; pairs sharing an image or a person are "
    "not independent, so the intervals are optimistic (too narrow). A group with no error gets [0, 0]: "
    "read it as fewer than about 3 / n."
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


@dataclass(frozen=True)
class BiasSection:
    """Error rates per demographic group at one global threshold, as shown in a report.

    Build it with :func:`bias_section` (or :func:`lfw_gender_bias`), which fills ``ratios`` and
    ``sentences`` from :func:`faceprint.bias.worst_best_ratio` and :func:`faceprint.bias.bias_sentences`.

    Attributes
    ----------
    title : str
    model : str
    metrics : tuple of str
        ``"fnmr"`` / ``"fmr"`` for :class:`~faceprint.bias.GroupRate` rates, ``"rate"`` for
        :class:`~faceprint.bias.GroupProportion` rates.
    rates : tuple of dict
        ``GroupRate.to_dict()`` or ``GroupProportion.to_dict()`` per group.
    ratios : tuple of dict
        One per metric: ``{metric, label, ratio, worst, best, floored, excluded, status, exceeds_limit}``;
        ``ratio`` is None when undefined (``status`` says why).
    sentences : tuple of str
        One per metric whose ratio exceeds ``limit``.
    note : str
        Caveats shown under the title (e.g. the UTKFace impostor-pair assumption).
    threshold : float, optional
        The global operating threshold the rates were measured at.
    label : str
        Name of the metric ``"rate"`` (e.g. ``"detection failure rate"``).
    limit : float
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

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in ``report["bias"]``: also the per-metric table rows that are rendered."""
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
                }
                for r in self.rates
                if int(r[n_key]) > 0
            ]
            tables.append({"metric": metric, "label": self._label(metric), "rows": rows})
        return {
            "title": self.title,
            "model": self.model,
            "threshold": None if self.threshold is None else _num(self.threshold),
            "metrics": list(self.metrics),
            "rates": [dict(r) for r in self.rates],
            "tables": tables,
            "ratios": [dict(r) for r in self.ratios],
            "sentences": list(self.sentences),
            "highlight": any(r["exceeds_limit"] for r in self.ratios),
            "limit": float(self.limit),
            "note": self.note,
        }

    def _label(self, metric: str) -> str:
        return self.label if metric == "rate" and self.label else _METRIC_LABELS[metric]


def _ratio_info(
    rates: Sequence[GroupRate | GroupProportion], metric: Metric, exclude: Collection[str], limit: float, label: str
) -> dict[str, Any]:
    from .bias import worst_best_ratio

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
) -> BiasSection:
    """A :class:`BiasSection` from per-group rates of :mod:`faceprint.bias`.

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
        Ratios above it get a sentence and the highlighted box.

    Examples
    --------
    >>> from faceprint.bias import group_error_rates
    >>> rates = group_error_rates([0.9, 0.9, 0.1, 0.9, 0.1, 0.1], [0] * 6, list("aabbbb"), 0.5, n_boot=10)
    >>> s = bias_section("demo", "m", rates, ("fmr",), threshold=0.5)
    >>> s.ratios[0]["ratio"], s.sentences
    (4.0, ('FMR of group a is 4.0 times that of group b (above 2: a material disparity)',))
    """
    from .bias import bias_sentences

    ms = tuple(metrics)
    if not ms:
        raise InvalidArgumentError("expected at least one metric")
    for m in ms:
        if m not in _METRIC_FIELDS:
            raise InvalidArgumentError(f"unknown metric {m!r}; valid: {', '.join(_METRIC_FIELDS)}")
    ratios, sentences = [], []
    for m in ms:
        name = label if m == "rate" and label else _METRIC_LABELS[m]
        ratios.append(_ratio_info(rates, m, exclude, limit, name))
        sentences += bias_sentences(rates, (m,), exclude=exclude, limit=limit, what=label if m == "rate" else "")
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
    )


def lfw_gender_bias(
    scores: npt.ArrayLike,
    labels: npt.ArrayLike,
    pairs: Sequence[Pair],
    root: Path,
    threshold: float,
    model: str,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    title: str = "LFW pairs by gender",
) -> BiasSection:
    """FNMR and FMR of LFW pairs by gender (``male_names.txt`` / ``female_names.txt``) at ``threshold``.

    ``scores`` / ``labels`` are aligned with ``pairs`` (e.g. from :func:`faceprint.lfw.lfw_scores` and
    :func:`faceprint.lfw.lfw_pairs` with the same folds). Pair groups: ``male``, ``female``,
    ``mixed`` (a man and a woman: impostor pairs only) and ``unknown`` (an image in neither list);
    ``mixed`` and ``unknown`` are listed but left out of the worst / best ratios.

    Raises
    ------
    DatasetNotFoundError
        When the gender lists are not found under ``root`` (see :func:`faceprint.bias.lfw_gender`).
    ValueError
        When the lengths differ.
    """
    from .bias import group_error_rates, lfw_gender, pair_gender_groups

    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    if s.shape != (len(pairs),) or y.shape != s.shape:
        raise InvalidArgumentError(f"expected scores and labels of {len(pairs)} pairs, got {s.shape} and {y.shape}")
    groups = pair_gender_groups([p.path_a for p in pairs], [p.path_b for p in pairs], lfw_gender(root))
    rates = group_error_rates(s, y, groups, threshold, n_boot=n_boot, seed=seed)
    note = (
        f"{len(pairs)} pairs at the global threshold {threshold:.4f}; a failure to acquire counts as a non-match. "
        "'mixed' pairs (a man and a woman) are impostor pairs only and 'unknown' pairs have an image in neither "
        "gender list: both are listed, not ranked. " + CI_NOTE
    )
    return bias_section(
        title, model, rates, ("fnmr", "fmr"), threshold=threshold, exclude=("mixed", "unknown"), note=note
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


# --------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------


def format_value(value: Any) -> str:
    """The text shown for a report value (one rounding everywhere: 4 significant digits)."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    return f"{float(value):.4g}"


def _cell(value: Any, tag: str = "td") -> str:
    raw = json.dumps(value, allow_nan=False)
    return f'<{tag} data-value="{html.escape(raw)}">{html.escape(format_value(value))}</{tag}>'


def _png(fig: Any) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _img(src: str, alt: str) -> str:
    return f'<img src="{src}" alt="{html.escape(alt)}">'


def _figures(report: dict[str, Any]) -> dict[str, str]:
    # Figures drawn on an explicit Agg canvas (see _png): no pyplot, no global backend switch.
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    models = report["models"]
    out: dict[str, str] = {}

    fig = Figure(figsize=(6, 4.5))
    ax = fig.add_subplot()
    for m in models:
        ax.plot(m["roc"]["fmr"], m["roc"]["tar"], label=f"{m['model']} (AUC {format_value(m['auc'])})")
    ax.plot([0, 1], [0, 1], color="0.7", linestyle=":", linewidth=1)
    ax.set_xlabel("false match rate (FMR)")
    ax.set_ylabel("true accept rate (TAR)")
    ax.set_title("ROC")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    out["roc"] = _png(fig)

    fig = Figure(figsize=(6, 4.5))
    ax = fig.add_subplot()
    low_x, low_y = min(report["fmrs"]), 1e-3
    for m in models:
        x = np.asarray(m["det"]["fmr"], dtype=np.float64)
        y = np.asarray(m["det"]["fnmr"], dtype=np.float64)
        ok = (x > 0) & (y > 0)  # zeros have no place on log axes
        ax.plot(x[ok], y[ok], label=m["model"])
        if ok.any():
            low_x, low_y = min(low_x, float(x[ok].min())), min(low_y, float(y[ok].min()))
    for fmr in report["fmrs"]:
        ax.axvline(fmr, color="0.7", linestyle=":", linewidth=1)
    # explicit limits: a perfectly separated model has no point with both rates > 0
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(low_x / 2, 1.0)
    ax.set_ylim(low_y / 2, 1.0)
    ax.set_xlabel("false match rate (FMR, log)")
    ax.set_ylabel("false non-match rate (FNMR, log)")
    ax.set_title("DET")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper right")
    fig.tight_layout()
    out["det"] = _png(fig)

    n = len(models)
    fig = Figure(figsize=(5 * n, 3.8))
    for i, m in enumerate(models):
        ax = fig.add_subplot(1, n, i + 1)
        h = m["histogram"]
        ax.stairs(h["impostor"], h["edges"], fill=True, alpha=0.5, label="impostor", color="tab:red")
        ax.stairs(h["genuine"], h["edges"], fill=True, alpha=0.5, label="genuine", color="tab:green")
        if m["operating_threshold"] is not None:
            key = fmr_key(report["operating_fmr"])
            ax.axvline(m["operating_threshold"], color="k", linestyle="--", label=f"threshold @ FMR {key}")
        ax.set_title(m["model"])
        ax.set_xlabel("score")
        ax.set_ylabel("pairs")
        ax.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    out["histograms"] = _png(fig)

    if report["has_cmc"]:
        fig = Figure(figsize=(6, 4.5))
        ax = fig.add_subplot()
        for m in models:
            if m["cmc"] is not None:
                ranks = np.arange(1, len(m["cmc"]) + 1)
                values = np.array([np.nan if v is None else v for v in m["cmc"]], dtype=np.float64)
                ax.plot(ranks, values, marker="o", markersize=3, label=m["model"])
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("rank")
        ax.set_ylabel("identification rate")
        ax.set_title("CMC")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right")
        fig.tight_layout()
        out["cmc"] = _png(fig)
    return out


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1400px; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .5em 1.5em 1em 0; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th:first-child, td.label { text-align: left; }
thead th { background: #f2f2f2; }
.row { display: flex; flex-wrap: wrap; align-items: flex-start; }
img { max-width: 100%; }
.note { color: #666; font-size: .9em; }
.bias-alert { background: #fff3cd; border: 1px solid #e0a800; border-left: 6px solid #e0a800;
  padding: .5em 1em; margin: .5em 0 1em; }
.bias-alert p { margin: .3em 0; font-weight: 600; }
"""


def _summary_table(report: dict[str, Any]) -> str:
    models = report["models"]
    head = '<th>metric</th>' + "".join(f"<th>{html.escape(m['model'])}</th>" for m in models)
    rows: list[tuple[str, list[Any]]] = [
        ("pairs", [m["n_pairs"] for m in models]),
        ("genuine pairs", [m["n_genuine"] for m in models]),
        ("impostor pairs", [m["n_impostor"] for m in models]),
        ("failures to acquire", [m["failures_to_acquire"] for m in models]),
        ("pairs with a failure to acquire", [m["fta_pairs"] for m in models]),
        ("FTA rate (pairs)", [m["fta_rate"] for m in models]),
        ("accuracy", [m["accuracy"] for m in models]),
        ("accuracy std (over folds)", [m["accuracy_std"] for m in models]),
        ("ROC AUC", [m["auc"] for m in models]),
        ("EER", [m["eer"] for m in models]),
    ]
    for i, key in enumerate(report["fmr_keys"]):
        rows.append((f"TAR @ FMR {key}", [m["thresholds"][i]["tar"] for m in models]))
    rows.append(
        (f"threshold @ FMR {fmr_key(report['operating_fmr'])}", [m["operating_threshold"] for m in models])
    )
    body = "".join(
        f'<tr data-key="{html.escape(label)}"><td class="label">{html.escape(label)}</td>'
        + "".join(_cell(v) for v in values)
        + "</tr>"
        for label, values in rows
    )
    return f'<table id="summary-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _threshold_tables(report: dict[str, Any]) -> str:
    parts = []
    for m in report["models"]:
        body = "".join(
            "<tr>"
            + _cell(r["fmr"])
            + _cell(r["threshold"])
            + _cell(r["fnmr"])
            + _cell(r["tar"])
            + _cell(r["fmr_measured"])
            + _cell(r["resolved"])
            + "</tr>"
            for r in m["thresholds"]
        )
        parts.append(
            f'<div><h3>{html.escape(m["model"])}</h3>'
            f'<table class="thresholds" data-model="{html.escape(m["model"])}"><thead><tr>'
            "<th>FMR</th><th>threshold</th><th>FNMR</th><th>TAR</th><th>FMR measured</th><th>resolved</th>"
            f"</tr></thead><tbody>{body}</tbody></table></div>"
        )
    return '<div class="row">' + "".join(parts) + "</div>"


def _cmc_table(report: dict[str, Any]) -> str:
    models = [m for m in report["models"] if m["cmc"] is not None]
    max_len = max(len(m["cmc"]) for m in models)
    ranks = [k for k in (1, 5, 10, 20) if k <= max_len]
    head = "<th>rank</th>" + "".join(f"<th>{html.escape(m['model'])}</th>" for m in models)
    body = "".join(
        f'<tr><td class="label">{k}</td>'
        + "".join(_cell(m["cmc"][k - 1] if k <= len(m["cmc"]) else None) for m in models)
        + "</tr>"
        for k in ranks
    )
    return f'<table id="cmc-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _bias_figure(section: dict[str, Any]) -> str:
    """Horizontal bars of each metric's rate per group, with the bootstrap interval as error bars."""
    from matplotlib.figure import Figure

    tables = section["tables"]
    n_rows = max([len(t["rows"]) for t in tables] + [1])
    fig = Figure(figsize=(5 * len(tables), 1.2 + 0.4 * n_rows))
    for i, t in enumerate(tables):
        ax = fig.add_subplot(1, len(tables), i + 1)
        rows = [r for r in t["rows"] if r["rate"] is not None]
        y = np.arange(len(rows))
        rate = np.array([r["rate"] for r in rows], dtype=np.float64)
        low = np.array([r["ci_low"] if r["ci_low"] is not None else r["rate"] for r in rows], dtype=np.float64)
        high = np.array([r["ci_high"] if r["ci_high"] is not None else r["rate"] for r in rows], dtype=np.float64)
        xerr = np.vstack((np.clip(rate - low, 0, None), np.clip(high - rate, 0, None))) if rows else None
        ax.barh(y, rate, xerr=xerr, color="tab:blue", alpha=0.7, capsize=3, ecolor="k")
        ax.set_yticks(y, [r["group"] for r in rows])
        ax.invert_yaxis()
        ax.set_xlabel(f"{t['label']} (bars: {int(round(100 * _ci_level(section)))} % interval)")
        ax.set_title(f"{t['label']} by group")
        ax.grid(True, axis="x", alpha=0.3)
        if not rows or float(np.nanmax(high, initial=0.0)) == 0.0:
            ax.set_xlim(0, 1e-3)  # all zero: keep a visible axis
    fig.tight_layout()
    return _png(fig)


def _ci_level(section: dict[str, Any]) -> float:
    for r in section["rates"]:
        if "ci" in r:
            return float(r["ci"])
    return 0.95


def _ratio_text(r: dict[str, Any]) -> str:
    name = html.escape(r["label"])
    if r["status"] == "too few groups":
        return f"worst / best {name}: undefined (fewer than two groups with data)"
    worst, best = html.escape(str(r["worst"])), html.escape(str(r["best"]))
    if r["status"] == "no errors":
        return f"worst / best {name}: undefined (no error in any group)"
    if r["status"] == "not resolvable":
        return f"worst / best {name}: not resolvable ({best} had no error in too few pairs to tell)"
    value = f'<span class="ratio" data-value="{html.escape(json.dumps(r["ratio"]))}">{format_value(r["ratio"])}</span>'
    floor = f" (no error in {best}: its rate floored at 1 / n, a lower bound)" if r["floored"] else ""
    return f"worst / best {name}: {value} ({worst} / {best}){floor}"


def _bias_section_html(index: int, section: dict[str, Any]) -> str:
    threshold = "" if section["threshold"] is None else f" at threshold {format_value(section['threshold'])}"
    parts = [
        f'<div class="bias-block" id="bias-{index}"><h3>{html.escape(section["title"])} '
        f"({html.escape(section['model'])}){threshold}</h3>"
    ]
    if section["note"]:
        parts.append(f'<p class="note">{html.escape(section["note"])}</p>')
    tables = []
    for t in section["tables"]:
        body = "".join(
            f'<tr data-group="{html.escape(r["group"])}"><td class="label">{html.escape(r["group"])}</td>'
            + _cell(r["n"])
            + _cell(r["errors"])
            + _cell(r["rate"])
            + _cell(r["ci_low"])
            + _cell(r["ci_high"])
            + "</tr>"
            for r in t["rows"]
        )
        label = html.escape(t["label"])
        tables.append(
            f'<div><table class="bias" data-section="{index}" data-metric="{html.escape(t["metric"])}"><thead><tr>'
            f"<th>group</th><th>n</th><th>errors</th><th>{label}</th><th>CI low</th><th>CI high</th>"
            f"</tr></thead><tbody>{body}</tbody></table></div>"
        )
    parts.append('<div class="row">' + "".join(tables) + "</div>")
    parts.append(_img(_bias_figure(section), f"{section['title']}: rates per group with intervals"))
    parts.append("<ul class=\"ratios\">" + "".join(f"<li>{_ratio_text(r)}</li>" for r in section["ratios"]) + "</ul>")
    if section["sentences"]:
        cls = "bias-alert" if section["highlight"] else "bias-sentences"
        parts.append(
            f'<div class="{cls}">' + "".join(f"<p>{html.escape(x)}</p>" for x in section["sentences"]) + "</div>"
        )
    else:
        parts.append(f'<p class="note">No worst / best ratio exceeds {format_value(section["limit"])}.</p>')
    parts.append("</div>")
    return "".join(parts)


def _bias_html(report: dict[str, Any]) -> str:
    blocks = "".join(_bias_section_html(i, s) for i, s in enumerate(report["bias"]))
    return (
        '<section id="bias"><h2>Bias</h2>'
        '<p class="note">Error rates per demographic group at one global operating threshold. '
        "A worst / best ratio above 2 is called out.</p>"
        f"{blocks}</section>"
    )


def render_html(report: dict[str, Any]) -> str:
    """The self-contained HTML page of a :func:`build_report` dict (see :func:`write_report`)."""
    title = html.escape(report["title"])
    sections: list[str] = []
    if report["models"]:
        sections += _model_sections(report)
    if "bias" in report:
        sections.append(_bias_html(report))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title><style>{_CSS}</style></head><body>"
        f"<h1>{title}</h1>" + "\n".join(sections) + "</body></html>\n"
    )


def _model_sections(report: dict[str, Any]) -> list[str]:
    figs = _figures(report)
    names = ", ".join(html.escape(m["model"]) for m in report["models"])
    sections = [
        '<section id="summary"><h2>Summary</h2>'
        f'<p class="note">Models: {names}. Accuracy: k-fold protocol (threshold chosen on the other folds). '
        "Failures to acquire count as non-matches everywhere.</p>"
        f"{_summary_table(report)}</section>",
        f'<section id="roc"><h2>ROC</h2>{_img(figs["roc"], "ROC curves")}</section>',
        f'<section id="det"><h2>DET</h2>{_img(figs["det"], "DET curves, log axes")}</section>',
        '<section id="histograms"><h2>Score histograms</h2>'
        f'<p class="note">Dashed line: threshold at FMR {fmr_key(report["operating_fmr"])}.</p>'
        f'{_img(figs["histograms"], "genuine and impostor score histograms")}</section>',
        '<section id="thresholds"><h2>Thresholds</h2>'
        '<p class="note">Match when score &ge; threshold. "resolved" is no when the FMR is below '
        "1 / impostor pairs: the threshold then only lies above every impostor seen.</p>"
        f"{_threshold_tables(report)}</section>",
    ]
    if report["has_cmc"]:
        sections.append(
            f'<section id="cmc"><h2>CMC</h2>{_img(figs["cmc"], "CMC curves")}{_cmc_table(report)}</section>'
        )
    return sections


def write_report(report: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write ``report.json`` (the dict, unchanged) and a self-contained ``report.html``.

    Parameters
    ----------
    report : dict
        From :func:`build_report`.
    out_dir : Path
        Created when missing; existing report files are overwritten.

    Returns
    -------
    json_path, html_path : Path

    Raises
    ------
    ValueError
        When the dict holds NaN or infinity (not valid JSON).

    Examples
    --------
    >>> m = ModelScores("m", np.array([0.9, 0.8, 0.3, 0.1]), np.array([1, 1, 0, 0], bool),
    ...                 np.array([0, 1, 0, 1]), failures_to_acquire=0)
    >>> json_path, html_path = write_report(build_report([m], title="demo"), Path("out"))  # doctest: +SKIP
    """
    out = Path(out_dir)
    text = json.dumps(report, indent=2, allow_nan=False)
    page = render_html(report)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "report.json"
    html_path = out / "report.html"
    json_path.write_text(text + "\n", encoding="utf-8")
    html_path.write_text(page, encoding="utf-8")
    return json_path, html_path
