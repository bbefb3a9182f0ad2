"""1:N identification metrics and the N-shot gallery protocol (closed-set CMC, open-set DIR @ FPIR).

Pure metric / protocol code on embeddings and similarity scores (numpy + scikit-learn); it never
loads a model. A caller embeds every image of a data set once, then :func:`evaluate_identification`
splits the images into an N-shot gallery, mated probes and non-mated probes (:func:`nshot_split`),
scores the probes against the gallery (:func:`gallery_scores`, or a classifier from
:mod:`faceprint.classification`) and reports:

* closed-set identification: the *cumulative match characteristic* (:func:`cmc`), the fraction of
  mated probes whose true identity is among the ``k`` best-scoring enrolled identities;
* open-set identification, NIST FRTE 1:N style (:func:`dir_at_fpir`): the *false positive
  identification rate* FPIR(T), the fraction of non-mated probes (people never enrolled) whose best
  score is ``>= T``, and the *detection and identification rate* DIR(T, R), the fraction of mated
  probes whose true identity is at rank ``<= R`` **and** scores ``>= T``. DIR is quoted at the
  threshold ``T`` where FPIR reaches a target (0.01, 0.1); a miss at rank 1 and a correct rank-1
  candidate below ``T`` are both errors, so DIR(FPIR=1, R=1) equals the rank-1 rate.

Conventions:

* scores are similarities (higher = more alike); score matrices are ``(n_probes, n_identities)``;
* a ``NaN`` score (a probe that failed to acquire) counts as ``-inf``: never ranked above anything,
  never accepted;
* **ties count against the probe**: an identity whose score equals the true identity's score is
  ranked ahead of it (pessimistic rank), and a threshold set on non-mated scores is the float just
  above a non-mated score, so non-mated (and mated) probes tied with it are rejected.
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from sklearn.base import clone

from faceprint.evaluation import threshold_at_fmr

from .errors import InvalidArgumentError

__all__ = [
    "IdentificationReport",
    "identities_with_at_least",
    "nshot_split",
    "rank_of_true",
    "cmc",
    "dir_at_fpir",
    "gallery_scores",
    "evaluate_identification",
    "fpir_key",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
Aggregate = Literal["max", "mean"]

_BLOCK_ELEMENTS = 1 << 22  # bound an (m, n_templates) similarity block to 32 MiB of float64


# --------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------


def _check_positive_int(value: object, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < minimum:
        raise InvalidArgumentError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_rate(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= float(value) <= 1.0:
        raise InvalidArgumentError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def _check_names(names: npt.ArrayLike) -> npt.NDArray[Any]:
    labels = np.asarray(names)
    if labels.ndim != 1:
        raise InvalidArgumentError(f"expected a 1-D array of identity labels, got shape {labels.shape}")
    if labels.size == 0:
        raise InvalidArgumentError("expected at least one identity label, got none")
    return labels


def _check_scores(scores: npt.ArrayLike, name: str) -> FloatArray:
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2 or s.shape[1] == 0:
        raise InvalidArgumentError(
            f"expected {name} of shape (n_probes, n_identities) with n_identities >= 1, got {s.shape}"
        )
    return np.where(np.isnan(s), -np.inf, s)


def _check_true_index(true_index: npt.ArrayLike, n_probes: int, n_ids: int) -> IntArray:
    t = np.asarray(true_index)
    if t.shape != (n_probes,):
        raise InvalidArgumentError(f"expected one true index per probe, shape ({n_probes},), got {t.shape}")
    if t.size and (t.dtype.kind not in "iu" or t.min() < 0 or t.max() >= n_ids):
        raise InvalidArgumentError(
            f"expected integer true indices in [0, {n_ids}), got dtype {t.dtype}, values {t[:5]}"
        )
    return t.astype(np.intp)


def fpir_key(fpir: float) -> str:
    """Dictionary key of a false positive identification rate (``"0.01"``, ``"0.1"``).

    Examples
    --------
    >>> fpir_key(0.01), fpir_key(0.1), fpir_key(1e-3)
    ('0.01', '0.1', '0.001')
    """
    return f"{float(fpir):g}"


# --------------------------------------------------------------------------------------------
# Protocol: N-shot split
# --------------------------------------------------------------------------------------------


def identities_with_at_least(names: npt.ArrayLike, min_images: int) -> npt.NDArray[Any]:
    """Sorted identities that have at least ``min_images`` samples.

    Pass the result as ``restrict_to`` to :func:`nshot_split` / :func:`evaluate_identification`
    to enrol the *same* people whatever N is: with ``min_images = max(N) + 1`` every one of them
    keeps at least one mated probe at the largest N (LFW: 311 people with >= 6 images).

    Examples
    --------
    >>> identities_with_at_least(["a", "b", "a", "c", "a", "c"], 2).tolist()
    ['a', 'c']
    """
    labels = _check_names(names)
    minimum = _check_positive_int(min_images, "min_images")
    unique, counts = np.unique(labels, return_counts=True)
    return unique[counts >= minimum]


def nshot_split(
    names: npt.ArrayLike,
    n_shot: int,
    *,
    seed: int,
    min_probes: int = 1,
    restrict_to: Iterable[Any] | None = None,
) -> tuple[IntArray, IntArray, IntArray]:
    """Split samples into an N-shot gallery, mated probes and non-mated probes.

    An identity is *enrolled* when it has at least ``n_shot + min_probes`` samples (and is in
    ``restrict_to`` when given): ``n_shot`` of its samples, drawn at random, form its gallery and
    all its other samples are mated probes. Every sample of every identity that is not enrolled
    (LFW: the 3,241 people with one image, plus, at larger N, those with too few images to keep a
    probe) is a non-mated probe: a person the gallery has never seen. All of a non-enrolled
    person's samples are used, which gives more non-mated probes (a finer FPIR) at the cost of
    some correlation between them.

    The draw is *nested*: each sample gets one random key from ``seed``, independent of
    ``n_shot`` and ``restrict_to``, and an identity's gallery is its ``n_shot`` samples of
    smallest key. With the same seed the 1-shot gallery of a person is therefore part of their
    2-shot gallery, which is part of their 5-shot gallery; and combined with ``restrict_to`` (the
    same people for every N) the N-shot results differ only in N.

    Parameters
    ----------
    names : array_like, shape (n_samples,)
        Identity of each sample (any hashable, sortable labels).
    n_shot : int
        Gallery samples per enrolled identity (>= 1).
    seed : int
        Seed of the draw (:func:`numpy.random.default_rng`).
    min_probes : int, default 1
        Mated probes an identity must keep to be enrolled (>= 1).
    restrict_to : iterable of labels, optional
        Enrol only these identities (see :func:`identities_with_at_least`); every one of them
        must have at least ``n_shot + min_probes`` samples. The samples of all other identities are
        non-mated probes.

    Returns
    -------
    gallery_idx, probe_idx, nonmated_idx : ndarray of intp
        Sorted, disjoint sample indices that together cover every sample.

    Raises
    ------
    ValueError
        On bad arguments, a ``restrict_to`` identity that is absent or has too few samples, or
        when no identity can be enrolled.

    Examples
    --------
    >>> g, p, nm = nshot_split(["a", "a", "a", "b", "b", "c"], 1, seed=0)
    >>> len(g), len(p), nm.tolist()
    (2, 3, [5])
    """
    labels = _check_names(names)
    n_shot = _check_positive_int(n_shot, "n_shot")
    min_probes = _check_positive_int(min_probes, "min_probes")
    unique, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    needed = n_shot + min_probes
    enrolled = counts >= needed
    if restrict_to is not None:
        wanted = np.asarray(list(restrict_to))
        present = np.isin(wanted, unique)
        if not present.all():
            raise InvalidArgumentError(f"restrict_to names identities with no samples: {wanted[~present][:5].tolist()}")
        in_set = np.isin(unique, wanted)
        short = in_set & ~enrolled
        if short.any():
            raise InvalidArgumentError(
                f"restrict_to holds {int(short.sum())} identities with fewer than n_shot + min_probes = {needed} "
                f"samples, e.g. {unique[short][:5].tolist()}; "
                f"choose them with identities_with_at_least(names, {needed})"
            )
        enrolled &= in_set
    if not enrolled.any():
        raise InvalidArgumentError(
            f"no identity has the n_shot + min_probes = {needed} samples needed to be enrolled "
            f"(largest identity: {int(counts.max())} samples)"
        )
    keys = np.random.default_rng(seed).random(labels.size)
    order = np.lexsort((keys, inverse))  # by identity, then by random key
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    position = np.empty(labels.size, dtype=np.intp)
    position[order] = np.arange(labels.size) - starts[inverse[order]]
    is_enrolled = enrolled[inverse]
    gallery_idx = np.flatnonzero(is_enrolled & (position < n_shot))
    probe_idx = np.flatnonzero(is_enrolled & (position >= n_shot))
    nonmated_idx = np.flatnonzero(~is_enrolled)
    return gallery_idx.astype(np.intp), probe_idx.astype(np.intp), nonmated_idx.astype(np.intp)


# --------------------------------------------------------------------------------------------
# Closed set: ranks and CMC
# --------------------------------------------------------------------------------------------


def rank_of_true(
    scores: npt.ArrayLike, true_index: npt.ArrayLike, *, tiebreak: npt.ArrayLike | None = None
) -> IntArray:
    """1-based rank of each probe's true identity among all enrolled identities.

    ``rank = 1 + #{other identities j : s_j >= s_true}``: ties count against the probe
    (pessimistic), so a probe is at rank 1 only when its true identity scores strictly highest.
    NaN scores count as ``-inf``. With ``tiebreak`` (same shape), identities tied on ``scores`` are
    ordered by ``tiebreak`` instead (still pessimistic when tied on both): used to rank a k-NN vote,
    whose zero-vote classes are all tied, by similarity.

    Parameters
    ----------
    scores : array_like, shape (n_probes, n_identities)
    true_index : array_like of int, shape (n_probes,)
        Column of each probe's true identity.
    tiebreak : array_like, shape (n_probes, n_identities), optional

    Returns
    -------
    ndarray of intp, shape (n_probes,)
        Values in ``[1, n_identities]``.

    Examples
    --------
    >>> rank_of_true([[0.9, 0.5, 0.7], [0.2, 0.2, 0.1]], [2, 0]).tolist()
    [2, 2]
    """
    s = _check_scores(scores, "scores")
    t = _check_true_index(true_index, s.shape[0], s.shape[1])
    rows = np.arange(s.shape[0])
    true_score = s[rows, t][:, None]
    if tiebreak is None:
        ahead = s >= true_score
    else:
        b = _check_scores(tiebreak, "tiebreak")
        if b.shape != s.shape:
            raise InvalidArgumentError(f"expected tiebreak of the scores' shape {s.shape}, got {b.shape}")
        ahead = (s > true_score) | ((s == true_score) & (b >= b[rows, t][:, None]))
    ahead[rows, t] = False
    ranks: IntArray = 1 + ahead.sum(axis=1).astype(np.intp)
    return ranks


def _cmc_from_ranks(ranks: IntArray, max_rank: int) -> FloatArray:
    if ranks.size == 0:
        return np.full(max_rank, np.nan)
    counts = np.bincount(np.minimum(ranks, max_rank + 1), minlength=max_rank + 2)[1 : max_rank + 1]
    result: FloatArray = np.cumsum(counts) / ranks.size
    return result


def cmc(scores: npt.ArrayLike, true_index: npt.ArrayLike, max_rank: int = 20) -> FloatArray:
    """Cumulative match characteristic: rank-k identification rate for k = 1 .. ``max_rank``.

    ``cmc(...)[k - 1]`` is the fraction of probes whose true identity is at rank ``<= k``
    (:func:`rank_of_true`; ties count against the probe). Reaches 1 at ``k = n_identities``.

    Parameters
    ----------
    scores : array_like, shape (n_probes, n_identities)
        Mated probes only (each probe's true identity is enrolled).
    true_index : array_like of int, shape (n_probes,)
    max_rank : int, default 20

    Returns
    -------
    ndarray of float64, shape (max_rank,)
        Non-decreasing; NaN when there are no probes.

    Examples
    --------
    >>> cmc([[0.9, 0.5, 0.7], [0.1, 0.8, 0.3]], [2, 1], max_rank=3).tolist()
    [0.5, 1.0, 1.0]
    """
    max_rank = _check_positive_int(max_rank, "max_rank")
    return _cmc_from_ranks(rank_of_true(scores, true_index), max_rank)


# --------------------------------------------------------------------------------------------
# Open set: DIR at FPIR
# --------------------------------------------------------------------------------------------


def _threshold_at_fpir(nonmated_top: FloatArray, fpir: float) -> float:
    """Smallest t with mean(nonmated_top >= t) <= fpir (the float just above a non-mated score)."""
    if fpir > 0 and fpir * nonmated_top.size < 1:
        logger.warning(
            "%d non-mated probes cannot measure an FPIR of %g: the threshold rejects all of them "
            "(the FPIR reached is 0; use at least %d non-mated probes)",
            nonmated_top.size,
            fpir,
            math.ceil(1 / fpir),
        )
    return threshold_at_fmr(nonmated_top, np.zeros(nonmated_top.size, dtype=bool), fpir)


def _dir_from_decisions(
    hit_rank: npt.NDArray[np.bool_], mated_score: FloatArray, nonmated_top: FloatArray, fpir: float
) -> tuple[float, float, float]:
    """(DIR, threshold, FPIR reached) from per-probe rank hits and the scores compared with T."""
    if nonmated_top.size == 0:
        raise InvalidArgumentError("DIR at FPIR needs at least one non-mated probe, got none")
    if mated_score.size == 0:
        raise InvalidArgumentError("DIR at FPIR needs at least one mated probe, got none")
    mated = np.where(np.isnan(mated_score), -np.inf, mated_score)
    nonmated = np.where(np.isnan(nonmated_top), -np.inf, nonmated_top)
    threshold = _threshold_at_fpir(nonmated, fpir)
    accepted = (mated >= threshold) & np.isfinite(mated)
    dir_value = float(np.mean(hit_rank & accepted))
    reached = float(np.mean((nonmated >= threshold) & np.isfinite(nonmated)))
    return dir_value, threshold, reached


def dir_at_fpir(
    mated_scores: npt.ArrayLike,
    true_index: npt.ArrayLike,
    nonmated_scores: npt.ArrayLike,
    fpir: float,
    rank: int = 1,
) -> tuple[float, float]:
    """Detection and identification rate at a false positive identification rate (NIST FRTE 1:N).

    The threshold ``T`` is the smallest value such that the fraction of non-mated probes whose
    *highest* score is ``>= T`` is at most ``fpir``; it is the float just above one of those
    scores (via :func:`faceprint.evaluation.threshold_at_fmr`), so probes tied with it are
    rejected. ``DIR`` is the fraction of mated probes whose true identity is at rank ``<= rank``
    (:func:`rank_of_true`, pessimistic ties) and whose true-identity score is ``>= T`` (at rank 1
    that is the probe's highest score).

    With ``n`` non-mated probes only multiples of ``1 / n`` are measurable: the FPIR reached is the
    largest such multiple ``<= fpir``, and when ``fpir < 1 / n`` ``T`` lies just above the highest
    non-mated score (FPIR 0; a warning is logged). Quote ``n`` with the result.

    Parameters
    ----------
    mated_scores : array_like, shape (n_mated, n_identities)
    true_index : array_like of int, shape (n_mated,)
    nonmated_scores : array_like, shape (n_nonmated, n_identities)
    fpir : float
        Target FPIR in ``[0, 1]``.
    rank : int, default 1

    Returns
    -------
    dir : float
    threshold : float

    Raises
    ------
    ValueError
        On malformed input or when mated or non-mated probes are missing.

    Examples
    --------
    >>> mated = [[0.9, 0.1], [0.2, 0.6], [0.3, 0.35]]
    >>> nonmated = [[0.5, 0.2], [0.1, 0.3], [0.2, 0.1], [0.0, 0.1]]
    >>> d, t = dir_at_fpir(mated, [0, 1, 0], nonmated, fpir=0.25)
    >>> d, bool(0.3 < t < 0.31)
    (0.6666666666666666, True)
    """
    s = _check_scores(mated_scores, "mated_scores")
    nm = _check_scores(nonmated_scores, "nonmated_scores")
    if nm.shape[1] != s.shape[1]:
        raise InvalidArgumentError(
            f"mated and non-mated scores must have the same identities, got {s.shape} and {nm.shape}"
        )
    t = _check_true_index(true_index, s.shape[0], s.shape[1])
    fpir = _check_rate(fpir, "fpir")
    rank = _check_positive_int(rank, "rank")
    hit = rank_of_true(s, t) <= rank
    true_score = s[np.arange(s.shape[0]), t]
    dir_value, threshold, _ = _dir_from_decisions(hit, true_score, nm.max(axis=1), fpir)
    return dir_value, threshold


# --------------------------------------------------------------------------------------------
# Scoring probes against a gallery of templates
# --------------------------------------------------------------------------------------------


def _unit_rows(x: npt.ArrayLike, name: str) -> FloatArray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] == 0:
        raise InvalidArgumentError(f"expected {name} of shape (n, d), got {a.shape}")
    with np.errstate(invalid="ignore", divide="ignore"):
        out: FloatArray = a / np.linalg.norm(a, axis=1, keepdims=True)
    return out


def gallery_scores(
    gallery_emb: npt.ArrayLike,
    gallery_labels: npt.ArrayLike,
    probe_emb: npt.ArrayLike,
    *,
    aggregate: Aggregate = "max",
) -> tuple[FloatArray, npt.NDArray[Any]]:
    """Cosine similarity of every probe to every enrolled identity.

    Parameters
    ----------
    gallery_emb : array_like, shape (n_templates, d)
        Gallery templates (rows are L2-normalised here); must be finite.
    gallery_labels : array_like, shape (n_templates,)
        Identity of each template.
    probe_emb : array_like, shape (n_probes, d)
        Probes; a row with NaN (failure to acquire) gives a row of NaN scores.
    aggregate : {"max", "mean"}, default "max"
        "max": an identity's score is the highest similarity to any of its templates (what
        :meth:`faceprint.gallery.Gallery.search` and ``KNNFaceClassifier.class_similarities``
        do). "mean": the similarity to the L2-normalised mean of its templates.

    Returns
    -------
    scores : ndarray of float64, shape (n_probes, n_identities)
    identities : ndarray, shape (n_identities,)
        The sorted unique ``gallery_labels``: column ``j`` of ``scores`` is ``identities[j]``.

    Raises
    ------
    ValueError
        On bad shapes, non-finite or zero gallery rows, or an unknown ``aggregate``.

    Examples
    --------
    >>> g = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    >>> s, ids = gallery_scores(g, ["b", "a", "a"], [[1.0, 0.0]])
    >>> ids.tolist(), s.round(2).tolist()
    (['a', 'b'], [[0.6, 1.0]])
    """
    if aggregate not in ("max", "mean"):
        raise InvalidArgumentError(f"aggregate must be 'max' or 'mean', got {aggregate!r}")
    g = _unit_rows(gallery_emb, "gallery_emb")
    p = _unit_rows(probe_emb, "probe_emb")
    labels = np.asarray(gallery_labels)
    if labels.shape != (g.shape[0],) or g.shape[0] == 0:
        raise InvalidArgumentError(
            f"expected one label per gallery template, {g.shape[0]} >= 1, got shape {labels.shape}"
        )
    if p.shape[1] != g.shape[1]:
        raise InvalidArgumentError(f"probe and gallery dimensions differ: {p.shape[1]} vs {g.shape[1]}")
    if not np.isfinite(g).all():
        bad = np.flatnonzero(~np.isfinite(g).all(axis=1))
        raise InvalidArgumentError(
            f"expected finite, non-zero gallery templates, got NaN / inf / zero in rows {bad[:10].tolist()}"
        )
    identities, inverse = np.unique(labels, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    g, inverse = g[order], inverse[order]
    starts = np.searchsorted(inverse, np.arange(identities.size))
    if aggregate == "mean":
        sums = np.add.reduceat(g, starts, axis=0)
        g = sums / np.linalg.norm(sums, axis=1, keepdims=True)
        starts = np.arange(identities.size)
    out = np.empty((p.shape[0], identities.size))
    block = max(1, _BLOCK_ELEMENTS // g.shape[0])
    for start in range(0, p.shape[0], block):
        sims = p[start : start + block] @ g.T
        out[start : start + block] = sims if aggregate == "mean" else np.maximum.reduceat(sims, starts, axis=1)
    return np.clip(out, -1.0, 1.0), identities


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IdentificationReport:
    """Closed- and open-set identification results of one N-shot split.

    Attributes
    ----------
    method : str
        ``"template-max"``, ``"template-mean"`` or the classifier's ``repr``.
    n_shot, seed : int
        The split (:func:`nshot_split`).
    n_identities : int
        Enrolled identities.
    n_gallery, n_mated, n_nonmated : int
        Gallery templates, mated probes, non-mated probes.
    n_nonmated_identities : int
        Distinct people among the non-mated probes.
    rank1, rank5 : float
        Closed-set rank-1 / rank-5 identification rate over the mated probes.
    cmc : tuple of float
        Rank-1 .. rank-``max_rank`` identification rates.
    dir_at_fpir : dict of str to float
        DIR at rank 1 for each FPIR (keys :func:`fpir_key`: ``"0.01"``, ``"0.1"``); empty when there
        are no non-mated probes.
    thresholds : dict of str to float
        The score threshold behind each DIR.
    fpir_reached : dict of str to float
        The FPIR measured at that threshold (``<=`` the target; a multiple of ``1 / n_nonmated``).
    """

    method: str
    n_shot: int
    seed: int
    n_identities: int
    n_gallery: int
    n_mated: int
    n_nonmated: int
    n_nonmated_identities: int
    rank1: float
    rank5: float
    cmc: tuple[float, ...]
    dir_at_fpir: Mapping[str, float] = field(default_factory=dict)
    thresholds: Mapping[str, float] = field(default_factory=dict)
    fpir_reached: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary of every field."""
        return {
            "method": self.method,
            "n_shot": self.n_shot,
            "seed": self.seed,
            "n_identities": self.n_identities,
            "n_gallery": self.n_gallery,
            "n_mated": self.n_mated,
            "n_nonmated": self.n_nonmated,
            "n_nonmated_identities": self.n_nonmated_identities,
            "rank1": self.rank1,
            "rank5": self.rank5,
            "cmc": list(self.cmc),
            "dir_at_fpir": dict(self.dir_at_fpir),
            "thresholds": dict(self.thresholds),
            "fpir_reached": dict(self.fpir_reached),
        }


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


def _classifier_scores(
    classifier: Any, gallery_emb: FloatArray, gallery_labels: npt.NDArray[Any], probes: Sequence[FloatArray]
) -> tuple[npt.NDArray[Any], list[tuple[FloatArray, FloatArray | None, FloatArray]]]:
    """Fit a clone on the gallery; per probe set (ranking scores, tiebreak, open-set score)."""
    model = clone(classifier).fit(gallery_emb, gallery_labels)
    classes = np.asarray(model.classes_)
    out: list[tuple[FloatArray, FloatArray | None, FloatArray]] = []
    for x in probes:
        if x.shape[0] == 0:
            empty = np.empty((0, classes.size))
            out.append((empty, None, np.empty(0)))
            continue
        tiebreak: FloatArray | None = None
        if hasattr(model, "class_similarities"):
            # k-NN: rank by the neighbour vote (what predict uses), ties (every class without a
            # vote) by the highest similarity to the class's samples.
            rank_scores = np.asarray(model.predict_proba(x), dtype=np.float64)
            tiebreak = np.asarray(model.class_similarities(x), dtype=np.float64)
        elif hasattr(model, "decision_function"):
            rank_scores = np.asarray(model.decision_function(x), dtype=np.float64)
            if rank_scores.ndim == 1:  # two classes: the score of classes_[1] minus that of classes_[0]
                rank_scores = np.column_stack([np.zeros_like(rank_scores), rank_scores])
        else:
            rank_scores = np.asarray(model.predict_proba(x), dtype=np.float64)
        if hasattr(model, "score_for_open_set"):
            open_set = np.asarray(model.score_for_open_set(x), dtype=np.float64)
        else:
            open_set = rank_scores.max(axis=1)
        out.append((rank_scores, tiebreak, open_set))
    return classes, out


def evaluate_identification(
    embeddings: npt.ArrayLike,
    names: npt.ArrayLike,
    *,
    n_shot: int,
    seed: int,
    fpirs: Sequence[float] = (0.01, 0.1),
    classifier: Any = None,
    aggregate: Aggregate = "max",
    restrict_to: Iterable[Any] | None = None,
    min_probes: int = 1,
    max_rank: int = 20,
) -> IdentificationReport:
    """N-shot closed-set (CMC) and open-set (DIR @ FPIR) identification on labelled embeddings.

    Splits the samples with :func:`nshot_split`, then scores mated and non-mated probes against
    the gallery:

    * ``classifier=None``: nearest template, :func:`gallery_scores` with ``aggregate``. The
      open-set score of a probe is its highest identity score.
    * ``classifier`` = an (unfitted) :class:`~faceprint.classification.KNNFaceClassifier` or
      :class:`~faceprint.classification.SVMFaceClassifier`: a clone is fitted on the gallery.
      Ranks come from ``predict_proba`` (the neighbour vote, ties broken by
      ``class_similarities``) for k-NN and from ``decision_function`` for the SVM, so rank 1 is
      what ``predict`` returns (up to exact vote ties); the open-set score is
      ``score_for_open_set`` (k-NN: highest cosine similarity; SVM: highest class probability).
      DIR at an FPIR is then exactly the rate at which ``predict`` names the right person after
      ``fit_unknown_threshold(nonmated, fpir=...)``.

    Parameters
    ----------
    embeddings : array_like, shape (n_samples, d)
        One embedding per sample; must be finite (drop failures to acquire first and report them).
    names : array_like, shape (n_samples,)
        Identity of each sample.
    n_shot : int
        Gallery samples per enrolled identity.
    seed : int
        Seed of the gallery draw.
    fpirs : sequence of float, default (0.01, 0.1)
        FPIR targets for DIR (rank 1).
    classifier : estimator, optional
        See above; never modified (a clone is fitted).
    aggregate : {"max", "mean"}, default "max"
        Template aggregation without a classifier.
    restrict_to : iterable of labels, optional
        Enrol only these identities (see :func:`nshot_split`).
    min_probes : int, default 1
        Mated probes an identity must keep to be enrolled.
    max_rank : int, default 20
        Length of the CMC.

    Returns
    -------
    IdentificationReport

    Raises
    ------
    ValueError
        On bad shapes, non-finite embeddings or an impossible split.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> centres = rng.normal(size=(20, 16))
    >>> names = np.repeat(np.arange(20), 4)
    >>> emb = centres[names] + 0.1 * rng.normal(size=(80, 16))
    >>> report = evaluate_identification(emb, names, n_shot=1, seed=0, restrict_to=range(15))
    >>> report.n_identities, report.n_mated, report.n_nonmated, report.rank1
    (15, 45, 20, 1.0)
    """
    emb = np.asarray(embeddings, dtype=np.float64)
    labels = _check_names(names)
    if emb.ndim != 2 or emb.shape[0] != labels.size:
        raise InvalidArgumentError(f"expected embeddings of shape ({labels.size}, d), got {emb.shape}")
    finite = np.isfinite(emb).all(axis=1)
    if not finite.all():
        raise InvalidArgumentError(
            f"expected finite embeddings, got NaN / inf in {int((~finite).sum())} rows "
            f"(e.g. {np.flatnonzero(~finite)[:5].tolist()}); drop failures to acquire before evaluating"
        )
    targets = [_check_rate(f, "fpir") for f in fpirs]
    max_rank = _check_positive_int(max_rank, "max_rank")
    gallery_idx, probe_idx, nonmated_idx = nshot_split(
        labels, n_shot, seed=seed, min_probes=min_probes, restrict_to=restrict_to
    )
    g_emb, g_labels = emb[gallery_idx], labels[gallery_idx]
    mated_emb, nonmated_emb = emb[probe_idx], emb[nonmated_idx]

    if classifier is None:
        method = f"template-{aggregate}"
        mated_scores, identities = gallery_scores(g_emb, g_labels, mated_emb, aggregate=aggregate)
        nonmated_scores, _ = gallery_scores(g_emb, g_labels, nonmated_emb, aggregate=aggregate)
        mated_tiebreak: FloatArray | None = None
        mated_open = mated_scores.max(axis=1)
        nonmated_open = nonmated_scores.max(axis=1) if nonmated_scores.size else np.empty(0)
    else:
        method = repr(classifier)
        identities, scored = _classifier_scores(classifier, g_emb, g_labels, [mated_emb, nonmated_emb])
        (mated_scores, mated_tiebreak, mated_open), (_, _, nonmated_open) = scored

    true_index = np.searchsorted(identities, labels[probe_idx]).astype(np.intp)
    ranks = rank_of_true(mated_scores, true_index, tiebreak=mated_tiebreak)
    curve = _cmc_from_ranks(ranks, max_rank)
    rank1 = float(np.mean(ranks <= 1))
    rank5 = float(np.mean(ranks <= 5))

    dirs: dict[str, float] = {}
    thresholds: dict[str, float] = {}
    reached: dict[str, float] = {}
    if nonmated_idx.size == 0:
        logger.warning("no non-mated probes (every identity is enrolled): open-set DIR is not reported")
    else:
        hit = ranks <= 1
        for target in targets:
            key = fpir_key(target)
            dirs[key], thresholds[key], reached[key] = _dir_from_decisions(hit, mated_open, nonmated_open, target)
    return IdentificationReport(
        method=method,
        n_shot=int(n_shot),
        seed=int(seed),
        n_identities=int(identities.size),
        n_gallery=int(gallery_idx.size),
        n_mated=int(probe_idx.size),
        n_nonmated=int(nonmated_idx.size),
        n_nonmated_identities=int(np.unique(labels[nonmated_idx]).size),
        rank1=rank1,
        rank5=rank5,
        cmc=tuple(float(v) for v in curve),
        dir_at_fpir=dirs,
        thresholds=thresholds,
        fpir_reached=reached,
    )
