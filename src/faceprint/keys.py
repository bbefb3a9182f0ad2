"""API keys of the service: created once, stored hashed, compared in constant time, revocable.

A key is ``fp_<id>_<secret>``: ``id`` (12 hex digits) names the key in listings and in the
audit trail and is stored in clear; ``secret`` (32 random bytes, URL-safe base64) is shown once,
when the key is created, and only its sha256 is stored. A high-entropy secret needs no slow hash
(a guess is as hard as the secret itself); the stored digest is compared with
:func:`hmac.compare_digest`, and an unknown id is checked against a dummy digest, so the time
taken does not tell whether an id exists.

Each key has one role and one collection (a separate gallery, see ``faceprint serve``). Roles
are ordered: ``recognize`` (search, verify, detect, list) < ``enroll`` (also add, rename and
delete people and their examples) < ``admin`` (also delete a whole collection's contents).

Examples
--------
>>> with KeyStore(":memory:") as store:
...     key, token = store.create("enroll", collection="shop")
...     store.authenticate(token).role, store.authenticate(token + "x")
('enroll', None)
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

from .errors import InvalidArgumentError, KeyNotFoundError
from .sqlite_file import SQLiteFile

__all__ = [
    "ROLES",
    "ApiKey",
    "KeyStore",
    "role_allows",
    "validate_collection",
    "validate_role",
    "DEFAULT_COLLECTION",
]

ROLES: tuple[str, ...] = ("recognize", "enroll", "admin")
"""The roles, weakest first: each allows everything the ones before it allow."""

DEFAULT_COLLECTION = "default"
"""The collection of a key created without ``collection=`` (the service's ``--gallery``)."""

_COLLECTION = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_TOKEN = re.compile(r"^fp_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_DUMMY_DIGEST = hashlib.sha256(b"no such key").hexdigest()
LAST_USED_RESOLUTION_S = 60.0
"""``last_used_at`` is written at most this often per key (not on every request)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    digest TEXT NOT NULL,
    role TEXT NOT NULL,
    collection TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at TEXT
)
"""


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="seconds")


def validate_role(role: object) -> str:
    """``role`` if it is one of :data:`ROLES`, else :class:`InvalidArgumentError` listing them."""
    if not isinstance(role, str) or role not in ROLES:
        raise InvalidArgumentError(f"unknown role {role!r}; valid roles: {', '.join(ROLES)}")
    return role


def validate_collection(name: object) -> str:
    """``name`` if it is a collection name: 1-64 of ``a-z 0-9 _ -``, starting with a letter or digit.

    Examples
    --------
    >>> validate_collection("shop-1")
    'shop-1'
    """
    if not isinstance(name, str) or not _COLLECTION.match(name):
        raise InvalidArgumentError(
            f"expected a collection name of 1-64 characters a-z, 0-9, '_' or '-' (starting with a letter or "
            f"digit), got {name!r}"
        )
    return name


def role_allows(have: str, need: str) -> bool:
    """Whether a key of role ``have`` may do what needs role ``need``.

    Examples
    --------
    >>> role_allows("admin", "enroll"), role_allows("recognize", "enroll")
    (True, False)
    """
    return ROLES.index(validate_role(have)) >= ROLES.index(validate_role(need))


@dataclass(frozen=True)
class ApiKey:
    """One stored key, without its secret.

    Attributes
    ----------
    id : str
        The public part of the key (12 hex digits).
    role : str
        One of :data:`ROLES`.
    collection : str
        The collection (gallery) the key may use.
    label : str
        Free text given at creation (who or what uses the key).
    created_at, last_used_at, revoked_at : str or None
        ISO 8601 UTC times; ``last_used_at`` is None until first use (and is updated at most every
        :data:`LAST_USED_RESOLUTION_S` seconds), ``revoked_at`` None while the key is valid.
    """

    id: str
    role: str
    collection: str
    label: str
    created_at: str
    last_used_at: str | None
    revoked_at: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_dict(self) -> dict[str, str | None]:
        return {
            "id": self.id,
            "role": self.role,
            "collection": self.collection,
            "label": self.label,
            "created_at": self.created_at,
            "last_used_at": self.last_used_at,
            "revoked_at": self.revoked_at,
        }


class KeyStore(SQLiteFile):
    """API keys in a SQLite file (``keys.db`` beside the galleries); safe to share between threads.

    Parameters
    ----------
    path : str or os.PathLike
        The database file (created with its folder if missing), or ``":memory:"``.

    Raises
    ------
    FaceprintError
        ``path`` cannot be opened as a key store.
    """

    what = "key store"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path, (_SCHEMA,))
        self._last_write: dict[str, datetime] = {}

    # ------------------------------------------------------------------ writes

    def create(self, role: str, *, collection: str = DEFAULT_COLLECTION, label: str = "") -> tuple[ApiKey, str]:
        """A new key: its record and the token (``fp_<id>_<secret>``), which is not stored and not shown again.

        Raises
        ------
        InvalidArgumentError
            Unknown role, bad collection name, or a label with a control character or over 200 characters.
        """
        validate_role(role)
        validate_collection(collection)
        if not isinstance(label, str) or len(label) > 200 or any(ord(c) < 32 for c in label):
            raise InvalidArgumentError("expected a key label of at most 200 printable characters")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        created = _iso(_now())
        with self._lock:
            self._db.execute(
                "INSERT INTO api_keys(id, digest, role, collection, label, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (key_id, _digest(secret), role, collection, label, created),
            )
        return ApiKey(key_id, role, collection, label, created, None, None), f"fp_{key_id}_{secret}"

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key (it stays listed, with ``revoked_at``); revoking twice keeps the first time.

        Raises
        ------
        KeyNotFoundError
            No key with that id.
        """
        with self._lock:
            self._db.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (_iso(_now()), key_id)
            )
        return self.get(key_id)

    # ------------------------------------------------------------------ reads

    def get(self, key_id: str) -> ApiKey:
        """The key with this id; :class:`KeyNotFoundError` if none."""
        with self._lock:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE id = ?", (key_id,)).fetchone()
        if row is None:
            raise KeyNotFoundError(f"no API key with id {key_id!r} in {self._path}")
        return ApiKey(*row)

    def list(self) -> list[ApiKey]:
        """Every key, oldest first (revoked ones too)."""
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, id").fetchall()
        return [ApiKey(*r) for r in rows]

    def authenticate(self, token: str | None) -> ApiKey | None:
        """The active key ``token`` is, or None (malformed, unknown, wrong secret or revoked).

        Records the use (``last_used_at``, at most every :data:`LAST_USED_RESOLUTION_S` seconds).
        """
        match = _TOKEN.match(token) if isinstance(token, str) else None
        key_id, secret = (match.group(1), match.group(2)) if match else ("", "")
        with self._lock:
            row = self._db.execute(
                f"SELECT digest, {_COLUMNS} FROM api_keys WHERE id = ?", (key_id,)
            ).fetchone()
            stored = row[0] if row is not None else _DUMMY_DIGEST
            good = hmac.compare_digest(stored, _digest(secret)) and row is not None and match is not None
            if not good or row[-1] is not None:  # row[-1]: revoked_at
                return None
            key = ApiKey(*row[1:])
            now = _now()
            last = self._last_write.get(key_id)
            if last is None or (now - last).total_seconds() >= LAST_USED_RESOLUTION_S:
                self._db.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (_iso(now), key_id))
                self._last_write[key_id] = now
                key = ApiKey(**{**key.to_dict(), "last_used_at": _iso(now)})  # type: ignore[arg-type]
        return key


_COLUMNS = "id, role, collection, label, created_at, last_used_at, revoked_at"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()
