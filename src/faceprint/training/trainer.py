"""Training loop: P x K batches, online-mined triplet loss, Adam, checkpoints with exact resume."""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn

from faceprint.evaluation import kfold_accuracy
from faceprint.identification import gallery_scores, nshot_split, rank_of_true
from faceprint.training.loss import TripletLoss
from faceprint.training.miners import MINERS
from faceprint.training.networks import to_tensor
from faceprint.training.sampler import PKSampler

from ..errors import InvalidArgumentError, InvalidArgumentTypeError, InvalidFileError, UnknownBackendError

__all__ = [
    "TrainConfig",
    "StepInfo",
    "EpochInfo",
    "History",
    "Trainer",
    "evaluate_embeddings",
    "plot_history",
]

logger = logging.getLogger(__name__)

_CHECKPOINT_FORMAT = 1
# config fields that may change between a run and its resumption
_RESUMABLE_CHANGES = frozenset({"epochs", "device", "threads"})


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of :class:`Trainer` (validated on construction).

    Attributes
    ----------
    miner : str
        A name of :data:`faceprint.training.miners.MINERS`: "random", "batch-all", "batch-hard", "semi-hard".
    margin : float
        Triplet margin ``alpha``.
    epochs : int
        Total epochs (a resumed run continues up to this number).
    batch_p, batch_k : int
        Identities per batch and samples per identity (:class:`PKSampler`); ``batch_p`` is lowered to the
        number of identities with >= 2 samples when there are fewer.
    lr, weight_decay : float
        Adam's learning rate (constant) and L2 weight decay.
    seed : int
        Seed of the batch draws and augmentation (not of the model's initial weights: seed torch before
        building the model for a fully reproducible run).
    device : str
        "auto" (CUDA when available, else CPU), "cpu", "cuda", "cuda:1", ...
    augment : bool
        Random horizontal flip and a shift of up to ``input_size / 16`` pixels, image models only.
    batches_per_epoch : int or None
        Default: about one pass over the training samples.
    threads : int or None
        ``torch.set_num_threads`` during ``fit`` / ``embed``, restored afterwards (None: torch's setting).
    lr_schedule : {"constant", "cosine"}
        "cosine": the learning rate of epoch ``e`` (0-based) is ``lr * (1 + cos(pi * e / epochs)) / 2``, set at
        the start of each epoch. It depends on ``epochs``, so resuming with a different ``epochs`` changes the
        schedule of the remaining epochs (an interrupted run resumed with the same configuration is exact).

    Examples
    --------
    >>> TrainConfig(miner="batch-hard", epochs=2).batch_p
    8
    """

    miner: str = "semi-hard"
    margin: float = 0.2
    epochs: int = 10
    batch_p: int = 8
    batch_k: int = 4
    lr: float = 1e-3
    weight_decay: float = 5e-4
    seed: int = 0
    device: str = "auto"
    augment: bool = True
    batches_per_epoch: int | None = None
    threads: int | None = None
    lr_schedule: str = "constant"

    def __post_init__(self) -> None:
        if self.miner not in MINERS:
            raise UnknownBackendError(f"unknown miner {self.miner!r}; valid names: {', '.join(MINERS.names())}")
        if not (isinstance(self.margin, (int, float)) and math.isfinite(self.margin) and self.margin >= 0):
            raise InvalidArgumentError(f"margin must be a finite number >= 0, got {self.margin!r}")
        for name in ("epochs", "batch_p", "batch_k"):
            value = getattr(self, name)
            minimum = 1 if name == "epochs" else 2
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise InvalidArgumentError(f"{name} must be an int >= {minimum}, got {value!r}")
        for name in ("lr", "weight_decay"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise InvalidArgumentError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.lr <= 0:
            raise InvalidArgumentError(f"lr must be > 0, got {self.lr!r}")
        for name in ("batches_per_epoch", "threads"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise InvalidArgumentError(f"{name} must be None or an int >= 1, got {value!r}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise InvalidArgumentError(f"lr_schedule must be 'constant' or 'cosine', got {self.lr_schedule!r}")
        if not isinstance(self.device, str) or not (
            self.device in ("auto", "cpu", "cuda", "mps") or self.device.startswith("cuda:")
        ):
            raise InvalidArgumentError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")


@dataclass(frozen=True)
class StepInfo:
    """One optimisation step, as passed to ``on_step``.

    ``fraction_active`` is active / selected triplets; ``fraction_valid_active`` is active / all valid
    triplets in the batch (comparable across miners).
    """

    epoch: int
    step: int
    steps: int
    loss: float
    n_triplets: int
    n_active: int
    fraction_active: float
    fraction_valid_active: float = 0.0


@dataclass(frozen=True)
class EpochInfo:
    """One finished epoch (1-based ``epoch``); ``val`` holds :func:`evaluate_embeddings` when validating."""

    epoch: int
    loss: float
    fraction_active: float
    val: dict[str, float] | None
    seconds: float
    fraction_valid_active: float = 0.0


@dataclass(frozen=True)
class History:
    """The epochs of a training run (those before a resume included).

    Examples
    --------
    >>> h = History((EpochInfo(1, 0.1, 0.5, None, 1.0),))
    >>> History.from_dict(h.to_dict()) == h
    True
    """

    epochs: tuple[EpochInfo, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"epochs": [asdict(e) for e in self.epochs]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        return cls(tuple(EpochInfo(**e) for e in data["epochs"]))


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _check_xy(x: Any, y: Any, what: str = "x") -> tuple[np.ndarray, npt.NDArray[np.intp]]:
    a = np.asarray(x)
    if a.ndim == 4:
        if a.dtype != np.uint8 or a.shape[-1] != 3:
            raise InvalidArgumentError(f"expected {what} as RGB uint8 crops (N, H, W, 3), got {a.dtype} {a.shape}")
    elif a.ndim == 2:
        if not np.issubdtype(a.dtype, np.number) or not np.isfinite(a).all():
            raise InvalidArgumentError(
                f"expected {what} as finite float vectors (N, D), got {a.dtype} with non-finite values"
            )
        a = a.astype(np.float32)
    else:
        raise InvalidArgumentError(
            f"expected {what} as uint8 crops (N, H, W, 3) or float vectors (N, D), got shape {a.shape}"
        )
    labels = np.asarray(y)
    if labels.shape != (a.shape[0],):
        raise InvalidArgumentError(f"expected one label per sample ({a.shape[0]}), got labels of shape {labels.shape}")
    _, codes = np.unique(labels, return_inverse=True)
    return a, codes.astype(np.intp)


@contextmanager
def _torch_settings(threads: int | None) -> Iterator[None]:
    """Threads and deterministic kernels for the duration of a call; the previous settings come back after.

    Deterministic algorithms matter on CPU too: the backward of ``emb[indices]`` with repeated indices (every
    miner's gather) accumulates in parallel, in a varying order, once a batch holds thousands of triplets, and
    those last-bit differences grow over an epoch into visibly different models.
    """
    prev_threads = torch.get_num_threads()
    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    if threads is not None:
        torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev_det, warn_only=prev_warn)
        torch.set_num_threads(prev_threads)


class Trainer:
    """Trains an embedding network with the triplet loss.

    Parameters
    ----------
    model : nn.Module
        Maps a batch to ``(N, dim)`` embeddings: :class:`~faceprint.training.networks.CompactFaceNet` on
        uint8 crops or :class:`~faceprint.training.networks.AdaptationHead` on frozen embeddings.
    config : TrainConfig

    Examples
    --------
    >>> from faceprint.training.networks import AdaptationHead
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(size=(40, 8)).astype(np.float32), np.repeat(np.arange(10), 4)
    >>> trainer = Trainer(AdaptationHead(8, 8, hidden=16), TrainConfig(epochs=2, batch_p=4, batch_k=2))
    >>> len(trainer.fit(x, y).epochs), trainer.embed(x).shape
    (2, (40, 8))
    """

    def __init__(self, model: nn.Module, config: TrainConfig) -> None:
        if not isinstance(model, nn.Module):
            raise InvalidArgumentTypeError(f"expected a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(config, TrainConfig):
            raise InvalidArgumentTypeError(f"expected a TrainConfig, got {type(config).__name__}")
        self.model = model
        self.config = config
        self.device = _resolve_device(config.device)

    # -- helpers ---------------------------------------------------------------------------
    def _batch_tensor(self, x: np.ndarray, idx: npt.NDArray[np.intp]) -> Tensor:
        if x.ndim == 4:
            return to_tensor(x[idx])
        return torch.from_numpy(x[idx])

    def _augment(self, batch: Tensor, gen: torch.Generator) -> Tensor:
        n, _, h, w = batch.shape
        shift = max(1, min(h, w) // 16)
        flip = torch.rand(n, generator=gen) < 0.5
        batch = torch.where(flip[:, None, None, None], batch.flip(3), batch)
        padded = nn.functional.pad(batch, (shift, shift, shift, shift), mode="replicate")
        offsets = torch.randint(0, 2 * shift + 1, (n, 2), generator=gen)
        rows = [padded[i, :, oy : oy + h, ox : ox + w] for i, (oy, ox) in enumerate(offsets.tolist())]
        return torch.stack(rows)

    def _check_model_input(self, x: np.ndarray) -> None:
        size = getattr(self.model, "input_size", None)
        if x.ndim == 4 and size is not None and x.shape[1:3] != (size, size):
            raise InvalidArgumentError(f"the model expects {size}x{size} crops, got {x.shape[1]}x{x.shape[2]}")
        in_dim = getattr(self.model, "in_dim", None)
        if x.ndim == 2 and in_dim is not None and x.shape[1] != in_dim:
            raise InvalidArgumentError(f"the model expects {in_dim}-d vectors, got {x.shape[1]}-d")

    def _save(self, path: Path, optimizer: torch.optim.Optimizer, epoch: int, history: History) -> None:
        rng: dict[str, Any] = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        state = {
            "format": _CHECKPOINT_FORMAT,
            "model": self.model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "epoch": epoch,
            "history": history.to_dict(),
            "config": asdict(self.config),
            "rng": rng,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)

    def _load(self, path: Path, optimizer: torch.optim.Optimizer) -> tuple[int, History]:
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as err:  # torch raises many kinds (pickle, zip, runtime)
            raise InvalidFileError(f"cannot read checkpoint {path}: {err}") from err
        if not isinstance(state, dict) or state.get("format") != _CHECKPOINT_FORMAT:
            raise InvalidFileError(f"{path} is not a faceprint training checkpoint (format {_CHECKPOINT_FORMAT})")
        saved = state["config"]
        changed = sorted(k for k, v in asdict(self.config).items() if k not in _RESUMABLE_CHANGES and saved.get(k) != v)
        if changed:
            detail = ", ".join(f"{k}: {saved.get(k)!r} -> {getattr(self.config, k)!r}" for k in changed)
            raise InvalidArgumentError(f"cannot resume {path} with a different configuration ({detail})")
        try:
            self.model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as err:  # another architecture: shapes or keys differ
            lines = [line.strip() for line in str(err).splitlines() if line.strip()]
            if lines and lines[0].startswith("Error(s) in loading state_dict"):
                lines = lines[1:]  # torch's header; the differences follow, one a line
            first = lines[0].rstrip(". ") if lines else type(err).__name__
            detail = first if len(first) <= 160 else first[:157] + "..."
            more = f"; and {len(lines) - 1} more" if len(lines) > 1 else ""
            raise InvalidFileError(
                f"cannot resume {path}: it holds a different network than this one ({detail}{more})"
            ) from err
        torch.set_rng_state(state["rng"]["torch"].cpu())
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in state["rng"]["cuda"]])
        return int(state["epoch"]), History.from_dict(state["history"])

    # -- public ----------------------------------------------------------------------------
    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        *,
        val_x: np.ndarray | None = None,
        val_y: np.ndarray | None = None,
        checkpoint: Path | str | None = None,
        resume: bool = False,
        on_step: Callable[[StepInfo], None] | None = None,
        on_epoch: Callable[[EpochInfo], None] | None = None,
    ) -> History:
        """Train for ``config.epochs`` epochs (or the epochs left after ``resume``).

        Parameters
        ----------
        x : ndarray
            uint8 RGB crops ``(N, H, W, 3)`` for image models, or float vectors ``(N, D)`` for a head.
        y : ndarray, shape (N,)
            Identity labels (any sortable values).
        val_x, val_y : ndarray, optional
            Held-out identities, evaluated after every epoch with :func:`evaluate_embeddings`.
        checkpoint : path, optional
            Written after every epoch (model, optimizer, epoch, history, config, torch RNG state), atomically
            (temporary file + ``os.replace``).
        resume : bool, default False
            Continue from ``checkpoint`` when it exists (its configuration must match except ``epochs``,
            ``device`` and ``threads``); start afresh when it does not. Batches and augmentation are drawn
            from ``(seed, epoch)``, so 2 epochs then resuming to 4 gives the weights of 4 epochs straight.
        on_step, on_epoch : callable, optional
            Called with :class:`StepInfo` after every step and :class:`EpochInfo` after every epoch.
            Steps are also logged at DEBUG level, epochs at INFO.

        Notes
        -----
        Runs with ``torch.use_deterministic_algorithms(True, warn_only=True)`` and ``config.threads`` threads,
        restoring both afterwards: on CPU the same data, seed and initial weights give the same model.

        Returns
        -------
        History

        Raises
        ------
        ValueError
            On malformed inputs, fewer than 2 identities with 2 samples, or a checkpoint that cannot be
            resumed with this configuration.
        """
        with _torch_settings(self.config.threads):
            return self._fit(x, y, val_x, val_y, checkpoint, resume, on_step, on_epoch)

    def _fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        val_x: np.ndarray | None,
        val_y: np.ndarray | None,
        checkpoint: Path | str | None,
        resume: bool,
        on_step: Callable[[StepInfo], None] | None,
        on_epoch: Callable[[EpochInfo], None] | None,
    ) -> History:
        cfg = self.config
        xs, codes = _check_xy(x, y)
        self._check_model_input(xs)
        if (val_x is None) != (val_y is None):
            raise InvalidArgumentError("pass both val_x and val_y, or neither")
        val: tuple[np.ndarray, npt.NDArray[np.intp]] | None = None
        if val_x is not None:
            val = _check_xy(val_x, val_y, "val_x")
            if val[0].shape[1:] != xs.shape[1:]:
                raise InvalidArgumentError(
                    f"val_x samples have shape {val[0].shape[1:]}, training samples {xs.shape[1:]}"
                )
        if resume and checkpoint is None:
            raise InvalidArgumentError("resume=True needs a checkpoint path")
        counts = np.bincount(codes)
        n_usable = int((counts >= 2).sum())
        p = min(cfg.batch_p, n_usable) if n_usable >= 2 else cfg.batch_p
        if p < cfg.batch_p:
            logger.warning("batch_p lowered from %d to %d: only %d identities have >= 2 samples", cfg.batch_p, p, p)
        sampler = PKSampler(codes, p, cfg.batch_k, batches_per_epoch=cfg.batches_per_epoch, seed=cfg.seed)
        self.model.to(self.device)
        criterion = TripletLoss(margin=cfg.margin, miner=cfg.miner)
        optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        start, history = 0, History()
        ckpt = Path(checkpoint) if checkpoint is not None else None
        if resume and ckpt is not None:
            if ckpt.is_file():
                start, history = self._load(ckpt, optimizer)
                logger.info("resumed %s at epoch %d of %d", ckpt, start, cfg.epochs)
            else:
                logger.info("no checkpoint at %s: training from scratch", ckpt)
        image_model = xs.ndim == 4
        for epoch in range(start, cfg.epochs):
            t0 = time.perf_counter()
            sampler.set_epoch(epoch)
            gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
            lr = cfg.lr
            if cfg.lr_schedule == "cosine":
                lr = cfg.lr * 0.5 * (1.0 + math.cos(math.pi * epoch / cfg.epochs))
            for group in optimizer.param_groups:
                group["lr"] = lr
            self.model.train()
            losses: list[float] = []
            n_trip = n_act = n_valid = n_valid_act = 0
            steps = len(sampler)
            for step, batch_idx in enumerate(sampler, start=1):
                idx = np.asarray(batch_idx, dtype=np.intp)
                xb = self._batch_tensor(xs, idx)
                if image_model and cfg.augment:
                    xb = self._augment(xb, gen)
                yb = torch.from_numpy(codes[idx]).to(self.device)
                emb = self.model(xb.to(self.device))
                loss, stats = criterion(emb, yb)
                optimizer.zero_grad(set_to_none=True)
                if stats.n_triplets:
                    loss.backward()
                    optimizer.step()
                losses.append(float(loss.detach()))
                n_trip += stats.n_triplets
                n_act += stats.n_active
                n_valid += stats.n_valid
                n_valid_act += stats.n_valid_active
                info = StepInfo(
                    epoch + 1,
                    step,
                    steps,
                    losses[-1],
                    stats.n_triplets,
                    stats.n_active,
                    stats.fraction_active,
                    stats.fraction_valid_active,
                )
                logger.debug(
                    "epoch %d step %d/%d loss %.4f active %d/%d (%.1f %%)",
                    info.epoch,
                    step,
                    steps,
                    info.loss,
                    info.n_active,
                    info.n_triplets,
                    100 * info.fraction_active,
                )
                if on_step is not None:
                    on_step(info)
            metrics = None
            if val is not None:
                metrics = evaluate_embeddings(self.embed(val[0]), val[1], seed=cfg.seed)
            epoch_info = EpochInfo(
                epoch=epoch + 1,
                loss=float(np.mean(losses)),
                fraction_active=n_act / n_trip if n_trip else 0.0,
                val=metrics,
                seconds=time.perf_counter() - t0,
                fraction_valid_active=n_valid_act / n_valid if n_valid else 0.0,
            )
            history = History((*history.epochs, epoch_info))
            logger.info(
                "epoch %d/%d loss %.4f active %.1f %% val %s (%.1f s)",
                epoch + 1,
                cfg.epochs,
                epoch_info.loss,
                100 * epoch_info.fraction_active,
                metrics,
                epoch_info.seconds,
            )
            if ckpt is not None:
                self._save(ckpt, optimizer, epoch + 1, history)
            if on_epoch is not None:
                on_epoch(epoch_info)
        self.history_ = history
        return history

    def embed(self, x: np.ndarray, batch_size: int = 256, *, flip: bool = False) -> npt.NDArray[np.float32]:
        """Embeddings of ``x`` (crops or vectors, as in :meth:`fit`) in eval mode: float32 unit rows.

        Parameters
        ----------
        x : ndarray
            uint8 RGB crops ``(N, H, W, 3)`` or float vectors ``(N, D)``.
        batch_size : int, default 256
        flip : bool, default False
            Test-time flip, crops only: ``normalize(f(x) + f(mirror(x)))`` with ``mirror`` the horizontal
            flip (the augmentation the network was trained with), so an image and its mirror image get
            the same embedding. Costs two forward passes. Raises ``ValueError`` for vectors.

        Examples
        --------
        >>> from faceprint.training.networks import AdaptationHead
        >>> Trainer(AdaptationHead(4, 4), TrainConfig()).embed(np.eye(4, dtype=np.float32)).round(3).tolist()[0]
        [1.0, 0.0, 0.0, 0.0]
        """
        if not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidArgumentError(f"batch_size must be an int >= 1, got {batch_size!r}")
        xs, _ = _check_xy(x, np.zeros(len(x)))
        self._check_model_input(xs)
        if flip and xs.ndim != 4:
            raise InvalidArgumentError(f"flip=True needs image crops (N, H, W, 3), got vectors of shape {xs.shape}")
        was_training = self.model.training
        self.model.to(self.device).eval()
        out: list[np.ndarray] = []
        try:
            with _torch_settings(self.config.threads), torch.no_grad():
                for start in range(0, xs.shape[0], batch_size):
                    idx = np.arange(start, min(start + batch_size, xs.shape[0]))
                    batch = self._batch_tensor(xs, idx).to(self.device)
                    emb = self.model(batch)
                    if flip:
                        emb = emb + self.model(batch.flip(3))
                    out.append(nn.functional.normalize(emb.float(), dim=1).cpu().numpy())
        finally:
            self.model.train(was_training)
        if not out:
            return np.zeros((0, int(getattr(self.model, "dim", 0))), np.float32)
        return np.concatenate(out).astype(np.float32)


def evaluate_embeddings(
    emb: npt.ArrayLike, labels: npt.ArrayLike, *, seed: int = 0, n_draws: int = 5
) -> dict[str, float]:
    """Identification and verification accuracy of unit vectors of identities unseen in training.

    * ``one_shot_accuracy``: one random gallery image per identity with >= 2 images
      (:func:`faceprint.identification.nshot_split`), every other image of those identities a probe,
      rank-1 of the nearest template (:func:`~faceprint.identification.gallery_scores`,
      :func:`~faceprint.identification.rank_of_true`, ties count against the probe); mean over
      ``n_draws`` draws (seeds ``seed .. seed + n_draws - 1``). Identities with one image are left out.
    * ``verification_accuracy``: every same-identity pair and as many different-identity pairs drawn at
      random (balanced), cosine similarity, 10-fold accuracy with the threshold chosen on the other folds
      (:func:`faceprint.evaluation.kfold_accuracy`).
    * ``n_identities``, ``n_probes``, ``n_pairs``: the sizes behind the numbers.

    Raises
    ------
    ValueError
        On bad shapes, non-finite values, or fewer than 2 identities with 2 images.

    Examples
    --------
    >>> e = np.array([[1, 0], [0.99, 0.14], [0, 1], [0.14, 0.99]], np.float32)
    >>> evaluate_embeddings(e, [0, 0, 1, 1])["one_shot_accuracy"]
    1.0
    """
    e = np.asarray(emb, dtype=np.float64)
    y = np.asarray(labels)
    if e.ndim != 2 or y.shape != (e.shape[0],):
        raise InvalidArgumentError(f"expected emb (N, D) and N labels, got {e.shape} and {y.shape}")
    if not np.isfinite(e).all():
        raise InvalidArgumentError("expected finite embeddings")
    ids, codes, counts = np.unique(y, return_inverse=True, return_counts=True)
    if (counts >= 2).sum() < 2:
        raise InvalidArgumentError(
            f"evaluation needs at least 2 identities with 2 images, got {int((counts >= 2).sum())}"
        )
    e = e / np.linalg.norm(e, axis=1, keepdims=True)
    accs: list[float] = []
    n_probes = 0
    for draw in range(n_draws):
        gallery, probes, _ = nshot_split(codes, 1, seed=seed + draw)
        scores, enrolled = gallery_scores(e[gallery], codes[gallery], e[probes])
        ranks = rank_of_true(scores, np.searchsorted(enrolled, codes[probes]))
        accs.append(float(np.mean(ranks == 1)))
        n_probes = int(probes.size)
    i, j = np.triu_indices(e.shape[0], k=1)
    same = codes[i] == codes[j]
    rng = np.random.default_rng(seed)
    genuine = np.flatnonzero(same)
    impostor = np.flatnonzero(~same)
    impostor = rng.choice(impostor, size=min(genuine.size, impostor.size), replace=False)
    pairs = np.concatenate((genuine, impostor))
    sims = np.einsum("nd,nd->n", e[i[pairs]], e[j[pairs]])
    folds = rng.permutation(pairs.size) % min(10, pairs.size)
    verification = kfold_accuracy(sims, same[pairs], folds).mean
    return {
        "one_shot_accuracy": float(np.mean(accs)),
        "verification_accuracy": float(verification),
        "n_identities": float(int((counts >= 2).sum())),
        "n_probes": float(n_probes),
        "n_pairs": float(pairs.size),
    }


def plot_history(history: History, path: Path | str) -> Path:
    """Save training curves (loss, active-triplet fraction, validation metrics per epoch) as a PNG.

    Examples
    --------
    >>> import tempfile
    >>> h = History((EpochInfo(1, 0.2, 0.6, {"one_shot_accuracy": 0.5}, 1.0),))
    >>> plot_history(h, Path(tempfile.mkdtemp()) / "curves.png").is_file()
    True
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(path)
    epochs = [e.epoch for e in history.epochs]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].plot(epochs, [e.loss for e in history.epochs], marker="o")
    axes[0].set_title("triplet loss (selected triplets)")
    axes[1].plot(epochs, [e.fraction_active for e in history.epochs], marker="o", label="of selected")
    axes[1].plot(epochs, [e.fraction_valid_active for e in history.epochs], marker="o", label="of all valid")
    axes[1].set_title("active triplets")
    axes[1].set_ylim(0, 1.02)
    axes[1].legend()
    keys = [
        k for k in ("one_shot_accuracy", "verification_accuracy") if any(e.val and k in e.val for e in history.epochs)
    ]
    for key in keys:
        axes[2].plot(
            epochs, [e.val.get(key, np.nan) if e.val else np.nan for e in history.epochs], marker="o", label=key
        )
    axes[2].set_title("validation (unseen identities)")
    if keys:
        axes[2].legend()
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
