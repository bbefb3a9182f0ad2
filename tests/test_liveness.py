"""Tests of faceprint.liveness: PAD metrics, the LBP passive checker, the shipped NUAA model."""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from faceprint.errors import InvalidImageError, NoFaceError, NotFittedError
from faceprint.io import load_image
from faceprint.liveness import (
    DEFAULT_MODEL_FILE,
    DEFAULT_MODEL_SHA256,
    LBPSVMPassiveChecker,
    default_passive_checker,
    eer_threshold,
    lbp_colour_features,
    pad_metrics,
)
from faceprint.types import Liveness


# -- metrics ---------------------------------------------------------------------------------
def test_pad_metrics_hand_computed() -> None:
    scores = [0.9, 0.8, 0.4, 0.7, 0.2, 0.6, 0.1]
    is_attack = [False, False, False, True, True, True, True]
    types = ["-", "-", "-", "print", "print", "replay", "replay"]
    m = pad_metrics(scores, is_attack, types, threshold=0.5)
    assert m["apcer"] == {"print": 0.5, "replay": 0.5}
    assert m["apcer_max"] == 0.5
    assert m["bpcer"] == pytest.approx(1 / 3)
    assert m["acer"] == pytest.approx((0.5 + 1 / 3) / 2)
    assert m["n_bona_fide"] == 3 and m["n_attack"] == {"print": 2, "replay": 2}
    # APCER <= 5 % / 1 % needs threshold above 0.7 -> 0.8 (BPCER 1/3)
    assert m["bpcer_at_apcer_5pct"] == pytest.approx(1 / 3)
    assert m["bpcer_at_apcer_1pct"] == pytest.approx(1 / 3)


def test_pad_metrics_separable_and_threshold_inclusive() -> None:
    m = pad_metrics([0.9, 0.5, 0.3, 0.1], [False, False, True, True], threshold=0.5)
    assert m["bpcer"] == 0.0 and m["apcer"] == {"attack": 0.0} and m["acer"] == 0.0
    assert m["eer"] == 0.0 and m["bpcer_at_apcer_1pct"] == 0.0
    assert eer_threshold([0.9, 0.8, 0.3, 0.1], [False, False, True, True]) == (0.0, 0.8)


def _brute(scores: np.ndarray, attack: np.ndarray) -> tuple[float, float, float]:
    best_gap, eer = np.inf, np.nan
    b5 = b1 = 1.0
    for t in sorted(set(scores.tolist()) | {np.inf}, reverse=True):
        apcer = float(np.mean(scores[attack] >= t))
        bpcer = float(np.mean(scores[~attack] < t))
        if abs(apcer - bpcer) < best_gap:
            best_gap, eer = abs(apcer - bpcer), (apcer + bpcer) / 2
        if apcer <= 0.05:
            b5 = min(b5, bpcer)
        if apcer <= 0.01:
            b1 = min(b1, bpcer)
    return eer, b5, b1


@pytest.mark.parametrize("seed", range(5))
def test_pad_metrics_vs_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 60
    attack = rng.random(n) < 0.5
    attack[:2] = [True, False]
    scores = np.round(rng.normal(0.6, 0.2, n) - 0.3 * attack, 2)  # rounding makes ties
    thr = 0.45
    m = pad_metrics(scores, attack, ["print"] * n, threshold=thr)
    eer, b5, b1 = _brute(scores, attack)
    assert m["eer"] == pytest.approx(eer)
    assert m["bpcer_at_apcer_5pct"] == pytest.approx(b5)
    assert m["bpcer_at_apcer_1pct"] == pytest.approx(b1)
    assert m["apcer"]["print"] == pytest.approx(np.mean(scores[attack] >= thr))
    assert m["bpcer"] == pytest.approx(np.mean(scores[~attack] < thr))


def test_pad_metrics_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="both"):
        pad_metrics([0.1, 0.2], [True, True])
    with pytest.raises(ValueError, match="length"):
        pad_metrics([0.1, 0.2], [True])
    with pytest.raises(ValueError, match="finite"):
        pad_metrics([np.nan, 0.2], [True, False])


# -- checker on synthetic features -----------------------------------------------------------
def _toy(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.dirichlet(np.ones(354), size=40)
    attack = np.arange(40) % 2 == 1
    X[attack, :10] += 0.05
    return X / X.sum(axis=1, keepdims=True), attack


def test_save_load_round_trip(tmp_path: Path) -> None:
    X, attack = _toy()
    model = LBPSVMPassiveChecker(threshold=0.6).fit(X, attack)
    path = tmp_path / "m.json"
    model.save(path)
    loaded = LBPSVMPassiveChecker.load(path)
    np.testing.assert_array_equal(model.score_features(X), loaded.score_features(X))
    assert loaded.threshold == 0.6 and loaded.lbp_method == model.lbp_method
    model.save(tmp_path / "again.json")
    assert (tmp_path / "again.json").read_bytes() == path.read_bytes()


def test_not_fitted_and_feature_shapes() -> None:
    with pytest.raises(NotFittedError):
        LBPSVMPassiveChecker().score_features(np.zeros((1, 354)))
    crop = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    f = lbp_colour_features(crop)
    assert f.shape == (354,) and np.allclose(f.reshape(6, 59).sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="LBP method"):
        lbp_colour_features(crop, method="bogus")


# -- shipped model ---------------------------------------------------------------------------
def test_shipped_model_sha256_and_size() -> None:
    data = (resources.files("faceprint") / "models" / DEFAULT_MODEL_FILE).read_bytes()
    assert hashlib.sha256(data).hexdigest() == DEFAULT_MODEL_SHA256
    assert len(data) < 1_000_000
    checker = default_passive_checker()
    assert checker.method == "lbp-svm" and 0.0 < checker.threshold < 1.0


@pytest.fixture(scope="module")
def shipped(yunet: object) -> LBPSVMPassiveChecker:
    return default_passive_checker(detector=yunet)  # type: ignore[arg-type]


@pytest.mark.real
def test_bad_input_raises_invalid_image(shipped: LBPSVMPassiveChecker) -> None:
    with pytest.raises(InvalidImageError):
        shipped.score(np.zeros((100, 100), np.uint8))  # type: ignore[arg-type]
    with pytest.raises(InvalidImageError):
        shipped.score(np.zeros((100, 100, 3), np.float32))  # type: ignore[arg-type]
    with pytest.raises(InvalidImageError):
        shipped.score("not an image")  # type: ignore[arg-type]


@pytest.mark.real
def test_no_face_raises_clear_error(shipped: LBPSVMPassiveChecker) -> None:
    blank = np.full((240, 320, 3), 128, np.uint8)
    with pytest.raises(NoFaceError, match="no face"):
        shipped.score(blank)


NUAA_SAMPLE = {
    "ClientRaw": ["0001", "0003", "0005", "0007", "0009"],
    "ImposterRaw": ["0002", "0004", "0006", "0008", "0009"],
}


@pytest.mark.real
@pytest.mark.data
def test_shipped_model_on_nuaa(shipped: LBPSVMPassiveChecker, data_root: Path) -> None:
    nuaa = data_root / "nuaa"
    if not nuaa.is_dir():
        pytest.skip(f"NUAA not found under {data_root}")
    verdicts: dict[str, list[str]] = {}
    for folder, subjects in NUAA_SAMPLE.items():
        for s in subjects:
            path = sorted((nuaa / folder / s).glob("*.jpg"))[0]
            result = shipped.score(load_image(path))
            assert isinstance(result, Liveness) and result.method == "lbp-svm"
            assert 0.0 <= result.score <= 1.0
            verdicts.setdefault(folder, []).append(result.verdict)
    assert verdicts["ClientRaw"].count("live") >= 4, verdicts
    assert verdicts["ImposterRaw"].count("spoof") >= 4, verdicts


@pytest.mark.real
@pytest.mark.data
def test_cli_liveness(data_root: Path) -> None:
    import re

    from typer.testing import CliRunner

    from faceprint.cli import app

    real = sorted((data_root / "nuaa" / "ClientRaw").glob("*/*.jpg"))[0]
    result = CliRunner().invoke(app, ["liveness", str(real), "--json"])
    assert result.exit_code in (0, 1), result.output
    data = json.loads(re.sub(r"\x1b\[[0-9;]*m", "", result.stdout))
    assert data["verdict"] in ("live", "spoof") and 0.0 <= data["score"] <= 1.0
    assert (result.exit_code == 0) == (data["verdict"] == "live")
