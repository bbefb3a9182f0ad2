"""Gallery export and import: every subject, its metadata and its templates in one file, checked on the way in.

An export moves a gallery to another machine, another backend or a backup without the photos
(faceprint stores none): the templates are only useful with the embedder that made them, so the
file names that embedder's fingerprint, and an import refuses a file of another embedder
(:class:`~faceprint.errors.EmbedderMismatchError`).

File format ``faceprint-gallery-export/1``: a ZIP archive, members stored (not compressed):

- ``manifest.json``: the format, faceprint's version, when it was exported, the fingerprint and
  dimension, the counts, and the subjects in order: name, metadata, created_at, and per template
  its source, content digest and created_at (so that retention still counts from the first
  enrollment, and re-importing the same file adds nothing);
- ``templates.bin``: the templates, float32 little-endian, one row after another in manifest
  order. Plain, or, exported with a key (``FACEPRINT_TEMPLATE_KEY``),
  ``nonce (12 bytes) + AES-256-GCM(rows) + tag (16 bytes)`` under a key derived by HKDF-SHA256 from
  that key and a random salt named in the manifest, with the manifest's bytes as associated data;
- ``checksum.json``: the sha256 of both members.

What the checks catch: a truncated or corrupt file, and any edit of a member, by its checksums
(:class:`~faceprint.errors.InvalidExportError`). They do not stop someone who edits a *plain*
export and recomputes the checksums: a plain export is as trustworthy as the channel it came
through. An encrypted export is authenticated: without the key nobody can read its templates or
alter the manifest or the templates unnoticed, and importing it needs the same key
(:class:`~faceprint.errors.TemplateKeyError` otherwise). Names, metadata and sources stay plain
in both.

Examples
--------
>>> import io
>>> import numpy as np
>>> from faceprint.gallery import open_gallery
>>> buf = io.BytesIO()
>>> with open_gallery("sqlite://", template_key=None) as g:
...     _ = g.enroll("ann", np.eye(3)[:2], fingerprint="demo", metadata={"team": "a"})
...     export_gallery(g, buf).n_templates
2
>>> with open_gallery("sqlite://", template_key=None) as h:
...     done = import_gallery(h, io.BytesIO(buf.getvalue()))
...     done.subjects_created, h.get("ann").metadata
(('ann',), {'team': 'a'})
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from faceprint.errors import (
    EmbedderMismatchError,
    FaceprintError,
    GalleryError,
    InvalidArgumentError,
    InvalidExportError,
    SubjectExistsError,
    TemplateKeyError,
)

from .base import Example, Float32Array, GalleryBackend, as_embeddings, validate_name, validate_times
from .encryption import NONCE_BYTES, SALT_BYTES, TAG_BYTES, check_key

__all__ = [
    "FORMAT",
    "MAX_EXPORT_BYTES",
    "CONFLICTS",
    "Conflict",
    "ExportSummary",
    "ExportedSubject",
    "GalleryExport",
    "ImportSummary",
    "export_gallery",
    "import_gallery",
    "read_export",
]

FORMAT = "faceprint-gallery-export/1"
"""The ``format`` of a manifest this module writes and reads."""

MAX_EXPORT_BYTES = 4 << 30
"""Largest export :func:`read_export` accepts by default (4 GiB: about 8 million 128-d templates)."""

Conflict = Literal["error", "skip", "merge"]
"""What :func:`import_gallery` does with a subject whose name the gallery already has."""
CONFLICTS: tuple[str, ...] = ("error", "skip", "merge")
"""The values of :data:`Conflict`."""

_MANIFEST, _TEMPLATES, _CHECKSUM = "manifest.json", "templates.bin", "checksum.json"
_MAX_MANIFEST = 1 << 30
_SCHEME = "aes-256-gcm/hkdf-sha256"
_INFO = b"faceprint gallery export/1"


@dataclass(frozen=True)
class ExportedSubject:
    """One subject of an export.

    Attributes
    ----------
    name : str
    metadata : dict
    created_at : str
        When it was first enrolled (ISO 8601 UTC).
    sources, content_sha256, times : tuple
        Per template: its source (or None), its content digest (or None) and when it was stored.
    start : int
        Index of its first template in :attr:`GalleryExport.embeddings` (they are consecutive).
    """

    name: str
    metadata: dict[str, Any]
    created_at: str
    sources: tuple[str | None, ...]
    content_sha256: tuple[str | None, ...]
    times: tuple[str, ...]
    start: int

    @property
    def n_templates(self) -> int:
        return len(self.times)


@dataclass(frozen=True, eq=False)
class GalleryExport:
    """A read, checked export (:func:`read_export`).

    Attributes
    ----------
    fingerprint : str or None
        The embedder of every template; None when the export holds no template.
    dim : int
        Template dimension (0 when there is none).
    exported_at, faceprint_version : str
    encrypted : bool
        Whether its templates were encrypted (and so authenticated).
    subjects : tuple of ExportedSubject
    embeddings : ndarray of float32, shape (n, dim)
    """

    fingerprint: str | None
    dim: int
    exported_at: str
    faceprint_version: str
    encrypted: bool
    subjects: tuple[ExportedSubject, ...]
    embeddings: Float32Array

    @property
    def n_templates(self) -> int:
        return int(self.embeddings.shape[0])


@dataclass(frozen=True)
class ExportSummary:
    """What :func:`export_gallery` wrote."""

    n_subjects: int
    n_templates: int
    fingerprint: str | None
    encrypted: bool
    n_bytes: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "subjects": self.n_subjects, "templates": self.n_templates, "fingerprint": self.fingerprint,
            "encrypted": self.encrypted, "bytes": self.n_bytes,
        }


@dataclass(frozen=True)
class ImportSummary:
    """What :func:`import_gallery` did.

    Attributes
    ----------
    subjects_created : tuple of str
        Subjects the gallery did not have.
    subjects_merged : tuple of str
        Existing subjects the export's templates were added to (``on_conflict="merge"``).
    subjects_skipped : tuple of str
        Existing subjects left as they were (``on_conflict="skip"``).
    templates_added : int
    templates_skipped : int
        Templates not written: of skipped subjects, or whose content the subject already held.
    fingerprint : str or None
    """

    subjects_created: tuple[str, ...]
    subjects_merged: tuple[str, ...]
    subjects_skipped: tuple[str, ...]
    templates_added: int
    templates_skipped: int
    fingerprint: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "subjects_created": list(self.subjects_created),
            "subjects_merged": list(self.subjects_merged),
            "subjects_skipped": list(self.subjects_skipped),
            "templates_added": self.templates_added,
            "templates_skipped": self.templates_skipped,
            "fingerprint": self.fingerprint,
        }


# ---------------------------------------------------------------- export


def export_gallery(
    gallery: GalleryBackend, dest: str | os.PathLike[str] | IO[bytes], *, key: bytes | None = None
) -> ExportSummary:
    """Write every subject of ``gallery``, its metadata and its templates to ``dest``.

    Parameters
    ----------
    gallery : GalleryBackend
    dest : path or seekable binary file object
        Where the export goes; a path is written to a temporary file beside it and renamed, so
        that a failed export leaves no partial file.
    key : bytes, optional
        32 bytes: encrypt and authenticate the templates (and bind the manifest) with this key.

    Raises
    ------
    GalleryError
        The gallery changed while it was read (run it again), or cannot be read.
    """
    key = None if key is None else check_key(key)
    subjects = {s.id: s for s in gallery.subjects()}
    batch = gallery.templates_many()
    rows: dict[int, list[int]] = {}  # subject id -> its rows of the batch (enrollment order)
    for i, subject_id in enumerate(batch.subject_ids.tolist()):
        rows.setdefault(subject_id, []).append(i)
    examples: dict[int, list[Example]] = {}
    for e in sorted(gallery.examples(), key=lambda e: e.id):
        examples.setdefault(e.subject_id, []).append(e)
    if {k: len(v) for k, v in rows.items()} != {k: len(v) for k, v in examples.items()} or not set(rows) <= set(
        subjects
    ):
        raise GalleryError(f"gallery {gallery.path} changed while it was exported; run the export again")
    manifest_subjects = []
    order: list[int] = []
    for s in sorted(subjects.values(), key=lambda s: s.name):
        order.extend(rows.get(s.id, []))
        manifest_subjects.append({
            "name": s.name,
            "metadata": s.metadata,
            "created_at": s.created_at,
            "templates": [
                {"source": e.source, "content_sha256": e.content_sha256, "created_at": e.created_at}
                for e in examples.get(s.id, [])
            ],
        })
    vectors = np.ascontiguousarray(batch.embeddings[order], dtype="<f4")
    from faceprint import __version__

    manifest: dict[str, Any] = {
        "format": FORMAT,
        "faceprint_version": __version__,
        "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "fingerprint": batch.fingerprint,
        "dim": int(vectors.shape[1]) if vectors.size else 0,
        "n_subjects": len(manifest_subjects),
        "n_templates": int(vectors.shape[0]),
        "encryption": None,
        "subjects": manifest_subjects,
    }
    payload = vectors.tobytes()
    if key is not None:
        salt, nonce = os.urandom(SALT_BYTES), os.urandom(NONCE_BYTES)
        aead, check = _derive(key, salt)
        manifest["encryption"] = {"scheme": _SCHEME, "salt": salt.hex(), "nonce": nonce.hex(), "key_check": check}
        manifest_bytes = json.dumps(manifest, ensure_ascii=False, sort_keys=True).encode()
        payload = nonce + aead.encrypt(nonce, payload, manifest_bytes)
    else:
        manifest_bytes = json.dumps(manifest, ensure_ascii=False, sort_keys=True).encode()
    checksum = json.dumps(
        {_MANIFEST: hashlib.sha256(manifest_bytes).hexdigest(), _TEMPLATES: hashlib.sha256(payload).hexdigest()},
        sort_keys=True,
    ).encode()
    n_bytes = _write_zip(dest, [(_MANIFEST, manifest_bytes), (_TEMPLATES, payload), (_CHECKSUM, checksum)])
    return ExportSummary(len(manifest_subjects), int(vectors.shape[0]), batch.fingerprint, key is not None, n_bytes)


def _derive(key: bytes, salt: bytes) -> tuple[AESGCM, str]:
    derived = HKDF(algorithm=hashes.SHA256(), length=64, salt=salt, info=_INFO).derive(key)
    return AESGCM(derived[:32]), derived[32:].hex()


def _write_zip(dest: str | os.PathLike[str] | IO[bytes], members: Sequence[tuple[str, bytes]]) -> int:
    def write(f: IO[bytes]) -> None:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name, data in members:
                zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)

    if isinstance(dest, str | os.PathLike):
        path = Path(dest)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
        try:
            with open(tmp, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path.stat().st_size
    if not dest.seekable():
        raise InvalidArgumentError("export_gallery writes to a path or a seekable binary file object")
    start = dest.tell()
    write(dest)
    return dest.tell() - start


# ---------------------------------------------------------------- read


def read_export(
    src: str | os.PathLike[str] | IO[bytes], *, key: bytes | None = None, max_bytes: int = MAX_EXPORT_BYTES
) -> GalleryExport:
    """Read and check an export written by :func:`export_gallery`.

    Parameters
    ----------
    src : path or seekable binary file object
    key : bytes, optional
        The 32-byte key an encrypted export was written with.
    max_bytes : int
        Largest file accepted.

    Raises
    ------
    InvalidExportError
        Not an export, truncated, too large, of an unknown format, or altered after it was written.
    TemplateKeyError
        The export is encrypted and no key, or another key, was given.
    """
    key = None if key is None else check_key(key)
    if isinstance(src, str | os.PathLike):
        path = Path(src)
        if not path.is_file():
            raise InvalidExportError(f"{path}: not a regular file")
        with open(path, "rb") as f:
            return _read(f, key, max_bytes, str(path))
    return _read(src, key, max_bytes, "export")


def _read(f: IO[bytes], key: bytes | None, max_bytes: int, where: str) -> GalleryExport:
    try:
        size = f.seek(0, io.SEEK_END)
        f.seek(0)
    except (OSError, ValueError) as err:
        raise InvalidExportError(f"{where}: an export must be read from a seekable file") from err
    if size > max_bytes:
        raise InvalidExportError(f"{where}: {size} bytes, over the limit of {max_bytes}")
    try:
        with zipfile.ZipFile(f) as zf:
            infos = {i.filename: i for i in zf.infolist()}
            if set(infos) != {_MANIFEST, _TEMPLATES, _CHECKSUM}:
                raise InvalidExportError(f"{where}: not a faceprint gallery export (members {sorted(infos)[:5]})")
            if any(i.compress_type != zipfile.ZIP_STORED or i.file_size > size for i in infos.values()):
                raise InvalidExportError(f"{where}: not a faceprint gallery export (compressed or oversized members)")
            manifest_bytes = zf.read(_MANIFEST)
            payload = zf.read(_TEMPLATES)
            checksum = zf.read(_CHECKSUM)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as err:
        raise InvalidExportError(f"{where}: not a readable gallery export (truncated or corrupt: {err})") from err
    if len(manifest_bytes) > _MAX_MANIFEST:
        raise InvalidExportError(f"{where}: its manifest is over {_MAX_MANIFEST} bytes")
    try:
        sums = json.loads(checksum)
        ok = isinstance(sums, dict) and all(
            isinstance(sums.get(name), str)
            and hmac.compare_digest(sums[name], hashlib.sha256(data).hexdigest())
            for name, data in ((_MANIFEST, manifest_bytes), (_TEMPLATES, payload))
        )
    except (ValueError, UnicodeDecodeError):
        ok = False
    if not ok:
        raise InvalidExportError(f"{where}: checksums do not match: the file was altered or damaged after export")
    try:
        manifest = json.loads(manifest_bytes)
    except (ValueError, UnicodeDecodeError) as err:
        raise InvalidExportError(f"{where}: its manifest is not JSON") from err
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise InvalidExportError(f"{where}: format {ascii(found)[:60]} is not {FORMAT}")
    try:
        return _parse(manifest, manifest_bytes, payload, key, where)
    except FaceprintError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        reason = f"{type(err).__name__}: {ascii(str(err))[:120]}"
        raise InvalidExportError(f"{where}: malformed manifest ({reason})") from err


def _parse(
    manifest: dict[str, Any], manifest_bytes: bytes, payload: bytes, key: bytes | None, where: str
) -> GalleryExport:
    encryption = manifest["encryption"]
    if encryption is not None:
        if encryption["scheme"] != _SCHEME:
            raise InvalidExportError(f"{where}: unknown encryption {ascii(encryption['scheme'])[:60]}")
        if key is None:
            raise TemplateKeyError(f"{where}: the export is encrypted; give the key it was written with")
        aead, check = _derive(key, bytes.fromhex(encryption["salt"]))
        if not hmac.compare_digest(check, str(encryption["key_check"])):
            raise TemplateKeyError(f"{where}: the export is encrypted with another key")
        nonce = bytes.fromhex(encryption["nonce"])
        if len(nonce) != NONCE_BYTES or payload[:NONCE_BYTES] != nonce or len(payload) < NONCE_BYTES + TAG_BYTES:
            raise InvalidExportError(f"{where}: encrypted templates are malformed")
        try:
            payload = aead.decrypt(nonce, payload[NONCE_BYTES:], manifest_bytes)
        except InvalidTag:
            raise InvalidExportError(f"{where}: fails authentication: the file was altered after export") from None
    fingerprint = manifest["fingerprint"]
    dim, n = int(manifest["dim"]), int(manifest["n_templates"])
    if fingerprint is not None and not isinstance(fingerprint, str):
        raise InvalidExportError(f"{where}: fingerprint is not a string")
    if dim < 0 or n < 0 or len(payload) != n * dim * 4 or (n and (dim == 0 or fingerprint is None)):
        raise InvalidExportError(f"{where}: {len(payload)} template bytes do not hold {n} x {dim} float32")
    embeddings = np.frombuffer(payload, dtype="<f4").astype(np.float32).reshape(n, dim)
    if n:
        as_embeddings(embeddings)  # finite, unit-norm: InvalidEmbeddingError otherwise
    subjects: list[ExportedSubject] = []
    names: set[str] = set()
    start = 0
    for raw in manifest["subjects"]:
        name = validate_name(raw["name"])
        if name in names:
            raise InvalidExportError(f"{where}: subject {name!r} appears twice")
        names.add(name)
        templates = raw["templates"]
        if not isinstance(raw["metadata"], dict) or not isinstance(templates, list):
            raise InvalidExportError(f"{where}: subject {name!r} is malformed")
        sources = tuple(t["source"] for t in templates)
        digests = tuple(t["content_sha256"] for t in templates)
        if not all(s is None or isinstance(s, str) for s in (*sources, *digests)):
            raise InvalidExportError(f"{where}: subject {name!r} has a source or digest that is not a string")
        times = tuple(validate_times([t["created_at"] for t in templates], len(templates)))
        created = validate_times([raw["created_at"]], 1)[0] if raw["created_at"] else min(times, default="")
        subjects.append(ExportedSubject(name, raw["metadata"], created, sources, digests, times, start))
        start += len(templates)
    if start != n or len(subjects) != int(manifest["n_subjects"]):
        raise InvalidExportError(f"{where}: the manifest lists {start} templates of {len(subjects)} subjects, "
                                 f"its counts say {n} of {manifest['n_subjects']}")
    return GalleryExport(
        fingerprint=fingerprint,
        dim=dim,
        exported_at=str(manifest["exported_at"]),
        faceprint_version=str(manifest["faceprint_version"]),
        encrypted=encryption is not None,
        subjects=tuple(subjects),
        embeddings=embeddings,
    )


# ---------------------------------------------------------------- import


def import_gallery(
    gallery: GalleryBackend,
    src: str | os.PathLike[str] | IO[bytes] | GalleryExport,
    *,
    key: bytes | None = None,
    fingerprint: str | None = None,
    on_conflict: Conflict = "error",
    max_bytes: int = MAX_EXPORT_BYTES,
) -> ImportSummary:
    """Add the subjects of an export to ``gallery``.

    Everything is checked before anything is written: the file (:func:`read_export`), its
    embedder against the gallery's and against ``fingerprint``, and, with ``on_conflict="error"``,
    that no name is taken. Each subject is then written in its own transaction; stored times,
    metadata, sources and content digests are kept (template and subject ids are the gallery's own).

    Parameters
    ----------
    gallery : GalleryBackend
    src : path, seekable binary file object or GalleryExport
    key : bytes, optional
        The key of an encrypted export.
    fingerprint : str, optional
        The embedder the gallery is used with (a service's pipeline): an export of another is refused
        even into an empty gallery.
    on_conflict : {"error", "skip", "merge"}
        A subject whose name the gallery has: refuse the whole import (:class:`SubjectExistsError`),
        leave it as it is, or add the export's templates to it (a template it already holds, by
        content digest or bit for bit, is left out, so importing the same file twice adds nothing).
    max_bytes : int
        Largest file accepted.

    Raises
    ------
    InvalidExportError, TemplateKeyError
        As :func:`read_export`.
    EmbedderMismatchError
        The export's embedder is not the gallery's (or ``fingerprint``).
    SubjectExistsError
        ``on_conflict="error"`` and a name is taken; nothing was written.
    """
    if on_conflict not in CONFLICTS:
        raise InvalidArgumentError(f"on_conflict must be one of {', '.join(CONFLICTS)}, got {on_conflict!r}")
    export = src if isinstance(src, GalleryExport) else read_export(src, key=key, max_bytes=max_bytes)
    if export.fingerprint is not None:
        for theirs, what in ((gallery.fingerprint, f"gallery {gallery.path}"), (fingerprint, "this service")):
            if theirs is not None and theirs != export.fingerprint:
                raise EmbedderMismatchError(
                    f"the export's templates come from embedder {export.fingerprint!r}; {what} uses {theirs!r}: "
                    "templates of different models cannot be compared (re-enroll from the photos instead)"
                )
        if gallery.dim is not None and gallery.dim != export.dim:
            raise EmbedderMismatchError(
                f"the export's templates have {export.dim} dimensions, the gallery's {gallery.dim}"
            )
    taken = [s.name for s in export.subjects if s.name in gallery]
    if taken and on_conflict == "error":
        shown = ", ".join(repr(n) for n in taken[:5]) + (f" and {len(taken) - 5} more" if len(taken) > 5 else "")
        raise SubjectExistsError(
            f"{len(taken)} subject(s) of the export are already in the gallery ({shown}); nothing was imported "
            "(import with on_conflict=skip or merge)"
        )
    created: list[str] = []
    merged: list[str] = []
    skipped: list[str] = []
    added = left_out = 0
    taken_set = set(taken)
    for s in export.subjects:
        if s.name in taken_set and on_conflict == "skip":
            skipped.append(s.name)
            left_out += s.n_templates
            continue
        before = gallery.get(s.name).n_templates if s.name in taken_set else 0
        if s.n_templates == 0:
            if s.name not in taken_set:
                gallery.create(s.name, metadata=s.metadata)
            after = before
        else:
            assert export.fingerprint is not None
            rows = list(range(s.start, s.start + s.n_templates))
            if s.name in taken_set:  # a template the subject holds already, bit for bit, is not stored twice
                held = {t.tobytes() for t in gallery.templates(s.name)}
                rows = [i for i in rows if export.embeddings[i].tobytes() not in held]
            after = before
            if rows:
                keep = [i - s.start for i in rows]
                after = gallery.enroll(
                    s.name,
                    export.embeddings[rows],
                    fingerprint=export.fingerprint,
                    sources=[s.sources[i] for i in keep],
                    metadata=s.metadata,
                    content_sha256=[s.content_sha256[i] for i in keep],
                    created_at=[s.times[i] for i in keep],
                ).n_templates
        added += after - before
        left_out += s.n_templates - (after - before)
        (merged if s.name in taken_set else created).append(s.name)
    return ImportSummary(tuple(created), tuple(merged), tuple(skipped), added, left_out, export.fingerprint)
