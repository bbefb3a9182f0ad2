"""Export a trained network to ONNX and describe it with a small JSON spec that faceprint loads as an embedder.

The spec (format ``faceprint-embedder/1``) sits next to the ONNX file and names it by a relative path,
with its sha256. :class:`faceprint.embedding.OnnxEmbedder` reads it (``get_embedder("out/model.json")``),
so a trained model works in ``verify``, ``identify``, the gallery and ``evaluate`` with no PyTorch.

Two kinds of model:

``image``
    A network on aligned RGB crops (``CompactFaceNet``): input ``(n, 3, size, size)`` float, the crop
    preprocessed as ``spec["preprocessing"]`` says (``(x - mean) / std``, NCHW, RGB).
``head``
    An ``AdaptationHead`` on the unit vectors of a frozen base embedder (``spec["base"]``, e.g. ``"sface"``):
    input ``(n, in_dim)`` float.

The export uses PyTorch's TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``): the
newer ``dynamo=True`` path needs the ``onnxscript`` package, which faceprint does not install. The
batch axis is dynamic. PyTorch is imported inside the functions that need it, so this module (and the
spec helpers) import without it.
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import logging
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..errors import InvalidArgumentError, ModelNotFoundError
from ..evaluation import calibrate_thresholds
from ..weights import sha256_file

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "SPEC_FORMAT",
    "export_onnx",
    "check_onnx",
    "pair_thresholds",
    "write_spec",
]

log = logging.getLogger(__name__)

SPEC_FORMAT = "faceprint-embedder/1"
"""The ``format`` field of a spec written by :func:`write_spec`."""

ONNX_TOLERANCE = 1e-4
"""Largest accepted max-abs difference between PyTorch and onnxruntime embeddings."""


def export_onnx(
    model: torch.nn.Module,
    path: Path | str,
    *,
    input_shape: Sequence[int],
    opset: int = 17,
) -> Path:
    """Write ``model`` (in eval mode, on CPU) to an ONNX file with a dynamic batch axis.

    Parameters
    ----------
    model : torch.nn.Module
        Maps a float batch ``(n, *input_shape)`` to ``(n, dim)`` embeddings. It is copied to the CPU for
        the export; the caller's model (device, train/eval mode) is left as it was.
    path : path
        The ``.onnx`` file to write (parent folders are created).
    input_shape : sequence of int
        One sample's shape without the batch axis: ``(3, 64, 64)`` for an image model, ``(128,)`` for a
        head on 128-d vectors.
    opset : int, default 17

    Returns
    -------
    Path
        ``path``. The graph has one input ``"input"`` and one output ``"embedding"``.

    Examples
    --------
    >>> export_onnx(CompactFaceNet(dim=128, input_size=64), "out/model.onnx", input_shape=(3, 64, 64))  # doctest: +SKIP
    PosixPath('out/model.onnx')
    """
    import torch

    shape = tuple(int(s) for s in input_shape)
    if not shape or any(s < 1 for s in shape):
        raise InvalidArgumentError(
            f"input_shape must be positive sizes without the batch axis, got {tuple(input_shape)}"
        )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    cpu_model = copy.deepcopy(model).to("cpu").eval()
    dummy = torch.zeros((2, *shape), dtype=torch.float32)
    with warnings.catch_warnings():
        # the TorchScript exporter announces its own deprecation on every call
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # input checks in forward() become constants
        with torch.no_grad():
            torch.onnx.export(
                cpu_model,
                (dummy,),
                str(out),
                input_names=["input"],
                output_names=["embedding"],
                dynamic_axes={"input": {0: "batch"}, "embedding": {0: "batch"}},
                opset_version=int(opset),
                do_constant_folding=True,
                dynamo=False,
            )
    log.info("exported %s (input %s, opset %d)", out, shape, opset)
    return out


def _onnx_session(path: Path | str, threads: int | None = None) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads is not None:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def check_onnx(model: torch.nn.Module, onnx_path: Path | str, x: npt.ArrayLike | torch.Tensor) -> float:
    """Largest absolute difference between the PyTorch model's and onnxruntime's outputs on ``x``.

    Parameters
    ----------
    model : torch.nn.Module
        Run in eval mode on a CPU copy (the caller's model is not changed).
    onnx_path : path
        The file :func:`export_onnx` wrote.
    x : array_like or Tensor, shape (n, *input_shape)
        Network input (already preprocessed, float).

    Returns
    -------
    float
        ``max |torch(x) - onnx(x)|``; the export is accepted at ``<= 1e-4`` (:data:`ONNX_TOLERANCE`).

    Examples
    --------
    >>> check_onnx(model, "out/model.onnx", to_tensor(crops[:8])) <= 1e-4  # doctest: +SKIP
    True
    """
    import torch

    xt = x.detach().to("cpu", torch.float32) if isinstance(x, torch.Tensor) else torch.as_tensor(
        np.asarray(x, np.float32)
    )
    cpu_model = copy.deepcopy(model).to("cpu").eval()
    with torch.no_grad():
        ref = cpu_model(xt).numpy()
    got = _onnx_session(onnx_path, threads=1).run(None, {"input": xt.numpy()})[0]
    if got.shape != ref.shape:
        raise ValueError(f"ONNX output shape {got.shape} differs from PyTorch's {ref.shape}")
    return float(np.max(np.abs(got - ref))) if ref.size else 0.0


def pair_thresholds(
    embeddings: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    fmrs: Sequence[float] = (1e-2, 1e-3),
    max_pairs: int = 200_000,
    seed: int = 0,
) -> tuple[dict[str, float], dict[str, Any]]:
    """Cosine-similarity thresholds from all genuine / impostor pairs of labelled unit vectors.

    Every same-identity pair is genuine, every different-identity pair an impostor pair; when there are
    more than ``max_pairs`` impostor pairs a seeded random sample of that size is used. Thresholds come
    from :func:`faceprint.evaluation.calibrate_thresholds` (``"1e-2"``, ``"1e-3"``, ``"best_accuracy"``).

    Returns
    -------
    thresholds : dict of str to float
    info : dict
        ``n_genuine``, ``n_impostor`` and ``n_identities`` used (an FMR below ``1 / n_impostor`` only
        means "above every impostor seen").

    Examples
    --------
    >>> t, info = pair_thresholds(np.eye(4)[[0, 0, 1, 1]], [0, 0, 1, 1])
    >>> t["best_accuracy"] > 0, info["n_genuine"], info["n_impostor"]
    (True, 2, 4)
    """
    emb = np.asarray(embeddings, np.float64)
    y = np.asarray(labels)
    if emb.ndim != 2 or y.shape != (emb.shape[0],):
        raise InvalidArgumentError(f"expected (n, d) embeddings and n labels, got {emb.shape} and {y.shape}")
    i, j = np.triu_indices(y.size, k=1)
    same = y[i] == y[j]
    gi, gj = i[same], j[same]
    ii, ij = i[~same], j[~same]
    if gi.size == 0 or ii.size == 0:
        raise InvalidArgumentError(f"need genuine and impostor pairs, got {gi.size} genuine and {ii.size} impostor")
    if ii.size > max_pairs:
        pick = np.random.default_rng(seed).choice(ii.size, max_pairs, replace=False)
        ii, ij = ii[pick], ij[pick]
    scores = np.concatenate([np.sum(emb[gi] * emb[gj], 1), np.sum(emb[ii] * emb[ij], 1)])
    lab = np.concatenate([np.ones(gi.size, bool), np.zeros(ii.size, bool)])
    thresholds = calibrate_thresholds(scores, lab, fmrs=fmrs)
    info = {"n_genuine": int(gi.size), "n_impostor": int(ii.size), "n_identities": int(np.unique(y).size)}
    return thresholds, info


def write_spec(
    onnx_path: Path | str,
    *,
    name: str,
    kind: str,
    dim: int,
    input_size: int | None = None,
    template: Sequence[Sequence[float]] | None = None,
    preprocessing: Mapping[str, Any] | None = None,
    base: str | None = None,
    in_dim: int | None = None,
    thresholds: Mapping[str, float] | None = None,
    thresholds_info: Mapping[str, Any] | None = None,
    training: Mapping[str, Any] | None = None,
    licence: str = "as the training data allows",
    spec_path: Path | str | None = None,
) -> Path:
    """Write the JSON spec that makes an exported ONNX file a faceprint embedder.

    Parameters
    ----------
    onnx_path : path
        The model; the spec stores its file name (relative to the spec) and sha256.
    name : str
        Embedder name (shown in fingerprints: ``"<name>@<sha256[:12]>"``).
    kind : {"image", "head"}
    dim : int
        Embedding size.
    input_size, template, preprocessing
        For ``kind="image"``: crop side, the 5 alignment points in crop pixels, and the input
        normalisation (``{"mean", "std", "layout", "channels"}``).
    base, in_dim
        For ``kind="head"``: the frozen base embedder's registered name and its dimension.
    thresholds : mapping, optional
        Cosine-similarity thresholds (``"1e-2"``, ``"1e-3"``, ``"best_accuracy"``).
    thresholds_info : mapping, optional
        What the thresholds were measured on (``measured_on``, pair counts); stored as
        ``spec["thresholds_measured_on"]``.
    training : mapping, optional
        Training summary (data, counts, miner, margin, epochs, final metrics, versions).
    licence : str
    spec_path : path, optional
        Default: ``onnx_path`` with the suffix ``.json``; must be in the same folder as the model.

    Returns
    -------
    Path
        The spec file.

    Examples
    --------
    >>> write_spec("out/model.onnx", name="orl-cnn", kind="image", dim=128, input_size=64,
    ...            template=default_template(64), preprocessing=PREPROCESSING)  # doctest: +SKIP
    PosixPath('out/model.json')
    """
    onnx_file = Path(onnx_path)
    if not onnx_file.is_file():
        raise ModelNotFoundError(f"ONNX model not found: {onnx_file}")
    spec_file = Path(spec_path) if spec_path is not None else onnx_file.with_suffix(".json")
    if spec_file.resolve().parent != onnx_file.resolve().parent:
        raise InvalidArgumentError(
            "the spec must be written in the same folder as the ONNX model (it names it relatively)"
        )
    if kind not in ("image", "head"):
        raise InvalidArgumentError(f"kind must be 'image' or 'head', got {kind!r}")
    if not name or "@" in name:
        raise InvalidArgumentError(f"name must be non-empty and without '@', got {name!r}")
    spec: dict[str, Any] = {
        "format": SPEC_FORMAT,
        "name": name,
        "kind": kind,
        "onnx": onnx_file.name,
        "onnx_sha256": sha256_file(onnx_file),
        "dim": int(dim),
    }
    if kind == "image":
        if input_size is None or template is None or preprocessing is None:
            raise InvalidArgumentError("an image model needs input_size, template and preprocessing")
        pts = [[float(x), float(y)] for x, y in template]
        if len(pts) != 5:
            raise InvalidArgumentError(f"template must have 5 points, got {len(pts)}")
        spec.update(input_size=[int(input_size), int(input_size)], template=pts, preprocessing=dict(preprocessing))
    else:
        if not base or in_dim is None:
            raise InvalidArgumentError("a head model needs base (an embedder name) and in_dim")
        spec.update(base=str(base), in_dim=int(in_dim))
    spec["thresholds"] = {str(k): float(v) for k, v in (thresholds or {}).items()}
    if thresholds_info:
        spec["thresholds_measured_on"] = dict(thresholds_info)
    spec["licence"] = licence
    spec["training"] = dict(training or {})
    spec["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    spec_file.parent.mkdir(parents=True, exist_ok=True)
    spec_file.write_text(json.dumps(spec, indent=2, default=_json_default) + "\n", encoding="utf-8")
    return spec_file


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
