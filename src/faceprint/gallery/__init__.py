"""Persistent face galleries: subjects and their templates in a store, vectors in an index.

- :mod:`~faceprint.gallery.base`: the :class:`GalleryBackend` protocol callers type against and
  :class:`BaseGallery`, the shared layer (validation, one-model rule, ranking of template hits
  into subject matches) on which a backend fills storage and template-search hooks;
- :mod:`~faceprint.gallery.index`: in-process vector indexes on the :data:`INDEXES` registry;
- :mod:`~faceprint.gallery.sqlite`: :class:`Gallery`, the SQLite backend;
- :mod:`~faceprint.gallery.encryption`: AES-GCM encryption at rest of stored templates;
- :func:`open_gallery`: a gallery from a URL (``sqlite:///people.db`` or a bare path).

Examples
--------
>>> import numpy as np
>>> from faceprint.gallery import open_gallery
>>> with open_gallery("sqlite:///:memory:") as gallery:
...     _ = gallery.enroll("ann", np.eye(3)[0], fingerprint="demo")
...     len(gallery)
1
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from urllib.parse import parse_qsl, unquote

from faceprint.errors import UnsupportedGalleryURLError
from faceprint.registry import Registry
from faceprint.settings import current_settings

from .base import (
    MAX_NAME_LENGTH,
    UNIT_NORM_TOLERANCE,
    BaseGallery,
    Example,
    GalleryBackend,
    Subject,
    TemplateBatch,
    TemplateHits,
)
from .encryption import KeySource
from .index import INDEXES, AutoIndex, ExactIndex, HNSWIndex, ScoringIndex, TemplateIndex, VectorIndex, make_index
from .sqlite import SCHEMA_VERSION, Gallery, IndexStats, SQLiteGallery, index_options_from_settings

__all__ = [
    "GalleryBackend",
    "BaseGallery",
    "Subject",
    "Example",
    "TemplateBatch",
    "TemplateHits",
    "VectorIndex",
    "ScoringIndex",
    "ExactIndex",
    "INDEXES",
    "make_index",
    "HNSWIndex",
    "AutoIndex",
    "index_options_from_settings",
    "TemplateIndex",
    "Gallery",
    "SQLiteGallery",
    "IndexStats",
    "KeySource",
    "SCHEMA_VERSION",
    "MAX_NAME_LENGTH",
    "UNIT_NORM_TOLERANCE",
    "GALLERY_SCHEMES",
    "open_gallery",
]

GALLERY_SCHEMES: Registry[GalleryBackend] = Registry("gallery URL scheme")
"""URL scheme -> opener taking ``(rest, options)``: the part after ``scheme://`` and the query options
(and ``template_key=`` when :func:`open_gallery` is given one).

Adding a backend is one decorator: ``@GALLERY_SCHEMES.register("milvus")``.
"""

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$", re.DOTALL)


@GALLERY_SCHEMES.register("sqlite")
def _open_sqlite(
    rest: str, options: dict[str, str], *, template_key: bytes | None | KeySource = KeySource.SETTINGS
) -> Gallery:
    """``sqlite:///relative.db``, ``sqlite:////absolute.db``, ``sqlite://`` or ``sqlite:///:memory:``."""
    if rest and not rest.startswith("/"):
        raise UnsupportedGalleryURLError(
            f"expected sqlite:///relative/path.db or sqlite:////absolute/path.db, got sqlite://{rest} "
            "(a sqlite URL has no host)"
        )
    path = unquote(rest[1:]) if rest else ":memory:"
    unknown = sorted(set(options) - {"index", *_INT_INDEX_OPTIONS})
    if unknown:
        raise UnsupportedGalleryURLError(
            f"unknown sqlite gallery option(s) {unknown}; valid options: index, {', '.join(_INT_INDEX_OPTIONS)}"
        )
    if not path:
        raise UnsupportedGalleryURLError("expected a database path after sqlite:///, got none")
    index = options.get("index") or current_settings().index
    index_options = index_options_from_settings(index)
    for name in _INT_INDEX_OPTIONS:
        if name in options:
            try:
                index_options[name] = int(options[name])
            except ValueError:
                raise UnsupportedGalleryURLError(f"gallery URL option {name} must be an integer") from None
    return Gallery(path, index=index, index_options=index_options, template_key=template_key)


_INT_INDEX_OPTIONS = ("ef", "exact_below")


def open_gallery(
    url: str | os.PathLike[str], *, template_key: bytes | None | KeySource = KeySource.SETTINGS
) -> GalleryBackend:
    """Open (or create) the gallery a URL names.

    Parameters
    ----------
    url : str or os.PathLike
        ``sqlite:///people.db`` (a path relative to the working directory),
        ``sqlite:////srv/people.db`` (absolute), ``sqlite://`` (in memory), or a bare path, which
        means the same as ``sqlite:///`` + path. Options go in the query string:
        ``sqlite:///people.db?index=exact``.
    template_key : bytes or None, default KeySource.SETTINGS
        The 32-byte key of the gallery's encrypted templates (see :class:`Gallery`); the default
        takes ``FACEPRINT_TEMPLATE_KEY``, ``None`` means no key.

    Returns
    -------
    GalleryBackend
        The open gallery; close it (or use it as a context manager) when done.

    Raises
    ------
    UnsupportedGalleryURLError
        The scheme names no registered backend (the message lists the supported ones), or the
        URL is malformed for its scheme. Also a :class:`ValueError`.
    GalleryError
        The store exists but cannot be opened as a gallery.
    TemplateKeyError
        The gallery's templates are encrypted and the key is missing or wrong, or a key was given
        for a gallery that stores templates plain.

    Examples
    --------
    >>> from faceprint.gallery import open_gallery
    >>> open_gallery("mysql://db/people")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    faceprint.errors.UnsupportedGalleryURLError: unsupported gallery URL scheme 'mysql' ... schemes: sqlite ...
    """
    text = os.fspath(url)
    if not isinstance(text, str):
        raise UnsupportedGalleryURLError(f"expected a gallery URL or path as str, got {type(text).__name__}")
    match = _SCHEME.match(text)
    if match is None:
        return Gallery(text, template_key=template_key)
    scheme, rest = match.group(1).lower(), match.group(2)
    if scheme not in GALLERY_SCHEMES:
        raise UnsupportedGalleryURLError(
            f"unsupported gallery URL scheme {scheme!r} in {text!r}; supported schemes: "
            f"{', '.join(GALLERY_SCHEMES.names())} (or a bare file path)"
        )
    rest, _, query = rest.partition("?")
    try:
        options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError as err:
        raise UnsupportedGalleryURLError(f"malformed options {query!r} in gallery URL {text!r}: {err}") from err
    opener: Callable[..., GalleryBackend] = GALLERY_SCHEMES.factory(scheme)
    if template_key is KeySource.SETTINGS:  # each backend reads the settings itself
        return opener(rest, options)
    return opener(rest, options, template_key=template_key)
