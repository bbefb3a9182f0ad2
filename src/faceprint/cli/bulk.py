"""``faceprint enroll-dir``: bulk enrollment of a folder or a manifest (:mod:`faceprint.bulk`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from .common import (
    FlipOpt,
    GalleryURLOpt,
    JsonOpt,
    ModelOpt,
    ThreadsOpt,
    _fail,
    _open_gallery,
    _print_json,
    _run,
    _set_threads,
    _settings,
    err,
    out,
    shown,
)


def enroll_dir(
    directory: Annotated[
        Path | None, typer.Argument(help="Folder with one sub-folder of photos per person (the sub-folder's name).")
    ] = None,
    manifest: Annotated[
        Path | None, typer.Option("--manifest", help="CSV with path,name columns instead of a folder.")
    ] = None,
    gallery: GalleryURLOpt = None,
    model: ModelOpt = "sface",
    flip: FlipOpt = False,
    liveness: Annotated[
        str, typer.Option("--liveness", help="off, or passive: a photo not judged live is a failure.")
    ] = "off",
    ray: Annotated[
        str | None,
        typer.Option("--ray", help="Embed on Ray: local (start one here), auto (the running cluster) or an address."),
    ] = None,
    workers: Annotated[int, typer.Option("--workers", help="Worker processes (Ray actors); 1: this process.")] = 1,
    batch: Annotated[int, typer.Option("--batch", help="Embedded photos per gallery commit.")] = 64,
    failures: Annotated[
        Path, typer.Option("--failures", help="Where the CSV of photos not enrolled (path,name,error_type,error) goes.")
    ] = Path("enroll-failures.csv"),
    as_json: JsonOpt = False,
    threads: ThreadsOpt = None,
) -> None:
    """Enroll every photo of a folder (or a manifest); reruns skip what is enrolled; bad photos go to a CSV.

    Exit 0 when every photo is enrolled (or was already), 1 when some are listed in the failures CSV.
    """

    def body() -> int:
        from ..bulk import enroll_photos, process_runner, read_manifest, scan_folder, sequential_runner, write_failures
        from ..embedding import EmbedderSpec
        from ..pipeline import PipelineSpec

        if (directory is None) == (manifest is None):
            _fail("give a folder or --manifest CSV (one of them)")
        if liveness not in ("off", "passive"):
            _fail(f"--liveness must be off or passive, got {liveness!r}")
        if workers < 1 or batch < 1:
            _fail("--workers and --batch must be at least 1")
        photos, listed_failures = scan_folder(directory) if directory is not None else read_manifest(manifest)  # type: ignore[arg-type]
        spec = PipelineSpec(embedder=EmbedderSpec(model, flip=flip), liveness=liveness)
        if ray is not None:
            from ..distributed import ray_runner

            runner, name = ray_runner(ray, workers=workers), f"ray ({ray}, {workers} actor(s))"
        elif workers > 1:
            runner, name = process_runner(workers), f"process pool ({workers})"
        else:
            _set_threads(threads)
            runner, name = sequential_runner(), "sequential"
        settings = _settings()
        progress = Progress(
            TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), console=err, transient=True,
            disable=not err.is_terminal and not settings.progress,
        )
        with _open_gallery(gallery, create=True) as g, progress:
            task = progress.add_task("enrolling", total=len(photos), rate="")
            started: list[tuple[int, float]] = []

            def tick(done: int, total: int) -> None:
                now = time.perf_counter()
                if not started:
                    started.append((done, now))
                first, t0 = started[0]
                rate = (done - first) / (now - t0) if now > t0 else 0.0
                progress.update(task, completed=done, total=total, rate=f"{rate:.1f} img/s")

            report = enroll_photos(g, photos, spec, runner=runner, runner_name=name, batch_size=batch,
                                   failures=listed_failures, progress=tick)
        where = write_failures(failures, report.failures)
        if as_json:
            _print_json({**report.to_dict(), "failures_csv": str(where)})
        else:
            out.print(
                f"enrolled {report.enrolled} photo(s) of {report.subjects} person(s), skipped {report.skipped} "
                f"already enrolled, {len(report.failures)} failed; {report.embedded} embedded in "
                f"{report.seconds:.1f} s ({report.images_per_second:.1f} img/s, {shown(name)})",
                highlight=False,
            )
            for f in report.failures[:10]:
                said = f.error if f.path and f.path in f.error else f"{f.path}: {f.error}"
                err.print(f"[red]failed:[/] {shown(said)}", highlight=False)
            if len(report.failures) > 10:
                err.print(f"... and {len(report.failures) - 10} more", highlight=False)
            if report.failures:
                err.print(f"failures listed in {shown(str(where))}", highlight=False)
        return 1 if report.failures else 0

    _run(body)
