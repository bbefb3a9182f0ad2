"""P x K batch sampler: every batch holds P distinct identities with K samples each."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt
from torch.utils.data import Sampler

from ..errors import InvalidArgumentError

__all__ = ["PKSampler"]

logger = logging.getLogger(__name__)


class PKSampler(Sampler[list[int]]):
    """Batch sampler of ``p`` identities x ``k`` samples, so that every batch has positives and negatives.

    Only identities with at least 2 samples can give a positive pair, so only they are drawn (a
    singleton identity is never part of a batch; it is logged). Each batch draws ``p`` distinct
    identities uniformly without replacement; an identity with at least ``k`` samples gives ``k``
    distinct ones, an identity with fewer gives all of them plus random repeats (sampling **with
    replacement** to fill ``k``). The draws depend only on ``seed`` and the epoch
    (:meth:`set_epoch`), so an epoch can be replayed exactly, e.g. after resuming from a checkpoint.

    Parameters
    ----------
    labels : sequence of int or ndarray, shape (n_samples,)
        Identity of each sample (any integer ids).
    p : int
        Identities per batch, ``2 <= p <=`` the number of identities with >= 2 samples.
    k : int
        Samples per identity, >= 2.
    batches_per_epoch : int, optional
        Default: ``max(1, n_usable_samples // (p * k))``, about one pass over the data.
    seed : int, default 0

    Raises
    ------
    ValueError
        On bad ``p``, ``k`` or labels, or fewer than 2 identities with at least 2 samples.

    Examples
    --------
    >>> s = PKSampler([0, 0, 1, 1, 2, 2, 2], p=2, k=2, batches_per_epoch=3, seed=1)
    >>> batches = list(s)
    >>> len(batches), all(len(b) == 4 for b in batches)
    (3, True)
    """

    def __init__(
        self,
        labels: Sequence[int] | npt.NDArray[np.integer],
        p: int,
        k: int,
        *,
        batches_per_epoch: int | None = None,
        seed: int = 0,
    ) -> None:
        y = np.asarray(labels)
        if y.ndim != 1 or y.size == 0:
            raise InvalidArgumentError(f"expected a non-empty 1-D array of labels, got shape {y.shape}")
        if not np.issubdtype(y.dtype, np.integer):
            raise InvalidArgumentError(f"expected integer labels, got dtype {y.dtype}")
        for name, value, minimum in (("p", p, 2), ("k", k, 2)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
                raise InvalidArgumentError(f"{name} must be an int >= {minimum}, got {value!r}")
        ids, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
        usable = counts >= 2
        if (~usable).any():
            logger.info("PKSampler: %d singleton identities are never drawn (no positive pair)", int((~usable).sum()))
        if usable.sum() < 2:
            raise InvalidArgumentError(
                f"P x K sampling needs at least 2 identities with >= 2 samples, got {int(usable.sum())} "
                f"(of {ids.size} identities)"
            )
        if p > usable.sum():
            raise InvalidArgumentError(f"p={p} exceeds the {int(usable.sum())} identities with >= 2 samples")
        order = np.argsort(inverse, kind="stable")
        starts = np.concatenate(([0], np.cumsum(counts)))
        self._members = [order[starts[i] : starts[i + 1]] for i in np.flatnonzero(usable)]
        n_usable = int(counts[usable].sum())
        if batches_per_epoch is None:
            batches_per_epoch = max(1, n_usable // (p * k))
        if not isinstance(batches_per_epoch, (int, np.integer)) or batches_per_epoch < 1:
            raise InvalidArgumentError(f"batches_per_epoch must be an int >= 1, got {batches_per_epoch!r}")
        self.p, self.k = int(p), int(k)
        self.batches_per_epoch = int(batches_per_epoch)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose batches the next iteration yields."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.batches_per_epoch

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        for _ in range(self.batches_per_epoch):
            batch: list[int] = []
            for ident in rng.choice(len(self._members), size=self.p, replace=False):
                members = self._members[ident]
                if members.size >= self.k:
                    chosen = rng.choice(members, size=self.k, replace=False)
                else:
                    extra = rng.choice(members, size=self.k - members.size, replace=True)
                    chosen = np.concatenate((rng.permutation(members), extra))
                batch.extend(int(i) for i in chosen)
            yield batch
