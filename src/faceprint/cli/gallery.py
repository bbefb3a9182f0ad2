"""`faceprint gallery list | remove | rename | purge`: parse, one library call, render."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from .common import GalleryURLOpt, JsonOpt, _fail, _open_gallery, _print_json, _run, _settings, out

if TYPE_CHECKING:
    from ..gallery import GalleryBackend


def gallery_list(gallery: GalleryURLOpt = None, as_json: JsonOpt = False) -> None:
    """List enrolled subjects."""

    def body() -> int:
        with _open_gallery(gallery, create=False) as g:
            subjects = g.subjects()
            fp = g.fingerprint
        if as_json:
            _print_json(
                {"model": fp, "subjects": [{"id": s.id, "name": s.name, "templates": s.n_templates,
                                            "created_at": s.created_at} for s in subjects]}
            )
        else:
            table = Table(title=f"{len(subjects)} subject(s), model {fp}")
            for col in ("id", "name", "templates", "enrolled"):
                table.add_column(col)
            for s in subjects:
                table.add_row(str(s.id), escape(s.name), str(s.n_templates), s.created_at)
            out.print(table)
        return 0

    _run(body)


def gallery_remove(
    name: Annotated[str, typer.Argument(help="Subject name or id (a subject named like an id wins).")],
    gallery: GalleryURLOpt = None,
) -> None:
    """Delete a subject and all its templates."""

    def body() -> int:
        with _open_gallery(gallery, create=False) as g:
            n = g.remove(_name_or_id(g, name))
        out.print(f"removed {name} ({n} template(s) erased)", markup=False, highlight=False)
        return 0

    _run(body)


def gallery_rename(
    name: Annotated[str, typer.Argument(help="Current name or id (a subject named like an id wins).")],
    new_name: Annotated[str, typer.Argument(help="New name.")],
    gallery: GalleryURLOpt = None,
) -> None:
    """Rename a subject."""

    def body() -> int:
        with _open_gallery(gallery, create=False) as g:
            s = g.rename(_name_or_id(g, name), new_name)
        out.print(f"renamed {name} -> {s.name}", markup=False, highlight=False)
        return 0

    _run(body)


def gallery_purge(
    days: Annotated[
        int | None, typer.Option("--days", help="Retention in days (default: $FACEPRINT_RETENTION_DAYS).")
    ] = None,
    gallery: GalleryURLOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete templates stored more than N days ago, and the subjects this leaves empty."""

    def body() -> int:
        from ..retention import purge_expired

        keep = days if days is not None else _settings().retention_days
        if keep is None:
            _fail("give --days N or set FACEPRINT_RETENTION_DAYS")
        with _open_gallery(gallery, create=False) as g:
            done = purge_expired(g, keep)
        if as_json:
            _print_json(done.to_dict())
        else:
            out.print(
                f"purged {done.templates_removed} template(s) stored before {done.cutoff}; "
                f"{len(done.subjects_removed)} subject(s) removed",
                markup=False, highlight=False,
            )
        return 0

    _run(body)


def gallery_export(
    dest: Annotated[Path, typer.Argument(help="The export file to write (a ZIP; replaced if it exists).")],
    gallery: GalleryURLOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write every subject, its metadata and its templates to one file (no photos: faceprint keeps none).

    With FACEPRINT_TEMPLATE_KEY set the templates are encrypted and authenticated with it, and
    importing needs the same key."""

    def body() -> int:
        from ..gallery.transfer import export_gallery

        key = _settings().template_key_bytes()
        with _open_gallery(gallery, create=False) as g:
            done = export_gallery(g, dest, key=key)
        if as_json:
            _print_json({"path": str(dest), **done.as_dict()})
        else:
            out.print(
                f"exported {done.n_subjects} subject(s), {done.n_templates} template(s) of model {done.fingerprint} "
                f"to {dest} ({done.n_bytes} bytes{', encrypted' if done.encrypted else ', templates not encrypted'})",
                markup=False, highlight=False,
            )
        return 0

    _run(body)


def gallery_import(
    src: Annotated[Path, typer.Argument(help="An export file written by `faceprint gallery export`.")],
    on_conflict: Annotated[
        str, typer.Option("--on-conflict", help="A subject the gallery already has: error (import nothing), "
                                                "skip it, or merge the export's templates into it.")
    ] = "error",
    gallery: GalleryURLOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add the subjects of an export to the gallery (checked first: same model, intact file, free names)."""

    def body() -> int:
        from ..gallery.transfer import CONFLICTS, import_gallery

        if on_conflict not in CONFLICTS:
            _fail(f"--on-conflict must be one of {', '.join(CONFLICTS)}")
        key = _settings().template_key_bytes()
        with _open_gallery(gallery, create=True) as g:
            done = import_gallery(g, src, key=key, on_conflict=on_conflict)  # type: ignore[arg-type]
        if as_json:
            _print_json(done.as_dict())
        else:
            out.print(
                f"imported {len(done.subjects_created)} new subject(s), merged {len(done.subjects_merged)}, "
                f"skipped {len(done.subjects_skipped)}; {done.templates_added} template(s) added, "
                f"{done.templates_skipped} left out",
                markup=False, highlight=False,
            )
        return 0

    _run(body)


def _name_or_id(gallery: GalleryBackend, value: str) -> str | int:
    """The subject ``value`` names: an all-digit value is an id unless a subject has it as its name
    (``gallery remove 2024`` removes the subject named "2024")."""
    digits = value.strip()
    if digits.isascii() and digits.isdigit() and value not in gallery:
        return int(value)
    return value
