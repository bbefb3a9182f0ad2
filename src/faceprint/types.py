"""Core result types: frozen dataclasses shared by every stage.

Conventions used everywhere in faceprint:

* images are RGB ``uint8`` arrays of shape ``(H, W, 3)``;
* boxes are ``(x1, y1, x2, y2)`` float pixels;
* landmarks are ``(5, 2)`` float32 xy in the order left eye, right eye, nose, left mouth
  corner, right mouth corner ("left" = the subject's left as seen in the image's left half,
  i.e. image-left, as YuNet / RetinaFace / InsightFace order them);
* embeddings are L2-normalised ``float32`` vectors; similarity is cosine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

__all__ = [
    "Image",
    "Detection",
    "Face",
    "Match",
    "Liveness",
    "ModelSpec",
    "Verification",
    "HasLiveness",
    "LivenessOption",
    "LivenessRejection",
    "OnMultiple",
    "SPOOF",
    "LIVENESS_UNSURE",
]

Image = npt.NDArray[np.uint8]
"""An RGB uint8 image, shape (H, W, 3)."""


@dataclass(frozen=True)
class Detection:
    """One detected face.

    Attributes
    ----------
    box : tuple of 4 floats
        ``(x1, y1, x2, y2)`` in pixels of the input image.
    score : float
        Detector confidence in ``[0, 1]``.
    landmarks : ndarray, shape (5, 2)
        Eyes, nose tip and mouth corners, xy pixels (image-left first).
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: npt.NDArray[np.float32]

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    @property
    def center(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2.0, (self.box[1] + self.box[3]) / 2.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": [round(float(v), 2) for v in self.box],
            "score": round(float(self.score), 4),
            "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in self.landmarks],
        }


@dataclass(frozen=True)
class Liveness:
    """A presentation-attack-detection result (filled in by the liveness stage)."""

    verdict: str  # "live" | "spoof" | "unsure"
    score: float
    method: str
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def live(self) -> bool:
        return self.verdict == "live"

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "score": round(float(self.score), 6),
            "method": self.method,
            "details": _jsonable(dict(self.details)),
        }


def _jsonable(x: Any) -> Any:
    """Plain JSON types for a details mapping (numpy scalars / arrays, tuples, nested dicts)."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    return str(x)


@dataclass(frozen=True)
class Face:
    """A detected face with its embedding."""

    detection: Detection
    embedding: npt.NDArray[np.float32]
    model: str
    liveness: Liveness | None = None


@dataclass(frozen=True)
class Match:
    """One candidate of a 1:N search, or the result of a 1:1 comparison against a subject."""

    subject_id: int | None
    name: str
    similarity: float
    distance: float
    same: bool
    threshold: float
    normalized_score: float | None = None
    """With a score normaliser (``FacePipeline(score_norm=)``): the subject's normalised score, which
    ``same`` compares with ``threshold`` (then on the normalised scale); else None."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject_id": self.subject_id,
            "name": self.name,
            "similarity": round(float(self.similarity), 6),
            "distance": round(float(self.distance), 6),
            "same": bool(self.same),
            "threshold": round(float(self.threshold), 6),
            **({} if self.normalized_score is None else {"normalized_score": round(float(self.normalized_score), 6)}),
        }


@dataclass(frozen=True)
class Verification:
    """Result of a 1:1 verification.

    ``distance`` is the squared Euclidean distance between unit vectors, ``2 - 2 * similarity``.
    ``threshold`` is a *similarity* threshold, set at ``fmr`` on the model's calibration set.
    """

    similarity: float
    distance: float
    same: bool
    threshold: float
    fmr: float | str
    model: str
    liveness: Liveness | None = None
    """The presentation-attack check of the probe (``a``), when one was asked for. A probe that is
    not judged live never verifies: ``same`` is False and :attr:`decision` says why."""
    score_norm: str | None = None
    """The score normaliser that decided (its key, e.g. ``"s-norm(top_k=100,cohort=2000)"``), else None.
    With one, ``same`` is ``normalized_score >= threshold`` and ``threshold`` is on the normalised
    scale (see :mod:`faceprint.scorenorm`); ``similarity`` stays the raw cosine."""
    normalized_score: float | None = None
    """The normalised score when ``score_norm`` is set, else None."""

    @property
    def decision(self) -> str:
        """``"match"``, ``"no_match"``, or, when a liveness check did not say live, ``"spoof"`` / ``"unsure"``."""
        if self.liveness is not None and self.liveness.verdict != "live":
            return "spoof" if self.liveness.verdict == "spoof" else "unsure"
        return "match" if self.same else "no_match"

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "similarity": round(float(self.similarity), 6),
            "distance": round(float(self.distance), 6),
            "same": bool(self.same),
            "threshold": round(float(self.threshold), 6),
            "fmr": self.fmr,
            "model": self.model,
            "liveness": None if self.liveness is None else self.liveness.to_dict(),
            # only with a score normaliser, so that the default output keeps its keys
            **(
                {}
                if self.score_norm is None
                else {"score_norm": self.score_norm, "normalized_score": round(float(self.normalized_score or 0.0), 6)}
            ),
        }


@dataclass(frozen=True)
class ModelSpec:
    """Static description of an embedding model.

    ``thresholds`` maps an operating point (``"1e-3"``, ``"1e-2"``, ``"best_accuracy"``) to a
    cosine-similarity threshold calibrated on LFW view 1 (``pairsDevTrain.txt``).
    """

    name: str
    dim: int
    input_size: tuple[int, int]
    template: tuple[tuple[float, float], ...]
    thresholds: Mapping[str, float]
    weights_file: str
    weights_sha256: str
    package: str
    licence: str
    notes: str = ""


# -- liveness options and results shared by the pipeline and enrollment ----------------------
SPOOF = "spoof"
""":attr:`Identification.name` of a face whose liveness check said spoof (no gallery search is made)."""
LIVENESS_UNSURE = "liveness-unsure"
""":attr:`Identification.name` of a face whose liveness check could not decide (fails closed)."""
OnMultiple = Literal["largest", "central", "error"]


class HasLiveness(Protocol):
    """A check result that carries a :class:`~faceprint.types.Liveness`.

    For example :class:`faceprint.liveness.ChallengeResult` from a video challenge.
    """

    @property
    def liveness(self) -> Liveness: ...


LivenessOption = Literal["off", "passive"] | str | Liveness | HasLiveness | None
"""``"off"``, ``"passive"`` (the shipped single-image PAD model on the face itself), a
:class:`~faceprint.types.Liveness`, or any result with a ``.liveness`` attribute that is one (e.g. a
:class:`faceprint.liveness.ChallengeResult` from a video challenge). ``None`` on a method: the
pipeline's own setting. Any other string raises ``ValueError`` (``str`` is in the union because option
values often come from configuration files and command lines)."""


@dataclass(frozen=True)
class LivenessRejection:
    """What :meth:`faceprint.FacePipeline.enroll` returns instead of a subject when a photo is not judged live.

    Nothing is written to the gallery. ``liveness`` holds one result per photo (in order).
    """

    name: str
    sources: tuple[str, ...]
    liveness: tuple[Liveness, ...]

    @property
    def decision(self) -> str:
        return SPOOF if any(lv.verdict == "spoof" for lv in self.liveness) else LIVENESS_UNSURE

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "decision": self.decision,
            "photos": [{"source": s, **lv.to_dict()} for s, lv in zip(self.sources, self.liveness)],
        }
