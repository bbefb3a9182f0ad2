"""`faceprint keys create | list | revoke`: the service's API keys (parse, one library call, render)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from .common import JsonOpt, _print_json, _run, _settings, err, out

if TYPE_CHECKING:
    from ..audit import AuditLog
    from ..keys import KeyStore

KeysOpt = Annotated[
    Path | None,
    typer.Option("--keys", help="Key store (default: $FACEPRINT_KEYS, else keys.db beside the gallery)."),
]


def _store(path: Path | None) -> KeyStore:
    from ..keys import KeyStore

    return KeyStore(path if path is not None else _settings().keys_path())


def _audit(store: KeyStore) -> AuditLog:
    """The audit log beside the key store used (``FACEPRINT_AUDIT`` when set), as the service finds it."""
    from ..audit import AuditLog

    settings = _settings()
    return AuditLog(settings.audit if settings.audit is not None else Path(store.path).parent / "audit.db")


def keys_create(
    role: Annotated[str, typer.Option("--role", help="recognize, enroll or admin.")],
    collection: Annotated[str, typer.Option("--collection", help="The collection (gallery) the key may use.")] = (
        "default"
    ),
    label: Annotated[str, typer.Option("--label", help="Who or what uses the key.")] = "",
    keys: KeysOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an API key and print it, once: only its hash is stored."""

    def body() -> int:
        with _store(keys) as store, _audit(store) as audit:
            key, token = store.create(role, collection=collection, label=label)
            audit.record("key-create", collection=key.collection, detail={"key": key.id, "role": key.role})
        if as_json:
            _print_json({**key.to_dict(), "key": token})
        else:
            out.print(token, markup=False, highlight=False)
            err.print(
                f"created key {key.id} (role {key.role}, collection {escape(key.collection)}); "
                "it is shown only now: store it safely",
                highlight=False,
            )
        return 0

    _run(body)


def keys_list(keys: KeysOpt = None, as_json: JsonOpt = False) -> None:
    """List the API keys (never their secrets), with their last use."""

    def body() -> int:
        with _store(keys) as store:
            listed = store.list()
        if as_json:
            _print_json({"keys": [k.to_dict() for k in listed]})
        else:
            table = Table(title=f"{len(listed)} key(s)")
            for col in ("id", "role", "collection", "label", "created", "last used", "revoked"):
                table.add_column(col)
            for k in listed:
                table.add_row(
                    k.id, k.role, escape(k.collection), escape(k.label), k.created_at, k.last_used_at or "never",
                    k.revoked_at or "",
                )
            out.print(table)
        return 0

    _run(body)


def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (as `faceprint keys list` shows it).")],
    keys: KeysOpt = None,
) -> None:
    """Revoke an API key: it is refused from the next request on."""

    def body() -> int:
        with _store(keys) as store, _audit(store) as audit:
            key = store.revoke(key_id)
            audit.record("key-revoke", collection=key.collection, detail={"key": key.id})
        out.print(f"revoked key {key.id} at {key.revoked_at}", markup=False, highlight=False)
        return 0

    _run(body)
