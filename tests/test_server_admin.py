"""Keys and collections over HTTP (fake backends): a default admin creates a collection and keys of it,
the new key works on that gallery only, is listed without its token, revoked, audited; an admin of
another collection manages its own keys only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from faceprint.keys import KeyStore
from faceprint.pipeline import FacePipeline
from faceprint.server import create_app
from faceprint.settings import Settings
from fakes import FakeDetector, FakeEmbedder
from test_server import API, RED, add, h


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str], Path]]:
    settings = Settings(gallery=tmp_path / "g.db", keys=tmp_path / "k.db", service_threads=1)
    with KeyStore(settings.keys_path()) as store:
        tokens = {"admin": store.create("admin", label="ops")[1], "enroll": store.create("enroll")[1]}
        tokens["shop_admin"] = store.create("admin", collection="shop")[1]
    pipe = FacePipeline(detector=FakeDetector(), embedder=FakeEmbedder())
    with TestClient(create_app(settings, pipeline=pipe)) as client:
        yield client, tokens, tmp_path


def test_a_default_admin_creates_a_collection_and_its_keys(served: Any) -> None:
    client, tokens, tmp = served
    admin = h(tokens["admin"])
    made = client.post("/v1/collections", json={"name": "branch-2"}, headers=admin)
    assert made.status_code == 201, made.text
    assert made.json() == {"name": "branch-2", "subjects": 0, "templates": 0}
    assert (tmp / "collections" / "branch-2.db").is_file()
    assert client.post("/v1/collections", json={"name": "branch-2"}, headers=admin).status_code == 409
    for bad in ("", "Has Space", "../up", "x" * 65, "[red]x"):
        assert client.post("/v1/collections", json={"name": bad}, headers=admin).status_code == 400, bad

    r = client.post("/v1/keys", json={"role": "enroll", "collection": "branch-2", "label": "door [1]"}, headers=admin)
    assert r.status_code == 201, r.text
    new = r.json()
    token = new.pop("key")
    assert token.startswith(f"fp_{new['id']}_") and new["role"] == "enroll" and new["collection"] == "branch-2"
    assert new["label"] == "door [1]" and new["revoked_at"] is None
    # the new key enrolls into its own collection, not the default one
    assert add(client, token, "ann", RED).status_code == 201
    assert client.get(f"{API}/recognition/subjects", headers=h(token)).json() == {"subjects": ["ann"]}
    assert client.get(f"{API}/recognition/subjects", headers=admin).json() == {"subjects": []}
    sizes = {c["name"]: c for c in client.get("/v1/collections", headers=admin).json()["collections"]}
    assert sizes["branch-2"]["subjects"] == 1 and sizes["branch-2"]["templates"] == 1 and "default" in sizes

    listed = client.get("/v1/keys", headers=admin)
    assert listed.status_code == 200
    assert token not in listed.text and token.split("_", 2)[2] not in listed.text
    rows = {k["id"]: k for k in listed.json()["keys"]}
    assert rows[new["id"]]["last_used_at"] is not None  # it was used just now
    only = client.get("/v1/keys", params={"collection": "branch-2"}, headers=admin).json()["keys"]
    assert [k["id"] for k in only] == [new["id"]]

    gone = client.delete(f"/v1/keys/{new['id']}", headers=admin)
    assert gone.status_code == 200 and gone.json()["revoked_at"] is not None
    assert client.get(f"{API}/recognition/subjects", headers=h(token)).status_code == 401
    assert client.delete("/v1/keys/ffffffffffff", headers=admin).status_code == 404

    trail = client.get("/v1/audit", headers=admin).json()["entries"]
    actions = [e["action"] for e in trail]
    assert {"create", "key-create", "key-revoke"} <= set(actions)
    assert token not in str(trail) and token.split("_", 2)[2] not in str(trail)


def test_keys_of_a_missing_collection_or_role_are_refused(served: Any) -> None:
    client, tokens, _ = served
    admin = h(tokens["admin"])
    for body, status in (({"role": "enroll", "collection": "nowhere"}, 404), ({"role": "root"}, 400),
                         ({"role": "enroll", "collection": "../x"}, 400), ({}, 400),
                         ({"role": "enroll", "label": "x" * 201}, 400)):
        r = client.post("/v1/keys", json=body, headers=admin)
        assert r.status_code == status, (body, r.text)
        assert "message" in r.json()


def test_an_admin_of_another_collection_manages_its_own_keys_only(served: Any) -> None:
    client, tokens, _ = served
    shop = h(tokens["shop_admin"])
    own = client.post("/v1/keys", json={"role": "recognize"}, headers=shop)
    assert own.status_code == 201 and own.json()["collection"] == "shop"
    assert client.post("/v1/keys", json={"role": "admin", "collection": "default"}, headers=shop).status_code == 403
    assert client.post("/v1/collections", json={"name": "mine"}, headers=shop).status_code == 403
    seen = client.get("/v1/keys", headers=shop).json()["keys"]
    assert {k["collection"] for k in seen} == {"shop"} and len(seen) == 2
    default_ids = [k["id"] for k in client.get("/v1/keys", headers=h(tokens["admin"])).json()["keys"]
                   if k["collection"] == "default"]
    for key_id in default_ids:  # not found to it (it cannot learn which ids exist elsewhere)
        assert client.delete(f"/v1/keys/{key_id}", headers=shop).status_code == 404
    assert [c["name"] for c in client.get("/v1/collections", headers=shop).json()["collections"]] == ["shop"]
    assert client.get("/v1/keys", headers=h(tokens["enroll"])).status_code == 403
