"""The gallery backend contract: every backend behind ``GalleryBackend`` passes these tests.

Backends come from the ``case`` fixture (one param per backend: SQLite on a file with each
registered index, SQLite in memory, Milvus Lite on a file, and Milvus over gRPC against a
``milvus-lite server`` on 127.0.0.1 that the ``milvus_server`` fixture starts and stops).
A new backend is one more ``BackendCase``.
Also: ``open_gallery`` URLs, and that files written in the v1 on-disk schema still open.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from faceprint.errors import (
    EmbedderMismatchError,
    FaceprintError,
    GalleryError,
    InvalidEmbeddingError,
    InvalidSubjectError,
    SubjectNotFoundError,
    UnsupportedGalleryURLError,
)
from faceprint.gallery import (
    GALLERY_SCHEMES,
    INDEXES,
    BaseGallery,
    Gallery,
    GalleryBackend,
    Subject,
    open_gallery,
)
from faceprint.types import Match

FP = "contract-embedder-v1"
DIM = 16


def unit(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    x = rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@dataclass(frozen=True)
class BackendCase:
    """How to open one backend: a fresh store, and the same store again (None: not shareable)."""

    id: str
    open: Callable[[Path], GalleryBackend]
    persists: bool


def _sqlite_file(index: str) -> BackendCase:
    return BackendCase(f"sqlite-file-{index}", lambda tmp: Gallery(tmp / "contract.db", index=index), True)


# The quantised HNSW variants report similarities of their float16 / int8 copies, not the float32
# brute force this suite compares with: tests/test_gallery_ann.py bounds their error and recall.
APPROXIMATE_SIMILARITIES = {"hnsw-f16", "hnsw-i8"}
def _milvus_lite_file(tmp: Path) -> GalleryBackend:
    pytest.importorskip("pymilvus", reason="the [milvus] extra is not installed (make test installs it)")
    return open_gallery(f"milvus-lite:///{tmp / 'contract-milvus.db'}")


def _milvus_server(tmp: Path, address: str) -> GalleryBackend:
    pytest.importorskip("pymilvus", reason="the [milvus] extra is not installed (make test installs it)")
    collection = "c_" + hashlib.sha256(str(tmp).encode()).hexdigest()[:16]  # one per test, on a shared server
    return open_gallery(f"milvus://{address}/{collection}")


CASES = [_sqlite_file(name) for name in INDEXES.names() if name not in APPROXIMATE_SIMILARITIES] + [
    BackendCase("sqlite-memory-exact", lambda tmp: Gallery(":memory:"), False),
    BackendCase("milvus-lite-file", _milvus_lite_file, True),
    BackendCase("milvus-grpc-server", lambda tmp: Gallery(":memory:"), True),  # bound to the server below
]


@pytest.fixture(params=CASES, ids=[c.id for c in CASES])
def case(request: pytest.FixtureRequest) -> BackendCase:
    param: BackendCase = request.param
    if param.id == "milvus-grpc-server":  # a milvus-lite server on 127.0.0.1, for the session
        address = request.getfixturevalue("milvus_server")
        return replace(param, open=lambda tmp: _milvus_server(tmp, address))
    return param


@pytest.fixture
def gallery(case: BackendCase, tmp_path: Path) -> Iterator[GalleryBackend]:
    g = case.open(tmp_path)
    yield g
    g.close()


Model = dict[str, np.ndarray]  # name -> templates: the reference the backend must agree with


def populate(gallery: GalleryBackend, n: int = 25, seed: int = 0) -> Model:
    rng = np.random.default_rng(seed)
    model: Model = {}
    for i in range(n):
        templates = unit(rng, int(rng.integers(1, 5)))
        gallery.enroll(f"s{i:02d}", templates, fingerprint=FP)
        model[f"s{i:02d}"] = templates
    return model


def brute_force(query: np.ndarray, model: Model, k: int) -> list[tuple[str, float]]:
    scores = [(name, float((t.astype(np.float64) @ query.astype(np.float64)).max())) for name, t in model.items()]
    return sorted(scores, key=lambda item: -item[1])[:k]


def assert_agrees(gallery: GalleryBackend, model: Model, queries: np.ndarray, k: int = 5) -> None:
    """Search results equal brute force over the reference model (names, order, similarities)."""
    assert len(gallery) == len(model)
    assert gallery.n_templates == sum(t.shape[0] for t in model.values())
    for query, matches in zip(queries, gallery.search_many(queries, k=k, threshold=0.3, fingerprint=FP), strict=True):
        want = brute_force(query, model, k)
        assert [m.name for m in matches] == [name for name, _ in want]
        np.testing.assert_allclose([m.similarity for m in matches], [s for _, s in want], atol=1e-5)
        assert all(m.same == (m.similarity >= 0.3) and m.distance == pytest.approx(2 - 2 * m.similarity)
                   for m in matches)


# ------------------------------------------------------------------ protocol and shared layer


def test_backend_implements_protocol_on_shared_layer(gallery: GalleryBackend) -> None:
    assert isinstance(gallery, GalleryBackend)
    assert isinstance(gallery, BaseGallery)


def test_empty(gallery: GalleryBackend) -> None:
    q = unit(np.random.default_rng(1), 2)
    assert len(gallery) == 0 and gallery.n_templates == 0 and list(gallery) == [] and gallery.subjects() == []
    assert gallery.fingerprint is None and gallery.dim is None
    assert gallery.search(q[0], threshold=0.5, fingerprint=FP) == []
    assert gallery.search_many(q, threshold=0.5, fingerprint=FP) == [[], []]
    assert gallery.score(q[0], ["anyone"], threshold=0.5, fingerprint=FP) == []
    batch = gallery.templates_many()
    assert len(batch) == 0 and batch.embeddings.shape[0] == 0 and batch.fingerprint is None


# ------------------------------------------------------------------ enroll / add / iterate


def test_enroll_get_iterate(gallery: GalleryBackend) -> None:
    rng = np.random.default_rng(2)
    bob = gallery.enroll(" bob ", unit(rng, 2), fingerprint=FP, sources=["b1.jpg", "b2.jpg"], metadata={"k": 1})
    ann = gallery.enroll("ann", unit(rng, 1)[0], fingerprint=FP)
    assert isinstance(bob, Subject) and bob.name == "bob" and bob.n_templates == 2 and bob.metadata == {"k": 1}
    assert gallery.get("bob") == bob == gallery.get(bob.id) and gallery.get(" ann") == ann
    assert list(gallery) == gallery.subjects() == [ann, bob]  # ordered by name
    assert "bob" in gallery and bob.id in gallery and "carl" not in gallery and None not in gallery
    assert gallery.fingerprint == FP and gallery.dim == DIM and len(gallery) == 2 and gallery.n_templates == 3


def test_enroll_existing_appends_and_merges_metadata(gallery: GalleryBackend) -> None:
    rng = np.random.default_rng(3)
    first, more = unit(rng, 1), unit(rng, 2)
    a = gallery.enroll("ann", first, fingerprint=FP, metadata={"team": "red"})
    b = gallery.enroll("ann", more, fingerprint=FP, metadata={"desk": 4})
    assert b.id == a.id and b.n_templates == 3 and b.created_at == a.created_at
    assert b.metadata == {"team": "red", "desk": 4}
    np.testing.assert_array_equal(gallery.templates("ann"), np.vstack([first, more]))


def test_add_appends_to_existing_only(gallery: GalleryBackend) -> None:
    rng = np.random.default_rng(4)
    ann = gallery.enroll("ann", unit(rng, 1), fingerprint=FP, metadata={"x": 1})
    extra = unit(rng, 2)
    after = gallery.add(ann.id, extra, fingerprint=FP, sources=["p.jpg", "q.jpg"])
    assert after.id == ann.id and after.n_templates == 3 and after.metadata == {"x": 1}
    assert gallery.add("ann", extra[0], fingerprint=FP).n_templates == 4
    np.testing.assert_array_equal(gallery.templates("ann")[1:3], extra)
    with pytest.raises(SubjectNotFoundError, match="nobody"):
        gallery.add("nobody", extra, fingerprint=FP)
    with pytest.raises(SubjectNotFoundError):
        gallery.add(ann.id + 100, extra, fingerprint=FP)
    assert len(gallery) == 1 and gallery.n_templates == 4


# ------------------------------------------------------------------ rename / remove


def test_rename(gallery: GalleryBackend) -> None:
    model = populate(gallery)
    query = model["s07"][0]
    assert gallery.search(query, k=1, threshold=0.5, fingerprint=FP)[0].name == "s07"
    old = gallery.get("s07")
    renamed = gallery.rename("s07", "zed")
    assert (renamed.id, renamed.name, renamed.n_templates) == (old.id, "zed", old.n_templates)
    assert "s07" not in gallery and gallery.get("zed") == renamed
    assert gallery.search(query, k=1, threshold=0.5, fingerprint=FP)[0].name == "zed"
    assert gallery.rename(old.id, "zed") == renamed  # same name: no-op
    with pytest.raises(GalleryError, match="already"):
        gallery.rename("s01", "s02")
    with pytest.raises(InvalidSubjectError):
        gallery.rename("s01", "  ")
    with pytest.raises(SubjectNotFoundError):
        gallery.rename("nobody", "somebody")


def test_remove(gallery: GalleryBackend) -> None:
    model = populate(gallery)
    query = model["s05"][0]
    assert gallery.search(query, k=1, threshold=0.5, fingerprint=FP)[0].name == "s05"
    assert gallery.remove("s05") == model.pop("s05").shape[0]
    assert "s05" not in gallery
    assert_agrees(gallery, model, np.vstack([query, unit(np.random.default_rng(5), 3)]), k=30)
    with pytest.raises(SubjectNotFoundError):
        gallery.remove("s05")
    for name in list(model):
        gallery.remove(name)
    assert gallery.fingerprint is None and gallery.dim is None and len(gallery) == 0
    gallery.enroll("other", unit(np.random.default_rng(6), 1, dim=8), fingerprint="other-model")
    assert gallery.fingerprint == "other-model" and gallery.dim == 8


# ------------------------------------------------------------------ one model per gallery


def test_mixed_fingerprints_and_dims_refused(gallery: GalleryBackend) -> None:
    rng = np.random.default_rng(7)
    gallery.enroll("ann", unit(rng, 1), fingerprint=FP)
    before = (gallery.subjects(), gallery.n_templates)
    q = unit(rng, 2)
    calls: list[Callable[[], Any]] = [
        lambda: gallery.enroll("bob", unit(rng, 1), fingerprint="other-model"),
        lambda: gallery.enroll("ann", unit(rng, 1), fingerprint="other-model"),
        lambda: gallery.add("ann", unit(rng, 1), fingerprint="other-model"),
        lambda: gallery.search(q[0], threshold=0.5, fingerprint="other-model"),
        lambda: gallery.search_many(q, threshold=0.5, fingerprint="other-model"),
        lambda: gallery.score(q[0], ["ann"], threshold=0.5, fingerprint="other-model"),
    ]
    for call in calls:
        with pytest.raises(EmbedderMismatchError, match=f"{FP}.*other-model"):
            call()
    for call in [
        lambda: gallery.enroll("bob", unit(rng, 1, dim=8), fingerprint=FP),
        lambda: gallery.search(unit(rng, 1, dim=8)[0], threshold=0.5, fingerprint=FP),
        lambda: gallery.score(unit(rng, 1, dim=8)[0], ["ann"], threshold=0.5, fingerprint=FP),
    ]:
        with pytest.raises(EmbedderMismatchError, match="16-d.*8-d"):
            call()
    with pytest.raises(EmbedderMismatchError, match="non-empty"):
        gallery.enroll("bob", unit(rng, 1), fingerprint="  ")
    assert (gallery.subjects(), gallery.n_templates) == before


# ------------------------------------------------------------------ search


def test_search_matches_brute_force(gallery: GalleryBackend) -> None:
    model = populate(gallery, n=30, seed=8)
    rng = np.random.default_rng(9)
    queries = np.vstack([unit(rng, 6), model["s03"][1:2] if model["s03"].shape[0] > 1 else model["s03"]])
    for k in (1, 5, 12, 100):
        assert_agrees(gallery, model, queries, k=k)
        for query in queries:
            sims = [m.similarity for m in gallery.search(query, k=k, threshold=0.5, fingerprint=FP)]
            assert sims == sorted(sims, reverse=True) and len(sims) == min(k, 30)


def test_search_takes_the_best_template_of_each_subject(gallery: GalleryBackend) -> None:
    q = np.array([1.0, 0.0, 0.0], dtype=np.float32)

    def at(cos: float) -> np.ndarray:
        return np.array([cos, np.sqrt(1 - cos**2), 0.0], dtype=np.float32)

    gallery.enroll("ann", np.stack([at(0.90), at(0.91), at(0.92), at(0.93)]), fingerprint=FP)
    gallery.enroll("bob", at(0.95), fingerprint=FP)
    gallery.enroll("cat", np.stack([at(0.10), at(0.50)]), fingerprint=FP)
    matches = gallery.search(q, k=2, threshold=0.94, fingerprint=FP)
    assert [(m.name, m.same) for m in matches] == [("bob", True), ("ann", False)]
    assert matches[1].similarity == pytest.approx(0.93, abs=1e-6)


def test_search_sees_every_committed_change(gallery: GalleryBackend) -> None:
    rng = np.random.default_rng(10)
    queries = unit(rng, 4)
    model: Model = {}
    for step in range(40):
        op = "enroll" if len(model) < 3 else ["enroll", "add", "remove", "rename"][step % 4]
        name = sorted(model)[int(rng.integers(len(model)))] if model else ""
        if op == "enroll":
            new = unit(rng, 1 + step % 3)
            gallery.enroll(f"p{step:02d}", new, fingerprint=FP)
            model[f"p{step:02d}"] = new
        elif op == "add":
            new = unit(rng, 2)
            gallery.add(name, new, fingerprint=FP)
            model[name] = np.vstack([model[name], new])
        elif op == "remove":
            gallery.remove(name)
            model.pop(name)
        else:
            gallery.rename(name, f"r{step:02d}")
            model[f"r{step:02d}"] = model.pop(name)
        assert_agrees(gallery, model, queries, k=4)


def test_score_equals_a_search_of_the_whole_gallery(gallery: GalleryBackend) -> None:
    model = populate(gallery, n=30, seed=11)
    rng = np.random.default_rng(12)
    names = list(model)
    for query in unit(rng, 5):
        everyone = {m.name: m for m in gallery.search(query, k=len(gallery), threshold=0.4, fingerprint=FP)}
        wanted = [names[i] for i in rng.permutation(len(names))[:10]]
        got = gallery.score(query, [*wanted, "nobody", wanted[0]], threshold=0.4, fingerprint=FP)
        assert got == [everyone[n] for n in wanted]  # bit for bit, in the order given, unknown skipped
        ids = [gallery.get(n).id for n in wanted[:3]]
        assert gallery.score(query, ids, threshold=0.4, fingerprint=FP) == [everyone[n] for n in wanted[:3]]
    assert gallery.score(query, [], threshold=0.4, fingerprint=FP) == []


# ------------------------------------------------------------------ batched templates


def test_templates_many_agrees_with_per_subject_templates(gallery: GalleryBackend) -> None:
    model = populate(gallery, n=12, seed=13)
    batch = gallery.templates_many()
    subjects = gallery.subjects()
    np.testing.assert_array_equal(batch.embeddings, np.vstack([gallery.templates(s.name) for s in subjects]))
    assert batch.names == tuple(s.name for s in subjects for _ in range(s.n_templates))
    assert batch.subject_ids.tolist() == [s.id for s in subjects for _ in range(s.n_templates)]
    assert batch.fingerprint == FP and batch.embeddings.dtype == np.float32 and len(batch) == gallery.n_templates

    some = ["s07", gallery.get("s02").id, " s10", "s07"]  # names, ids, whitespace, a repeat
    part = gallery.templates_many(some)
    np.testing.assert_array_equal(part.embeddings, np.vstack([model["s07"], model["s02"], model["s10"]]))
    assert set(part.names) == {"s07", "s02", "s10"} and part.names[0] == "s07"
    with pytest.raises(SubjectNotFoundError, match="nobody"):
        gallery.templates_many(["s01", "nobody"])
    assert gallery.templates_many(["nobody", "s01"], missing_ok=True).names == ("s01",) * model["s01"].shape[0]
    assert len(gallery.templates_many([])) == 0
    with pytest.raises(TypeError):
        gallery.templates_many("s01")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        gallery.templates_many([1.5])  # type: ignore[list-item]


# ------------------------------------------------------------------ invalid input


def _bad_embeddings() -> dict[str, Any]:
    good = unit(np.random.default_rng(14), 3)
    nan = good.copy()
    nan[1, 0] = np.nan
    return {
        "nan": nan,
        "not-unit": 2 * good,
        "3d": good[None],
        "empty": np.empty((0, DIM), np.float32),
        "int": np.eye(DIM, dtype=np.int64)[:1],
        "ragged": [[1.0, 0.0], [1.0]],
    }


@pytest.mark.parametrize("bad", sorted(_bad_embeddings()))
def test_invalid_embeddings_change_nothing(gallery: GalleryBackend, bad: str) -> None:
    gallery.enroll("ann", unit(np.random.default_rng(15), 1), fingerprint=FP)
    before = (gallery.subjects(), gallery.n_templates)
    for call in (
        lambda: gallery.enroll("bob", _bad_embeddings()[bad], fingerprint=FP),
        lambda: gallery.add("ann", _bad_embeddings()[bad], fingerprint=FP),
    ):
        with pytest.raises(InvalidEmbeddingError, match="expected"):
            call()
    assert (gallery.subjects(), gallery.n_templates) == before


def test_invalid_arguments(gallery: GalleryBackend) -> None:
    rng = np.random.default_rng(16)
    e = unit(rng, 2)
    for name in ["", "  ", "x" * 201, 42, None]:
        with pytest.raises(InvalidSubjectError):
            gallery.enroll(name, e, fingerprint=FP)  # type: ignore[arg-type]
    with pytest.raises(InvalidSubjectError, match="2 sources"):
        gallery.enroll("ann", e, fingerprint=FP, sources=["one"])
    with pytest.raises(InvalidSubjectError, match="JSON"):
        gallery.enroll("ann", e, fingerprint=FP, metadata={"when": object()})
    assert len(gallery) == 0
    gallery.enroll("ann", e, fingerprint=FP)
    with pytest.raises(InvalidEmbeddingError):
        gallery.search(e, threshold=0.5, fingerprint=FP)  # a batch given to search
    with pytest.raises(InvalidEmbeddingError):
        gallery.search_many(e[0], threshold=0.5, fingerprint=FP)
    with pytest.raises(InvalidEmbeddingError):
        gallery.score(e, ["ann"], threshold=0.5, fingerprint=FP)
    with pytest.raises(ValueError, match="k"):
        gallery.search(e[0], k=0, threshold=0.5, fingerprint=FP)
    with pytest.raises(ValueError, match="threshold"):
        gallery.search(e[0], threshold=float("inf"), fingerprint=FP)
    with pytest.raises(ValueError, match="threshold"):
        gallery.score(e[0], ["ann"], threshold=float("nan"), fingerprint=FP)
    with pytest.raises(TypeError):
        gallery.get(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        gallery.score(e[0], "ann", threshold=0.5, fingerprint=FP)  # type: ignore[arg-type]
    assert gallery.search_many(np.empty((0, DIM), np.float32), threshold=0.5, fingerprint=FP) == []


# ------------------------------------------------------------------ persistence and other connections


def test_persists_across_reopen(case: BackendCase, tmp_path: Path) -> None:
    if not case.persists:
        pytest.skip(f"{case.id} does not persist")
    rng = np.random.default_rng(17)
    queries = unit(rng, 4)
    with case.open(tmp_path) as g:
        model = populate(g, n=10, seed=18)
        g.rename("s03", "renamed")
        model["renamed"] = model.pop("s03")
        g.remove("s04")
        model.pop("s04")
        before = g.search_many(queries, k=3, threshold=0.2, fingerprint=FP)
        subjects, batch = g.subjects(), g.templates_many()
    with case.open(tmp_path) as g:
        assert g.subjects() == subjects and g.fingerprint == FP and g.dim == DIM
        np.testing.assert_array_equal(g.templates_many().embeddings, batch.embeddings)
        assert g.search_many(queries, k=3, threshold=0.2, fingerprint=FP) == before
        assert_agrees(g, model, queries, k=3)


def test_search_sees_commits_of_another_connection(case: BackendCase, tmp_path: Path) -> None:
    if not case.persists:
        pytest.skip(f"{case.id} has no second connection to the same store")
    rng = np.random.default_rng(19)
    queries = unit(rng, 3)
    with case.open(tmp_path) as reader, case.open(tmp_path) as writer:
        model = populate(writer, n=6, seed=20)
        assert_agrees(reader, model, queries)  # builds the reader's index
        extra = unit(rng, 2)
        writer.enroll("late", extra, fingerprint=FP)
        model["late"] = extra
        assert_agrees(reader, model, np.vstack([queries, extra]))
        writer.remove("s01")
        writer.rename("s02", "moved")
        model.pop("s01")
        model["moved"] = model.pop("s02")
        assert_agrees(reader, model, queries)
        assert reader.score(extra[0], ["late"], threshold=0.5, fingerprint=FP)[0].similarity == pytest.approx(1.0)


def test_v1_file_written_by_hand_opens(tmp_path: Path) -> None:
    """A database in the v1 on-disk schema (as every faceprint so far wrote it) opens and searches."""
    path = tmp_path / "v1.db"
    e = np.eye(DIM, dtype=np.float32)
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
        CREATE TABLE subjects (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, created_at TEXT, metadata TEXT);
        CREATE TABLE templates (id INTEGER PRIMARY KEY,
            subject_id INTEGER NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
            embedding BLOB NOT NULL, fingerprint TEXT NOT NULL, source TEXT, created_at TEXT);
        CREATE INDEX templates_subject_id ON templates(subject_id);
        INSERT INTO meta VALUES ('schema_version', '1'), ('fingerprint', 'old-model'), ('dim', '16');
        INSERT INTO subjects VALUES (3, 'ann', '2024-01-01T00:00:00.000+00:00', '{"a": 1}'),
                                    (7, 'bob', '2024-01-02T00:00:00.000+00:00', NULL);
        """
    )
    conn.executemany(
        "INSERT INTO templates(subject_id, embedding, fingerprint, source, created_at) "
        "VALUES (?, ?, 'old-model', ?, '')",
        [(3, e[0].tobytes(), "a.jpg"), (7, e[1].tobytes(), None), (3, e[2].tobytes(), None)],
    )
    conn.commit()
    conn.close()
    with open_gallery(f"sqlite:///{path}") as g:
        assert g.subjects() == [
            Subject(3, "ann", 2, "2024-01-01T00:00:00.000+00:00", {"a": 1}),
            Subject(7, "bob", 1, "2024-01-02T00:00:00.000+00:00", {}),
        ]
        np.testing.assert_array_equal(g.templates("ann"), e[[0, 2]])
        assert g.search(e[2], k=1, threshold=0.5, fingerprint="old-model") == [
            Match(subject_id=3, name="ann", similarity=1.0, distance=0.0, same=True, threshold=0.5)
        ]
        with pytest.raises(EmbedderMismatchError):
            g.enroll("cat", e[3], fingerprint="new-model")


# ------------------------------------------------------------------ open_gallery


def test_open_gallery_relative_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    with open_gallery("sqlite:///sub/people.db") as g:
        assert isinstance(g, Gallery) and g.path == "sub/people.db"
        g.enroll("ann", np.eye(4)[0], fingerprint=FP)
    assert (tmp_path / "sub" / "people.db").is_file()
    with Gallery(tmp_path / "sub" / "people.db") as same:
        assert [s.name for s in same.subjects()] == ["ann"]


def test_open_gallery_absolute_url_and_bare_path(tmp_path: Path) -> None:
    path = tmp_path / "abs.db"
    assert str(path).startswith("/")
    with open_gallery(f"sqlite:///{path}") as g:  # sqlite:////tmp/... : four slashes
        assert g.path == str(path)
        g.enroll("ann", np.eye(4)[0], fingerprint=FP)
    for bare in (str(path), path):
        with open_gallery(bare) as g:
            assert isinstance(g, Gallery) and g.path == str(path) and "ann" in g
    with open_gallery(f"sqlite:///{path}?index=exact") as g:
        assert len(g) == 1 and "index='exact'" in repr(g)


def test_open_gallery_in_memory() -> None:
    for url in ("sqlite://", "sqlite:///:memory:"):
        with open_gallery(url) as g:
            assert g.path == ":memory:" and len(g) == 0


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mongodb://localhost:27017/faces", "unsupported gallery URL scheme 'mongodb'.*supported schemes: milvus, "
         "milvus-lite, sqlite"),
        ("milvus://user:secret@localhost:19530/faces", "no credentials.*FACEPRINT_MILVUS_TOKEN"),
        ("milvus:///faces", "no host"),
        ("milvus://localhost:19530/faces?colour=red", "unknown milvus gallery option"),
        ("milvus://localhost:19530/faces?ef=many", "ef must be an integer"),
        ("milvus://localhost:19530/faces?secure=maybe", "secure must be 1 or 0"),
        ("milvus://localhost:port/faces", "malformed milvus"),
        ("milvus-lite://people.db", "milvus-lite:///relative"),
        ("milvus-lite:///people.txt", "ends in .db"),
        ("milvus-lite:///missing/people.db", "does not exist"),
        ("milvus-lite:///people.db?index=hnsw", "unknown milvus-lite gallery option"),
        ("postgresql://db/people", "scheme 'postgresql'"),
        ("sqlite://host/people.db", "no host"),
        ("sqlite:///people.db?colour=red", "unknown sqlite gallery option"),
        ("sqlite:///people.db?index", "unknown sqlite gallery option|malformed"),
    ],
)
def test_open_gallery_bad_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, message: str) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnsupportedGalleryURLError, match=message) as info:
        open_gallery(url)
    assert isinstance(info.value, ValueError) and isinstance(info.value, FaceprintError)
    assert list(tmp_path.iterdir()) == []  # nothing created


def test_open_gallery_unknown_index_lists_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="valid names: auto, exact, hnsw"):
        open_gallery(f"sqlite:///{tmp_path / 'x.db'}?index=nope")


def test_a_scheme_is_one_registration(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[tuple[str, dict[str, str]]] = []

    def open_fake(rest: str, options: dict[str, str]) -> GalleryBackend:
        opened.append((rest, options))
        return Gallery(":memory:")

    monkeypatch.setitem(GALLERY_SCHEMES._factories, "fake", open_fake)
    with open_gallery("fake://host:1/coll?x=1") as g:
        assert isinstance(g, Gallery)
    assert opened == [("host:1/coll", {"x": "1"})]
    with pytest.raises(UnsupportedGalleryURLError, match="supported schemes: fake, milvus, milvus-lite, sqlite"):
        open_gallery("nope://x")
