"""Enrollment in two steps: :func:`prepare_enrollment` (pure) and :func:`commit` (one gallery write).

``prepare_enrollment`` decodes, detects, checks liveness and embeds every photo of one person and
returns a frozen, picklable :class:`PreparedEnrollment`; it never touches a gallery, so it can run in
a worker process (the pipeline pickles by its :class:`~faceprint.pipeline.PipelineSpec`) while the
process that owns the gallery calls ``commit``. ``commit`` writes the prepared templates in the
gallery's one ``enroll`` transaction, all or nothing. :meth:`FacePipeline.enroll
<faceprint.pipeline.FacePipeline.enroll>` is exactly these two steps.

Examples
--------
>>> from faceprint.gallery import Gallery  # doctest: +SKIP
>>> prepared = prepare_enrollment(FacePipeline(), "Ada", ["ada1.jpg", "ada2.jpg"])  # doctest: +SKIP
>>> prepared.content_sha256[0][:12]  # doctest: +SKIP
'3f1c2a9b8d7e'
>>> with Gallery("gallery.db") as g:  # doctest: +SKIP
...     subject = commit(prepared, g)
"""

from __future__ import annotations

import hashlib
import inspect
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from .detection import LARGEST, OneFace, resolve_one_face
from .errors import (
    EnrollmentRejectedError,
    FaceprintError,
    InvalidArgumentError,
    InvalidFileError,
    InvalidImageError,
    MultipleFacesError,
    NoFaceError,
)
from .io import ImageInput, NamedBytes, describe_source, read_image_bytes
from .types import Detection, Liveness, LivenessOption, LivenessRejection

if TYPE_CHECKING:
    from .gallery import Subject
    from .pipeline import FacePipeline

__all__ = [
    "PreparedEnrollment",
    "EnrollmentTarget",
    "Duplicate",
    "prepare_enrollment",
    "prepare_enrollment_report",
    "PhotoResult",
    "PHOTO_ERRORS",
    "drop_duplicates",
    "commit",
    "content_sha256",
]

SAME_PHOTO_SIMILARITY = 0.9999
"""Cosine similarity at or above which a new template is the same photo as a stored one: the same
pixels give the same embedding (up to float noise); two different photos of one person score
0.5-0.95, a re-encoded copy about 0.99."""


@dataclass(frozen=True, eq=False)
class PreparedEnrollment:
    """Everything an enrollment writes, computed before the write (see :func:`prepare_enrollment`).

    Attributes
    ----------
    name : str
        The subject's name as given (the gallery strips and validates it at :func:`commit`).
    embeddings : ndarray, shape (n, dim)
        One unit ``float32`` template per photo, in order (read-only).
    fingerprint : str
        The embedder that made them; the gallery refuses to mix fingerprints.
    sources : tuple of str
        One label per photo (its path, or a description such as ``"1234 bytes"``).
    content_sha256 : tuple of str
        Hex sha256 per photo: of the encoded bytes (file, bytes, file object) when there are any,
        else of the decoded RGB ``uint8`` pixels (numpy array, PIL image).
    liveness : tuple of Liveness
        The presentation-attack result of each photo, in order; empty when the check was off.
    rejection : LivenessRejection or None
        Set when a liveness check did not say live: :func:`commit` refuses such an enrollment.
    """

    name: str
    embeddings: npt.NDArray[np.float32]
    fingerprint: str
    sources: tuple[str, ...]
    content_sha256: tuple[str, ...]
    liveness: tuple[Liveness, ...] = ()
    rejection: LivenessRejection | None = None

    def __post_init__(self) -> None:
        embs = np.array(self.embeddings, np.float32)  # an own, read-only copy
        embs.setflags(write=False)
        object.__setattr__(self, "embeddings", embs)

    def __setstate__(self, state: dict[str, Any]) -> None:  # unpickling: read-only again
        for key, value in state.items():
            object.__setattr__(self, key, value)
        self.embeddings.setflags(write=False)

    @property
    def accepted(self) -> bool:
        """True when no liveness check rejected a photo (what :func:`commit` requires)."""
        return self.rejection is None

    def __len__(self) -> int:
        return int(self.embeddings.shape[0])


@dataclass(frozen=True)
class Duplicate:
    """A photo :func:`drop_duplicates` left out: its label, and what it duplicates.

    Attributes
    ----------
    source : str
        The photo left out.
    same_as : str
        The earlier photo of the same enrollment with the same bytes, or ``"a stored template"``
        when the subject already holds its template (the same content sha256, or the same pixels).
    """

    source: str
    same_as: str


class DuplicateSource(Protocol):
    """What :func:`drop_duplicates` reads: whether the subject exists, and its stored templates
    (and, where the gallery has it, ``content_hashes(name)``: the digests it stored with them)."""

    def __contains__(self, name_or_id: object) -> bool: ...

    def templates(self, name_or_id: str | int) -> npt.NDArray[np.float32]: ...


class EnrollmentTarget(Protocol):
    """What :func:`commit` writes to: a gallery's one-transaction ``enroll``.

    When that ``enroll`` also takes ``content_sha256=`` (every :class:`~faceprint.gallery.BaseGallery`
    does), :func:`commit` passes the photos' digests and the gallery stores a photo once per subject.
    """

    def enroll(
        self,
        name: str,
        embeddings: npt.ArrayLike,
        *,
        fingerprint: str,
        sources: Sequence[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Subject: ...


def prepare_enrollment(
    pipeline: FacePipeline,
    name: str,
    sources: ImageInput | Sequence[ImageInput],
    *,
    select: OneFace = LARGEST,
    liveness: LivenessOption = None,
    on_multiple: OneFace | None = None,
) -> PreparedEnrollment:
    """Decode, detect, check and embed every photo of ``name``; touches no gallery.

    Parameters
    ----------
    pipeline : FacePipeline
        Detector, embedder and options (its ``max_pixels``, ``min_face_size``, default ``liveness``).
    name : str
        The person's name (validated by the gallery at :func:`commit`).
    sources : image input or sequence of them
        One photo (path, bytes, file object, PIL image, array) or a list of them.
    select : {"largest", "central", "error"}, default "largest"
        The face of each photo (see :mod:`faceprint.detection`); ``"error"`` raises
        :class:`MultipleFacesError` for a photo of several faces.
    liveness : LivenessOption
        ``None``: the pipeline's setting; ``"passive"`` checks each photo; a given result (e.g. a
        video challenge) applies to every photo.
    on_multiple : {"largest", "central", "error"}, optional
        Deprecated alias of ``select`` (a ``DeprecationWarning``; giving both is an error).

    Returns
    -------
    PreparedEnrollment
        With ``rejection`` set when a photo was not judged live.

    Raises
    ------
    InvalidArgumentError
        No photos, an unknown ``select``, or both ``select`` and ``on_multiple``.
    InvalidImageError, NoFaceError, MultipleFacesError
        On the first bad photo; the message names it.
    """
    select = resolve_one_face(select, on_multiple, "prepare_enrollment")
    items = _as_list(sources)
    if not items:
        raise InvalidArgumentError("enroll needs at least one image")
    photos = [_prepare_photo(pipeline, src, select, liveness) for src in items]
    return _prepared(pipeline, name, items, photos)


def _prepared(
    pipeline: FacePipeline, name: str, items: Sequence[ImageInput], photos: Sequence[_Photo]
) -> PreparedEnrollment:
    embs = [p.embedding for p in photos]
    checks = [p.liveness for p in photos if p.liveness is not None]
    digests = [p.digest for p in photos]
    labels = tuple(describe_source(s) for s in items)
    rejection = None
    if checks and not all(lv.live for lv in checks):
        rejection = LivenessRejection(name=name, sources=labels, liveness=tuple(checks))
    return PreparedEnrollment(
        name=name,
        embeddings=np.stack(embs),
        fingerprint=pipeline._emb.fingerprint,
        sources=labels,
        content_sha256=tuple(digests),
        liveness=tuple(checks),
        rejection=rejection,
    )


@dataclass(frozen=True)
class _Photo:
    embedding: npt.NDArray[np.float32]
    liveness: Liveness | None
    digest: str
    detection: Detection


def _prepare_photo(pipeline: FacePipeline, src: ImageInput, select: OneFace, liveness: LivenessOption) -> _Photo:
    """Decode, detect, embed and check one photo: the pipeline's own steps, in its order."""
    what = describe_source(src)
    decodable, digest = _read(src)
    image = pipeline.load(decodable)
    face = pipeline._one_face(image, what, select)
    live = pipeline._liveness(liveness, image, face.detection)
    if digest is None:
        digest = _sha256(np.ascontiguousarray(image).tobytes())
    return _Photo(embedding=face.embedding, liveness=live, digest=digest, detection=face.detection)


PHOTO_ERRORS: tuple[type[FaceprintError], ...] = (
    InvalidImageError, InvalidFileError, NoFaceError, MultipleFacesError,
)
"""What is wrong with one photo (and not with the request): :func:`prepare_enrollment_report` reports
these per photo; anything else is raised."""


@dataclass(frozen=True)
class PhotoResult:
    """What one photo of an enrollment gave: its face and liveness, or why it cannot be used.

    Attributes
    ----------
    source : str
        The photo's label (path, upload name, ``"1234 bytes"``).
    box : tuple of 4 floats or None
        ``(x1, y1, x2, y2)`` of the face used, in the photo's pixels.
    detection_score : float or None
        The detector's score of that face.
    liveness : Liveness or None
        The photo's presentation-attack result; None when the check was off or no face was found.
    error : str or None
        Why the photo cannot be used (the library error's message).
    error_type : str or None
        That error's class name (``"NoFaceError"``, ``"InvalidImageError"``, ...).
    """

    source: str
    box: tuple[float, float, float, float] | None = None
    detection_score: float | None = None
    liveness: Liveness | None = None
    error: str | None = None
    error_type: str | None = None

    @property
    def usable(self) -> bool:
        """A face was found and embedded, and no liveness check said otherwise than live."""
        return self.error is None and (self.liveness is None or self.liveness.live)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "usable": self.usable,
            "box": None if self.box is None else [round(float(v), 1) for v in self.box],
            "detection_score": None if self.detection_score is None else round(float(self.detection_score), 5),
            "liveness": None if self.liveness is None else self.liveness.to_dict(),
            "error": self.error,
            "error_type": self.error_type,
        }


def prepare_enrollment_report(
    pipeline: FacePipeline,
    name: str,
    sources: ImageInput | Sequence[ImageInput],
    *,
    select: OneFace = LARGEST,
    liveness: LivenessOption = None,
) -> tuple[PreparedEnrollment | None, tuple[PhotoResult, ...]]:
    """:func:`prepare_enrollment` that looks at every photo and says what each one gave.

    A bad photo (:data:`PHOTO_ERRORS`: undecodable, no face, several faces with ``select="error"``)
    does not stop the others from being checked; the :class:`PreparedEnrollment` is None when any
    photo is bad (enrollment is all or nothing), else it is exactly what ``prepare_enrollment``
    returns (with ``rejection`` set when a photo was not judged live). Used where one answer must
    explain every photo: ``POST /v1/enroll`` and the web page.

    Returns
    -------
    (PreparedEnrollment or None, tuple of PhotoResult)
        One result per photo, in order.
    """
    select = resolve_one_face(select, None, "prepare_enrollment_report")
    items = _as_list(sources)
    if not items:
        raise InvalidArgumentError("enroll needs at least one image")
    photos: list[_Photo] = []
    results: list[PhotoResult] = []
    for src in items:
        label = describe_source(src)
        try:
            photo = _prepare_photo(pipeline, src, select, liveness)
        except PHOTO_ERRORS as err:
            results.append(PhotoResult(source=label, error=str(err), error_type=type(err).__name__))
            continue
        photos.append(photo)
        det = photo.detection
        results.append(PhotoResult(
            source=label,
            box=tuple(float(v) for v in det.box),  # type: ignore[arg-type]
            detection_score=float(det.score),
            liveness=photo.liveness,
        ))
    if len(photos) < len(items):
        return None, tuple(results)
    return _prepared(pipeline, name, items, photos), tuple(results)


def commit(
    prepared: PreparedEnrollment, gallery: EnrollmentTarget, *, metadata: dict[str, Any] | None = None
) -> Subject:
    """Write a prepared enrollment in the gallery's one ``enroll`` transaction (all templates or none).

    The photos' :attr:`~PreparedEnrollment.content_sha256` go with them where the gallery takes
    them: a photo whose file bytes the subject already holds is then not stored again (checked in
    the write transaction, so two processes enrolling the same photo at once store it once).
    :func:`drop_duplicates` says beforehand which photos those are.

    Raises
    ------
    EnrollmentRejectedError
        ``prepared`` was rejected by a liveness check; nothing is written.
    InvalidSubjectError, InvalidEmbeddingError, EmbedderMismatchError
        From the gallery (bad name or metadata, another model's gallery); nothing is written.
    """
    if prepared.rejection is not None:
        rej = prepared.rejection
        raise EnrollmentRejectedError(
            f"{prepared.name!r} is not enrolled: the liveness check said {rej.decision} "
            f"for {', '.join(s for s, lv in zip(rej.sources, rej.liveness) if not lv.live) or 'a photo'}"
        )
    extra: dict[str, Any] = {}
    if _takes(gallery.enroll, "content_sha256"):
        extra["content_sha256"] = list(prepared.content_sha256)
    return gallery.enroll(
        prepared.name,
        prepared.embeddings,
        fingerprint=prepared.fingerprint,
        sources=list(prepared.sources),
        metadata=metadata,
        **extra,
    )


def _takes(method: Any, keyword: str) -> bool:
    """Whether ``method`` accepts the keyword argument ``keyword`` (an older target may not)."""
    try:
        parameters = inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False
    return keyword in parameters or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


def drop_duplicates(
    prepared: PreparedEnrollment, gallery: DuplicateSource | None = None
) -> tuple[PreparedEnrollment, tuple[Duplicate, ...]]:
    """``prepared`` without the photos it already has: the same file given twice (same
    :attr:`~PreparedEnrollment.content_sha256`), and, with ``gallery``, a photo the subject already
    holds: the same content sha256 stored with one of its templates (the same file enrolled before,
    in any process), or a template at similarity >= :data:`SAME_PHOTO_SIMILARITY` (the same
    pixels, e.g. from a template enrolled without a digest). Returns the rest (possibly no photos)
    and what was left out, in order.

    Examples
    --------
    >>> import numpy as np
    >>> p = PreparedEnrollment("ann", np.eye(2, dtype=np.float32)[[0, 0]], "m", ("a.jpg", "b.jpg"), ("ab", "ab"))
    >>> rest, left_out = drop_duplicates(p)
    >>> len(rest), left_out
    (1, (Duplicate(source='b.jpg', same_as='a.jpg'),))
    """
    stored = np.empty((0, prepared.embeddings.shape[1]), np.float32)
    stored_digests: frozenset[str] = frozenset()
    if gallery is not None and prepared.name.strip() in gallery:
        stored = np.asarray(gallery.templates(prepared.name.strip()), np.float32)
        hashes = getattr(gallery, "content_hashes", None)
        if callable(hashes):
            stored_digests = frozenset(hashes(prepared.name.strip()))
    first_of: dict[str, str] = {}
    keep: list[int] = []
    left_out: list[Duplicate] = []
    for i, (source, digest) in enumerate(zip(prepared.sources, prepared.content_sha256, strict=True)):
        if digest in first_of:
            left_out.append(Duplicate(source, first_of[digest]))
            continue
        first_of[digest] = source
        if digest in stored_digests:
            left_out.append(Duplicate(source, "a stored template"))
            continue
        if stored.shape[0] and stored.shape[1] == prepared.embeddings.shape[1]:
            if float(np.max(stored @ prepared.embeddings[i])) >= SAME_PHOTO_SIMILARITY:
                left_out.append(Duplicate(source, "a stored template"))
                continue
        keep.append(i)
    if not left_out:
        return prepared, ()
    per_photo = len(prepared.liveness) == len(prepared)
    rest = replace(
        prepared,
        embeddings=prepared.embeddings[keep],
        sources=tuple(prepared.sources[i] for i in keep),
        content_sha256=tuple(prepared.content_sha256[i] for i in keep),
        liveness=tuple(prepared.liveness[i] for i in keep) if per_photo else prepared.liveness,
    )
    return rest, tuple(left_out)


def content_sha256(source: ImageInput) -> str:
    """The hex sha256 that :func:`prepare_enrollment` records for ``source`` (reads it; no decoding
    for encoded inputs)."""
    _, digest = _read(source)
    if digest is not None:
        return digest
    from .io import load_image

    return _sha256(np.ascontiguousarray(load_image(source)).tobytes())


# -- internals ---------------------------------------------------------------------------------
def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read(source: ImageInput) -> tuple[ImageInput, str | None]:
    """``(what to decode, sha256 of the encoded bytes)``: each file is read once, so the hash is of
    the very bytes that are decoded. Digest None for arrays and PIL images (hash the pixels).
    Files are read as :func:`faceprint.io.read_image_bytes` reads them (regular files only, at
    most ``FACEPRINT_MAX_FILE_BYTES``), with its errors."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return source, _sha256(bytes(source))
    if isinstance(source, (str, os.PathLike)) or (not isinstance(source, np.ndarray) and hasattr(source, "read")):
        data, what = read_image_bytes(source)
        return NamedBytes(data, what), _sha256(data)
    return source, None


def _as_list(sources: ImageInput | Sequence[ImageInput]) -> list[ImageInput]:
    if isinstance(sources, (list, tuple)):
        return list(sources)
    return [sources]  # type: ignore[list-item]
