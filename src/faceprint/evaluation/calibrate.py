"""``faceprint calibrate DIR``'s workflow: a folder per person -> embeddings -> :func:`fit_calibration`.

Reads ``DIR/<person>/<image>`` (image files by suffix, hidden files skipped), embeds one face per
image with :meth:`FacePipeline.embed_many` (an image that fails, no face or unreadable, is left
out and listed in :attr:`FolderCalibration.failures`), and fits the thresholds of the pipeline's
embedder with :func:`faceprint.calibration.fit_calibration`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..calibration import DEFAULT_FMRS, Calibration, check_targets, fit_calibration, supported_fmrs
from ..datasets.stats import IMAGE_SUFFIXES
from ..errors import NotAFolderError, UnsupportedOperatingPointError

if TYPE_CHECKING:
    from ..pipeline import FacePipeline

__all__ = ["FolderCalibration", "calibrate_folder", "person_folders"]


@dataclass(frozen=True)
class FolderCalibration:
    """The calibration of a folder, and the images left out (``(path, reason)``)."""

    calibration: Calibration
    failures: tuple[tuple[str, str], ...]
    directory: Path


def person_folders(directory: str | os.PathLike[str]) -> dict[str, list[Path]]:
    """``{person: [image paths]}`` of a folder of person sub-folders (sorted; empty folders left out).

    Raises
    ------
    NotAFolderError
        ``directory`` is missing or not a folder.
    UnsupportedOperatingPointError
        It holds image folders of fewer than 2 people.
    """
    base = Path(directory).expanduser()
    if not base.is_dir():
        raise NotAFolderError(f"{base}: not a folder (expected one sub-folder of photos per person)")
    people: dict[str, list[Path]] = {}
    for sub in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(
            f
            for f in sub.iterdir()
            if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in IMAGE_SUFFIXES
        )
        if files:
            people[sub.name] = files
    if len(people) < 2:
        found = "no person folder with images" if not people else f"one person only ({next(iter(people))})"
        raise UnsupportedOperatingPointError(
            f"{base}: calibration needs a sub-folder of photos for each of at least 2 people; found {found}"
        )
    return people


def calibrate_folder(
    directory: str | os.PathLike[str],
    pipeline: FacePipeline,
    *,
    fmrs: Sequence[float] | None = None,
    fpirs: Sequence[float] = (),
    gallery_size: int | None = None,
    n_boot: int = 200,
    seed: int = 0,
    select: str = "largest",
    progress: Callable[[int], None] | None = None,
    n_images: Callable[[int], None] | None = None,
) -> FolderCalibration:
    """Calibrate ``pipeline``'s embedder on a folder of person sub-folders.

    Parameters
    ----------
    directory : path
        One sub-folder of photos per person (the sub-folder name is the person).
    pipeline : FacePipeline
        Detector and embedder; the calibration is for ``pipeline.embedder`` (key and fingerprint).
    fmrs : sequence of float, optional
        Target FMRs; each must be supported (else :class:`UnsupportedOperatingPointError`). None:
        those of 1e-2, 1e-3, 1e-4 the photos support (at least ``3 / FMR`` impostor pairs).
    fpirs, gallery_size, n_boot, seed
        As in :func:`fit_calibration`.
    select : str
        Which face of each photo (``embed_many``'s ``select``: ``"largest"`` or ``"central"``).
    progress, n_images
        ``progress(1)`` after each image; ``n_images(total)`` once the folder is listed.

    Raises
    ------
    NotAFolderError, UnsupportedOperatingPointError
        Missing folder, fewer than 2 people (before or after failed images are left out), or a
        target the photos cannot support.
    """
    people = person_folders(directory)
    paths = [p for files in people.values() for p in files]
    labels = [name for name, files in people.items() for _ in files]
    # refuse before any embedding a target that even every photo could not support
    check_targets(labels, DEFAULT_FMRS[:1] if fmrs is None else fmrs, fpirs, gallery_size)
    if n_images is not None:
        n_images(len(paths))
    emb, errors = pipeline.embed_many(paths, select=select, progress=progress)  # type: ignore[arg-type]
    ok = np.array([e is None for e in errors], bool)
    failures = tuple((str(p), str(e)) for p, e in zip(paths, errors) if e is not None)
    y = np.asarray(labels)[ok]
    if fmrs is None:
        fmrs = supported_fmrs(y, DEFAULT_FMRS) if len(set(y.tolist())) >= 2 else DEFAULT_FMRS[:1]
        if not fmrs:
            fmrs = DEFAULT_FMRS[:1]  # refused below, with the counts in the message
    base = Path(directory).expanduser()
    embedder = pipeline.embedder
    assert not isinstance(embedder, str)  # a FacePipeline builds its embedder on construction
    calibration = fit_calibration(
        emb[ok],
        y,
        model=embedder.key,
        fingerprint=embedder.fingerprint,
        fmrs=fmrs,
        fpirs=fpirs,
        gallery_size=gallery_size,
        n_boot=n_boot,
        seed=seed,
        source=f"faceprint calibrate {base.resolve()}: {len(set(y.tolist()))} people, {int(ok.sum())} images "
        f"({len(failures)} left out: no face or unreadable)",
    )
    return FolderCalibration(calibration=calibration, failures=failures, directory=base)
