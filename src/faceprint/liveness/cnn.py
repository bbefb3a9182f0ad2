"""Passive PAD with a compact CNN run by onnxruntime (no PyTorch at inference).

The network is a MiniFASNet-like depthwise-separable CNN trained with the Fourier-spectrum auxiliary
target of Silent-Face (``faceprint.training.liveness``, rebuilt by ``python bench/train_liveness_cnn.py``).
At inference only its classifier runs: an ONNX file mapping a batch of preprocessed face crops to
the probability of a bona fide presentation. A JSON *spec* (format ``faceprint-passive-cnn/1``)
next to the ONNX file names it with its sha256 (checked on load), the crop geometry, the input
normalisation and the decision threshold; :func:`cnn_crop` is the crop used by both training and
inference, so the two see the same pixels.

Conventions as in :mod:`.passive`: a score is the probability of a live presentation, live when
``score >= threshold``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from ..detection import Detector, check_image
from ..errors import (
    InvalidArgumentError,
    InvalidFileError,
    ModelIntegrityError,
    ModelNotFoundError,
)
from ..runtime import get_num_threads
from ..types import Detection, Image, Liveness
from .passive import face_crop, largest_face
from .quality import DEFAULT_QUALITY_LIMITS, QualityLimits, assess_face

__all__ = [
    "CNN_SPEC_FORMAT",
    "DEFAULT_CNN_SPEC",
    "DEFAULT_CNN_SPEC_SHA256",
    "CNNPassiveChecker",
    "cnn_crop",
    "default_cnn_checker",
    "write_cnn_spec",
]

CNN_SPEC_FORMAT = "faceprint-passive-cnn/1"
DEFAULT_CNN_SPEC = "passive_cnn.json"
DEFAULT_CNN_SPEC_SHA256 = "ed84a7283ccd3b98321b24473847c6dc03b4ac234ab9bc3b66746dc83548038e"
"""sha256 of the shipped spec (which holds the ONNX file's sha256)."""

CROP_DEFAULTS: dict[str, Any] = {"input_size": 64, "work_size": 96, "expand": 2.0}
"""Crop geometry of the trained model: a ``work_size`` square crop of side ``expand`` x the face box,
then area-resized to ``input_size`` (synthetic attacks are made at ``work_size``)."""

FloatArray = npt.NDArray[np.float32]


def cnn_crop(
    image: Image,
    detection: Detection,
    *,
    input_size: int = 64,
    work_size: int = 96,
    expand: float = 2.0,
) -> Image:
    """The CNN's input crop: :func:`~faceprint.liveness.passive.face_crop` at ``work_size``, area-resized.

    Examples
    --------
    >>> from faceprint.types import Detection
    >>> img = np.zeros((200, 200, 3), np.uint8)
    >>> cnn_crop(img, Detection(box=(50.0, 50.0, 150.0, 150.0), score=1.0, landmarks=np.zeros((5, 2)))).shape
    (64, 64, 3)
    """
    crop = face_crop(image, detection, size=work_size, expand=expand)
    return resize_crop(crop, input_size)


def resize_crop(crop: Image, input_size: int) -> Image:
    """Area-resize a ``work_size`` crop to the network input (identity when the sizes match)."""
    if crop.shape[0] == input_size and crop.shape[1] == input_size:
        return crop
    return np.ascontiguousarray(cv2.resize(crop, (input_size, input_size), interpolation=cv2.INTER_AREA))


def _preprocess(crops: npt.NDArray[np.uint8], mean: Sequence[float], std: Sequence[float]) -> FloatArray:
    x = (crops.astype(np.float32) / np.float32(255.0) - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32)


class CNNPassiveChecker:
    """Passive single-image PAD: a face crop through an ONNX CNN (onnxruntime, CPU).

    Parameters
    ----------
    spec_path : path
        A ``faceprint-passive-cnn/1`` JSON spec; its ONNX file sits next to it.
    detector : Detector, optional
        Face detector used when ``score`` gets no detection; default YuNet (built lazily).
    threshold, spoof_below, unsure_margin : float, optional
        Override the spec's: live when ``score >= threshold``; spoof when ``score < spoof_below``
        (default: the spec's, or ``threshold`` when only that is given); "unsure" in between, and
        within ``unsure_margin`` of ``threshold``.
    quality : QualityLimits or None, default DEFAULT_QUALITY_LIMITS
        A face outside these limits (too small, dark, over-exposed, blurred or turned away, see
        :mod:`.quality`) gets the verdict "unsure" with the reasons in ``details["unsure_reasons"]``
        (its score is still reported); ``None`` judges every face.

    Raises
    ------
    ModelNotFoundError
        When the spec or its ONNX file is missing.
    ModelIntegrityError
        When the ONNX file's sha256 differs from the spec's.
    InvalidFileError
        When the spec is not a ``faceprint-passive-cnn/1`` JSON file.
    """

    method = "cnn"
    BATCH = 64

    def __init__(
        self,
        spec_path: str | Path,
        *,
        detector: Detector | None = None,
        threshold: float | None = None,
        spoof_below: float | None = None,
        unsure_margin: float | None = None,
        quality: QualityLimits | None = DEFAULT_QUALITY_LIMITS,
    ) -> None:
        path = Path(spec_path).expanduser()
        if not path.is_file():
            raise ModelNotFoundError(f"liveness CNN spec not found: {path}")
        spec_bytes = path.read_bytes()
        spec = _parse_spec(spec_bytes, str(path))
        onnx = path.parent / spec["onnx"]
        if not onnx.is_file():
            raise ModelNotFoundError(f"{path}: ONNX model {spec['onnx']} not found next to the spec")
        self._init(spec, onnx.read_bytes(), str(path), detector, threshold, spoof_below, unsure_margin, quality)

    @classmethod
    def from_bytes(
        cls,
        spec_bytes: bytes,
        onnx_bytes: bytes,
        *,
        where: str = "<spec>",
        detector: Detector | None = None,
        threshold: float | None = None,
        spoof_below: float | None = None,
        unsure_margin: float | None = None,
        quality: QualityLimits | None = DEFAULT_QUALITY_LIMITS,
    ) -> CNNPassiveChecker:
        """Build from the spec's and the ONNX file's bytes (e.g. package resources)."""
        obj = cls.__new__(cls)
        spec = _parse_spec(spec_bytes, where)
        obj._init(spec, onnx_bytes, where, detector, threshold, spoof_below, unsure_margin, quality)
        return obj

    def _init(
        self,
        spec: dict[str, Any],
        onnx_bytes: bytes,
        where: str,
        detector: Detector | None,
        threshold: float | None,
        spoof_below: float | None,
        unsure_margin: float | None,
        quality: QualityLimits | None,
    ) -> None:
        digest = hashlib.sha256(onnx_bytes).hexdigest()
        if digest != spec["onnx_sha256"]:
            raise ModelIntegrityError(
                f"{where}: ONNX file {spec['onnx']} has sha256 {digest}, the spec expects {spec['onnx_sha256']}"
            )
        self.spec = spec
        self.input_size = int(spec["input_size"])
        self.work_size = int(spec["work_size"])
        self.expand = float(spec["expand"])
        self.mean = [float(v) for v in spec["mean"]]
        self.std = [float(v) for v in spec["std"]]
        self.threshold = float(spec["threshold"] if threshold is None else threshold)
        if spoof_below is not None:
            below = spoof_below
        elif threshold is not None:  # a threshold given alone: one threshold, no "unsure" band
            below = self.threshold
        else:
            below = spec.get("spoof_below", self.threshold)
        self.spoof_below = min(float(below), self.threshold)
        self.unsure_margin = float(spec.get("unsure_margin", 0.0) if unsure_margin is None else unsure_margin)
        self.quality = quality
        self.detector = detector
        self._onnx = onnx_bytes
        self._session: Any = None

    def _run(self) -> Any:
        if self._session is None:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = get_num_threads()
            opts.inter_op_num_threads = 1
            self._session = ort.InferenceSession(self._onnx, sess_options=opts, providers=["CPUExecutionProvider"])
        return self._session

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_session"] = None  # onnxruntime sessions do not pickle; rebuilt on first use
        return state

    def detect(self, image: Image) -> Detection:
        """The largest face of ``image``; :class:`NoFaceError` when there is none."""
        self.detector, face = largest_face(self.detector, image)
        return face

    def crop(self, image: Image, detection: Detection) -> Image:
        """The network input crop of one face (:func:`cnn_crop` with the spec's geometry)."""
        return cnn_crop(image, detection, input_size=self.input_size, work_size=self.work_size, expand=self.expand)

    def score_crops(self, crops: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Probability of bona fide for RGB uint8 crops ``(n, s, s, 3)`` (``s`` = work or input size)."""
        a = np.asarray(crops)
        if a.ndim == 3:
            a = a[None]
        if a.dtype != np.uint8 or a.ndim != 4 or a.shape[-1] != 3 or a.shape[1] != a.shape[2]:
            raise InvalidArgumentError(f"expected square RGB uint8 crops (n, s, s, 3), got {a.dtype} {a.shape}")
        if a.shape[1] != self.input_size:
            a = np.stack([resize_crop(c, self.input_size) for c in a])
        sess = self._run()
        name = sess.get_inputs()[0].name
        out = [
            np.asarray(sess.run(None, {name: _preprocess(a[i : i + self.BATCH], self.mean, self.std)})[0])
            for i in range(0, a.shape[0], self.BATCH)
        ]
        probs = np.concatenate(out).reshape(a.shape[0], -1)[:, -1]
        return probs.astype(np.float64)

    def verdict(self, score: float) -> str:
        """``"live"`` at or above :attr:`threshold`, ``"spoof"`` below :attr:`spoof_below`, else ``"unsure"``."""
        if abs(score - self.threshold) < self.unsure_margin:
            return "unsure"
        if score >= self.threshold:
            return "live"
        return "spoof" if score < self.spoof_below else "unsure"

    def score(self, image: Image, detection: Detection | None = None) -> Liveness:
        """Check one image (its largest face, or ``detection``).

        Raises :class:`InvalidImageError` for a non-RGB-uint8 input and :class:`NoFaceError`
        when no face is found.

        Examples
        --------
        >>> default_cnn_checker().score(load_image("selfie.jpg")).verdict  # doctest: +SKIP
        'live'
        """
        image = check_image(image, what="liveness input", min_side=16)
        det = self.detect(image) if detection is None else detection
        s = float(self.score_crops(self.crop(image, det)[None])[0])
        details: dict[str, Any] = {"threshold": self.threshold, "box": [round(float(v), 2) for v in det.box]}
        verdict = self.verdict(s)
        if self.quality is not None:
            q = assess_face(image, det, self.quality)
            details["quality"] = q.as_dict()
            if not q.ok:
                verdict = "unsure"
                details["unsure_reasons"] = list(q.reasons)
        return Liveness(verdict=verdict, score=s, method=self.method, details=details)


_REQUIRED = {
    "onnx": str,
    "onnx_sha256": str,
    "input_size": int,
    "work_size": int,
    "expand": float,
    "mean": list,
    "std": list,
    "threshold": float,
}


def _parse_spec(data: bytes, where: str) -> dict[str, Any]:
    try:
        spec = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InvalidFileError(f"{where}: not a liveness CNN spec ({err})") from err
    if not isinstance(spec, dict) or spec.get("format") != CNN_SPEC_FORMAT:
        got = spec.get("format") if isinstance(spec, dict) else type(spec).__name__
        raise InvalidFileError(f"{where}: format {got!r}, expected {CNN_SPEC_FORMAT!r}")
    for key, typ in _REQUIRED.items():
        v = spec.get(key)
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) if typ is float else isinstance(v, typ)
        if not ok:
            raise InvalidFileError(f"{where}: field {key!r} missing or not {typ.__name__}")
    if Path(spec["onnx"]).name != spec["onnx"]:
        raise InvalidFileError(f"{where}: 'onnx' must be a file name next to the spec, got {spec['onnx']!r}")
    return spec


def write_cnn_spec(
    path: str | Path,
    onnx_path: str | Path,
    *,
    threshold: float,
    spoof_below: float | None = None,
    unsure_margin: float = 0.0,
    input_size: int = 64,
    work_size: int = 96,
    expand: float = 2.0,
    mean: Sequence[float] = (0.5, 0.5, 0.5),
    std: Sequence[float] = (0.5, 0.5, 0.5),
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write a ``faceprint-passive-cnn/1`` spec for ``onnx_path`` (which must sit in the same folder).

    Live when ``score >= threshold``, spoof when ``score < spoof_below`` (default ``threshold``),
    "unsure" in between.
    """
    p, onnx = Path(path), Path(onnx_path)
    if onnx.resolve().parent != p.resolve().parent:
        raise InvalidArgumentError(f"the ONNX file {onnx} must sit next to the spec {p}")
    spec = {
        "format": CNN_SPEC_FORMAT,
        "onnx": onnx.name,
        "onnx_sha256": hashlib.sha256(onnx.read_bytes()).hexdigest(),
        "input_size": int(input_size),
        "work_size": int(work_size),
        "expand": float(expand),
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
        "threshold": float(threshold),
        "spoof_below": float(threshold if spoof_below is None else min(spoof_below, threshold)),
        "unsure_margin": float(unsure_margin),
        "output": "probability of a bona fide presentation, shape (n, 1)",
        **dict(extra or {}),
    }
    p.write_text(json.dumps(spec, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return p


def default_cnn_checker(*, detector: Detector | None = None) -> CNNPassiveChecker:
    """The shipped CNN (spec and ONNX sha256 checked; research use, see its model card)."""
    models = resources.files("faceprint") / "models"
    try:
        data = (models / DEFAULT_CNN_SPEC).read_bytes()
    except (FileNotFoundError, OSError) as err:
        raise ModelNotFoundError(f"shipped liveness CNN {DEFAULT_CNN_SPEC} is missing from faceprint") from err
    digest = hashlib.sha256(data).hexdigest()
    if digest != DEFAULT_CNN_SPEC_SHA256:
        raise ModelIntegrityError(
            f"{DEFAULT_CNN_SPEC}: sha256 {digest} does not match the expected {DEFAULT_CNN_SPEC_SHA256!r}"
        )
    name = _parse_spec(data, DEFAULT_CNN_SPEC)["onnx"]
    try:
        onnx = (models / name).read_bytes()
    except (FileNotFoundError, OSError) as err:
        raise ModelNotFoundError(f"shipped liveness CNN {name} is missing from faceprint") from err
    return CNNPassiveChecker.from_bytes(data, onnx, where=DEFAULT_CNN_SPEC, detector=detector)
