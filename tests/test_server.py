"""The service's routes through FastAPI's TestClient, on fake backends (fast): keys and roles on every
route, CompreFace shapes, bad input as 4xx JSON, the upload limit, a full queue as 503."""

from __future__ import annotations

import base64
import io
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image as PILImage

from faceprint.keys import KeyStore
from faceprint.pipeline import FacePipeline
from faceprint.server import create_app
from faceprint.server.routes.compreface import example_id_of, image_id_of
from faceprint.settings import Settings
from fakes import FakeDetector, FakeEmbedder, make_detection, solid_image

API = "/api/v1"


def png(colour: tuple[int, int, int], size: tuple[int, int] = (100, 100)) -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(solid_image(colour, size)).save(buf, format="PNG")
    return buf.getvalue()


RED, GREEN, BLUE = png((200, 30, 30)), png((30, 200, 30)), png((30, 30, 200))


def _settings(tmp_path: Path, **extra: Any) -> Settings:
    return Settings(gallery=tmp_path / "gallery.db", keys=tmp_path / "keys.db", service_threads=1, **extra)


def _tokens(settings: Settings) -> dict[str, str]:
    with KeyStore(settings.keys_path()) as store:
        made = {role: store.create(role)[1] for role in ("recognize", "enroll", "admin")}
        made["other"] = store.create("admin", collection="other")[1]
    return made


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings = _settings(tmp_path)
    tokens = _tokens(settings)
    pipe = FacePipeline(detector=FakeDetector(), embedder=FakeEmbedder())
    with TestClient(create_app(settings, pipeline=pipe)) as client:
        yield client, tokens


def h(token: str) -> dict[str, str]:
    return {"x-api-key": token}


def add(client: TestClient, token: str, subject: str, image: bytes) -> Any:
    return client.post(f"{API}/recognition/faces", params={"subject": subject}, files={"file": ("a.png", image)},
                       headers=h(token))


# ---------------------------------------------------------------- keys and roles on every route

# the least role each route needs; the test fails when a route is added without a line here
NEEDS = {
    ("GET", "/ready"): "recognize",
    ("GET", "/metrics"): "admin",
    ("GET", "/v1/audit"): "admin",
    ("POST", "/v1/identify"): "recognize",
    ("POST", "/v1/verify"): "recognize",
    ("POST", "/v1/liveness"): "recognize",
    ("POST", "/v1/enroll"): "enroll",
    ("POST", "/v1/challenge"): "recognize",
    ("POST", "/v1/challenge/{challenge_id}"): "recognize",
    ("GET", "/v1/models"): "recognize",
    ("POST", "/v1/keys"): "admin",
    ("GET", "/v1/keys"): "admin",
    ("DELETE", "/v1/keys/{key_id}"): "admin",
    ("GET", "/v1/collections"): "admin",
    ("POST", "/v1/collections"): "admin",
    ("GET", "/v1/export"): "admin",
    ("POST", "/v1/import"): "admin",
    ("GET", "/api/v1/recognition/subjects"): "recognize",
    ("POST", "/api/v1/recognition/subjects"): "enroll",
    ("DELETE", "/api/v1/recognition/subjects"): "admin",
    ("PUT", "/api/v1/recognition/subjects/{subject}"): "enroll",
    ("DELETE", "/api/v1/recognition/subjects/{subject}"): "enroll",
    ("GET", "/api/v1/recognition/faces"): "recognize",
    ("POST", "/api/v1/recognition/faces"): "enroll",
    ("DELETE", "/api/v1/recognition/faces"): "admin",  # without ?subject= (every example); with it: enroll
    ("POST", "/api/v1/recognition/faces/delete"): "enroll",
    ("DELETE", "/api/v1/recognition/faces/{image_id}"): "enroll",
    ("POST", "/api/v1/recognition/recognize"): "recognize",
    ("POST", "/api/v1/recognition/faces/{image_id}/verify"): "recognize",
    ("POST", "/api/v1/detection/detect"): "recognize",
    ("POST", "/api/v1/verification/verify"): "recognize",
}
ROLES = ("recognize", "enroll", "admin")


def _routes(client: TestClient) -> list[tuple[str, str]]:
    schema = client.get("/openapi.json").json()
    return sorted((m.upper(), p) for p, ops in schema["paths"].items() for m in ops)


def _call(client: TestClient, method: str, path: str, headers: dict[str, str]) -> Any:
    url = path.replace("{subject}", "ann").replace("{image_id}", image_id_of(1))
    url = url.replace("{challenge_id}", "x").replace("{key_id}", "x")
    if method in ("POST", "PUT"):
        return client.request(method, url, headers=headers, files={"file": ("a.png", RED)})
    return client.request(method, url, headers=headers)


def test_every_route_but_health_needs_a_key_of_the_right_role_and_collection(server: Any) -> None:
    client, tokens = server
    routes = _routes(client)
    assert set(routes) - {("GET", "/health")} == set(NEEDS), "a route without an entry in NEEDS (or a stale one)"
    secrets = list(tokens.values())
    seen = []
    for method, path in NEEDS:
        need = NEEDS[(method, path)]
        no_key = _call(client, method, path, {})
        assert no_key.status_code == 401, (method, path, no_key.text)
        assert no_key.json()["message"]
        bad = _call(client, method, path, h(tokens["admin"] + "x"))
        assert bad.status_code == 401, (method, path)
        other = _call(client, method, path, {**h(tokens["other"]), "x-collection": "default"})
        assert other.status_code == 403, (method, path, other.text)
        for role in ROLES:
            r = _call(client, method, path, h(tokens[role]))
            allowed = ROLES.index(role) >= ROLES.index(need)
            assert (r.status_code == 403) != allowed, (method, path, role, r.status_code, r.text)
            assert r.status_code != 401 and r.status_code < 500, (method, path, role, r.text)
            seen.append(r)
        seen += [no_key, bad, other]
    assert client.get("/health").json() == {"status": "ok"}
    for r in seen:  # no answer echoes a key, in its body or its headers; each names its request
        assert r.headers["x-request-id"]
        text = r.text + " ".join(f"{k}: {v}" for k, v in r.headers.items())
        assert not any(s in text for s in secrets)
        assert not any(s.split("_", 2)[2] in text for s in secrets)


def test_a_revoked_key_is_refused_and_a_key_sees_only_its_collection(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    tokens = _tokens(settings)
    pipe = FacePipeline(detector=FakeDetector(), embedder=FakeEmbedder())
    with TestClient(create_app(settings, pipeline=pipe)) as client:
        assert add(client, tokens["enroll"], "ann", RED).status_code == 201
        assert client.get(f"{API}/recognition/subjects", headers=h(tokens["recognize"])).json() == {"subjects": ["ann"]}
        # the key of collection "other" works on its own gallery, which does not hold ann
        assert client.get(f"{API}/recognition/subjects", headers=h(tokens["other"])).json() == {"subjects": []}
        assert client.delete(f"{API}/recognition/subjects/ann", headers=h(tokens["other"])).status_code == 404
        assert (tmp_path / "collections" / "other.db").is_file()
        with KeyStore(settings.keys_path()) as store:
            key_id = tokens["recognize"].split("_")[1]
            store.revoke(key_id)
            assert store.get(key_id).last_used_at is not None
        assert client.get(f"{API}/recognition/subjects", headers=h(tokens["recognize"])).status_code == 401


# ---------------------------------------------------------------- CompreFace shapes (fake faces: colours)


def test_subjects_and_examples_round_trip_in_compreface_shapes(server: Any) -> None:
    client, tokens = server
    enroll = h(tokens["enroll"])
    r = client.post(f"{API}/recognition/subjects", json={"subject": "ann"}, headers=enroll)
    assert r.status_code == 201 and r.json() == {"subject": "ann"}
    assert client.post(f"{API}/recognition/subjects", json={"subject": "ann"}, headers=enroll).status_code == 409
    first = add(client, tokens["enroll"], "ann", RED).json()
    assert first["subject"] == "ann" and uuid.UUID(first["image_id"])
    second = client.post(f"{API}/recognition/faces", params={"subject": "bob"},
                         json={"file": base64.b64encode(GREEN).decode()}, headers=enroll)
    assert second.status_code == 201, second.text
    add(client, tokens["enroll"], "bob", BLUE)
    listed = client.get(f"{API}/recognition/faces", params={"size": 2}, headers=enroll).json()
    assert listed["total_elements"] == 3 and listed["total_pages"] == 2 and listed["page_size"] == 2
    assert [f["subject"] for f in listed["faces"]] == ["ann", "bob"]
    page1 = client.get(f"{API}/recognition/faces", params={"size": 2, "page": 1}, headers=enroll).json()
    assert [f["subject"] for f in page1["faces"]] == ["bob"] and page1["page_number"] == 1
    only_bob = client.get(f"{API}/recognition/faces", params={"subject": "bob"}, headers=enroll).json()
    assert only_bob["total_elements"] == 2

    rec = client.post(f"{API}/recognition/recognize", params={"prediction_count": 2, "face_plugins": "landmarks"},
                      files={"file": ("p.png", png((190, 40, 40)))}, headers=h(tokens["recognize"]))
    assert rec.status_code == 200, rec.text
    (face,) = rec.json()["result"]
    assert set(face["box"]) == {"probability", "x_max", "y_max", "x_min", "y_min"}
    assert face["box"]["x_min"] == 10 and face["box"]["x_max"] == 90
    assert len(face["landmarks"]) == 5
    assert [s["subject"] for s in face["subjects"]] == ["ann", "bob"]
    assert 0.99 < face["subjects"][0]["similarity"] <= 1.0 > face["subjects"][1]["similarity"]

    ver = client.post(f"{API}/recognition/faces/{first['image_id']}/verify", files={"file": ("p.png", RED)},
                      headers=h(tokens["recognize"]))
    assert ver.status_code == 200 and ver.json()["result"][0]["similarity"] == pytest.approx(1.0, abs=1e-4)
    two = client.post(f"{API}/verification/verify",
                      files={"source_image": ("s.png", RED), "target_image": ("t.png", GREEN)},
                      headers=h(tokens["recognize"]))
    assert two.status_code == 200, two.text
    result = two.json()["result"][0]
    assert set(result) == {"source_image_face", "face_matches"} and len(result["face_matches"]) == 1
    assert result["face_matches"][0]["similarity"] < 0.9
    det = client.post(f"{API}/detection/detect", files={"file": ("p.png", RED)}, headers=h(tokens["recognize"]))
    assert det.json()["result"][0]["box"]["probability"] == pytest.approx(0.99)

    assert client.put(f"{API}/recognition/subjects/bob", json={"subject": "rob"}, headers=enroll).json() == {
        "updated": True
    }
    assert client.delete(f"{API}/recognition/faces/{first['image_id']}", headers=enroll).json() == first
    assert client.delete(f"{API}/recognition/faces/{first['image_id']}", headers=enroll).status_code == 404
    gone = client.post(f"{API}/recognition/faces/{first['image_id']}/verify", files={"file": ("p.png", RED)},
                       headers=enroll)
    assert gone.status_code == 404
    assert client.get(f"{API}/recognition/subjects", headers=enroll).json() == {"subjects": ["ann", "rob"]}
    assert client.delete(f"{API}/recognition/faces", params={"subject": "rob"}, headers=enroll).json() == {
        "deleted": 2
    }
    assert client.delete(f"{API}/recognition/subjects/rob", headers=enroll).json() == {"subject": "rob"}
    ann_left = client.get(f"{API}/recognition/faces", params={"subject": "ann"}, headers=enroll).json()["faces"]
    # a rename onto an existing name merges (CompreFace): ann's examples move to zoe, ann goes
    add(client, tokens["enroll"], "zoe", BLUE)
    assert client.put(f"{API}/recognition/subjects/ann", json={"subject": "zoe"}, headers=enroll).json() == {
        "updated": True
    }
    merged = client.get(f"{API}/recognition/faces", params={"subject": "zoe"}, headers=enroll).json()
    assert merged["total_elements"] == 1 + len(ann_left)
    assert client.get(f"{API}/recognition/subjects", headers=enroll).json() == {"subjects": ["zoe"]}
    assert client.delete(f"{API}/recognition/subjects", headers=h(tokens["admin"])).json() == {"deleted": 1}
    assert client.get(f"{API}/recognition/subjects", headers=enroll).json() == {"subjects": []}


def test_delete_many_examples_by_id_skips_unknown_ones(server: Any) -> None:
    client, tokens = server
    ids = [add(client, tokens["enroll"], "ann", c).json()["image_id"] for c in (RED, GREEN)]
    past_any_id = str(uuid.UUID(int=2**128 - 1))
    r = client.post(f"{API}/recognition/faces/delete", json=[ids[0], image_id_of(999), past_any_id],
                    headers=h(tokens["enroll"]))
    assert r.status_code == 200 and r.json() == [{"image_id": ids[0], "subject": "ann"}]
    left = client.get(f"{API}/recognition/faces", headers=h(tokens["enroll"])).json()["faces"]
    assert [f["image_id"] for f in left] == [ids[1]]


def test_image_ids_are_uuids_that_encode_the_template_id() -> None:
    assert example_id_of(image_id_of(123456)) == 123456
    assert uuid.UUID(image_id_of(5)).int == 5


def test_limit_and_det_prob_threshold_pick_faces_largest_first(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    tokens = _tokens(settings)
    small, big = make_detection((5, 5, 30, 30), score=0.95), make_detection((40, 40, 95, 95), score=0.7)
    pipe = FacePipeline(detector=FakeDetector([small, big]), embedder=FakeEmbedder())
    with TestClient(create_app(settings, pipeline=pipe)) as client:
        def boxes(**params: Any) -> Any:
            r = client.post(f"{API}/detection/detect", params=params, files={"file": ("p.png", RED)},
                            headers=h(tokens["recognize"]))
            return r.status_code, [f["box"]["x_min"] for f in r.json().get("result", [])], r.json()

        assert boxes()[:2] == (200, [40, 5])
        assert boxes(limit=1)[:2] == (200, [40])
        assert boxes(det_prob_threshold=0.9)[:2] == (200, [5])
        status, _, body = boxes(det_prob_threshold=0.99)
        assert status == 400 and body["code"] == 28 and "none with detection probability >= 0.99" in body["reason"]


# ---------------------------------------------------------------- bad input: JSON 4xx, never 500


def test_bad_input_gets_a_json_4xx(tmp_path: Path) -> None:
    settings = _settings(tmp_path, max_upload_bytes=50_000)
    tokens = _tokens(settings)
    pipe = FacePipeline(detector=FakeDetector(), embedder=FakeEmbedder())
    enroll = h(tokens["enroll"])
    with TestClient(create_app(settings, pipeline=pipe)) as client:
        url = f"{API}/recognition/recognize"
        corrupt = client.post(url, files={"file": ("x.jpg", b"\xff\xd8\xff not really a jpeg")}, headers=enroll)
        assert corrupt.status_code == 400 and corrupt.json()["message"]
        truncated = client.post(url, files={"file": ("x.png", RED[: len(RED) // 2])}, headers=enroll)
        assert truncated.status_code == 400
        big = client.post(url, files={"file": ("x.png", b"\0" * 60_000)}, headers=enroll)
        assert big.status_code == 413 and "FACEPRINT_MAX_UPLOAD_BYTES" in big.json()["message"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: cut off while streaming
            for _ in range(100):
                yield b"\0" * 1000

        streamed = client.post(url, content=chunks(), headers={**enroll, "content-type": "application/json"})
        assert streamed.status_code == 413
        wrong_type = client.post(url, content=b"hello", headers={**enroll, "content-type": "text/plain"})
        assert wrong_type.status_code == 415
        no_field = client.post(url, files={"other": ("x.png", RED)}, headers=enroll)
        assert no_field.status_code == 400 and "'file'" in no_field.json()["message"]
        bad_b64 = client.post(url, json={"file": "***"}, headers=enroll)
        assert bad_b64.status_code == 400
        bad_json = client.post(url, content=b"{", headers={**enroll, "content-type": "application/json"})
        assert bad_json.status_code == 400
        bad_query = client.post(url, params={"limit": "many"}, files={"file": ("x.png", RED)}, headers=enroll)
        assert bad_query.status_code == 400 and "limit" in bad_query.json()["message"]
        unknown = client.delete(f"{API}/recognition/subjects/nobody", headers=enroll)
        assert unknown.status_code == 404 and "nobody" in unknown.json()["message"]
        assert "collection 'default'" in unknown.json()["message"] and str(tmp_path) not in unknown.text
        unknown_faces = client.get(f"{API}/recognition/faces", params={"subject": "nobody"}, headers=enroll)
        assert unknown_faces.status_code == 404
        not_uuid = client.delete(f"{API}/recognition/faces/12", headers=enroll)
        assert not_uuid.status_code == 400
        bad_name = add(client, tokens["enroll"], "a\nb", RED)
        assert bad_name.status_code == 400 and "control character" in bad_name.json()["message"]
        assert client.get("/nowhere").status_code == 404


def test_a_page_past_any_database_integer_is_a_400_not_a_500(server: Any) -> None:
    client, tokens = server  # found by schemathesis (a longer run of test_server_schemathesis.py): SQLite overflowed
    for url in (f"{API}/recognition/faces", "/v1/audit"):
        r = client.get(url, params={"page": 10**19, "size": 1000}, headers=h(tokens["admin"]))
        assert r.status_code == 400 and "page" in r.json()["message"], (url, r.text)
        last = client.get(url, params={"page": 10**9, "size": 1000}, headers=h(tokens["admin"]))
        assert last.status_code == 200 and last.json()["total_elements"] == 0


def test_no_face_is_400_with_compreface_code_28_and_a_reason(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    tokens = _tokens(settings)
    pipe = FacePipeline(detector=FakeDetector([]), embedder=FakeEmbedder())
    with TestClient(create_app(settings, pipeline=pipe)) as client:
        for url, files in (
            (f"{API}/recognition/recognize", {"file": ("x.png", RED)}),
            (f"{API}/detection/detect", {"file": ("x.png", RED)}),
            (f"{API}/verification/verify", {"source_image": ("s.png", RED), "target_image": ("t.png", RED)}),
        ):
            r = client.post(url, files=files, headers=h(tokens["admin"]))
            assert r.status_code == 400, url
            body = r.json()
            assert body["code"] == 28 and body["message"] == "No face is found in the given image"
            assert "no face found" in body["reason"]
        r = add(client, tokens["enroll"], "ann", RED)
        assert r.status_code == 400 and r.json()["code"] == 28
        assert client.get(f"{API}/recognition/subjects", headers=h(tokens["enroll"])).json() == {"subjects": []}


# ---------------------------------------------------------------- a full queue answers 503 at once


class _BlockingDetector(FakeDetector):
    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def detect(self, image: Any) -> list[Any]:
        if image.shape[0] > 64:  # not the warm-up's blank 64x64
            self.entered.set()
            assert self.release.wait(10)
        return super().detect(image)


def test_a_full_queue_answers_503_with_retry_after(tmp_path: Path) -> None:
    settings = _settings(tmp_path, service_queue=0)
    tokens = _tokens(settings)
    detector = _BlockingDetector()
    pipe = FacePipeline(detector=detector, embedder=FakeEmbedder())
    with TestClient(create_app(settings, pipeline=pipe)) as client:
        first: dict[str, Any] = {}

        def slow() -> None:
            first["r"] = client.post(f"{API}/detection/detect", files={"file": ("x.png", RED)},
                                     headers=h(tokens["recognize"]))

        worker = threading.Thread(target=slow)
        worker.start()
        try:
            assert detector.entered.wait(10)
            busy = client.post(f"{API}/detection/detect", files={"file": ("x.png", RED)},
                               headers=h(tokens["recognize"]))
            assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
            assert "busy" in busy.json()["message"]
            # refused before its upload is parsed: a malformed body gets the 503, not the 400 it would get
            unread = client.post(f"{API}/recognition/recognize", content=b"--nope\r\n\r\ngarbage",
                                 headers={**h(tokens["recognize"]), "content-type": "multipart/form-data; boundary=x"})
            assert unread.status_code == 503 and unread.headers["retry-after"] == "1"
            assert client.get("/ready", headers=h(tokens["recognize"])).json()["admitted"] == 1
        finally:
            detector.release.set()
            worker.join(10)
        assert first["r"].status_code == 200
        after = client.post(f"{API}/detection/detect", files={"file": ("x.png", RED)}, headers=h(tokens["recognize"]))
        assert after.status_code == 200


def test_ready_names_the_model_and_the_collection(server: Any) -> None:
    client, tokens = server
    body = client.get("/ready", headers=h(tokens["recognize"])).json()
    assert body["status"] == "ready" and body["model"] == "fake" and body["collection"] == "default"
    assert body["templates"] == 0 and body["queue_capacity"] == 1 + 8


def test_settings_of_the_service_come_from_faceprint_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEPRINT_MAX_UPLOAD_BYTES", "1234")
    monkeypatch.setenv("FACEPRINT_SERVICE_QUEUE", "3")
    monkeypatch.setenv("FACEPRINT_GALLERY", "/srv/fp/gallery.db")
    s = Settings()
    assert (s.max_upload_bytes, s.service_queue, s.keys_path()) == (1234, 3, Path("/srv/fp/keys.db"))
    assert Settings().max_upload_bytes == 1234 and Settings(max_upload_bytes=5).max_upload_bytes == 5
    monkeypatch.delenv("FACEPRINT_MAX_UPLOAD_BYTES")
    assert Settings().max_upload_bytes == 10_000_000


def test_fake_embedder_colours_are_far_apart() -> None:
    # the shape test above relies on red / green / blue faces being different people
    e = FakeEmbedder()
    r, g = e.vector_for_colour((200, 30, 30)), e.vector_for_colour((30, 200, 30))
    assert float(np.dot(r, g)) < 0.9
