"""faceprint.gallery.encryption: templates AES-GCM encrypted at rest in the SQLite gallery.

Random unit vectors, galleries under tmp_path. The template bytes are searched for in the raw
database file and its write-ahead log, as tests/test_erasure.py does.
"""

from __future__ import annotations

import base64
import io
import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image as PILImage

from faceprint.errors import (
    FaceprintError,
    GalleryError,
    InvalidArgumentError,
    TemplateIntegrityError,
    TemplateKeyError,
)
from faceprint.gallery import Gallery, open_gallery
from faceprint.gallery.encryption import MAGIC, OVERHEAD, TemplateCipher
from faceprint.keys import KeyStore
from faceprint.pipeline import FacePipeline
from faceprint.server import create_app
from faceprint.settings import Settings, current_settings, export_settings
from fakes import FakeDetector, FakeEmbedder, solid_image

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
FP = "fake-v1"


@pytest.fixture(autouse=True)
def _no_key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FACEPRINT_TEMPLATE_KEY", raising=False)


def _unit(rng: np.random.Generator, n: int, dim: int = 64) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _files(db: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (db, Path(f"{db}-wal"), Path(f"{db}-journal")) if p.is_file()}


def _holders(db: Path, needle: bytes) -> list[str]:
    return [name for name, data in _files(db).items() if needle in data]


def _fill(gallery: Gallery, vectors: dict[str, np.ndarray]) -> None:
    for name, v in vectors.items():
        gallery.enroll(name, v, fingerprint=FP)


def _people(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"p{i}": _unit(rng, 3) for i in range(8)}


# -- round trip --------------------------------------------------------------------------------
def test_enroll_and_search_give_the_same_results_encrypted_and_plain(tmp_path: Path) -> None:
    people = _people()
    queries = _unit(np.random.default_rng(1), 5)
    queries[0] = people["p3"][1]
    results = {}
    for mode, key in (("plain", None), ("encrypted", KEY)):
        db = tmp_path / f"{mode}.db"
        with Gallery(db, template_key=key) as g:
            _fill(g, people)
            assert g.encrypted is (key is not None)
            live = [g.search(q, k=3, threshold=-1.0, fingerprint=FP) for q in queries]
        with Gallery(db, template_key=key) as g:  # reopened: read back from the store
            again = [g.search(q, k=3, threshold=-1.0, fingerprint=FP) for q in queries]
            templates = {name: g.templates(name) for name in people}
            example = g.example(g.examples("p5")[0].id)[1]
        assert again == live
        for name, v in people.items():
            np.testing.assert_array_equal(templates[name], v)
        np.testing.assert_array_equal(example, people["p5"][0])
        results[mode] = live
    assert results["encrypted"] == results["plain"]
    assert results["encrypted"][0][0].name == "p3"


def test_another_connection_sees_encrypted_writes(tmp_path: Path) -> None:
    """The change-log refresh of a second Gallery on the same file decrypts what the first wrote."""
    db = tmp_path / "g.db"
    rng = np.random.default_rng(2)
    a, b = _unit(rng, 2), _unit(rng, 1)
    with Gallery(db, template_key=KEY) as writer, Gallery(db, template_key=KEY) as reader:
        writer.enroll("ann", a, fingerprint=FP)
        assert reader.search(a[0], k=1, threshold=-1.0, fingerprint=FP)[0].name == "ann"  # full build
        writer.enroll("bob", b, fingerprint=FP)
        assert reader.search(b[0], k=1, threshold=-1.0, fingerprint=FP)[0].name == "bob"  # incremental refresh
        assert reader.index_stats.refreshes == 1
        writer.merge("bob", "ann")  # moves templates to another subject: they still decrypt
        np.testing.assert_array_equal(reader.templates("ann"), np.vstack([a, b]))


# -- nothing plain at rest ---------------------------------------------------------------------
@pytest.mark.parametrize("checkpoint", [False, True], ids=["in-wal", "checkpointed"])
def test_the_file_holds_no_template_bytes_when_encrypted_but_does_when_plain(tmp_path: Path, checkpoint: bool) -> None:
    people = _people(3)
    for mode, key in (("plain", None), ("encrypted", KEY)):
        db = tmp_path / f"{mode}.db"
        with Gallery(db, template_key=key) as g:
            _fill(g, people)
            if checkpoint:
                g._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            assert _files(db), "no database file to search"
            for v in np.vstack(list(people.values())):
                holders = _holders(db, v.tobytes())
                if key is None:
                    assert holders, "the byte search cannot see a plain template"
                else:
                    assert holders == [], f"a template's float32 bytes are stored plain in {holders}"
                    # nor any 16-byte run of it (a partial copy)
                    assert all(v.tobytes()[:16] not in data for data in _files(db).values())
    rows = sqlite3.connect(tmp_path / "encrypted.db").execute("SELECT id, embedding FROM templates").fetchall()
    assert rows and all(bytes(blob[:4]) == MAGIC and len(blob) == 64 * 4 + OVERHEAD for _, blob in rows)
    assert len({bytes(blob[4:16]) for _, blob in rows}) == len(rows)  # a fresh nonce per template


# -- keys at open ------------------------------------------------------------------------------
def test_an_encrypted_gallery_opened_without_a_key_or_with_another_one_fails_at_open(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    with Gallery(db, template_key=KEY) as g:
        _fill(g, _people())
    with pytest.raises(TemplateKeyError, match="encrypted .* no template key was given"):
        Gallery(db, template_key=None)
    with pytest.raises(TemplateKeyError, match="encrypted with another key"):
        Gallery(db, template_key=OTHER_KEY)
    with pytest.raises(TemplateKeyError):  # the default reads FACEPRINT_TEMPLATE_KEY: unset here
        open_gallery(db)
    with pytest.raises(TemplateKeyError):
        open_gallery(f"sqlite:///{db}", template_key=OTHER_KEY)
    err = TemplateKeyError("x")
    assert isinstance(err, GalleryError) and isinstance(err, ValueError) and isinstance(err, FaceprintError)
    with Gallery(db, template_key=KEY) as g:  # the right key still opens it
        assert len(g) == 8 and g.n_templates == 24


def test_a_plain_gallery_with_templates_is_refused_with_a_key_and_says_it_is_plain(tmp_path: Path) -> None:
    db = tmp_path / "plain.db"
    with Gallery(db, template_key=None) as g:
        _fill(g, _people())
    with pytest.raises(TemplateKeyError, match="stores its 24 template\\(s\\) unencrypted"):
        Gallery(db, template_key=KEY)
    with Gallery(db, template_key=None) as g:  # unchanged, and still plain
        assert not g.encrypted and g.n_templates == 24


def test_a_gallery_without_templates_becomes_encrypted_when_opened_with_a_key(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    rng = np.random.default_rng(4)
    with Gallery(db, template_key=None) as g:
        g.create("ann")  # a subject, no template
        assert not g.encrypted
    with Gallery(db, template_key=KEY) as g:
        assert g.encrypted
        g.add("ann", _unit(rng, 1), fingerprint=FP)
    with pytest.raises(TemplateKeyError):
        Gallery(db, template_key=None)


def test_a_plain_connection_opened_before_encryption_cannot_write_plain_rows(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    rng = np.random.default_rng(5)
    with Gallery(db, template_key=None) as plain:
        with Gallery(db, template_key=KEY) as encrypted:  # empty: it becomes encrypted now
            encrypted.enroll("ann", _unit(rng, 1), fingerprint=FP)
        with pytest.raises(TemplateKeyError, match="made encrypted by another connection"):
            plain.enroll("bob", _unit(rng, 1), fingerprint=FP)
        with pytest.raises(TemplateIntegrityError):  # and reads no garbage from the encrypted rows
            plain.templates("ann")
    with Gallery(db, template_key=KEY) as g:
        assert [s.name for s in g.subjects()] == ["ann"]


def test_the_key_comes_from_the_settings_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = base64.b64encode(KEY).decode()
    monkeypatch.setenv("FACEPRINT_TEMPLATE_KEY", text)
    db = tmp_path / "g.db"
    with open_gallery(db) as g:
        assert isinstance(g, Gallery) and g.encrypted
        _fill(g, _people())
    with Gallery(db, template_key=KEY) as g:  # the same key, given as bytes
        assert g.n_templates == 24
    monkeypatch.setenv("FACEPRINT_TEMPLATE_KEY", KEY.hex())  # the same key in hex
    with Gallery(db) as g:
        assert g.n_templates == 24
    with pytest.raises(TemplateKeyError):
        Gallery(db, template_key=None)  # explicit None: no key, whatever the environment says


@pytest.mark.parametrize("bad", [b"short", bytes(33), "00" * 32, 12])
def test_a_template_key_that_is_not_32_bytes_is_refused(tmp_path: Path, bad: object) -> None:
    with pytest.raises(InvalidArgumentError, match="template_key must be 32 bytes"):
        Gallery(tmp_path / "g.db", template_key=bad)  # type: ignore[arg-type]


# -- tampering ---------------------------------------------------------------------------------
def _flip(db: Path, template_id: int, at: int) -> None:
    conn = sqlite3.connect(db)
    (blob,) = conn.execute("SELECT embedding FROM templates WHERE id = ?", (template_id,)).fetchone()
    blob = bytearray(blob)
    blob[at] ^= 0x01
    conn.execute("UPDATE templates SET embedding = ? WHERE id = ?", (bytes(blob), template_id))
    conn.commit()
    conn.close()


@pytest.mark.parametrize("at", [20, -1, 5], ids=["ciphertext", "tag", "nonce"])
def test_a_tampered_blob_is_a_clear_error_not_a_garbage_vector(tmp_path: Path, at: int) -> None:
    db = tmp_path / "g.db"
    people = _people()
    with Gallery(db, template_key=KEY) as g:
        _fill(g, people)
        victim = g.examples("p2")[1].id
    _flip(db, victim, at)
    with Gallery(db, template_key=KEY) as g:  # the key check still passes: the error comes at read
        with pytest.raises(TemplateIntegrityError, match=f"template {victim} fails authentication"):
            g.search(people["p0"][0], k=1, threshold=-1.0, fingerprint=FP)
        with pytest.raises(TemplateIntegrityError):
            g.templates("p2")
        with pytest.raises(TemplateIntegrityError):
            g.example(victim)
        np.testing.assert_array_equal(g.templates("p1"), people["p1"])  # other rows still read


def test_a_blob_copied_to_another_row_or_gallery_fails(tmp_path: Path) -> None:
    first, second = tmp_path / "a.db", tmp_path / "b.db"
    for db in (first, second):
        with Gallery(db, template_key=KEY) as g:  # the same key for both galleries
            _fill(g, _people())
    conn = sqlite3.connect(first)
    (blob,) = conn.execute("SELECT embedding FROM templates WHERE id = 1").fetchone()
    conn.execute("UPDATE templates SET embedding = ? WHERE id = 2", (blob,))  # row 1's blob into row 2
    conn.commit()
    conn.close()
    with Gallery(first, template_key=KEY) as g, pytest.raises(TemplateIntegrityError, match="template 2"):
        g.rebuild_index()
    conn = sqlite3.connect(second)
    conn.execute("UPDATE templates SET embedding = ? WHERE id = 1", (blob,))  # same row id, other gallery
    conn.commit()
    conn.close()
    with Gallery(second, template_key=KEY) as g, pytest.raises(TemplateIntegrityError, match="template 1"):
        g.rebuild_index()


def test_a_plain_blob_in_an_encrypted_gallery_and_an_encrypted_one_in_a_plain_gallery_fail(tmp_path: Path) -> None:
    enc, plain = tmp_path / "enc.db", tmp_path / "plain.db"
    people = _people()
    with Gallery(enc, template_key=KEY) as g:
        _fill(g, people)
    with Gallery(plain, template_key=None) as g:
        _fill(g, people)
    c_enc, c_plain = sqlite3.connect(enc), sqlite3.connect(plain)
    (sealed,) = c_enc.execute("SELECT embedding FROM templates WHERE id = 1").fetchone()
    c_enc.execute("UPDATE templates SET embedding = ? WHERE id = 1", (people["p0"][0].tobytes(),))
    c_plain.execute("UPDATE templates SET embedding = ? WHERE id = 1", (sealed,))
    for c in (c_enc, c_plain):
        c.commit()
        c.close()
    with Gallery(enc, template_key=KEY) as g, pytest.raises(TemplateIntegrityError, match="is not encrypted"):
        g.rebuild_index()
    with Gallery(plain, template_key=None) as g, pytest.raises(TemplateIntegrityError, match="holds encrypted"):
        g.rebuild_index()


# -- the key stays secret ----------------------------------------------------------------------
def test_the_key_never_appears_in_settings_repr_or_error_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = os.urandom(32)
    text = base64.b64encode(raw).decode()
    settings = Settings(template_key=text)
    assert settings.template_key_bytes() == raw
    shown = [repr(settings), str(settings), repr(settings.model_dump()), settings.model_dump_json()]
    db = tmp_path / "g.db"
    with Gallery(db, template_key=raw) as g:
        _fill(g, _people())
        shown.append(repr(g))
    for key in (None, os.urandom(32)):
        with pytest.raises(TemplateKeyError) as info:
            Gallery(db, template_key=key)
        shown.append(str(info.value))
    with Gallery(tmp_path / "plain.db", template_key=None) as g:
        _fill(g, _people())
    with pytest.raises(TemplateKeyError) as info:
        Gallery(tmp_path / "plain.db", template_key=raw)
    shown.append(str(info.value))
    for bad in (text[:-2], text + "AA", "zz" * 32):  # wrong lengths / not base64 or hex
        with pytest.raises(InvalidArgumentError, match="FACEPRINT_TEMPLATE_KEY must be a 256-bit key") as bad_info:
            Settings(template_key=bad)
        assert bad not in str(bad_info.value)
        monkeypatch.setenv("FACEPRINT_TEMPLATE_KEY", bad)
        with pytest.raises(InvalidArgumentError) as env_info:
            current_settings()
        assert bad not in str(env_info.value)
    monkeypatch.delenv("FACEPRINT_TEMPLATE_KEY")
    shown.append(repr(TemplateCipher(raw, b"salt")))
    for text_shown in shown:
        for form in (text, raw.hex(), base64.urlsafe_b64encode(raw).decode(), repr(raw)):
            assert form not in text_shown


def test_export_settings_hands_the_key_itself_to_worker_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEPRINT_TEMPLATE_KEY", "")  # restored after the test
    export_settings(Settings(template_key=KEY.hex()))
    assert os.environ["FACEPRINT_TEMPLATE_KEY"] == KEY.hex()  # not SecretStr's '**********'
    assert current_settings().template_key_bytes() == KEY


def test_an_empty_variable_means_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEPRINT_TEMPLATE_KEY", "")
    assert Settings().template_key is None and Settings().template_key_bytes() is None


# -- the service -------------------------------------------------------------------------------
def test_the_service_opens_its_collections_with_its_settings_key(tmp_path: Path) -> None:
    """create_app(settings): the key of the Settings passed in, not of the environment (unset here)."""
    settings = Settings(
        gallery=tmp_path / "gallery.db", keys=tmp_path / "keys.db", service_threads=1, template_key=KEY.hex()
    )
    with KeyStore(settings.keys_path()) as store:
        token = store.create("admin")[1]
    buf = io.BytesIO()
    PILImage.fromarray(solid_image((200, 30, 30), (100, 100))).save(buf, format="PNG")
    pipe = FacePipeline(detector=FakeDetector(), embedder=FakeEmbedder())
    with TestClient(create_app(settings, pipeline=pipe)) as client:
        r = client.post("/api/v1/recognition/faces", params={"subject": "ann"},
                        files={"file": ("a.png", buf.getvalue())}, headers={"x-api-key": token})
        assert r.status_code == 201, r.text
    with Gallery(settings.gallery_path(), template_key=KEY) as g:
        assert g.encrypted and g.n_templates == 1
        stored = g.templates("ann")[0].tobytes()
    assert _holders(settings.gallery_path(), stored) == []
    with pytest.raises(TemplateKeyError):
        Gallery(settings.gallery_path(), template_key=None)
