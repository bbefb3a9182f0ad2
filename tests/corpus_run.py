"""Run every corpus file (tests/corpus.py) through faceprint, in this process, and print the outcomes.

    python tests/corpus_run.py FACE.jpg CORPUS_DIR   # one JSON object on stdout

Meant to run in a subprocess with an address-space limit (tests/test_corpus.py): each file goes
through ``load_image``, ``FacePipeline.detect``, ``verify`` (against FACE.jpg), ``enroll`` (into an
in-memory gallery) and the CLI's ``detect`` (Typer's CliRunner), each step under a 30 s alarm. An
outcome is ``"ok"`` (with the number of faces), ``"error:<FaceprintError subclass>"``, or what must
never happen: ``"crash:<exception>"``, ``"hang"`` or ``"memory"``. The CLI outcome is
``"exit:<code>"``, with ``"crash:..."`` for a traceback, ``"unnamed"`` for a table that does not show
the file name literally and ``"lines:<n>"`` for an exit 2 whose
message is not exactly one line.
"""

from __future__ import annotations

import json
import resource
import signal
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import make_corpus  # noqa: E402
from faceprint.errors import FaceprintError  # noqa: E402
from faceprint.gallery import Gallery  # noqa: E402
from faceprint.io import load_image  # noqa: E402
from faceprint.pipeline import FacePipeline  # noqa: E402
from faceprint.runtime import set_num_threads  # noqa: E402

STEP_SECONDS = 30


class _Hang(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise _Hang


def outcome(step: Any) -> tuple[str, float]:
    start = time.perf_counter()
    signal.alarm(STEP_SECONDS)
    try:
        value = step()
        result = f"ok:{value}" if value is not None else "ok"
    except FaceprintError as err:
        result = f"error:{type(err).__name__}"
    except _Hang:
        result = "hang"
    except MemoryError:
        result = "memory"
    except Exception as err:  # noqa: BLE001 - what the corpus is looking for
        result = f"crash:{type(err).__name__}: {err}"
    finally:
        signal.alarm(0)
    return result, time.perf_counter() - start


def main() -> None:
    face_path, out = Path(sys.argv[1]), Path(sys.argv[2])
    set_num_threads(1)
    signal.signal(signal.SIGALRM, _alarm)
    from typer.testing import CliRunner

    from faceprint.cli import app
    from faceprint.cli.common import _one_line

    runner = CliRunner()
    items = make_corpus(face_path, out)
    pipe = FacePipeline()
    pipe.warm_up()
    gallery = Gallery(":memory:")
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rows = []
    for n, item in enumerate(items):
        row: dict[str, Any] = {"file": item.path.name, "kind": item.kind, "face": item.face, "refused": item.refused}
        steps = {
            "load": lambda p=item.path: load_image(p).shape[0] and None,
            "detect": lambda p=item.path: len(pipe.detect(p)),
            "verify": lambda p=item.path: pipe.verify(p, face_path).decision,
            "enroll": lambda p=item.path, k=n: pipe.enroll(f"person {k}", p, gallery).n_templates,  # type: ignore[union-attr]
        }
        seconds = 0.0
        for name, step in steps.items():
            row[name], took = outcome(step)
            seconds = max(seconds, took)

        def cli(p: Path = item.path) -> str:
            result = runner.invoke(app, ["detect", str(p)])
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                return f"crash:{type(result.exception).__name__}: {result.exception}"
            if result.exit_code == 2:
                lines = [line for line in result.stderr.splitlines() if line.strip()]
                if len(lines) != 1 or result.stdout:
                    return f"lines:{len(lines)}"
            if "Traceback" in result.output:
                return "crash:traceback"
            if result.exit_code == 0 and _one_line(p.name) not in result.stdout:
                return "unnamed"  # the title must show the file name literally, on one line
            return f"exit:{result.exit_code}"

        cli_result, took = outcome(cli)
        row["cli"] = cli_result.removeprefix("ok:")
        row["seconds"] = round(max(seconds, took), 3)
        rows.append(row)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sys.stdout.write(json.dumps({"items": rows, "peak_rss_mb": peak / 1024, "base_rss_mb": base_rss / 1024}) + "\n")


if __name__ == "__main__":
    main()
