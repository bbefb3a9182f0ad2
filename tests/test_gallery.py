"""Tests for faceprint.gallery: store round trips, transactions, search maths, index."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from faceprint.errors import (
    EmbedderMismatchError,
    GalleryError,
    InvalidEmbeddingError,
    InvalidSubjectError,
    SubjectNotFoundError,
)
from faceprint.gallery import INDEXES, ExactIndex, Gallery, VectorIndex, make_index
from faceprint.gallery.base import rank_hits
from faceprint.types import Match

FP = "test-embedder-v1"
DIM = 16


def unit(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    x = rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def snapshot(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, read through a separate connection."""
    conn = sqlite3.connect(path)
    try:
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
            for table in ("meta", "subjects", "templates")
        }
    finally:
        conn.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "gallery.db"


@pytest.fixture
def gallery(db: Path):
    with Gallery(db) as g:
        yield g


@pytest.fixture
def populated(gallery: Gallery) -> tuple[Gallery, dict[str, np.ndarray]]:
    """30 subjects with 1-4 random templates each (seeded)."""
    rng = np.random.default_rng(0)
    data = {}
    for i in range(30):
        templates = unit(rng, int(rng.integers(1, 5)))
        data[f"subject-{i:02d}"] = templates
        gallery.enroll(f"subject-{i:02d}", templates, fingerprint=FP)
    return gallery, data


def brute_force(query: np.ndarray, data: dict[str, np.ndarray]) -> list[tuple[str, float]]:
    scores = []
    for name, templates in data.items():
        best = max(float(np.dot(query.astype(np.float64), t.astype(np.float64))) for t in templates)
        scores.append((name, best))
    return sorted(scores, key=lambda item: -item[1])


def assert_same_matches(got: list[Match], want: list[Match]) -> None:
    """Equal up to float32 rounding (a batched matrix product may differ from a single row's)."""
    assert [(m.subject_id, m.name, m.same, m.threshold) for m in got] == [
        (m.subject_id, m.name, m.same, m.threshold) for m in want
    ]
    np.testing.assert_allclose([m.similarity for m in got], [m.similarity for m in want], atol=1e-6)
    np.testing.assert_allclose([m.distance for m in got], [m.distance for m in want], atol=2e-6)


# ------------------------------------------------------------------ store basics


def test_empty_gallery(gallery: Gallery) -> None:
    assert len(gallery) == 0
    assert gallery.n_templates == 0
    assert gallery.fingerprint is None and gallery.dim is None
    assert gallery.subjects() == []
    q = unit(np.random.default_rng(1), 1)[0]
    assert gallery.search(q, threshold=0.5, fingerprint=FP) == []
    assert gallery.search_many(np.stack([q, q]), threshold=0.5, fingerprint=FP) == [[], []]


def test_enroll_get_contains(gallery: Gallery) -> None:
    e = unit(np.random.default_rng(2), 2)
    subject = gallery.enroll("  alice ", e, fingerprint=FP, sources=["a.jpg", "b.jpg"], metadata={"x": 1})
    assert subject.name == "alice" and subject.n_templates == 2 and subject.metadata == {"x": 1}
    assert subject.created_at
    assert gallery.get("alice") == subject == gallery.get(subject.id)
    assert "alice" in gallery and subject.id in gallery and "bob" not in gallery and 3.5 not in gallery
    assert gallery.fingerprint == FP and gallery.dim == DIM
    with pytest.raises(SubjectNotFoundError, match="bob"):
        gallery.get("bob")
    with pytest.raises(SubjectNotFoundError):
        gallery.get(999)
    with pytest.raises(KeyError):  # SubjectNotFoundError is also a KeyError
        gallery.templates("bob")


def test_enroll_appends_templates(gallery: Gallery) -> None:
    rng = np.random.default_rng(3)
    first, more = unit(rng, 1), unit(rng, 2)
    a = gallery.enroll("alice", first[0], fingerprint=FP, metadata={"team": "red"})
    b = gallery.enroll("alice", more, fingerprint=FP, metadata={"desk": 4})
    assert b.id == a.id and b.n_templates == 3 and b.created_at == a.created_at
    assert b.metadata == {"team": "red", "desk": 4}
    assert len(gallery) == 1 and gallery.n_templates == 3
    stored = gallery.templates("alice")
    assert stored.dtype == np.float32 and stored.shape == (3, DIM)
    np.testing.assert_array_equal(stored, np.vstack([first, more]))


def test_round_trip_across_reopen(db: Path) -> None:
    rng = np.random.default_rng(4)
    queries = unit(rng, 5)
    with Gallery(db) as g:
        for i in range(6):
            g.enroll(f"s{i}", unit(rng, 1 + i % 3), fingerprint=FP, metadata={"i": i})
        before = g.search_many(queries, k=3, threshold=0.2, fingerprint=FP)
        subjects = g.subjects()
        templates = g.templates("s4")
    with Gallery(db) as g:
        assert g.subjects() == subjects
        assert g.fingerprint == FP and g.dim == DIM
        np.testing.assert_array_equal(g.templates("s4"), templates)
        assert g.search_many(queries, k=3, threshold=0.2, fingerprint=FP) == before
        for query, want in zip(queries, before, strict=True):
            assert_same_matches(g.search(query, k=3, threshold=0.2, fingerprint=FP), want)


def test_sqlite_settings_and_schema(db: Path) -> None:
    Gallery(db).close()
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"meta", "subjects", "templates", "changes"} <= tables
        assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("2",)
        columns = {r[1] for r in conn.execute("PRAGMA table_info(templates)")}
        assert "content_sha256" in columns
    finally:
        conn.close()


def test_closed_gallery_raises(db: Path) -> None:
    g = Gallery(db)
    g.close()
    g.close()  # idempotent
    with pytest.raises(GalleryError, match="closed"):
        len(g)


def test_in_memory_gallery() -> None:
    with Gallery(":memory:") as g:
        g.enroll("a", unit(np.random.default_rng(5), 2), fingerprint=FP)
        assert g.path == ":memory:" and len(g) == 1


# ------------------------------------------------------------------ rename / remove


def test_rename(populated: tuple[Gallery, dict[str, np.ndarray]]) -> None:
    gallery, data = populated
    query = data["subject-07"][0]
    assert gallery.search(query, k=1, threshold=0.5, fingerprint=FP)[0].name == "subject-07"  # builds index
    old = gallery.get("subject-07")
    renamed = gallery.rename("subject-07", "zed")
    assert renamed.id == old.id and renamed.name == "zed" and renamed.n_templates == old.n_templates
    assert "subject-07" not in gallery and gallery.get("zed") == renamed
    assert gallery.search(query, k=1, threshold=0.5, fingerprint=FP)[0].name == "zed"
    assert gallery.rename(old.id, "zed").name == "zed"  # by id, to the same name: no-op
    assert [s.name for s in gallery.subjects()][-1] == "zed"  # ordered by name


def test_rename_collision(populated: tuple[Gallery, dict[str, np.ndarray]]) -> None:
    gallery, _ = populated
    before = gallery.subjects()
    with pytest.raises(GalleryError, match="already"):
        gallery.rename("subject-01", "subject-02")
    with pytest.raises(InvalidSubjectError):
        gallery.rename("subject-01", "   ")
    with pytest.raises(SubjectNotFoundError):
        gallery.rename("nobody", "somebody")
    assert gallery.subjects() == before


def test_remove_cascades(db: Path, populated: tuple[Gallery, dict[str, np.ndarray]]) -> None:
    gallery, data = populated
    query = data["subject-05"][0]
    assert gallery.search(query, k=1, threshold=0.5, fingerprint=FP)[0].name == "subject-05"
    sid = gallery.get("subject-05").id
    n_before = gallery.n_templates
    erased = gallery.remove("subject-05")
    assert erased == len(data["subject-05"])
    assert gallery.n_templates == n_before - erased and len(gallery) == 29
    assert "subject-05" not in gallery
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT COUNT(*) FROM templates WHERE subject_id = ?", (sid,)).fetchone()[0] == 0
    finally:
        conn.close()
    names = [m.name for m in gallery.search(query, k=30, threshold=0.5, fingerprint=FP)]
    assert "subject-05" not in names and len(names) == 29
    with pytest.raises(SubjectNotFoundError):
        gallery.remove("subject-05")


def test_removing_last_subject_forgets_embedder(gallery: Gallery) -> None:
    rng = np.random.default_rng(6)
    gallery.enroll("a", unit(rng, 1), fingerprint=FP)
    assert gallery.remove("a") == 1
    assert gallery.fingerprint is None and gallery.dim is None
    assert gallery.search(unit(rng, 1)[0], threshold=0.5, fingerprint=FP) == []
    gallery.enroll("b", unit(rng, 1, dim=8), fingerprint="other-model")
    assert gallery.fingerprint == "other-model" and gallery.dim == 8


# ------------------------------------------------------------------ embedder checks


def test_fingerprint_mismatch_refused(db: Path, gallery: Gallery) -> None:
    rng = np.random.default_rng(7)
    gallery.enroll("alice", unit(rng, 1), fingerprint=FP)
    before = snapshot(db)
    with pytest.raises(EmbedderMismatchError, match=f"{FP}.*other-model"):
        gallery.enroll("bob", unit(rng, 1), fingerprint="other-model")
    with pytest.raises(EmbedderMismatchError, match=f"{FP}.*other-model"):
        gallery.enroll("alice", unit(rng, 1), fingerprint="other-model")
    with pytest.raises(EmbedderMismatchError, match=f"{FP}.*other-model"):
        gallery.search(unit(rng, 1)[0], threshold=0.5, fingerprint="other-model")
    with pytest.raises(EmbedderMismatchError):
        gallery.search_many(unit(rng, 2), threshold=0.5, fingerprint="other-model")
    assert snapshot(db) == before


def test_dim_mismatch_refused(db: Path, gallery: Gallery) -> None:
    rng = np.random.default_rng(8)
    gallery.enroll("alice", unit(rng, 1), fingerprint=FP)
    before = snapshot(db)
    with pytest.raises(EmbedderMismatchError, match="16-d.*8-d"):
        gallery.enroll("bob", unit(rng, 1, dim=8), fingerprint=FP)
    with pytest.raises(EmbedderMismatchError):
        gallery.search(unit(rng, 1, dim=8)[0], threshold=0.5, fingerprint=FP)
    assert snapshot(db) == before


# ------------------------------------------------------------------ validation & transactions


def _bad_batches() -> dict[str, Any]:
    good = unit(np.random.default_rng(9), 3)
    nan = good.copy()
    nan[2, 0] = np.nan
    inf = good.copy()
    inf[1, 3] = np.inf
    return {
        "nan": nan,
        "inf": inf,
        "3d": good[None],
        "not-unit": np.vstack([good[:2], 2 * good[2:]]),
        "zero": np.zeros((1, DIM), dtype=np.float32),
        "empty-rows": np.empty((0, DIM), dtype=np.float32),
        "empty-list": [],
        "scalar": np.float32(1.0),
        "int-dtype": np.eye(DIM, dtype=np.int64)[:2],
        "ragged": [[1.0, 0.0], [1.0]],
    }


@pytest.mark.parametrize("case", sorted(_bad_batches()))
def test_invalid_embeddings_leave_db_unchanged(db: Path, gallery: Gallery, case: str) -> None:
    gallery.enroll("alice", unit(np.random.default_rng(10), 2), fingerprint=FP)
    before = snapshot(db)
    with pytest.raises(InvalidEmbeddingError, match="expected"):
        gallery.enroll("bob", _bad_batches()[case], fingerprint=FP)
    with pytest.raises(InvalidEmbeddingError):
        gallery.enroll("alice", _bad_batches()[case], fingerprint=FP)
    assert snapshot(db) == before
    assert len(gallery) == 1 and gallery.n_templates == 2


def test_not_unit_norm_message_says_expected_and_got(gallery: Gallery) -> None:
    with pytest.raises(InvalidEmbeddingError, match=r"expected unit-norm.*got norm 2"):
        gallery.enroll("a", np.full(4, 1.0), fingerprint=FP)
    gallery.enroll("a", np.array([1.0, 0.0005, 0.0, 0.0]), fingerprint=FP)  # within 1e-3


@pytest.mark.parametrize("name", ["", "   ", "x" * 201, 42, None])
def test_invalid_names(gallery: Gallery, name: Any) -> None:
    with pytest.raises(InvalidSubjectError):
        gallery.enroll(name, unit(np.random.default_rng(11), 1), fingerprint=FP)
    assert len(gallery) == 0 and gallery.fingerprint is None


def test_invalid_sources_and_metadata(gallery: Gallery) -> None:
    e = unit(np.random.default_rng(12), 2)
    with pytest.raises(InvalidSubjectError, match="2 sources"):
        gallery.enroll("a", e, fingerprint=FP, sources=["only-one"])
    with pytest.raises(InvalidSubjectError, match="JSON"):
        gallery.enroll("a", e, fingerprint=FP, metadata={"when": object()})
    assert len(gallery) == 0
    assert gallery.enroll("x" * 200, e, fingerprint=FP).name == "x" * 200


def test_same_content_is_stored_once_per_subject(db: Path, gallery: Gallery) -> None:
    # content_sha256 is stored with each template; a digest the subject holds (or an earlier row
    # of the call has) is left out in the same transaction, for this subject only
    rng = np.random.default_rng(14)
    x = unit(rng, 4)
    h = [f"{i:064x}" for i in range(4)]
    assert gallery.enroll("ann", x[:2], fingerprint=FP, content_sha256=h[:2], sources=["a", "b"]).n_templates == 2
    assert gallery.content_hashes("ann") == frozenset(h[:2])
    again = gallery.enroll("ann", x[[1, 2, 2]] + 0, fingerprint=FP, content_sha256=[h[1], h[2], h[2]])
    assert again.n_templates == 3  # h1 held, the second h2 repeats the first: one row written
    np.testing.assert_array_equal(gallery.templates("ann"), x[[0, 1, 2]])
    assert gallery.add("ann", x[0], fingerprint=FP, content_sha256=[h[0]]).n_templates == 3
    assert gallery.add("ann", x[3], fingerprint=FP, content_sha256=[None]).n_templates == 4  # no digest: kept
    assert gallery.enroll("bob", x[0], fingerprint=FP, content_sha256=[h[0]]).n_templates == 1  # another subject
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT subject_id, source, content_sha256 FROM templates ORDER BY id").fetchall()
    conn.close()
    assert rows == [(1, "a", h[0]), (1, "b", h[1]), (1, None, h[2]), (1, None, None), (2, None, h[0])]
    hits = gallery.search(x[0], k=5, threshold=0.9, fingerprint=FP)
    assert [(m.name, m.same) for m in hits] == [("ann", True), ("bob", True)]
    with pytest.raises(SubjectNotFoundError):
        gallery.content_hashes("nobody")
    for bad in ([h[0]], "ab", [7, h[0]], ["", h[0]], ["x" * 129, h[0]], ["a\nb", h[0]], ["é", h[0]]):
        with pytest.raises(InvalidSubjectError, match="content"):
            gallery.enroll("cat", x[:2], fingerprint=FP, content_sha256=bad)  # type: ignore[arg-type]
    assert "cat" not in gallery


def test_all_duplicate_write_is_logged_so_readers_do_not_rebuild(db: Path) -> None:
    rng = np.random.default_rng(15)
    x = unit(rng, 1)
    with Gallery(db) as writer, Gallery(db) as reader:
        writer.enroll("ann", x, fingerprint=FP, content_sha256=["d" * 64])
        reader.search(x[0], k=1, threshold=0.9, fingerprint=FP)
        same = writer.enroll("ann", x, fingerprint=FP, content_sha256=["d" * 64], metadata={"seen": 2})
        assert same.n_templates == 1 and same.metadata == {"seen": 2}
        assert reader.search(x[0], k=1, threshold=0.9, fingerprint=FP)[0].name == "ann"
        assert reader.index_stats.builds == 1 and reader.index_stats.refreshes == 1


def test_failure_after_subject_insert_rolls_back(
    db: Path, gallery: Gallery, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(13)

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk on fire")

    # First enrollment: fingerprint, dim and subject are all written before the failure.
    before = snapshot(db)
    monkeypatch.setattr(Gallery, "_insert_templates", boom)
    with pytest.raises(RuntimeError, match="disk on fire"):
        gallery.enroll("alice", unit(rng, 2), fingerprint=FP)
    assert snapshot(db) == before
    assert len(gallery) == 0 and "alice" not in gallery and gallery.fingerprint is None
    monkeypatch.undo()

    # With data (and a built index) present: a new subject and an append both roll back.
    gallery.enroll("alice", unit(rng, 2), fingerprint=FP)
    query = gallery.templates("alice")[0]
    assert gallery.search(query, threshold=0.5, fingerprint=FP)[0].name == "alice"
    before = snapshot(db)
    monkeypatch.setattr(Gallery, "_insert_templates", boom)
    with pytest.raises(RuntimeError):
        gallery.enroll("bob", unit(rng, 1), fingerprint=FP)
    with pytest.raises(RuntimeError):
        gallery.enroll("alice", unit(rng, 1), fingerprint=FP, metadata={"changed": True})
    monkeypatch.undo()
    assert snapshot(db) == before
    assert [m.name for m in gallery.search(query, k=5, threshold=0.5, fingerprint=FP)] == ["alice"]
    assert gallery.get("alice").n_templates == 2 and gallery.get("alice").metadata == {}


# ------------------------------------------------------------------ search maths


def test_search_matches_brute_force(populated: tuple[Gallery, dict[str, np.ndarray]]) -> None:
    gallery, data = populated
    rng = np.random.default_rng(14)
    queries = np.vstack([unit(rng, 8), data["subject-03"][0]])
    threshold = 0.3
    for k in (1, 5, 12):
        batched = gallery.search_many(queries, k=k, threshold=threshold, fingerprint=FP)
        assert len(batched) == len(queries)
        for query, matches in zip(queries, batched, strict=True):
            expected = brute_force(query, data)[:k]
            assert_same_matches(gallery.search(query, k=k, threshold=threshold, fingerprint=FP), matches)
            assert [m.name for m in matches] == [name for name, _ in expected]
            np.testing.assert_allclose([m.similarity for m in matches], [s for _, s in expected], atol=1e-5)
            sims = [m.similarity for m in matches]
            assert sims == sorted(sims, reverse=True)
            for m in matches:
                assert m.distance == pytest.approx(2 - 2 * m.similarity)
                assert m.same == (m.similarity >= threshold) and m.threshold == threshold
                assert m.subject_id == gallery.get(m.name).id
    exact = gallery.search(data["subject-03"][0], k=1, threshold=0.99, fingerprint=FP)[0]
    assert exact.name == "subject-03" and exact.same and exact.similarity == pytest.approx(1.0, abs=1e-6)


def test_search_aggregates_by_subject_max() -> None:
    # alice has many close-but-not-best templates; bob has a single best one.
    q = np.array([1.0, 0.0, 0.0], dtype=np.float32)

    def at(cos: float) -> np.ndarray:
        return np.array([cos, np.sqrt(1 - cos**2), 0.0], dtype=np.float32)

    with Gallery(":memory:") as g:
        g.enroll("alice", np.stack([at(0.90), at(0.91), at(0.92), at(0.93)]), fingerprint=FP)
        g.enroll("bob", at(0.95), fingerprint=FP)
        g.enroll("carol", np.stack([at(0.10), at(0.50)]), fingerprint=FP)
        matches = g.search(q, k=2, threshold=0.94, fingerprint=FP)
    assert [m.name for m in matches] == ["bob", "alice"]
    assert matches[0].similarity == pytest.approx(0.95, abs=1e-6) and matches[0].same
    assert matches[1].similarity == pytest.approx(0.93, abs=1e-6) and not matches[1].same


def test_k_larger_than_number_of_subjects(populated: tuple[Gallery, dict[str, np.ndarray]]) -> None:
    gallery, data = populated
    query = unit(np.random.default_rng(15), 1)[0]
    matches = gallery.search(query, k=100, threshold=0.5, fingerprint=FP)
    assert len(matches) == 30 and len({m.name for m in matches}) == 30
    assert [m.name for m in matches] == [name for name, _ in brute_force(query, data)]


def test_search_argument_checks(populated: tuple[Gallery, dict[str, np.ndarray]]) -> None:
    gallery, _ = populated
    q = unit(np.random.default_rng(16), 2)
    with pytest.raises(InvalidEmbeddingError):
        gallery.search(q, threshold=0.5, fingerprint=FP)  # a batch given to search
    with pytest.raises(InvalidEmbeddingError):
        gallery.search_many(q[0], threshold=0.5, fingerprint=FP)
    with pytest.raises(InvalidEmbeddingError):
        gallery.search(2 * q[0], threshold=0.5, fingerprint=FP)
    with pytest.raises(ValueError, match="k"):
        gallery.search(q[0], k=0, threshold=0.5, fingerprint=FP)
    with pytest.raises(ValueError, match="threshold"):
        gallery.search(q[0], threshold=float("nan"), fingerprint=FP)
    assert gallery.search_many(np.empty((0, DIM), np.float32), threshold=0.5, fingerprint=FP) == []


def test_index_kept_in_sync_and_rebuilt(populated: tuple[Gallery, dict[str, np.ndarray]]) -> None:
    gallery, data = populated
    rng = np.random.default_rng(17)
    queries = unit(rng, 4)
    gallery.search_many(queries, k=5, threshold=0.5, fingerprint=FP)  # build the index
    extra = unit(rng, 3)
    gallery.enroll("subject-00", extra, fingerprint=FP)
    gallery.enroll("newcomer", unit(rng, 2), fingerprint=FP)
    gallery.remove("subject-10")
    incremental = gallery.search_many(queries, k=8, threshold=0.5, fingerprint=FP)
    assert gallery.rebuild_index() == gallery.n_templates
    rebuilt = gallery.search_many(queries, k=8, threshold=0.5, fingerprint=FP)
    for got, want in zip(rebuilt, incremental, strict=True):
        assert_same_matches(got, want)
    data = {**data, "subject-00": np.vstack([data["subject-00"], extra])}
    data.pop("subject-10")
    data["newcomer"] = gallery.templates("newcomer")
    for query, matches in zip(queries, incremental, strict=True):
        assert [m.name for m in matches] == [name for name, _ in brute_force(query, data)[:8]]


# ------------------------------------------------------------------ ExactIndex


def test_exact_index_matches_brute_force() -> None:
    rng = np.random.default_rng(18)
    vectors = unit(rng, 50)
    ids = rng.permutation(1000)[:50].astype(np.int64)
    index = make_index("exact", DIM)
    assert isinstance(index, ExactIndex) and isinstance(index, VectorIndex)
    index.add(ids[:20], vectors[:20])
    index.add(ids[20:], vectors[20:])  # grows past the initial capacity
    index.remove(ids[:5])
    index.remove(np.array([123456], dtype=np.int64))  # unknown ids are ignored
    assert len(index) == 45
    kept_ids, kept = ids[5:], vectors[5:]
    queries = unit(rng, 6)
    sims, got = index.search(queries, 7)
    assert sims.shape == got.shape == (6, 7) and sims.dtype == np.float32 and got.dtype == np.int64
    for row, query in enumerate(queries):
        brute = kept.astype(np.float64) @ query.astype(np.float64)
        order = np.argsort(-brute)[:7]
        np.testing.assert_array_equal(got[row], kept_ids[order])
        np.testing.assert_allclose(sims[row], brute[order], atol=1e-5)


def test_template_index_updates_match_a_fresh_build() -> None:
    # added / removed (whole subjects and single templates, ids in any order) leave the index
    # answering as one built from the final state
    from faceprint.gallery import TemplateIndex

    rng = np.random.default_rng(21)
    live = TemplateIndex("exact")
    live.build(np.empty(0, np.int64), np.empty(0, np.int64), None, {})
    vectors: dict[int, tuple[int, np.ndarray]] = {}
    queries = unit(rng, 4)
    for _ in range(80):
        live.search(queries, 3)  # the sorted lookup exists, so updates must keep it right
        subject = int(rng.integers(6))
        owned = [t for t, (s, _) in vectors.items() if s == subject]
        if owned and rng.random() < 0.4:
            gone = owned if rng.random() < 0.5 else owned[:1]
            live.removed(subject, np.array(gone, np.int64))
            for t in gone:
                vectors.pop(t)
        else:
            ids = rng.choice(np.setdiff1d(np.arange(1000), list(vectors)), size=int(rng.integers(1, 3)), replace=False)
            x = unit(rng, ids.size)
            live.added(subject, f"s{subject}", ids.astype(np.int64), x)
            vectors.update({int(t): (subject, v) for t, v in zip(ids, x, strict=True)})
        fresh = TemplateIndex("exact")
        tids = np.array(sorted(vectors), np.int64)
        fresh.build(
            tids,
            np.array([vectors[t][0] for t in tids], np.int64),
            np.stack([vectors[t][1] for t in tids]) if tids.size else None,
            {s: f"s{s}" for s, _ in vectors.values()},
        )
        got, want = rank_hits(live.search(queries, 3), 3, 0.0), rank_hits(fresh.search(queries, 3), 3, 0.0)
        for got_row, want_row in zip(got, want, strict=True):
            assert_same_matches(got_row, want_row)
        assert all(live.subject_templates(s) == fresh.subject_templates(s) for s in range(6))


def test_exact_index_pads_when_fewer_than_k() -> None:
    index = ExactIndex(3)
    sims, ids = index.search(np.eye(3, dtype=np.float32)[:1], 2)
    assert ids.tolist() == [[-1, -1]] and np.isneginf(sims).all()
    index.add(np.array([4, 2]), np.eye(3, dtype=np.float32)[:2])
    sims, ids = index.search(np.eye(3, dtype=np.float32), 4)
    assert ids[:, 2:].tolist() == [[-1, -1]] * 3 and np.isneginf(sims[:, 2:]).all()
    assert ids[0, 0] == 4 and ids[1, 0] == 2
    assert ids[2, :2].tolist() == [2, 4]  # tie at 0: broken by id
    with pytest.raises(ValueError, match="unique"):
        index.add(np.array([4]), np.eye(3, dtype=np.float32)[:1])
    with pytest.raises(ValueError, match="shape"):
        index.search(np.ones((1, 5), dtype=np.float32), 1)


def test_unknown_index_name_lists_valid_ones(db: Path) -> None:
    assert "exact" in INDEXES
    with pytest.raises(ValueError, match="valid names: auto, exact, hnsw"):
        make_index("faiss-hnsw", DIM)
    with pytest.raises(ValueError, match="valid names: auto, exact, hnsw"):
        Gallery(db, index="nope")


# ------------------------------------------------------------------ opening bad files


def test_corrupt_file_raises_gallery_error(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-db.sqlite"
    bad.write_bytes(b"this is a JPEG, honest\x00" * 100)
    with pytest.raises(GalleryError, match="is not a faceprint gallery") as info:
        Gallery(bad)
    assert isinstance(info.value.__cause__, sqlite3.DatabaseError)
    assert bad.read_bytes() == b"this is a JPEG, honest\x00" * 100


def test_foreign_sqlite_database_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()
    with pytest.raises(GalleryError, match="is not a faceprint gallery"):
        Gallery(other)


def test_newer_schema_version_refused(db: Path) -> None:
    Gallery(db).close()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(GalleryError, match="schema version 99"):
        Gallery(db)


# ------------------------------------------------------------------ threads


def test_concurrent_reads(populated: tuple[Gallery, dict[str, np.ndarray]], db: Path) -> None:
    gallery, data = populated
    queries = unit(np.random.default_rng(19), 8)
    expected = gallery.search_many(queries, k=3, threshold=0.5, fingerprint=FP)
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def reader(worker: int) -> None:
        try:
            barrier.wait()
            own = Gallery(db) if worker % 2 else None  # shared object and separate connections
            target = own or gallery
            for _ in range(20):
                for query, want in zip(queries, expected, strict=True):
                    assert_same_matches(target.search(query, k=3, threshold=0.5, fingerprint=FP), want)
                assert len(target.subjects()) == 30 and "subject-01" in target
                assert target.templates("subject-02").shape == data["subject-02"].shape
            if own is not None:
                own.close()
        except BaseException as err:  # collected and re-raised in the main thread
            errors.append(err)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors


# -- a long-lived Gallery and another process (issue 16, item 4) ---------------------------------
_WRITER = r"""
import sys
import numpy as np
from faceprint.gallery import Gallery
g = Gallery(sys.argv[1])
for line in sys.stdin:
    op, name, *rest = line.split()
    if op == "enroll":
        x = np.random.default_rng(int(rest[0])).standard_normal((2, int(rest[1])))
        s = g.enroll(name, (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), fingerprint=sys.argv[2])
        print("ok", s.id, flush=True)
    elif op == "add":
        x = np.random.default_rng(int(rest[0])).standard_normal((1, int(rest[1])))
        s = g.add(name, (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), fingerprint=sys.argv[2])
        print("ok", s.id, flush=True)
    elif op == "rename":
        g.rename(name, rest[0])
        print("ok", flush=True)
    elif op == "remove":
        g.remove(name)
        print("ok", flush=True)
    elif op == "churn":  # enroll / remove until the parent closes stdin's other end, counting commits
        i = 0
        while True:
            g.enroll(f"c{i}", np.eye(int(rest[0]), dtype=np.float32)[[i % int(rest[0])] * 3], fingerprint=sys.argv[2])
            if i >= 3:
                g.remove(f"c{i - 3}")
            i += 1
            if i == 20:
                print("started", flush=True)
"""


class WriterProcess:
    """Another process with its own Gallery on the same file, doing one write per request."""

    def __init__(self, path: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path), FP],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, line: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        assert answer.startswith(("ok", "started")), f"writer said {answer!r} to {line!r}"
        return answer

    def enroll(self, name: str, seed: int) -> np.ndarray:
        self.ask(f"enroll {name} {seed} {DIM}")
        x = np.random.default_rng(seed).standard_normal((2, DIM))
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)


@pytest.fixture
def writer(db: Path):
    Gallery(db).close()  # the schema exists before either side opens it
    w = WriterProcess(db)
    yield w
    w.close()


def test_long_lived_reader_sees_every_commit_of_another_process(db: Path, writer: WriterProcess) -> None:
    # The reader's index is built once; every later commit by the other process must show in its
    # next search, and a removed subject must never come back (before: 99 % of enrollments unseen,
    # deleted subjects returned). Each commit is applied from the change log: no full rebuild.
    with Gallery(db) as reader:
        alive: dict[str, np.ndarray] = {}
        for i in range(12):
            name = f"p{i}"
            alive[name] = writer.enroll(name, seed=100 + i)
            top = reader.search(alive[name][0], k=1, threshold=0.9, fingerprint=FP)
            assert [m.name for m in top] == [name]  # the enrollment just acknowledged
            if i % 3 == 2:
                gone = f"p{i - 1}"
                writer.ask(f"remove {gone}")
                probe = alive.pop(gone)
                hits = reader.search_many(probe, k=50, threshold=-1.0, fingerprint=FP)
                assert all(m.name != gone for row in hits for m in row)  # never a deleted subject
                assert {m.name for m in hits[0]} == set(alive)
                assert gone not in reader and len(reader) == len(alive)
        writer.ask(f"add p0 7 {DIM}")  # one more template for an existing subject
        x = np.random.default_rng(7).standard_normal(DIM)
        x = (x / np.linalg.norm(x)).astype(np.float32)
        assert reader.search(x, k=1, threshold=0.9, fingerprint=FP)[0].name == "p0"
        writer.ask("rename p0 q0")
        assert reader.search(alive["p0"][0], k=1, threshold=0.9, fingerprint=FP)[0].name == "q0"
        stats = reader.index_stats
        assert stats.builds == 1  # the first search's; every later commit came from the log
        assert (stats.refreshes, stats.changes_applied) == (11 + 4 + 2, 11 + 4 + 2)  # p0 came before the build


class _CommitBetween:
    """A connection proxy that lets another process commit right before the templates are read."""

    def __init__(self, conn: sqlite3.Connection, writer: WriterProcess) -> None:
        self._conn, self._writer, self.commits = conn, writer, 0

    def execute(self, sql: str, *args: Any) -> Any:
        if sql.startswith("SELECT id, subject_id, embedding FROM templates"):
            self._writer.enroll(f"between{self.commits}", seed=900 + self.commits)
            self.commits += 1
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def test_rebuild_index_reads_one_snapshot(db: Path, writer: WriterProcess) -> None:
    # rebuild_index read subjects and templates in two queries: a subject committed in between had
    # templates but no name, and search raised KeyError. Here the other process commits exactly there.
    first = writer.enroll("ann", seed=1)
    with Gallery(db) as reader:
        proxy = _CommitBetween(reader._conn, writer)  # type: ignore[arg-type]
        reader._conn = proxy  # type: ignore[assignment]
        assert reader.rebuild_index() == 2  # the snapshot: ann only, not the subject committed meanwhile
        assert proxy.commits == 1
        late = writer.enroll("bob", seed=2)
        for probe, name in ((first[0], "ann"), (late[0], "bob")):
            assert reader.search(probe, k=1, threshold=0.9, fingerprint=FP)[0].name == name
        # the search above saw the other commits and applied them from the change log (the commit
        # inside the snapshot included: it came after the snapshot's log position); every subject
        # is there, none without its name, and nothing was rebuilt
        names = {m.name for m in reader.search(first[0], k=50, threshold=-1.0, fingerprint=FP)}
        assert names == {"ann", "bob", "between0"}
        assert proxy.commits == 1
        stats = reader.index_stats
        assert (stats.builds, stats.refreshes, stats.changes_applied) == (1, 1, 2)
        reader._conn = proxy._conn


def test_rebuilds_and_searches_while_another_process_churns(db: Path, writer: WriterProcess) -> None:
    writer.enroll("anchor", seed=5)
    writer.ask(f"churn x {DIM}")  # returns once the other process has made 20 commits; it keeps going
    deadline = time.monotonic() + 2.0
    rounds = 0
    with Gallery(db) as reader:
        while time.monotonic() < deadline:
            reader.rebuild_index()
            hits = reader.search(np.eye(DIM, dtype=np.float32)[rounds % DIM], k=10, threshold=-1.0, fingerprint=FP)
            assert all(m.name for m in hits)
            rounds += 1
    assert rounds > 10


# -- incremental refresh from the change log ------------------------------------------------------
def _fresh_answer(db: Path, queries: np.ndarray) -> list[list[Match]]:
    """What a newly opened gallery (a full build from the store) answers."""
    with Gallery(db) as fresh:
        return fresh.search_many(queries, k=8, threshold=-1.0, fingerprint=FP)


def test_refresh_equals_a_full_build_under_random_writes(db: Path) -> None:
    # Random enroll / add / rename / remove by another connection, 1-3 between searches (ids of
    # removed subjects are reused by SQLite): after each batch the long-lived reader answers
    # exactly what a freshly built index answers, and it never rebuilds.
    rng = np.random.default_rng(31)
    queries = unit(rng, 6)
    with Gallery(db) as writer, Gallery(db) as reader:
        for i in range(8):
            writer.enroll(f"s{i}", unit(rng, 2), fingerprint=FP)
        reader.search(queries[0], k=1, threshold=0.0, fingerprint=FP)
        serial = 8
        for _ in range(60):
            for _ in range(int(rng.integers(1, 4))):
                names = [x.name for x in writer.subjects()]
                op = rng.choice(["enroll", "add", "rename", "remove"] if len(names) > 2 else ["enroll"])
                victim = names[int(rng.integers(len(names)))]
                if op == "enroll":
                    writer.enroll(f"s{serial}", unit(rng, int(rng.integers(1, 4))), fingerprint=FP)
                    serial += 1
                elif op == "add":
                    writer.add(victim, unit(rng, 1), fingerprint=FP)
                elif op == "rename":
                    writer.rename(victim, f"s{serial}")
                    serial += 1
                else:
                    writer.remove(max(writer.subjects(), key=lambda x: x.id).id if rng.random() < 0.5 else victim)
            got = reader.search_many(queries, k=8, threshold=-1.0, fingerprint=FP)
            for got_row, want_row in zip(got, _fresh_answer(db, queries), strict=True):
                assert_same_matches(got_row, want_row)
        assert reader.index_stats.builds == 1
        assert reader.index_stats.refreshes == 60


def test_own_writes_move_the_log_position(db: Path) -> None:
    # Writes through the reader itself update its index directly; a later commit by another
    # connection is then the only change-log row it applies.
    rng = np.random.default_rng(32)
    with Gallery(db) as g, Gallery(db) as other:
        g.enroll("a", unit(rng, 1), fingerprint=FP)
        g.search(unit(rng, 1)[0], k=1, threshold=0.0, fingerprint=FP)
        for i in range(5):
            g.enroll(f"own{i}", unit(rng, 1), fingerprint=FP)
        g.rename("own0", "mine")
        g.remove("own1")
        late = unit(rng, 1)
        other.enroll("theirs", late, fingerprint=FP)
        assert g.search(late[0], k=1, threshold=0.9, fingerprint=FP)[0].name == "theirs"
        stats = g.index_stats
        assert (stats.builds, stats.refreshes, stats.changes_applied) == (1, 1, 1)
        assert stats.seq == 1 + 5 + 2 + 1


def test_reader_that_missed_pruned_rows_rebuilds(db: Path) -> None:
    rng = np.random.default_rng(33)
    with Gallery(db) as writer, Gallery(db) as reader:
        writer.change_log_keep = 4  # prune every write beyond the last 4 rows
        writer.enroll("a", unit(rng, 1), fingerprint=FP)
        reader.search(unit(rng, 1)[0], k=1, threshold=0.0, fingerprint=FP)  # log position 1
        writer.enroll("b", unit(rng, 1), fingerprint=FP)
        reader.search(unit(rng, 1)[0], k=1, threshold=0.0, fingerprint=FP)  # row 2 is still there
        assert reader.index_stats.builds == 1
        added = {f"n{i}": unit(rng, 1) for i in range(6)}  # rows 3-8; 3 and 4 are pruned
        for name, x in added.items():
            writer.enroll(name, x, fingerprint=FP)
        conn = sqlite3.connect(db)
        assert conn.execute("SELECT MIN(seq), MAX(seq) FROM changes").fetchone() == (5, 8)
        conn.close()
        for name, x in added.items():
            assert reader.search(x[0], k=1, threshold=0.9, fingerprint=FP)[0].name == name
        assert reader.index_stats.builds == 2  # the reader could not apply rows 3-4: it rebuilt once
        writer.remove("n0")
        assert "n0" not in {m.name for m in reader.search(added["n0"][0], k=9, threshold=-1.0, fingerprint=FP)}
        assert reader.index_stats.builds == 2 and reader.index_stats.refreshes == 2


def test_commit_without_log_rows_and_emptied_gallery_rebuild(db: Path) -> None:
    rng = np.random.default_rng(34)
    e = np.eye(DIM, dtype=np.float32)
    with Gallery(db) as writer, Gallery(db) as reader:
        writer.enroll("a", e[0], fingerprint=FP)
        assert reader.search(e[0], k=1, threshold=0.9, fingerprint=FP)[0].name == "a"
        # a writer that does not log (an old faceprint, the sqlite3 shell): the reader rebuilds
        conn = sqlite3.connect(db)
        conn.execute("INSERT INTO subjects(id, name) VALUES (50, 'by hand')")
        conn.execute(
            "INSERT INTO templates(subject_id, embedding, fingerprint) VALUES (50, ?, ?)", (e[1].tobytes(), FP)
        )
        conn.commit()
        conn.close()
        assert reader.search(e[1], k=1, threshold=0.9, fingerprint=FP)[0].name == "by hand"
        assert reader.index_stats.builds == 2
        # the last subject goes, the next one comes from another model with another dimension
        writer.remove("a")
        writer.remove("by hand")
        other = unit(rng, 1, dim=DIM + 4)
        writer.enroll("wide", other, fingerprint="other-model")
        assert reader.search(other[0], k=1, threshold=0.9, fingerprint="other-model")[0].name == "wide"
        assert reader.index_stats.builds == 3


def test_index_that_refuses_an_update_is_rebuilt(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(35)
    with Gallery(db) as writer, Gallery(db) as reader:
        writer.enroll("a", unit(rng, 1), fingerprint=FP)
        reader.search(unit(rng, 1)[0], k=1, threshold=0.0, fingerprint=FP)
        late = unit(rng, 1)
        writer.enroll("b", late, fingerprint=FP)

        def refuse(self: ExactIndex, ids: np.ndarray, vectors: np.ndarray) -> None:
            raise RuntimeError("no incremental updates here")

        with monkeypatch.context() as patch:
            patch.setattr(ExactIndex, "add", refuse)
            with pytest.raises(RuntimeError, match="no incremental"):  # the rebuild cannot add either
                reader.search(late[0], k=1, threshold=0.9, fingerprint=FP)
        assert reader.search(late[0], k=1, threshold=0.9, fingerprint=FP)[0].name == "b"
        assert reader.index_stats.builds == 2 and reader.index_stats.refreshes == 0


_SCHEMA_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE subjects (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, created_at TEXT, metadata TEXT);
CREATE TABLE templates (id INTEGER PRIMARY KEY,
    subject_id INTEGER NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
    embedding BLOB NOT NULL, fingerprint TEXT NOT NULL, source TEXT, created_at TEXT);
CREATE INDEX templates_subject_id ON templates(subject_id);
"""


def test_schema_1_file_is_migrated_on_open(db: Path) -> None:
    rng = np.random.default_rng(36)
    old = unit(rng, 3)
    conn = sqlite3.connect(db)
    conn.executescript(_SCHEMA_V1)
    conn.executemany(
        "INSERT INTO meta VALUES (?, ?)", [("schema_version", "1"), ("fingerprint", FP), ("dim", str(DIM))]
    )
    conn.execute("INSERT INTO subjects VALUES (1, 'ann', '', NULL), (2, 'bob', '', NULL)")
    conn.executemany(
        "INSERT INTO templates(subject_id, embedding, fingerprint) VALUES (?, ?, ?)",
        [(1, old[0].tobytes(), FP), (1, old[1].tobytes(), FP), (2, old[2].tobytes(), FP)],
    )
    conn.commit()
    conn.close()
    with Gallery(db) as reader, Gallery(db) as writer:  # the first open migrates, the second finds v2
        assert [x.name for x in reader.subjects()] == ["ann", "bob"]
        assert reader.search(old[2], k=1, threshold=0.9, fingerprint=FP)[0].name == "bob"
        late = unit(rng, 1)
        writer.enroll("cat", late, fingerprint=FP)
        writer.remove("ann")
        assert reader.search(late[0], k=1, threshold=0.9, fingerprint=FP)[0].name == "cat"
        assert "ann" not in {m.name for m in reader.search(old[0], k=5, threshold=-1.0, fingerprint=FP)}
        assert reader.index_stats.builds == 1
    rows = snapshot(db)
    assert ("schema_version", "2") in rows["meta"]
    conn = sqlite3.connect(db)
    assert [r[1] for r in conn.execute("SELECT seq, op FROM changes ORDER BY seq")] == ["enroll", "remove"]
    assert "content_sha256" in {r[1] for r in conn.execute("PRAGMA table_info(templates)")}
    conn.close()


# -- durability: many writers at once, kill -9 mid-enrollment (issue 16) --------------------------
_ENROLLER = r"""
import sys
import numpy as np
from faceprint.gallery import Gallery
path, prefix, count, templates, dim = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
g = Gallery(path)
rng = np.random.default_rng(sum(prefix.encode()))
for i in range(count):
    x = rng.standard_normal((templates, dim))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    g.enroll(f"{prefix}-{i}", x, fingerprint=sys.argv[6])
    print("ack", f"{prefix}-{i}", flush=True)
"""


def _integrity(path: Path) -> tuple[str, dict[str, int]]:
    conn = sqlite3.connect(path)
    try:
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        counts = dict(
            conn.execute(
                "SELECT s.name, COUNT(t.id) FROM subjects s LEFT JOIN templates t ON t.subject_id = s.id GROUP BY s.id"
            ).fetchall()
        )
    finally:
        conn.close()
    return check, counts


def test_sixteen_processes_enrolling_at_once(db: Path) -> None:
    Gallery(db).close()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _ENROLLER, str(db), f"w{k}", "8", "2", str(DIM), FP],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(16)
    ]
    acked = set()
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        acked |= {line.split()[1] for line in out.splitlines()}
    check, counts = _integrity(db)
    assert check == "ok"
    assert len(acked) == 128 and set(counts) == acked  # nothing lost, nothing extra
    assert set(counts.values()) == {2}  # every subject whole


_SAME_PHOTO = r"""
import sys, time
import numpy as np
from faceprint.gallery import Gallery
g = Gallery(sys.argv[1])
while time.time() < float(sys.argv[2]):  # start together
    time.sleep(0.001)
s = g.enroll("ann", np.eye(int(sys.argv[3]), dtype=np.float32)[0], fingerprint=sys.argv[4], content_sha256=["a" * 64])
print(s.n_templates)
"""


def test_processes_enrolling_the_same_photo_at_once_store_it_once(db: Path) -> None:
    Gallery(db).close()
    start = time.time() + 3.0
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _SAME_PHOTO, str(db), str(start), str(DIM), FP],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for _ in range(6)
    ]
    answers = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        answers.append(int(out))
    assert answers == [1] * 6
    check, counts = _integrity(db)
    assert check == "ok" and counts == {"ann": 1}


def test_kill_9_during_bulk_enrollment_loses_no_acknowledged_subject(db: Path) -> None:
    Gallery(db).close()
    acked: set[str] = set()
    for round_ in range(6):
        proc = subprocess.Popen(
            [sys.executable, "-c", _ENROLLER, str(db), f"r{round_}", "1000", "64", str(DIM), FP],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        for _ in range(3 + 2 * round_):  # a different moment each round, mid-stream
            acked.add(proc.stdout.readline().split()[1])
        proc.kill()  # SIGKILL: no cleanup, possibly inside a transaction
        rest = proc.stdout.read()
        proc.wait(timeout=30)
        acked |= {line.split()[1] for line in rest.splitlines() if line.startswith("ack")}
        check, counts = _integrity(db)
        assert check == "ok"
        assert acked <= set(counts)  # every acknowledged enrollment is there
        assert set(counts.values()) == {64}  # and no subject is half-written
        with Gallery(db) as g:  # and the file opens and searches
            assert len(g) == len(counts)
            assert g.search(np.eye(DIM, dtype=np.float32)[0], k=1, threshold=-1.0, fingerprint=FP)
