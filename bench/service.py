"""Service benchmark: ``faceprint serve`` under 1, 4 and 16 concurrent clients, next to the same work in process.

A gallery of ``--people`` LFW people (the first photo of each of the first people, by name, who have
at least two photos) is enrolled once through the library and cached in ``bench/cache``. Probes are
LFW photos: the second photo of enrolled people (mated) and photos of people who are not enrolled
(non-mated), read into memory once.

Service: a real ``faceprint serve`` process on 127.0.0.1 (a free port) over a copy of the cached
gallery, with a ``recognize`` key made by ``faceprint keys create``. Each level runs ``clients``
closed-loop clients (threads with keep-alive ``http.client`` connections, the multipart bodies
encoded once by httpx beforehand: see :func:`drive_service`) for ``--duration`` seconds; each
POSTs a probe (multipart ``file``) to
``/api/v1/recognition/recognize`` (and, at one level, ``/v1/identify``) and records the latency and
the status. A 503 (full queue) is counted and its client waits 0.1 s before the next request;
a request that takes longer than ``--timeout`` is a time-out.

In process: the same pipeline call the route makes (``FacePipeline.identify(image bytes, gallery,
k=1, select="all")``), on as many threads as the service's pool, each with its own pipeline built
like the service's, driven by ``clients`` closed-loop submitters for the same time. The two halves
are interleaved in one run (``--rounds`` slices each per level: service, in process, service, ...),
on the same machine, the same probes and the same gallery file, so a drift of a shared machine
hits both alike; the per-round overheads are kept to show the spread. The HTTP clients run on the
same cores as the server, so their CPU (``client_cpu_ms_per_request``) counts against the service.
Overhead = 1 - service requests/s / in-process calls/s, and the p50 latency ratio.

    python bench/service.py [--people 1000] [--clients 1 4 16] [--duration 30] [--rounds 5] [--quick]
        -> bench/results/service.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
# one OpenMP thread per inference thread, here and in the server process (which inherits it)
os.environ.setdefault("OMP_NUM_THREADS", "1")

RESULTS = ROOT / "bench" / "results" / "service.json"
CACHE = ROOT / "bench" / "cache"
ROUTES = {
    "recognize": "/api/v1/recognition/recognize?prediction_count=1",
    "identify": "/v1/identify?k=1",
}


# ------------------------------------------------------------------------------------------- data


def lfw_people(images: Path) -> tuple[list[tuple[str, list[Path]]], list[tuple[str, list[Path]]]]:
    """(people with >= 2 photos, people with 1 photo), each sorted by name; photos sorted."""
    several: list[tuple[str, list[Path]]] = []
    single: list[tuple[str, list[Path]]] = []
    for person in sorted(p for p in images.iterdir() if p.is_dir()):
        photos = sorted(person.glob("*.jpg"))
        if len(photos) >= 2:
            several.append((person.name, photos))
        elif photos:
            single.append((person.name, photos))
    return several, single


@dataclass(frozen=True)
class Workload:
    gallery_names: list[str]
    enroll_photos: list[Path]
    probes: list[tuple[str, bytes, bool]]  # (person, JPEG bytes, enrolled)


def workload(images: Path, people: int, mated: int, non_mated: int) -> Workload:
    several, single = lfw_people(images)
    if len(several) < people:
        raise SystemExit(f"LFW has {len(several)} people with >= 2 photos; asked for {people}")
    chosen = several[:people]
    step = max(1, people // mated)
    probes = [(name, photos[1].read_bytes(), True) for name, photos in chosen[::step][:mated]]
    probes += [(name, photos[0].read_bytes(), False) for name, photos in single[:non_mated]]
    random.Random(0).shuffle(probes)  # mated and non-mated mixed, the same order in every run
    return Workload([n for n, _ in chosen], [photos[0] for _, photos in chosen], probes)


def cached_gallery(work: Workload, pipeline: Any) -> tuple[Path, dict[str, Any]]:
    """The enrolled gallery file (built once, then reused while the same people are asked for)."""
    from faceprint.gallery import Gallery

    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"service_gallery_{len(work.gallery_names)}_{pipeline.model_key}.db"
    stamp = path.with_suffix(".json")
    if path.exists() and stamp.exists():
        info: dict[str, Any] = json.loads(stamp.read_text())
        if info.get("names") == work.gallery_names:
            return path, info["summary"]
    for leftover in path.parent.glob(path.name + "*"):
        leftover.unlink()
    started = time.perf_counter()
    failed: list[str] = []
    with Gallery(path) as gallery:
        for name, photo in zip(work.gallery_names, work.enroll_photos):
            try:
                pipeline.enroll(name, photo, gallery)
            except Exception as exc:  # noqa: BLE001 - a photo with no face: skipped and counted
                failed.append(f"{photo.name}: {type(exc).__name__}")
        subjects = len(gallery.subjects())
    summary = {"subjects": subjects, "enroll_failed": len(failed), "enroll_s": round(time.perf_counter() - started, 1)}
    stamp.write_text(json.dumps({"names": work.gallery_names, "summary": summary}))
    return path, summary


# ------------------------------------------------------------------------------------- statistics


@dataclass
class Tally:
    latencies_s: list[float] = field(default_factory=list)  # successful requests
    statuses: dict[str, int] = field(default_factory=dict)
    timeouts: int = 0
    errors: int = 0  # anything but 200 and 503 (and time-outs)
    wall_s: float = 0.0
    cpu_s: float | None = None  # CPU time of the side doing the work (server process / this process)
    client_cpu_s: float | None = None  # CPU time of the HTTP clients (this process), service runs only

    def count(self, status: str) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1

    def add(self, other: Tally) -> None:
        """Fold another round of the same level into this one."""
        self.latencies_s += other.latencies_s
        for status, n in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + n
        self.timeouts += other.timeouts
        self.errors += other.errors
        self.wall_s += other.wall_s
        for name in ("cpu_s", "client_cpu_s"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if theirs is not None:
                setattr(self, name, theirs if mine is None else mine + theirs)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summarise(t: Tally) -> dict[str, Any]:
    ok = len(t.latencies_s)
    ms = [v * 1e3 for v in t.latencies_s]
    return {
        "ok": ok,
        "requests_per_s": round(ok / t.wall_s, 2) if t.wall_s else 0.0,
        "p50_ms": round(statistics.median(ms), 1) if ms else None,
        "p95_ms": round(percentile(ms, 0.95), 1) if ms else None,
        "p99_ms": round(percentile(ms, 0.99), 1) if ms else None,
        "max_ms": round(max(ms), 1) if ms else None,
        "busy_503": t.statuses.get("503", 0),
        "timeouts": t.timeouts,
        "errors": t.errors,
        "statuses": dict(sorted(t.statuses.items())),
        "wall_s": round(t.wall_s, 2),
        "cpu_ms_per_request": round(t.cpu_s / ok * 1e3, 1) if t.cpu_s is not None and ok else None,
        "client_cpu_ms_per_request": (
            round(t.client_cpu_s / ok * 1e3, 1) if t.client_cpu_s is not None and ok else None
        ),
    }


# ----------------------------------------------------------------------------------- the service


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``faceprint serve`` in a subprocess; ``stop()`` sends SIGTERM and waits."""

    def __init__(self, tmp: Path, gallery: Path, *, threads: int, queue: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / "serve.log"
        keys = tmp / "keys.db"
        env = {**os.environ, "FACEPRINT_SERVICE_THREADS": str(threads), "FACEPRINT_SERVICE_QUEUE": str(queue)}
        made = subprocess.run(
            [sys.executable, "-m", "faceprint.cli", "keys", "create", "--role", "recognize", "--keys", str(keys)],
            env=env, capture_output=True, text=True, check=True,
        )
        self.key = made.stdout.strip()
        cmd = [sys.executable, "-m", "faceprint.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port),
               "--gallery", str(gallery), "--keys", str(keys)]
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout_s: float = 180.0) -> float:
        import httpx

        started = time.perf_counter()
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"faceprint serve exited:\n{self.log.read_text()}")
            try:
                r = httpx.get(f"{self.url}/ready", headers={"x-api-key": self.key}, timeout=2)
                if r.status_code == 200:
                    return time.perf_counter() - started
            except httpx.HTTPError:
                pass
            if time.perf_counter() - started > timeout_s:
                raise SystemExit(f"faceprint serve not ready after {timeout_s} s:\n{self.log.read_text()}")
            time.sleep(0.2)

    def cpu_s(self) -> float:
        """User + system CPU seconds the server process has used so far (Linux /proc)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def run_threads(target: Callable[[], None], n: int) -> tuple[float, float]:
    """Run ``target`` on ``n`` threads to the end; (wall seconds, this process's CPU seconds)."""
    started, cpu = time.perf_counter(), time.process_time()
    drivers = [threading.Thread(target=target) for _ in range(n)]
    for d in drivers:
        d.start()
    for d in drivers:
        d.join()
    return time.perf_counter() - started, time.process_time() - cpu


def multipart_bodies(url: str, probes: Sequence[tuple[str, bytes, bool]]) -> list[tuple[bytes, str]]:
    """Each probe as the multipart body (and its content type) httpx would send, encoded once."""
    import httpx

    bodies = []
    for _, body, _ in probes:
        request = httpx.Request("POST", url, files={"file": ("probe.jpg", body, "image/jpeg")})
        bodies.append((request.read(), request.headers["content-type"]))
    return bodies


def drive_service(
    port: int, key: str, route: str, bodies: Sequence[tuple[bytes, str]], clients: int, duration_s: float,
    timeout_s: float,
) -> Tally:
    """``clients`` closed-loop clients (threads, each one keep-alive ``http.client`` connection) for
    ``duration_s``; each request's latency and status.

    The bodies are encoded once beforehand and the clients are the standard library's, because they
    share the server's cores: httpx's async client costs about 4 ms of CPU per request here, this one
    about 0.6 ms, and a client's CPU is CPU the server does not get.
    """
    tally = Tally()
    lock = threading.Lock()
    counter = iter(range(10**12))
    deadline = time.perf_counter() + duration_s

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
        try:
            while time.perf_counter() < deadline:
                with lock:
                    content, content_type = bodies[next(counter) % len(bodies)]
                sent = time.perf_counter()
                try:
                    conn.request("POST", route, body=content, headers={"content-type": content_type, "x-api-key": key})
                    response = conn.getresponse()
                    response.read()
                except TimeoutError:
                    with lock:
                        tally.timeouts += 1
                    conn.close()  # reconnects on the next request
                    continue
                except (OSError, http.client.HTTPException):
                    with lock:
                        tally.errors += 1
                        tally.count("transport")
                    conn.close()
                    continue
                took = time.perf_counter() - sent
                with lock:
                    tally.count(str(response.status))
                    if response.status == 200:
                        tally.latencies_s.append(took)
                    elif response.status != 503:
                        tally.errors += 1
                if response.status == 503:
                    time.sleep(0.1)
        finally:
            conn.close()

    tally.wall_s, tally.client_cpu_s = run_threads(client, clients)
    return tally


def service_round(server: Server, route: str, bodies: Sequence[tuple[bytes, str]], clients: int,
                  duration_s: float, timeout_s: float) -> Tally:
    before = server.cpu_s()
    tally = drive_service(server.port, server.key, route, bodies, clients, duration_s, timeout_s)
    tally.cpu_s = server.cpu_s() - before
    return tally


# ------------------------------------------------------------------------------------ in process


def service_like_pipelines(threads: int) -> list[Any]:
    """As ``create_app``'s lifespan builds them: one warm pipeline per inference thread, from one spec."""
    from faceprint.pipeline import FacePipeline
    from faceprint.server.app import _pipelines

    return _pipelines(FacePipeline(detector="yunet", embedder="sface"), threads)


def drive_in_process(
    call: Callable[[Any, bytes], Any], pipelines: Sequence[Any], probes: Sequence[tuple[str, bytes, bool]],
    clients: int, duration_s: float,
) -> Tally:
    """``clients`` closed-loop submitters to a pool of ``len(pipelines)`` threads, each lending one pipeline."""
    import queue as queue_mod

    free: queue_mod.SimpleQueue[Any] = queue_mod.SimpleQueue()
    for p in pipelines:
        free.put(p)
    tally = Tally()
    lock = threading.Lock()
    counter = iter(range(10**12))
    deadline = time.perf_counter() + duration_s

    def lend(body: bytes) -> None:
        p = free.get()
        try:
            call(p, body)
        finally:
            free.put(p)

    with ThreadPoolExecutor(max_workers=len(pipelines)) as pool:

        def submitter() -> None:
            while time.perf_counter() < deadline:
                with lock:
                    _, body, _ = probes[next(counter) % len(probes)]
                sent = time.perf_counter()
                try:
                    pool.submit(lend, body).result()
                except Exception:  # noqa: BLE001 - counted, as the service answers 4xx
                    with lock:
                        tally.errors += 1
                    continue
                with lock:
                    tally.latencies_s.append(time.perf_counter() - sent)
                    tally.count("200")

        tally.wall_s, tally.cpu_s = run_threads(submitter, clients)
    return tally


# ------------------------------------------------------------------------------------------- main


def overhead(service: dict[str, Any], local: dict[str, Any]) -> dict[str, Any]:
    if not local["requests_per_s"] or not service["requests_per_s"]:
        return {"throughput_overhead": None, "p50_ratio": None}
    return {
        "throughput_overhead": round(1.0 - service["requests_per_s"] / local["requests_per_s"], 3),
        "p50_ratio": round(service["p50_ms"] / local["p50_ms"], 3),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--people", type=int, default=1000, help="people in the gallery")
    ap.add_argument("--mated", type=int, default=150, help="probes of enrolled people")
    ap.add_argument("--non-mated", type=int, default=50, help="probes of people not enrolled")
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--duration", type=float, default=30.0, help="seconds per level and side")
    ap.add_argument("--rounds", type=int, default=5,
                    help="service and in-process slices per level, interleaved (duration / rounds each)")
    ap.add_argument("--timeout", type=float, default=30.0, help="client time-out per request, seconds")
    ap.add_argument("--threads", type=int, default=2, help="service inference threads (FACEPRINT_SERVICE_THREADS)")
    ap.add_argument("--queue", type=int, default=8, help="service queue (FACEPRINT_SERVICE_QUEUE)")
    ap.add_argument("--identify-at", type=int, default=4, help="also time /v1/identify at this many clients (0: no)")
    ap.add_argument("--quick", action="store_true", help="100 people, 3 s per level (a smoke run)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    if args.quick:
        args.people, args.mated, args.non_mated, args.duration = 100, 30, 10, 3.0

    from faceprint import __version__
    from faceprint.datasets.lfw import lfw_paths
    from faceprint.gallery import Gallery

    images = lfw_paths().images
    work = workload(images, args.people, args.mated, args.non_mated)
    builder = service_like_pipelines(1)[0]
    gallery_file, enrolled = cached_gallery(work, builder)
    print(f"gallery: {enrolled['subjects']} subjects ({gallery_file.name}); probes: {len(work.probes)} "
          f"({sum(p[2] for p in work.probes)} mated)")
    load_before = os.getloadavg()

    result: dict[str, Any] = {
        "benchmark": "service",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "faceprint": __version__,
        "python": platform.python_version(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "load_average_before": [round(x, 2) for x in load_before],
        "settings": {
            "service_threads": args.threads, "service_queue": args.queue, "duration_s": args.duration,
            "timeout_s": args.timeout, "rounds": args.rounds, "route": ROUTES["recognize"],
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        },
        "gallery": {"people": args.people, **enrolled},
        "probes": {"mated": sum(p[2] for p in work.probes), "non_mated": sum(not p[2] for p in work.probes)},
        "levels": [],
    }

    levels = [("recognize", c) for c in args.clients]
    if args.identify_at:
        levels.append(("identify", args.identify_at))
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        served = tmp / "gallery.db"
        shutil.copyfile(gallery_file, served)
        server = Server(tmp, served, threads=args.threads, queue=args.queue)
        pipelines = service_like_pipelines(args.threads)
        try:
            ready_s = server.wait_ready()
            result["service_ready_s"] = round(ready_s, 1)
            with Gallery(served) as gallery:
                def recognize(p: Any, body: bytes) -> Any:
                    return p.identify(body, gallery, k=1, select="all")

                def identify(p: Any, body: bytes) -> Any:
                    return p.identify(body, gallery, k=1, fmr="1e-3", select="all")

                calls = {"recognize": recognize, "identify": identify}
                # warm both sides: the server's index and first requests, this process's index
                bodies = multipart_bodies(server.url, work.probes)
                drive_service(server.port, server.key, ROUTES["recognize"], bodies[:4], 1, 1.0, 30)
                recognize(pipelines[0], work.probes[0][1])
                slice_s = args.duration / args.rounds
                for route, clients in levels:
                    service, local = Tally(), Tally()
                    per_round = []
                    for _ in range(args.rounds):  # interleaved: a drift of the machine hits both sides alike
                        svc = service_round(server, ROUTES[route], bodies, clients, slice_s, args.timeout)
                        loc = drive_in_process(calls[route], pipelines, work.probes, clients, slice_s)
                        per_round.append(overhead(summarise(svc), summarise(loc))["throughput_overhead"])
                        service.add(svc)
                        local.add(loc)
                    shown_s, shown_l = summarise(service), summarise(local)
                    level = {"route": route, "clients": clients, "service": shown_s, "in_process": shown_l,
                             **overhead(shown_s, shown_l), "throughput_overhead_per_round": per_round}
                    result["levels"].append(level)
                    print(f"service  {route:9s} {clients:2d} client(s): {shown_s}")
                    print(f"in-proc  {route:9s} {clients:2d} client(s): {shown_l}")
                    print(f"overhead {level['throughput_overhead']} (rounds: {per_round})")
        finally:
            server.stop()
        result["service_log_tail"] = server.log.read_text(errors="replace")[-2000:]

    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print("\nroute      clients  service req/s  in-proc /s  overhead  p50 svc/in  p99 svc ms  errors  503  time-outs"
          "  cpu ms svc/in  client cpu ms")
    for lv in result["levels"]:
        s, loc = lv["service"], lv["in_process"]
        print(f"{lv['route']:10s} {lv['clients']:7d}  {s['requests_per_s']:13.2f}  {loc['requests_per_s']:10.2f}  "
              f"{lv['throughput_overhead']!s:>8}  {lv['p50_ratio']!s:>10}  {s['p99_ms']!s:>10}  {s['errors']:6d}  "
              f"{s['busy_503']:3d}  {s['timeouts']:9d}  "
              f"{s['cpu_ms_per_request']!s:>6}/{loc['cpu_ms_per_request']!s:<6}  "
              f"{s['client_cpu_ms_per_request']!s:>13}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
