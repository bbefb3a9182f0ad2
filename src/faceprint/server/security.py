"""``x-api-key`` on every route but ``/health``: who calls, with which role, on which collection.

A key belongs to one collection (see :mod:`faceprint.keys`); the request uses that collection.
A request may name it in the ``x-collection`` header (a check: naming another collection is
refused with 403, never served from another gallery). No answer ever contains a key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Header, Request, Security
from fastapi.security import APIKeyHeader

from ..keys import ApiKey, role_allows
from .errors import ApiError

if TYPE_CHECKING:
    from ..gallery import GalleryBackend
    from .state import Service

__all__ = ["Caller", "require", "service_of"]

_API_KEY = APIKeyHeader(name="x-api-key", auto_error=False, description="A key from `faceprint keys create`.")


@dataclass(frozen=True)
class Caller:
    """The authenticated key of a request and the gallery of its collection."""

    key: ApiKey
    gallery: GalleryBackend
    service: Service
    notes: dict[str, Any] = field(default_factory=dict)
    """Facts for the request's audit entry and metrics: ``subject`` (when the path or query does not
    name it), ``faces`` (found), anything else small (into the entry's ``detail``)."""

    @property
    def collection(self) -> str:
        return self.key.collection


def service_of(request: Request) -> Service:
    service: Service | None = getattr(request.app.state, "service", None)
    if service is None or not service.ready:
        raise ApiError(503, "the service is starting or stopping", headers={"Retry-After": "1"})
    return service


def require(role: str) -> Any:
    """A dependency: the :class:`Caller` of a request whose key has at least ``role``; else 401 / 403."""

    async def caller(
        request: Request,
        token: Annotated[str | None, Security(_API_KEY)] = None,
        collection: Annotated[
            str | None, Header(alias="x-collection", description="The key's collection (optional check).")
        ] = None,
    ) -> Caller:
        service = service_of(request)
        if not token:
            raise ApiError(401, "missing x-api-key header", headers={"WWW-Authenticate": "ApiKey"})
        key = service.keys.authenticate(token)
        if key is None:
            raise ApiError(401, "invalid or revoked API key", headers={"WWW-Authenticate": "ApiKey"})
        notes: dict[str, Any] = {}
        state = request.state
        state.key_id, state.collection, state.service, state.audit_notes = key.id, key.collection, service, notes
        if collection is not None and collection != key.collection:
            raise ApiError(403, "this key belongs to another collection than the one named in x-collection")
        if not role_allows(key.role, role):
            raise ApiError(403, f"this key has role {key.role!r}; this request needs role {role!r} or higher")
        return Caller(key=key, gallery=service.collections.get(key.collection), service=service, notes=notes)

    caller.__name__ = f"require_{role}"
    return Depends(caller)
