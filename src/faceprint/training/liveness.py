"""Training of the compact passive-PAD CNN (PyTorch): MiniFASNet-like, with a Fourier auxiliary loss.

Design after Silent-Face-Anti-Spoofing (MiniFASNet, minivision-ai, 2020): a depthwise-separable
CNN on small face crops with context (64x64 here, 80x80 there: CPU training time), a global
depthwise ("GDC") head, and during training an auxiliary *Fourier-spectrum generator* that
regresses the log-magnitude spectrum of the input from an intermediate (input / 8) feature map.
The spectra of re-captured faces (prints, screens) differ in their high-frequency content; the
auxiliary target pushes the features to encode it. Only the classifier is exported
(:func:`export_liveness_onnx`); :class:`faceprint.liveness.cnn.CNNPassiveChecker` runs it with
onnxruntime.

Inputs are RGB uint8 crops from :func:`faceprint.liveness.cnn.cnn_crop`, normalised as
``(x / 255 - 0.5) / 0.5`` (:data:`CNN_MEAN`, :data:`CNN_STD`). Class 1 is bona fide.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import InvalidArgumentError
from ..liveness.synthetic import simulate_capture
from .export import check_onnx, export_onnx

__all__ = [
    "CNN_MEAN",
    "CNN_STD",
    "MiniFASNet",
    "LivenessTrainConfig",
    "crops_to_tensor",
    "fourier_target",
    "train_liveness_cnn",
    "predict_live",
    "export_liveness_onnx",
]

log = logging.getLogger(__name__)

CNN_MEAN = (0.5, 0.5, 0.5)
CNN_STD = (0.5, 0.5, 0.5)


def crops_to_tensor(crops: npt.NDArray[np.uint8]) -> Tensor:
    """RGB uint8 crops ``(n, h, w, 3)`` -> float32 NCHW normalised with :data:`CNN_MEAN` / :data:`CNN_STD`."""
    a = np.asarray(crops)
    if a.dtype != np.uint8 or a.ndim != 4 or a.shape[-1] != 3:
        raise InvalidArgumentError(f"expected RGB uint8 crops (n, h, w, 3), got {a.dtype} {a.shape}")
    t = torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2))).float() / 255.0
    mean = torch.tensor(CNN_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CNN_STD).view(1, 3, 1, 1)
    return (t - mean) / std


def _dw_sep(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_in, 3, stride=stride, padding=1, groups=c_in, bias=False),
        nn.BatchNorm2d(c_in),
        nn.PReLU(c_in),
        nn.Conv2d(c_in, c_out, 1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.PReLU(c_out),
    )


class _InvertedResidual(nn.Module):
    def __init__(self, c: int, expand: int = 2) -> None:
        super().__init__()
        h = c * expand
        self.body = nn.Sequential(
            nn.Conv2d(c, h, 1, bias=False),
            nn.BatchNorm2d(h),
            nn.PReLU(h),
            nn.Conv2d(h, h, 3, padding=1, groups=h, bias=False),
            nn.BatchNorm2d(h),
            nn.PReLU(h),
            nn.Conv2d(h, c, 1, bias=False),
            nn.BatchNorm2d(c),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class MiniFASNet(nn.Module):
    """A MiniFASNet-like PAD classifier on ``input_size`` crops (default 64), with a Fourier generator.

    Stem 3x3 conv stride 2; depthwise-separable stages of ``widths`` channels, each halving the
    resolution, with inverted-residual blocks; a global depthwise conv over the last (input / 16)
    map; dropout; linear to 2 logits (0 attack, 1 bona fide). :meth:`forward_train` also returns the
    Fourier generator's ``(n, 1, input / 8, input / 8)`` output from the input / 8 feature map.
    About 0.1 M parameters (0.4 MB as float32) at the default widths; about 5 M multiply-adds per crop.

    Examples
    --------
    >>> net = MiniFASNet().eval()
    >>> net(torch.zeros(2, 3, 64, 64)).shape
    torch.Size([2, 2])
    >>> [t.shape[-1] for t in net.forward_train(torch.zeros(2, 3, 64, 64))]
    [2, 8]
    """

    def __init__(self, input_size: int = 64, widths: tuple[int, int, int, int] = (16, 32, 64, 96)) -> None:
        super().__init__()
        if input_size % 16:
            raise InvalidArgumentError(f"input_size must be a multiple of 16, got {input_size}")
        w0, w1, w2, w3 = widths
        self.input_size = input_size
        self.widths = tuple(widths)
        self.stage1 = nn.Sequential(
            nn.Conv2d(3, w0, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(w0),
            nn.PReLU(w0),
            _dw_sep(w0, w0, 1),
            _dw_sep(w0, w1, 2),
            _InvertedResidual(w1),
            _InvertedResidual(w1),
            _dw_sep(w1, w2, 2),
            _InvertedResidual(w2),
            _InvertedResidual(w2),
        )
        self.stage2 = nn.Sequential(
            _dw_sep(w2, w3, 2),
            _InvertedResidual(w3),
            nn.Conv2d(w3, w3, input_size // 16, groups=w3, bias=False),  # global depthwise conv
            nn.BatchNorm2d(w3),
            nn.Flatten(),
        )
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(w3, 2))
        self.ft_generator = nn.Sequential(
            nn.Conv2d(w2, 32, 3, padding=1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.Conv2d(32, 16, 3, padding=1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.Conv2d(16, 1, 3, padding=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        logits: Tensor = self.classifier(self.stage2(self.stage1(x)))
        return logits

    def forward_train(self, x: Tensor) -> tuple[Tensor, Tensor]:
        f = self.stage1(x)
        return self.classifier(self.stage2(f)), self.ft_generator(f)


def fourier_target(x: Tensor, size: int) -> Tensor:
    """Silent-Face's auxiliary target: log-magnitude spectrum of the grey input, centred, pooled to
    ``size`` x ``size``, min-max scaled to [0, 1] per sample."""
    grey = x.mean(dim=1)
    mag = torch.log1p(torch.abs(torch.fft.fftshift(torch.fft.fft2(grey), dim=(-2, -1))))
    pooled = F.adaptive_avg_pool2d(mag[:, None], size)
    lo = pooled.amin(dim=(2, 3), keepdim=True)
    hi = pooled.amax(dim=(2, 3), keepdim=True)
    return (pooled - lo) / (hi - lo + 1e-6)


@dataclass(frozen=True)
class LivenessTrainConfig:
    """Hyper-parameters of :func:`train_liveness_cnn`.

    ``epochs`` passes of ``n`` samples each, drawn with replacement by the sample weights (class /
    source balance); AdamW at ``lr`` with cosine decay; loss = cross-entropy + ``ft_weight`` x MSE of
    the Fourier generator. ``max_steps`` stops early (smoke runs). Augmentation: horizontal flip,
    +-``shift`` px translation, brightness / contrast +-15 %; and, for a share ``capture`` of the
    samples of each batch (bona fide and attacks alike), random capture conditions
    (:func:`faceprint.liveness.synthetic.simulate_capture`: exposure, white balance, resolution,
    blur, noise + JPEG, each with probability ``capture_effect_p``).
    """

    epochs: int = 6
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 5e-4
    ft_weight: float = 1.0
    shift: int = 4
    seed: int = 0
    threads: int = 2
    max_steps: int | None = None
    capture: float = 0.0
    capture_effect_p: float = 0.4


def _with_capture(
    crops: npt.NDArray[np.uint8], sel: Tensor, config: LivenessTrainConfig, step: int, gen: torch.Generator
) -> Tensor:
    batch = crops[sel.numpy()]
    pick = (torch.rand(len(batch), generator=gen) < config.capture).numpy()
    for j in np.flatnonzero(pick):
        batch[j] = simulate_capture(batch[j], seed=(config.seed, step, int(j)), probability=config.capture_effect_p)
    return crops_to_tensor(batch)


def _augment(x: Tensor, shift: int, gen: torch.Generator) -> Tensor:
    n = x.shape[0]
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip.view(n, 1, 1, 1), x.flip(3), x)
    if shift > 0:
        pad = F.pad(x, (shift, shift, shift, shift), mode="replicate")
        dx, dy = (int(v) for v in torch.randint(0, 2 * shift + 1, (2,), generator=gen))
        x = pad[:, :, dy : dy + x.shape[2], dx : dx + x.shape[3]]
    gain = 1.0 + (torch.rand(n, 1, 1, 1, generator=gen) - 0.5) * 0.3
    bias = (torch.rand(n, 1, 1, 1, generator=gen) - 0.5) * 0.3
    return (x * gain + bias).clamp(-1.0, 1.0)


def train_liveness_cnn(
    crops: npt.NDArray[np.uint8],
    is_attack: npt.ArrayLike,
    config: LivenessTrainConfig = LivenessTrainConfig(),
    *,
    sample_weights: npt.ArrayLike | None = None,
    model: MiniFASNet | None = None,
    progress: Callable[[str], None] | None = None,
) -> MiniFASNet:
    """Train (or continue training) a :class:`MiniFASNet` on RGB uint8 crops; returns it in eval mode.

    Deterministic for a given config, data and ``torch`` build (seeded sampling, init and dropout).
    """
    y_np = ~np.asarray(is_attack).astype(bool)
    n = int(y_np.shape[0])
    if crops.shape[0] != n or n < 2:
        raise InvalidArgumentError(f"expected matching crops and labels (n >= 2), got {crops.shape[0]} and {n}")
    torch.set_num_threads(int(config.threads))
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    net = model if model is not None else MiniFASNet(input_size=int(crops.shape[1]))
    x_all = crops_to_tensor(crops)
    y_all = torch.from_numpy(y_np.astype(np.int64))
    w = np.ones(n) if sample_weights is None else np.asarray(sample_weights, dtype=np.float64)
    w_t = torch.from_numpy(w / w.sum())
    steps_per_epoch = max(1, n // config.batch_size)
    total = steps_per_epoch * config.epochs
    if config.max_steps is not None:
        total = min(total, int(config.max_steps))
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=total, pct_start=0.15)
    ft_size = net.input_size // 8
    net.train()
    t0 = time.perf_counter()
    step = 0
    while step < total:
        idx = torch.multinomial(w_t, steps_per_epoch * config.batch_size, replacement=True, generator=gen)
        run_loss = run_acc = 0.0
        for b in range(steps_per_epoch):
            if step >= total:
                break
            sel = idx[b * config.batch_size : (b + 1) * config.batch_size]
            xs = _with_capture(crops, sel, config, step, gen) if config.capture > 0 else x_all[sel]
            xb = _augment(xs, config.shift, gen)
            yb = y_all[sel]
            logits, ft = net.forward_train(xb)
            loss = F.cross_entropy(logits, yb) + config.ft_weight * F.mse_loss(ft, fourier_target(xb, ft_size))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            run_loss += float(loss.detach())
            run_acc += float((logits.argmax(1) == yb).float().mean())
        if progress is not None:
            k = b + 1
            progress(
                f"step {step}/{total}: loss {run_loss / k:.4f} acc {run_acc / k:.4f} ({time.perf_counter() - t0:.0f} s)"
            )
    return net.eval()


def predict_live(model: nn.Module, crops: npt.NDArray[np.uint8], *, batch: int = 256) -> npt.NDArray[np.float64]:
    """Probability of bona fide for RGB uint8 crops (PyTorch; the shipped path is onnxruntime)."""
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, crops.shape[0], batch):
            out.append(torch.softmax(model(crops_to_tensor(crops[i : i + batch])), dim=1)[:, 1].numpy())
    return np.concatenate(out).astype(np.float64) if out else np.zeros(0)


class _LiveProbability(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return torch.softmax(self.net(x), dim=1)[:, 1:2]


def export_liveness_onnx(model: MiniFASNet, path: Path | str, check_crops: npt.NDArray[np.uint8]) -> float:
    """Export the classifier (bona fide probability, ``(n, 1)``) to ONNX.

    Returns the max ``|torch - onnxruntime|`` on ``check_crops``.
    """
    wrapped = _LiveProbability(model).eval()
    s = model.input_size
    export_onnx(wrapped, path, input_shape=(3, s, s))
    return check_onnx(wrapped, path, crops_to_tensor(check_crops))
