"""Shared fixtures: thread limits, data-set location, real models (loaded once), fake backends."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

import faceprint.runtime  # noqa: E402
from faceprint import weights  # noqa: E402
from faceprint.datasets import data_root as find_data_root  # noqa: E402
from faceprint.detection import Detector, get_detector  # noqa: E402
from faceprint.embedding import Embedder, get_embedder  # noqa: E402
from fakes import FakeDetector, FakeEmbedder  # noqa: E402

faceprint.runtime.set_num_threads(2)


# -- data ------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def data_root() -> Path:
    """The shared face data sets folder; skips the test when it is absent."""
    root = find_data_root()
    if root is None:
        pytest.skip("shared face data sets not found (set FACEPRINT_DATA)")
    return root


@pytest.fixture(scope="session")
def lfw_dir(data_root: Path) -> Path:
    path = data_root / "lfw" / "lfw-deepfunneled"
    if not path.is_dir():
        pytest.skip(f"LFW images not found under {data_root} (set FACEPRINT_DATA)")
    return path


@pytest.fixture(scope="session")
def lfw_image(lfw_dir: Path) -> Callable[[str, int], Path]:
    """``lfw_image("Aaron_Peirsol", 1)`` -> path of ``Aaron_Peirsol/Aaron_Peirsol_0001.jpg``."""

    def path(name: str, i: int) -> Path:
        p = lfw_dir / name / f"{name}_{i:04d}.jpg"
        if not p.is_file():
            pytest.skip(f"LFW image missing: {p}")
        return p

    return path


# -- real models (each built once per session; weights load on first use) -----------------------
def _require(key: str) -> None:
    if not weights.is_installed(key):
        wf = weights.WEIGHT_FILES[key]
        pytest.skip(f"model {key!r} not installed ({wf.install_hint})")


@pytest.fixture(scope="session")
def yunet() -> Detector:
    _require("yunet")
    return get_detector("yunet")


@pytest.fixture(scope="session")
def retinaface() -> Detector:
    _require("retinaface")
    return get_detector("retinaface")


@pytest.fixture(scope="session")
def sface() -> Embedder:
    _require("sface")
    return get_embedder("sface")


@pytest.fixture(scope="session")
def facenet() -> Embedder:
    _require("facenet")
    return get_embedder("facenet")


# -- fakes -----------------------------------------------------------------------------------
@pytest.fixture
def fake_detector() -> FakeDetector:
    """Returns one face at (10, 10, 90, 90) for any image (use images of at least 100x100)."""
    return FakeDetector()


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()
