"""Tests of faceprint.liveness.quality (the "unsure" gate of the passive checkers) and NUAA split lists."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceprint.datasets import nuaa_split
from faceprint.errors import DatasetNotFoundError, InvalidArgumentError
from faceprint.io import load_image
from faceprint.liveness.quality import DEFAULT_QUALITY_LIMITS, QualityLimits, assess_face
from faceprint.types import Detection


def _det(box: tuple[float, float, float, float], landmarks: np.ndarray | None = None) -> Detection:
    lm = np.array([[40, 40], [60, 40], [50, 50], [42, 60], [58, 60]], float) if landmarks is None else landmarks
    return Detection(box=box, score=1.0, landmarks=lm)


def _textured(size: int = 200, level: float = 128.0) -> np.ndarray:
    """A grey ramp (coarse structure) plus fine noise (texture, gone when blurred)."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(-0.5, 0.5, size)[None, :] * min(2 * level, 120)
    grey = np.clip(level + ramp + rng.normal(0, 20, (size, size)), 0, 255).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def test_each_reason_is_named() -> None:
    ok = assess_face(_textured(), _det((20, 20, 180, 180)))
    assert ok.ok and ok.reasons == () and ok.face_px == 160
    assert "face too small" in assess_face(_textured(), _det((20, 20, 50, 50))).reasons[0]
    dark = assess_face(_textured(level=15), _det((20, 20, 180, 180)))
    assert any(r.startswith("too dark") for r in dark.reasons)
    bright = assess_face(np.full((200, 200, 3), 250, np.uint8), _det((20, 20, 180, 180)))
    assert any(r.startswith("over-exposed") for r in bright.reasons)
    blurred = cv2.GaussianBlur(_textured(), (0, 0), 6)
    assert any(r.startswith("too blurred") for r in assess_face(blurred, _det((20, 20, 180, 180))).reasons)
    turned = np.array([[40, 40], [60, 40], [65, 50], [42, 60], [58, 60]], float)  # nose 0.75 IOD off centre
    q = assess_face(_textured(), _det((20, 20, 180, 180), turned))
    assert q.yaw == pytest.approx(0.75) and any(r.startswith("face turned away") for r in q.reasons)
    rolled = np.array([[40, 40], [54.14, 54.14], [40, 54.14], [0, 0], [0, 0]], float)  # eyes at 45 deg, nose on axis
    assert abs(assess_face(_textured(), _det((20, 20, 180, 180), rolled)).yaw) < 1e-6
    outside = assess_face(_textured(), _det((300, 300, 400, 400)))
    assert outside.reasons == ("face box outside the image",)
    assert set(ok.as_dict()) == {"face_px", "brightness", "sharpness", "yaw", "reasons"}


def test_limits_are_validated() -> None:
    with pytest.raises(InvalidArgumentError):
        QualityLimits(min_brightness=200, max_brightness=100)
    with pytest.raises(InvalidArgumentError):
        QualityLimits(max_yaw=-1)


def test_real_faces_pass_and_degraded_ones_do_not(lfw_image, yunet) -> None:  # type: ignore[no-untyped-def]
    im = load_image(lfw_image("Aaron_Peirsol", 1))
    det = max(yunet.detect(im), key=lambda d: d.area)
    assert assess_face(im, det).ok, assess_face(im, det)
    dark = (im.astype(np.float32) * 0.3).astype(np.uint8)
    assert assess_face(dark, det).ok  # sharp but dim: judged (exposure is the model's job)
    assert any(r.startswith("too dark") for r in assess_face((im * 0.15).astype(np.uint8), det).reasons)
    blur = cv2.GaussianBlur(im, (0, 0), 3)
    assert any(r.startswith("too blurred") for r in assess_face(blur, det).reasons)


def test_cnn_checker_answers_unsure_with_the_reason(lfw_image, yunet) -> None:  # type: ignore[no-untyped-def]
    from faceprint.liveness import get_passive_checker

    checker = get_passive_checker("cnn", detector=yunet)
    assert checker.quality == DEFAULT_QUALITY_LIMITS  # type: ignore[attr-defined]
    im = (load_image(lfw_image("Aaron_Peirsol", 1)).astype(np.float32) * 0.15).astype(np.uint8)
    res = checker.score(im)
    assert res.verdict == "unsure"
    assert any(r.startswith("too dark") for r in res.details["unsure_reasons"])
    assert np.isfinite(res.score) and res.details["quality"]["brightness"] < DEFAULT_QUALITY_LIMITS.min_brightness
    checker.quality = None  # type: ignore[attr-defined]
    assert "unsure_reasons" not in checker.score(im).details


# -- NUAA split lists ---------------------------------------------------------------------------
def test_nuaa_split_reads_the_shared_subset_lists(data_root: Path) -> None:
    nuaa = data_root / "nuaa"
    if not (nuaa / "client_train_subset.txt").is_file():
        pytest.skip("the shared NUAA subset lists are absent")
    samples = nuaa_split(nuaa, "train_subset")
    n_client = len((nuaa / "client_train_subset.txt").read_text().split())
    n_imposter = len((nuaa / "imposter_train_subset.txt").read_text().split())
    assert sum(not a for _, a, _ in samples) == n_client
    assert sum(a for _, a, _ in samples) == n_imposter
    assert all(p.is_file() for p, _, _ in samples)
    if not (nuaa / "client_test_raw.txt").is_file():  # the shared subset has no official test lists
        with pytest.raises(DatasetNotFoundError, match="client_test_raw.txt"):
            nuaa_split(nuaa, "test")


def test_nuaa_split_official_format_and_bad_lists(tmp_path: Path, data_root: Path) -> None:
    src = sorted((data_root / "nuaa" / "ClientRaw" / "0001").glob("*.jpg"))[:2]
    att = sorted((data_root / "nuaa" / "ImposterRaw" / "0001").glob("*.jpg"))[:2]
    if len(src) < 2 or len(att) < 2:
        pytest.skip("NUAA images absent")
    for folder, files in (("ClientRaw", src), ("ImposterRaw", att)):
        (tmp_path / folder / "0001").mkdir(parents=True)
        for f in files:
            shutil.copyfile(f, tmp_path / folder / "0001" / f.name)
    # NUAA's own files use Windows separators and CRLF
    (tmp_path / "client_test_raw.txt").write_bytes(f"0001\\{src[0].name}\r\n0001\\{src[1].name}\r\n".encode())
    (tmp_path / "imposter_test_raw.txt").write_text(f"0001/{att[1].name}\n")
    got = nuaa_split(tmp_path, "test")
    assert [(p.name, a, k) for p, a, k in got] == [
        (src[0].name, False, ""),
        (src[1].name, False, ""),
        (att[1].name, True, "print"),
    ]
    (tmp_path / "imposter_test_raw.txt").write_text("0001/missing.jpg\n")
    with pytest.raises(DatasetNotFoundError, match="1 of 1 listed files"):
        nuaa_split(tmp_path, "test")
    (tmp_path / "imposter_test_raw.txt").write_text("../../etc/passwd\n")
    with pytest.raises(DatasetNotFoundError, match="relative paths"):
        nuaa_split(tmp_path, "test")
    with pytest.raises(InvalidArgumentError):
        nuaa_split(tmp_path, "../x")
    # through the CLI: exit 0 with the counts of the listed files only
    (tmp_path / "imposter_test_raw.txt").write_text(f"0001/{att[0].name}\n0001/{att[1].name}\n")
    from typer.testing import CliRunner

    from faceprint.cli import app

    res = CliRunner().invoke(app, ["evaluate", "liveness", str(tmp_path), "--split", "test", "--json"])
    assert res.exit_code == 0, res.output
    import json

    payload = json.loads(res.stdout)
    assert payload["n"] == {"bona_fide": 2, "print": 2}
