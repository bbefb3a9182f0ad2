"""The gallery on Milvus: :class:`MilvusGallery`, through ``pymilvus``'s ``MilvusClient``.

``open_gallery("milvus://HOST:19530/faces")`` talks gRPC to a Milvus server (Standalone,
Distributed, or ``milvus-lite server``); ``open_gallery("milvus-lite:///people.db")`` keeps the
gallery in a Milvus Lite file, in process. Both need the ``[milvus]`` extra (``pymilvus``,
``milvus-lite``); nothing here imports them until a Milvus gallery is opened.

Two collections per gallery (``NAME`` from the URL):

- ``NAME``: one row per template: ``id`` (primary key), ``subject_id``, ``fingerprint`` (the
  embedder's, and ``fingerprint_key``, its sha256 that searches filter on), ``source``,
  ``content_sha256``, ``created_at`` and ``vector`` (FLOAT_VECTOR, an HNSW index with the COSINE
  metric). Created by the first enrollment (which fixes the dimension), dropped when the last
  subject goes, so that the gallery forgets its model as the SQLite backend does.
- ``NAME_subjects``: one row per subject: ``id``, ``name`` (and ``name_key``, its sha256, that
  look-ups by name filter on), ``created_at``, ``metadata`` (JSON text), and a 2-d ``pad`` vector
  that Milvus requires of every collection. Row 0 holds the gallery's own record: format,
  fingerprint and dimension. A subject's name lives only here, so a rename is one write.

Both collections use Strong consistency: a search sees every write acknowledged before it.

Milvus has no transactions and no unique keys. What that means here:

- one write is one Milvus insert, upsert or delete; an operation that touches both collections
  (enrolling a new subject, removing one) writes the subject row first and undoes it if the
  templates' write fails, but a process killed between the two writes can leave a subject without
  its templates, or templates whose subject is gone (searches skip those);
- names are unique and ids are allocated per process (``BaseGallery``'s lock): run one writing
  process per gallery (e.g. ``faceprint serve`` with one worker); readers may be many;
- ids are 63-bit: microseconds since 1970 shifted left by 10 bits, plus 10 random bits,
  increasing within a process and unlikely to collide between processes; beyond 2**53, so a
  JavaScript client must not parse them as numbers (the CompreFace routes give them as UUIDs).

Filters never carry user text: names, fingerprints and digests are compared by their hex sha256
(Milvus Lite does not take filter parameters), so a hostile name cannot change a query.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np
import numpy.typing as npt

from faceprint.errors import (
    ExampleNotFoundError,
    GalleryError,
    InvalidArgumentError,
    InvalidSubjectError,
    SubjectExistsError,
    SubjectNotFoundError,
)

from .base import (
    BaseGallery,
    Example,
    Subject,
    TemplateBatch,
    TemplateHits,
    new_content_rows,
    template_similarities,
    validate_name_or_id,
)
from .index import DEFAULT_CONNECTIVITY, DEFAULT_EF, DEFAULT_EXPANSION_ADD

__all__ = ["MilvusGallery", "MILVUS_FORMAT", "MAX_TOP_K", "COLLECTION_NAME"]

logger = logging.getLogger(__name__)

Float32Array = npt.NDArray[np.float32]

MILVUS_FORMAT = "faceprint-milvus/1"
"""The ``format`` of a gallery's own record (row 0 of ``NAME_subjects``)."""

MAX_TOP_K = 16384
"""Most hits one Milvus search returns per query (Milvus's own limit): ``k`` above it is cut to it."""

COLLECTION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,200}$")
"""A collection name this backend accepts (Milvus allows 255 characters; ``_subjects`` is appended)."""

_MAX_VARCHAR = 65535
_PAGE = 16384  # rows per query (Milvus caps offset + limit at 16384); larger reads use an iterator
_IN_CHUNK = 1000  # ids per "in [...]" filter
_PAD = [1.0, 0.0]
_META_ID = 0
_ALL = "id > 0"
_SUBJECT_FIELDS = ["id", "name", "created_at", "metadata"]
_EXAMPLE_FIELDS = ["id", "subject_id", "source", "created_at", "content_sha256"]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _key(text: str) -> str:
    """The hex sha256 a filter compares instead of ``text`` (no user text in a Milvus expression)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _utf8_length(text: str, what: str) -> int:
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidSubjectError(f"expected {what} as valid Unicode text, got {ascii(text)[:80]}") from None


def _chunks(values: Sequence[Any], size: int = _IN_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _in(field: str, values: Iterable[int | str]) -> str:
    """``field in [...]`` of ints or hex keys (never user text)."""
    items = ", ".join(str(int(v)) if isinstance(v, (int, np.integer)) else f'"{v}"' for v in values)
    return f"{field} in [{items}]"


class _Ids:
    """Template and subject ids: increasing within the process, 63-bit, unlikely to collide across processes."""

    _lock = threading.Lock()
    _last_us = 0

    @classmethod
    def take(cls, n: int) -> list[int]:
        with cls._lock:
            start = max(time.time_ns() // 1000, cls._last_us + 1)
            cls._last_us = start + n - 1
        noise = secrets.randbits(10)
        return [((start + i) << 10) | noise for i in range(n)]


class _Client:
    """``MilvusClient`` whose errors come out as :class:`GalleryError` naming the gallery."""

    def __init__(self, client: Any, where: str, error: type[BaseException]) -> None:
        self._client = client
        self._where = where
        self._error = error

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._client, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except self._error as err:
                message = getattr(err, "message", None) or str(err)
                raise GalleryError(f"Milvus gallery {self._where}: {name} failed: {message}") from err

        return call


class MilvusGallery(BaseGallery):
    """A gallery whose subjects and templates live in Milvus (see the module docstring for the schema).

    Parameters
    ----------
    uri : str
        What ``MilvusClient`` connects to: ``http://host:19530`` (gRPC; ``https://`` for TLS) or
        the path of a Milvus Lite file (``people.db``).
    collection : str
        The templates collection's name (letters, digits, ``_``; not starting with a digit);
        ``collection + "_subjects"`` holds the subjects.
    token : str, optional
        Milvus credentials (``user:password`` or an API key); default none.
    db_name : str, optional
        Milvus database; default the server's default database.
    ef : int, default 256
        Candidates an HNSW search visits (at least ``k``): recall against time.
    connectivity : int, default 16
        HNSW ``M`` (links per node) of a templates collection this gallery creates.
    expansion_add : int, default 128
        HNSW ``efConstruction`` of a templates collection this gallery creates.
    timeout : float, default 30
        Seconds a Milvus call may take.
    display : str, optional
        What :attr:`path` shows (the URL, without credentials); default ``uri``.

    Raises
    ------
    GalleryError
        ``pymilvus`` is not installed (``pip install 'faceprint[milvus]'``), the server cannot be
        reached, or the collections exist but are not a faceprint gallery.
    InvalidArgumentError
        A bad collection name or option.
    """

    def __init__(
        self,
        uri: str,
        collection: str = "faceprint",
        *,
        token: str | None = None,
        db_name: str | None = None,
        ef: int = DEFAULT_EF,
        connectivity: int = DEFAULT_CONNECTIVITY,
        expansion_add: int = DEFAULT_EXPANSION_ADD,
        timeout: float = 30.0,
        display: str | None = None,
    ) -> None:
        super().__init__()
        self._client: _Client | None = None
        self._embedder: tuple[str | None, int | None] = (None, None)  # as _stored_embedder last read it
        self._display = display or uri
        if not isinstance(collection, str) or not COLLECTION_NAME.match(collection):
            raise InvalidArgumentError(
                f"expected a Milvus collection name of letters, digits and _ (not starting with a digit, "
                f"at most 201 characters), got {ascii(collection)[:80]}"
            )
        for what, value in (("ef", ef), ("connectivity", connectivity), ("expansion_add", expansion_add)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidArgumentError(f"Milvus gallery option {what} must be a positive integer, got {value!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < 1e6:
            raise InvalidArgumentError(f"Milvus gallery option timeout must be a positive number, got {timeout!r}")
        self._uri = uri
        self._templates_name = collection
        self._subjects_name = f"{collection}_subjects"
        self.ef = ef
        self._connectivity = connectivity
        self._expansion_add = expansion_add
        self._timeout = float(timeout)
        try:
            from pymilvus import MilvusClient
            from pymilvus.exceptions import MilvusException
        except ImportError as err:
            raise GalleryError(
                f"a Milvus gallery needs pymilvus (pip install 'faceprint[milvus]'): {err}"
            ) from err
        try:
            raw = MilvusClient(uri=uri, token=token or "", db_name=db_name or "", timeout=self._timeout)
        except MilvusException as err:
            raise GalleryError(f"cannot connect to Milvus gallery {self._display}: {err.message}") from err
        except Exception as err:  # grpc / lite start-up errors are not MilvusExceptions
            raise GalleryError(f"cannot connect to Milvus gallery {self._display}: {err}") from err
        self._client = _Client(raw, self._display, MilvusException)
        try:
            self._open_collections()
        except BaseException:
            self.close()
            raise

    # ---------------------------------------------------------------- collections

    @property
    def _db(self) -> _Client:
        if self._client is None:
            raise GalleryError(f"Milvus gallery {self._display} is closed")
        return self._client

    def _open_collections(self) -> None:
        db = self._db
        if not db.has_collection(self._subjects_name):
            if db.has_collection(self._templates_name):
                raise GalleryError(
                    f"Milvus collection {self._templates_name!r} exists but is not a faceprint gallery "
                    f"(no {self._subjects_name!r} beside it); choose another collection name"
                )
            self._create_subjects_collection()
        self._load(self._subjects_name)
        record = self._record()
        if record is None:
            raise GalleryError(
                f"Milvus collection {self._subjects_name!r} is not a faceprint gallery (no record row); "
                "choose another collection name"
            )
        if record.get("format") != MILVUS_FORMAT:
            raise GalleryError(
                f"Milvus gallery {self._display} has format {record.get('format')!r}; this faceprint reads "
                f"{MILVUS_FORMAT!r}"
            )
        if db.has_collection(self._templates_name):
            self._check_templates_schema()
            self._load(self._templates_name)

    def _load(self, name: str) -> None:
        state = str(self._db.get_load_state(name).get("state", ""))
        if not state.endswith("Loaded"):
            self._db.load_collection(name)

    def _create_subjects_collection(self) -> None:
        from pymilvus import DataType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("name", DataType.VARCHAR, max_length=1024)
        schema.add_field("name_key", DataType.VARCHAR, max_length=64)
        schema.add_field("created_at", DataType.VARCHAR, max_length=64)
        schema.add_field("metadata", DataType.VARCHAR, max_length=_MAX_VARCHAR)
        schema.add_field("pad", DataType.FLOAT_VECTOR, dim=2)
        params = self._db.prepare_index_params()
        params.add_index(field_name="pad", index_type="FLAT", metric_type="L2")
        self._create_collection(self._subjects_name, schema, params)
        self._write_record(None, None)
        logger.info("created Milvus gallery %s", self._display)

    def _create_templates_collection(self, dim: int) -> None:
        from pymilvus import DataType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("subject_id", DataType.INT64)
        schema.add_field("fingerprint", DataType.VARCHAR, max_length=1024)
        schema.add_field("fingerprint_key", DataType.VARCHAR, max_length=64)
        schema.add_field("source", DataType.VARCHAR, max_length=_MAX_VARCHAR, nullable=True)
        schema.add_field("content_sha256", DataType.VARCHAR, max_length=256, nullable=True)
        schema.add_field("created_at", DataType.VARCHAR, max_length=64)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        params = self._db.prepare_index_params()
        params.add_index(
            field_name="vector", index_type="HNSW", metric_type="COSINE",
            params={"M": self._connectivity, "efConstruction": self._expansion_add},
        )
        self._create_collection(self._templates_name, schema, params)

    def _create_collection(self, name: str, schema: Any, params: Any) -> None:
        """Create, index (without pymilvus's half-second polls for an empty collection's index) and load."""
        self._db.create_collection(name, schema=schema, consistency_level="Strong")
        self._db.create_index(name, params, sync=False)
        self._db.load_collection(name)

    def _check_templates_schema(self) -> None:
        fields = {f["name"] for f in self._db.describe_collection(self._templates_name)["fields"]}
        wanted = {"id", "subject_id", "fingerprint", "fingerprint_key", "source", "content_sha256", "created_at",
                  "vector"}
        if not wanted <= fields:
            raise GalleryError(
                f"Milvus collection {self._templates_name!r} is not a faceprint templates collection "
                f"(missing fields {sorted(wanted - fields)})"
            )

    def _record(self) -> dict[str, Any] | None:
        rows = self._db.query(self._subjects_name, filter=f"id == {_META_ID}", output_fields=["metadata"])
        if not rows:
            return None
        try:
            record = json.loads(rows[0]["metadata"])
        except (TypeError, ValueError) as err:
            raise GalleryError(f"Milvus gallery {self._display}: its record row is not JSON: {err}") from err
        return record if isinstance(record, dict) else None

    def _write_record(self, fingerprint: str | None, dim: int | None) -> None:
        record = {"format": MILVUS_FORMAT, "fingerprint": fingerprint, "dim": dim}
        self._db.upsert(self._subjects_name, [
            {"id": _META_ID, "name": "", "name_key": "", "created_at": _now(),
             "metadata": json.dumps(record, sort_keys=True), "pad": _PAD}
        ])

    # ---------------------------------------------------------------- reading helpers

    def _scan(self, collection: str, filter: str, fields: list[str]) -> list[dict[str, Any]]:
        """Every row matching ``filter`` (one query, or an iterator past Milvus's 16,384-row cap)."""
        rows = self._db.query(collection, filter=filter, output_fields=fields, limit=_PAGE)
        if len(rows) < _PAGE:
            return list(rows)
        iterator = self._db.query_iterator(collection, batch_size=_PAGE, filter=filter, output_fields=fields)
        out: list[dict[str, Any]] = []
        try:
            while batch := iterator.next():
                out.extend(batch)
        finally:
            iterator.close()
        return out

    def _has_templates(self) -> bool:
        return bool(self._db.has_collection(self._templates_name))

    def _count(self, collection: str, filter: str) -> int:
        rows = self._db.query(collection, filter=filter, output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def _subject_rows(self, filter: str) -> list[dict[str, Any]]:
        return self._scan(self._subjects_name, filter, _SUBJECT_FIELDS)

    def _find(self, name_or_id: str | int) -> dict[str, Any]:
        """The subject row with this name or id; :class:`SubjectNotFoundError` if none."""
        if isinstance(name_or_id, str):
            rows = self._subject_rows(f'name_key == "{_key(name_or_id.strip())}"')
        else:
            rows = self._subject_rows(f"id == {int(name_or_id)}") if int(name_or_id) > 0 else []
        if not rows:
            what = f"named {name_or_id!r}" if isinstance(name_or_id, str) else f"with id {int(name_or_id)}"
            raise SubjectNotFoundError(f"no subject {what} in gallery {self._display}")
        return rows[0]

    def _counts(self, subject_ids: Sequence[int] | None) -> dict[int, int]:
        """Templates per subject (of these subjects, or of all)."""
        if not self._has_templates():
            return {}
        counts: dict[int, int] = {}
        filters = [_ALL] if subject_ids is None else [_in("subject_id", c) for c in _chunks(list(subject_ids))]
        for filter in filters:
            for row in self._scan(self._templates_name, filter, ["subject_id"]):
                counts[int(row["subject_id"])] = counts.get(int(row["subject_id"]), 0) + 1
        return counts

    def _subject(self, row: dict[str, Any], n_templates: int | None = None) -> Subject:
        subject_id = int(row["id"])
        if n_templates is None:
            n_templates = self._counts([subject_id]).get(subject_id, 0)
        metadata = json.loads(row["metadata"]) if row.get("metadata") else {}
        return Subject(subject_id, row["name"], n_templates, row["created_at"], metadata)

    def _names(self, subject_ids: Iterable[int]) -> dict[int, str]:
        ids = sorted({int(i) for i in subject_ids if int(i) > 0})
        names: dict[int, str] = {}
        for chunk in _chunks(ids):
            for row in self._db.query(self._subjects_name, filter=_in("id", chunk), output_fields=["id", "name"],
                                      limit=len(chunk)):
                names[int(row["id"])] = row["name"]
        return names

    def _template_rows(self, filter: str, fields: list[str]) -> list[dict[str, Any]]:
        if not self._has_templates():
            return []
        rows = self._scan(self._templates_name, filter, fields)
        rows.sort(key=lambda r: int(r["id"]))
        return rows

    def _vectors(self, rows: Sequence[dict[str, Any]], dim: int) -> Float32Array:
        if not rows:
            return np.empty((0, dim), np.float32)
        return np.asarray([r["vector"] for r in rows], dtype=np.float32).reshape(len(rows), dim)

    def _example(self, row: dict[str, Any], names: dict[int, str]) -> Example:
        return Example(
            int(row["id"]), int(row["subject_id"]), names.get(int(row["subject_id"]), ""),
            row.get("source"), row.get("created_at") or "", row.get("content_sha256"),
        )

    # ---------------------------------------------------------------- hooks of BaseGallery: reads

    @property
    def path(self) -> str:
        """The gallery's URL (without credentials)."""
        return self._display

    def _stored_embedder(self) -> tuple[str | None, int | None]:
        record = self._record() or {}
        fingerprint, dim = record.get("fingerprint"), record.get("dim")
        self._embedder = (fingerprint if isinstance(fingerprint, str) else None), (
            int(dim) if isinstance(dim, int) else None)
        return self._embedder

    @property
    def n_templates(self) -> int:
        """Total number of stored templates."""
        with self._lock:
            return self._count(self._templates_name, _ALL) if self._has_templates() else 0

    def __len__(self) -> int:
        with self._lock:
            return self._count(self._subjects_name, _ALL)

    def __repr__(self) -> str:
        state = "closed" if self._client is None else "open"
        return f"MilvusGallery({self._display!r}) [{state}]"

    def subjects(self) -> list[Subject]:
        """All subjects, ordered by name."""
        with self._lock:
            rows = self._subject_rows(_ALL)
            counts = self._counts(None)
        rows.sort(key=lambda r: r["name"])
        return [self._subject(r, counts.get(int(r["id"]), 0)) for r in rows]

    def get(self, name_or_id: str | int) -> Subject:
        """The subject with this name (str) or id (int); :class:`SubjectNotFoundError` if none."""
        with self._lock:
            return self._subject(self._find(validate_name_or_id(name_or_id)))

    def templates(self, name_or_id: str | int) -> Float32Array:
        """The templates of one subject, shape (n, d) float32, in enrollment order."""
        with self._lock:
            row = self._find(validate_name_or_id(name_or_id))
            _, dim = self._stored_embedder()
            rows = self._template_rows(f"subject_id == {int(row['id'])}", ["id", "vector"])
        return self._vectors(rows, dim or 0)

    def content_hashes(self, name_or_id: str | int) -> frozenset[str]:
        """The content digests of one subject's stored templates (those enrolled with one)."""
        with self._lock:
            row = self._find(validate_name_or_id(name_or_id))
            return self._digests(int(row["id"]))

    def _digests(self, subject_id: int) -> frozenset[str]:
        rows = self._template_rows(f"subject_id == {subject_id}", ["id", "content_sha256"])
        return frozenset(r["content_sha256"] for r in rows if r.get("content_sha256"))

    def _resolve(self, names_or_ids: Sequence[str | int], *, missing_ok: bool) -> list[int]:
        names = list(dict.fromkeys(x.strip() for x in names_or_ids if isinstance(x, str)))
        ids = list(dict.fromkeys(int(x) for x in names_or_ids if not isinstance(x, str) and int(x) > 0))
        by_key: dict[str, int] = {}
        known: set[int] = set()
        for chunk in _chunks([_key(n) for n in names]):
            for row in self._db.query(self._subjects_name, filter=_in("name_key", chunk),
                                      output_fields=["id", "name_key"], limit=len(chunk)):
                by_key[row["name_key"]] = int(row["id"])
        for chunk in _chunks(ids):
            for row in self._db.query(self._subjects_name, filter=_in("id", chunk), output_fields=["id"],
                                      limit=len(chunk)):
                known.add(int(row["id"]))
        out: list[int] = []
        for item in names_or_ids:
            found = by_key.get(_key(item.strip())) if isinstance(item, str) else (int(item) if int(item) in known
                                                                                  else None)
            if found is None:
                if missing_ok:
                    continue
                what = f"named {item!r}" if isinstance(item, str) else f"with id {int(item)}"
                raise SubjectNotFoundError(f"no subject {what} in gallery {self._display}")
            out.append(found)
        return list(dict.fromkeys(out))

    def _read_templates(self, subject_ids: Sequence[int] | None) -> TemplateBatch:
        fingerprint, dim = self._stored_embedder()
        if subject_ids is None:
            names = {int(r["id"]): r["name"] for r in self._subject_rows(_ALL)}
            rows = [r for r in self._template_rows(_ALL, ["id", "subject_id", "vector"])
                    if int(r["subject_id"]) in names]
            rows.sort(key=lambda r: names[int(r["subject_id"])])  # stable: by id within a subject
        else:
            names = self._names(subject_ids)
            rows = []
            for chunk in _chunks(list(subject_ids)):
                rows.extend(self._template_rows(_in("subject_id", chunk), ["id", "subject_id", "vector"]))
            rank = {subject_id: i for i, subject_id in enumerate(subject_ids)}
            rows.sort(key=lambda r: (rank[int(r["subject_id"])], int(r["id"])))
        if not rows or dim is None:
            return TemplateBatch(np.empty(0, np.int64), (), np.empty((0, dim or 0), np.float32), fingerprint)
        return TemplateBatch(
            subject_ids=np.fromiter((int(r["subject_id"]) for r in rows), dtype=np.int64, count=len(rows)),
            names=tuple(names[int(r["subject_id"])] for r in rows),
            embeddings=self._vectors(rows, dim),
            fingerprint=fingerprint,
        )

    def _read_examples(
        self, subject: str | int | None, offset: int, limit: int | None
    ) -> tuple[list[Example], int]:
        filter = _ALL if subject is None else f"subject_id == {int(self._find(subject)['id'])}"
        rows = self._template_rows(filter, _EXAMPLE_FIELDS)
        page = rows[offset:] if limit is None else rows[offset : offset + limit]
        names = self._names(int(r["subject_id"]) for r in page)
        return [self._example(r, names) for r in page], len(rows)

    def _read_example(self, example_id: int) -> tuple[Example, Float32Array]:
        _, dim = self._stored_embedder()
        rows = [] if dim is None or example_id <= 0 else self._template_rows(
            f"id == {example_id}", [*_EXAMPLE_FIELDS, "vector"])
        names = self._names(int(r["subject_id"]) for r in rows)
        rows = [r for r in rows if int(r["subject_id"]) in names]
        if not rows or dim is None:
            raise ExampleNotFoundError(f"no example with id {example_id} in gallery {self._display}")
        return self._example(rows[0], names), self._vectors(rows, dim)[0]

    # ---------------------------------------------------------------- search

    def _search_templates(self, queries: Float32Array, k: int) -> TemplateHits:
        # BaseGallery read the record under the same lock hold just before: its fingerprint is current,
        # and a gallery with a fingerprint has its templates collection (both go together)
        fingerprint, _ = self._embedder
        if fingerprint is None:
            return TemplateHits(np.empty((queries.shape[0], 0), np.float32),
                                np.empty((queries.shape[0], 0), np.int64), {})
        limit = min(k, MAX_TOP_K)
        results = self._db.search(
            self._templates_name,
            data=[row for row in queries],
            anns_field="vector",
            limit=limit,
            filter=f'fingerprint_key == "{_key(fingerprint)}"',
            group_by_field="subject_id",
            output_fields=["subject_id", "vector"],
            search_params={"metric_type": "COSINE", "params": {"ef": max(self.ef, limit)}},
        )
        width = max((len(hits) for hits in results), default=0)
        sims = np.full((queries.shape[0], width), -np.inf, np.float32)
        subject_ids = np.full((queries.shape[0], width), -1, np.int64)
        for i, hits in enumerate(results):
            if not hits:
                continue
            stored = np.asarray([hit["entity"]["vector"] for hit in hits], dtype=np.float32)
            sims[i, : len(hits)] = template_similarities(stored, queries[i])  # Milvus found them; scored as score()
            subject_ids[i, : len(hits)] = [int(hit["entity"]["subject_id"]) for hit in hits]
        names = self._names(subject_ids[subject_ids >= 0].tolist())
        orphan = (subject_ids >= 0) & ~np.isin(subject_ids, np.fromiter(names, np.int64, len(names)))
        subject_ids[orphan] = -1  # templates whose subject row is gone (a write interrupted between collections)
        return TemplateHits(sims, subject_ids, names)

    # ---------------------------------------------------------------- hooks of BaseGallery: writes

    def _check_storable(self, sources: list[str | None], metadata: dict[str, Any]) -> str:
        for source in sources:
            if source is not None and _utf8_length(source, "a source") > _MAX_VARCHAR:
                raise InvalidSubjectError(f"a source may have at most {_MAX_VARCHAR} bytes in a Milvus gallery")
        text = json.dumps(metadata, sort_keys=True)
        if _utf8_length(text, "metadata") > _MAX_VARCHAR:
            raise InvalidSubjectError(f"metadata may have at most {_MAX_VARCHAR} bytes of JSON in a Milvus gallery")
        return text

    def _subject_entity(self, subject_id: int, name: str, created_at: str, metadata: str) -> dict[str, Any]:
        return {"id": subject_id, "name": name, "name_key": _key(name), "created_at": created_at,
                "metadata": metadata, "pad": _PAD}

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
        metadata_text = self._check_storable(sources, metadata)
        _utf8_length(fingerprint, "an embedder fingerprint")
        stored_fingerprint, stored_dim = self._stored_embedder()
        self._check_embedder(stored_fingerprint, stored_dim, fingerprint, dim)
        try:
            row: dict[str, Any] | None = self._find(subject)
        except SubjectNotFoundError:
            if not create:
                raise
            row = None
        held = self._digests(int(row["id"])) if row is not None and any(d is not None for d in digests) else set()
        keep = new_content_rows(held, digests)
        skipped = tuple(i for i in range(len(digests)) if i not in set(keep))
        if stored_fingerprint is None or not self._has_templates():  # (the latter: a removal interrupted)
            if stored_fingerprint is None and self._has_templates():  # left by an interrupted removal
                self._db.drop_collection(self._templates_name)
            self._create_templates_collection(dim)
            self._write_record(fingerprint, dim)
        created = row is None
        if row is None:
            (subject_id,) = _Ids.take(1)
            row = self._subject_entity(subject_id, str(subject), min(row_times, default=now), metadata_text)
            self._db.insert(self._subjects_name, [row])
        elif metadata:
            merged = json.loads(row["metadata"]) if row.get("metadata") else {}
            merged.update(metadata)
            row = self._subject_entity(int(row["id"]), row["name"], row["created_at"],
                                       self._check_storable([], merged))
            self._db.upsert(self._subjects_name, [row])
        subject_id = int(row["id"])
        if keep:
            ids = _Ids.take(len(keep))
            key = _key(fingerprint)
            entities = [
                {"id": template_id, "subject_id": subject_id, "fingerprint": fingerprint, "fingerprint_key": key,
                 "source": sources[i], "content_sha256": digests[i], "created_at": row_times[i],
                 "vector": vectors[i]}
                for template_id, i in zip(ids, keep, strict=True)
            ]
            try:
                self._db.insert(self._templates_name, entities)
            except GalleryError:
                if created:  # no subject without the templates it was created for
                    self._db.delete(self._subjects_name, ids=[subject_id])
                raise
        return self._subject(row), created, skipped

    def _write_rename(self, name_or_id: str | int, new_name: str) -> tuple[Subject, str]:
        row = self._find(name_or_id)
        old_name = row["name"]
        if new_name != old_name:
            try:
                taken = self._find(new_name)
            except SubjectNotFoundError:
                taken = None
            if taken is not None:
                raise SubjectExistsError(
                    f"cannot rename {old_name!r} to {new_name!r}: that name already belongs to subject id "
                    f"{taken['id']} in gallery {self._display}"
                )
            row = self._subject_entity(int(row["id"]), new_name, row["created_at"], row["metadata"])
            self._db.upsert(self._subjects_name, [row])
        return self._subject(row), old_name

    def _compact(self, *names: str) -> None:
        """Ask Milvus to compact after a deletion: a deleted row's bytes stay in its segment until then."""
        for name in names:
            try:
                self._db.compact(name)
            except GalleryError as err:  # erasure went through; reclaiming the bytes is Milvus's job
                logger.warning("Milvus gallery %s: compaction request failed: %s", self._display, err)

    def _write_remove(self, name_or_id: str | int) -> tuple[int, str, int]:
        row = self._find(name_or_id)
        subject_id = int(row["id"])
        n = self._counts([subject_id]).get(subject_id, 0)
        self._db.delete(self._subjects_name, ids=[subject_id])
        if n:
            self._db.delete(self._templates_name, filter=f"subject_id == {subject_id}")
            self._compact(self._templates_name)
        if self._count(self._subjects_name, _ALL) == 0:
            if self._has_templates():
                self._db.drop_collection(self._templates_name)
            self._write_record(None, None)
        return subject_id, row["name"], n

    def _write_create(self, name: str, metadata: dict[str, Any]) -> Subject:
        metadata_text = self._check_storable([], metadata)
        try:
            taken = self._find(name)
        except SubjectNotFoundError:
            taken = None
        if taken is not None:
            raise SubjectExistsError(f"a subject named {name!r} already exists (id {taken['id']}) in gallery "
                                     f"{self._display}")
        (subject_id,) = _Ids.take(1)
        row = self._subject_entity(subject_id, name, _now(), metadata_text)
        self._db.insert(self._subjects_name, [row])
        return self._subject(row, 0)

    def _write_merge(self, source: str | int, target: str | int) -> tuple[Subject, str, int]:
        source_row, target_row = self._find(source), self._find(target)
        source_id, target_id = int(source_row["id"]), int(target_row["id"])
        if source_id == target_id:
            raise InvalidArgumentError(f"cannot merge subject {source_row['name']!r} into itself")
        fields = ["id", "subject_id", "fingerprint", "fingerprint_key", "source", "content_sha256", "created_at",
                  "vector"]
        rows = self._template_rows(f"subject_id == {source_id}", fields)
        for chunk in _chunks(rows, 1000):
            self._db.upsert(self._templates_name, [{**r, "subject_id": target_id} for r in chunk])
        self._db.delete(self._subjects_name, ids=[source_id])
        return self._subject(target_row), source_row["name"], len(rows)

    def _write_remove_examples(self, example_ids: list[int]) -> list[Example]:
        rows: list[dict[str, Any]] = []
        positive = [i for i in example_ids if i > 0]
        for chunk in _chunks(positive):
            rows.extend(self._template_rows(_in("id", chunk), _EXAMPLE_FIELDS))
        names = self._names(int(r["subject_id"]) for r in rows)
        found = {int(r["id"]): self._example(r, names) for r in rows if int(r["subject_id"]) in names}
        missing = [i for i in example_ids if i not in found]
        if missing:
            raise ExampleNotFoundError(
                f"no example with id {', '.join(map(str, missing[:10]))} in gallery {self._display}; "
                "nothing was deleted"
            )
        for chunk in _chunks(example_ids):
            self._db.delete(self._templates_name, ids=list(chunk))
        self._compact(self._templates_name)
        return [found[i] for i in example_ids]

    def close(self) -> None:
        """Close the connection; idempotent."""
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except GalleryError as err:
                logger.warning("closing Milvus gallery %s: %s", self._display, err)
