"""The UTKFace bias workflow: detection failures and impostor FMR per demographic group.

:func:`evaluate_bias` samples the UTKFace images (:mod:`faceprint.datasets.utkface`), embeds them
with each pipeline and measures, per race x gender cell and per age band, the detection failure
rate (:func:`~faceprint.evaluation.bias.group_proportions`) and the impostor FMR at the model's
calibrated FMR 1e-3 threshold (:func:`~faceprint.evaluation.bias.utkface_impostor_fmr`). The
result is a frozen :class:`BiasEvaluation` whose :meth:`~BiasEvaluation.to_dict` is the JSON
summary and whose sections go into a report (:func:`~faceprint.evaluation.report.build_report`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..datasets.utkface import sample_images, utkface_groups, utkface_images
from ..errors import InvalidArgumentError
from ..pipeline import FacePipeline
from .bias import group_proportions, utkface_impostor_fmr
from .report import CI_NOTE, UTKFACE_IMPOSTOR_NOTE, BiasSection, bias_section

__all__ = ["OPERATING_POINT", "ModelBias", "BiasEvaluation", "evaluate_bias"]

OPERATING_POINT = "1e-3"
"""The calibrated FMR whose threshold the UTKFace rates are measured at (the global operating point)."""


@dataclass(frozen=True)
class ModelBias:
    """One model's UTKFace bias sections.

    Attributes
    ----------
    model : str
        The embedder's key.
    threshold : float
        The calibrated FMR 1e-3 threshold the impostor FMRs were measured at.
    detection_failures : int
        Sampled images where the detector found no face.
    sections : tuple of BiasSection
        Detection failures and impostor FMR, by race x gender, then by age band.
    """

    model: str
    threshold: float
    detection_failures: int
    sections: tuple[BiasSection, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "threshold": self.threshold,
            "detection_failures": self.detection_failures,
            "sections": [s.to_dict() for s in self.sections],
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
        The calibrated FMR of the threshold (:data:`OPERATING_POINT`).
    models : tuple of ModelBias
        One per pipeline, in order.
    """

    images: int
    images_available: int
    malformed_names: int
    seed: int
    operating_point: str
    models: tuple[ModelBias, ...]

    @property
    def sections(self) -> list[BiasSection]:
        """Every model's sections, model by model (the bias sections of a report)."""
        return [s for m in self.models for s in m.sections]

    @property
    def title(self) -> str:
        """The report title, ``UTKFace bias (N of M images)``."""
        return f"UTKFace bias ({self.images} of {self.images_available} images)"

    def to_dict(self) -> dict[str, Any]:
        """JSON summary: ``images, images_available, malformed_names, seed, operating_point, models``."""
        return {
            "images": self.images,
            "images_available": self.images_available,
            "malformed_names": self.malformed_names,
            "seed": self.seed,
            "operating_point": self.operating_point,
            "models": [m.to_dict() for m in self.models],
        }


def _detector_name(pipeline: FacePipeline) -> str:
    d = pipeline.detector
    return d if isinstance(d, str) else d.name


def _model_key(pipeline: FacePipeline) -> str:
    return pipeline.model_key


def evaluate_bias(
    pipelines: Iterable[FacePipeline],
    root: Path,
    *,
    max_images: int | None = None,
    seed: int = 0,
    n_boot: int = 1000,
    stage: Callable[[str, int], Callable[[int], None] | None] | None = None,
) -> BiasEvaluation:
    """UTKFace bias of each pipeline: detection failure rate and impostor FMR per group.

    Rates are measured at each model's calibrated FMR 1e-3 threshold (the global operating point).
    UTKFace has no identity labels: every cross pair inside a group is treated as an impostor pair.
    Groups: race x gender cells and age bands (:func:`~faceprint.datasets.utkface.utkface_groups`).

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

    Returns
    -------
    BiasEvaluation

    Raises
    ------
    DatasetNotFoundError
        When ``root/utkface/UTKFace`` is missing or holds no ``.jpg`` image.
    ValueError
        When ``max_images < 2`` or ``n_boot < 1``.

    Examples
    --------
    >>> res = evaluate_bias([FacePipeline()], Path("/data"), max_images=200)  # doctest: +SKIP
    >>> res.to_dict()["models"][0]["sections"][1]["title"]  # doctest: +SKIP
    'UTKFace impostor FMR by race x gender'
    """
    if max_images is not None and max_images < 2:
        raise InvalidArgumentError(f"max_images must be >= 2, got {max_images}")
    if n_boot < 1:
        raise InvalidArgumentError(f"n_boot must be >= 1, got {n_boot}")
    available = utkface_images(Path(root))
    paths = sample_images(available, max_images, seed=seed)
    cells, bands, malformed = utkface_groups([p.name for p in paths])
    models: list[ModelBias] = []
    for pipe in pipelines:
        key = _model_key(pipe)
        threshold = pipe.threshold(OPERATING_POINT)
        advance = None if stage is None else stage(key, len(paths))
        emb, errors = pipe.embed_many(paths, select="central", progress=advance)
        failed = np.array([e is not None for e in errors], dtype=bool)
        detector = _detector_name(pipe)
        sections: list[BiasSection] = []
        for what, groups in (("race x gender", cells), ("age band", bands)):
            keep = np.array([g is not None for g in groups], dtype=bool)
            labelled = [g for g in groups if g is not None]
            det = group_proportions(failed[keep], labelled, n_boot=n_boot, seed=seed)
            sections.append(
                bias_section(
                    f"UTKFace detection failures by {what}", key, det, ("rate",),
                    label="detection failure rate",
                    note=f"{int(keep.sum())} images; a failure is an image where {detector} finds no face. "
                    + CI_NOTE,
                )
            )
            rates = utkface_impostor_fmr(emb, groups, threshold, seed=seed, n_boot=n_boot)
            sections.append(
                bias_section(
                    f"UTKFace impostor FMR by {what}", key, rates, ("fmr",), threshold=threshold,
                    note=f"Global threshold {threshold:.4f} (calibrated FMR 1e-3 on LFW). "
                    + UTKFACE_IMPOSTOR_NOTE + " " + CI_NOTE,
                )
            )
        models.append(
            ModelBias(model=key, threshold=threshold, detection_failures=int(failed.sum()), sections=tuple(sections))
        )
    return BiasEvaluation(
        images=len(paths),
        images_available=len(available),
        malformed_names=malformed,
        seed=seed,
        operating_point=OPERATING_POINT,
        models=tuple(models),
    )
