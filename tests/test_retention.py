"""Retention (FACEPRINT_RETENTION_DAYS): templates older than N days are purged, with a fake clock for
the times templates are stored and for "now"; by the library, at service start-up, and on the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import faceprint.gallery.sqlite as sqlite_backend
from faceprint.audit import AuditLog
from faceprint.cli import app as cli
from faceprint.errors import InvalidArgumentError
from faceprint.gallery import Gallery
from faceprint.keys import KeyStore
from faceprint.pipeline import FacePipeline
from faceprint.retention import purge_expired
from faceprint.server import create_app
from faceprint.settings import Settings
from fakes import FakeDetector, FakeEmbedder
from test_erasure import _holders

DAY0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self) -> None:
        self.now = DAY0

    def iso(self) -> str:
        return self.now.isoformat(timespec="milliseconds")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    c = Clock()
    monkeypatch.setattr(sqlite_backend, "_now", c.iso)  # the time the gallery stamps on what it stores
    yield c


def _fill(db: Path, clock: Clock) -> np.ndarray:
    v = np.eye(8, dtype=np.float32)
    with Gallery(db) as g:
        clock.now = DAY0
        g.enroll("ann", v[:2], fingerprint="fake@0")
        g.create("cy")  # a subject without templates yet
        clock.now = DAY0 + timedelta(days=10)
        g.add("ann", v[2], fingerprint="fake@0")
        g.enroll("bob", v[3], fingerprint="fake@0")
    return v


def test_purge_removes_templates_older_than_n_days_and_subjects_left_empty(tmp_path: Path, clock: Clock) -> None:
    db = tmp_path / "g.db"
    v = _fill(db, clock)
    with Gallery(db) as g:
        first = purge_expired(g, 30, now=DAY0 + timedelta(days=35))
        assert (first.templates_removed, first.subjects_removed, first.subjects_touched) == (2, (), ("ann",))
        assert first.cutoff.startswith("2026-03-06T09:00:00")
        assert g.get("ann").n_templates == 1 and g.get("bob").n_templates == 1 and "cy" in g
        assert _holders(db, v[0].tobytes()) == [] and _holders(db, v[2].tobytes()) != []  # erased, as any delete
        assert purge_expired(g, 30, now=DAY0 + timedelta(days=35)).templates_removed == 0  # idempotent
        second = purge_expired(g, 30, now=DAY0 + timedelta(days=41))
        assert second.subjects_removed == ("ann", "bob")
        assert [s.name for s in g.subjects()] == ["cy"]  # never enrolled: nothing to purge
        with pytest.raises(InvalidArgumentError, match="at least 1 day"):
            purge_expired(g, 0)


def test_the_service_purges_every_collection_at_start_up_and_audits_it(tmp_path: Path, clock: Clock) -> None:
    settings = Settings(gallery=tmp_path / "gallery.db", keys=tmp_path / "keys.db", service_threads=1,
                        retention_days=30)
    _fill(settings.gallery_path(), clock)
    (tmp_path / "collections").mkdir()
    _fill(tmp_path / "collections" / "shop.db", clock)
    with KeyStore(settings.keys_path()) as store:
        token = store.create("admin")[1]
    # the start-up purge's "now" is the real clock, months after the fake DAY0 + 10 days: everything expired
    pipe = FacePipeline(detector=FakeDetector(), embedder=FakeEmbedder())
    with TestClient(create_app(settings, pipeline=pipe)) as client:
        subjects = client.get("/api/v1/recognition/subjects", headers={"x-api-key": token}).json()
        assert subjects == {"subjects": ["cy"]}
    with Gallery(tmp_path / "collections" / "shop.db") as shop:
        assert [s.name for s in shop.subjects()] == ["cy"]
    with AuditLog(settings.audit_path()) as log:
        page = log.query(action="purge")
    assert sorted((e.collection, e.subject) for e in page.entries) == [
        ("default", "ann"), ("default", "bob"), ("shop", "ann"), ("shop", "bob")]
    assert all(e.detail["subject_removed"] for e in page.entries)


def test_faceprint_gallery_purge(tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "g.db"
    _fill(db, clock)
    runner = CliRunner()
    monkeypatch.delenv("FACEPRINT_RETENTION_DAYS", raising=False)
    missing = runner.invoke(cli, ["gallery", "purge", "--gallery", str(db)])
    assert missing.exit_code == 2 and "FACEPRINT_RETENTION_DAYS" in missing.output
    monkeypatch.setenv("FACEPRINT_RETENTION_DAYS", "0")
    bad = runner.invoke(cli, ["gallery", "purge", "--gallery", str(db)])
    assert bad.exit_code == 2 and ">= 1" in bad.output
    monkeypatch.setenv("FACEPRINT_RETENTION_DAYS", "36500")  # a century: nothing is that old
    kept = runner.invoke(cli, ["gallery", "purge", "--gallery", str(db), "--json"])
    assert kept.exit_code == 0, kept.output
    assert json.loads(kept.stdout)["templates_removed"] == 0
    done = runner.invoke(cli, ["gallery", "purge", "--gallery", str(db), "--days", "1", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["subjects_removed"] == ["ann", "bob"]


def test_two_purges_racing_on_the_same_file_both_succeed(tmp_path: Path, clock: Clock) -> None:
    # as two `--workers` processes purging at start-up: the second finds rows already gone
    db = tmp_path / "g.db"
    _fill(db, clock)
    with Gallery(db) as first, Gallery(db) as second:
        listed = second.examples()
        later = DAY0 + timedelta(days=45)
        assert purge_expired(first, 30, now=later).subjects_removed == ("ann", "bob")

        class Stale:  # `second`, whose first listing was read before `first` purged
            calls = 0

            def __getattr__(self, name: str) -> object:
                return getattr(second, name)

            def examples(self, *args: object, **kw: object) -> object:
                self.calls += 1
                return listed if self.calls == 1 else second.examples(*args, **kw)

        stale = Stale()
        done = purge_expired(stale, 30, now=later)  # type: ignore[arg-type]
        assert done.subjects_removed == () and [s.name for s in second.subjects()] == ["cy"]
        assert stale.calls == 2  # the delete found the rows gone and read the listing again
