"""The bad-input corpus (tests/corpus.py) through load_image, detect, verify, enroll and the CLI.

One subprocess (tests/corpus_run.py) under an address-space limit and a timeout runs every file
through every step, each under a 30 s alarm, and reports the outcomes; this test checks that every
outcome is a correct result or a clean :class:`FaceprintError` (CLI: exit 2 and one line), never a
crash, a hang or a memory blow-up. About 40 s on 2 busy cores.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
ADDRESS_SPACE = 6 << 30
"""The runner's RLIMIT_AS: far below what a 49-megapixel image decoded wastefully would need."""


@pytest.fixture(scope="module")
def outcomes(lfw_image: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    face = lfw_image("George_W_Bush", 1)

    def limits() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))

    proc = subprocess.run(
        [sys.executable, str(HERE / "corpus_run.py"), str(face), str(tmp_path_factory.mktemp("corpus") / "files")],
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=limits if os.name == "posix" else None,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


STEPS = ("load", "detect", "verify", "enroll", "cli")
NEVER = ("crash", "hang", "memory", "lines")


@pytest.mark.real
@pytest.mark.data
def test_corpus_has_every_class(outcomes: dict[str, Any]) -> None:
    from corpus import CLASSES

    kinds = Counter(row["kind"] for row in outcomes["items"])
    assert set(kinds) == set(CLASSES)
    assert sum(kinds.values()) >= 250


@pytest.mark.real
@pytest.mark.data
def test_no_crash_hang_or_memory_blow_up(outcomes: dict[str, Any]) -> None:
    bad = [(row["file"], step, row[step]) for row in outcomes["items"] for step in STEPS if row[step].startswith(NEVER)]
    assert bad == []
    assert max(row["seconds"] for row in outcomes["items"]) < 15
    assert outcomes["peak_rss_mb"] < 1500  # measured ~650 MB, the 7000x7000 RGBA PNG included


@pytest.mark.real
@pytest.mark.data
def test_outcomes_are_correct_or_clean_errors(outcomes: dict[str, Any]) -> None:
    for row in outcomes["items"]:
        where = f"{row['file']} ({row['kind']})"
        for step in STEPS[:4]:
            assert row[step].startswith(("ok", "error:")), where
        if row["face"]:  # a readable photo of the face: found, verified, enrolled, shown
            assert row["load"] == "ok" and row["detect"] == "ok:1", where
            assert row["verify"] == "ok:match" and row["enroll"] == "ok:1" and row["cli"] == "exit:0", where
        if row["refused"]:
            assert row["load"].startswith("error:"), where
            assert row["refused"] == "InvalidImageError" or row["load"] == f"error:{row['refused']}", where
        if row["load"].startswith("error:"):  # the CLI says the same thing, in one line, exit 2
            assert row["cli"] == "exit:2" and row["detect"] == row["load"] and row["enroll"] == row["load"], where
        else:
            assert row["cli"] in ("exit:0", "exit:1"), where
        if row["kind"] == "shape":
            assert row["detect"] == "ok:0" and row["verify"] == "error:NoFaceError", where


@pytest.mark.real
@pytest.mark.data
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_cli_on_a_fifo_and_dev_zero_in_a_real_process(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.jpg"
    zero.symlink_to("/dev/zero")
    for path, what in ((fifo, "FIFO"), (zero, "character device")):
        proc = subprocess.run(
            [sys.executable, "-m", "faceprint.cli", "detect", str(path)], capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 2 and proc.stdout == ""
        assert proc.stderr.strip().splitlines() == [
            f"error: {path}: is a {what}"
            + (" (named pipe), not a regular image file" if what == "FIFO" else ", not a regular image file")
        ]
