"""Scale benchmark: 1:N search of 128-d SFace templates at 10^4, 10^5 and 10^6, exact and approximate.

Data (development numbers, on LFW; the embeddings come from ``bench/lfw_embeddings.py``'s cache):

* gallery: the first photo of each LFW person with two or more photos (about 1,680 people);
* mated queries: the second photo of ``--queries`` of those people (chosen evenly by name);
* distractors, filling the gallery up to each size: first the photo of each LFW person with one
  photo (about 3,200 real faces), then synthetic ones, each the L2-normalised blend of two random
  real distractors (weights 0.3-0.7) plus Gaussian noise (half a coordinate's spread): points in
  the region faces occupy, each its own identity, and not faces: a real million-face gallery holds
  look-alikes and near-duplicates that make a mated query's neighbourhood more crowded than here.
  (A first version drew them from a Gaussian with the embeddings' mean and covariance, inserted
  after the real faces: graph indexes then lost half the mates at 10^5, as the real faces sat
  apart from the synthetic cloud; templates are now inserted in a fixed random order.)

Indexes: ``exact`` (faceprint's ExactIndex, numpy), ``faiss-flat`` (IndexFlatIP), ``hnsw`` and
``hnsw-i8`` (faceprint's HNSWIndex, usearch, at several ``ef``), ``faiss-hnsw`` (IndexHNSWFlat,
M=32, efConstruction=128, efSearch=128), ``milvus-lite`` (a Milvus Lite file, HNSW M=16,
efConstruction 128, COSINE, searched through pymilvus at ef 64 / 256 / 512: each call crosses
Milvus Lite's in-process gRPC server). Builds run on 2 threads, searches on 1 (the service runs
one search per inference thread). Per index and size: build seconds; memory (the index's own count
where it has one, else its vectors' bytes; and the growth of this process's resident memory);
per-query p50 / p99 at batch 1, and at batch 32 (a batch's time / 32); recall@1 and @10 against the
exact index's top 10; decision recall, the share of the queries exact search names someone for
(its top-1 at or above SFace's 1:1 threshold at FMR 1e-3) whose top-1 the index reproduces; and
mate@1, the share of mated queries whose best hit is their own person's
template (what identification sees).

End to end (``--end-to-end``): a SQLite gallery of that many templates (the same vectors, written
with SQL once and cached in ``bench/cache``) opened with the default index (``FACEPRINT_INDEX``): the first
build from the store, the saved graph's size and the next open's load, then ``--photos`` LFW probe
photos through ``FacePipeline.identify`` (detect, align, embed, search, decide), each next to its
search alone: the share of a decision's time that search takes.

    python bench/scale.py [--sizes 10000 100000 1000000] [--queries 500] [--skip faiss-hnsw]
                          [--end-to-end 1000000] [--photos 100]
        -> bench/results/scale.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # numpy's BLAS: one thread (set before numpy loads)

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

RESULTS = ROOT / "bench" / "results" / "scale.json"
BUILD_THREADS = 2
EF_SWEEP = (32, 64, 128, 256, 512)
CONNECTIVITY = 16  # --connectivity: HNSWIndex's links per node (faceprint's default)
Search = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]


def rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# ------------------------------------------------------------------------------------------- data


def lfw_sets(queries: int) -> dict[str, Any]:
    """Gallery templates (with person labels), mated queries (with labels), real distractors, and
    the mean / covariance of every LFW embedding."""
    import lfw_embeddings

    paths, names, emb = lfw_embeddings.load()
    by_person: dict[str, list[int]] = {}
    for i, name in enumerate(names.tolist()):
        by_person.setdefault(name, []).append(i)
    several = sorted(p for p, rows in by_person.items() if len(rows) >= 2)
    single = sorted(p for p, rows in by_person.items() if len(rows) == 1)
    gallery = emb[[by_person[p][0] for p in several]]
    step = max(1, len(several) // queries)
    chosen = list(range(0, len(several), step))[:queries]
    probes = emb[[by_person[several[i]][1] for i in chosen]]
    return {
        "gallery": gallery.astype(np.float32),
        "probes": probes.astype(np.float32),
        "probe_mates": np.array(chosen, dtype=np.int64),  # row of the mate in ``gallery``
        "probe_paths": [str(paths[by_person[several[i]][1]]) for i in chosen],  # relative to lfw-deepfunneled
        "gallery_names": several,
        "real_distractors": emb[[by_person[p][0] for p in single]].astype(np.float32),
        "photos": int(emb.shape[0]),
        "people": {"gallery": len(several), "single_photo": len(single)},
    }


def synthetic(n: int, parents: np.ndarray, seed: int, noise: float = 0.5) -> np.ndarray:
    """``n`` new points of the face region: each the L2-normalised blend ``w a + (1 - w) b`` of two
    random real distractor embeddings (``w`` uniform in 0.3-0.7) plus Gaussian noise of ``noise``
    times a typical embedding coordinate's spread (float32, in chunks)."""
    rng = np.random.default_rng(seed)
    scale = float(parents.std())
    out = np.empty((n, parents.shape[1]), np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        a = parents[rng.integers(0, parents.shape[0], stop - start)]
        b = parents[rng.integers(0, parents.shape[0], stop - start)]
        w = rng.uniform(0.3, 0.7, (stop - start, 1))
        x = w * a + (1 - w) * b + noise * scale * rng.standard_normal(a.shape)
        out[start:stop] = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return out


def vectors_of_size(sets: dict[str, Any], size: int) -> np.ndarray:
    """``size`` templates: the gallery people's first (rows 0..), then real distractors, then synthetic."""
    real = np.concatenate([sets["gallery"], sets["real_distractors"]])
    if size <= real.shape[0]:
        return np.ascontiguousarray(real[:size])
    return np.concatenate([real, synthetic(size - real.shape[0], sets["real_distractors"], seed=size)])


def insertion_order(size: int) -> np.ndarray:
    """A fixed random order to insert templates in: a graph index's quality depends on the order,
    and galleries are not enrolled real faces first, distractors after."""
    return np.random.default_rng(size).permutation(size)


# ------------------------------------------------------------------------------------------ indexes


def build_index(name: str, vectors: np.ndarray, ef: int | None = None) -> tuple[Any, Search, int | None]:
    """(the index, its search(queries, k) -> (sims, ids), its own memory count or None)."""
    order = insertion_order(vectors.shape[0])
    ids, vectors = order.astype(np.int64), np.ascontiguousarray(vectors[order])
    if name == "exact":
        from faceprint.gallery import ExactIndex

        index = ExactIndex(vectors.shape[1])
        index.add(ids, vectors)
        return index, index.search, int(vectors.nbytes + ids.nbytes)
    if name in ("hnsw", "hnsw-i8"):
        from faceprint.gallery import HNSWIndex

        graph = HNSWIndex(vectors.shape[1], dtype="i8" if name == "hnsw-i8" else "f32", connectivity=CONNECTIVITY,
                          **({"ef": ef} if ef else {}))
        graph.add(ids, vectors)
        return graph, graph.search, graph.memory_bytes
    if name == "milvus-lite":
        return milvus_lite_index(ids, vectors, ef or 256)
    import faiss

    def by_id(found: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        sims, positions = found  # FAISS numbers vectors by insertion: back to the template ids
        return sims, np.where(positions >= 0, ids[np.clip(positions, 0, None)], -1)

    if name == "faiss-flat":
        flat = faiss.IndexFlatIP(vectors.shape[1])
        flat.add(vectors)
        return flat, lambda q, k: by_id(flat.search(q, k)), int(vectors.nbytes)
    if name == "faiss-hnsw":
        hnsw = faiss.IndexHNSWFlat(vectors.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = 128
        hnsw.add(vectors)
        hnsw.hnsw.efSearch = 128
        return hnsw, lambda q, k: by_id(hnsw.search(q, k)), None
    raise SystemExit(f"unknown index {name!r}")


class MilvusLite:
    """A Milvus Lite collection (HNSW, COSINE, M=CONNECTIVITY, efConstruction 128) in a temporary file:
    what a ``milvus-lite://`` gallery searches (without the gallery's grouping and re-scoring)."""

    def __init__(self, ids: np.ndarray, vectors: np.ndarray, ef: int) -> None:
        import tempfile

        from pymilvus import DataType, MilvusClient

        self.ef = ef
        self._dir = tempfile.TemporaryDirectory()
        self.client = MilvusClient(str(Path(self._dir.name) / "scale.db"))
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=vectors.shape[1])
        params = self.client.prepare_index_params()
        params.add_index(field_name="vector", index_type="HNSW", metric_type="COSINE",
                         params={"M": CONNECTIVITY, "efConstruction": 128})
        self.client.create_collection("scale", schema=schema, consistency_level="Strong")
        self.client.create_index("scale", params, sync=False)
        self.client.load_collection("scale")
        for start in range(0, len(ids), 10_000):
            self.client.insert("scale", [{"id": int(i), "vector": v}
                                         for i, v in zip(ids[start : start + 10_000], vectors[start : start + 10_000],
                                                         strict=True)])
        self.client.flush("scale")
        deadline = time.monotonic() + 3600
        while time.monotonic() < deadline:  # searches start once every row is in the HNSW index
            state = self.client.describe_index("scale", "vector")
            if int(state.get("indexed_rows", 0)) >= len(ids) and int(state.get("pending_index_rows", 0)) == 0:
                break
            time.sleep(1)
        self.index_state = state
        time.sleep(30)  # Milvus Lite seals and indexes segments in the background after reporting "Finished"
        self.search(vectors[:1], 1)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        found = self.client.search("scale", data=list(np.asarray(queries, np.float32)), limit=k,
                                   search_params={"metric_type": "COSINE", "params": {"ef": max(self.ef, k)}})
        sims = np.full((len(found), k), -np.inf, np.float32)
        out = np.full((len(found), k), -1, np.int64)
        for i, hits in enumerate(found):
            for j, hit in enumerate(hits):
                sims[i, j], out[i, j] = hit["distance"], hit["id"]
        return sims, out


def milvus_lite_index(ids: np.ndarray, vectors: np.ndarray, ef: int) -> tuple[Any, Search, int | None]:
    index = MilvusLite(ids, vectors, ef)
    return index, index.search, None


def timed_searches(search: Search, probes: np.ndarray, k: int) -> dict[str, float]:
    singles = []
    for q in probes:
        started = time.perf_counter()
        search(q[None], k)
        singles.append(time.perf_counter() - started)
    batched = []
    for start in range(0, probes.shape[0] - 31, 32):
        begun = time.perf_counter()
        search(probes[start : start + 32], k)
        batched.append((time.perf_counter() - begun) / 32)
    ms = sorted(v * 1e3 for v in singles)
    return {
        "p50_ms": round(statistics.median(ms), 4),
        "p99_ms": round(ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))], 4),
        "batch32_ms_per_query": round(statistics.median(batched) * 1e3, 4) if batched else None,
    }


def quality(search: Search, probes: np.ndarray, truth: np.ndarray, mates: np.ndarray,
            decided: np.ndarray) -> dict[str, float]:
    _, got = search(probes, 10)
    got = np.asarray(got)
    recall_1 = float(np.mean(got[:, 0] == truth[:, 0]))
    # the queries exact search names someone for (top-1 at or above the 1:1 threshold at FMR 1e-3):
    # the share of those decisions the index reproduces (a miss elsewhere changes no decision)
    decision = float(np.mean(got[decided, 0] == truth[decided, 0])) if decided.any() else float("nan")
    recall_10 = float(np.mean([len(set(g) & set(t)) / 10 for g, t in zip(got.tolist(), truth.tolist(), strict=True)]))
    return {"recall_at_1": round(recall_1, 4), "recall_at_10": round(recall_10, 4),
            "decision_recall": round(decision, 4), "mate_at_1": round(float(np.mean(got[:, 0] == mates)), 4)}


def measure(name: str, vectors: np.ndarray, probes: np.ndarray, truth: np.ndarray, mates: np.ndarray,
            decided: np.ndarray, efs: Sequence[int | None]) -> list[dict[str, Any]]:
    from faceprint.runtime import set_num_threads

    gc.collect()
    rss_before = rss_bytes()
    set_num_threads(BUILD_THREADS)
    if name.startswith("faiss"):
        import faiss

        faiss.omp_set_num_threads(BUILD_THREADS)
    started = time.perf_counter()
    index, search, own_bytes = build_index(name, vectors)
    build_s = time.perf_counter() - started
    rss_growth = rss_bytes() - rss_before
    set_num_threads(1)
    if name.startswith("faiss"):
        faiss.omp_set_num_threads(1)
    rows = []
    for ef in efs:
        if ef is not None:
            index.ef = ef
        search(probes[:8], 10)  # warm
        row = {"index": name, "ef": ef, "build_s": round(build_s, 2), "memory_bytes": own_bytes,
               "rss_growth_bytes": rss_growth, **timed_searches(search, probes, 10),
               **quality(search, probes, truth, mates, decided)}
        print(f"  {name:10s} ef={ef!s:>4}  build {build_s:7.1f} s  p50 {row['p50_ms']:8.3f} ms  "
              f"p99 {row['p99_ms']:8.3f} ms  b32 {row['batch32_ms_per_query']!s:>8} ms  "
              f"recall@1 {row['recall_at_1']:.3f}  @10 {row['recall_at_10']:.3f}  "
              f"decisions {row['decision_recall']:.3f}  "
              f"mate@1 {row['mate_at_1']:.3f}  "
              f"mem {(own_bytes or 0) / 2**20:7.1f} MiB  rss+ {rss_growth / 2**20:7.1f} MiB", flush=True)
        rows.append(row)
    del index, search
    gc.collect()
    return rows


# ------------------------------------------------------------------------------- end to end


def gallery_file(sets: dict[str, Any], size: int, fingerprint: str) -> Path:
    """A SQLite gallery of ``size`` templates (LFW gallery people by name, then distractors), written
    with SQL once and cached (what enrolling through the library would store, without the photos)."""
    import sqlite3

    from faceprint.gallery import Gallery

    path = ROOT / "bench" / "cache" / f"scale_gallery_{size}.db"
    stamp = path.with_name(path.name + ".done")
    if path.exists() and stamp.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    for leftover in path.parent.glob(path.name + "*"):
        leftover.unlink()
    vectors = vectors_of_size(sets, size)
    names = list(sets["gallery_names"]) + [f"distractor-{i}" for i in range(size - len(sets["gallery_names"]))]
    Gallery(path, index="exact").close()  # the schema
    conn = sqlite3.connect(path)
    conn.executemany("INSERT INTO meta(key, value) VALUES (?, ?)",
                     [("fingerprint", fingerprint), ("dim", str(vectors.shape[1]))])
    conn.executemany("INSERT INTO subjects(id, name) VALUES (?, ?)", ((i + 1, n) for i, n in enumerate(names)))
    conn.executemany(  # template ids in the same random order as the benchmark's insertions
        "INSERT INTO templates(subject_id, embedding, fingerprint) VALUES (?, ?, ?)",
        ((int(i) + 1, vectors[i].tobytes(), fingerprint) for i in insertion_order(size)),
    )
    conn.commit()
    conn.close()
    stamp.touch()
    return path


def end_to_end(sets: dict[str, Any], size: int, photos: int) -> dict[str, Any]:
    """Probe photo -> decision through ``FacePipeline.identify`` on a ``size``-template gallery with
    the default index (``FACEPRINT_INDEX``; ``exact`` unless set): the first search's build, the save
    on close and the next open's load, then per photo the whole call next to its search alone."""
    from faceprint.datasets import data_root
    from faceprint.gallery import Gallery
    from faceprint.io import load_image
    from faceprint.pipeline import FacePipeline
    from faceprint.runtime import set_num_threads

    pipeline = FacePipeline(detector="yunet", embedder="sface")
    fingerprint = str(pipeline.embedder.fingerprint)  # type: ignore[attr-defined]
    path = gallery_file(sets, size, fingerprint)
    for leftover in path.parent.glob(path.name + ".index*"):
        leftover.unlink()  # time a build from the store first
    root = data_root(required=True)
    assert root is not None
    images = [load_image(root / "lfw" / "lfw-deepfunneled" / p) for p in sets["probe_paths"][:photos]]
    out: dict[str, Any] = {"templates": size, "photos": len(images)}
    set_num_threads(BUILD_THREADS)
    with Gallery(path) as gallery:
        started = time.perf_counter()
        gallery.rebuild_index()
        out["first_build_s"] = round(time.perf_counter() - started, 1)
        out["index"] = repr(gallery._tindex._index)
        saved = gallery.index_files()
        out["saved_bytes"] = sum(f.stat().st_size for f in saved if f.exists()) if saved else 0
    with Gallery(path) as gallery:
        started = time.perf_counter()
        gallery.search(sets["probes"][0], k=1, threshold=0.5, fingerprint=fingerprint)
        out["open_from_saved_s"] = round(time.perf_counter() - started, 1)
        out["loads"] = gallery.index_stats.loads
        set_num_threads(1)
        pipeline.identify(images[0], gallery, k=1, select="central")  # warm
        whole, search, right = [], [], 0
        for image, mate in zip(images, sets["probe_mates"][:photos], strict=False):
            begun = time.perf_counter()
            result = pipeline.identify(image, gallery, k=1, select="central")
            whole.append(time.perf_counter() - begun)
            if result and result[0].matches and result[0].matches[0].name == sets["gallery_names"][int(mate)]:
                right += 1
            face = pipeline.face(image, select="central")
            begun = time.perf_counter()
            gallery.search(face.embedding, k=1, threshold=0.5, fingerprint=fingerprint)
            search.append(time.perf_counter() - begun)
    out["identify_p50_ms"] = round(statistics.median(whole) * 1e3, 2)
    out["search_p50_ms"] = round(statistics.median(search) * 1e3, 3)
    out["search_share"] = round(statistics.median(search) / statistics.median(whole), 4)
    out["named_correctly"] = round(right / len(images), 4)
    print(f"end to end at {size:,}: {out}", flush=True)
    return out


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--queries", type=int, default=500, help="mated queries (LFW second photos)")
    ap.add_argument("--skip", nargs="*", default=[], help="indexes to leave out (e.g. faiss-hnsw: slow to build)")
    ap.add_argument("--end-to-end", type=int, default=1_000_000,
                    help="templates of the end-to-end gallery (FacePipeline.identify on photos); 0: skip")
    ap.add_argument("--photos", type=int, default=100, help="probe photos of the end-to-end part")
    ap.add_argument("--connectivity", type=int, default=16, help="links per node (M) of faceprint's HNSW rows")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    global CONNECTIVITY
    CONNECTIVITY = args.connectivity

    from faceprint import __version__
    from faceprint.gallery.index import DEFAULT_EF
    from faceprint.thresholds import threshold_for_fmr

    threshold = threshold_for_fmr("sface", 1e-3)
    sets = lfw_sets(args.queries)
    probes, mates = sets["probes"], sets["probe_mates"]
    print(f"LFW: {sets['photos']} photos; gallery {sets['gallery'].shape[0]} people, {probes.shape[0]} mated "
          f"queries, {sets['real_distractors'].shape[0]} real distractors")
    versions: dict[str, str] = {}
    for module in ("usearch", "faiss", "numpy"):
        try:
            versions[module] = str(__import__(module).__version__)
        except ImportError:
            versions[module] = "absent"
    result: dict[str, Any] = {
        "benchmark": "scale",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "faceprint": __version__,
        "versions": versions,
        "python": platform.python_version(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "threads": {"build": BUILD_THREADS, "search": 1},
        "hnsw_connectivity": CONNECTIVITY,
        "data": {"photos": sets["photos"], **sets["people"], "queries": int(probes.shape[0]),
                 "real_distractors": int(sets["real_distractors"].shape[0]),
                 "synthetic": "L2-normalised blends w*a + (1-w)*b of two random real distractors, w in "
                              "0.3-0.7, plus N(0, (0.5 * coordinate sd)^2) noise; inserted in a fixed random order"},
        "default_ef": DEFAULT_EF,
        "decision_threshold": {"model": "sface", "fmr": 1e-3, "similarity": round(float(threshold), 4)},
        "sizes": [],
    }
    indexes = [n for n in ("exact", "faiss-flat", "hnsw", "hnsw-i8", "faiss-hnsw", "milvus-lite") if n not in args.skip]
    try:
        import pymilvus  # noqa: F401
    except ImportError:  # pip install 'faceprint[milvus]' (make test) brings it
        print("pymilvus is not installed: the Milvus Lite rows are left out")
        indexes = [n for n in indexes if n != "milvus-lite"]
    if versions["faiss"] == "absent":  # pip install -r requirements/bench.txt (make bench) brings it
        print("faiss-cpu is not installed: the FAISS rows are left out")
        indexes = [n for n in indexes if not n.startswith("faiss")]
    for size in args.sizes:
        vectors = vectors_of_size(sets, size)
        print(f"\n{size:,} templates")
        from faceprint.gallery import ExactIndex

        exact = ExactIndex(vectors.shape[1])
        exact.add(np.arange(size, dtype=np.int64), vectors)
        exact_sims, truth = exact.search(probes, 10)
        decided = exact_sims[:, 0] >= threshold
        del exact
        rows: list[dict[str, Any]] = []
        for name in indexes:
            efs: list[int | None] = (list(EF_SWEEP) if name in ("hnsw", "hnsw-i8") else
                                     [64, 256, 512] if name == "milvus-lite" else [None])
            rows += measure(name, vectors, probes, truth, mates, decided, efs)
        result["sizes"].append({"templates": size, "decided_queries": int(decided.sum()), "rows": rows})
        del vectors
        gc.collect()
    if args.end_to_end:
        result["end_to_end"] = end_to_end(sets, args.end_to_end, args.photos)
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
