"""Face data set statistics: depth, breadth, duplicates, detection failures, demographic composition.

:func:`dataset_stats` counts a folder of face images in one of two layouts:

``folders``
    One sub-folder per identity (``DIR/<Name>/*.jpg``), as LFW's ``lfw-deepfunneled``.
``utkface``
    Labelled file names without identities, ``AGE_GENDER_RACE_date.jpg`` (UTKFace).

Without a pipeline it only lists files (fast: LFW's 12,405 images in well under a second) and
checks each file's first bytes for a known image signature. With a
:class:`~faceprint.pipeline.FacePipeline` it also decodes every (or a sampled ``max_images``)
image, counts detection failures and finds near-duplicate images (cosine similarity of their
embeddings above a threshold, within each identity; over the whole set for ``utkface``).

Terms: *depth* is images per identity, *breadth* the number of identities.
LFW's published counts are 13,233 images of 5,749 people, 1,680 of them with two or more images;
the shared subset under ``FACEPRINT_DATA`` holds 12,405 images of 4,921 people (every image in
the official pair lists plus every identity with >= 2 images), so its 1,680 people with >= 2
images match the full set while its single-image people are fewer (3,241 of 4,069).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..errors import DatasetNotFoundError, FaceprintError, InvalidArgumentError, InvalidImageError
from .lfw import read_gender_lists
from .utkface import AGE_BANDS, parse_utkface_name

if TYPE_CHECKING:
    from ..pipeline import FacePipeline

__all__ = ["DatasetStats", "dataset_stats", "IMAGE_SUFFIXES", "DEPTH_BINS"]

logger = logging.getLogger(__name__)

Layout = Literal["folders", "utkface"]
Use = Literal["training", "enrollment"]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".ppm", ".pbm", ".tif", ".tiff", ".webp"})
DEPTH_BINS: tuple[tuple[str, int, int], ...] = (
    ("1", 1, 1),
    ("2", 2, 2),
    ("3-4", 3, 4),
    ("5-9", 5, 9),
    ("10-19", 10, 19),
    ("20-49", 20, 49),
    ("50+", 50, 1 << 62),
)
"""Depth histogram bins ``(label, first, last)``, inclusive."""

_SIGNATURES = (
    b"\xff\xd8\xff",  # JPEG
    b"\x89PNG\r\n\x1a\n",
    b"BM",
    b"P1",
    b"P2",
    b"P3",
    b"P4",
    b"P5",
    b"P6",
    b"II*\x00",
    b"MM\x00*",
)


def _looks_like_image(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            head = fh.read(16)
    except OSError:
        return False
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return True
    return any(head.startswith(sig) for sig in _SIGNATURES)


@dataclass(frozen=True)
class DatasetStats:
    """What :func:`dataset_stats` found. Counts are over files with an image suffix.

    Attributes
    ----------
    directory, layout, use
        The folder, its layout and the intended use the warnings were written for.
    images : int
        Image files found.
    unreadable : int
        Files that are not images (bad signature) or that failed to decode (with a pipeline).
    identities : int or None
        Breadth: number of identities (``None`` for the identity-free ``utkface`` layout).
    identities_min2, identities_min5, identities_min10 : int or None
        Identities with at least 2 / 5 / 10 images.
    depth_histogram : dict of str to int
        Identities per images-per-identity bin (:data:`DEPTH_BINS`).
    depth_median, depth_mean, depth_max : float or None
    malformed_names : int
        ``utkface`` file names that do not parse (left out of the composition).
    composition : dict
        ``{attribute: {group: count}}``: gender / race / race x gender / age band for ``utkface``;
        gender per image and per identity for LFW folders when ``male_names.txt`` and
        ``female_names.txt`` lie beside them.
    checked_images, detection_failures, near_duplicate_pairs : int or None
        Only with a pipeline: images decoded, images without a face, and pairs of images (within
        an identity) whose embeddings have cosine similarity above ``near_duplicate_threshold``.
    near_duplicate_examples : list of (str, str, float)
        Up to 20 such pairs (relative paths, similarity).
    warnings : list of str
        Plain sentences: thin depth or breadth for the intended use, under-represented groups,
        many detection failures or duplicates.
    """

    directory: str
    layout: str
    use: str
    images: int
    unreadable: int
    identities: int | None
    identities_min2: int | None
    identities_min5: int | None
    identities_min10: int | None
    depth_histogram: dict[str, int]
    depth_median: float | None
    depth_mean: float | None
    depth_max: int | None
    malformed_names: int = 0
    composition: dict[str, dict[str, int]] = field(default_factory=dict)
    checked_images: int | None = None
    detection_failures: int | None = None
    near_duplicate_threshold: float | None = None
    near_duplicate_pairs: int | None = None
    near_duplicate_examples: list[tuple[str, str, float]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def breadth(self) -> int | None:
        """Number of identities."""
        return self.identities

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["breadth"] = self.breadth
        out["near_duplicate_examples"] = [[a, b, round(s, 4)] for a, b, s in self.near_duplicate_examples]
        return out


def _list_folders(directory: Path) -> dict[str, list[Path]]:
    people: dict[str, list[Path]] = {}
    for sub in sorted(p for p in directory.iterdir() if p.is_dir()):
        files = sorted(f for f in sub.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
        if files:
            people[sub.name] = files
    return people


def _depth(counts: list[int]) -> tuple[dict[str, int], float | None, float | None, int | None]:
    hist = {label: 0 for label, _, _ in DEPTH_BINS}
    for c in counts:
        for label, lo, hi in DEPTH_BINS:
            if lo <= c <= hi:
                hist[label] += 1
                break
    if not counts:
        return hist, None, None, None
    return hist, float(np.median(counts)), round(float(np.mean(counts)), 3), int(max(counts))


def _find_gender_lists(directory: Path) -> tuple[Path, Path] | None:
    for base in (directory, directory.parent):
        male, female = base / "male_names.txt", base / "female_names.txt"
        if male.is_file() and female.is_file():
            return male, female
    return None


def _share_warnings(composition: dict[str, dict[str, int]], attributes: tuple[str, ...], min_share: float) -> list[str]:
    out = []
    for attr in attributes:
        counts = {k: v for k, v in composition.get(attr, {}).items() if k != "unlabelled"}
        total = sum(counts.values())
        if total == 0:
            continue
        for group, n in sorted(counts.items()):
            share = n / total
            if share < min_share:
                out.append(
                    f"{attr} group {group!r} is under-represented: {n} of {total} labelled ({share:.1%} < "
                    f"{min_share:.0%}); its error rates will be estimated poorly"
                )
    return out


def dataset_stats(
    directory: str | Path,
    *,
    layout: Layout = "folders",
    pipeline: FacePipeline | None = None,
    near_duplicate_threshold: float = 0.95,
    max_images: int | None = None,
    use: Use = "training",
    min_group_share: float = 0.10,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
    n_images: Callable[[int], None] | None = None,
) -> DatasetStats:
    """Count identities, depth, breadth, composition (and, with a pipeline, faces and duplicates).

    Parameters
    ----------
    directory : path
        ``folders``: one sub-folder per identity; ``utkface``: image files named
        ``AGE_GENDER_RACE_date.jpg`` (directly in the folder).
    layout : {"folders", "utkface"}
    pipeline : FacePipeline, optional
        Decode, detect (central face) and embed each image: detection failures, undecodable files
        and near-duplicate pairs. Without it only file names and first bytes are read.
    near_duplicate_threshold : float, default 0.95
        Cosine similarity above which two images of one identity count as near duplicates.
    max_images : int, optional
        With a pipeline, a seeded random sample of this many images is checked (counts of the
        sample are reported as ``checked_images``).
    use : {"training", "enrollment"}
        Intended use the depth / breadth warnings are written for. Training wants a median of
        >= 5 images per identity and >= 100 identities (far more for a new model); enrollment
        needs only one good photo per person (three or more make templates steadier).
    min_group_share : float, default 0.10
        Warn when a demographic group holds less than this share of labelled images.
    seed : int
    progress : callable, optional
        Called with 1 after each image the pipeline checks.
    n_images : callable, optional
        Called once with the number of images the pipeline will check (for a progress bar total).

    Returns
    -------
    DatasetStats

    Raises
    ------
    DatasetNotFoundError
        When ``directory`` is not a folder.

    Examples
    --------
    >>> stats = dataset_stats("lfw/lfw-deepfunneled")  # doctest: +SKIP
    >>> stats.identities, stats.identities_min2  # doctest: +SKIP
    (4921, 1680)
    """
    root = Path(directory)
    if not root.is_dir():
        raise DatasetNotFoundError(f"{root}: not a folder")
    if layout not in ("folders", "utkface"):
        raise InvalidArgumentError(f"layout must be 'folders' or 'utkface', got {layout!r}")
    if use not in ("training", "enrollment"):
        raise InvalidArgumentError(f"use must be 'training' or 'enrollment', got {use!r}")

    composition: dict[str, dict[str, int]] = {}
    malformed = 0
    if layout == "folders":
        people = _list_folders(root)
        files = [f for fs in people.values() for f in fs]
        owner = {f: name for name, fs in people.items() for f in fs}
        counts = [len(fs) for fs in people.values()]
        lists = _find_gender_lists(root)
        if lists is not None:
            gl = read_gender_lists(*lists)
            per_image = Counter(gl.labels.get(f.name, "unlabelled") for f in files)
            per_person: Counter[str] = Counter()
            for fs in people.values():
                votes = Counter(gl.labels[f.name] for f in fs if f.name in gl.labels)
                per_person[votes.most_common(1)[0][0] if votes else "unlabelled"] += 1
            composition["gender (images)"] = dict(sorted(per_image.items()))
            composition["gender (identities)"] = dict(sorted(per_person.items()))
    else:
        files = sorted(f for f in root.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
        owner = {}
        counts = []
        labels = [parse_utkface_name(f.name) for f in files]
        malformed = sum(1 for lab in labels if lab is None)
        good = [lab for lab in labels if lab is not None]
        order = [b for b, _, _ in AGE_BANDS]
        composition["gender"] = dict(sorted(Counter(lab.gender for lab in good).items()))
        composition["race"] = dict(sorted(Counter(lab.race for lab in good).items()))
        composition["race x gender"] = dict(sorted(Counter(lab.race_gender for lab in good).items()))
        bands = Counter(lab.age_band for lab in good)
        composition["age band"] = {b: bands.get(b, 0) for b in order}

    bad_signature = {f for f in files if not _looks_like_image(f)}
    hist, median, mean, dmax = _depth(counts)
    n_ids = len(counts) if layout == "folders" else None

    checked = failures = dups = None
    examples: list[tuple[str, str, float]] = []
    undecodable = 0
    if pipeline is not None:
        sample = [f for f in files if f not in bad_signature]
        if max_images is not None and max_images < len(sample):
            rng = np.random.default_rng(seed)
            keep = rng.choice(len(sample), size=max_images, replace=False)
            sample = [sample[i] for i in sorted(keep)]
        if n_images is not None:
            n_images(len(sample))
        emb: dict[Path, np.ndarray] = {}
        failures = 0
        for f in sample:
            try:
                image = pipeline.load(f)
            except InvalidImageError as err:
                logger.info("unreadable: %s", err)
                undecodable += 1
            else:
                try:
                    faces = pipeline.faces(image, select="central")
                except FaceprintError as err:
                    logger.info("embedding failed: %s: %s", f, err)
                    faces = []
                if faces:
                    emb[f] = faces[0].embedding
                else:
                    failures += 1
            if progress is not None:
                progress(1)
        checked = len(sample)
        groups: dict[str, list[Path]] = {}
        for f in emb:
            groups.setdefault(owner.get(f, ""), []).append(f)
        dups = 0
        for members in groups.values():
            if len(members) < 2:
                continue
            m = np.stack([emb[f] for f in members]).astype(np.float32)
            for start in range(0, len(members), 1024):
                sims = m[start : start + 1024] @ m.T
                rows, cols = np.nonzero(sims > near_duplicate_threshold)
                for r, c in zip(rows.tolist(), cols.tolist()):
                    i = start + r
                    if c <= i:
                        continue
                    dups += 1
                    if len(examples) < 20:
                        examples.append(
                            (str(members[i].relative_to(root)), str(members[c].relative_to(root)), float(sims[r, c]))
                        )

    warnings: list[str] = []
    unreadable = len(bad_signature) + undecodable
    if not files:
        warnings.append(f"no image files found in {root} (layout {layout!r})")
    if unreadable:
        warnings.append(f"{unreadable} file(s) are not readable images")
    if malformed:
        warnings.append(f"{malformed} file name(s) do not follow AGE_GENDER_RACE_date.jpg and are left out")
    if layout == "folders" and counts and median is not None:
        n2 = sum(1 for c in counts if c >= 2)
        if use == "training":
            if median < 5:
                warnings.append(
                    f"thin depth for training: median {median:g} image(s) per identity (< 5); "
                    f"only {n2} of {len(counts)} identities have >= 2 images"
                )
            if len(counts) < 100:
                warnings.append(
                    f"thin breadth for training: {len(counts)} identities (< 100); fine for enrollment"
                )
            elif n2 < 100:
                warnings.append(f"thin breadth for training: {n2} identities with >= 2 images (< 100)")
        else:
            singles = sum(1 for c in counts if c == 1)
            if singles / len(counts) > 0.5:
                warnings.append(
                    f"{singles} of {len(counts)} identities have a single photo: enrollment works, but "
                    f"3 or more photos per person make templates steadier"
                )
    if layout == "utkface":
        warnings.append("no identity labels: depth and breadth are undefined (use for bias analysis, not training)")
    attrs = ("gender", "race", "age band") if layout == "utkface" else ("gender (images)",)
    warnings.extend(_share_warnings(composition, attrs, min_group_share))
    if checked and failures is not None:
        rate = failures / checked
        if rate > 0.05:
            warnings.append(f"detection failed on {failures} of {checked} images ({rate:.1%} > 5%)")
        if dups and use == "training":
            warnings.append(
                f"{dups} near-duplicate image pair(s) (cosine > {near_duplicate_threshold:g}): they inflate "
                f"depth and leak between training and test splits"
            )

    return DatasetStats(
        directory=str(root),
        layout=layout,
        use=use,
        images=len(files),
        unreadable=unreadable,
        identities=n_ids,
        identities_min2=sum(1 for c in counts if c >= 2) if n_ids is not None else None,
        identities_min5=sum(1 for c in counts if c >= 5) if n_ids is not None else None,
        identities_min10=sum(1 for c in counts if c >= 10) if n_ids is not None else None,
        depth_histogram=hist if n_ids is not None else {},
        depth_median=median,
        depth_mean=mean,
        depth_max=dmax,
        malformed_names=malformed,
        composition=composition,
        checked_images=checked,
        detection_failures=failures,
        near_duplicate_threshold=near_duplicate_threshold if pipeline is not None else None,
        near_duplicate_pairs=dups,
        near_duplicate_examples=examples,
        warnings=warnings,
    )

