"""Train an embedder on a folder of identity sub-folders and export it: the workflow behind ``faceprint train``.

:func:`train_embedder` validates the options, loads and aligns the faces (cached), splits identities into
training and validation, optionally embeds the crops with a frozen embedder (``head_on``), trains one
network or an ensemble, exports it to ONNX (checked against PyTorch), measures thresholds and writes the
``faceprint-embedder/1`` spec. It prints nothing: progress and warnings go to a :class:`TrainReporter`
(silent by default). PyTorch is imported when the function runs, not when this module is imported.

Output folder (``out``)::

    model.onnx       the network (ONNX, dynamic batch)
    model.json       its faceprint-embedder/1 spec: use it as --model out/model.json in verify / identify /
                     enroll / evaluate, or get_embedder("out/model.json") in Python
    checkpoint.pt    model + optimizer + history after every epoch (resume=True continues from it);
                     with ensemble=N, members 2..N in checkpoint-2.pt .. checkpoint-N.pt
    curves.png       loss, active triplets and validation accuracy per epoch (curves-2.png .. per member)
    cache/           aligned face crops (a second run does no detection)

Error messages name the options by their ``faceprint train`` flags (``--val-split``, ...).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import DatasetNotFoundError, FaceprintError, InvalidArgumentError

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["ProgressStage", "TrainReporter", "SilentReporter", "TrainSummary", "train_embedder"]


class ProgressStage(Protocol):
    """One running stage of a training run (a progress bar, for a terminal)."""

    def update(
        self, *, completed: int | None = None, total: int | None = None, description: str | None = None
    ) -> None:
        """Set the amount done, the total (``None``: unchanged) and the description."""

    def advance(self, n: int = 1) -> None:
        """Add ``n`` to the amount done."""


class TrainReporter(Protocol):
    """Where :func:`train_embedder` reports progress; the CLI draws Rich progress bars."""

    def stage(self, description: str, total: int | None = None) -> AbstractContextManager[ProgressStage]:
        """A stage (detection, frozen embedding, training one network) that lasts while the context is open."""

    def note(self, text: str) -> None:
        """A line worth keeping after the run (one per trained epoch)."""

    def warn(self, text: str) -> None:
        """Something the user should look at (images skipped)."""


class _SilentStage:
    def update(
        self, *, completed: int | None = None, total: int | None = None, description: str | None = None
    ) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass


class SilentReporter:
    """A :class:`TrainReporter` that reports nothing (the default)."""

    def stage(self, description: str, total: int | None = None) -> AbstractContextManager[ProgressStage]:
        return nullcontext(_SilentStage())

    def note(self, text: str) -> None:
        pass

    def warn(self, text: str) -> None:
        pass


@dataclass(frozen=True)
class TrainSummary:
    """What a training run wrote and measured.

    Attributes
    ----------
    model, onnx, checkpoint, curves : Path
        The spec (``model.json``, load it with ``get_embedder``), the ONNX network, the first member's
        checkpoint and its training curves.
    onnx_max_abs_diff : float
        ``max |torch - onnx|`` on a sample of the data (accepted at ``<= 1e-4``).
    thresholds : mapping
        Operating point -> cosine-similarity threshold (``"1e-2"``, ``"1e-3"``, ``"best_accuracy"``).
    thresholds_measured_on : mapping
        Which pairs the thresholds come from, and how many.
    training : mapping
        The run's recipe and results, as stored under ``"training"`` in the spec.
    seconds : float
        Wall time of the run.
    """

    model: Path
    onnx: Path
    checkpoint: Path
    curves: Path
    onnx_max_abs_diff: float
    thresholds: Mapping[str, float]
    thresholds_measured_on: Mapping[str, Any] = field(repr=False)
    training: Mapping[str, Any] = field(repr=False)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: paths as strings (the keys ``faceprint train --json`` prints)."""
        return {
            "model": str(self.model),
            "onnx": str(self.onnx),
            "checkpoint": str(self.checkpoint),
            "curves": str(self.curves),
            "onnx_max_abs_diff": self.onnx_max_abs_diff,
            "thresholds": dict(self.thresholds),
            "thresholds_measured_on": copy.deepcopy(dict(self.thresholds_measured_on)),
            "training": copy.deepcopy(dict(self.training)),
            "seconds": self.seconds,
        }


def _resolve_member_crops(
    member_crops: Sequence[float], ensemble: int, crop_scale: float
) -> tuple[list[float], int, float]:
    """``member_crops`` -> the scales, the ensemble size and the input crop scale (the loosest)."""
    scales = [float(v) for v in member_crops]
    if len(scales) < 2:
        raise InvalidArgumentError(f"--member-crops needs at least 2 crop scales, got {scales!r}")
    if ensemble not in (1, len(scales)):
        raise InvalidArgumentError(f"--member-crops gives {len(scales)} members but --ensemble says {ensemble}")
    if crop_scale not in (1.0, min(scales)):
        raise InvalidArgumentError(
            f"--member-crops: the input crop is the loosest ({min(scales)}), but --crop-scale says {crop_scale}"
        )
    return scales, len(scales), min(scales)


def _check_device(device: str) -> None:
    """Refuse a device this torch cannot use before any work (torch fails late, with an AssertionError)."""
    import torch

    if device.startswith("cuda"):
        index = device.partition(":")[2]
        if index and not index.isdigit():
            raise InvalidArgumentError(f"--device must be auto, cpu, cuda or cuda:N, got {device!r}")
        if not torch.cuda.is_available():
            raise InvalidArgumentError(
                f"--device {device}: CUDA is not available to this PyTorch ({torch.__version__}); "
                "use --device auto or cpu"
            )
        if index and int(index) >= torch.cuda.device_count():
            raise InvalidArgumentError(
                f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s) (cuda:0 ..)"
            )
    elif device == "mps" and not torch.backends.mps.is_available():
        raise InvalidArgumentError("--device mps: MPS is not available to this PyTorch; use --device auto or cpu")


def train_embedder(
    data_dir: Path | str,
    out: Path | str = "faceprint-model",
    *,
    miner: str = "semi-hard",
    margin: float = 0.2,
    dim: int = 128,
    epochs: int = 10,
    batch_p: int = 8,
    batch_k: int = 4,
    val_split: float = 0.2,
    input_size: int = 64,
    crop_scale: float = 1.0,
    lr: float = 1e-3,
    weight_decay: float = 5e-4,
    lr_schedule: str = "constant",
    seed: int = 0,
    ensemble: int = 1,
    member_crops: Sequence[float] | None = None,
    resume: bool = False,
    threads: int | None = None,
    head_on: str | None = None,
    cache_dir: Path | str | None = None,
    name: str | None = None,
    device: str = "auto",
    detector: str = "yunet",
    reporter: TrainReporter | None = None,
) -> TrainSummary:
    """Train a face embedder with the triplet loss on ``data_dir/<person>/<images>`` and export it to ONNX.

    Parameters
    ----------
    data_dir : path
        One sub-folder of face images per identity.
    out : path, default "faceprint-model"
        Output folder (``model.onnx``, ``model.json``, ``checkpoint.pt``, ``curves.png``, ``cache/``).
    miner : str, default "semi-hard"
        Triplet selection: ``semi-hard``, ``batch-hard``, ``batch-all`` or ``random``.
    margin : float, default 0.2
        Triplet margin (squared distance).
    dim : int, default 128
        Embedding size (of each member, for an ensemble).
    epochs : int, default 10
        Total epochs (a resumed run continues to this).
    batch_p, batch_k : int, default 8, 4
        Identities per batch, and images per identity in a batch.
    val_split : float, default 0.2
        Fraction of identities held out for validation and thresholds (0: none, thresholds optimistic).
    input_size : int, default 64
        Aligned crop side for the CNN, 32..160 (ignored with ``head_on``).
    crop_scale : float, default 1.0
        < 1: a looser crop (the alignment template shrunk about the centre). CNN only.
    lr, weight_decay : float, default 1e-3, 5e-4
        Adam's learning rate and L2 weight decay.
    lr_schedule : str, default "constant"
        ``constant``, or ``cosine`` (decays to 0 over ``epochs``).
    seed : int, default 0
        Seed of weights, split and batches (member ``i`` of an ensemble uses ``seed + i``).
    ensemble : int, default 1
        Train N networks from different initialisations, exported as one embedder (unit vectors concatenated).
    member_crops : sequence of float, optional
        An ensemble with one member per crop scale; sets ``ensemble`` and ``crop_scale`` (the loosest).
    resume : bool, default False
        Continue from ``out/checkpoint.pt`` (and the members' checkpoints).
    threads : int, optional
        CPU threads (detection and torch).
    head_on : str, optional
        Train an adaptation head on this frozen embedder (e.g. ``"sface"``) instead of a CNN from scratch.
    cache_dir : path, optional
        Aligned-crop cache (default ``out/cache``).
    name : str, optional
        Model name (default: the ``out`` folder's name).
    device : str, default "auto"
        ``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``.
    detector : str, default "yunet"
        Face detector name.
    reporter : TrainReporter, optional
        Receives progress, one note per epoch and warnings; default :class:`SilentReporter`.

    Returns
    -------
    TrainSummary

    Raises
    ------
    InvalidArgumentError
        An option is out of range or contradicts another (the message names its ``faceprint train`` flag).
    DatasetNotFoundError
        ``data_dir`` is not a folder.
    FaceprintError
        The data cannot be used (no identities, ...), a checkpoint does not fit, the export check failed.
    ImportError
        PyTorch (the ``train`` extra) is not installed.

    Examples
    --------
    >>> summary = train_embedder("people/", "my-model", epochs=20, val_split=0.2)  # doctest: +SKIP
    >>> get_embedder(str(summary.model))  # doctest: +SKIP
    """
    data_dir, out = Path(data_dir), Path(out)
    report: TrainReporter = SilentReporter() if reporter is None else reporter
    scales: list[float] | None = None
    if member_crops is not None:
        scales, ensemble, crop_scale = _resolve_member_crops(member_crops, ensemble, crop_scale)
    if not data_dir.is_dir():
        raise DatasetNotFoundError(f"training data folder not found: {data_dir}")
    if not 0.0 <= val_split < 1.0:
        raise InvalidArgumentError(f"--val-split must be in [0, 1), got {val_split}")
    if dim < 2:
        raise InvalidArgumentError(f"--dim must be >= 2, got {dim}")
    for scale in [crop_scale, *(scales or [])]:
        if not 0.3 <= scale <= 1.5:  # also refuses nan
            raise InvalidArgumentError(f"--crop-scale / --member-crops must be between 0.3 and 1.5, got {scale}")
    if head_on is not None and (crop_scale != 1.0 or scales):
        raise InvalidArgumentError(
            "--crop-scale / --member-crops apply to a CNN trained from scratch; --head-on uses its embedder's alignment"
        )
    if lr_schedule not in ("constant", "cosine"):
        raise InvalidArgumentError(f"--lr-schedule must be constant or cosine, got {lr_schedule!r}")
    if not weight_decay >= 0:  # also refuses nan
        raise InvalidArgumentError(f"--weight-decay must be >= 0, got {weight_decay}")
    if not 1 <= ensemble <= 16:
        raise InvalidArgumentError(f"--ensemble must be between 1 and 16, got {ensemble}")
    if head_on is None and not 32 <= input_size <= 160:
        raise InvalidArgumentError(f"--input-size must be between 32 and 160, got {input_size}")
    model_name = name or out.resolve().name
    if not model_name or "@" in model_name:
        raise InvalidArgumentError(f"--name must be non-empty and without '@', got {model_name!r}")
    if out.exists() and not out.is_dir():
        raise InvalidArgumentError(f"--out {out} exists and is not a folder")
    checkpoint = out / "checkpoint.pt"
    if resume and not checkpoint.is_file():
        raise InvalidArgumentError(f"--resume: no checkpoint at {checkpoint}")

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
    _check_device(device)
    base: Any = None
    if head_on is not None:
        base = get_embedder(head_on)
        if not (hasattr(base, "embed") and hasattr(base, "input_size") and hasattr(base, "template")):
            raise InvalidArgumentError(f"--head-on {head_on!r}: needs a single-network embedder (e.g. sface, facenet)")
        size, template = int(base.input_size[0]), base.template
    else:
        # member crops: the model's input is the loose crop, large enough that the tightest member's view
        # (its centre) keeps every pixel: members see input_size views, the crop is input / zoom
        size = input_size if scales is None else round(input_size * max(scales) / crop_scale)
        template = None
        if crop_scale != 1.0:  # the bench's loose crop: the same points as bench/training.py's load_orl
            template = jitter_template(default_template(size), (size, size), scale=crop_scale)
    t_start = time.perf_counter()

    # -- data ------------------------------------------------------------------------------
    with report.stage("detecting and aligning faces") as bar:
        dataset = load_identity_folders(
            data_dir,
            detector=detector,
            input_size=size,
            template=template,
            cache_dir=Path(cache_dir) if cache_dir is not None else out / "cache",
            on_progress=lambda done, total: bar.update(completed=done, total=total),
        )
    if dataset.skipped:
        first = "; ".join(f"{Path(p).name}: {r}" for p, r in dataset.skipped[:3])
        more = f" (+{len(dataset.skipped) - 3} more)" if len(dataset.skipped) > 3 else ""
        report.warn(f"skipped {len(dataset.skipped)} image(s): {first}{more}")
    try:
        train_idx, val_idx = identity_split(dataset.labels, val_split, seed)
    except ValueError as e:
        raise InvalidArgumentError(f"{e} (use --val-split 0 to train on every identity)") from None
    x: np.ndarray = dataset.crops
    if base is not None:
        with report.stage(f"embedding with frozen {head_on}", total=len(dataset)) as bar:
            parts = []
            for start in range(0, len(dataset), 64):
                parts.append(base.embed(dataset.crops[start : start + 64]))
                bar.advance(min(64, len(dataset) - start))
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
            else CompactFaceNet(dim=dim, input_size=input_size if scales is not None else size)
        )
        if scales is not None:  # crop scale s: the centre crop_scale / s of the input, at input_size
            member = CentreView(member, zoom=crop_scale / scales[i], input_size=size)
        member_config = dataclasses.replace(config, seed=seed + i)
        trainer = Trainer(member, member_config)
        tag = f"member {i + 1}/{ensemble} " if ensemble > 1 else ""
        member_ckpt = checkpoint if i == 0 else out / f"checkpoint-{i + 1}.pt"

        with report.stage("training") as bar:

            def on_step(info: StepInfo, bar: ProgressStage = bar, tag: str = tag) -> None:
                bar.update(
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
                report.note(
                    f"{tag}epoch {info.epoch}/{config.epochs}: loss {info.loss:.4f}, active triplets "
                    f"{100 * info.fraction_active:.1f} %" + (
                        f", val 1-shot {100 * info.val['one_shot_accuracy']:.1f} %, "
                        f"verification {100 * info.val['verification_accuracy']:.1f} %" if info.val else ""
                    ) + f" ({info.seconds:.1f} s)"
                )

            try:
                history = trainer.fit(
                    x_tr, y_tr, val_x=x_va, val_y=y_va, checkpoint=member_ckpt, resume=resume, on_step=on_step,
                    on_epoch=on_epoch,
                )
            except torch.cuda.OutOfMemoryError:
                raise FaceprintError(
                    f"out of GPU memory on {trainer.device} while training: lower --batch-p / --batch-k / "
                    "--input-size, or use --device cpu"
                ) from None
        if not history.epochs:
            raise InvalidArgumentError("no epoch was trained")
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
        raise FaceprintError(
            f"ONNX and PyTorch embeddings differ by {diff:.2e} (> {ONNX_TOLERANCE:.0e}); not writing a spec"
        )
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
        "member_crops": scales,
        "member_input_size": input_size if scales is not None else None,
        "network": ("AdaptationHead" if base is not None else "CompactFaceNet")
        + (f" x {ensemble} (EnsembleNet, unit vectors concatenated)" if ensemble > 1 else "")
        + (f", member crops {','.join(f'{v:g}' for v in scales)}" if scales else ""),
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
    return TrainSummary(
        model=spec_path,
        onnx=onnx_path,
        checkpoint=checkpoint,
        curves=curves,
        onnx_max_abs_diff=diff,
        thresholds=thresholds,
        thresholds_measured_on={"measured_on": measured_on, **info},
        training=training,
        seconds=time.perf_counter() - t_start,
    )
