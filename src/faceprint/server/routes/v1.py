"""faceprint's own API (``/v1/...``): what CompreFace lacks.

- ``POST /v1/identify``: open-set 1:N with the calibrated threshold at an ``fmr`` (1:1 operating
  point) or an ``fpir`` (for the gallery's size); each face names the threshold and its FMR.
- ``POST /v1/verify``: 1:1 at ``fmr``, the probe optionally checked for liveness.
- ``POST /v1/liveness``: the library's default passive checker on the largest face.
- ``GET /v1/audit``: the audit trail of the key's collection (admin).

Each calls the :class:`~faceprint.pipeline.FacePipeline` method the CLI calls for the same command
(``identify``, ``verify``, ``check_liveness``) and answers its result's ``to_dict()``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from ...audit import ACTIONS, MAX_PAGE
from ...thresholds import operating_point_key
from ..observe import audited
from ..security import Caller, require
from ..uploads import image_body, read_images
from .compreface import same_model

if TYPE_CHECKING:
    from ...pipeline import FacePipeline

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["faceprint"])

Admin = Annotated[Caller, require("admin")]
Recognizer = Annotated[Caller, require("recognize")]
Fmr = Annotated[
    str | None,
    Query(description="1:1 operating point of the threshold: 1e-2, 1e-3, 1e-4 or best_accuracy (default: 1e-3)."),
]
PassiveOnly = Annotated[
    Literal["off", "passive"], Query(description="Check the probe face with the passive checker first.")
]


def _model(pipeline: FacePipeline) -> dict[str, Any]:
    return {"model": pipeline.model_key, "fingerprint": str(getattr(pipeline.embedder, "fingerprint", ""))}


@router.post(
    "/identify",
    summary="Open-set identification of the faces of an image (calibrated threshold, its FMR named)",
    openapi_extra={**image_body("file"), **audited("search")},
)
async def identify(
    request: Request,
    caller: Recognizer,
    k: Annotated[int, Query(ge=1, le=100, description="Candidates per face.")] = 3,
    fmr: Fmr = None,
    fpir: Annotated[
        float | None,
        Query(gt=0.0, lt=1.0, description="Open-set rate instead of fmr: at most this fraction of strangers named."),
    ] = None,
    select: Annotated[Literal["all", "largest", "central", "error"], Query()] = "all",
    liveness: PassiveOnly = "off",
) -> dict[str, Any]:
    image = (await read_images(request, ("file",)))["file"]
    point = operating_point_key(fmr)

    def job(pipeline: FacePipeline) -> dict[str, Any]:
        same_model(caller, pipeline)
        # as the CLI: fmr defaults to 1e-3 without fpir; with fpir, an fmr too is refused by identify
        fmr_point = (point or "1e-3") if fpir is None else point
        results = pipeline.identify(
            image, caller.gallery, k=k, fmr=fmr_point, fpir=fpir, select=select, liveness=liveness
        )
        caller.notes["faces"] = len(results)
        caller.notes["matches"] = [r.name for r in results]
        return {**_model(pipeline), "faces": [r.to_dict() for r in results]}

    return await caller.service.pool.run(job)


@router.post(
    "/verify",
    summary="1:1: is the largest face of source_image the person of target_image, at fmr?",
    openapi_extra={**image_body("source_image", "target_image"), **audited("verify")},
)
async def verify(
    request: Request,
    caller: Recognizer,
    fmr: Fmr = None,
    select: Annotated[Literal["largest", "central", "error"], Query()] = "largest",
    liveness: PassiveOnly = "off",
) -> dict[str, Any]:
    images = await read_images(request, ("source_image", "target_image"))
    point = operating_point_key(fmr) or "1e-3"

    def job(pipeline: FacePipeline) -> dict[str, Any]:
        result = pipeline.verify(
            images["source_image"], images["target_image"], select=select, fmr=point, liveness=liveness
        )
        caller.notes.update(faces=2, decision=result.decision)
        return {**_model(pipeline), **result.to_dict()}

    return await caller.service.pool.run(job)


@router.post(
    "/liveness",
    summary="Passive liveness of the largest face of an image (the library's default checker)",
    openapi_extra={**image_body("file"), **audited("liveness")},
)
async def liveness(
    request: Request,
    caller: Recognizer,
    select: Annotated[Literal["largest", "central", "error"], Query()] = "largest",
) -> dict[str, Any]:
    image = (await read_images(request, ("file",)))["file"]

    def job(pipeline: FacePipeline) -> dict[str, Any]:
        result = pipeline.check_liveness(image, select=select)
        caller.notes.update(faces=1, verdict=result.verdict)
        answer = result.to_dict()
        details = answer.get("details") or {}
        reasons = details.get("unsure_reasons") or details.get("reasons") or []
        return {**answer, "live": result.live, "reasons": list(reasons)}

    return await caller.service.pool.run(job)


@router.get("/audit", summary="The audit trail of the key's collection, oldest first (admin)")
def audit(
    caller: Admin,
    page: Annotated[int, Query(ge=0)] = 0,
    size: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    action: Annotated[str | None, Query(description=f"One of: {', '.join(ACTIONS)}.")] = None,
    subject: Annotated[str | None, Query(description="Only entries about this subject.")] = None,
    key_id: Annotated[str | None, Query(description="Only entries of this key.")] = None,
    since: Annotated[str | None, Query(description="ISO 8601 time, inclusive (naive: UTC).")] = None,
    until: Annotated[str | None, Query(description="ISO 8601 time, exclusive (naive: UTC).")] = None,
) -> dict[str, Any]:
    found = caller.service.audit.query(
        action=action,
        subject=subject,
        key_id=key_id,
        collection=caller.collection,
        since=since,
        until=until,
        offset=page * size,
        limit=size,
    )
    return {
        "entries": [e.to_dict() for e in found.entries],
        "page_number": page,
        "page_size": size,
        "total_pages": math.ceil(found.total / size),
        "total_elements": found.total,
    }
