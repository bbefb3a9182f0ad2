"""AT&T / ORL faces: 40 people (``s1`` .. ``s40``) x 10 greyscale 92x112 ``.pgm`` images.

Under a data sets folder the images are ``orl/orl_faces/sNN/K.pgm`` (:func:`orl_dir`);
:func:`orl_images` lists them with their person number, in numeric order. Parsing only.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DatasetNotFoundError

__all__ = ["orl_dir", "orl_images"]


def orl_dir(root: Path) -> Path:
    """The ``orl/orl_faces`` folder (one ``sNN`` sub-folder per person) under a data sets folder.

    Raises
    ------
    DatasetNotFoundError
        When it is missing.
    """
    folder = Path(root) / "orl" / "orl_faces"
    if not folder.is_dir():
        raise DatasetNotFoundError(f"ORL not found under {root} (set FACEPRINT_DATA)")
    return folder


def orl_images(root: Path) -> list[tuple[Path, int]]:
    """(image, person number) of every ORL image, people and images in numeric order (``s2`` before ``s10``).

    ``root`` is the data sets folder (see :func:`orl_dir`).

    Raises
    ------
    DatasetNotFoundError
        When the folder is missing.

    Examples
    --------
    >>> items = orl_images(Path("/data"))  # doctest: +SKIP
    >>> len(items), items[0][0].name, items[0][1]  # doctest: +SKIP
    (400, '1.pgm', 1)
    """
    folder = orl_dir(root)
    people = sorted((d for d in folder.iterdir() if d.is_dir()), key=lambda d: int(d.name[1:]))
    return [
        (f, int(person.name[1:]))
        for person in people
        for f in sorted(person.glob("*.pgm"), key=lambda f: int(f.stem))
    ]
