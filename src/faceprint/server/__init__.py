"""``faceprint serve``: a FastAPI service over the library, CompreFace-compatible under ``/api/v1``.

An interface layer like :mod:`faceprint.cli`: each route parses a request, makes the library
calls the CLI makes, and renders the result. Needs the ``fastapi`` / ``uvicorn`` /
``python-multipart`` dependencies (installed with faceprint).
"""

from .app import create_app, create_app_from_environment

__all__ = ["create_app", "create_app_from_environment"]
