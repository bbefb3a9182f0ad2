"""The audit trail: who (key id) did what (enroll, delete, search, verify, ...), when, to which
subject, in which request. Append-only: there is no update or delete API, and SQLite triggers
refuse ``UPDATE`` and ``DELETE`` on the table, whoever connects.

``faceprint serve`` appends one entry per state-changing and per recognition request (its status
too, so refused and failed attempts are on record); ``faceprint keys create`` / ``revoke`` append
``key-create`` / ``key-revoke``. ``GET /v1/audit`` and ``faceprint audit`` both read it with
:meth:`AuditLog.query`.

Examples
--------
>>> with AuditLog(":memory:") as log:
...     _ = log.record("enroll", key_id="0123456789ab", collection="default", subject="ann", status=201)
...     page = log.query(action="enroll")
...     page.total, page.entries[0].subject
(1, 'ann')
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .errors import FaceprintError, InvalidArgumentError
from .sqlite_file import SQLiteFile

__all__ = ["ACTIONS", "AuditEntry", "AuditLog", "AuditPage", "parse_time"]

ACTIONS: tuple[str, ...] = (
    "enroll",
    "create",
    "rename",
    "delete",
    "search",
    "verify",
    "detect",
    "liveness",
    "export",
    "import",
    "purge",
    "key-create",
    "key-revoke",
)
"""What an entry records; :meth:`AuditLog.record` refuses any other action."""

MAX_PAGE = 1000
"""The most entries one :meth:`AuditLog.query` returns."""

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    key_id TEXT,
    action TEXT NOT NULL,
    collection TEXT,
    subject TEXT,
    request_id TEXT,
    status INTEGER,
    detail TEXT NOT NULL DEFAULT '{}'
)""",
    "CREATE INDEX IF NOT EXISTS audit_at ON audit(at)",
    "CREATE INDEX IF NOT EXISTS audit_subject ON audit(subject)",
    """CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: no UPDATE'); END""",
    """CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: no DELETE'); END""",
)


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def parse_time(value: str | datetime | None, what: str = "time") -> str | None:
    """An ISO 8601 time (a naive one is UTC) in the form entries store, for comparisons.

    Examples
    --------
    >>> parse_time("2026-01-02T03:04:05")
    '2026-01-02T03:04:05.000+00:00'
    >>> parse_time("2026-01-02")
    '2026-01-02T00:00:00.000+00:00'
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value
        try:
            value = datetime.fromisoformat(text.strip())
        except ValueError:
            raise InvalidArgumentError(
                f"expected {what} as an ISO 8601 time such as 2026-01-02T03:04:05Z, got {text[:64]!r}"
            ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return _iso(value)


@dataclass(frozen=True)
class AuditEntry:
    """One audit record.

    Attributes
    ----------
    id : int
        Increasing with time of writing.
    at : str
        ISO 8601 UTC time, milliseconds.
    key_id : str or None
        The API key's id (``None``: the command line).
    action : str
        One of :data:`ACTIONS`.
    collection, subject, request_id : str or None
        Where, on whom, and the request's ``x-request-id``.
    status : int or None
        The HTTP status answered (``None`` outside the service).
    detail : dict
        Small facts of the action (faces found, subjects matched, example ids).
    """

    id: int
    at: str
    key_id: str | None
    action: str
    collection: str | None
    subject: str | None
    request_id: str | None
    status: int | None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at,
            "key_id": self.key_id,
            "action": self.action,
            "collection": self.collection,
            "subject": self.subject,
            "request_id": self.request_id,
            "status": self.status,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class AuditPage:
    """A page of entries, oldest first, and how many match the filters in all."""

    entries: tuple[AuditEntry, ...]
    total: int
    offset: int
    limit: int


class AuditLog(SQLiteFile):
    """The append-only audit table in a SQLite file; safe to share between threads.

    Parameters
    ----------
    path : str or os.PathLike
        The database (created with its folder if missing, mode 600), or ``":memory:"``.
    """

    what = "audit log"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path, _SCHEMA)

    def record(
        self,
        action: str,
        *,
        key_id: str | None = None,
        collection: str | None = None,
        subject: str | None = None,
        request_id: str | None = None,
        status: int | None = None,
        detail: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> AuditEntry:
        """Append one entry and return it.

        Raises
        ------
        InvalidArgumentError
            ``action`` is not one of :data:`ACTIONS`.
        """
        if action not in ACTIONS:
            raise InvalidArgumentError(f"unknown audit action {action!r}; valid actions: {', '.join(ACTIONS)}")
        when = _iso(at if at is not None else datetime.now(timezone.utc))
        facts = dict(detail or {})
        text = json.dumps(facts, sort_keys=True, default=str)
        with self._lock:
            try:
                cursor = self._db.execute(
                    "INSERT INTO audit(at, key_id, action, collection, subject, request_id, status, detail) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (when, key_id, action, collection, subject, request_id, status, text),
                )
            except sqlite3.Error as err:
                raise FaceprintError(f"audit log {self._path}: {err}") from err
        row_id = int(cursor.lastrowid or 0)
        return AuditEntry(row_id, when, key_id, action, collection, subject, request_id, status, facts)

    def query(
        self,
        *,
        action: str | None = None,
        subject: str | None = None,
        collection: str | None = None,
        key_id: str | None = None,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> AuditPage:
        """Entries matching every filter given, oldest first, ``limit`` of them from ``offset``.

        ``since`` is inclusive, ``until`` exclusive (ISO 8601 strings or datetimes; naive = UTC).

        Raises
        ------
        InvalidArgumentError
            An unknown action, a malformed time, a negative offset, or a limit outside 1..MAX_PAGE.
        """
        if action is not None and action not in ACTIONS:
            raise InvalidArgumentError(f"unknown audit action {action!r}; valid actions: {', '.join(ACTIONS)}")
        if not isinstance(offset, int) or offset < 0:
            raise InvalidArgumentError(f"expected offset >= 0, got {offset!r}")
        if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise InvalidArgumentError(f"expected 1 <= limit <= {MAX_PAGE}, got {limit!r}")
        clauses, args = [], []
        for column, value in (
            ("action", action),
            ("subject", subject),
            ("collection", collection),
            ("key_id", key_id),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        start, end = parse_time(since, "since"), parse_time(until, "until")
        if start is not None:
            clauses.append("at >= ?")
            args.append(start)
        if end is not None:
            clauses.append("at < ?")
            args.append(end)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._lock:
            try:
                (total,) = self._db.execute(f"SELECT COUNT(*) FROM audit{where}", args).fetchone()
                rows = self._db.execute(
                    "SELECT id, at, key_id, action, collection, subject, request_id, status, detail "
                    f"FROM audit{where} ORDER BY id LIMIT ? OFFSET ?",
                    (*args, limit, offset),
                ).fetchall()
            except sqlite3.Error as err:
                raise FaceprintError(f"audit log {self._path}: {err}") from err
        entries = tuple(
            AuditEntry(
                id=int(r[0]), at=r[1], key_id=r[2], action=r[3], collection=r[4], subject=r[5], request_id=r[6],
                status=r[7], detail=json.loads(r[8]) if r[8] else {},
            )
            for r in rows
        )
        return AuditPage(entries, int(total), offset, limit)
