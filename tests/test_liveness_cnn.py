"""Tests of the passive-PAD CNN: the onnxruntime checker (faceprint.liveness.cnn), its training
(faceprint.training.liveness), the shipped model and its rebuild (bench/train_liveness_cnn.py)."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from faceprint.errors import InvalidFileError, ModelIntegrityError, ModelNotFoundError, UnknownBackendError
from faceprint.liveness import (
    DEFAULT_PASSIVE_CHECKER,
    PASSIVE_CHECKERS,
    CNNPassiveChecker,
    PassiveChecker,
    cnn_crop,
    get_passive_checker,
)
from faceprint.liveness.cnn import DEFAULT_CNN_SPEC, DEFAULT_CNN_SPEC_SHA256, default_cnn_checker, write_cnn_spec
from faceprint.types import Detection

REPO = Path(__file__).resolve().parents[1]


def test_registry_names_and_default() -> None:
    assert PASSIVE_CHECKERS.names() == ["cnn", "lbp"]
    assert DEFAULT_PASSIVE_CHECKER == "cnn"
    with pytest.raises(UnknownBackendError):
        get_passive_checker("svm")


def test_cnn_crop_geometry() -> None:
    img = np.zeros((240, 320, 3), np.uint8)
    img[100:140, 140:180] = 255  # the face box
    crop = cnn_crop(
        img,
        Detection(box=(140.0, 100.0, 180.0, 140.0), score=1.0, landmarks=np.zeros((5, 2))),
        input_size=64,
        work_size=96,
        expand=2.0,
    )
    assert crop.shape == (64, 64, 3) and crop.dtype == np.uint8
    # a box of side 40 at expand 2 -> 80 px of context: the white square fills the middle half
    assert crop[24:40, 24:40].min() > 200 and crop[:10].max() < 30


# -- a tiny trained-from-scratch model, exported (needs torch) ------------------------------------
@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray]:
    pytest.importorskip("torch")
    from faceprint.training.liveness import (
        LivenessTrainConfig,
        MiniFASNet,
        export_liveness_onnx,
        predict_live,
        train_liveness_cnn,
    )

    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (32, 64, 64, 3), dtype=np.uint8)
    attack = np.arange(32) % 2 == 0
    crops[attack] //= 3  # an easy cue
    net = train_liveness_cnn(crops, attack, LivenessTrainConfig(epochs=1, batch_size=16, threads=1), model=MiniFASNet())
    out = tmp_path_factory.mktemp("cnn")
    diff = export_liveness_onnx(net, out / "m.onnx", crops[:4])
    assert diff < 1e-4
    write_cnn_spec(out / "m.json", out / "m.onnx", threshold=0.5)
    return out / "m.json", crops, predict_live(net, crops)


def test_checker_matches_torch_and_scores(tiny_model: tuple[Path, np.ndarray, np.ndarray]) -> None:
    spec, crops, torch_scores = tiny_model
    checker = CNNPassiveChecker(spec, quality=None)  # the model alone (the quality gate: below)
    assert isinstance(checker, PassiveChecker) and checker.method == "cnn"
    s = checker.score_crops(crops)
    assert s.shape == (32,) and np.all((s >= 0) & (s <= 1))
    np.testing.assert_allclose(s, torch_scores, atol=1e-5)
    big = np.stack([np.repeat(np.repeat(c, 3, 0), 3, 1)[:96, :96] for c in crops[:2]])  # work-size input is resized
    assert checker.score_crops(big).shape == (2,)
    img = np.zeros((200, 200, 3), np.uint8)
    lv = checker.score(img, Detection(box=(60.0, 60.0, 140.0, 140.0), score=1.0, landmarks=np.zeros((5, 2))))
    assert lv.method == "cnn" and lv.verdict in ("live", "spoof") and lv.details["threshold"] == 0.5
    clone = pickle.loads(pickle.dumps(checker))
    np.testing.assert_allclose(clone.score_crops(crops[:3]), s[:3])
    assert (
        CNNPassiveChecker(spec, threshold=2.0, quality=None)
        .score(img, Detection(box=(60.0, 60.0, 140.0, 140.0), score=1.0, landmarks=np.zeros((5, 2))))
        .verdict
        == "spoof"
    )
    # with the default quality gate a black image is not judged: "unsure", with the reasons
    box = Detection(box=(60.0, 60.0, 140.0, 140.0), score=1.0, landmarks=np.zeros((5, 2)))
    gated = CNNPassiveChecker(spec).score(img, box)
    assert gated.verdict == "unsure" and gated.score == pytest.approx(lv.score)
    assert [r.split(" (")[0] for r in gated.details["unsure_reasons"]] == ["too dark", "too blurred"]


def test_two_threshold_verdicts(tiny_model: tuple[Path, np.ndarray, np.ndarray]) -> None:
    spec, _, _ = tiny_model
    c = CNNPassiveChecker(spec, threshold=0.8, spoof_below=0.3)
    assert [c.verdict(v) for v in (0.9, 0.8, 0.5, 0.3, 0.1)] == ["live", "live", "unsure", "unsure", "spoof"]
    assert CNNPassiveChecker(spec, threshold=0.5, spoof_below=0.9).spoof_below == 0.5  # never above threshold
    assert CNNPassiveChecker(spec).spoof_below == 0.5  # the spec's default: no band
    assert CNNPassiveChecker(spec, threshold=0.7).spoof_below == 0.7  # a threshold alone: no band
    assert [CNNPassiveChecker(spec).verdict(v) for v in (0.5, 0.49)] == ["live", "spoof"]


def test_checker_refuses_bad_specs(tiny_model: tuple[Path, np.ndarray, np.ndarray], tmp_path: Path) -> None:
    spec, _, _ = tiny_model
    d = json.loads(spec.read_text())
    (tmp_path / "m.onnx").write_bytes((spec.parent / "m.onnx").read_bytes() + b"x")
    (tmp_path / "m.json").write_text(json.dumps(d))
    with pytest.raises(ModelIntegrityError):
        CNNPassiveChecker(tmp_path / "m.json")
    (tmp_path / "bad.json").write_text(json.dumps({**d, "format": "other/1"}))
    with pytest.raises(InvalidFileError):
        CNNPassiveChecker(tmp_path / "bad.json")
    (tmp_path / "bad.json").write_text(json.dumps({**d, "onnx": "../m.onnx"}))
    with pytest.raises(InvalidFileError):
        CNNPassiveChecker(tmp_path / "bad.json")
    (tmp_path / "bad.json").write_text(json.dumps({k: v for k, v in d.items() if k != "threshold"}))
    with pytest.raises(InvalidFileError):
        CNNPassiveChecker(tmp_path / "bad.json")
    (tmp_path / "bad.json").write_text(json.dumps({**d, "onnx": "gone.onnx"}))
    with pytest.raises(ModelNotFoundError):
        CNNPassiveChecker(tmp_path / "bad.json")
    with pytest.raises(ModelNotFoundError):
        CNNPassiveChecker(tmp_path / "nothing.json")


def test_fourier_target_and_network_shapes() -> None:
    torch = pytest.importorskip("torch")
    from faceprint.training.liveness import MiniFASNet, fourier_target

    x = torch.randn(3, 3, 64, 64)
    t = fourier_target(x, 8)
    assert t.shape == (3, 1, 8, 8) and float(t.min()) >= 0.0 and float(t.max()) <= 1.0 + 1e-6
    # the spectrum of a smooth image is concentrated at the centre (low frequencies)
    smooth = torch.nn.functional.avg_pool2d(x, 9, stride=1, padding=4)
    ts = fourier_target(smooth, 8)
    assert float(ts[:, :, 3:5, 3:5].mean()) > float(ts[:, :, 0, :].mean())
    net = MiniFASNet().eval()
    n_params = sum(p.numel() for n, p in net.named_parameters() if not n.startswith("ft_"))
    assert 50_000 < n_params < 250_000  # a few hundred kB as float32


# -- the shipped model ----------------------------------------------------------------------------
def _shipped() -> None:
    if not DEFAULT_CNN_SPEC_SHA256:
        pytest.skip("no CNN liveness model shipped")


def test_shipped_cnn_sha256_and_card() -> None:
    _shipped()
    models = resources.files("faceprint") / "models"
    spec_bytes = (models / DEFAULT_CNN_SPEC).read_bytes()
    assert hashlib.sha256(spec_bytes).hexdigest() == DEFAULT_CNN_SPEC_SHA256
    spec = json.loads(spec_bytes)
    onnx = (models / spec["onnx"]).read_bytes()
    assert hashlib.sha256(onnx).hexdigest() == spec["onnx_sha256"] and len(onnx) < 1_000_000
    card = (models / "MODEL_CARD_passive_cnn.md").read_text(encoding="utf-8")
    assert spec["onnx_sha256"] in card and "bench/train_liveness_cnn.py" in card
    checker = default_cnn_checker()
    assert checker.threshold == spec["threshold"]
    assert isinstance(get_passive_checker("cnn"), CNNPassiveChecker)


@pytest.mark.data
def test_shipped_cnn_orders_nuaa_real_above_print(data_root: Path, yunet) -> None:  # type: ignore[no-untyped-def]
    _shipped()
    from faceprint.io import load_image

    nuaa = data_root / "nuaa"
    if not (nuaa / "ClientRaw").is_dir():
        pytest.skip("NUAA not found")
    checker = default_cnn_checker(detector=yunet)
    scores = {}
    for folder in ("ClientRaw", "ImposterRaw"):
        paths = sorted((nuaa / folder / "0005").glob("*_02_*.jpg"))[::12][:5]
        scores[folder] = [checker.score(load_image(p)).score for p in paths]
    assert min(scores["ClientRaw"]) > max(scores["ImposterRaw"])


# -- the rebuild ----------------------------------------------------------------------------------
@pytest.mark.data
def test_tiny_rebuild_produces_a_loadable_reproducible_model(data_root: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    env = {**os.environ, "FACEPRINT_DATA": str(data_root), "PYTHONPATH": str(REPO / "src")}
    digests = []
    for run in ("a", "b"):
        out = tmp_path / run
        cmd = [
            sys.executable,
            str(REPO / "bench" / "train_liveness_cnn.py"),
            "--smoke",
            "--cache",
            "",
            "--out-dir",
            str(out),
            "--out",
            str(out / "result.json"),
        ]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
        assert proc.returncode == 0, proc.stderr[-2000:]
        result = json.loads((out / "result.json").read_text())
        checker = CNNPassiveChecker(out / "passive_cnn.json")
        assert result["final_model"]["onnx_sha256"] == checker.spec["onnx_sha256"]
        assert result["final_model"]["max_abs_torch_vs_onnx"] < 1e-4
        digests.append((result["final_model"]["onnx_sha256"], result["final_model"]["nuaa_train_scores_sample"]))
    assert digests[0] == digests[1]  # same seed, same data -> the same model and scores
