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
    "ExampleNotFoundError",
    "SubjectExistsError",
    "KeyNotFoundError",
    "EmbedderMismatchError",
    "TemplateKeyError",
    "TemplateIntegrityError",
    "DatasetNotFoundError",
    "InvalidEmbeddingError",
    "InvalidSubjectError",
    "InvalidModelSpecError",
    "InvalidArgumentError",
    "InvalidArgumentTypeError",
    "UnknownBackendError",
    "InvalidFileError",
    "InvalidExportError",
    "NotAFolderError",
    "EnrollmentRejectedError",
    "UnsupportedGalleryURLError",
    "UnsupportedOperatingPointError",
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


class ExampleNotFoundError(GalleryError, KeyError):
    """No stored example (template) with that id exists in the gallery."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "example not found"


class SubjectExistsError(GalleryError, ValueError):
    """A subject was to be created (or renamed) under a name another subject already has."""


class KeyNotFoundError(FaceprintError, KeyError):
    """No API key with that id exists in the key store (:mod:`faceprint.keys`)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "key not found"


class EmbedderMismatchError(GalleryError, ValueError):
    """Embeddings from different models were about to be compared or stored together."""


class TemplateKeyError(GalleryError, ValueError):
    """A gallery's templates are encrypted and no key, or another key, was given; or a key was given
    for a gallery whose templates are stored plain (:mod:`faceprint.gallery.encryption`).

    Raised when the gallery is opened, before any template is read. The message never holds the key.
    """


class TemplateIntegrityError(GalleryError):
    """A stored template failed authentication: its encrypted bytes were altered, or copied from
    another row or another gallery (:mod:`faceprint.gallery.encryption`)."""


class DatasetNotFoundError(FaceprintError, FileNotFoundError):
    """An evaluation data set is not where it was expected."""


class InvalidEmbeddingError(FaceprintError, ValueError):
    """An embedding has the wrong shape, dtype, is not finite or not unit-length."""


class InvalidSubjectError(GalleryError, ValueError):
    """A subject name, its metadata or its template sources are invalid (empty, too long, ...)."""


class InvalidModelSpecError(FaceprintError, ValueError):
    """A model spec file (``faceprint-embedder/1`` JSON, written by ``faceprint train``) is malformed."""


class InvalidArgumentError(FaceprintError, ValueError):
    """An argument or option value is out of range, of the wrong shape or otherwise not accepted.

    Examples
    --------
    >>> from faceprint.runtime import set_num_threads
    >>> try:
    ...     set_num_threads(0)
    ... except InvalidArgumentError as e:
    ...     print(e)
    threads must be >= 1, got 0
    """


class InvalidArgumentTypeError(InvalidArgumentError, TypeError):
    """An argument has the wrong type (also a ``TypeError``, so callers catching either keep working)."""


class UnknownBackendError(InvalidArgumentError):
    """A name that selects a registered thing (detector, embedder, index, method, preset, ...) is unknown.

    The message lists the valid names.

    Examples
    --------
    >>> from faceprint.detection import get_detector
    >>> try:
    ...     get_detector("nope")
    ... except UnknownBackendError as e:
    ...     print(e)
    unknown detector 'nope'; valid names: retinaface, yunet
    """


class InvalidFileError(FaceprintError, ValueError):
    """A file given by the user exists but its content is not what was expected.

    For example a malformed pair list, a saved classifier of another format, or a training checkpoint
    that is not one. (Model spec files have their own :class:`InvalidModelSpecError`.)
    """


class InvalidExportError(InvalidFileError):
    """A gallery export (:mod:`faceprint.gallery.transfer`) is not one, is truncated, or was altered
    after it was written (its checksums or, for an encrypted export, its authentication fail)."""


class NotAFolderError(FaceprintError, NotADirectoryError):
    """A path given where a folder of inputs was expected is missing or not a folder."""


class UnsupportedGalleryURLError(GalleryError, ValueError):
    """A gallery URL names a scheme no backend handles, or is malformed (see ``open_gallery``)."""


class EnrollmentRejectedError(FaceprintError, ValueError):
    """A prepared enrollment that a liveness check rejected was about to be written to a gallery."""


class UnsupportedOperatingPointError(InvalidArgumentError):
    """An operating point (an FMR, or an FPIR at a gallery size) lies beyond what the calibration data support.

    For example an ``fpir`` outside (0, 1), or one whose per-comparison FMR at the gallery's size is
    smaller than the impostor tail of the model measures or extrapolates
    (:func:`faceprint.thresholds.threshold_for_fpir`).
    """
