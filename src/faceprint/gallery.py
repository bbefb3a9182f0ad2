"""Persistent face gallery: subjects and their templates in SQLite, vectors in an index.

The SQLite store is the system of record. The vector index is an in-memory acceleration
structure built lazily from the ``templates`` table on the first search, kept in sync by
:meth:`Gallery.enroll`, :meth:`Gallery.remove` and :meth:`Gallery.rename`, and can always be
rebuilt with :meth:`Gallery.rebuild_index`.

Every template records the fingerprint of the embedder that produced it; the first enrollment
fixes the gallery's fingerprint and dimension and the gallery refuses to mix models after that.
"""

from __future__ import annotations

import json
import logging
import math
import numbers
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from types import TracebackType
from typing import Any, Protocol, TypeVar, cast, runtime_checkable

import numpy as np
import numpy.typing as npt

from faceprint.errors import (
    EmbedderMismatchError,
    GalleryError,
    InvalidEmbeddingError,
    InvalidSubjectError,
    SubjectNotFoundError,
)
from faceprint.types import Match

from .errors import InvalidArgumentError, InvalidArgumentTypeError, UnknownBackendError

__all__ = [
    "VectorIndex",
    "ExactIndex",
    "INDEXES",
    "register_index",
    "make_index",
    "Subject",
    "Gallery",
    "SCHEMA_VERSION",
    "MAX_NAME_LENGTH",
]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
"""Version of the on-disk schema this module writes and reads."""

MAX_NAME_LENGTH = 200
"""Longest subject name accepted, in characters (after stripping whitespace)."""

UNIT_NORM_TOLERANCE = 1e-3
"""Largest accepted ``abs(norm - 1)`` of an embedding row."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT
);
CREATE TABLE IF NOT EXISTS subjects (
    id INTEGER PRIMARY KEY,
    name TEXT UNIQUE NOT NULL,
    created_at TEXT,
    metadata TEXT
);
CREATE TABLE IF NOT EXISTS templates (
    id INTEGER PRIMARY KEY,
    subject_id INTEGER NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
    embedding BLOB NOT NULL,
    fingerprint TEXT NOT NULL,
    source TEXT,
    created_at TEXT
);
CREATE INDEX IF NOT EXISTS templates_subject_id ON templates(subject_id);
"""

Float32Array = npt.NDArray[np.float32]
Int64Array = npt.NDArray[np.int64]


# --------------------------------------------------------------------------------------------
# Vector indexes
# --------------------------------------------------------------------------------------------


@runtime_checkable
class VectorIndex(Protocol):
    """An inner-product index over unit vectors, keyed by int64 ids.

    Because stored vectors are L2-normalised, the inner product is the cosine similarity.
    """

    dim: int

    def add(self, ids: Int64Array, vectors: Float32Array) -> None:
        """Add ``vectors`` (n, dim) float32 under ``ids`` (n,) int64; ids must be new."""
        ...

    def remove(self, ids: Int64Array) -> None:
        """Remove the vectors stored under ``ids``; unknown ids are ignored."""
        ...

    def search(self, queries: Float32Array, k: int) -> tuple[Float32Array, Int64Array]:
        """Return ``(sims, ids)``, both (m, k), each row sorted by similarity descending.

        Rows are padded with ``-inf`` similarities and ``-1`` ids when fewer than ``k``
        vectors are stored.
        """
        ...

    def __len__(self) -> int: ...


INDEXES: dict[str, Callable[[int], VectorIndex]] = {}
"""Registered index backends: name -> factory taking ``dim``."""


_IndexClass = TypeVar("_IndexClass", bound=type)


def register_index(name: str) -> Callable[[_IndexClass], _IndexClass]:
    """Class decorator registering a :class:`VectorIndex` backend under ``name``."""

    def decorator(cls: _IndexClass) -> _IndexClass:
        if name in INDEXES:
            raise ValueError(f"an index backend named {name!r} is already registered")
        INDEXES[name] = cls
        return cls

    return decorator


def make_index(name: str, dim: int) -> VectorIndex:
    """Build the index backend registered as ``name`` for vectors of dimension ``dim``.

    Raises
    ------
    ValueError
        If no backend of that name is registered; the message lists the valid names.

    Examples
    --------
    >>> index = make_index("exact", 128)
    >>> len(index)
    0
    """
    try:
        factory = INDEXES[name]
    except KeyError:
        raise UnknownBackendError(f"unknown index {name!r}; valid names: {', '.join(sorted(INDEXES))}") from None
    return factory(dim)


@register_index("exact")
class ExactIndex:
    """Brute-force inner-product index held in a numpy matrix.

    Exact and dependency-free; a search costs one ``(m, dim) @ (dim, n)`` product, so it suits
    galleries up to a few hundred thousand templates.

    Parameters
    ----------
    dim : int
        Dimension of the stored vectors.

    Examples
    --------
    >>> import numpy as np
    >>> index = ExactIndex(2)
    >>> index.add(np.array([7, 9]), np.array([[1, 0], [0, 1]], dtype=np.float32))
    >>> sims, ids = index.search(np.array([[1, 0]], dtype=np.float32), k=3)
    >>> ids.tolist()
    [[7, 9, -1]]
    """

    _BLOCK_ELEMENTS = 1 << 24  # bound the (m, n) similarity block to 64 MiB of float32

    def __init__(self, dim: int) -> None:
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or dim < 1:
            raise InvalidArgumentError(f"dim must be a positive integer, got {dim!r}")
        self.dim: int = int(dim)
        self._n: int = 0
        self._ids: Int64Array = np.empty(0, dtype=np.int64)
        self._vectors: Float32Array = np.empty((0, self.dim), dtype=np.float32)

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return f"ExactIndex(dim={self.dim}, n={self._n})"

    def add(self, ids: Int64Array, vectors: Float32Array) -> None:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape != (ids.shape[0], self.dim):
            raise InvalidArgumentError(f"expected vectors of shape ({ids.shape[0]}, {self.dim}), got {vectors.shape}")
        if ids.size == 0:
            return
        if np.unique(ids).size != ids.size or np.isin(ids, self._ids[: self._n]).any():
            raise InvalidArgumentError("ids must be unique and not already in the index")
        needed = self._n + ids.size
        if needed > self._ids.shape[0]:
            capacity = max(needed, 2 * self._ids.shape[0], 16)
            new_ids = np.empty(capacity, dtype=np.int64)
            new_vectors = np.empty((capacity, self.dim), dtype=np.float32)
            new_ids[: self._n] = self._ids[: self._n]
            new_vectors[: self._n] = self._vectors[: self._n]
            self._ids, self._vectors = new_ids, new_vectors
        self._ids[self._n : needed] = ids
        self._vectors[self._n : needed] = vectors
        self._n = needed

    def remove(self, ids: Int64Array) -> None:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if ids.size == 0 or self._n == 0:
            return
        keep = ~np.isin(self._ids[: self._n], ids)
        kept = int(keep.sum())
        if kept == self._n:
            return
        self._ids[:kept] = self._ids[: self._n][keep]
        self._vectors[:kept] = self._vectors[: self._n][keep]
        self._n = kept

    def search(self, queries: Float32Array, k: int) -> tuple[Float32Array, Int64Array]:
        queries = np.asarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise InvalidArgumentError(f"expected queries of shape (m, {self.dim}), got {queries.shape}")
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
            raise InvalidArgumentError(f"k must be a positive integer, got {k!r}")
        m, n = queries.shape[0], self._n
        out_sims = np.full((m, k), -np.inf, dtype=np.float32)
        out_ids = np.full((m, k), -1, dtype=np.int64)
        if m == 0 or n == 0:
            return out_sims, out_ids
        kk = min(int(k), n)
        vectors, ids = self._vectors[:n], self._ids[:n]
        block = max(1, self._BLOCK_ELEMENTS // n)
        for start in range(0, m, block):
            sims = queries[start : start + block] @ vectors.T  # (b, n)
            if kk < n:
                top = np.argpartition(sims, n - kk, axis=1)[:, n - kk :]
            else:
                top = np.broadcast_to(np.arange(n), sims.shape)
            top_sims = np.take_along_axis(sims, top, axis=1)
            top_ids = ids[top]
            # Similarity descending, ties broken by id ascending (deterministic).
            order = np.lexsort((top_ids, -top_sims), axis=-1)
            stop = start + sims.shape[0]
            out_sims[start:stop, :kk] = np.take_along_axis(top_sims, order, axis=1)
            out_ids[start:stop, :kk] = np.take_along_axis(top_ids, order, axis=1)
        return out_sims, out_ids


# --------------------------------------------------------------------------------------------
# Gallery
# --------------------------------------------------------------------------------------------


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


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _validate_name(name: object) -> str:
    if not isinstance(name, str):
        raise InvalidSubjectError(f"expected a subject name of type str, got {type(name).__name__}")
    stripped = name.strip()
    if not stripped:
        raise InvalidSubjectError("expected a non-empty subject name, got an empty one")
    if len(stripped) > MAX_NAME_LENGTH:
        raise InvalidSubjectError(
            f"expected a subject name of at most {MAX_NAME_LENGTH} characters, got {len(stripped)}"
        )
    return stripped


def _validate_fingerprint(fingerprint: object) -> str:
    if not isinstance(fingerprint, str) or not fingerprint.strip():
        raise EmbedderMismatchError(f"expected a non-empty embedder fingerprint, got {fingerprint!r}")
    return fingerprint


def _as_embeddings(embeddings: npt.ArrayLike, *, allow_batch: bool = True) -> Float32Array:
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


def _validate_k_threshold(k: int, threshold: float) -> None:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise InvalidArgumentError(f"k must be a positive integer, got {k!r}")
    if not isinstance(threshold, numbers.Real) or not math.isfinite(float(threshold)):
        raise InvalidArgumentError(f"threshold must be a finite number, got {threshold!r}")


class Gallery:
    """A persistent gallery of enrolled subjects, searchable by face embedding.

    Subjects and their templates (L2-normalised float32 embeddings) live in a SQLite database
    (WAL journal, foreign keys on). Vectors are searched through an in-memory
    :class:`VectorIndex` built from the database on first search. One ``Gallery`` object may be
    shared between threads: every operation holds an internal lock.

    Parameters
    ----------
    path : str or os.PathLike
        Database file (created if missing), or ``":memory:"`` for a throw-away gallery.
    index : str, default "exact"
        Name of the index backend in :data:`INDEXES`.

    Raises
    ------
    GalleryError
        If ``path`` is not a SQLite database, is a SQLite database of something else, or was
        written by a newer faceprint (schema version too new).
    ValueError
        If ``index`` names no registered backend.

    Notes
    -----
    The index is kept in sync with writes made through *this* object. After another process
    writes to the same file, call :meth:`rebuild_index` to see its changes in searches.

    Examples
    --------
    >>> import numpy as np
    >>> e = np.eye(4, dtype=np.float32)
    >>> with Gallery(":memory:") as gallery:
    ...     alice = gallery.enroll("alice", e[:2], fingerprint="demo-v1")
    ...     _ = gallery.enroll("bob", e[2], fingerprint="demo-v1")
    ...     [m.name for m in gallery.search(e[1], k=2, threshold=0.5, fingerprint="demo-v1")]
    ['alice', 'bob']
    """

    def __init__(self, path: str | os.PathLike[str], *, index: str = "exact") -> None:
        if index not in INDEXES:
            raise UnknownBackendError(f"unknown index {index!r}; valid names: {', '.join(sorted(INDEXES))}")
        self._path = os.fspath(path)
        self._index_name = index
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        # In-memory search state; valid only while self._index_ready.
        self._index_ready = False
        self._index: VectorIndex | None = None
        self._template_subject: dict[int, int] = {}
        self._subject_count: dict[int, int] = {}
        self._subject_name: dict[int, str] = {}
        self._max_templates = 0
        self._lookup: tuple[Int64Array, Int64Array] | None = None
        self._conn = self._open()

    # ---------------------------------------------------------------- connection & schema

    def _open(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as err:
            raise GalleryError(f"{self._path} is not a faceprint gallery: {err}") from err
        try:
            conn.execute("PRAGMA foreign_keys=ON")
            self._check_or_create_schema(conn)
        except sqlite3.Error as err:
            conn.close()
            raise GalleryError(f"{self._path} is not a faceprint gallery: {err}") from err
        except BaseException:
            conn.close()
            raise
        logger.debug("opened gallery %s", self._path)
        return conn

    def _check_or_create_schema(self, conn: sqlite3.Connection) -> None:
        # Reading sqlite_master first detects a non-SQLite file before we change anything.
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if tables and "meta" not in tables:
            raise GalleryError(
                f"{self._path} is not a faceprint gallery: it holds tables {sorted(tables)} "
                "but no 'meta' table"
            )
        if "meta" in tables:
            row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            try:
                version = int(row[0]) if row is not None else None
            except (TypeError, ValueError):
                version = None
            if version is None:
                raise GalleryError(f"{self._path} is not a faceprint gallery: no valid schema_version")
            if version > SCHEMA_VERSION:
                raise GalleryError(
                    f"{self._path} has gallery schema version {version}, newer than the version "
                    f"{SCHEMA_VERSION} this faceprint supports; upgrade faceprint to open it"
                )
            missing = {"subjects", "templates"} - tables
            if missing:
                raise GalleryError(
                    f"{self._path} is not a faceprint gallery: missing table(s) {sorted(missing)}"
                )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        if not tables:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(
                    "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            logger.info("created gallery %s (schema version %d)", self._path, SCHEMA_VERSION)

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise GalleryError(f"gallery {self._path} is closed")
        return self._conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: everything inside commits together or not at all."""
        conn = self._db
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as err:
            raise GalleryError(f"gallery {self._path}: cannot start a transaction: {err}") from err
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise GalleryError(f"gallery {self._path}: {exc}") from exc
            raise

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        try:
            yield self._db
        except sqlite3.Error as err:
            raise GalleryError(f"gallery {self._path}: {err}") from err

    def _meta(self, conn: sqlite3.Connection) -> tuple[str | None, int | None]:
        rows = dict(conn.execute("SELECT key, value FROM meta WHERE key IN ('fingerprint', 'dim')"))
        fingerprint = rows.get("fingerprint")
        dim = rows.get("dim")
        return fingerprint, (int(dim) if dim is not None else None)

    # ---------------------------------------------------------------- properties & dunders

    @property
    def path(self) -> str:
        """The database path as given (``":memory:"`` for an in-memory gallery)."""
        return self._path

    @property
    def fingerprint(self) -> str | None:
        """Fingerprint of the embedder whose templates this gallery holds; None when empty."""
        with self._lock, self._reading() as conn:
            return self._meta(conn)[0]

    @property
    def dim(self) -> int | None:
        """Embedding dimension of the stored templates; None when empty."""
        with self._lock, self._reading() as conn:
            return self._meta(conn)[1]

    @property
    def n_templates(self) -> int:
        """Total number of stored templates."""
        with self._lock, self._reading() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM templates").fetchone()[0])

    def __len__(self) -> int:
        with self._lock, self._reading() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM subjects").fetchone()[0])

    def __contains__(self, name_or_id: object) -> bool:
        if isinstance(name_or_id, bool) or not isinstance(name_or_id, (str, numbers.Integral)):
            return False
        try:
            self.get(name_or_id if isinstance(name_or_id, str) else int(name_or_id))
        except SubjectNotFoundError:
            return False
        return True

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else "open"
        return f"Gallery({self._path!r}, index={self._index_name!r}) [{state}]"

    def __enter__(self) -> Gallery:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the database; further calls raise :class:`GalleryError`. Idempotent."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
                self._invalidate_index()
                logger.debug("closed gallery %s", self._path)

    # ---------------------------------------------------------------- subjects

    def _subject_row(self, conn: sqlite3.Connection, name_or_id: str | int) -> tuple[Any, ...]:
        if isinstance(name_or_id, bool) or not isinstance(name_or_id, (str, numbers.Integral)):
            raise InvalidArgumentTypeError(
                f"expected a subject name (str) or id (int), got {type(name_or_id).__name__}"
            )
        columns = "id, name, created_at, metadata"
        if isinstance(name_or_id, str):
            row = conn.execute(
                f"SELECT {columns} FROM subjects WHERE name = ?", (name_or_id.strip(),)
            ).fetchone()
            what = f"named {name_or_id!r}"
        else:
            row = conn.execute(f"SELECT {columns} FROM subjects WHERE id = ?", (int(name_or_id),)).fetchone()
            what = f"with id {int(name_or_id)}"
        if row is None:
            raise SubjectNotFoundError(f"no subject {what} in gallery {self._path}")
        return tuple(row)

    def _subject(self, conn: sqlite3.Connection, row: tuple[Any, ...]) -> Subject:
        subject_id, name, created_at, metadata = row
        (count,) = conn.execute(
            "SELECT COUNT(*) FROM templates WHERE subject_id = ?", (subject_id,)
        ).fetchone()
        return Subject(
            id=int(subject_id),
            name=name,
            n_templates=int(count),
            created_at=created_at or "",
            metadata=json.loads(metadata) if metadata else {},
        )

    def subjects(self) -> list[Subject]:
        """All subjects, ordered by name."""
        with self._lock, self._reading() as conn:
            rows = conn.execute(
                "SELECT s.id, s.name, s.created_at, s.metadata, COUNT(t.id) FROM subjects s "
                "LEFT JOIN templates t ON t.subject_id = s.id GROUP BY s.id ORDER BY s.name"
            ).fetchall()
        return [
            Subject(
                id=int(i),
                name=name,
                n_templates=int(count),
                created_at=created or "",
                metadata=json.loads(meta) if meta else {},
            )
            for i, name, created, meta, count in rows
        ]

    def get(self, name_or_id: str | int) -> Subject:
        """The subject with this name (str) or id (int).

        Raises
        ------
        SubjectNotFoundError
            If there is no such subject.
        """
        with self._lock, self._reading() as conn:
            return self._subject(conn, self._subject_row(conn, name_or_id))

    def templates(self, name_or_id: str | int) -> Float32Array:
        """The stored templates of one subject, shape (n, d) float32, in enrollment order."""
        with self._lock, self._reading() as conn:
            subject_id = self._subject_row(conn, name_or_id)[0]
            _, dim = self._meta(conn)
            blobs = [
                r[0]
                for r in conn.execute(
                    "SELECT embedding FROM templates WHERE subject_id = ? ORDER BY id", (subject_id,)
                )
            ]
        if not blobs or dim is None:
            return np.empty((0, dim or 0), dtype=np.float32)
        return self._decode(blobs, dim)

    def _decode(self, blobs: Sequence[bytes], dim: int) -> Float32Array:
        data = b"".join(blobs)
        if len(data) != len(blobs) * dim * 4:
            raise GalleryError(
                f"gallery {self._path} is corrupt: template sizes do not match dimension {dim}"
            )
        return np.frombuffer(data, dtype=np.float32).reshape(len(blobs), dim).copy()

    # ---------------------------------------------------------------- writes

    def enroll(
        self,
        name: str,
        embeddings: npt.ArrayLike,
        *,
        fingerprint: str,
        sources: Sequence[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Subject:
        """Store templates for a subject, creating the subject if it is new.

        Everything happens in one transaction: on any error the gallery is left as it was.

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
        """
        clean_name = _validate_name(name)
        vectors = _as_embeddings(embeddings)
        fingerprint = _validate_fingerprint(fingerprint)
        n, dim = vectors.shape
        source_list: list[str | None]
        if sources is None:
            source_list = [None] * n
        else:
            if isinstance(sources, str) or not all(isinstance(s, str) for s in sources):
                raise InvalidSubjectError("expected sources as a sequence of str, one per embedding")
            source_list = list(sources)
            if len(source_list) != n:
                raise InvalidSubjectError(f"expected {n} sources (one per embedding), got {len(source_list)}")
        if metadata is not None and not isinstance(metadata, dict):
            raise InvalidSubjectError(f"expected metadata as a dict, got {type(metadata).__name__}")
        try:
            metadata_json = json.dumps(metadata or {}, sort_keys=True)
        except (TypeError, ValueError) as err:
            raise InvalidSubjectError(f"expected JSON-serialisable metadata: {err}") from err

        with self._lock:
            now = _now()
            with self._transaction() as conn:
                stored_fingerprint, stored_dim = self._meta(conn)
                if stored_fingerprint is None:
                    conn.executemany(
                        "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                        [("fingerprint", fingerprint), ("dim", str(dim))],
                    )
                else:
                    self._check_embedder(stored_fingerprint, stored_dim, fingerprint, dim)
                row = conn.execute(
                    "SELECT id, metadata FROM subjects WHERE name = ?", (clean_name,)
                ).fetchone()
                if row is None:
                    cursor = conn.execute(
                        "INSERT INTO subjects(name, created_at, metadata) VALUES (?, ?, ?)",
                        (clean_name, now, metadata_json),
                    )
                    subject_id = cast(int, cursor.lastrowid)
                    created = True
                else:
                    subject_id = int(row[0])
                    created = False
                    if metadata:
                        merged = json.loads(row[1]) if row[1] else {}
                        merged.update(metadata)
                        conn.execute(
                            "UPDATE subjects SET metadata = ? WHERE id = ?",
                            (json.dumps(merged, sort_keys=True), subject_id),
                        )
                template_ids = self._insert_templates(
                    conn, subject_id, vectors, fingerprint, source_list, now
                )
                subject = self._subject(conn, self._subject_row(conn, subject_id))
            self._index_added(subject_id, clean_name, template_ids, vectors)
        logger.info(
            "%s subject %r (id %d): +%d template(s), %d in total",
            "enrolled" if created else "extended",
            clean_name,
            subject_id,
            n,
            subject.n_templates,
        )
        return subject

    def _insert_templates(
        self,
        conn: sqlite3.Connection,
        subject_id: int,
        vectors: Float32Array,
        fingerprint: str,
        sources: Sequence[str | None],
        created_at: str,
    ) -> Int64Array:
        ids = np.empty(vectors.shape[0], dtype=np.int64)
        for i, (vector, source) in enumerate(zip(vectors, sources, strict=True)):
            cursor = conn.execute(
                "INSERT INTO templates(subject_id, embedding, fingerprint, source, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (subject_id, vector.tobytes(), fingerprint, source, created_at),
            )
            ids[i] = cast(int, cursor.lastrowid)
        return ids

    def _check_embedder(
        self, stored_fingerprint: str | None, stored_dim: int | None, fingerprint: str, dim: int
    ) -> None:
        if stored_fingerprint is not None and fingerprint != stored_fingerprint:
            raise EmbedderMismatchError(
                f"gallery {self._path} holds templates of embedder {stored_fingerprint!r}, "
                f"got embeddings of embedder {fingerprint!r}; templates of different models "
                "are never compared"
            )
        if stored_dim is not None and dim != stored_dim:
            raise EmbedderMismatchError(
                f"gallery {self._path} holds {stored_dim}-d templates of embedder "
                f"{stored_fingerprint!r}, got {dim}-d embeddings labelled {fingerprint!r}"
            )

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
        clean_name = _validate_name(new_name)
        with self._lock:
            with self._transaction() as conn:
                subject_id, old_name = self._subject_row(conn, name_or_id)[:2]
                if clean_name != old_name:
                    taken = conn.execute("SELECT id FROM subjects WHERE name = ?", (clean_name,)).fetchone()
                    if taken is not None:
                        raise GalleryError(
                            f"cannot rename {old_name!r} to {clean_name!r}: that name already "
                            f"belongs to subject id {taken[0]} in gallery {self._path}"
                        )
                    conn.execute("UPDATE subjects SET name = ? WHERE id = ?", (clean_name, subject_id))
                subject = self._subject(conn, self._subject_row(conn, int(subject_id)))
            if self._index_ready:
                self._subject_name[int(subject_id)] = clean_name
        logger.info("renamed subject id %d from %r to %r", subject_id, old_name, clean_name)
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
            with self._transaction() as conn:
                subject_id, name = self._subject_row(conn, name_or_id)[:2]
                rows = conn.execute("SELECT id FROM templates WHERE subject_id = ?", (subject_id,))
                template_ids = np.array([r[0] for r in rows], dtype=np.int64)
                conn.execute("DELETE FROM subjects WHERE id = ?", (subject_id,))
                emptied = conn.execute("SELECT COUNT(*) FROM subjects").fetchone()[0] == 0
                if emptied:
                    conn.execute("DELETE FROM meta WHERE key IN ('fingerprint', 'dim')")
            self._index_removed(int(subject_id), template_ids, emptied)
        logger.info("removed subject %r (id %d) and %d template(s)", name, subject_id, template_ids.size)
        return int(template_ids.size)

    # ---------------------------------------------------------------- index maintenance

    def _invalidate_index(self) -> None:
        self._index_ready = False
        self._index = None
        self._template_subject = {}
        self._subject_count = {}
        self._subject_name = {}
        self._max_templates = 0
        self._lookup = None

    def rebuild_index(self) -> int:
        """Rebuild the in-memory vector index from the store; return the number of templates."""
        with self._lock, self._reading() as conn:
            self._invalidate_index()
            _, dim = self._meta(conn)
            names = {int(i): name for i, name in conn.execute("SELECT id, name FROM subjects")}
            rows = conn.execute("SELECT id, subject_id, embedding FROM templates ORDER BY id").fetchall()
            index: VectorIndex | None = None
            if rows:
                if dim is None:
                    raise GalleryError(f"gallery {self._path} is corrupt: templates but no dimension")
                ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
                vectors = self._decode([r[2] for r in rows], dim)
                index = make_index(self._index_name, dim)
                index.add(ids, vectors)
            template_subject = {int(r[0]): int(r[1]) for r in rows}
            counts: dict[int, int] = {}
            for subject_id in template_subject.values():
                counts[subject_id] = counts.get(subject_id, 0) + 1
            self._index = index
            self._template_subject = template_subject
            self._subject_count = counts
            self._subject_name = names
            self._max_templates = max(counts.values(), default=0)
            self._index_ready = True
        logger.debug("built %s index of %d template(s) for %s", self._index_name, len(rows), self._path)
        return len(rows)

    def _index_added(
        self, subject_id: int, name: str, template_ids: Int64Array, vectors: Float32Array
    ) -> None:
        if not self._index_ready:
            return
        try:
            if self._index is None:
                self._index = make_index(self._index_name, vectors.shape[1])
            self._index.add(template_ids, vectors)
        except Exception:
            # The store already holds the templates; a fresh build on next search fixes the index.
            logger.exception("index update failed after enrollment; it will be rebuilt on next search")
            self._invalidate_index()
            return
        for template_id in template_ids.tolist():
            self._template_subject[template_id] = subject_id
        count = self._subject_count.get(subject_id, 0) + template_ids.size
        self._subject_count[subject_id] = count
        self._subject_name[subject_id] = name
        self._max_templates = max(self._max_templates, count)
        self._lookup = None

    def _index_removed(self, subject_id: int, template_ids: Int64Array, emptied: bool) -> None:
        if not self._index_ready:
            return
        if emptied or self._index is None:
            self._invalidate_index()
            return
        try:
            self._index.remove(template_ids)
        except Exception:
            logger.exception("index update failed after removal; it will be rebuilt on next search")
            self._invalidate_index()
            return
        for template_id in template_ids.tolist():
            self._template_subject.pop(template_id, None)
        self._subject_count.pop(subject_id, None)
        self._subject_name.pop(subject_id, None)
        self._max_templates = max(self._subject_count.values(), default=0)
        self._lookup = None

    def _template_to_subject(self, template_ids: Int64Array) -> Int64Array:
        if self._lookup is None:
            n = len(self._template_subject)
            keys = np.fromiter(self._template_subject.keys(), dtype=np.int64, count=n)
            values = np.fromiter(self._template_subject.values(), dtype=np.int64, count=n)
            order = np.argsort(keys)
            self._lookup = (keys[order], values[order])
        keys, values = self._lookup
        if keys.size == 0:
            return np.full(template_ids.shape, -1, dtype=np.int64)
        positions = np.clip(np.searchsorted(keys, template_ids), 0, keys.size - 1)
        return np.where(keys[positions] == template_ids, values[positions], -1)

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
        query = _as_embeddings(embedding, allow_batch=False)
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
            _validate_k_threshold(k, threshold)
            return []
        if arr.ndim != 2:
            raise InvalidEmbeddingError(f"expected embeddings of shape (m, d), got shape {arr.shape}")
        queries = _as_embeddings(arr)
        return self._search(queries, k=k, threshold=threshold, fingerprint=fingerprint)

    def _search(
        self, queries: Float32Array, *, k: int, threshold: float, fingerprint: str
    ) -> list[list[Match]]:
        _validate_k_threshold(k, threshold)
        fingerprint = _validate_fingerprint(fingerprint)
        threshold = float(threshold)
        with self._lock:
            with self._reading() as conn:
                stored_fingerprint, stored_dim = self._meta(conn)
            if stored_fingerprint is None:
                return [[] for _ in range(queries.shape[0])]
            self._check_embedder(stored_fingerprint, stored_dim, fingerprint, queries.shape[1])
            if not self._index_ready:
                self.rebuild_index()
            index = self._index
            if index is None or len(index) == 0:
                return [[] for _ in range(queries.shape[0])]
            # Each subject holds at most max_templates templates, so the top k * max_templates
            # templates contain the best template of each of the top k subjects.
            k_templates = min(len(index), int(k) * max(self._max_templates, 1))
            sims, template_ids = index.search(queries, k_templates)
            subject_ids = self._template_to_subject(template_ids)
            names = self._subject_name
            results: list[list[Match]] = []
            for row_sims, row_subjects in zip(sims, subject_ids, strict=True):
                valid = row_subjects >= 0
                row_sims, row_subjects = row_sims[valid], row_subjects[valid]
                order = np.argsort(-row_sims, kind="stable")  # backends need not sort
                row_sims, row_subjects = row_sims[order], row_subjects[order]
                _, first = np.unique(row_subjects, return_index=True)  # first = best per subject
                best = np.sort(first)[:k]
                matches = []
                for position in best.tolist():
                    similarity = float(np.clip(row_sims[position], -1.0, 1.0))
                    subject_id = int(row_subjects[position])
                    matches.append(
                        Match(
                            subject_id=subject_id,
                            name=names[subject_id],
                            similarity=similarity,
                            distance=2.0 - 2.0 * similarity,
                            same=similarity >= threshold,
                            threshold=threshold,
                        )
                    )
                results.append(matches)
        return results
