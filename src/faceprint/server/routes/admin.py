"""Keys and collections over HTTP (``/v1/keys``, ``/v1/collections``), for admin keys.

The same :class:`~faceprint.keys.KeyStore` calls and audit entries as ``faceprint keys create | list
| revoke``. Who may manage what:

- an admin key of the ``default`` collection administers the service: it creates collections and
  keys of any collection, lists and revokes any key;
- an admin key of another collection manages the keys of its own collection only (another
  collection's key is "not found" to it, so it cannot learn which ids exist there).

A new key's token is in the answer that creates it, once; it is stored hashed and no other answer
(nor the audit trail) ever contains it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from ...errors import KeyNotFoundError
from ...keys import DEFAULT_COLLECTION, ApiKey, validate_collection
from ..errors import ApiError
from ..observe import audited
from ..security import Caller, require

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["faceprint: keys and collections"])

Admin = Annotated[Caller, require("admin")]


def _service_admin(caller: Caller) -> bool:
    return caller.collection == DEFAULT_COLLECTION


def _may_manage(caller: Caller, collection: str) -> bool:
    return _service_admin(caller) or collection == caller.collection


class NewKey(BaseModel):
    role: Literal["recognize", "enroll", "admin"] = Field(description="What the key may do.")
    collection: str | None = Field(
        default=None, description="Its collection (default: the caller's); another one needs a default admin key."
    )
    label: str = Field(default="", max_length=200, description="Who or what uses the key.")


class NewCollection(BaseModel):
    name: str = Field(description="Letters, digits, '-', '_' (at most 64).", min_length=1, max_length=64)


@router.post("/keys", status_code=201, summary="Create an API key (its token is shown in this answer only)",
             openapi_extra=audited("key-create"))
def create_key(body: NewKey, caller: Admin) -> dict[str, Any]:
    collection = caller.collection if body.collection is None else body.collection
    validate_collection(collection)
    if not _may_manage(caller, collection):
        raise ApiError(403, "only an admin key of the default collection creates keys of another collection")
    if collection not in caller.service.collections.names():
        raise ApiError(404, f"no collection {collection!r}: create it first (POST /v1/collections)")
    key, token = caller.service.keys.create(body.role, collection=collection, label=body.label)
    caller.notes.update(key=key.id, role=key.role, for_collection=key.collection)
    return {**key.to_dict(), "key": token}


@router.get("/keys", summary="List API keys (never their tokens), with their last use")
def list_keys(
    caller: Admin,
    collection: Annotated[str | None, Query(description="Only this collection's keys.")] = None,
) -> dict[str, list[dict[str, Any]]]:
    keys = [k for k in caller.service.keys.list() if _may_manage(caller, k.collection)]
    if collection is not None:
        keys = [k for k in keys if k.collection == collection]
    return {"keys": [k.to_dict() for k in keys]}


def _managed_key(caller: Caller, key_id: str) -> ApiKey:
    try:
        key = caller.service.keys.get(key_id[:64])
    except KeyNotFoundError:
        key = None
    if key is None or not _may_manage(caller, key.collection):
        raise ApiError(404, f"no API key with id {key_id[:64]!r}")
    return key


@router.delete("/keys/{key_id}", summary="Revoke an API key (it stays listed, with revoked_at)",
               openapi_extra=audited("key-revoke"))
def revoke_key(key_id: str, caller: Admin) -> dict[str, Any]:
    key = _managed_key(caller, key_id)
    revoked = caller.service.keys.revoke(key.id)
    caller.notes.update(key=key.id, for_collection=key.collection)
    return revoked.to_dict()


def _collection_json(caller: Caller, name: str) -> dict[str, Any]:
    gallery = caller.service.collections.get(name)
    return {"name": name, "subjects": len(gallery.subjects()), "templates": gallery.count_examples()}


@router.get("/collections", summary="The collections this admin key manages, with their sizes")
def list_collections(caller: Admin) -> dict[str, list[dict[str, Any]]]:
    names = caller.service.collections.names() if _service_admin(caller) else [caller.collection]
    return {"collections": [_collection_json(caller, n) for n in names]}


@router.post("/collections", status_code=201, summary="Create a collection: a separate gallery (default admin)",
             openapi_extra=audited("create"))
def create_collection(body: NewCollection, caller: Admin) -> dict[str, Any]:
    if not _service_admin(caller):
        raise ApiError(403, "only an admin key of the default collection creates collections")
    try:
        name = validate_collection(body.name)
    except ValueError as err:
        raise ApiError(400, str(err)) from None
    if name in caller.service.collections.names():
        raise ApiError(409, f"collection {name!r} exists")
    caller.notes.update(new_collection=name)
    return _collection_json(caller, name)
