"""``create_app(settings)``: the FastAPI app of ``faceprint serve``.

The lifespan builds the pipelines once and warms them (one per inference thread, rebuilt from the
first one's :class:`~faceprint.pipeline.PipelineSpec`, so threads do not wait on each other's model
locks), opens the key store and the default collection's gallery, and closes them on shutdown.
Inference runs on :class:`~faceprint.server.pool.InferencePool`'s threads, never on the event loop.

Examples
--------
>>> from faceprint.settings import Settings
>>> app = create_app(Settings(gallery="/tmp/fp/gallery.db"))  # nothing loads until the app starts
>>> app.title
'faceprint'
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from .. import __version__
from ..audit import AuditLog
from ..keys import DEFAULT_COLLECTION, KeyStore
from ..pipeline import FacePipeline
from ..settings import Settings
from .errors import ERROR_RESPONSES, BodyLimitMiddleware, install_error_handlers
from .observe import Metrics, RequestContextMiddleware
from .pool import InferencePool
from .routes import admin, compreface, health, transfer, v1
from .state import Challenges, Collections, Service

__all__ = ["create_app", "create_app_from_environment"]

log = logging.getLogger(__name__)


def _pipelines(pipeline: FacePipeline, n: int) -> list[FacePipeline]:
    """``n`` warm pipelines like ``pipeline``: copies from its spec, or ``pipeline`` itself ``n``
    times when it has no spec (a custom backend; the backends lock themselves)."""
    pipeline.warm_up()
    try:
        spec = pipeline.spec
    except TypeError:
        return [pipeline] * n
    return [pipeline] + [FacePipeline.from_spec(spec).warm_up() for _ in range(n - 1)]


def _purge(settings: Settings, collections: Collections, audit: AuditLog) -> None:
    """``FACEPRINT_RETENTION_DAYS``: purge each collection's expired templates, each purge audited."""
    from ..retention import purge_expired

    days = settings.retention_days
    if days is None:
        return
    for name in collections.names():
        done = purge_expired(collections.get(name), days)
        for subject in done.subjects_touched:
            audit.record(
                "purge", collection=name, subject=subject,
                detail={"cutoff": done.cutoff, "subject_removed": subject in done.subjects_removed},
            )
        if done.templates_removed:
            log.info(
                "retention %d days: purged %d template(s) of collection %s stored before %s",
                days, done.templates_removed, name, done.cutoff,
            )


def create_app(
    settings: Settings | None = None, *, pipeline: FacePipeline | None = None, gallery: Path | None = None
) -> FastAPI:
    """The service app; models load and galleries open when it starts (its lifespan), not here.

    Parameters
    ----------
    settings : Settings, optional
        Limits, paths and pool sizes (default: read from the environment now).
    pipeline : FacePipeline, optional
        The pipeline to serve (default: YuNet + SFace, the CLI's default).
    gallery : Path, optional
        The default collection's gallery (default: ``settings.gallery_path()``).
    """
    settings = Settings() if settings is None else settings
    gallery_path = gallery if gallery is not None else settings.gallery_path()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        base = pipeline if pipeline is not None else FacePipeline(detector="yunet", embedder="sface")
        started = time.perf_counter()
        workers = _pipelines(base, settings.service_threads)
        collections = Collections(gallery_path, template_key=settings.template_key_bytes())
        keys = KeyStore(settings.keys_path())
        try:
            audit = AuditLog(settings.audit_path())
        except BaseException:
            keys.close()
            raise
        try:
            collections.get(DEFAULT_COLLECTION)
            _purge(settings, collections, audit)
        except BaseException:
            keys.close()
            audit.close()
            collections.close()
            raise
        service = Service(
            settings=settings,
            pipeline=base,
            pool=InferencePool(workers, queue_size=settings.service_queue),
            keys=keys,
            collections=collections,
            audit=audit,
            challenges=Challenges(settings.challenge_ttl_s),
            started_at=time.time(),
            ready=True,
        )
        app.state.service = service
        metrics.watch(service)
        log.info(
            "faceprint service ready in %.1f s: model %s, %d inference thread(s), gallery %s, keys %s",
            time.perf_counter() - started, base.model_key, settings.service_threads, gallery_path, keys.path,
        )
        try:
            yield
        finally:
            metrics.watch(None)
            service.close()
            app.state.service = None

    app = FastAPIOffline(  # /docs and /redoc from bundled files: no CDN
        title="faceprint",
        version=__version__,
        description=(
            "Face recognition service: a CompreFace-compatible REST API under /api/v1 and faceprint's own "
            "under /v1, each call with an `x-api-key` header (`faceprint keys create`). The web page is at /."
        ),
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
    )
    metrics = Metrics()
    app.state.service = None
    app.state.metrics = metrics
    install_error_handlers(app)
    app.add_middleware(
        BodyLimitMiddleware,
        limit=settings.max_upload_bytes,
        paths={transfer.IMPORT_PATH: (settings.max_import_bytes, "FACEPRINT_MAX_IMPORT_BYTES")},
    )
    app.add_middleware(RequestContextMiddleware, metrics=metrics)  # outermost: its id is on every answer
    app.include_router(health.router)
    app.include_router(compreface.router)
    app.include_router(v1.router)
    app.include_router(admin.router)
    app.include_router(transfer.router)
    _web_page(app)
    return app


_WEB = Path(__file__).parent / "web"
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
    "connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def _web_page(app: FastAPI) -> None:
    """The web page at ``/`` and its files at ``/web/`` (shipped in the package: no CDN, no build step).
    The page holds no data: it signs in with a key and calls the API like any client."""
    from fastapi.responses import FileResponse
    from fastapi.staticfiles import StaticFiles

    app.mount("/web", StaticFiles(directory=_WEB), name="web")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(
            _WEB / "index.html",
            media_type="text/html; charset=utf-8",
            headers={"Content-Security-Policy": _CSP, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"},
        )


def create_app_from_environment() -> FastAPI:
    """:func:`create_app` with the settings of the environment (uvicorn's factory for ``--workers N``)."""
    return create_app(Settings())
