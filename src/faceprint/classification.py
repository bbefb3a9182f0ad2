"""Classifiers on face embeddings: k-nearest-neighbour and SVM, with open-set rejection.

Both classifiers are scikit-learn estimators (keyword-only parameters, ``fit(X, y) -> self``,
``predict``, ``predict_proba``, ``decision_function``, ``score``) that take L2-normalised
embeddings ``X`` of shape ``(n, d)`` and any labels ``y`` (names or ints). Rows are
re-normalised internally, so a dot product is a cosine similarity; a row of zeros is refused.

Open-set identification: a probe whose *open-set score* (:meth:`score_for_open_set`) is below
``unknown_threshold_`` is predicted as ``unknown_label`` ("unknown" by default). The threshold
is either given (``unknown_threshold=``) or chosen from faces of people who are *not* enrolled
with :meth:`~KNNFaceClassifier.fit_unknown_threshold` at a target false-positive
identification rate (FPIR): the fraction of non-mated probes accepted as someone.

* :class:`KNNFaceClassifier`: open-set score = the highest cosine similarity to any training
  sample. ``predict_proba`` is a neighbour vote, **not calibrated**.
* :class:`SVMFaceClassifier`: open-set score = the highest class probability. Probabilities are
  calibrated (Platt sigmoid, cross-validated) when every class has at least 3 samples, and
  ``probability_calibrated_`` says whether they are.

Saved files (:meth:`~KNNFaceClassifier.save`) are ``.npz`` archives read without pickle: they
hold the parameters, the training embeddings and labels, and the model is refitted on load.
"""

from __future__ import annotations

import json
import logging
import math
import numbers
import os
import zipfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import numpy.typing as npt
import sklearn
import sklearn.exceptions
from scipy.special import expit, softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.model_selection import StratifiedKFold
from sklearn.multiclass import OneVsRestClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data

from faceprint import errors

from .errors import InvalidArgumentError, InvalidFileError

if TYPE_CHECKING:
    from faceprint.gallery import GalleryBackend

__all__ = [
    "ClassifierNotFittedError",
    "KNNFaceClassifier",
    "SVMFaceClassifier",
    "from_gallery",
    "load_classifier",
    "FORMAT_VERSION",
]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
"""Version of the classifier file format written by ``save`` (``load`` reads this and older)."""

_FORMAT_NAME = "faceprint-classifier"
_SIMILARITY_BLOCK = 1 << 22  # bound the (m, n_train) similarity block to 32 MiB of float64

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]


class ClassifierNotFittedError(errors.NotFittedError, sklearn.exceptions.NotFittedError):
    """A classifier was used before ``fit``.

    Both a :class:`faceprint.errors.NotFittedError` and a
    :class:`sklearn.exceptions.NotFittedError` (hence also ``ValueError`` and ``AttributeError``).
    """


def _normalise(X: FloatArray) -> FloatArray:
    """Scale each row of ``X`` to unit L2 norm; refuse rows of zeros."""
    scale = np.abs(X).max(axis=1, keepdims=True)  # pre-scaling avoids overflow in the norm
    zero = scale[:, 0] == 0
    if zero.any():
        rows = np.flatnonzero(zero)
        raise InvalidArgumentError(
            f"expected embeddings with a direction, got all-zero row(s) {rows[:10].tolist()} "
            "(rows are L2-normalised, which a zero vector cannot be)"
        )
    X = X / scale
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def _check_threshold(value: object, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise InvalidArgumentError(f"{name} must be None or a finite number, got {value!r}")
    return float(value)


def _json_scalar(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


_C = TypeVar("_C", bound="_FaceClassifier")


class _FaceClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Shared machinery: validation, open-set rejection, threshold fitting, save/load.

    Subclasses implement ``_fit_model``, ``_proba`` and ``_decision`` and ``_open_set`` on
    validated, normalised input, and declare ``unknown_threshold`` / ``unknown_label``.
    """

    unknown_threshold: float | None
    unknown_label: str | int

    # ---------------------------------------------------------------- fitting

    def fit(self: _C, X: npt.ArrayLike, y: npt.ArrayLike, *, fingerprint: str | None = None) -> _C:
        """Fit the classifier on embeddings ``X`` (n, d) and labels ``y`` (n,).

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)
            Face embeddings (L2-normalised; re-normalised here).
        y : array_like, shape (n_samples,)
            Identity labels (str or int).
        fingerprint : str, optional
            Fingerprint of the embedder that produced ``X``; kept as ``fingerprint_`` so that
            callers can refuse probes from another model.

        Returns
        -------
        self
            The fitted classifier. ``unknown_threshold_`` is reset to ``unknown_threshold``.

        Raises
        ------
        ValueError
            Bad shapes, NaN / inf, an all-zero row, continuous targets, invalid parameters, or
            ``unknown_label`` equal to a training label.
        """
        X_valid, y_valid = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y_valid)
        classes, y_encoded = np.unique(y_valid, return_inverse=True)
        seed = self._draw_seed()
        self._fit_encoded(_normalise(X_valid), y_encoded.astype(np.intp), classes, fingerprint=fingerprint, seed=seed)
        return self

    def _fit_encoded(
        self,
        X: FloatArray,
        y_encoded: IntArray,
        classes: npt.NDArray[Any],
        *,
        fingerprint: str | None,
        seed: int | None,
    ) -> None:
        threshold = _check_threshold(self.unknown_threshold, "unknown_threshold")
        label = self.unknown_label
        if isinstance(label, bool) or not isinstance(label, (str, numbers.Integral)):
            raise InvalidArgumentError(f"unknown_label must be a str or an int, got {label!r}")
        if label in set(classes.tolist()):
            raise InvalidArgumentError(
                f"unknown_label {label!r} is also a training label; choose another unknown_label"
            )
        if fingerprint is not None and not isinstance(fingerprint, str):
            raise InvalidArgumentError(f"fingerprint must be a str or None, got {fingerprint!r}")
        self._check_params()
        self.classes_ = classes
        self.n_features_in_ = X.shape[1]
        self._fit_X = X  # the model data that save() stores; _fit_model may reorder it
        self._fit_y = y_encoded
        try:
            self._fit_model(seed)
        except BaseException:
            del self.classes_  # a failed fit leaves the classifier unfitted, not half-fitted
            raise
        self.unknown_threshold_ = threshold
        self.fingerprint_ = fingerprint

    def _check_params(self) -> None:
        raise NotImplementedError

    def _fit_model(self, seed: int | None) -> None:
        raise NotImplementedError

    def _proba(self, X: FloatArray) -> FloatArray:
        raise NotImplementedError

    def _decision(self, X: FloatArray) -> FloatArray:
        raise NotImplementedError

    def _open_set(self, X: FloatArray, proba: FloatArray | None = None) -> FloatArray:
        raise NotImplementedError

    def _seed(self) -> int | None:
        """The seed given to ``_fit_model`` (stored by ``save`` so that ``load`` refits alike)."""
        return None

    def _draw_seed(self) -> int | None:
        return None

    # ---------------------------------------------------------------- prediction

    def _check_fitted(self) -> None:
        if not hasattr(self, "classes_"):
            raise ClassifierNotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(X, y) before using it"
            )

    def _prepare(self, X: npt.ArrayLike) -> FloatArray:
        self._check_fitted()
        X_valid = validate_data(self, X, reset=False, dtype=np.float64)
        return _normalise(X_valid)

    def predict_proba(self, X: npt.ArrayLike) -> FloatArray:
        """Probability of each enrolled class, shape (n, n_classes), columns in ``classes_`` order.

        Closed-set: the probabilities sum to 1 over the enrolled classes and never include the
        unknown label. See the class docstring for whether they are calibrated.
        """
        return self._proba(self._prepare(X))

    def decision_function(self, X: npt.ArrayLike) -> FloatArray:
        """Per-class scores that agree with ``predict`` (see the class docstring for what they are).

        Shape (n, n_classes), or (n,) for two classes: the score of ``classes_[1]`` minus that
        of ``classes_[0]``, positive for ``classes_[1]``, as in scikit-learn.
        """
        return self._decision(self._prepare(X))

    def score_for_open_set(self, X: npt.ArrayLike) -> FloatArray:
        """The score compared with ``unknown_threshold_``, shape (n,); higher = more likely enrolled."""
        return self._open_set(self._prepare(X))

    def predict(self, X: npt.ArrayLike) -> npt.NDArray[Any]:
        """Predicted label of each row: the most probable class, or ``unknown_label`` when the
        open-set score is below ``unknown_threshold_`` (no rejection when it is None).

        With a threshold set the result's dtype holds both the classes and the unknown label
        (a wider str, or object when they are of different types).
        """
        Xn = self._prepare(X)
        proba = self._proba(Xn)
        labels = self.classes_[np.argmax(proba, axis=1)]
        threshold = self.unknown_threshold_
        if threshold is None:
            return labels
        out = labels.astype(self._open_set_dtype())
        out[self._open_set(Xn, proba) < threshold] = self.unknown_label
        return out

    def _open_set_dtype(self) -> np.dtype[Any]:
        label, dtype = self.unknown_label, self.classes_.dtype
        if (isinstance(label, str) and dtype.kind == "U") or (
            isinstance(label, numbers.Integral) and dtype.kind in "iu"
        ):
            combined = np.result_type(dtype, np.asarray(label).dtype)
            if combined.kind == dtype.kind or combined.kind in "iu":
                return combined
        return np.dtype(object)

    # ---------------------------------------------------------------- open set

    def fit_unknown_threshold(self: _C, X_nonmated: npt.ArrayLike, *, fpir: float = 0.01) -> _C:
        """Choose ``unknown_threshold_`` so that at most ``fpir`` of ``X_nonmated`` is accepted.

        Parameters
        ----------
        X_nonmated : array_like, shape (n, d)
            Embeddings of people who are **not** in the training set (non-mated probes).
        fpir : float, default 0.01
            Target false-positive identification rate, in ``[0, 1)``.

        Returns
        -------
        self
            With ``unknown_threshold_`` set just above the ``floor(fpir * n) + 1``-th highest
            non-mated score, so the fraction of these probes accepted is ``<= fpir``. The FPIR on
            new non-mated faces is an estimate, as good as ``X_nonmated`` is large and
            representative: below ``1 / n`` it cannot be measured (a warning is logged).
            A later ``fit`` resets the threshold to ``unknown_threshold``.
        """
        if isinstance(fpir, bool) or not isinstance(fpir, numbers.Real) or not 0.0 <= float(fpir) < 1.0:
            raise InvalidArgumentError(f"fpir must be a number in [0, 1), got {fpir!r}")
        scores = self.score_for_open_set(X_nonmated)
        n = scores.size
        allowed = min(int(math.floor(float(fpir) * n + 1e-9)), n - 1)
        if fpir > 0 and fpir * n < 1:
            logger.warning(
                "fit_unknown_threshold: %d non-mated probes cannot measure an FPIR of %g; "
                "the threshold rejects all of them (use at least %d)",
                n,
                fpir,
                math.ceil(1 / fpir),
            )
        descending = np.sort(scores)[::-1]
        self.unknown_threshold_ = float(np.nextafter(descending[allowed], np.inf))
        return self

    # ---------------------------------------------------------------- persistence

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the fitted classifier to ``path`` (an ``.npz`` archive, no pickle).

        The file holds the parameters, the (normalised) training embeddings, labels, the
        open-set threshold and the embedder fingerprint. It therefore contains biometric
        templates: protect it like the gallery.

        Raises
        ------
        ClassifierNotFittedError
            Before ``fit``.
        ValueError
            A parameter (e.g. a callable kernel) or the labels cannot be stored without pickle.
        """
        self._check_fitted()
        params: dict[str, Any] = {}
        for key, value in self.get_params(deep=False).items():
            value = _json_scalar(value)
            if key == "random_state" and not (value is None or isinstance(value, int)):
                value = None  # a RandomState instance: the seed it produced is stored instead
            if value is not None and not isinstance(value, (str, int, float, bool)):
                raise InvalidArgumentError(
                    f"cannot save {type(self).__name__}: parameter {key}={value!r} is not storable"
                )
            params[key] = value
        classes = self.classes_
        if classes.dtype.kind == "O":
            classes = np.asarray(classes.tolist())
            if classes.dtype.kind not in "iufbU" or classes.tolist() != self.classes_.tolist():
                raise InvalidArgumentError(f"cannot save {type(self).__name__}: labels must all be str or all numbers")
        meta = {
            "format": _FORMAT_NAME,
            "version": FORMAT_VERSION,
            "class": type(self).__name__,
            "params": params,
            "unknown_threshold_": self.unknown_threshold_,
            "fingerprint_": self.fingerprint_,
            "seed": self._seed(),
            "sklearn_version": sklearn.__version__,
        }
        with open(path, "wb") as file:
            np.savez(
                file,
                meta=np.array(json.dumps(meta)),
                X=self._fit_X,
                y=self._fit_y,
                classes=classes,
                check=self._proba(self._fit_X[:8]),
            )

    @classmethod
    def load(cls: type[_C], path: str | os.PathLike[str]) -> _C:
        """Read a classifier written by :meth:`save` and refit it.

        Refitting is deterministic: with the same scikit-learn version predictions are identical
        to the saved model's; a warning is logged if they differ (another version).

        Raises
        ------
        FileNotFoundError
            No such file.
        ValueError
            Not a faceprint classifier file, a newer format, or a file of another class.
        """
        model = load_classifier(path)
        if not isinstance(model, cls):
            raise InvalidFileError(f"{os.fspath(path)} holds a {type(model).__name__}, not a {cls.__name__}")
        return model


class KNNFaceClassifier(_FaceClassifier):
    """k-nearest-neighbour face classifier with cosine similarity and an unknown class.

    Wraps :class:`sklearn.neighbors.KNeighborsClassifier` (cosine metric, brute force). Works
    from one sample per person.

    Parameters
    ----------
    n_neighbors : int, default 1
        Neighbours that vote; clipped to the number of training samples (``n_neighbors_``).
    weights : {"distance", "uniform"}, default "distance"
        Vote weights: ``1 / cosine distance`` or equal.
    unknown_threshold : float or None, default None
        Cosine-similarity threshold: a probe whose highest similarity to any training sample is
        below it is predicted as ``unknown_label``. None: closed set (never "unknown").
    unknown_label : str or int, default "unknown"
        Label predicted for rejected probes; must not be a training label.

    Attributes
    ----------
    classes_ : ndarray, shape (n_classes,)
        Sorted training labels.
    n_features_in_ : int
        Embedding dimension.
    n_neighbors_ : int
        Neighbours actually used.
    estimator_ : KNeighborsClassifier
        The fitted neighbour search (trained on encoded labels ``0..n_classes-1``).
    unknown_threshold_ : float or None
        Threshold in use; set by ``fit`` from ``unknown_threshold`` or by
        :meth:`fit_unknown_threshold`.
    probability_calibrated_ : bool
        Always False.
    fingerprint_ : str or None
        Embedder fingerprint given to ``fit``.

    Notes
    -----
    ``predict_proba`` is the (weighted) fraction of the ``n_neighbors_`` neighbours in each
    class: it is **not calibrated** and with ``n_neighbors=1`` it is 0 or 1.
    ``decision_function`` and :meth:`class_similarities` give, per class, the highest cosine
    similarity to that class's training samples; :meth:`score_for_open_set` is their maximum.
    ``predict`` is the neighbour vote; with ``n_neighbors > 1`` it can differ from the class of
    highest similarity.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.eye(3)
    >>> clf = KNNFaceClassifier(unknown_threshold=0.9).fit(X, ["ann", "bob", "cid"])
    >>> clf.predict([[0.0, 1.0, 0.1], [1.0, 1.0, 0.0]]).tolist()
    ['bob', 'unknown']
    """

    def __init__(
        self,
        *,
        n_neighbors: int = 1,
        weights: str = "distance",
        unknown_threshold: float | None = None,
        unknown_label: str | int = "unknown",
    ) -> None:
        self.n_neighbors = n_neighbors
        self.weights = weights
        self.unknown_threshold = unknown_threshold
        self.unknown_label = unknown_label

    def _check_params(self) -> None:
        k = self.n_neighbors
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
            raise InvalidArgumentError(f"n_neighbors must be a positive integer, got {k!r}")
        if self.weights not in ("distance", "uniform"):
            raise InvalidArgumentError(f"weights must be 'distance' or 'uniform', got {self.weights!r}")

    def _fit_model(self, seed: int | None) -> None:
        # Group samples by class (for reduceat); a saved model stores this order, so a
        # re-loaded one breaks distance ties the same way.
        order = np.argsort(self._fit_y, kind="stable")
        X, y_encoded = self._fit_X[order], self._fit_y[order]
        self._fit_X, self._fit_y = X, y_encoded
        self.n_neighbors_ = min(int(self.n_neighbors), X.shape[0])
        self.estimator_ = KNeighborsClassifier(
            n_neighbors=self.n_neighbors_, weights=self.weights, metric="cosine", algorithm="brute"
        ).fit(X, y_encoded)
        self._class_starts = np.searchsorted(y_encoded, np.arange(self.classes_.size))
        self.probability_calibrated_ = False

    def _similarities(self, X: FloatArray) -> FloatArray:
        train = self._fit_X
        out = np.empty((X.shape[0], self.classes_.size))
        block = max(1, _SIMILARITY_BLOCK // train.shape[0])
        for start in range(0, X.shape[0], block):
            sims = X[start : start + block] @ train.T
            out[start : start + block] = np.maximum.reduceat(sims, self._class_starts, axis=1)
        return np.clip(out, -1.0, 1.0)

    def class_similarities(self, X: npt.ArrayLike) -> FloatArray:
        """Highest cosine similarity of each row to each class's samples, shape (n, n_classes).

        Examples
        --------
        >>> import numpy as np
        >>> clf = KNNFaceClassifier().fit(np.eye(2), [0, 1])
        >>> clf.class_similarities([[1.0, 0.0]]).tolist()
        [[1.0, 0.0]]
        """
        return self._similarities(self._prepare(X))

    def _proba(self, X: FloatArray) -> FloatArray:
        proba: FloatArray = self.estimator_.predict_proba(X)
        return proba

    def _decision(self, X: FloatArray) -> FloatArray:
        sims = self._similarities(X)
        return sims[:, 1] - sims[:, 0] if sims.shape[1] == 2 else sims

    def _open_set(self, X: FloatArray, proba: FloatArray | None = None) -> FloatArray:
        result: FloatArray = self._similarities(X).max(axis=1)
        return result


class SVMFaceClassifier(_FaceClassifier):
    """Support-vector face classifier with (when the data allows) calibrated probabilities.

    One :class:`sklearn.svm.SVC` per person against all others
    (:class:`sklearn.multiclass.OneVsRestClassifier`), so that each class has its own margin and
    a face of nobody enrolled scores low for every class (a one-vs-one SVC would still give some
    class all its votes). Needs at least two enrolled people; training fits one SVM per person on
    all samples, which grows as ``n_classes * n_samples**2`` for large galleries.

    Parameters
    ----------
    C : float, default 1.0
        SVM regularisation (larger = fit the training samples more closely).
    kernel : str, default "linear"
        SVC kernel ("linear", "rbf", "poly", "sigmoid").
    calibration : {"auto", "sigmoid", "isotonic"} or None, default "auto"
        How ``predict_proba`` is obtained. "auto": Platt "sigmoid" calibration when every class
        has at least 3 samples, otherwise none. "sigmoid" / "isotonic": always (needs at least
        2 samples per class; isotonic wants many more). None: never calibrate.
        Calibration is :class:`sklearn.calibration.CalibratedClassifierCV` with
        ``cv=min(3, smallest class count)`` stratified folds and ``ensemble=False``: the
        calibrator is fitted on out-of-fold SVM scores, the SVM itself on all the data.
    unknown_threshold : float or None, default None
        Probability threshold: a probe whose highest class probability (``predict_proba``) is
        below it is predicted as ``unknown_label``. None: closed set.
    unknown_label : str or int, default "unknown"
        Label predicted for rejected probes; must not be a training label.
    random_state : int, RandomState or None, default None
        Shuffles the calibration folds; None keeps them in data order (deterministic).

    Attributes
    ----------
    classes_ : ndarray, shape (n_classes,)
    n_features_in_ : int
    estimator_ : OneVsRestClassifier or CalibratedClassifierCV
        What ``predict_proba`` comes from (trained on encoded labels ``0..n_classes-1``).
    svm_ : OneVsRestClassifier
        The one-vs-rest SVMs fitted on all the data.
    calibration_ : str or None
        The calibration method used ("sigmoid", "isotonic" or None).
    probability_calibrated_ : bool
        Whether ``predict_proba`` is calibrated.
    unknown_threshold_ : float or None
    fingerprint_ : str or None

    Notes
    -----
    **When probabilities are not calibrated** (``probability_calibrated_`` False: "auto" with
    fewer than 3 samples in some class, or ``calibration=None``), ``predict_proba`` is a
    softmax of the one-vs-rest margins (a logistic sigmoid for two classes): it ranks
    classes like the SVM but its values are not probabilities of being right, and a
    threshold on them must be chosen with :meth:`fit_unknown_threshold`, not by intuition.

    ``predict`` is the class of highest ``predict_proba`` (so the probability compared with the
    threshold is that of the predicted class), and ``decision_function`` agrees with it: it is
    the one-vs-rest SVM margins when uncalibrated, and the log of the calibrated probabilities
    (their log-odds for two classes) when calibrated, since calibration can reorder classes
    near a boundary. The raw margins are always ``svm_.decision_function(X)`` (on
    L2-normalised ``X``).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.1], [1.0, -0.1], [0.1, 1.0], [-0.1, 1.0]])
    >>> clf = SVMFaceClassifier().fit(X, ["ann", "ann", "bob", "bob"])
    >>> clf.probability_calibrated_
    False
    >>> clf.predict([[0.9, 0.2]]).tolist()
    ['ann']
    """

    def __init__(
        self,
        *,
        C: float = 1.0,
        kernel: str = "linear",
        calibration: str | None = "auto",
        unknown_threshold: float | None = None,
        unknown_label: str | int = "unknown",
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.C = C
        self.kernel = kernel
        self.calibration = calibration
        self.unknown_threshold = unknown_threshold
        self.unknown_label = unknown_label
        self.random_state = random_state

    def _draw_seed(self) -> int | None:
        if self.random_state is None:
            return None
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    def _check_params(self) -> None:
        if self.calibration not in ("auto", "sigmoid", "isotonic", None):
            raise InvalidArgumentError(
                f"calibration must be 'auto', 'sigmoid', 'isotonic' or None, got {self.calibration!r}"
            )

    def _seed(self) -> int | None:
        return self._cv_seed

    def _fit_model(self, seed: int | None) -> None:
        X, y_encoded = self._fit_X, self._fit_y
        counts = np.bincount(y_encoded, minlength=self.classes_.size)
        if counts.size < 2:
            raise InvalidArgumentError(
                f"SVMFaceClassifier needs at least 2 classes, got 1 class ({self.classes_[0]!r}); "
                "use KNNFaceClassifier with an unknown_threshold for a single enrolled person"
            )
        smallest = int(counts.min())
        method = self.calibration
        if method == "auto":
            method = "sigmoid" if smallest >= 3 else None
        elif method is not None and smallest < 2:
            raise InvalidArgumentError(
                f"calibration={method!r} needs at least 2 samples per class, but class "
                f"{self.classes_[int(np.argmin(counts))]!r} has 1; use calibration='auto' or None"
            )
        svm = OneVsRestClassifier(SVC(C=self.C, kernel=self.kernel))
        if method is None:
            self.estimator_: OneVsRestClassifier | CalibratedClassifierCV = svm.fit(X, y_encoded)
            self.svm_ = svm
        else:
            folds = StratifiedKFold(n_splits=min(3, smallest), shuffle=seed is not None, random_state=seed)
            calibrated = CalibratedClassifierCV(svm, method=method, cv=folds, ensemble=False).fit(X, y_encoded)
            self.estimator_ = calibrated
            self.svm_ = calibrated.calibrated_classifiers_[0].estimator
        self.calibration_ = method
        self.probability_calibrated_ = method is not None
        self._cv_seed = seed

    def _proba(self, X: FloatArray) -> FloatArray:
        if self.probability_calibrated_:
            proba: FloatArray = self.estimator_.predict_proba(X)
            return proba
        decision = self.svm_.decision_function(X)
        if decision.ndim == 1:
            p1 = expit(decision)
            return np.column_stack([1.0 - p1, p1])
        result: FloatArray = softmax(decision, axis=1)
        return result

    def _decision(self, X: FloatArray) -> FloatArray:
        if not self.probability_calibrated_:
            decision: FloatArray = self.svm_.decision_function(X)
            return decision
        log_proba = np.log(np.maximum(self._proba(X), np.finfo(np.float64).tiny))
        return log_proba[:, 1] - log_proba[:, 0] if log_proba.shape[1] == 2 else log_proba

    def _open_set(self, X: FloatArray, proba: FloatArray | None = None) -> FloatArray:
        if proba is None:
            proba = self._proba(X)
        result: FloatArray = proba.max(axis=1)
        return result


_CLASSES: dict[str, type[_FaceClassifier]] = {
    "KNNFaceClassifier": KNNFaceClassifier,
    "SVMFaceClassifier": SVMFaceClassifier,
}


def load_classifier(path: str | os.PathLike[str]) -> KNNFaceClassifier | SVMFaceClassifier:
    """Read any classifier written by ``save``; see :meth:`KNNFaceClassifier.load`.

    The file is read with ``allow_pickle=False``: loading an untrusted file runs no code.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Not a faceprint classifier file, or one written by a newer faceprint.
    """
    where = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"][()]))
            X = np.asarray(data["X"], dtype=np.float64)
            y = np.asarray(data["y"], dtype=np.intp)
            classes = data["classes"]
            check = data["check"]
    except (ValueError, KeyError, TypeError, zipfile.BadZipFile, json.JSONDecodeError) as err:
        raise InvalidFileError(f"{where} is not a faceprint classifier file: {err}") from err
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT_NAME:
        raise InvalidFileError(f"{where} is not a faceprint classifier file (format {meta.get('format')!r})")
    version = meta.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise InvalidFileError(
            f"{where} has classifier format version {version!r}; this faceprint reads up to {FORMAT_VERSION}"
        )
    klass = _CLASSES.get(str(meta.get("class")))
    if klass is None:
        raise InvalidFileError(f"{where} holds an unknown classifier class {meta.get('class')!r}")
    if X.ndim != 2 or y.shape != (X.shape[0],) or y.size == 0 or y.min() < 0 or y.max() >= classes.size:
        raise InvalidFileError(f"{where} is corrupt: training arrays of shapes {X.shape}, {y.shape} do not match")
    try:
        model = klass(**meta["params"])
    except TypeError as err:
        raise InvalidFileError(f"{where} has parameters this faceprint does not know: {err}") from err
    model._fit_encoded(X, y, classes, fingerprint=meta.get("fingerprint_"), seed=meta.get("seed"))
    model.unknown_threshold_ = _check_threshold(meta.get("unknown_threshold_"), "unknown_threshold_")
    refit = model._proba(X[: check.shape[0]])
    if refit.shape != check.shape or not np.allclose(refit, check, rtol=1e-6, atol=1e-9):
        logger.warning(
            "%s: the refitted %s differs from the saved one (saved with scikit-learn %s, running %s)",
            where,
            klass.__name__,
            meta.get("sklearn_version"),
            sklearn.__version__,
        )
    return model  # type: ignore[return-value]


_Fittable = TypeVar("_Fittable", bound=_FaceClassifier)


def from_gallery(gallery: GalleryBackend, *, classifier: _Fittable) -> _Fittable:
    """Fit ``classifier`` on every template of every subject of ``gallery``.

    Labels are subject names; ``fingerprint_`` is the gallery's embedder fingerprint.

    Parameters
    ----------
    gallery : GalleryBackend
        Source of templates, read in one go (``gallery.templates_many()``: subjects by name,
        each subject's templates in enrollment order).
    classifier : KNNFaceClassifier or SVMFaceClassifier
        Fitted in place and returned.

    Raises
    ------
    ValueError
        The gallery holds no templates (or too few for the classifier).

    Examples
    --------
    >>> import numpy as np
    >>> from faceprint.gallery import Gallery
    >>> with Gallery(":memory:") as gallery:
    ...     _ = gallery.enroll("ann", np.eye(3)[:1], fingerprint="demo")
    ...     _ = gallery.enroll("bob", np.eye(3)[1:2], fingerprint="demo")
    ...     clf = from_gallery(gallery, classifier=KNNFaceClassifier())
    >>> clf.classes_.tolist(), clf.fingerprint_
    (['ann', 'bob'], 'demo')
    """
    batch = gallery.templates_many()
    if len(batch) == 0:
        raise InvalidArgumentError(f"gallery {gallery.path} holds no templates to train a classifier on")
    fit: Callable[..., _Fittable] = classifier.fit
    return fit(batch.embeddings, np.asarray(batch.names), fingerprint=batch.fingerprint)
