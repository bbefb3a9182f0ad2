"""Bulk enrollment (``faceprint enroll-dir``, :mod:`faceprint.bulk`, :mod:`faceprint.distributed`):
listing, failures that never stop a run, reruns that skip what is done, a run killed with ``kill -9``
and started again, and the same subjects and templates from the sequential path, a process pool and
Ray (``ray.init(num_cpus=2, include_dashboard=False)``) on LFW photos."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from faceprint.bulk import (
    BulkFailure,
    BulkPhoto,
    enroll_photos,
    process_runner,
    read_manifest,
    scan_folder,
    sequential_runner,
    write_failures,
)
from faceprint.cli import app
from faceprint.errors import InvalidArgumentError, NotAFolderError
from faceprint.gallery import Gallery
from faceprint.pipeline import PipelineSpec

runner = CliRunner()
SPEC = PipelineSpec()  # YuNet + SFace, as the CLI's default


def _people(lfw_dir: Path, n_people: int, per_person: int) -> list[tuple[str, list[Path]]]:
    chosen = []
    for person in sorted(p for p in lfw_dir.iterdir() if p.is_dir()):
        photos = sorted(person.iterdir())
        if len(photos) >= per_person:
            chosen.append((person.name, photos[:per_person]))
        if len(chosen) == n_people:
            return chosen
    raise AssertionError("not enough LFW people")


def _folder(root: Path, people: list[tuple[str, list[Path]]]) -> Path:
    """A folder of person sub-folders whose photos are links to LFW files (no copy of the data)."""
    for name, photos in people:
        (root / name).mkdir(parents=True)
        for photo in photos:
            (root / name / photo.name).symlink_to(photo)
    return root


@pytest.fixture(scope="module")
def lfw_folder(lfw_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200 LFW photos: 40 people with 5 each."""
    return _folder(tmp_path_factory.mktemp("bulk") / "people", _people(lfw_dir, 40, 5))


def _stored(path: Path) -> dict[tuple[str, str], np.ndarray]:
    """(subject, source) -> template of every stored example."""
    with Gallery(path) as g:
        return {(e.subject, e.source or ""): g.example(e.id)[1] for e in g.examples()}


def _digests_once(path: Path) -> bool:
    with Gallery(path) as g:
        pairs = [(e.subject, e.content_sha256) for e in g.examples()]
    return len(pairs) == len(set(pairs)) and all(d for _, d in pairs)


# ------------------------------------------------------------------ listing (no models)


def test_scan_folder_lists_person_folders_and_flags_what_cannot_be_a_photo(tmp_path: Path) -> None:
    for name in ("ann", "bob", ".hidden"):
        (tmp_path / name).mkdir()
    (tmp_path / "ann" / "1.jpg").write_bytes(b"x")
    (tmp_path / "ann" / "2.PNG").write_bytes(b"x")
    (tmp_path / "ann" / "notes.txt").write_text("not a photo")
    (tmp_path / "ann" / ".DS_Store.jpg").write_bytes(b"x")
    (tmp_path / "bob" / "dir.jpg").mkdir()
    os.mkfifo(tmp_path / "bob" / "pipe.jpg")
    (tmp_path / ".hidden" / "3.jpg").write_bytes(b"x")
    (tmp_path / "loose.jpg").write_bytes(b"x")
    photos, failures = scan_folder(tmp_path)
    ann = tmp_path / "ann"
    assert photos == [BulkPhoto(str(ann / "1.jpg"), "ann"), BulkPhoto(str(ann / "2.PNG"), "ann")]
    assert sorted((Path(f.path).name, f.error) for f in failures) == [
        ("dir.jpg", "not a regular file"), ("loose.jpg", "a photo outside any person's sub-folder (no name)"),
        ("pipe.jpg", "not a regular file"),
    ]
    with pytest.raises(NotAFolderError):
        scan_folder(tmp_path / "missing")


def test_read_manifest(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text("name,path\nann,a/1.jpg\n,b.jpg\nbob,/abs/2.jpg\ncat,\n", encoding="utf-8")
    photos, failures = read_manifest(tmp_path / "m.csv")
    assert photos == [BulkPhoto(str(tmp_path / "a" / "1.jpg"), "ann"), BulkPhoto("/abs/2.jpg", "bob")]
    assert [(f.error) for f in failures] == ["row 3 has no name", "row 5 has no path"]
    (tmp_path / "bad.csv").write_text("file,person\nx,y\n")
    with pytest.raises(InvalidArgumentError, match="columns path and name"):
        read_manifest(tmp_path / "bad.csv")
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InvalidArgumentError):
        read_manifest(tmp_path / "bin.csv")


def test_write_failures_round_trips_hostile_text(tmp_path: Path) -> None:
    rows = [BulkFailure('a,"b".jpg', "[red]x[/red]", "NoFaceError", "no face,\nanywhere")]
    with write_failures(tmp_path / "f.csv", rows).open(newline="") as fh:
        assert list(csv.reader(fh)) == [["path", "name", "error_type", "error"], [rows[0].path, rows[0].name,
                                                                                   "NoFaceError", rows[0].error]]


def test_bad_arguments() -> None:
    with pytest.raises(InvalidArgumentError):
        process_runner(0)
    with Gallery(":memory:") as g, pytest.raises(InvalidArgumentError, match="batch_size"):
        enroll_photos(g, [], SPEC, batch_size=0)


# ------------------------------------------------------------------ real faces


@pytest.mark.real
@pytest.mark.data
def test_bad_photos_are_listed_and_never_stop_the_run(tmp_path: Path, lfw_dir: Path) -> None:
    root = _folder(tmp_path / "people", _people(lfw_dir, 3, 2))
    ann = sorted(p for p in root.iterdir())[0]
    (ann / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (ann / "empty.png").write_bytes(b"")
    (ann / "noise.png").write_bytes(np.random.default_rng(0).bytes(500))
    from PIL import Image

    Image.new("RGB", (200, 200), (128, 128, 128)).save(ann / "blank.png")  # no face
    os.mkfifo(ann / "fifo.jpg")
    hostile = root / "[bold]Mallory[red]"
    hostile.mkdir()
    (hostile / "1.jpg").symlink_to(sorted((lfw_dir / "Aaron_Peirsol").iterdir())[0])
    bad_name = root / "bad\x07name"
    bad_name.mkdir()
    (bad_name / "1.jpg").symlink_to(sorted((lfw_dir / "Aaron_Peirsol").iterdir())[1])
    gallery = tmp_path / "g.db"
    failures_csv = tmp_path / "failures.csv"
    result = runner.invoke(app, ["enroll-dir", str(root), "--gallery", str(gallery), "--failures", str(failures_csv),
                                 "--threads", "2"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "bad\\x07name/1.jpg: expected a printable subject name" in result.stderr  # on one line, escaped
    with failures_csv.open(newline="") as fh:
        failed = {Path(r["path"]).name: r["error_type"] for r in csv.DictReader(fh)}
    assert failed == {"corrupt.jpg": "InvalidImageError", "empty.png": "InvalidImageError",
                      "noise.png": "InvalidImageError", "blank.png": "NoFaceError", "fifo.jpg": "InvalidFileError",
                      "1.jpg": "InvalidSubjectError"}
    with Gallery(gallery) as g:
        assert sorted(s.name for s in g.subjects()) == sorted([*[p.name for p in root.iterdir()
                                                                 if p.name != "bad\x07name"]])
        assert g.n_templates == 3 * 2 + 1


@pytest.mark.real
@pytest.mark.data
def test_rerun_skips_what_is_enrolled(tmp_path: Path, lfw_dir: Path) -> None:
    root = _folder(tmp_path / "people", _people(lfw_dir, 4, 3))
    gallery = tmp_path / "g.db"
    with Gallery(gallery) as g:
        first = enroll_photos(g, scan_folder(root)[0], SPEC)
    assert (first.enrolled, first.skipped, first.failures, first.subjects) == (12, 0, (), 4)
    extra = sorted((lfw_dir / "Aaron_Peirsol").iterdir())[0]
    (root / "late").mkdir()
    (root / "late" / "1.jpg").symlink_to(extra)
    with Gallery(gallery) as g:
        again = enroll_photos(g, scan_folder(root)[0], SPEC)
        assert (again.enrolled, again.skipped, again.embedded) == (1, 12, 1)  # only the new photo embedded
        assert g.n_templates == 13
    assert _digests_once(gallery)


@pytest.mark.real
@pytest.mark.data
@pytest.mark.slow
def test_sequential_process_pool_and_ray_give_the_same_gallery(lfw_folder: Path, tmp_path: Path) -> None:
    ray = pytest.importorskip("ray", reason="the [ray] extra is not installed (make test installs it)")
    from faceprint.distributed import ray_runner

    photos, failures = scan_folder(lfw_folder)
    assert len(photos) == 200 and not failures
    reports = {}
    for name, make in (("sequential", sequential_runner), ("process", lambda: process_runner(2)),
                       ("ray", lambda: ray_runner("local", workers=2))):
        if name == "ray":
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            with Gallery(tmp_path / f"{name}.db") as g:
                reports[name] = enroll_photos(g, photos, SPEC, runner=make(), runner_name=name, batch_size=32)
        finally:
            if name == "ray":
                ray.shutdown()
    assert {n: (r.enrolled, len(r.failures), r.subjects) for n, r in reports.items()} == {
        n: (200, 0, 40) for n in reports}
    want = _stored(tmp_path / "sequential.db")
    for name in ("process", "ray"):
        got = _stored(tmp_path / f"{name}.db")
        assert got.keys() == want.keys()
        assert max(float(np.abs(got[k] - want[k]).max()) for k in want) < 1e-5
    with Gallery(tmp_path / "ray.db") as g:
        assert [s.name for s in g.subjects()] == sorted(p.name for p in lfw_folder.iterdir())


@pytest.mark.real
@pytest.mark.data
@pytest.mark.slow
def test_killed_with_sigkill_and_rerun_enrolls_every_photo_once(lfw_folder: Path, tmp_path: Path) -> None:
    gallery = tmp_path / "g.db"
    cmd = [sys.executable, "-m", "faceprint.cli", "enroll-dir", str(lfw_folder), "--gallery", str(gallery),
           "--batch", "8", "--threads", "1", "--failures", str(tmp_path / "f.csv")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        stored = 0
        while stored < 24 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            if gallery.exists():
                try:
                    with Gallery(gallery) as g:
                        stored = g.n_templates
                except Exception:  # noqa: BLE001 - the writer may hold the file for a moment
                    continue
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    with Gallery(gallery) as g:
        partial = g.n_templates
    assert 24 <= partial < 200
    done = subprocess.run([*cmd, "--json"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    with Gallery(gallery) as g:
        assert g.n_templates == 200 and len(g) == 40
    assert _digests_once(gallery)  # every photo once
