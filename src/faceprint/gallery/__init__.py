"""Persistent face galleries: subjects and their templates in a store, vectors in an index.

- :mod:`~faceprint.gallery.base`: the :class:`GalleryBackend` protocol callers type against and
  :class:`BaseGallery`, the shared layer (validation, one-model rule, ranking of template hits
  into subject matches) on which a backend fills storage and template-search hooks;
- :mod:`~faceprint.gallery.index`: in-process vector indexes on the :data:`INDEXES` registry;
- :mod:`~faceprint.gallery.sqlite`: :class:`Gallery`, the SQLite backend;
- :mod:`~faceprint.gallery.encryption`: AES-GCM encryption at rest of stored templates;
- :mod:`~faceprint.gallery.milvus`: :class:`MilvusGallery`, the Milvus backend (the ``[milvus]`` extra);
- :func:`open_gallery`: a gallery from a URL (``sqlite:///people.db`` or a bare path,
  ``milvus://host:19530/faces``, ``milvus-lite:///people-milvus.db``).

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
from urllib.parse import parse_qsl, unquote, urlsplit

from faceprint.errors import TemplateKeyError, UnsupportedGalleryURLError
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
from .milvus import MilvusGallery
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
    "MilvusGallery",
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
    index_options.update(_int_options(options, _INT_INDEX_OPTIONS))
    return Gallery(path, index=index, index_options=index_options, template_key=template_key)


_INT_INDEX_OPTIONS = ("ef", "exact_below")


def _int_options(options: dict[str, str], names: tuple[str, ...]) -> dict[str, int]:
    """The integer URL options among ``names`` that ``options`` gives."""
    out: dict[str, int] = {}
    for name in names:
        if name in options:
            try:
                out[name] = int(options[name])
            except ValueError:
                raise UnsupportedGalleryURLError(f"gallery URL option {name} must be an integer") from None
    return out
_MILVUS_INT_OPTIONS = ("ef", "connectivity", "expansion_add")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def _milvus_options(scheme: str, options: dict[str, str], allowed: tuple[str, ...]) -> dict[str, object]:
    """The keyword arguments of :class:`MilvusGallery` a URL's query options give."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise UnsupportedGalleryURLError(
            f"unknown {scheme} gallery option(s) {unknown}; valid options: {', '.join(allowed)}"
        )
    out: dict[str, object] = dict(_int_options(options, _MILVUS_INT_OPTIONS))
    if "timeout" in options:
        try:
            out["timeout"] = float(options["timeout"])
        except ValueError:
            raise UnsupportedGalleryURLError("gallery URL option timeout must be a number of seconds") from None
    return out


def _refuse_template_key(template_key: bytes | None | KeySource, url: str) -> None:
    key = current_settings().template_key_bytes() if template_key is KeySource.SETTINGS else template_key
    if key is not None:
        raise TemplateKeyError(
            f"gallery {url}: Milvus galleries store templates as Milvus vectors, which faceprint cannot encrypt; "
            "unset FACEPRINT_TEMPLATE_KEY (or pass template_key=None) and encrypt Milvus's storage instead"
        )


@GALLERY_SCHEMES.register("milvus")
def _open_milvus(
    rest: str, options: dict[str, str], *, template_key: bytes | None | KeySource = KeySource.SETTINGS
) -> MilvusGallery:
    """``milvus://HOST[:PORT]/COLLECTION`` (gRPC; port 19530 by default) with ``?secure=1`` for TLS,
    ``?db=NAME``, ``?ef=``, ``?connectivity=``, ``?expansion_add=``, ``?timeout=``; credentials from
    ``FACEPRINT_MILVUS_TOKEN``."""
    parts = urlsplit("//" + rest)
    if parts.username is not None or parts.password is not None:
        raise UnsupportedGalleryURLError(
            "a milvus:// URL carries no credentials (they would show in logs and process lists); "
            "set FACEPRINT_MILVUS_TOKEN=user:password instead"
        )
    try:
        host, port = parts.hostname, parts.port or 19530
    except ValueError as err:
        raise UnsupportedGalleryURLError(f"malformed milvus:// URL milvus://{rest}: {err}") from None
    if not host:
        raise UnsupportedGalleryURLError(f"expected milvus://HOST:PORT/COLLECTION, got milvus://{rest} (no host)")
    collection = unquote(parts.path.strip("/")) or "faceprint"
    kwargs = _milvus_options("milvus", options, ("secure", "db", *_MILVUS_INT_OPTIONS, "timeout"))
    secure = options.get("secure", "").lower()
    if secure not in _TRUE + _FALSE:
        raise UnsupportedGalleryURLError(f"gallery URL option secure must be 1 or 0, got {secure!r}")
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    display = f"milvus://{netloc}/{collection}"
    _refuse_template_key(template_key, display)
    token = current_settings().milvus_token
    return MilvusGallery(
        f"{'https' if secure in _TRUE else 'http'}://{netloc}",
        collection,
        token=None if token is None else token.get_secret_value(),
        db_name=options.get("db") or None,
        display=display,
        **kwargs,  # type: ignore[arg-type]
    )


@GALLERY_SCHEMES.register("milvus-lite")
def _open_milvus_lite(
    rest: str, options: dict[str, str], *, template_key: bytes | None | KeySource = KeySource.SETTINGS
) -> MilvusGallery:
    """``milvus-lite:///relative.db`` or ``milvus-lite:////absolute.db`` (a Milvus Lite file, in
    process), with ``?collection=NAME`` (default ``faceprint``), ``?ef=`` ..."""
    if not rest.startswith("/") or len(rest) < 2:
        raise UnsupportedGalleryURLError(
            f"expected milvus-lite:///relative/path.db or milvus-lite:////absolute/path.db, got milvus-lite://{rest}"
        )
    path = unquote(rest[1:])
    if not path.endswith(".db"):
        raise UnsupportedGalleryURLError(f"a Milvus Lite file name ends in .db, got {path!r}")
    kwargs = _milvus_options("milvus-lite", options, ("collection", *_MILVUS_INT_OPTIONS, "timeout"))
    collection = options.get("collection") or "faceprint"
    display = f"milvus-lite:///{path}" + (f"?collection={collection}" if "collection" in options else "")
    _refuse_template_key(template_key, display)
    parent = os.path.dirname(path)
    if parent and not os.path.isdir(parent):
        raise UnsupportedGalleryURLError(f"gallery {display}: folder {parent!r} does not exist")
    return MilvusGallery(path, collection, display=display, **kwargs)  # type: ignore[arg-type]


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
        ``sqlite:///people.db?index=exact``. ``milvus://HOST:19530/COLLECTION`` is a Milvus
        server over gRPC (``?secure=1`` for TLS, ``?db=``, ``?ef=``, ``?timeout=``; credentials from
        ``FACEPRINT_MILVUS_TOKEN``); ``milvus-lite:///people.db`` (``?collection=``) a Milvus Lite
        file. Both need the ``[milvus]`` extra (:class:`MilvusGallery`).
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
    faceprint.errors.UnsupportedGalleryURLError: unsupported gallery URL scheme 'mysql' ... sqlite ...
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
