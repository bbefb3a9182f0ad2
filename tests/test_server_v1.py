"""faceprint's own routes (``/v1/identify``, ``/v1/verify``, ``/v1/liveness``): fakes for the shapes and
bad input, then real LFW faces with YuNet + SFace, each answer equal to the library call the CLI makes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from faceprint.detection import Detector
from faceprint.embedding import Embedder
from faceprint.gallery import Gallery
from faceprint.keys import KeyStore
from faceprint.pipeline import FacePipeline
from faceprint.server import create_app
from faceprint.settings import Settings
from faceprint.types import Liveness
from fakes import FakeDetector, FakeEmbedder
from test_server import GREEN, RED, add, h, png


class _FakePassive:
    method = "fake-passive"

    def score(self, image: Any, detection: Any) -> Liveness:
        red = float(np.asarray(image)[..., 0].mean()) / 255.0
        verdict = "live" if red > 0.5 else "spoof"
        return Liveness(verdict=verdict, score=red, method=self.method, details={"unsure_reasons": []})


@pytest.fixture
def fake_server(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings = Settings(gallery=tmp_path / "g.db", keys=tmp_path / "k.db", service_threads=1)
    with KeyStore(settings.keys_path()) as store:
        tokens = {role: store.create(role)[1] for role in ("recognize", "enroll", "admin")}
    pipe = FacePipeline(detector=FakeDetector(), embedder=FakeEmbedder(), passive_checker=_FakePassive())
    with TestClient(create_app(settings, pipeline=pipe)) as client:
        yield client, tokens


def test_v1_identify_verify_liveness_shapes_and_operating_points(fake_server: Any) -> None:
    client, tokens = fake_server
    add(client, tokens["enroll"], "ann", RED)
    rec = h(tokens["recognize"])
    r = client.post("/v1/identify", params={"fmr": "0.01"}, files={"file": ("p.png", png((190, 40, 40)))}, headers=rec)
    assert r.status_code == 200, r.text
    body = r.json()
    (face,) = body["faces"]
    assert body["model"] == "fake" and face["name"] == "ann" and face["known"]
    assert face["fmr"] == "1e-2" and face["threshold"] == pytest.approx(0.8)  # the FMR named, in canonical form
    stranger = client.post("/v1/identify", files={"file": ("p.png", GREEN)}, headers=rec).json()["faces"][0]
    assert stranger["name"] == "unknown" and stranger["fmr"] == "1e-3" and stranger["threshold"] == pytest.approx(0.9)

    v = client.post("/v1/verify", params={"fmr": "1e-3"}, files={"source_image": ("a.png", RED),
                    "target_image": ("b.png", png((195, 35, 35)))}, headers=rec)
    assert v.status_code == 200, v.text
    assert v.json()["decision"] == "match" and v.json()["fmr"] == "1e-3"
    no = client.post("/v1/verify", files={"source_image": ("a.png", RED), "target_image": ("b.png", GREEN)},
                     headers=rec).json()
    assert no["decision"] == "no_match" and no["same"] is False
    spoofed = client.post("/v1/verify", params={"liveness": "passive"},
                          files={"source_image": ("a.png", GREEN), "target_image": ("b.png", GREEN)}, headers=rec)
    assert spoofed.json()["decision"] == "spoof" and spoofed.json()["liveness"]["verdict"] == "spoof"

    live = client.post("/v1/liveness", files={"file": ("a.png", RED)}, headers=rec).json()
    assert live["verdict"] == "live" and live["live"] is True and live["method"] == "fake-passive"
    assert live["reasons"] == [] and 0.7 < live["score"] < 0.8

    for url, params, files in (
        ("/v1/identify", {"fmr": "1e-9"}, {"file": ("p.png", RED)}),
        ("/v1/identify", {"fmr": "1e-3", "fpir": "0.01"}, {"file": ("p.png", RED)}),
        ("/v1/identify", {"k": "0"}, {"file": ("p.png", RED)}),
        ("/v1/identify", {"liveness": "active"}, {"file": ("p.png", RED)}),
        ("/v1/verify", {"fmr": "often"}, {"source_image": ("a.png", RED), "target_image": ("b.png", RED)}),
        ("/v1/verify", {}, {"source_image": ("a.png", RED)}),
        ("/v1/liveness", {}, {"file": ("a.png", b"not an image")}),
    ):
        bad = client.post(url, params=params, files=files, headers=rec)
        assert 400 <= bad.status_code < 500 and bad.json()["message"], (url, params, bad.text)
    audit = client.get("/v1/audit", params={"action": "liveness"}, headers=h(tokens["admin"])).json()
    assert audit["total_elements"] == 2 and audit["entries"][0]["detail"]["verdict"] == "live"


def test_v1_no_face_is_400_with_reason(tmp_path: Path) -> None:
    settings = Settings(gallery=tmp_path / "g.db", keys=tmp_path / "k.db", service_threads=1)
    with KeyStore(settings.keys_path()) as store:
        token = store.create("recognize")[1]
    pipe = FacePipeline(detector=FakeDetector([]), embedder=FakeEmbedder(), passive_checker=_FakePassive())
    with TestClient(create_app(settings, pipeline=pipe)) as client:
        ident = client.post("/v1/identify", files={"file": ("p.png", RED)}, headers=h(token))
        assert ident.status_code == 200 and ident.json()["faces"] == []  # as the library: no face, no result
        for url, files in (("/v1/liveness", {"file": ("p.png", RED)}),
                           ("/v1/verify", {"source_image": ("a.png", RED), "target_image": ("b.png", RED)})):
            r = client.post(url, files=files, headers=h(token))
            assert r.status_code == 400 and r.json()["code"] == 28 and r.json()["reason"], url


@pytest.mark.real
@pytest.mark.data
def test_v1_on_lfw_faces_equals_the_library(
    tmp_path: Path, yunet: Detector, sface: Embedder, lfw_image: Callable[[str, int], Path]
) -> None:
    settings = Settings(gallery=tmp_path / "g.db", keys=tmp_path / "k.db", service_threads=1)
    with KeyStore(settings.keys_path()) as store:
        token = store.create("enroll")[1]
    pipe = FacePipeline(detector=yunet, embedder=sface)
    people = ("Colin_Powell", "Tony_Blair", "Donald_Rumsfeld")

    def jpg(path: Path) -> tuple[str, bytes, str]:
        return (path.name, path.read_bytes(), "image/jpeg")

    with TestClient(create_app(settings, pipeline=pipe)) as client:
        for person in people:
            for i in (1, 2):
                r = client.post("/api/v1/recognition/faces", params={"subject": person},
                                files={"file": jpg(lfw_image(person, i))}, headers=h(token))
                assert r.status_code == 201, r.text
        probe = lfw_image("Tony_Blair", 5)
        r = client.post("/v1/identify", params={"fmr": "1e-3"}, files={"file": jpg(probe)}, headers=h(token))
        assert r.status_code == 200, r.text
        (face,) = r.json()["faces"]
        assert face["name"] == "Tony_Blair" and face["fmr"] == "1e-3" and r.json()["model"] == pipe.model_key
        assert face["threshold"] == pytest.approx(pipe.threshold("1e-3"), abs=1e-6)
        stranger = client.post("/v1/identify", params={"fpir": "0.01"},
                               files={"file": jpg(lfw_image("Ariel_Sharon", 1))}, headers=h(token)).json()
        (s,) = stranger["faces"]
        assert s["name"] == "unknown" and s["fpir"] is not None and s["gallery_size"] == 6 and s["fmr"]

        same = client.post("/v1/verify", params={"fmr": "1e-3"}, headers=h(token), files={
            "source_image": jpg(lfw_image("Colin_Powell", 3)), "target_image": jpg(lfw_image("Colin_Powell", 4))})
        other = client.post("/v1/verify", params={"fmr": "1e-3"}, headers=h(token), files={
            "source_image": jpg(lfw_image("Colin_Powell", 3)), "target_image": jpg(lfw_image("Tony_Blair", 3))})
        assert same.json()["decision"] == "match" and other.json()["decision"] == "no_match"
        direct = pipe.verify(lfw_image("Colin_Powell", 3), lfw_image("Colin_Powell", 4), fmr="1e-3")
        assert same.json()["similarity"] == pytest.approx(direct.similarity, abs=1e-5)

        photo = lfw_image("Donald_Rumsfeld", 3)
        live = client.post("/v1/liveness", files={"file": jpg(photo)}, headers=h(token))
        assert live.status_code == 200, live.text
        expected = pipe.check_liveness(photo)  # the CLI's `faceprint liveness` call
        assert live.json()["verdict"] == expected.verdict and live.json()["method"] == expected.method
        assert live.json()["score"] == pytest.approx(expected.score, abs=1e-5)
    with Gallery(settings.gallery_path()) as g:
        assert g.n_templates == 6
