"""``faceprint train DATA_DIR``: train an embedder on a folder of identity sub-folders and export it.

The command is a plain function with Typer ``Annotated`` parameters; ``faceprint.cli`` registers it with
``app.command("train")(train)``. PyTorch is imported inside the function body only.

Output folder (``--out``)::

    model.onnx       the network (ONNX, dynamic batch)
    model.json       its faceprint-embedder/1 spec: use it as --model out/model.json in verify / identify /
                     enroll / evaluate, or get_embedder("out/model.json") in Python
    checkpoint.pt    model + optimizer + history after every epoch (--resume continues from it);
                     with --ensemble N, members 2..N in checkpoint-2.pt .. checkpoint-N.pt
    curves.png       loss, active triplets and validation accuracy per epoch (curves-2.png .. per member)
    cache/           aligned face crops (a second run does no detection)
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..errors import FaceprintError
from ..settings import current_settings

__all__ = ["train"]


class _Fail(Exception):
    """A one-line error for stderr and exit code 2."""


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
    err = Console(stderr=True)
    try:
        scales: list[float] | None = None
        if member_crops is not None:
            scales, ensemble, crop_scale = _member_crops(member_crops, ensemble, crop_scale)
        summary = _train(
            data_dir=data_dir, out=out, miner=miner, margin=margin, dim=dim, epochs=epochs, batch_p=batch_p,
            batch_k=batch_k, val_split=val_split, input_size=input_size, crop_scale=crop_scale, lr=lr,
            weight_decay=weight_decay, lr_schedule=lr_schedule, seed=seed, ensemble=ensemble, member_crops=scales,
            resume=resume, threads=threads, head_on=head_on, cache_dir=cache_dir, name=name, device=device,
            detector=detector, err=err,
        )
    except (_Fail, FaceprintError) as e:
        err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except ImportError as e:
        err.print(
            f"[bold red]error:[/] training needs PyTorch: pip install 'faceprint[train]' ({e})",
            highlight=False, soft_wrap=True,
        )
        raise typer.Exit(2) from None
    except (ValueError, OSError, RuntimeError) as e:
        err.print(f"[bold red]error:[/] {type(e).__name__}: {e}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    _print_summary(summary, json_out)


def _member_crops(text: str, ensemble: int, crop_scale: float) -> tuple[list[float], int, float]:
    """``--member-crops 0.6,1.0`` -> the scales, the ensemble size and the input crop scale (the loosest)."""
    try:
        scales = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise _Fail(f"--member-crops takes comma-separated crop scales like 0.6,1.0, got {text!r}") from None
    if len(scales) < 2:
        raise _Fail(f"--member-crops needs at least 2 crop scales, got {text!r}")
    if ensemble not in (1, len(scales)):
        raise _Fail(f"--member-crops gives {len(scales)} members but --ensemble says {ensemble}")
    if crop_scale not in (1.0, min(scales)):
        raise _Fail(
            f"--member-crops: the input crop is the loosest ({min(scales)}), but --crop-scale says {crop_scale}"
        )
    return scales, len(scales), min(scales)


def _train(
    *,
    data_dir: Path,
    out: Path,
    miner: str,
    margin: float,
    dim: int,
    epochs: int,
    batch_p: int,
    batch_k: int,
    val_split: float,
    input_size: int,
    crop_scale: float,
    lr: float,
    weight_decay: float,
    lr_schedule: str,
    seed: int,
    ensemble: int,
    member_crops: list[float] | None,
    resume: bool,
    threads: int | None,
    head_on: str | None,
    cache_dir: Path | None,
    name: str | None,
    device: str,
    detector: str,
    err: Console,
) -> dict[str, Any]:
    if not data_dir.is_dir():
        raise _Fail(f"training data folder not found: {data_dir}")
    if not 0.0 <= val_split < 1.0:
        raise _Fail(f"--val-split must be in [0, 1), got {val_split}")
    if dim < 2:
        raise _Fail(f"--dim must be >= 2, got {dim}")
    for scale in [crop_scale, *(member_crops or [])]:
        if not 0.3 <= scale <= 1.5:  # also refuses nan
            raise _Fail(f"--crop-scale / --member-crops must be between 0.3 and 1.5, got {scale}")
    if head_on is not None and (crop_scale != 1.0 or member_crops):
        raise _Fail(
            "--crop-scale / --member-crops apply to a CNN trained from scratch; --head-on uses its embedder's alignment"
        )
    if lr_schedule not in ("constant", "cosine"):
        raise _Fail(f"--lr-schedule must be constant or cosine, got {lr_schedule!r}")
    if not weight_decay >= 0:  # also refuses nan
        raise _Fail(f"--weight-decay must be >= 0, got {weight_decay}")
    if not 1 <= ensemble <= 16:
        raise _Fail(f"--ensemble must be between 1 and 16, got {ensemble}")
    if head_on is None and not 32 <= input_size <= 160:
        raise _Fail(f"--input-size must be between 32 and 160, got {input_size}")
    model_name = name or out.resolve().name
    if not model_name or "@" in model_name:
        raise _Fail(f"--name must be non-empty and without '@', got {model_name!r}")
    if out.exists() and not out.is_dir():
        raise _Fail(f"--out {out} exists and is not a folder")
    checkpoint = out / "checkpoint.pt"
    if resume and not checkpoint.is_file():
        raise _Fail(f"--resume: no checkpoint at {checkpoint}")

    import dataclasses

    import numpy as np
    import torch

    from .. import __version__, runtime
    from ..embedding import get_embedder
    from ..processing import jitter_template
    from .data import default_template, identity_split, load_identity_folders
    from .export import ONNX_TOLERANCE, check_onnx, export_onnx, pair_thresholds, write_spec
    from .networks import PREPROCESSING, AdaptationHead, CentreView, CompactFaceNet, EnsembleNet, to_tensor
    from .trainer import EpochInfo, StepInfo, TrainConfig, Trainer, evaluate_embeddings, plot_history

    if threads is not None:
        runtime.set_num_threads(threads)
        torch.set_num_threads(threads)
    config = TrainConfig(
        miner=miner, margin=margin, epochs=epochs, batch_p=batch_p, batch_k=batch_k, lr=lr, seed=seed,
        device=device, threads=threads, weight_decay=weight_decay, lr_schedule=lr_schedule,
    )
    base: Any = None
    if head_on is not None:
        base = get_embedder(head_on)
        if not (hasattr(base, "embed") and hasattr(base, "input_size") and hasattr(base, "template")):
            raise _Fail(f"--head-on {head_on!r}: needs a single-network embedder (e.g. sface, facenet)")
        size, template = int(base.input_size[0]), base.template
    else:
        # --member-crops: the model's input is the loose crop, large enough that the tightest member's view
        # (its centre) keeps every pixel: members see --input-size views, the crop is input / zoom
        size = input_size if member_crops is None else round(input_size * max(member_crops) / crop_scale)
        template = None
        if crop_scale != 1.0:  # the bench's loose crop: the same points as bench/training.py's load_orl
            template = jitter_template(default_template(size), (size, size), scale=crop_scale)
    t_start = time.perf_counter()

    # -- data ------------------------------------------------------------------------------
    with _progress(err) as prog:
        task = prog.add_task("detecting and aligning faces", total=None)
        dataset = load_identity_folders(
            data_dir,
            detector=detector,
            input_size=size,
            template=template,
            cache_dir=cache_dir if cache_dir is not None else out / "cache",
            on_progress=lambda done, total: prog.update(task, completed=done, total=total),
        )
    if dataset.skipped:
        first = "; ".join(f"{Path(p).name}: {r}" for p, r in dataset.skipped[:3])
        more = f" (+{len(dataset.skipped) - 3} more)" if len(dataset.skipped) > 3 else ""
        err.print(f"[yellow]skipped {len(dataset.skipped)} image(s):[/] {first}{more}", highlight=False)
    try:
        train_idx, val_idx = identity_split(dataset.labels, val_split, seed)
    except ValueError as e:
        raise _Fail(f"{e} (use --val-split 0 to train on every identity)") from None
    x: np.ndarray = dataset.crops
    if base is not None:
        with _progress(err) as prog:
            task = prog.add_task(f"embedding with frozen {head_on}", total=len(dataset))
            parts = []
            for start in range(0, len(dataset), 64):
                parts.append(base.embed(dataset.crops[start : start + 64]))
                prog.advance(task, min(64, len(dataset) - start))
            x = np.concatenate(parts).astype(np.float32)
    x_tr, y_tr = x[train_idx], dataset.labels[train_idx]
    x_va = x[val_idx] if val_idx.size else None
    y_va = dataset.labels[val_idx] if val_idx.size else None

    # -- model + training ------------------------------------------------------------------------
    # member i: weights and batches from seed + i (member 1 is exactly the single-network run)
    members: list[torch.nn.Module] = []
    histories = []
    input_shape: tuple[int, ...] = (int(base.dim),) if base is not None else (3, size, size)
    status = {"val": ""}
    for i in range(ensemble):
        torch.manual_seed(seed + i)
        member: torch.nn.Module = (
            AdaptationHead(int(base.dim), dim)
            if base is not None
            else CompactFaceNet(dim=dim, input_size=input_size if member_crops is not None else size)
        )
        if member_crops is not None:  # crop scale s: the centre crop_scale / s of the input, at input_size
            member = CentreView(member, zoom=crop_scale / member_crops[i], input_size=size)
        member_config = dataclasses.replace(config, seed=seed + i)
        trainer = Trainer(member, member_config)
        tag = f"member {i + 1}/{ensemble} " if ensemble > 1 else ""
        member_ckpt = checkpoint if i == 0 else out / f"checkpoint-{i + 1}.pt"

        with _progress(err) as prog:
            task = prog.add_task("training", total=None)

            def on_step(info: StepInfo, task: Any = task, prog: Progress = prog, tag: str = tag) -> None:
                prog.update(
                    task,
                    total=config.epochs * info.steps,
                    completed=(info.epoch - 1) * info.steps + info.step,
                    description=(
                        f"{tag}epoch {info.epoch}/{config.epochs} loss {info.loss:.3f} "
                        f"active {100 * info.fraction_active:.0f}%{status['val']}"
                    ),
                )

            def on_epoch(info: EpochInfo, tag: str = tag) -> None:
                if info.val:
                    status["val"] = f" val 1-shot {100 * info.val['one_shot_accuracy']:.1f}%"
                err.print(
                    f"{tag}epoch {info.epoch}/{config.epochs}: loss {info.loss:.4f}, active triplets "
                    f"{100 * info.fraction_active:.1f} %" + (
                        f", val 1-shot {100 * info.val['one_shot_accuracy']:.1f} %, "
                        f"verification {100 * info.val['verification_accuracy']:.1f} %" if info.val else ""
                    ) + f" ({info.seconds:.1f} s)",
                    highlight=False,
                )

            history = trainer.fit(
                x_tr, y_tr, val_x=x_va, val_y=y_va, checkpoint=member_ckpt, resume=resume, on_step=on_step,
                on_epoch=on_epoch,
            )
        if not history.epochs:
            raise _Fail("no epoch was trained")
        members.append(member)
        histories.append(history)
    # files of members beyond N (an earlier, larger ensemble in this folder) describe no part of this model
    for stale in (*out.glob("checkpoint-*.pt"), *out.glob("curves-*.png")):
        suffix = stale.stem.rsplit("-", 1)[-1]
        if suffix.isdigit() and int(suffix) > ensemble:
            stale.unlink()
    curves = plot_history(histories[0], out / "curves.png")
    for i, h in enumerate(histories[1:], start=2):
        plot_history(h, out / f"curves-{i}.png")
    model: torch.nn.Module = members[0] if ensemble == 1 else EnsembleNet(members)
    trainer = Trainer(model, config)
    out_dim = int(getattr(model, "dim", dim))

    # -- export ----------------------------------------------------------------------------------
    onnx_path = export_onnx(model, out / "model.onnx", input_shape=input_shape)
    sample = x_va if x_va is not None else x_tr
    probe = to_tensor(sample[:32]) if base is None else torch.from_numpy(np.ascontiguousarray(sample[:32]))
    diff = check_onnx(model, onnx_path, probe)
    if diff > ONNX_TOLERANCE:
        raise _Fail(f"ONNX and PyTorch embeddings differ by {diff:.2e} (> {ONNX_TOLERANCE:.0e}); not writing a spec")
    if x_va is not None and y_va is not None:
        emb, lab = trainer.embed(x_va), y_va
        measured_on = (
            f"all pairs of the {len(np.unique(y_va))} validation identities of {data_dir.name} "
            "(identity-disjoint from training)"
        )
    else:
        emb, lab = trainer.embed(x_tr), y_tr
        measured_on = f"all pairs of the training identities of {data_dir.name} (no validation split: optimistic)"
    try:
        thresholds, info = pair_thresholds(emb, lab, seed=seed)
    except ValueError as e:
        raise FaceprintError(f"cannot set thresholds: {e}") from None
    last = histories[0].epochs[-1]
    final_val = last.val
    if ensemble > 1 and x_va is not None and y_va is not None:
        final_val = evaluate_embeddings(emb, y_va, seed=seed)
    training = {
        "data": data_dir.resolve().name,
        "identities_train": int(len(np.unique(y_tr))),
        "images_train": int(len(y_tr)),
        "identities_val": int(len(np.unique(y_va))) if y_va is not None else 0,
        "images_val": int(len(y_va)) if y_va is not None else 0,
        "images_skipped": len(dataset.skipped),
        "detector": detector,
        "crop_scale": crop_scale,
        "member_crops": member_crops,
        "member_input_size": input_size if member_crops is not None else None,
        "network": ("AdaptationHead" if base is not None else "CompactFaceNet")
        + (f" x {ensemble} (EnsembleNet, unit vectors concatenated)" if ensemble > 1 else "")
        + (f", member crops {','.join(f'{v:g}' for v in member_crops)}" if member_crops else ""),
        "ensemble": ensemble,
        "member_dim": dim,
        "miner": miner,
        "margin": margin,
        "epochs": len(histories[0].epochs),
        "batch_p": batch_p,
        "batch_k": batch_k,
        "lr": lr,
        "weight_decay": weight_decay,
        "lr_schedule": lr_schedule,
        "seed": seed,
        "final_loss": last.loss,
        "final_fraction_active": last.fraction_active,
        "final_val": final_val,
        "final_val_members": [h.epochs[-1].val for h in histories] if ensemble > 1 else None,
        "device": str(trainer.device),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "faceprint_version": __version__,
        "torch_version": torch.__version__,
    }
    spec_kwargs: dict[str, Any] = (
        {"base": head_on, "in_dim": int(base.dim)}
        if base is not None
        else {"input_size": size, "template": dataset.template, "preprocessing": PREPROCESSING}
    )
    spec_path = write_spec(
        onnx_path,
        name=model_name,
        kind="head" if base is not None else "image",
        dim=out_dim,
        thresholds=thresholds,
        thresholds_info={"measured_on": measured_on, **info},
        training=training,
        **spec_kwargs,
    )
    get_embedder(str(spec_path))  # the spec loads (sha256 checked) before we say it does
    return {
        "model": str(spec_path),
        "onnx": str(onnx_path),
        "checkpoint": str(checkpoint),
        "curves": str(curves),
        "onnx_max_abs_diff": diff,
        "thresholds": thresholds,
        "thresholds_measured_on": {"measured_on": measured_on, **info},
        "training": training,
        "seconds": time.perf_counter() - t_start,
    }


def _print_summary(summary: dict[str, Any], as_json: bool) -> None:
    out = Console()
    if as_json:
        out.print_json(json.dumps(summary))
        return
    t = summary["training"]
    table = Table(title=f"faceprint train: {summary['model']}")
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
    rows += [(f"threshold {k}", f"{v:.4f}") for k, v in summary["thresholds"].items()]
    rows += [
        ("ONNX vs PyTorch (max abs diff)", f"{summary['onnx_max_abs_diff']:.1e}"),
        ("device", t["device"]),
        ("time", f"{summary['seconds']:.1f} s"),
        ("curves", summary["curves"]),
    ]
    for k, v in rows:
        table.add_row(k, v)
    out.print(table)
    out.print(f"use it: faceprint verify A.jpg B.jpg --model {summary['model']}", highlight=False)
