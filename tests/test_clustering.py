"""Tests for faceprint.clustering: the metric against brute force, clustering on synthetic vectors,
the folder driver on fakes, then the proof on real LFW identities."""

from __future__ import annotations

import base64
import csv
import io
import itertools
import shutil
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from faceprint.clustering import (
    DEFAULT_FMR,
    NOISE,
    ClusterResult,
    cluster_directory,
    cluster_embeddings,
    default_threshold,
    pairwise_precision_recall_f1,
)
from faceprint.detection import Detector, select_faces
from faceprint.embedding import Embedder
from faceprint.errors import FaceprintError, InvalidEmbeddingError
from faceprint.pipeline import FacePipeline
from faceprint.types import Detection, Image
from fakes import FakeDetector, FakeEmbedder, make_detection, solid_image

RED, RED2 = (255, 0, 0), (235, 15, 10)
BLUE, BLUE2 = (0, 0, 255), (10, 20, 240)
GREEN = (0, 255, 0)


# -- the metric ------------------------------------------------------------------------------
def brute_force_prf(true: list[int], pred: list[int]) -> tuple[float, float, float]:
    """O(n^2) reference: noise (-1) in either labelling pairs with nothing."""
    tp = fp = fn = 0
    for i, j in itertools.combinations(range(len(true)), 2):
        same_true = true[i] == true[j] and true[i] >= 0
        same_pred = pred[i] == pred[j] and pred[i] >= 0
        tp += same_true and same_pred
        fp += same_pred and not same_true
        fn += same_true and not same_pred
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


@pytest.mark.parametrize("seed", range(40))
def test_metric_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 40))
    true = rng.integers(-1, int(rng.integers(1, 8)), n).tolist()
    pred = rng.integers(-1, int(rng.integers(1, 8)), n).tolist()
    assert pairwise_precision_recall_f1(true, pred) == pytest.approx(brute_force_prf(true, pred))


def test_metric_hand_case() -> None:
    # true {0,1,2} {3,4}; predicted {0,1} {2,3} {4 noise}
    # predicted pairs: (0,1) ok, (2,3) wrong -> P = 1/2; true pairs: (0,1) (0,2) (1,2) (3,4) -> R = 1/4
    p, r, f = pairwise_precision_recall_f1([0, 0, 0, 1, 1], [5, 5, 7, 7, -1])
    assert (p, r) == pytest.approx((0.5, 0.25))
    assert f == pytest.approx(2 * 0.5 * 0.25 / 0.75)


def test_metric_edge_cases() -> None:
    assert pairwise_precision_recall_f1([0, 1, 2], [-1, -1, -1]) == (1.0, 1.0, 1.0)  # all singletons, right
    assert pairwise_precision_recall_f1([0, 0], [-1, -1]) == (1.0, 0.0, 0.0)  # nothing merged, pair missed
    assert pairwise_precision_recall_f1([0, 1], [3, 3]) == (0.0, 1.0, 0.0)  # wrongly merged
    assert pairwise_precision_recall_f1(["ann", "ann", "bob"], [1, 1, 0]) == (1.0, 1.0, 1.0)  # names work
    with pytest.raises(ValueError, match="length"):
        pairwise_precision_recall_f1([0, 1], [0, 1, 2])


# -- clustering embeddings -------------------------------------------------------------------
def blobs(
    sizes: tuple[int, ...] = (7,) * 6, dim: int = 32, spread: float = 0.05, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Tight groups of unit vectors (``sizes[i]`` in group ``i``) around random, nearly orthogonal directions."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = np.repeat(np.arange(len(sizes)), sizes)
    x = centres[labels] + spread * rng.normal(size=(len(labels), dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    perm = rng.permutation(len(labels))
    return x[perm].astype(np.float32), labels[perm]


@pytest.mark.parametrize(
    ("method", "linkage"),
    [
        ("agglomerative", "average"),
        ("agglomerative", "complete"),
        ("agglomerative", "single"),
        ("dbscan", "average"),
        ("hdbscan", "average"),
    ],
)
def test_well_separated_clusters_are_recovered(method: str, linkage: str) -> None:
    x, truth = blobs()
    labels = cluster_embeddings(x, threshold=0.3, method=method, linkage=linkage)  # type: ignore[arg-type]
    assert pairwise_precision_recall_f1(truth, labels) == (1.0, 1.0, 1.0)
    assert set(labels.tolist()) == set(range(6))


def test_labels_are_ordered_by_cluster_size_and_small_clusters_are_noise() -> None:
    x, truth = blobs(sizes=(1, 5, 8))
    labels = cluster_embeddings(x, threshold=0.3)
    assert labels[truth == 2].tolist() == [0] * 8  # largest cluster first
    assert labels[truth == 1].tolist() == [1] * 5
    assert labels[truth == 0].tolist() == [2]
    labels = cluster_embeddings(x, threshold=0.3, min_cluster_size=2)
    assert labels[truth == 0].tolist() == [NOISE]
    assert labels[truth == 1].tolist() == [1] * 5


def test_threshold_controls_merging() -> None:
    a = np.array([[1.0, 0.0], [np.cos(0.5), np.sin(0.5)]])  # cosine distance 1 - cos(0.5) = 0.122
    assert cluster_embeddings(a, threshold=0.2).tolist() == [0, 0]
    assert cluster_embeddings(a, threshold=0.1).tolist() == [0, 1]
    assert cluster_embeddings(a, threshold=0.1, method="dbscan").tolist() == [NOISE, NOISE]


def test_tiny_and_bad_inputs() -> None:
    assert cluster_embeddings(np.zeros((0, 4)), threshold=0.5).tolist() == []
    assert cluster_embeddings(np.ones((1, 4)), threshold=0.5).tolist() == [0]
    assert cluster_embeddings(np.ones((1, 4)), threshold=0.5, method="dbscan").tolist() == [NOISE]
    with pytest.raises(ValueError, match="agglomerative"):
        cluster_embeddings(np.ones((3, 4)), threshold=0.5, method="kmeans")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\[0, 2\]"):
        cluster_embeddings(np.ones((3, 4)), threshold=3.0)
    with pytest.raises(InvalidEmbeddingError, match="NaN"):
        cluster_embeddings(np.full((3, 4), np.nan), threshold=0.5)
    with pytest.raises(InvalidEmbeddingError, match="zero vector"):
        cluster_embeddings(np.zeros((3, 4)), threshold=0.5)
    with pytest.raises(InvalidEmbeddingError, match="shape"):
        cluster_embeddings(np.ones(4), threshold=0.5)


def test_default_threshold_follows_calibration() -> None:
    assert default_threshold({DEFAULT_FMR: 0.35, "1e-2": 0.2}) == pytest.approx(0.65)
    # without DEFAULT_FMR: the strictest numeric operating point (smallest FMR), never best_accuracy
    assert default_threshold({"best_accuracy": 0.5, "1e-2": 0.2, "1e-3": 0.3}) == pytest.approx(0.7)
    with pytest.raises(FaceprintError, match="threshold="):
        default_threshold({})
    with pytest.raises(FaceprintError, match="threshold="):
        default_threshold({"best_accuracy": 0.5})


# -- cluster_directory on fakes --------------------------------------------------------------
class BlankAwareDetector(FakeDetector):
    """Like FakeDetector, but an all-black image has no face."""

    def detect(self, image: Image) -> list[Detection]:
        faces = super().detect(image)
        return [] if int(image.max()) == 0 else faces


def save(path: Path, colour: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(solid_image(colour)).save(path, quality=95)


class SheetParser(HTMLParser):
    """Collects section ids, image sources and table cells of the contact sheet."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.images: list[str] = []
        self.cells: list[str] = []
        self._in_td = False
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section":
            self.sections.append(a.get("id") or "")
        if tag == "img":
            self.images.append(a.get("src") or "")
        if tag in ("link", "script") or (tag == "img" and not (a.get("src") or "").startswith("data:")):
            self.external.append(tag)
        self._in_td = tag == "td"

    def handle_data(self, data: str) -> None:
        if self._in_td:
            self.cells.append(data)

    def handle_endtag(self, tag: str) -> None:
        self._in_td = False


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    d = tmp_path / "photos"
    save(d / "red_1.jpg", RED)
    save(d / "red_2.png", RED2)
    save(d / "sub" / "red_3.jpg", RED)
    save(d / "blue_1.jpg", BLUE)
    save(d / "sub" / "deeper" / "blue_2.jpg", BLUE2)
    save(d / "green_1.jpg", GREEN)  # matches nobody: unclustered
    save(d / "black.jpg", (0, 0, 0))  # no face
    (d / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    (d / "notes.txt").write_text("not an image")
    (d / ".hidden.jpg").write_bytes(b"skipped")
    return d


def test_cluster_directory_on_fakes(photos: Path, tmp_path: Path) -> None:
    pipe = FacePipeline(detector=BlankAwareDetector(), embedder=FakeEmbedder())
    calls: list[int] = []
    total: list[int] = []
    res = cluster_directory(photos, pipe, out_dir=tmp_path / "out", progress=calls.append, n_files=total.append)
    assert isinstance(res, ClusterResult)
    assert total == [9] and sum(calls) == 9  # hidden file skipped
    assert res.threshold == pytest.approx(default_threshold(FakeEmbedder.thresholds))  # fake: strictest = 1e-3
    names = {it.path.name: int(lab) for it, lab in zip(res.items, res.labels)}
    assert names == {
        "red_1.jpg": 0,
        "red_2.png": 0,
        "red_3.jpg": 0,
        "blue_1.jpg": 1,
        "blue_2.jpg": 1,
        "green_1.jpg": -1,
    }
    assert res.n_clusters == 2
    assert [len(c) for c in res.clusters()] == [3, 2]
    reasons = {f.path.name: f.reason for f in res.failures}
    assert set(reasons) == {"black.jpg", "corrupt.jpg", "notes.txt"}
    assert reasons["black.jpg"] == "no face found"
    assert "not a recognised image format" in reasons["notes.txt"]

    # CSV: one row per face, then one per failure
    with open(res.csv_path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 9
    by_path = {r["path"]: r for r in rows}
    assert by_path["sub/deeper/blue_2.jpg"]["cluster"] == "1"
    assert by_path["sub/deeper/blue_2.jpg"]["face"] == "0"
    assert [float(by_path["red_1.jpg"][k]) for k in ("x1", "y1", "x2", "y2")] == [10.0, 10.0, 90.0, 90.0]
    assert by_path["green_1.jpg"]["cluster"] == "-1"
    assert by_path["notes.txt"]["cluster"] == "" and "not a recognised image format" in by_path["notes.txt"]["error"]

    # HTML: self-contained, clusters by size, unclustered then failures last
    sheet = SheetParser()
    sheet.feed(res.html_path.read_text(encoding="utf-8"))
    assert sheet.sections == ["cluster-0", "cluster-1", "unclustered", "failures"]
    assert sheet.external == []
    assert len(sheet.images) == 6
    for src in sheet.images:
        assert src.startswith("data:image/jpeg;base64,")
        thumb = PILImage.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        assert thumb.format == "JPEG" and max(thumb.size) <= 96
    assert {"black.jpg", "corrupt.jpg", "notes.txt"} <= set(sheet.cells)


def test_cluster_directory_multi_face_photos_and_out_dir_inside(tmp_path: Path) -> None:
    d = tmp_path / "group"
    d.mkdir()
    for i, (left, right) in enumerate([(RED, BLUE), (BLUE2, RED2), (RED, GREEN)]):
        img = np.zeros((100, 200, 3), np.uint8)
        img[:, :100], img[:, 100:] = left, right
        PILImage.fromarray(img).save(d / f"g{i}.png")
    dets = [make_detection((10, 10, 90, 90), score=0.9), make_detection((110, 10, 190, 90), score=0.8)]
    pipe = FacePipeline(detector=FakeDetector(dets), embedder=FakeEmbedder())
    out = d / "clusters"  # inside the photo folder: must not be read back as input on a re-run
    first = cluster_directory(d, pipe, out_dir=out)
    again = cluster_directory(d, pipe, out_dir=out)
    assert len(again.items) == len(first.items) == 6 and again.failures == ()
    assert [(it.path.name, it.face_index) for it in first.items][:2] == [("g0.png", 0), ("g0.png", 1)]
    assert first.items[1].box == (110.0, 10.0, 190.0, 90.0)
    colour = {("g0.png", 0): "r", ("g0.png", 1): "b", ("g1.png", 0): "b", ("g1.png", 1): "r",
              ("g2.png", 0): "r", ("g2.png", 1): "g"}  # fmt: skip
    truth = [colour[(it.path.name, it.face_index)] for it in first.items]
    assert pairwise_precision_recall_f1(truth, first.labels) == (1.0, 1.0, 1.0)


def test_cluster_directory_empty_and_missing(tmp_path: Path) -> None:
    pipe = FacePipeline(detector=FakeDetector(), embedder=FakeEmbedder())
    (tmp_path / "empty").mkdir()
    res = cluster_directory(tmp_path / "empty", pipe, out_dir=tmp_path / "out")
    assert res.items == () and res.n_clusters == 0 and res.labels.shape == (0,)
    assert res.html_path.is_file() and res.csv_path.read_text().startswith("path,face,")
    with pytest.raises(NotADirectoryError):
        cluster_directory(tmp_path / "nope", pipe, out_dir=tmp_path / "out")


# -- real models, real data ------------------------------------------------------------------
@pytest.mark.real
@pytest.mark.data
def test_lfw_identities_cluster_with_high_pairwise_f1(
    lfw_dir: Path, yunet: Detector, sface: Embedder, tmp_path: Path
) -> None:
    """10 LFW identities x 3-4 photos, default method and threshold: pairwise F1 >= 0.9."""
    people = sorted(p for p in lfw_dir.iterdir() if p.is_dir() and len(list(p.glob("*.jpg"))) >= 4)[::40][:10]
    assert len(people) == 10
    photos = tmp_path / "photos"
    photos.mkdir()
    for k, person in enumerate(people):
        for src in sorted(person.glob("*.jpg"))[: 3 + k % 2]:
            shutil.copy(src, photos / f"{k:02d}_{src.name}")  # flat folder: the names are the labels
    t0 = time.perf_counter()
    pipe = FacePipeline(detector=yunet, embedder=sface)
    res = cluster_directory(photos, pipe, out_dir=tmp_path / "out")
    elapsed = time.perf_counter() - t0
    assert res.failures == ()
    # truth: a photo's central face is its person; any background face is someone else (a singleton)
    truth = []
    for it in res.items:
        faces = [x.detection for x in res.items if x.path == it.path]
        central = select_faces(faces, (250, 250, 3), "central")[0]
        truth.append(it.path.name[:2] if it.detection is central else f"bg-{it.path.name}-{it.face_index}")
    p, r, f1 = pairwise_precision_recall_f1(truth, res.labels)
    assert f1 >= 0.9, f"pairwise P {p:.3f} R {r:.3f} F1 {f1:.3f}"
    assert elapsed < 30
