"""One mapping from errors to HTTP answers, and the request-body limit.

Every error answer is JSON in CompreFace's shape, ``{"message": ..., "code": ...}``, with a 4xx
status for bad input (never a traceback); ``code`` is CompreFace's number where it has one (28: no
face found) and the HTTP status otherwise.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import (
    EmbedderMismatchError,
    EnrollmentRejectedError,
    ExampleNotFoundError,
    FaceprintError,
    GalleryError,
    ImageTooLargeError,
    InvalidArgumentError,
    InvalidImageError,
    KeyNotFoundError,
    MultipleFacesError,
    NoFaceError,
    SubjectExistsError,
    SubjectNotFoundError,
)
from .pool import BusyError

__all__ = [
    "ApiError",
    "BodyLimitMiddleware",
    "ERROR_RESPONSES",
    "ErrorBody",
    "install_error_handlers",
    "NO_FACE_MESSAGE",
    "error_response",
]

log = logging.getLogger(__name__)

NO_FACE_MESSAGE = "No face is found in the given image"
"""CompreFace's message (code 28) for an image without a face; clients match on it."""
NO_FACE_CODE = 28


class ApiError(Exception):
    """An HTTP error answer raised by route code: status, message and (optional) CompreFace code."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: int | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = status if code is None else code
        self.headers = headers
        self.extra = extra


def error_response(
    status: int,
    message: str,
    code: int | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    """``{"message", "code", **extra}`` with ``status`` (``extra``: facts a client needs, never input echoed)."""
    body = {"message": message, "code": status if code is None else code, **(extra or {})}
    return JSONResponse(body, status, headers=headers)


class ErrorBody(BaseModel):
    """An error answer, in CompreFace's shape. Some errors add facts a client needs: ``reason`` (no face
    found), ``photos`` and ``decision`` (``POST /v1/enroll``)."""

    model_config = ConfigDict(extra="allow")

    message: str = Field(description="What was wrong, for a person to read.")
    code: int = Field(description="CompreFace's error number where it has one (28: no face found), else the status.")


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _error("Bad input: a parameter or body that is invalid, an image that cannot be decoded, no face."),
    401: _error("No x-api-key header, or an unknown or revoked key."),
    403: _error("The key's role is too low for this request, or x-collection names another collection."),
    404: _error("No such subject, example (image_id), API key, collection or challenge."),
    409: _error("The subject or collection exists, or the collection holds templates of another model."),
    413: _error("The request body is over FACEPRINT_MAX_UPLOAD_BYTES (POST /v1/import: FACEPRINT_MAX_IMPORT_BYTES)."),
    415: _error("An upload in a content type the route does not read (multipart/form-data, or JSON with base64)."),
    422: _error("Well-formed but refused: POST /v1/enroll's photos are not judged live."),
    503: _error("The service is starting or stopping, its inference queue is full (see Retry-After), "
                "or the key's gallery is unreachable."),
}
"""The error answers of every route, with :class:`ErrorBody`: one place, applied to the whole app
(``FastAPI(responses=...)``); FastAPI's default 422 ``HTTPValidationError`` is not what the service
answers (an invalid request gets a 400 in this shape), and declaring 422 here leaves it out."""


# most specific first: the first class an error is an instance of decides
_STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (NoFaceError, 400),
    (MultipleFacesError, 400),
    (ImageTooLargeError, 400),  # a decompression bomb, seen from the header: bad input, not a big upload
    (InvalidImageError, 400),
    (SubjectNotFoundError, 404),
    (ExampleNotFoundError, 404),
    (KeyNotFoundError, 404),
    (SubjectExistsError, 409),
    (EmbedderMismatchError, 409),
    (EnrollmentRejectedError, 400),
    (InvalidArgumentError, 400),
    (GalleryError, 400),
    (FaceprintError, 400),
)


def status_of(err: FaceprintError) -> int:
    return next(status for cls, status in _STATUS if isinstance(err, cls))


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers: faceprint errors, HTTP errors, validation errors, busy pool, anything else."""

    @app.exception_handler(ApiError)
    async def _api(request: Request, err: ApiError) -> JSONResponse:
        request.state.error_type = f"http_{err.status}"
        return error_response(err.status, err.message, err.code, err.headers, err.extra)

    @app.exception_handler(FaceprintError)
    async def _faceprint(request: Request, err: FaceprintError) -> JSONResponse:
        request.state.error_type = type(err).__name__
        text = _without_paths(request, str(err))
        if isinstance(err, NoFaceError):  # CompreFace's exact message and code; faceprint's reason beside them
            return JSONResponse({"message": NO_FACE_MESSAGE, "code": NO_FACE_CODE, "reason": text}, 400)
        return error_response(status_of(err), text)

    @app.exception_handler(BusyError)
    async def _busy(request: Request, err: BusyError) -> JSONResponse:
        request.state.error_type = "BusyError"
        return error_response(503, str(err), headers={"Retry-After": str(err.retry_after_s)})

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        # the location and the reason only: never the input (it could be a header value)
        request.state.error_type = "RequestValidationError"
        parts = []
        for detail in err.errors():
            where = ".".join(str(p) for p in detail.get("loc", ()) if p != "body") or "request"
            parts.append(f"{where}: {detail.get('msg', 'invalid')}")
        return error_response(400, "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, err: StarletteHTTPException) -> JSONResponse:
        return error_response(err.status_code, str(err.detail), headers=getattr(err, "headers", None))

    @app.exception_handler(Exception)
    async def _bug(request: Request, err: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        request.state.error_type = "internal"
        # outside the request-id middleware (Starlette answers a 500 from its outermost layer): add the id here
        request_id = getattr(request.state, "request_id", None)
        headers = {"x-request-id": request_id} if isinstance(request_id, str) else None
        return error_response(500, "internal error (logged by the server)", headers=headers)


def _without_paths(request: Request, text: str) -> str:
    """``text`` with the server's gallery paths replaced by collection names (a client needs the
    collection, not where the server keeps it)."""
    service = getattr(request.app.state, "service", None)
    if service is None:
        return text
    for name, path in service.collections.paths().items():
        text = text.replace(f"gallery {path}", f"collection {name!r}").replace(str(path), f"collection {name!r}")
    return text


class UploadTooLarge(ApiError):
    def __init__(self, limit: int, setting: str = "FACEPRINT_MAX_UPLOAD_BYTES") -> None:
        super().__init__(413, f"request body over the limit of {limit} bytes ({setting})")


class BodyLimitMiddleware:
    """413 for a request body over ``limit`` bytes: at once from ``Content-Length``, else (a chunked
    body) as soon as the bytes received pass the limit, before the body is read whole.

    ``paths`` maps a request path to its own ``(limit, setting)`` (a gallery import is larger than a photo)."""

    def __init__(self, app: ASGIApp, limit: int, paths: dict[str, tuple[int, str]] | None = None) -> None:
        self.app = app
        self.default = (limit, "FACEPRINT_MAX_UPLOAD_BYTES")
        self.paths = dict(paths or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, setting = self.paths.get(scope.get("path", ""), self.default)
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                await _send(send, 400, "malformed Content-Length header")
                return
            if size > limit:
                await _send(send, 413, str(UploadTooLarge(limit, setting)))
                return
        seen = 0
        started = False

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise UploadTooLarge(limit, setting)
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited, tracked)
        except UploadTooLarge as err:
            if started:
                raise
            await _send(send, 413, err.message)


async def _send(send: Send, status: int, message: str) -> None:
    response: Any = error_response(status, message)
    await response({"type": "http"}, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}
