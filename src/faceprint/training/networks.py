"""Embedding networks: a compact CNN trained from scratch, and an adaptation head on frozen embeddings."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import InvalidArgumentError

__all__ = ["PREPROCESSING", "to_tensor", "CompactFaceNet", "CentreView", "EnsembleNet", "AdaptationHead"]

#: Input normalisation of :class:`CompactFaceNet`: ``(x - mean) / std`` on RGB uint8, NCHW.
PREPROCESSING: dict[str, float | str] = {"mean": 127.5, "std": 128.0, "layout": "NCHW", "channels": "RGB"}


def to_tensor(crops: npt.NDArray[np.uint8]) -> Tensor:
    """Aligned RGB uint8 crops ``(N, H, W, 3)`` (or one ``(H, W, 3)``) -> float32 NCHW ``(x - 127.5) / 128``.

    Raises
    ------
    ValueError
        On anything but uint8 ``(N, H, W, 3)`` / ``(H, W, 3)``.

    Examples
    --------
    >>> to_tensor(np.full((4, 4, 3), 255, np.uint8)).shape
    torch.Size([1, 3, 4, 4])
    """
    a = np.asarray(crops)
    if a.ndim == 3:
        a = a[None]
    if a.dtype != np.uint8 or a.ndim != 4 or a.shape[-1] != 3:
        raise InvalidArgumentError(
            f"expected RGB uint8 crops (N, H, W, 3) or (H, W, 3), got {a.dtype} {np.shape(crops)}"
        )
    t = torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2))).float()
    return (t - float(PREPROCESSING["mean"])) / float(PREPROCESSING["std"])


def _conv_bn(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.PReLU(c_out)
    )


class _Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.PReLU(channels),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class CompactFaceNet(nn.Module):
    """A small residual CNN (about 0.5 M parameters at ``width=16``) that maps a face crop to a unit vector.

    Stem: 3x3 conv stride 2 to ``width`` channels; then three stages (stride-2 conv + residual block of
    two 3x3 convs) of 2, 4, 8 x ``width`` channels; global average pooling, linear to ``dim`` with batch
    norm, L2 normalisation. About 18 M multiply-adds per 64x64 crop at ``width=16`` (cost grows with
    ``width²`` and ``input_size²``), so a few hundred crops train in seconds per epoch on 2 CPU cores.

    Parameters
    ----------
    dim : int, default 128
        Embedding size (any >= 2; 64 and 128 are the tested ones).
    input_size : int, default 64
        Side of the square input crop, 32 .. 160 (64 .. 112 are the tested ones); recorded for export.
    in_channels : int, default 3
    width : int, default 16
        Channels of the stem; the stages have 2, 4 and 8 times as many.

    Examples
    --------
    >>> net = CompactFaceNet(dim=64, input_size=64).eval()
    >>> net(torch.zeros(2, 3, 64, 64)).shape
    torch.Size([2, 64])
    """

    def __init__(self, dim: int = 128, input_size: int = 64, in_channels: int = 3, width: int = 16) -> None:
        super().__init__()
        if not isinstance(width, int) or width < 4:
            raise InvalidArgumentError(f"width must be an int >= 4, got {width!r}")
        if not isinstance(dim, int) or dim < 2:
            raise InvalidArgumentError(f"dim must be an int >= 2, got {dim!r}")
        if not isinstance(input_size, int) or not 32 <= input_size <= 160:
            raise InvalidArgumentError(f"input_size must be an int in [32, 160], got {input_size!r}")
        if not isinstance(in_channels, int) or in_channels < 1:
            raise InvalidArgumentError(f"in_channels must be an int >= 1, got {in_channels!r}")
        self.dim, self.input_size, self.in_channels, self.width = dim, input_size, in_channels, width
        w = width
        self.features = nn.Sequential(
            _conv_bn(in_channels, w, stride=2),
            _conv_bn(w, 2 * w, stride=2),
            _Residual(2 * w),
            _conv_bn(2 * w, 4 * w, stride=2),
            _Residual(4 * w),
            _conv_bn(4 * w, 8 * w, stride=2),
            _Residual(8 * w),
        )
        self.embed = nn.Sequential(nn.Linear(8 * w, dim, bias=False), nn.BatchNorm1d(dim))

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise InvalidArgumentError(f"expected input (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        h = self.features(x)
        h = h.mean(dim=(2, 3))
        return F.normalize(self.embed(h), dim=1)


class CentreView(nn.Module):
    """A network that looks at the centre of its input crop: the central ``zoom`` fraction of the crop,
    resampled bilinearly to the network's input size (``grid_sample`` on a fixed grid), then ``net``.

    Used for ensemble members that see the face cropped tighter than the model's input: with the input
    aligned at crop scale ``c`` (:func:`faceprint.processing.jitter_template` ``scale=c``), ``zoom = c / s``
    gives the view of crop scale ``s >= c``. The view is part of the graph, so the exported ONNX model still
    takes one aligned crop. The input may be larger than the network's (``input_size``): with an input of
    ``net.input_size / zoom`` pixels the view keeps every input pixel in the centre instead of upsampling it,
    and a member with ``zoom=1`` then sees the whole crop downsampled. Exposes the wrapped network's ``dim``
    and ``in_channels``, and ``input_size`` (the side of the input it takes).

    Parameters
    ----------
    net : nn.Module
        With an int ``input_size`` (the side of the square input).
    zoom : float
        In (0, 1]; 1 is the whole crop (no resampling when the sizes agree).
    input_size : int or None
        Side of the square input crop; default ``net.input_size``.

    Examples
    --------
    >>> view = CentreView(CompactFaceNet(dim=64, input_size=64), zoom=0.6).eval()
    >>> view(torch.zeros(2, 3, 64, 64)).shape
    torch.Size([2, 64])
    >>> CentreView(CompactFaceNet(dim=64, input_size=64), zoom=0.6, input_size=107).eval()(
    ...     torch.zeros(2, 3, 107, 107)).shape
    torch.Size([2, 64])
    """

    def __init__(self, net: nn.Module, zoom: float, input_size: int | None = None) -> None:
        super().__init__()
        size = getattr(net, "input_size", None)
        if not isinstance(size, int):
            raise InvalidArgumentError(f"CentreView needs a network with an int .input_size, got {type(net).__name__}")
        if not (isinstance(zoom, (int, float)) and 0.0 < zoom <= 1.0):
            raise InvalidArgumentError(f"zoom must be in (0, 1], got {zoom!r}")
        outer = size if input_size is None else input_size
        if not (isinstance(outer, int) and not isinstance(outer, bool) and 16 <= outer <= 1024):
            raise InvalidArgumentError(f"input_size must be an int in [16, 1024], got {input_size!r}")
        self.net, self.zoom = net, float(zoom)
        self.dim, self.input_size = getattr(net, "dim", None), outer
        self.in_channels = getattr(net, "in_channels", 3)
        self.identity = self.zoom == 1.0 and outer == size
        theta = torch.tensor([[[self.zoom, 0.0, 0.0], [0.0, self.zoom, 0.0]]])
        grid = F.affine_grid(theta, [1, int(self.in_channels), size, size], align_corners=False)
        self.register_buffer("grid", grid, persistent=False)  # derived from zoom: not saved in checkpoints

    def view(self, x: Tensor) -> Tensor:
        """The centre of ``x`` (N, C, S, S) resampled to the network's input size; ``x`` itself at zoom 1
        when that is S."""
        if self.identity:
            return x
        grid: Tensor = self.grid  # type: ignore[assignment]  # a registered buffer
        grid = grid.to(x.dtype).expand(x.shape[0], -1, -1, -1)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(self.view(x))  # type: ignore[no-any-return]


class EnsembleNet(nn.Module):
    """Several independently trained networks as one embedder: ``concat(f_1(x), ..., f_n(x)) / sqrt(n)``.

    Each member returns a unit vector, so the output is a unit vector too and the cosine similarity of two
    outputs is the mean of the members' cosine similarities (the squared distance is their mean squared
    distance). Members trained from different random initialisations do not share a coordinate system,
    which is why their vectors are concatenated rather than added. The output has ``sum(member.dim)``
    dimensions. Exported to ONNX like any single network.

    Parameters
    ----------
    members : sequence of nn.Module
        At least one; all take the same input (same ``input_size`` / ``in_channels`` where they say).

    Raises
    ------
    ValueError
        On no members, a member without an int ``dim``, or members with different ``input_size`` or
        ``in_channels``.

    Examples
    --------
    >>> nets = [CompactFaceNet(dim=64, input_size=64).eval() for _ in range(3)]
    >>> out = EnsembleNet(nets)(torch.zeros(2, 3, 64, 64))
    >>> tuple(out.shape), bool(torch.allclose(out.norm(dim=1), torch.ones(2)))
    ((2, 192), True)
    """

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        members = list(members)
        if not members or not all(isinstance(m, nn.Module) for m in members):
            raise InvalidArgumentError("an ensemble needs at least one torch.nn.Module member")
        dims = [getattr(m, "dim", None) for m in members]
        missing = [type(m).__name__ for m, d in zip(members, dims, strict=True) if not isinstance(d, int)]
        if missing:
            raise InvalidArgumentError(f"ensemble members need an int .dim (their output size): {missing}")
        for attr in ("input_size", "in_channels"):
            values = {getattr(m, attr, None) for m in members}
            if len(values) > 1:
                raise InvalidArgumentError(f"ensemble members differ in {attr}: {sorted(map(str, values))}")
        self.members = nn.ModuleList(members)
        self.input_size = getattr(members[0], "input_size", None)
        self.in_channels = getattr(members[0], "in_channels", None)
        self.dim = sum(d for d in dims if isinstance(d, int))  # every member's, checked above

    def forward(self, x: Tensor) -> Tensor:
        outs = [F.normalize(m(x), dim=1) for m in self.members]
        return torch.cat(outs, dim=1) / float(len(outs)) ** 0.5


class AdaptationHead(nn.Module):
    """A small head trained on top of a frozen embedder's vectors: ``normalize(skip(x) + mlp(x))``.

    The input is L2-normalised first. With ``residual=True`` the skip path is the identity (when
    ``dim == in_dim``) or a fixed-at-init random orthonormal projection, and the MLP's last layer is
    zero-initialised, so an untrained head returns the frozen embedding itself (``dim == in_dim``):
    training starts from the pretrained model's accuracy and only learns a correction.
    ``hidden=None`` makes the correction a single linear layer.

    Parameters
    ----------
    in_dim : int
        Size of the frozen embeddings (SFace: 128).
    dim : int, default 128
        Output size.
    hidden : int or None, default 256
    residual : bool, default True
        ``False``: a plain MLP (default init), no skip path.

    Examples
    --------
    >>> head = AdaptationHead(128, 128)
    >>> x = torch.nn.functional.normalize(torch.randn(3, 128), dim=1)
    >>> bool(torch.allclose(head(x), x, atol=1e-6))
    True
    """

    def __init__(self, in_dim: int, dim: int = 128, hidden: int | None = 256, residual: bool = True) -> None:
        super().__init__()
        for name, value in (("in_dim", in_dim), ("dim", dim)):
            if not isinstance(value, int) or value < 2:
                raise InvalidArgumentError(f"{name} must be an int >= 2, got {value!r}")
        if hidden is not None and (not isinstance(hidden, int) or hidden < 1):
            raise InvalidArgumentError(f"hidden must be None or an int >= 1, got {hidden!r}")
        self.in_dim, self.dim, self.hidden, self.residual = in_dim, dim, hidden, residual
        last: nn.Linear
        if hidden is None:
            last = nn.Linear(in_dim, dim)
            self.mlp: nn.Module = last
        else:
            last = nn.Linear(hidden, dim)
            self.mlp = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), last)
        self.skip: nn.Linear | None = None
        if residual:
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
            if dim != in_dim:
                self.skip = nn.Linear(in_dim, dim, bias=False)
                nn.init.orthogonal_(self.skip.weight)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 2 or x.shape[1] != self.in_dim:
            raise InvalidArgumentError(f"expected input (N, {self.in_dim}), got {tuple(x.shape)}")
        x = F.normalize(x.float(), dim=1)
        out = self.mlp(x)
        if self.residual:
            out = out + (x if self.skip is None else self.skip(x))
        return F.normalize(out, dim=1)
