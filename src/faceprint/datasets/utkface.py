"""UTKFace: labelled file names ``AGE_GENDER_RACE_date.jpg`` (no identities), groups, sampling.

* :func:`parse_utkface_name` / :class:`UtkLabel`, :func:`age_band` and :func:`utkface_groups`:
  the labels and the race x gender / age band groups of each image;
* :func:`utkface_images` and :func:`sample_images`: the images under a data sets folder and a
  seeded random sample of them (a quick run).

Parsing only: the per-group metrics are in :mod:`faceprint.evaluation.bias`.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DatasetNotFoundError, InvalidArgumentError

__all__ = [
    "AGE_BANDS",
    "UTK_GENDERS",
    "UTK_RACES",
    "UtkLabel",
    "parse_utkface_name",
    "age_band",
    "utkface_groups",
    "utkface_images",
    "sample_images",
    "is_fit_image",
]

logger = logging.getLogger(__name__)


AGE_BANDS: tuple[tuple[str, int, int], ...] = (
    ("0-17", 0, 17),
    ("18-29", 18, 29),
    ("30-44", 30, 44),
    ("45-59", 45, 59),
    ("60+", 60, 10_000),
)
"""Age bands ``(label, first age, last age)``, inclusive."""

UTK_GENDERS = {0: "male", 1: "female"}
UTK_RACES = {0: "White", 1: "Black", 2: "Asian", 3: "Indian", 4: "Others"}


@dataclass(frozen=True)
class UtkLabel:
    """Labels parsed from a UTKFace file name ``AGE_GENDER_RACE_date.jpg``."""

    age: int
    gender: str
    race: str

    @property
    def race_gender(self) -> str:
        return f"{self.race} {self.gender}"

    @property
    def age_band(self) -> str:
        return age_band(self.age)


_UTK = re.compile(r"^(\d{1,3})_(\d)_(\d)_")


def parse_utkface_name(name: str | Path) -> UtkLabel | None:
    """Parse ``AGE_GENDER_RACE_date.jpg``; None for a malformed name (callers count those).

    Gender 0 male, 1 female; race 0 White, 1 Black, 2 Asian, 3 Indian, 4 Others; age 0-120.

    Examples
    --------
    >>> parse_utkface_name("25_1_2_20170116174525125.jpg.chip.jpg")
    UtkLabel(age=25, gender='female', race='Asian')
    >>> parse_utkface_name("39_1_20170116174525125.jpg") is None
    True
    """
    m = _UTK.match(Path(name).name)
    if m is None:
        return None
    age, gender, race = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if age > 120 or gender not in UTK_GENDERS or race not in UTK_RACES:
        return None
    return UtkLabel(age=age, gender=UTK_GENDERS[gender], race=UTK_RACES[race])


def age_band(age: int) -> str:
    """The :data:`AGE_BANDS` label of an age (``0-17``, ``18-29``, ``30-44``, ``45-59``, ``60+``)."""
    for label, lo, hi in AGE_BANDS:
        if lo <= age <= hi:
            return label
    raise InvalidArgumentError(f"age must be >= 0, got {age}")


def utkface_groups(names: Sequence[str | Path]) -> tuple[list[str | None], list[str | None], int]:
    """(race x gender cell, age band, number of malformed names) for each UTKFace file name.

    Malformed names get ``None`` in both lists.
    """
    labels = [parse_utkface_name(n) for n in names]
    cells = [lab.race_gender if lab else None for lab in labels]
    bands = [lab.age_band if lab else None for lab in labels]
    bad = sum(1 for lab in labels if lab is None)
    if bad:
        logger.warning("%d UTKFace file names are malformed (expected AGE_GENDER_RACE_date.jpg)", bad)
    return cells, bands, bad



def utkface_images(root: Path) -> list[Path]:
    """The ``.jpg`` images of ``root/utkface/UTKFace`` (``root``: the data sets folder), sorted.

    Raises
    ------
    DatasetNotFoundError
        When the folder is missing or holds no ``.jpg`` image.

    Examples
    --------
    >>> paths = utkface_images(Path("/data"))  # doctest: +SKIP
    >>> len(paths)  # doctest: +SKIP
    5000
    """
    images = Path(root) / "utkface" / "UTKFace"
    if not images.is_dir():
        raise DatasetNotFoundError(
            f"{images} not found (FACEPRINT_DATA or --data must name the folder holding utkface/)"
        )
    paths = sorted(images.glob("*.jpg"))
    if not paths:
        raise DatasetNotFoundError(f"no .jpg images in {images}")
    return paths


def sample_images(paths: Sequence[Path], max_images: int | None, *, seed: int = 0) -> list[Path]:
    """A seeded random sample of ``max_images`` of ``paths``, in their original order.

    All of ``paths`` when ``max_images`` is None or not below ``len(paths)``.

    Examples
    --------
    >>> sample_images([Path("a"), Path("b"), Path("c")], None)
    [PosixPath('a'), PosixPath('b'), PosixPath('c')]
    >>> len(sample_images([Path(str(i)) for i in range(10)], 4, seed=1))
    4
    """
    total = len(paths)
    if max_images is None or max_images >= total:
        return list(paths)
    rng = np.random.default_rng(seed)
    return [paths[i] for i in sorted(rng.choice(total, max_images, replace=False).tolist())]


def is_fit_image(name: str | Path) -> bool:
    """Whether a UTKFace image belongs to the half that shipped fits (tails, score normalisers) may use.

    The split is fixed by a hash of the file's base name (``sha256(name)[0]`` even), like
    :func:`faceprint.thresholds.is_tail_calibration_identity` for LFW people: measure on the other
    half. UTKFace has no identities, so the same person could in principle appear in both halves.

    Examples
    --------
    >>> is_fit_image("26_0_1_20170116000000000.jpg") == is_fit_image("/x/26_0_1_20170116000000000.jpg")
    True
    """
    return hashlib.sha256(Path(name).name.encode("utf-8")).digest()[0] % 2 == 0
