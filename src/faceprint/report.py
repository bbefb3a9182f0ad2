"""Compatibility: the report model moved to :mod:`faceprint.evaluation.report`, its HTML rendering to
:mod:`faceprint.evaluation.report_html` and the LFW gender section to :mod:`faceprint.evaluation.lfw`.
Import from there; these names keep working."""

from __future__ import annotations

from .evaluation.lfw import lfw_gender_bias
from .evaluation.report import (
    BIAS_RATIO_LIMIT,
    CI_NOTE,
    HISTOGRAM_BINS,
    MAX_CURVE_POINTS,
    UTKFACE_IMPOSTOR_NOTE,
    BiasSection,
    ModelScores,
    bias_section,
    build_report,
)
from .evaluation.report_html import format_value, render_html, write_report

__all__ = [
    "ModelScores",
    "BiasSection",
    "bias_section",
    "lfw_gender_bias",
    "build_report",
    "write_report",
    "render_html",
    "format_value",
    "MAX_CURVE_POINTS",
    "HISTOGRAM_BINS",
    "BIAS_RATIO_LIMIT",
    "CI_NOTE",
    "UTKFACE_IMPOSTOR_NOTE",
]
