"""Bulk enrollment's embedding step on Ray Data (a :data:`faceprint.bulk.Runner`).

The photos become a Ray Dataset of ``(path, name)`` rows; ``map_batches`` runs them through an
actor pool, each actor holding a warm pipeline rebuilt once from the
:class:`~faceprint.pipeline.PipelineSpec` (:func:`faceprint.bulk.embed_photos`, the very function
the sequential and process-pool runners call); results stream back to the driver, which alone
writes to the gallery (:func:`faceprint.bulk.enroll_photos` commits them in batches). Workers read
the photos from the paths, so on a cluster the paths must be visible to every node (a shared file
system); order is preserved, so a run gives what the sequential path gives.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..bulk import DEFAULT_CHUNK, BulkPhoto, EmbeddedPhoto, Runner, embed_photos
from ..errors import InvalidArgumentError

if TYPE_CHECKING:
    from ..pipeline import PipelineSpec

__all__ = ["ray_runner"]


class _Embedder:
    """A Ray Data actor: one warm pipeline; embeds a batch of ``path`` / ``name`` rows."""

    def __init__(self, spec: PipelineSpec, threads: int) -> None:
        from .. import runtime
        from ..bulk import _pipeline

        runtime.set_num_threads(threads)
        self._spec = spec
        self._dim = _pipeline(spec)._emb.dim  # load the models now, not in the first batch

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        photos = [BulkPhoto(str(p), str(n)) for p, n in zip(batch["path"], batch["name"], strict=True)]
        results = embed_photos(self._spec, photos)
        embeddings = np.zeros((len(results), self._dim), np.float32)
        for i, r in enumerate(results):
            if r.embedding is not None:
                embeddings[i] = r.embedding
        return {
            "path": np.array([r.path for r in results], dtype=object),
            "name": np.array([r.name for r in results], dtype=object),
            "digest": np.array([r.digest or "" for r in results], dtype=object),
            "ok": np.array([r.embedding is not None for r in results]),
            "embedding": embeddings,
            "fingerprint": np.array([r.fingerprint or "" for r in results], dtype=object),
            "error_type": np.array([r.error_type or "" for r in results], dtype=object),
            "error": np.array([r.error or "" for r in results], dtype=object),
        }


def _rows(batch: dict[str, np.ndarray]) -> list[EmbeddedPhoto]:
    out = []
    for i in range(len(batch["path"])):
        ok = bool(batch["ok"][i])
        out.append(EmbeddedPhoto(
            path=str(batch["path"][i]), name=str(batch["name"][i]), digest=str(batch["digest"][i]) or None,
            embedding=np.asarray(batch["embedding"][i], np.float32) if ok else None,
            fingerprint=str(batch["fingerprint"][i]) or None,
            error_type=str(batch["error_type"][i]) or None, error=str(batch["error"][i]) or None,
        ))
    return out


def ray_runner(
    address: str = "local", *, workers: int = 2, chunk: int = DEFAULT_CHUNK, threads: int = 1
) -> Runner:
    """Embed on Ray: ``workers`` actors of one CPU each, ``chunk`` photos per batch.

    Parameters
    ----------
    address : str, default "local"
        ``"local"``: a Ray started for the run on this machine with ``workers`` CPUs (and shut
        down after it); ``"auto"``: the running cluster this machine belongs to; else a cluster
        address (``ray://head:10001``, ``head:6379``). A Ray already initialised in this
        process (e.g. by a test's ``ray.init``) is used as it is.
    workers : int, default 2
        Actors in the pool.
    chunk : int, default 16
        Photos per ``map_batches`` batch.
    threads : int, default 1
        Inference threads per actor.
    """
    for what, value in (("workers", workers), ("chunk", chunk), ("threads", threads)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidArgumentError(f"{what} must be a positive integer, got {value!r}")
    if not isinstance(address, str) or not address.strip():
        raise InvalidArgumentError(f"expected a Ray address, 'local' or 'auto', got {address!r}")

    def run(spec: PipelineSpec, photos: Sequence[BulkPhoto]) -> Iterator[list[EmbeddedPhoto]]:
        try:
            import ray
            import ray.data
        except ImportError as err:
            raise InvalidArgumentError(f"--ray needs Ray (pip install 'faceprint[ray]'): {err}") from err
        started = False
        if not ray.is_initialized():
            if address == "local":
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False,
                         configure_logging=False)
            else:
                ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
            started = True
        try:
            context = ray.data.DataContext.get_current()
            context.execution_options.preserve_order = True
            context.enable_progress_bars = False
            items = ray.data.from_items([{"path": p.path, "name": p.name} for p in photos])
            dataset = items.map_batches(
                _Embedder, fn_constructor_args=(spec, threads), batch_size=chunk, batch_format="numpy",
                concurrency=workers, num_cpus=1,
            )
            for batch in dataset.iter_batches(batch_size=chunk, batch_format="numpy", prefetch_batches=1):
                yield _rows(batch)
        finally:
            if started:
                ray.shutdown()

    return run
