"""`faceprint dataset stats`: parse, one library call, render."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from .common import DetectorOpt, JsonOpt, ModelOpt, ThreadsOpt, _pipeline, _print_json, _progress, _run, err, out


def dataset_stats_cmd(
    directory: Annotated[Path, typer.Argument(help="One folder per identity, or UTKFace-named files.")],
    layout: Annotated[str, typer.Option("--layout", help="folders or utkface.")] = "folders",
    with_faces: Annotated[
        bool, typer.Option("--with-faces", help="Detect + embed: detection failures, near-duplicate images.")
    ] = False,
    use: Annotated[str, typer.Option("--use", help="training or enrollment (sets the warnings).")] = "training",
    max_images: Annotated[int | None, typer.Option("--max-images", help="Sample this many images.")] = None,
    model: ModelOpt = "sface",
    detector: DetectorOpt = "yunet",
    as_json: JsonOpt = False,
    threads: ThreadsOpt = None,
) -> None:
    """Identities, depth (images per identity), breadth, duplicates, detection failures, demographics."""

    def body() -> int:
        from ..datasets import dataset_stats

        pipe = _pipeline(model, False, detector, threads) if with_faces else None
        with _progress() as prog:
            task = prog.add_task("checking faces", total=None)
            stats = dataset_stats(
                directory,
                layout=layout,  # type: ignore[arg-type]
                pipeline=pipe,
                use=use,  # type: ignore[arg-type]
                max_images=max_images,
                progress=lambda n: prog.advance(task, n),
                n_images=lambda n: prog.update(task, total=n),
            )
        d = stats.to_dict()
        if as_json:
            _print_json(d)
        else:
            table = Table(title=f"dataset {escape(str(directory))}")
            table.add_column("statistic")
            table.add_column("value", justify="right")
            for key, value in d.items():
                if isinstance(value, (int, float, str)) or value is None:
                    table.add_row(key.replace("_", " "), f"{value:.3g}" if isinstance(value, float) else str(value))
            out.print(table)
            for key in ("depth_histogram", "composition"):
                part = d.get(key)
                if isinstance(part, dict) and part:
                    sub = Table(title=key.replace("_", " "))
                    sub.add_column("bin / group")
                    sub.add_column("count", justify="right")
                    for k, v in part.items():
                        sub.add_row(escape(str(k)), escape(str(v)))
                    out.print(sub)
        for w in stats.warnings:
            err.print(f"[yellow]warning:[/] {escape(str(w))}", highlight=False)
        return 0

    _run(body)
