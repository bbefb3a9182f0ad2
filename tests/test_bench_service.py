"""bench/service.py's parts on fakes (no models, no server): so the benchmark cannot rot silently."""

from __future__ import annotations

import importlib.util
import math
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "service.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_service", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_service"] = module
    spec.loader.exec_module(module)
    return module


def _fake_lfw(root: Path) -> Path:
    for name, n in [("Ann_A", 3), ("Bob_B", 1), ("Cid_C", 2), ("Dee_D", 1), ("Eve_E", 2)]:
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(1, n + 1):
            (folder / f"{name}_{i:04d}.jpg").write_bytes(f"{name}-{i}".encode())
    return root


def test_workload_enrolls_first_photos_and_probes_with_others(bench: ModuleType, tmp_path: Path) -> None:
    work = bench.workload(_fake_lfw(tmp_path), people=3, mated=3, non_mated=2)
    assert work.gallery_names == ["Ann_A", "Cid_C", "Eve_E"]  # >= 2 photos, by name
    assert [p.name for p in work.enroll_photos] == ["Ann_A_0001.jpg", "Cid_C_0001.jpg", "Eve_E_0001.jpg"]
    mated = sorted(body for _, body, enrolled in work.probes if enrolled)
    assert mated == [b"Ann_A-2", b"Cid_C-2", b"Eve_E-2"]  # never the enrolled photo
    strangers = sorted(name for name, _, enrolled in work.probes if not enrolled)
    assert strangers == ["Bob_B", "Dee_D"]
    again = bench.workload(tmp_path, people=3, mated=3, non_mated=2)
    assert [p[1] for p in again.probes] == [p[1] for p in work.probes]  # the same order every run
    with pytest.raises(SystemExit, match="3 people with >= 2 photos"):
        bench.workload(tmp_path, people=4, mated=1, non_mated=0)


def test_summarise_and_overhead(bench: ModuleType) -> None:
    t = bench.Tally(latencies_s=[0.01 * i for i in range(1, 101)], wall_s=2.0, cpu_s=1.0)
    for _ in range(100):
        t.count("200")
    t.count("503")
    s = bench.summarise(t)
    assert s["ok"] == 100 and s["requests_per_s"] == 50.0
    assert s["p50_ms"] == pytest.approx(505.0) and s["p99_ms"] == pytest.approx(990.0)
    assert s["busy_503"] == 1 and s["cpu_ms_per_request"] == 10.0
    local = {**s, "requests_per_s": 100.0, "p50_ms": 252.5}
    o = bench.overhead(s, local)
    assert o == {"throughput_overhead": 0.5, "p50_ratio": 2.0}
    assert bench.overhead({**s, "requests_per_s": 0.0}, local)["throughput_overhead"] is None
    assert math.isnan(bench.percentile([], 0.5))


def test_drive_in_process_lends_each_pipeline_to_one_call_at_a_time(bench: ModuleType) -> None:
    busy: set[int] = set()
    overlap: list[int] = []

    def call(pipeline: int, body: bytes) -> None:
        assert pipeline not in busy, "a pipeline was lent to two calls at once"
        busy.add(pipeline)
        overlap.append(len(busy))
        time.sleep(0.002)
        busy.discard(pipeline)
        if body == b"bad":
            raise ValueError("no face")

    probes = [("a", b"ok", True), ("b", b"bad", False)]
    t = bench.drive_in_process(call, [1, 2], probes, clients=4, duration_s=0.3)
    assert t.latencies_s and t.errors > 0  # failures counted, not raised
    assert max(overlap) <= 2  # never more calls at once than pipelines
    assert t.wall_s >= 0.3 and t.cpu_s is not None
