"""`faceprint evaluate lfw | bias | identification | liveness`: parse, one library call, render."""

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
    _set_threads,
    err,
    fmr_text,
    out,
)


def evaluate_lfw(
    model: Annotated[
        list[str] | None,
        typer.Option("--model", "-m", help="Embedder(s): sface, facenet, fusion; repeat to compare side by side."),
    ] = None,
    flip: FlipOpt = False,
    detector: DetectorOpt = "yunet",
    pairs: Annotated[str, typer.Option("--pairs", help="pairs.txt (view 2), pairsDevTest.txt, ...")] = "pairs.txt",
    data: Annotated[Path | None, typer.Option("--data", help="Dataset root (default $FACEPRINT_DATA).")] = None,
    folds: Annotated[
        int | None,
        typer.Option(
            "--folds", help="Only the first N folds, N >= 2 (quick check; each fold's threshold is set on the others)."
        ),
    ] = None,
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
        from ..datasets import data_root
        from ..evaluation.lfw import run_lfw_protocol
        from ..evaluation.report import build_report
        from ..evaluation.report_html import write_report

        if folds is not None and folds < 2:
            _fail(f"--folds must be >= 2 (each fold's threshold is chosen on the other folds), got {folds}")
        root = data if data is not None else data_root(required=True)
        runs = []
        for name in model or ["sface"]:
            pipe = _pipeline(name, flip, detector, threads)
            key = pipe.embedder.key
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
            err.print(f"report: {escape(str(html_path))}", highlight=False)
        if as_json:
            _print_json(results[0] if len(results) == 1 else {"models": results})
            return 0
        table = Table(title=f"LFW {escape(str(pairs))}")
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
    fmr: Annotated[
        str,
        typer.Option(
            "--fmr", help="Operating point: the false match rate of the global threshold, e.g. 1e-3.", callback=fmr_text
        ),
    ] = "1e-3",
    threshold_from: Annotated[
        str,
        typer.Option(
            "--threshold-from",
            help="lfw: the shipped LFW calibration at --fmr; utkface: the threshold matched at --fmr on all cross "
            "pairs of the UTKFace sample itself; or FILE: a JSON of thresholds shaped like calibration.json.",
        ),
    ] = "lfw",
    report_dir: Annotated[
        Path | None, typer.Option("--report", help="Write report.html and report.json (bias sections) to DIR.")
    ] = None,
    as_json: JsonOpt = False,
    threads: ThreadsOpt = None,
) -> None:
    """UTKFace bias: impostor FMR and detection failure rate per race x gender cell and age band.

    Rates are measured at one global threshold per model, at --fmr (default 1e-3), from
    --threshold-from (default: the model's LFW calibration). UTKFace has no identity labels: every
    cross pair of images inside a group is treated as an impostor pair. A disparity is claimed only
    where the counts support it.
    """

    def body() -> int:
        from ..datasets import data_root
        from ..evaluation.report import build_report
        from ..evaluation.report_html import write_report
        from ..evaluation.utkface import THRESHOLD_SOURCES, evaluate_bias

        if max_images is not None and max_images < 2:
            _fail(f"--max-images must be >= 2, got {max_images}")
        if n_boot < 1:
            _fail(f"--n-boot must be >= 1, got {n_boot}")
        try:
            fmr_value = float(fmr)
        except ValueError:
            fmr_value = float("nan")
        if not 0.0 < fmr_value < 1.0:
            _fail(f"--fmr must be a false match rate in (0, 1), e.g. 1e-3; got {fmr!r}")
        if threshold_from not in THRESHOLD_SOURCES and not Path(threshold_from).is_file():
            _fail(f"--threshold-from must be lfw, utkface or a JSON thresholds file; got {threshold_from!r}")
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
                fmr=fmr_value,
                threshold_from=threshold_from,
            )
        if report_dir is not None:
            _, html_path = write_report(build_report([], title=res.title, bias=res.sections), report_dir)
            err.print(f"report: {escape(str(html_path))}", highlight=False)
        result = res.to_dict()
        if as_json:
            _print_json(result)
            return 0
        summary = result["models"]
        source = {"lfw": "LFW calibration", "utkface": "matched on these UTKFace pairs"}.get(
            threshold_from, threshold_from
        )
        table = Table(
            title=f"UTKFace bias: worst / best group ({res.images} images, threshold at FMR {res.operating_point}, "
            f"{source})"
        )
        for col in ("model", "section", "ratio", "95 % interval", "claim", "worst", "best"):
            table.add_column(col, justify="right" if col in ("ratio", "95 % interval") else "left")
        for m in summary:
            for sec in m["sections"]:
                for r in sec["ratios"]:
                    if r["ratio"] is None:
                        ratio = r["status"]
                    else:
                        ratio = f"{r['ratio']:.2f}" + (" (lower bound)" if r["floored"] else "")
                    if r["ci_low"] is None:
                        interval = "-"
                    else:
                        high = "inf" if r["ci_high"] is None else f"{r['ci_high']:.2f}"
                        interval = f"{r['ci_low']:.2f}-{high}"
                    claim = {"disparity": "disparity", "no disparity": "no disparity"}.get(
                        r["claim"] or "", "counts cannot support a claim" if r["claim"] else "-"
                    )
                    table.add_row(
                        m["model"], sec["title"], ratio, interval, claim, str(r["worst"] or "-"), str(r["best"] or "-")
                    )
        out.print(table)
        out.print("Every cross pair inside a group is treated as an impostor pair (UTKFace has no identities).")
        for m in summary:
            fmr_all = "" if m["cross_pair_fmr"] is None else f" (FMR {m['cross_pair_fmr']:.4g})"
            out.print(
                f"{m['model']}: threshold {m['threshold']:.4f} at FMR {res.operating_point} ({source}); "
                f"{m['cross_pair_matches']:,} of the {m['cross_pairs']:,} cross pairs of all "
                f"{res.images - m['detection_failures']:,} embedded images match at it{fmr_all}.",
                highlight=False,
            )
        for m in summary:
            for sec in m["sections"]:
                for sentence in sec["sentences"]:
                    out.print(f"{escape(m['model'])}: {escape(sentence)}", highlight=False)
        return 0

    _run(body)


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
        from ..datasets import data_root
        from ..evaluation.lfw import evaluate_lfw_identification

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
            table = Table(title=f"LFW identification: {pipe.embedder.key}, {method}, seed {seed}")
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


def evaluate_liveness_cmd(
    directory: Annotated[
        Path | None,
        typer.Argument(
            help="NUAA-style ClientRaw/ + ImposterRaw/, or live/ next to one folder per attack type "
            "(images and/or videos). Default: $FACEPRINT_DATA/nuaa."
        ),
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(
            "--split",
            help="NUAA only: score just the files of client_SPLIT_raw.txt + imposter_SPLIT_raw.txt "
            "(NUAA's index files; 'test' is the official test set).",
        ),
    ] = None,
    as_json: JsonOpt = False,
    threads: ThreadsOpt = None,
) -> None:
    """Passive PAD on a labelled folder: APCER per attack type, BPCER, ACER, EER, BPCER@APCER, failures to acquire.

    The default model (the CNN) was fine-tuned on all of the shared NUAA subset: on that folder
    these are training-set numbers. Held-out numbers (other session, other people) come from
    bench/train_liveness_cnn.py. With the full NUAA set, --split test runs the official protocol.
    """

    def body() -> int:
        from ..datasets import data_root, nuaa_dir
        from ..liveness import evaluate_liveness_dir

        _set_threads(threads)
        root = directory
        if root is None:
            root = nuaa_dir(data_root(required=True))
        with _progress() as prog:
            prog.add_task(f"scoring {root}", total=None)
            res = evaluate_liveness_dir(root, split=split)
        if as_json:
            _print_json(res)
            return 0
        fta = res["fta"]
        m = res.get("metrics") or res
        table = Table(title=f"PAD on {escape(str(root))} (ISO/IEC 30107-3)")
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
            reason = escape(str(f["reason"]))
            err.print(f"[yellow]not acquired:[/] {escape(str(f['file']))} ({reason})", highlight=False)
        return 0

    _run(body)
