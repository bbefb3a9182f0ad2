"""`faceprint serve`: run the REST service (uvicorn) over the library."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import GalleryOpt, _fail, _run, _settings, err

WORKER_HEALTHCHECK_S = 60
"""Seconds uvicorn's supervisor waits for a worker's health-check answer before it restarts the worker."""


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    gallery: GalleryOpt = None,
    workers: Annotated[int, typer.Option("--workers", help="Server processes (each loads the models).")] = 1,
    threads: Annotated[
        int | None,
        typer.Option("--threads", help="Inference threads per process (default $FACEPRINT_SERVICE_THREADS)."),
    ] = None,
    keys: Annotated[
        Path | None,
        typer.Option("--keys", help="Key store (default: $FACEPRINT_KEYS, else keys.db beside the gallery)."),
    ] = None,
) -> None:
    """Serve the CompreFace-compatible REST API (/api/v1, x-api-key; keys from `faceprint keys create`)."""

    def body() -> int:
        import uvicorn

        from ..settings import Settings, export_settings

        if workers < 1:
            _fail(f"--workers must be >= 1, got {workers}")
        if not 0 < port < 65536:
            _fail(f"--port must be 1-65535, got {port}")
        overrides: dict[str, object] = {}
        if gallery is not None:
            overrides["gallery"] = gallery.resolve()
        if keys is not None:
            overrides["keys"] = keys.resolve()
        if threads is not None:
            overrides["service_threads"] = threads
        # the environment's settings, with the options on top (validated: a bad --threads is one line)
        settings = Settings(**overrides) if overrides else _settings()
        err.print(
            f"faceprint serve on http://{host}:{port} (gallery {settings.gallery_path()}, keys {settings.keys_path()}, "
            f"{workers} process(es) x {settings.service_threads} inference thread(s))",
            markup=False,
            highlight=False,
        )
        if workers == 1:
            from ..server import create_app

            uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
        else:
            export_settings(settings)  # the worker processes build their settings from the environment
            uvicorn.run(
                "faceprint.server:create_app_from_environment", factory=True, host=host, port=port,
                workers=workers, log_level="info",
                # a worker loading its models can keep uvicorn's health-check thread off the GIL for
                # seconds on a busy machine; 5 s (uvicorn's default) got workers killed and restarted
                timeout_worker_healthcheck=WORKER_HEALTHCHECK_S,
            )
        return 0

    _run(body)
