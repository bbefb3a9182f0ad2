"""Evaluation: pure metrics, the report model, its rendering, and the workflows that drive a pipeline.

Metrics (numpy / scikit-learn on scores and embeddings; no file, no model, no data set):

* :mod:`.verification`: 1:1 scores, thresholds at an FMR, TAR@FMR, k-fold accuracy, ROC AUC, EER;
* :mod:`.bias`: FMR / FNMR per demographic group with bootstrap intervals, worst / best ratios;
* :mod:`.report`: the report model (:func:`build_report`, :class:`BiasSection`), a JSON-ready dict.

Identification metrics (CMC, DIR@FPIR) are in :mod:`faceprint.identification` and PAD metrics
(APCER / BPCER) in :mod:`faceprint.liveness.metrics`.

Rendering: :mod:`.report_html` (``report.json`` + a self-contained ``report.html``, matplotlib).

Workflows (they read a data set through :mod:`faceprint.datasets` and embed with a pipeline):
:mod:`.lfw` (:func:`~.lfw.run_lfw_protocol`, :func:`~.lfw.evaluate_lfw`,
:func:`~.lfw.evaluate_lfw_identification`) and :mod:`.utkface` (:func:`~.utkface.evaluate_bias`).
They are imported on first use, so ``import faceprint.evaluation`` stays light.

The data set names once defined here (``data_root``, ``lfw_paths``, ``read_lfw_pairs``, ``Pair``,
``LfwPaths``, ``DATA_ENV_VAR``) still import from here; they live in :mod:`faceprint.datasets`.
"""

from __future__ import annotations

from typing import Any

from ..datasets.lfw import LfwPaths, Pair, lfw_paths, read_lfw_pairs
from ..datasets.root import DATA_ENV_VAR, data_root
from .bias import (
    GroupProportion,
    GroupRate,
    bias_sentences,
    group_error_rates,
    group_proportions,
    utkface_impostor_fmr,
    worst_best_ratio,
)
from .report import BiasSection, ModelScores, bias_section, build_report
from .report_html import format_value, render_html, write_report
from .verification import (
    FoldResult,
    VerificationReport,
    best_accuracy_threshold,
    calibrate_thresholds,
    cosine_scores,
    evaluate_verification,
    finite_scores,
    fmr_key,
    fuse_scores,
    kfold_accuracy,
    tar_at_fmr,
    threshold_at_fmr,
)

__all__ = [
    # verification
    "FoldResult",
    "VerificationReport",
    "cosine_scores",
    "threshold_at_fmr",
    "tar_at_fmr",
    "best_accuracy_threshold",
    "kfold_accuracy",
    "evaluate_verification",
    "calibrate_thresholds",
    "fuse_scores",
    "fmr_key",
    "finite_scores",
    # bias
    "GroupRate",
    "GroupProportion",
    "group_error_rates",
    "group_proportions",
    "worst_best_ratio",
    "bias_sentences",
    "utkface_impostor_fmr",
    # report model and rendering
    "ModelScores",
    "BiasSection",
    "bias_section",
    "build_report",
    "format_value",
    "render_html",
    "write_report",
    # workflows (lazy)
    "run_lfw_protocol",
    "evaluate_lfw",
    "evaluate_lfw_identification",
    "LfwEvaluation",
    "evaluate_bias",
    "BiasEvaluation",
    # data set names kept importable from here (see faceprint.datasets)
    "DATA_ENV_VAR",
    "Pair",
    "LfwPaths",
    "data_root",
    "lfw_paths",
    "read_lfw_pairs",
]

_LAZY = {
    "run_lfw_protocol": "lfw",
    "evaluate_lfw": "lfw",
    "evaluate_lfw_identification": "lfw",
    "LfwEvaluation": "lfw",
    "evaluate_bias": "utkface",
    "BiasEvaluation": "utkface",
}


def __getattr__(name: str) -> Any:
    """The workflows import the pipeline: load their module on first use only."""
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
