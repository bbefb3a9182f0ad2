"""Many-to-one normalisation: bring varied photos of a face toward one canonical crop.

Illumination: :func:`clahe`, :func:`retinex_msr`, :func:`gamma_correct`,
:func:`histogram_equalize`; pose, two crude landmark-driven 2-D heuristics: :func:`symmetrize`
and :func:`center_nose`, with :func:`estimate_yaw`. Each is also a named :class:`Processor` step
in :data:`PROCESSORS` (``get_processor("clahe")``, ``compose("clahe", "symmetrize")``), as is
:func:`~faceprint.processing.augment.flip`.

Nothing on the recognition path applies them: :class:`faceprint.FacePipeline` embeds the plain
aligned crop. On LFW 1-shot identification (``bench/processing.py``) only auto gamma was neutral;
the others lowered rank-1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np
import numpy.typing as npt

from ..errors import InvalidArgumentError
from ..registry import Registry
from ..types import Detection, Image
from .augment import flip
from .landmarks import _check, _face_frame, _lut, _points

__all__ = [
    "Processor",
    "PROCESSORS",
    "Step",
    "Chain",
    "get_processor",
    "compose",
    "clahe",
    "retinex_msr",
    "gamma_correct",
    "histogram_equalize",
    "estimate_yaw",
    "symmetrize",
    "center_nose",
]


# --------------------------------------------------------------------------------------------
# Normalisations
# --------------------------------------------------------------------------------------------


def clahe(crop: Image, *, clip_limit: float = 2.0, tiles: tuple[int, int] = (4, 4)) -> Image:
    """Contrast-limited adaptive histogram equalisation of the L channel of CIE LAB (colour kept).

    ``tiles`` (4 x 4 default: 28-pixel tiles on a 112 crop) and ``clip_limit`` are OpenCV's
    ``createCLAHE`` parameters.
    """
    img = _check(crop, "clahe")
    lab = cv2.cvtColor(img, cv2.COLOR_RGB2LAB)
    op = cv2.createCLAHE(clipLimit=float(clip_limit), tileGridSize=(int(tiles[0]), int(tiles[1])))
    lab[..., 0] = op.apply(np.ascontiguousarray(lab[..., 0]))
    return np.asarray(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB), np.uint8)


def retinex_msr(
    crop: Image,
    *,
    sigmas: Sequence[float] = (4.0, 16.0, 48.0),
    clip: float = 1.0,
) -> Image:
    """Multi-scale retinex on the intensity channel, colour ratios preserved (MSRCP-style).

    ``R = mean_s [log(I + 1) - log(GaussianBlur_s(I) + 1)]`` over the scales ``sigmas`` (pixels;
    the defaults suit a 112 crop), stretched to [0, 255] between its ``clip`` and ``100 - clip``
    percentiles; each RGB pixel is then scaled by ``new / old`` intensity (capped so no channel
    exceeds 255).
    """
    img = _check(crop, "retinex_msr")
    if not sigmas or min(sigmas) <= 0:
        raise InvalidArgumentError("sigmas must be positive")
    rgb = img.astype(np.float32)
    intensity = rgb.mean(axis=2) + 1.0
    log_i = np.log(intensity)
    r = np.zeros_like(intensity)
    for s in sigmas:
        r += log_i - np.log(cv2.GaussianBlur(intensity, (0, 0), float(s)))
    r /= len(sigmas)
    lo, hi = np.percentile(r, [clip, 100.0 - clip])
    new = np.clip((r - lo) / max(float(hi - lo), 1e-6), 0.0, 1.0) * 255.0
    ratio = (new + 1.0) / intensity
    ratio = np.minimum(ratio, 255.0 / np.maximum(rgb.max(axis=2), 1.0))
    out: Image = np.clip(rgb * ratio[..., None] + 0.5, 0, 255).astype(np.uint8)
    return out


def gamma_correct(crop: Image, gamma: float | None = None, *, target: float = 0.5) -> Image:
    """Power-law correction via ``cv2.LUT``; ``gamma=None`` picks the exponent that maps the mean
    grey level to ``target`` (0-1), i.e. brightens dark faces and darkens bright ones."""
    img = _check(crop, "gamma_correct")
    if gamma is None:
        if not 0 < target < 1:
            raise InvalidArgumentError(f"target must be in (0, 1), got {target}")
        mean = float(cv2.mean(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY))[0]) / 255.0
        mean = min(max(mean, 1e-3), 1.0 - 1e-3)
        gamma = math.log(target) / math.log(mean)
        gamma = min(max(gamma, 0.25), 4.0)
    if gamma <= 0:
        raise InvalidArgumentError(f"gamma must be > 0, got {gamma}")
    return _lut(img, 255.0 * (np.arange(256) / 255.0) ** gamma)


def histogram_equalize(crop: Image) -> Image:
    """Global histogram equalisation (``cv2.equalizeHist``) of the luma channel of YCrCb."""
    img = _check(crop, "histogram_equalize")
    ycc = cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb)
    ycc[..., 0] = cv2.equalizeHist(np.ascontiguousarray(ycc[..., 0]))
    return np.asarray(cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB), np.uint8)


def estimate_yaw(landmarks: npt.ArrayLike | Detection) -> float:
    """A signed, unitless yaw index from the 5 landmarks: the nose tip's offset from the face's
    midline (the line through the eye and mouth midpoints), in inter-ocular distances.

    About 0 for a frontal face; positive when the nose points toward image-right (the face turns
    so its image-left half faces the camera). It is not an angle, and it mixes in any asymmetry of
    the face or of the landmark detector. Invariant to image rotation, scale and shift.

    Examples
    --------
    >>> from faceprint.alignment import ARCFACE_TEMPLATE_112
    >>> pts = np.array(ARCFACE_TEMPLATE_112)
    >>> abs(estimate_yaw(pts)) < 0.01
    True
    >>> pts[2, 0] += 10  # nose 10 px toward image-right, inter-ocular distance 35 px
    >>> round(estimate_yaw(pts), 2)
    0.28
    """
    pts = _points(landmarks)
    eye_mid, _, d, iod = _face_frame(pts)
    axis = d / float(np.hypot(*d))
    rel = pts[2] - eye_mid
    # signed distance of the nose from the eye-mouth midline, positive toward image-right
    # (the right-hand normal of the downward axis points to image-left, hence the minus)
    return float(-(axis[0] * rel[1] - axis[1] * rel[0]) / iod)


def symmetrize(crop: Image, landmarks: npt.ArrayLike, *, threshold: float = 0.12) -> Image:
    """Crude pose normalisation: when ``|estimate_yaw| > threshold``, replace the half of the face
    turned away from the camera with the mirror image of the better-visible half, about the
    vertical line through the eye midpoint.

    This is a 2-D heuristic, not 3-D frontalisation: it assumes the face is symmetric and its
    midline vertical in the crop (true after 5-point alignment), it copies one-sided lighting,
    expression and occlusions to both sides, and the seam sits where the yawed nose is not.
    Below the threshold the crop is returned unchanged (a copy).
    """
    img = _check(crop, "symmetrize")
    pts = _points(landmarks)
    yaw = estimate_yaw(pts)
    if abs(yaw) <= threshold:
        return img.copy()
    w = img.shape[1]
    mid = float((pts[0, 0] + pts[1, 0]) / 2.0)
    # mirror about x = mid: source column of output column x is 2 * mid - x
    xs = np.arange(w, dtype=np.float32)
    keep_left = yaw > 0  # nose toward image-right: the image-left half faces the camera
    src_x = np.where((xs > mid) if keep_left else (xs < mid), 2.0 * mid - xs, xs).astype(np.float32)
    map_x = np.ascontiguousarray(np.broadcast_to(src_x, img.shape[:2]))
    map_y = np.ascontiguousarray(np.broadcast_to(np.arange(img.shape[0], dtype=np.float32)[:, None], img.shape[:2]))
    return np.asarray(cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE), np.uint8)


def center_nose(crop: Image, landmarks: npt.ArrayLike, *, threshold: float = 0.0) -> Image:
    """Crude pose normalisation: a piecewise-linear horizontal warp (``cv2.remap``) that moves the
    nose column onto the eye midline while the eye columns and the crop edges stay put, stretching
    the foreshortened side and compressing the other.

    A 2-D heuristic like :func:`symmetrize`: it cannot reveal what the turned head hides.
    Skipped (a copy) when ``|estimate_yaw| <= threshold``.
    """
    img = _check(crop, "center_nose")
    pts = _points(landmarks)
    if abs(estimate_yaw(pts)) <= threshold:
        return img.copy()
    w = img.shape[1]
    left, right = sorted((float(pts[0, 0]), float(pts[1, 0])))
    mid, nose = (left + right) / 2.0, float(pts[2, 0])
    nose = min(max(nose, left + 1.0), right - 1.0)
    dst_knots = [0.0, left, mid, right, w - 1.0]
    src_knots = [0.0, left, nose, right, w - 1.0]
    if not (0.0 < left < right < w - 1.0):
        return img.copy()  # eyes outside the crop: nothing sensible to do
    src_x = np.interp(np.arange(w, dtype=np.float64), dst_knots, src_knots).astype(np.float32)
    map_x = np.ascontiguousarray(np.broadcast_to(src_x, img.shape[:2]))
    map_y = np.ascontiguousarray(np.broadcast_to(np.arange(img.shape[0], dtype=np.float32)[:, None], img.shape[:2]))
    return np.asarray(cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE), np.uint8)


# --------------------------------------------------------------------------------------------
# Named steps
# --------------------------------------------------------------------------------------------


@runtime_checkable
class Processor(Protocol):
    """A crop-to-crop step: ``step(crop) -> crop`` (same shape, RGB uint8).

    ``landmarks`` (the crop's own 5 points, :func:`~faceprint.processing.crop_landmarks`) are
    optional; steps that need them (the pose heuristics) raise
    :class:`~faceprint.errors.InvalidArgumentError` (a ``ValueError``) without them.
    """

    @property
    def name(self) -> str: ...

    def __call__(self, crop: Image, landmarks: npt.ArrayLike | None = None) -> Image: ...


@dataclass(frozen=True)
class Step:
    """A named processing step: ``func(crop, **params)`` or, with ``needs_landmarks``,
    ``func(crop, landmarks, **params)``."""

    name: str
    func: Callable[..., Image] = field(repr=False, compare=False)
    params: tuple[tuple[str, Any], ...] = ()
    needs_landmarks: bool = False

    def __call__(self, crop: Image, landmarks: npt.ArrayLike | None = None) -> Image:
        kwargs = dict(self.params)
        if self.needs_landmarks:
            if landmarks is None:
                raise InvalidArgumentError(f"processing step {self.name!r} needs the crop's landmarks")
            return self.func(crop, landmarks, **kwargs)
        return self.func(crop, **kwargs)


@dataclass(frozen=True)
class Chain:
    """Several processors applied in order; itself a :class:`Processor` named ``"a+b"``."""

    steps: tuple[Processor, ...]

    @property
    def name(self) -> str:
        return "+".join(s.name for s in self.steps) or "none"

    def __call__(self, crop: Image, landmarks: npt.ArrayLike | None = None) -> Image:
        out = _check(crop, "processing")
        for step in self.steps:
            out = step(out, landmarks)
        return out


PROCESSORS: Registry[Processor] = Registry("processor")
"""Named normalisation steps: ``clahe``, ``retinex``, ``gamma``, ``histeq``, ``symmetrize``,
``center_nose``, ``flip`` (each factory takes the function's keyword parameters)."""


def _register(name: str, func: Callable[..., Image], needs_landmarks: bool = False) -> None:
    def factory(**params: Any) -> Processor:
        return Step(name, func, tuple(sorted(params.items())), needs_landmarks)

    PROCESSORS.register(name)(factory)


_register("clahe", clahe)
_register("retinex", retinex_msr)
_register("gamma", gamma_correct)
_register("histeq", histogram_equalize)
_register("symmetrize", symmetrize, needs_landmarks=True)
_register("center_nose", center_nose, needs_landmarks=True)
_register("flip", flip)


def get_processor(name: str, **params: Any) -> Processor:
    """Build a registered step by name; an unknown name raises :class:`~faceprint.errors.UnknownBackendError`
    (a ``ValueError``) listing the valid ones.

    Examples
    --------
    >>> step = get_processor("clahe", clip_limit=3.0)
    >>> step(np.zeros((112, 112, 3), np.uint8)).shape
    (112, 112, 3)
    """
    return PROCESSORS.create(name, **params)


def compose(*steps: str | Processor) -> Chain:
    """A :class:`Chain` of steps given by name or object: ``compose("clahe", "symmetrize")``."""
    return Chain(tuple(get_processor(s) if isinstance(s, str) else s for s in steps))
