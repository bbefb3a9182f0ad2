"""`faceprint detect | verify | enroll | identify | cluster | demo`: parse, one library call, render."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from .common import (
    EXIT_SPOOF,
    ChallengeOpt,
    ChallengeVideoOpt,
    DetectorOpt,
    FlipOpt,
    FmrOpt,
    GalleryOpt,
    GalleryURLOpt,
    JsonOpt,
    LivenessOpt,
    ModelOpt,
    ThreadsOpt,
    TimeLimitOpt,
    _fail,
    _liveness_option,
    _liveness_text,
    _open_gallery,
    _pipeline,
    _print_json,
    _progress,
    _run,
    _set_threads,
    err,
    fmr_text,
    out,
    shown,
)

if TYPE_CHECKING:
    from ..detection import OneFace

OneFaceOpt = Annotated[
    str, typer.Option("--select", help="Face of each image: largest, central, or error (exactly one required).")
]


def _one_face(select: str) -> OneFace:
    """``--select`` of a command that uses one face per image, checked."""
    from ..detection import ONE_FACE

    if select not in ONE_FACE:
        _fail(f"--select must be largest, central or error, got {select!r}")
    return cast("OneFace", select)


def detect(
    image: Annotated[Path, typer.Argument(help="Image file.")],
    draw: Annotated[Path | None, typer.Option("--draw", help="Write a copy with boxes and landmarks.")] = None,
    detector: DetectorOpt = "yunet",
    select: Annotated[
        str, typer.Option("--select", help="all, largest or central face, or error (exactly one face required).")
    ] = "all",
    min_size: Annotated[float, typer.Option("--min-size", help="Minimum face size (pixels, shorter side).")] = 0.0,
    score: Annotated[
        float | None, typer.Option("--score", help="Detection score threshold (default: the detector's).")
    ] = None,
    as_json: JsonOpt = False,
    threads: ThreadsOpt = None,
) -> None:
    """Find faces and their 5 landmarks."""

    def body() -> int:
        from ..detection import SELECTIONS, get_detector, select_faces
        from ..io import load_image

        _set_threads(threads)
        if score is not None and not 0.0 <= score <= 1.0:
            _fail(f"--score must lie in [0, 1], got {score}")
        if select not in SELECTIONS:
            _fail(f"--select must be all, largest, central or error, got {select!r}")
        det = get_detector(detector) if score is None else get_detector(detector, score_threshold=score)
        img = load_image(image)
        dets = select_faces(
            det.detect(img), img.shape, select, min_face_size=min_size, what=str(image)  # type: ignore[arg-type]
        )
        if draw is not None:
            _draw(img, dets, draw)
        if as_json:
            _print_json({"image": str(image), "faces": [d.to_dict() for d in dets]})
        else:
            if not dets:
                out.print(f"0 face(s) in {shown(image.name)}: no face found", highlight=False)
                return 1
            table = _titled_table(f"{len(dets)} face(s) in {shown(image.name)}")
            for col in ("#", "box (x1, y1, x2, y2)", "score", "size"):
                table.add_column(col)
            for i, d in enumerate(dets):
                box = ", ".join(f"{v:.0f}" for v in d.box)
                table.add_row(str(i), box, f"{d.score:.3f}", f"{d.width:.0f}x{d.height:.0f}")
            out.print(table)
        return 0 if dets else 1

    _run(body)


def _titled_table(title: str) -> Table:
    """A table at least as wide as its title, so a long file name in the title is not wrapped."""
    return Table(title=title, min_width=len(Text.from_markup(title).plain) + 2)


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


def verify(
    image_a: Annotated[Path, typer.Argument(help="First image.")],
    image_b: Annotated[Path, typer.Argument(help="Second image.")],
    model: ModelOpt = "sface",
    flip: FlipOpt = False,
    fmr: FmrOpt = "1e-3",
    select: OneFaceOpt = "largest",
    liveness: LivenessOpt = "off",
    challenge_video: ChallengeVideoOpt = None,
    challenge: ChallengeOpt = None,
    time_limit: TimeLimitOpt = 10.0,
    as_json: JsonOpt = False,
    threads: ThreadsOpt = None,
    score_norm: Annotated[
        str | None,
        typer.Option("--score-norm", help="Opt-in score normalisation (s-norm or fsn; sface only): decide on the "
                     "normalised score at its own threshold. Default: the raw cosine."),
    ] = None,
) -> None:
    """1:1 verification: exit 0 if the same person, 1 if not, 3 if the probe (IMAGE_A) is not judged live."""

    def body() -> int:
        one = _one_face(select)
        pipe = _pipeline(model, flip, threads=threads)
        if score_norm is not None:
            from dataclasses import replace

            pipe = replace(pipe, score_norm=score_norm)
        live = _liveness_option(liveness, challenge_video, challenge, time_limit)
        res = pipe.verify(image_a, image_b, select=one, fmr=fmr, liveness=live)
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
            if res.score_norm is None:
                out.print(
                    f"{verdict}  similarity {res.similarity:.4f}  (threshold {res.threshold:.4f} at FMR {res.fmr}, "
                    f"model {res.model}{tail})",
                    highlight=False,
                )
            else:
                out.print(
                    f"{verdict}  normalised score {res.normalized_score:.4f}  similarity {res.similarity:.4f}  "
                    f"(threshold {res.threshold:.4f} at FMR {res.fmr} on the normalised score, "
                    f"{escape(res.score_norm)}, model {res.model}{tail})",
                    highlight=False,
                )
        return {"match": 0, "no_match": 1}.get(res.decision, EXIT_SPOOF)

    _run(body)


def enroll(
    name: Annotated[str, typer.Argument(help="Person's name.")],
    images: Annotated[list[Path], typer.Argument(help="One or more photos of that person.")],
    gallery: GalleryURLOpt = None,
    model: ModelOpt = "sface",
    flip: FlipOpt = False,
    select: Annotated[
        str | None,
        typer.Option("--select", help="Face of each photo: largest (default), central, or error (refuse several)."),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", hidden=True, help="Old name of --select error (refuse several faces).")
    ] = False,
    liveness: LivenessOpt = "off",
    challenge_video: ChallengeVideoOpt = None,
    challenge: ChallengeOpt = None,
    time_limit: TimeLimitOpt = 10.0,
    as_json: JsonOpt = False,
    threads: ThreadsOpt = None,
) -> None:
    """Enroll a person from one or more photos (all photos or none are stored); exit 3 if a photo is not live."""

    def body() -> int:
        from ..enrollment import commit, drop_duplicates, prepare_enrollment

        if strict and select not in (None, "error"):
            _fail(f"--strict is the old name of --select error; it contradicts --select {select}")
        one = _one_face("error" if strict else select or "largest")
        pipe = _pipeline(model, flip, threads=threads)
        live = _liveness_option(liveness, challenge_video, challenge, time_limit)
        # embed (and check) every photo before touching the gallery: a bad photo leaves no trace
        prepared = prepare_enrollment(pipe, name, list(images), select=one, liveness=live)
        rejection = prepared.rejection
        if rejection is not None:
            if as_json:
                _print_json(rejection.to_dict())
            else:
                for src, lv in zip(rejection.sources, rejection.liveness):
                    colour = "green" if lv.live else "red"
                    out.print(f"  [{colour}]{lv.verdict}[/] {shown(src)}  ({_liveness_text(lv)})", highlight=False)
                out.print(f"[bold red]not enrolled:[/] {rejection.decision} (nothing was written)", highlight=False)
            return EXIT_SPOOF
        with _open_gallery(gallery, create=True) as g:
            prepared, left_out = drop_duplicates(prepared, g)
            for dup in left_out:
                err.print(
                    f"[yellow]skipped:[/] {shown(dup.source)} is the same photo as {shown(dup.same_as)}",
                    highlight=False,
                )
            subject = commit(prepared, g) if len(prepared) else g.get(prepared.name.strip())
        if as_json:
            _print_json({"id": subject.id, "name": subject.name, "templates": subject.n_templates})
        else:
            done = "enrolled" if len(prepared) else "nothing added, already enrolled:"
            out.print(f"{done} [bold]{escape(subject.name)}[/] (id {subject.id}): {subject.n_templates} template(s)")
        return 0

    _run(body)


def identify(
    image: Annotated[Path, typer.Argument(help="Image with one or more faces, or a video (its timeline).")],
    gallery: GalleryURLOpt = None,
    model: ModelOpt = "sface",
    flip: FlipOpt = False,
    k: Annotated[int, typer.Option("-k", help="Candidates per face.")] = 3,
    select: Annotated[
        str,
        typer.Option(
            "--select",
            help="Faces to identify: all, largest, central or error (exactly one; one with --challenge-video).",
        ),
    ] = "all",
    fmr: Annotated[
        str | None,
        typer.Option(
            "--fmr", help="1:1 operating point: 1e-2, 1e-3 (default), 1e-4 or best_accuracy.", callback=fmr_text
        ),
    ] = None,
    fpir: Annotated[
        float | None,
        typer.Option(
            "--fpir",
            help="Open-set rate instead of --fmr: at most this fraction of strangers named, for the gallery's size.",
        ),
    ] = None,
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
    """1:N identification of every face; exit 1 when no face is recognised, 3 when every face is a spoof.

    Given a video (.mp4, .mov, ...), the faces are tracked and each track is named once: the timeline
    of `faceprint watch`."""

    def body() -> int:
        from ..classification import KNNFaceClassifier, SVMFaceClassifier, from_gallery
        from ..detection import SELECTIONS
        from ..videoio import VIDEO_SUFFIXES

        if image.suffix.lower() in VIDEO_SUFFIXES:
            from .video import run_video

            if challenge_video is not None or challenge:
                _fail(
                    "--challenge-video / --challenge check a still's probe; "
                    "a video is checked per track with --liveness passive"
                )
            if classifier != "nearest" or select != "all":
                _fail(
                    "on a video every track is identified by its nearest templates: "
                    "--classifier and --select do not apply"
                )
            return run_video(
                str(image),
                gallery=gallery,
                model=model,
                flip=flip,
                every=1,
                fps=None,
                fmr=fmr,
                fpir=fpir,
                liveness=liveness,
                k=k,
                out_path=None,
                max_seconds=None,
                as_json=as_json,
                threads=threads,
                live_view=False,
            )

        makers = {"nearest": None, "knn": KNNFaceClassifier, "svm": SVMFaceClassifier}
        if classifier not in makers:
            _fail(f"--classifier must be one of {', '.join(makers)}, got {classifier!r}")
        if select not in SELECTIONS:
            _fail(f"--select must be all, largest, central or error, got {select!r}")
        pipe = _pipeline(model, flip, threads=threads)
        live = _liveness_option(liveness, challenge_video, challenge, time_limit)
        with _open_gallery(gallery, create=False) as g:
            maker = makers[classifier]
            clf = from_gallery(g, classifier=maker()) if maker is not None and len(g) > 0 else None
            if fpir is None:
                fmr_point: str | None = fmr or "1e-3"
            else:
                fmr_point = fmr  # with --fpir, an --fmr too is refused by identify
            results = pipe.identify(
                image, g, k=k, fmr=fmr_point, fpir=fpir, select=select, classifier=clf, liveness=live
            )
        if as_json:
            _print_json({"image": str(image), "faces": [r.to_dict() for r in results]})
        elif not results:
            out.print(f"0 face(s) in {shown(image.name)}: no face found", highlight=False)
        else:
            title = f"{len(results)} face(s) in {shown(image.name)}"
            if fpir is not None and results:
                r0 = results[0]
                title += f" (FPIR {r0.fpir} at {r0.gallery_size} templates: threshold {r0.threshold:.3f})"
            table = _titled_table(title)
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
                table.add_row(str(i), f"[{style}]{escape(r.name)}[/]", f"{best:.3f}", escape(cands))
            out.print(table)
        if any(r.known for r in results):
            return 0
        return EXIT_SPOOF if results and all(r.liveness is not None and not r.liveness.live for r in results) else 1

    _run(body)


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
        from ..clustering import cluster_directory

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
                table.add_row(str(i), str(len(g)), escape(names))
            out.print(table)
            out.print(
                f"unclustered faces: {int((res.labels < 0).sum())}; files without a face / unreadable: "
                f"{len(res.failures)}; wrote {res.csv_path} and {res.html_path}"
            )
        return 0

    _run(body)


def demo(
    gallery: GalleryOpt = None,
    threads: ThreadsOpt = None,
) -> None:
    """Enroll people from bundled sample photos, identify altered copies, reject a stranger."""

    def body() -> int:
        from ..demo import run_demo

        console = out if out.is_terminal else Console(width=120)
        ok = run_demo(console, gallery=gallery, threads=threads)
        return 0 if ok else 1

    _run(body)
