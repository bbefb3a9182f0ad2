"""Fake detection / embedding backends for fast unit tests (no model files, no data sets).

``FakeDetector`` returns the detections it was built with; ``FakeEmbedder`` maps the mean colour
inside each box to a unit vector, so identical images give identical vectors, similar colours
give similar vectors and clearly different colours give dissimilar ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from faceprint.detection import check_image
from faceprint.embedding import EmbedderSpec
from faceprint.types import Detection, Image, ModelSpec

__all__ = ["FakeDetector", "FakeEmbedder", "make_detection", "solid_image"]


def make_detection(
    box: tuple[float, float, float, float] = (10.0, 10.0, 90.0, 90.0), score: float = 0.99
) -> Detection:
    """A detection with plausible landmarks (eyes, nose, mouth corners) inside ``box``."""
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    rel = np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.8], [0.65, 0.8]])
    pts = np.array([x1, y1]) + rel * np.array([w, h])
    return Detection(box=(x1, y1, x2, y2), score=float(score), landmarks=pts.astype(np.float32))


def solid_image(colour: tuple[int, int, int], size: tuple[int, int] = (100, 100)) -> Image:
    """An ``(h, w, 3)`` uint8 image filled with one RGB colour."""
    h, w = size
    img = np.empty((h, w, 3), np.uint8)
    img[...] = np.asarray(colour, np.uint8)
    return img


class FakeDetector:
    """Returns a fixed list of detections for every (valid) image.

    Parameters
    ----------
    detections : sequence of Detection, optional
        What :meth:`detect` returns (a fresh list each call); default one face
        ``make_detection()`` at ``(10, 10, 90, 90)``. Pass ``[]`` for "no face".
    """

    name = "fake"

    def __init__(self, detections: Sequence[Detection] | None = None) -> None:
        self.detections = list(detections) if detections is not None else [make_detection()]
        self.calls = 0

    def detect(self, image: Image) -> list[Detection]:
        check_image(image)
        self.calls += 1
        return sorted(self.detections, key=lambda d: -d.score)


class FakeEmbedder:
    """8-d embedder whose vector depends only on the mean RGB colour inside each box.

    With ``c`` the mean colour in ``[0, 1]^3``, the vector is the L2-normalised
    ``(r, g, b, 1 - r, 1 - g, 1 - b, 0.5, 0.5)``: injective in the colour (no two colours give
    the same direction), e.g. cosine(red, green) ~ 0.43, cosine(black, white) ~ 0.14, and
    near 1 for nearly equal colours.
    """

    name = "fake"
    key = "fake"
    fingerprint = "fake@0"
    dim = 8
    thresholds = {"1e-3": 0.9, "1e-2": 0.8, "best_accuracy": 0.7}
    input_size = None  # no aligned crop: the colour is read inside the box
    template = None

    def __init__(self) -> None:
        self.calls = 0

    @property
    def spec(self) -> ModelSpec:
        return ModelSpec(
            name=self.key, dim=self.dim, input_size=(0, 0), template=(), thresholds=self.thresholds,
            weights_file="", weights_sha256="", package="tests", licence="",
        )

    @property
    def embedder_spec(self) -> EmbedderSpec:
        raise TypeError("FakeEmbedder is not a registered embedder; it has no EmbedderSpec")

    def warm_up(self) -> None:
        """Nothing to load."""

    @staticmethod
    def vector_for_colour(colour: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """The embedding of a face region whose mean RGB (0..255) colour is ``colour``."""
        c = np.asarray(colour, np.float64).reshape(3) / 255.0
        v = np.concatenate([c, 1.0 - c, [0.5, 0.5]])
        return (v / np.linalg.norm(v)).astype(np.float32)

    def embed_faces(self, image: Image, detections: Sequence[Detection]) -> npt.NDArray[np.float32]:
        check_image(image)
        self.calls += 1
        out = np.zeros((len(detections), self.dim), np.float32)
        h, w = image.shape[:2]
        for i, det in enumerate(detections):
            x1, y1, x2, y2 = det.box
            c0 = min(max(int(math.floor(x1)), 0), w - 1)
            r0 = min(max(int(math.floor(y1)), 0), h - 1)
            c1 = min(max(int(math.ceil(x2)), c0 + 1), w)
            r1 = min(max(int(math.ceil(y2)), r0 + 1), h)
            mean = image[r0:r1, c0:c1].reshape(-1, 3).mean(axis=0)
            out[i] = self.vector_for_colour(mean)
        return out
