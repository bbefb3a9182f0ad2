"""Erasure: a deleted subject or example leaves no copy of its template bytes in the gallery's
database file or its write-ahead log (SQLite ``secure_delete`` + a WAL checkpoint that truncates
the log after each delete). The template bytes are searched for byte by byte in both files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

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

API = "/api/v1"


def _files(db: Path) -> dict[str, bytes]:
    """The bytes of the database and of each journal beside it that exists now."""
    found = {}
    for suffix in ("", "-wal", "-journal"):
        path = Path(f"{db}{suffix}")
        if path.is_file():
            found[path.name] = path.read_bytes()
    return found


def _holders(db: Path, needle: bytes) -> list[str]:
    return [name for name, data in _files(db).items() if needle in data]


def _unit(rng: np.random.Generator, n: int, dim: int = 128) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_a_deleted_example_and_subject_leave_no_template_bytes_in_db_or_wal(tmp_path: Path) -> None:
    db = tmp_path / "gallery.db"
    rng = np.random.default_rng(0)
    keep, gone, later = _unit(rng, 1), _unit(rng, 2), _unit(rng, 1)
    with Gallery(db) as gallery:
        gallery.enroll("ann", keep, fingerprint="fake")
        gallery.enroll("bob", gone, fingerprint="fake")
        gallery.enroll("cy", later, fingerprint="fake")
        # control: before the delete, the search finds every template (in the WAL, not yet checkpointed)
        for v in (*keep, *gone, *later):
            assert _holders(db, v.tobytes()), "the byte search cannot see stored templates"
        first = gallery.examples("bob")[0]
        gallery.remove_examples([first.id])
        assert _holders(db, gone[0].tobytes()) == []
        assert _holders(db, gone[1].tobytes()) != []  # bob's other example is still stored
        assert Path(f"{db}-wal").stat().st_size == 0  # the log was truncated after the delete
        gallery.remove("bob")
        gallery.remove("cy")
        for v in (*gone, *later):
            assert _holders(db, v.tobytes()) == []
        assert _holders(db, keep[0].tobytes()) == ["gallery.db"]  # what was not deleted is intact
        assert gallery.search(keep[0], k=1, threshold=0.5, fingerprint="fake")[0].name == "ann"
    assert _holders(db, gone[1].tobytes()) == [] and _holders(db, later[0].tobytes()) == []


def test_erasure_holds_while_another_connection_keeps_the_file_open(tmp_path: Path) -> None:
    db = tmp_path / "gallery.db"
    rng = np.random.default_rng(1)
    vectors = _unit(rng, 2)
    writer, reader = Gallery(db), Gallery(db)
    try:
        writer.enroll("ann", vectors[0], fingerprint="fake")
        writer.enroll("bob", vectors[1], fingerprint="fake")
        assert reader.search(vectors[1], k=1, threshold=0.5, fingerprint="fake")[0].name == "bob"
        writer.remove("bob")
        writer.close()  # the reader keeps the file (and so its WAL) open
        assert Path(f"{db}-wal").exists()
        assert _holders(db, vectors[1].tobytes()) == []
        assert [m.name for m in reader.search(vectors[1], k=2, threshold=-1.0, fingerprint="fake")] == ["ann"]
    finally:
        writer.close()
        reader.close()


@pytest.mark.real
@pytest.mark.data
def test_a_real_face_deleted_through_the_service_leaves_no_bytes(
    tmp_path: Path, yunet: Detector, sface: Embedder, lfw_image: Callable[[str, int], Path]
) -> None:
    settings = Settings(gallery=tmp_path / "gallery.db", keys=tmp_path / "keys.db", service_threads=1)
    db = settings.gallery_path()
    with KeyStore(settings.keys_path()) as store:
        token = store.create("enroll")[1]
    headers = {"x-api-key": token}
    photos = {person: lfw_image(person, 1) for person in ("Colin_Powell", "Tony_Blair")}
    pipe = FacePipeline(detector=yunet, embedder=sface)
    with TestClient(create_app(settings, pipeline=pipe)) as client:
        for person, path in photos.items():
            r = client.post(f"{API}/recognition/faces", params={"subject": person},
                            files={"file": (path.name, path.read_bytes(), "image/jpeg")}, headers=headers)
            assert r.status_code == 201, r.text
        # the stored template, read through a second connection (closed before the delete)
        with Gallery(db) as peek:
            template = peek.templates("Tony_Blair")[0].tobytes()
            kept = peek.templates("Colin_Powell")[0].tobytes()
        assert len(template) == sface.dim * 4 and _holders(db, template)
        r = client.delete(f"{API}/recognition/subjects/Tony_Blair", headers=headers)
        assert r.status_code == 200, r.text
        assert _holders(db, template) == []  # while the service runs: db and truncated WAL
    assert _holders(db, template) == []  # after shutdown closed the gallery
    assert _holders(db, kept) == ["gallery.db"]
