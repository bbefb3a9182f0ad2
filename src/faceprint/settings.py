"""Configuration from the environment: the one module in faceprint that reads or writes ``os.environ``.

:class:`Settings` holds every ``FACEPRINT_*`` variable (and ``XDG_DATA_HOME``, for the default gallery
path). Build it at the edge (the CLI, a service, a test) and pass it in; a library function whose
setting parameter is ``None`` falls back to :func:`current_settings`, which follows the environment
on every call, so a variable changed at run time (``monkeypatch.setenv``, ``CliRunner(env=...)``) is
seen at once. The README's "Configuration" section lists each variable, its default and its reader.

``OMP_NUM_THREADS`` is written, never read: :func:`setdefault_omp_num_threads` (called by
``runtime.set_num_threads``) sets it when it is unset.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from .errors import FaceprintError, InvalidArgumentError, InvalidImageError

__all__ = [
    "DEFAULT_MAX_FILE_BYTES",
    "DEFAULT_MAX_UPLOAD_BYTES",
    "DEFAULT_MAX_IMPORT_BYTES",
    "DEFAULT_MAX_PIXELS",
    "TEMPLATE_KEY_BYTES",
    "Settings",
    "parse_template_key",
    "current_settings",
    "export_settings",
    "setdefault_omp_num_threads",
]

DEFAULT_MAX_PIXELS = 50_000_000
"""Default pixel limit (about 7000 x 7000); override with ``FACEPRINT_MAX_PIXELS`` or ``max_pixels=``."""

DEFAULT_MAX_FILE_BYTES = 50_000_000
"""Default limit on the bytes of one encoded image (50 MB); override with ``FACEPRINT_MAX_FILE_BYTES``."""

DEFAULT_MAX_UPLOAD_BYTES = 10_000_000
DEFAULT_MAX_IMPORT_BYTES = 1 << 30
"""1 GiB: a gallery export of about two million 128-d templates."""
"""Default limit on the body of one service request (10 MB); override with ``FACEPRINT_MAX_UPLOAD_BYTES``."""

TEMPLATE_KEY_BYTES = 32
"""Length of a template encryption key: AES-256 (``FACEPRINT_TEMPLATE_KEY``, 64 hex digits or 44 base64 characters)."""

_HEX_KEY = re.compile(r"^[0-9A-Fa-f]{64}$")


def parse_template_key(text: str) -> bytes:
    """The 32 key bytes that ``text`` (64 hex digits, or base64 / URL-safe base64 of 32 bytes) spells.

    The message of the error names the expected form and the length found, never the text itself.

    Raises
    ------
    InvalidArgumentError
        ``text`` is neither 64 hex digits nor base64 of exactly 32 bytes.

    Examples
    --------
    >>> len(parse_template_key("00" * 32))
    32
    >>> parse_template_key("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=") == bytes(32)
    True
    """
    text = text.strip()
    if _HEX_KEY.match(text):
        return bytes.fromhex(text)
    try:
        key = base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != TEMPLATE_KEY_BYTES:
        raise InvalidArgumentError(
            f"FACEPRINT_TEMPLATE_KEY must be a {TEMPLATE_KEY_BYTES * 8}-bit key: 64 hex digits or the base64 of "
            f"{TEMPLATE_KEY_BYTES} bytes, got {len(text)} characters that are neither "
            '(make one with: python -c "import os,base64;print(base64.b64encode(os.urandom(32)).decode())")'
        )
    return key


_VARIABLE_OF: dict[str, str] = {}
"""Field name -> variable, for the validators' messages (filled once the class exists)."""


class Settings(BaseSettings):
    """faceprint's configuration, read from environment variables.

    Each field is read from the variable named in its description (exact, case-sensitive names;
    no ``.env`` file; a variable named like a field, ``gallery`` say, is not read). A field passed
    as a keyword, by its name or its variable's name, wins over the environment. Instances are frozen.

    Parameters
    ----------
    max_pixels : int, default DEFAULT_MAX_PIXELS
        ``FACEPRINT_MAX_PIXELS``: :func:`faceprint.io.load_image` rejects larger images.
    max_file_bytes : int, default DEFAULT_MAX_FILE_BYTES
        ``FACEPRINT_MAX_FILE_BYTES``: :func:`faceprint.io.load_image` reads no more than this many
        bytes of an encoded image (a path, bytes or a file object) and refuses larger ones.
    gallery : Path or None, default None
        ``FACEPRINT_GALLERY``: the gallery database when ``--gallery`` is not given; ``None`` (unset
        or empty) means :meth:`gallery_path`'s default under ``XDG_DATA_HOME``.
    xdg_data_home : Path or None, default None
        ``XDG_DATA_HOME``: the base of the default gallery path; ``None`` (unset) means
        ``~/.local/share``.
    progress : bool, default False
        ``FACEPRINT_PROGRESS``: ``1`` shows progress bars even when stderr is not a terminal; any
        other value leaves them to the terminal check.
    data : Path or None, default None
        ``FACEPRINT_DATA``: the folder that holds the face data sets (``lfw/`` ...); ``None`` (unset
        or empty) means the default candidates next to the checkout.
    calibration : Path or None, default None
        ``FACEPRINT_CALIBRATION``: a calibration file written by ``faceprint calibrate``; its
        thresholds replace the shipped ones for the models it names (:mod:`faceprint.calibration`).
        ``None`` (unset or empty) means the shipped LFW calibration only.
    max_upload_bytes : int, default DEFAULT_MAX_UPLOAD_BYTES
        ``FACEPRINT_MAX_UPLOAD_BYTES``: ``faceprint serve`` answers 413 to a request whose body is
        larger, before reading it whole.
    keys : Path or None, default None
        ``FACEPRINT_KEYS``: the API key store of ``faceprint serve`` and ``faceprint keys``; ``None``
        (unset or empty) means :meth:`keys_path`'s default, ``keys.db`` beside the gallery.
    audit : Path or None, default None
        ``FACEPRINT_AUDIT``: the append-only audit log of ``faceprint serve`` and ``faceprint audit``;
        ``None`` (unset or empty) means :meth:`audit_path`'s default, ``audit.db`` beside the key store.
    retention_days : int or None, default None
        ``FACEPRINT_RETENTION_DAYS``: templates stored more than this many days ago are purged by
        :func:`faceprint.retention.purge_expired` (``faceprint serve`` at start-up, ``faceprint
        gallery purge``); ``None`` (unset or empty) keeps them until they are deleted.
    service_threads : int, default 2
        ``FACEPRINT_SERVICE_THREADS``: inference threads of one ``faceprint serve`` process.
    service_queue : int, default 8
        ``FACEPRINT_SERVICE_QUEUE``: requests that may wait for an inference thread; one more is
        answered 503 with ``Retry-After``.
    max_enroll_photos : int, default 10
        ``FACEPRINT_MAX_ENROLL_PHOTOS``: the most photos one ``POST /v1/enroll`` takes (else 400).
    max_import_bytes : int, default DEFAULT_MAX_IMPORT_BYTES
        ``FACEPRINT_MAX_IMPORT_BYTES``: the largest gallery export ``POST /v1/import`` accepts (else
        413); that route alone has this limit instead of ``max_upload_bytes``.
    challenge_ttl_s : int, default 120
        ``FACEPRINT_CHALLENGE_TTL_S``: seconds an issued liveness challenge may be answered
        (``POST /v1/challenge/{id}``); then it is gone (404). Each challenge is answered at most once.
    challenge_actions : tuple of str, default all of ACTIONS
        ``FACEPRINT_CHALLENGE_ACTIONS``: comma-separated actions the service's challenges are drawn
        from (``blink``, ``turn_left``, ``turn_right``); fewer make a lucky replay likelier.
    index : str, default "exact"
        ``FACEPRINT_INDEX``: the in-memory vector index of SQLite galleries opened without one
        (:data:`faceprint.gallery.INDEXES`: ``exact``; ``auto``, exact below ``index_exact_below``
        templates and HNSW from there on; ``hnsw``, ``hnsw-f16``, ``hnsw-i8``). Exact by default:
        on SFace embeddings the HNSW graph loses too many mates at 10^6 (``bench/scale.py``).
    index_exact_below : int, default 250000
        ``FACEPRINT_INDEX_EXACT_BELOW``: where ``auto`` changes from exact search to HNSW.
    hnsw_ef : int, default 256
        ``FACEPRINT_HNSW_EF``: candidates an HNSW search visits (recall against time).
    milvus_token : SecretStr or None, default None
        ``FACEPRINT_MILVUS_TOKEN``: the credentials ``milvus://`` galleries connect with
        (``user:password`` or an API key; :class:`~faceprint.gallery.milvus.MilvusGallery`); never in
        ``repr`` or logs. ``None`` (unset or empty): none.
    template_key : SecretStr or None, default None
        ``FACEPRINT_TEMPLATE_KEY``: the AES-256 key (64 hex digits, or base64 of 32 bytes) that
        encrypts stored templates in SQLite galleries at rest (:mod:`faceprint.gallery.encryption`);
        a gallery created with it set is encrypted, one created without is plain. A
        :class:`~pydantic.SecretStr`, so it never shows in ``repr`` or logs; ``None`` (unset or empty)
        means no key. :meth:`template_key_bytes` gives the key itself.

    Raises
    ------
    InvalidImageError
        ``FACEPRINT_MAX_PIXELS`` or ``FACEPRINT_MAX_FILE_BYTES`` is not an integer, or not positive.
    InvalidArgumentError
        ``FACEPRINT_TEMPLATE_KEY`` is neither 64 hex digits nor base64 of 32 bytes (among others).

    Examples
    --------
    >>> Settings(max_pixels=1000).max_pixels
    1000
    >>> Settings(gallery=Path("/tmp/g.db")).gallery_path()
    PosixPath('/tmp/g.db')
    """

    model_config = SettingsConfigDict(
        case_sensitive=True,
        frozen=True,
        extra="ignore",
        populate_by_name=True,
    )

    max_pixels: int = Field(
        default=DEFAULT_MAX_PIXELS,
        validation_alias="FACEPRINT_MAX_PIXELS",
        description="FACEPRINT_MAX_PIXELS: pixel limit of load_image's decompression-bomb guard.",
    )
    max_file_bytes: int = Field(
        default=DEFAULT_MAX_FILE_BYTES,
        validation_alias="FACEPRINT_MAX_FILE_BYTES",
        description="FACEPRINT_MAX_FILE_BYTES: the most bytes load_image reads of one encoded image.",
    )
    gallery: Path | None = Field(
        default=None,
        validation_alias="FACEPRINT_GALLERY",
        description="FACEPRINT_GALLERY: the default gallery database.",
    )
    xdg_data_home: Path | None = Field(
        default=None,
        validation_alias="XDG_DATA_HOME",
        description="XDG_DATA_HOME: base folder of the default gallery path (~/.local/share when unset).",
    )
    progress: bool = Field(
        default=False,
        validation_alias="FACEPRINT_PROGRESS",
        description="FACEPRINT_PROGRESS: '1' forces progress bars on when stderr is not a terminal.",
    )
    data: Path | None = Field(
        default=None,
        validation_alias="FACEPRINT_DATA",
        description="FACEPRINT_DATA: the face data sets folder.",
    )
    calibration: Path | None = Field(
        default=None,
        validation_alias="FACEPRINT_CALIBRATION",
        description="FACEPRINT_CALIBRATION: a faceprint calibrate file whose thresholds replace the shipped ones.",
    )
    max_upload_bytes: int = Field(
        default=DEFAULT_MAX_UPLOAD_BYTES,
        validation_alias="FACEPRINT_MAX_UPLOAD_BYTES",
        description="FACEPRINT_MAX_UPLOAD_BYTES: the largest request body faceprint serve accepts (else 413).",
    )
    keys: Path | None = Field(
        default=None,
        validation_alias="FACEPRINT_KEYS",
        description="FACEPRINT_KEYS: the API key store (default: keys.db beside the gallery).",
    )
    audit: Path | None = Field(
        default=None,
        validation_alias="FACEPRINT_AUDIT",
        description="FACEPRINT_AUDIT: the service's append-only audit log (default: audit.db beside keys.db).",
    )
    retention_days: int | None = Field(
        default=None,
        validation_alias="FACEPRINT_RETENTION_DAYS",
        description="FACEPRINT_RETENTION_DAYS: templates older than this many days are purged (faceprint serve "
        "at start-up, faceprint gallery purge); unset: kept until deleted.",
    )
    service_threads: int = Field(
        default=2,
        validation_alias="FACEPRINT_SERVICE_THREADS",
        description="FACEPRINT_SERVICE_THREADS: inference threads of one faceprint serve process.",
    )
    service_queue: int = Field(
        default=8,
        validation_alias="FACEPRINT_SERVICE_QUEUE",
        description="FACEPRINT_SERVICE_QUEUE: requests that may wait for an inference thread (then 503).",
    )
    max_enroll_photos: int = Field(
        default=10,
        validation_alias="FACEPRINT_MAX_ENROLL_PHOTOS",
        description="FACEPRINT_MAX_ENROLL_PHOTOS: the most photos one POST /v1/enroll takes.",
    )
    max_import_bytes: int = Field(
        default=DEFAULT_MAX_IMPORT_BYTES,
        validation_alias="FACEPRINT_MAX_IMPORT_BYTES",
        description="FACEPRINT_MAX_IMPORT_BYTES: the largest gallery export POST /v1/import accepts (else 413).",
    )
    challenge_ttl_s: int = Field(
        default=120,
        validation_alias="FACEPRINT_CHALLENGE_TTL_S",
        description="FACEPRINT_CHALLENGE_TTL_S: seconds an issued liveness challenge may be answered (once).",
    )
    challenge_actions: tuple[str, ...] = Field(
        default=("blink", "turn_left", "turn_right"),
        validation_alias="FACEPRINT_CHALLENGE_ACTIONS",
        description="FACEPRINT_CHALLENGE_ACTIONS: comma-separated actions challenges are drawn from.",
    )
    index: str = Field(
        default="exact",
        validation_alias="FACEPRINT_INDEX",
        description="FACEPRINT_INDEX: in-memory vector index of SQLite galleries (exact, auto, hnsw, hnsw-f16, "
        "hnsw-i8).",
    )
    index_exact_below: int = Field(
        default=250_000,
        validation_alias="FACEPRINT_INDEX_EXACT_BELOW",
        description="FACEPRINT_INDEX_EXACT_BELOW: templates below which the auto index searches exactly.",
    )
    hnsw_ef: int = Field(
        default=256,
        validation_alias="FACEPRINT_HNSW_EF",
        description="FACEPRINT_HNSW_EF: candidates an HNSW search visits (recall against time).",
    )
    milvus_token: SecretStr | None = Field(
        default=None,
        validation_alias="FACEPRINT_MILVUS_TOKEN",
        description="FACEPRINT_MILVUS_TOKEN: credentials (user:password or an API key) of milvus:// galleries; "
        "unset: none.",
    )
    template_key: SecretStr | None = Field(
        default=None,
        validation_alias="FACEPRINT_TEMPLATE_KEY",
        description="FACEPRINT_TEMPLATE_KEY: AES-256 key (64 hex digits or base64 of 32 bytes) that encrypts "
        "stored templates in SQLite galleries; unset: templates are stored plain.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # keywords, then the exact variables; no .env file, no secrets folder, and never a variable
        # named like a field (pydantic-settings' own source reads ``gallery`` too once fields may be
        # passed by name)
        return init_settings, _Variables(settings_cls)

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as err:
            # a validator's faceprint error (a ValueError, so pydantic wraps it) surfaces as itself,
            # with the same type and message as before settings existed
            for detail in err.errors():
                cause = detail.get("ctx", {}).get("error")
                if isinstance(cause, FaceprintError):
                    raise cause from None
            raise

    @field_validator("max_pixels", mode="before")
    @classmethod
    def _check_max_pixels(cls, raw: object) -> int:
        if isinstance(raw, str):
            try:
                value = int(raw)
            except ValueError:
                raise InvalidImageError(f"FACEPRINT_MAX_PIXELS must be an integer, got {raw!r}") from None
        elif isinstance(raw, int) and not isinstance(raw, bool):
            value = raw
        else:
            raise InvalidImageError(f"FACEPRINT_MAX_PIXELS must be an integer, got {raw!r}")
        if value <= 0:
            raise InvalidImageError(f"FACEPRINT_MAX_PIXELS must be positive, got {value}")
        return value

    @field_validator(
        "max_upload_bytes", "service_threads", "service_queue", "max_enroll_photos", "max_import_bytes",
        "challenge_ttl_s", "index_exact_below", "hnsw_ef", mode="before",
    )
    @classmethod
    def _check_service_int(cls, raw: object, info: Any) -> int:
        variable = _VARIABLE_OF.get(info.field_name, info.field_name)
        if isinstance(raw, str):
            try:
                raw = int(raw)
            except ValueError:
                raise InvalidArgumentError(f"{variable} must be an integer, got {raw!r}") from None
        if not isinstance(raw, int) or isinstance(raw, bool):
            raise InvalidArgumentError(f"{variable} must be an integer, got {raw!r}")
        least = 0 if info.field_name == "service_queue" else 1
        if raw < least:
            raise InvalidArgumentError(f"{variable} must be >= {least}, got {raw}")
        return raw

    @field_validator("gallery", "data", "calibration", "keys", "audit", mode="before")
    @classmethod
    def _empty_is_unset(cls, raw: object) -> object:
        return None if raw == "" else raw

    @field_validator("challenge_actions", mode="before")
    @classmethod
    def _check_actions(cls, raw: object) -> tuple[str, ...]:
        valid = ("blink", "turn_left", "turn_right")  # faceprint.liveness.ACTIONS (a lower layer may not import it)
        items = [p.strip() for p in raw.split(",")] if isinstance(raw, str) else list(raw)  # type: ignore[call-overload]
        chosen = tuple(dict.fromkeys(str(p) for p in items if str(p)))
        bad = [a for a in chosen if a not in valid]
        if not chosen or bad:
            raise InvalidArgumentError(
                f"FACEPRINT_CHALLENGE_ACTIONS must be a comma-separated list of {', '.join(valid)}, got {raw!r}"
            )
        return chosen

    @field_validator("retention_days", mode="before")
    @classmethod
    def _check_retention(cls, raw: object) -> int | None:
        if raw is None or raw == "":
            return None
        if isinstance(raw, str):
            try:
                raw = int(raw)
            except ValueError:
                raise InvalidArgumentError(f"FACEPRINT_RETENTION_DAYS must be an integer, got {raw!r}") from None
        if not isinstance(raw, int) or isinstance(raw, bool) or raw < 1:
            raise InvalidArgumentError(f"FACEPRINT_RETENTION_DAYS must be an integer >= 1, got {raw!r}")
        return raw

    @field_validator("template_key", mode="before")
    @classmethod
    def _check_template_key(cls, raw: object) -> SecretStr | None:
        if isinstance(raw, SecretStr):
            raw = raw.get_secret_value()
        if raw is None or raw == "":
            return None
        if not isinstance(raw, str):
            raise InvalidArgumentError(
                f"FACEPRINT_TEMPLATE_KEY must be a str (64 hex digits or base64), got {type(raw).__name__}"
            )
        parse_template_key(raw)  # raises, naming the expected form but not the text
        return SecretStr(raw.strip())

    @field_validator("milvus_token", mode="before")
    @classmethod
    def _empty_token_is_none(cls, raw: object) -> object:
        if isinstance(raw, SecretStr):
            raw = raw.get_secret_value()
        return None if raw is None or (isinstance(raw, str) and not raw.strip()) else raw

    @field_validator("progress", mode="before")
    @classmethod
    def _progress_flag(cls, raw: object) -> object:
        # exactly "1" turns it on, as before; "true", "yes", "0" ... all leave it off
        return raw == "1" if isinstance(raw, str) else raw

    @field_validator("max_file_bytes", mode="before")
    @classmethod
    def _check_max_file_bytes(cls, raw: object) -> int:
        if isinstance(raw, str):
            try:
                raw = int(raw)
            except ValueError:
                raise InvalidImageError(f"FACEPRINT_MAX_FILE_BYTES must be an integer, got {raw!r}") from None
        if not isinstance(raw, int) or isinstance(raw, bool):
            raise InvalidImageError(f"FACEPRINT_MAX_FILE_BYTES must be an integer, got {raw!r}")
        if raw <= 0:
            raise InvalidImageError(f"FACEPRINT_MAX_FILE_BYTES must be positive, got {raw}")
        return raw

    def template_key_bytes(self) -> bytes | None:
        """The 32 bytes of ``FACEPRINT_TEMPLATE_KEY``, or ``None`` when it is unset.

        Examples
        --------
        >>> Settings(template_key="00" * 32).template_key_bytes() == bytes(32)
        True
        >>> Settings(template_key="00" * 32)  # doctest: +ELLIPSIS
        Settings(...template_key=SecretStr('**********'))
        """
        if self.template_key is None:
            return None
        return parse_template_key(self.template_key.get_secret_value())

    def gallery_path(self) -> Path:
        """The default gallery database: ``gallery``, else ``$XDG_DATA_HOME/faceprint/gallery.db``.

        Examples
        --------
        >>> Settings(gallery=None, xdg_data_home=Path("/data")).gallery_path()
        PosixPath('/data/faceprint/gallery.db')
        """
        if self.gallery is not None:
            return self.gallery
        base = self.xdg_data_home if self.xdg_data_home is not None else Path.home() / ".local" / "share"
        return base / "faceprint" / "gallery.db"

    def keys_path(self) -> Path:
        """The API key store: ``keys``, else ``keys.db`` in the folder of :meth:`gallery_path`.

        Examples
        --------
        >>> Settings(gallery=Path("/srv/fp/gallery.db")).keys_path()
        PosixPath('/srv/fp/keys.db')
        """
        return self.keys if self.keys is not None else self.gallery_path().parent / "keys.db"

    def audit_path(self) -> Path:
        """The audit log: ``audit``, else ``audit.db`` in the folder of :meth:`keys_path` (which is the
        gallery's folder unless ``FACEPRINT_KEYS`` says otherwise).

        Examples
        --------
        >>> Settings(gallery=Path("/srv/fp/gallery.db")).audit_path()
        PosixPath('/srv/fp/audit.db')
        """
        return self.audit if self.audit is not None else self.keys_path().parent / "audit.db"


class _Variables(PydanticBaseSettingsSource):
    """Each field from the one environment variable its alias names (case-sensitive, as ``os.environ``)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        variable = str(field.validation_alias)
        return os.environ.get(variable), variable, False

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            raw, variable, _ = self.get_field_value(field, name)
            if raw is not None:
                found[variable] = raw
        return found


_VARIABLES: dict[str, str] = {name: str(field.validation_alias) for name, field in Settings.model_fields.items()}
"""Field name -> the environment variable it is read from."""
_VARIABLE_OF.update(_VARIABLES)

_cached: tuple[tuple[str | None, ...], Settings] | None = None


def current_settings() -> Settings:
    """Settings as the environment says now, for library functions whose setting parameter is ``None``.

    An application builds one :class:`Settings` at its edge and passes it in instead. The result
    equals ``Settings()``; it is cached and the cache is keyed on the current values of the variables,
    so a change to any of them (``monkeypatch.setenv``, ``CliRunner(env=...)``) is seen on the next
    call, while an unchanged environment costs a few dictionary look-ups, not a new
    :class:`Settings` (about half a millisecond: as long as decoding a small JPEG).

    Raises
    ------
    InvalidImageError
        ``FACEPRINT_MAX_PIXELS`` or ``FACEPRINT_MAX_FILE_BYTES`` is not a positive integer (checked
        again on every call until it is).

    Examples
    --------
    >>> current_settings() == Settings()
    True
    """
    global _cached
    key = tuple([os.environ.get(name) for name in _VARIABLES.values()])
    cached = _cached
    if cached is not None and cached[0] == key:
        return cached[1]
    # every field passed explicitly (init values win over the environment), so the result is
    # exactly the snapshot ``key`` even if the environment changes meanwhile
    fields = Settings.model_fields
    settings = Settings(**{field: fields[field].default if raw is None else raw for field, raw in zip(_VARIABLES, key)})
    _cached = (key, settings)
    return settings


def export_settings(settings: Settings) -> None:
    """Put ``settings`` into ``os.environ`` (each field that is set, under its variable), for the
    processes this one starts: ``faceprint serve --workers N`` hands its options to uvicorn's
    worker processes this way, which build their :class:`Settings` from the environment.

    Examples
    --------
    >>> export_settings(Settings(service_queue=4))  # doctest: +SKIP
    """
    for name, variable in _VARIABLES.items():
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, tuple):
            value = ",".join(map(str, value))
        os.environ[variable] = ("1" if value else "0") if isinstance(value, bool) else str(value)


def setdefault_omp_num_threads(threads: int) -> None:
    """Set ``OMP_NUM_THREADS`` to ``threads`` unless it is already set (for libraries started later).

    Examples
    --------
    >>> setdefault_omp_num_threads(2)
    """
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
