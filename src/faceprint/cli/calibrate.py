"""`faceprint calibrate DIR`: thresholds measured on the user's own photos, written as a calibration file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from .common import (
    DetectorOpt,
    FlipOpt,
    JsonOpt,
    ModelOpt,
    ThreadsOpt,
    _fail,
    _pipeline,
    _print_json,
    _progress,
    _run,
    err,
    out,
)


def _rate(text: str, option: str) -> float:
    try:
        value = float(text)
    except ValueError:
        _fail(f"{option} must be a number such as 1e-3, got {text!r}")
    if not 0.0 < value < 1.0:
        _fail(f"{option} must lie strictly between 0 and 1, got {text!r}")
    return value


def _interval(v: tuple[float, float] | None, digits: int = 4) -> str:
    return "-" if v is None else f"{v[0]:.{digits}f} - {v[1]:.{digits}f}"


def calibrate(
    directory: Annotated[
        Path, typer.Argument(help="One sub-folder of photos per person (the folder name is the person).")
    ],
    fmr: Annotated[
        list[str] | None,
        typer.Option(
            "--fmr", help="Target FMR (repeatable). Default: those of 1e-2, 1e-3, 1e-4 the photos support."
        ),
    ] = None,
    fpir: Annotated[
        list[str] | None,
        typer.Option("--fpir", help="Target open-set FPIR (repeatable), for a gallery of --gallery-size templates."),
    ] = None,
    gallery_size: Annotated[
        int | None, typer.Option("--gallery-size", help="Templates in the gallery the --fpir targets are for.")
    ] = None,
    out_file: Annotated[
        Path, typer.Option("--out", "-o", help="Calibration file to write.")
    ] = Path("faceprint-calibration.json"),
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", help="Bootstrap replicates over people for the intervals (0: none).")
    ] = 200,
    model: ModelOpt = "sface",
    flip: FlipOpt = False,
    detector: DetectorOpt = "yunet",
    as_json: JsonOpt = False,
    threads: ThreadsOpt = None,
) -> None:
    """Measure thresholds at target FMRs / FPIRs on your own labelled photos and write a calibration file.

    Every pair of photos is used: genuine (same folder) and impostor (different folders). A target
    needs at least 3 / FMR impostor pairs; one beyond what the photos support is refused. Use the
    file with FACEPRINT_CALIBRATION=FILE: verify, identify (--fmr and --fpir) and cluster then use
    these thresholds for this model.
    """

    def body() -> int:
        from ..evaluation.calibrate import calibrate_folder, person_folders

        fmrs = None if not fmr else [_rate(f, "--fmr") for f in fmr]
        fpirs = [_rate(f, "--fpir") for f in fpir or []]
        if fpirs and (gallery_size is None or gallery_size < 1):
            _fail("--fpir needs --gallery-size N (the number of templates the gallery will hold, >= 1)")
        if bootstrap < 0:
            _fail(f"--bootstrap must be >= 0, got {bootstrap}")
        person_folders(directory)  # fail on a missing folder or one person before the models load
        pipe = _pipeline(model, flip, detector, threads)
        with _progress() as prog:
            task = prog.add_task("embedding photos", total=None)
            result = calibrate_folder(
                directory,
                pipe,
                fmrs=fmrs,
                fpirs=fpirs,
                gallery_size=gallery_size,
                n_boot=bootstrap,
                progress=lambda n: prog.advance(task, n),
                n_images=lambda n: prog.update(task, total=n),
            )
        cal = result.calibration
        path = cal.save(out_file)
        c = cal.counts
        if as_json:
            doc: dict[str, Any] = {
                "file": str(path),
                "model": cal.model,
                "fingerprint": cal.fingerprint,
                "thresholds": cal.thresholds,
                "operating_points": [p.to_dict() for p in cal.points],
                "counts": c.to_dict(),
                "failures": [{"path": f, "reason": r} for f, r in result.failures],
                "notes": list(cal.notes),
                "use": f"export FACEPRINT_CALIBRATION={path.resolve()}",
            }
            _print_json(doc)
        else:
            sampled = " (sampled)" if c.impostor_pairs_sampled else ""
            table = Table(
                title=f"calibration of {escape(cal.model)} on {escape(str(directory))}: {c.people:,} people, "
                f"{c.images:,} images, {c.genuine_pairs:,} genuine pairs, {c.impostor_pairs:,} impostor pairs{sampled}"
            )
            cols = ("target", "threshold", f"{cal.confidence:.0%} interval", "impostors above", "TAR", "TAR interval")
            for col in cols:
                table.add_column(col, justify="right")
            for p in cal.points:
                target = f"FMR {p.key}" if p.fpir is None else f"FPIR {p.fpir:g} @ {p.gallery_size:,} (FMR {p.fmr:.3g})"
                table.add_row(
                    target,
                    f"{p.threshold:.4f}",
                    _interval(p.interval),
                    f"{p.impostors_accepted:,}",
                    "-" if p.tar is None else f"{p.tar:.4f}",
                    _interval(p.tar_interval),
                )
            out.print(table)
            if cal.best_accuracy is not None:
                out.print(f"best_accuracy threshold (max TAR - FMR): {cal.best_accuracy:.4f}", highlight=False)
            out.print(f"wrote {escape(str(path))}; use it with:", highlight=False)
            out.print(f"  export FACEPRINT_CALIBRATION={escape(str(path.resolve()))}", highlight=False, soft_wrap=True)
        for note in cal.notes:
            err.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
        if result.failures:
            err.print(
                f"[yellow]warning:[/] {len(result.failures)} image(s) left out (no face or unreadable):",
                highlight=False,
            )
            for failed, reason in result.failures[:20]:
                err.print(f"  {escape(failed)}: {escape(reason)}", highlight=False, soft_wrap=True)
            if len(result.failures) > 20:
                err.print(f"  ... and {len(result.failures) - 20} more", highlight=False)
        return 0

    _run(body)
