"""Tests for faceprint.evaluation: metrics checked against brute-force loops on tiny inputs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from faceprint.datasets import DATA_ENV_VAR, LfwPaths, Pair, data_root, lfw_paths, read_lfw_pairs
from faceprint.errors import DatasetNotFoundError
from faceprint.evaluation.verification import (
    FoldResult,
    best_accuracy_threshold,
    calibrate_thresholds,
    cosine_scores,
    evaluate_verification,
    fmr_key,
    fuse_scores,
    kfold_accuracy,
    tar_at_fmr,
    threshold_at_fmr,
)

# ---------------------------------------------------------------------------------------------
# brute-force references
# ---------------------------------------------------------------------------------------------


def _brute_candidates(scores: list[float]) -> list[float]:
    finite = sorted({s for s in scores if math.isfinite(s)})
    if not finite:
        return [math.inf]
    mids = [0.5 * a + 0.5 * b for a, b in zip(finite[:-1], finite[1:], strict=True)]
    return [float(np.nextafter(finite[0], -np.inf)), *mids, float(np.nextafter(finite[-1], np.inf))]


def _brute_accuracy(scores: list[float], labels: list[bool], t: float) -> float:
    correct = 0
    for s, y in zip(scores, labels, strict=True):
        decision = (not math.isnan(s)) and s >= t
        correct += decision == y
    return correct / len(scores)


def _brute_best(scores: list[float], labels: list[bool]) -> tuple[float, float]:
    best_t, best_acc = math.nan, -1.0
    for t in _brute_candidates(scores):
        acc = _brute_accuracy(scores, labels, t)
        if acc > best_acc:  # strict: first (lowest) candidate wins ties
            best_t, best_acc = t, acc
    return best_t, best_acc


def _impostor_rate(impostor: np.ndarray, t: float) -> float:
    return float(np.mean(impostor >= t))


def _random_case(rng: np.random.Generator, n: int, decimals: int = 2) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.random(n) < 0.5
    labels[0], labels[1] = True, False
    scores = np.round(rng.normal(0.6, 0.2, n) * labels + rng.normal(0.3, 0.2, n) * ~labels, decimals)
    return scores, labels


# ---------------------------------------------------------------------------------------------
# thresholds and rates
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("fmr", [0.0, 1e-3, 0.02, 0.1, 0.29, 0.5, 0.999, 1.0])
def test_threshold_at_fmr_is_the_smallest_valid_threshold(seed: int, fmr: float) -> None:
    rng = np.random.default_rng(seed)
    scores, labels = _random_case(rng, 200, decimals=2)  # many ties
    impostor = scores[~labels]
    t = threshold_at_fmr(scores, labels, fmr)
    assert _impostor_rate(impostor, t) <= fmr
    if math.isinf(t):
        assert t < 0 and fmr >= 1.0
    else:
        assert _impostor_rate(impostor, float(np.nextafter(t, -np.inf))) > fmr
    # brute force over every candidate of the form "just above a score"
    candidates = sorted({float(np.nextafter(s, np.inf)) for s in scores} | {-math.inf})
    valid = [c for c in candidates if _impostor_rate(impostor, c) <= fmr]
    assert t == min(valid)


def test_threshold_below_one_over_n_is_just_above_the_highest_impostor() -> None:
    scores = np.array([0.9, 0.7, 0.6, 0.5, 0.2])
    labels = np.array([True, True, False, False, False])
    t = threshold_at_fmr(scores, labels, 1e-3)
    assert t == np.nextafter(0.6, np.inf)
    assert tar_at_fmr(scores, labels, 1e-3) == 1.0
    assert threshold_at_fmr(scores, labels, 1 / 3) == np.nextafter(0.5, np.inf)


def _sklearn_tar(scores: np.ndarray, labels: np.ndarray, fmr: float) -> float:
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    return float(tpr[fpr <= fmr].max())


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("fmr", [0.0, 1e-3, 1e-2, 0.05, 0.1, 0.3, 1.0])
def test_tar_at_fmr_matches_sklearn_roc_curve(seed: int, fmr: float) -> None:
    rng = np.random.default_rng(100 + seed)
    scores, labels = _random_case(rng, 300, decimals=2 if seed % 2 else 6)
    assert tar_at_fmr(scores, labels, fmr) == pytest.approx(_sklearn_tar(scores, labels, fmr), abs=0)


def test_threshold_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        threshold_at_fmr([0.1, 0.2], [True, False], 1.5)
    with pytest.raises(ValueError, match="impostor"):
        threshold_at_fmr([0.1, 0.2], [True, True], 0.1)
    with pytest.raises(ValueError, match="genuine"):
        tar_at_fmr([0.1, 0.2], [False, False], 0.1)
    with pytest.raises(ValueError, match="0/1"):
        threshold_at_fmr([0.1, 0.2], [2, 0], 0.1)
    with pytest.raises(ValueError, match="same length"):
        threshold_at_fmr([0.1, 0.2, 0.3], [1, 0], 0.1)


@pytest.mark.parametrize("seed", range(10))
def test_best_accuracy_threshold_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    scores, labels = _random_case(rng, 40, decimals=1 if seed % 2 else 3)
    t, acc = best_accuracy_threshold(scores, labels)
    bt, bacc = _brute_best(scores.tolist(), labels.tolist())
    assert acc == pytest.approx(bacc)
    assert t == bt
    assert _brute_accuracy(scores.tolist(), labels.tolist(), t) == pytest.approx(acc)


def test_best_accuracy_threshold_extremes() -> None:
    # all genuine: accept everything -> threshold just below the lowest score
    t, acc = best_accuracy_threshold([0.2, 0.5], [True, True])
    assert acc == 1.0 and t < 0.2
    # all impostor: reject everything (the "accept all" candidate gives 0)
    t, acc = best_accuracy_threshold([0.2, 0.5], [False, False])
    assert acc == 1.0 and t > 0.5


@pytest.mark.parametrize("seed", range(5))
def test_kfold_accuracy_matches_brute_force_double_loop(seed: int) -> None:
    rng = np.random.default_rng(300 + seed)
    n_folds, per_fold = 3, 20
    scores, labels = _random_case(rng, n_folds * per_fold, decimals=2)
    scores[rng.integers(0, scores.size, 3)] = np.nan  # a few failures to acquire
    folds = np.repeat(np.arange(n_folds), per_fold)
    result = kfold_accuracy(scores, labels, folds)

    expected_acc, expected_t = [], []
    for f in range(n_folds):
        train_s = [float(s) for s, g in zip(scores, folds, strict=True) if g != f]
        train_y = [bool(y) for y, g in zip(labels, folds, strict=True) if g != f]
        best_t, best_acc = math.nan, -1.0
        for t in _brute_candidates(train_s):
            acc = _brute_accuracy(train_s, train_y, t)
            if acc > best_acc:
                best_t, best_acc = t, acc
        test_s = [float(s) for s, g in zip(scores, folds, strict=True) if g == f]
        test_y = [bool(y) for y, g in zip(labels, folds, strict=True) if g == f]
        expected_t.append(best_t)
        expected_acc.append(_brute_accuracy(test_s, test_y, best_t))

    assert isinstance(result, FoldResult)
    assert result.thresholds == tuple(expected_t)
    assert result.accuracies == pytest.approx(expected_acc)
    assert result.mean == pytest.approx(sum(expected_acc) / n_folds)
    mean = sum(expected_acc) / n_folds
    assert result.std == pytest.approx(math.sqrt(sum((a - mean) ** 2 for a in expected_acc) / n_folds))


def test_kfold_needs_two_folds() -> None:
    with pytest.raises(ValueError, match="two folds"):
        kfold_accuracy([0.9, 0.1], [True, False], [0, 0])
    with pytest.raises(ValueError, match="fold id"):
        kfold_accuracy([0.9, 0.1], [True, False], [0, 1, 2])


# ---------------------------------------------------------------------------------------------
# reports
# ---------------------------------------------------------------------------------------------


def test_hand_computed_perfect_separation() -> None:
    scores, labels, folds = [0.9, 0.8, 0.3, 0.1], [1, 1, 0, 0], [0, 1, 0, 1]
    assert best_accuracy_threshold(scores, labels) == (pytest.approx(0.55), 1.0)
    report = evaluate_verification(scores, labels, folds, model="toy")
    assert report.model == "toy"
    assert (report.n_pairs, report.n_genuine, report.n_impostor) == (4, 2, 2)
    assert report.failures_to_acquire == 0
    assert report.accuracy == 1.0 and report.accuracy_std == 0.0
    assert report.fold_accuracies == (1.0, 1.0)
    assert report.auc == 1.0 and report.eer == 0.0
    assert report.tar_at_fmr == {"1e-2": 1.0, "1e-3": 1.0}
    assert report.thresholds == {"1e-2": np.nextafter(0.3, 1), "1e-3": np.nextafter(0.3, 1)}

    d = report.to_dict()
    assert list(d) == [
        "model",
        "n_pairs",
        "failures_to_acquire",
        "accuracy",
        "accuracy_std",
        "fold_accuracies",
        "auc",
        "eer",
        "tar_at_fmr_1e-2",
        "tar_at_fmr_1e-3",
        "thresholds",
    ]
    assert json.loads(json.dumps(d))["fold_accuracies"] == [1.0, 1.0]


def test_hand_computed_overlap() -> None:
    # genuine 0.9, 0.4; impostor 0.5, 0.1. AUC: 3 of 4 (genuine, impostor) pairs ordered right.
    scores, labels = [0.9, 0.4, 0.5, 0.1], [1, 1, 0, 0]
    report = evaluate_verification(scores, labels, [0, 0, 1, 1], model="toy")
    assert report.auc == pytest.approx(0.75)
    assert report.eer == pytest.approx(0.5)
    assert report.tar_at_fmr["1e-2"] == 0.5  # only 0.9 is above the top impostor
    # 0.25 and 0.7 both give 3/4; ties go to the lowest candidate
    assert best_accuracy_threshold(scores, labels) == (pytest.approx(0.25), 0.75)


def test_nan_scores_count_as_failures_to_acquire_and_non_matches() -> None:
    scores = [0.9, np.nan, 0.3, 0.1]
    labels = [1, 1, 0, 0]
    report = evaluate_verification(scores, labels, [0, 1, 0, 1], model="fta")
    assert report.failures_to_acquire == 1
    # fold 0: trained on {nan: genuine, 0.1: impostor} -> best is "reject all", a threshold just
    # above 0.1, which accepts 0.9 (right) and 0.3 (wrong) -> 0.5
    # fold 1: trained on {0.9, 0.3} -> t = 0.6 -> nan genuine rejected (wrong), 0.1 rejected -> 0.5
    assert report.fold_accuracies == (0.5, 0.5)
    assert report.accuracy == 0.5
    assert report.auc == pytest.approx(0.5)  # NaN ranked below everything
    assert report.tar_at_fmr["1e-3"] == 0.5  # the FTA genuine pair is never accepted
    assert report.to_dict()["failures_to_acquire"] == 1
    # an FTA impostor is a correct rejection
    r2 = evaluate_verification([0.9, 0.8, np.nan, 0.1], labels, [0, 1, 0, 1], model="fta")
    assert r2.failures_to_acquire == 1 and r2.auc == 1.0 and r2.eer == 0.0
    assert best_accuracy_threshold([0.9, 0.8, np.nan, 0.1], labels)[1] == 1.0


@pytest.mark.parametrize("seed", range(3))
def test_auc_and_eer_agree_with_sklearn(seed: int) -> None:
    rng = np.random.default_rng(400 + seed)
    scores, labels = _random_case(rng, 500, decimals=4)
    report = evaluate_verification(scores, labels, np.arange(500) % 10, model="m", fmrs=(1e-2, 5e-2))
    assert report.auc == pytest.approx(roc_auc_score(labels, scores))
    fpr, tpr, _ = roc_curve(labels, scores)
    i = int(np.argmin(np.abs(fpr - (1 - tpr))))
    assert abs(report.eer - fpr[i]) < 0.02
    assert set(report.tar_at_fmr) == {"1e-2", "5e-2"}
    assert len(report.fold_accuracies) == 10


def test_fixed_threshold_for_single_fold_lists() -> None:
    scores, labels = [0.9, 0.4, 0.5, 0.1, np.nan, 0.2], [1, 1, 0, 0, 1, 0]
    with pytest.raises(ValueError, match="threshold"):
        evaluate_verification(scores, labels, [0] * 6, model="m")
    report = evaluate_verification(scores, labels, [0] * 6, model="m", threshold=0.45)
    # 0.9 right, 0.4 wrong, 0.5 wrong, 0.1 right, NaN genuine wrong, 0.2 right
    assert report.fold_accuracies == (0.5,) and report.accuracy == 0.5 and report.accuracy_std == 0.0
    two = evaluate_verification(scores, labels, [0, 0, 0, 1, 1, 1], model="m", threshold=0.45)
    assert two.fold_accuracies == pytest.approx((1 / 3, 2 / 3))
    assert two.accuracy == pytest.approx(0.5) and two.accuracy_std == pytest.approx(1 / 6)


def test_calibrate_thresholds_keys_and_values() -> None:
    rng = np.random.default_rng(7)
    scores, labels = _random_case(rng, 100)
    t = calibrate_thresholds(scores, labels)
    assert list(t) == ["1e-2", "1e-3", "1e-4", "best_accuracy"]
    assert t["1e-2"] == threshold_at_fmr(scores, labels, 1e-2)
    assert t["best_accuracy"] == best_accuracy_threshold(scores, labels)[0]
    assert t["1e-3"] == t["1e-4"] == np.nextafter(scores[~labels].max(), np.inf)


def test_fmr_key() -> None:
    assert [fmr_key(f) for f in (1e-2, 1e-3, 1e-4, 1.5e-3)] == ["1e-2", "1e-3", "1e-4", "1.5e-3"]


# ---------------------------------------------------------------------------------------------
# scores and fusion
# ---------------------------------------------------------------------------------------------


def test_cosine_scores_row_wise_with_nan_rows() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 8))
    b = rng.normal(size=(5, 8))
    a[2] = np.nan
    out = cosine_scores(a, b)
    for i in range(5):
        if i == 2:
            assert np.isnan(out[i])
        else:
            expected = float(a[i] @ b[i]) / (np.linalg.norm(a[i]) * np.linalg.norm(b[i]))
            assert out[i] == pytest.approx(expected)
    unit = a[[0, 1]] / np.linalg.norm(a[[0, 1]], axis=1, keepdims=True)
    np.testing.assert_allclose(cosine_scores(unit, unit), [1.0, 1.0])
    with pytest.raises(ValueError, match="same shape"):
        cosine_scores(a, b[:3])


def test_fuse_scores_weighted_mean_of_available() -> None:
    a = [0.2, np.nan, np.nan, 0.6]
    b = [0.4, 0.5, np.nan, 0.0]
    np.testing.assert_allclose(fuse_scores([a, b]), [0.3, 0.5, np.nan, 0.3])
    np.testing.assert_allclose(fuse_scores([a, b], weights=[1, 3]), [0.35, 0.5, np.nan, 0.15])
    np.testing.assert_allclose(fuse_scores([a, b], weights=[1, 0]), [0.2, np.nan, np.nan, 0.6])
    with pytest.raises(ValueError, match="weights"):
        fuse_scores([a, b], weights=[1])
    with pytest.raises(ValueError, match="weights"):
        fuse_scores([a, b], weights=[-1, 2])
    with pytest.raises(ValueError, match="same length"):
        fuse_scores([a, b[:2]])
    with pytest.raises(ValueError, match="at least one"):
        fuse_scores([])


# ---------------------------------------------------------------------------------------------
# pair lists and data location
# ---------------------------------------------------------------------------------------------

VIEW2 = """2\t2
Alice\t1\t2
Bob\t3\t12
Alice\t1\tBob\t2
Carol\t4\tDan\t1

Carol\t1\t2
Dan\t1\t3
Eve\t1\tAlice\t2
Bob\t1\tCarol\t3
"""

VIEW1 = """2
Alice 1 2
Bob 1 3
Alice 1 Bob 1
Carol 2 Dan 1
"""


def test_read_lfw_pairs_view2(tmp_path: Path) -> None:
    f = tmp_path / "pairs.txt"
    f.write_text(VIEW2)
    images = tmp_path / "imgs"
    pairs = read_lfw_pairs(f, images)
    assert len(pairs) == 8
    assert [p.fold for p in pairs] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert [p.same for p in pairs] == [True, True, False, False] * 2
    assert pairs[1] == Pair(images / "Bob" / "Bob_0003.jpg", images / "Bob" / "Bob_0012.jpg", True, 0)
    assert pairs[6].path_a == images / "Eve" / "Eve_0001.jpg"
    assert pairs[6].path_b == images / "Alice" / "Alice_0002.jpg"


def test_read_lfw_pairs_view1(tmp_path: Path) -> None:
    f = tmp_path / "pairsDevTrain.txt"
    f.write_text(VIEW1)
    pairs = read_lfw_pairs(f, tmp_path)
    assert [p.same for p in pairs] == [True, True, False, False]
    assert {p.fold for p in pairs} == {0}
    assert pairs[3].path_b == tmp_path / "Dan" / "Dan_0001.jpg"


@pytest.mark.parametrize(
    ("text", "line", "match"),
    [
        ("2\nAlice 1 2\nBob 1\nA 1 B 1\nC 1 D 1\n", 3, "same-person"),
        ("2\nAlice 1 2\nBob 1 2\nA 1 B 1\nC 1 D\n", 5, "different-people"),
        ("2\nAlice 1 x\nBob 1 2\nA 1 B 1\nC 1 D 1\n", 2, "image number"),
        ("2\nAlice 0 1\nBob 1 2\nA 1 B 1\nC 1 D 1\n", 2, "start at 1"),
        ("2\nAlice 1 2\nBob 1 2\nA 1 B 1\n", 4, "got 3"),
        ("2\nAlice 1 2\nBob 1 2\nA 1 B 1\nC 1 D 1\nE 1 F 1\n", 6, "got 5"),
        ("ten 300\n", 1, "header"),
        ("1 2 3\n", 1, "header"),
    ],
)
def test_read_lfw_pairs_malformed(tmp_path: Path, text: str, line: int, match: str) -> None:
    f = tmp_path / "bad.txt"
    f.write_text(text)
    with pytest.raises(ValueError, match=match) as info:
        read_lfw_pairs(f, tmp_path)
    assert f"bad.txt:{line}:" in str(info.value)


def test_read_lfw_pairs_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="nope.txt"):
        read_lfw_pairs(tmp_path / "nope.txt", tmp_path)


def test_data_root_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_ENV_VAR, str(tmp_path))
    assert data_root() == tmp_path.resolve()
    missing = tmp_path / "missing"
    monkeypatch.setenv(DATA_ENV_VAR, str(missing))
    assert data_root() is None
    with pytest.raises(DatasetNotFoundError, match=DATA_ENV_VAR) as info:
        data_root(required=True)
    assert str(missing) in str(info.value)
    with pytest.raises(DatasetNotFoundError, match="LFW not found"):
        lfw_paths(tmp_path)


def test_data_root_default_is_a_dir_or_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    root = data_root()
    assert root is None or root.is_dir()


# ---------------------------------------------------------------------------------------------
# the real LFW pair lists
# ---------------------------------------------------------------------------------------------


def _real_lfw() -> LfwPaths:
    root = data_root()
    if root is None:
        pytest.skip(f"shared face data sets not found (set {DATA_ENV_VAR} or place ../shared/datasets)")
    return lfw_paths(root)


@pytest.mark.data
def test_real_lfw_view2_pairs() -> None:
    paths = _real_lfw()
    pairs = read_lfw_pairs(paths.pairs, paths.images)
    assert len(pairs) == 6000
    folds = np.array([p.fold for p in pairs])
    same = np.array([p.same for p in pairs])
    assert sorted(set(folds.tolist())) == list(range(10))
    for f in range(10):
        assert int(same[folds == f].sum()) == 300
        assert int((~same[folds == f]).sum()) == 300
    missing = [p for pair in pairs for p in (pair.path_a, pair.path_b) if not p.is_file()]
    assert missing == [], f"{len(missing)} missing images, e.g. {missing[:3]}"
    assert all(p.path_a.parent == p.path_b.parent for p in pairs if p.same)
    assert all(p.path_a.parent != p.path_b.parent for p in pairs if not p.same)


@pytest.mark.data
def test_real_lfw_view1_pairs() -> None:
    paths = _real_lfw()
    train = read_lfw_pairs(paths.dev_train, paths.images)
    test = read_lfw_pairs(paths.dev_test, paths.images)
    assert len(train) == 2200 and sum(p.same for p in train) == 1100
    assert len(test) == 1000 and sum(p.same for p in test) == 500
    assert {p.fold for p in train + test} == {0}
    missing = [p for pair in train + test for p in (pair.path_a, pair.path_b) if not p.is_file()]
    assert missing == [], f"{len(missing)} missing images, e.g. {missing[:3]}"


def test_metric_modules_import_no_data_set_or_interface() -> None:
    """The metric and report modules of faceprint.evaluation are pure: no datasets, pipeline or cli."""
    from test_datasets import _imports

    src = Path(__file__).resolve().parents[1] / "src" / "faceprint" / "evaluation"
    for name in ("verification.py", "bias.py", "report.py", "report_html.py"):
        inside = {m for m in _imports(src / name) if m.startswith("faceprint")}
        allowed = {"faceprint.errors"} | {f"faceprint.evaluation.{m}" for m in ("verification", "bias", "report")}
        assert inside <= allowed, (name, inside)
    workflows = _imports(src / "lfw.py") | _imports(src / "utkface.py")
    assert not any(m.startswith("faceprint.cli") for m in workflows)


def test_import_evaluation_does_not_load_the_workflows() -> None:
    import subprocess
    import sys

    code = (
        "import sys, faceprint.evaluation as e; "
        "print('faceprint.evaluation.lfw' in sys.modules, 'faceprint.evaluation.utkface' in sys.modules); "
        "e.run_lfw_protocol; e.evaluate_bias; "
        "print('faceprint.evaluation.lfw' in sys.modules, 'faceprint.evaluation.utkface' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "True", "True"]
