"""One exception hierarchy for faceprint.

Every error raised for bad user input is a :class:`FaceprintError`; most also subclass the
matching builtin so callers that catch ``ValueError`` / ``FileNotFoundError`` keep working.
"""

from __future__ import annotations

__all__ = [
    "FaceprintError",
    "InvalidImageError",
    "ImageTooLargeError",
    "NoFaceError",
    "MultipleFacesError",
    "ModelNotFoundError",
    "ModelIntegrityError",
    "NotFittedError",
    "GalleryError",
    "SubjectNotFoundError",
    "EmbedderMismatchError",
    "DatasetNotFoundError",
    "InvalidEmbeddingError",
    "InvalidSubjectError",
    "InvalidModelSpecError",
    "EnrollmentRejectedError",
    "UnsupportedGalleryURLError",
]


class FaceprintError(Exception):
    """Base class of every error faceprint raises on purpose."""


class InvalidImageError(FaceprintError, ValueError):
    """The input is not a decodable image, or has the wrong type / shape / dtype."""


class ImageTooLargeError(InvalidImageError):
    """The image has more pixels than the configured limit (decompression-bomb guard)."""


class NoFaceError(FaceprintError, ValueError):
    """No face was found where one was required."""


class MultipleFacesError(FaceprintError, ValueError):
    """Several faces were found where exactly one was required."""


class ModelNotFoundError(FaceprintError, FileNotFoundError):
    """A model file or the package that carries it is not installed."""


class ModelIntegrityError(FaceprintError, ValueError):
    """A model file exists but its sha256 does not match the expected one."""


class NotFittedError(FaceprintError, ValueError, AttributeError):
    """An estimator was used before ``fit``."""


class GalleryError(FaceprintError, RuntimeError):
    """A gallery operation failed (storage, consistency)."""


class SubjectNotFoundError(GalleryError, KeyError):
    """No subject with that id or name exists in the gallery."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable.
        return str(self.args[0]) if self.args else "subject not found"


class EmbedderMismatchError(GalleryError, ValueError):
    """Embeddings from different models were about to be compared or stored together."""


class DatasetNotFoundError(FaceprintError, FileNotFoundError):
    """An evaluation data set is not where it was expected."""


class InvalidEmbeddingError(FaceprintError, ValueError):
    """An embedding has the wrong shape, dtype, is not finite or not unit-length."""


class InvalidSubjectError(GalleryError, ValueError):
    """A subject name, its metadata or its template sources are invalid (empty, too long, ...)."""


class InvalidModelSpecError(FaceprintError, ValueError):
    """A model spec file (``faceprint-embedder/1`` JSON, written by ``faceprint train``) is malformed."""


class UnsupportedGalleryURLError(GalleryError, ValueError):
    """A gallery URL names a scheme no backend handles, or is malformed (see ``open_gallery``)."""


class EnrollmentRejectedError(FaceprintError, ValueError):
    """A prepared enrollment that a liveness check rejected was about to be written to a gallery."""
