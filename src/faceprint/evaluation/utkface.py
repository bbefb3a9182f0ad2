"""The UTKFace bias workflow: detection failures and impostor FMR per demographic group.

:func:`evaluate_bias` samples the UTKFace images (:mod:`faceprint.datasets.utkface`), embeds them
with each pipeline and measures, per race x gender cell and per age band, the detection failure
rate (:func:`~faceprint.evaluation.bias.group_proportions`) and the impostor FMR
(:func:`~faceprint.evaluation.bias.utkface_impostor_fmr`) at one global threshold per model,
chosen by ``fmr`` and ``threshold_from`` (:func:`resolve_threshold`):

* ``"lfw"``: the shipped calibration (LFW view 1 DevTrain) at that FMR;
* ``"utkface"``: the threshold at that FMR over every cross pair of the embedded UTKFace sample
  (:func:`~faceprint.evaluation.bias.cross_pair_threshold`), so that the groups are compared at a
  matched global FMR on this data;
* a path: a JSON file of thresholds shaped like ``calibration.json``
  (:func:`load_threshold_file`).

The result is a frozen :class:`BiasEvaluation` whose :meth:`~BiasEvaluation.to_dict` is the JSON
summary and whose sections go into a report (:func:`~faceprint.evaluation.report.build_report`).
Pairs are streamed: memory grows with the number of images, not of pairs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..datasets.utkface import sample_images, utkface_groups, utkface_images
from ..errors import InvalidArgumentError, InvalidFileError
from ..pipeline import FacePipeline
from .bias import (
    MIN_ERRORS_FOR_CLAIM,
    cross_pair_matches,
    cross_pair_threshold,
    group_proportions,
    utkface_impostor_fmr,
)
from .report import CI_NOTE, CI_NOTE_IMAGES, CLAIM_NOTE, UTKFACE_IMPOSTOR_NOTE, BiasSection, bias_section
from .verification import fmr_key

__all__ = [
    "OPERATING_POINT",
    "THRESHOLD_SOURCES",
    "ModelBias",
    "BiasEvaluation",
    "evaluate_bias",
    "resolve_threshold",
    "load_threshold_file",
]

OPERATING_POINT = "1e-3"
"""The default FMR whose threshold the UTKFace rates are measured at (the global operating point)."""

THRESHOLD_SOURCES = ("lfw", "utkface")
"""Named threshold sources of :func:`evaluate_bias`; anything else is a JSON file's path."""


@dataclass(frozen=True)
class ModelBias:
    """One model's UTKFace bias sections.

    Attributes
    ----------
    model : str
        The embedder's key.
    threshold : float
        The global threshold the impostor FMRs were measured at.
    detection_failures : int
        Sampled images where the detector found no face.
    sections : tuple of BiasSection
        Detection failures and impostor FMR, by race x gender, then by age band.
    fmr : float
        The FMR the threshold was set for.
    threshold_from : str
        Where it comes from: ``lfw``, ``utkface`` or the file's path.
    cross_pairs : int
        Cross pairs of all embedded images of the sample (every group, mixed too).
    cross_pair_matches : int
        Of those, the pairs with ``score >= threshold``: the global FMR the threshold gives here.
    """

    model: str
    threshold: float
    detection_failures: int
    sections: tuple[BiasSection, ...]
    fmr: float = 1e-3
    threshold_from: str = "lfw"
    cross_pairs: int = 0
    cross_pair_matches: int = 0

    @property
    def cross_pair_fmr(self) -> float | None:
        """Share of all cross pairs of the sample that match at the threshold (None without pairs)."""
        return self.cross_pair_matches / self.cross_pairs if self.cross_pairs else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "threshold": self.threshold,
            "detection_failures": self.detection_failures,
            "sections": [s.to_dict() for s in self.sections],
            "fmr": self.fmr,
            "threshold_from": self.threshold_from,
            "cross_pairs": self.cross_pairs,
            "cross_pair_matches": self.cross_pair_matches,
            "cross_pair_fmr": self.cross_pair_fmr,
        }


@dataclass(frozen=True)
class BiasEvaluation:
    """What :func:`evaluate_bias` measured.

    Attributes
    ----------
    images : int
        Images evaluated (the sample).
    images_available : int
        UTKFace images found.
    malformed_names : int
        Sampled file names that do not parse (left out of the groups).
    seed : int
        Sample and bootstrap seed.
    operating_point : str
        The FMR of the threshold as a key (``1e-3``; :data:`OPERATING_POINT` by default).
    models : tuple of ModelBias
        One per pipeline, in order.
    fmr : float
        The FMR of the threshold.
    threshold_from : str
        ``lfw``, ``utkface`` or the thresholds file's path.
    """

    images: int
    images_available: int
    malformed_names: int
    seed: int
    operating_point: str
    models: tuple[ModelBias, ...]
    fmr: float = 1e-3
    threshold_from: str = "lfw"

    @property
    def sections(self) -> list[BiasSection]:
        """Every model's sections, model by model (the bias sections of a report)."""
        return [s for m in self.models for s in m.sections]

    @property
    def title(self) -> str:
        """The report title, ``UTKFace bias (N of M images, threshold at FMR F from S)``."""
        return (
            f"UTKFace bias ({self.images} of {self.images_available} images, threshold at FMR "
            f"{self.operating_point} from {_source_name(self.threshold_from)})"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON summary: ``images, images_available, malformed_names, seed, operating_point, models, fmr,
        threshold_from``."""
        return {
            "images": self.images,
            "images_available": self.images_available,
            "malformed_names": self.malformed_names,
            "seed": self.seed,
            "operating_point": self.operating_point,
            "models": [m.to_dict() for m in self.models],
            "fmr": self.fmr,
            "threshold_from": self.threshold_from,
        }


def _source_name(source: str) -> str:
    return {"lfw": "the LFW calibration", "utkface": "these UTKFace pairs"}.get(source, source)


def _detector_name(pipeline: FacePipeline) -> str:
    d = pipeline.detector
    return d if isinstance(d, str) else d.name


def _model_key(pipeline: FacePipeline) -> str:
    return pipeline.model_key


def load_threshold_file(path: Path, model: str, fmr: float) -> float:
    """The threshold at ``fmr`` for ``model`` from a JSON thresholds file.

    The file is shaped like ``faceprint/calibration.json``: either the whole file,
    ``{"models": {MODEL: {"thresholds": {"1e-3": t, ...}}}}``, or one model's entry,
    ``{"thresholds": {"1e-3": t, ...}}``. FMR keys as :func:`~faceprint.evaluation.fmr_key` writes
    them (``1e-2``, ``1e-3``, ``1.5e-3``).

    Raises
    ------
    InvalidFileError
        When the file cannot be read as such JSON, has no entry for ``model``, or no threshold at
        ``fmr``.

    Examples
    --------
    >>> load_threshold_file(Path("my_thresholds.json"), "sface", 1e-3)  # doctest: +SKIP
    0.4211
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InvalidFileError(f"{p}: not a readable JSON thresholds file ({e})") from e
    if not isinstance(data, dict):
        raise InvalidFileError(f"{p}: expected a JSON object with 'models' or 'thresholds'")
    if "models" in data:
        models = data["models"] if isinstance(data["models"], dict) else {}
        if model not in models:
            raise InvalidFileError(f"{p}: no entry for model {model!r}; it has: {', '.join(sorted(models)) or 'none'}")
        entry = models[model]
    else:
        entry = data
    table = entry.get("thresholds") if isinstance(entry, dict) else None
    if not isinstance(table, dict):
        raise InvalidFileError(f"{p}: expected 'thresholds' {{FMR: threshold}} for model {model!r}")
    key = fmr_key(fmr)
    if key not in table:
        raise InvalidFileError(
            f"{p}: no threshold at FMR {key} for model {model!r}; it has: {', '.join(sorted(table)) or 'none'}"
        )
    try:
        return float(table[key])
    except (TypeError, ValueError) as e:
        raise InvalidFileError(f"{p}: threshold at FMR {key} is not a number: {table[key]!r}") from e


def resolve_threshold(
    pipeline: FacePipeline, embeddings: npt.ArrayLike, fmr: float, threshold_from: str | Path
) -> tuple[float, str]:
    """(threshold, description) of one model for :func:`evaluate_bias` (see the module docstring).

    Raises
    ------
    FaceprintError
        ``lfw`` without a calibrated threshold at ``fmr`` (the calibration has 1e-2, 1e-3, 1e-4).
    InvalidFileError
        A thresholds file that cannot be used (:func:`load_threshold_file`).
    """
    key = fmr_key(fmr)
    source = str(threshold_from)
    if source == "lfw":
        return pipeline.threshold(key), f"calibrated FMR {key} on LFW"
    if source == "utkface":
        t, n_pairs = cross_pair_threshold(embeddings, fmr)
        return t, f"FMR {key} matched on all {n_pairs:,} cross pairs of the embedded UTKFace sample"
    t = load_threshold_file(Path(source), _model_key(pipeline), fmr)
    return t, f"FMR {key} from {source}"


def _sampled_note(rates: list[Any]) -> str:
    sampled = [r for r in rates if r.sampled]
    if not sampled:
        return ""
    parts = [f"{r.group}: {r.n_impostor:,} of {r.n_impostor_total:,} impostor pairs, sampled" for r in sampled]
    return " Sampled (uniform pairs, with replacement): " + "; ".join(parts) + "."


def evaluate_bias(
    pipelines: Iterable[FacePipeline],
    root: Path,
    *,
    max_images: int | None = None,
    seed: int = 0,
    n_boot: int = 1000,
    stage: Callable[[str, int], Callable[[int], None] | None] | None = None,
    fmr: float = 1e-3,
    threshold_from: str | Path = "lfw",
    max_pairs_per_group: int | None = None,
) -> BiasEvaluation:
    """UTKFace bias of each pipeline: detection failure rate and impostor FMR per group.

    Rates are measured at one global threshold per model, at ``fmr``, taken from
    ``threshold_from`` (see the module docstring). UTKFace has no identity labels: every cross
    pair inside a group is treated as an impostor pair. Groups: race x gender cells and age bands
    (:func:`~faceprint.datasets.utkface.utkface_groups`). Every pair is counted (streamed), unless
    ``max_pairs_per_group`` asks for a sample.

    Parameters
    ----------
    pipelines : iterable of FacePipeline
        The models to compare; consumed one at a time (a generator builds each when its turn comes).
    root : Path
        The data sets folder (the one holding ``utkface/UTKFace``).
    max_images : int, optional
        A seeded random sample of this many images (a quick run); all images by default.
    seed : int, default 0
        Sample and bootstrap seed.
    n_boot : int, default 1000
        Bootstrap resamples per group.
    stage : callable, optional
        ``stage(model, n_images) -> advance``, called before each model embeds the sample; the
        returned callable (or None) gets the number of images embedded since its last call.
    fmr : float, default 1e-3
        The operating point: the FMR of the threshold.
    threshold_from : {"lfw", "utkface"} or path, default "lfw"
        ``lfw``: the shipped LFW calibration at ``fmr``; ``utkface``: the threshold at ``fmr`` over
        every cross pair of the embedded sample (a matched global FMR); a path: a JSON thresholds
        file (:func:`load_threshold_file`).
    max_pairs_per_group : int, optional
        Groups with more cross pairs than this use a seeded sample of that many pairs, reported as
        sampled; None (default) counts every pair.

    Returns
    -------
    BiasEvaluation

    Raises
    ------
    DatasetNotFoundError
        When ``root/utkface/UTKFace`` is missing or holds no ``.jpg`` image.
    ValueError
        When ``max_images < 2``, ``n_boot < 1`` or ``fmr`` is outside ``(0, 1)``.
    InvalidFileError
        A thresholds file that cannot be used.

    Examples
    --------
    >>> res = evaluate_bias([FacePipeline()], Path("/data"), max_images=200, threshold_from="utkface")  # doctest: +SKIP
    >>> res.to_dict()["models"][0]["sections"][1]["title"]  # doctest: +SKIP
    'UTKFace impostor FMR by race x gender'
    """
    if max_images is not None and max_images < 2:
        raise InvalidArgumentError(f"max_images must be >= 2, got {max_images}")
    if n_boot < 1:
        raise InvalidArgumentError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < float(fmr) < 1.0:
        raise InvalidArgumentError(f"fmr must lie in (0, 1), got {fmr}")
    source = str(threshold_from)
    if source not in THRESHOLD_SOURCES and not Path(source).is_file():
        raise InvalidArgumentError(
            f"threshold_from must be {', '.join(THRESHOLD_SOURCES)} or a JSON thresholds file, got {source!r}"
        )
    available = utkface_images(Path(root))
    paths = sample_images(available, max_images, seed=seed)
    cells, bands, malformed = utkface_groups([p.name for p in paths])
    claim_note = " " + CLAIM_NOTE.format(min_errors=MIN_ERRORS_FOR_CLAIM)
    models: list[ModelBias] = []
    for pipe in pipelines:
        key = _model_key(pipe)
        # fail before embedding when the calibration or the file lacks this model or FMR
        if source == "lfw":
            pipe.threshold(fmr_key(fmr))
        elif source != "utkface":
            load_threshold_file(Path(source), key, float(fmr))
        advance = None if stage is None else stage(key, len(paths))
        emb, errors = pipe.embed_many(paths, select="central", progress=advance)
        threshold, described = resolve_threshold(pipe, emb, float(fmr), source)
        matches, n_cross = cross_pair_matches(emb, threshold)
        failed = np.array([e is not None for e in errors], dtype=bool)
        detector = _detector_name(pipe)
        global_fmr = f"{matches:,} of the {n_cross:,} cross pairs of all embedded images match at it" + (
            f" (FMR {matches / n_cross:.4g}). " if n_cross else ". "
        )
        sections: list[BiasSection] = []
        for what, groups in (("race x gender", cells), ("age band", bands)):
            keep = np.array([g is not None for g in groups], dtype=bool)
            labelled = [g for g in groups if g is not None]
            det = group_proportions(failed[keep], labelled, n_boot=n_boot, seed=seed)
            sections.append(
                bias_section(
                    f"UTKFace detection failures by {what}", key, det, ("rate",),
                    label="detection failure rate", events="detection failures", unit="images",
                    note=f"{int(keep.sum())} images; a failure is an image where {detector} finds no face. "
                    + CI_NOTE_IMAGES + claim_note,
                )
            )
            rates = utkface_impostor_fmr(
                emb, groups, threshold, seed=seed, n_boot=n_boot, max_pairs_per_group=max_pairs_per_group
            )
            sections.append(
                bias_section(
                    f"UTKFace impostor FMR by {what}", key, rates, ("fmr",), threshold=threshold,
                    note=f"Global threshold {threshold:.4f} ({described}); {global_fmr}"
                    + UTKFACE_IMPOSTOR_NOTE + " " + CI_NOTE + claim_note + _sampled_note(rates),
                )
            )
        models.append(
            ModelBias(
                model=key,
                threshold=threshold,
                detection_failures=int(failed.sum()),
                sections=tuple(sections),
                fmr=float(fmr),
                threshold_from=source,
                cross_pairs=n_cross,
                cross_pair_matches=matches,
            )
        )
    return BiasEvaluation(
        images=len(paths),
        images_available=len(available),
        malformed_names=malformed,
        seed=seed,
        operating_point=fmr_key(fmr),
        models=tuple(models),
        fmr=float(fmr),
        threshold_from=source,
    )
