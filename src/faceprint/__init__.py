"""faceprint: offline face recognition (detect, align, embed, verify, identify, gallery).

``faceprint.__all__`` lists the public names: the plain functions and :class:`FacePipeline`,
the gallery, the result types and every error class (all subclasses of :class:`FaceprintError`).

Examples
--------
>>> import faceprint
>>> faceprint.__version__
'0.1.0'
"""

from __future__ import annotations

from .errors import (
    DatasetNotFoundError,
    EmbedderMismatchError,
    EnrollmentRejectedError,
    ExampleNotFoundError,
    FaceprintError,
    GalleryError,
    ImageTooLargeError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    InvalidEmbeddingError,
    InvalidExportError,
    InvalidFileError,
    InvalidImageError,
    InvalidModelSpecError,
    InvalidSubjectError,
    KeyNotFoundError,
    ModelIntegrityError,
    ModelNotFoundError,
    MultipleFacesError,
    NoFaceError,
    NotAFolderError,
    NotFittedError,
    SubjectExistsError,
    SubjectNotFoundError,
    TemplateIntegrityError,
    TemplateKeyError,
    UnknownBackendError,
    UnsupportedGalleryURLError,
    UnsupportedOperatingPointError,
)
from .types import Detection, Face, Image, Liveness, Match, ModelSpec, Verification

__version__ = "0.1.0"

__all__ = [
    "__version__",
    # result and input types
    "Image",
    "ImageInput",
    "Detection",
    "Face",
    "Liveness",
    "Match",
    "ModelSpec",
    "Verification",
    "Identification",
    "LivenessRejection",
    "Subject",
    # errors (faceprint.errors)
    "FaceprintError",
    "InvalidArgumentError",
    "InvalidArgumentTypeError",
    "UnknownBackendError",
    "InvalidFileError",
    "InvalidExportError",
    "NotAFolderError",
    "InvalidImageError",
    "ImageTooLargeError",
    "NoFaceError",
    "MultipleFacesError",
    "ModelNotFoundError",
    "ModelIntegrityError",
    "InvalidModelSpecError",
    "NotFittedError",
    "GalleryError",
    "SubjectNotFoundError",
    "ExampleNotFoundError",
    "SubjectExistsError",
    "KeyNotFoundError",
    "InvalidSubjectError",
    "EmbedderMismatchError",
    "TemplateKeyError",
    "TemplateIntegrityError",
    "InvalidEmbeddingError",
    "DatasetNotFoundError",
    "EnrollmentRejectedError",
    "UnsupportedGalleryURLError",
    "UnsupportedOperatingPointError",
    # pipeline, stages and gallery
    "FacePipeline",
    "PipelineSpec",
    "DetectorSpec",
    "EmbedderSpec",
    "Gallery",
    "GalleryBackend",
    "open_gallery",
    # enrollment in two steps (prepare anywhere, commit in one write)
    "PreparedEnrollment",
    "prepare_enrollment",
    "commit_enrollment",
    "load_image",
    "align",
    "get_detector",
    "get_embedder",
    # plain functions (a lazily built default FacePipeline)
    "detect",
    "embed",
    "verify",
    "enroll",
    "identify",
    # decisions: calibration on your own people, open-set thresholds
    "Calibration",
    "fit_calibration",
    "load_calibration_file",
    "calibration_in_force",
    "threshold_for_fpir",
    # runtime
    "set_num_threads",
    "get_num_threads",
]

from .alignment import align  # noqa: E402
from .calibration import Calibration, calibration_in_force, fit_calibration, load_calibration_file  # noqa: E402
from .detection import DetectorSpec, get_detector  # noqa: E402
from .embedding import EmbedderSpec, get_embedder  # noqa: E402
from .enrollment import PreparedEnrollment, prepare_enrollment  # noqa: E402
from .enrollment import commit as commit_enrollment  # noqa: E402
from .gallery import Gallery, GalleryBackend, Subject, open_gallery  # noqa: E402
from .io import ImageInput, load_image  # noqa: E402
from .pipeline import (  # noqa: E402
    FacePipeline,
    Identification,
    LivenessRejection,
    PipelineSpec,
    detect,
    embed,
    enroll,
    identify,
    verify,
)
from .runtime import get_num_threads, set_num_threads  # noqa: E402
from .thresholds import threshold_for_fpir  # noqa: E402
