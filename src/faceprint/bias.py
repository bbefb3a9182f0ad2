"""Compatibility: the per-group metrics moved to :mod:`faceprint.evaluation.bias`, the LFW gender
lists to :mod:`faceprint.datasets.lfw` and the UTKFace file names to :mod:`faceprint.datasets.utkface`.
Import from there; these names keep working."""

from __future__ import annotations

from .datasets.lfw import GenderLists, lfw_gender, pair_gender_groups, read_gender_lists
from .datasets.utkface import AGE_BANDS, UTK_GENDERS, UTK_RACES, UtkLabel, age_band, parse_utkface_name, utkface_groups
from .evaluation.bias import (
    GroupProportion,
    GroupRate,
    Metric,
    bias_sentences,
    group_error_rates,
    group_proportions,
    utkface_impostor_fmr,
    worst_best_ratio,
)

__all__ = [
    "GroupRate",
    "GroupProportion",
    "GenderLists",
    "UtkLabel",
    "Metric",
    "AGE_BANDS",
    "UTK_GENDERS",
    "UTK_RACES",
    "group_error_rates",
    "group_proportions",
    "worst_best_ratio",
    "bias_sentences",
    "read_gender_lists",
    "lfw_gender",
    "pair_gender_groups",
    "parse_utkface_name",
    "age_band",
    "utkface_groups",
    "utkface_impostor_fmr",
]
