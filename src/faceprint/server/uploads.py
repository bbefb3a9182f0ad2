"""Images in a request: multipart form files, or base64 strings in a JSON body (CompreFace's two ways)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile

from .errors import ApiError

__all__ = [
    "read_images", "read_image_list", "read_optional", "image_body", "image_list_body", "files_body", "multipart_form",
    "unsupported_type",
]


def _refuse_if_busy(request: Request) -> None:
    """503 before an upload for inference is parsed, when the inference pool is full already."""
    service = getattr(request.state, "service", None)  # set by the key check (security.require)
    if service is not None:
        service.pool.refuse_if_full()


async def multipart_form(request: Request, max_files: int, what: str = "files") -> Any:
    """The parsed multipart form (at most ``max_files`` file parts), or a 400 that says why not."""
    try:
        return await request.form(max_files=max_files, max_fields=16)
    except ApiError:
        raise
    except Exception as err:  # a malformed multipart body (python-multipart / starlette)
        if "Too many files" in str(err):
            raise ApiError(400, f"at most {max_files} images in {what!r}") from err
        raise ApiError(400, f"malformed multipart body: {err}") from err


async def read_images(request: Request, names: tuple[str, ...]) -> dict[str, bytes]:
    """The encoded bytes of each image field in ``names`` (all required).

    ``multipart/form-data``: a file part per name. ``application/json``: an object with a base64
    string per name (a ``data:image/...;base64,`` prefix is allowed). Anything else: 415.
    """
    _refuse_if_busy(request)
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind == "multipart/form-data":
        form = await multipart_form(request, len(names), ", ".join(names))
        found: dict[str, bytes] = {}
        try:
            for name in names:
                part = form.get(name)
                if isinstance(part, UploadFile):
                    found[name] = await part.read()
                elif isinstance(part, str):
                    raise ApiError(400, f"form field {name!r} must be a file part (with a filename), got a text field")
                else:
                    raise ApiError(400, f"missing form field {name!r} (an image file)")
        finally:
            await form.close()
        return found
    if kind == "application/json":
        try:
            body: Any = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError) as err:
            raise ApiError(400, f"malformed JSON body: {err}") from err
        if not isinstance(body, dict):
            raise ApiError(400, "expected a JSON object with base64 image fields")
        return {name: _b64(body.get(name), name) for name in names}
    raise unsupported_type(kind, "multipart/form-data or application/json (base64)")


async def read_image_list(request: Request, name: str, *, most: int) -> list[tuple[str, bytes]]:
    """``(label, bytes)`` of each image in field ``name``: 1 to ``most`` multipart file parts of that
    name (label: the part's file name), or a JSON list of base64 strings (label: ``name[i]``)."""
    _refuse_if_busy(request)
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    found: list[tuple[str, bytes]] = []
    if kind == "multipart/form-data":
        form = await multipart_form(request, most, name)
        try:
            for i, part in enumerate(form.getlist(name)):
                if not isinstance(part, UploadFile):
                    raise ApiError(400, f"form field {name!r} must be file parts (with a filename), got a text field")
                found.append((part.filename or f"{name}[{i}]", await part.read()))
        finally:
            await form.close()
    elif kind == "application/json":
        try:
            body: Any = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError) as err:
            raise ApiError(400, f"malformed JSON body: {err}") from err
        values = body.get(name) if isinstance(body, dict) else None
        if isinstance(values, str):
            values = [values]
        if not isinstance(values, list):
            raise ApiError(400, f"expected a JSON object whose field {name!r} is a list of base64 images")
        if len(values) > most:
            raise ApiError(400, f"at most {most} images in {name!r}, got {len(values)}")
        found = [(f"{name}[{i}]", _b64(v, f"{name}[{i}]")) for i, v in enumerate(values)]
    else:
        raise unsupported_type(kind, "multipart/form-data or application/json (base64)")
    if not found:
        raise ApiError(400, f"missing field {name!r}: one to {most} images")
    return found


async def read_optional(request: Request, required: str, optional: str) -> tuple[bytes, bytes | None]:
    """Multipart only: the file part ``required`` and, if present, the file part ``optional``."""
    _refuse_if_busy(request)
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != "multipart/form-data":
        raise unsupported_type(kind, "multipart/form-data")
    form = await multipart_form(request, 2)
    try:
        parts: dict[str, bytes | None] = {}
        for name in (required, optional):
            part = form.get(name)
            if isinstance(part, UploadFile):
                parts[name] = await part.read()
            elif part is None:
                parts[name] = None
            else:
                raise ApiError(400, f"form field {name!r} must be a file part (with a filename), got a text field")
    finally:
        await form.close()
    data = parts[required]
    if data is None:
        raise ApiError(400, f"missing form field {required!r} (a file)")
    return data, parts[optional]


def unsupported_type(kind: str, wanted: str) -> ApiError:
    """The 415 for a body of content type ``kind`` where ``wanted`` was expected."""
    return ApiError(415, f"unsupported content type {kind or 'none'!r}: send {wanted}")


def _b64(value: object, name: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise ApiError(400, f"missing JSON field {name!r} (a base64 image)")
    if value.startswith("data:") and "," in value:
        value = value.split(",", 1)[1]
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as err:
        raise ApiError(400, f"field {name!r} is not valid base64: {err}") from err


def image_body(*names: str) -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of a route that reads ``names`` with :func:`read_images`."""
    files = {n: {"type": "string", "format": "binary"} for n in names}
    b64 = {n: {"type": "string", "format": "byte", "description": "base64 image"} for n in names}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {"schema": {"type": "object", "properties": files, "required": list(names)}},
                "application/json": {"schema": {"type": "object", "properties": b64, "required": list(names)}},
            },
        }
    }


def image_list_body(name: str) -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of a route that reads ``name`` with :func:`read_image_list`."""
    many: dict[str, Any] = {"type": "array", "minItems": 1}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {name: {**many, "items": {"type": "string", "format": "binary"}}},
                        "required": [name],
                    }
                },
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {name: {**many, "items": {"type": "string", "format": "byte"}}},
                        "required": [name],
                    }
                },
            },
        }
    }


def files_body(descriptions: dict[str, str], required: list[str]) -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of a multipart-only route: one file part per name, described."""
    files = {name: {"type": "string", "format": "binary", "description": text} for name, text in descriptions.items()}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {"schema": {"type": "object", "properties": files, "required": required}}
            },
        }
    }


def video_body() -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of a challenge answer: a ``video`` file, optionally a still ``file``."""
    return files_body(
        {"video": "The recorded answer (webm, mp4, ...).", "file": "Optional still to identify."}, ["video"]
    )
