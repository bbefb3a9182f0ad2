"""``/health`` (is the process up; no key), ``/ready`` (models loaded, gallery reachable; any key) and
``/metrics`` (Prometheus text format; an admin key, as every route but ``/health`` needs a key)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ...errors import FaceprintError
from ..errors import ApiError
from ..security import Caller, require

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/health", summary="The process is up (no key needed)")
async def health(request: Request) -> dict[str, str]:
    service = getattr(request.app.state, "service", None)
    return {"status": "ok" if service is not None and service.ready else "starting"}


@router.get("/ready", summary="Models loaded and the key's gallery reachable")
def ready(caller: Annotated[Caller, require("recognize")]) -> dict[str, Any]:
    service = caller.service
    try:
        templates = caller.gallery.n_templates
    except FaceprintError as err:
        raise ApiError(503, f"gallery of collection {caller.collection!r} unreachable: {err}") from err
    return {
        "status": "ready",
        "model": service.pipeline.model_key,
        "collection": caller.collection,
        "role": caller.key.role,
        "templates": templates,
        "inference_threads": service.pool.threads,
        "queue_capacity": service.pool.capacity,
        "admitted": service.pool.admitted,
    }


@router.get(
    "/metrics",
    summary="Prometheus metrics of this process (admin key)",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}},
)
def metrics(request: Request, caller: Annotated[Caller, require("admin")]) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
