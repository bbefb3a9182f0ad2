"""faceprint's own API (``/v1/...``): what CompreFace lacks. This slice: the audit trail."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Query

from ...audit import ACTIONS, MAX_PAGE
from ..security import Caller, require

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["faceprint"])

Admin = Annotated[Caller, require("admin")]


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
