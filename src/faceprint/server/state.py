"""What the app holds while it runs: settings, the warm pipelines, the key store and the open galleries."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..audit import AuditLog
from ..keys import DEFAULT_COLLECTION, KeyStore, validate_collection
from ..settings import Settings
from .pool import InferencePool

if TYPE_CHECKING:
    from ..gallery import GalleryBackend
    from ..liveness import Challenge
    from ..pipeline import FacePipeline

__all__ = ["Challenges", "Collections", "PendingChallenge", "Service"]


class Collections:
    """One gallery per collection, each opened once and kept open until :meth:`close`.

    The ``default`` collection is the service's gallery (``--gallery``, else
    :meth:`Settings.gallery_path`); collection ``NAME`` is ``collections/NAME.db`` beside it. Each is
    opened with ``template_key`` (the service's ``Settings.template_key_bytes()``), so every
    collection of an encrypted service is encrypted under the same key (each with its own derived key).
    """

    def __init__(self, default_path: Path, *, template_key: bytes | None = None) -> None:
        self.default_path = default_path
        self._template_key = template_key
        self.folder = default_path.parent / "collections"
        self._open: dict[str, GalleryBackend] = {}
        self._write_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def path(self, name: str) -> Path:
        validate_collection(name)
        return self.default_path if name == DEFAULT_COLLECTION else self.folder / f"{name}.db"

    def get(self, name: str) -> GalleryBackend:
        """The open gallery of collection ``name`` (created on first use)."""
        from ..gallery import open_gallery

        with self._lock:
            gallery = self._open.get(name)
            if gallery is None:
                path = self.path(name)
                path.parent.mkdir(parents=True, exist_ok=True)
                gallery = self._open[name] = open_gallery(path, template_key=self._template_key)
                self._write_locks[name] = threading.Lock()
            return gallery

    def names(self) -> list[str]:
        """Every collection with a gallery file now: ``default`` and each ``collections/NAME.db``."""
        found = [DEFAULT_COLLECTION]
        if self.folder.is_dir():
            for path in sorted(self.folder.glob("*.db")):
                try:
                    found.append(validate_collection(path.stem))
                except ValueError:
                    continue
        return found

    def paths(self) -> dict[str, str]:
        """Collection name -> gallery path, of the collections open now."""
        with self._lock:
            return {name: gallery.path for name, gallery in self._open.items()}

    def write_lock(self, name: str) -> threading.Lock:
        """Held around an enrollment and the read of the examples it wrote (their ids)."""
        self.get(name)
        return self._write_locks[name]

    def close(self) -> None:
        with self._lock:
            for gallery in self._open.values():
                gallery.close()
            self._open.clear()


@dataclass(frozen=True)
class PendingChallenge:
    """A liveness challenge issued to one key, waiting for its answer (a clip)."""

    id: str
    challenge: Challenge
    key_id: str
    issued_at: float
    expires_at: float


class Challenges:
    """Issued challenges, each answerable once, by the key it was issued to, until it expires.

    At most ``most`` are pending; issuing one more drops the oldest (a client that never answers
    cannot fill the server's memory). Ids are 128-bit random (``secrets``).
    """

    def __init__(self, ttl_s: float, most: int = 4096) -> None:
        self.ttl_s = float(ttl_s)
        self.most = most
        self._pending: dict[str, PendingChallenge] = {}
        self._lock = threading.Lock()

    def issue(self, challenge: Challenge, key_id: str) -> PendingChallenge:
        now = time.time()
        pending = PendingChallenge(
            id=secrets.token_urlsafe(16), challenge=challenge, key_id=key_id, issued_at=now,
            expires_at=now + self.ttl_s,
        )
        with self._lock:
            self._expire(now)
            while len(self._pending) >= self.most:
                self._pending.pop(next(iter(self._pending)))
            self._pending[pending.id] = pending
        return pending

    def take(self, challenge_id: str, key_id: str) -> PendingChallenge | None:
        """The pending challenge ``challenge_id`` of ``key_id``, removed (answered once); None when it is
        unknown, expired, already answered or another key's (which keeps it)."""
        with self._lock:
            self._expire(time.time())
            pending = self._pending.get(challenge_id)
            if pending is None or not secrets.compare_digest(pending.key_id, key_id):
                return None
            return self._pending.pop(challenge_id)

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)

    def _expire(self, now: float) -> None:
        for cid in [c for c, p in self._pending.items() if p.expires_at <= now]:
            del self._pending[cid]


@dataclass
class Service:
    """The state :func:`faceprint.server.create_app`'s lifespan builds once and routes share."""

    settings: Settings
    pipeline: FacePipeline
    pool: InferencePool[FacePipeline]
    keys: KeyStore
    collections: Collections
    audit: AuditLog
    challenges: Challenges = field(default_factory=lambda: Challenges(120.0))
    started_at: float = 0.0
    ready: bool = field(default=False)

    def close(self) -> None:
        self.ready = False
        self.pool.shutdown()
        self.collections.close()
        self.keys.close()
        self.audit.close()
