"""Encryption at rest of stored templates: AES-256-GCM over each template's float32 bytes.

A gallery is either *plain* (each ``templates.embedding`` is the vector's float32 bytes) or
*encrypted*, and never a mix. An encrypted gallery records in its ``meta`` table:

- ``template_encryption``: the scheme, :data:`SCHEME`;
- ``template_key_salt``: 16 random bytes (hex), drawn when the gallery became encrypted;
- ``template_key_check``: 32 bytes (hex) derived from the key and the salt, so that opening with
  no key or another key fails at once (:class:`~faceprint.errors.TemplateKeyError`), before any
  template is read. It reveals nothing about the key beyond "this is (not) it".

From the key given (``FACEPRINT_TEMPLATE_KEY``, 32 bytes) and the salt, HKDF-SHA256 derives the
gallery's own AES-256 key and the check value. Each template is stored as::

    b"FPE1" + nonce (12 random bytes) + AES-GCM(vector float32 bytes) + tag (16 bytes)

with the template's row id (``templates.id``) as associated data. So a blob copied into another
row of the same gallery, or into any row of another gallery (another salt, so another derived key,
even under the same ``FACEPRINT_TEMPLATE_KEY``), fails authentication, as does any altered byte:
:class:`~faceprint.errors.TemplateIntegrityError`, never a garbage vector. The subject id is
deliberately not bound: :meth:`~faceprint.gallery.base.BaseGallery.merge` moves templates to
another subject without re-encrypting them.

What it does not cover: subject names, metadata, sources and content digests stay plain; the
decrypted vectors live in the process's memory (the search index); and rows restored from an
older copy of the *same* gallery under their own ids (a rollback) still authenticate.

Examples
--------
>>> import numpy as np
>>> cipher = TemplateCipher(bytes(32), bytes(16))
>>> v = np.ones(4, dtype=np.float32).tobytes()
>>> blob = cipher.seal(7, v)
>>> blob[:4], len(blob) == 4 + 12 + len(v) + 16, cipher.open(7, blob) == v
(b'FPE1', True, True)
"""

from __future__ import annotations

import hmac
import os
from enum import Enum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from faceprint.errors import InvalidArgumentTypeError, TemplateIntegrityError
from faceprint.settings import TEMPLATE_KEY_BYTES

__all__ = [
    "KeySource",
    "MAGIC",
    "NONCE_BYTES",
    "TAG_BYTES",
    "OVERHEAD",
    "SALT_BYTES",
    "SCHEME",
    "TemplateCipher",
    "check_key",
    "new_salt",
]

MAGIC = b"FPE1"
"""First bytes of every encrypted template blob (format version 1)."""
NONCE_BYTES = 12
TAG_BYTES = 16
OVERHEAD = len(MAGIC) + NONCE_BYTES + TAG_BYTES
"""Bytes an encrypted blob has beyond the vector's ``4 * dim``."""
SALT_BYTES = 16
SCHEME = "aes-256-gcm/1"
"""The ``meta.template_encryption`` value this module writes and reads."""

_INFO = b"faceprint template key/1"
_AAD = b"faceprint template/1:"


class KeySource(Enum):
    """Where a gallery takes its template key from when none is passed."""

    SETTINGS = "settings"
    """``Settings.template_key`` (``FACEPRINT_TEMPLATE_KEY``) of :func:`~faceprint.settings.current_settings`."""


def check_key(key: object) -> bytes:
    """``key`` if it is 32 bytes; the message names the length found, never the key.

    Raises
    ------
    InvalidArgumentTypeError
        ``key`` is not bytes of length 32 (also a ``TypeError`` and a ``ValueError``).
    """
    if not isinstance(key, bytes | bytearray | memoryview):
        raise InvalidArgumentTypeError(
            f"template_key must be {TEMPLATE_KEY_BYTES} bytes (or None), got {type(key).__name__}"
        )
    key = bytes(key)
    if len(key) != TEMPLATE_KEY_BYTES:
        raise InvalidArgumentTypeError(
            f"template_key must be {TEMPLATE_KEY_BYTES} bytes (AES-256), got {len(key)} bytes"
        )
    return key


def new_salt() -> bytes:
    """Random bytes for ``meta.template_key_salt``."""
    return os.urandom(SALT_BYTES)


class TemplateCipher:
    """AES-256-GCM for the template blobs of one gallery (key derived from ``key`` and the gallery's salt).

    Parameters
    ----------
    key : bytes
        The 32-byte template key (``FACEPRINT_TEMPLATE_KEY``).
    salt : bytes
        The gallery's ``meta.template_key_salt``.

    Attributes
    ----------
    check_value : str
        Hex of the 32 bytes a gallery stores as ``meta.template_key_check`` for this key.
    """

    def __init__(self, key: bytes, salt: bytes) -> None:
        derived = HKDF(algorithm=hashes.SHA256(), length=64, salt=salt, info=_INFO).derive(check_key(key))
        self._aead = AESGCM(derived[:32])
        self.check_value = derived[32:].hex()

    def __repr__(self) -> str:
        return "TemplateCipher(<key hidden>)"

    def matches(self, stored_check: str) -> bool:
        """Whether ``stored_check`` (a gallery's ``meta.template_key_check``) is this key's."""
        return hmac.compare_digest(self.check_value.encode(), stored_check.strip().lower().encode())

    def seal(self, template_id: int, plain: bytes) -> bytes:
        """The stored blob of template ``template_id`` whose vector bytes are ``plain``."""
        nonce = os.urandom(NONCE_BYTES)
        return MAGIC + nonce + self._aead.encrypt(nonce, plain, _aad(template_id))

    def open(self, template_id: int, blob: bytes, *, where: str = "gallery") -> bytes:
        """The vector bytes of a blob :meth:`seal` made for ``template_id``.

        Raises
        ------
        TemplateIntegrityError
            The blob is not an encrypted template, was altered, or belongs to another row or gallery.
        """
        blob = bytes(blob)
        if not blob.startswith(MAGIC) or len(blob) < OVERHEAD:
            raise TemplateIntegrityError(
                f"{where}: template {template_id} is not encrypted, in a gallery whose templates are "
                "all encrypted (written by something other than faceprint?)"
            )
        nonce = blob[len(MAGIC) : len(MAGIC) + NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, blob[len(MAGIC) + NONCE_BYTES :], _aad(template_id))
        except InvalidTag:
            raise TemplateIntegrityError(
                f"{where}: template {template_id} fails authentication: its stored bytes were altered, "
                "or copied from another row or another gallery"
            ) from None


def _aad(template_id: int) -> bytes:
    return _AAD + int(template_id).to_bytes(8, "big", signed=True)
