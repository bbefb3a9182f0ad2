"""`faceprint watch VIDEO | --camera N` and `faceprint identify CLIP.mp4`: tracks, names, a timeline.

Parse, one library call (:func:`faceprint.video.identify_video`), render: a live Rich table of the
tracks while a terminal watches, the timeline table (or ``--json``) at the end, and ``--out`` an
annotated copy. Exit codes as ``identify``: 0 when a track is named, 1 when none is, 3 when every
track is a presentation attack (``--liveness passive``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .common import (
    EXIT_SPOOF,
    FlipOpt,
    GalleryURLOpt,
    JsonOpt,
    LivenessOpt,
    ModelOpt,
    ThreadsOpt,
    _fail,
    _open_gallery,
    _pipeline,
    _print_json,
    _run,
    err,
    fmr_text,
    out,
    shown,
)

if TYPE_CHECKING:
    from ..video import FrameTracks, Track, VideoResult
    from ..videoio import VideoFrame, VideoReader

EveryOpt = Annotated[
    int, typer.Option("--every", help="Detect faces on every K-th frame (tracks are predicted between).")
]
FpsOpt = Annotated[
    float | None, typer.Option("--fps", help="Frames per second of the source to process (default: all of them).")
]
OutOpt = Annotated[
    Path | None, typer.Option("--out", help="Write the video with boxes and names drawn (.mp4 or .avi).")
]
MaxSecondsOpt = Annotated[
    float | None, typer.Option("--max-seconds", help="Stop after this many seconds of the source.")
]
FmrOpt = Annotated[
    str | None,
    typer.Option("--fmr", help="1:1 operating point: 1e-2, 1e-3 (default), 1e-4 or best_accuracy.", callback=fmr_text),
]
FpirOpt = Annotated[
    float | None,
    typer.Option(
        "--fpir",
        help="Open-set rate instead of --fmr: at most this fraction of strangers named, for the gallery's size.",
    ),
]
KOpt = Annotated[int, typer.Option("-k", help="Candidates per track.")]


def _seconds(t: float) -> str:
    m, s = divmod(max(0.0, t), 60.0)
    return f"{int(m)}:{s:05.2f}"


def _style(name: str | None, known: bool) -> str:
    return "dim" if name is None else "green" if known else "red"


def timeline_table(result: VideoResult) -> Table:
    """The timeline of ``result`` as a table: one row per track."""
    title = (
        f"{len(result.tracks)} track(s) in {shown(result.source)}: {result.frames} frames at {result.fps:.1f} fps, "
        f"faces detected on every {result.every}"
    )
    table = Table(title=title, min_width=len(Text.from_markup(title).plain) + 2)
    for col in ("track", "identity", "similarity", "threshold", "first seen", "last seen", "best frame"):
        table.add_column(col)
    for t in result.tracks:
        table.add_row(*_track_cells(t))
    return table


def _track_cells(t: Track) -> list[str]:
    sim = "-" if t.similarity is None else f"{t.similarity:.3f}"
    name = f"[{_style(t.name, t.known)}]{shown(t.name)}[/]"
    if t.liveness is not None:
        name += f" ({shown(t.liveness.verdict)})"
    if t.identity_switches:
        name += f" [yellow](revised {t.identity_switches}x)[/]"
    return [
        str(t.track_id),
        name,
        sim,
        f"{t.threshold:.3f}",
        _seconds(t.start_s),
        _seconds(t.end_s),
        f"{_seconds(t.best_time_s)} q={t.best_quality:.2f}",
    ]


class _LiveTable:
    """The table a terminal shows while a video plays: the tracks seen so far and where each is now."""

    def __init__(self) -> None:
        self.rows: dict[int, list[Any]] = {}  # track id -> [name, similarity, first, last]
        self.last_t = 0.0

    def update(self, frame: VideoFrame, seen: FrameTracks) -> None:
        self.last_t = frame.time_s
        for v in seen.tracks:
            row = self.rows.setdefault(v.track_id, [v.name, v.similarity, frame.time_s, frame.time_s])
            row[0], row[1], row[3] = v.name, v.similarity, frame.time_s

    def render(self) -> Table:
        table = Table(title=f"watching: {_seconds(self.last_t)}")
        for col in ("track", "identity", "similarity", "first seen", "last seen"):
            table.add_column(col)
        for tid, (name, sim, first, last) in sorted(self.rows.items()):
            from ..pipeline import LIVENESS_UNSURE, SPOOF, UNKNOWN

            known = name is not None and name not in (UNKNOWN, SPOOF, LIVENESS_UNSURE)
            label = "..." if name is None else shown(name)
            table.add_row(
                str(tid),
                f"[{_style(name, known)}]{label}[/]",
                "-" if sim is None else f"{sim:.3f}",
                _seconds(first),
                _seconds(last),
            )
        return table


def run_video(
    source: str | int,
    *,
    gallery: str | Path | None,
    model: str,
    flip: bool,
    every: int,
    fps: float | None,
    fmr: str | None,
    fpir: float | None,
    liveness: str,
    k: int,
    out_path: Path | None,
    max_seconds: float | None,
    as_json: bool,
    threads: int | None,
    live_view: bool,
) -> int:
    """The body of ``watch`` and of ``identify`` on a video: returns the exit code."""
    from ..video import AnnotatedVideoWriter, identify_video

    if every < 1:
        _fail(f"--every must be >= 1, got {every}")
    if liveness not in ("off", "passive"):
        _fail(f"--liveness must be off or passive, got {liveness!r}")
    if k < 1:
        _fail(f"-k must be >= 1, got {k}")
    pipe = _pipeline(model, flip, threads=threads)
    table = _LiveTable()
    writer: AnnotatedVideoWriter | None = None
    show_live = live_view and not as_json and out.is_terminal

    def on_open(reader: VideoReader) -> None:
        nonlocal writer
        if out_path is not None:
            writer = AnnotatedVideoWriter(out_path, reader.output_fps)

    def on_frame(frame: VideoFrame, seen: FrameTracks) -> None:
        if writer is not None:
            writer.write(frame.image, seen)
        table.update(frame, seen)
        if live is not None:
            live.update(table.render())

    fmr_point = (fmr or "1e-3") if fpir is None else fmr
    with _open_gallery(gallery, create=False) as g:
        live: Live | None = Live(table.render(), console=out, refresh_per_second=4) if show_live else None
        try:
            if live is not None:
                live.start()
            result = identify_video(
                source,
                g,
                pipeline=pipe,
                fps=fps,
                every=every,
                max_seconds=max_seconds,
                fmr=fmr_point,
                fpir=fpir,
                k=k,
                liveness=liveness,
                on_frame=on_frame,
                on_open=on_open,
                interruptible=True,
            )
        finally:
            if live is not None:
                live.stop()
            if writer is not None:
                writer.close()
    if as_json:
        _print_json(result.to_dict())
    else:
        out.print(timeline_table(result))
        if result.ended_early:
            err.print(f"[yellow]warning:[/] {shown(result.source)} ended before its declared length (truncated?)")
        if result.interrupted:
            err.print("stopped by Ctrl-C: the timeline up to that frame")
        if writer is not None:
            err.print(f"annotated video: {shown(out_path)} ({writer.frames} frames)", highlight=False)
    if any(t.known for t in result.tracks):
        return 0
    tracks = result.tracks
    return EXIT_SPOOF if tracks and all(t.liveness is not None and not t.liveness.live for t in tracks) else 1


def watch(
    video: Annotated[
        str | None, typer.Argument(help="A video file, or a stream URL (rtsp://, http://, ...).", show_default=False)
    ] = None,
    camera: Annotated[int | None, typer.Option("--camera", help="Watch camera N instead (0: the first).")] = None,
    gallery: GalleryURLOpt = None,
    every: EveryOpt = 1,
    fps: FpsOpt = None,
    out_video: OutOpt = None,
    model: ModelOpt = "sface",
    flip: FlipOpt = False,
    fmr: FmrOpt = None,
    fpir: FpirOpt = None,
    liveness: LivenessOpt = "off",
    k: KOpt = 3,
    max_seconds: MaxSecondsOpt = None,
    as_json: JsonOpt = False,
    threads: ThreadsOpt = None,
) -> None:
    """Track and name the faces of a video, stream or camera; a live table, then the timeline (Ctrl-C stops)."""

    def body() -> int:
        if (video is None) == (camera is None):
            _fail("give a VIDEO (file or stream URL) or --camera N, one of them")
        source: str | int = camera if camera is not None else str(video)
        return run_video(
            source,
            gallery=gallery,
            model=model,
            flip=flip,
            every=every,
            fps=fps,
            fmr=fmr,
            fpir=fpir,
            liveness=liveness,
            k=k,
            out_path=out_video,
            max_seconds=max_seconds,
            as_json=as_json,
            threads=threads,
            live_view=True,
        )

    _run(body)
