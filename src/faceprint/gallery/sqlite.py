"""The SQLite gallery backend: subjects and templates in SQLite, vectors in an in-process index.

The SQLite store is the system of record. The vector index (:mod:`faceprint.gallery.index`) is an
in-memory acceleration structure built lazily from the ``templates`` table on the first search,
kept in sync by :meth:`Gallery.enroll`, :meth:`Gallery.remove` and :meth:`Gallery.rename`,
brought up to date when another connection has committed to the file (from the ``changes`` log
that every write appends to in its own transaction; a full rebuild only when the log cannot
say what changed), and can always be rebuilt with :meth:`Gallery.rebuild_index`.

Every template records the fingerprint of the embedder that produced it; the first enrollment
fixes the gallery's fingerprint and dimension and the gallery refuses to mix models after that
(the check lives in :class:`~faceprint.gallery.base.BaseGallery`).

A gallery opened with a template key (``template_key=``, by default ``FACEPRINT_TEMPLATE_KEY``)
stores each template AES-GCM encrypted (:mod:`faceprint.gallery.encryption`); the choice is made
once per gallery and recorded in ``meta``, so plain and encrypted rows never mix.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np
import numpy.typing as npt

from faceprint.errors import (
    ExampleNotFoundError,
    GalleryError,
    InvalidArgumentError,
    SubjectExistsError,
    SubjectNotFoundError,
    TemplateIntegrityError,
    TemplateKeyError,
)
from faceprint.settings import current_settings

from .base import (
    BaseGallery,
    Example,
    Subject,
    TemplateBatch,
    TemplateHits,
    new_content_rows,
    validate_name_or_id,
)
from .encryption import MAGIC, OVERHEAD, SCHEME, KeySource, TemplateCipher, check_key, new_salt
from .index import INDEXES, TemplateIndex

__all__ = ["Gallery", "SQLiteGallery", "SCHEMA_VERSION", "IndexStats"]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 2
"""Version of the on-disk schema this module writes and reads.

1: ``meta``, ``subjects``, ``templates``. 2: adds the ``changes`` log (one row per write, for
incremental index refresh in other processes) and ``templates.content_sha256``. A version-1 file
is migrated in place when it is opened; a newer one is refused.
"""

_SQL_CHUNK = 500
"""Most ``?`` parameters put in one ``IN (...)`` list (SQLite's limit is 999 on old builds)."""

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

_SCHEMA_V2 = """
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    op TEXT NOT NULL,
    subject_id INTEGER NOT NULL,
    created_at TEXT
);
ALTER TABLE templates ADD COLUMN content_sha256 TEXT;
CREATE INDEX IF NOT EXISTS templates_content_sha256 ON templates(subject_id, content_sha256);
"""
"""What schema version 2 adds to version 1 (a new gallery runs both scripts)."""

# The change log's ops: what a write did to one subject. "clear" = the last subject went and the
# gallery forgot its embedder (a reader rebuilds: the next enrollment may have another dimension).
_ENROLL, _ADD, _RENAME, _REMOVE, _CLEAR = "enroll", "add", "rename", "remove", "clear"

Float32Array = npt.NDArray[np.float32]
Int64Array = npt.NDArray[np.int64]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _storable(text: str) -> bool:
    """Whether SQLite can hold ``text`` (UTF-8: no lone surrogates, which a non-UTF-8 argument carries)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), _SQL_CHUNK):
        yield values[start : start + _SQL_CHUNK]


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


@dataclass(frozen=True)
class IndexStats:
    """How a :class:`Gallery`'s in-memory index has been kept in step with the store.

    Attributes
    ----------
    builds : int
        Full builds from the store (the first search's, :meth:`Gallery.rebuild_index`, and the
        fall-backs when the change log could not be applied).
    refreshes : int
        Incremental refreshes: another connection committed and only the subjects its change log
        names were re-read.
    changes_applied : int
        Change-log rows those refreshes applied.
    seq : int or None
        The last change-log row the index reflects; None while there is no index.
    loads : int
        HNSW graphs loaded from the files beside the database instead of built (see
        :meth:`Gallery.index_files`).
    """

    builds: int
    refreshes: int
    changes_applied: int
    seq: int | None
    loads: int = 0


INDEX_FILES_FORMAT = "faceprint-index/1"


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def index_options_from_settings(index: str) -> dict[str, Any]:
    """The options the settings give index backend ``index``: ``ef`` (``FACEPRINT_HNSW_EF``) for the
    HNSW ones, and ``exact_below`` (``FACEPRINT_INDEX_EXACT_BELOW``) too for ``auto``."""
    settings = current_settings()
    if index == "auto":
        return {"exact_below": settings.index_exact_below, "ef": settings.hnsw_ef}
    if index in ("hnsw", "hnsw-f16", "hnsw-i8"):
        return {"ef": settings.hnsw_ef}
    return {}


class Gallery(BaseGallery):
    """A persistent gallery of enrolled subjects, searchable by face embedding (SQLite backend).

    Subjects and their templates (L2-normalised float32 embeddings) live in a SQLite database
    (WAL journal, foreign keys on). Vectors are searched through an in-memory
    :class:`~faceprint.gallery.index.VectorIndex` built from the database on first search. One
    ``Gallery`` object may be shared between threads: every operation holds an internal lock.

    Parameters
    ----------
    path : str or os.PathLike
        Database file (created if missing), or ``":memory:"`` for a throw-away gallery.
    index : str, optional
        Name of the index backend in :data:`~faceprint.gallery.index.INDEXES`; default
        ``FACEPRINT_INDEX`` (``exact``; ``auto`` is exact search below
        ``FACEPRINT_INDEX_EXACT_BELOW`` templates and an HNSW graph from there on).
    index_options : mapping, optional
        Keyword options of that backend (``ef=``, ``exact_below=``, ``dtype=`` ...); default: the
        settings' (:func:`index_options_from_settings`).
    template_key : bytes or None, default KeySource.SETTINGS
        The 32-byte key that encrypts stored templates at rest (AES-256-GCM,
        :mod:`faceprint.gallery.encryption`). The default takes ``FACEPRINT_TEMPLATE_KEY``
        (:meth:`Settings.template_key_bytes <faceprint.settings.Settings.template_key_bytes>`);
        ``None`` means no key. A new gallery, or one that holds no templates yet, opened with a key
        becomes encrypted; an encrypted one must be opened with the same key; a plain one that holds
        templates is refused when a key is given (see Raises).

    Raises
    ------
    GalleryError
        If ``path`` is not a SQLite database, is a SQLite database of something else, or was
        written by a newer faceprint (schema version too new).
    TemplateKeyError
        The gallery's templates are encrypted and no key, or another key, was given; or a key was
        given and the gallery already stores templates plain (open it with ``template_key=None``;
        faceprint does not mix plain and encrypted templates in one gallery). The message never
        holds the key.
    ValueError
        If ``index`` names no registered backend, or ``template_key`` is not 32 bytes.

    Notes
    -----
    The index is kept in sync with writes made through *this* object. Every write also appends one
    row per subject it touched to the ``changes`` log, in the same transaction. When another
    connection (another process, or another ``Gallery`` on the same file) has committed, which each
    search checks cheaply with SQLite's ``PRAGMA data_version``, the next search reads the log rows
    it has not applied and the current rows of just those subjects, in one read transaction, and
    updates the index in place; so a search sees every committed change without re-reading the
    gallery. It rebuilds the index from the store instead when the log cannot say what changed:
    the rows it needs were pruned (the log keeps the last :attr:`change_log_keep` rows), the last
    subject was removed, a commit left no log row (a writer that does not log; SQLite also counts
    a ``wal_checkpoint(TRUNCATE)`` by another connection as a commit), or the index refused an
    update. :meth:`rebuild_index` forces a rebuild; :attr:`index_stats` counts both.

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

    change_log_keep: ClassVar[int] = 10_000
    """Change-log rows a writer keeps (older ones are pruned in batches of a tenth of this); a
    reader that has not applied the rows pruned meanwhile rebuilds its index instead."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        index: str | None = None,
        index_options: Mapping[str, Any] | None = None,
        template_key: bytes | None | KeySource = KeySource.SETTINGS,
    ) -> None:
        super().__init__()
        settings = current_settings()
        index = settings.index if index is None else index
        INDEXES.factory(index)  # unknown names fail here, listing the valid ones
        options = index_options_from_settings(index) if index_options is None else dict(index_options)
        key = settings.template_key_bytes() if template_key is KeySource.SETTINGS else template_key
        key = None if key is None else check_key(key)
        self._cipher: TemplateCipher | None = None  # set by _open when the gallery's templates are encrypted
        self._path = os.fspath(path)
        self._index_name = index
        self._conn: sqlite3.Connection | None = None
        # In-memory search state; valid only while self._tindex.ready.
        self._tindex = TemplateIndex(index, **options)  # bad options fail here
        self._index_version: int | None = None  # PRAGMA data_version of the snapshot the index reflects
        self._index_seq: int | None = None  # the last change-log row the index reflects
        self._builds = self._refreshes = self._changes_applied = self._loads = 0
        self._saved_seq: int | None = None  # the change-log row the saved graph files reflect
        self._conn = self._open(key)

    # ---------------------------------------------------------------- connection & schema

    def _open(self, key: bytes | None) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as err:
            raise GalleryError(f"{self._path} is not a faceprint gallery: {err}") from err
        try:
            conn.execute("PRAGMA foreign_keys=ON")
            # deleted rows are overwritten with zeros, not just unlinked (erasure: see _erase_journal)
            conn.execute("PRAGMA secure_delete=ON")
            self._check_or_create_schema(conn)
            self._cipher = self._check_or_start_encryption(conn, key)
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
        version: int | None = None
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
                # Under the write lock: another process may have created the schema meanwhile.
                created = conn.execute("SELECT name FROM sqlite_master WHERE name='meta'").fetchone() is None
                if created:
                    _run_script(conn, _SCHEMA)
                    _run_script(conn, _SCHEMA_V2)
                    conn.execute(
                        "INSERT INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            if created:
                logger.info("created gallery %s (schema version %d)", self._path, SCHEMA_VERSION)
            else:
                self._migrate(conn)  # whatever version the other process wrote
        elif version is not None and version < SCHEMA_VERSION:
            self._migrate(conn)

    def _encryption_meta(self, conn: sqlite3.Connection) -> dict[str, str]:
        keys = ("template_encryption", "template_key_salt", "template_key_check")
        return dict(conn.execute(f"SELECT key, value FROM meta WHERE key IN {keys}"))

    def _check_or_start_encryption(self, conn: sqlite3.Connection, key: bytes | None) -> TemplateCipher | None:
        """The cipher of an encrypted gallery (after checking ``key`` against the stored check value),
        None for a plain one; a gallery without templates opened with a key becomes encrypted here."""
        meta = self._encryption_meta(conn)
        if not meta and key is not None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                # under the write lock: another connection may have written templates (or encrypted it) meanwhile
                meta = self._encryption_meta(conn)
                (count,) = conn.execute("SELECT COUNT(*) FROM templates").fetchone()
                if not meta and count:
                    raise TemplateKeyError(
                        f"gallery {self._path} stores its {count} template(s) unencrypted, and a template key "
                        "was given (FACEPRINT_TEMPLATE_KEY or template_key=); faceprint does not mix plain and "
                        "encrypted templates: open it without a key (template_key=None, or FACEPRINT_TEMPLATE_KEY "
                        "unset), or enroll into a new gallery with the key"
                    )
                if not meta:
                    salt = new_salt()
                    meta = {
                        "template_encryption": SCHEME,
                        "template_key_salt": salt.hex(),
                        "template_key_check": TemplateCipher(key, salt).check_value,
                    }
                    conn.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", sorted(meta.items()))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            logger.info("gallery %s stores its templates encrypted (%s)", self._path, SCHEME)
        if not meta:
            return None
        scheme = meta.get("template_encryption")
        if scheme != SCHEME or "template_key_salt" not in meta or "template_key_check" not in meta:
            raise GalleryError(
                f"gallery {self._path} encrypts its templates with {scheme!r}, which this faceprint does not "
                f"know (it writes and reads {SCHEME!r}), or lacks its key check; upgrade faceprint to open it"
            )
        if key is None:
            raise TemplateKeyError(
                f"gallery {self._path} stores its templates encrypted ({SCHEME}) and no template key was given: "
                "set FACEPRINT_TEMPLATE_KEY (or pass template_key=) to the key it was created with"
            )
        try:
            salt = bytes.fromhex(meta["template_key_salt"])
        except ValueError:
            raise GalleryError(f"gallery {self._path} is corrupt: its template key salt is not hex") from None
        cipher = TemplateCipher(key, salt)
        if not cipher.matches(meta["template_key_check"]):
            raise TemplateKeyError(
                f"gallery {self._path} stores its templates encrypted with another key than the template key "
                "given (FACEPRINT_TEMPLATE_KEY or template_key=): open it with the key it was created with"
            )
        return cipher

    def _check_encryption_unchanged(self, conn: sqlite3.Connection) -> None:
        """Inside a write transaction: the gallery is still as encrypted (or plain) as when this object
        opened it (another connection may have turned an empty plain gallery encrypted since)."""
        encrypted = bool(self._encryption_meta(conn))
        if encrypted != (self._cipher is not None):
            raise TemplateKeyError(
                f"gallery {self._path} was made {'encrypted' if encrypted else 'plain'} by another connection "
                "since it was opened here; reopen it (with the right template key) before writing"
            )

    @property
    def encrypted(self) -> bool:
        """Whether this gallery stores its templates encrypted (:mod:`faceprint.gallery.encryption`)."""
        return self._cipher is not None

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Bring a file of an older schema version to :data:`SCHEMA_VERSION`, in one transaction."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Read again under the write lock: another process may have migrated meanwhile.
            row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = int(row[0]) if row is not None else SCHEMA_VERSION
            if version == 1:
                _run_script(conn, _SCHEMA_V2)
                conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if version == 1:
            logger.info("migrated gallery %s from schema version 1 to %d", self._path, SCHEMA_VERSION)

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

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: every query inside sees the same committed state, even if another
        connection commits meanwhile (WAL readers keep their snapshot until the transaction ends)."""
        with self._reading() as conn:
            if conn.in_transaction:  # already inside a transaction of ours: that one is the snapshot
                yield conn
                return
            conn.execute("BEGIN DEFERRED")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")  # a read transaction: nothing to roll back

    def _meta(self, conn: sqlite3.Connection) -> tuple[str | None, int | None]:
        rows = dict(conn.execute("SELECT key, value FROM meta WHERE key IN ('fingerprint', 'dim')"))
        fingerprint = rows.get("fingerprint")
        dim = rows.get("dim")
        return fingerprint, (int(dim) if dim is not None else None)

    def _stored_embedder(self) -> tuple[str | None, int | None]:
        with self._lock, self._reading() as conn:
            return self._meta(conn)

    # ---------------------------------------------------------------- properties & dunders

    @property
    def path(self) -> str:
        """The database path as given (``":memory:"`` for an in-memory gallery)."""
        return self._path

    @property
    def n_templates(self) -> int:
        """Total number of stored templates."""
        with self._lock, self._reading() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM templates").fetchone()[0])

    def __len__(self) -> int:
        with self._lock, self._reading() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM subjects").fetchone()[0])

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else "open"
        encrypted = ", encrypted" if self._cipher is not None else ""
        return f"Gallery({self._path!r}, index={self._index_name!r}) [{state}{encrypted}]"

    def close(self) -> None:
        """Close the database; further calls raise :class:`GalleryError`. Idempotent."""
        with self._lock:
            if self._conn is not None:
                if self._tindex.ready and self._index_seq != self._saved_seq:
                    self._save_index()
                self._conn.close()
                self._conn = None
                self._invalidate_index()
                logger.debug("closed gallery %s", self._path)

    # ---------------------------------------------------------------- subjects

    def _subject_row(self, conn: sqlite3.Connection, name_or_id: str | int) -> tuple[Any, ...]:
        name_or_id = validate_name_or_id(name_or_id)
        columns = "id, name, created_at, metadata"
        if isinstance(name_or_id, str) and not _storable(name_or_id):
            row = None  # a lone surrogate (a non-UTF-8 argument): no stored name holds one
            what = f"named {name_or_id!r}"
        elif isinstance(name_or_id, str):
            row = conn.execute(
                f"SELECT {columns} FROM subjects WHERE name = ?", (name_or_id.strip(),)
            ).fetchone()
            what = f"named {name_or_id!r}"
        else:
            row = conn.execute(f"SELECT {columns} FROM subjects WHERE id = ?", (name_or_id,)).fetchone()
            what = f"with id {name_or_id}"
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
        with self._lock, self._snapshot() as conn:
            subject_id = self._subject_row(conn, name_or_id)[0]
            _, dim = self._meta(conn)
            rows = conn.execute(
                "SELECT id, embedding FROM templates WHERE subject_id = ? ORDER BY id", (subject_id,)
            ).fetchall()
        if not rows or dim is None:
            return np.empty((0, dim or 0), dtype=np.float32)
        return self._decode([r[0] for r in rows], [r[1] for r in rows], dim)

    def content_hashes(self, name_or_id: str | int) -> frozenset[str]:
        """The content digests (hex sha256 of the photo's file bytes, as enrollment records them)
        of one subject's stored templates; templates stored without one are not counted.

        Raises
        ------
        SubjectNotFoundError
            If there is no such subject.
        """
        with self._lock, self._snapshot() as conn:
            subject_id = self._subject_row(conn, name_or_id)[0]
            rows = conn.execute(
                "SELECT content_sha256 FROM templates WHERE subject_id = ? AND content_sha256 IS NOT NULL",
                (subject_id,),
            ).fetchall()
        return frozenset(r[0] for r in rows)

    def _resolve(self, names_or_ids: Sequence[str | int], *, missing_ok: bool) -> list[int]:
        names = list(dict.fromkeys(x.strip() for x in names_or_ids if isinstance(x, str) and _storable(x)))
        numbers = list(dict.fromkeys(int(x) for x in names_or_ids if not isinstance(x, str)))
        by_name: dict[str, int] = {}
        known_ids: set[int] = set()
        with self._lock, self._snapshot() as conn:
            for chunk in _chunks(names):
                marks = ", ".join("?" * len(chunk))
                by_name.update(conn.execute(f"SELECT name, id FROM subjects WHERE name IN ({marks})", chunk))
            for chunk in _chunks(numbers):
                marks = ", ".join("?" * len(chunk))
                known_ids.update(r[0] for r in conn.execute(f"SELECT id FROM subjects WHERE id IN ({marks})", chunk))
        ids: list[int] = []
        for item in names_or_ids:
            if isinstance(item, str):
                found = by_name.get(item.strip())
            else:
                found = int(item) if int(item) in known_ids else None
            if found is None:
                if missing_ok:
                    continue
                what = f"named {item!r}" if isinstance(item, str) else f"with id {int(item)}"
                raise SubjectNotFoundError(f"no subject {what} in gallery {self._path}")
            ids.append(int(found))
        return list(dict.fromkeys(ids))

    def _read_templates(self, subject_ids: Sequence[int] | None) -> TemplateBatch:
        with self._lock, self._snapshot() as conn:
            fingerprint, dim = self._meta(conn)
            columns = (
                "SELECT t.subject_id, s.name, t.embedding, t.id FROM templates t JOIN subjects s ON s.id = t.subject_id"
            )
            if subject_ids is None:
                rows = conn.execute(f"{columns} ORDER BY s.name, t.id").fetchall()
            else:
                rows = []
                for chunk in _chunks(list(subject_ids)):
                    marks = ", ".join("?" * len(chunk))
                    rows.extend(conn.execute(f"{columns} WHERE t.subject_id IN ({marks}) ORDER BY t.id", chunk))
                rank = {subject_id: i for i, subject_id in enumerate(subject_ids)}
                rows.sort(key=lambda r: rank[r[0]])  # stable: enrollment order within a subject
        if not rows or dim is None:
            return TemplateBatch(np.empty(0, np.int64), (), np.empty((0, dim or 0), np.float32), fingerprint)
        return TemplateBatch(
            subject_ids=np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)),
            names=tuple(r[1] for r in rows),
            embeddings=self._decode([r[3] for r in rows], [r[2] for r in rows], dim),
            fingerprint=fingerprint,
        )

    def _decode(self, template_ids: Sequence[int], blobs: Sequence[bytes], dim: int) -> Float32Array:
        """The vectors of stored template rows (``template_ids[i]``'s blob is ``blobs[i]``), decrypted
        and authenticated when the gallery is encrypted."""
        cipher = self._cipher
        if cipher is not None:
            where = f"gallery {self._path}"
            blobs = [cipher.open(int(i), blob, where=where) for i, blob in zip(template_ids, blobs, strict=True)]
        data = b"".join(blobs)
        if len(data) != len(blobs) * dim * 4:
            if cipher is None and any(len(b) == dim * 4 + OVERHEAD and bytes(b[:4]) == MAGIC for b in blobs):
                raise TemplateIntegrityError(
                    f"gallery {self._path} is plain but holds encrypted templates (copied from an encrypted gallery?)"
                )
            raise GalleryError(
                f"gallery {self._path} is corrupt: template sizes do not match dimension {dim}"
            )
        return np.frombuffer(data, dtype=np.float32).reshape(len(blobs), dim).copy()

    # ---------------------------------------------------------------- writes (hooks of BaseGallery)

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
        dim = vectors.shape[1]
        now = _now()
        row_times = [now] * len(digests) if times is None else times
        with self._lock:
            with self._transaction() as conn:
                self._check_encryption_unchanged(conn)
                stored_fingerprint, stored_dim = self._meta(conn)
                if stored_fingerprint is None:
                    conn.executemany(
                        "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                        [("fingerprint", fingerprint), ("dim", str(dim))],
                    )
                else:
                    self._check_embedder(stored_fingerprint, stored_dim, fingerprint, dim)
                if create:
                    row = conn.execute("SELECT id, metadata FROM subjects WHERE name = ?", (subject,)).fetchone()
                else:
                    row = self._subject_row(conn, subject)[::3]  # (id, metadata)
                if row is None:
                    cursor = conn.execute(
                        "INSERT INTO subjects(name, created_at, metadata) VALUES (?, ?, ?)",
                        (subject, min(row_times, default=now), json.dumps(metadata, sort_keys=True)),
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
                keep = self._new_content(conn, subject_id, digests)
                kept = set(keep)
                skipped = tuple(i for i in range(len(digests)) if i not in kept)
                if skipped:
                    vectors = vectors[keep]
                    sources = [sources[i] for i in keep]
                    digests = [digests[i] for i in keep]
                    row_times = [row_times[i] for i in keep]
                template_ids = self._insert_templates(
                    conn, subject_id, vectors, fingerprint, sources, digests, row_times
                )
                logged = self._log_change(conn, _ENROLL if created else _ADD, subject_id)
                stored = self._subject(conn, self._subject_row(conn, subject_id))
            if template_ids.size:
                self._index_added(subject_id, stored.name, template_ids, vectors)
            self._own_change_applied(*logged)
        return stored, created, skipped

    def _new_content(self, conn: sqlite3.Connection, subject_id: int, digests: list[str | None]) -> list[int]:
        """Rows to write: those whose digest (if any) neither the subject's templates nor an earlier row hold."""
        held: set[str] = set()
        if any(d is not None for d in digests):
            held = {
                r[0]
                for r in conn.execute(
                    "SELECT content_sha256 FROM templates WHERE subject_id = ? AND content_sha256 IS NOT NULL",
                    (subject_id,),
                )
            }
        return new_content_rows(held, digests)

    def _insert_templates(
        self,
        conn: sqlite3.Connection,
        subject_id: int,
        vectors: Float32Array,
        fingerprint: str,
        sources: Sequence[str | None],
        digests: Sequence[str | None],
        times: Sequence[str],
    ) -> Int64Array:
        ids = np.empty(vectors.shape[0], dtype=np.int64)
        cipher = self._cipher
        if cipher is not None:
            # the row id is the associated data of its encryption, so it is chosen before the insert
            # (as SQLite would: the largest id + 1; the caller's write transaction holds the lock)
            (last,) = conn.execute("SELECT COALESCE(MAX(id), 0) FROM templates").fetchone()
            for i, (vector, source, digest, created_at) in enumerate(
                zip(vectors, sources, digests, times, strict=True)
            ):
                template_id = int(last) + 1 + i
                conn.execute(
                    "INSERT INTO templates(id, subject_id, embedding, fingerprint, source, content_sha256, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (template_id, subject_id, cipher.seal(template_id, vector.tobytes()), fingerprint, source, digest,
                     created_at),
                )
                ids[i] = template_id
            return ids
        for i, (vector, source, digest, created_at) in enumerate(zip(vectors, sources, digests, times, strict=True)):
            cursor = conn.execute(
                "INSERT INTO templates(subject_id, embedding, fingerprint, source, content_sha256, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (subject_id, vector.tobytes(), fingerprint, source, digest, created_at),
            )
            ids[i] = cast(int, cursor.lastrowid)
        return ids

    def _write_rename(self, name_or_id: str | int, new_name: str) -> tuple[Subject, str]:
        with self._lock:
            with self._transaction() as conn:
                subject_id, old_name = self._subject_row(conn, name_or_id)[:2]
                if new_name != old_name:
                    taken = conn.execute("SELECT id FROM subjects WHERE name = ?", (new_name,)).fetchone()
                    if taken is not None:
                        raise SubjectExistsError(
                            f"cannot rename {old_name!r} to {new_name!r}: that name already "
                            f"belongs to subject id {taken[0]} in gallery {self._path}"
                        )
                    conn.execute("UPDATE subjects SET name = ? WHERE id = ?", (new_name, subject_id))
                    logged = self._log_change(conn, _RENAME, int(subject_id))
                else:
                    logged = None
                subject = self._subject(conn, self._subject_row(conn, int(subject_id)))
            if self._tindex.ready:
                self._tindex.renamed(int(subject_id), new_name)
            if logged is not None:
                self._own_change_applied(*logged)
        return subject, old_name

    def _write_remove(self, name_or_id: str | int) -> tuple[int, str, int]:
        with self._lock:
            with self._transaction() as conn:
                subject_id, name = self._subject_row(conn, name_or_id)[:2]
                rows = conn.execute("SELECT id FROM templates WHERE subject_id = ?", (subject_id,))
                template_ids = np.array([r[0] for r in rows], dtype=np.int64)
                conn.execute("DELETE FROM subjects WHERE id = ?", (subject_id,))
                emptied = conn.execute("SELECT COUNT(*) FROM subjects").fetchone()[0] == 0
                if emptied:
                    conn.execute("DELETE FROM meta WHERE key IN ('fingerprint', 'dim')")
                logged = self._log_change(conn, _CLEAR if emptied else _REMOVE, int(subject_id))
            self._erase_journal()
            self._wipe_index_files()
            self._index_removed(int(subject_id), template_ids, emptied)
            self._own_change_applied(*logged)
        return int(subject_id), name, int(template_ids.size)

    def _erase_journal(self) -> bool:
        """After a delete: copy the WAL into the database and truncate it to zero bytes, so the
        deleted templates' bytes survive in neither file.

        ``secure_delete`` zeroes a deleted row in the page it lived in, but the write-ahead log
        still holds the older copies of that page (the enrollment's frames) until a checkpoint
        overwrites the database pages and the log is truncated. Returns False (and logs why) when
        another connection's open read transaction kept the checkpoint from finishing; the next
        delete, or the last connection's close, completes it.
        """
        if self._path == ":memory:":
            return True
        try:
            busy, _, _ = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error as err:
            logger.warning("gallery %s: checkpoint after a delete failed: %s", self._path, err)
            return False
        if busy:
            logger.warning(
                "gallery %s: another connection is reading; the deleted templates stay in the WAL until the "
                "next checkpoint", self._path,
            )
        return not busy

    # ---------------------------------------------------------------- the change log

    def _last_seq(self, conn: sqlite3.Connection) -> int:
        """The largest change-log seq ever written (0 for none; survives pruning)."""
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").fetchone()
        return int(row[0]) if row is not None else 0

    def _pruned_through(self, conn: sqlite3.Connection) -> int:
        row = conn.execute("SELECT value FROM meta WHERE key = 'changes_pruned_through'").fetchone()
        return int(row[0]) if row is not None else 0

    def _log_change(self, conn: sqlite3.Connection, op: str, subject_id: int) -> tuple[int, int]:
        """Append one change-log row inside the caller's write transaction; prune old rows in
        batches. Returns ``(seq before, seq of this row)``."""
        before = self._last_seq(conn)
        cursor = conn.execute(
            "INSERT INTO changes(op, subject_id, created_at) VALUES (?, ?, ?)", (op, subject_id, _now())
        )
        seq = cast(int, cursor.lastrowid)
        keep = max(1, int(self.change_log_keep))
        if seq - keep - self._pruned_through(conn) >= max(1, keep // 10):
            conn.execute("DELETE FROM changes WHERE seq <= ?", (seq - keep,))
            conn.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('changes_pruned_through', ?)", (str(seq - keep),)
            )
        return before, seq

    def _own_change_applied(self, before: int, seq: int) -> None:
        """After a write of ours reached the index: the index now reflects log row ``seq`` too,
        if it reflected every row before it (else rows of other writers are still to apply)."""
        if self._tindex.ready and self._index_seq == before:
            self._index_seq = seq

    def _write_create(self, name: str, metadata: dict[str, Any]) -> Subject:
        with self._lock:
            with self._transaction() as conn:
                taken = conn.execute("SELECT id FROM subjects WHERE name = ?", (name,)).fetchone()
                if taken is not None:
                    raise SubjectExistsError(
                        f"a subject named {name!r} already exists (id {taken[0]}) in gallery {self._path}"
                    )
                cursor = conn.execute(
                    "INSERT INTO subjects(name, created_at, metadata) VALUES (?, ?, ?)",
                    (name, _now(), json.dumps(metadata, sort_keys=True)),
                )
                subject = self._subject(conn, self._subject_row(conn, cast(int, cursor.lastrowid)))
                logged = self._log_change(conn, _ENROLL, subject.id)
            if self._tindex.ready:  # a subject without templates: nothing to index, but its name is known
                self._tindex.renamed(subject.id, name)
                self._own_change_applied(*logged)
        return subject

    def _write_merge(self, source: str | int, target: str | int) -> tuple[Subject, str, int]:
        with self._lock:
            with self._transaction() as conn:
                source_id, source_name = self._subject_row(conn, source)[:2]
                target_id = self._subject_row(conn, target)[0]
                if source_id == target_id:
                    raise InvalidArgumentError(f"cannot merge subject {source_name!r} into itself")
                moved = conn.execute(
                    "UPDATE templates SET subject_id = ? WHERE subject_id = ?", (target_id, source_id)
                ).rowcount
                conn.execute("DELETE FROM subjects WHERE id = ?", (source_id,))
                self._log_change(conn, _REMOVE, int(source_id))
                self._log_change(conn, _ADD, int(target_id))
                subject = self._subject(conn, self._subject_row(conn, int(target_id)))
            self._invalidate_index()  # templates changed subject: rebuilt from the store on the next search
        return subject, str(source_name), int(moved)

    _EXAMPLE_COLUMNS = "t.id, t.subject_id, s.name, t.source, t.created_at, t.content_sha256"

    def _read_examples(
        self, subject: str | int | None, offset: int, limit: int | None
    ) -> tuple[list[Example], int]:
        with self._lock, self._snapshot() as conn:
            where, args = "", cast(tuple[int, ...], ())
            if subject is not None:
                where, args = " WHERE t.subject_id = ?", (int(self._subject_row(conn, subject)[0]),)
            joined = "FROM templates t JOIN subjects s ON s.id = t.subject_id"
            (total,) = conn.execute(f"SELECT COUNT(*) {joined}{where}", args).fetchone()
            rows = conn.execute(
                f"SELECT {self._EXAMPLE_COLUMNS} {joined}{where} ORDER BY t.id LIMIT ? OFFSET ?",
                (*args, -1 if limit is None else limit, offset),
            ).fetchall()
        examples = [Example(int(i), int(sid), n, src, t or "", digest) for i, sid, n, src, t, digest in rows]
        return examples, int(total)

    def _read_example(self, example_id: int) -> tuple[Example, Float32Array]:
        with self._lock, self._snapshot() as conn:
            row = conn.execute(
                f"SELECT {self._EXAMPLE_COLUMNS}, t.embedding FROM templates t JOIN subjects s ON s.id = t.subject_id "
                "WHERE t.id = ?",
                (example_id,),
            ).fetchone()
            _, dim = self._meta(conn)
        if row is None or dim is None:
            raise ExampleNotFoundError(f"no example with id {example_id} in gallery {self._path}")
        i, sid, name, src, created, digest, blob = row
        return Example(int(i), int(sid), name, src, created or "", digest), self._decode([int(i)], [blob], dim)[0]

    def _write_remove_examples(self, example_ids: list[int]) -> list[Example]:
        with self._lock:
            with self._transaction() as conn:
                found: dict[int, Example] = {}
                for chunk in _chunks(example_ids):
                    marks = ", ".join("?" * len(chunk))
                    for i, sid, name, src, created, digest in conn.execute(
                        f"SELECT {self._EXAMPLE_COLUMNS} FROM templates t JOIN subjects s ON s.id = t.subject_id "
                        f"WHERE t.id IN ({marks})",
                        chunk,
                    ):
                        found[int(i)] = Example(int(i), int(sid), name, src, created or "", digest)
                missing = [i for i in example_ids if i not in found]
                if missing:
                    raise ExampleNotFoundError(
                        f"no example with id {', '.join(map(str, missing[:10]))} in gallery {self._path}; "
                        "nothing was deleted"
                    )
                for chunk in _chunks(example_ids):
                    conn.execute(f"DELETE FROM templates WHERE id IN ({', '.join('?' * len(chunk))})", chunk)
                logged = [
                    (subject_id, self._log_change(conn, _REMOVE, subject_id))  # readers re-match these subjects
                    for subject_id in sorted({e.subject_id for e in found.values()})
                ]
            self._erase_journal()
            self._wipe_index_files()
            for subject_id, change in logged:  # in place: a rebuild of a large HNSW graph takes minutes
                gone = np.array(sorted(e.id for e in found.values() if e.subject_id == subject_id), dtype=np.int64)
                self._index_removed(subject_id, gone, emptied=False)
                self._own_change_applied(*change)
        return [found[i] for i in example_ids]

    # ---------------------------------------------------------------- index maintenance

    def _invalidate_index(self) -> None:
        self._tindex.invalidate()
        self._index_version = None
        self._index_seq = None

    @property
    def index_stats(self) -> IndexStats:
        """How often the in-memory index was built in full and refreshed from the change log."""
        with self._lock:
            seq = self._index_seq if self._tindex.ready else None
            return IndexStats(self._builds, self._refreshes, self._changes_applied, seq, self._loads)

    def _data_version(self, conn: sqlite3.Connection) -> int:
        return int(conn.execute("PRAGMA data_version").fetchone()[0])

    def rebuild_index(self) -> int:
        """Rebuild the in-memory vector index from the store; return the number of templates.

        Subjects and templates are read in one read transaction, so a commit by another connection
        meanwhile is either wholly in the index or not at all. The change counter
        (``PRAGMA data_version``) and the last change-log row are read in that same snapshot (the
        counter's read starts it), so the next search refreshes from exactly the commits after it.
        """
        with self._lock:
            self._invalidate_index()
            with self._snapshot() as conn:
                version = self._data_version(conn)  # first: it starts the snapshot
                seq = self._last_seq(conn)
                _, dim = self._meta(conn)
                names = {int(i): name for i, name in conn.execute("SELECT id, name FROM subjects")}
                rows = conn.execute("SELECT id, subject_id, embedding FROM templates ORDER BY id").fetchall()
            vectors = None
            if rows:
                if dim is None:
                    raise GalleryError(f"gallery {self._path} is corrupt: templates but no dimension")
                vectors = self._decode([r[0] for r in rows], [r[2] for r in rows], dim)
            self._tindex.build(
                np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)),
                np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows)),
                vectors,
                names,
            )
            self._index_version = version
            self._index_seq = seq
            self._builds += 1
            self._save_index()
        logger.debug("built %s index of %d template(s) for %s", self._index_name, len(rows), self._path)
        return len(rows)

    # ---------------------------------------------------------------- the saved HNSW graph

    def index_files(self) -> tuple[Path, Path, Path] | None:
        """Where an HNSW graph of this gallery is saved: ``(graph, maps, manifest)`` beside the
        database (``people.db.index.usearch``, ``.index.npz``, ``.index.json``); None where none is
        (in memory, and for encrypted templates, which the graph would hold in clear).

        A built HNSW graph is saved after each full build and when the gallery is closed with
        changes since; the next ``Gallery`` on the file loads it (after checking the manifest's
        sha256 of both files, the embedder and the index options) and applies the change log since
        it was saved, instead of building for minutes. Any deletion overwrites the files with zeros
        and removes them, so erased templates do not outlive the store in them; a graph that has had
        vectors removed is not saved again (usearch keeps a removed vector's bytes) until a full
        build, so the first open after a deletion builds from the store.
        """
        if self._path == ":memory:" or self._cipher is not None:
            return None
        base = Path(self._path)
        return (
            base.with_name(base.name + ".index.usearch"),
            base.with_name(base.name + ".index.npz"),
            base.with_name(base.name + ".index.json"),
        )

    def _index_options_key(self) -> dict[str, Any]:
        """The options a saved graph must have been built with (``ef`` is a search setting)."""
        return {k: v for k, v in sorted(self._tindex.options.items()) if k != "ef"}

    def _save_index(self) -> None:
        """Save the HNSW graph and its maps beside the database (caller holds the lock)."""
        files = self.index_files()
        graph = self._tindex.graph
        if files is None or graph is None or not self._tindex.ready or self._index_seq is None:
            return
        if graph.removed_any:  # the removed vectors' bytes are still in it: left for the next full build
            logger.debug("not saving the index of %s: it still holds removed vectors", self._path)
            return
        graph_file, maps_file, manifest = files
        temporary = [f.with_name(f.name + ".tmp") for f in files]
        started = time.perf_counter()
        try:
            graph.save(temporary[0])
            template_ids, subject_ids, names = self._tindex.maps()
            with open(temporary[1], "wb") as out:
                np.savez(
                    out, template_ids=template_ids, subject_ids=subject_ids,
                    name_ids=np.fromiter(names.keys(), dtype=np.int64, count=len(names)),
                    names=np.array(list(names.values()), dtype=np.str_),
                )
            fingerprint, dim = self._stored_embedder()
            record = {
                "format": INDEX_FILES_FORMAT, "index": self._index_name, "options": self._index_options_key(),
                "dim": dim, "fingerprint": fingerprint, "seq": self._index_seq, "templates": len(graph),
                "graph_sha256": _file_sha256(temporary[0]), "maps_sha256": _file_sha256(temporary[1]),
                "saved_at": _now(),
            }
            temporary[2].write_text(json.dumps(record, indent=1) + "\n")
            for tmp, final in zip(temporary, files, strict=True):
                os.chmod(tmp, 0o600)
                os.replace(tmp, final)  # the manifest last: it vouches for the other two
        except (OSError, ValueError, RuntimeError) as err:
            logger.warning("could not save the index of %s (%s); the next open rebuilds it", self._path, err)
            for tmp in temporary:
                tmp.unlink(missing_ok=True)
            return
        self._saved_seq = self._index_seq
        logger.info("saved the %s graph of %s (%d templates) in %.1f s", self._index_name, self._path,
                    len(graph), time.perf_counter() - started)

    def _load_index(self) -> bool:
        """Load the saved graph if it is this store's; True when the index is ready from it."""
        files = self.index_files()
        if files is None or not files[2].exists():
            return False
        why = self._try_load_index(files)
        if why is not None:
            self._invalidate_index()
            logger.info("not loading the saved index of %s: %s; building it from the store", self._path, why)
            return False
        return True

    def _try_load_index(self, files: tuple[Path, Path, Path]) -> str | None:
        graph_file, maps_file, manifest = files
        try:
            record = json.loads(manifest.read_text())
        except (OSError, ValueError) as err:
            return f"unreadable manifest ({err})"
        if not isinstance(record, dict) or record.get("format") != INDEX_FILES_FORMAT:
            return "not a faceprint index manifest"
        if record.get("index") != self._index_name or record.get("options") != self._index_options_key():
            return f"it was built as {record.get('index')!r} with options {record.get('options')}"
        with self._snapshot() as conn:
            version = self._data_version(conn)  # first: it starts the snapshot
            last, pruned = self._last_seq(conn), self._pruned_through(conn)
            fingerprint, dim = self._meta(conn)
        seq = record.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq > last:
            return "it names change-log rows this store does not have"
        if pruned > seq:
            return f"change-log rows after {seq} were pruned"
        if dim is None or record.get("dim") != dim or record.get("fingerprint") != fingerprint:
            return "it holds templates of another embedder"
        try:
            if _file_sha256(graph_file) != record.get("graph_sha256") or _file_sha256(maps_file) != record.get(
                "maps_sha256"
            ):
                return "its files do not match the manifest's sha256"
            with np.load(maps_file, allow_pickle=False) as maps:
                template_ids, subject_ids = maps["template_ids"], maps["subject_ids"]
                names = dict(zip(maps["name_ids"].tolist(), maps["names"].tolist(), strict=True))
            self._tindex.restore(int(dim), graph_file, template_ids, subject_ids, names)
        except Exception as err:  # noqa: BLE001 - any damage means: build from the store
            return f"it cannot be read ({type(err).__name__}: {err})"
        self._index_seq = self._saved_seq = seq
        self._index_version = version if last == seq else None  # else: apply the change log since
        self._loads += 1
        logger.info("loaded the saved %s graph of %s (%d templates, change-log row %d)", self._index_name,
                    self._path, len(self._tindex), seq)
        return None

    def _wipe_index_files(self) -> None:
        """After a delete: overwrite the saved graph files with zeros and remove them."""
        files = self.index_files()
        if files is None:
            return
        for path in files:
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            try:
                with open(path, "r+b") as f:
                    zeros = bytes(1 << 20)
                    for _ in range(0, size, len(zeros)):
                        f.write(zeros)
                    f.flush()
                    os.fsync(f.fileno())
                path.unlink()
            except OSError as err:
                logger.warning("could not wipe %s after a deletion: %s", path, err)
        self._saved_seq = None

    def _sync_index(self) -> None:
        """Bring the index up to date: build it when missing; when another connection has committed
        since (``PRAGMA data_version``, one cheap call per search), apply the change log, or rebuild
        when the log cannot be applied."""
        if not self._tindex.ready:
            self._load_index()  # the saved HNSW graph, when it is still this store's (else rebuilt below)
        if self._tindex.ready:
            with self._reading() as conn:
                if self._data_version(conn) == self._index_version:
                    return
            why = self._refresh_index()
            if why is None:
                return
            logger.debug("rebuilding the index of %s: %s", self._path, why)
        self.rebuild_index()

    def _refresh_index(self) -> str | None:
        """Apply the change-log rows the index has not seen; None when done, else why it cannot.

        The log rows, the current names and templates of the subjects they name, and the change
        counter are read in one snapshot. Each named subject is then made to match the store: its
        templates the index holds but the store does not are removed, the store's new ones added,
        its name updated, so the result does not depend on how the logged writes interleaved.
        """
        applied = self._index_seq
        if applied is None:
            return "no change-log position"
        with self._snapshot() as conn:
            version = self._data_version(conn)  # first: it starts the snapshot
            if self._pruned_through(conn) > applied:
                return f"change-log rows after {applied} were pruned"
            log = conn.execute(
                "SELECT seq, op, subject_id FROM changes WHERE seq > ? ORDER BY seq", (applied,)
            ).fetchall()
            if not log:
                return "a commit without change-log rows (a writer that does not log, or a WAL truncation)"
            if any(op == _CLEAR for _, op, _ in log):
                return "the gallery was emptied"
            _, dim = self._meta(conn)
            subject_ids = list(dict.fromkeys(int(r[2]) for r in log))
            names: dict[int, str] = {}
            current: dict[int, list[tuple[int, bytes]]] = {}
            for chunk in _chunks(subject_ids):
                marks = ", ".join("?" * len(chunk))
                names.update(conn.execute(f"SELECT id, name FROM subjects WHERE id IN ({marks})", chunk))
                for template_id, subject_id, blob in conn.execute(
                    f"SELECT t.id, t.subject_id, t.embedding FROM templates t WHERE t.subject_id IN ({marks})", chunk
                ):
                    current.setdefault(int(subject_id), []).append((int(template_id), blob))
        try:
            for subject_id in subject_ids:
                self._match_subject(subject_id, names.get(subject_id), current.get(subject_id, []), dim)
        except Exception as err:  # the index refused an update: rebuild from the store
            self._invalidate_index()
            return f"the index refused an update ({err})"
        self._index_version = version
        self._index_seq = int(log[-1][0])
        self._refreshes += 1
        self._changes_applied += len(log)
        logger.debug("refreshed the index of %s from %d change(s)", self._path, len(log))
        return None

    def _match_subject(
        self, subject_id: int, name: str | None, stored: list[tuple[int, bytes]], dim: int | None
    ) -> None:
        """Make the index's view of one subject equal the store's (``name`` None: no such subject)."""
        held = self._tindex.subject_templates(subject_id)
        in_store = {template_id for template_id, _ in stored}
        gone = sorted(held - in_store)
        if gone:
            self._tindex.removed(subject_id, np.array(gone, dtype=np.int64))
        if name is None:
            return
        new = sorted((t, blob) for t, blob in stored if t not in held)
        if new:
            if dim is None:
                raise GalleryError(f"gallery {self._path} is corrupt: templates but no dimension")
            ids = np.fromiter((t for t, _ in new), dtype=np.int64, count=len(new))
            self._tindex.added(subject_id, name, ids, self._decode(ids.tolist(), [blob for _, blob in new], dim))
        elif self._tindex.subject_name(subject_id) != name:
            self._tindex.renamed(subject_id, name)

    def _index_added(
        self, subject_id: int, name: str, template_ids: Int64Array, vectors: Float32Array
    ) -> None:
        if not self._tindex.ready:
            return
        try:
            self._tindex.added(subject_id, name, template_ids, vectors)
        except Exception:
            # The store already holds the templates; a fresh build on next search fixes the index.
            logger.exception("index update failed after enrollment; it will be rebuilt on next search")
            self._invalidate_index()

    def _index_removed(self, subject_id: int, template_ids: Int64Array, emptied: bool) -> None:
        if not self._tindex.ready:
            return
        if emptied:
            self._invalidate_index()
            return
        try:
            self._tindex.removed(subject_id, template_ids)
        except Exception:
            logger.exception("index update failed after removal; it will be rebuilt on next search")
            self._invalidate_index()

    # ---------------------------------------------------------------- search (hooks of BaseGallery)

    def _search_templates(self, queries: Float32Array, k: int) -> TemplateHits:
        with self._lock:
            self._sync_index()
            return self._tindex.search(queries, k)

    def _score_subjects(self, query: Float32Array, subject_ids: list[int]) -> list[tuple[int, str, float]]:
        with self._lock:
            self._sync_index()
            if self._tindex.can_score:
                return self._tindex.score(query, subject_ids)
        return super()._score_subjects(query, subject_ids)


SQLiteGallery = Gallery
"""The SQLite backend under its backend name (``Gallery`` is the name users know)."""
