"""Tests for the ``faceprint`` command line through Typer's CliRunner.

Contract: results on stdout (a table, or JSON with ``--json``), diagnostics on stderr; exit code
0 success / match, 1 no match, 2 bad input with a one-line message and never a traceback.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image as PILImage
from typer.testing import CliRunner

from faceprint.cli import app
from faceprint.gallery import Gallery

LfwImage = Callable[[str, int], Path]

runner = CliRunner()  # this Typer keeps stderr apart: result.stdout / result.stderr / result.output (both)

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass(frozen=True)
class Run:
    """A CliRunner result with ANSI codes removed.

    The CLI's Rich consoles pick their colour mode when ``faceprint.cli`` is imported; under
    ``pytest -s`` in a terminal that is a colour mode, and CliRunner's captured output then
    carries escape codes that are not part of what the command means.
    """

    exit_code: int
    exception: BaseException | None
    stdout: str
    stderr: str
    output: str


def invoke(*args: object, env: dict[str, str] | None = None) -> Run:
    r = runner.invoke(app, [str(a) for a in args], env=env)
    return Run(r.exit_code, r.exception, _ANSI.sub("", r.stdout), _ANSI.sub("", r.stderr), _ANSI.sub("", r.output))


def no_crash(result: Run) -> None:
    """The command ended through its own exit path, not an unhandled exception."""
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"unhandled {result.exception!r}\n{result.output}"
    )
    assert "Traceback" not in result.output


def ok(result: Run, code: int = 0) -> Run:
    no_crash(result)
    assert result.exit_code == code, f"exit {result.exit_code}, expected {code}\n{result.output}"
    return result


def as_json(result: Run) -> Any:
    return json.loads(result.stdout)


def user_error(result: Run, *words: str) -> str:
    """Exit 2 with exactly one line on stderr, nothing on stdout, no traceback; returns the line."""
    no_crash(result)
    assert result.exit_code == 2, f"exit {result.exit_code}, expected 2\n{result.output}"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected a one-line error, got:\n{result.stderr}"
    assert result.stdout == ""
    line = lines[0]
    for word in words:
        assert word.lower() in line.lower(), f"{word!r} not in {line!r}"
    return line


@pytest.fixture(autouse=True)
def _real_models_installed(request: pytest.FixtureRequest) -> None:
    """Tests marked ``real`` skip (via the conftest model fixtures) when YuNet / SFace are not installed."""
    if request.node.get_closest_marker("real") is not None:
        request.getfixturevalue("yunet")
        request.getfixturevalue("sface")


# -- images -------------------------------------------------------------------------------------
@pytest.fixture
def blank_png(tmp_path: Path) -> Path:
    path = tmp_path / "blank.png"
    PILImage.fromarray(np.full((200, 240, 3), 127, np.uint8)).save(path)
    return path


@pytest.fixture
def text_jpg(tmp_path: Path) -> Path:
    path = tmp_path / "notes.jpg"
    path.write_text("these are my holiday notes, not a photo\n")
    return path


@pytest.fixture
def truncated_jpg(tmp_path: Path, lfw_image: LfwImage) -> Path:
    data = lfw_image("George_W_Bush", 1).read_bytes()
    path = tmp_path / "truncated.jpg"
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.fixture
def empty_jpg(tmp_path: Path) -> Path:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    return path


@pytest.fixture(params=["missing", "text", "truncated", "empty"])
def bad_image(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    """A bad input file and a word its error message must contain."""
    kind = request.param
    if kind == "missing":
        return tmp_path / "does_not_exist.jpg", "no such file"
    if kind == "text":
        return request.getfixturevalue("text_jpg"), "not a recognised image"
    if kind == "truncated":
        return request.getfixturevalue("truncated_jpg"), "truncated"
    return request.getfixturevalue("empty_jpg"), "empty"


@pytest.fixture
def gallery(tmp_path: Path) -> Path:
    return tmp_path / "faces" / "gallery.db"


@pytest.fixture
def bush_gallery(gallery: Path, lfw_image: LfwImage) -> Path:
    """A gallery holding George W Bush (photos 1 and 3)."""
    ok(
        invoke(
            "enroll",
            "George W Bush",
            lfw_image("George_W_Bush", 1),
            lfw_image("George_W_Bush", 3),
            "--gallery",
            gallery,
        )
    )
    return gallery


def subjects(gallery: Path) -> list[dict[str, Any]]:
    data = as_json(ok(invoke("gallery", "list", "--gallery", gallery, "--json")))
    return list(data["subjects"])


# -- help ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "command",
    [
        [],
        ["detect"],
        ["verify"],
        ["enroll"],
        ["identify"],
        ["gallery"],
        ["gallery", "list"],
        ["gallery", "remove"],
        ["gallery", "rename"],
        ["evaluate"],
        ["evaluate", "lfw"],
        ["models"],
        ["demo"],
    ],
    ids=lambda c: " ".join(c) or "faceprint",
)
def test_help(command: list[str]) -> None:
    result = ok(invoke(*command, "--help"))
    assert "Usage" in result.output
    assert "--help" in result.output


def test_help_lists_every_command() -> None:
    out = ok(invoke("--help")).stdout
    for name in ("detect", "verify", "enroll", "identify", "gallery", "evaluate", "models", "demo"):
        assert name in out


def test_usage_error_exits_2_without_traceback() -> None:
    result = invoke("enroll", "only-a-name")
    no_crash(result)
    assert result.exit_code == 2
    assert "Missing argument" in result.stderr


# -- detect -------------------------------------------------------------------------------------
@pytest.mark.real
@pytest.mark.data
def test_detect_json(lfw_image: LfwImage) -> None:
    img = lfw_image("George_W_Bush", 1)
    data = as_json(ok(invoke("detect", img, "--json")))
    assert data["image"] == str(img)
    assert len(data["faces"]) == 1
    face = data["faces"][0]
    x1, y1, x2, y2 = face["box"]
    assert 0 <= x1 < x2 <= 250 and 0 <= y1 < y2 <= 250
    assert 0.5 < face["score"] <= 1.0
    assert np.asarray(face["landmarks"]).shape == (5, 2)


@pytest.mark.real
@pytest.mark.data
def test_detect_table(lfw_image: LfwImage) -> None:
    out = ok(invoke("detect", lfw_image("George_W_Bush", 1))).stdout
    assert "1 face(s)" in out
    assert "George_W_Bush_0001.jpg" in out


@pytest.mark.real
@pytest.mark.data
def test_detect_draw_writes_png(lfw_image: LfwImage, tmp_path: Path) -> None:
    img = lfw_image("George_W_Bush", 1)
    out = tmp_path / "boxes.png"
    ok(invoke("detect", img, "--draw", out))
    with PILImage.open(out) as drawn:
        assert drawn.format == "PNG"
        assert drawn.size == (250, 250)
        pixels = np.asarray(drawn.convert("RGB"))
    with PILImage.open(img) as original:
        assert not np.array_equal(pixels, np.asarray(original.convert("RGB")))  # something was drawn


@pytest.mark.real
@pytest.mark.data
@pytest.mark.parametrize("name", ["boxes.xyz", "no_such_folder/boxes.png"])
def test_detect_draw_unwritable_is_user_error(lfw_image: LfwImage, tmp_path: Path, name: str) -> None:
    user_error(invoke("detect", lfw_image("George_W_Bush", 1), "--draw", tmp_path / name), "boxes")


@pytest.mark.real
def test_detect_blank_exits_1(blank_png: Path) -> None:
    result = ok(invoke("detect", blank_png, "--json"), code=1)
    assert as_json(result)["faces"] == []
    assert "0 face(s)" in ok(invoke("detect", blank_png), code=1).stdout


@pytest.mark.real
@pytest.mark.data
def test_detect_bad_input(bad_image: tuple[Path, str]) -> None:
    path, word = bad_image
    user_error(invoke("detect", path), path.name, word)


def write_variant(src: Path, kind: str, tmp_path: Path) -> Path:
    """``src`` re-encoded as an unusual but valid image whose displayed content is unchanged."""
    with PILImage.open(src) as im:
        rgb = im.convert("RGB")
    if kind == "gray":
        out, img = tmp_path / "gray.png", rgb.convert("L")
    elif kind == "rgba":
        out, img = tmp_path / "rgba.png", rgb.convert("RGBA")
    elif kind == "palette":
        out, img = tmp_path / "palette.png", rgb.convert("P", palette=PILImage.Palette.ADAPTIVE)
    elif kind == "gray16":
        gray = np.asarray(rgb.convert("L"), np.uint16) * 257
        out, img = tmp_path / "gray16.png", PILImage.fromarray(gray)
        img.save(out)
        return out
    elif kind == "exif_rotated":
        # pixels stored rotated 90 degrees counter-clockwise; EXIF orientation 6 says "turn clockwise to view"
        out = tmp_path / "exif_rotated.jpg"
        exif = PILImage.Exif()
        exif[0x0112] = 6
        rgb.transpose(PILImage.Transpose.ROTATE_90).save(out, "JPEG", quality=95, exif=exif)
        return out
    else:
        raise AssertionError(kind)
    img.save(out)
    return out


@pytest.mark.real
@pytest.mark.data
@pytest.mark.parametrize("kind", ["gray", "rgba", "palette", "gray16", "exif_rotated"])
def test_detect_unusual_but_valid_images(lfw_image: LfwImage, tmp_path: Path, kind: str) -> None:
    src = lfw_image("George_W_Bush", 1)
    (reference,) = as_json(ok(invoke("detect", src, "--json")))["faces"]
    data = as_json(ok(invoke("detect", write_variant(src, kind, tmp_path), "--json")))
    assert len(data["faces"]) == 1, kind
    # same place as in the original: the image was read upright and at full size
    np.testing.assert_allclose(data["faces"][0]["box"], reference["box"], atol=12)


def test_detect_directory_is_user_error(tmp_path: Path) -> None:
    user_error(invoke("detect", tmp_path), "directory")


def test_detect_unknown_detector(blank_png: Path) -> None:
    user_error(invoke("detect", blank_png, "--detector", "nope"), "nope", "yunet", "retinaface")


def test_detect_huge_image_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    PILImage.fromarray(np.zeros((200, 300, 3), np.uint8)).save(path)
    user_error(invoke("detect", path, env={"FACEPRINT_MAX_PIXELS": "10000"}), "big.png", "limit")


# -- verify -------------------------------------------------------------------------------------
@pytest.mark.real
@pytest.mark.data
def test_verify_same_person(lfw_image: LfwImage) -> None:
    result = ok(invoke("verify", lfw_image("George_W_Bush", 1), lfw_image("George_W_Bush", 2)))
    assert "same person" in result.stdout


@pytest.mark.real
@pytest.mark.data
def test_verify_different_people(lfw_image: LfwImage) -> None:
    result = ok(invoke("verify", lfw_image("George_W_Bush", 1), lfw_image("Serena_Williams", 1)), code=1)
    assert "different people" in result.stdout


@pytest.mark.real
@pytest.mark.data
def test_verify_json(lfw_image: LfwImage) -> None:
    same = as_json(ok(invoke("verify", lfw_image("George_W_Bush", 1), lfw_image("George_W_Bush", 2), "--json")))
    assert {"similarity", "threshold", "same", "model", "distance", "fmr"} <= set(same)
    assert same["same"] is True
    assert same["similarity"] >= same["threshold"]
    assert same["model"].startswith("sface@")
    assert same["fmr"] == "1e-3"
    assert same["distance"] == pytest.approx(2 - 2 * same["similarity"], abs=1e-5)

    diff = as_json(
        ok(invoke("verify", lfw_image("George_W_Bush", 1), lfw_image("Serena_Williams", 1), "--json"), code=1)
    )
    assert diff["same"] is False
    assert diff["similarity"] < diff["threshold"]


@pytest.mark.real
@pytest.mark.data
def test_verify_facenet_model(lfw_image: LfwImage, facenet: object) -> None:
    data = as_json(
        ok(
            invoke(
                "verify", lfw_image("George_W_Bush", 1), lfw_image("George_W_Bush", 2), "--json", "--model", "facenet"
            )
        )
    )
    assert data["model"].startswith("facenet@")


@pytest.mark.real
@pytest.mark.data
def test_verify_unknown_fmr_lists_operating_points(lfw_image: LfwImage) -> None:
    line = user_error(
        invoke("verify", lfw_image("George_W_Bush", 1), lfw_image("George_W_Bush", 2), "--fmr", "5"),
        "available",
    )
    for point in ("1e-2", "1e-3", "best_accuracy"):
        assert point in line


@pytest.mark.real
@pytest.mark.data
def test_verify_unknown_model(lfw_image: LfwImage) -> None:
    user_error(
        invoke("verify", lfw_image("George_W_Bush", 1), lfw_image("George_W_Bush", 2), "--model", "nope"),
        "nope",
        "sface",
        "facenet",
    )


@pytest.mark.real
@pytest.mark.data
def test_verify_no_face(lfw_image: LfwImage, blank_png: Path) -> None:
    user_error(invoke("verify", lfw_image("George_W_Bush", 1), blank_png), "blank.png", "no face")


@pytest.mark.real
@pytest.mark.data
def test_verify_bad_input(lfw_image: LfwImage, bad_image: tuple[Path, str]) -> None:
    path, word = bad_image
    user_error(invoke("verify", lfw_image("George_W_Bush", 1), path), path.name, word)


# -- enroll / identify / gallery ------------------------------------------------------------------
@pytest.mark.real
@pytest.mark.data
def test_enroll_then_list(gallery: Path, lfw_image: LfwImage) -> None:
    result = ok(
        invoke(
            "enroll",
            "George W Bush",
            lfw_image("George_W_Bush", 1),
            lfw_image("George_W_Bush", 3),
            "--gallery",
            gallery,
            "--json",
        )
    )
    enrolled = as_json(result)
    assert enrolled["name"] == "George W Bush" and enrolled["templates"] == 2

    data = as_json(ok(invoke("gallery", "list", "--gallery", gallery, "--json")))
    assert data["model"].startswith("sface@")
    assert [(s["name"], s["templates"]) for s in data["subjects"]] == [("George W Bush", 2)]
    assert isinstance(data["subjects"][0]["id"], int)

    table = ok(invoke("gallery", "list", "--gallery", gallery)).stdout
    assert "George W Bush" in table and "1 subject(s)" in table


HOSTILE_NAME = "a[/b] [red]x[/red] [/]"
"""Rich markup in a name: unbalanced closing tags used to crash the CLI with a MarkupError traceback."""


@pytest.mark.real
@pytest.mark.data
def test_hostile_names_and_paths_are_printed_literally(gallery: Path, lfw_image: LfwImage, tmp_path: Path) -> None:
    photo = tmp_path / "x[bold]z[red].jpg"  # a file name cannot hold "/": opening tags only
    photo.write_bytes(lfw_image("George_W_Bush", 1).read_bytes())
    enrolled = ok(invoke("enroll", HOSTILE_NAME, photo, "--gallery", gallery)).stdout
    assert HOSTILE_NAME in enrolled
    listed = ok(invoke("gallery", "list", "--gallery", gallery)).stdout
    assert HOSTILE_NAME in " ".join(listed.split()) or HOSTILE_NAME.replace(" ", "") in "".join(listed.split())
    found = ok(invoke("identify", photo, "--gallery", gallery)).stdout
    assert HOSTILE_NAME.replace(" ", "") in "".join(found.split())
    detected = ok(invoke("detect", photo)).stdout
    assert photo.name.replace(" ", "") in "".join(detected.split())
    failed = invoke("detect", tmp_path / "gone[bold].jpg")
    no_crash(failed)
    assert failed.exit_code == 2 and "gone[bold].jpg" in failed.stderr
    renamed = ok(invoke("gallery", "rename", HOSTILE_NAME, "[/]b", "--gallery", gallery)).stdout
    assert "-> [/]b" in renamed
    assert "[/]b" in ok(invoke("gallery", "remove", "[/]b", "--gallery", gallery)).stdout


@pytest.mark.real
@pytest.mark.data
def test_enroll_again_adds_templates(bush_gallery: Path, lfw_image: LfwImage) -> None:
    out = ok(invoke("enroll", "George W Bush", lfw_image("George_W_Bush", 4), "--gallery", bush_gallery)).stdout
    assert "George W Bush" in out
    assert [s["templates"] for s in subjects(bush_gallery)] == [3]


@pytest.mark.real
@pytest.mark.data
def test_identify(bush_gallery: Path, lfw_image: LfwImage) -> None:
    img = lfw_image("George_W_Bush", 2)
    data = as_json(ok(invoke("identify", img, "--gallery", bush_gallery, "--json")))
    assert data["image"] == str(img)
    assert len(data["faces"]) == 1
    face = data["faces"][0]
    assert face["name"] == "George W Bush"
    assert face["known"] is True
    assert face["matches"][0]["name"] == "George W Bush"
    assert face["matches"][0]["similarity"] >= face["threshold"]

    table = ok(invoke("identify", img, "--gallery", bush_gallery)).stdout
    assert "George W Bush" in table


@pytest.mark.real
@pytest.mark.data
def test_identify_stranger_exits_1(bush_gallery: Path, lfw_image: LfwImage) -> None:
    result = ok(invoke("identify", lfw_image("Serena_Williams", 1), "--gallery", bush_gallery, "--json"), code=1)
    face = as_json(result)["faces"][0]
    assert face["name"] == "unknown"
    assert face["known"] is False
    assert (
        "unknown" in ok(invoke("identify", lfw_image("Serena_Williams", 1), "--gallery", bush_gallery), code=1).stdout
    )


@pytest.mark.real
@pytest.mark.data
@pytest.mark.parametrize("classifier", ["knn", "svm"])
def test_identify_with_classifier(bush_gallery: Path, lfw_image: LfwImage, classifier: str) -> None:
    ok(invoke("enroll", "Serena Williams", lfw_image("Serena_Williams", 1), "--gallery", bush_gallery))
    ok(invoke("enroll", "Vladimir Putin", lfw_image("Vladimir_Putin", 1), "--gallery", bush_gallery))
    args = ("--gallery", bush_gallery, "--classifier", classifier, "--json")
    face = as_json(ok(invoke("identify", lfw_image("Serena_Williams", 2), *args)))["faces"][0]
    assert face["name"] == "Serena Williams"
    probs = face["probabilities"]
    assert probs[0]["name"] == "Serena Williams"
    assert [p["probability"] for p in probs] == sorted((p["probability"] for p in probs), reverse=True)
    # the open-set decision still uses the calibrated threshold: a stranger stays unknown
    stranger = as_json(ok(invoke("identify", lfw_image("Colin_Powell", 1), *args), code=1))["faces"][0]
    assert stranger["name"] == "unknown"


def test_identify_unknown_classifier(tmp_path: Path, blank_png: Path) -> None:
    user_error(invoke("identify", blank_png, "--gallery", tmp_path / "g.db", "--classifier", "forest"), "--classifier")


@pytest.mark.real
@pytest.mark.data
def test_identify_no_face_exits_1(bush_gallery: Path, blank_png: Path) -> None:
    result = ok(invoke("identify", blank_png, "--gallery", bush_gallery, "--json"), code=1)
    assert as_json(result)["faces"] == []


@pytest.mark.real
@pytest.mark.data
def test_identify_missing_gallery(tmp_path: Path, lfw_image: LfwImage) -> None:
    missing = tmp_path / "nowhere" / "gallery.db"
    user_error(invoke("identify", lfw_image("George_W_Bush", 2), "--gallery", missing), "no gallery", str(missing))
    assert not missing.exists()
    assert not missing.parent.exists()


@pytest.mark.real
@pytest.mark.data
def test_identify_bad_input(bush_gallery: Path, bad_image: tuple[Path, str]) -> None:
    path, word = bad_image
    user_error(invoke("identify", path, "--gallery", bush_gallery), path.name, word)


@pytest.mark.real
@pytest.mark.data
def test_identify_with_other_model_refused(bush_gallery: Path, lfw_image: LfwImage, facenet: object) -> None:
    user_error(
        invoke("identify", lfw_image("George_W_Bush", 2), "--gallery", bush_gallery, "--model", "facenet"), "facenet"
    )


@pytest.mark.real
@pytest.mark.data
def test_enroll_bad_input_writes_nothing(bush_gallery: Path, lfw_image: LfwImage, bad_image: tuple[Path, str]) -> None:
    path, word = bad_image
    before = subjects(bush_gallery)
    user_error(
        invoke("enroll", "George W Bush", lfw_image("George_W_Bush", 4), path, "--gallery", bush_gallery),
        path.name,
        word,
    )
    user_error(
        invoke("enroll", "Someone Else", lfw_image("Colin_Powell", 1), path, "--gallery", bush_gallery), path.name, word
    )
    assert subjects(bush_gallery) == before


@pytest.mark.real
@pytest.mark.data
def test_enroll_no_face_writes_nothing(gallery: Path, lfw_image: LfwImage, blank_png: Path) -> None:
    user_error(
        invoke("enroll", "Colin Powell", lfw_image("Colin_Powell", 1), blank_png, "--gallery", gallery),
        "blank.png",
        "no face",
    )
    if gallery.exists():  # an empty store may have been created; it must hold nobody
        with Gallery(gallery) as g:
            assert len(g) == 0 and g.n_templates == 0


@pytest.mark.real
@pytest.mark.data
def test_enroll_strict_refuses_several_faces(gallery: Path, lfw_image: LfwImage) -> None:
    # Junichiro_Koizumi_0001 shows two faces
    multi = lfw_image("Junichiro_Koizumi", 1)
    user_error(invoke("enroll", "Koizumi", multi, "--gallery", gallery, "--strict"), "2 faces")
    ok(invoke("enroll", "Koizumi", multi, "--gallery", gallery))  # default: the largest face
    assert [s["templates"] for s in subjects(gallery)] == [1]


@pytest.mark.real
@pytest.mark.data
def test_gallery_rename(bush_gallery: Path) -> None:
    out = ok(invoke("gallery", "rename", "George W Bush", "President Bush", "--gallery", bush_gallery)).stdout
    assert "President Bush" in out
    assert [s["name"] for s in subjects(bush_gallery)] == ["President Bush"]
    # by id as well
    sid = subjects(bush_gallery)[0]["id"]
    ok(invoke("gallery", "rename", str(sid), "GWB", "--gallery", bush_gallery))
    assert [(s["id"], s["name"], s["templates"]) for s in subjects(bush_gallery)] == [(sid, "GWB", 2)]


@pytest.mark.real
@pytest.mark.data
def test_gallery_remove(bush_gallery: Path) -> None:
    out = ok(invoke("gallery", "remove", "George W Bush", "--gallery", bush_gallery)).stdout
    assert "2 template(s)" in out
    assert subjects(bush_gallery) == []


@pytest.mark.real
@pytest.mark.data
def test_all_digit_name_is_a_name_before_an_id(gallery: Path, lfw_image: LfwImage) -> None:
    # `gallery remove 2024` took "2024" for an id and failed, although a subject has that name
    ok(invoke("enroll", "2024", lfw_image("George_W_Bush", 1), "--gallery", gallery))
    ok(invoke("enroll", "Ann", lfw_image("Colin_Powell", 1), "--gallery", gallery))
    ids = {s["name"]: s["id"] for s in subjects(gallery)}
    assert ids == {"2024": 1, "Ann": 2}
    ok(invoke("gallery", "rename", "2024", "1", "--gallery", gallery))  # by name: now named "1"
    assert {s["name"]: s["id"] for s in subjects(gallery)} == {"1": 1, "Ann": 2}
    ok(invoke("gallery", "remove", "2", "--gallery", gallery))  # nobody is named "2": the id
    assert [s["name"] for s in subjects(gallery)] == ["1"]
    ok(invoke("gallery", "remove", "1", "--gallery", gallery))  # name "1" and id 1: the same subject
    assert subjects(gallery) == []


@pytest.mark.real
@pytest.mark.data
def test_non_utf8_file_names_and_names(gallery: Path, lfw_image: LfwImage, tmp_path: Path) -> None:
    # A file name that is not UTF-8 (Python carries its bytes as lone surrogates) made enroll raise
    # a bare UnicodeEncodeError from SQLite; the source is now stored and shown with \xe9 escapes.
    photo = tmp_path / os.fsdecode(b"caf\xe9.jpg")
    photo.write_bytes(lfw_image("George_W_Bush", 1).read_bytes())
    assert "caf\\xe9.jpg" in ok(invoke("detect", photo)).stdout
    ok(invoke("enroll", "Cafe", photo, "--gallery", gallery))
    with Gallery(gallery) as g:
        assert g.get("Cafe").n_templates == 1
    assert "Cafe" in ok(invoke("identify", photo, "--gallery", gallery)).stdout
    line = user_error(invoke("enroll", os.fsdecode(b"Jos\xe9"), photo, "--gallery", gallery), "not valid UTF-8")
    assert "\\udce9" in line
    user_error(invoke("gallery", "remove", os.fsdecode(b"Jos\xe9"), "--gallery", gallery), "no subject named")
    assert [s["name"] for s in subjects(gallery)] == ["Cafe"]


@pytest.mark.real
@pytest.mark.data
def test_newlines_in_names_and_paths_give_one_line_errors(gallery: Path, lfw_image: LfwImage) -> None:
    user_error(invoke("enroll", "Ann\nLee", lfw_image("George_W_Bush", 1), "--gallery", gallery), "control character")
    assert not gallery.exists() or subjects(gallery) == []
    user_error(invoke("detect", "no\nsuch.jpg"), "no\\nsuch.jpg", "no such file")
    user_error(invoke("verify", "a\r\nb.jpg", lfw_image("George_W_Bush", 1)), "a\\r\\nb.jpg")


@pytest.mark.real
@pytest.mark.data
def test_gallery_unknown_subject(bush_gallery: Path) -> None:
    user_error(invoke("gallery", "remove", "Nobody", "--gallery", bush_gallery), "Nobody")
    user_error(invoke("gallery", "rename", "Nobody", "Somebody", "--gallery", bush_gallery), "Nobody")
    assert [s["name"] for s in subjects(bush_gallery)] == ["George W Bush"]


@pytest.mark.real
@pytest.mark.data
def test_identify_k_below_one(bush_gallery: Path, lfw_image: LfwImage) -> None:
    user_error(invoke("identify", lfw_image("George_W_Bush", 2), "--gallery", bush_gallery, "-k", "0"), "k must be")


@pytest.mark.real
@pytest.mark.data
def test_enroll_empty_name(gallery: Path, lfw_image: LfwImage) -> None:
    user_error(invoke("enroll", "   ", lfw_image("George_W_Bush", 1), "--gallery", gallery), "name")


@pytest.mark.real
@pytest.mark.data
def test_gallery_that_is_not_a_database(tmp_path: Path, lfw_image: LfwImage) -> None:
    bogus = tmp_path / "notes.db"
    bogus.write_text("not a database\n")
    user_error(invoke("gallery", "list", "--gallery", bogus), "not a faceprint gallery")
    user_error(invoke("enroll", "x", lfw_image("George_W_Bush", 1), "--gallery", bogus), "not a faceprint gallery")
    assert bogus.read_text() == "not a database\n"


@pytest.mark.parametrize("command", [["gallery", "list"], ["gallery", "remove", "x"], ["gallery", "rename", "x", "y"]])
def test_gallery_commands_need_an_existing_gallery(tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "missing.db"
    user_error(invoke(*command, "--gallery", missing), "no gallery")
    assert not missing.exists()


# -- models / evaluate ----------------------------------------------------------------------------
def test_models_json() -> None:
    rows = as_json(ok(invoke("models", "--json")))
    by_key = {r["model"]: r for r in rows}
    assert {"yunet", "sface", "retinaface", "facenet"} <= set(by_key)
    assert by_key["yunet"]["role"] == by_key["retinaface"]["role"] == "detector"
    assert by_key["sface"]["role"] == by_key["facenet"]["role"] == "embedder"
    for key in ("yunet", "sface", "retinaface", "facenet"):
        row = by_key[key]
        assert row["licence"], key
        try:
            version = metadata.version(row["package"])
        except metadata.PackageNotFoundError:
            version = None
        assert row["installed"] == version, key
        assert len(row["sha256"]) == 64


def test_models_table() -> None:
    out = ok(invoke("models")).stdout
    for key in ("yunet", "sface", "retinaface", "facenet"):
        assert key in out


def test_models_lists_calibrated_thresholds() -> None:
    rows = {r["model"]: r for r in as_json(ok(invoke("models", "--json")))}
    for key in ("sface", "facenet"):
        assert "1e-3" in rows[key]["thresholds"], f"{key} is not calibrated (src/faceprint/calibration.json)"
        assert -1.0 < rows[key]["thresholds"]["1e-3"] < 1.0


def test_evaluate_lfw_without_data(tmp_path: Path) -> None:
    empty = tmp_path / "datasets"
    empty.mkdir()
    user_error(
        invoke("evaluate", "lfw", "--data", empty, "--pairs", "pairsDevTest.txt"), "pairsDevTest.txt", "not found"
    )


def test_evaluate_lfw_unknown_model(tmp_path: Path) -> None:
    user_error(invoke("evaluate", "lfw", "--data", tmp_path, "--model", "nope"), "nope")


@pytest.mark.real
@pytest.mark.data
def test_cluster_folder(tmp_path: Path, lfw_image: LfwImage) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("George_W_Bush", "Serena_Williams", "Hugo_Chavez"):
        for i in (1, 2, 3):
            shutil.copy(lfw_image(name, i), photos / f"{name}_{i}.jpg")
    (photos / "notes.txt").write_text("not a photo")
    out = tmp_path / "out"
    data = as_json(ok(invoke("cluster", photos, "--out", out, "--json")))
    groups = [sorted(p["path"].rsplit("/", 1)[-1].rsplit("_", 1)[0] for p in g) for g in data["clusters"]]
    assert sorted(groups) == [["George_W_Bush"] * 3, ["Hugo_Chavez"] * 3, ["Serena_Williams"] * 3]
    assert [f["path"].endswith("notes.txt") for f in data["failures"]] == [True]
    assert (out / "clusters.csv").is_file() and (out / "index.html").is_file()


def test_cluster_missing_folder(tmp_path: Path) -> None:
    user_error(invoke("cluster", tmp_path / "nope"), "not a folder")


@pytest.mark.real
@pytest.mark.data
def test_evaluate_identification_quick(data_root: Path) -> None:
    result = ok(invoke("evaluate", "identification", "--max-identities", "80", "--n-shot", "1", "--json"))
    data = as_json(result)
    (rep,) = data["reports"]
    assert rep["n_shot"] == 1 and rep["n_identities"] >= 10
    assert rep["rank1"] >= 0.9
    assert set(rep["dir_at_fpir"]) == {"0.01", "0.1"}
    assert data["failures_to_acquire"] == 0


def test_evaluate_identification_bad_method() -> None:
    user_error(invoke("evaluate", "identification", "--method", "forest"), "--method")


@pytest.mark.data
def test_dataset_stats_lfw_counts(data_root: Path) -> None:
    data = as_json(ok(invoke("dataset", "stats", data_root / "lfw" / "lfw-deepfunneled", "--json")))
    assert (data["identities"], data["identities_min2"], data["images"]) == (4921, 1680, 12405)


def test_dataset_stats_bad_layout(tmp_path: Path) -> None:
    user_error(invoke("dataset", "stats", tmp_path, "--layout", "pyramid"), "layout")


# -- smaller bugs a user meets (issue 16, item 5) ------------------------------------------------
def _all_commands() -> list[list[str]]:
    import typer.main

    group = typer.main.get_command(app)
    found: list[list[str]] = [[]]
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        subs = getattr(command, "commands", None)
        found.append([name])
        found.extend([name, sub] for sub in (subs or {}))
    return found


def test_help_shows_no_bool_metavar_for_flags() -> None:
    # Typer printed `--json <bool>`, `--flip --no-flip <bool>` and `--help <bool>` as if flags took a value
    commands = _all_commands()
    assert ["evaluate", "lfw"] in commands and ["verify"] in commands
    for command in commands:
        text = ok(invoke(*command, "--help")).stdout
        assert "<bool>" not in text, command
    assert "<path>" in ok(invoke("verify", "--help")).stdout  # value types stay


@pytest.mark.real
@pytest.mark.data
@pytest.mark.parametrize("spelling", ["0.001", "1E-3", "1e-03", ".001"])
def test_fmr_spellings_of_one_operating_point(lfw_image: LfwImage, spelling: str) -> None:
    a, b = lfw_image("George_W_Bush", 1), lfw_image("George_W_Bush", 2)
    want = as_json(ok(invoke("verify", a, b, "--fmr", "1e-3", "--json")))
    got = as_json(ok(invoke("verify", a, b, "--fmr", spelling, "--json")))
    assert got == want
    assert got["fmr"] == "1e-3"
    user_error(invoke("verify", a, b, "--fmr", "0.0005"), "0.0005", "1e-3")  # not calibrated: refused, listed


def test_fmr_text() -> None:
    from faceprint.cli.common import fmr_text

    assert [fmr_text(v) for v in ("0.01", "1e-4", "0.0001", "best_accuracy", "2e-3", "0", "1", "nan", None)] == [
        "1e-2", "1e-4", "1e-4", "best_accuracy", "2e-3", "0", "1", "nan", None
    ]


def test_evaluate_lfw_folds_below_two_is_refused_before_any_work(tmp_path: Path) -> None:
    # the help said "only the first N folds" and 1 was refused late, by the library; the help now says
    # N >= 2 and the CLI refuses it at once (no data set or model is needed to say so)
    assert "N >= 2" in " ".join(ok(invoke("evaluate", "lfw", "--help")).stdout.replace("│", " ").split())
    user_error(invoke("evaluate", "lfw", "--folds", "1", "--data", tmp_path / "none"), "--folds must be >= 2")


@pytest.mark.real
def test_no_face_prints_a_sentence_not_an_empty_table(blank_png: Path, gallery: Path, lfw_image: LfwImage) -> None:
    result = ok(invoke("detect", blank_png), code=1)
    assert result.stdout.strip() == f"0 face(s) in {blank_png.name}: no face found"
    ok(invoke("enroll", "Ann", lfw_image("George_W_Bush", 1), "--gallery", gallery))
    result = ok(invoke("identify", blank_png, "--gallery", gallery), code=1)
    assert result.stdout.strip() == f"0 face(s) in {blank_png.name}: no face found"


@pytest.mark.real
@pytest.mark.data
def test_tables_do_not_wrap_when_piped(gallery: Path, lfw_image: LfwImage) -> None:
    long_name = "Maria " + "de los Santos " * 8 + "Lee"  # 120 characters: wrapped at 80 columns before
    ok(invoke("enroll", long_name, lfw_image("George_W_Bush", 1), "--gallery", gallery))
    listed = ok(invoke("gallery", "list", "--gallery", gallery)).stdout
    assert any(long_name in line for line in listed.splitlines())
    for columns in (None, "60"):  # through a real pipe; an explicit COLUMNS still wins
        env = {k: v for k, v in os.environ.items() if k != "COLUMNS"} | ({"COLUMNS": columns} if columns else {})
        piped = subprocess.run(
            [sys.executable, "-m", "faceprint.cli", "gallery", "list", "--gallery", str(gallery)],
            capture_output=True, text=True, env=env, timeout=120, check=True,
        ).stdout
        assert any(long_name in line for line in piped.splitlines()) == (columns is None)
        assert columns is None or max(len(line) for line in piped.splitlines()) <= 60


@pytest.mark.real
@pytest.mark.data
def test_same_photo_twice_is_enrolled_once_and_said_so(gallery: Path, lfw_image: LfwImage, tmp_path: Path) -> None:
    photo, other = lfw_image("George_W_Bush", 1), lfw_image("George_W_Bush", 2)
    copy = tmp_path / "copy.jpg"
    copy.write_bytes(photo.read_bytes())  # same bytes, another name
    result = ok(invoke("enroll", "GWB", photo, photo, copy, other, "--gallery", gallery))
    assert "2 template(s)" in result.stdout
    skipped = [line for line in result.stderr.splitlines() if line.startswith("skipped:")]
    assert skipped == [
        f"skipped: {photo} is the same photo as {photo}",
        f"skipped: {copy} is the same photo as {photo}",
    ]
    again = ok(invoke("enroll", "GWB", copy, "--gallery", gallery))  # enrolled before, in another run
    assert "nothing added" in again.stdout and "2 template(s)" in again.stdout
    assert f"skipped: {copy} is the same photo as a stored template" in again.stderr
    assert [s["templates"] for s in subjects(gallery)] == [2]
    assert as_json(ok(invoke("enroll", "GWB", photo, "--gallery", gallery, "--json"))) == {
        "id": 1, "name": "GWB", "templates": 2
    }


@pytest.mark.real
@pytest.mark.data
def test_same_photo_in_two_processes_is_stored_once_by_its_sha256(tmp_path: Path, lfw_image: LfwImage) -> None:
    # Two separate `faceprint enroll` processes; the second gets a copy of the first one's photo
    # under another name: the gallery holds the file's sha256 and the copy is skipped, said so.
    import hashlib

    photo = lfw_image("Colin_Powell", 1)
    copy = tmp_path / "same [photo].jpg"
    copy.write_bytes(photo.read_bytes())
    db = tmp_path / "two.db"

    def enroll(*images: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "faceprint.cli", "enroll", "Colin Powell", *map(str, images), "--gallery", str(db),
             "--threads", "1"],
            capture_output=True, text=True, timeout=300, check=False,
            env={k: v for k, v in os.environ.items() if k != "COLUMNS"},  # a pipe: one line, however long
        )

    first = enroll(photo)
    assert first.returncode == 0, first.stderr
    assert "enrolled Colin Powell (id 1): 1 template(s)" in first.stdout
    second = enroll(copy, lfw_image("Colin_Powell", 2))
    assert second.returncode == 0, second.stderr
    assert [line for line in second.stderr.splitlines() if line.strip()] == [
        f"skipped: {copy} is the same photo as a stored template"
    ]
    assert "enrolled Colin Powell (id 1): 2 template(s)" in second.stdout
    with Gallery(db) as g:
        assert g.content_hashes("Colin Powell") == {
            hashlib.sha256(photo.read_bytes()).hexdigest(),
            hashlib.sha256(lfw_image("Colin_Powell", 2).read_bytes()).hexdigest(),
        }
