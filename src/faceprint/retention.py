"""Retention: templates stored more than N days ago are purged (``FACEPRINT_RETENTION_DAYS``).

:func:`purge_expired` deletes every template whose ``created_at`` is older than the cut-off, and
each subject it leaves without templates (a subject that had none before, created and not yet
enrolled, is kept). It goes through the gallery's own deletes, so erasure holds as for any delete
(SQLite ``secure_delete`` + a truncating WAL checkpoint). ``faceprint serve`` runs it on every
collection at start-up; ``faceprint gallery purge`` runs it on one gallery.

Examples
--------
>>> from datetime import datetime, timedelta, timezone
>>> import numpy as np
>>> from faceprint.gallery import Gallery
>>> with Gallery(":memory:") as g:
...     _ = g.enroll("ann", np.eye(3)[0], fingerprint="demo")
...     later = datetime.now(timezone.utc) + timedelta(days=31)
...     purge_expired(g, 30, now=later).subjects_removed
('ann',)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from .errors import ExampleNotFoundError, InvalidArgumentError, SubjectNotFoundError

if TYPE_CHECKING:
    from .gallery import GalleryBackend

__all__ = ["PurgeResult", "purge_expired"]


@dataclass(frozen=True)
class PurgeResult:
    """What :func:`purge_expired` deleted."""

    cutoff: str
    """ISO 8601 UTC: templates stored before this were purged."""
    templates_removed: int
    subjects_removed: tuple[str, ...]
    """Subjects left without templates by the purge, and so removed."""
    subjects_touched: tuple[str, ...]
    """Every subject that lost a template (including the removed ones)."""

    def to_dict(self) -> dict[str, object]:
        return {
            "cutoff": self.cutoff,
            "templates_removed": self.templates_removed,
            "subjects_removed": list(self.subjects_removed),
            "subjects_touched": list(self.subjects_touched),
        }


def _when(text: str) -> datetime | None:
    try:
        t = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc)


def purge_expired(gallery: GalleryBackend, days: int, *, now: datetime | None = None) -> PurgeResult:
    """Delete the templates of ``gallery`` stored more than ``days`` days before ``now``.

    Parameters
    ----------
    gallery : GalleryBackend
        An open gallery.
    days : int
        The retention period, >= 1.
    now : datetime, optional
        The present (default: the clock); tests pass a fake one. Naive means UTC.

    Raises
    ------
    InvalidArgumentError
        ``days`` is not an integer >= 1.
    """
    if not isinstance(days, int) or isinstance(days, bool) or days < 1:
        raise InvalidArgumentError(f"expected a retention of at least 1 day, got {days!r}")
    present = now if now is not None else datetime.now(timezone.utc)
    if present.tzinfo is None:
        present = present.replace(tzinfo=timezone.utc)
    cutoff = present - timedelta(days=days)
    expired = []
    for example in gallery.examples():
        stored = _when(example.created_at)
        if stored is not None and stored < cutoff:  # a template without a readable time is kept
            expired.append(example)
    touched = sorted({e.subject for e in expired})
    ids = [e.id for e in expired]
    for attempt in range(3):  # another process (a second --workers worker) may purge the same rows meanwhile
        if not ids:
            break
        try:
            gallery.remove_examples(ids)
            break
        except ExampleNotFoundError:
            if attempt == 2:
                raise
            still = {e.id for e in gallery.examples()}
            ids = [i for i in ids if i in still]
    removed = []
    for name in touched:
        try:
            if gallery.get(name).n_templates == 0:
                gallery.remove(name)
                removed.append(name)
        except SubjectNotFoundError:  # removed meanwhile by another process
            continue
    return PurgeResult(cutoff.isoformat(timespec="seconds"), len(expired), tuple(removed), tuple(touched))
