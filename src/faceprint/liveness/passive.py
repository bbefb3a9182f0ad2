"""Passive presentation-attack detection (liveness) on one image.

The passive checker :class:`LBPSVMPassiveChecker` follows the colour-texture approach of
Boulkenafet et al. (2015): uniform LBP^u2 histograms of the face crop, computed separately on the
H, S, V and Y, Cr, Cb channels, concatenated, mapped by an additive chi-squared kernel
approximation and classified by a linear model whose output is mapped to a probability of
*bona fide* (live) presentation. The model shipped in ``faceprint/models/passive_lbp_svm.json``
is trained by ``python bench/liveness.py --write-model`` on the NUAA print-attack subset; see
``MODEL_CARD_passive_lbp_svm.md`` next to it for data, metrics and limits.

Conventions: a score is the probability of a live (bona fide) presentation; a sample is
classified live when ``score >= threshold``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from sklearn.kernel_approximation import AdditiveChi2Sampler
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from ..detection import Detector, check_image, get_detector
from ..errors import (
    InvalidArgumentError,
    InvalidFileError,
    ModelIntegrityError,
    ModelNotFoundError,
    NoFaceError,
    NotFittedError,
    UnknownBackendError,
)
from ..types import Detection, Image, Liveness

__all__ = [
    "face_crop",
    "lbp_colour_features",
    "LBPSVMPassiveChecker",
    "default_passive_checker",
    "DEFAULT_MODEL_FILE",
    "DEFAULT_MODEL_SHA256",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

DEFAULT_MODEL_FILE = "passive_lbp_svm.json"
DEFAULT_MODEL_SHA256 = "b08cfbea3241452ac5a771edd8d2fd283956904caebc640873d8c74d006f004e"
_FORMAT = "faceprint-passive-lbp-svm/1"


# -- features --------------------------------------------------------------------------------
def face_crop(image: Image, detection: Detection, *, size: int = 64, expand: float = 1.2) -> Image:
    """Square crop around the face box, side ``expand`` x the longer box side, resized to ``size``.

    Parts outside the image are filled by edge replication.
    """
    cx, cy = detection.center
    half = max(detection.width, detection.height) * expand / 2.0
    x1, y1 = int(math.floor(cx - half)), int(math.floor(cy - half))
    side = max(int(math.ceil(2 * half)), 1)
    h, w = image.shape[:2]
    pad = max(0, -x1, -y1, x1 + side - w, y1 + side - h)
    src = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else image
    crop = src[y1 + pad : y1 + pad + side, x1 + pad : x1 + pad + side]
    return np.ascontiguousarray(cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA))


_LBP_BINS = {"nri_uniform": lambda p: p * (p - 1) + 3, "uniform": lambda p: p + 2}


def _lbp_hist(channel: npt.NDArray[np.uint8], p: int, r: float, method: str) -> FloatArray:
    from skimage.feature import local_binary_pattern

    codes = local_binary_pattern(channel, p, r, method=method)
    hist = np.bincount(codes.astype(np.int64).ravel(), minlength=_LBP_BINS[method](p)).astype(np.float64)
    return hist / hist.sum()


def lbp_colour_features(
    crop: Image, *, radii: Sequence[int] = (1,), points: int = 8, method: str = "nri_uniform"
) -> FloatArray:
    """LBP histograms of the H, S, V, Y, Cr, Cb channels of an RGB face crop, concatenated.

    ``method="nri_uniform"`` is the classic uniform LBP^u2 (59 bins for 8 points, as in
    Boulkenafet et al.); ``"uniform"`` is scikit-image's rotation-invariant uniform LBP
    (``points + 2`` bins). Each histogram sums to 1.

    Examples
    --------
    >>> crop = np.zeros((64, 64, 3), np.uint8)
    >>> lbp_colour_features(crop).shape
    (354,)
    >>> lbp_colour_features(crop, method="uniform").shape
    (60,)
    """
    if method not in _LBP_BINS:
        raise UnknownBackendError(f"unknown LBP method {method!r}; valid: {', '.join(sorted(_LBP_BINS))}")
    crop = check_image(crop, what="face crop", min_side=8)
    hsv = cv2.cvtColor(crop, cv2.COLOR_RGB2HSV)
    ycrcb = cv2.cvtColor(crop, cv2.COLOR_RGB2YCrCb)
    feats = [
        _lbp_hist(np.ascontiguousarray(space[..., c]), points, float(r), method)
        for r in radii
        for space in (hsv, ycrcb)
        for c in range(3)
    ]
    return np.concatenate(feats)


# -- checker ---------------------------------------------------------------------------------
def largest_face(detector: Detector | None, image: Image) -> tuple[Detector, Detection]:
    """The largest face of ``image`` for a passive check, and the detector used (YuNet when None).

    Raises :class:`NoFaceError` when there is none. Shared by every passive checker.
    """
    image = check_image(image, what="liveness input", min_side=16)
    det = detector if detector is not None else get_detector("yunet")
    faces = det.detect(image)
    if not faces:
        raise NoFaceError(f"no face found in the {image.shape[1]}x{image.shape[0]} image for the liveness check")
    return det, max(faces, key=lambda d: d.area)


class LBPSVMPassiveChecker:
    """Passive single-image PAD: colour LBP + additive-chi2 kernel map + linear classifier.

    ``score`` is the classifier's probability of a bona fide presentation (logistic regression,
    so calibrated only on the training distribution: NUAA, one webcam, print attacks).

    Parameters
    ----------
    crop_size : int
        Side of the square face crop the features are computed on.
    expand : float
        Crop side as a multiple of the detector box's longer side.
    radii : sequence of int
        LBP radii (8 neighbours each).
    lbp_method : str
        ``"nri_uniform"`` (LBP^u2, 59 bins) or ``"uniform"`` (rotation-invariant, 10 bins).
    sample_steps : int
        ``AdditiveChi2Sampler`` sample steps.
    C : float
        Inverse regularisation strength of the logistic regression.
    threshold : float
        Decision threshold on the score (set by ``fit`` callers, e.g. at the cross-validated EER).
    unsure_margin : float
        Scores within this distance of the threshold get the verdict "unsure".
    detector : Detector, optional
        Face detector used when ``score`` gets no detection; default YuNet (built lazily).
    """

    method = "lbp-svm"

    def __init__(
        self,
        *,
        crop_size: int = 128,
        expand: float = 1.2,
        radii: Sequence[int] = (1,),
        lbp_method: str = "nri_uniform",
        sample_steps: int = 2,
        C: float = 1.0,
        threshold: float = 0.5,
        unsure_margin: float = 0.0,
        detector: Detector | None = None,
    ) -> None:
        self.crop_size = crop_size
        self.expand = expand
        self.radii = tuple(radii)
        self.lbp_method = lbp_method
        self.sample_steps = sample_steps
        self.C = C
        self.threshold = threshold
        self.unsure_margin = unsure_margin
        self.detector = detector

    # features
    def detect(self, image: Image) -> Detection:
        """The largest face of ``image``; :class:`NoFaceError` when there is none."""
        self.detector, face = largest_face(self.detector, image)
        return face

    def features(self, image: Image, detection: Detection | None = None) -> FloatArray:
        """Feature vector of the (largest, or given) face of ``image``."""
        image = check_image(image, what="liveness input", min_side=16)
        det = self.detect(image) if detection is None else detection
        crop = face_crop(image, det, size=self.crop_size, expand=self.expand)
        return lbp_colour_features(crop, radii=self.radii, method=self.lbp_method)

    def _map(self, X: FloatArray) -> FloatArray:
        mapped: FloatArray = AdditiveChi2Sampler(sample_steps=self.sample_steps).fit_transform(X)
        return mapped

    # training
    def fit(self, X: npt.ArrayLike, is_attack: npt.ArrayLike) -> LBPSVMPassiveChecker:
        """Fit on feature vectors (from :meth:`features`); ``is_attack`` True for attacks."""
        X = np.asarray(X, dtype=np.float64)
        y = ~np.asarray(is_attack).astype(bool)  # 1 = bona fide
        if X.ndim != 2 or X.shape[0] != y.shape[0]:
            raise InvalidArgumentError(f"expected X of shape (n, d) matching {y.shape[0]} labels, got {X.shape}")
        Z = self._map(X)
        scaler = StandardScaler().fit(Z)
        clf = LogisticRegression(C=self.C, max_iter=5000, tol=1e-8)
        clf.fit(scaler.transform(Z), y.astype(np.int64))
        self.n_features_in_ = X.shape[1]
        self.mean_ = scaler.mean_.astype(np.float64)
        self.scale_ = scaler.scale_.astype(np.float64)
        self.coef_ = clf.coef_.ravel().astype(np.float64)
        self.intercept_ = float(clf.intercept_[0])
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise NotFittedError("LBPSVMPassiveChecker is not fitted; call fit() or load()")

    def decision_function(self, X: npt.ArrayLike) -> FloatArray:
        """Signed distance (log-odds of bona fide) for feature vectors."""
        self._check_fitted()
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        if X.shape[1] != self.n_features_in_:
            raise InvalidArgumentError(f"expected {self.n_features_in_} features, got {X.shape[1]}")
        Z = (self._map(X) - self.mean_) / self.scale_
        out: FloatArray = Z @ self.coef_ + self.intercept_
        return out

    def score_features(self, X: npt.ArrayLike) -> FloatArray:
        """Probability of bona fide for feature vectors."""
        d = self.decision_function(X)
        out: FloatArray = 1.0 / (1.0 + np.exp(-d))
        return out

    def verdict(self, score: float) -> str:
        if abs(score - self.threshold) < self.unsure_margin:
            return "unsure"
        return "live" if score >= self.threshold else "spoof"

    def score(self, image: Image, detection: Detection | None = None) -> Liveness:
        """Check one image (its largest face, or ``detection``).

        Raises :class:`InvalidImageError` for a non-RGB-uint8 input and :class:`NoFaceError`
        when no face is found.

        Examples
        --------
        >>> checker = default_passive_checker()  # doctest: +SKIP
        >>> checker.score(load_image("selfie.jpg")).verdict  # doctest: +SKIP
        'live'
        """
        self._check_fitted()
        image = check_image(image, what="liveness input", min_side=16)
        det = self.detect(image) if detection is None else detection
        s = float(self.score_features(self.features(image, det))[0])
        return Liveness(
            verdict=self.verdict(s),
            score=s,
            method=self.method,
            details={"threshold": self.threshold, "box": [round(float(v), 2) for v in det.box]},
        )

    # persistence (JSON: no pickle, byte-for-byte reproducible)
    def to_dict(self) -> dict[str, Any]:
        self._check_fitted()
        return {
            "format": _FORMAT,
            "method": self.method,
            "params": {
                "crop_size": self.crop_size,
                "expand": self.expand,
                "radii": list(self.radii),
                "lbp_method": self.lbp_method,
                "sample_steps": self.sample_steps,
                "C": self.C,
                "threshold": self.threshold,
                "unsure_margin": self.unsure_margin,
            },
            "n_features_in": self.n_features_in_,
            "mean": self.mean_.tolist(),
            "scale": self.scale_.tolist(),
            "coef": self.coef_.tolist(),
            "intercept": self.intercept_,
        }

    def save(self, path: str | Path) -> None:
        """Write the fitted model as JSON (floats round-trip exactly)."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n", encoding="utf-8")

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, detector: Detector | None = None) -> LBPSVMPassiveChecker:
        if d.get("format") != _FORMAT:
            raise InvalidFileError(f"not a passive LBP model: format {d.get('format')!r}, expected {_FORMAT!r}")
        p = d["params"]
        obj = cls(
            crop_size=int(p["crop_size"]),
            expand=float(p["expand"]),
            radii=[int(r) for r in p["radii"]],
            lbp_method=str(p["lbp_method"]),
            sample_steps=int(p["sample_steps"]),
            C=float(p["C"]),
            threshold=float(p["threshold"]),
            unsure_margin=float(p["unsure_margin"]),
            detector=detector,
        )
        obj.n_features_in_ = int(d["n_features_in"])
        obj.mean_ = np.asarray(d["mean"], dtype=np.float64)
        obj.scale_ = np.asarray(d["scale"], dtype=np.float64)
        obj.coef_ = np.asarray(d["coef"], dtype=np.float64)
        obj.intercept_ = float(d["intercept"])
        return obj

    @classmethod
    def load(cls, path: str | Path, *, detector: Detector | None = None) -> LBPSVMPassiveChecker:
        """Read a model written by :meth:`save`."""
        p = Path(path)
        if not p.is_file():
            raise ModelNotFoundError(f"liveness model not found: {p}")
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise InvalidFileError(f"{p}: not a passive LBP model ({err})") from err
        return cls.from_dict(d, detector=detector)


def default_passive_checker(*, detector: Detector | None = None) -> LBPSVMPassiveChecker:
    """The shipped NUAA-trained model, checked against its sha256 (research use; see the model card)."""
    ref = resources.files("faceprint") / "models" / DEFAULT_MODEL_FILE
    try:
        data = ref.read_bytes()
    except (FileNotFoundError, OSError) as err:
        raise ModelNotFoundError(f"shipped liveness model {DEFAULT_MODEL_FILE} is missing from faceprint") from err
    digest = hashlib.sha256(data).hexdigest()
    if digest != DEFAULT_MODEL_SHA256:
        raise ModelIntegrityError(
            f"{DEFAULT_MODEL_FILE}: sha256 {digest} does not match the expected {DEFAULT_MODEL_SHA256}"
        )
    return LBPSVMPassiveChecker.from_dict(json.loads(data.decode("utf-8")), detector=detector)
