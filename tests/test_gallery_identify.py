"""Identification with a classifier over a bounded gallery search gives what a whole-gallery search gave.

``FacePipeline.identify(classifier=...)`` used to search with ``k = len(gallery)``; it now searches
the ``k`` best subjects and scores the classifier's other candidates from their own templates.
These tests hold the new path to the old one, field by field and bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from faceprint.classification import KNNFaceClassifier, from_gallery
from faceprint.gallery import Gallery
from faceprint.pipeline import UNKNOWN, FacePipeline
from faceprint.types import Match
from fakes import FakeDetector, FakeEmbedder, solid_image

FP = FakeEmbedder.fingerprint


class StubClassifier:
    """A fitted classifier that always gives the same probabilities (names may be absent from the gallery)."""

    fingerprint_ = FP

    def __init__(self, classes: list[str], proba: np.ndarray) -> None:
        self.classes_ = np.asarray(classes)
        self._proba = proba

    def predict_proba(self, X: Any) -> np.ndarray:
        return np.tile(self._proba, (len(X), 1))


def old_identify(
    gallery: Gallery, embedding: np.ndarray, classifier: Any, k: int, thr: float
) -> tuple[str, tuple[Match, ...], tuple[tuple[str, float], ...]]:
    """The classifier branch of ``FacePipeline.identify`` before the bounded search, verbatim."""
    everyone = gallery.search(embedding, k=max(len(gallery), 1), threshold=thr, fingerprint=FP)
    proba = np.asarray(classifier.predict_proba(embedding[None]))[0]
    order = np.argsort(-proba)
    classes = [str(c) for c in classifier.classes_]
    probs = tuple((classes[i], float(proba[i])) for i in order[:k])
    by_name = {m.name: m for m in everyone}
    best = by_name.get(classes[order[0]]) if len(order) else None
    name = best.name if best is not None and best.same else UNKNOWN
    matches = [by_name[c] for c, _ in probs if c in by_name]
    return name, tuple(matches), probs


@pytest.fixture
def gallery(tmp_path: Path) -> Iterator[Gallery]:
    rng = np.random.default_rng(0)
    with Gallery(tmp_path / "g.db") as g:
        for i in range(60):
            colours = rng.integers(0, 256, size=(int(rng.integers(1, 5)), 3))
            vectors = np.stack([FakeEmbedder.vector_for_colour(c) for c in colours])
            g.enroll(f"p{i:02d}", vectors, fingerprint=FP)
        yield g


COLOURS = [(200, 30, 30), (10, 240, 90), (128, 128, 128), (0, 0, 0), (255, 255, 10)]


@pytest.mark.parametrize("k", [1, 3, 10])
def test_bounded_search_identifies_as_the_whole_gallery_search(gallery: Gallery, k: int) -> None:
    pipe = FacePipeline(detector=FakeDetector(), embedder=FakeEmbedder())
    thr = pipe.threshold(None)
    rng = np.random.default_rng(k)
    names = [s.name for s in gallery.subjects()]
    # Candidates the classifier favours regardless of similarity, names the gallery lacks, a
    # name with stray whitespace: most top-k candidates are not among the k nearest subjects.
    classes = [*names, "ghost", " p05", "zz-left"]
    fitted = [StubClassifier(classes, rng.dirichlet(np.ones(len(classes)))) for _ in range(4)]
    fitted.append(from_gallery(gallery, classifier=KNNFaceClassifier(n_neighbors=3)))
    outside = 0
    for colour in COLOURS:
        image = solid_image(colour)
        embedding = FakeEmbedder().embed_faces(image, FakeDetector().detect(image))[0]
        nearest = {m.name for m in gallery.search(embedding, k=k, threshold=thr, fingerprint=FP)}
        for clf in fitted:
            (got,) = pipe.identify(image, gallery, k=k, classifier=clf, liveness="off")
            name, matches, probs = old_identify(gallery, embedding, clf, k, thr)
            assert (got.name, got.matches, got.probabilities) == (name, matches, probs)
            outside += sum(m.name not in nearest for m in matches)
    assert outside > 0  # the scored-from-templates path was taken


def test_empty_gallery_and_mismatched_classifier(tmp_path: Path) -> None:
    pipe = FacePipeline(detector=FakeDetector(), embedder=FakeEmbedder())
    clf = StubClassifier(["ann", "bob"], np.array([0.7, 0.3]))
    with Gallery(tmp_path / "empty.db") as g:
        (got,) = pipe.identify(solid_image((9, 9, 9)), g, k=2, classifier=clf, liveness="off")
    assert got.name == UNKNOWN and got.matches == () and got.probabilities == (("ann", 0.7), ("bob", 0.3))
