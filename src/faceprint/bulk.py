"""Bulk enrollment: a folder (one sub-folder per person) or a manifest of photos into a gallery.

Four steps, each replaceable:

1. :func:`scan_folder` / :func:`read_manifest` list the photos (:class:`BulkPhoto`: path, name);
   what cannot be a photo of someone is a :class:`BulkFailure` from the start;
2. :func:`enroll_photos` leaves out what the gallery holds already (the photo's content sha256
   among its subject's stored digests: a rerun, or a run killed with ``kill -9`` and started again,
   does only what is left);
3. a *runner* embeds the rest (:func:`embed_photos` on chunks of photos): in this process
   (:func:`sequential_runner`), on a local process pool (:func:`process_runner`), or on Ray
   (:func:`faceprint.distributed.ray_runner`); every worker rebuilds the pipeline once from its
   :class:`~faceprint.pipeline.PipelineSpec`;
4. results are committed in batches, one ``gallery.enroll`` per subject per batch with each
   photo's sha256, so the gallery stores a photo's content once per subject even when two
   batches (or two runs) carry it.

A bad photo (undecodable, no face, not a regular file, too large) never stops the run: it is a
:class:`BulkFailure` with its reason, as is a photo of a name the gallery refuses.

Examples
--------
>>> from faceprint.bulk import enroll_photos, scan_folder  # doctest: +SKIP
>>> photos, failures = scan_folder("people/")  # doctest: +SKIP
>>> with open_gallery("people.db") as g:  # doctest: +SKIP
...     report = enroll_photos(g, photos, PipelineSpec(), failures=failures)
"""

from __future__ import annotations

import csv
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .datasets.stats import IMAGE_SUFFIXES
from .enrollment import PHOTO_ERRORS, content_sha256, prepare_enrollment
from .errors import EmbedderMismatchError, FaceprintError, GalleryError, InvalidArgumentError, NotAFolderError

if TYPE_CHECKING:
    from .gallery import GalleryBackend
    from .pipeline import FacePipeline, PipelineSpec

__all__ = [
    "BulkPhoto",
    "BulkFailure",
    "EmbeddedPhoto",
    "BulkReport",
    "Runner",
    "scan_folder",
    "read_manifest",
    "embed_photos",
    "sequential_runner",
    "process_runner",
    "enroll_photos",
    "write_failures",
    "DEFAULT_BATCH",
    "DEFAULT_CHUNK",
]

logger = logging.getLogger(__name__)

DEFAULT_BATCH = 64
"""Photos committed per batch (a kill loses at most the batch being embedded)."""

DEFAULT_CHUNK = 16
"""Photos a worker embeds per task."""


@dataclass(frozen=True)
class BulkPhoto:
    """One photo to enroll: its file and the person's name."""

    path: str
    name: str


@dataclass(frozen=True)
class BulkFailure:
    """A photo that was not enrolled, and why (a row of the failures CSV)."""

    path: str
    name: str
    error_type: str
    error: str


@dataclass(frozen=True, eq=False)
class EmbeddedPhoto:
    """What a worker made of one photo: its template and content digest, or the error.

    Attributes
    ----------
    embedding : ndarray of float32, shape (d,), or None
        The template; None when the photo failed.
    """

    path: str
    name: str
    digest: str | None
    embedding: npt.NDArray[np.float32] | None
    fingerprint: str | None
    error_type: str | None = None
    error: str | None = None

    def failure(self) -> BulkFailure:
        return BulkFailure(self.path, self.name, self.error_type or "Error", self.error or "")


@dataclass(frozen=True)
class BulkReport:
    """What :func:`enroll_photos` did.

    Attributes
    ----------
    listed : int
        Photos given (plus failures found while listing them).
    enrolled : int
        Templates written by this run.
    skipped : int
        Photos the gallery held already (their subject stores their content sha256), or that the
        gallery left out at commit for the same reason.
    failures : tuple of BulkFailure
        Photos not enrolled, with the reason.
    subjects : int
        Distinct names written to.
    seconds : float
        Wall time of the run.
    embedded : int
        Photos a runner processed (enrolled or failed in a worker).
    runner : str
        Which runner embedded them.
    """

    listed: int
    enrolled: int
    skipped: int
    failures: tuple[BulkFailure, ...]
    subjects: int
    seconds: float
    embedded: int
    runner: str

    @property
    def images_per_second(self) -> float:
        """Photos embedded per second of wall time."""
        return self.embedded / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "listed": self.listed, "enrolled": self.enrolled, "skipped": self.skipped,
            "failed": len(self.failures), "subjects": self.subjects, "embedded": self.embedded,
            "seconds": round(self.seconds, 3), "images_per_second": round(self.images_per_second, 2),
            "runner": self.runner,
        }


Runner = Callable[["PipelineSpec", Sequence[BulkPhoto]], Iterator[list[EmbeddedPhoto]]]
"""Embeds photos with a pipeline rebuilt from the spec and yields results in chunks, in any order."""


# -- listing ----------------------------------------------------------------------------------
def _is_image_name(path: Path) -> bool:
    return not path.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES


def scan_folder(directory: str | os.PathLike[str]) -> tuple[list[BulkPhoto], list[BulkFailure]]:
    """The photos of a folder with one sub-folder per person (the sub-folder's name is the name).

    Image files (by suffix) directly in each sub-folder are listed, sorted; hidden entries and other
    files are ignored. A non-regular entry with an image suffix (a folder, a FIFO, a broken link)
    and images at the top level (no person) are failures.

    Raises
    ------
    NotAFolderError
        ``directory`` is missing or not a folder.
    """
    base = Path(directory).expanduser()
    if not base.is_dir():
        raise NotAFolderError(f"{base}: not a folder (expected one sub-folder of photos per person)")
    photos: list[BulkPhoto] = []
    failures: list[BulkFailure] = []
    for entry in sorted(base.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            for f in sorted(entry.iterdir()):
                if not _is_image_name(f):
                    continue
                if f.is_file():
                    photos.append(BulkPhoto(str(f), entry.name))
                else:
                    failures.append(BulkFailure(str(f), entry.name, "InvalidFileError", "not a regular file"))
        elif _is_image_name(entry):
            failures.append(BulkFailure(
                str(entry), "", "InvalidArgumentError", "a photo outside any person's sub-folder (no name)"
            ))
    return photos, failures


def read_manifest(manifest: str | os.PathLike[str]) -> tuple[list[BulkPhoto], list[BulkFailure]]:
    """The photos a CSV names: a header with ``path`` and ``name`` columns, then one row per photo.

    Relative paths are taken from the CSV's folder. A row without a path or a name is a failure
    (its row number in place of a path when it has none).

    Raises
    ------
    InvalidArgumentError
        The file cannot be read as UTF-8 CSV, or its header lacks ``path`` or ``name``.
    """
    where = Path(manifest).expanduser()
    try:
        with where.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            columns = [c.strip().lower() for c in (reader.fieldnames or [])]
            if "path" not in columns or "name" not in columns:
                raise InvalidArgumentError(
                    f"{where}: expected a CSV whose header has the columns path and name, got {columns[:10]}"
                )
            rows = [{(k or "").strip().lower(): (v or "") for k, v in row.items()} for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise InvalidArgumentError(f"{where}: cannot read the manifest: {err}") from err
    photos: list[BulkPhoto] = []
    failures: list[BulkFailure] = []
    for number, row in enumerate(rows, start=2):
        path, name = row.get("path", "").strip(), row.get("name", "").strip()
        if not path or not name:
            failures.append(BulkFailure(path or f"{where}:{number}", name, "InvalidArgumentError",
                                        f"row {number} has no {'path' if not path else 'name'}"))
            continue
        full = Path(path).expanduser()
        photos.append(BulkPhoto(str(full if full.is_absolute() else where.parent / full), name))
    return photos, failures


# -- embedding --------------------------------------------------------------------------------
_PIPELINES: dict[Any, FacePipeline] = {}
_PIPELINES_LOCK = threading.Lock()


def _pipeline(spec: PipelineSpec) -> FacePipeline:
    """One warm pipeline per spec and process."""
    with _PIPELINES_LOCK:
        pipe = _PIPELINES.get(spec)
        if pipe is None:
            from .pipeline import FacePipeline

            pipe = _PIPELINES[spec] = FacePipeline.from_spec(spec)
        return pipe


def embed_photos(spec: PipelineSpec, photos: Sequence[BulkPhoto]) -> list[EmbeddedPhoto]:
    """Embed each photo (the largest face) with the pipeline ``spec`` names; never raises for a photo.

    What runs in every worker. A photo error (:data:`~faceprint.enrollment.PHOTO_ERRORS`) or a
    rejection by the pipeline's liveness check is that photo's result.
    """
    pipe = _pipeline(spec)
    out: list[EmbeddedPhoto] = []
    for photo in photos:
        try:
            prepared = prepare_enrollment(pipe, photo.name, [photo.path])
        except PHOTO_ERRORS as err:
            out.append(EmbeddedPhoto(photo.path, photo.name, None, None, None, type(err).__name__, str(err)))
            continue
        if prepared.rejection is not None:
            out.append(EmbeddedPhoto(photo.path, photo.name, prepared.content_sha256[0], None, None,
                                     "EnrollmentRejectedError",
                                     f"the liveness check said {prepared.rejection.decision}"))
            continue
        out.append(EmbeddedPhoto(photo.path, photo.name, prepared.content_sha256[0],
                                 np.array(prepared.embeddings[0], np.float32), prepared.fingerprint))
    return out


def _chunks(photos: Sequence[BulkPhoto], size: int) -> Iterator[Sequence[BulkPhoto]]:
    for start in range(0, len(photos), size):
        yield photos[start : start + size]


def sequential_runner(chunk: int = DEFAULT_CHUNK) -> Runner:
    """Embed in this process, ``chunk`` photos at a time."""
    def run(spec: PipelineSpec, photos: Sequence[BulkPhoto]) -> Iterator[list[EmbeddedPhoto]]:
        for part in _chunks(photos, chunk):
            yield embed_photos(spec, part)

    return run


def _init_worker(threads: int) -> None:
    from . import runtime

    runtime.set_num_threads(threads)


def process_runner(workers: int = 2, *, chunk: int = DEFAULT_CHUNK, threads: int = 1) -> Runner:
    """Embed on a pool of ``workers`` local processes (spawned; ``threads`` inference threads each),
    at most two chunks in flight per worker."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidArgumentError(f"workers must be a positive integer, got {workers!r}")

    def run(spec: PipelineSpec, photos: Sequence[BulkPhoto]) -> Iterator[list[EmbeddedPhoto]]:
        parts: Iterator[Sequence[BulkPhoto] | None] = iter(_chunks(photos, chunk))
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                                 initializer=_init_worker, initargs=(threads,)) as pool:
            pending: set[Future[list[EmbeddedPhoto]]] = set()
            while len(pending) < 2 * workers:
                first = next(parts, None)
                if first is None:
                    break
                pending.add(pool.submit(embed_photos, spec, first))
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
                    part = next(parts, None)
                    if part is not None:
                        pending.add(pool.submit(embed_photos, spec, part))

    return run


# -- the run ----------------------------------------------------------------------------------
@dataclass
class _Tally:
    enrolled: int = 0
    skipped: int = 0
    embedded: int = 0
    failures: list[BulkFailure] = field(default_factory=list)
    subjects: set[str] = field(default_factory=set)


def _held(gallery: GalleryBackend, photos: Sequence[BulkPhoto], tally: _Tally) -> list[BulkPhoto]:
    """The photos whose content the gallery does not hold for their name yet (others: skipped)."""
    by_name: dict[str, frozenset[str] | None] = {}
    left: list[BulkPhoto] = []
    for photo in photos:
        key = photo.name.strip()
        if key not in by_name:
            try:
                by_name[key] = gallery.content_hashes(key) if key in gallery else None
            except GalleryError:
                by_name[key] = None  # a name the gallery refuses: the commit reports it
        held = by_name[key]
        if held:
            try:
                digest = content_sha256(photo.path)
            except PHOTO_ERRORS as err:
                tally.failures.append(BulkFailure(photo.path, photo.name, type(err).__name__, str(err)))
                continue
            if digest in held:
                tally.skipped += 1
                continue
        left.append(photo)
    return left


def _commit(gallery: GalleryBackend, batch: list[EmbeddedPhoto], tally: _Tally) -> None:
    """One ``enroll`` per name of the batch, with each photo's digest (stored once per subject)."""
    by_name: dict[str, list[EmbeddedPhoto]] = {}
    for item in batch:
        by_name.setdefault(item.name, []).append(item)
    for name, items in by_name.items():
        fingerprint = items[0].fingerprint
        assert fingerprint is not None
        try:
            before = gallery.get(name.strip()).n_templates if name.strip() in gallery else 0
            subject = gallery.enroll(
                name, np.stack([i.embedding for i in items if i.embedding is not None]), fingerprint=fingerprint,
                sources=[i.path for i in items], content_sha256=[i.digest for i in items],
            )
        except EmbedderMismatchError:
            raise  # another model's gallery: every batch would fail the same way
        except FaceprintError as err:  # a name the gallery refuses (control characters, too long ...)
            tally.failures.extend(BulkFailure(i.path, i.name, type(err).__name__, str(err)) for i in items)
            continue
        added = subject.n_templates - before
        tally.enrolled += added
        tally.skipped += len(items) - added
        tally.subjects.add(subject.name)


def enroll_photos(
    gallery: GalleryBackend,
    photos: Sequence[BulkPhoto],
    spec: PipelineSpec,
    *,
    runner: Runner | None = None,
    runner_name: str = "sequential",
    batch_size: int = DEFAULT_BATCH,
    failures: Iterable[BulkFailure] = (),
    progress: Callable[[int, int], None] | None = None,
) -> BulkReport:
    """Enroll every photo not enrolled yet; bad ones become failures, never errors.

    Parameters
    ----------
    gallery : GalleryBackend
        Where templates go (the calling process owns it: workers never touch it).
    photos : sequence of BulkPhoto
        From :func:`scan_folder` or :func:`read_manifest`.
    spec : PipelineSpec
        The pipeline every worker rebuilds (detector, embedder, liveness ...).
    runner : Runner, optional
        Default :func:`sequential_runner`.
    runner_name : str
        What the report calls the runner.
    batch_size : int, default 64
        Embedded photos per commit.
    failures : iterable of BulkFailure
        Failures found while listing, carried into the report.
    progress : callable, optional
        Called as ``progress(done, total)`` after each chunk (done counts skipped photos too).

    Raises
    ------
    EmbedderMismatchError
        The gallery holds another model's templates (nothing of this run is written).
    InvalidArgumentError
        ``batch_size`` is not a positive integer.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidArgumentError(f"batch_size must be a positive integer, got {batch_size!r}")
    start = time.perf_counter()
    tally = _Tally(failures=list(failures))
    listed = len(photos) + len(tally.failures)
    todo = _held(gallery, photos, tally)
    total = len(photos)
    done = total - len(todo)
    if progress is not None:
        progress(done, total)
    run = runner or sequential_runner()
    batch: list[EmbeddedPhoto] = []
    if todo:
        for results in run(spec, todo):
            tally.embedded += len(results)
            for item in results:
                if item.embedding is None:
                    tally.failures.append(item.failure())
                else:
                    batch.append(item)
            if len(batch) >= batch_size:
                _commit(gallery, batch, tally)
                batch = []
            done += len(results)
            if progress is not None:
                progress(done, total)
    if batch:
        _commit(gallery, batch, tally)
    seconds = time.perf_counter() - start
    report = BulkReport(listed, tally.enrolled, tally.skipped, tuple(tally.failures), len(tally.subjects), seconds,
                        tally.embedded, runner_name)
    logger.info("bulk enrollment: %s", report.to_dict())
    return report


def write_failures(path: str | os.PathLike[str], failures: Iterable[BulkFailure]) -> Path:
    """Write failures as CSV (``path,name,error_type,error``; a header even when there are none)."""
    where = Path(path).expanduser()
    with where.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "name", "error_type", "error"])
        for f in failures:
            writer.writerow([f.path, f.name, f.error_type, f.error])
    return where
