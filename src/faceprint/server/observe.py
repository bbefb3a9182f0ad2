"""What the service observes about each request: its id, its metrics, its audit entry.

:class:`RequestContextMiddleware` (outermost) gives every request an id (the client's
``x-request-id`` when it is a short token, else a new UUID) and echoes it on every response;
when the answer starts (before its first byte is sent) it counts it in :class:`Metrics` (route
template, status, latency to the answer, errors by type, faces) and, for a route marked with
:func:`audited` whose key authenticated, appends an entry to the audit log: key id, action,
collection, subject, request id, status. The entry is committed before the client is answered.

Routes add facts through :class:`~faceprint.server.security.Caller`'s ``notes`` (the subject a
body named, the faces found, the subjects matched).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from .state import Service

__all__ = ["Metrics", "RequestContextMiddleware", "audited", "REQUEST_ID_HEADER"]

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_AUDIT_KEY = "x-audit"


def audited(action: str) -> dict[str, Any]:
    """``openapi_extra`` marking a route's audit action (shown in the schema as ``x-audit``)."""
    return {_AUDIT_KEY: action}


class Metrics:
    """The service's Prometheus metrics, in a registry of its own (one per app).

    ``faceprint_requests_total{method,route,status}``, ``faceprint_request_duration_seconds
    {method,route}`` (histogram), ``faceprint_errors_total{type}``, ``faceprint_faces_detected_total``,
    ``faceprint_queue_depth`` (inference jobs running or waiting), ``faceprint_queue_capacity``.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "faceprint_requests", "Requests answered, by route template and status.", ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "faceprint_request_duration_seconds", "Time from request to the end of the answer.", ("method", "route"),
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=self.registry,
        )
        self.errors = Counter(
            "faceprint_errors", "Error answers (4xx, 5xx), by error type.", ("type",), registry=self.registry
        )
        self.faces = Counter("faceprint_faces_detected", "Faces found in uploaded images.", registry=self.registry)
        self.queue_depth = Gauge(
            "faceprint_queue_depth", "Inference jobs running or waiting now.", registry=self.registry
        )
        self.queue_capacity = Gauge(
            "faceprint_queue_capacity", "Inference jobs admitted at most (threads + queue).", registry=self.registry
        )

    def watch(self, service: Service | None) -> None:
        """Read the pool of ``service`` (None: no service, depth 0) when metrics are collected."""
        pool = service.pool if service is not None else None
        self.queue_depth.set_function(lambda: float(pool.admitted) if pool is not None else 0.0)
        self.queue_capacity.set(float(pool.capacity) if pool is not None else 0.0)


class RequestContextMiddleware:
    """Request id, metrics and audit around every HTTP request (see the module docstring)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or ()).get(REQUEST_ID_HEADER.encode())
        text = given.decode("latin-1") if given is not None else ""
        request_id = text if _REQUEST_ID.match(text) else uuid.uuid4().hex
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500
        started = time.perf_counter()
        observed = False

        def observe() -> None:
            nonlocal observed
            observed = True
            try:
                self._observe(scope, state, status, time.perf_counter() - started)
            except Exception:  # observing must never turn an answer into an error
                log.exception("recording metrics / audit of %s failed", scope.get("path"))

        async def tagged(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != REQUEST_ID_HEADER.encode()]
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
                # the audit entry is committed before the client hears the answer: an acknowledged
                # delete always has its row, even if the process dies right after
                observe()
            await send(message)

        try:
            await self.app(scope, receive, tagged)
        finally:
            if not observed:  # no answer started (the app raised): still counted, still audited
                observe()

    def _observe(self, scope: Scope, state: dict[str, Any], status: int, seconds: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "<unmatched>"
        method = str(scope.get("method", ""))
        m = self.metrics
        m.requests.labels(method, template, str(status)).inc()
        m.latency.labels(method, template).observe(seconds)
        if status >= 400:
            m.errors.labels(state.get("error_type") or f"http_{status}").inc()
        notes: dict[str, Any] = state.get("audit_notes") or {}
        faces = notes.get("faces")
        if isinstance(faces, int) and faces > 0:
            m.faces.inc(faces)
        action = (getattr(route, "openapi_extra", None) or {}).get(_AUDIT_KEY)
        key_id = state.get("key_id")
        if action is None or key_id is None:
            return  # not an audited route, or no key authenticated (401: nobody to name)
        service: Service | None = state.get("service")
        if service is None:
            return
        subject = notes.get("subject")
        if subject is None:
            params = scope.get("path_params") or {}
            subject = params.get("subject")
        if subject is None:
            query = dict(_query(scope))
            subject = query.get("subject")
        detail = {k: v for k, v in notes.items() if k != "subject"}
        service.audit.record(
            action,
            key_id=str(key_id),
            collection=state.get("collection"),
            subject=None if subject is None else str(subject),
            request_id=state["request_id"],
            status=status,
            detail=detail,
        )


def _query(scope: Scope) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    raw = scope.get("query_string", b"")
    return parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
