"""Face processing toolbox: one-to-many augmentation and many-to-one normalisation of aligned crops.

Off the recognition path: :class:`faceprint.FacePipeline`, the embedders, the gallery and the
evaluation code do not import this package, so what it does never changes a recognition result
unless a caller applies it. ``bench/processing.py`` measured every family on LFW 1-shot
identification with YuNet + SFace (``bench/results/processing.json``): none helped measurably
and several hurt, so none is on by default. ``faceprint train`` uses :func:`jitter_template`
for its crop scales.

* :mod:`faceprint.processing.augment` (one face, many views, for enrollment from one photo):
  :func:`flip`, :func:`photometric`, :func:`geometric_jitter`, :func:`synth_yaw`,
  :func:`occlude`, :func:`blur`, :func:`downsample`, :func:`jpeg`; :class:`Augmenter` draws
  seeded, reproducible views and :func:`augment_embeddings` embeds them into a template.
* :mod:`faceprint.processing.normalize` (many photos toward one canonical crop): :func:`clahe`,
  :func:`retinex_msr`, :func:`gamma_correct`, :func:`histogram_equalize` (illumination),
  :func:`symmetrize` and :func:`center_nose` (crude 2-D pose heuristics) with
  :func:`estimate_yaw`; each is also a named :class:`Processor` in :data:`PROCESSORS`
  (``get_processor("clahe")``, ``compose("clahe", "symmetrize")``).
* :mod:`faceprint.processing.landmarks`: :func:`crop_landmarks`, :func:`flip_landmarks`.

All work on RGB ``uint8`` crops with OpenCV and return new arrays. Landmarks are ``(5, 2)`` xy
(left eye, right eye, nose, left mouth, right mouth; image-left first) in the coordinates of the
array they accompany: for a crop, crop pixels (:func:`crop_landmarks`).
"""

from __future__ import annotations

from .augment import (
    AUGMENTER_PRESETS,
    OCCLUSION_KINDS,
    Augmenter,
    OcclusionKind,
    ViewParams,
    augment_embeddings,
    blur,
    downsample,
    flip,
    geometric_jitter,
    jitter_template,
    jpeg,
    occlude,
    occlusion_mask,
    photometric,
    synth_yaw,
)
from .landmarks import Landmarks, crop_landmarks, flip_landmarks
from .normalize import (
    PROCESSORS,
    Chain,
    Processor,
    Step,
    center_nose,
    clahe,
    compose,
    estimate_yaw,
    gamma_correct,
    get_processor,
    histogram_equalize,
    retinex_msr,
    symmetrize,
)

__all__ = [
    "Landmarks",
    "OcclusionKind",
    "OCCLUSION_KINDS",
    "Processor",
    "PROCESSORS",
    "Step",
    "Chain",
    "get_processor",
    "compose",
    "Augmenter",
    "ViewParams",
    "AUGMENTER_PRESETS",
    "augment_embeddings",
    "crop_landmarks",
    "flip",
    "flip_landmarks",
    "photometric",
    "jitter_template",
    "geometric_jitter",
    "synth_yaw",
    "occlusion_mask",
    "occlude",
    "blur",
    "downsample",
    "jpeg",
    "clahe",
    "retinex_msr",
    "gamma_correct",
    "histogram_equalize",
    "estimate_yaw",
    "symmetrize",
    "center_nose",
]
