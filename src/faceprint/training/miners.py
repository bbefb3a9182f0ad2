"""Online triplet miners: choose ``(anchor, positive, negative)`` index triplets inside a batch.

Every miner works on the squared Euclidean distances of the (already L2-normalised) embeddings, the
distance of the triplet loss, and returns three equally long ``int64`` index tensors. A triplet is
*valid* when ``a != p``, ``label[a] == label[p]`` and ``label[n] != label[a]``; a miner only returns
valid triplets, and returns three empty tensors when there are none (a batch of one identity, or only
singleton identities).

==============  =====================================================================================
name            triplets
==============  =====================================================================================
``random``      for every valid ``(a, p)`` pair, ``n_per_anchor`` negatives drawn uniformly
``batch-all``   every valid triplet with a positive loss, ``d_ap - d_an + margin > 0``
``batch-hard``  per anchor: its farthest positive and its nearest negative (Hermans et al. 2017),
                kept even when their loss is zero
``semi-hard``   per valid ``(a, p)``: the nearest negative with ``d_ap < d_an < d_ap + margin``
                (FaceNet, Schroff et al. 2015); pairs without one give no triplet
==============  =====================================================================================

Ties are broken by the lowest index (``argmax`` / ``argmin`` order).
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import Tensor

from faceprint.registry import Registry

from ..errors import InvalidArgumentError

__all__ = [
    "Miner",
    "MINERS",
    "get_miner",
    "RandomTripletMiner",
    "BatchAllTripletMiner",
    "BatchHardTripletMiner",
    "SemiHardTripletMiner",
    "squared_distances",
    "triplet_mask",
]

Triplets = tuple[Tensor, Tensor, Tensor]


class Miner(Protocol):
    """Chooses triplets inside a batch: ``miner(embeddings, labels, margin) -> (a, p, n)``."""

    def __call__(self, embeddings: Tensor, labels: Tensor, margin: float) -> Triplets: ...


MINERS: Registry[Miner] = Registry("miner")


def get_miner(name: str = "semi-hard", **kwargs: Any) -> Miner:
    """Build the miner registered as ``name`` (``ValueError`` listing the valid names if unknown).

    Examples
    --------
    >>> get_miner("batch-hard")
    BatchHardTripletMiner()
    """
    return MINERS.create(name, **kwargs)


def squared_distances(embeddings: Tensor) -> Tensor:
    """``(n, n)`` matrix of ``||e_i - e_j||²`` (computed by differences: exact zeros on the diagonal).

    Examples
    --------
    >>> squared_distances(torch.tensor([[0.0, 0.0], [3.0, 4.0]])).tolist()
    [[0.0, 25.0], [25.0, 0.0]]
    """
    return (embeddings.unsqueeze(1) - embeddings.unsqueeze(0)).pow(2).sum(dim=2)


def _check(embeddings: Tensor, labels: Tensor) -> Tensor:
    if embeddings.ndim != 2:
        raise InvalidArgumentError(f"expected embeddings of shape (n, d), got {tuple(embeddings.shape)}")
    labels = torch.as_tensor(labels, device=embeddings.device)
    if labels.shape != (embeddings.shape[0],):
        raise InvalidArgumentError(
            f"expected one label per embedding ({embeddings.shape[0]}), got shape {tuple(labels.shape)}"
        )
    return labels


def _pair_masks(labels: Tensor) -> tuple[Tensor, Tensor]:
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    eye = torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same  # positive pairs (a != p), negative pairs


def triplet_mask(labels: Tensor) -> Tensor:
    """``(n, n, n)`` bool mask of valid triplets ``[a, p, n]``.

    Examples
    --------
    >>> int(triplet_mask(torch.tensor([0, 0, 1])).sum())  # (0, 1, 2) and (1, 0, 2)
    2
    """
    pos, neg = _pair_masks(labels)
    return pos.unsqueeze(2) & neg.unsqueeze(1)


def _empty(device: torch.device) -> Triplets:
    e = torch.empty(0, dtype=torch.long, device=device)
    return e, e.clone(), e.clone()


@MINERS.register("random")
class RandomTripletMiner:
    """For every valid anchor-positive pair, ``n_per_anchor`` negatives drawn uniformly at random.

    Negatives are drawn with replacement (the same negative may appear twice for a pair). With a
    ``seed`` the draws come from a private generator (reproducible); otherwise from torch's global
    generator.

    Examples
    --------
    >>> a, p, n = RandomTripletMiner(seed=0)(torch.eye(3), torch.tensor([0, 0, 1]), 0.2)
    >>> a.tolist(), p.tolist(), n.tolist()
    ([0, 1], [1, 0], [2, 2])
    """

    def __init__(self, n_per_anchor: int = 1, seed: int | None = None) -> None:
        if not isinstance(n_per_anchor, int) or n_per_anchor < 1:
            raise InvalidArgumentError(f"n_per_anchor must be an int >= 1, got {n_per_anchor!r}")
        self.n_per_anchor = n_per_anchor
        self.seed = seed
        self._generator: torch.Generator | None = None

    def __repr__(self) -> str:
        return f"RandomTripletMiner(n_per_anchor={self.n_per_anchor}, seed={self.seed})"

    def __call__(self, embeddings: Tensor, labels: Tensor, margin: float) -> Triplets:
        labels = _check(embeddings, labels)
        pos, neg = _pair_masks(labels)
        a, p = torch.nonzero(pos, as_tuple=True)
        n_neg = neg.sum(dim=1)
        keep = n_neg[a] > 0
        a, p = a[keep], p[keep]
        if a.numel() == 0:
            return _empty(embeddings.device)
        if self.seed is not None and self._generator is None:
            self._generator = torch.Generator().manual_seed(self.seed)
        a = a.repeat_interleave(self.n_per_anchor)
        p = p.repeat_interleave(self.n_per_anchor)
        # the k-th negative of anchor a, k uniform in [0, n_neg[a])
        u = torch.rand(a.numel(), generator=self._generator).to(embeddings.device)
        k = torch.clamp((u * n_neg[a]).long(), max=n_neg[a] - 1)
        neg_rank = torch.cumsum(neg.long(), dim=1) - 1  # rank of each negative within its row
        neg_rank = torch.where(neg, neg_rank, torch.full_like(neg_rank, -1))
        n = (neg_rank[a] == k.unsqueeze(1)).long().argmax(dim=1)
        return a, p, n


@MINERS.register("batch-all")
class BatchAllTripletMiner:
    """Every valid triplet with a positive loss: ``d_ap - d_an + margin > 0``.

    Examples
    --------
    >>> emb = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    >>> [t.tolist() for t in BatchAllTripletMiner()(emb, torch.tensor([0, 0, 1]), 0.2)]
    [[0, 1], [1, 0], [2, 2]]
    """

    def __repr__(self) -> str:
        return "BatchAllTripletMiner()"

    def __call__(self, embeddings: Tensor, labels: Tensor, margin: float) -> Triplets:
        labels = _check(embeddings, labels)
        d = squared_distances(embeddings)
        active = triplet_mask(labels) & (d.unsqueeze(2) - d.unsqueeze(1) + margin > 0)
        a, p, n = torch.nonzero(active, as_tuple=True)
        return a, p, n


@MINERS.register("batch-hard")
class BatchHardTripletMiner:
    """Per anchor: the farthest positive and the nearest negative (Hermans, Beyer & Leibe 2017).

    One triplet per anchor that has at least one positive and one negative, kept even when its loss is
    zero (so ``fraction_active`` shows how many anchors still violate the margin).

    Examples
    --------
    >>> emb = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [0.5, 0.0]])
    >>> [t.tolist() for t in BatchHardTripletMiner()(emb, torch.tensor([0, 0, 0, 1]), 0.2)]
    [[0, 1, 2], [2, 2, 0], [3, 3, 3]]
    """

    def __repr__(self) -> str:
        return "BatchHardTripletMiner()"

    def __call__(self, embeddings: Tensor, labels: Tensor, margin: float) -> Triplets:
        labels = _check(embeddings, labels)
        d = squared_distances(embeddings)
        pos, neg = _pair_masks(labels)
        anchors = torch.nonzero(pos.any(dim=1) & neg.any(dim=1), as_tuple=True)[0]
        if anchors.numel() == 0:
            return _empty(embeddings.device)
        d_pos = torch.where(pos, d, torch.full_like(d, -1.0))[anchors]
        d_neg = torch.where(neg, d, torch.full_like(d, float("inf")))[anchors]
        return anchors, d_pos.argmax(dim=1), d_neg.argmin(dim=1)


@MINERS.register("semi-hard")
class SemiHardTripletMiner:
    """FaceNet's semi-hard negatives: per valid ``(a, p)``, the nearest negative with ``d_ap < d_an < d_ap + margin``.

    Semantics (chosen and tested against a brute-force loop): the candidate set of each pair is the set
    pytorch-metric-learning's ``TripletMarginMiner(type_of_triplets="semihard")`` returns with a squared
    distance, except on the upper boundary: pml keeps ``d_an == d_ap + margin`` (a zero-loss triplet), we
    use strict inequalities on both sides. Of the candidates we keep the *hardest*, the smallest
    ``d_an`` (FaceNet section 3.2, and TensorFlow-Addons' ``triplet_semihard_loss``). A pair with no
    semi-hard negative gives **no** triplet: no fallback to the easiest or hardest negative (TF-Addons
    falls back to the farthest negative; its loss is zero whenever any easy negative exists, and we
    rather report the pair as unmined than add zero-loss rows that dilute the mean).

    Examples
    --------
    >>> emb = torch.tensor([[0.0], [0.5], [0.75], [1.0]])  # squared distances are exact binary fractions
    >>> [t.tolist() for t in SemiHardTripletMiner()(emb, torch.tensor([0, 0, 1, 1]), 0.5)]
    [[0, 3], [1, 2], [2, 1]]

    Pair (1, 0): negative 3 is exactly as far as the positive (0.25), not semi-hard; pair (2, 3):
    negative 0 lies exactly at ``d_ap + margin`` and negative 1 exactly at ``d_ap``, neither counts.
    """

    def __repr__(self) -> str:
        return "SemiHardTripletMiner()"

    def __call__(self, embeddings: Tensor, labels: Tensor, margin: float) -> Triplets:
        labels = _check(embeddings, labels)
        d = squared_distances(embeddings)
        pos, neg = _pair_masks(labels)
        a, p = torch.nonzero(pos, as_tuple=True)
        if a.numel() == 0:
            return _empty(embeddings.device)
        d_ap = d[a, p].unsqueeze(1)
        d_an = d[a]
        semi = neg[a] & (d_an > d_ap) & (d_an < d_ap + margin)
        has = semi.any(dim=1)
        n = torch.where(semi, d_an, torch.full_like(d_an, float("inf"))).argmin(dim=1)
        return a[has], p[has], n[has]
