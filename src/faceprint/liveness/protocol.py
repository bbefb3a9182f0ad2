"""Evaluation splits for passive PAD that hold out capture sessions and subjects.

Leave-one-subject-out on one pool of sessions measures a model on new people filmed in the same
sessions; it says nothing about a new session (camera placement, light, print batch). A
:class:`SessionSubjectFold` trains on *some subjects of one session* and is tested on three
disjoint cells, none of which shares an image with its training set:

``unseen_session_and_subjects`` (the headline cell)
    the *other* subjects, recorded in the *other* session;
``unseen_session``
    the training subjects, recorded in the other session;
``unseen_subjects``
    the other subjects, recorded in the training session.

:func:`session_subject_folds` builds every (train session, test session, subject group) fold of
a data set; :data:`NUAA_SUBJECT_GROUPS` are the three fixed subject groups used for the NUAA subset
(subjects 0001-0009, sessions 01-02). The split logic works on plain arrays of subject and
session labels (see :func:`faceprint.datasets.nuaa_name` for NUAA's), so it is data-set agnostic.

Examples
--------
>>> folds = session_subject_folds(["01", "02"], ["a", "b", "c", "d"], [("a", "b"), ("c", "d")])
>>> [f.name for f in folds]
['train-s01-a+b__test-s02', 'train-s01-c+d__test-s02', 'train-s02-a+b__test-s01', 'train-s02-c+d__test-s01']
>>> folds[0].test_subjects, folds[0].train_subjects
(('a', 'b'), ('c', 'd'))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from ..errors import InvalidArgumentError
from .metrics import pad_metrics

__all__ = [
    "CELL_KINDS",
    "CellKind",
    "NUAA_SUBJECT_GROUPS",
    "SessionSubjectFold",
    "cell_report",
    "session_subject_folds",
]

CellKind = Literal["unseen_session_and_subjects", "unseen_session", "unseen_subjects"]
CELL_KINDS: tuple[CellKind, ...] = ("unseen_session_and_subjects", "unseen_session", "unseen_subjects")
"""The test cells of a fold, the headline one first."""

NUAA_SUBJECT_GROUPS: tuple[tuple[str, ...], ...] = (
    ("0001", "0004", "0007"),
    ("0002", "0005", "0008"),
    ("0003", "0006", "0009"),
)
"""Three fixed groups of the nine NUAA subjects in the shared subset. A fold holds one group out
(its test subjects) and trains on the other six; every group has bona fide and print images in
both sessions (NUAA has no bona fide images of 0002 and 0003 in session 02, nor of 0008 in 01)."""

BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class SessionSubjectFold:
    """Train on ``train_subjects`` of ``train_session``; test on the cells of :data:`CELL_KINDS`.

    Attributes
    ----------
    train_session, test_session : str
        Session labels (different).
    train_subjects, test_subjects : tuple of str
        Disjoint subject labels, sorted.
    """

    train_session: str
    test_session: str
    train_subjects: tuple[str, ...]
    test_subjects: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.train_session == self.test_session:
            raise InvalidArgumentError(f"train and test session are both {self.train_session!r}")
        if set(self.train_subjects) & set(self.test_subjects):
            raise InvalidArgumentError("train and test subjects overlap")
        if not self.train_subjects or not self.test_subjects:
            raise InvalidArgumentError("a fold needs training and test subjects")

    @property
    def name(self) -> str:
        """``train-s<session>-<held-out (test) subjects joined by +>__test-s<session>``."""
        held = "+".join(self.test_subjects)
        return f"train-s{self.train_session}-{held}__test-s{self.test_session}"

    def train_mask(self, subjects: npt.ArrayLike, sessions: npt.ArrayLike) -> BoolArray:
        """Rows of the training set: a training subject in the training session."""
        subj, sess = _labels(subjects, sessions)
        return np.isin(subj, self.train_subjects) & (sess == self.train_session)

    def test_mask(self, subjects: npt.ArrayLike, sessions: npt.ArrayLike, kind: CellKind) -> BoolArray:
        """Rows of one test cell (see the module docstring); never overlaps :meth:`train_mask`."""
        subj, sess = _labels(subjects, sessions)
        if kind == "unseen_session_and_subjects":
            return np.isin(subj, self.test_subjects) & (sess == self.test_session)
        if kind == "unseen_session":
            return np.isin(subj, self.train_subjects) & (sess == self.test_session)
        if kind == "unseen_subjects":
            return np.isin(subj, self.test_subjects) & (sess == self.train_session)
        raise InvalidArgumentError(f"unknown cell kind {kind!r}; valid: {', '.join(CELL_KINDS)}")

    def excluded_mask(self, subjects: npt.ArrayLike, sessions: npt.ArrayLike) -> BoolArray:
        """Rows a model for this fold must not train on: a test subject OR the test session."""
        subj, sess = _labels(subjects, sessions)
        return np.isin(subj, self.test_subjects) | (sess == self.test_session)


def _labels(subjects: npt.ArrayLike, sessions: npt.ArrayLike) -> tuple[npt.NDArray[np.str_], npt.NDArray[np.str_]]:
    subj = np.asarray(subjects).astype(str).ravel()
    sess = np.asarray(sessions).astype(str).ravel()
    if subj.shape != sess.shape:
        raise InvalidArgumentError(f"subjects and sessions differ in length: {subj.shape[0]} vs {sess.shape[0]}")
    return subj, sess


def session_subject_folds(
    sessions: Sequence[str], subjects: Sequence[str], groups: Sequence[Sequence[str]]
) -> list[SessionSubjectFold]:
    """Every fold (train session, other test session, held-out subject group).

    Parameters
    ----------
    sessions : sequence of str
        The session labels (at least two); every ordered pair is a fold's (train, test).
    subjects : sequence of str
        All subject labels; a fold trains on those outside its held-out group.
    groups : sequence of sequences of str
        Held-out subject groups (each a subset of ``subjects``, not the whole of it).

    Returns
    -------
    list of SessionSubjectFold
        Ordered by train session, test session, then group.
    """
    sess = sorted({str(s) for s in sessions})
    subj = sorted({str(s) for s in subjects})
    if len(sess) < 2:
        raise InvalidArgumentError(f"need at least two sessions, got {sess}")
    folds = []
    for a in sess:
        for b in sess:
            if a == b:
                continue
            for g in groups:
                held = tuple(sorted(str(x) for x in g))
                unknown = set(held) - set(subj)
                if unknown:
                    raise InvalidArgumentError(f"group {held} names unknown subjects {sorted(unknown)}")
                train = tuple(s for s in subj if s not in held)
                folds.append(SessionSubjectFold(a, b, train, held))
    return folds


def cell_report(
    scores: npt.ArrayLike,
    is_attack: npt.ArrayLike,
    thresholds: Mapping[str, float],
    *,
    attack_type: str = "print",
) -> dict[str, Any]:
    """PAD metrics of one test cell at each of several thresholds fixed beforehand.

    Returns ``{"n_bona_fide", "n_attack", "eer", "bpcer_at_apcer_5pct", "bpcer_at_apcer_1pct",
    "at": {name: {"threshold", "apcer", "bpcer", "acer"}}}``; the EER and BPCER@APCER figures are
    threshold-free (they look at the test scores, the ``at`` figures do not).

    Examples
    --------
    >>> r = cell_report([0.9, 0.6, 0.7, 0.1], [False, False, True, True], {"eer": 0.65})
    >>> r["at"]["eer"]["apcer"], r["at"]["eer"]["bpcer"], r["eer"]
    (0.5, 0.5, 0.5)
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    a = np.asarray(is_attack).astype(bool).ravel()
    types = [attack_type] * s.shape[0]
    out: dict[str, Any] = {"n_bona_fide": int((~a).sum()), "n_attack": int(a.sum()), "at": {}}
    for name, t in thresholds.items():
        m = pad_metrics(s, a, types, threshold=float(t))
        out["at"][name] = {"threshold": float(t), "apcer": m["apcer_max"], "bpcer": m["bpcer"], "acer": m["acer"]}
        out.update(
            eer=m["eer"], bpcer_at_apcer_5pct=m["bpcer_at_apcer_5pct"], bpcer_at_apcer_1pct=m["bpcer_at_apcer_1pct"]
        )
    return out
