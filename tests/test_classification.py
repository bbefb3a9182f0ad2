"""Tests for faceprint.classification: sklearn contract, kNN maths, open-set rejection, save/load."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sklearn.exceptions
from sklearn.utils.estimator_checks import parametrize_with_checks

from faceprint import errors
from faceprint.classification import (
    FORMAT_VERSION,
    ClassifierNotFittedError,
    KNNFaceClassifier,
    SVMFaceClassifier,
    from_gallery,
    load_classifier,
)
from faceprint.gallery import Gallery

DIM = 32
CLASSIFIERS = [KNNFaceClassifier, SVMFaceClassifier]


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def identities(rng: np.random.Generator, n_ids: int, dim: int = DIM) -> np.ndarray:
    return unit(rng.standard_normal((n_ids, dim)))


def samples(rng: np.random.Generator, centres: np.ndarray, per_id: int, noise: float = 0.3) -> np.ndarray:
    """``per_id`` noisy unit vectors around each centre, grouped by identity: (n_ids * per_id, d)."""
    repeated = np.repeat(centres, per_id, axis=0)
    return unit(repeated + noise * rng.standard_normal(repeated.shape) / math.sqrt(centres.shape[1]))


@pytest.fixture
def data() -> dict[str, Any]:
    """10 enrolled identities x 3 samples, new probes of them, and faces of 200 other people."""
    rng = np.random.default_rng(0)
    enrolled = identities(rng, 10)
    names = np.array([f"person{i:02d}" for i in range(10)])
    others = identities(rng, 200)
    return {
        "X": samples(rng, enrolled, 3),
        "y": np.repeat(names, 3),
        "X_mated": samples(rng, enrolled, 2),
        "y_mated": np.repeat(names, 2),
        "X_nonmated_fit": samples(rng, others[:100], 3),
        "X_nonmated_test": samples(rng, others[100:], 3),
    }


# -- scikit-learn contract -------------------------------------------------------------------


def expected_failed_checks(estimator: Any) -> dict[str, str]:
    return {
        # Casting its random X to int makes one row all zeros; an all-zero embedding has no
        # direction and is refused with a ValueError (a unit-norm input is the contract).
        "check_estimators_dtypes": "all-zero rows are refused: embeddings are L2-normalised",
    }


@parametrize_with_checks(
    [KNNFaceClassifier(), SVMFaceClassifier()], expected_failed_checks=expected_failed_checks, xfail_strict=True
)
def test_sklearn_contract(estimator: Any, check: Any) -> None:
    check(estimator)


# -- kNN maths -------------------------------------------------------------------------------


def test_knn_class_similarities_match_brute_force() -> None:
    rng = np.random.default_rng(1)
    X = rng.standard_normal((7, 4)) * rng.uniform(0.5, 2.0, (7, 1))  # not unit: renormalised
    y = np.array([2, 0, 1, 2, 0, 2, 1])
    probes = rng.standard_normal((5, 4))
    clf = KNNFaceClassifier().fit(X, y)
    expected = np.full((5, 3), -np.inf)
    for i, p in enumerate(probes):
        for x, label in zip(X, y, strict=True):
            cos = float(p @ x) / (np.linalg.norm(p) * np.linalg.norm(x))
            expected[i, label] = max(expected[i, label], cos)
    np.testing.assert_allclose(clf.class_similarities(probes), expected, atol=1e-12)
    np.testing.assert_allclose(clf.decision_function(probes), expected, atol=1e-12)
    np.testing.assert_allclose(clf.score_for_open_set(probes), expected.max(axis=1), atol=1e-12)
    # 1-NN: the prediction is the class of highest similarity.
    np.testing.assert_array_equal(clf.predict(probes), clf.classes_[expected.argmax(axis=1)])

    binary = KNNFaceClassifier().fit(X[:4], ["a", "b", "a", "b"])
    sims = binary.class_similarities(probes)
    np.testing.assert_allclose(binary.decision_function(probes), sims[:, 1] - sims[:, 0])


def test_knn_vote_and_neighbour_clipping() -> None:
    X = unit(np.array([[1.0, 0.0], [1.0, 0.2], [0.0, 1.0], [0.3, 1.0]]))
    clf = KNNFaceClassifier(n_neighbors=10, weights="uniform").fit(X, ["a", "a", "b", "b"])
    assert clf.n_neighbors_ == 4
    np.testing.assert_allclose(clf.predict_proba([[1.0, 0.1]]), [[0.5, 0.5]])
    three = KNNFaceClassifier(n_neighbors=3, weights="uniform").fit(X, ["a", "a", "b", "b"])
    np.testing.assert_allclose(three.predict_proba([[1.0, 0.1]]), [[2 / 3, 1 / 3]])
    assert three.predict([[1.0, 0.1]]).tolist() == ["a"]
    assert three.probability_calibrated_ is False


# -- open set --------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSIFIERS)
def test_unknown_threshold_meets_fpir(cls: type, data: dict[str, Any]) -> None:
    fpir = 0.05
    clf = cls().fit(data["X"], data["y"]).fit_unknown_threshold(data["X_nonmated_fit"], fpir=fpir)
    threshold = clf.unknown_threshold_
    assert threshold is not None

    fit_scores = clf.score_for_open_set(data["X_nonmated_fit"])
    assert np.mean(fit_scores >= threshold) <= fpir  # exact on the set it was chosen on
    assert np.mean(clf.predict(data["X_nonmated_fit"]) != "unknown") <= fpir

    # On other people's faces the FPIR is an estimate: allow three binomial standard errors.
    test_pred = clf.predict(data["X_nonmated_test"])
    n_test = len(data["X_nonmated_test"])
    assert np.mean(test_pred != "unknown") <= fpir + 3 * math.sqrt(fpir * (1 - fpir) / n_test)

    # Enrolled people are still recognised.
    mated_pred = clf.predict(data["X_mated"])
    assert np.mean(mated_pred == data["y_mated"]) >= 0.9
    assert clf.score(data["X_mated"], data["y_mated"]) == np.mean(mated_pred == data["y_mated"])


def test_fit_unknown_threshold_is_exact_on_known_scores() -> None:
    X = np.eye(3)
    clf = KNNFaceClassifier().fit(X, ["a", "b", "c"])
    # Open-set scores of these probes: cos = 0.9, 0.8, 0.7, 0.6 (to "a").
    probes = np.array(
        [[c, math.sqrt(1 - c * c) / math.sqrt(2), -math.sqrt(1 - c * c) / math.sqrt(2)] for c in (0.9, 0.8, 0.7, 0.6)]
    )
    clf.fit_unknown_threshold(probes, fpir=0.25)  # one of four may pass: the 0.9 one
    assert 0.8 < clf.unknown_threshold_ <= 0.8 + 1e-12
    assert clf.predict(probes).tolist() == ["a", "unknown", "unknown", "unknown"]
    clf.fit_unknown_threshold(probes, fpir=0.0)
    assert clf.predict(probes).tolist() == ["unknown"] * 4
    assert clf.predict(X).tolist() == ["a", "b", "c"]
    for bad in (-0.1, 1.0, float("nan"), True):
        with pytest.raises(ValueError, match="fpir"):
            clf.fit_unknown_threshold(probes, fpir=bad)
    clf.fit(X, ["a", "b", "c"])
    assert clf.unknown_threshold_ is None  # refit resets to the constructor's value


def test_fit_unknown_threshold_warns_when_too_few_probes(caplog: pytest.LogCaptureFixture) -> None:
    clf = KNNFaceClassifier().fit(np.eye(3), ["a", "b", "c"])
    with caplog.at_level("WARNING", logger="faceprint.classification"):
        clf.fit_unknown_threshold(np.ones((10, 3)), fpir=0.01)
    assert "10 non-mated probes cannot measure an FPIR of 0.01" in caplog.text


def test_unknown_label_dtypes_and_collision() -> None:
    X = np.eye(3)
    far = [[-1.0, -1.0, -1.0]]
    clf = KNNFaceClassifier(unknown_threshold=0.5).fit(X, [10, 20, 30])
    out = clf.predict(np.vstack([X[:1], far]))
    assert out.dtype == object and out.tolist() == [10, "unknown"]
    clf = KNNFaceClassifier(unknown_threshold=0.5, unknown_label=-1).fit(X, [10, 20, 30])
    assert clf.predict(np.vstack([X[:1], far])).tolist() == [10, -1]
    clf = KNNFaceClassifier(unknown_threshold=0.5).fit(X, ["a", "b", "c"])
    out = clf.predict(np.vstack([X[:1], far]))
    assert out.dtype.kind == "U" and out.tolist() == ["a", "unknown"]
    with pytest.raises(ValueError, match="unknown_label 'unknown' is also a training label"):
        KNNFaceClassifier().fit(X, ["unknown", "b", "c"])
    with pytest.raises(ValueError, match="unknown_threshold"):
        SVMFaceClassifier(unknown_threshold=float("nan")).fit(X, ["a", "b", "c"])


# -- few shots and calibration ---------------------------------------------------------------


def test_svm_calibrated_with_three_per_class(data: dict[str, Any]) -> None:
    clf = SVMFaceClassifier(random_state=0).fit(data["X"], data["y"])
    assert clf.probability_calibrated_ is True and clf.calibration_ == "sigmoid"
    proba = clf.predict_proba(data["X_mated"])
    assert proba.shape == (20, 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(clf.predict(data["X_mated"]), clf.classes_[proba.argmax(axis=1)])
    decision = clf.decision_function(data["X_mated"])
    assert decision.shape == (20, 10)
    np.testing.assert_allclose(decision, np.log(proba))  # calibrated: log-probabilities, agree with predict
    margins = clf.svm_.decision_function(data["X_mated"])  # the raw one-vs-rest margins
    assert np.mean(margins.argmax(axis=1) == proba.argmax(axis=1)) >= 0.9


@pytest.mark.parametrize("per_id", [1, 2])
def test_svm_uncalibrated_with_few_per_class(per_id: int, data: dict[str, Any]) -> None:
    X = data["X"].reshape(10, 3, DIM)[:, :per_id].reshape(-1, DIM)
    y = data["y"].reshape(10, 3)[:, :per_id].reshape(-1)
    clf = SVMFaceClassifier().fit(X, y)
    assert clf.probability_calibrated_ is False and clf.calibration_ is None
    proba = clf.predict_proba(data["X_mated"])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(proba.argmax(axis=1), clf.decision_function(data["X_mated"]).argmax(axis=1))
    assert "not calibrated" in (SVMFaceClassifier.__doc__ or "")


def test_svm_calibration_options(data: dict[str, Any]) -> None:
    two = data["X"].reshape(10, 3, DIM)[:, :2].reshape(-1, DIM)
    y_two = data["y"].reshape(10, 3)[:, :2].reshape(-1)
    assert SVMFaceClassifier(calibration="sigmoid").fit(two, y_two).probability_calibrated_ is True
    assert SVMFaceClassifier(calibration=None).fit(data["X"], data["y"]).probability_calibrated_ is False
    isotonic = SVMFaceClassifier(calibration="isotonic").fit(data["X"], data["y"])
    assert isotonic.calibration_ == "isotonic"
    with pytest.raises(ValueError, match="needs at least 2 samples per class"):
        SVMFaceClassifier(calibration="sigmoid").fit(data["X"][::3], data["y"][::3])
    with pytest.raises(ValueError, match="calibration must be"):
        SVMFaceClassifier(calibration="platt").fit(data["X"], data["y"])
    clf = SVMFaceClassifier().fit(data["X"], data["y"])
    with pytest.raises(ValueError, match="at least 2 classes, got 1 class"):
        clf.fit(data["X"][:3], data["y"][:3])
    with pytest.raises(ClassifierNotFittedError):  # a failed refit leaves it unfitted
        clf.predict(data["X"])


@pytest.mark.parametrize("cls", CLASSIFIERS)
def test_one_shot(cls: type, data: dict[str, Any]) -> None:
    clf = cls().fit(data["X"][::3], data["y"][::3])
    assert np.mean(clf.predict(data["X_mated"]) == data["y_mated"]) >= 0.9


def test_knn_single_person_open_set(data: dict[str, Any]) -> None:
    clf = KNNFaceClassifier(unknown_threshold=0.5).fit(data["X"][:3], data["y"][:3])
    assert clf.predict(data["X_mated"][:2]).tolist() == ["person00", "person00"]
    assert set(clf.predict(data["X_nonmated_test"][:20]).tolist()) == {"unknown"}


# -- save / load -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: KNNFaceClassifier(n_neighbors=3),
        lambda: SVMFaceClassifier(),
        lambda: SVMFaceClassifier(random_state=np.random.RandomState(3)),
        lambda: SVMFaceClassifier(calibration=None, kernel="rbf"),
    ],
    ids=["knn", "svm-calibrated", "svm-calibrated-shuffled", "svm-rbf-uncalibrated"],
)
def test_save_load_round_trip(
    make: Any, data: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clf = make().fit(data["X"], data["y"], fingerprint="fake@0")
    clf.fit_unknown_threshold(data["X_nonmated_fit"], fpir=0.05)
    path = tmp_path / "model.npz"
    clf.save(path)
    loaded = type(clf).load(path)
    probes = np.vstack([data["X_mated"], data["X_nonmated_test"]])
    np.testing.assert_array_equal(loaded.predict(probes), clf.predict(probes))
    np.testing.assert_array_equal(loaded.predict_proba(probes), clf.predict_proba(probes))
    np.testing.assert_array_equal(loaded.decision_function(probes), clf.decision_function(probes))
    assert loaded.unknown_threshold_ == clf.unknown_threshold_
    assert loaded.fingerprint_ == "fake@0"
    assert loaded.probability_calibrated_ == clf.probability_calibrated_
    assert type(load_classifier(path)) is type(clf)
    assert not [r for r in caplog.records if r.levelname == "WARNING"]  # the refit matched the saved check


def test_load_refuses_bad_files(data: dict[str, Any], tmp_path: Path) -> None:
    knn_path = tmp_path / "knn.npz"
    KNNFaceClassifier().fit(data["X"], data["y"]).save(knn_path)
    with pytest.raises(ValueError, match="holds a KNNFaceClassifier, not a SVMFaceClassifier"):
        SVMFaceClassifier.load(knn_path)

    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a faceprint classifier file"):
        load_classifier(junk)
    with pytest.raises(FileNotFoundError):
        load_classifier(tmp_path / "missing.npz")

    with np.load(knn_path) as archive:
        arrays = dict(archive)
    meta = json.loads(str(arrays["meta"]))
    meta["version"] = FORMAT_VERSION + 1
    arrays["meta"] = np.array(json.dumps(meta))
    newer = tmp_path / "newer.npz"
    np.savez(newer, **arrays)
    with pytest.raises(ValueError, match="format version"):
        load_classifier(newer)

    with pytest.raises(ClassifierNotFittedError):
        KNNFaceClassifier().save(tmp_path / "unfitted.npz")


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSIFIERS)
@pytest.mark.parametrize("method", ["predict", "predict_proba", "decision_function", "score_for_open_set"])
def test_not_fitted(cls: type, method: str) -> None:
    with pytest.raises(errors.NotFittedError, match="not fitted yet"):
        getattr(cls(), method)(np.eye(3))
    with pytest.raises(sklearn.exceptions.NotFittedError):
        getattr(cls(), method)(np.eye(3))
    with pytest.raises(ClassifierNotFittedError):
        cls().fit_unknown_threshold(np.eye(3))


@pytest.mark.parametrize("cls", CLASSIFIERS)
def test_bad_input(cls: type, data: dict[str, Any]) -> None:
    X, y = data["X"], data["y"]
    with pytest.raises(ValueError, match="Expected 2D array"):
        cls().fit(X[0], y[:1])
    with pytest.raises(ValueError, match="NaN"):
        cls().fit(np.where(np.arange(DIM) == 3, np.nan, X), y)
    with pytest.raises(ValueError, match="infinity"):
        cls().fit(np.where(np.arange(DIM) == 3, np.inf, X), y)
    with pytest.raises(ValueError, match=r"all-zero row\(s\) \[1\]"):
        cls().fit(np.vstack([X[:1], np.zeros((1, DIM)), X[2:]]), y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        cls().fit(X, y[:-1])
    with pytest.raises(ValueError, match="Unknown label type"):
        cls().fit(X, np.linspace(0, 1, len(y)))
    clf = cls().fit(X, y)
    with pytest.raises(ValueError, match=f"X has 16 features, but {cls.__name__} is expecting 32"):
        clf.predict(X[:, :16])
    with pytest.raises(ValueError, match="NaN"):
        clf.predict_proba(np.full((1, DIM), np.nan))
    with pytest.raises(ValueError, match="Expected 2D array"):
        clf.decision_function(X[0])


# -- gallery ---------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSIFIERS)
def test_from_gallery(cls: type, data: dict[str, Any], tmp_path: Path) -> None:
    with Gallery(tmp_path / "gallery.db") as gallery:
        for name in np.unique(data["y"]):
            gallery.enroll(str(name), data["X"][data["y"] == name].astype(np.float32), fingerprint="fake@0")
        clf = from_gallery(gallery, classifier=cls())
    assert clf.fingerprint_ == "fake@0"
    assert clf.classes_.tolist() == sorted(np.unique(data["y"]).tolist())
    assert np.mean(clf.predict(data["X_mated"]) == data["y_mated"]) >= 0.9
    with Gallery(tmp_path / "empty.db") as empty, pytest.raises(ValueError, match="holds no templates"):
        from_gallery(empty, classifier=cls())


@pytest.mark.parametrize("cls", CLASSIFIERS)
def test_gallery_and_classifier_survive_save_load(cls: type, data: dict[str, Any], tmp_path: Path) -> None:
    """Enroll, train on the gallery, save the classifier, close everything; reopen both: same answers."""
    db, model = tmp_path / "gallery.db", tmp_path / "clf.npz"
    with Gallery(db) as gallery:
        for name in np.unique(data["y"]):
            gallery.enroll(str(name), data["X"][data["y"] == name].astype(np.float32), fingerprint="fake@0")
        clf = from_gallery(gallery, classifier=cls()).fit_unknown_threshold(data["X_nonmated_fit"], fpir=0.05)
        clf.save(model)
        expected = clf.predict(data["X_mated"])
    with Gallery(db) as reopened:
        refit = from_gallery(reopened, classifier=cls()).fit_unknown_threshold(data["X_nonmated_fit"], fpir=0.05)
    loaded = load_classifier(model)
    assert loaded.fingerprint_ == "fake@0"
    assert loaded.unknown_threshold_ == pytest.approx(clf.unknown_threshold_)
    np.testing.assert_array_equal(loaded.predict(data["X_mated"]), expected)
    np.testing.assert_array_equal(refit.predict(data["X_mated"]), expected)
