"""Training data from a folder of identity sub-folders: detect, align, cache, split.

``root/<identity>/<image>`` — one sub-folder per person, any image format :func:`faceprint.io.load_image`
reads (greyscale ORL ``.pgm`` files become RGB). The largest face of each image is detected and aligned
to the ArcFace 5-point template scaled to ``input_size``. Images that cannot be read or hold no face are
*reported* in :attr:`FaceDataset.skipped`, never dropped silently.

Aligned crops are cached in one ``.npz`` per (folder, settings) under ``cache_dir``; each entry is keyed
by the file's relative path, size and modification time, so a second run over an unchanged folder does no
detection at all, and an edited or added image is the only one processed again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..alignment import ARCFACE_TEMPLATE_112, align, scaled_template
from ..detection import Detector, get_detector, select_faces
from ..errors import DatasetNotFoundError, FaceprintError, InvalidArgumentError
from ..io import load_image

__all__ = ["FaceDataset", "IMAGE_SUFFIXES", "load_identity_folders", "identity_split", "default_template"]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".pgm", ".ppm", ".pbm", ".bmp", ".tif", ".tiff", ".webp"})
"""File name endings read as images (case-insensitive); other files are ignored."""

_CACHE_VERSION = 1

Template = tuple[tuple[float, float], ...]


def default_template(input_size: int) -> Template:
    """The ArcFace 112x112 template scaled to an ``input_size`` square crop.

    Examples
    --------
    >>> default_template(56)[0]
    (19.1473, 25.84815)
    """
    return scaled_template(ARCFACE_TEMPLATE_112, 112, input_size)


@dataclass(frozen=True)
class FaceDataset:
    """Aligned face crops with identity labels.

    Attributes
    ----------
    crops : ndarray of uint8, shape (n, size, size, 3)
        RGB crops aligned to ``template``.
    labels : ndarray of int64, shape (n,)
        Index into ``names``.
    names : tuple of str
        Identity (folder) names; ``names[labels[i]]`` is the person of crop ``i``.
    paths : tuple of str
        Source image of each crop.
    skipped : tuple of (str, str)
        ``(path, reason)`` for every image not used: unreadable, no face, or its identity had too few
        usable images.
    input_size : int
    template : tuple of (float, float)
        The 5 points the crops were aligned to.
    root : str
        The folder the data came from.
    """

    crops: npt.NDArray[np.uint8]
    labels: npt.NDArray[np.int64]
    names: tuple[str, ...]
    paths: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]
    input_size: int
    template: Template
    root: str = ""

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def n_identities(self) -> int:
        """Number of distinct identities that have at least one crop."""
        return int(np.unique(self.labels).size)

    def subset(self, indices: npt.ArrayLike) -> FaceDataset:
        """The crops at ``indices`` (labels and names unchanged; ``skipped`` kept).

        Examples
        --------
        >>> ds.subset(train_idx).n_identities  # doctest: +SKIP
        """
        idx = np.asarray(indices, np.int64)
        return FaceDataset(
            crops=self.crops[idx],
            labels=self.labels[idx],
            names=self.names,
            paths=tuple(self.paths[i] for i in idx),
            skipped=self.skipped,
            input_size=self.input_size,
            template=self.template,
            root=self.root,
        )


def _list_images(root: Path) -> list[tuple[str, list[Path]]]:
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    out = []
    for folder in folders:
        files = sorted(
            f for f in folder.iterdir()
            if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in IMAGE_SUFFIXES
        )
        out.append((folder.name, files))
    return out


def _cache_path(cache_dir: Path, root: Path, settings: dict[str, object]) -> Path:
    blob = json.dumps({"root": str(root), **settings}, sort_keys=True).encode()
    return cache_dir / f"faces-{root.name}-{hashlib.sha256(blob).hexdigest()[:16]}.npz"


def _file_key(root: Path, path: Path) -> str:
    st = path.stat()
    return f"{path.relative_to(root).as_posix()}|{st.st_size}|{st.st_mtime_ns}"


def _read_cache(path: Path, size: int) -> dict[str, np.ndarray | str]:
    """key -> crop (uint8) or the reason the image was skipped."""
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as z:
            if int(z["version"]) != _CACHE_VERSION or z["crops"].shape[1:] != (size, size, 3):
                return {}
            keys, reasons, crops, rows = z["keys"], z["reasons"], z["crops"], z["rows"]
    except (OSError, ValueError, KeyError) as err:
        log.warning("ignoring unreadable face cache %s: %s", path, err)
        return {}
    out: dict[str, np.ndarray | str] = {}
    for key, reason, row in zip(keys.tolist(), reasons.tolist(), rows.tolist()):
        out[key] = reason if reason else crops[row]
    return out


def _write_cache(path: Path, entries: dict[str, np.ndarray | str], size: int) -> None:
    keys = sorted(entries)
    crops = [entries[k] for k in keys if not isinstance(entries[k], str)]
    rows, reasons, r = [], [], 0
    for k in keys:
        v = entries[k]
        if isinstance(v, str):
            rows.append(-1)
            reasons.append(v)
        else:
            rows.append(r)
            reasons.append("")
            r += 1
    arr = np.stack(crops).astype(np.uint8) if crops else np.zeros((0, size, size, 3), np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(
        tmp,
        version=np.array(_CACHE_VERSION),
        keys=np.array(keys, dtype=str),
        reasons=np.array(reasons, dtype=str),
        rows=np.array(rows, np.int64),
        crops=arr,
    )
    os.replace(tmp, path)


def load_identity_folders(
    root: Path | str,
    *,
    detector: str | Detector = "yunet",
    input_size: int = 64,
    template: Sequence[Sequence[float]] | None = None,
    cache_dir: Path | str | None = None,
    min_images: int = 2,
    min_face_size: float = 0.0,
    on_progress: Callable[[int, int], None] | None = None,
) -> FaceDataset:
    """Detect, align and label every face of a folder of identity sub-folders.

    Parameters
    ----------
    root : path
        Folder holding one sub-folder per identity.
    detector : str or Detector, default "yunet"
        Registered detector name or a detector object; the largest face of each image is used.
    input_size : int, default 64
        Side of the square aligned crops.
    template : sequence of 5 (x, y), optional
        Alignment template in ``input_size`` pixels; default the ArcFace template scaled to
        ``input_size`` (:func:`default_template`).
    cache_dir : path, optional
        Where to keep aligned crops between runs (an ``.npz`` per folder and settings). ``None``: no cache.
    min_images : int, default 2
        Identities with fewer usable images are left out (their files are listed in ``skipped``);
        the triplet loss needs at least two images of a person.
    min_face_size : float, default 0
        Ignore detections whose shorter box side is smaller (pixels).
    on_progress : callable, optional
        ``on_progress(done, total)`` after each image.

    Returns
    -------
    FaceDataset

    Raises
    ------
    DatasetNotFoundError
        When ``root`` is not a folder.
    FaceprintError
        When it holds no identity sub-folders with images, or fewer than two identities have
        ``min_images`` usable faces.
    ValueError
        On a bad ``input_size`` / ``template`` / ``min_images``.

    Examples
    --------
    >>> ds = load_identity_folders("orl_faces", input_size=64, cache_dir=".cache")  # doctest: +SKIP
    >>> ds.crops.shape, ds.n_identities  # doctest: +SKIP
    ((400, 64, 64, 3), 40)
    """
    base = Path(root).expanduser()
    if not base.is_dir():
        raise DatasetNotFoundError(f"training data folder not found: {base}")
    base = base.resolve()
    if not 16 <= int(input_size) <= 512:
        raise InvalidArgumentError(f"input_size must be between 16 and 512 pixels, got {input_size}")
    if min_images < 1:
        raise InvalidArgumentError(f"min_images must be >= 1, got {min_images}")
    size = int(input_size)
    tmpl: Template = default_template(size) if template is None else tuple(
        (float(x), float(y)) for x, y in template
    )
    if len(tmpl) != 5:
        raise InvalidArgumentError(f"template must have 5 (x, y) points, got {len(tmpl)}")

    folders = [(name, files) for name, files in _list_images(base) if files]
    if not folders:
        raise FaceprintError(
            f"{base} holds no identity sub-folders with images (expected {base}/<person>/<image>.jpg)"
        )
    det_name = detector if isinstance(detector, str) else str(getattr(detector, "name", type(detector).__name__))
    settings: dict[str, object] = {
        "size": size, "template": [list(p) for p in tmpl], "detector": det_name, "min_face_size": float(min_face_size),
    }
    cache_file = _cache_path(Path(cache_dir), base, settings) if cache_dir is not None else None
    cached = _read_cache(cache_file, size) if cache_file is not None else {}

    det: Detector | None = detector if not isinstance(detector, str) else None
    total = sum(len(files) for _, files in folders)
    done = 0
    fresh: dict[str, np.ndarray | str] = {}
    per_identity: list[tuple[str, list[tuple[str, np.ndarray]], list[tuple[str, str]]]] = []
    n_detected = 0
    for name, files in folders:
        good: list[tuple[str, np.ndarray]] = []
        bad: list[tuple[str, str]] = []
        for f in files:
            key = _file_key(base, f)
            entry = cached.get(key)
            if entry is None:
                if det is None:
                    det = get_detector(str(detector))
                entry = _detect_align(f, det, tmpl, size, min_face_size)
                n_detected += 1
            fresh[key] = entry
            if isinstance(entry, str):
                bad.append((str(f), entry))
            else:
                good.append((str(f), entry))
            done += 1
            if on_progress is not None:
                on_progress(done, total)
        per_identity.append((name, good, bad))
    if cache_file is not None and (n_detected or set(fresh) != set(cached)):
        _write_cache(cache_file, fresh, size)
    log.info("%d images, %d detected now, %d from cache %s", total, n_detected, total - n_detected, cache_file)

    crops: list[np.ndarray] = []
    labels: list[int] = []
    paths: list[str] = []
    names: list[str] = []
    skipped: list[tuple[str, str]] = []
    for name, good, bad in per_identity:
        skipped.extend(bad)
        if len(good) < min_images:
            reason = f"identity {name!r} has {len(good)} usable image(s), fewer than min_images={min_images}"
            skipped.extend((p, reason) for p, _ in good)
            continue
        label = len(names)
        names.append(name)
        for p, crop in good:
            crops.append(crop)
            labels.append(label)
            paths.append(p)
    if len(names) < 2:
        raise FaceprintError(
            f"{base}: need at least 2 identities with >= {min_images} usable face images each, found {len(names)} "
            f"({len(folders)} folder(s), {len(skipped)} image(s) skipped)"
        )
    for p, reason in skipped:
        log.info("skipped %s: %s", p, reason)
    if skipped:
        log.warning("%d of %d images skipped (no face, unreadable, or too few per identity)", len(skipped), total)
    return FaceDataset(
        crops=np.stack(crops).astype(np.uint8),
        labels=np.asarray(labels, np.int64),
        names=tuple(names),
        paths=tuple(paths),
        skipped=tuple(skipped),
        input_size=size,
        template=tmpl,
        root=str(base),
    )


def _detect_align(path: Path, det: Detector, template: Template, size: int, min_face_size: float) -> np.ndarray | str:
    try:
        image = load_image(path)
    except FaceprintError as err:
        return f"unreadable: {err}"
    except OSError as err:
        return f"unreadable: {type(err).__name__}: {err}"
    faces = select_faces(det.detect(image), image.shape, "largest", min_face_size=min_face_size)
    if not faces:
        return "no face found"
    try:
        return align(image, faces[0], template, (size, size))
    except ValueError as err:
        return f"alignment failed: {err}"


def identity_split(
    labels: npt.ArrayLike, val_fraction: float, seed: int = 0
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Split sample indices so that no identity is in both parts.

    ``round(val_fraction * n_identities)`` identities (at least 2 when ``val_fraction > 0``, so that
    validation has impostor pairs) go to validation, chosen by a seeded permutation; the training part
    keeps at least 2 identities.

    Parameters
    ----------
    labels : array_like of int, shape (n,)
    val_fraction : float
        In ``[0, 1)``; 0 gives an empty validation part.
    seed : int, default 0

    Returns
    -------
    train_idx, val_idx : ndarray of int64
        Sorted sample indices.

    Raises
    ------
    ValueError
        When the fraction is out of range or the identities are too few for the split.

    Examples
    --------
    >>> tr, va = identity_split([0, 0, 1, 1, 2, 2, 3, 3], 0.5, seed=0)
    >>> len(tr), len(va)
    (4, 4)
    """
    y = np.asarray(labels)
    if y.ndim != 1:
        raise InvalidArgumentError(f"labels must be 1-d, got shape {y.shape}")
    if not 0.0 <= float(val_fraction) < 1.0:
        raise InvalidArgumentError(f"val_fraction must be in [0, 1), got {val_fraction}")
    ids = np.unique(y)
    if val_fraction == 0:
        return np.arange(y.size, dtype=np.int64), np.zeros(0, np.int64)
    n_val = max(2, int(round(float(val_fraction) * ids.size)))
    if ids.size - n_val < 2:
        raise InvalidArgumentError(
            f"cannot split {ids.size} identities with val_fraction={val_fraction}: validation needs >= 2 "
            f"identities and training >= 2"
        )
    rng = np.random.default_rng(seed)
    val_ids = rng.permutation(ids)[:n_val]
    is_val = np.isin(y, val_ids)
    return np.flatnonzero(~is_val).astype(np.int64), np.flatnonzero(is_val).astype(np.int64)
