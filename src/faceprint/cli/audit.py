"""`faceprint audit`: read the service's append-only audit trail (parse, one library call, render)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from .common import JsonOpt, _print_json, _run, _settings, out


def audit(
    action: Annotated[str | None, typer.Option("--action", help="Only this action (enroll, delete, ...).")] = None,
    subject: Annotated[str | None, typer.Option("--subject", help="Only entries about this subject.")] = None,
    collection: Annotated[str | None, typer.Option("--collection", help="Only this collection.")] = None,
    key_id: Annotated[str | None, typer.Option("--key", help="Only entries of this key id.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="ISO 8601 time, inclusive (naive: UTC).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="ISO 8601 time, exclusive (naive: UTC).")] = None,
    limit: Annotated[int, typer.Option("--limit", help="Most entries shown.")] = 100,
    offset: Annotated[int, typer.Option("--offset", help="Entries skipped first.")] = 0,
    path: Annotated[
        Path | None,
        typer.Option("--audit", help="Audit log (default: $FACEPRINT_AUDIT, else audit.db beside keys.db)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the audit trail of `faceprint serve` (oldest first): who did what, when, to whom."""

    def body() -> int:
        from ..audit import AuditLog
        from ..errors import FaceprintError

        where = path if path is not None else _settings().audit_path()
        if not where.is_file():
            raise FaceprintError(f"no audit log at {where} (faceprint serve writes it)")
        with AuditLog(where) as log:
            page = log.query(
                action=action, subject=subject, collection=collection, key_id=key_id, since=since, until=until,
                offset=offset, limit=limit,
            )
        if as_json:
            _print_json({"total": page.total, "entries": [e.to_dict() for e in page.entries]})
            return 0
        table = Table(title=f"{len(page.entries)} of {page.total} audit entr{'y' if page.total == 1 else 'ies'}")
        for col in ("id", "at", "key", "action", "collection", "subject", "status", "request", "detail"):
            table.add_column(col)
        for e in page.entries:
            table.add_row(
                str(e.id), e.at, e.key_id or "cli", e.action, escape(e.collection or ""), escape(e.subject or ""),
                "" if e.status is None else str(e.status), escape(e.request_id or ""),
                escape(json.dumps(e.detail, sort_keys=True)) if e.detail else "",
            )
        out.print(table)
        return 0

    _run(body)
