"""Score normalisation: scores adjusted per face so that one threshold means more nearly one FMR for everyone.

A raw cosine threshold set at one global false-match rate (FMR) gives very different FMRs to different
demographic groups: faces of groups the model separates less well score higher against each other
(on UTKFace at a matched threshold, 57x between race x gender cells; see ``bench/results/bias_utkface.json``).
A score normaliser maps the raw similarity of two faces to a score whose threshold is closer to one
FMR across groups, **without group labels**: it only looks at the two embeddings.

Two published methods, both behind :class:`ScoreNormalizer` and the :data:`SCORE_NORMALIZERS` registry:

* ``"s-norm"`` -- :class:`AdaptiveSNorm`, adaptive symmetric score normalisation (AS-norm) against an
  impostor cohort of embeddings shipped with the model;
* ``"fsn"`` -- :class:`FairScoreNormalizer`, Fair Score Normalization: k-means clusters of unlabelled
  embeddings, a threshold per cluster at one target FMR, and the score shifted by the two clusters'
  offsets from the global threshold.

Each normaliser is fitted on embeddings (and identity labels where the method needs impostor pairs),
saved to a small ``.npz`` file (no pickle), and carries its own thresholds ``"1e-2"``, ``"1e-3"``,
``"1e-4"`` for the *normalised* score (another scale than the cosine), and a :attr:`~ScoreNormalizer.key`
that results record. Both work on two sides independently: :meth:`~ScoreNormalizer.side_stats` of each
face (computed once per face, e.g. per gallery template) and :meth:`~ScoreNormalizer.combine` per
comparison, so a 1:N search normalises its candidates cheaply.

The shipped normalisers (``faceprint/models/scorenorm_<model>_<method>.npz``, sha256-checked by
:func:`get_score_normalizer`) are described in ``faceprint/models/MODEL_CARD_scorenorm.md``: fitted on
the UTKFace fit half (:func:`faceprint.datasets.utkface.is_fit_image`) and the LFW calibration-half
people (:func:`faceprint.thresholds.is_tail_calibration_identity`), measured on the other halves by
``bench/score_norm.py``.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import zipfile
from collections.abc import Mapping, Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from .errors import (
    InvalidArgumentError,
    InvalidEmbeddingError,
    InvalidFileError,
    ModelIntegrityError,
    ModelNotFoundError,
    NotFittedError,
)
from .registry import Registry
from .thresholds import accepted_impostors

__all__ = [
    "ScoreNormalizer",
    "AdaptiveSNorm",
    "FairScoreNormalizer",
    "SCORE_NORMALIZERS",
    "SHIPPED_SCORE_NORMALIZERS",
    "THRESHOLD_KEYS",
    "get_score_normalizer",
    "load_score_normalizer",
    "shipped_score_normalizer_names",
]

FloatArray = npt.NDArray[np.float64]

THRESHOLD_KEYS: tuple[str, ...] = ("1e-2", "1e-3", "1e-4")
"""The operating points every shipped normaliser is calibrated at (plus ``"best_accuracy"`` where given)."""

_FORMAT = "faceprint-scorenorm/1"


@runtime_checkable
class ScoreNormalizer(Protocol):
    """Maps the raw cosine similarity of two embeddings to a normalised score.

    ``normalize(a, b, scores)`` is ``combine(scores, side_stats(a), side_stats(b))``; a higher score
    still means "more likely the same person". ``thresholds_`` are similarity thresholds *on the
    normalised scale* at named FMRs (``"1e-3"``), calibrated on face pairs like the raw ones.
    """

    method: str
    thresholds_: dict[str, float]

    @property
    def key(self) -> str:
        """Method and parameters, e.g. ``"s-norm(top_k=100,cohort=2000)"``: what a result records."""
        ...

    @property
    def fingerprint(self) -> str:
        """``key`` plus a hash of the fitted state: two normalisers with one fingerprint score alike."""
        ...

    def side_stats(self, embeddings: npt.ArrayLike) -> FloatArray:
        """Per-face statistics ``(n, m)`` the combination needs (computed once per face)."""
        ...

    def combine(self, scores: npt.ArrayLike, stats_a: npt.ArrayLike, stats_b: npt.ArrayLike) -> FloatArray:
        """Normalised scores from raw scores and the two sides' statistics (broadcasting)."""
        ...

    def normalize(self, a: npt.ArrayLike, b: npt.ArrayLike, scores: npt.ArrayLike | None = None) -> FloatArray:
        """Normalised score of each pair ``(a[i], b[i])``; ``scores`` default to the cosines."""
        ...

    def threshold(self, fmr: str) -> float:
        """The normalised-score threshold at ``fmr``."""
        ...

    def save(self, path: str | Path) -> Path:
        """Write the fitted normaliser to an ``.npz`` file (no pickle)."""
        ...


SCORE_NORMALIZERS: Registry[ScoreNormalizer] = Registry("score normalizer")
"""Methods by name: ``"s-norm"`` (:class:`AdaptiveSNorm`), ``"fsn"`` (:class:`FairScoreNormalizer`)."""


# --------------------------------------------------------------------------------------------
# Shared validation and storage
# --------------------------------------------------------------------------------------------


def _unit_rows(x: npt.ArrayLike, what: str, dim: int | None = None) -> FloatArray:
    e = np.asarray(x, dtype=np.float64)
    if e.ndim == 1:
        e = e[None, :]
    if e.ndim != 2 or e.shape[0] == 0 or (dim is not None and e.shape[1] != dim):
        want = f"(n, {dim})" if dim is not None else "(n, d)"
        raise InvalidEmbeddingError(f"{what}: expected {want} embeddings, got shape {np.shape(x)}")
    if not np.isfinite(e).all():
        raise InvalidEmbeddingError(f"{what}: embeddings hold NaN or inf (a failure to acquire has no score)")
    norms = np.linalg.norm(e, axis=1, keepdims=True)
    if (norms == 0).any():
        raise InvalidEmbeddingError(f"{what}: an embedding has norm 0")
    out: FloatArray = e / norms
    return out


def _save_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> Path:
    """An ``.npz`` with fixed zip timestamps, so that the same fit gives the same bytes (and sha256)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            body = io.BytesIO()
            np.lib.format.write_array(body, np.asarray(arrays[name]), allow_pickle=False)
            zf.writestr(info, body.getvalue())
    path.write_bytes(buf.getvalue())
    return path


def _read_npz(data: bytes, where: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(str(arrays.pop("meta")))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise InvalidFileError(f"{where}: not a faceprint score normaliser ({err})") from err
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
        raise InvalidFileError(f"{where}: not a faceprint score normaliser (format {_FORMAT!r} expected)")
    return meta, arrays


def _check_fmr(fmr: float) -> float:
    v = float(fmr)
    if not 0.0 < v < 1.0:
        raise InvalidArgumentError(f"fmr must lie strictly between 0 and 1, got {fmr!r}")
    return v


def _threshold_at(impostor: FloatArray, fmr: float) -> float:
    """Smallest threshold with ``share(impostor >= t) <= fmr`` (the rule of evaluation.threshold_at_fmr)."""
    n = impostor.size
    k = accepted_impostors(n, fmr)
    if k >= n:
        return -math.inf
    d_k = np.partition(impostor, n - 1 - k)[n - 1 - k]
    return float(np.nextafter(d_k, np.inf))


class _Base:
    """Thresholds, key and fingerprint, normalize() and save() shared by the normalisers."""

    method = ""
    thresholds_: dict[str, float]
    model_: str
    about_: dict[str, Any]

    def _params(self) -> dict[str, Any]:
        raise NotImplementedError

    def _arrays(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not hasattr(self, "dim_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit() or load a saved one")

    @property
    def key(self) -> str:
        params = ",".join(f"{k}={v}" for k, v in self._params().items())
        return f"{self.method}({params})"

    @property
    def fingerprint(self) -> str:
        self._check_fitted()
        h = hashlib.sha256()
        for name, arr in sorted(self._arrays().items()):
            h.update(name.encode())
            h.update(np.ascontiguousarray(arr).tobytes())
        return f"{self.key}@{self.model_}:{h.hexdigest()[:12]}"

    def set_thresholds(self, thresholds: Mapping[str, float], *, source: str = "") -> None:
        """Set the normalised-score thresholds (e.g. from :func:`faceprint.evaluation.calibrate_thresholds`)."""
        bad = {k: v for k, v in thresholds.items() if not isinstance(v, (int, float)) or math.isnan(float(v))}
        if bad:
            raise InvalidArgumentError(f"thresholds must be numbers, got {bad}")
        self.thresholds_ = {str(k): float(v) for k, v in thresholds.items()}
        if source:
            self.about_ = {**getattr(self, "about_", {}), "thresholds": source}

    def threshold(self, fmr: str) -> float:
        table = getattr(self, "thresholds_", {})
        if fmr not in table:
            valid = ", ".join(sorted(table)) or "none: call set_thresholds() after fit()"
            raise InvalidArgumentError(f"{self.key} has no threshold at fmr={fmr!r}; available: {valid}")
        return float(table[fmr])

    def _stats(self, e: FloatArray) -> FloatArray:
        raise NotImplementedError

    def side_stats(self, embeddings: npt.ArrayLike) -> FloatArray:
        """Per-face statistics the method combines per comparison (computed once per face)."""
        self._check_fitted()
        return self._stats(_unit_rows(embeddings, "embeddings", self.dim_))  # type: ignore[attr-defined]

    def combine(self, scores: npt.ArrayLike, stats_a: npt.ArrayLike, stats_b: npt.ArrayLike) -> FloatArray:
        raise NotImplementedError

    def normalize(self, a: npt.ArrayLike, b: npt.ArrayLike, scores: npt.ArrayLike | None = None) -> FloatArray:
        """Normalised score of each pair ``(a[i], b[i])``.

        Parameters
        ----------
        a, b : array_like, shape (n, dim) or (dim,)
            Unit embeddings of the two sides (one row per pair).
        scores : array_like, shape (n,), optional
            The raw cosine similarities; default ``sum(a * b, axis=1)``.

        Returns
        -------
        ndarray of float64, shape (n,)
        """
        self._check_fitted()
        ea = _unit_rows(a, "a", self.dim_)  # type: ignore[attr-defined]
        eb = _unit_rows(b, "b", self.dim_)  # type: ignore[attr-defined]
        if ea.shape != eb.shape:
            raise InvalidEmbeddingError(f"expected a and b of one shape, got {ea.shape} and {eb.shape}")
        s = np.einsum("ij,ij->i", ea, eb) if scores is None else np.asarray(scores, np.float64).reshape(-1)
        if s.shape != (ea.shape[0],):
            raise InvalidArgumentError(f"expected {ea.shape[0]} scores, got shape {s.shape}")
        stats = self._stats(np.concatenate([ea, eb]))  # both sides in one pass
        return self.combine(s, stats[: ea.shape[0]], stats[ea.shape[0] :])

    def save(self, path: str | Path) -> Path:
        """Write to ``path`` (``.npz``: float16 embeddings / centres, JSON metadata; no pickle)."""
        self._check_fitted()
        meta = {
            "format": _FORMAT,
            "method": self.method,
            "params": self._params(),
            "model": self.model_,
            "dim": self.dim_,  # type: ignore[attr-defined]
            "thresholds": getattr(self, "thresholds_", {}),
            "about": getattr(self, "about_", {}),
        }
        return _save_npz(Path(path), {**self._arrays(), "meta": np.array(json.dumps(meta, sort_keys=True))})


# --------------------------------------------------------------------------------------------
# AS-norm
# --------------------------------------------------------------------------------------------


@SCORE_NORMALIZERS.register("s-norm")
class AdaptiveSNorm(_Base):
    """Adaptive symmetric score normalisation (AS-norm) against an impostor cohort.

    Each side ``x`` of a comparison is scored against every cohort embedding; of those scores the
    ``top_k`` highest (the cohort faces most like ``x``) give a mean ``mu(x)`` and a standard
    deviation ``sigma(x)``. The normalised score of raw score ``s`` is

        s' = ((s - mu(a)) / sigma(a) + (s - mu(b)) / sigma(b)) / 2

    so a face that scores high against many strangers (a dense region of the embedding space, where
    impostor scores run high) needs a higher raw score to match. No group label is used.

    References: P. Matejka et al., "Analysis of score normalization in multilingual speaker
    recognition", Interspeech 2017 (adaptive s-norm); S. Cumani et al., "Comparison of speaker
    recognition approaches for real applications", Interspeech 2011 (top-N cohort selection).

    Parameters
    ----------
    top_k : int, default 100
        Cohort scores per side that enter ``mu`` and ``sigma``.
    cohort_size : int, default 2000
        At most this many cohort embeddings are kept (a seeded sample of those given to :meth:`fit`).
    seed : int, default 0

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> cohort = rng.normal(size=(300, 8))
    >>> norm = AdaptiveSNorm(top_k=20).fit(cohort, model="toy")
    >>> norm.key
    's-norm(top_k=20,cohort=300)'
    >>> a, b = rng.normal(size=(2, 5, 8))
    >>> norm.normalize(a, b).shape
    (5,)
    """

    method = "s-norm"

    def __init__(self, *, top_k: int = 100, cohort_size: int = 2000, seed: int = 0) -> None:
        self.top_k = top_k
        self.cohort_size = cohort_size
        self.seed = seed

    def _params(self) -> dict[str, Any]:
        n = self.cohort_.shape[0] if hasattr(self, "cohort_") else self.cohort_size
        return {"top_k": self.top_k, "cohort": n}

    def fit(
        self, embeddings: npt.ArrayLike, identities: Sequence[str] | None = None, *, model: str = ""
    ) -> AdaptiveSNorm:
        """Keep (a seeded sample of at most ``cohort_size`` of) ``embeddings`` as the impostor cohort.

        ``identities`` (one per row) keeps one embedding per identity before sampling, so that one
        person does not fill a probe's top-k; None: every row is its own identity. ``model`` names
        the embedder key the cohort came from (checked by the pipeline).
        """
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 2:
            raise InvalidArgumentError(f"top_k must be an integer >= 2, got {self.top_k!r}")
        if self.cohort_size < self.top_k:
            raise InvalidArgumentError(f"cohort_size ({self.cohort_size}) must be >= top_k ({self.top_k})")
        e = _unit_rows(embeddings, "cohort")
        idx = np.arange(e.shape[0])
        if identities is not None:
            ids = np.asarray(identities).astype(str)
            if ids.shape != (e.shape[0],):
                raise InvalidArgumentError(f"expected {e.shape[0]} identities, got shape {ids.shape}")
            _, idx = np.unique(ids, return_index=True)
        rng = np.random.default_rng(self.seed)
        if idx.size > self.cohort_size:
            idx = rng.choice(idx, self.cohort_size, replace=False)
        idx = np.sort(idx)
        if idx.size < self.top_k:
            raise InvalidArgumentError(f"a cohort of {idx.size} embeddings is smaller than top_k={self.top_k}")
        self.cohort_ = e[idx].astype(np.float16)
        self._cohort_t = np.ascontiguousarray(self.cohort_.astype(np.float32).T)
        self.dim_ = int(e.shape[1])
        self.model_ = model
        self.thresholds_ = {}
        self.about_ = {}
        return self

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"cohort": self.cohort_}

    def _stats(self, e: FloatArray) -> FloatArray:
        c = e.astype(np.float32) @ self._cohort_t  # (d, C) contiguous: several times faster for few rows
        k = self.top_k
        top = np.partition(c, c.shape[1] - k, axis=1)[:, -k:].astype(np.float64)
        mu = top.mean(axis=1)
        sd = np.maximum(top.std(axis=1), 1e-6)
        out: FloatArray = np.stack([mu, sd], axis=1)
        return out


    def combine(self, scores: npt.ArrayLike, stats_a: npt.ArrayLike, stats_b: npt.ArrayLike) -> FloatArray:
        s = np.asarray(scores, np.float64)
        pa, pb = np.asarray(stats_a, np.float64), np.asarray(stats_b, np.float64)
        out: FloatArray = 0.5 * ((s - pa[..., 0]) / pa[..., 1] + (s - pb[..., 0]) / pb[..., 1])
        return out

    @classmethod
    def _from_saved(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> AdaptiveSNorm:
        p = meta["params"]
        self = cls(top_k=int(p["top_k"]), cohort_size=int(p["cohort"]))
        self.cohort_ = np.asarray(arrays["cohort"], np.float16)
        self._cohort_t = np.ascontiguousarray(self.cohort_.astype(np.float32).T)
        self.dim_ = int(meta["dim"])
        return self


# --------------------------------------------------------------------------------------------
# Fair Score Normalization
# --------------------------------------------------------------------------------------------


@SCORE_NORMALIZERS.register("fsn")
class FairScoreNormalizer(_Base):
    """Fair Score Normalization (FSN): cluster thresholds at one FMR, scores shifted by the clusters' offsets.

    Fit: k-means on unlabelled embeddings gives ``n_clusters`` centres; each face belongs to the
    nearest centre (cosine). For each cluster ``c`` the threshold ``thr_c`` at the target ``fmr``
    is set on the impostor pairs of faces of that cluster, and the global ``thr_G`` on impostor
    pairs of all faces. The normalised score of a pair ``(a, b)`` with raw score ``s`` is

        s' = s - (delta(c(a)) + delta(c(b))) / 2,   delta(c) = thr_c - thr_G

    so pairs from a cluster where impostors score high are pulled down. Group labels are never
    used; identity labels only to tell impostor pairs from genuine ones (an unlabelled image is
    its own identity). A cluster with fewer than ``min_pairs`` impostor pairs keeps ``delta = 0``.

    Reference: P. Terhörst, J. N. Kolf, N. Damer, F. Kirchbuchner, A. Kuijper, "Post-comparison
    mitigation of demographic bias in face recognition using fair score normalization", Pattern
    Recognition Letters 140, 2020 (arXiv:2002.03592; also presented at IJCB 2020). This
    implementation counts a comparison in cluster ``c`` when *both* faces lie in ``c`` (the pairs a
    within-group FMR counts).

    Parameters
    ----------
    n_clusters : int, default 25
    fmr : float, default 1e-3
        The target FMR of the cluster thresholds (the paper uses the operating point).
    min_pairs : int, default 3000
    max_pairs : int, default 2,000,000
        Impostor pairs sampled (seeded) where a cluster or the whole set has more.
    seed : int, default 0

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> e = rng.normal(size=(400, 8))
    >>> norm = FairScoreNormalizer(n_clusters=3, fmr=1e-2, min_pairs=100).fit(e, model="toy")
    >>> norm.key
    'fsn(n_clusters=3,fmr=0.01)'
    >>> norm.offsets_.shape
    (3,)
    """

    method = "fsn"

    def __init__(
        self,
        *,
        n_clusters: int = 25,
        fmr: float = 1e-3,
        min_pairs: int = 3000,
        max_pairs: int = 2_000_000,
        seed: int = 0,
    ) -> None:
        self.n_clusters = n_clusters
        self.fmr = fmr
        self.min_pairs = min_pairs
        self.max_pairs = max_pairs
        self.seed = seed

    def _params(self) -> dict[str, Any]:
        return {"n_clusters": self.n_clusters, "fmr": float(self.fmr)}

    def fit(
        self, embeddings: npt.ArrayLike, identities: Sequence[str] | None = None, *, model: str = ""
    ) -> FairScoreNormalizer:
        """Cluster ``embeddings`` and set each cluster's offset from impostor pairs (see the class docstring).

        ``identities``: one label per row (pairs of one label are genuine and left out); None: every
        row is its own identity (e.g. UTKFace, which has no identity labels).
        """
        from sklearn.cluster import KMeans

        if isinstance(self.n_clusters, bool) or not isinstance(self.n_clusters, int) or self.n_clusters < 1:
            raise InvalidArgumentError(f"n_clusters must be an integer >= 1, got {self.n_clusters!r}")
        fmr = _check_fmr(self.fmr)
        e = _unit_rows(embeddings, "embeddings")
        n = e.shape[0]
        if n < 2 * self.n_clusters:
            raise InvalidArgumentError(f"{n} embeddings are too few for {self.n_clusters} clusters")
        ids = np.arange(n).astype(str) if identities is None else np.asarray(identities).astype(str)
        if ids.shape != (n,):
            raise InvalidArgumentError(f"expected {n} identities, got shape {ids.shape}")
        _, id_codes = np.unique(ids, return_inverse=True)
        km = KMeans(n_clusters=self.n_clusters, n_init=4, random_state=self.seed).fit(e)
        centres = km.cluster_centers_ / np.linalg.norm(km.cluster_centers_, axis=1, keepdims=True)
        self.centres_ = centres.astype(np.float16)
        self._centres64 = self.centres_.astype(np.float64)
        self.dim_ = int(e.shape[1])
        labels = self._assign(e)
        rng = np.random.default_rng(self.seed)
        global_thr = _threshold_at(self._impostor_scores(e, id_codes, rng), fmr)
        offsets = np.zeros(self.n_clusters)
        pairs = np.zeros(self.n_clusters, np.int64)
        for c in range(self.n_clusters):
            members = np.flatnonzero(labels == c)
            scores = self._impostor_scores(e[members], id_codes[members], rng)
            pairs[c] = scores.size
            if scores.size >= self.min_pairs:
                offsets[c] = _threshold_at(scores, fmr) - global_thr
        self.offsets_ = offsets.astype(np.float32)
        self.global_threshold_ = float(global_thr)
        self.cluster_sizes_ = np.bincount(labels, minlength=self.n_clusters).astype(np.int64)
        self.cluster_pairs_ = pairs
        self.model_ = model
        self.thresholds_ = {}
        self.about_ = {}
        return self

    def _impostor_scores(self, e: FloatArray, ids: npt.NDArray[np.intp], rng: np.random.Generator) -> FloatArray:
        n = e.shape[0]
        if n < 2:
            return np.empty(0)
        if n * (n - 1) // 2 <= self.max_pairs:
            iu, ju = np.triu_indices(n, k=1)
            keep = ids[iu] != ids[ju]
            s = (e @ e.T)[iu[keep], ju[keep]]
            out: FloatArray = s
            return out
        i = rng.integers(0, n, size=self.max_pairs)
        j = (i + rng.integers(1, n, size=self.max_pairs)) % n
        keep = ids[i] != ids[j]
        sampled: FloatArray = np.einsum("ij,ij->i", e[i[keep]], e[j[keep]])
        return sampled

    def _assign(self, e: FloatArray) -> npt.NDArray[np.intp]:
        out: npt.NDArray[np.intp] = np.argmax(e @ self._centres64.T, axis=1)
        return out

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"centres": self.centres_, "offsets": self.offsets_}

    def _stats(self, e: FloatArray) -> FloatArray:
        out: FloatArray = self.offsets_.astype(np.float64)[self._assign(e)][:, None]
        return out


    def combine(self, scores: npt.ArrayLike, stats_a: npt.ArrayLike, stats_b: npt.ArrayLike) -> FloatArray:
        s = np.asarray(scores, np.float64)
        pa, pb = np.asarray(stats_a, np.float64), np.asarray(stats_b, np.float64)
        out: FloatArray = s - 0.5 * (pa[..., 0] + pb[..., 0])
        return out

    @classmethod
    def _from_saved(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> FairScoreNormalizer:
        p = meta["params"]
        self = cls(n_clusters=int(p["n_clusters"]), fmr=float(p["fmr"]))
        self.centres_ = np.asarray(arrays["centres"], np.float16)
        self._centres64 = self.centres_.astype(np.float64)
        self.offsets_ = np.asarray(arrays["offsets"], np.float32)
        if self.centres_.shape[0] != self.n_clusters or self.offsets_.shape != (self.n_clusters,):
            raise InvalidFileError(f"fsn: {self.centres_.shape[0]} centres and {self.offsets_.shape} offsets "
                                   f"for n_clusters={self.n_clusters}")
        self.dim_ = int(meta["dim"])
        return self


# --------------------------------------------------------------------------------------------
# Loading, shipped files
# --------------------------------------------------------------------------------------------

_CLASSES: dict[str, Any] = {"s-norm": AdaptiveSNorm, "fsn": FairScoreNormalizer}


def _from_bytes(data: bytes, where: str) -> ScoreNormalizer:
    meta, arrays = _read_npz(data, where)
    cls = _CLASSES.get(str(meta.get("method")))
    if cls is None:
        raise InvalidFileError(f"{where}: unknown score normalisation method {meta.get('method')!r}")
    try:
        norm = cls._from_saved(meta, arrays)
    except (KeyError, TypeError, ValueError) as err:
        raise InvalidFileError(f"{where}: malformed {meta.get('method')} normaliser ({err})") from err
    norm.model_ = str(meta.get("model", ""))
    norm.thresholds_ = {str(k): float(v) for k, v in dict(meta.get("thresholds", {})).items()}
    norm.about_ = dict(meta.get("about", {}))
    result: ScoreNormalizer = norm
    return result


def load_score_normalizer(path: str | Path) -> ScoreNormalizer:
    """A normaliser saved with ``save()`` (the file is trusted as is: no sha256 to check it against).

    Raises
    ------
    ModelNotFoundError
        When the file does not exist.
    InvalidFileError
        When it is not a saved score normaliser.
    """
    p = Path(path)
    if not p.is_file():
        raise ModelNotFoundError(f"score normaliser not found: {p}")
    return _from_bytes(p.read_bytes(), str(p))


SHIPPED_SCORE_NORMALIZERS: dict[tuple[str, str], tuple[str, str]] = {
    # (model key, method): (file in faceprint/models, sha256); written by bench/score_norm.py --write
    ("sface", "s-norm"): (
        "scorenorm_sface_snorm.npz",
        "2dc06fea4b064dde39d13f6f59a542d1625a8f469ecdd235f6614d1bdd5b5e88",
    ),
    ("sface", "fsn"): (
        "scorenorm_sface_fsn.npz",
        "42c492a5b22c98eb220af32e0b74f51b3de7cee6ef11b4c2b941d64dac6d2601",
    ),
}
"""The normalisers that ship with faceprint, by (embedder key, method): file name and sha256."""


def shipped_score_normalizer_names(model: str) -> list[str]:
    """Methods with a shipped normaliser for the embedder key ``model`` (e.g. ``["fsn", "s-norm"]``)."""
    return sorted(m for k, m in SHIPPED_SCORE_NORMALIZERS if k == model)


@lru_cache(maxsize=8)
def get_score_normalizer(name: str, model: str = "sface") -> ScoreNormalizer:
    """The shipped normaliser ``name`` (``"s-norm"``, ``"fsn"``) for embedder key ``model``, sha256-checked.

    Loaded once per process. See ``faceprint/models/MODEL_CARD_scorenorm.md`` for its data and numbers.

    Raises
    ------
    UnknownBackendError
        For a name that is not a registered method.
    ModelNotFoundError
        When no normaliser of that method ships for ``model`` (the message lists those that do).
    ModelIntegrityError
        When the shipped file does not hash to its recorded sha256.

    Examples
    --------
    >>> get_score_normalizer("fsn").key  # doctest: +SKIP
    'fsn(n_clusters=25,fmr=0.001)'
    """
    SCORE_NORMALIZERS.factory(name)  # unknown method: UnknownBackendError listing the valid ones
    entry = SHIPPED_SCORE_NORMALIZERS.get((model, name))
    if entry is None:
        have = ", ".join(f"{m} ({k})" for k, m in sorted(SHIPPED_SCORE_NORMALIZERS)) or "none"
        raise ModelNotFoundError(f"no shipped {name!r} score normaliser for model {model!r}; shipped: {have}")
    file, sha = entry
    ref = resources.files("faceprint") / "models" / file
    try:
        data = ref.read_bytes()
    except (FileNotFoundError, OSError) as err:
        raise ModelNotFoundError(f"shipped score normaliser {file} is missing from faceprint") from err
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha:
        raise ModelIntegrityError(f"{file}: sha256 {digest} does not match the expected {sha}")
    norm = _from_bytes(data, file)
    if getattr(norm, "model_", model) != model:
        raise ModelIntegrityError(f"{file} was fitted for model {norm.model_!r}, expected {model!r}")  # type: ignore[attr-defined]
    return norm
