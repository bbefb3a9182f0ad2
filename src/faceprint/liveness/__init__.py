"""Liveness (presentation-attack detection): passive on one image, active on a video, PAD metrics.

* :mod:`.passive` -- the NUAA-trained colour-LBP checker (:func:`default_passive_checker`);
* :mod:`.cnn` -- the compact CNN checker run by onnxruntime (:func:`default_cnn_checker`; the default);
* :mod:`.quality` -- is a face fit for a passive verdict (size, exposure, sharpness, pose)?
* :mod:`.checkers` -- the passive checkers by name (:func:`get_passive_checker`: ``"cnn"``, ``"lbp"``);
* :mod:`.metrics` -- ISO/IEC 30107-3 error rates (:func:`pad_metrics`);
* :mod:`.protocol` -- session- and subject-disjoint evaluation folds (:func:`session_subject_folds`);
* :mod:`.synthetic` -- simulated print / screen-replay attacks (:func:`simulate_attack`) and capture
  conditions (:func:`simulate_capture`) for training;
* :mod:`.landmarks` -- MediaPipe's 478-point face mesh and blendshapes run with ai-edge-litert;
* :mod:`.active` -- blink / head-turn events and challenge-response checks on a video;
* :mod:`.video` -- reading videos, passive checks on video frames, folder evaluation.

Nothing here loads a model at import time.
"""

from __future__ import annotations

from .active import (
    ACTIONS,
    Challenge,
    ChallengeResult,
    Event,
    EventParams,
    VideoAnalysis,
    analyse_video,
    check_challenge,
    count_blinks,
    detect_events,
    frontal_frame,
    issue_challenge,
    match_actions,
)
from .checkers import DEFAULT_PASSIVE_CHECKER, PASSIVE_CHECKERS, PassiveChecker, get_passive_checker
from .cnn import CNNPassiveChecker, cnn_crop, default_cnn_checker
from .landmarks import FaceLandmarker, FaceMesh, eye_aspect_ratio, head_pose
from .metrics import eer_threshold, pad_metrics, threshold_at_apcer, threshold_at_bpcer
from .passive import (
    DEFAULT_MODEL_FILE,
    DEFAULT_MODEL_SHA256,
    LBPSVMPassiveChecker,
    default_passive_checker,
    face_crop,
    lbp_colour_features,
)
from .protocol import CELL_KINDS, NUAA_SUBJECT_GROUPS, SessionSubjectFold, session_subject_folds
from .quality import DEFAULT_QUALITY_LIMITS, FaceQuality, QualityLimits, assess_face
from .synthetic import ATTACK_EFFECTS, ATTACK_KINDS, CAPTURE_EFFECTS, simulate_attack, simulate_capture
from .video import (
    REPLAY_LIGHTNESS_THRESHOLD,
    VideoFrames,
    check_video_passive,
    check_video_replay,
    evaluate_liveness_dir,
    face_surround_lightness,
    read_video,
    read_video_bytes,
)

__all__ = [
    "pad_metrics",
    "eer_threshold",
    "threshold_at_apcer",
    "threshold_at_bpcer",
    # protocol
    "CELL_KINDS",
    "NUAA_SUBJECT_GROUPS",
    "SessionSubjectFold",
    "session_subject_folds",
    # quality gate
    "DEFAULT_QUALITY_LIMITS",
    "FaceQuality",
    "QualityLimits",
    "assess_face",
    # synthetic attacks
    "CAPTURE_EFFECTS",
    "simulate_capture",
    "ATTACK_EFFECTS",
    "ATTACK_KINDS",
    "simulate_attack",
    "face_crop",
    "lbp_colour_features",
    "LBPSVMPassiveChecker",
    "default_passive_checker",
    "DEFAULT_MODEL_FILE",
    "DEFAULT_MODEL_SHA256",
    "CNNPassiveChecker",
    "cnn_crop",
    "default_cnn_checker",
    "PASSIVE_CHECKERS",
    "DEFAULT_PASSIVE_CHECKER",
    "PassiveChecker",
    "get_passive_checker",
    # landmarks
    "FaceLandmarker",
    "FaceMesh",
    "eye_aspect_ratio",
    "head_pose",
    # active
    "ACTIONS",
    "Challenge",
    "issue_challenge",
    "frontal_frame",
    "Event",
    "EventParams",
    "VideoAnalysis",
    "detect_events",
    "analyse_video",
    "count_blinks",
    "ChallengeResult",
    "check_challenge",
    "match_actions",
    # video
    "VideoFrames",
    "read_video",
    "read_video_bytes",
    "check_video_passive",
    "check_video_replay",
    "face_surround_lightness",
    "REPLAY_LIGHTNESS_THRESHOLD",
    "evaluate_liveness_dir",
]
