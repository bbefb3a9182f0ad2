"""Tests of faceprint.liveness.protocol (session x subject folds), threshold_at_apcer and nuaa_name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceprint.datasets import nuaa_name
from faceprint.errors import InvalidArgumentError
from faceprint.liveness import (
    CELL_KINDS,
    NUAA_SUBJECT_GROUPS,
    SessionSubjectFold,
    session_subject_folds,
    threshold_at_apcer,
    threshold_at_bpcer,
)
from faceprint.liveness.protocol import cell_report


def test_nuaa_name_fields() -> None:
    n = nuaa_name(Path("ImposterRaw/0007/0007_01_05_02_113.jpg"))
    assert (n.subject, n.glasses, n.position, n.session, n.picture) == ("0007", "01", "05", "02", 113)
    with pytest.raises(InvalidArgumentError):
        nuaa_name("0007_01_05.jpg")


def _grid() -> tuple[np.ndarray, np.ndarray]:
    subjects = [f"{i:04d}" for i in range(1, 10)]
    subj = np.array([s for s in subjects for _ in ("01", "02") for _ in range(3)])
    sess = np.array([k for _ in subjects for k in ("01", "02") for _ in range(3)])
    return subj, sess


def test_nuaa_folds_are_disjoint_and_cover_every_cell() -> None:
    subj, sess = _grid()
    folds = session_subject_folds(["02", "01"], sorted(set(subj.tolist())), NUAA_SUBJECT_GROUPS)
    assert len(folds) == 6  # 2 ordered session pairs x 3 groups
    assert [(f.train_session, f.test_session) for f in folds] == [("01", "02")] * 3 + [("02", "01")] * 3
    headline = np.zeros(subj.shape[0], dtype=int)
    for f in folds:
        assert len(f.train_subjects) == 6 and len(f.test_subjects) == 3
        tr = f.train_mask(subj, sess)
        assert set(subj[tr].tolist()) == set(f.train_subjects) and set(sess[tr].tolist()) == {f.train_session}
        excluded = f.excluded_mask(subj, sess)
        assert not (tr & excluded).any()
        cells = {k: f.test_mask(subj, sess, k) for k in CELL_KINDS}
        for k, te in cells.items():
            assert te.any() and not (te & tr).any(), k
        both = cells["unseen_session_and_subjects"]
        assert set(subj[both].tolist()) == set(f.test_subjects) and set(sess[both].tolist()) == {f.test_session}
        assert (both <= excluded).all()
        assert set(subj[cells["unseen_session"]].tolist()) == set(f.train_subjects)
        assert set(sess[cells["unseen_subjects"]].tolist()) == {f.train_session}
        # the three cells and the training set partition the data
        total = tr.astype(int) + sum(c.astype(int) for c in cells.values())
        assert (total == 1).all()
        headline += both
    assert (headline == 1).all()  # every image is in exactly one headline cell
    assert folds[0].name == "train-s01-0001+0004+0007__test-s02"


def test_fold_validation() -> None:
    with pytest.raises(InvalidArgumentError):
        SessionSubjectFold("01", "01", ("a",), ("b",))
    with pytest.raises(InvalidArgumentError):
        SessionSubjectFold("01", "02", ("a", "b"), ("b",))
    with pytest.raises(InvalidArgumentError):
        session_subject_folds(["01"], ["a", "b"], [("a",)])
    with pytest.raises(InvalidArgumentError):
        session_subject_folds(["01", "02"], ["a", "b"], [("z",)])
    f = SessionSubjectFold("01", "02", ("a",), ("b",))
    with pytest.raises(InvalidArgumentError):
        f.test_mask(["a"], ["01"], "nope")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        f.train_mask(["a", "b"], ["01"])


def test_threshold_at_apcer_is_the_lowest_qualifying() -> None:
    rng = np.random.default_rng(0)
    s = rng.random(200)
    a = rng.random(200) < 0.5
    for target in (0.0, 0.05, 0.2, 1.0):
        t = threshold_at_apcer(s, a, target)
        assert np.mean(s[a] >= t) <= target + 1e-12
        lower = s[s < t]
        if lower.size:  # the next lower score would break the target
            assert np.mean(s[a] >= lower.max()) > target
    with pytest.raises(InvalidArgumentError):
        threshold_at_apcer(s, a, 1.5)


def test_threshold_at_bpcer_is_the_highest_qualifying() -> None:
    rng = np.random.default_rng(1)
    s = rng.random(200)
    a = rng.random(200) < 0.5
    for target in (0.0, 0.01, 0.2, 1.0):
        t = threshold_at_bpcer(s, a, target)
        assert np.mean(s[~a] < t) <= target + 1e-12
        higher = s[s > t]
        if higher.size:  # the next higher score would break the target
            assert np.mean(s[~a] < higher.min()) > target
    with pytest.raises(InvalidArgumentError):
        threshold_at_bpcer(s, a, -0.1)


def test_cell_report_uses_the_given_thresholds() -> None:
    r = cell_report([0.9, 0.8, 0.6, 0.7, 0.3, 0.1], [False, False, False, True, True, True], {"a": 0.65, "b": 0.95})
    assert r["n_bona_fide"] == 3 and r["n_attack"] == 3
    assert r["at"]["a"] == {
        "threshold": 0.65,
        "apcer": pytest.approx(1 / 3),
        "bpcer": pytest.approx(1 / 3),
        "acer": pytest.approx(1 / 3),
    }
    assert r["at"]["b"]["apcer"] == 0.0 and r["at"]["b"]["bpcer"] == 1.0
    assert r["eer"] == pytest.approx(1 / 3)
