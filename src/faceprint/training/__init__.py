"""FaceNet-style training (PyTorch): triplet loss, online miners, P x K sampler, networks, trainer.

torch is imported only inside this package (install the ``train`` extra); ``import faceprint``
never imports it.
"""

from __future__ import annotations

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
from faceprint.training.networks import PREPROCESSING, AdaptationHead, CompactFaceNet, to_tensor
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
    "AdaptationHead",
    "TrainConfig",
    "StepInfo",
    "EpochInfo",
    "History",
    "Trainer",
    "evaluate_embeddings",
    "plot_history",
]
