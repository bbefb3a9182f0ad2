"""Gallery export / import over HTTP (fake backends): an admin exports one collection and imports it into
another; a file of another embedder 409, an altered file 400, a taken name 409 (or skip / merge), over
FACEPRINT_MAX_IMPORT_BYTES 413, each audited."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from faceprint.gallery import open_gallery
from faceprint.pipeline import FacePipeline
from faceprint.server import create_app
from fakes import FakeDetector, FakeEmbedder
from test_server import API, BLUE, GREEN, RED, _settings, _tokens, add, h


def _app(tmp_path: Path, **extra: Any) -> tuple[TestClient, dict[str, str]]:
    settings = _settings(tmp_path, **extra)
    tokens = _tokens(settings)
    pipe = FacePipeline(detector=FakeDetector(), embedder=FakeEmbedder())
    return TestClient(create_app(settings, pipeline=pipe)), tokens


def _upload(client: TestClient, token: str, data: bytes, **params: str) -> Any:
    return client.post("/v1/import", params=params, files={"file": ("people.zip", data, "application/zip")},
                       headers=h(token))


def test_export_one_collection_and_import_it_into_another(tmp_path: Path) -> None:
    client, tokens = _app(tmp_path)
    with client:
        for subject, image in (("ann", RED), ("ann", GREEN), ("bob [x]", BLUE)):
            assert add(client, tokens["enroll"], subject, image).status_code == 201
        r = client.get("/v1/export", headers=h(tokens["admin"]))
        assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
        assert r.headers["x-faceprint-templates"] == "3" and r.headers["x-faceprint-encrypted"] == "false"
        assert 'filename="faceprint-default-' in r.headers["content-disposition"]
        data = r.content
        assert zipfile.ZipFile(io.BytesIO(data)).namelist() == ["manifest.json", "templates.bin", "checksum.json"]
        done = _upload(client, tokens["other"], data)
        assert done.status_code == 200, done.text
        assert sorted(done.json()["subjects_created"]) == ["ann", "bob [x]"] and done.json()["templates_added"] == 3
        subjects = client.get(f"{API}/recognition/subjects", headers=h(tokens["other"])).json()["subjects"]
        assert sorted(subjects) == ["ann", "bob [x]"]
        # the imported templates recognise: a red photo is ann in the other collection too
        rec = client.post(f"{API}/recognition/recognize", files={"file": ("a.png", RED)}, headers=h(tokens["other"]))
        assert rec.json()["result"][0]["subjects"][0]["subject"] == "ann"
        again = _upload(client, tokens["other"], data)
        assert again.status_code == 409 and "already in the gallery" in again.json()["message"]
        merged = _upload(client, tokens["other"], data, on_conflict="merge")
        assert merged.status_code == 200 and merged.json()["templates_added"] == 0
        skipped = _upload(client, tokens["other"], data, on_conflict="skip")
        assert sorted(skipped.json()["subjects_skipped"]) == ["ann", "bob [x]"]
        bad_choice = _upload(client, tokens["other"], data, on_conflict="replace")
        assert bad_choice.status_code == 400 and "on_conflict" in bad_choice.text
        audit = client.get("/v1/audit", params={"action": "import"}, headers=h(tokens["other"])).json()
        assert [e["status"] for e in audit["entries"]] == [200, 409, 200, 200, 400]  # refusals too
        assert audit["entries"][0]["detail"]["subjects_created"] == 2
        exported = client.get("/v1/audit", params={"action": "export"}, headers=h(tokens["admin"])).json()
        assert exported["entries"][0]["detail"] == {"subjects": 2, "templates": 3, "encrypted": False}


def test_a_damaged_or_foreign_file_is_400_another_embedder_409_nothing_written(tmp_path: Path) -> None:
    client, tokens = _app(tmp_path)
    foreign = tmp_path / "foreign.db"
    with open_gallery(foreign, template_key=None) as g:
        g.enroll("zed", np.eye(FakeEmbedder.dim, dtype=np.float32)[:1], fingerprint="other-model@9")
        buf = io.BytesIO()
        from faceprint.gallery.transfer import export_gallery

        export_gallery(g, buf)
    with client:
        assert add(client, tokens["enroll"], "ann", RED).status_code == 201
        data = client.get("/v1/export", headers=h(tokens["admin"])).content
        flipped = bytearray(data)
        info = zipfile.ZipFile(io.BytesIO(data)).getinfo("templates.bin")
        local_extra = int.from_bytes(data[info.header_offset + 28 : info.header_offset + 30], "little")
        flipped[info.header_offset + 30 + len(info.filename) + local_extra + 5] ^= 0xFF  # a byte of the templates
        for bad, why in ((bytes(flipped), "corrupt"), (data[:100], "truncated"), (RED, "not a readable")):
            r = _upload(client, tokens["other"], bad)
            assert r.status_code == 400 and why in r.json()["message"], r.text
        r = _upload(client, tokens["other"], buf.getvalue())
        assert r.status_code == 409 and "other-model@9" in r.json()["message"]
        assert client.get(f"{API}/recognition/subjects", headers=h(tokens["other"])).json() == {"subjects": []}
        assert client.post("/v1/import", content=data, headers={**h(tokens["other"]),
                                                                "content-type": "application/zip"}).status_code == 415
        missing = client.post("/v1/import", files={"other": ("a", b"x")}, headers=h(tokens["other"]))
        assert missing.status_code == 400 and "'file'" in missing.json()["message"]


def test_the_import_limit_is_its_own_setting(tmp_path: Path) -> None:
    client, tokens = _app(tmp_path, max_upload_bytes=2_000, max_import_bytes=50_000)
    with client:
        big = b"x" * 20_000
        r = _upload(client, tokens["admin"], big)
        assert r.status_code == 400  # under the import limit (over the photo limit): read, then refused as no export
        huge = _upload(client, tokens["admin"], b"x" * 60_000)
        assert huge.status_code == 413 and "FACEPRINT_MAX_IMPORT_BYTES" in huge.json()["message"]
        photo = client.post(f"{API}/recognition/recognize", files={"file": ("a.png", big)}, headers=h(tokens["admin"]))
        assert photo.status_code == 413 and "FACEPRINT_MAX_UPLOAD_BYTES" in photo.json()["message"]


def test_an_encrypted_service_exports_encrypted_and_a_service_without_the_key_cannot_import(tmp_path: Path) -> None:
    key = "11" * 32
    client, tokens = _app(tmp_path / "a", template_key=key)
    with client:
        assert add(client, tokens["enroll"], "ann", RED).status_code == 201
        r = client.get("/v1/export", headers=h(tokens["admin"]))
        assert r.headers["x-faceprint-encrypted"] == "true"
        data = r.content
    plain, plain_tokens = _app(tmp_path / "b")
    with plain:
        refused = _upload(plain, plain_tokens["admin"], data)
        assert refused.status_code == 400 and "encrypted" in refused.json()["message"]
    other, other_tokens = _app(tmp_path / "c", template_key=key)
    with other:
        assert _upload(other, other_tokens["admin"], data).json()["subjects_created"] == ["ann"]
