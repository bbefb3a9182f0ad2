"""The service's CompreFace routes on real LFW faces with the real models (TestClient): enroll three
people, recognise another photo of one of them, verify, delete."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from faceprint.detection import Detector
from faceprint.embedding import Embedder
from faceprint.keys import KeyStore
from faceprint.pipeline import FacePipeline
from faceprint.server import create_app
from faceprint.settings import Settings

pytestmark = [pytest.mark.real, pytest.mark.data]

API = "/api/v1"
PEOPLE = ("Colin_Powell", "Tony_Blair", "Donald_Rumsfeld")


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, yunet: Detector, sface: Embedder, lfw_image: Callable[[str, int], Path]
) -> Iterator[tuple[TestClient, str, FacePipeline]]:
    tmp = tmp_path_factory.mktemp("service")
    settings = Settings(gallery=tmp / "gallery.db", keys=tmp / "keys.db", service_threads=2)
    with KeyStore(settings.keys_path()) as store:
        token = store.create("admin")[1]
    pipe = FacePipeline(detector=yunet, embedder=sface)
    with TestClient(create_app(settings, pipeline=pipe)) as client:
        yield client, token, pipe


def _file(path: Path) -> dict[str, Any]:
    return {"file": (path.name, path.read_bytes(), "image/jpeg")}


def test_enroll_recognise_verify_delete_lfw_people(served: Any, lfw_image: Callable[[str, int], Path]) -> None:
    client, token, pipe = served
    key = {"x-api-key": token}
    image_ids: dict[str, list[str]] = {}
    for person in PEOPLE:
        for i in (1, 2):
            r = client.post(f"{API}/recognition/faces", params={"subject": person}, files=_file(lfw_image(person, i)),
                            headers=key)
            assert r.status_code == 201, r.text
            assert r.json()["subject"] == person
            image_ids.setdefault(person, []).append(r.json()["image_id"])
    assert client.get(f"{API}/recognition/subjects", headers=key).json() == {"subjects": sorted(PEOPLE)}
    assert client.get(f"{API}/recognition/faces", headers=key).json()["total_elements"] == 6

    threshold = pipe.threshold()  # sface's calibrated similarity threshold at FMR 1e-3
    # another photo of each person (multipart and base64 JSON) is recognised as that person
    for person, probe in (("Colin_Powell", 5), ("Tony_Blair", 3)):
        path = lfw_image(person, probe)
        for kwargs in ({"files": _file(path)}, {"json": {"file": base64.b64encode(path.read_bytes()).decode()}}):
            r = client.post(f"{API}/recognition/recognize", params={"prediction_count": 3}, headers=key, **kwargs)
            assert r.status_code == 200, r.text
            (face,) = r.json()["result"]
            names = [s["subject"] for s in face["subjects"]]
            assert names[0] == person and len(names) == 3, face
            assert face["subjects"][0]["similarity"] >= threshold > face["subjects"][1]["similarity"], face

    blair3 = _file(lfw_image("Tony_Blair", 3))
    same = client.post(f"{API}/recognition/faces/{image_ids['Tony_Blair'][0]}/verify", files=blair3, headers=key)
    other = client.post(f"{API}/recognition/faces/{image_ids['Colin_Powell'][0]}/verify", files=blair3, headers=key)
    assert same.json()["result"][0]["similarity"] >= threshold > other.json()["result"][0]["similarity"]

    pair = {
        "source_image": ("a.jpg", lfw_image("Donald_Rumsfeld", 3).read_bytes()),
        "target_image": ("b.jpg", lfw_image("Donald_Rumsfeld", 4).read_bytes()),
    }
    v = client.post(f"{API}/verification/verify", files=pair, headers=key).json()["result"][0]
    assert v["face_matches"][0]["similarity"] >= threshold
    pair["target_image"] = ("c.jpg", lfw_image("Colin_Powell", 3).read_bytes())
    v = client.post(f"{API}/verification/verify", files=pair, headers=key).json()["result"][0]
    assert v["face_matches"][0]["similarity"] < threshold

    # delete one person: their photos no longer find them
    assert client.delete(f"{API}/recognition/subjects/Colin_Powell", headers=key).json() == {"subject": "Colin_Powell"}
    r = client.post(f"{API}/recognition/recognize", files=_file(lfw_image("Colin_Powell", 5)), headers=key)
    best = r.json()["result"][0]["subjects"][0]
    assert best["subject"] != "Colin_Powell" and best["similarity"] < threshold
    gone = client.post(f"{API}/recognition/faces/{image_ids['Colin_Powell'][0]}/verify", files=blair3, headers=key)
    assert gone.status_code == 404
    # one example of a person: the other still recognises them
    assert client.delete(f"{API}/recognition/faces/{image_ids['Tony_Blair'][0]}", headers=key).status_code == 200
    r = client.post(f"{API}/recognition/recognize", files=blair3, headers=key)
    assert r.json()["result"][0]["subjects"][0]["subject"] == "Tony_Blair"


def test_each_inference_thread_has_its_own_warm_pipeline(served: Any) -> None:
    client, token, pipe = served
    pool = client.app.state.service.pool
    first, second = pool.resources
    assert first is pipe and second is not pipe and second.spec == pipe.spec
    assert second.detector is not pipe.detector and second.embedder is not pipe.embedder
    assert client.get("/ready", headers={"x-api-key": token}).json()["inference_threads"] == 2


def test_detect_an_lfw_face_with_landmarks_inside_its_box(served: Any, lfw_image: Callable[[str, int], Path]) -> None:
    client, token, _ = served
    r = client.post(f"{API}/detection/detect", params={"face_plugins": "landmarks", "limit": 1},
                    files=_file(lfw_image("Ariel_Sharon", 1)), headers={"x-api-key": token})
    assert r.status_code == 200, r.text
    (face,) = r.json()["result"]
    box = face["box"]
    assert 0.5 < box["probability"] <= 1.0
    assert 0 <= box["x_min"] < box["x_max"] <= 250 and 0 <= box["y_min"] < box["y_max"] <= 250
    for x, y in face["landmarks"]:
        assert box["x_min"] <= x <= box["x_max"] and box["y_min"] <= y <= box["y_max"]


def test_a_photo_without_a_face_is_400_code_28(served: Any, tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image as PILImage

    client, token, _ = served
    path = tmp_path / "wall.png"
    PILImage.fromarray(np.full((200, 200, 3), 180, np.uint8)).save(path)
    r = client.post(f"{API}/recognition/recognize", files=_file(path), headers={"x-api-key": token})
    assert r.status_code == 400 and r.json()["code"] == 28 and "no face found" in r.json()["reason"]
