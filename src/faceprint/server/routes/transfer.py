"""Gallery export and import over HTTP (``GET /v1/export``, ``POST /v1/import``), for admin keys.

The same :func:`~faceprint.gallery.transfer.export_gallery` / :func:`~faceprint.gallery.transfer.import_gallery`
calls as ``faceprint gallery export | import``, on the key's collection. With ``FACEPRINT_TEMPLATE_KEY``
set an export's templates are encrypted and authenticated with that key (and an import needs it). An
import is checked whole before anything is written: another embedder than this service's 409, a
damaged, altered or foreign file 400, a name the collection already has 409 unless
``on_conflict=skip|merge``; its size limit is ``FACEPRINT_MAX_IMPORT_BYTES``, not the photo limit.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import IO, Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from ...gallery.transfer import Conflict, export_gallery, import_gallery
from ..errors import ApiError
from ..observe import audited
from ..security import Caller, require
from ..uploads import files_body, multipart_form, unsupported_type
from .compreface import fingerprint_of

__all__ = ["router", "IMPORT_PATH"]

router = APIRouter(prefix="/v1", tags=["faceprint: export and import"])

IMPORT_PATH = "/v1/import"
"""The path whose body limit is ``FACEPRINT_MAX_IMPORT_BYTES``."""

Admin = Annotated[Caller, require("admin")]
_CHUNK = 1 << 20


def _chunks(f: IO[bytes]) -> Iterator[bytes]:
    try:
        f.seek(0)
        while chunk := f.read(_CHUNK):
            yield chunk
    finally:
        f.close()


@router.get(
    "/export",
    summary="Export the key's collection: subjects, metadata and templates in one file (admin)",
    openapi_extra=audited("export"),
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
                     "description": "A faceprint-gallery-export/1 ZIP file."}},
)
def export(caller: Admin) -> StreamingResponse:
    spool: IO[bytes] = tempfile.TemporaryFile()
    try:
        done = export_gallery(caller.gallery, spool, key=caller.service.settings.template_key_bytes())
    except BaseException:
        spool.close()
        raise
    caller.notes.update(subjects=done.n_subjects, templates=done.n_templates, encrypted=done.encrypted)
    day = datetime.now(timezone.utc).strftime("%Y%m%d")
    return StreamingResponse(
        _chunks(spool),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="faceprint-{caller.collection}-{day}.zip"',
            "Content-Length": str(done.n_bytes),
            "x-faceprint-subjects": str(done.n_subjects),
            "x-faceprint-templates": str(done.n_templates),
            "x-faceprint-encrypted": "true" if done.encrypted else "false",
        },
    )


_IMPORT_BODY = files_body({"file": "A file from GET /v1/export or faceprint gallery export."}, ["file"])


@router.post(
    IMPORT_PATH.removeprefix("/v1"),
    summary="Import an export into the key's collection, checked whole before anything is written (admin)",
    openapi_extra={**audited("import"), **_IMPORT_BODY},
)
async def import_(
    request: Request,
    caller: Admin,
    on_conflict: Annotated[
        Conflict, Query(description="A subject the collection has: error (import nothing), skip it, or merge into it.")
    ] = "error",
) -> dict[str, Any]:
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != "multipart/form-data":
        raise unsupported_type(kind, "multipart/form-data with the export in field 'file'")
    form = await multipart_form(request, 1, "file")
    try:
        part = form.get("file")
        if not isinstance(part, UploadFile):
            raise ApiError(400, "missing form field 'file' (an export file)")
        settings = caller.service.settings
        done = await run_in_threadpool(
            import_gallery,
            caller.gallery,
            part.file,
            key=settings.template_key_bytes(),
            fingerprint=fingerprint_of(caller.service.pipeline) or None,
            on_conflict=on_conflict,
            max_bytes=settings.max_import_bytes,
        )
    finally:
        await form.close()
    caller.notes.update(
        subjects_created=len(done.subjects_created), subjects_merged=len(done.subjects_merged),
        subjects_skipped=len(done.subjects_skipped), templates=done.templates_added,
    )
    return done.as_dict()
