"""FaceNet-style training (PyTorch): triplet loss, online miners, P x K sampler, networks, trainer,
and the whole workflow behind ``faceprint train`` (:func:`train_embedder`, in ``workflow``).

torch is imported only inside this package (install the ``train`` extra), and only when one of
the names below is first used (:func:`train_embedder`: when it runs): ``import faceprint`` and
``faceprint.cli`` (which registers ``faceprint train``) stay cheap and work without torch installed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from faceprint.training.loss import TripletLoss, TripletStats, triplet_loss
    from faceprint.training.miners import (
        MINERS,
        BatchAllTripletMiner,
        BatchHardTripletMiner,
        Miner,
        RandomTripletMiner,
        SemiHardTripletMiner,
        get_miner,
    )
    from faceprint.training.networks import (
        PREPROCESSING,
        AdaptationHead,
        CentreView,
        CompactFaceNet,
        EnsembleNet,
        to_tensor,
    )
    from faceprint.training.sampler import PKSampler
    from faceprint.training.trainer import (
        EpochInfo,
        History,
        StepInfo,
        TrainConfig,
        Trainer,
        evaluate_embeddings,
        plot_history,
    )
    from faceprint.training.workflow import (
        ProgressStage,
        SilentReporter,
        TrainReporter,
        TrainSummary,
        train_embedder,
    )

_EXPORTS: dict[str, str] = {
    "triplet_loss": "loss",
    "TripletLoss": "loss",
    "TripletStats": "loss",
    "Miner": "miners",
    "MINERS": "miners",
    "get_miner": "miners",
    "RandomTripletMiner": "miners",
    "BatchAllTripletMiner": "miners",
    "BatchHardTripletMiner": "miners",
    "SemiHardTripletMiner": "miners",
    "PKSampler": "sampler",
    "PREPROCESSING": "networks",
    "to_tensor": "networks",
    "CompactFaceNet": "networks",
    "EnsembleNet": "networks",
    "CentreView": "networks",
    "AdaptationHead": "networks",
    "TrainConfig": "trainer",
    "StepInfo": "trainer",
    "EpochInfo": "trainer",
    "History": "trainer",
    "Trainer": "trainer",
    "evaluate_embeddings": "trainer",
    "plot_history": "trainer",
    "train_embedder": "workflow",
    "TrainSummary": "workflow",
    "TrainReporter": "workflow",
    "ProgressStage": "workflow",
    "SilentReporter": "workflow",
}

__all__ = [
    "triplet_loss",
    "TripletLoss",
    "TripletStats",
    "Miner",
    "MINERS",
    "get_miner",
    "RandomTripletMiner",
    "BatchAllTripletMiner",
    "BatchHardTripletMiner",
    "SemiHardTripletMiner",
    "PKSampler",
    "PREPROCESSING",
    "to_tensor",
    "CompactFaceNet",
    "EnsembleNet",
    "CentreView",
    "AdaptationHead",
    "TrainConfig",
    "StepInfo",
    "EpochInfo",
    "History",
    "Trainer",
    "evaluate_embeddings",
    "plot_history",
    "train_embedder",
    "TrainSummary",
    "TrainReporter",
    "ProgressStage",
    "SilentReporter",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'faceprint.training' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"faceprint.training.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
