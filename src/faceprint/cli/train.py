"""``faceprint train DATA_DIR``: parse the options, one :func:`~faceprint.training.train_embedder` call, render.

PyTorch is imported when the command runs (inside the workflow), never when ``faceprint.cli`` is imported.
The Rich progress bars are this module's :class:`TrainReporter`; what the output folder holds is in
:mod:`faceprint.training.workflow`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..settings import current_settings
from .common import _fail, _print_json, _run, err
from .common import out as stdout

if TYPE_CHECKING:
    from ..training.workflow import TrainSummary

__all__ = ["train"]


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal and not current_settings().progress,
    )


class _Bar:
    """One task of a Rich progress display (a ``ProgressStage``)."""

    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress, self._task = progress, task

    def update(
        self, *, completed: int | None = None, total: int | None = None, description: str | None = None
    ) -> None:
        self._progress.update(self._task, completed=completed, total=total, description=description)

    def advance(self, n: int = 1) -> None:
        self._progress.advance(self._task, n)


class RichTrainReporter:
    """A ``TrainReporter`` for a terminal: a transient progress bar per stage, epoch lines and warnings on stderr."""

    def __init__(self, console: Console) -> None:
        self.console = console

    @contextmanager
    def stage(self, description: str, total: int | None = None) -> Iterator[_Bar]:
        with _progress(self.console) as prog:
            yield _Bar(prog, prog.add_task(description, total=total))

    def note(self, text: str) -> None:
        self.console.print(text, highlight=False, markup=False)

    def warn(self, text: str) -> None:
        self.console.print(text, style="yellow", highlight=False, markup=False)


def _member_crops(text: str) -> list[float]:
    """``--member-crops 0.6,1.0`` -> the crop scales (the workflow checks them against the other options)."""
    try:
        scales = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        _fail(f"--member-crops takes comma-separated crop scales like 0.6,1.0, got {text!r}")
    if len(scales) < 2:
        _fail(f"--member-crops needs at least 2 crop scales, got {text!r}")
    return scales


def train(
    data_dir: Annotated[Path, typer.Argument(help="Folder with one sub-folder of face images per identity.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (model.onnx, model.json, ...).")] = Path(
        "faceprint-model"
    ),
    miner: Annotated[
        str, typer.Option("--miner", help="Triplet selection: semi-hard, batch-hard, batch-all or random.")
    ] = "semi-hard",
    margin: Annotated[float, typer.Option("--margin", help="Triplet margin alpha (squared distance).")] = 0.2,
    dim: Annotated[int, typer.Option("--dim", help="Embedding size (64 or 128 tested).")] = 128,
    epochs: Annotated[int, typer.Option("--epochs", help="Total epochs (a resumed run continues to this).")] = 10,
    batch_p: Annotated[int, typer.Option("--batch-p", help="Identities per batch.")] = 8,
    batch_k: Annotated[int, typer.Option("--batch-k", help="Images per identity in a batch.")] = 4,
    val_split: Annotated[
        float, typer.Option("--val-split", help="Fraction of identities held out for validation (0: none).")
    ] = 0.2,
    input_size: Annotated[
        int, typer.Option("--input-size", help="Aligned crop side for the CNN, 32..160 (ignored with --head-on).")
    ] = 64,
    crop_scale: Annotated[
        float,
        typer.Option(
            "--crop-scale",
            help="< 1: a looser crop (the alignment template shrunk about the centre: more hair and chin; "
            "0.6 suited ORL). CNN only.",
        ),
    ] = 1.0,
    lr: Annotated[float, typer.Option("--lr", help="Adam learning rate.")] = 1e-3,
    weight_decay: Annotated[float, typer.Option("--weight-decay", help="Adam's L2 weight decay.")] = 5e-4,
    lr_schedule: Annotated[
        str, typer.Option("--lr-schedule", help="constant, or cosine (decays to 0 over --epochs).")
    ] = "constant",
    seed: Annotated[int, typer.Option("--seed", help="Seed of weights, split and batches.")] = 0,
    ensemble: Annotated[
        int,
        typer.Option(
            "--ensemble",
            help="Train N networks from different initialisations and export them as one embedder "
            "(their unit vectors concatenated): N times the training and embedding time, steadier accuracy.",
        ),
    ] = 1,
    member_crops: Annotated[
        str | None,
        typer.Option(
            "--member-crops",
            help="An ensemble with one member per crop scale, e.g. 0.6,1.0: the model takes the loosest crop, "
            "--input-size / zoom pixels wide, and each member looks at its centre at --input-size "
            "(sets --ensemble and --crop-scale).",
        ),
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from OUT/checkpoint.pt.")] = False,
    threads: Annotated[int | None, typer.Option("--threads", help="CPU threads (detection and torch).")] = None,
    head_on: Annotated[
        str | None,
        typer.Option(
            "--head-on",
            help="Train an adaptation head on a frozen embedder (e.g. sface) instead of a CNN from scratch.",
        ),
    ] = None,
    cache_dir: Annotated[
        Path | None, typer.Option("--cache-dir", help="Aligned-crop cache (default OUT/cache).")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Model name (default: the OUT folder's name).")] = None,
    device: Annotated[str, typer.Option("--device", help="auto (CUDA when present), cpu or cuda.")] = "auto",
    detector: Annotated[str, typer.Option("--detector", "-d", help="Face detector: yunet or retinaface.")] = "yunet",
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Train a face embedder with the triplet loss on DATA_DIR/<person>/<images> and export it to ONNX."""

    def body() -> int:
        from ..training.workflow import train_embedder

        scales = _member_crops(member_crops) if member_crops is not None else None
        try:
            summary = train_embedder(
                data_dir, out, miner=miner, margin=margin, dim=dim, epochs=epochs, batch_p=batch_p,
                batch_k=batch_k, val_split=val_split, input_size=input_size, crop_scale=crop_scale, lr=lr,
                weight_decay=weight_decay, lr_schedule=lr_schedule, seed=seed, ensemble=ensemble,
                member_crops=scales, resume=resume, threads=threads, head_on=head_on, cache_dir=cache_dir,
                name=name, device=device, detector=detector, reporter=RichTrainReporter(err),
            )
        except ImportError as e:
            _fail(f"training needs PyTorch: pip install 'faceprint[train]' ({e})")
        _print_summary(summary, json_out)
        return 0

    _run(body)


def _print_summary(summary: TrainSummary, as_json: bool) -> None:
    d: dict[str, Any] = summary.to_dict()
    if as_json:
        _print_json(d)
        return
    t = d["training"]
    table = Table(title=f"faceprint train: {escape(d['model'])}")
    table.add_column("item")
    table.add_column("value", justify="right")
    val = t["final_val"] or {}
    rows = [
        ("network", f"{t['network']} ({t['miner']}, margin {t['margin']})"),
        ("identities / images (train)", f"{t['identities_train']} / {t['images_train']}"),
        ("identities / images (validation)", f"{t['identities_val']} / {t['images_val']}"),
        ("images skipped", str(t["images_skipped"])),
        ("epochs", str(t["epochs"])),
        ("final loss / active triplets", f"{t['final_loss']:.4f} / {100 * t['final_fraction_active']:.1f} %"),
    ]
    if val:
        rows += [
            ("validation 1-shot identification", f"{100 * val['one_shot_accuracy']:.2f} %"),
            ("validation verification accuracy", f"{100 * val['verification_accuracy']:.2f} %"),
        ]
    rows += [(f"threshold {k}", f"{v:.4f}") for k, v in d["thresholds"].items()]
    rows += [
        ("ONNX vs PyTorch (max abs diff)", f"{d['onnx_max_abs_diff']:.1e}"),
        ("device", t["device"]),
        ("time", f"{d['seconds']:.1f} s"),
        ("curves", d["curves"]),
    ]
    for k, v in rows:
        table.add_row(k, escape(str(v)))
    stdout.print(table)
    stdout.print(f"use it: faceprint verify A.jpg B.jpg --model {d['model']}", markup=False, highlight=False)
