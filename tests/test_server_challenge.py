"""The active liveness challenge over HTTP on a real clip with the real models (TestClient): enroll
person_b from two frontal frames (``/v1/enroll``), issue a challenge limited to head turns, answer
it with a clip that shows them, and get ``live`` and his name; a clip that does not show them is a
spoof and names nobody."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image as PILImage

from clips import still_frames, turns_frames, write_mp4
from faceprint.detection import Detector
from faceprint.embedding import Embedder
from faceprint.keys import KeyStore
from faceprint.pipeline import FacePipeline
from faceprint.server import create_app
from faceprint.settings import Settings

pytestmark = [pytest.mark.real, pytest.mark.data]


def _png(frame: Any) -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(frame).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, yunet: Detector, sface: Embedder, data_root: Path
) -> Iterator[tuple[TestClient, dict[str, str], Path]]:
    tmp = tmp_path_factory.mktemp("challenge")
    settings = Settings(gallery=tmp / "g.db", keys=tmp / "k.db", service_threads=1,
                        challenge_actions="turn_left,turn_right")
    with KeyStore(settings.keys_path()) as store:
        tokens = {"enroll": store.create("enroll")[1], "recognize": store.create("recognize")[1]}
    clip = write_mp4(turns_frames(data_root), tmp / "turns.mp4")
    with TestClient(create_app(settings, pipeline=FacePipeline(detector=yunet, embedder=sface))) as client:
        files = [("files", (f"b{i}.png", _png(f))) for i, f in enumerate(still_frames(data_root))]
        r = client.post("/v1/enroll", params={"name": "person_b"}, files=files, headers={"x-api-key": tokens["enroll"]})
        assert r.status_code == 201, r.text
        yield client, tokens, clip


def test_a_clip_that_performs_the_challenge_is_live_and_names_the_person(served: Any) -> None:
    client, tokens, clip = served
    key = {"x-api-key": tokens["recognize"]}
    for _ in range(2):  # either order the service draws (the clip turns right, left, right, left)
        c = client.post("/v1/challenge", params={"actions": 2}, headers=key).json()
        assert sorted(c["actions"]) == ["turn_left", "turn_right"], c
        r = client.post(f"/v1/challenge/{c['id']}", headers=key, files={"video": ("answer.mp4", clip.read_bytes())})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["passed"] and body["verdict"] == "live" and body["reasons"] == [], body
        assert [m["action"] for m in body["liveness"]["details"]["matched"]] == c["actions"]
        (face,) = body["faces"]
        assert face["name"] == "person_b" and face["decision"] == "known" and face["fmr"] == "1e-3"
        assert face["liveness"]["method"] == "active-challenge"


def test_a_clip_without_the_actions_is_a_spoof_and_names_nobody(served: Any, data_root: Path, tmp_path: Path) -> None:
    client, tokens, _ = served
    key = {"x-api-key": tokens["recognize"]}
    still = write_mp4(still_frames(data_root, n=8), tmp_path / "still.mp4", fps=2.0)  # 4 s looking at the camera
    c = client.post("/v1/challenge", headers=key).json()
    r = client.post(f"/v1/challenge/{c['id']}", headers=key, files={"video": ("still.mp4", still.read_bytes())})
    assert r.status_code == 200, r.text
    body = r.json()
    assert not body["passed"] and body["verdict"] == "spoof" and body["reasons"]
    (face,) = body["faces"]
    assert face["decision"] == "spoof" and not face["known"]
