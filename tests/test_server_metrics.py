"""``/metrics``: Prometheus text format (parsed back with prometheus-client's parser), requests by
route template and status, a latency histogram, faces found, errors by type, the queue depth."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from faceprint.keys import KeyStore
from faceprint.pipeline import FacePipeline
from faceprint.server import create_app
from faceprint.settings import Settings
from fakes import FakeDetector, FakeEmbedder, make_detection
from test_server import API, GREEN, RED, _BlockingDetector, add, h


def _samples(client: TestClient, token: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = client.get("/metrics", headers=h(token))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def _tokens(settings: Settings) -> dict[str, str]:
    with KeyStore(settings.keys_path()) as store:
        return {role: store.create(role)[1] for role in ("recognize", "enroll", "admin")}


def test_metrics_count_requests_by_route_latency_faces_and_errors(tmp_path: Path) -> None:
    settings = Settings(gallery=tmp_path / "g.db", keys=tmp_path / "k.db", service_threads=1)
    tokens = _tokens(settings)
    two = [make_detection((5, 5, 45, 45)), make_detection((50, 50, 95, 95))]
    pipe = FacePipeline(detector=FakeDetector(two), embedder=FakeEmbedder())
    with TestClient(create_app(settings, pipeline=pipe)) as client:
        admin = tokens["admin"]
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers=h(tokens["enroll"])).status_code == 403
        ids = [add(client, tokens["enroll"], name, c).json()["image_id"] for name, c in (("ann", RED), ("bob", GREEN))]
        for _ in range(3):
            assert client.post(f"{API}/detection/detect", files={"file": ("x.png", RED)},
                               headers=h(tokens["recognize"])).status_code == 200
        for image_id in ids:
            assert client.delete(f"{API}/recognition/faces/{image_id}", headers=h(admin)).status_code == 200
        assert client.delete(f"{API}/recognition/subjects/nobody", headers=h(admin)).status_code == 404
        assert client.get(f"{API}/recognition/subjects").status_code == 401
        m = _samples(client, admin)

    def value(name: str, **labels: str) -> float:
        return m.get((name, tuple(sorted(labels.items()))), 0.0)

    detect = {"method": "POST", "route": "/api/v1/detection/detect"}
    assert value("faceprint_requests_total", status="200", **detect) == 3
    # route templates, not raw paths: the two deletes of different ids are one series
    one = {"method": "DELETE", "route": "/api/v1/recognition/faces/{image_id}"}
    assert value("faceprint_requests_total", status="200", **one) == 2
    assert not any("0000-0000" in str(labels) for _, labels in m)
    assert value("faceprint_request_duration_seconds_count", **detect) == 3
    assert value("faceprint_request_duration_seconds_bucket", le="+Inf", **detect) == 3
    assert value("faceprint_request_duration_seconds_sum", **detect) > 0
    # 2 enrollments (the largest face each) + 3 detections of two faces
    assert value("faceprint_faces_detected_total") == 2 + 3 * 2
    assert value("faceprint_errors_total", type="SubjectNotFoundError") == 1
    assert value("faceprint_errors_total", type="http_401") == 2  # /metrics and the subjects list, no key
    assert value("faceprint_errors_total", type="http_403") == 1
    assert value("faceprint_queue_depth") == 0 and value("faceprint_queue_capacity") == 1 + 8


def test_queue_depth_shows_a_running_job(tmp_path: Path) -> None:
    settings = Settings(gallery=tmp_path / "g.db", keys=tmp_path / "k.db", service_threads=1)
    tokens = _tokens(settings)
    detector = _BlockingDetector()
    with TestClient(create_app(settings, pipeline=FacePipeline(detector=detector, embedder=FakeEmbedder()))) as client:
        done: dict[str, Any] = {}
        worker = threading.Thread(
            target=lambda: done.setdefault(
                "r", client.post(f"{API}/detection/detect", files={"file": ("x.png", RED)},
                                 headers=h(tokens["recognize"]))
            )
        )
        worker.start()
        try:
            assert detector.entered.wait(10)
            assert _samples(client, tokens["admin"])[("faceprint_queue_depth", ())] == 1
        finally:
            detector.release.set()
            worker.join(10)
        assert done["r"].status_code == 200
        assert _samples(client, tokens["admin"])[("faceprint_queue_depth", ())] == 0


class _BrokenDetector(FakeDetector):
    def detect(self, image: Any) -> list[Any]:
        if image.shape[0] > 64:  # not the warm-up's blank 64x64
            raise RuntimeError("a bug")
        return super().detect(image)


def test_an_internal_error_is_a_json_500_with_its_request_id_counted(tmp_path: Path) -> None:
    settings = Settings(gallery=tmp_path / "g.db", keys=tmp_path / "k.db", service_threads=1)
    tokens = _tokens(settings)
    app = create_app(settings, pipeline=FacePipeline(detector=_BrokenDetector(), embedder=FakeEmbedder()))
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.post(f"{API}/detection/detect", files={"file": ("x.png", RED)},
                        headers={**h(tokens["recognize"]), "x-request-id": "bug-1"})
        assert r.status_code == 500 and r.json()["message"] == "internal error (logged by the server)"
        assert r.headers["x-request-id"] == "bug-1" and "a bug" not in r.text
        m = _samples(client, tokens["admin"])
        assert m[("faceprint_errors_total", (("type", "http_500"),))] == 1
        entries = client.get("/v1/audit", headers=h(tokens["admin"])).json()["entries"]
        assert [(e["action"], e["status"], e["request_id"]) for e in entries] == [("detect", 500, "bug-1")]
