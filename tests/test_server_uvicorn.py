"""``faceprint serve`` as a real uvicorn process on 127.0.0.1, started and stopped by the test; and the
CompreFace Python SDK (compreface-sdk 0.6.0, unchanged, in a venv of its own) talking to it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from faceprint.cli import app as cli_app
from faceprint.detection import Detector
from faceprint.embedding import Embedder

pytestmark = [pytest.mark.slow, pytest.mark.real, pytest.mark.data]

SDK = "compreface-sdk==0.6.0"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(tmp: Path, *options: str) -> Iterator[tuple[str, int, Path]]:
    """``faceprint serve`` on a free port; yields its URL, port and log file; stops it (SIGTERM) after."""
    port = _free_port()
    log = tmp / "serve.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "FACEPRINT_SERVICE_THREADS": "1"}
    cmd = [sys.executable, "-m", "faceprint.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--gallery", str(tmp / "gallery.db"), "--keys", str(tmp / "keys.db"), *options]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, f"faceprint serve exited early:\n{log.read_text()}"
            try:
                if httpx.get(f"{url}/health", timeout=2).json() == {"status": "ok"}:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"faceprint serve not up after 90 s:\n{log.read_text()}"
            time.sleep(0.2)
        yield url, port, log
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal: the status says "ended by SIGTERM"
    assert proc.returncode in (0, -signal.SIGTERM), log.read_text()


def _admin_key(tmp: Path) -> str:
    done = CliRunner().invoke(cli_app, ["keys", "create", "--role", "admin", "--keys", str(tmp / "keys.db")])
    assert done.exit_code == 0, done.output
    token = done.stdout.strip()
    assert token.startswith("fp_") and "\n" not in token
    listed = CliRunner().invoke(cli_app, ["keys", "list", "--json", "--keys", str(tmp / "keys.db")])
    assert token.split("_", 2)[2] not in listed.stdout  # the secret is printed once, never listed
    assert json.loads(listed.stdout)["keys"][0]["role"] == "admin"
    return token


@pytest.mark.timeout(300)
def test_faceprint_serve_runs_under_uvicorn_and_stops(
    tmp_path: Path, yunet: Detector, sface: Embedder, lfw_image: Callable[[str, int], Path]
) -> None:
    token = _admin_key(tmp_path)
    with serving(tmp_path) as (url, _, log):
        key = {"x-api-key": token}
        assert httpx.get(f"{url}/api/v1/recognition/subjects", timeout=10).status_code == 401
        assert httpx.get(f"{url}/ready", headers=key, timeout=10).json()["model"] == "sface"
        photo = lfw_image("Gerhard_Schroeder", 1)
        r = httpx.post(f"{url}/api/v1/recognition/faces", params={"subject": "Gerhard_Schroeder"},
                       files={"file": (photo.name, photo.read_bytes())}, headers=key, timeout=30)
        assert r.status_code == 201, r.text
        probe = lfw_image("Gerhard_Schroeder", 2)
        r = httpx.post(f"{url}/api/v1/recognition/recognize", files={"file": (probe.name, probe.read_bytes())},
                       headers=key, timeout=30)
        assert r.json()["result"][0]["subjects"][0]["subject"] == "Gerhard_Schroeder"
        big = httpx.post(f"{url}/api/v1/recognition/recognize", content=b"\0" * 10_000_001,
                         headers={**key, "content-type": "application/json"}, timeout=30)
        assert big.status_code == 413
        assert token not in log.read_text()
    text = log.read_text()
    assert "Application startup complete" in text and "Application shutdown complete" in text


@pytest.mark.timeout(300)
def test_workers_are_processes_that_each_see_every_enrollment(
    tmp_path: Path, yunet: Detector, sface: Embedder, lfw_image: Callable[[str, int], Path]
) -> None:
    token = _admin_key(tmp_path)
    key = {"x-api-key": token}
    with serving(tmp_path, "--workers", "2") as (url, _, log):
        for person in ("Tony_Blair", "Colin_Powell"):
            photo = lfw_image(person, 1)
            r = httpx.post(f"{url}/api/v1/recognition/faces", params={"subject": person},
                           files={"file": (photo.name, photo.read_bytes())}, headers=key, timeout=30)
            assert r.status_code == 201, r.text
        probe = lfw_image("Colin_Powell", 2).read_bytes()
        for _ in range(6):  # new connections: both processes answer, and both know both people
            r = httpx.post(f"{url}/api/v1/recognition/recognize", files={"file": ("p.jpg", probe)}, headers=key,
                           timeout=30)
            assert r.json()["result"][0]["subjects"][0]["subject"] == "Colin_Powell", r.text
    started = [line for line in log.read_text().splitlines() if "Started server process" in line]
    pids = {line.split("[")[1].split("]")[0] for line in started}
    assert len(pids) == 2 and "died" not in log.read_text(), log.read_text()


# ------------------------------------------------------------------ the CompreFace SDK, unchanged

_SDK_SCRIPT = r"""
import json, sys
from compreface import CompreFace

cfg = json.loads(sys.argv[1])
options = {"limit": 0, "det_prob_threshold": 0.5, "prediction_count": 2, "face_plugins": "landmarks", "status": False}
cf = CompreFace("http://127.0.0.1", str(cfg["port"]), options)
recognition = cf.init_face_recognition(cfg["key"])
subjects, faces = recognition.get_subjects(), recognition.get_face_collection()
out = {"add_subject": subjects.add("Tony_Blair")}
out["examples"] = [faces.add(image_path=path, subject=name) for name, path in cfg["enroll"]]
out["subjects"] = subjects.list()
out["faces"] = faces.list()
out["recognize"] = [recognition.recognize(image_path=path) for _, path in cfg["probes"]]
blair_id = next(e["image_id"] for e in out["examples"] if e["subject"] == "Tony_Blair")
out["verify_same"] = faces.verify(image_path=cfg["probes"][0][1], image_id=blair_id)
out["verify_other"] = faces.verify(image_path=cfg["probes"][1][1], image_id=blair_id)
verification = cf.init_face_verification(cfg["key"])
out["verify_images"] = verification.verify(cfg["probes"][0][1], cfg["enroll"][0][1])
out["detect"] = cf.init_face_detection(cfg["key"]).detect(image_path=cfg["probes"][0][1])
out["rename"] = subjects.update("Ariel_Sharon", "Arik_Sharon")
out["delete_example"] = faces.delete(blair_id)
out["delete_examples"] = faces.delete_all("Colin_Powell")
out["delete_subject"] = subjects.delete("Colin_Powell")
out["after"] = subjects.list()
print(json.dumps(out))
"""


def _sdk_python(root: Path) -> Path:
    """A venv with the CompreFace SDK (built once per cache folder); skips when it cannot be installed."""
    venv = root / "venv"
    python = venv / "bin" / "python"
    if python.exists() and subprocess.run([python, "-c", "import compreface"], capture_output=True).returncode == 0:
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, capture_output=True)
    # requests-toolbelt 0.9.1 (pinned by the SDK) imports only with urllib3 < 2
    done = subprocess.run([python, "-m", "pip", "install", "--quiet", SDK, "urllib3<2"], capture_output=True,
                          text=True, timeout=600)
    if done.returncode != 0:
        pytest.skip(f"could not install {SDK} from the package index: {done.stderr.strip()[-300:]}")
    return python


@pytest.fixture(scope="session")
def sdk_python(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = getattr(request.config, "cache", None)
    root = Path(cache.mkdir("compreface-sdk-0.6.0")) if cache is not None else tmp_path_factory.mktemp("sdk")
    return _sdk_python(root)


@pytest.mark.timeout(600)
def test_the_compreface_sdk_unchanged_adds_recognises_verifies_and_deletes(
    tmp_path: Path, sdk_python: Path, yunet: Detector, sface: Embedder, lfw_image: Callable[[str, int], Path]
) -> None:
    token = _admin_key(tmp_path)
    enroll = [(p, str(lfw_image(p, i))) for p in ("Tony_Blair", "Colin_Powell", "Ariel_Sharon") for i in (1, 2)]
    probes = [("Tony_Blair", str(lfw_image("Tony_Blair", 3))), ("Colin_Powell", str(lfw_image("Colin_Powell", 5)))]
    with serving(tmp_path) as (_, port, _):
        cfg = {"port": port, "key": token, "enroll": enroll, "probes": probes}
        done = subprocess.run([sdk_python, "-c", _SDK_SCRIPT, json.dumps(cfg)], capture_output=True, text=True,
                              timeout=300)
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    assert out["add_subject"] == {"subject": "Tony_Blair"}
    assert [e["subject"] for e in out["examples"]] == [name for name, _ in enroll]
    assert out["subjects"] == {"subjects": ["Ariel_Sharon", "Colin_Powell", "Tony_Blair"]}
    assert out["faces"]["total_elements"] == 6
    for (person, _), answer in zip(probes, out["recognize"]):
        (face,) = answer["result"]
        assert [s["subject"] for s in face["subjects"]][0] == person, answer
        assert len(face["subjects"]) == 2 and len(face["landmarks"]) == 5
    threshold = sface.thresholds["1e-3"]
    same, other = out["verify_same"]["result"][0]["similarity"], out["verify_other"]["result"][0]["similarity"]
    assert same >= threshold > other, (same, other, threshold)
    assert out["verify_images"]["result"][0]["face_matches"][0]["similarity"] >= threshold
    assert out["detect"]["result"][0]["box"]["probability"] > 0.5
    assert out["rename"] == {"updated": True}
    assert out["delete_example"]["subject"] == "Tony_Blair"
    assert out["delete_examples"] == {"deleted": 2}
    assert out["delete_subject"] == {"subject": "Colin_Powell"}
    assert out["after"] == {"subjects": ["Arik_Sharon", "Tony_Blair"]}
