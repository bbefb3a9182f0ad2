"""ONNX export round trip, the faceprint-embedder/1 spec, and OnnxEmbedder (no data sets needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

import torch  # noqa: E402

from faceprint.embedding import Embedder, InvalidModelSpecError, OnnxEmbedder, get_embedder  # noqa: E402
from faceprint.errors import ModelIntegrityError, ModelNotFoundError  # noqa: E402
from faceprint.pipeline import FacePipeline  # noqa: E402
from faceprint.training.data import default_template  # noqa: E402
from faceprint.training.export import check_onnx, export_onnx, pair_thresholds, write_spec  # noqa: E402
from faceprint.training.networks import PREPROCESSING, AdaptationHead, CompactFaceNet, to_tensor  # noqa: E402
from fakes import FakeDetector, make_detection  # noqa: E402

torch.set_num_threads(2)
SIZE = 48


def _trained_like(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Non-trivial BatchNorm statistics and weights, as after training (fresh BN stats hide errors)."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                assert m.running_mean is not None and m.running_var is not None
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def _crops(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)


@pytest.fixture
def image_model(tmp_path: Path) -> tuple[torch.nn.Module, Path]:
    model = _trained_like(CompactFaceNet(dim=64, input_size=SIZE, width=8))
    onnx_path = export_onnx(model, tmp_path / "m" / "model.onnx", input_shape=(3, SIZE, SIZE))
    spec = write_spec(
        onnx_path, name="tiny-cnn", kind="image", dim=64, input_size=SIZE, template=default_template(SIZE),
        preprocessing=PREPROCESSING, thresholds={"1e-3": 0.6, "1e-2": 0.5, "best_accuracy": 0.4},
        thresholds_info={"measured_on": "test", "n_impostor": 10}, training={"epochs": 0},
    )
    return model, spec


def test_export_round_trip_within_1e_4_and_dynamic_batch(image_model: tuple[torch.nn.Module, Path]) -> None:
    model, spec = image_model
    onnx_path = spec.with_suffix(".onnx")
    for n in (1, 7):  # exported with a batch of 2: the batch axis must be dynamic
        diff = check_onnx(model, onnx_path, to_tensor(_crops(n, seed=n)))
        assert diff <= 1e-4
    assert model.training is False  # the caller's model untouched (it was in eval mode)


def test_check_onnx_detects_a_different_model(image_model: tuple[torch.nn.Module, Path]) -> None:
    _, spec = image_model
    other = _trained_like(CompactFaceNet(dim=64, input_size=SIZE, width=8), seed=1)
    assert check_onnx(other, spec.with_suffix(".onnx"), to_tensor(_crops(4))) > 1e-3


def test_export_leaves_a_training_model_in_training_mode(tmp_path: Path) -> None:
    head = AdaptationHead(16, 8).train()
    export_onnx(head, tmp_path / "h.onnx", input_shape=(16,))
    assert head.training
    with pytest.raises(ValueError, match="input_shape"):
        export_onnx(head, tmp_path / "h2.onnx", input_shape=())


def test_spec_fields(image_model: tuple[torch.nn.Module, Path]) -> None:
    _, spec_path = image_model
    spec = json.loads(spec_path.read_text())
    assert spec["format"] == "faceprint-embedder/1"
    assert spec["onnx"] == "model.onnx" and len(spec["onnx_sha256"]) == 64
    assert spec["kind"] == "image" and spec["dim"] == 64 and spec["input_size"] == [SIZE, SIZE]
    assert spec["preprocessing"] == PREPROCESSING and len(spec["template"]) == 5
    assert spec["thresholds"]["1e-3"] == 0.6 and spec["thresholds_measured_on"]["measured_on"] == "test"


def test_onnx_embedder_matches_torch(image_model: tuple[torch.nn.Module, Path]) -> None:
    model, spec_path = image_model
    emb = get_embedder(str(spec_path))
    assert isinstance(emb, OnnxEmbedder) and isinstance(emb, Embedder)
    crops = _crops(70, seed=3)  # more than one ONNX batch of 64
    with torch.no_grad():
        ref = model(to_tensor(crops)).numpy()
    got = emb.embed(crops)
    assert got.shape == (70, 64) and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert emb.embed(np.zeros((0, SIZE, SIZE, 3), np.uint8)).shape == (0, 64)
    assert emb.name == "tiny-cnn" and emb.dim == 64
    assert emb.fingerprint == f"tiny-cnn@{json.loads(spec_path.read_text())['onnx_sha256'][:12]}"
    assert emb.thresholds == {"1e-3": 0.6, "1e-2": 0.5, "best_accuracy": 0.4}
    assert emb.spec.input_size == (SIZE, SIZE) and emb.spec.weights_sha256.startswith(emb.fingerprint[-12:])


def test_onnx_embedder_flip_and_pipeline(image_model: tuple[torch.nn.Module, Path]) -> None:
    model, spec_path = image_model
    flipped = OnnxEmbedder(spec_path, flip=True)
    crops = _crops(3, seed=5)
    with torch.no_grad():
        a = model(to_tensor(crops)).numpy()
        b = model(to_tensor(np.ascontiguousarray(crops[:, :, ::-1]))).numpy()
    expect = (a + b) / np.linalg.norm(a + b, axis=1, keepdims=True)
    np.testing.assert_allclose(flipped.embed(crops), expect, atol=1e-4)
    assert flipped.fingerprint.startswith("tiny-cnn+flip@")

    rng = np.random.default_rng(0)
    img_a = rng.integers(0, 256, (100, 100, 3), dtype=np.uint8)
    img_b = rng.integers(0, 256, (100, 100, 3), dtype=np.uint8)
    pipe = FacePipeline(detector=FakeDetector(), embedder=OnnxEmbedder(spec_path), min_face_size=0)
    same = pipe.verify(img_a, img_a)
    assert same.similarity == pytest.approx(1.0, abs=1e-5) and same.same
    diff = pipe.verify(img_a, img_b)
    emb = OnnxEmbedder(spec_path)
    ea, eb = emb.embed_faces(img_a, [make_detection()])[0], emb.embed_faces(img_b, [make_detection()])[0]
    assert diff.similarity == pytest.approx(float(ea @ eb), abs=1e-5) and diff.similarity < 1 - 1e-5
    assert diff.threshold == 0.6 and diff.model == emb.fingerprint
    assert emb.embed_faces(img_a, [make_detection(), make_detection()]).shape == (2, 64)
    assert OnnxEmbedder(spec_path).embed_faces(img_a, []).shape == (0, 64)


def test_integrity_and_missing_files(image_model: tuple[torch.nn.Module, Path], tmp_path: Path) -> None:
    _, spec_path = image_model
    with pytest.raises(ModelNotFoundError, match="spec not found"):
        get_embedder(str(tmp_path / "nope.json"))
    onnx_path = spec_path.with_suffix(".onnx")
    data = onnx_path.read_bytes()
    onnx_path.write_bytes(data + b"\0")
    with pytest.raises(ModelIntegrityError, match="sha256"):
        OnnxEmbedder(spec_path)
    onnx_path.unlink()
    with pytest.raises(ModelNotFoundError, match="ONNX model"):
        OnnxEmbedder(spec_path)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"format": "other/1"}, "format"),
        ({"kind": "video"}, "kind"),
        ({"dim": "64"}, "dim"),
        ({"onnx": "../model.onnx"}, "file name"),
        ({"input_size": [SIZE]}, "input_size"),
        ({"preprocessing": {"mean": 0}}, "preprocessing"),
        ({"thresholds": {"1e-3": "high"}}, "thresholds"),
    ],
)
def test_invalid_specs(image_model: tuple[torch.nn.Module, Path], change: dict[str, object], match: str) -> None:
    _, spec_path = image_model
    spec = json.loads(spec_path.read_text())
    spec.update(change)
    bad = spec_path.with_name("bad.json")
    bad.write_text(json.dumps(spec))
    with pytest.raises(InvalidModelSpecError, match=match):
        get_embedder(str(bad))


def test_not_json(tmp_path: Path) -> None:
    p = tmp_path / "model.json"
    p.write_text("{not json")
    with pytest.raises(InvalidModelSpecError, match="not a JSON"):
        get_embedder(str(p))
    with pytest.raises(ValueError, match="unknown embedder"):
        get_embedder("no-such-model")


def test_head_model_round_trip(tmp_path: Path) -> None:
    head = _trained_like(AdaptationHead(128, 64, hidden=32), seed=2)
    onnx_path = export_onnx(head, tmp_path / "head.onnx", input_shape=(128,))
    x = np.random.default_rng(1).normal(size=(9, 128)).astype(np.float32)
    assert check_onnx(head, onnx_path, x) <= 1e-4
    spec = write_spec(onnx_path, name="sface-head", kind="head", dim=64, base="sface", in_dim=128)
    emb = OnnxEmbedder(spec)  # the base embedder (SFace) is built, its weights not loaded
    assert emb.kind == "head" and emb.input_size == (112, 112) and emb.dim == 64
    with torch.no_grad():
        ref = head(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(emb.embed_vectors(x), ref, atol=1e-4)
    with pytest.raises(ValueError, match="128"):
        emb.embed_vectors(x[:, :64])
    with pytest.raises(ValueError, match="in_dim"):
        write_spec(onnx_path, name="h", kind="head", dim=64)
    bad = json.loads(spec.read_text())
    bad["in_dim"] = 512
    spec.write_text(json.dumps(bad))
    with pytest.raises(InvalidModelSpecError, match="512"):
        OnnxEmbedder(spec)


def test_pair_thresholds_counts_pairs() -> None:
    emb = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [-1, 0], [-0.9, -0.1]], np.float64)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    thr, info = pair_thresholds(emb, [0, 0, 1, 1, 2, 2])
    assert info == {"n_genuine": 3, "n_impostor": 12, "n_identities": 3}
    sims = emb @ emb.T
    genuine_min = min(sims[0, 1], sims[2, 3], sims[4, 5])
    impostor_max = max(sims[i, j] for i in range(6) for j in range(i + 1, 6) if i // 2 != j // 2)
    assert impostor_max < thr["best_accuracy"] <= genuine_min
    assert impostor_max < thr["1e-3"] <= genuine_min
    with pytest.raises(ValueError, match="impostor"):
        pair_thresholds(emb[:2], [0, 0])


def test_ensemble_with_a_centre_view_member_round_trips(tmp_path: Path) -> None:
    """A mixed-crop ensemble (one member on the input crop, one on its centre) is one ONNX graph (GridSample)."""
    from faceprint.training import CentreView, EnsembleNet

    ens = EnsembleNet(
        [
            _trained_like(CompactFaceNet(dim=32, input_size=SIZE, width=8), seed=0),
            CentreView(_trained_like(CompactFaceNet(dim=32, input_size=SIZE, width=8), seed=1), zoom=0.6),
        ]
    ).eval()
    onnx_path = export_onnx(ens, tmp_path / "mixed.onnx", input_shape=(3, SIZE, SIZE))
    for n in (1, 5):
        assert check_onnx(ens, onnx_path, to_tensor(_crops(n, seed=n))) <= 1e-4
    # the centre-view member really sees a different image than the plain one would
    plain = EnsembleNet([ens.members[0], ens.members[1].net]).eval()
    with torch.no_grad():
        x = to_tensor(_crops(3, seed=9))
        assert not torch.allclose(ens(x), plain(x), atol=1e-3)
