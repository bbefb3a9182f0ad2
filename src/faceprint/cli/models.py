"""`faceprint models`: the installed models, their packages, weight licences and thresholds."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from .common import JsonOpt, _print_json, _run, out

_ROLES = {"face_landmarker": "liveness landmarks"}


def models(as_json: JsonOpt = False) -> None:
    """Installed models, their packages, weight licences and calibrated thresholds."""

    def body() -> int:
        from ..embedding import EMBEDDERS, get_embedder
        from ..weights import WEIGHT_FILES, installed_version, is_installed

        rows: list[dict[str, Any]] = []
        for key, wf in WEIGHT_FILES.items():
            thresholds: dict[str, float] = {}
            if key in EMBEDDERS:
                thresholds = dict(get_embedder(key).thresholds)
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
            })
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
                    f"{thr:.4f}" if thr is not None else "-",
                )
            out.print(table)
        return 0

    _run(body)
