"""The ``faceprint`` command line (Typer + Rich).

Results go to stdout (a table, or JSON with ``--json``); diagnostics to stderr. Exit codes:
0 success / match, 1 no match (verify: different people; identify: nobody known), 2 bad input
or any other faceprint error, always as a one-line message, never a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from .errors import FaceprintError
from .settings import Settings, current_settings
from .training import command as _train_command

app = typer.Typer(
    name="faceprint",
    help="Offline face recognition: detect, verify, enroll, identify, evaluate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
gallery_app = typer.Typer(help="Manage the persistent gallery.", no_args_is_help=True)
evaluate_app = typer.Typer(help="Evaluate models on standard protocols.", no_args_is_help=True)
dataset_app = typer.Typer(help="Inspect face data sets.", no_args_is_help=True)
app.add_typer(gallery_app, name="gallery")
app.add_typer(evaluate_app, name="evaluate")
app.add_typer(dataset_app, name="dataset")
# `faceprint train`: the command module imports torch only when the command runs
app.command("train")(_train_command.train)

out = Console()
err = Console(stderr=True)

T = TypeVar("T")

ModelOpt = Annotated[
    str,
    typer.Option(
        "--model", "-m", help="Embedder: sface, facenet, fusion (sface+facenet) or a model.json from `faceprint train`."
    ),
]
FlipOpt = Annotated[bool, typer.Option("--flip/--no-flip", help="Test-time flip augmentation.")]
DetectorOpt = Annotated[str, typer.Option("--detector", "-d", help="Detector: yunet or retinaface.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
FmrOpt = Annotated[
    str, typer.Option("--fmr", help="Operating point: 1e-2, 1e-3, 1e-4 or best_accuracy.")
]
GalleryOpt = Annotated[
    Path | None,
    typer.Option("--gallery", "-g", help="Gallery database (default: $FACEPRINT_GALLERY or ~/.local/share)."),
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
VIDEO_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".3gp"}
EXIT_SPOOF = 3


class _Exit(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


def _fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise _Exit(code)


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
    from .runtime import set_num_threads

    if threads is not None:
        set_num_threads(threads)


def _pipeline(model: str = "sface", flip: bool = False, detector: str = "yunet", threads: int | None = None) -> Any:
    from .embedding import get_embedder
    from .pipeline import FacePipeline

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
    from .liveness import Challenge, check_challenge

    result = check_challenge(video, Challenge.parse(challenge, time_limit_s=time_limit))
    for reason in result.reasons:
        err.print(f"[yellow]challenge:[/] {reason}", highlight=False)
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


def _open_gallery(path: Path | None, *, create: bool) -> Any:
    from .gallery import Gallery

    p = _gallery_path(path)
    if not create and not p.exists():
        _fail(f"no gallery at {p}; enroll someone first or pass --gallery")
    p.parent.mkdir(parents=True, exist_ok=True)
    return Gallery(p)


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


def _run(fn: Callable[[], int | None]) -> None:
    try:
        with _errors():
            code = fn()
    except _Exit as e:
        raise typer.Exit(e.code) from None
    raise typer.Exit(code or 0)


# --------------------------------------------------------------------------------------------
@app.command()
def detect(
    image: Annotated[Path, typer.Argument(help="Image file.")],
    draw: Annotated[Path | None, typer.Option("--draw", help="Write a copy with boxes and landmarks.")] = None,
    detector: DetectorOpt = "yunet",
    select: Annotated[str, typer.Option("--select", help="all, largest or central face.")] = "all",
    min_size: Annotated[float, typer.Option("--min-size", help="Minimum face size (pixels, shorter side).")] = 0.0,
    score: Annotated[
        float | None, typer.Option("--score", help="Detection score threshold (default: the detector's).")
    ] = None,
    as_json: JsonOpt = False,
    threads: ThreadsOpt = None,
) -> None:
    """Find faces and their 5 landmarks."""

    def body() -> int:
        from .detection import get_detector, select_faces
        from .io import load_image

        _set_threads(threads)
        if score is not None and not 0.0 <= score <= 1.0:
            _fail(f"--score must lie in [0, 1], got {score}")
        if select not in ("all", "largest", "central"):
            _fail(f"--select must be all, largest or central, got {select!r}")
        det = get_detector(detector) if score is None else get_detector(detector, score_threshold=score)
        img = load_image(image)
        dets = select_faces(det.detect(img), img.shape, select, min_face_size=min_size)  # type: ignore[arg-type]
        if draw is not None:
            _draw(img, dets, draw)
        if as_json:
            _print_json({"image": str(image), "faces": [d.to_dict() for d in dets]})
        else:
            table = Table(title=f"{len(dets)} face(s) in {image.name}")
            for col in ("#", "box (x1, y1, x2, y2)", "score", "size"):
                table.add_column(col)
            for i, d in enumerate(dets):
                box = ", ".join(f"{v:.0f}" for v in d.box)
                table.add_row(str(i), box, f"{d.score:.3f}", f"{d.width:.0f}x{d.height:.0f}")
            out.print(table)
        return 0 if dets else 1

    _run(body)


def _draw(img: Any, dets: list[Any], path: Path) -> None:
    import cv2

    canvas = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    thick = max(1, round(max(img.shape[:2]) / 400))
    colors = [(255, 0, 0), (0, 0, 255), (0, 255, 0), (255, 0, 255), (0, 255, 255)]
    for d in dets:
        x1, y1, x2, y2 = (round(v) for v in d.box)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), (0, 200, 0), thick)
        cv2.putText(canvas, f"{d.score:.2f}", (x1, max(0, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thick,
                    (0, 200, 0), thick)
        for (x, y), c in zip(d.landmarks, colors):
            cv2.circle(canvas, (round(x), round(y)), thick + 1, c, -1)
    try:
        written = cv2.imwrite(str(path), canvas)
    except cv2.error:
        written = False
    if not written:
        _fail(f"cannot write {path} (unknown image extension or unwritable folder)")


@app.command()
def verify(
    image_a: Annotated[Path, typer.Argument(help="First image.")],
    image_b: Annotated[Path, typer.Argument(help="Second image.")],
    model: ModelOpt = "sface",
    flip: FlipOpt = False,
    fmr: FmrOpt = "1e-3",
    liveness: LivenessOpt = "off",
    challenge_video: ChallengeVideoOpt = None,
    challenge: ChallengeOpt = None,
    time_limit: TimeLimitOpt = 10.0,
    as_json: JsonOpt = False,
    threads: ThreadsOpt = None,
) -> None:
    """1:1 verification: exit 0 if the same person, 1 if not, 3 if the probe (IMAGE_A) is not judged live."""

    def body() -> int:
        pipe = _pipeline(model, flip, threads=threads)
        live = _liveness_option(liveness, challenge_video, challenge, time_limit)
        res = pipe.verify(image_a, image_b, fmr=fmr, liveness=live)
        if as_json:
            _print_json(res.to_dict())
        else:
            verdict = {
                "match": "[bold green]same person[/]",
                "no_match": "[bold red]different people[/]",
                "spoof": "[bold red]spoof: the probe is not a live face[/]",
                "unsure": "[bold yellow]liveness unsure: not verified[/]",
            }[res.decision]
            tail = f", {_liveness_text(res.liveness)}" if res.liveness is not None else ""
            out.print(
                f"{verdict}  similarity {res.similarity:.4f}  (threshold {res.threshold:.4f} at FMR {res.fmr}, "
                f"model {res.model}{tail})",
                highlight=False,
            )
        return {"match": 0, "no_match": 1}.get(res.decision, EXIT_SPOOF)

    _run(body)


@app.command()
def enroll(
    name: Annotated[str, typer.Argument(help="Person's name.")],
    images: Annotated[list[Path], typer.Argument(help="One or more photos of that person.")],
    gallery: GalleryOpt = None,
    model: ModelOpt = "sface",
    flip: FlipOpt = False,
    strict: Annotated[bool, typer.Option("--strict", help="Refuse photos with several faces.")] = False,
    liveness: LivenessOpt = "off",
    challenge_video: ChallengeVideoOpt = None,
    challenge: ChallengeOpt = None,
    time_limit: TimeLimitOpt = 10.0,
    as_json: JsonOpt = False,
    threads: ThreadsOpt = None,
) -> None:
    """Enroll a person from one or more photos (all photos or none are stored); exit 3 if a photo is not live."""

    def body() -> int:
        from .enrollment import commit, prepare_enrollment

        pipe = _pipeline(model, flip, threads=threads)
        live = _liveness_option(liveness, challenge_video, challenge, time_limit)
        # embed (and check) every photo before touching the gallery: a bad photo leaves no trace
        prepared = prepare_enrollment(
            pipe, name, list(images), on_multiple="error" if strict else "largest", liveness=live
        )
        rejection = prepared.rejection
        if rejection is not None:
            if as_json:
                _print_json(rejection.to_dict())
            else:
                for src, lv in zip(rejection.sources, rejection.liveness):
                    colour = "green" if lv.live else "red"
                    out.print(f"  [{colour}]{lv.verdict}[/] {src}  ({_liveness_text(lv)})", highlight=False)
                out.print(f"[bold red]not enrolled:[/] {rejection.decision} (nothing was written)", highlight=False)
            return EXIT_SPOOF
        with _open_gallery(gallery, create=True) as g:
            subject = commit(prepared, g)
        if as_json:
            _print_json({"id": subject.id, "name": subject.name, "templates": subject.n_templates})
        else:
            out.print(f"enrolled [bold]{subject.name}[/] (id {subject.id}): {subject.n_templates} template(s)")
        return 0

    _run(body)


@app.command()
def identify(
    image: Annotated[Path, typer.Argument(help="Image with one or more faces.")],
    gallery: GalleryOpt = None,
    model: ModelOpt = "sface",
    flip: FlipOpt = False,
    k: Annotated[int, typer.Option("-k", help="Candidates per face.")] = 3,
    select: Annotated[
        str, typer.Option("--select", help="Faces to identify: all, largest or central (one with --challenge-video).")
    ] = "all",
    fmr: FmrOpt = "1e-3",
    classifier: Annotated[
        str, typer.Option("--classifier", help="nearest (best template), knn or svm (trained on the gallery).")
    ] = "nearest",
    liveness: LivenessOpt = "off",
    challenge_video: ChallengeVideoOpt = None,
    challenge: ChallengeOpt = None,
    time_limit: TimeLimitOpt = 10.0,
    as_json: JsonOpt = False,
    threads: ThreadsOpt = None,
) -> None:
    """1:N identification of every face; exit 1 when no face is recognised, 3 when every face is a spoof."""

    def body() -> int:
        from .classification import KNNFaceClassifier, SVMFaceClassifier, from_gallery

        makers = {"nearest": None, "knn": KNNFaceClassifier, "svm": SVMFaceClassifier}
        if classifier not in makers:
            _fail(f"--classifier must be one of {', '.join(makers)}, got {classifier!r}")
        if select not in ("all", "largest", "central"):
            _fail(f"--select must be all, largest or central, got {select!r}")
        pipe = _pipeline(model, flip, threads=threads)
        live = _liveness_option(liveness, challenge_video, challenge, time_limit)
        with _open_gallery(gallery, create=False) as g:
            maker = makers[classifier]
            clf = from_gallery(g, classifier=maker()) if maker is not None and len(g) > 0 else None
            results = pipe.identify(image, g, k=k, fmr=fmr, select=select, classifier=clf, liveness=live)
        if as_json:
            _print_json({"image": str(image), "faces": [r.to_dict() for r in results]})
        else:
            table = Table(title=f"{len(results)} face(s) in {image.name}")
            for col in ("face", "identity", "similarity", "candidates"):
                table.add_column(col)
            for i, r in enumerate(results):
                best = r.matches[0].similarity if r.matches else float("nan")
                if r.probabilities:
                    cands = ", ".join(f"{n} p={p:.2f}" for n, p in r.probabilities)
                else:
                    cands = ", ".join(f"{m.name} {m.similarity:.3f}" for m in r.matches)
                style = "green" if r.known else "red"
                if r.liveness is not None:
                    cands = f"{cands} ({_liveness_text(r.liveness)})" if cands else _liveness_text(r.liveness)
                table.add_row(str(i), f"[{style}]{r.name}[/]", f"{best:.3f}", cands)
            out.print(table)
        if any(r.known for r in results):
            return 0
        return EXIT_SPOOF if results and all(r.liveness is not None and not r.liveness.live for r in results) else 1

    _run(body)


@gallery_app.command("list")
def gallery_list(gallery: GalleryOpt = None, as_json: JsonOpt = False) -> None:
    """List enrolled subjects."""

    def body() -> int:
        with _open_gallery(gallery, create=False) as g:
            subjects = g.subjects()
            fp = g.fingerprint
        if as_json:
            _print_json(
                {"model": fp, "subjects": [{"id": s.id, "name": s.name, "templates": s.n_templates,
                                            "created_at": s.created_at} for s in subjects]}
            )
        else:
            table = Table(title=f"{len(subjects)} subject(s), model {fp}")
            for col in ("id", "name", "templates", "enrolled"):
                table.add_column(col)
            for s in subjects:
                table.add_row(str(s.id), s.name, str(s.n_templates), s.created_at)
            out.print(table)
        return 0

    _run(body)


@gallery_app.command("remove")
def gallery_remove(
    name: Annotated[str, typer.Argument(help="Subject name or id.")], gallery: GalleryOpt = None
) -> None:
    """Delete a subject and all its templates."""

    def body() -> int:
        with _open_gallery(gallery, create=False) as g:
            n = g.remove(_name_or_id(name))
        out.print(f"removed {name} ({n} template(s) erased)")
        return 0

    _run(body)


@gallery_app.command("rename")
def gallery_rename(
    name: Annotated[str, typer.Argument(help="Current name or id.")],
    new_name: Annotated[str, typer.Argument(help="New name.")],
    gallery: GalleryOpt = None,
) -> None:
    """Rename a subject."""

    def body() -> int:
        with _open_gallery(gallery, create=False) as g:
            s = g.rename(_name_or_id(name), new_name)
        out.print(f"renamed {name} -> {s.name}")
        return 0

    _run(body)


def _name_or_id(value: str) -> str | int:
    return int(value) if value.isdigit() else value


@evaluate_app.command("lfw")
def evaluate_lfw(
    model: Annotated[
        list[str] | None,
        typer.Option("--model", "-m", help="Embedder(s): sface, facenet, fusion; repeat to compare side by side."),
    ] = None,
    flip: FlipOpt = False,
    detector: DetectorOpt = "yunet",
    pairs: Annotated[str, typer.Option("--pairs", help="pairs.txt (view 2), pairsDevTest.txt, ...")] = "pairs.txt",
    data: Annotated[Path | None, typer.Option("--data", help="Dataset root (default $FACEPRINT_DATA).")] = None,
    folds: Annotated[int | None, typer.Option("--folds", help="Only the first N folds (quick check).")] = None,
    report_dir: Annotated[
        Path | None, typer.Option("--report", help="Write report.html and report.json (plots) to DIR.")
    ] = None,
    identification: Annotated[
        bool, typer.Option("--identification", help="Also run 1-shot identification (CMC in the report).")
    ] = False,
    max_identities: Annotated[
        int | None, typer.Option("--max-identities", help="With --identification: random subset of people.")
    ] = None,
    as_json: JsonOpt = False,
    threads: ThreadsOpt = None,
) -> None:
    """LFW verification protocol: 10-fold accuracy, ROC AUC, TAR at FMR (several models side by side)."""

    def body() -> int:
        from .datasets import data_root
        from .evaluation.lfw import run_lfw_protocol
        from .evaluation.report import build_report
        from .evaluation.report_html import write_report

        root = data if data is not None else data_root(required=True)
        runs = []
        for name in model or ["sface"]:
            pipe = _pipeline(name, flip, detector, threads)
            key = str(getattr(pipe.embedder, "key", name))
            with _progress() as prog:

                def stage(what: str, total: int) -> Any:
                    task = prog.add_task(f"embedding LFW {what} ({key})", total=total)  # noqa: B023
                    return lambda n: prog.advance(task, n)  # noqa: B023

                run = run_lfw_protocol(
                    pipe,
                    Path(root),
                    pairs_file=pairs,
                    folds=folds,
                    identification=identification,
                    max_identities=max_identities,
                    gender_bias=report_dir is not None,  # at the model's calibrated FMR 1e-3 threshold
                    stage=stage,
                )
            if run.gender_bias_error is not None:
                err.print(
                    f"[yellow]warning:[/] no gender bias section for {key}: {run.gender_bias_error}", highlight=False
                )
            runs.append(run)
        results = [r.to_dict() for r in runs]
        if report_dir is not None:
            bias = [r.gender_bias for r in runs if r.gender_bias is not None]
            report = build_report([r.model_scores() for r in runs], title=f"LFW {pairs}", bias=bias)
            _, html_path = write_report(report, report_dir)
            err.print(f"report: {html_path}", highlight=False)
        if as_json:
            _print_json(results[0] if len(results) == 1 else {"models": results})
            return 0
        table = Table(title=f"LFW {pairs}")
        table.add_column("metric")
        for d in results:
            table.add_column(d["model"], justify="right")
        n_folds = len(results[0]["fold_accuracies"])
        rows = [
            (f"accuracy ({n_folds}-fold)" if n_folds > 1 else "accuracy (DevTrain threshold)",
             lambda d: f"{100 * d['accuracy']:.2f} ± {100 * d['accuracy_std']:.2f} %"),
            ("ROC AUC", lambda d: f"{d['auc']:.5f}"),
            ("EER", lambda d: f"{100 * d['eer']:.2f} %"),
            ("TAR @ FMR 1e-2", lambda d: f"{100 * d['tar_at_fmr_1e-2']:.2f} %"),
            ("TAR @ FMR 1e-3", lambda d: f"{100 * d['tar_at_fmr_1e-3']:.2f} %"),
            ("pairs", lambda d: str(d["n_pairs"])),
            ("failures to acquire (pairs)", lambda d: str(d["failures_to_acquire"])),
        ]
        for label, fmt in rows:
            table.add_row(label, *(fmt(d) for d in results))
        out.print(table)
        return 0

    _run(body)


@evaluate_app.command("bias")
def evaluate_bias_cmd(
    model: Annotated[
        list[str] | None,
        typer.Option("--model", "-m", help="Embedder(s): sface, facenet, fusion; repeat for several."),
    ] = None,
    detector: DetectorOpt = "yunet",
    data: Annotated[Path | None, typer.Option("--data", help="Dataset root (default $FACEPRINT_DATA).")] = None,
    max_images: Annotated[
        int | None, typer.Option("--max-images", help="Seeded random sample of UTKFace images (quick run).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Sample and bootstrap seed.")] = 0,
    n_boot: Annotated[int, typer.Option("--n-boot", help="Bootstrap resamples per group.")] = 1000,
    report_dir: Annotated[
        Path | None, typer.Option("--report", help="Write report.html and report.json (bias sections) to DIR.")
    ] = None,
    as_json: JsonOpt = False,
    threads: ThreadsOpt = None,
) -> None:
    """UTKFace bias: impostor FMR and detection failure rate per race x gender cell and age band.

    Rates are measured at each model's calibrated FMR 1e-3 threshold (the global operating point).
    UTKFace has no identity labels: every cross pair inside a group is treated as an impostor pair.
    """

    def body() -> int:
        from .datasets import data_root
        from .evaluation.report import build_report
        from .evaluation.report_html import write_report
        from .evaluation.utkface import evaluate_bias

        if max_images is not None and max_images < 2:
            _fail(f"--max-images must be >= 2, got {max_images}")
        if n_boot < 1:
            _fail(f"--n-boot must be >= 1, got {n_boot}")
        root = data if data is not None else data_root(required=True)
        with _progress() as prog:

            def stage(key: str, total: int) -> Any:
                task = prog.add_task(f"embedding UTKFace images ({key})", total=total)
                return lambda n: prog.advance(task, n)

            res = evaluate_bias(
                (_pipeline(name, False, detector, threads) for name in model or ["sface"]),
                Path(root),
                max_images=max_images,
                seed=seed,
                n_boot=n_boot,
                stage=stage,
            )
        if report_dir is not None:
            _, html_path = write_report(build_report([], title=res.title, bias=res.sections), report_dir)
            err.print(f"report: {html_path}", highlight=False)
        result = res.to_dict()
        if as_json:
            _print_json(result)
            return 0
        summary = result["models"]
        table = Table(title=f"UTKFace bias: worst / best group ({res.images} images, FMR 1e-3 threshold)")
        for col in ("model", "section", "ratio", "worst", "best"):
            table.add_column(col, justify="left" if col != "ratio" else "right")
        for m in summary:
            for sec in m["sections"]:
                for r in sec["ratios"]:
                    if r["ratio"] is None:
                        ratio = r["status"]
                    else:
                        ratio = f"{r['ratio']:.2f}" + (" (lower bound)" if r["floored"] else "")
                    table.add_row(m["model"], sec["title"], ratio, str(r["worst"] or "-"), str(r["best"] or "-"))
        out.print(table)
        out.print("Every cross pair inside a group is treated as an impostor pair (UTKFace has no identities).")
        for m in summary:
            for sec in m["sections"]:
                for sentence in sec["sentences"]:
                    out.print(f"{m['model']}: {sentence}", highlight=False)
        return 0

    _run(body)


@evaluate_app.command("identification")
def evaluate_identification_cmd(
    model: ModelOpt = "sface",
    flip: FlipOpt = False,
    n_shot: Annotated[list[int] | None, typer.Option("--n-shot", "-n", help="Gallery images per person.")] = None,
    method: Annotated[str, typer.Option("--method", help="template, knn or svm.")] = "template",
    seed: Annotated[int, typer.Option("--seed", help="Random split seed.")] = 0,
    max_identities: Annotated[
        int | None, typer.Option("--max-identities", help="Random subset of LFW people (quick run).")
    ] = None,
    data: Annotated[Path | None, typer.Option("--data", help="Dataset root (default $FACEPRINT_DATA).")] = None,
    as_json: JsonOpt = False,
    threads: ThreadsOpt = None,
) -> None:
    """LFW N-shot identification: rank-1 / rank-5 (CMC) and DIR at FPIR 0.01 / 0.1."""

    def body() -> int:
        from .datasets import data_root
        from .evaluation.lfw import evaluate_lfw_identification

        if method not in ("template", "knn", "svm"):
            _fail(f"--method must be template, knn or svm, got {method!r}")
        root = data if data is not None else data_root(required=True)
        pipe = _pipeline(model, flip, threads=threads)
        with _progress() as prog:
            task = prog.add_task("embedding LFW images", total=None)
            reports, failures = evaluate_lfw_identification(
                pipe,
                Path(root),
                n_shots=n_shot or [1, 2, 5],
                method=method,
                seed=seed,
                max_identities=max_identities,
                progress=lambda n: prog.advance(task, n),
                n_images=lambda n: prog.update(task, total=n),
            )
        rows = [r.to_dict() for r in reports]
        if as_json:
            _print_json({"failures_to_acquire": failures, "reports": rows})
        else:
            table = Table(title=f"LFW identification: {getattr(pipe.embedder, 'key', model)}, {method}, seed {seed}")
            for col in ("N", "people", "mated", "non-mated", "rank-1", "rank-5", "DIR@FPIR 0.01", "DIR@FPIR 0.1"):
                table.add_column(col, justify="right")
            for r in rows:
                d = r["dir_at_fpir"]
                table.add_row(
                    str(r["n_shot"]), str(r["n_identities"]), str(r["n_mated"]), str(r["n_nonmated"]),
                    f"{100 * r['rank1']:.2f} %", f"{100 * r['rank5']:.2f} %",
                    f"{100 * d['0.01']:.2f} %", f"{100 * d['0.1']:.2f} %",
                )
            out.print(table)
            out.print(f"failures to acquire: {failures} image(s)")
        return 0

    _run(body)


@evaluate_app.command("liveness")
def evaluate_liveness_cmd(
    directory: Annotated[
        Path | None,
        typer.Argument(
            help="NUAA-style ClientRaw/ + ImposterRaw/, or live/ next to one folder per attack type "
            "(images and/or videos). Default: $FACEPRINT_DATA/nuaa."
        ),
    ] = None,
    as_json: JsonOpt = False,
    threads: ThreadsOpt = None,
) -> None:
    """Passive PAD on a labelled folder: APCER per attack type, BPCER, ACER, EER, BPCER@APCER, failures to acquire.

    The shipped model was trained on all of the shared NUAA subset: on that folder these are
    training-set numbers. The held-out (leave-one-subject-out) numbers come from bench/liveness.py.
    """

    def body() -> int:
        from .datasets import data_root, nuaa_dir
        from .liveness import evaluate_liveness_dir

        _set_threads(threads)
        root = directory
        if root is None:
            root = nuaa_dir(data_root(required=True))
        with _progress() as prog:
            prog.add_task(f"scoring {root}", total=None)
            res = evaluate_liveness_dir(root)
        if as_json:
            _print_json(res)
            return 0
        fta = res["fta"]
        m = res.get("metrics") or res
        table = Table(title=f"PAD on {root} (ISO/IEC 30107-3)")
        table.add_column("metric")
        table.add_column("value", justify="right")
        counts = ", ".join(f"{k} {v}" for k, v in res.get("n", {}).items())
        table.add_row("samples", counts)
        table.add_row("failures to acquire", f"{fta['count']} ({100 * fta['rate']:.2f} %)")
        if res.get("metrics") is None and "apcer" not in res:
            out.print(table)
            out.print("[yellow]no error rates: need acquired samples of both classes[/]")
            return 1
        for kind, v in m["apcer"].items():
            table.add_row(f"APCER {kind}", f"{100 * v:.2f} %")
        table.add_row("BPCER", f"{100 * m['bpcer']:.2f} %")
        table.add_row("ACER", f"{100 * m['acer']:.2f} %")
        table.add_row("EER", f"{100 * m['eer']:.2f} %")
        table.add_row("BPCER @ APCER 5 %", f"{100 * m['bpcer_at_apcer_5pct']:.2f} %")
        table.add_row("BPCER @ APCER 1 %", f"{100 * m['bpcer_at_apcer_1pct']:.2f} %")
        table.add_row("threshold", f"{m['threshold']:.3f}")
        out.print(table)
        for f in fta.get("files", [])[:10]:
            err.print(f"[yellow]not acquired:[/] {f['file']} ({f['reason']})", highlight=False)
        return 0

    _run(body)


@app.command()
def cluster(
    directory: Annotated[Path, typer.Argument(help="Folder of photos (searched recursively).")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Where clusters.csv and index.html go.")] = Path(
        "faceprint-clusters"
    ),
    model: ModelOpt = "sface",
    flip: FlipOpt = False,
    method: Annotated[str, typer.Option("--method", help="agglomerative, dbscan or hdbscan.")] = "agglomerative",
    threshold: Annotated[
        float | None, typer.Option("--threshold", help="Cosine-distance cut (default: 1 - threshold at FMR 1e-4).")
    ] = None,
    min_size: Annotated[int, typer.Option("--min-size", help="Smallest group reported as a cluster.")] = 2,
    as_json: JsonOpt = False,
    threads: ThreadsOpt = None,
) -> None:
    """Group the faces of a folder of photos by person; writes a CSV and an HTML contact sheet."""

    def body() -> int:
        from .clustering import cluster_directory

        if not directory.is_dir():
            _fail(f"{directory}: not a folder")
        if method not in ("agglomerative", "dbscan", "hdbscan"):
            _fail(f"--method must be agglomerative, dbscan or hdbscan, got {method!r}")
        pipe = _pipeline(model, flip, threads=threads)
        with _progress() as prog:
            task = prog.add_task("embedding faces", total=None)
            res = cluster_directory(
                directory,
                pipe,
                out_dir=out_dir,
                method=method,  # type: ignore[arg-type]
                threshold=threshold,
                min_cluster_size=min_size,
                progress=lambda n: prog.advance(task, n),
                n_files=lambda n: prog.update(task, total=n),
            )
        groups = res.clusters()
        if as_json:
            _print_json({
                "clusters": [[{"path": str(i.path), "face": i.face_index} for i in g] for g in groups],
                "unclustered": int((res.labels < 0).sum()),
                "failures": [{"path": str(f.path), "reason": f.reason} for f in res.failures],
                "threshold": res.threshold,
                "csv": str(res.csv_path),
                "html": str(res.html_path),
            })
        else:
            table = Table(title=f"{res.n_clusters} cluster(s) of {len(res.items)} face(s), cut {res.threshold:.3f}")
            for col in ("cluster", "faces", "photos"):
                table.add_column(col)
            for i, g in enumerate(groups):
                names = ", ".join(sorted({it.path.name for it in g})[:4]) + (" ..." if len(g) > 4 else "")
                table.add_row(str(i), str(len(g)), names)
            out.print(table)
            out.print(
                f"unclustered faces: {int((res.labels < 0).sum())}; files without a face / unreadable: "
                f"{len(res.failures)}; wrote {res.csv_path} and {res.html_path}"
            )
        return 0

    _run(body)


@dataset_app.command("stats")
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
        from .datasets import dataset_stats

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
            table = Table(title=f"dataset {directory}")
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
                        sub.add_row(str(k), str(v))
                    out.print(sub)
        for w in stats.warnings:
            err.print(f"[yellow]warning:[/] {w}", highlight=False)
        return 0

    _run(body)


@app.command()
def liveness(
    source: Annotated[Path, typer.Argument(help="An image or a video (mp4, mov, avi, mkv, webm) with one face.")],
    challenge: Annotated[
        str | None,
        typer.Option(
            "--challenge",
            help='Video only: actions it must show in order, e.g. "blink,turn_left" or "blink:2" '
            "(see `faceprint challenge`).",
        ),
    ] = None,
    time_limit: TimeLimitOpt = 10.0,
    as_json: JsonOpt = False,
    threads: ThreadsOpt = None,
) -> None:
    """Liveness of an image (passive) or a video (passive on frames, or an active challenge); exit 0 live, 1 not."""

    def body() -> int:
        from .io import load_image

        _set_threads(threads)
        is_video = source.suffix.lower() in VIDEO_SUFFIXES
        if challenge and not is_video:
            _fail(f"--challenge needs a video ({', '.join(sorted(VIDEO_SUFFIXES))}), got {source.name}")
        payload: dict[str, Any]
        if challenge:
            from .liveness import Challenge, check_challenge, check_video_replay, read_video

            parsed = Challenge.parse(challenge, time_limit_s=time_limit)
            video = read_video(source)  # decoded once (15 fps, as the challenge analysis reads a path)
            result = check_challenge(video, parsed)
            # the replay cue is shown beside the challenge; the challenge alone decides (the cue is a
            # heuristic set on five clips: see check_video_replay)
            cue = check_video_replay(video)
            res = result.liveness
            a = result.analysis
            payload = {
                **res.to_dict(),
                "challenge": list(result.challenge.actions),
                "time_limit_s": result.challenge.time_limit_s,
                "passed": result.passed,
                "matched": [
                    {"action": e.action, "start_s": round(e.start_s, 3), "end_s": round(e.end_s, 3)}
                    for e in result.matched
                ],
                "events": [
                    {"action": e.action, "start_s": round(e.start_s, 3), "end_s": round(e.end_s, 3)} for e in a.events
                ],
                "reasons": list(result.reasons),
                "frames": a.n_frames,
                "frames_without_face": a.n_no_face,
                "replay_cue": cue.to_dict(),
            }
        elif is_video:
            # The NUAA-trained LBP model scores both shared phone replays live, so the video verdict
            # is the replay cue (a heuristic: see check_video_replay); the LBP score is reported beside it.
            from .liveness import check_video_passive, check_video_replay, read_video

            video = read_video(source, target_fps=None, max_seconds=30.0)  # decoded once, sampled by both
            res = check_video_replay(video)
            payload = {**res.to_dict(), "passive_lbp": check_video_passive(video).to_dict()}
        else:
            from .liveness import default_passive_checker

            res = default_passive_checker().score(load_image(source))
            payload = res.to_dict()
        if as_json:
            _print_json(payload)
        else:
            colour = {"live": "green", "spoof": "red"}.get(res.verdict, "yellow")
            meaning = "probability of a live face, " if res.method == "lbp-svm" else ""
            out.print(f"[{colour}]{res.verdict}[/]  score {res.score:.4f} ({meaning}{res.method})", highlight=False)
            if "passive_lbp" in payload:
                lbp = payload["passive_lbp"]
                out.print(f"  LBP print-attack model on frames: {lbp['verdict']} ({lbp['score']:.3f})", highlight=False)
            if challenge:
                out.print(f"challenge {', '.join(payload['challenge'])}: {'passed' if payload['passed'] else 'failed'}")
                for e in payload["events"]:
                    out.print(f"  {e['action']:<11} {e['start_s']:6.2f}-{e['end_s']:6.2f} s", highlight=False)
                for reason in payload["reasons"]:
                    out.print(f"  [yellow]{reason}[/]", highlight=False)
                rc = payload["replay_cue"]
                out.print(
                    f"  screen-replay cue (heuristic, not deciding): {rc['verdict']} ({rc['score']:.3f})",
                    highlight=False,
                )
        return 0 if res.verdict == "live" else 1

    _run(body)


@app.command("challenge")
def new_challenge(
    actions: Annotated[int, typer.Option("--actions", "-n", help="Number of actions.")] = 2,
    time_limit: TimeLimitOpt = 10.0,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed (default: fresh randomness).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Issue a random active-liveness challenge; pass its text to `liveness VIDEO --challenge`."""

    def body() -> int:
        from .liveness import issue_challenge

        ch = issue_challenge(actions, rng=seed, time_limit_s=time_limit)
        text = ",".join(ch.actions)
        if as_json:
            _print_json({"challenge": text, "actions": list(ch.actions), "time_limit_s": ch.time_limit_s})
        else:
            out.print(text, highlight=False)
        return 0

    _run(body)


_ROLES = {"face_landmarker": "liveness landmarks"}


@app.command()
def models(as_json: JsonOpt = False) -> None:
    """Installed models, their packages, weight licences and calibrated thresholds."""

    def body() -> int:
        from .embedding import EMBEDDERS, get_embedder
        from .weights import WEIGHT_FILES, installed_version, is_installed

        rows: list[dict[str, Any]] = []
        for key, wf in WEIGHT_FILES.items():
            thresholds: dict[str, float] = {}
            if key in EMBEDDERS:
                thresholds = dict(get_embedder(key).thresholds)
            rows.append({
                "model": key,
                "role": "embedder" if key in EMBEDDERS else _ROLES.get(key, "detector"),
                "description": wf.description,
                "package": wf.distribution,
                "pinned": wf.version,
                "installed": installed_version(key) if is_installed(key) else None,
                "sha256": wf.sha256,
                "licence": wf.licence,
                "source": wf.source,
                "thresholds": thresholds,
                "install": wf.install_hint,
            })
        if as_json:
            _print_json(rows)
        else:
            table = Table(title="faceprint models (nothing is downloaded; files come from these packages)")
            for col in ("model", "role", "package", "installed", "weights licence", "threshold @FMR 1e-3"):
                table.add_column(col, overflow="fold")
            for r in rows:
                thr = r["thresholds"].get("1e-3")
                table.add_row(
                    r["model"], r["role"], f"{r['package']}=={r['pinned']}",
                    r["installed"] or f"[red]no[/] ({r['install']})", r["licence"],
                    f"{thr:.4f}" if thr is not None else "-",
                )
            out.print(table)
        return 0

    _run(body)


@app.command()
def demo(
    gallery: GalleryOpt = None,
    threads: ThreadsOpt = None,
) -> None:
    """Enroll people from bundled sample photos, identify altered copies, reject a stranger."""

    def body() -> int:
        from .demo import run_demo

        console = out if out.is_terminal else Console(width=120)
        ok = run_demo(console, gallery=gallery, threads=threads)
        return 0 if ok else 1

    _run(body)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
