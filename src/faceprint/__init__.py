"""faceprint: offline face recognition (detect, align, embed, verify, identify, gallery).

Examples
--------
>>> import faceprint
>>> faceprint.__version__
'0.1.0'
"""

from __future__ import annotations

from .errors import (
    EmbedderMismatchError,
    FaceprintError,
    ImageTooLargeError,
    InvalidImageError,
    ModelNotFoundError,
    MultipleFacesError,
    NoFaceError,
)
from .types import Detection, Face, Match, ModelSpec, Verification

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "Detection",
    "Face",
    "Match",
    "ModelSpec",
    "Verification",
    "FaceprintError",
    "InvalidImageError",
    "ImageTooLargeError",
    "NoFaceError",
    "MultipleFacesError",
    "ModelNotFoundError",
    "EmbedderMismatchError",
    "FacePipeline",
    "Gallery",
    "Identification",
    "load_image",
    "align",
    "get_detector",
    "get_embedder",
    "detect",
    "embed",
    "verify",
    "enroll",
    "identify",
    "set_num_threads",
]

from .alignment import align  # noqa: E402
from .detection import get_detector  # noqa: E402
from .embedding import get_embedder  # noqa: E402
from .gallery import Gallery  # noqa: E402
from .io import load_image  # noqa: E402
from .pipeline import FacePipeline, Identification, detect, embed, enroll, identify, verify  # noqa: E402
from .runtime import set_num_threads  # noqa: E402
