"""LFW (Labeled Faces in the Wild): file locations, the official pair lists, gender lists.

* :func:`lfw_paths` / :class:`LfwPaths`: where the files are under a data sets folder;
* :func:`read_lfw_pairs` / :func:`lfw_pairs`: the view-1 and view-2 pair lists as :class:`Pair`;
  :func:`select_folds` keeps the first folds (a quick run);
* :func:`lfw_identities`: the per-person image folders (for identification);
* :func:`read_gender_lists` / :func:`lfw_gender` and :func:`pair_gender_groups`: per-image gender
  from ``male_names.txt`` / ``female_names.txt`` and the gender group of each pair.

Parsing only: nothing here embeds an image or computes a metric (see :mod:`faceprint.evaluation`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DatasetNotFoundError, InvalidArgumentError, InvalidFileError
from .root import DATA_ENV_VAR, data_root

__all__ = [
    "LfwPaths",
    "Pair",
    "GenderLists",
    "lfw_paths",
    "read_lfw_pairs",
    "lfw_pairs",
    "select_folds",
    "lfw_identities",
    "read_gender_lists",
    "lfw_gender",
    "pair_gender_groups",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LfwPaths:
    """Where the LFW files are.

    Attributes
    ----------
    root : Path
        The ``lfw`` folder.
    images : Path
        ``lfw-deepfunneled``: one folder per person, ``<Name>/<Name>_NNNN.jpg``.
    pairs : Path
        ``pairs.txt``, the 10-fold view-2 protocol (6,000 pairs).
    dev_train : Path
        ``pairsDevTrain.txt``, view-1 development training pairs (2,200).
    dev_test : Path
        ``pairsDevTest.txt``, view-1 development test pairs (1,000).
    male_names, female_names : Path
        Per-image gender lists.
    """

    root: Path
    images: Path
    pairs: Path
    dev_train: Path
    dev_test: Path
    male_names: Path
    female_names: Path


def lfw_paths(root: Path | None = None) -> LfwPaths:
    """Return the paths of the LFW files under a data sets folder.

    Parameters
    ----------
    root : Path, optional
        The data sets folder (the one holding ``lfw/``); default :func:`data_root` (required).

    Returns
    -------
    LfwPaths

    Raises
    ------
    DatasetNotFoundError
        When the folder, its ``lfw`` images folder or ``pairs.txt`` is missing.

    Examples
    --------
    >>> paths = lfw_paths(Path("/data"))  # doctest: +SKIP
    >>> paths.pairs.name  # doctest: +SKIP
    'pairs.txt'
    """
    found = data_root(required=True) if root is None else root
    if found is None:  # unreachable: data_root(required=True) raises instead
        raise DatasetNotFoundError(f"face data sets folder not found (set {DATA_ENV_VAR})")
    base = Path(found)
    lfw = base / "lfw"
    paths = LfwPaths(
        root=lfw,
        images=lfw / "lfw-deepfunneled",
        pairs=lfw / "pairs.txt",
        dev_train=lfw / "pairsDevTrain.txt",
        dev_test=lfw / "pairsDevTest.txt",
        male_names=lfw / "male_names.txt",
        female_names=lfw / "female_names.txt",
    )
    if not paths.images.is_dir() or not paths.pairs.is_file():
        raise DatasetNotFoundError(
            f"LFW not found under {base}: expected {paths.images} and {paths.pairs} "
            f"(set {DATA_ENV_VAR} to the folder that holds lfw/)"
        )
    return paths


# --------------------------------------------------------------------------------------------
# Pair lists
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    """One verification pair from an LFW pair list.

    Attributes
    ----------
    path_a, path_b : Path
        The two images.
    same : bool
        True for a genuine (same-person) pair.
    fold : int
        0-based fold index (always 0 for the view-1 files).
    """

    path_a: Path
    path_b: Path
    same: bool
    fold: int


def _image_path(images_dir: Path, name: str, index: int) -> Path:
    return images_dir / name / f"{name}_{index:04d}.jpg"


def _parse_index(token: str, where: str) -> int:
    try:
        value = int(token)
    except ValueError:
        raise InvalidFileError(f"{where}: expected an image number, got {token!r}") from None
    if value < 1:
        raise InvalidFileError(f"{where}: image numbers start at 1, got {value}")
    return value


def read_lfw_pairs(pairs_file: Path, images_dir: Path) -> list[Pair]:
    """Parse an LFW pair list.

    Two formats are accepted, told apart by the header line:

    * view 2 (``pairs.txt``): header ``n_folds n_per_fold`` (``10 300``); then, per fold,
      ``n_per_fold`` same-person lines ``name i j`` followed by ``n_per_fold`` different-people
      lines ``name1 i name2 j``. Folds are numbered from 0 in file order.
    * view 1 (``pairsDevTrain.txt``, ``pairsDevTest.txt``): header ``N``; then ``N`` same lines
      and ``N`` different lines, all in fold 0.

    Fields are separated by any whitespace; blank lines are ignored.

    Parameters
    ----------
    pairs_file : Path
        The pair list.
    images_dir : Path
        The folder with one sub-folder per person; image ``i`` of ``Name`` is
        ``images_dir/Name/Name_{i:04d}.jpg``. Existence of the images is not checked here.

    Returns
    -------
    list of Pair
        In file order.

    Raises
    ------
    DatasetNotFoundError
        When ``pairs_file`` does not exist.
    ValueError
        On a malformed header or line, or a wrong number of lines; the message gives the file and
        the 1-based line number.

    Examples
    --------
    >>> pairs = read_lfw_pairs(Path("lfw/pairs.txt"), Path("lfw/lfw-deepfunneled"))  # doctest: +SKIP
    >>> len(pairs), pairs[0].same, pairs[0].fold  # doctest: +SKIP
    (6000, True, 0)
    """
    pairs_file = Path(pairs_file)
    images_dir = Path(images_dir)
    if not pairs_file.is_file():
        raise DatasetNotFoundError(f"LFW pair list not found: {pairs_file}")
    lines = [
        (number, line.split())
        for number, line in enumerate(pairs_file.read_text(encoding="utf-8").splitlines(), start=1)
        if line.strip()
    ]
    if not lines:
        raise InvalidFileError(f"{pairs_file}: empty pair list")

    header_number, header = lines[0]
    where = f"{pairs_file}:{header_number}"
    try:
        counts = [int(token) for token in header]
    except ValueError:
        raise InvalidFileError(
            f"{where}: expected a header 'n_folds n_per_fold' or 'n_per_class', got {' '.join(header)!r}"
        ) from None
    if len(counts) == 2:
        n_folds, n_per = counts
    elif len(counts) == 1:
        n_folds, n_per = 1, counts[0]
    else:
        raise InvalidFileError(
            f"{where}: expected a header 'n_folds n_per_fold' or 'n_per_class', got {' '.join(header)!r}"
        )
    if n_folds < 1 or n_per < 1:
        raise InvalidFileError(f"{where}: header counts must be positive, got {' '.join(header)!r}")

    body = lines[1:]
    expected = 2 * n_folds * n_per
    pairs: list[Pair] = []
    for position, (number, fields) in enumerate(body[:expected]):
        where = f"{pairs_file}:{number}"
        fold, offset = divmod(position, 2 * n_per)
        same = offset < n_per
        if same:
            if len(fields) != 3:
                raise InvalidFileError(
                    f"{where}: expected a same-person line 'name i j' (fold {fold}), "
                    f"got {len(fields)} fields: {' '.join(fields)!r}"
                )
            name, i, j = fields
            path_a = _image_path(images_dir, name, _parse_index(i, where))
            path_b = _image_path(images_dir, name, _parse_index(j, where))
        else:
            if len(fields) != 4:
                raise InvalidFileError(
                    f"{where}: expected a different-people line 'name1 i name2 j' (fold {fold}), "
                    f"got {len(fields)} fields: {' '.join(fields)!r}"
                )
            name_a, i, name_b, j = fields
            path_a = _image_path(images_dir, name_a, _parse_index(i, where))
            path_b = _image_path(images_dir, name_b, _parse_index(j, where))
        pairs.append(Pair(path_a=path_a, path_b=path_b, same=same, fold=fold))

    if len(body) != expected:
        got = len(body)
        last = body[-1][0] if body else header_number
        raise InvalidFileError(
            f"{pairs_file}:{last}: header announces {expected} pair lines "
            f"({n_folds} fold(s) x {n_per} same + {n_per} different), got {got}"
        )
    logger.debug("read %d pairs in %d fold(s) from %s", len(pairs), n_folds, pairs_file)
    return pairs




def lfw_pairs(root: Path, pairs_file: str = "pairs.txt") -> list[Pair]:
    """Read an official LFW pair list from ``root/lfw`` (``pairs.txt``, ``pairsDevTrain.txt``, ...)."""
    lfw = Path(root) / "lfw"
    path = lfw / pairs_file
    if not path.is_file():
        raise DatasetNotFoundError(f"{path} not found (FACEPRINT_DATA or --data must name the folder holding lfw/)")
    return read_lfw_pairs(path, lfw / "lfw-deepfunneled")


def select_folds(pairs: Sequence[Pair], folds: int | None) -> list[Pair]:
    """The pairs of the first ``folds`` folds (all pairs when ``folds`` is None).

    A quick check, not the protocol: the k-fold threshold is still chosen on the other folds, so
    ``folds`` must be at least 2.

    Raises
    ------
    ValueError
        When ``folds < 2``.

    Examples
    --------
    >>> p = [Pair(Path("a"), Path("b"), True, f) for f in (0, 1, 2)]
    >>> [q.fold for q in select_folds(p, 2)]
    [0, 1]
    """
    if folds is None:
        return list(pairs)
    if folds < 2:
        raise InvalidArgumentError(f"folds must be >= 2 (the threshold is chosen on the other folds), got {folds}")
    return [p for p in pairs if p.fold < folds]


def lfw_identities(root: Path, *, max_identities: int | None = None, seed: int = 0) -> list[Path]:
    """Every image of the LFW people under ``root/lfw/lfw-deepfunneled``, person by person.

    ``max_identities`` takes a seeded random subset of the people (a quick run; the shared set
    holds 12,405 images of 4,921 people). The person of an image is its parent folder's name.

    Raises
    ------
    DatasetNotFoundError
        When the images folder is missing.
    ValueError
        When ``max_identities < 2``.

    Examples
    --------
    >>> paths = lfw_identities(Path("/data"), max_identities=50)  # doctest: +SKIP
    >>> paths[0].parent.name  # doctest: +SKIP
    'Aaron_Peirsol'
    """
    images = Path(root) / "lfw" / "lfw-deepfunneled"
    if not images.is_dir():
        raise DatasetNotFoundError(f"{images} not found (FACEPRINT_DATA or --data must name the folder holding lfw/)")
    people = sorted(p for p in images.iterdir() if p.is_dir())
    if max_identities is not None:
        if max_identities < 2:
            raise InvalidArgumentError(f"max_identities must be >= 2, got {max_identities}")
        rng = np.random.default_rng(seed)
        people = sorted(rng.choice(np.array(people, dtype=object), min(max_identities, len(people)), replace=False))
    return [f for person in people for f in sorted(person.glob("*.jpg"))]


# --------------------------------------------------------------------------------------------
# Gender lists
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenderLists:
    """Per-image gender from LFW's ``male_names.txt`` / ``female_names.txt``.

    ``labels`` maps an image file name (``Name_0001.jpg``) to ``"male"`` or ``"female"``;
    ``in_both`` lists images found in both files (excluded from ``labels``). Images in neither
    file are simply absent from ``labels``.
    """

    labels: dict[str, str]
    in_both: tuple[str, ...]
    n_male: int
    n_female: int


def _read_names(path: Path) -> set[str]:
    return {line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


def read_gender_lists(male_file: Path, female_file: Path) -> GenderLists:
    """Read the two gender lists (one image file name per line); see :class:`GenderLists`."""
    male, female = _read_names(Path(male_file)), _read_names(Path(female_file))
    both = male & female
    labels = {n: "male" for n in male - both}
    labels.update({n: "female" for n in female - both})
    if both:
        logger.info("%d images appear in both gender lists and are excluded", len(both))
    return GenderLists(labels=labels, in_both=tuple(sorted(both)), n_male=len(male - both), n_female=len(female - both))


def _gender_files(root: Path) -> tuple[Path, Path]:
    root = Path(root)
    for base in (root / "lfw", root, root.parent):
        male, female = base / "male_names.txt", base / "female_names.txt"
        if male.is_file() and female.is_file():
            return male, female
    raise DatasetNotFoundError(f"male_names.txt / female_names.txt not found in {root}/lfw, {root} or {root.parent}")


def lfw_gender(root: Path) -> dict[str, str]:
    """Image file name -> ``"male"`` / ``"female"`` from LFW's gender lists.

    ``root`` is the data sets folder (holding ``lfw/``), the ``lfw`` folder itself, or the images
    folder beside the lists. Images in both lists are excluded (see :func:`read_gender_lists` for
    the count); images in neither are absent.

    Examples
    --------
    >>> gender = lfw_gender(Path("/data"))  # doctest: +SKIP
    >>> gender["Aaron_Peirsol_0001.jpg"]  # doctest: +SKIP
    'male'
    """
    return read_gender_lists(*_gender_files(root)).labels


def pair_gender_groups(
    images_a: Sequence[str | Path], images_b: Sequence[str | Path], gender: dict[str, str]
) -> list[str]:
    """Group of each pair: the shared gender, ``"mixed"`` when they differ, ``"unknown"`` when unlabelled.

    Examples
    --------
    >>> pair_gender_groups(["a.jpg", "a.jpg", "a.jpg"], ["b.jpg", "c.jpg", "x.jpg"],
    ...                    {"a.jpg": "male", "b.jpg": "male", "c.jpg": "female"})
    ['male', 'mixed', 'unknown']
    """
    out = []
    for a, b in zip(images_a, images_b):
        ga, gb = gender.get(Path(a).name), gender.get(Path(b).name)
        if ga is None or gb is None:
            out.append("unknown")
        else:
            out.append(ga if ga == gb else "mixed")
    return out

