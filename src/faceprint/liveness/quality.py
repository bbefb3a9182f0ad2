"""Is a face fit for a passive liveness decision? Size, exposure, sharpness and pose of one detection.

A passive PAD model judges texture, colour and spectrum of the face region. A face that is tiny,
blurred, dark or turned away carries too little of that signal, and a model trained on frontal,
well-lit faces answers anything there; the cues it learned (blur, low contrast, colour cast) are
also those of a bad capture. :func:`assess_face` measures the four properties and names what is
out of range; the passive checkers then answer "unsure" with that reason instead of a verdict the
model cannot support.

Measures (all on the detector's face box):

* ``face_px``: the shorter side of the box, in pixels of the input image;
* ``brightness``: mean luma (ITU-R BT.601, 0-255) inside the box;
* ``sharpness``: 100 x the standard deviation of the Laplacian over the standard deviation of the
  grey box, both on the box resampled to 96 x 96: free of scale (a small face upscaled is as
  "blurred" as it looks) and of exposure (a dark but sharp face is not "blurred"); about 45 on the
  NUAA webcam faces, 26 on LFW, 12 on LFW blurred with sigma 2;
* ``yaw``: horizontal offset of the nose tip from the eyes' midpoint, in inter-ocular distances,
  after undoing the eye-line roll (about 0.5 at 45 degrees of head turn).

:data:`DEFAULT_QUALITY_LIMITS` was set so that the NUAA bona fide images (the training domain) and
clean LFW / UTKFace photos pass, and that most of those blurred with sigma 2 do not;
``bench/liveness_quality.py`` prints the measures and pass rates it was chosen from. Exposure is
gated only where it is extreme (mean luma < 40: NUAA's own webcam faces have a median of 77, and
LFW photos darkened x 0.4 still 50): robustness to dim light is the model's job (it is trained
with random exposure, :func:`~faceprint.liveness.synthetic.simulate_capture`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from ..errors import InvalidArgumentError
from ..types import Detection, Image

__all__ = ["QualityLimits", "FaceQuality", "DEFAULT_QUALITY_LIMITS", "assess_face"]

_SHARPNESS_SIDE = 96


@dataclass(frozen=True)
class QualityLimits:
    """Ranges within which a passive liveness verdict is given (outside: "unsure" with the reason)."""

    min_face_px: float = 48.0
    min_brightness: float = 40.0
    max_brightness: float = 235.0
    min_sharpness: float = 14.0
    max_yaw: float = 0.45

    def __post_init__(self) -> None:
        if self.min_brightness >= self.max_brightness:
            raise InvalidArgumentError(
                f"min_brightness {self.min_brightness} must be below max_brightness {self.max_brightness}"
            )
        for name in ("min_face_px", "min_sharpness", "max_yaw"):
            if getattr(self, name) < 0:
                raise InvalidArgumentError(f"{name} must be >= 0, got {getattr(self, name)}")


DEFAULT_QUALITY_LIMITS = QualityLimits()


@dataclass(frozen=True)
class FaceQuality:
    """The measures of :func:`assess_face` and the reasons (empty when fit) the face is out of range."""

    face_px: float
    brightness: float
    sharpness: float
    yaw: float
    reasons: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.reasons

    def as_dict(self) -> dict[str, float | list[str]]:
        return {
            "face_px": round(self.face_px, 1),
            "brightness": round(self.brightness, 1),
            "sharpness": round(self.sharpness, 1),
            "yaw": round(self.yaw, 3),
            "reasons": list(self.reasons),
        }


def _yaw(landmarks: np.ndarray) -> float:
    lm = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    if lm.shape[0] < 3 or not np.isfinite(lm[:3]).all():
        return 0.0
    eye_a, eye_b, nose = lm[0], lm[1], lm[2]
    d = eye_b - eye_a
    iod = float(np.hypot(*d))
    if iod < 1e-6:
        return 0.0
    u = d / iod  # unit vector along the eye line: undo roll
    return float(np.dot(nose - (eye_a + eye_b) / 2.0, u) / iod)


def assess_face(image: Image, detection: Detection, limits: QualityLimits = DEFAULT_QUALITY_LIMITS) -> FaceQuality:
    """Measure one face of an RGB uint8 image and say what is outside ``limits``.

    Examples
    --------
    >>> img = np.full((200, 200, 3), 10, np.uint8)
    >>> det = Detection(box=(50.0, 50.0, 150.0, 150.0), score=1.0, landmarks=np.zeros((5, 2)))
    >>> assess_face(img, det).reasons
    ('too dark (mean luma 10 < 40)', 'too blurred (sharpness 0 < 20)')
    """
    h, w = image.shape[:2]
    x0, y0, x1, y1 = (float(v) for v in detection.box)
    face_px = max(0.0, min(x1 - x0, y1 - y0))
    ix0, iy0 = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
    ix1, iy1 = min(w, int(np.ceil(x1))), min(h, int(np.ceil(y1)))
    if ix1 - ix0 < 2 or iy1 - iy0 < 2:
        return FaceQuality(face_px, 0.0, 0.0, 0.0, ("face box outside the image",))
    grey = cv2.cvtColor(np.ascontiguousarray(image[iy0:iy1, ix0:ix1]), cv2.COLOR_RGB2GRAY)
    brightness = float(grey.mean())
    norm = cv2.resize(grey, (_SHARPNESS_SIDE, _SHARPNESS_SIDE), interpolation=cv2.INTER_AREA).astype(np.float64)
    contrast = float(norm.std())
    sharpness = 100.0 * float(cv2.Laplacian(norm, cv2.CV_64F).std()) / contrast if contrast > 1e-6 else 0.0
    yaw = _yaw(detection.landmarks)
    reasons = []
    if face_px < limits.min_face_px:
        reasons.append(f"face too small ({face_px:.0f} px < {limits.min_face_px:.0f})")
    if brightness < limits.min_brightness:
        reasons.append(f"too dark (mean luma {brightness:.0f} < {limits.min_brightness:.0f})")
    elif brightness > limits.max_brightness:
        reasons.append(f"over-exposed (mean luma {brightness:.0f} > {limits.max_brightness:.0f})")
    if sharpness < limits.min_sharpness:
        reasons.append(f"too blurred (sharpness {sharpness:.0f} < {limits.min_sharpness:.0f})")
    if abs(yaw) > limits.max_yaw:
        reasons.append(f"face turned away (yaw {yaw:+.2f} > {limits.max_yaw:.2f} inter-ocular distances)")
    return FaceQuality(face_px, brightness, sharpness, yaw, tuple(reasons))
