"""The calibration file in force: the one ``FACEPRINT_CALIBRATION`` names, read and checked once per change.

The ground floor of :mod:`faceprint.calibration` (which fits and writes these files): the embedders'
thresholds (``faceprint.embedding``) and the impostor tails (``faceprint.thresholds``) read the
file through :func:`user_model_entry`, so this module imports neither.

A calibration file (``faceprint-calibration/1``) has the shape of the shipped ``calibration.json``,
``models[key].thresholds`` and ``models[key].impostor_tail``, plus per model the ``fingerprint`` of
the embedder it was measured with and a ``calibration`` block of metadata (intervals, counts, source,
date). An entry applies to an embedder whose key *and* fingerprint both match; an entry whose
fingerprint differs (other weights, another trained model of the same name) is not applied and a
warning is logged once.

The file is read again when ``FACEPRINT_CALIBRATION`` changes or the file's modification time or
size does (the cache is keyed on them), so a test or a long-running service sees a new file at once.
"""

from __future__ import annotations

import json
import logging
import math
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from .errors import InvalidFileError
from .settings import Settings, current_settings

__all__ = ["FORMAT", "calibration_path", "read_calibration_file", "user_calibration", "user_model_entry"]

log = logging.getLogger(__name__)

FORMAT = "faceprint-calibration/1"
"""The ``format`` field of a calibration file this version reads and writes."""

_warned: set[tuple[str, str, str | None]] = set()


def calibration_path(settings: Settings | None = None) -> Path | None:
    """The calibration file ``FACEPRINT_CALIBRATION`` names (``settings.calibration``), or None."""
    s = current_settings() if settings is None else settings
    return None if s.calibration is None else Path(s.calibration).expanduser()


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value))


def _check(raw: object, where: str) -> dict[str, Any]:
    """The parsed file, or :class:`InvalidFileError` naming what is wrong."""
    if not isinstance(raw, dict):
        raise InvalidFileError(f"{where}: not a faceprint calibration file (expected a JSON object)")
    fmt = raw.get("format")
    if fmt != FORMAT:
        if isinstance(fmt, str) and fmt.startswith("faceprint-calibration/"):
            raise InvalidFileError(
                f"{where}: calibration format {fmt!r} is not the one this faceprint reads ({FORMAT})"
            )
        raise InvalidFileError(
            f"{where}: not a faceprint calibration file (format must be {FORMAT!r}, got {fmt!r}); "
            "write one with `faceprint calibrate DIR --out FILE`"
        )
    models = raw.get("models")
    if not isinstance(models, dict) or not models:
        raise InvalidFileError(f"{where}: 'models' must be a non-empty object of model key -> calibration")
    for key, entry in models.items():
        at = f"{where}: models[{key!r}]"
        if not isinstance(entry, dict):
            raise InvalidFileError(f"{at} must be an object")
        if not isinstance(entry.get("fingerprint"), str) or not entry["fingerprint"]:
            raise InvalidFileError(f"{at}: missing 'fingerprint' (the embedder the thresholds were measured with)")
        thresholds = entry.get("thresholds")
        if not isinstance(thresholds, dict) or not all(
            isinstance(k, str) and _number(v) and -1.0 <= float(v) <= 1.0 for k, v in thresholds.items()
        ):
            raise InvalidFileError(f"{at}: 'thresholds' must map operating points to similarities in [-1, 1]")
        tail = entry.get("impostor_tail")
        if tail is not None:
            fmr, thr = (tail.get("fmr"), tail.get("threshold")) if isinstance(tail, dict) else (None, None)
            if (
                not isinstance(fmr, list)
                or not isinstance(thr, list)
                or len(fmr) != len(thr)
                or len(fmr) < 2
                or not all(_number(v) for v in fmr + thr)
                or not isinstance(tail.get("n_pairs"), int)  # type: ignore[union-attr]
            ):
                raise InvalidFileError(
                    f"{at}: 'impostor_tail' must hold 'fmr' and 'threshold' lists of equal length (>= 2) and 'n_pairs'"
                )
        meta = entry.get("calibration", {})
        if not isinstance(meta, dict):
            raise InvalidFileError(f"{at}: 'calibration' must be an object")
    return raw


@lru_cache(maxsize=8)
def _read(path: str, mtime_ns: int, size: int) -> dict[str, Any]:
    del mtime_ns, size  # the cache key: a rewritten file is read again
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InvalidFileError(f"{path}: cannot read calibration file ({err})") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as err:
        raise InvalidFileError(f"{path}: not a faceprint calibration file (invalid JSON: {err})") from None
    return _check(raw, path)


def read_calibration_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checked content of a calibration file (a fresh copy).

    Raises
    ------
    InvalidFileError
        Missing or unreadable, not JSON, another format or version, or a ``models`` entry of the wrong shape.
    """
    p = Path(path).expanduser()
    try:
        st = p.stat()
    except OSError:
        raise InvalidFileError(f"{p}: no such calibration file") from None
    if not p.is_file():
        raise InvalidFileError(f"{p}: a calibration file must be a file, not a folder")
    return json.loads(json.dumps(_read(str(p.resolve()), st.st_mtime_ns, st.st_size)))  # type: ignore[no-any-return]


def user_calibration(settings: Settings | None = None) -> tuple[Path, dict[str, Any]] | None:
    """``(path, content)`` of the file ``FACEPRINT_CALIBRATION`` names, or None when it is unset.

    Cached on the path, modification time and size. Raises :class:`InvalidFileError` as
    :func:`read_calibration_file` does: a named file that is missing or broken is an error, never ignored.
    """
    p = calibration_path(settings)
    if p is None:
        return None
    try:
        st = p.stat()
    except OSError:
        raise InvalidFileError(f"FACEPRINT_CALIBRATION={p}: no such calibration file") from None
    if not p.is_file():
        raise InvalidFileError(f"FACEPRINT_CALIBRATION={p}: a calibration file must be a file, not a folder")
    return p, _read(str(p.resolve()), st.st_mtime_ns, st.st_size)


def user_model_entry(key: str, fingerprint: str | None, settings: Settings | None = None) -> dict[str, Any] | None:
    """The in-force file's entry for model ``key`` when it was measured with ``fingerprint``, else None.

    None when no file is in force or it does not name ``key``. When it names ``key`` with another
    fingerprint (or ``fingerprint`` is None, so it cannot be checked) the entry is not applied and a
    warning is logged once per file, model and fingerprint. Do not modify the result.
    """
    found = user_calibration(settings)
    if found is None:
        return None
    path, raw = found
    entry: dict[str, Any] | None = raw["models"].get(key)
    if entry is None:
        return None
    if fingerprint is not None and entry["fingerprint"] == fingerprint:
        return entry
    token = (str(path), key, fingerprint)
    if token not in _warned:
        _warned.add(token)
        log.warning(
            "calibration file %s is not applied to model %r: it was measured with %s, the embedder in use is %s; "
            "the shipped thresholds are used (run `faceprint calibrate` again for this model)",
            path, key, entry["fingerprint"], fingerprint or "unknown (no fingerprint given)",
        )
    return None
