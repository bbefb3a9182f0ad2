"""What every gallery backend shares: the :class:`GalleryBackend` protocol and :class:`BaseGallery`.

:class:`BaseGallery` runs the fixed steps of every public operation (validate the input, refuse
templates of another embedder, log, rank template hits into subject :class:`~faceprint.types.Match`
es) and leaves storage and template search to a few hooks, so a backend (SQLite today, a vector
database later) writes only what is specific to it.

A subject's similarity to a query is the maximum cosine similarity over its templates.
"""

from __future__ import annotations

import json
import logging
import math
import numbers
import threading
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from types import TracebackType
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np
import numpy.typing as npt

from faceprint.errors import (
    EmbedderMismatchError,
    InvalidEmbeddingError,
    InvalidSubjectError,
    SubjectNotFoundError,
)
from faceprint.types import Match

from ..errors import InvalidArgumentError, InvalidArgumentTypeError

__all__ = [
    "Subject",
    "Example",
    "TemplateBatch",
    "TemplateHits",
    "GalleryBackend",
    "BaseGallery",
    "MAX_NAME_LENGTH",
    "UNIT_NORM_TOLERANCE",
]

logger = logging.getLogger(__name__)

MAX_NAME_LENGTH = 200
"""Longest subject name accepted, in characters (after stripping whitespace)."""

UNIT_NORM_TOLERANCE = 1e-3
"""Largest accepted ``abs(norm - 1)`` of an embedding row."""

Float32Array = npt.NDArray[np.float32]
Int64Array = npt.NDArray[np.int64]
_G = TypeVar("_G", bound="BaseGallery")


@dataclass(frozen=True)
class Subject:
    """One enrolled identity.

    Attributes
    ----------
    id : int
        Stable database id (not reused after removal while the gallery holds larger ids).
    name : str
        Unique display name.
    n_templates : int
        Number of stored templates (embeddings) of this subject.
    created_at : str
        ISO 8601 UTC time of the first enrollment.
    metadata : dict
        Free-form JSON-serialisable data given at enrollment.
    """

    id: int
    name: str
    n_templates: int
    created_at: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class Example:
    """One stored template of a subject (an "example" or "face" in CompreFace's terms).

    Attributes
    ----------
    id : int
        Stable template id (never reused while the gallery holds larger ids).
    subject_id : int
        Its subject's id.
    subject : str
        Its subject's name.
    source : str or None
        The provenance string given at enrollment (a path, ``"1234 bytes"`` ...).
    created_at : str
        ISO 8601 UTC time it was stored.
    content_sha256 : str or None
        The content digest given at enrollment (the photo's sha256), if any.
    """

    id: int
    subject_id: int
    subject: str
    source: str | None
    created_at: str
    content_sha256: str | None = None


@dataclass(frozen=True, eq=False)
class TemplateBatch:
    """Templates of many subjects, read in one go (:meth:`GalleryBackend.templates_many`).

    Attributes
    ----------
    subject_ids : ndarray of int64, shape (n,)
        Subject id of each template row.
    names : tuple of str, length n
        Subject name of each template row (the labels a classifier is trained on).
    embeddings : ndarray of float32, shape (n, d)
        The templates; ``d`` is 0 when the batch is empty and the gallery holds no templates.
    fingerprint : str or None
        Fingerprint of the embedder every template came from; None when the gallery is empty.
    """

    subject_ids: Int64Array
    names: tuple[str, ...]
    embeddings: Float32Array
    fingerprint: str | None

    def __len__(self) -> int:
        return len(self.names)


@dataclass(frozen=True, eq=False)
class TemplateHits:
    """What a backend's template search hands to the shared ranking (a hook's return value).

    Attributes
    ----------
    sims : ndarray of float32, shape (m, t)
        Cosine similarity of each hit; rows need not be sorted.
    subject_ids : ndarray of int64, shape (m, t)
        Subject of each hit; ``-1`` marks padding (ignored).
    names : mapping of int to str
        Name of every subject id that occurs in ``subject_ids``.
    """

    sims: Float32Array
    subject_ids: Int64Array
    names: Mapping[int, str]


@runtime_checkable
class GalleryBackend(Protocol):
    """A searchable store of subjects and their templates (what callers type against).

    Every template records the fingerprint of the embedder that produced it; the first
    enrollment fixes the gallery's fingerprint and dimension and a gallery never mixes models.
    A search sees every committed change. :class:`BaseGallery` implements the public steps of
    this protocol once; ``faceprint.gallery.Gallery`` (SQLite) is the default backend.
    """

    @property
    def path(self) -> str:
        """Where the gallery lives (a file path, or a URL for a server backend)."""
        ...

    @property
    def fingerprint(self) -> str | None:
        """Fingerprint of the embedder whose templates the gallery holds; None when empty."""
        ...

    @property
    def dim(self) -> int | None:
        """Embedding dimension of the stored templates; None when empty."""
        ...

    @property
    def n_templates(self) -> int:
        """Total number of stored templates."""
        ...

    def __len__(self) -> int: ...

    def __contains__(self, name_or_id: object) -> bool: ...

    def __iter__(self) -> Iterator[Subject]: ...

    def subjects(self) -> list[Subject]:
        """All subjects, ordered by name."""
        ...

    def get(self, name_or_id: str | int) -> Subject:
        """The subject with this name (str) or id (int); :class:`SubjectNotFoundError` if none."""
        ...

    def templates(self, name_or_id: str | int) -> Float32Array:
        """The templates of one subject, shape (n, d) float32, in enrollment order."""
        ...

    def templates_many(
        self, names_or_ids: Sequence[str | int] | None = None, *, missing_ok: bool = False
    ) -> TemplateBatch:
        """Templates of many subjects (default: all) in one read."""
        ...

    def enroll(
        self,
        name: str,
        embeddings: npt.ArrayLike,
        *,
        fingerprint: str,
        sources: Sequence[str | None] | None = None,
        metadata: dict[str, Any] | None = None,
        content_sha256: Sequence[str | None] | None = None,
        created_at: Sequence[str] | None = None,
    ) -> Subject:
        """Store templates for a subject, creating it when new (a photo's content once per subject)."""
        ...

    def add(
        self,
        name_or_id: str | int,
        embeddings: npt.ArrayLike,
        *,
        fingerprint: str,
        sources: Sequence[str] | None = None,
        content_sha256: Sequence[str | None] | None = None,
    ) -> Subject:
        """Append templates to an existing subject."""
        ...

    def content_hashes(self, name_or_id: str | int) -> frozenset[str]:
        """The content digests of one subject's stored templates (those enrolled with one)."""
        ...

    def rename(self, name_or_id: str | int, new_name: str) -> Subject:
        """Give a subject a new name."""
        ...

    def remove(self, name_or_id: str | int) -> int:
        """Delete a subject and its templates; return the number of templates erased."""
        ...

    def create(self, name: str, *, metadata: dict[str, Any] | None = None) -> Subject:
        """A new subject without templates (:class:`SubjectExistsError` if the name is taken)."""
        ...

    def examples(
        self, name_or_id: str | int | None = None, *, offset: int = 0, limit: int | None = None
    ) -> list[Example]:
        """Stored templates (of one subject, or of all), oldest first, without their vectors."""
        ...

    def merge(self, name_or_id: str | int, into: str | int) -> Subject:
        """Move every template of one subject to another and delete the first; return the other."""
        ...

    def count_examples(self, name_or_id: str | int | None = None) -> int:
        """How many templates :meth:`examples` would list without ``offset`` / ``limit``."""
        ...

    def example(self, example_id: int) -> tuple[Example, Float32Array]:
        """One stored template and its vector (d,); :class:`ExampleNotFoundError` if none."""
        ...

    def remove_examples(self, example_ids: Sequence[int]) -> list[Example]:
        """Delete these templates (all or none; their subjects stay); return what was deleted."""
        ...

    def search(
        self, embedding: npt.ArrayLike, *, k: int = 5, threshold: float, fingerprint: str
    ) -> list[Match]:
        """The ``k`` subjects most similar to one embedding, best first."""
        ...

    def search_many(
        self, embeddings: npt.ArrayLike, *, k: int = 5, threshold: float, fingerprint: str
    ) -> list[list[Match]]:
        """:meth:`search` for each row of ``embeddings``."""
        ...

    def score(
        self,
        embedding: npt.ArrayLike,
        names_or_ids: Sequence[str | int],
        *,
        threshold: float,
        fingerprint: str,
    ) -> list[Match]:
        """The match of one embedding with each of the given subjects (unknown ones skipped)."""
        ...

    def close(self) -> None:
        """Release the store; idempotent."""
        ...

    def __enter__(self) -> GalleryBackend: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


# --------------------------------------------------------------------------------------------
# Validation shared by every backend
# --------------------------------------------------------------------------------------------


def validate_name(name: object) -> str:
    """Return ``name`` stripped; :class:`InvalidSubjectError` unless a str of 1-200 characters,
    printable (no newline, tab or other control character) and valid Unicode (no lone surrogate,
    which is how Python carries the bytes of a non-UTF-8 command-line argument)."""
    if not isinstance(name, str):
        raise InvalidSubjectError(f"expected a subject name of type str, got {type(name).__name__}")
    stripped = name.strip()
    if not stripped:
        raise InvalidSubjectError("expected a non-empty subject name, got an empty one")
    if len(stripped) > MAX_NAME_LENGTH:
        raise InvalidSubjectError(
            f"expected a subject name of at most {MAX_NAME_LENGTH} characters, got {len(stripped)}"
        )
    bad = next((c for c in stripped if unicodedata.category(c) in ("Cc", "Cs")), None)
    if bad is not None:
        what = "a lone surrogate (not valid UTF-8 text)" if unicodedata.category(bad) == "Cs" else "a control character"
        raise InvalidSubjectError(f"expected a printable subject name, got {ascii(stripped)} with {what}")
    return stripped


def _example_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidArgumentTypeError(f"expected an example id (int), got {type(value).__name__}")
    return int(value)


def validate_fingerprint(fingerprint: object) -> str:
    """Return ``fingerprint``; :class:`EmbedderMismatchError` unless a non-empty str."""
    if not isinstance(fingerprint, str) or not fingerprint.strip():
        raise EmbedderMismatchError(f"expected a non-empty embedder fingerprint, got {fingerprint!r}")
    return fingerprint


def validate_name_or_id(name_or_id: object) -> str | int:
    """``TypeError`` unless ``name_or_id`` is a str or an int (bool excluded)."""
    if isinstance(name_or_id, bool) or not isinstance(name_or_id, (str, numbers.Integral)):
        raise InvalidArgumentTypeError(f"expected a subject name (str) or id (int), got {type(name_or_id).__name__}")
    return name_or_id if isinstance(name_or_id, str) else int(name_or_id)


def as_embeddings(embeddings: npt.ArrayLike, *, allow_batch: bool = True) -> Float32Array:
    """Validate ``embeddings`` and return them as a C-contiguous float32 (n, d) array."""
    try:
        arr = np.asarray(embeddings)
    except (ValueError, TypeError) as err:
        raise InvalidEmbeddingError(f"expected a float array of shape (d,) or (n, d): {err}") from err
    if arr.dtype.kind != "f":
        raise InvalidEmbeddingError(f"expected a float array, got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    elif arr.ndim != 2 or not allow_batch:
        expected = "(d,) or (n, d)" if allow_batch else "(d,)"
        raise InvalidEmbeddingError(f"expected an embedding of shape {expected}, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InvalidEmbeddingError(f"expected at least one non-empty embedding, got shape {arr.shape}")
    finite = np.isfinite(arr).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise InvalidEmbeddingError(
            f"expected finite embeddings, got NaN or inf in row(s) {bad[:10].tolist()}"
        )
    norms = np.linalg.norm(arr.astype(np.float64), axis=1)
    off = np.abs(norms - 1.0) > UNIT_NORM_TOLERANCE
    if off.any():
        bad = np.flatnonzero(off)
        raise InvalidEmbeddingError(
            f"expected unit-norm embeddings (|norm - 1| <= {UNIT_NORM_TOLERANCE:g}), got norm "
            f"{norms[bad[0]]:.6g} in row {int(bad[0])} ({bad.size} row(s) off)"
        )
    return np.ascontiguousarray(arr, dtype=np.float32)


def validate_k_threshold(k: int, threshold: float) -> None:
    """``ValueError`` unless ``k`` is a positive int and ``threshold`` a finite real."""
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise InvalidArgumentError(f"k must be a positive integer, got {k!r}")
    if not isinstance(threshold, numbers.Real) or not math.isfinite(float(threshold)):
        raise InvalidArgumentError(f"threshold must be a finite number, got {threshold!r}")


def _validate_sources(sources: Sequence[str | None] | None, n: int) -> list[str | None]:
    if sources is None:
        return [None] * n
    if isinstance(sources, str) or not all(s is None or isinstance(s, str) for s in sources):
        raise InvalidSubjectError("expected sources as a sequence of str (or None), one per embedding")
    source_list: list[str | None] = list(sources)
    if len(source_list) != n:
        raise InvalidSubjectError(f"expected {n} sources (one per embedding), got {len(source_list)}")
    return source_list


MAX_DIGEST_LENGTH = 128
"""Longest content digest accepted (a hex sha256 has 64 characters)."""


def _validate_digests(digests: Sequence[str | None] | None, n: int) -> list[str | None]:
    if digests is None:
        return [None] * n
    if isinstance(digests, str) or not all(d is None or isinstance(d, str) for d in digests):
        raise InvalidSubjectError("expected content_sha256 as a sequence of str (or None), one per embedding")
    digest_list = list(digests)
    if len(digest_list) != n:
        raise InvalidSubjectError(f"expected {n} content digests (one per embedding), got {len(digest_list)}")
    for d in digest_list:
        if d is not None and not (0 < len(d) <= MAX_DIGEST_LENGTH and d.isascii() and d.isprintable()):
            raise InvalidSubjectError(
                f"expected content digests of 1-{MAX_DIGEST_LENGTH} printable ASCII characters (a hex sha256), "
                f"got {ascii(d)[:80]}"
            )
    return digest_list


def validate_times(times: object, n: int) -> list[str]:
    """``n`` stored times: each an ISO 8601 time with a UTC offset, not in the future, rewritten as the
    gallery writes its own (UTC, milliseconds), so that times compare as text and retention reads them."""
    if isinstance(times, str) or not isinstance(times, Sequence) or not all(isinstance(t, str) for t in times):
        raise InvalidSubjectError("expected created_at as a sequence of str, one per embedding")
    if len(times) != n:
        raise InvalidSubjectError(f"expected {n} times (one per embedding), got {len(times)}")
    present = datetime.now(timezone.utc)
    clean = []
    for text in times:
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            when = None
        if when is None or when.tzinfo is None:
            raise InvalidSubjectError(f"expected an ISO 8601 time with a UTC offset, got {ascii(text)[:80]}")
        when = when.astimezone(timezone.utc)
        if when > present + timedelta(minutes=5):  # a few minutes of clock skew between machines
            raise InvalidSubjectError(f"a stored time may not lie in the future, got {ascii(text)[:80]}")
        clean.append(when.isoformat(timespec="milliseconds"))
    return clean


def _validate_metadata(metadata: dict[str, Any] | None) -> dict[str, Any]:
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidSubjectError(f"expected metadata as a dict, got {type(metadata).__name__}")
    try:
        json.dumps(metadata or {}, sort_keys=True)
    except (TypeError, ValueError) as err:
        raise InvalidSubjectError(f"expected JSON-serialisable metadata: {err}") from err
    return dict(metadata or {})


def template_similarities(stored: Float32Array, query: Float32Array) -> Float32Array:
    """float32 products of ``query`` (d,) with each row of ``stored`` (n, d), one row at a time, so
    the same pair gives the same bits whatever else is in the batch: what a backend that re-scores
    its search hits uses, so that :meth:`BaseGallery.score` and a search agree."""
    return np.einsum("nd,d->n", stored, query).astype(np.float32, copy=False)


def new_content_rows(held: AbstractSet[str], digests: Sequence[str | None]) -> list[int]:
    """Rows to write: those whose digest (if any) neither ``held`` (the subject's stored digests) nor
    an earlier row has."""
    seen = set(held)
    keep: list[int] = []
    for i, digest in enumerate(digests):
        if digest is not None:
            if digest in seen:
                continue
            seen.add(digest)
        keep.append(i)
    return keep


def make_match(subject_id: int, name: str, similarity: float, threshold: float) -> Match:
    """The :class:`Match` of a subject whose best template has cosine ``similarity`` (clipped)."""
    similarity = float(np.clip(similarity, -1.0, 1.0))
    return Match(
        subject_id=int(subject_id),
        name=name,
        similarity=similarity,
        distance=2.0 - 2.0 * similarity,
        same=similarity >= threshold,
        threshold=threshold,
    )


def rank_hits(hits: TemplateHits, k: int, threshold: float) -> list[list[Match]]:
    """Group template hits by subject (best template wins) and keep the ``k`` best subjects per row.

    Ties keep the order the backend returned them in (a stable sort).
    """
    results: list[list[Match]] = []
    for row_sims, row_subjects in zip(hits.sims, hits.subject_ids, strict=True):
        valid = row_subjects >= 0
        row_sims, row_subjects = row_sims[valid], row_subjects[valid]
        order = np.argsort(-row_sims, kind="stable")  # backends need not sort
        row_sims, row_subjects = row_sims[order], row_subjects[order]
        _, first = np.unique(row_subjects, return_index=True)  # first = best per subject
        best = np.sort(first)[:k]
        results.append(
            [
                make_match(int(row_subjects[p]), hits.names[int(row_subjects[p])], row_sims[p], threshold)
                for p in best.tolist()
            ]
        )
    return results


# --------------------------------------------------------------------------------------------
# The shared layer
# --------------------------------------------------------------------------------------------


class BaseGallery(ABC):
    """The public steps of :class:`GalleryBackend`, once; a backend fills the storage hooks.

    Each public method validates its input, takes the gallery's lock (one object may be shared
    between threads), calls a hook and logs. A backend implements:

    - ``_stored_embedder()``: the stored fingerprint and dimension;
    - ``_write_templates(...)``: one write transaction that calls :meth:`_check_embedder` on the
      stored fingerprint and dimension before it writes, and leaves out rows whose content digest
      the subject already holds;
    - ``_write_rename(...)``, ``_write_remove(...)``;
    - ``_search_templates(queries, k)``: template hits that contain the best template of each
      of the ``k`` best subjects of every query;
    - the reads ``subjects``, ``get``, ``templates``, ``_read_templates``, ``content_hashes``,
      ``__len__``, ``n_templates``, ``path`` and ``close``.

    ``_score_subjects`` has a default that computes similarities from the stored templates.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()

    # ---------------------------------------------------------------- hooks

    @property
    @abstractmethod
    def path(self) -> str:
        """Where the gallery lives."""

    @abstractmethod
    def _stored_embedder(self) -> tuple[str | None, int | None]:
        """The gallery's fingerprint and dimension; ``(None, None)`` when it holds no template."""

    @abstractmethod
    def _write_templates(
        self,
        subject: str | int,
        vectors: Float32Array,
        fingerprint: str,
        sources: list[str | None],
        metadata: dict[str, Any],
        *,
        create: bool,
        digests: list[str | None],
        times: list[str] | None = None,
    ) -> tuple[Subject, bool, tuple[int, ...]]:
        """Store ``vectors`` for ``subject`` in one transaction; return the subject, whether it is
        new, and the rows left out. ``times``: each row's stored time (default: now); a subject it
        creates is stored as created at the earliest of them.

        With ``create`` ``subject`` is a validated name, created when absent (``metadata`` stored,
        or merged into an existing subject's); without it ``subject`` must exist
        (:class:`SubjectNotFoundError`). A row whose digest (not None) the subject already holds,
        or an earlier row of the call has, is left out: a photo's content is stored once per subject.
        """

    @abstractmethod
    def _write_rename(self, name_or_id: str | int, new_name: str) -> tuple[Subject, str]:
        """Rename in one transaction; return the renamed subject and its old name."""

    @abstractmethod
    def _write_remove(self, name_or_id: str | int) -> tuple[int, str, int]:
        """Delete a subject and its templates; return its id, name and number of templates.

        When the last subject goes, the gallery forgets its fingerprint and dimension.
        """

    @abstractmethod
    def _write_create(self, name: str, metadata: dict[str, Any]) -> Subject:
        """Create a subject without templates in one transaction (:class:`SubjectExistsError` if taken)."""

    @abstractmethod
    def _write_merge(self, source: str | int, target: str | int) -> tuple[Subject, str, int]:
        """Move ``source``'s templates to ``target`` and delete ``source``, in one transaction;
        return the target, the source's name and the number of templates moved."""

    @abstractmethod
    def _read_examples(
        self, subject: str | int | None, offset: int, limit: int | None
    ) -> tuple[list[Example], int]:
        """A page of examples (of ``subject``, or of all) by id, and how many there are in all."""

    @abstractmethod
    def _read_example(self, example_id: int) -> tuple[Example, Float32Array]:
        """One example and its vector; :class:`ExampleNotFoundError` if none."""

    @abstractmethod
    def _write_remove_examples(self, example_ids: list[int]) -> list[Example]:
        """Delete these templates in one transaction (any unknown id: nothing deleted, raise)."""

    @abstractmethod
    def _search_templates(self, queries: Float32Array, k: int) -> TemplateHits:
        """Template hits holding the best template of each of the ``k`` best subjects per query row.

        Called with the lock held, after the fingerprint and dimension were checked.
        """

    @abstractmethod
    def _read_templates(self, subject_ids: Sequence[int] | None) -> TemplateBatch:
        """Templates of ``subject_ids`` (existing ids, in that order) or of all subjects by name."""

    @abstractmethod
    def _resolve(self, names_or_ids: Sequence[str | int], *, missing_ok: bool) -> list[int]:
        """Ids of the named subjects, in order, duplicates dropped; unknown ones skipped or raised."""

    @abstractmethod
    def subjects(self) -> list[Subject]:
        """All subjects, ordered by name."""

    @abstractmethod
    def get(self, name_or_id: str | int) -> Subject:
        """The subject with this name (str) or id (int)."""

    @abstractmethod
    def templates(self, name_or_id: str | int) -> Float32Array:
        """The templates of one subject, shape (n, d) float32, in enrollment order."""

    @abstractmethod
    def content_hashes(self, name_or_id: str | int) -> frozenset[str]:
        """The content digests of one subject's stored templates (those enrolled with one).

        Raises
        ------
        SubjectNotFoundError
            If there is no such subject.
        """

    @property
    @abstractmethod
    def n_templates(self) -> int:
        """Total number of stored templates."""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def close(self) -> None:
        """Release the store; idempotent."""

    def _score_subjects(self, query: Float32Array, subject_ids: list[int]) -> list[tuple[int, str, float]]:
        """``(id, name, best similarity)`` of each subject, from its stored templates (one read)."""
        batch = self._read_templates(subject_ids)
        if len(batch) == 0:
            return []
        sims = template_similarities(batch.embeddings, query[0])
        best: dict[int, tuple[str, float]] = {}
        for subject_id, name, sim in zip(batch.subject_ids.tolist(), batch.names, sims.tolist(), strict=True):
            if subject_id not in best or sim > best[subject_id][1]:
                best[subject_id] = (name, sim)
        return [(i, best[i][0], best[i][1]) for i in subject_ids if i in best]

    # ---------------------------------------------------------------- shared checks

    def _check_embedder(
        self, stored_fingerprint: str | None, stored_dim: int | None, fingerprint: str, dim: int
    ) -> None:
        """Refuse embeddings of another model (fingerprint) or dimension than the stored ones."""
        if stored_fingerprint is not None and fingerprint != stored_fingerprint:
            raise EmbedderMismatchError(
                f"gallery {self.path} holds templates of embedder {stored_fingerprint!r}, "
                f"got embeddings of embedder {fingerprint!r}; templates of different models "
                "are never compared"
            )
        if stored_dim is not None and dim != stored_dim:
            raise EmbedderMismatchError(
                f"gallery {self.path} holds {stored_dim}-d templates of embedder "
                f"{stored_fingerprint!r}, got {dim}-d embeddings labelled {fingerprint!r}"
            )

    # ---------------------------------------------------------------- reads

    @property
    def fingerprint(self) -> str | None:
        """Fingerprint of the embedder whose templates this gallery holds; None when empty."""
        with self._lock:
            return self._stored_embedder()[0]

    @property
    def dim(self) -> int | None:
        """Embedding dimension of the stored templates; None when empty."""
        with self._lock:
            return self._stored_embedder()[1]

    def __contains__(self, name_or_id: object) -> bool:
        if isinstance(name_or_id, bool) or not isinstance(name_or_id, (str, numbers.Integral)):
            return False
        try:
            self.get(name_or_id if isinstance(name_or_id, str) else int(name_or_id))
        except SubjectNotFoundError:
            return False
        return True

    def __iter__(self) -> Iterator[Subject]:
        """The subjects, ordered by name (a snapshot taken when iteration starts)."""
        return iter(self.subjects())

    def templates_many(
        self, names_or_ids: Sequence[str | int] | None = None, *, missing_ok: bool = False
    ) -> TemplateBatch:
        """Templates of many subjects in one read.

        Parameters
        ----------
        names_or_ids : sequence of str or int, optional
            Subjects by name or id. Default: every subject, ordered by name (as :meth:`subjects`).
            Given, the rows follow this order (a subject named twice comes once).
        missing_ok : bool, default False
            Skip unknown subjects instead of raising :class:`SubjectNotFoundError`.

        Returns
        -------
        TemplateBatch
            Per row: subject id, subject name and template; each subject's templates in
            enrollment order, as :meth:`templates` returns them.

        Examples
        --------
        >>> import numpy as np
        >>> from faceprint.gallery import Gallery
        >>> with Gallery(":memory:") as g:
        ...     _ = g.enroll("bob", np.eye(3)[:2], fingerprint="demo")
        ...     _ = g.enroll("ann", np.eye(3)[2], fingerprint="demo")
        ...     g.templates_many().names
        ('ann', 'bob', 'bob')
        """
        if names_or_ids is not None and isinstance(names_or_ids, (str, bytes)):
            raise InvalidArgumentTypeError("expected a sequence of subject names or ids, got a single str")
        with self._lock:
            if names_or_ids is None:
                return self._read_templates(None)
            ids = self._resolve([validate_name_or_id(x) for x in names_or_ids], missing_ok=missing_ok)
            return self._read_templates(ids)

    # ---------------------------------------------------------------- writes

    def enroll(
        self,
        name: str,
        embeddings: npt.ArrayLike,
        *,
        fingerprint: str,
        sources: Sequence[str | None] | None = None,
        metadata: dict[str, Any] | None = None,
        content_sha256: Sequence[str | None] | None = None,
        created_at: Sequence[str] | None = None,
    ) -> Subject:
        """Store templates for a subject, creating the subject if it is new.

        Everything happens in one transaction: on any error the gallery is left as it was.
        A photo's content is stored once per subject: a row whose ``content_sha256`` the subject
        already holds (or an earlier row has) is left out, in the same transaction, and logged.

        Parameters
        ----------
        name : str
            Subject name; surrounding whitespace is stripped; 1 to 200 characters.
        embeddings : array_like, shape (d,) or (n, d)
            Finite float, L2-normalised rows (``|norm - 1| <= 1e-3``); stored as float32.
        fingerprint : str
            Fingerprint of the embedder that produced ``embeddings``. The first enrollment
            fixes the gallery's fingerprint and dimension.
        sources : sequence of str, optional
            One provenance string per embedding row (e.g. an image path).
        metadata : dict, optional
            JSON-serialisable data. Stored on creation; for an existing subject its keys
            are merged into the stored metadata.
        content_sha256 : sequence of str or None, optional
            One content digest per embedding row (what
            :attr:`faceprint.enrollment.PreparedEnrollment.content_sha256` holds: the hex sha256 of
            the photo's file bytes); None for a row without one. Stored with the template.
        created_at : sequence of str, optional
            One ISO 8601 time with a UTC offset per row, when it was first enrolled (what
            :func:`faceprint.gallery.transfer.import_gallery` carries over, so that retention counts
            from the first enrollment, not from the copy); none may lie in the future. Default: now.

        Returns
        -------
        Subject
            The subject after the enrollment.

        Raises
        ------
        InvalidSubjectError
            Bad name, sources or metadata.
        InvalidEmbeddingError
            Embeddings not finite float, empty, of the wrong shape or not unit-norm.
        EmbedderMismatchError
            ``fingerprint`` or the dimension differs from the gallery's.

        Examples
        --------
        >>> import numpy as np
        >>> from faceprint.gallery import Gallery
        >>> with Gallery(":memory:") as g:
        ...     _ = g.enroll("ann", np.eye(3)[0], fingerprint="demo", content_sha256=["ab12"])
        ...     g.enroll("ann", np.eye(3)[:2], fingerprint="demo", content_sha256=["ab12", "cd34"]).n_templates
        2
        """
        clean_name = validate_name(name)
        return self._store(
            clean_name, embeddings, fingerprint, sources, metadata, content_sha256, create=True, times=created_at
        )

    def add(
        self,
        name_or_id: str | int,
        embeddings: npt.ArrayLike,
        *,
        fingerprint: str,
        sources: Sequence[str] | None = None,
        content_sha256: Sequence[str | None] | None = None,
    ) -> Subject:
        """Append templates to an existing subject (as :meth:`enroll`, but never creates one).

        Raises
        ------
        SubjectNotFoundError
            No such subject.
        InvalidSubjectError, InvalidEmbeddingError, EmbedderMismatchError
            As :meth:`enroll`.
        """
        subject = validate_name_or_id(name_or_id)
        return self._store(subject, embeddings, fingerprint, sources, None, content_sha256, create=False)

    def _store(
        self,
        subject: str | int,
        embeddings: npt.ArrayLike,
        fingerprint: str,
        sources: Sequence[str | None] | None,
        metadata: dict[str, Any] | None,
        digests: Sequence[str | None] | None,
        *,
        create: bool,
        times: Sequence[str] | None = None,
    ) -> Subject:
        vectors = as_embeddings(embeddings)
        fingerprint = validate_fingerprint(fingerprint)
        n = vectors.shape[0]
        source_list = _validate_sources(sources, n)
        digest_list = _validate_digests(digests, n)
        clean_metadata = _validate_metadata(metadata)
        time_list = None if times is None else validate_times(times, n)
        with self._lock:
            stored, created, skipped = self._write_templates(
                subject, vectors, fingerprint, source_list, clean_metadata, create=create, digests=digest_list,
                times=time_list,
            )
        logger.info(
            "%s subject %r (id %d): +%d template(s), %d in total",
            "enrolled" if created else "extended",
            stored.name,
            stored.id,
            n - len(skipped),
            stored.n_templates,
        )
        for i in skipped:
            logger.info(
                "skipped %s for subject %r: the same content (sha256 %s) as a template it holds",
                source_list[i] or f"row {i}",
                stored.name,
                (digest_list[i] or "")[:12],
            )
        return stored

    def rename(self, name_or_id: str | int, new_name: str) -> Subject:
        """Give a subject a new name.

        Raises
        ------
        SubjectNotFoundError
            No such subject.
        GalleryError
            ``new_name`` belongs to another subject.
        InvalidSubjectError
            ``new_name`` is empty or too long.
        """
        clean_name = validate_name(new_name)
        with self._lock:
            subject, old_name = self._write_rename(name_or_id, clean_name)
        logger.info("renamed subject id %d from %r to %r", subject.id, old_name, clean_name)
        return subject

    def remove(self, name_or_id: str | int) -> int:
        """Delete a subject and all its templates; return the number of templates erased.

        When the last subject is removed, the gallery forgets its embedder fingerprint and
        dimension, so the next enrollment may use another model.

        Raises
        ------
        SubjectNotFoundError
            No such subject.
        """
        with self._lock:
            subject_id, name, n = self._write_remove(name_or_id)
        logger.info("removed subject %r (id %d) and %d template(s)", name, subject_id, n)
        return n

    def create(self, name: str, *, metadata: dict[str, Any] | None = None) -> Subject:
        """Create a subject that has no templates yet (add them with :meth:`add` or :meth:`enroll`).

        Raises
        ------
        SubjectExistsError
            Another subject has this name.
        InvalidSubjectError
            Bad name or metadata.

        Examples
        --------
        >>> from faceprint.gallery import Gallery
        >>> with Gallery(":memory:") as g:
        ...     g.create("ann").n_templates
        0
        """
        clean_name = validate_name(name)
        clean_metadata = _validate_metadata(metadata)
        with self._lock:
            subject = self._write_create(clean_name, clean_metadata)
        logger.info("created subject %r (id %d) without templates", subject.name, subject.id)
        return subject

    def merge(self, name_or_id: str | int, into: str | int) -> Subject:
        """Move every template of subject ``name_or_id`` to subject ``into`` and delete the first.

        One transaction; ``into`` keeps its name, id and metadata. What a CompreFace client expects
        of a rename onto a name that exists.

        Raises
        ------
        SubjectNotFoundError
            Either subject does not exist.
        InvalidArgumentError
            Both name the same subject.

        Examples
        --------
        >>> import numpy as np
        >>> from faceprint.gallery import Gallery
        >>> with Gallery(":memory:") as g:
        ...     _ = g.enroll("ann", np.eye(3)[0], fingerprint="demo")
        ...     _ = g.enroll("anne", np.eye(3)[1], fingerprint="demo")
        ...     g.merge("anne", "ann").n_templates, "anne" in g
        (2, False)
        """
        source, target = validate_name_or_id(name_or_id), validate_name_or_id(into)
        with self._lock:
            subject, old_name, moved = self._write_merge(source, target)
        logger.info("merged subject %r into %r (id %d): %d template(s) moved", old_name, subject.name, subject.id,
                    moved)
        return subject

    def examples(
        self, name_or_id: str | int | None = None, *, offset: int = 0, limit: int | None = None
    ) -> list[Example]:
        """The stored templates of one subject (or of every subject), oldest first, without vectors.

        Parameters
        ----------
        name_or_id : str or int, optional
            The subject; default: every subject.
        offset, limit : int
            Paging: skip ``offset`` templates, return at most ``limit`` (default: all).

        Raises
        ------
        SubjectNotFoundError
            No such subject.
        InvalidArgumentError
            A negative ``offset`` or ``limit``.
        """
        return self._examples_page(name_or_id, offset, limit)[0]

    def count_examples(self, name_or_id: str | int | None = None) -> int:
        """The number of templates of one subject, or of the gallery (:class:`SubjectNotFoundError` if unknown)."""
        return self._examples_page(name_or_id, 0, 0)[1]

    def _examples_page(self, name_or_id: str | int | None, offset: int, limit: int | None) -> tuple[list[Example], int]:
        subject = None if name_or_id is None else validate_name_or_id(name_or_id)
        for what, value in (("offset", offset), ("limit", limit)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0):
                raise InvalidArgumentError(f"{what} must be a non-negative integer, got {value!r}")
        with self._lock:
            return self._read_examples(subject, int(offset), None if limit is None else int(limit))

    def example(self, example_id: int) -> tuple[Example, Float32Array]:
        """One stored template: its :class:`Example` record and its vector, shape (d,) float32.

        Raises
        ------
        ExampleNotFoundError
            No template with this id.
        """
        with self._lock:
            return self._read_example(_example_id(example_id))

    def remove_examples(self, example_ids: Sequence[int]) -> list[Example]:
        """Delete templates by id, all or none; their subjects stay (possibly with no template left).

        Returns the deleted examples, in the order given (an id given twice counts once).

        Raises
        ------
        ExampleNotFoundError
            An id names no template; nothing is deleted.
        """
        if isinstance(example_ids, (str, bytes)) or not isinstance(example_ids, Sequence):
            raise InvalidArgumentTypeError("expected a sequence of example ids (int)")
        ids = list(dict.fromkeys(_example_id(i) for i in example_ids))
        if not ids:
            return []
        with self._lock:
            removed = self._write_remove_examples(ids)
        logger.info("removed %d example(s)", len(removed))
        return removed

    # ---------------------------------------------------------------- search

    def search(
        self,
        embedding: npt.ArrayLike,
        *,
        k: int = 5,
        threshold: float,
        fingerprint: str,
    ) -> list[Match]:
        """Find the ``k`` subjects most similar to one embedding.

        A subject's similarity is the maximum cosine similarity over its templates.

        Parameters
        ----------
        embedding : array_like, shape (d,)
            L2-normalised query embedding.
        k : int, default 5
            Number of subjects to return (fewer when the gallery holds fewer).
        threshold : float
            Cosine-similarity threshold; ``Match.same`` is ``similarity >= threshold``.
        fingerprint : str
            Fingerprint of the embedder that produced ``embedding``.

        Returns
        -------
        list of Match
            Sorted by similarity, highest first; ``distance = 2 - 2 * similarity``. Empty when
            the gallery is empty.

        Raises
        ------
        InvalidEmbeddingError
            ``embedding`` is not a finite, unit-norm float vector.
        EmbedderMismatchError
            ``fingerprint`` or the dimension differs from the gallery's.
        """
        query = as_embeddings(embedding, allow_batch=False)
        return self._search(query, k=k, threshold=threshold, fingerprint=fingerprint)[0]

    def search_many(
        self,
        embeddings: npt.ArrayLike,
        *,
        k: int = 5,
        threshold: float,
        fingerprint: str,
    ) -> list[list[Match]]:
        """:meth:`search` for each row of ``embeddings`` (m, d); one list per row, in order.

        All rows go through the index in one batch, so similarities may differ from a
        single-row :meth:`search` in the last float32 bit.
        """
        arr = np.asarray(embeddings)
        if arr.ndim == 2 and arr.shape[0] == 0:
            validate_k_threshold(k, threshold)
            return []
        if arr.ndim != 2:
            raise InvalidEmbeddingError(f"expected embeddings of shape (m, d), got shape {arr.shape}")
        queries = as_embeddings(arr)
        return self._search(queries, k=k, threshold=threshold, fingerprint=fingerprint)

    def _search(
        self, queries: Float32Array, *, k: int, threshold: float, fingerprint: str
    ) -> list[list[Match]]:
        validate_k_threshold(k, threshold)
        fingerprint = validate_fingerprint(fingerprint)
        threshold = float(threshold)
        with self._lock:
            stored_fingerprint, stored_dim = self._stored_embedder()
            if stored_fingerprint is None:
                return [[] for _ in range(queries.shape[0])]
            self._check_embedder(stored_fingerprint, stored_dim, fingerprint, queries.shape[1])
            hits = self._search_templates(queries, int(k))
        return rank_hits(hits, int(k), threshold)

    def score(
        self,
        embedding: npt.ArrayLike,
        names_or_ids: Sequence[str | int],
        *,
        threshold: float,
        fingerprint: str,
    ) -> list[Match]:
        """The match of one embedding with each given subject, whatever its rank.

        Complements a bounded :meth:`search`: e.g. a classifier's candidates that are not among
        the ``k`` best subjects. Each similarity is the one a search over the whole gallery
        would report for that subject: bit for bit where the backend's index scores given ids
        (:class:`~faceprint.gallery.index.ScoringIndex`, e.g. ``"exact"``); otherwise it is
        computed from the stored templates and may differ in the last float32 bit.

        Parameters
        ----------
        embedding : array_like, shape (d,)
            L2-normalised query embedding.
        names_or_ids : sequence of str or int
            Subjects to score; unknown ones are skipped.
        threshold : float
            Cosine-similarity threshold; ``Match.same`` is ``similarity >= threshold``.
        fingerprint : str
            Fingerprint of the embedder that produced ``embedding``.

        Returns
        -------
        list of Match
            One per known subject, in the order given (a subject named twice comes once).

        Raises
        ------
        InvalidEmbeddingError, EmbedderMismatchError
            As :meth:`search`.

        Examples
        --------
        >>> import numpy as np
        >>> from faceprint.gallery import Gallery
        >>> with Gallery(":memory:") as g:
        ...     _ = g.enroll("ann", np.eye(3)[0], fingerprint="demo")
        ...     _ = g.enroll("bob", np.eye(3)[1], fingerprint="demo")
        ...     matches = g.score(np.eye(3)[1], ["bob", "zoe"], threshold=0.5, fingerprint="demo")
        >>> [(m.name, m.similarity) for m in matches]
        [('bob', 1.0)]
        """
        query = as_embeddings(embedding, allow_batch=False)
        validate_k_threshold(1, threshold)
        fingerprint = validate_fingerprint(fingerprint)
        threshold = float(threshold)
        if isinstance(names_or_ids, (str, bytes)):
            raise InvalidArgumentTypeError("expected a sequence of subject names or ids, got a single str")
        wanted = [validate_name_or_id(x) for x in names_or_ids]
        with self._lock:
            stored_fingerprint, stored_dim = self._stored_embedder()
            if stored_fingerprint is None or not wanted:
                return []
            self._check_embedder(stored_fingerprint, stored_dim, fingerprint, query.shape[1])
            ids = self._resolve(wanted, missing_ok=True)
            scored = self._score_subjects(query, ids) if ids else []
        return [make_match(i, name, sim, threshold) for i, name, sim in scored]

    # ---------------------------------------------------------------- context manager

    def __enter__(self: _G) -> _G:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
