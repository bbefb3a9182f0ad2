"""One-to-many augmentation: several plausible views of one face, for enrollment from a single photo.

:func:`flip`, :func:`photometric`, :func:`geometric_jitter` (a perturbed alignment),
:func:`synth_yaw` (a cylinder-model yaw warp), :func:`occlude` (band / mask / sunglasses placed
from the landmarks), :func:`blur`, :func:`downsample` and :func:`jpeg`, each on an RGB ``uint8``
crop with OpenCV; an :class:`Augmenter` draws seeded, reproducible views and
:func:`augment_embeddings` embeds them into one template (or one embedding per view).

Nothing on the recognition path calls these: :class:`faceprint.FacePipeline` enrolls and searches
with the plain aligned crop (an embedder's own ``flip=True`` test-time mirror is separate). On LFW
1-shot identification (``bench/processing.py``) no family helped measurably and occlusion hurt.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np
import numpy.typing as npt

from ..alignment import ARCFACE_TEMPLATE_112, similarity_transform
from ..embedding import l2_normalize
from ..errors import InvalidArgumentError, InvalidArgumentTypeError, InvalidImageError, UnknownBackendError
from ..types import Detection, Image
from .landmarks import _check, _face_frame, _lut, _points, _template_points, _transform_points, flip_landmarks

__all__ = [
    "OcclusionKind",
    "OCCLUSION_KINDS",
    "Augmenter",
    "ViewParams",
    "AUGMENTER_PRESETS",
    "augment_embeddings",
    "flip",
    "photometric",
    "jitter_template",
    "geometric_jitter",
    "synth_yaw",
    "occlusion_mask",
    "occlude",
    "blur",
    "downsample",
    "jpeg",
]

OcclusionKind = Literal["band", "mask", "sunglasses"]
OCCLUSION_KINDS: tuple[OcclusionKind, ...] = ("band", "mask", "sunglasses")


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
