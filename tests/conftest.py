"""Shared fixtures: thread limits, data-set location, real models (loaded once), fake backends."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import shutil  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
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


# -- engines ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``HOST:PORT`` of a ``milvus-lite server`` (Milvus's gRPC protocol) on 127.0.0.1, started for
    the session and stopped after it; skips when the ``[milvus]`` extra is not installed."""
    exe = shutil.which("milvus-lite") or str(Path(sys.executable).with_name("milvus-lite"))
    if not Path(exe).is_file():
        pytest.skip("milvus-lite is not installed (pip install 'faceprint[milvus]'; make test installs it)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = tmp_path_factory.mktemp("milvus-server")
    log = (data / "server.log").open("wb")
    proc = subprocess.Popen(
        [exe, "server", "--data-dir", str(data / "data"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"milvus-lite server exited with {proc.returncode}: "
                                   f"{(data / 'server.log').read_text(errors='replace')[-2000:]}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("milvus-lite server did not listen within 60 s")
            time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
