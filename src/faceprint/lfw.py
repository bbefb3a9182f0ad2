"""Compatibility: the LFW workflows moved to :mod:`faceprint.evaluation.lfw`, the LFW pair lists to
:mod:`faceprint.datasets.lfw`. Import from there; these names keep working."""

from __future__ import annotations

from .datasets.lfw import lfw_pairs
from .evaluation.lfw import (
    EmbeddingCache,
    LfwEvaluation,
    embed_pairs,
    evaluate_lfw,
    evaluate_lfw_identification,
    lfw_gender_bias,
    lfw_scores,
    run_lfw_protocol,
    single_fold_threshold,
)

__all__ = [
    "lfw_pairs",
    "embed_pairs",
    "lfw_scores",
    "evaluate_lfw",
    "run_lfw_protocol",
    "LfwEvaluation",
    "evaluate_lfw_identification",
    "lfw_gender_bias",
    "single_fold_threshold",
    "EmbeddingCache",
]
