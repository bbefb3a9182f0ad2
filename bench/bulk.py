"""Bulk enrollment benchmark: images/s of ``faceprint.bulk.enroll_photos`` sequential, on a local
process pool and on Ray, on the same photos and cores, side by side; then the gallery's commit rate
and a written estimate for a cluster.

Photos: the first ``--photos`` LFW photos (people by name, every photo of each), linked into a
temporary folder of person sub-folders. Each configuration enrolls them all into a fresh SQLite
gallery (YuNet + SFace, as ``faceprint enroll-dir``):

- ``sequential-1t`` / ``sequential-2t``: in this process, 1 and 2 inference threads;
- ``process-2x1t``: a pool of 2 spawned processes, 1 thread each;
- ``ray-2x1t``: Ray Data ``map_batches`` over 2 actors of 1 CPU and 1 thread (Ray started for the
  run with ``ray.init(num_cpus=2, include_dashboard=False)`` and timed apart).

Wall images/s counts everything (start-up, model loading, commits); steady images/s is the rate
between the first and the last result (workers warm). The commit rate is ``gallery.enroll`` of
precomputed templates in batches of 64, the single writer every runner ends in.

    python bench/bulk.py [--photos 400] -> bench/results/bulk.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("OMP_NUM_THREADS", "1")

RESULTS = ROOT / "bench" / "results" / "bulk.json"


def link_photos(lfw: Path, n: int, into: Path) -> int:
    count = 0
    for person in sorted(p for p in lfw.iterdir() if p.is_dir()):
        (into / person.name).mkdir(parents=True)
        for photo in sorted(person.iterdir()):
            (into / person.name / photo.name).symlink_to(photo)
            count += 1
            if count == n:
                return count
    return count


def run_one(name: str, folder: Path, gallery_path: Path, runner: Any) -> dict[str, Any]:
    from faceprint.bulk import enroll_photos, scan_folder
    from faceprint.gallery import Gallery
    from faceprint.pipeline import PipelineSpec

    photos, _ = scan_folder(folder)
    marks: list[tuple[int, float]] = []
    start = time.perf_counter()
    with Gallery(gallery_path) as g:
        report = enroll_photos(g, photos, PipelineSpec(), runner=runner, runner_name=name, batch_size=64,
                               progress=lambda done, total: marks.append((done, time.perf_counter())))
    wall = time.perf_counter() - start
    steady = [m for m in marks[1:]]  # marks[0]: before any embedding
    rate = ((steady[-1][0] - steady[0][0]) / (steady[-1][1] - steady[0][1])
            if len(steady) >= 2 and steady[-1][1] > steady[0][1] else 0.0)
    row = {"runner": name, "photos": len(photos), "enrolled": report.enrolled, "failed": len(report.failures),
           "wall_s": round(wall, 2), "wall_images_per_s": round(len(photos) / wall, 2),
           "steady_images_per_s": round(rate, 2),
           "first_result_s": round(steady[0][1] - start, 2) if steady else None}
    print(f"  {name:15s} wall {wall:7.1f} s  {row['wall_images_per_s']:6.1f} img/s  steady {rate:6.1f} img/s  "
          f"first result after {row['first_result_s']} s  enrolled {report.enrolled}  failed {len(report.failures)}")
    return row


def commit_rate(gallery_path: Path, n: int = 20_000) -> float:
    import numpy as np

    from faceprint.gallery import Gallery

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n, 128)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    start = time.perf_counter()
    with Gallery(gallery_path) as g:
        for i in range(0, n, 64):  # a batch: 64 photos of ~16 people
            for j in range(i, min(i + 64, n), 4):
                g.enroll(f"p{j // 4}", vectors[j : j + 4], fingerprint="bench",
                         content_sha256=[f"{k:064x}" for k in range(j, j + 4)])
    return n / (time.perf_counter() - start)


CONFIGS = ("sequential-1t", "sequential-2t", "process-2x1t", "ray-2x1t")


def run_config(name: str, folder: Path, gallery_path: Path) -> dict[str, Any]:
    """One configuration, in this (fresh) process."""
    from faceprint import runtime
    from faceprint.bulk import process_runner, sequential_runner

    if name == "sequential-1t":
        runtime.set_num_threads(1)
        return run_one(name, folder, gallery_path, sequential_runner())
    if name == "sequential-2t":
        runtime.set_num_threads(2)
        return run_one(name, folder, gallery_path, sequential_runner())
    if name == "process-2x1t":
        runtime.set_num_threads(1)
        return run_one(name, folder, gallery_path, process_runner(2, threads=1))
    import ray

    from faceprint.distributed import ray_runner

    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    init_s = time.perf_counter() - t0
    try:
        row = run_one(name, folder, gallery_path, ray_runner("local", workers=2, threads=1))
    finally:
        ray.shutdown()
    return {**row, "ray_init_s": round(init_s, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=400)
    ap.add_argument("--skip", nargs="*", default=[])
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--only", help=argparse.SUPPRESS)  # internal: one configuration, a row of JSON on the last line
    ap.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.only:
        row = run_config(args.only, args.folder, args.folder.parent / f"{args.only}.db")
        print(json.dumps(row))
        return

    from faceprint.datasets import data_root

    root = data_root()
    if root is None:
        sys.exit("LFW not found: set FACEPRINT_DATA")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "people"
        n = link_photos(root / "lfw" / "lfw-deepfunneled", args.photos, folder)
        print(f"{n} LFW photos; {os.cpu_count()} cores; each configuration in a fresh process")
        for name in CONFIGS:
            if name in args.skip:
                continue
            done = subprocess.run([sys.executable, __file__, "--only", name, "--folder", str(folder)],
                                  capture_output=True, text=True, check=False)
            lines = [line for line in done.stdout.splitlines() if line.strip()]
            if done.returncode != 0 or not lines:
                sys.exit(f"{name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
            print("\n".join(lines[:-1]))
            rows.append(json.loads(lines[-1]))
        commit = round(commit_rate(Path(tmp) / "commit.db"), 1)
        print(f"  SQLite commit (precomputed templates, batches of 64): {commit} templates/s")
    out = {
        "benchmark": "bulk enrollment images/s (bench/bulk.py)",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "photos": n,
        "rows": rows,
        "sqlite_commit_templates_per_s": commit,
        "note": "development numbers on LFW photos (250x250); 2 shared cores; nothing else running unless said",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")


if __name__ == "__main__":
    main()
