"""What every command shares: consoles, options, error mapping, progress bars, pipeline and gallery set-up."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from typer.core import TyperCommand, TyperGroup

from ..errors import FaceprintError
from ..settings import Settings, current_settings

if TYPE_CHECKING:
    from ..gallery import GalleryBackend

out = Console()
err = Console(stderr=True)
ModelOpt = Annotated[
    str,
    typer.Option(
        "--model", "-m", help="Embedder: sface, facenet, fusion (sface+facenet) or a model.json from `faceprint train`."
    ),
]
FlipOpt = Annotated[bool, typer.Option("--flip/--no-flip", help="Test-time flip augmentation.")]
DetectorOpt = Annotated[str, typer.Option("--detector", "-d", help="Detector: yunet or retinaface.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def fmr_text(value: str | None) -> str | None:
    """An ``--fmr`` value in the calibration's spelling (:func:`faceprint.thresholds.operating_point_key`).

    Examples
    --------
    >>> [fmr_text(v) for v in ("0.001", "1E-3", "1e-03", ".01", "best_accuracy", "5e-4")]
    ['1e-3', '1e-3', '1e-3', '1e-2', 'best_accuracy', '5e-4']
    """
    from ..thresholds import operating_point_key

    return operating_point_key(value)


FmrOpt = Annotated[
    str, typer.Option("--fmr", help="Operating point: 1e-2, 1e-3, 1e-4 or best_accuracy.", callback=fmr_text)
]
GalleryOpt = Annotated[
    Path | None,
    typer.Option("--gallery", "-g", help="Gallery database (default: $FACEPRINT_GALLERY or ~/.local/share)."),
]
GalleryURLOpt = Annotated[
    str | None,
    typer.Option(
        "--gallery", "-g",
        help="Gallery: a database path, or a URL (sqlite:///people.db, milvus://HOST:19530/COLLECTION, "
        "milvus-lite:///people.db); default: $FACEPRINT_GALLERY or ~/.local/share.",
    ),
]
ThreadsOpt = Annotated[int | None, typer.Option("--threads", help="CPU threads for inference.")]
LivenessOpt = Annotated[
    str,
    typer.Option(
        "--liveness",
        help="Presentation-attack check of the probe face: off, or passive (the shipped NUAA print-attack model).",
    ),
]
ChallengeVideoOpt = Annotated[
    Path | None,
    typer.Option("--challenge-video", help="A video of the probe person answering --challenge (active liveness)."),
]
ChallengeOpt = Annotated[
    str | None,
    typer.Option("--challenge", help='Actions the video must show, in order: e.g. "blink,turn_left" or "blink:2".'),
]
TimeLimitOpt = Annotated[float, typer.Option("--time-limit", help="Seconds allowed for the whole challenge.")]
EXIT_SPOOF = 3


def _no_flag_types(params: list[Any]) -> list[Any]:
    """On/off options (and ``--help``) take no value: no ``<bool>`` after them in ``--help``."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class Command(TyperCommand):
    """Every faceprint command: its flags show no value type in ``--help``."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _no_flag_types(super().get_params(ctx))


class Group(TyperGroup):
    """Every faceprint command group (``faceprint``, ``faceprint gallery`` ...), as :class:`Command`."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _no_flag_types(super().get_params(ctx))


class _Exit(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


def _fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(_one_line(message))}", highlight=False, soft_wrap=True)
    raise _Exit(code)


def _one_line(text: str) -> str:
    """``text`` on one line and printable on any UTF-8 output: control characters (a newline in a
    name or a path) as escapes, and the bytes of a non-UTF-8 file name as ``\\xe9``."""
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(ascii(c)[1:-1] if unicodedata.category(c) == "Cc" else c for c in text)


def shown(text: object) -> str:
    """User text (a name, a path) for a Rich markup string: literal, on one line, printable."""
    return escape(_one_line(str(text)))


@contextmanager
def _errors() -> Iterator[None]:
    """Turn faceprint errors and unreadable files (``OSError``) into a one-line message and exit code 2.

    Nothing else is caught: every error raised for bad input is a :class:`FaceprintError`, so any
    other exception is a bug and shows its traceback.
    """
    try:
        yield
    except _Exit:
        raise
    except FaceprintError as e:
        _fail(str(e))
    except OSError as e:
        _fail(f"{type(e).__name__}: {e}")


def _set_threads(threads: int | None) -> None:
    from ..runtime import set_num_threads

    if threads is not None:
        set_num_threads(threads)


def _pipeline(model: str = "sface", flip: bool = False, detector: str = "yunet", threads: int | None = None) -> Any:
    from ..embedding import get_embedder
    from ..pipeline import FacePipeline

    _set_threads(threads)
    embedder = get_embedder(model, flip=flip)
    return FacePipeline(detector=detector, embedder=embedder)


def _liveness_option(liveness: str, video: Path | None, challenge: str | None, time_limit: float = 10.0) -> Any:
    """The ``liveness=`` value for the pipeline from the CLI options (a challenge result for a video)."""
    if liveness not in ("off", "passive"):
        _fail(f"--liveness must be off or passive, got {liveness!r}")
    if video is None:
        if challenge:
            _fail("--challenge needs --challenge-video (the video that answers it)")
        return liveness
    if not challenge:
        _fail("--challenge-video needs --challenge (the actions it must show)")
    if liveness != "off":
        _fail("use either --liveness passive or --challenge-video, not both")
    from ..liveness import Challenge, check_challenge

    result = check_challenge(video, Challenge.parse(challenge, time_limit_s=time_limit))
    for reason in result.reasons:
        err.print(f"[yellow]challenge:[/] {escape(reason)}", highlight=False)
    return result


def _liveness_text(lv: Any) -> str:
    return f"liveness {lv.verdict} (score {lv.score:.3f}, {lv.method})"


def _settings() -> Settings:
    """The settings of this invocation (read from the environment, which CliRunner(env=...) sets)."""
    return current_settings()


def _gallery_path(path: Path | None, settings: Settings | None = None) -> Path:
    if path is not None:
        return path
    return (_settings() if settings is None else settings).gallery_path()


def _open_gallery(path: str | Path | None, *, create: bool) -> GalleryBackend:
    """The gallery of ``--gallery`` (a path or a URL; default :meth:`Settings.gallery_path`), via
    :func:`open_gallery`."""
    from ..gallery import open_gallery

    if isinstance(path, str) and "://" in path:
        return open_gallery(path)
    p = _gallery_path(None if path is None else Path(path))
    if not create and not p.exists():
        _fail(f"no gallery at {p}; enroll someone first or pass --gallery")
    p.parent.mkdir(parents=True, exist_ok=True)
    return open_gallery(p)


def _print_json(data: object) -> None:
    out.print_json(json.dumps(data))


def _progress(settings: Settings | None = None) -> Progress:
    settings = _settings() if settings is None else settings
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal and not settings.progress,
    )


PIPED_WIDTH = 10_000
"""The line width of output that goes to a file or another program: tables and messages are not
wrapped at 80 columns there (a terminal keeps its own width; ``COLUMNS`` still wins)."""


def _unwrap_when_piped() -> None:
    for console in (out, err):
        if not console.is_terminal and getattr(console, "_width", None) is None:
            console.width = PIPED_WIDTH


def _run(fn: Callable[[], int | None]) -> None:
    _unwrap_when_piped()
    try:
        with _errors():
            code = fn()
    except _Exit as e:
        raise typer.Exit(e.code) from None
    raise typer.Exit(code or 0)
