"""The LFW evaluation workflows: embed every image once with a pipeline, score, report.

:func:`run_lfw_protocol` is the one LFW verification workflow (pair scores, the k-fold report,
optionally 1-shot identification and the gender bias section); :func:`evaluate_lfw` returns its
verification report alone. :func:`evaluate_lfw_identification` runs N-shot identification on the
LFW people. The pair lists and gender lists are read by :mod:`faceprint.datasets.lfw`, the metrics
are in :mod:`.verification`, :mod:`faceprint.identification` and :mod:`.bias`; this module only
drives a :class:`~faceprint.pipeline.FacePipeline` over the data set.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..datasets.lfw import Pair, lfw_gender, lfw_identities, lfw_pairs, pair_gender_groups, select_folds
from ..errors import FaceprintError, InvalidArgumentError, UnknownBackendError
from ..identification import IdentificationReport
from ..pipeline import FacePipeline
from .bias import group_error_rates
from .report import CI_NOTE, BiasSection, ModelScores, bias_section
from .verification import VerificationReport, cosine_scores, evaluate_verification

__all__ = [
    "lfw_pairs",
    "embed_pairs",
    "lfw_scores",
    "evaluate_lfw",
    "run_lfw_protocol",
    "LfwEvaluation",
    "StageProgress",
    "evaluate_lfw_identification",
    "lfw_gender_bias",
    "single_fold_threshold",
    "EmbeddingCache",
]

StageProgress = Callable[[str, int], "Callable[[int], None] | None"]
"""``stage(what, n_images) -> advance``: called when an embedding pass starts (``what`` is
``"images"`` for the pair images, ``"identities"`` for the identification images) with the number
of images it will embed; the callable it returns (or None) is then called with the number of images
embedded since its last call."""


def _model_key(pipeline: FacePipeline) -> str:
    return pipeline.model_key


def _stage(progress: Callable[[int], None] | None, n_images: Callable[[int], None] | None) -> StageProgress | None:
    """The :data:`StageProgress` of the older (progress, n_images) callback pair."""
    if progress is None and n_images is None:
        return None

    def stage(_what: str, total: int) -> Callable[[int], None] | None:
        if n_images is not None:
            n_images(total)
        return progress

    return stage


class EmbeddingCache:
    """Per-image embeddings of one pipeline, so that runs sharing images (LFW pairs, then LFW
    identification) embed each image once. Keyed by path; holds failures to acquire too.

    Examples
    --------
    >>> cache = EmbeddingCache(pipeline)  # doctest: +SKIP
    >>> emb, errors = cache.embed(paths)  # doctest: +SKIP
    """

    def __init__(self, pipeline: FacePipeline) -> None:
        self.pipeline = pipeline
        self._rows: dict[str, tuple[npt.NDArray[np.float32], str | None]] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def embed(
        self, paths: Sequence[Path | str], *, progress: Callable[[int], None] | None = None
    ) -> tuple[npt.NDArray[np.float32], list[str | None]]:
        """Like :meth:`FacePipeline.embed_many` (central face), embedding only paths not seen before.

        ``progress`` counts every path, cached or not, so a bar sized to ``len(paths)`` completes.
        """
        keys = [str(p) for p in paths]
        todo = sorted({k for k in keys if k not in self._rows})
        if todo:
            emb, errors = self.pipeline.embed_many(todo, select="central", progress=progress)
            for k, row, e in zip(todo, emb, errors):
                self._rows[k] = (row, e)
        if progress is not None and len(keys) > len(todo):
            progress(len(keys) - len(todo))
        dim = self.pipeline.embedder.dim  # type: ignore[union-attr]
        out = np.stack([self._rows[k][0] for k in keys]) if keys else np.zeros((0, dim), np.float32)
        return out, [self._rows[k][1] for k in keys]


def embed_pairs(
    pipeline: FacePipeline,
    pairs: Sequence[Pair],
    *,
    progress: Callable[[int], None] | None = None,
    cache: EmbeddingCache | None = None,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], list[str]]:
    """Embed each distinct image of ``pairs`` once (central face); NaN rows are failures to acquire."""
    paths = sorted({p for pair in pairs for p in (pair.path_a, pair.path_b)})
    index = {p: i for i, p in enumerate(paths)}
    emb, errors = (cache if cache is not None else EmbeddingCache(pipeline)).embed(paths, progress=progress)
    a = emb[[index[p.path_a] for p in pairs]]
    b = emb[[index[p.path_b] for p in pairs]]
    return a, b, [e for e in errors if e]


def _score_pairs(
    pipeline: FacePipeline, pairs: Sequence[Pair], stage: StageProgress | None, cache: EmbeddingCache | None
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
    advance = None
    if stage is not None:
        advance = stage("images", len({p for pair in pairs for p in (pair.path_a, pair.path_b)}))
    a, b, _ = embed_pairs(pipeline, pairs, progress=advance, cache=cache)
    scores = cosine_scores(a, b)
    labels = np.array([p.same for p in pairs], dtype=bool)
    fold_ids = np.array([p.fold for p in pairs], dtype=np.int64)
    return scores, labels, fold_ids


def lfw_scores(
    pipeline: FacePipeline,
    root: Path,
    *,
    pairs_file: str = "pairs.txt",
    folds: int | None = None,
    progress: Callable[[int], None] | None = None,
    n_images: Callable[[int], None] | None = None,
    cache: EmbeddingCache | None = None,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
    """Cosine scores, labels and fold ids of an LFW pair list for ``pipeline``.

    Every distinct image is embedded once (central face). ``folds`` keeps only the first ``folds``
    folds (>= 2; a quick check, not the protocol). A NaN score marks a failure to acquire.

    Parameters
    ----------
    pipeline : FacePipeline
    root : Path
        The data sets folder (the one holding ``lfw/``).
    pairs_file : str, default "pairs.txt"
        A pair list under ``root/lfw`` (``pairs.txt``, ``pairsDevTest.txt``, ...).
    folds : int, optional
        Only the first ``folds`` folds.
    progress : callable, optional
        Called with the number of images embedded since the last call.
    n_images : callable, optional
        Called once with the number of distinct images to embed.
    cache : EmbeddingCache, optional
        Reuse (and fill) per-image embeddings shared with other runs of the same pipeline.

    Returns
    -------
    scores : ndarray of float64, shape (n_pairs,)
    labels : ndarray of bool, shape (n_pairs,)
        True for genuine pairs.
    fold_ids : ndarray of int64, shape (n_pairs,)

    Raises
    ------
    DatasetNotFoundError
        When the pair list is missing.
    ValueError
        When ``folds < 2``.

    Examples
    --------
    >>> scores, labels, fold_ids = lfw_scores(pipeline, Path("/data"), folds=2)  # doctest: +SKIP
    >>> scores.shape  # doctest: +SKIP
    (1200,)
    """
    pairs = select_folds(lfw_pairs(root, pairs_file), folds)
    return _score_pairs(pipeline, pairs, _stage(progress, n_images), cache)


@dataclass(frozen=True)
class LfwEvaluation:
    """One model's run of an LFW pair list (:func:`run_lfw_protocol`).

    Attributes
    ----------
    model : str
        The embedder's key.
    pairs_file : str
        The pair list (``pairs.txt``, ``pairsDevTest.txt``, ...).
    pairs : tuple of Pair
        The pairs scored (the first ``folds`` folds when limited), aligned with the arrays.
    scores : ndarray of float64, shape (n_pairs,)
        Cosine score per pair; NaN marks a failure to acquire.
    labels : ndarray of bool, shape (n_pairs,)
    folds : ndarray of int64, shape (n_pairs,)
    threshold : float or None
        The fixed threshold of a single-fold list (:func:`single_fold_threshold`), else None.
    verification : VerificationReport
    identification : IdentificationReport or None
        1-shot identification on the LFW people, when asked for.
    gender_bias : BiasSection or None
        FNMR / FMR by gender at the calibrated FMR 1e-3 threshold, when asked for and available.
    gender_bias_error : str or None
        Why the gender bias section was asked for but could not be built (e.g. no gender lists).
    """

    model: str
    pairs_file: str
    pairs: tuple[Pair, ...]
    scores: npt.NDArray[np.float64]
    labels: npt.NDArray[np.bool_]
    folds: npt.NDArray[np.int64]
    threshold: float | None
    verification: VerificationReport
    identification: IdentificationReport | None = None
    gender_bias: BiasSection | None = None
    gender_bias_error: str | None = None

    @property
    def failures_to_acquire(self) -> int:
        """Pairs with a NaN score."""
        return int(np.isnan(self.scores).sum())

    def model_scores(self) -> ModelScores:
        """The input of :func:`~faceprint.evaluation.report.build_report` for this run."""
        cmc = None if self.identification is None else np.asarray(self.identification.cmc, dtype=np.float64)
        return ModelScores(
            self.model,
            self.scores,
            self.labels,
            self.folds,
            self.failures_to_acquire,
            threshold=self.threshold,
            cmc=cmc,
        )

    def to_dict(self) -> dict[str, Any]:
        """:meth:`VerificationReport.to_dict`, plus ``identification_1shot`` when identification ran."""
        out = self.verification.to_dict()
        if self.identification is not None:
            out["identification_1shot"] = self.identification.to_dict()
        return out


def run_lfw_protocol(
    pipeline: FacePipeline,
    root: Path,
    *,
    pairs_file: str = "pairs.txt",
    folds: int | None = None,
    identification: bool = False,
    max_identities: int | None = None,
    gender_bias: bool = False,
    stage: StageProgress | None = None,
    cache: EmbeddingCache | None = None,
) -> LfwEvaluation:
    """An LFW pair list for ``pipeline``: scores, the verification report and, on request, more.

    Every distinct image is embedded once (central face). A k-fold list (view 2, ``pairs.txt``)
    is scored with the k-fold protocol; a view-1 list (one fold, e.g. ``pairsDevTest.txt``) at the
    model's calibrated best-accuracy threshold, which was set on ``pairsDevTrain.txt``.

    Parameters
    ----------
    pipeline : FacePipeline
    root : Path
        The data sets folder (the one holding ``lfw/``).
    pairs_file : str, default "pairs.txt"
        A pair list under ``root/lfw``.
    folds : int, optional
        Only the first ``folds`` folds (>= 2; a quick check, not the protocol).
    identification : bool, default False
        Also run 1-shot identification on the LFW people (:func:`evaluate_lfw_identification`,
        template method, seed 0), reusing the pair images' embeddings.
    max_identities : int, optional
        With ``identification``: a seeded random subset of the people.
    gender_bias : bool, default False
        Also measure FNMR / FMR by gender at the model's calibrated FMR 1e-3 threshold
        (:func:`lfw_gender_bias`). When that fails with a :class:`~faceprint.errors.FaceprintError`
        (no gender lists, no calibrated threshold) the run goes on: the reason is in
        ``gender_bias_error``.
    stage : StageProgress, optional
        Progress of each embedding pass (see :data:`StageProgress`).
    cache : EmbeddingCache, optional
        Per-image embeddings shared with other runs of the same pipeline (a fresh one by default).

    Returns
    -------
    LfwEvaluation

    Raises
    ------
    DatasetNotFoundError
        When the pair list (or, with ``identification``, the images folder) is missing.
    ValueError
        When ``folds < 2`` or ``max_identities < 2``.

    Examples
    --------
    >>> run = run_lfw_protocol(pipeline, Path("/data"), folds=2, identification=True)  # doctest: +SKIP
    >>> run.verification.accuracy, run.identification.rank1  # doctest: +SKIP
    (0.99, 0.97)
    """
    model = _model_key(pipeline)
    pairs = select_folds(lfw_pairs(root, pairs_file), folds)
    cache = cache if cache is not None else EmbeddingCache(pipeline)
    scores, labels, fold_ids = _score_pairs(pipeline, pairs, stage, cache)
    threshold = single_fold_threshold(pipeline, fold_ids)
    report = evaluate_verification(scores, labels, fold_ids, model=model, threshold=threshold)
    id_report = None
    if identification:
        (id_report,), _ = _identification(
            pipeline, root, n_shots=[1], method="template", seed=0, max_identities=max_identities,
            stage=stage, cache=cache,
        )
    section = error = None
    if gender_bias:
        try:
            section = lfw_gender_bias(
                scores, labels, pairs, Path(root), pipeline.threshold("1e-3"), model,
                title=f"LFW {pairs_file} by gender, calibrated FMR 1e-3 threshold",
            )
        except FaceprintError as e:
            error = str(e)
    return LfwEvaluation(
        model=model,
        pairs_file=pairs_file,
        pairs=tuple(pairs),
        scores=scores,
        labels=labels,
        folds=fold_ids,
        threshold=threshold,
        verification=report,
        identification=id_report,
        gender_bias=section,
        gender_bias_error=error,
    )


def evaluate_lfw(
    pipeline: FacePipeline,
    root: Path,
    *,
    pairs_file: str = "pairs.txt",
    folds: int | None = None,
    progress: Callable[[int], None] | None = None,
    n_images: Callable[[int], None] | None = None,
) -> VerificationReport:
    """The LFW view-2 10-fold protocol for ``pipeline``: :func:`run_lfw_protocol`'s verification report.

    ``folds`` limits the run to the first ``folds`` folds (>= 2; a quick check, not the
    protocol). A view-1 list (one fold, e.g. ``pairsDevTest.txt``) is scored at the model's
    calibrated best-accuracy threshold, which was set on ``pairsDevTrain.txt``.
    """
    return run_lfw_protocol(
        pipeline, root, pairs_file=pairs_file, folds=folds, stage=_stage(progress, n_images)
    ).verification


def single_fold_threshold(pipeline: FacePipeline, fold_ids: npt.ArrayLike) -> float | None:
    """A one-fold list has no other folds to choose a threshold on: use the model's calibrated
    best-accuracy threshold (set on ``pairsDevTrain.txt``); ``None`` for k-fold lists."""
    return pipeline.threshold("best_accuracy") if len(np.unique(np.asarray(fold_ids))) < 2 else None


def evaluate_lfw_identification(
    pipeline: FacePipeline,
    root: Path,
    *,
    n_shots: Sequence[int] = (1, 2, 5),
    method: str = "template",
    seed: int = 0,
    max_identities: int | None = None,
    progress: Callable[[int], None] | None = None,
    n_images: Callable[[int], None] | None = None,
    cache: EmbeddingCache | None = None,
) -> tuple[list[IdentificationReport], int]:
    """N-shot identification on LFW (see :mod:`faceprint.identification`); returns (reports, failures).

    Every image of the chosen identities is embedded once (central face); people with too few images
    for an N-shot gallery serve as non-mated probes. ``max_identities`` takes a seeded random subset
    of all identities (a quick run; the full set is 12,405 images). ``method``: ``template`` (best
    template), ``knn`` or ``svm`` (fitted on the gallery). ``cache`` reuses embeddings of images
    already embedded by this pipeline (e.g. the pair images of :func:`lfw_scores`).
    """
    return _identification(
        pipeline, root, n_shots=n_shots, method=method, seed=seed, max_identities=max_identities,
        stage=_stage(progress, n_images), cache=cache,
    )


def _identification(
    pipeline: FacePipeline,
    root: Path,
    *,
    n_shots: Sequence[int],
    method: str,
    seed: int,
    max_identities: int | None,
    stage: StageProgress | None,
    cache: EmbeddingCache | None,
) -> tuple[list[IdentificationReport], int]:
    from ..classification import KNNFaceClassifier, SVMFaceClassifier
    from ..identification import evaluate_identification

    paths = lfw_identities(Path(root), max_identities=max_identities, seed=seed)
    advance = None if stage is None else stage("identities", len(paths))
    emb, errors = (cache if cache is not None else EmbeddingCache(pipeline)).embed(paths, progress=advance)
    ok = np.array([e is None for e in errors], bool)
    names = np.array([p.parent.name for p in paths])[ok]
    makers = {"template": None, "knn": KNNFaceClassifier, "svm": SVMFaceClassifier}
    if method not in makers:
        raise UnknownBackendError(f"unknown method {method!r}; valid: {', '.join(makers)}")
    reports = []
    for n in n_shots:
        maker = makers[method]
        reports.append(
            evaluate_identification(
                emb[ok], names, n_shot=n, seed=seed, classifier=None if maker is None else maker()
            )
        )
    return reports, int((~ok).sum())


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

    ``scores`` / ``labels`` are aligned with ``pairs`` (e.g. from :func:`lfw_scores` and
    :func:`faceprint.datasets.lfw.lfw_pairs` with the same folds). Pair groups: ``male``, ``female``,
    ``mixed`` (a man and a woman: impostor pairs only) and ``unknown`` (an image in neither list);
    ``mixed`` and ``unknown`` are listed but left out of the worst / best ratios.

    Raises
    ------
    DatasetNotFoundError
        When the gender lists are not found under ``root`` (see :func:`faceprint.datasets.lfw.lfw_gender`).
    ValueError
        When the lengths differ.
    """
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
