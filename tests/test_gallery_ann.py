"""The approximate indexes: HNSW (usearch; f32, f16, i8) and ``auto`` (exact below a size, HNSW above).

Recall and similarity error are checked against :class:`ExactIndex` on clustered unit vectors (a
few near neighbours per query, as mated faces have), not only on uniform random ones, where every
neighbour is about as far as any other. The gallery-level contract (``tests/test_gallery_contract.py``)
runs on ``auto`` and ``hnsw``; the quantised variants are bounded here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceprint.errors import InvalidArgumentError
from faceprint.gallery import (
    INDEXES,
    AutoIndex,
    ExactIndex,
    Gallery,
    HNSWIndex,
    ScoringIndex,
    VectorIndex,
    make_index,
    open_gallery,
)

DIM = 32
FP = "ann-test-v1"


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def clustered(n: int, seed: int = 0, per: int = 4, spread: float = 0.35) -> np.ndarray:
    """``n`` unit vectors in clusters of ``per`` around random centres (cosine ~0.9 within a cluster)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n // per + 1, DIM))
    points = np.repeat(centres, per, axis=0)[:n] + spread * rng.standard_normal((n, DIM)) / np.sqrt(DIM) * 4
    return unit(points)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    vectors = clustered(4000)
    ids = np.arange(4000, dtype=np.int64) * 3 + 5  # not 0..n-1: ids are keys, not positions
    rng = np.random.default_rng(1)
    picks = rng.choice(4000, 200, replace=False)
    queries = unit(vectors[picks] + 0.1 * rng.standard_normal((200, DIM)) / np.sqrt(DIM) * 4)
    return ids, vectors, queries


def exact_top(ids: np.ndarray, vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    index = ExactIndex(DIM)
    index.add(ids, vectors)
    return index.search(queries, k)


@pytest.mark.parametrize(("dtype", "sim_error"), [("f32", 1e-6), ("f16", 2e-3), ("i8", 3e-2)])
def test_hnsw_recall_and_similarity_error_against_exact(
    data: tuple[np.ndarray, np.ndarray, np.ndarray], dtype: str, sim_error: float
) -> None:
    ids, vectors, queries = data
    want_sims, want_ids = exact_top(ids, vectors, queries, 10)
    index = HNSWIndex(DIM, dtype=dtype)
    assert isinstance(index, VectorIndex) and isinstance(index, ScoringIndex)
    index.add(ids, vectors)
    sims, got = index.search(queries, 10)
    recall_1 = float(np.mean(got[:, 0] == want_ids[:, 0]))
    recall_10 = np.mean([len(set(g) & set(w)) / 10 for g, w in zip(got.tolist(), want_ids.tolist(), strict=True)])
    assert recall_1 >= 0.98 and recall_10 >= 0.95, (dtype, recall_1, recall_10)
    # the similarity reported for a hit is that pair's cosine, to the storage type's precision
    truth = np.einsum("mkd,md->mk", vectors[(got - 5) // 3], queries)
    assert np.abs(sims - truth).max() <= sim_error
    assert (np.diff(sims, axis=1) <= 0).all()  # each row best first
    # score gives the bits search gave, for the same pairs
    for row in range(5):
        np.testing.assert_array_equal(index.score(queries[row : row + 1], got[row])[0], sims[row])


def test_ef_trades_recall_and_is_validated(data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    ids, vectors, queries = data
    _, want = exact_top(ids, vectors, queries, 1)
    index = HNSWIndex(DIM, ef=256)
    index.add(ids, vectors)
    assert index.ef == 256
    wide = float(np.mean(index.search(queries, 1)[1][:, 0] == want[:, 0]))
    index.ef = 1
    narrow = float(np.mean(index.search(queries, 1)[1][:, 0] == want[:, 0]))
    assert wide >= 0.99 and narrow <= wide
    for bad in (0, -3, 2.5, True):
        with pytest.raises(InvalidArgumentError, match="ef"):
            index.ef = bad  # type: ignore[assignment]
        with pytest.raises(InvalidArgumentError):
            HNSWIndex(DIM, ef=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="dtype"):
        HNSWIndex(DIM, dtype="f64")


def test_hnsw_removals_additions_padding_and_bad_ids() -> None:
    vectors = clustered(300, seed=3)
    index = make_index("hnsw", DIM)
    index.add(np.arange(300), vectors)
    index.remove(np.array([0, 1, 2, 999, -4]))  # unknown and negative ids are ignored
    assert len(index) == 297
    sims, ids = index.search(vectors[:3], 5)
    assert not np.isin(ids, [0, 1, 2]).any()
    index.add(np.array([1]), vectors[1:2])  # a removed id may come back
    assert index.search(vectors[1:2], 1)[1][0, 0] == 1
    with pytest.raises(InvalidArgumentError, match="unique"):
        index.add(np.array([1]), vectors[1:2])
    with pytest.raises(InvalidArgumentError, match=">= 0"):
        index.add(np.array([-1]), vectors[:1])
    with pytest.raises(InvalidArgumentError, match="shape"):
        index.add(np.array([5000]), vectors[:1, :4])
    with pytest.raises(InvalidArgumentError, match="queries"):
        index.search(vectors[:1, :4], 1)
    small = HNSWIndex(DIM)
    assert small.search(vectors[:2], 3)[1].tolist() == [[-1, -1, -1]] * 2  # empty
    small.add(np.array([7, 9]), vectors[:2])
    sims, ids = small.search(vectors[:1], 4)
    assert ids[0].tolist() == [7, 9, -1, -1] and np.isneginf(sims[0, 2:]).all()
    assert np.isneginf(small.score(vectors[:1], np.array([7, 8, -1]))[0, 1:]).all()


def test_auto_is_exact_below_its_size_then_hnsw(data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    ids, vectors, queries = data
    index = AutoIndex(DIM, exact_below=1000)
    exact = ExactIndex(DIM)
    index.add(ids[:999], vectors[:999])
    exact.add(ids[:999], vectors[:999])
    assert not index.approximate
    for got, want in zip(index.search(queries, 5), exact.search(queries, 5), strict=True):
        np.testing.assert_array_equal(got, want)  # bit for bit the exact index below the size
    index.add(ids[999:], vectors[999:])
    assert index.approximate and len(index) == 4000
    _, want = exact_top(ids, vectors, queries, 1)
    assert float(np.mean(index.search(queries, 1)[1][:, 0] == want[:, 0])) >= 0.98
    index.remove(ids[:10])
    assert len(index) == 3990 and index.approximate  # does not switch back
    assert not np.isin(index.search(vectors[:10], 3)[1], ids[:10]).any()
    with pytest.raises(InvalidArgumentError, match="exact_below"):
        AutoIndex(DIM, exact_below=0)
    with pytest.raises(InvalidArgumentError, match="dtype"):
        AutoIndex(DIM, dtype="f64")  # HNSW options are checked before any switch


def test_registry_names_and_unknown_options() -> None:
    assert {"exact", "auto", "hnsw", "hnsw-f16", "hnsw-i8"} <= set(INDEXES.names())
    assert make_index("hnsw-i8", DIM).dtype == "i8"  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        make_index("exact", DIM, ef=10)


def test_gallery_takes_its_index_from_settings_and_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    monkeypatch.setenv("FACEPRINT_INDEX", "auto")
    monkeypatch.setenv("FACEPRINT_INDEX_EXACT_BELOW", "30")
    monkeypatch.setenv("FACEPRINT_HNSW_EF", "99")
    with Gallery(tmp_path / "g.db") as gallery:
        for i in range(40):
            gallery.enroll(f"p{i}", unit(rng.standard_normal((1, DIM))), fingerprint=FP)
        probe = gallery.templates("p7")[0]
        assert gallery.search(probe, k=1, threshold=0.5, fingerprint=FP)[0].name == "p7"
        inner = gallery._tindex._index
        assert isinstance(inner, AutoIndex) and inner.approximate and "ef=99" in repr(inner)
    monkeypatch.setenv("FACEPRINT_HNSW_EF", "0")
    with pytest.raises(InvalidArgumentError, match="FACEPRINT_HNSW_EF"):
        Gallery(tmp_path / "g.db")
    monkeypatch.delenv("FACEPRINT_HNSW_EF")
    with open_gallery(f"sqlite:///{tmp_path / 'g.db'}?index=hnsw&ef=17") as gallery:
        assert gallery.search(probe, k=1, threshold=0.5, fingerprint=FP)[0].name == "p7"
        assert "index='hnsw'" in repr(gallery) and gallery._tindex._index.ef == 17  # type: ignore[attr-defined]
    with pytest.raises(InvalidArgumentError, match="exact_below"):
        Gallery(tmp_path / "g.db", index="hnsw", index_options={"exact_below": 5})
    with pytest.raises(ValueError, match="integer"):
        open_gallery(f"sqlite:///{tmp_path / 'g.db'}?ef=many")


@pytest.mark.parametrize("index", ["hnsw", "exact"])
def test_creating_subjects_and_removing_examples_update_the_index_in_place(tmp_path: Path, index: str) -> None:
    """A large HNSW graph takes minutes to build: these writes must not throw it away."""
    rng = np.random.default_rng(8)
    with Gallery(tmp_path / "g.db", index=index) as gallery:
        for i in range(20):
            gallery.enroll(f"p{i}", unit(rng.standard_normal((2, DIM))), fingerprint=FP)
        first, second = gallery.templates("p3")
        assert gallery.search(first, k=1, threshold=0.5, fingerprint=FP)[0].name == "p3"
        builds = gallery.index_stats.builds
        gallery.create("nobody-yet")
        doomed = [e.id for e in gallery.examples("p3")][0]
        gallery.remove_examples([doomed])
        hits = gallery.search(first, k=3, threshold=-1.0, fingerprint=FP)
        kept = {m.name: m.similarity for m in hits}
        assert kept.get("p3", -2.0) < 0.999  # the removed template no longer matches itself
        assert gallery.search(second, k=1, threshold=0.5, fingerprint=FP)[0].name == "p3"
        assert gallery.index_stats.builds == builds
        with Gallery(tmp_path / "g.db", index=index) as fresh:  # the same answers as a fresh build
            assert [(m.name, m.similarity) for m in fresh.search(first, k=3, threshold=-1.0, fingerprint=FP)] == [
                (m.name, m.similarity) for m in hits
            ]


# ------------------------------------------------------------------ the saved graph beside the database


def _hnsw_gallery(path: Path, people: int = 60, seed: int = 9) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    enrolled = {}
    with Gallery(path, index="hnsw") as gallery:
        for i in range(people):
            enrolled[f"p{i}"] = unit(rng.standard_normal((2, DIM)))
            gallery.enroll(f"p{i}", enrolled[f"p{i}"], fingerprint=FP)
        gallery.rebuild_index()  # a full build saves the graph
    return enrolled


def _answers(gallery: Gallery, probes: np.ndarray) -> list[list[tuple[str, float]]]:
    return [[(m.name, m.similarity) for m in row]
            for row in gallery.search_many(probes, k=3, threshold=-1.0, fingerprint=FP)]


def test_a_saved_graph_is_loaded_and_catches_up_with_the_change_log(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    enrolled = _hnsw_gallery(db)
    probes = np.stack([t[0] for t in enrolled.values()])[:10]
    with Gallery(db, index="hnsw") as gallery:
        files = gallery.index_files()
        assert files is not None and all(f.exists() for f in files)
        assert all(f.stat().st_mode & 0o777 == 0o600 for f in files)
        loaded = _answers(gallery, probes)
        assert gallery.index_stats.loads == 1 and gallery.index_stats.builds == 0
        # another connection enrolls and renames: the loaded graph applies the change log
        with Gallery(db, index="exact") as writer:
            writer.enroll("late", unit(np.ones((1, DIM))), fingerprint=FP)
            writer.rename("p1", "p1-renamed")
        hits = gallery.search(unit(np.ones((1, DIM)))[0], k=1, threshold=0.5, fingerprint=FP)
        assert hits[0].name == "late" and gallery.index_stats.builds == 0 and gallery.index_stats.refreshes == 1
    with Gallery(db, index="exact") as exact:
        truth = _answers(exact, probes)
    names = [[(n if n != "p1" else "p1-renamed", s) for n, s in row] for row in loaded]
    assert [[n for n, _ in row] for row in names] == [[n for n, _ in row] for row in truth]
    np.testing.assert_allclose([[s for _, s in r] for r in loaded], [[s for _, s in r] for r in truth], atol=1e-6)
    with Gallery(db, index="hnsw") as again:  # closed with changes: saved again, loaded with them
        assert again.search(unit(np.ones((1, DIM)))[0], k=1, threshold=0.5, fingerprint=FP)[0].name == "late"
        assert again.index_stats.loads == 1 and again.index_stats.refreshes == 0 and again.index_stats.builds == 0


def test_a_damaged_or_foreign_saved_graph_is_rebuilt_not_trusted(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    enrolled = _hnsw_gallery(db)
    probe = enrolled["p5"][0]
    with Gallery(db, index="hnsw") as gallery:
        graph, maps, manifest = gallery.index_files()  # type: ignore[misc]
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF
    graph.write_bytes(bytes(data))  # one flipped byte: the sha256 no longer matches
    with Gallery(db, index="hnsw") as gallery:
        assert gallery.search(probe, k=1, threshold=0.5, fingerprint=FP)[0].name == "p5"
        assert gallery.index_stats.loads == 0 and gallery.index_stats.builds == 1  # and saved afresh
    with Gallery(db, index="hnsw", index_options={"connectivity": 8}) as other:  # built with other options
        assert other.search(probe, k=1, threshold=0.5, fingerprint=FP)[0].name == "p5"
        assert other.index_stats.loads == 0 and other.index_stats.builds == 1
    manifest.write_text("{not json")
    with Gallery(db, index="hnsw", index_options={"connectivity": 8}) as gallery:
        assert gallery.search(probe, k=1, threshold=0.5, fingerprint=FP)[0].name == "p5"
        assert gallery.index_stats.builds == 1


def test_deleting_wipes_the_saved_graph(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    enrolled = _hnsw_gallery(db)
    doomed = enrolled["p7"][0].tobytes()
    with Gallery(db, index="hnsw") as gallery:
        files = gallery.index_files()
        assert files is not None and doomed in files[0].read_bytes()  # f32 graph: the vector as stored
        gallery.search(enrolled["p7"][0], k=1, threshold=0.5, fingerprint=FP)
        gallery.remove("p7")
        assert not any(f.exists() for f in files)
    # the graph still holds the removed vector's bytes (usearch keeps them): not saved on close
    assert not any(f.exists() for f in files)
    with Gallery(db, index="hnsw") as gallery:
        assert "p7" not in [m.name for m in gallery.search(enrolled["p7"][0], k=3, threshold=-1, fingerprint=FP)]
        assert gallery.index_stats.loads == 0 and gallery.index_stats.builds == 1  # built afresh, and saved
    assert doomed not in files[0].read_bytes()
    with np.load(files[1], allow_pickle=False) as maps:
        assert "p7" not in maps["names"].tolist() and "p8" in maps["names"].tolist()
    assert enrolled["p8"][0].tobytes() in files[0].read_bytes()
    with Gallery(db, index="hnsw") as gallery:
        gallery.search(enrolled["p8"][0], k=1, threshold=0.5, fingerprint=FP)
        assert gallery.index_stats.loads == 1


def test_encrypted_and_in_memory_galleries_save_no_graph(tmp_path: Path) -> None:
    key = bytes(range(32))
    with Gallery(tmp_path / "e.db", index="hnsw", template_key=key) as gallery:
        gallery.enroll("a", unit(np.ones((1, DIM))), fingerprint=FP)
        gallery.rebuild_index()
        assert gallery.index_files() is None
    assert sorted(p.name for p in tmp_path.iterdir() if ".index" in p.name) == []
    with Gallery(":memory:", index="hnsw") as gallery:
        assert gallery.index_files() is None


def test_asking_for_everything_returns_every_vector_whatever_the_graph_reaches() -> None:
    vectors = clustered(500, seed=13)
    for seed in range(3):
        index = HNSWIndex(DIM, ef=1, connectivity=2)  # a poor graph: walks miss many nodes
        order = np.random.default_rng(seed).permutation(500)
        index.add(order, vectors[order])
        sims, ids = index.search(vectors[:4], 500)
        assert (np.sort(ids, axis=1) == np.arange(500)).all()
        np.testing.assert_allclose(sims, np.sort(vectors[:4] @ vectors.T, axis=1)[:, ::-1], atol=1e-6)


def test_the_settings_defaults_are_the_index_defaults() -> None:
    from faceprint.gallery.index import DEFAULT_EF, DEFAULT_EXACT_BELOW
    from faceprint.settings import Settings

    settings = Settings()
    assert (settings.index, settings.hnsw_ef, settings.index_exact_below) == ("exact", DEFAULT_EF, DEFAULT_EXACT_BELOW)
