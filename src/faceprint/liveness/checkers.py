"""The passive (single-image) liveness checkers by name: ``"lbp"`` (colour LBP + linear model) and ``"cnn"``.

:data:`PASSIVE_CHECKERS` maps a name to a factory of the shipped model (sha256-checked);
:func:`get_passive_checker` builds one. :data:`DEFAULT_PASSIVE_CHECKER` is what ``liveness="passive"``,
``faceprint liveness`` and the service use: the CNN, which holds on capture sessions and people it
was not trained on where the LBP model does not (``bench/results/liveness_cnn.json``: held-out
session and subjects, EER 1.5 % against 22.4 %).

Examples
--------
>>> PASSIVE_CHECKERS.names()
['cnn', 'lbp']
>>> get_passive_checker("lbp").method  # doctest: +SKIP
'lbp-svm'
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..detection import Detector
from ..registry import Registry
from ..types import Detection, Image, Liveness
from .cnn import default_cnn_checker
from .passive import default_passive_checker

__all__ = ["DEFAULT_PASSIVE_CHECKER", "PASSIVE_CHECKERS", "PassiveChecker", "get_passive_checker"]


@runtime_checkable
class PassiveChecker(Protocol):
    """What a passive checker offers: a method name, a threshold, and ``score`` of one image."""

    method: str
    threshold: float

    def score(self, image: Image, detection: Detection | None = None) -> Liveness: ...


PASSIVE_CHECKERS: Registry[PassiveChecker] = Registry("passive liveness checker")
PASSIVE_CHECKERS.register("lbp")(default_passive_checker)
PASSIVE_CHECKERS.register("cnn")(default_cnn_checker)

DEFAULT_PASSIVE_CHECKER = "cnn"
"""The checker behind ``liveness="passive"`` and ``faceprint liveness``."""


def get_passive_checker(name: str = DEFAULT_PASSIVE_CHECKER, *, detector: Detector | None = None) -> PassiveChecker:
    """The shipped passive checker registered as ``name`` (:class:`~faceprint.errors.UnknownBackendError` if none)."""
    return PASSIVE_CHECKERS.create(name, detector=detector)
