"""Running the LFW protocols with a pipeline: embed every image once, score the pairs, report.

The metric code lives in :mod:`faceprint.evaluation`; this module only drives a
:class:`~faceprint.pipeline.FacePipeline` over the data set.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from .errors import DatasetNotFoundError, InvalidArgumentError, UnknownBackendError
from .evaluation import Pair, VerificationReport, cosine_scores, evaluate_verification, read_lfw_pairs
from .identification import IdentificationReport
from .pipeline import FacePipeline

__all__ = [
    "lfw_pairs",
    "embed_pairs",
    "lfw_scores",
    "evaluate_lfw",
    "evaluate_lfw_identification",
    "single_fold_threshold",
    "EmbeddingCache",
]


def lfw_pairs(root: Path, pairs_file: str = "pairs.txt") -> list[Pair]:
    """Read an official LFW pair list from ``root/lfw`` (``pairs.txt``, ``pairsDevTrain.txt``, ...)."""
    lfw = Path(root) / "lfw"
    path = lfw / pairs_file
    if not path.is_file():
        raise DatasetNotFoundError(f"{path} not found (FACEPRINT_DATA or --data must name the folder holding lfw/)")
    return read_lfw_pairs(path, lfw / "lfw-deepfunneled")


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
    pairs = lfw_pairs(root, pairs_file)
    if folds is not None:
        if folds < 2:
            raise InvalidArgumentError(f"folds must be >= 2 (the threshold is chosen on the other folds), got {folds}")
        pairs = [p for p in pairs if p.fold < folds]
    if n_images is not None:
        n_images(len({p for pair in pairs for p in (pair.path_a, pair.path_b)}))
    a, b, _ = embed_pairs(pipeline, pairs, progress=progress, cache=cache)
    scores = cosine_scores(a, b)
    labels = np.array([p.same for p in pairs], dtype=bool)
    fold_ids = np.array([p.fold for p in pairs], dtype=np.int64)
    return scores, labels, fold_ids


def evaluate_lfw(
    pipeline: FacePipeline,
    root: Path,
    *,
    pairs_file: str = "pairs.txt",
    folds: int | None = None,
    progress: Callable[[int], None] | None = None,
    n_images: Callable[[int], None] | None = None,
) -> VerificationReport:
    """The LFW view-2 10-fold protocol for ``pipeline``.

    ``folds`` limits the run to the first ``folds`` folds (>= 2; a quick check, not the
    protocol). A view-1 list (one fold, e.g. ``pairsDevTest.txt``) is scored at the model's
    calibrated best-accuracy threshold, which was set on ``pairsDevTrain.txt``.
    """
    scores, labels, fold_ids = lfw_scores(
        pipeline, root, pairs_file=pairs_file, folds=folds, progress=progress, n_images=n_images
    )
    model = getattr(pipeline.embedder, "key", getattr(pipeline.embedder, "name", "?"))
    threshold = single_fold_threshold(pipeline, fold_ids)
    return evaluate_verification(scores, labels, fold_ids, model=str(model), threshold=threshold)


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
    from .classification import KNNFaceClassifier, SVMFaceClassifier
    from .identification import evaluate_identification

    images = Path(root) / "lfw" / "lfw-deepfunneled"
    if not images.is_dir():
        raise DatasetNotFoundError(f"{images} not found (FACEPRINT_DATA or --data must name the folder holding lfw/)")
    people = sorted(p for p in images.iterdir() if p.is_dir())
    if max_identities is not None:
        if max_identities < 2:
            raise InvalidArgumentError(f"max_identities must be >= 2, got {max_identities}")
        rng = np.random.default_rng(seed)
        people = sorted(rng.choice(np.array(people, dtype=object), min(max_identities, len(people)), replace=False))
    paths = [f for person in people for f in sorted(person.glob("*.jpg"))]
    if n_images is not None:
        n_images(len(paths))
    emb, errors = (cache if cache is not None else EmbeddingCache(pipeline)).embed(paths, progress=progress)
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
