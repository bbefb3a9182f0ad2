"""``POST /v1/enroll`` (per-photo results, all or nothing), the challenge routes' bookkeeping and
``GET /v1/models``, on fake backends (fast); the challenge on a real clip is in test_server_challenge.py."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from faceprint.keys import KeyStore
from faceprint.liveness import Challenge, issue_challenge
from faceprint.pipeline import FacePipeline
from faceprint.server import create_app
from faceprint.server.state import Challenges
from faceprint.settings import Settings
from fakes import FakeDetector, FakeEmbedder
from test_server import BLUE, GREEN, RED, h, png
from test_server_v1 import _FakePassive


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings = Settings(gallery=tmp_path / "g.db", keys=tmp_path / "k.db", service_threads=1, max_enroll_photos=3)
    with KeyStore(settings.keys_path()) as store:
        tokens = {role: store.create(role)[1] for role in ("recognize", "enroll", "admin")}
        tokens["other"] = store.create("admin", collection="other")[1]
    pipe = FacePipeline(detector=FakeDetector(), embedder=FakeEmbedder(), passive_checker=_FakePassive())
    with TestClient(create_app(settings, pipeline=pipe)) as client:
        yield client, tokens


def _subjects(client: TestClient, token: str) -> list[str]:
    return list(client.get("/api/v1/recognition/subjects", headers=h(token)).json()["subjects"])


def test_enroll_reports_every_photo_and_writes_all_or_nothing(served: Any) -> None:
    client, tokens = served
    enroll = h(tokens["enroll"])
    r = client.post("/v1/enroll", params={"name": "ann"}, headers=enroll,
                    files=[("files", ("front [1].png", RED)), ("files", ("side.png", png((205, 25, 25))))])
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["subject"] == "ann" and body["templates"] == 2 and body["added"] == 2 and len(body["image_ids"]) == 2
    assert [p["source"] for p in body["photos"]] == ["front [1].png", "side.png"]  # the names, literally
    assert all(p["usable"] and p["box"] == [10.0, 10.0, 90.0, 90.0] and p["error"] is None for p in body["photos"])
    assert body["model"] == "fake"
    listed = client.get("/api/v1/recognition/faces", params={"subject": "ann"}, headers=enroll).json()
    assert sorted(f["image_id"] for f in listed["faces"]) == sorted(body["image_ids"])

    # one bad photo among good ones: 400, each photo explained, nothing written
    bad = client.post("/v1/enroll", params={"name": "bob"}, headers=enroll,
                      files=[("files", ("g.png", GREEN)), ("files", ("broken.jpg", b"not an image")),
                             ("files", ("b.png", BLUE))])
    assert bad.status_code == 400, bad.text
    photos = bad.json()["photos"]
    assert [p["usable"] for p in photos] == [True, False, True]
    assert photos[1]["error_type"] == "InvalidImageError" and "broken.jpg" in photos[1]["error"]
    assert "1 of 3" in bad.json()["message"]
    assert _subjects(client, tokens["enroll"]) == ["ann"]

    # the same photo again is left out, not stored twice (JSON base64 list this time)
    again = client.post("/v1/enroll", params={"name": "ann"}, headers=enroll,
                        json={"files": [base64.b64encode(RED).decode(), base64.b64encode(BLUE).decode()]})
    assert again.status_code == 201, again.text
    assert again.json()["added"] == 1 and again.json()["templates"] == 3
    assert [d["source"] for d in again.json()["duplicates"]] == ["files[0]"]


def test_enroll_with_passive_liveness_rejects_a_spoof_and_writes_nothing(served: Any) -> None:
    client, tokens = served
    r = client.post("/v1/enroll", params={"name": "eve", "liveness": "passive"}, headers=h(tokens["enroll"]),
                    files=[("files", ("live.png", RED)), ("files", ("print.png", GREEN))])
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["decision"] == "spoof"
    assert [p["liveness"]["verdict"] for p in body["photos"]] == ["live", "spoof"]
    assert [p["usable"] for p in body["photos"]] == [True, False]
    assert _subjects(client, tokens["enroll"]) == []
    ok = client.post("/v1/enroll", params={"name": "eve", "liveness": "passive"}, headers=h(tokens["enroll"]),
                     files=[("files", ("live.png", RED))])
    assert ok.status_code == 201 and ok.json()["photos"][0]["liveness"]["verdict"] == "live"


@pytest.mark.parametrize(
    ("kwargs", "status", "words"),
    [
        ({"files": [("files", (f"{i}.png", RED)) for i in range(4)]}, 400, "at most 3"),  # FACEPRINT_MAX_ENROLL_PHOTOS
        ({"json": {"files": [base64.b64encode(RED).decode()] * 4}}, 400, "at most 3"),
        ({"json": {"files": []}}, 400, "missing field"),
        ({"json": {"files": ["%%%"]}}, 400, "base64"),
        ({"json": {"file": base64.b64encode(RED).decode()}}, 400, "files"),
        ({"files": [("file", ("a.png", RED))]}, 400, "missing field"),
        ({"data": {"files": "text"}}, 415, "content type"),  # a form without files is urlencoded
        ({"content": b"x", "headers": {"content-type": "image/png"}}, 415, "content type"),
    ],
)
def test_enroll_bad_requests_are_4xx_json(served: Any, kwargs: dict[str, Any], status: int, words: str) -> None:
    client, tokens = served
    headers = {**h(tokens["enroll"]), **kwargs.pop("headers", {})}
    r = client.post("/v1/enroll", params={"name": "ann"}, headers=headers, **kwargs)
    assert r.status_code == status, r.text
    assert words in r.json()["message"]
    assert _subjects(client, tokens["enroll"]) == []


def test_enroll_name_and_select_are_validated(served: Any) -> None:
    client, tokens = served
    for params in ({}, {"name": ""}, {"name": "x" * 201}, {"name": "ann", "select": "all"},
                   {"name": "ann", "liveness": "active"}):
        r = client.post("/v1/enroll", params=params, headers=h(tokens["enroll"]), files=[("files", ("a.png", RED))])
        assert r.status_code == 400, (params, r.text)
    bad_name = client.post("/v1/enroll", params={"name": "a\x00b"}, headers=h(tokens["enroll"]),
                           files=[("files", ("a.png", RED))])
    assert bad_name.status_code == 400, bad_name.text


def test_challenge_is_issued_to_one_key_and_answered_once(served: Any) -> None:
    client, tokens = served
    r = client.post("/v1/challenge", params={"actions": 3, "time_limit_s": 12}, headers=h(tokens["recognize"]))
    assert r.status_code == 201, r.text
    c = r.json()
    assert len(c["actions"]) == 3 and set(c["actions"]) <= {"blink", "turn_left", "turn_right"}
    assert c["time_limit_s"] == 12 and c["expires_in_s"] == 120 and ", then " in c["instructions"]
    assert len(c["id"]) >= 20
    # another key (even an admin of the same collection) cannot answer it, and does not use it up
    other = client.post(f"/v1/challenge/{c['id']}", headers=h(tokens["admin"]), files={"video": ("v.webm", b"x")})
    assert other.status_code == 404
    answer = client.post(f"/v1/challenge/{c['id']}", headers=h(tokens["recognize"]),
                         files={"video": ("v.webm", b"not a video")})
    assert answer.status_code == 400 and "video" in answer.json()["message"], answer.text
    again = client.post(f"/v1/challenge/{c['id']}", headers=h(tokens["recognize"]), files={"video": ("v", b"x")})
    assert again.status_code == 404 and "already answered" in again.json()["message"]
    for params in ({"actions": 0}, {"actions": 6}, {"time_limit_s": 0}, {"time_limit_s": 31}):
        assert client.post("/v1/challenge", params=params, headers=h(tokens["recognize"])).status_code == 400


def test_challenge_answer_needs_a_video_part(served: Any) -> None:
    client, tokens = served
    for kwargs in ({"files": {"file": ("a.png", RED)}}, {"json": {"video": "AAAA"}}, {"data": {"video": "text"}}):
        cid = client.post("/v1/challenge", headers=h(tokens["recognize"])).json()["id"]
        r = client.post(f"/v1/challenge/{cid}", headers=h(tokens["recognize"]), **kwargs)
        assert r.status_code in (400, 415), (kwargs, r.text)


def test_challenges_expire_are_bounded_and_bound_to_their_key() -> None:
    store = Challenges(ttl_s=0.05, most=3)
    c = Challenge(("blink",))
    first = store.issue(c, "k1")
    assert store.take(first.id, "k2") is None and store.take(first.id, "k1") == first
    assert store.take(first.id, "k1") is None  # once
    late = store.issue(c, "k1")
    time.sleep(0.08)
    assert store.take(late.id, "k1") is None and len(store) == 0
    ids = [store.issue(c, "k1").id for _ in range(5)]
    assert len(store) == 3 and store.take(ids[0], "k1") is None and store.take(ids[-1], "k1") is not None


def test_issue_challenge_draws_from_the_allowed_actions() -> None:
    for seed in range(20):
        ch = issue_challenge(4, rng=seed, actions=("turn_left", "turn_right"))
        assert set(ch.actions) <= {"turn_left", "turn_right"}
        assert all(a != b for a, b in zip(ch.actions, ch.actions[1:]))
    assert issue_challenge(3, actions=("blink",)).actions == ("blink",) * 3
    with pytest.raises(ValueError, match="actions must be"):
        issue_challenge(2, actions=("smile",))
    with pytest.raises(ValueError, match="FACEPRINT_CHALLENGE_ACTIONS"):
        Settings(challenge_actions="blink,nod")
    assert Settings(challenge_actions="turn_left, turn_right").challenge_actions == ("turn_left", "turn_right")


def test_models_names_what_the_service_embeds_with(served: Any) -> None:
    client, tokens = served
    r = client.get("/v1/models", headers=h(tokens["recognize"]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["serving"]["model"] == "fake" and body["serving"]["fingerprint"] == "fake@0"
    assert body["serving"]["detector"] == "FakeDetector"
    rows = {m["model"]: m for m in body["models"]}
    assert {"yunet", "sface"} <= set(rows)
    assert rows["sface"]["role"] == "embedder" and rows["sface"]["licence"] and len(rows["sface"]["sha256"]) == 64
    assert rows["sface"]["thresholds"]["1e-3"] > 0
