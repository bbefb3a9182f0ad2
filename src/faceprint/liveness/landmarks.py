"""Dense face landmarks (MediaPipe's 478-point face mesh + 52 blendshapes) run with ai-edge-litert.

The models are Google's ``face_landmarker.task`` bundle (Apache-2.0; a zip of TFLite files), located
with :mod:`faceprint.weights` (key ``"face_landmarker"``) and checked by sha256. The ``mediapipe``
package itself is not used: it needs NumPy < 2 and opencv-contrib, which clash with this project.
Instead of MediaPipe's own BlazeFace detector the face box and eye points come from a faceprint
detector (YuNet by default); the landmark model's region of interest is built from them the way
MediaPipe builds it from its detector: a square of 1.5 x the box side, centred on the box, rotated so
that the eye line is horizontal.

Head pose (:func:`head_pose`, from the mesh's own 3D shape) convention, in degrees, camera looking
at the subject, image not mirrored:

* ``yaw > 0``: the person turned THEIR head to THEIR left (the nose moves towards image-right);
  checked on person_b_live.mov and its mirror image (tests/test_liveness_active.py);
* ``roll > 0``: the head tilts so that the image-right eye is higher than the image-left one
  (checked by rotating LFW faces by +-25 degrees in the image plane: roll follows within ~1 degree);
* ``pitch``: reported, sign and scale NOT verified (no clip with a deliberate look up / down).

Examples
--------
>>> lm = FaceLandmarker()  # doctest: +SKIP
>>> mesh = lm.landmarks(image, detector.detect(image)[0])  # doctest: +SKIP
>>> mesh.points.shape, round(mesh.blendshapes["eyeBlinkLeft"], 2)  # doctest: +SKIP
((478, 3), 0.03)
"""

from __future__ import annotations

import io
import logging
import math
import threading
import zipfile
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from .. import weights
from ..detection import check_image
from ..errors import InvalidArgumentError, ModelNotFoundError, UnknownBackendError
from ..types import Detection, Image

__all__ = ["FaceMesh", "FaceLandmarker", "eye_aspect_ratio", "head_pose", "BLENDSHAPE_NAMES", "EAR_INDICES"]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

_INPUT = 256
_ROI_SCALE = 1.5  # MediaPipe's face-landmark ROI: detector box x 1.5, square, rotated by the eye line

# Subset of the 478 landmarks that the blendshape model takes, in its order: kLandmarksSubsetIdxs of
# mediapipe/tasks/cc/vision/face_landmarker/face_blendshapes_graph.cc (google-ai-edge/mediapipe). The graph
# feeds their x, y in image pixels (LandmarksToTensorCalculator with IMAGE_SIZE), shape (1, 146, 2).
_BLENDSHAPE_SUBSET = (
    0, 1, 4, 5, 6, 7, 8, 10, 13, 14, 17, 21, 33, 37, 39,
    40, 46, 52, 53, 54, 55, 58, 61, 63, 65, 66, 67, 70, 78, 80,
    81, 82, 84, 87, 88, 91, 93, 95, 103, 105, 107, 109, 127, 132, 133,
    136, 144, 145, 146, 148, 149, 150, 152, 153, 154, 155, 157, 158, 159, 160,
    161, 162, 163, 168, 172, 173, 176, 178, 181, 185, 191, 195, 197, 234, 246,
    249, 251, 263, 267, 269, 270, 276, 282, 283, 284, 285, 288, 291, 293, 295,
    296, 297, 300, 308, 310, 311, 312, 314, 317, 318, 321, 323, 324, 332, 334,
    336, 338, 356, 361, 362, 365, 373, 374, 375, 377, 378, 379, 380, 381, 382,
    384, 385, 386, 387, 388, 389, 390, 397, 398, 400, 402, 405, 409, 415, 454,
    466, 468, 469, 470, 471, 472, 473, 474, 475, 476, 477,
)  # fmt: skip

# kBlendshapeNames of the same file (index 0, "_neutral", is kept for completeness).
BLENDSHAPE_NAMES = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft",
    "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft",
    "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft",
    "jawOpen", "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft",
    "mouthFrownRight", "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft",
    "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower",
    "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight",
)  # fmt: skip

# The usual 6-point eye aspect ratio on the MediaPipe mesh (p1..p6 of Soukupova & Cech 2016):
# corner, upper, upper, corner, lower, lower. First the image-left eye, then the image-right one.
EAR_INDICES = ((33, 160, 158, 133, 153, 144), (362, 385, 387, 263, 373, 380))

# Head pose: a generic 3D face (mm, x to image-right, y up, z towards the camera) for six mesh points:
# nose tip, chin, image-left eye outer corner, image-right eye outer corner, mouth corners.
_POSE_IDX = (1, 152, 33, 263, 61, 291)
_POSE_MODEL = np.array(
    [
        [0.0, 0.0, 0.0],
        [0.0, -63.6, -12.5],
        [-43.3, 32.7, -26.0],
        [43.3, 32.7, -26.0],
        [-28.9, -28.9, -24.1],
        [28.9, -28.9, -24.1],
    ],
    dtype=np.float64,
)


@dataclass(frozen=True)
class FaceMesh:
    """Dense landmarks of one face.

    Attributes
    ----------
    points : ndarray, shape (478, 3)
        x, y in image pixels; z relative depth in the same scale (smaller = closer to the camera).
    presence : float
        The landmark model's face-presence probability.
    blendshapes : dict or None
        52 ARKit-style blendshape scores in [0, 1] (``eyeBlinkLeft`` ...), None when not computed.
    yaw, pitch, roll : float
        Head pose in degrees (sign convention in the module docstring).
    """

    points: FloatArray
    presence: float
    blendshapes: dict[str, float] | None
    yaw: float
    pitch: float
    roll: float

    @property
    def ear(self) -> float:
        """Mean eye aspect ratio of both eyes (about 0.25-0.35 open, below ~0.15 closed)."""
        return eye_aspect_ratio(self.points)


def eye_aspect_ratio(points: npt.ArrayLike) -> float:
    """Mean 6-point eye aspect ratio of the two eyes of a (478, 2 or 3) mesh.

    Examples
    --------
    >>> pts = np.zeros((478, 2))
    >>> pts[[33, 133, 362, 263], 0] = [0, 4, 10, 14]
    >>> pts[[160, 158, 385, 387], 1] = -1
    >>> pts[[153, 144, 373, 380], 1] = 1
    >>> eye_aspect_ratio(pts)
    0.5
    """
    p = np.asarray(points, dtype=np.float64)[:, :2]
    out: list[float] = []
    for i1, i2, i3, i4, i5, i6 in EAR_INDICES:
        width = np.linalg.norm(p[i1] - p[i4])
        height = np.linalg.norm(p[i2] - p[i6]) + np.linalg.norm(p[i3] - p[i5])
        out.append(float(height / (2.0 * width)) if width > 0 else 0.0)
    return float(np.mean(out))


def head_pose(
    points: npt.ArrayLike, image_size: tuple[int, int] | None = None, *, method: str = "mesh"
) -> tuple[float, float, float]:
    """Yaw, pitch, roll in degrees of a (478, 3) face mesh (sign convention in the module docstring).

    ``method="mesh"`` (default) uses the mesh's own 3D shape (x, y in pixels, z relative depth on
    the same scale): the face's left-right axis runs from cheek point 234 to 454, its up axis from
    chin 152 to forehead 10, and the face normal is their cross product. ``method="pnp"`` fits six
    points to a generic 3D face with ``cv2.solvePnP`` (pinhole camera, focal length = image width,
    ``image_size = (width, height)`` needed). Measured on LFW faces rotated in the image plane by
    +-25 degrees, the mesh method's yaw moves by <= 7 degrees, the PnP one's by up to 20; in profile
    (person_b_live.mov) both agree within ~3 degrees.

    Examples
    --------
    >>> pts = np.zeros((478, 3))
    >>> pts[234], pts[454], pts[152], pts[10] = (-1, 0, 0), (1, 0, 0), (0, 1, 0), (0, -1, 0)
    >>> [round(v, 6) + 0.0 for v in head_pose(pts)]
    [0.0, 0.0, 0.0]
    """
    if method == "pnp":
        if image_size is None:
            raise InvalidArgumentError("method='pnp' needs image_size=(width, height)")
        return _pose_pnp(points, image_size)
    if method != "mesh":
        raise UnknownBackendError(f"unknown head pose method {method!r}; valid: mesh, pnp")
    p = np.asarray(points, dtype=np.float64)
    if p.shape[0] < 478 or p.shape[1] < 3:
        raise InvalidArgumentError(f"expected a (478, 3) mesh, got {p.shape}")
    right = p[454] - p[234]  # towards image-right for a frontal face
    up = p[10] - p[152]  # towards the top of the image (y is down)
    nr = float(np.linalg.norm(right))
    if nr == 0 or not np.all(np.isfinite(right)) or not np.all(np.isfinite(up)):
        return (math.nan, math.nan, math.nan)
    right /= nr
    normal = np.cross(right, up)  # points towards the camera (-z) for a frontal face
    nn = float(np.linalg.norm(normal))
    if nn == 0:
        return (math.nan, math.nan, math.nan)
    n = normal / nn
    yaw = math.degrees(math.atan2(float(n[0]), float(-n[2])))
    pitch = math.degrees(math.atan2(float(-n[1]), float(-n[2])))
    roll = math.degrees(math.atan2(float(-right[1]), float(right[0])))
    return (yaw, pitch, roll)


def _pose_pnp(points: npt.ArrayLike, image_size: tuple[int, int]) -> tuple[float, float, float]:
    p = np.asarray(points, dtype=np.float64)[list(_POSE_IDX), :2]
    w, h = image_size
    cam = np.array([[w, 0, w / 2.0], [0, w, h / 2.0], [0, 0, 1]], dtype=np.float64)
    # The model has y up, the image y down: flip the model's y and z (a 180-degree turn about x) so that
    # a frontal face gives the identity rotation.
    model = _POSE_MODEL * np.array([1.0, -1.0, -1.0])
    rvec0 = np.zeros((3, 1), dtype=np.float64)
    ok, rvec, _tvec = cv2.solvePnP(
        model, p, cam, np.zeros(4), rvec0, _tvec_guess(p, cam), True, flags=cv2.SOLVEPNP_ITERATIVE
    )
    if not ok:
        return (math.nan, math.nan, math.nan)
    r, _ = cv2.Rodrigues(rvec)
    # R maps the model to camera coordinates; decomposed as R = Rx(pitch) Ry(yaw) Rz(roll), signs set so
    # that the module docstring holds.
    yaw = math.degrees(math.asin(float(np.clip(r[0, 2], -1.0, 1.0))))
    pitch = math.degrees(math.atan2(-float(r[1, 2]), float(r[2, 2])))
    roll = math.degrees(math.atan2(-float(r[0, 1]), float(r[0, 0])))
    return (-yaw, pitch, -roll)


def _tvec_guess(p: FloatArray, cam: FloatArray) -> FloatArray:
    # Distance from the inter-ocular distance (model 86.6 mm) and the focal length.
    iod = float(np.linalg.norm(p[2] - p[3])) or 1.0
    z = cam[0, 0] * 86.6 / iod
    cx, cy = p[0]
    return np.array([[(cx - cam[0, 2]) * z / cam[0, 0]], [(cy - cam[1, 2]) * z / cam[1, 1]], [z]], dtype=np.float64)


class FaceLandmarker:
    """MediaPipe face mesh (478 points) + blendshapes on a face found by a faceprint detector.

    Lazily loads the TFLite models from ``face_landmarker.task`` on first use (sha256-checked) and is
    thread-safe (one lock around the interpreters, which are not).

    Parameters
    ----------
    blendshapes : bool
        Also run the blendshape model (52 scores incl. ``eyeBlinkLeft`` / ``eyeBlinkRight``).
    num_threads : int
        TFLite interpreter threads.

    Examples
    --------
    >>> from faceprint.detection import get_detector
    >>> lm = FaceLandmarker()
    >>> img = np.zeros((64, 64, 3), np.uint8)
    >>> det = Detection((8.0, 8.0, 56.0, 56.0), 0.9, np.array([[20, 24], [44, 24], [32, 36], [22, 46], [42, 46]],
    ...                 np.float32))
    >>> lm.landmarks(img, det).points.shape  # doctest: +SKIP
    (478, 3)
    """

    def __init__(self, *, blendshapes: bool = True, num_threads: int = 1) -> None:
        self.blendshapes = blendshapes
        self.num_threads = num_threads
        self._lock = threading.Lock()
        self._mesh: Any = None
        self._shapes: Any = None

    def _load(self) -> None:
        if self._mesh is not None:
            return
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as err:  # pragma: no cover - a declared dependency
            raise ModelNotFoundError("the face landmarker needs ai-edge-litert: pip install ai-edge-litert") from err
        data = weights.read_bytes("face_landmarker")
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            mesh_bytes = zf.read("face_landmarks_detector.tflite")
            shape_bytes = zf.read("face_blendshapes.tflite")
        from ..runtime import quiet_native_stderr

        with quiet_native_stderr():  # TFLite prints an INFO line per interpreter to fd 2
            mesh = Interpreter(model_content=mesh_bytes, num_threads=self.num_threads)
            mesh.allocate_tensors()
            shapes = Interpreter(model_content=shape_bytes, num_threads=self.num_threads)
            shapes.allocate_tensors()
        self._shapes = shapes
        self._mesh = mesh

    @staticmethod
    def roi(detection: Detection) -> tuple[float, float, float, float]:
        """``(cx, cy, side, angle_rad)`` of the landmark model's input square in image pixels."""
        cx, cy = detection.center
        side = max(detection.width, detection.height) * _ROI_SCALE
        le, re = np.asarray(detection.landmarks, dtype=np.float64)[:2]
        angle = math.atan2(re[1] - le[1], re[0] - le[0])
        # In profile the detector's two eye points nearly coincide and their line says nothing about
        # roll (it tilts the crop by 40-60 degrees and the mesh model then finds no face): keep the
        # crop upright when the eyes are closer than a third of the box width.
        if np.linalg.norm(re - le) < detection.width / 3.0:
            angle = 0.0
        return (float(cx), float(cy), float(side), float(angle))

    def landmarks(self, image: Image, detection: Detection) -> FaceMesh:
        """478 landmarks, presence, blendshapes and head pose of the face ``detection`` in ``image``.

        Raises :class:`InvalidImageError` for a non-RGB-uint8 image.
        """
        image = check_image(image, what="landmarker input", min_side=8)
        cx, cy, side, angle = self.roi(detection)
        scale = side / _INPUT
        c, s = math.cos(angle), math.sin(angle)
        # crop pixel (u, v) -> image: centre + R(angle) @ ((u, v) - 128) * scale
        fwd = np.array(
            [
                [c * scale, -s * scale, cx - (c * 128 - s * 128) * scale],
                [s * scale, c * scale, cy - (s * 128 + c * 128) * scale],
            ]
        )
        crop = cv2.warpAffine(
            image, fwd, (_INPUT, _INPUT), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
        )
        x = (crop.astype(np.float32) / 255.0)[None]
        with self._lock:
            self._load()
            mesh = self._mesh
            mesh.set_tensor(mesh.get_input_details()[0]["index"], x)
            mesh.invoke()
            outs = {d["name"]: mesh.get_tensor(d["index"]) for d in mesh.get_output_details()}
            raw = np.asarray(outs["Identity"], dtype=np.float64).reshape(478, 3)
            presence = 1.0 / (1.0 + math.exp(-float(np.asarray(outs["Identity_1"]).ravel()[0])))
            pts = np.empty_like(raw)
            pts[:, :2] = raw[:, :2] @ fwd[:, :2].T + fwd[:, 2]
            pts[:, 2] = raw[:, 2] * scale
            shapes: dict[str, float] | None = None
            if self.blendshapes:
                sub = pts[list(_BLENDSHAPE_SUBSET), :2].astype(np.float32)[None]
                si = self._shapes
                si.set_tensor(si.get_input_details()[0]["index"], sub)
                si.invoke()
                vals = np.asarray(si.get_tensor(si.get_output_details()[0]["index"]), dtype=np.float64).ravel()
                shapes = {n: float(v) for n, v in zip(BLENDSHAPE_NAMES, vals, strict=True)}
        yaw, pitch, roll = head_pose(pts)
        return FaceMesh(points=pts, presence=presence, blendshapes=shapes, yaw=yaw, pitch=pitch, roll=roll)
