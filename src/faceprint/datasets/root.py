"""Where the shared face data sets live: :func:`data_root` (``$FACEPRINT_DATA``).

The folder holds one sub-folder per data set (``lfw/``, ``utkface/``, ``nuaa/``, ``orl/``); the
parsers of each are in the sibling modules of :mod:`faceprint.datasets`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, overload

from ..errors import DatasetNotFoundError
from ..settings import current_settings

__all__ = ["DATA_ENV_VAR", "data_root"]

DATA_ENV_VAR = "FACEPRINT_DATA"
"""Environment variable that points at the shared data sets folder (the one holding ``lfw/``)."""


def _default_candidates() -> list[Path]:
    candidates: list[Path] = []
    repo_root = Path(__file__).resolve().parents[3]
    if (repo_root / "pyproject.toml").is_file():
        candidates.append(repo_root / ".." / "shared" / "datasets")
    candidates.append(Path.cwd() / ".." / "shared" / "datasets")
    return candidates


@overload
def data_root(required: Literal[True]) -> Path: ...
@overload
def data_root(required: bool = False) -> Path | None: ...


def data_root(required: bool = False) -> Path | None:
    """Locate the shared face data sets folder.

    ``$FACEPRINT_DATA`` wins when set (and non-empty); otherwise ``../shared/datasets`` next to the
    repository root (when running from a source checkout), then ``../shared/datasets`` relative
    to the current directory.

    Parameters
    ----------
    required : bool, default False
        Raise instead of returning ``None`` when the folder is absent.

    Returns
    -------
    Path or None
        The resolved folder, or ``None`` when it is absent and ``required`` is false.

    Raises
    ------
    DatasetNotFoundError
        When ``required`` is true and no folder was found.

    Examples
    --------
    >>> root = data_root()
    >>> root is None or root.is_dir()
    True
    """
    data = current_settings().data
    if data is not None:
        candidates = [data.expanduser()]
        where = f"${DATA_ENV_VAR}={data}"
    else:
        candidates = _default_candidates()
        where = " or ".join(str(c) for c in candidates) + f" (${DATA_ENV_VAR} is not set)"
    for candidate in candidates:
        if candidate.is_dir():
            return candidate.resolve()
    if required:
        raise DatasetNotFoundError(
            f"face data sets folder not found: looked for {where}; "
            f"set {DATA_ENV_VAR} to the folder that holds lfw/"
        )
    return None

