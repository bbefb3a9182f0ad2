"""The FaceNet triplet loss on L2-normalised embeddings, with online triplet mining.

``L = mean(max(||f(A) - f(P)||² - ||f(A) - f(N)||² + alpha, 0))`` over the selected triplets, with the
*squared* Euclidean distance (on unit vectors ``||u - v||² = 2 - 2 cos(u, v)``), exactly as in
Schroff et al., "FaceNet" (CVPR 2015), eq. 1.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from faceprint.training.miners import Miner, get_miner, squared_distances, triplet_mask

from ..errors import InvalidArgumentError

__all__ = ["triplet_loss", "TripletStats", "TripletLoss"]

logger = logging.getLogger(__name__)


def triplet_loss(anchor: Tensor, positive: Tensor, negative: Tensor, margin: float = 0.2) -> Tensor:
    """Mean hinge of the triplet margin on squared Euclidean distances.

    ``mean_i max(||a_i - p_i||² - ||a_i - n_i||² + margin, 0)``. No normalisation is done here
    (:class:`TripletLoss` normalises first). With zero triplets the result is ``0`` and still part of
    the autograd graph, so ``loss.backward()`` works (and gives zero gradients).

    Parameters
    ----------
    anchor, positive, negative : Tensor, shape (n, d)
    margin : float, default 0.2
        ``alpha``; must be finite and >= 0.

    Returns
    -------
    Tensor
        A scalar.

    Raises
    ------
    ValueError
        On shapes that differ or are not 2-D, or a bad margin.

    Examples
    --------
    >>> a = torch.tensor([[1.0, 0.0]]); p = torch.tensor([[0.0, 1.0]]); n = torch.tensor([[1.0, 0.0]])
    >>> round(float(triplet_loss(a, p, n, margin=0.2)), 4)  # 2 - 0 + 0.2
    2.2
    """
    if not (isinstance(margin, (int, float)) and math.isfinite(margin) and margin >= 0):
        raise InvalidArgumentError(f"margin must be a finite number >= 0, got {margin!r}")
    if anchor.ndim != 2 or positive.shape != anchor.shape or negative.shape != anchor.shape:
        raise InvalidArgumentError(
            f"expected anchor, positive, negative of one shape (n, d), got "
            f"{tuple(anchor.shape)}, {tuple(positive.shape)}, {tuple(negative.shape)}"
        )
    if anchor.shape[0] == 0:
        return (anchor.sum() + positive.sum() + negative.sum()) * 0.0
    d_ap = (anchor - positive).pow(2).sum(dim=1)
    d_an = (anchor - negative).pow(2).sum(dim=1)
    return F.relu(d_ap - d_an + margin).mean()


@dataclass(frozen=True)
class TripletStats:
    """What one batch's mining found.

    Attributes
    ----------
    n_triplets : int
        Triplets the miner selected (the loss is their mean).
    n_active : int
        Selected triplets with a positive loss (they violate the margin and carry gradient).
    n_valid : int
        All valid ``(a, p, n)`` triplets in the batch (``a != p`` same label, ``n`` another label).
    n_valid_active : int
        Valid triplets with a positive loss: ``n_valid_active / n_valid`` compares miners on one scale
        (for batch-all ``fraction_active`` is 1 by construction).
    """

    n_triplets: int
    n_active: int
    n_valid: int = 0
    n_valid_active: int = 0

    @property
    def fraction_active(self) -> float:
        """``n_active / n_triplets`` (0 when nothing was selected)."""
        return self.n_active / self.n_triplets if self.n_triplets else 0.0

    @property
    def fraction_valid_active(self) -> float:
        """``n_valid_active / n_valid`` (0 when the batch holds no valid triplet)."""
        return self.n_valid_active / self.n_valid if self.n_valid else 0.0


class TripletLoss(nn.Module):
    """Triplet loss with online mining inside the batch.

    ``forward(embeddings, labels)`` L2-normalises the embeddings (unless ``normalize=False``), lets the
    miner choose ``(a, p, n)`` index triplets on the detached distances, and returns
    :func:`triplet_loss` over them together with :class:`TripletStats`.

    Parameters
    ----------
    margin : float, default 0.2
    miner : Miner or str, default "semi-hard"
        A miner object or a name of :data:`faceprint.training.miners.MINERS`.
    normalize : bool, default True

    Examples
    --------
    >>> crit = TripletLoss(margin=0.2, miner="batch-all")
    >>> emb = torch.tensor([[1.0, 0.0], [1.0, 0.1], [0.9, 0.1], [1.0, 0.05]])
    >>> loss, stats = crit(emb, torch.tensor([0, 0, 1, 1]))
    >>> stats.n_triplets == stats.n_active, stats.n_valid
    (True, 8)
    """

    def __init__(self, margin: float = 0.2, miner: Miner | str = "semi-hard", normalize: bool = True) -> None:
        super().__init__()
        if not (isinstance(margin, (int, float)) and math.isfinite(margin) and margin >= 0):
            raise InvalidArgumentError(f"margin must be a finite number >= 0, got {margin!r}")
        self.margin = float(margin)
        self.miner: Miner = get_miner(miner) if isinstance(miner, str) else miner
        self.normalize = normalize

    def forward(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, TripletStats]:
        if embeddings.ndim != 2:
            raise InvalidArgumentError(f"expected embeddings of shape (n, d), got {tuple(embeddings.shape)}")
        labels = torch.as_tensor(labels, device=embeddings.device)
        if labels.shape != (embeddings.shape[0],):
            raise InvalidArgumentError(f"expected {embeddings.shape[0]} labels, got shape {tuple(labels.shape)}")
        emb = F.normalize(embeddings, dim=1) if self.normalize else embeddings
        with torch.no_grad():
            detached = emb.detach()
            a, p, n = self.miner(detached, labels, self.margin)
            dist = squared_distances(detached)
            hinge = dist.unsqueeze(2) - dist.unsqueeze(1) + self.margin  # [a, p, n]
            valid = triplet_mask(labels)
            n_valid = int(valid.sum())
            n_valid_active = int((valid & (hinge > 0)).sum())
            sel = (detached[a] - detached[p]).pow(2).sum(1) - (detached[a] - detached[n]).pow(2).sum(1) + self.margin
            n_active = int((sel > 0).sum())  # the same arithmetic as triplet_loss
        loss = triplet_loss(emb[a], emb[p], emb[n], self.margin)
        stats = TripletStats(int(a.numel()), n_active, n_valid, n_valid_active)
        return loss, stats
