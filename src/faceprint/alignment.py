"""5-point similarity alignment to an embedder's canonical template.

The transform (rotation, uniform scale, translation) is the least-squares fit of the detected
landmarks to the template, estimated by OpenCV's ``estimateAffinePartial2D`` with every point an
inlier (its Levenberg-Marquardt refinement then minimises the squared error over all 5 points).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from .errors import InvalidArgumentError, InvalidImageError
from .types import Detection, Image

__all__ = ["ARCFACE_TEMPLATE_112", "similarity_transform", "align", "scaled_template"]

ARCFACE_TEMPLATE_112: tuple[tuple[float, float], ...] = (
    (38.2946, 51.6963),
    (73.5318, 51.5014),
    (56.0252, 71.7366),
    (41.5493, 92.3655),
    (70.7299, 92.2041),
)
"""The canonical 112x112 5-point template of ArcFace / SFace (InsightFace, OpenCV ``alignCrop``)."""


def scaled_template(
    template: Sequence[Sequence[float]],
    template_size: int,
    size: int,
    *,
    zoom: float = 1.0,
    shift_y: float = 0.0,
) -> tuple[tuple[float, float], ...]:
    """Map a template for a ``template_size`` square crop into a ``size`` crop.

    ``zoom`` < 1 leaves more context around the face (looser crop); ``shift_y`` moves the
    points down by that fraction of the crop.
    """
    pts = np.asarray(template, np.float64) / template_size - 0.5
    pts = pts * zoom + np.array([0.5, 0.5 + shift_y])
    return tuple((float(x), float(y)) for x, y in pts * size)


def similarity_transform(
    src: npt.ArrayLike, dst: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Least-squares similarity transform (2x3) mapping ``src`` points onto ``dst`` points."""
    s = np.asarray(src, np.float32)
    d = np.asarray(dst, np.float32)
    if s.ndim != 2 or s.shape[1] != 2 or d.ndim != 2 or d.shape[1] != 2:
        raise InvalidArgumentError(f"expected (n, 2) xy point arrays, got {s.shape} and {d.shape}")
    if s.shape != d.shape or s.shape[0] < 2:
        raise InvalidArgumentError(f"need matching point sets of at least 2 points, got {s.shape} and {d.shape}")
    if not (np.all(np.isfinite(s)) and np.all(np.isfinite(d))):
        raise InvalidArgumentError("landmarks contain NaN or infinite values")
    matrix, _ = cv2.estimateAffinePartial2D(
        s, d, method=cv2.RANSAC, ransacReprojThreshold=1e6, maxIters=1, refineIters=50
    )
    if matrix is None:
        raise InvalidArgumentError("landmarks are degenerate (all points coincide)")
    return matrix.astype(np.float64)


def align(
    image: Image,
    landmarks: npt.ArrayLike | Detection,
    template: Sequence[Sequence[float]] = ARCFACE_TEMPLATE_112,
    size: tuple[int, int] = (112, 112),
) -> Image:
    """Warp ``image`` so the 5 landmarks land on ``template``; returns a ``size`` (w, h) RGB crop.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((200, 200, 3), np.uint8)
    >>> align(img, np.array(ARCFACE_TEMPLATE_112) + 30).shape
    (112, 112, 3)
    """
    if isinstance(landmarks, Detection):
        landmarks = landmarks.landmarks
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.dtype != np.uint8:
        raise InvalidImageError("align expects an RGB uint8 HxWx3 image")
    pts = np.asarray(landmarks, np.float32)
    if pts.shape != (5, 2):
        raise InvalidArgumentError(f"expected (5, 2) landmarks, got {pts.shape}")
    matrix = similarity_transform(pts, template)
    warped = cv2.warpAffine(image, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(warped, np.uint8)
