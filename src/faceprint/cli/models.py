"""`faceprint models`: the installed models, their packages, weight licences, thresholds and calibration in force."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from .common import JsonOpt, _print_json, _run, out

_ROLES = {"face_landmarker": "liveness landmarks"}


def _source_text(c: dict[str, Any]) -> str:
    if c["kind"] == "file":
        text = f"{c['path']} ({(c['date'] or '?')[:10]}, {c['people']:,} people)"
    else:
        text = "shipped (LFW DevTrain)" if c["kind"] == "shipped" else "none"
    return text + (f"; {c['ignored']}" if c["ignored"] else "")


def _calibration_text(plain: dict[str, Any] | None, flip: dict[str, Any] | None) -> str:
    """The calibration cell: the model's, and its +flip variant's when that differs (user text escaped)."""
    if plain is None:
        return "-"
    text = _source_text(plain)
    fields = ("kind", "path", "ignored")
    if flip is not None and any(flip[f] != plain[f] for f in fields):
        text += f"; +flip: {_source_text(flip)}"
    return escape(text)


def models(as_json: JsonOpt = False) -> None:
    """Installed models, their packages, weight licences, calibrated thresholds and the calibration in force."""

    def body() -> int:
        from ..calibration import calibration_in_force
        from ..embedding import EMBEDDERS, get_embedder
        from ..weights import WEIGHT_FILES, installed_version, is_installed

        rows: list[dict[str, Any]] = []
        for key, wf in WEIGHT_FILES.items():
            thresholds: dict[str, float] = {}
            calibration: dict[str, Any] | None = None
            calibration_flip: dict[str, Any] | None = None
            if key in EMBEDDERS:
                emb, flipped = get_embedder(key), get_embedder(key, flip=True)
                thresholds = dict(emb.thresholds)
                calibration = calibration_in_force(emb.key, emb.fingerprint).to_dict()
                calibration_flip = calibration_in_force(flipped.key, flipped.fingerprint).to_dict()
            rows.append({
                "model": key,
                "role": "embedder" if key in EMBEDDERS else _ROLES.get(key, "detector"),
                "description": wf.description,
                "package": wf.distribution,
                "pinned": wf.version,
                "installed": installed_version(key) if is_installed(key) else None,
                "sha256": wf.sha256,
                "licence": wf.licence,
                "source": wf.source,
                "thresholds": thresholds,
                "install": wf.install_hint,
                "calibration": calibration,
                "calibration_flip": calibration_flip,
            })
        if as_json:
            _print_json(rows)
        else:
            table = Table(title="faceprint models (nothing is downloaded; files come from these packages)")
            cols = ("model", "role", "package", "installed", "weights licence", "threshold @FMR 1e-3", "calibration")
            for col in cols:
                table.add_column(col, overflow="fold")
            for r in rows:
                thr = r["thresholds"].get("1e-3")
                table.add_row(
                    r["model"], r["role"], f"{r['package']}=={r['pinned']}",
                    r["installed"] or f"[red]no[/] ({r['install']})", r["licence"],
                    f"{thr:.4f}" if thr is not None else "-",
                    _calibration_text(r["calibration"], r["calibration_flip"]),
                )
            out.print(table)
        return 0

    _run(body)
