"""Face processing: one-to-many augmentation and many-to-one normalisation of aligned face crops.

Two directions, both built from OpenCV primitives on RGB ``uint8`` crops:

*One-to-many* (enrollment from a single photo): :func:`flip`, :func:`photometric`,
:func:`geometric_jitter` (a perturbed alignment), :func:`synth_yaw` (a cylinder-model yaw warp),
:func:`occlude` (band / mask / sunglasses placed from the landmarks), :func:`blur`,
:func:`downsample` and :func:`jpeg`; an :class:`Augmenter` draws seeded, reproducible views and
:func:`augment_embeddings` turns them into a template (or one embedding per view).

*Many-to-one* (bring varied photos toward a canonical face): :func:`clahe`, :func:`retinex_msr`,
:func:`gamma_correct`, :func:`histogram_equalize` (illumination), and two crude landmark-driven
pose heuristics, :func:`symmetrize` and :func:`center_nose`, with :func:`estimate_yaw`.
Each is also a named :class:`Processor` step in :data:`PROCESSORS` (``get_processor("clahe")``,
``compose("clahe", "symmetrize")``) so a pipeline can enable them by name.

Landmarks are ``(5, 2)`` xy (left eye, right eye, nose, left mouth, right mouth; image-left
first) in the coordinates of the array they accompany: for a crop, crop pixels (see
:func:`crop_landmarks`).

What helps is measured, not assumed: ``bench/processing.py`` runs every family on LFW 1-shot
identification with SFace (results in ``bench/results/processing.json``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import cv2
import numpy as np
import numpy.typing as npt

from .alignment import ARCFACE_TEMPLATE_112, similarity_transform
from .detection import check_image
from .embedding import l2_normalize
from .errors import InvalidArgumentError, InvalidArgumentTypeError, InvalidImageError, UnknownBackendError
from .registry import Registry
from .types import Detection, Image

__all__ = [
    "Landmarks",
    "OcclusionKind",
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

log = logging.getLogger(__name__)

Landmarks = npt.NDArray[np.float32]
OcclusionKind = Literal["band", "mask", "sunglasses"]
OCCLUSION_KINDS: tuple[OcclusionKind, ...] = ("band", "mask", "sunglasses")
_FLIP_ORDER = [1, 0, 2, 4, 3]  # a mirror swaps the left / right eye and mouth corners


# --------------------------------------------------------------------------------------------
# Validation and landmark helpers
# --------------------------------------------------------------------------------------------


def _check(image: object, what: str = "image") -> Image:
    return check_image(image, what=what, min_side=2)


def _points(landmarks: npt.ArrayLike | Detection) -> npt.NDArray[np.float64]:
    if isinstance(landmarks, Detection):
        landmarks = landmarks.landmarks
    pts = np.asarray(landmarks, np.float64)
    if pts.shape != (5, 2):
        raise InvalidArgumentError(f"expected (5, 2) landmarks, got {pts.shape}")
    if not np.all(np.isfinite(pts)):
        raise InvalidArgumentError("landmarks contain NaN or infinite values")
    return pts


def _template_points(template: Sequence[Sequence[float]]) -> npt.NDArray[np.float64]:
    pts = np.asarray(template, np.float64)
    if pts.shape != (5, 2):
        raise InvalidArgumentError(f"expected a (5, 2) template, got {pts.shape}")
    return pts


def _transform_points(matrix: npt.ArrayLike, pts: npt.ArrayLike) -> npt.NDArray[np.float64]:
    m = np.asarray(matrix, np.float64)
    p = np.asarray(pts, np.float64)
    return np.asarray(cv2.transform(p[None], m)[0], np.float64)


def crop_landmarks(
    landmarks: npt.ArrayLike | Detection, template: Sequence[Sequence[float]] = ARCFACE_TEMPLATE_112
) -> Landmarks:
    """Where the image ``landmarks`` land in the crop aligned to ``template`` (same fit as :func:`align`).

    Examples
    --------
    >>> pts = np.array(ARCFACE_TEMPLATE_112) * 2 + 10
    >>> bool(np.allclose(crop_landmarks(pts), ARCFACE_TEMPLATE_112, atol=1e-3))
    True
    """
    pts = _points(landmarks)
    matrix = similarity_transform(pts, _template_points(template))
    return _transform_points(matrix, pts).astype(np.float32)


def flip_landmarks(landmarks: npt.ArrayLike, width: int) -> Landmarks:
    """Landmarks of the mirrored image: ``x -> width - 1 - x`` and left / right swapped."""
    pts = _points(landmarks).copy()
    pts[:, 0] = (width - 1) - pts[:, 0]
    return pts[_FLIP_ORDER].astype(np.float32)


def _face_frame(pts: npt.NDArray[np.float64]) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Eye midpoint, unit eye-line vector ``u``, eye-to-mouth vector ``d``, inter-ocular distance."""
    eye_mid = (pts[0] + pts[1]) / 2.0
    mouth_mid = (pts[3] + pts[4]) / 2.0
    u = pts[1] - pts[0]
    iod = float(np.hypot(*u))
    if iod < 1e-6:
        raise InvalidArgumentError("landmarks are degenerate (the eyes coincide)")
    d = mouth_mid - eye_mid
    if float(np.hypot(*d)) < 1e-6:
        d = np.array([-u[1], u[0]]) * 1.2  # mouth collapsed onto the eyes: assume an upright face
    return eye_mid, u / iod, d, iod


# --------------------------------------------------------------------------------------------
# Augmentations (each returns a new array of the same shape and dtype)
# --------------------------------------------------------------------------------------------


def flip(crop: Image) -> Image:
    """Horizontal mirror (``cv2.flip``); applied twice it is the identity.

    Examples
    --------
    >>> img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    >>> bool(np.array_equal(flip(flip(img)), img))
    True
    """
    return np.asarray(cv2.flip(_check(crop, "flip"), 1), np.uint8)


def _lut(crop: Image, table: npt.NDArray[np.float64]) -> Image:
    lut = np.clip(np.rint(table), 0, 255).astype(np.uint8)
    return np.asarray(cv2.LUT(crop, lut), np.uint8)


def photometric(
    crop: Image,
    *,
    brightness: float = 0.0,
    contrast: float = 1.0,
    gamma: float = 1.0,
    saturation: float = 1.0,
    gains: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> Image:
    """Colour jitter: per-channel ``gains`` (white balance), ``saturation`` (HSV S scale),
    ``contrast`` about the mean grey level plus ``brightness`` (grey levels), then ``gamma``
    (``out = 255 (x / 255) ** gamma``). The defaults are the identity; results saturate to [0, 255].

    Examples
    --------
    >>> img = np.full((4, 4, 3), 100, np.uint8)
    >>> int(photometric(img, brightness=20)[0, 0, 0])
    120
    """
    img = _check(crop, "photometric")
    if contrast <= 0 or gamma <= 0 or saturation < 0 or min(gains) < 0:
        raise InvalidArgumentError("contrast and gamma must be > 0, saturation and gains >= 0")
    out = img
    if tuple(gains) != (1.0, 1.0, 1.0):
        out = np.asarray(cv2.transform(out, np.diag(np.asarray(gains, np.float64))), np.uint8)
    if saturation != 1.0:
        hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV)
        hsv[..., 1] = cv2.convertScaleAbs(hsv[..., 1], alpha=saturation)
        out = np.asarray(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB), np.uint8)
    if contrast != 1.0 or brightness != 0.0:
        mean = float(cv2.mean(cv2.cvtColor(out, cv2.COLOR_RGB2GRAY))[0])
        beta = (1.0 - contrast) * mean + brightness
        out = np.asarray(cv2.addWeighted(out, contrast, out, 0.0, beta), np.uint8)
    if gamma != 1.0:
        out = _lut(out, 255.0 * (np.arange(256) / 255.0) ** gamma)
    return out if out is not img else img.copy()


def jitter_template(
    template: Sequence[Sequence[float]] = ARCFACE_TEMPLATE_112,
    size: tuple[int, int] = (112, 112),
    *,
    rotation: float = 0.0,
    scale: float = 1.0,
    shift: tuple[float, float] = (0.0, 0.0),
) -> tuple[tuple[float, float], ...]:
    """The template moved by a similarity about the crop centre (``cv2.getRotationMatrix2D``).

    Aligning to the jittered template rotates the face in the crop by ``rotation`` degrees
    (counter-clockwise, as OpenCV), scales it by ``scale`` and shifts it by ``shift`` (fractions
    of the crop width / height). Zero jitter returns ``template`` unchanged.
    """
    pts = _template_points(template)
    if scale <= 0:
        raise InvalidArgumentError(f"scale must be > 0, got {scale}")
    if rotation == 0.0 and scale == 1.0 and tuple(shift) == (0.0, 0.0):
        return tuple((float(x), float(y)) for x, y in pts)
    w, h = size
    m = np.asarray(cv2.getRotationMatrix2D((w / 2.0, h / 2.0), float(rotation), float(scale)), np.float64)
    m[:, 2] += np.array([shift[0] * w, shift[1] * h])
    return tuple((float(x), float(y)) for x, y in _transform_points(m, pts))


def _align_matrix(
    image: Image,
    landmarks: npt.ArrayLike | Detection,
    template: Sequence[Sequence[float]],
    size: tuple[int, int],
) -> tuple[Image, npt.NDArray[np.float64]]:
    pts = _points(landmarks)
    matrix = similarity_transform(pts.astype(np.float32), _template_points(template))
    warped = cv2.warpAffine(image, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(warped, np.uint8), matrix


def geometric_jitter(
    image: Image,
    landmarks: npt.ArrayLike | Detection,
    *,
    rotation: float = 0.0,
    scale: float = 1.0,
    shift: tuple[float, float] = (0.0, 0.0),
    template: Sequence[Sequence[float]] = ARCFACE_TEMPLATE_112,
    size: tuple[int, int] = (112, 112),
) -> Image:
    """Align ``image`` to a jittered template (:func:`jitter_template`): small rotation / scale / crop shift.

    Works on the full image, so the crop has real context at its borders instead of padding.
    With zero jitter the result equals :func:`faceprint.alignment.align` exactly.

    Examples
    --------
    >>> img = np.zeros((200, 200, 3), np.uint8)
    >>> geometric_jitter(img, np.array(ARCFACE_TEMPLATE_112) + 30, rotation=5).shape
    (112, 112, 3)
    """
    img = _check(image, "geometric_jitter")
    tpl = jitter_template(template, size, rotation=rotation, scale=scale, shift=shift)
    return _align_matrix(img, landmarks, tpl, size)[0]


def _yaw_maps(width: int, height: int, degrees: float, radius: float | None) -> tuple[np.ndarray, np.ndarray]:
    cx = (width - 1) / 2.0
    r = float(radius) if radius is not None else width / 2.0
    xs = (np.arange(width, dtype=np.float64) - cx) / r
    src = cx + r * np.sin(np.arcsin(np.clip(xs, -1.0, 1.0)) - math.radians(degrees))
    map_x = np.broadcast_to(src.astype(np.float32), (height, width))
    map_y = np.broadcast_to(np.arange(height, dtype=np.float32)[:, None], (height, width))
    return np.ascontiguousarray(map_x), np.ascontiguousarray(map_y)


def synth_yaw(crop: Image, degrees: float, *, radius: float | None = None) -> Image:
    """Synthetic yaw of an aligned crop: the image is wrapped on a vertical cylinder (axis at the
    crop centre, ``radius`` default half the crop width) that is turned by ``degrees`` (``cv2.remap``).

    A 2-D approximation, not a 3-D face model: the nose does not protrude, nothing becomes
    self-occluded and the far side is only compressed. Useful for a few degrees, not 45.
    Positive ``degrees`` move the face toward image-right.
    """
    img = _check(crop, "synth_yaw")
    if degrees == 0.0:
        return img.copy()
    h, w = img.shape[:2]
    map_x, map_y = _yaw_maps(w, h, degrees, radius)
    return np.asarray(cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE), np.uint8)


def _yaw_points(pts: npt.NDArray[np.float64], width: int, degrees: float, radius: float | None) -> np.ndarray:
    cx = (width - 1) / 2.0
    r = float(radius) if radius is not None else width / 2.0
    out = pts.copy()
    a = np.arcsin(np.clip((pts[:, 0] - cx) / r, -1.0, 1.0)) + math.radians(degrees)
    out[:, 0] = cx + r * np.sin(np.clip(a, -math.pi / 2, math.pi / 2))
    return out


def _poly(points: Sequence[np.ndarray]) -> np.ndarray:
    return np.round(np.asarray(points, np.float64)).astype(np.int32).reshape(-1, 1, 2)


def occlusion_mask(
    shape: tuple[int, ...],
    landmarks: npt.ArrayLike | Detection,
    kind: OcclusionKind = "band",
    *,
    position: float = 0.0,
    thickness: float = 0.35,
) -> npt.NDArray[np.bool_]:
    """The boolean ``(H, W)`` region a synthetic occluder covers, placed from the 5 landmarks.

    ``"sunglasses"``: two ellipses over the eyes joined by a bridge, along the eye line.
    ``"mask"``: a medical-mask polygon from the nose bridge to below the chin.
    ``"band"``: a bar across the whole face parallel to the eye line, centred ``position`` of the
    way from the eye line (0) to the mouth line (1), ``thickness`` eye-to-mouth distances tall.
    """
    h, w = int(shape[0]), int(shape[1])
    pts = _points(landmarks)
    eye_mid, u, d, iod = _face_frame(pts)

    def at(a: float, b: float) -> np.ndarray:  # a: inter-ocular units along the eyes, b: eye-to-mouth units
        return eye_mid + a * iod * u + b * d

    mask = np.zeros((h, w), np.uint8)
    if kind == "sunglasses":
        angle = math.degrees(math.atan2(u[1], u[0]))
        axes = (max(1, round(0.42 * iod)), max(1, round(0.3 * iod)))
        for eye in pts[:2]:
            centre = (round(float(eye[0])), round(float(eye[1])))
            cv2.ellipse(mask, centre, axes, angle, 0, 360, 255, thickness=-1, lineType=cv2.LINE_8)
        a, b = pts[0] + 0.3 * iod * u, pts[1] - 0.3 * iod * u
        cv2.line(
            mask,
            (round(float(a[0])), round(float(a[1]))),
            (round(float(b[0])), round(float(b[1]))),
            255,
            thickness=max(1, round(0.08 * iod)),
            lineType=cv2.LINE_8,
        )
    elif kind == "mask":
        poly = [
            at(-0.95, 0.35),
            at(0.0, 0.25),
            at(0.95, 0.35),
            at(0.9, 1.3),
            at(0.35, 1.75),
            at(-0.35, 1.75),
            at(-0.9, 1.3),
        ]
        cv2.fillPoly(mask, [_poly(poly)], 255, lineType=cv2.LINE_8)
    elif kind == "band":
        if thickness <= 0:
            raise InvalidArgumentError(f"thickness must be > 0, got {thickness}")
        lo, hi = position - thickness / 2.0, position + thickness / 2.0
        span = 4.0 * max(h, w) / iod  # far enough to cross the whole image
        poly = [at(-span, lo), at(span, lo), at(span, hi), at(-span, hi)]
        cv2.fillPoly(mask, [_poly(poly)], 255, lineType=cv2.LINE_8)
    else:
        raise InvalidArgumentError(f"unknown occlusion kind {kind!r}; valid: {', '.join(OCCLUSION_KINDS)}")
    return mask > 0


def occlude(
    crop: Image,
    landmarks: npt.ArrayLike | Detection,
    kind: OcclusionKind = "band",
    *,
    fill: tuple[int, int, int] = (0, 0, 0),
    position: float = 0.0,
    thickness: float = 0.35,
) -> Image:
    """Paint a synthetic occluder (:func:`occlusion_mask`) in the solid colour ``fill``.

    Works on a crop (with :func:`crop_landmarks`) or a full image with its own landmarks; only
    the pixels of the mask change.

    Examples
    --------
    >>> img = np.full((112, 112, 3), 200, np.uint8)
    >>> out = occlude(img, ARCFACE_TEMPLATE_112, "sunglasses")
    >>> int(out[52, 38, 0]), int(out[100, 5, 0])
    (0, 200)
    """
    img = _check(crop, "occlude")
    mask = occlusion_mask(img.shape, landmarks, kind, position=position, thickness=thickness)
    out = img.copy()
    out[mask] = np.asarray(fill, np.uint8)
    return out


def blur(crop: Image, sigma: float = 1.0) -> Image:
    """Gaussian blur (``cv2.GaussianBlur``) with standard deviation ``sigma`` pixels (0: no change)."""
    img = _check(crop, "blur")
    if sigma < 0:
        raise InvalidArgumentError(f"sigma must be >= 0, got {sigma}")
    if sigma == 0:
        return img.copy()
    return np.asarray(cv2.GaussianBlur(img, (0, 0), float(sigma)), np.uint8)


def downsample(crop: Image, factor: float = 2.0) -> Image:
    """Simulate a low-resolution face: shrink by ``factor`` (area) and enlarge back (bilinear)."""
    img = _check(crop, "downsample")
    if factor < 1:
        raise InvalidArgumentError(f"factor must be >= 1, got {factor}")
    h, w = img.shape[:2]
    small = cv2.resize(img, (max(1, round(w / factor)), max(1, round(h / factor))), interpolation=cv2.INTER_AREA)
    return np.asarray(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), np.uint8)


def jpeg(crop: Image, quality: int = 30) -> Image:
    """Re-encode as JPEG at ``quality`` (1-100) and decode again (``cv2.imencode`` / ``imdecode``)."""
    img = _check(crop, "jpeg")
    if not 1 <= quality <= 100:
        raise InvalidArgumentError(f"quality must be in [1, 100], got {quality}")
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - OpenCV always encodes a valid uint8 image
        raise InvalidImageError("JPEG encoding failed")
    decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if decoded is None:  # pragma: no cover - decoding what OpenCV just encoded
        raise InvalidImageError("JPEG decoding failed")
    return np.asarray(cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB), np.uint8)


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

    ``landmarks`` (the crop's own 5 points, :func:`crop_landmarks`) are optional; steps that need
    them (the pose heuristics) raise ``ValueError`` without them.
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
    """Build a registered step by name; unknown names raise ``ValueError`` listing the valid ones.

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


# --------------------------------------------------------------------------------------------
# The augmenter
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ViewParams:
    """The random draws of one augmented view (identity when every field is at its default)."""

    rotation: float = 0.0
    scale: float = 1.0
    shift: tuple[float, float] = (0.0, 0.0)
    yaw: float = 0.0
    flip: bool = False
    occlusion: OcclusionKind | None = None
    occlusion_position: float = 0.0
    occlusion_fill: tuple[int, int, int] = (0, 0, 0)
    brightness: float = 0.0
    contrast: float = 1.0
    gamma: float = 1.0
    saturation: float = 1.0
    gains: tuple[float, float, float] = (1.0, 1.0, 1.0)
    blur_sigma: float = 0.0
    downsample: float = 1.0
    jpeg_quality: int | None = None


@dataclass(frozen=True)
class Augmenter:
    """Seeded random views of one face for enrollment (one-to-many).

    Amplitudes are maxima of uniform draws (log-uniform for the factors); probabilities are per
    view. All zero (the default) gives plain aligned crops. Views are a pure function of the
    config, the image and ``n``: the generator is re-seeded from ``seed`` on every call.

    Parameters
    ----------
    flip : float
        Probability of mirroring a view.
    brightness : float
        Maximum additive brightness shift, grey levels.
    contrast, gamma, saturation : float
        Maximum ``|log factor|`` of contrast, gamma and saturation.
    colour : float
        Maximum relative change of each RGB channel's gain (white balance).
    rotation : float
        Maximum in-plane rotation, degrees.
    scale : float
        Maximum ``|log scale|`` of the face in the crop.
    shift : float
        Maximum shift of the face, fraction of the crop side (x and y drawn independently).
    yaw : float
        Maximum synthetic yaw, degrees (:func:`synth_yaw`, a cylinder approximation).
    occlusion : float
        Probability of an occluder of a kind drawn from ``occlusion_kinds`` in a random grey.
    blur : float
        Probability of a degradation: Gaussian blur of ``blur_sigma`` or a ``downsample_factor``
        round trip (half of the time each).
    jpeg : float
        Probability of JPEG re-encoding at a quality drawn from ``jpeg_quality``.
    seed : int
        Seed of the ``numpy.random.Generator``.

    Examples
    --------
    >>> aug = Augmenter.preset("geometric", seed=1)
    >>> aug.rotation
    10.0
    """

    flip: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0
    gamma: float = 0.0
    saturation: float = 0.0
    colour: float = 0.0
    rotation: float = 0.0
    scale: float = 0.0
    shift: float = 0.0
    yaw: float = 0.0
    occlusion: float = 0.0
    occlusion_kinds: tuple[OcclusionKind, ...] = OCCLUSION_KINDS
    blur: float = 0.0
    blur_sigma: tuple[float, float] = (0.5, 1.5)
    downsample_factor: tuple[float, float] = (1.5, 3.0)
    jpeg: float = 0.0
    jpeg_quality: tuple[int, int] = (15, 50)
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("flip", "occlusion", "blur", "jpeg"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise InvalidArgumentError(f"{name} is a probability in [0, 1], got {p}")
        for name in ("brightness", "contrast", "gamma", "saturation", "colour", "rotation", "scale", "shift", "yaw"):
            if getattr(self, name) < 0:
                raise InvalidArgumentError(f"{name} is a maximum amplitude, must be >= 0, got {getattr(self, name)}")
        if self.colour >= 1.0:
            raise InvalidArgumentError(f"colour must be < 1, got {self.colour}")
        bad = [k for k in self.occlusion_kinds if k not in OCCLUSION_KINDS]
        if bad or not self.occlusion_kinds:
            raise InvalidArgumentError(f"occlusion_kinds must be a non-empty subset of {OCCLUSION_KINDS}, got {bad}")
        lo, hi = self.jpeg_quality
        if not 1 <= lo <= hi <= 100:
            raise InvalidArgumentError(f"jpeg_quality must be 1 <= lo <= hi <= 100, got {self.jpeg_quality}")

    @classmethod
    def preset(cls, name: str, *, seed: int = 0) -> Augmenter:
        """A named family measured by ``bench/processing.py``: ``flip``, ``photometric``,
        ``geometric``, ``pose``, ``occlusion``, ``blur``, ``jpeg``, ``mixed``."""
        try:
            params = AUGMENTER_PRESETS[name]
        except KeyError:
            raise UnknownBackendError(
                f"unknown augmenter preset {name!r}; valid: {', '.join(AUGMENTER_PRESETS)}"
            ) from None
        return cls(**params, seed=seed)

    def sample(self, rng: np.random.Generator) -> ViewParams:
        """Draw one view's parameters (the number of draws is fixed, so views stay aligned across configs)."""
        u = rng.uniform(-1.0, 1.0, size=11)
        p = rng.uniform(0.0, 1.0, size=5)
        kind_i = int(rng.integers(len(self.occlusion_kinds)))
        grey = int(rng.integers(0, 256))
        pos = float(rng.uniform(-0.2, 1.1))
        deg = float(rng.uniform(0.0, 1.0))
        q = int(rng.integers(self.jpeg_quality[0], self.jpeg_quality[1] + 1))
        occluded = p[1] < self.occlusion
        degraded = p[2] < self.blur
        return ViewParams(
            rotation=float(u[0] * self.rotation),
            scale=float(math.exp(u[1] * self.scale)),
            shift=(float(u[2] * self.shift), float(u[3] * self.shift)),
            yaw=float(u[4] * self.yaw),
            flip=bool(p[0] < self.flip),
            occlusion=self.occlusion_kinds[kind_i] if occluded else None,
            occlusion_position=pos,
            occlusion_fill=(grey, grey, grey),
            brightness=float(u[5] * self.brightness),
            contrast=float(math.exp(u[6] * self.contrast)),
            gamma=float(math.exp(u[7] * self.gamma)),
            saturation=float(math.exp(u[8] * self.saturation)),
            gains=(float(1 + u[9] * self.colour), 1.0, float(1 + u[10] * self.colour)),
            blur_sigma=float(self.blur_sigma[0] + deg * (self.blur_sigma[1] - self.blur_sigma[0]))
            if degraded and p[3] < 0.5
            else 0.0,
            downsample=float(self.downsample_factor[0] + deg * (self.downsample_factor[1] - self.downsample_factor[0]))
            if degraded and p[3] >= 0.5
            else 1.0,
            jpeg_quality=q if p[4] < self.jpeg else None,
        )

    def apply(
        self,
        image: Image,
        landmarks: npt.ArrayLike | Detection,
        params: ViewParams,
        *,
        template: Sequence[Sequence[float]] = ARCFACE_TEMPLATE_112,
        size: tuple[int, int] = (112, 112),
    ) -> Image:
        """One view: jittered alignment, synthetic yaw, flip, occlusion, photometric, blur, JPEG."""
        img = _check(image, "augment")
        pts = _points(landmarks)
        tpl = jitter_template(template, size, rotation=params.rotation, scale=params.scale, shift=params.shift)
        crop, matrix = _align_matrix(img, pts, tpl, size)
        crop_pts = _transform_points(matrix, pts)
        if params.yaw:
            crop = synth_yaw(crop, params.yaw)
            crop_pts = _yaw_points(crop_pts, size[0], params.yaw, None)
        if params.flip:
            crop = flip(crop)
            crop_pts = flip_landmarks(crop_pts, size[0]).astype(np.float64)
        if params.occlusion is not None:
            crop = occlude(
                crop, crop_pts, params.occlusion, fill=params.occlusion_fill, position=params.occlusion_position
            )
        crop = photometric(
            crop,
            brightness=params.brightness,
            contrast=params.contrast,
            gamma=params.gamma,
            saturation=params.saturation,
            gains=params.gains,
        )
        if params.blur_sigma > 0:
            crop = blur(crop, params.blur_sigma)
        if params.downsample > 1:
            crop = downsample(crop, params.downsample)
        if params.jpeg_quality is not None:
            crop = jpeg(crop, params.jpeg_quality)
        return crop

    def views(
        self,
        image: Image,
        detection: Detection | npt.ArrayLike,
        embedder: object | None = None,
        n: int = 8,
    ) -> list[Image]:
        """``n`` augmented aligned crops of the face, deterministic for a given seed.

        ``embedder`` (optional) supplies the alignment ``template`` and ``input_size``
        (SFace / ArcFace 112 x 112 without it). The plain crop is not among the views.

        Examples
        --------
        >>> img = np.zeros((200, 200, 3), np.uint8)
        >>> views = Augmenter.preset("mixed").views(img, np.array(ARCFACE_TEMPLATE_112) + 40, n=3)
        >>> len(views), views[0].shape
        (3, (112, 112, 3))
        """
        if n < 0:
            raise InvalidArgumentError(f"n must be >= 0, got {n}")
        img = _check(image, "augment")
        template, size = _geometry(embedder)
        rng = np.random.default_rng(self.seed)
        return [self.apply(img, detection, self.sample(rng), template=template, size=size) for _ in range(n)]


AUGMENTER_PRESETS: dict[str, dict[str, Any]] = {
    "flip": {"flip": 1.0},
    "photometric": {"brightness": 30.0, "contrast": 0.35, "gamma": 0.4, "saturation": 0.4, "colour": 0.12},
    "geometric": {"rotation": 10.0, "scale": 0.08, "shift": 0.04},
    "pose": {"yaw": 25.0},
    "occlusion": {"occlusion": 1.0},
    "blur": {"blur": 1.0},
    "jpeg": {"jpeg": 1.0},
    "mixed": {
        "flip": 0.5,
        "brightness": 20.0,
        "contrast": 0.2,
        "gamma": 0.25,
        "saturation": 0.25,
        "colour": 0.08,
        "rotation": 6.0,
        "scale": 0.05,
        "shift": 0.03,
        "yaw": 12.0,
        "occlusion": 0.2,
        "blur": 0.25,
        "jpeg": 0.25,
    },
}
"""The augmentation families of the benchmark (keyword arguments of :class:`Augmenter`)."""


def _geometry(embedder: object | None) -> tuple[Sequence[Sequence[float]], tuple[int, int]]:
    if embedder is None:
        return ARCFACE_TEMPLATE_112, (112, 112)
    template = getattr(embedder, "template", None)
    size = getattr(embedder, "input_size", None)
    if template is None or size is None:
        raise InvalidArgumentTypeError(
            f"{type(embedder).__name__} exposes no alignment template / input_size; augmentation needs a "
            "single-network embedder (sface, facenet), not a fusion"
        )
    return template, (int(size[0]), int(size[1]))


def augment_embeddings(
    image: Image,
    detection: Detection | npt.ArrayLike,
    embedder: Any,
    augmenter: Augmenter,
    n: int = 8,
    *,
    include_original: bool = True,
    reduce: Literal["mean", "none"] = "mean",
) -> npt.NDArray[np.float32]:
    """Embed ``n`` augmented views (plus the plain crop when ``include_original``).

    ``reduce="mean"`` returns one ``(dim,)`` template, the re-normalised mean of the unit view
    embeddings; ``"none"`` returns all of them, ``(n + include_original, dim)``. ``embedder``
    must have ``embed(crops)``, ``template`` and ``input_size`` (the sface / facenet backends).
    """
    if not hasattr(embedder, "embed"):
        raise InvalidArgumentTypeError(f"{type(embedder).__name__} cannot embed aligned crops (no .embed)")
    if n == 0 and not include_original:
        raise InvalidArgumentError("nothing to embed: n == 0 and include_original is False")
    template, size = _geometry(embedder)
    crops = augmenter.views(image, detection, embedder, n)
    if include_original:
        crops = [_align_matrix(_check(image), detection, template, size)[0], *crops]
    embs = l2_normalize(embedder.embed(np.stack(crops)))
    if reduce == "none":
        return embs
    if reduce != "mean":
        raise InvalidArgumentError(f"reduce must be 'mean' or 'none', got {reduce!r}")
    return l2_normalize(embs.mean(axis=0))
