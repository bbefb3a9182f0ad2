"""One small private SQLite file of the service side (keys, audit): opened once, shared between threads.

:class:`SQLiteFile` creates the file's folder, opens the connection in autocommit mode with WAL,
``secure_delete`` (a deleted row leaves no readable bytes) and the caller's schema statements,
makes the file readable by its owner only, and gives ``close`` / context-manager behaviour. The
stores built on it (:class:`faceprint.keys.KeyStore`, :class:`faceprint.audit.AuditLog`) add
their own queries under :attr:`_lock`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from .errors import FaceprintError

__all__ = ["SQLiteFile"]

_S = TypeVar("_S", bound="SQLiteFile")


class SQLiteFile:
    """Base of a store in one SQLite file (or ``":memory:"``); ``what`` names it in errors."""

    what = "database"

    def __init__(self, path: str | os.PathLike[str], schema: Sequence[str]) -> None:
        self._path = os.fspath(path)
        self._lock = threading.Lock()
        if self._path != ":memory:":
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn: sqlite3.Connection | None = sqlite3.connect(
                self._path, check_same_thread=False, isolation_level=None
            )
            if self._path != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA secure_delete=ON")
            for statement in schema:
                self._conn.execute(statement)
        except sqlite3.Error as err:
            raise FaceprintError(f"{self._path} is not a faceprint {self.what}: {err}") from err
        if self._path != ":memory:":
            os.chmod(self._path, 0o600)

    @property
    def path(self) -> str:
        return self._path

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise FaceprintError(f"{self.what} {self._path} is closed")
        return self._conn

    def close(self) -> None:
        """Close the database; idempotent."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
