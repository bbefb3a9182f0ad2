"""The audit trail: append-only (triggers refuse UPDATE / DELETE), filtered and paged by one library
function under ``GET /v1/audit`` and ``faceprint audit``; the service writes an entry per
state-changing and recognition request with the key id and the request id it echoes."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from faceprint.audit import AuditLog, parse_time
from faceprint.cli import app as cli
from faceprint.errors import InvalidArgumentError
from faceprint.keys import KeyStore
from faceprint.pipeline import FacePipeline
from faceprint.server import create_app
from faceprint.settings import Settings
from fakes import FakeDetector, FakeEmbedder
from test_server import BLUE, GREEN, RED, add, h

API = "/api/v1"
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


def test_record_and_query_with_filters_paging_and_times(tmp_path: Path) -> None:
    with AuditLog(tmp_path / "audit.db") as log:
        for i, (action, subject) in enumerate([("enroll", "ann"), ("search", None), ("delete", "ann"),
                                               ("enroll", "bob"), ("verify", "bob")]):
            log.record(action, key_id="k1" if i % 2 else "k2", collection="default", subject=subject,
                       request_id=f"r{i}", status=200, detail={"i": i}, at=T0 + timedelta(minutes=i))
        log.record("enroll", key_id="k1", collection="other", subject="ann", at=T0)
        assert log.query().total == 6
        ann = log.query(subject="ann", collection="default")
        assert [(e.action, e.request_id) for e in ann.entries] == [("enroll", "r0"), ("delete", "r2")]
        assert log.query(action="enroll").total == 3 and log.query(key_id="k1", collection="default").total == 2
        window = log.query(since=T0 + timedelta(minutes=1), until="2026-01-01T12:03:00Z")
        assert [e.request_id for e in window.entries] == ["r1", "r2"]  # since inclusive, until exclusive
        naive = log.query(since="2026-01-01T12:04:00")  # naive: UTC
        assert [e.request_id for e in naive.entries] == ["r4"]
        page = log.query(collection="default", offset=2, limit=2)
        assert page.total == 5 and [e.detail["i"] for e in page.entries] == [2, 3]
        with pytest.raises(InvalidArgumentError, match="unknown audit action"):
            log.record("shred")
        with pytest.raises(InvalidArgumentError, match="ISO 8601"):
            log.query(since="yesterday")
        with pytest.raises(InvalidArgumentError, match="limit"):
            log.query(limit=0)
    assert parse_time("2026-01-01T13:00:00+01:00") == "2026-01-01T12:00:00.000+00:00"


def test_the_audit_table_refuses_update_and_delete_from_any_connection(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    with AuditLog(path) as log:
        log.record("delete", key_id="k1", subject="ann")
    raw = sqlite3.connect(path)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only: no UPDATE"):
            raw.execute("UPDATE audit SET subject = 'someone else'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only: no DELETE"):
            raw.execute("DELETE FROM audit")
        assert raw.execute("SELECT subject FROM audit").fetchall() == [("ann",)]
    finally:
        raw.close()
    assert not [n for n in dir(AuditLog) if n.startswith(("update", "delete", "remove", "purge", "clear"))]
    with AuditLog(path) as log:  # reopening keeps the rows and the triggers
        assert log.query().total == 1


# ---------------------------------------------------------------- through the service


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str], Settings]]:
    settings = Settings(gallery=tmp_path / "gallery.db", keys=tmp_path / "keys.db", service_threads=1)
    with KeyStore(settings.keys_path()) as store:
        tokens = {role: store.create(role)[1] for role in ("recognize", "enroll", "admin")}
        tokens["other"] = store.create("admin", collection="other")[1]
    pipe = FacePipeline(detector=FakeDetector(), embedder=FakeEmbedder())
    with TestClient(create_app(settings, pipeline=pipe)) as client:
        yield client, tokens, settings


def _key_id(token: str) -> str:
    return token.split("_", 2)[1]


def test_every_response_carries_a_request_id_echoed_or_generated(served: Any) -> None:
    client, tokens, _ = served
    mine = client.get("/health", headers={"x-request-id": "abc-123"})
    assert mine.headers["x-request-id"] == "abc-123"
    new = client.get("/health").headers["x-request-id"]
    assert len(new) == 32 and new != client.get("/health").headers["x-request-id"]
    hostile = client.get("/health", headers={"x-request-id": "a b\x7f" + "x" * 200})
    assert hostile.headers["x-request-id"] not in ("", "a b\x7f" + "x" * 200)
    assert client.get("/ready").status_code == 401 and client.get("/ready").headers["x-request-id"]
    too_big = client.post(f"{API}/recognition/recognize", content=b"\0" * 11_000_000, headers=h(tokens["enroll"]))
    assert too_big.status_code == 413 and too_big.headers["x-request-id"]


def test_the_service_audits_writes_and_recognitions_with_key_and_request_id(served: Any) -> None:
    client, tokens, settings = served
    enroll, admin = h(tokens["enroll"]), h(tokens["admin"])
    r = client.post(f"{API}/recognition/faces", params={"subject": "ann"}, files={"file": ("a.png", RED)},
                    headers={**enroll, "x-request-id": "req-enroll-1"})
    assert r.status_code == 201 and r.headers["x-request-id"] == "req-enroll-1"
    image_id = r.json()["image_id"]
    add(client, tokens["enroll"], "bob", GREEN)
    assert client.post(f"{API}/recognition/subjects", json={"subject": "cy"}, headers=enroll).status_code == 201
    rec = client.post(f"{API}/recognition/recognize", files={"file": ("p.png", RED)}, headers=h(tokens["recognize"]))
    assert rec.status_code == 200
    assert client.delete(f"{API}/recognition/subjects/nobody", headers=enroll).status_code == 404
    assert client.delete(f"{API}/recognition/subjects", headers=enroll).status_code == 403  # needs admin
    assert client.delete(f"{API}/recognition/subjects/bob", headers={"x-api-key": "fp_nope"}).status_code == 401
    assert client.delete(f"{API}/recognition/faces/{image_id}", headers=enroll).status_code == 200
    client.get(f"{API}/recognition/subjects", headers=enroll)  # a list: not audited

    body = client.get("/v1/audit", headers=admin).json()
    rows = [(e["action"], e["subject"], e["status"]) for e in body["entries"]]
    assert rows == [
        ("enroll", "ann", 201), ("enroll", "bob", 201), ("create", "cy", 201), ("search", None, 200),
        ("delete", "nobody", 404), ("delete", None, 403), ("delete", "ann", 200),
    ]  # the 401 has no key to name: not an entry
    first = body["entries"][0]
    assert first["key_id"] == _key_id(tokens["enroll"]) and first["request_id"] == "req-enroll-1"
    assert first["collection"] == "default" and first["detail"]["image_id"] == image_id
    search = body["entries"][3]
    assert search["key_id"] == _key_id(tokens["recognize"]) and search["detail"]["matches"][0][0] == "ann"
    assert search["request_id"] == rec.headers["x-request-id"]

    deletes = client.get("/v1/audit", params={"action": "delete", "subject": "ann"}, headers=admin).json()
    assert [e["detail"]["image_ids"] for e in deletes["entries"]] == [[image_id]]
    paged = client.get("/v1/audit", params={"size": 3, "page": 2}, headers=admin).json()
    assert paged["total_elements"] == 7 and paged["total_pages"] == 3 and len(paged["entries"]) == 1
    later = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    assert client.get("/v1/audit", params={"since": later}, headers=admin).json()["total_elements"] == 0
    assert client.get("/v1/audit", params={"until": later}, headers=admin).json()["total_elements"] == 7
    # an admin of another collection sees only its own collection's entries
    assert client.get("/v1/audit", headers=h(tokens["other"])).json()["total_elements"] == 0
    for bad in ({"action": "shred"}, {"since": "yesterday"}, {"size": 0}):
        r = client.get("/v1/audit", params=bad, headers=admin)
        assert r.status_code == 400 and r.json()["message"], bad
    assert client.get("/v1/audit", headers=enroll).status_code == 403
    add(client, tokens["enroll"], "dee", BLUE)
    # the same entries on the command line, from the file the service writes
    done = CliRunner().invoke(cli, ["audit", "--audit", str(settings.audit_path()), "--action", "enroll", "--json"])
    assert done.exit_code == 0, done.output
    listed = json.loads(done.stdout)
    assert listed["total"] == 3 and [e["subject"] for e in listed["entries"]] == ["ann", "bob", "dee"]


def test_faceprint_keys_and_audit_on_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEPRINT_GALLERY", str(tmp_path / "gallery.db"))
    runner = CliRunner()
    made = runner.invoke(cli, ["keys", "create", "--role", "enroll", "--collection", "shop", "--json"])
    assert made.exit_code == 0, made.output
    key_id = json.loads(made.stdout)["id"]
    assert runner.invoke(cli, ["keys", "revoke", key_id]).exit_code == 0
    shown = runner.invoke(cli, ["audit"])
    assert shown.exit_code == 0 and "key-create" in shown.stdout and "key-revoke" in shown.stdout
    as_json = json.loads(runner.invoke(cli, ["audit", "--json", "--action", "key-revoke"]).stdout)
    assert as_json["total"] == 1 and as_json["entries"][0]["detail"] == {"key": key_id}
    assert as_json["entries"][0]["collection"] == "shop" and as_json["entries"][0]["key_id"] is None
    assert (tmp_path / "audit.db").is_file()
    bad = runner.invoke(cli, ["audit", "--since", "soon"])
    assert bad.exit_code == 2 and "ISO 8601" in bad.output
    missing = runner.invoke(cli, ["audit", "--audit", str(tmp_path / "none.db")])
    assert missing.exit_code == 2 and "no audit log" in missing.output


def test_the_audit_entry_is_committed_before_the_answer_starts(tmp_path: Path) -> None:
    """An acknowledged delete always has its row: the entry is on disk when the first byte leaves."""
    settings = Settings(gallery=tmp_path / "gallery.db", keys=tmp_path / "keys.db", service_threads=1)
    with KeyStore(settings.keys_path()) as store:
        token = store.create("admin")[1]
    app = create_app(settings, pipeline=FacePipeline(detector=FakeDetector(), embedder=FakeEmbedder()))
    seen: dict[str, list[tuple[str, str | None]]] = {}

    async def outer(scope: Any, receive: Any, send: Any) -> None:
        async def watching(message: Any) -> None:
            if message["type"] == "http.response.start" and scope["method"] == "DELETE":
                with AuditLog(settings.audit_path()) as log:  # another connection: only committed rows
                    seen[scope["path"]] = [(e.action, e.subject) for e in log.query().entries]
            await send(message)

        await app(scope, receive, watching)

    with TestClient(outer) as client:
        add(client, token, "ann", RED)
        assert client.delete(f"{API}/recognition/subjects/ann", headers=h(token)).status_code == 200
    assert seen[f"{API}/recognition/subjects/ann"] == [("enroll", "ann"), ("delete", "ann")]
