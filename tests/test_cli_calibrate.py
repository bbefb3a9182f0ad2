"""`faceprint calibrate DIR` on real LFW people, and what FACEPRINT_CALIBRATION changes in `models` / `verify`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faceprint.embedding import get_embedder, load_calibration
from test_calibration import lfw_subset
from test_cli import as_json, invoke, ok, user_error

pytestmark = [pytest.mark.real, pytest.mark.data]


@pytest.fixture(scope="module")
def folder(lfw_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 15 people x 2 photos: 420 impostor pairs, enough for FMR 1e-2 (300) but not 1e-3 (3,000)
    return lfw_subset(lfw_dir, tmp_path_factory.mktemp("cli") / "people", 15, 2)


@pytest.fixture(scope="module")
def written(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:  # type: ignore[type-arg]
    path = tmp_path_factory.mktemp("out") / "cal.json"
    args = ("calibrate", folder, "--out", path, "--json", "--bootstrap", "100")
    r = ok(invoke(*args, env={"FACEPRINT_CALIBRATION": ""}))
    return path, as_json(r)


def test_calibrate_writes_the_supported_targets_and_says_how_to_use_them(
    written: tuple[Path, dict],  # type: ignore[type-arg]
) -> None:
    path, doc = written
    assert doc["file"] == str(path) and path.is_file()
    assert [p["key"] for p in doc["operating_points"]] == ["1e-2"]  # 1e-3 and 1e-4 need more pairs: not defaults
    assert doc["counts"]["people"] == 15 and doc["counts"]["impostor_pairs"] >= 300
    assert doc["thresholds"]["1e-2"] == doc["operating_points"][0]["threshold"]
    assert doc["use"] == f"export FACEPRINT_CALIBRATION={path.resolve()}"
    assert doc["model"] == "sface" and doc["fingerprint"] == get_embedder("sface").fingerprint
    saved = json.loads(path.read_text())
    assert saved["models"]["sface"]["thresholds"]["1e-2"] == pytest.approx(doc["thresholds"]["1e-2"], abs=1e-6)


def test_calibrate_table(folder: Path, tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    args = ("calibrate", folder, "--out", path, "--bootstrap", "20", "--fpir", "0.1", "--gallery-size", "2")
    r = ok(invoke(*args, env={"FACEPRINT_CALIBRATION": "", "COLUMNS": "200"}))
    assert "FMR 1e-2" in r.stdout and "15 people" in r.stdout and "impostor pairs" in r.stdout
    assert "FPIR 0.1 @ 2 (FMR 0.0513)" in r.stdout
    assert "export FACEPRINT_CALIBRATION=" in r.stdout and path.is_file()
    saved = json.loads(path.read_text())["models"]["sface"]
    assert set(saved["thresholds"]) == {"1e-2", "best_accuracy"}  # an FPIR point is not a 1:1 operating point
    assert [p["key"] for p in saved["calibration"]["operating_points"]] == ["1e-2", "fpir 1e-1 @ 2"]


def test_calibrate_refuses_an_unsupportable_target(folder: Path, tmp_path: Path) -> None:
    line = user_error(
        invoke("calibrate", folder, "--fmr", "1e-3", "--out", tmp_path / "x.json"),
        "FMR 1e-3 needs at least 3,000 impostor pairs",
        "smallest FMR they support",
    )
    assert "these photos give 420 (15 people, 30 images)" in line  # checked on the folder, before any embedding
    assert not (tmp_path / "x.json").exists()
    user_error(invoke("calibrate", folder, "--fpir", "1e-2", "--out", tmp_path / "y.json"), "--gallery-size")
    user_error(invoke("calibrate", folder, "--fmr", "0.5x"), "--fmr must be a number")


def test_calibrate_refuses_missing_empty_and_one_person_folders(folder: Path, tmp_path: Path) -> None:
    user_error(invoke("calibrate", tmp_path / "nope"), "not a folder")
    (tmp_path / "empty").mkdir()
    user_error(invoke("calibrate", tmp_path / "empty"), "at least 2 people", "no person folder")
    one = tmp_path / "one"
    person = next(folder.iterdir())
    (one / person.name).mkdir(parents=True)
    for photo in person.iterdir():
        (one / person.name / photo.name).symlink_to(photo.resolve())
    user_error(invoke("calibrate", one), "at least 2 people", "one person only")


def test_models_and_verify_follow_faceprint_calibration(
    written: tuple[Path, dict], lfw_image, tmp_path: Path  # type: ignore[no-untyped-def, type-arg]
) -> None:
    path, doc = written
    env = {"FACEPRINT_CALIBRATION": str(path)}
    rows = {r["model"]: r for r in as_json(ok(invoke("models", "--json", env=env)))}
    sface = rows["sface"]
    assert sface["calibration"]["kind"] == "file" and sface["calibration"]["path"] == str(path)
    assert sface["calibration"]["people"] == 15 and sface["calibration"]["date"]
    assert sface["thresholds"] == {k: pytest.approx(v, abs=1e-6) for k, v in doc["thresholds"].items()}
    assert sface["calibration_flip"]["kind"] == "shipped"  # the file holds sface only
    assert rows["facenet"]["calibration"]["kind"] == "shipped"
    assert rows["yunet"]["calibration"] is None
    assert "1e-3" in rows["facenet"]["thresholds"]  # other models keep the shipped thresholds
    table = ok(invoke("models", env={**env, "COLUMNS": "400"})).stdout
    assert f"{path} (" in table and "15 people)" in table

    shipped = {r["model"]: r for r in as_json(ok(invoke("models", "--json", env={"FACEPRINT_CALIBRATION": ""})))}
    assert shipped["sface"]["calibration"]["kind"] == "shipped"
    assert shipped["sface"]["thresholds"] == load_calibration()["models"]["sface"]["thresholds"]

    a, b = lfw_image("Aaron_Peirsol", 1), lfw_image("Aaron_Peirsol", 2)
    v = as_json(ok(invoke("verify", a, b, "--fmr", "1e-2", "--json", env=env)))
    assert v["threshold"] == pytest.approx(doc["thresholds"]["1e-2"], abs=1e-6)
    # an operating point the photos could not support is not filled in from LFW
    user_error(invoke("verify", a, b, "--fmr", "1e-4", env=env), "no calibrated threshold", "1e-2")


def test_a_broken_or_foreign_calibration_file(written: tuple[Path, dict], tmp_path: Path) -> None:  # type: ignore[type-arg]
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    user_error(invoke("models", env={"FACEPRINT_CALIBRATION": str(broken)}), "invalid JSON")
    path, _ = written
    raw = json.loads(path.read_text())
    raw["models"]["sface"]["fingerprint"] = "sface@000000000000"
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps(raw))
    rows = {r["model"]: r for r in as_json(ok(invoke("models", "--json", env={"FACEPRINT_CALIBRATION": str(foreign)})))}
    cal = rows["sface"]["calibration"]
    assert cal["kind"] == "shipped" and "not applied" in cal["ignored"] and "sface@000000000000" in cal["ignored"]
    assert rows["sface"]["thresholds"] == load_calibration()["models"]["sface"]["thresholds"]
    table = ok(invoke("models", env={"FACEPRINT_CALIBRATION": str(foreign), "COLUMNS": "200"})).stdout
    assert "(LFW!/LFW)" in table and "sface: " in table and "using the shipped LFW calibration" in table
