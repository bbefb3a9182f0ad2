"""Landmark geometry and input checks shared by :mod:`.augment` and :mod:`.normalize`.

Landmarks are ``(5, 2)`` xy (left eye, right eye, nose, left mouth, right mouth; image-left
first) in the coordinates of the array they accompany: for a crop, crop pixels
(:func:`crop_landmarks`).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from ..alignment import ARCFACE_TEMPLATE_112, similarity_transform
from ..detection import check_image
from ..errors import InvalidArgumentError
from ..types import Detection, Image

__all__ = ["Landmarks", "crop_landmarks", "flip_landmarks"]

Landmarks = npt.NDArray[np.float32]
_FLIP_ORDER = [1, 0, 2, 4, 3]  # a mirror swaps the left / right eye and mouth corners



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


def _lut(crop: Image, table: npt.NDArray[np.float64]) -> Image:
    lut = np.clip(np.rint(table), 0, 255).astype(np.uint8)
    return np.asarray(cv2.LUT(crop, lut), np.uint8)
