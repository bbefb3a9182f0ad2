"""NUAA Photograph Imposter Database and other labelled presentation-attack folders.

Two layouts:

* NUAA: ``ClientRaw/<subject>/*.jpg`` (bona fide) and ``ImposterRaw/<subject>/*.jpg`` (print
  attacks), found under ``<data sets folder>/nuaa`` (:func:`nuaa_dir`);
* generic: a ``live/`` folder (also ``real/``, ``bona_fide/``, ``bonafide/``, ``genuine/``) next to
  one folder per attack type (``print/``, ``replay/`` ...).

:func:`pad_samples` lists the samples of either layout; :func:`nuaa_images` the NUAA images with
their subject (for subject-disjoint protocols); :func:`nuaa_name` the fields of a NUAA file name
(subject, glasses, position, capture session, picture number) for session-disjoint ones. Parsing
only: the PAD metrics are in :mod:`faceprint.liveness.metrics`. :func:`nuaa_split` lists the samples
of one of NUAA's official index files (``client_test_raw.txt`` + ``imposter_test_raw.txt`` ...).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from ..errors import DatasetNotFoundError, InvalidArgumentError

__all__ = ["LIVE_FOLDER_NAMES", "NuaaName", "nuaa_dir", "nuaa_images", "nuaa_name", "nuaa_split", "pad_samples"]

LIVE_FOLDER_NAMES = frozenset({"live", "real", "bona_fide", "bonafide", "genuine"})
"""Folder names (lower case) that hold bona fide samples in the generic layout."""


def nuaa_dir(root: Path) -> Path:
    """The NUAA folder under a data sets folder: ``root/nuaa`` (not checked here)."""
    return Path(root) / "nuaa"


_NUAA_NAME = re.compile(r"^(\d{4})_(\d{2})_(\d{2})_(\d{2})_(\d+)$")


@dataclass(frozen=True)
class NuaaName:
    """The fields of a NUAA file name ``ID_glasses_pos_session_picNo`` (NUAA's ``readme.txt``).

    ``glasses`` is ``"00"`` with glasses, ``"01"`` without; ``position`` the pose / light condition
    code (``"00"`` in the raw training images); ``session`` the capture session ``"01"``-``"03"``.
    """

    subject: str
    glasses: str
    position: str
    session: str
    picture: int


def nuaa_name(path: str | Path) -> NuaaName:
    """Parse a NUAA image file name such as ``0001_00_00_01_105.jpg``.

    Raises
    ------
    InvalidArgumentError
        When the stem does not follow ``DDDD_DD_DD_DD_N``.

    Examples
    --------
    >>> nuaa_name("ClientRaw/0001/0001_00_00_02_105.jpg")
    NuaaName(subject='0001', glasses='00', position='00', session='02', picture=105)
    """
    m = _NUAA_NAME.match(Path(path).stem)
    if m is None:
        raise InvalidArgumentError(f"{Path(path).name!r} is not a NUAA file name (ID_glasses_pos_session_picNo)")
    return NuaaName(m.group(1), m.group(2), m.group(3), m.group(4), int(m.group(5)))


def nuaa_images(nuaa: Path) -> list[tuple[Path, str, bool]]:
    """(path, subject, is_attack) for every NUAA image (``ClientRaw`` first, then ``ImposterRaw``), sorted.

    ``nuaa`` is the NUAA folder itself (:func:`nuaa_dir`). The subject is the image's folder name.

    Examples
    --------
    >>> items = nuaa_images(Path("/data/nuaa"))  # doctest: +SKIP
    >>> items[0][1:]  # doctest: +SKIP
    ('0001', False)
    """
    out = []
    for folder, attack in (("ClientRaw", False), ("ImposterRaw", True)):
        for p in sorted((Path(nuaa) / folder).glob("*/*.jpg")):
            out.append((p, p.parent.name, attack))
    return out


def pad_samples(root: Path, suffixes: Collection[str]) -> list[tuple[Path, bool, str]]:
    """(file, is_attack, attack_type) for the NUAA layout or ``live/`` + ``<attack_type>/`` folders.

    Files are found recursively and kept when their lower-case suffix is in ``suffixes``; NUAA's
    ``ImposterRaw`` samples have attack type ``"print"``, bona fide samples ``""``.

    Raises
    ------
    DatasetNotFoundError
        When ``root`` follows neither layout.

    Examples
    --------
    >>> samples = pad_samples(Path("/data/nuaa"), {".jpg"})  # doctest: +SKIP
    >>> samples[-1][1:]  # doctest: +SKIP
    (True, 'print')
    """

    def files(d: Path) -> list[Path]:
        return sorted(p for p in d.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)

    if (root / "ClientRaw").is_dir() and (root / "ImposterRaw").is_dir():
        return [(p, False, "") for p in files(root / "ClientRaw")] + [
            (p, True, "print") for p in files(root / "ImposterRaw")
        ]
    subdirs = sorted(d for d in root.iterdir() if d.is_dir())
    live = [d for d in subdirs if d.name.lower() in LIVE_FOLDER_NAMES]
    if not live:
        raise DatasetNotFoundError(
            f"{root}: expected NUAA's ClientRaw/ + ImposterRaw/, or a live/ folder next to one folder per attack type"
        )
    out: list[tuple[Path, bool, str]] = []
    for d in subdirs:
        is_live = d in live
        out += [(p, not is_live, "" if is_live else d.name) for p in files(d)]
    return out


def nuaa_split(root: Path, split: str) -> list[tuple[Path, bool, str]]:
    """(file, is_attack, attack_type) of the NUAA images indexed by one split's list files.

    NUAA ships ``client_<split>_raw.txt`` and ``imposter_<split>_raw.txt`` next to ``ClientRaw/`` and
    ``ImposterRaw/`` (``split`` "train" or "test": the official protocol); each line is a path relative
    to the class folder, with ``\\`` or ``/`` separators. ``client_<split>.txt`` is read first when it
    exists (e.g. ``split="train_subset"`` for ``client_train_subset.txt``).

    Raises
    ------
    DatasetNotFoundError
        When a list file is missing, or lists files that are not there (the first few are named).
    InvalidArgumentError
        When ``split`` is not a plain name.

    Examples
    --------
    >>> samples = nuaa_split(Path("/data/nuaa"), "test")  # doctest: +SKIP
    >>> sum(a for _, a, _ in samples)  # doctest: +SKIP
    5761
    """
    if not re.fullmatch(r"[A-Za-z0-9_-]+", split):
        raise InvalidArgumentError(f"split must be a plain name like 'test', got {split!r}")
    out: list[tuple[Path, bool, str]] = []
    for cls, folder, is_attack in (("client", "ClientRaw", False), ("imposter", "ImposterRaw", True)):
        candidates = [root / f"{cls}_{split}.txt", root / f"{cls}_{split}_raw.txt"]
        listing = next((c for c in candidates if c.is_file()), None)
        if listing is None:
            raise DatasetNotFoundError(f"{root}: no {candidates[1].name} (nor {candidates[0].name})")
        try:
            text = listing.read_text(encoding="utf-8", errors="replace")
        except OSError as err:
            raise DatasetNotFoundError(f"{listing}: cannot read ({err})") from err
        names = [line.strip().replace("\\", "/") for line in text.splitlines() if line.strip()]
        bad = [n for n in names if n.startswith("/") or ".." in Path(n).parts]
        if bad:
            raise DatasetNotFoundError(f"{listing}: entries must be relative paths inside {folder}/, got {bad[0]!r}")
        paths = [root / folder / n for n in names]
        missing = [n for n, p in zip(names, paths, strict=True) if not p.is_file()]
        if missing:
            raise DatasetNotFoundError(
                f"{listing}: {len(missing)} of {len(names)} listed files are not in {root / folder}"
                f" (first: {', '.join(missing[:3])})"
            )
        out += [(p, is_attack, "print" if is_attack else "") for p in paths]
    return out
