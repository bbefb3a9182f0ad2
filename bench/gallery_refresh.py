"""Gallery refresh benchmark: a long-lived reader's first search after another connection enrolls one subject.

A gallery of N random unit templates (dimension 128, as SFace; 2 templates per subject) is opened
by a long-lived reader ``Gallery`` whose index is built. Then, R times: another connection (a
second ``Gallery`` on the file; SQLite's ``PRAGMA data_version`` cannot tell it from another
process) enrolls one subject, and the reader's next search is timed

* incremental: what ``Gallery`` does now (apply the change log: read one subject),
* full rebuild: what it did before schema 2 (``rebuild_index()`` from the whole store, then search),

next to a search with no change in between. Each mode runs R times in a row (a long-lived reader
builds once, then refreshes many times); the first refresh after a build is reported on its own,
as it also pays a one-off growth of the exact index's buffer. Templates are inserted with SQL to
build the file quickly; every timed write goes through ``Gallery.enroll``.

    python bench/gallery_refresh.py [--sizes 10000 100000] [--repeats 15]   # -> bench/results/gallery_refresh.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from faceprint import __version__  # noqa: E402
from faceprint.gallery import SCHEMA_VERSION, Gallery  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "gallery_refresh.json"
DIM = 128
PER_SUBJECT = 2
FP = "bench-random-128"
SEED = 0


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def populate(path: Path, n_templates: int, rng: np.random.Generator) -> None:
    Gallery(path).close()  # the schema
    conn = sqlite3.connect(path)
    conn.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", [("fingerprint", FP), ("dim", str(DIM))])
    n_subjects = n_templates // PER_SUBJECT
    conn.executemany("INSERT INTO subjects(id, name) VALUES (?, ?)", ((i, f"s{i}") for i in range(1, n_subjects + 1)))
    vectors = unit(rng, n_subjects * PER_SUBJECT)
    conn.executemany(
        "INSERT INTO templates(subject_id, embedding, fingerprint) VALUES (?, ?, ?)",
        ((1 + i // PER_SUBJECT, vectors[i].tobytes(), FP) for i in range(vectors.shape[0])),
    )
    conn.commit()
    conn.close()


def ms(values: list[float]) -> dict[str, float]:
    values = sorted(v * 1e3 for v in values)
    return {
        "median_ms": round(statistics.median(values), 2),
        "p90_ms": round(values[int(0.9 * (len(values) - 1))], 2),
        "min_ms": round(values[0], 2),
    }


def run(n_templates: int, repeats: int) -> dict[str, Any]:
    rng = np.random.default_rng(SEED)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gallery.db"
        populate(path, n_templates, rng)
        with Gallery(path) as reader, Gallery(path) as writer:
            query = unit(rng, 1)[0]
            t0 = time.perf_counter()
            reader.search(query, k=5, threshold=0.5, fingerprint=FP)
            first = time.perf_counter() - t0
            timings: dict[str, list[float]] = {"unchanged": [], "incremental": [], "full_rebuild": []}
            for mode in ("unchanged", "incremental", "full_rebuild"):
                for r in range(repeats + (mode == "incremental")):
                    fresh = unit(rng, PER_SUBJECT)
                    if mode != "unchanged":
                        writer.enroll(f"{mode}-{r}", fresh, fingerprint=FP)
                    t0 = time.perf_counter()
                    if mode == "full_rebuild":
                        reader.rebuild_index()
                    top = reader.search(fresh[0], k=5, threshold=0.5, fingerprint=FP)
                    timings[mode].append(time.perf_counter() - t0)
                    if mode != "unchanged":
                        assert top[0].name == f"{mode}-{r}", top  # the enrollment is seen
            stats = reader.index_stats
    first_refresh = timings["incremental"].pop(0)
    incremental, full = ms(timings["incremental"]), ms(timings["full_rebuild"])
    return {
        "n_templates": n_templates,
        "n_subjects": n_templates // PER_SUBJECT,
        "first_search_with_build_ms": round(first * 1e3, 1),
        "search_unchanged": ms(timings["unchanged"]),
        "search_after_remote_enroll_incremental": incremental,
        "first_incremental_after_build_ms": round(first_refresh * 1e3, 2),
        "search_after_remote_enroll_full_rebuild": full,
        "speedup_median": round(full["median_ms"] / incremental["median_ms"], 1),
        "reader_index_stats": {"builds": stats.builds, "refreshes": stats.refreshes},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    rows = []
    for n in args.sizes:
        row = run(n, args.repeats)
        rows.append(row)
        print(
            f"N={n:>7,} templates: search {row['search_unchanged']['median_ms']:.2f} ms unchanged; after one "
            f"remote enrollment {row['search_after_remote_enroll_incremental']['median_ms']:.2f} ms incremental "
            f"(first after the build {row['first_incremental_after_build_ms']:.1f} ms) vs "
            f"{row['search_after_remote_enroll_full_rebuild']['median_ms']:.1f} ms full rebuild "
            f"(x{row['speedup_median']}, median of {args.repeats}); reader {row['reader_index_stats']}"
        )
    out = {
        "meta": {
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "faceprint": __version__,
            "schema_version": SCHEMA_VERSION,
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "numpy": np.__version__,
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "dim": DIM,
            "templates_per_subject": PER_SUBJECT,
            "index": "exact",
            "repeats": args.repeats,
            "writer": "a second Gallery connection on the same file (Gallery.enroll, one subject)",
        },
        "results": rows,
    }
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
