"""CLI liveness options: ``--liveness`` on verify / enroll / identify, ``liveness``, ``challenge``,
``evaluate liveness``. Real NUAA photographs (live webcam frames and printed-photo attacks)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from faceprint.gallery import Gallery
from test_cli import as_json, invoke, no_crash, ok, user_error


def _nuaa(data_root: Path, folder: str, subject: str, i: int = 0) -> Path:
    files = sorted((data_root / "nuaa" / folder / subject).glob("*.jpg"))
    if len(files) <= i:
        pytest.skip(f"NUAA images missing under {data_root / 'nuaa' / folder / subject}")
    return files[i]


@pytest.fixture
def live_a(data_root: Path) -> Path:
    return _nuaa(data_root, "ClientRaw", "0001", 0)


@pytest.fixture
def live_b(data_root: Path) -> Path:
    return _nuaa(data_root, "ClientRaw", "0001", 5)


@pytest.fixture
def attack(data_root: Path) -> Path:
    return _nuaa(data_root, "ImposterRaw", "0001", 0)


# Note: the shipped PAD model was trained on every NUAA subject; these tests check the wiring and the
# exit codes, not the model's accuracy (held-out numbers: bench/results/liveness.json).
@pytest.mark.real
@pytest.mark.data
def test_verify_liveness_passive_exit_codes(live_a: Path, live_b: Path, attack: Path) -> None:
    genuine = as_json(ok(invoke("verify", live_a, live_b, "--liveness", "passive", "--json"), 0))
    assert genuine["decision"] == "match" and genuine["liveness"]["verdict"] == "live"
    spoof = ok(invoke("verify", attack, live_a, "--liveness", "passive"), 3)
    assert "spoof" in spoof.stdout
    # without the check, the print of the same person verifies: that is the attack
    ok(invoke("verify", attack, live_a), 0)


@pytest.mark.real
@pytest.mark.data
def test_enroll_with_a_print_writes_nothing(tmp_path: Path, live_a: Path, attack: Path) -> None:
    db = tmp_path / "g.db"
    res = ok(invoke("enroll", "Mallory", live_a, attack, "--liveness", "passive", "-g", db, "--json"), 3)
    data = as_json(res)
    assert data["decision"] == "spoof" and [p["verdict"] for p in data["photos"]] == ["live", "spoof"]
    assert not db.exists() or len(Gallery(db)) == 0
    ok(invoke("enroll", "Alice", live_a, "--liveness", "passive", "-g", db), 0)
    with Gallery(db) as g:
        assert [s.name for s in g.subjects()] == ["Alice"]


@pytest.mark.real
@pytest.mark.data
def test_identify_liveness(tmp_path: Path, live_a: Path, live_b: Path, attack: Path) -> None:
    db = tmp_path / "g.db"
    ok(invoke("enroll", "Alice", live_a, "-g", db))
    known = as_json(ok(invoke("identify", live_b, "-g", db, "--liveness", "passive", "--json"), 0))
    assert known["faces"][0]["name"] == "Alice" and known["faces"][0]["decision"] == "known"
    spoof = as_json(ok(invoke("identify", attack, "-g", db, "--liveness", "passive", "--json"), 3))
    assert spoof["faces"][0]["decision"] == "spoof" and spoof["faces"][0]["matches"] == []


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--liveness", "sometimes"], ["--liveness"]),
        (["--challenge", "blink"], ["--challenge-video"]),
    ],
)
def test_liveness_option_errors(tmp_path: Path, args: list[str], words: list[str]) -> None:
    img = tmp_path / "x.png"
    img.write_bytes(b"not read before the options are checked")
    user_error(invoke("verify", img, img, *args), *words)


def test_challenge_video_needs_challenge(tmp_path: Path) -> None:
    img = tmp_path / "x.png"
    img.write_bytes(b"x")
    user_error(invoke("verify", img, img, "--challenge-video", tmp_path / "v.mp4"), "--challenge")


def test_liveness_challenge_on_an_image_is_refused(tmp_path: Path) -> None:
    img = tmp_path / "x.jpg"
    img.write_bytes(b"x")
    user_error(invoke("liveness", img, "--challenge", "blink"), "video")


def test_liveness_on_a_text_file_is_a_clear_error(tmp_path: Path) -> None:
    for name in ("notes.jpg", "clip.mp4"):
        bad = tmp_path / name
        bad.write_text("this is not media\n")
        res = invoke("liveness", bad)
        no_crash(res)
        assert res.exit_code == 2, res.output


@pytest.mark.real
@pytest.mark.data
def test_evaluate_liveness_on_a_labelled_folder(tmp_path: Path, data_root: Path) -> None:
    """live/ + print/ layout with a few NUAA frames and one unreadable file (a failure to acquire)."""
    (tmp_path / "live").mkdir()
    (tmp_path / "print").mkdir()
    for i in range(3):
        shutil.copy(_nuaa(data_root, "ClientRaw", "0002", i * 7), tmp_path / "live" / f"{i}.jpg")
        shutil.copy(_nuaa(data_root, "ImposterRaw", "0002", i * 7), tmp_path / "print" / f"{i}.jpg")
    (tmp_path / "print" / "broken.jpg").write_bytes(b"\xff\xd8\xff truncated")
    data = as_json(ok(invoke("evaluate", "liveness", tmp_path, "--json")))
    assert data["n"] == {"bona_fide": 3, "print": 4}
    assert data["fta"]["count"] == 1 and data["fta"]["files"][0]["file"].endswith("broken.jpg")
    assert set(data["apcer"]) == {"print"}
    for key in ("bpcer", "acer", "eer", "bpcer_at_apcer_5pct", "bpcer_at_apcer_1pct"):
        assert 0.0 <= data[key] <= 1.0
    table = ok(invoke("evaluate", "liveness", tmp_path)).stdout
    assert "APCER print" in table and "failures to acquire" in table


def test_evaluate_liveness_bad_folder(tmp_path: Path) -> None:
    user_error(invoke("evaluate", "liveness", tmp_path / "missing"), "not found")
    (tmp_path / "stuff").mkdir()
    user_error(invoke("evaluate", "liveness", tmp_path / "stuff"), "live")


# -- video: replay cue, active challenge, challenge as the liveness of verify -----------------------
def _video(data_root: Path, name: str) -> Path:
    path = data_root / "videos" / name
    if not path.is_file():
        pytest.skip(f"video missing: {path}")
    return path


@pytest.mark.real
@pytest.mark.data
@pytest.mark.parametrize(
    ("clip", "verdict", "code"), [("person_a_live.mp4", "live", 0), ("person_a_replay.mp4", "spoof", 1)]
)
def test_liveness_video_replay_cue(data_root: Path, clip: str, verdict: str, code: int) -> None:
    data = as_json(ok(invoke("liveness", _video(data_root, clip), "--json", "--threads", "1"), code))
    assert data["verdict"] == verdict and data["method"] == "replay-lightness-heuristic"
    assert data["passive_frames"]["method"] == "passive-video"  # reported beside it, not the verdict


@pytest.mark.real
@pytest.mark.data
def test_liveness_video_challenge(data_root: Path) -> None:
    """person_b_live.mov: by eye, he turns to his right at ~7-8.6 s, then to his left at ~9.4-11.6 s."""
    clip = _video(data_root, "person_b_live.mov")
    passed = as_json(ok(invoke("liveness", clip, "--challenge", "turn_right,turn_left", "--time-limit", "15",
                               "--json", "--threads", "1"), 0))
    assert passed["passed"] and [m["action"] for m in passed["matched"]] == ["turn_right", "turn_left"]
    # the screen-replay cue is reported beside the challenge (same frames, same value as `liveness VIDEO`)
    assert passed["replay_cue"]["method"] == "replay-lightness-heuristic"
    assert passed["replay_cue"]["verdict"] == "live" and passed["replay_cue"]["score"] == pytest.approx(0.948, abs=0.01)
    wrong_order = as_json(ok(invoke("liveness", clip, "--challenge", "turn_left,turn_right", "--time-limit", "15",
                                    "--json", "--threads", "1"), 1))
    assert not wrong_order["passed"] and wrong_order["verdict"] == "spoof" and wrong_order["reasons"]
    # (time limits are checked on synthetic signals in tests/test_liveness_active.py)


def _person_b(data_root: Path, folder: Path) -> tuple[Path, Path, Path]:
    """Person B's live clip (he turns right, then left) and two stills of him from its first 6 s, as PNGs."""
    from PIL import Image as PILImage

    from faceprint.liveness import read_video

    clip = _video(data_root, "person_b_live.mov")
    frames = read_video(clip, max_seconds=6.0, target_fps=2.0).frames
    a, b = folder / "a.png", folder / "b.png"
    PILImage.fromarray(frames[1]).save(a)
    PILImage.fromarray(frames[-1]).save(b)
    return clip, a, b


@pytest.mark.real
@pytest.mark.data
def test_verify_with_a_video_challenge(data_root: Path, tmp_path: Path) -> None:
    """Two stills of person B from his live clip verify only when the clip answers the challenge."""
    clip, a, b = _person_b(data_root, tmp_path)
    args = ["verify", a, b, "--challenge-video", clip, "--time-limit", "15", "--json", "--threads", "1"]
    good = as_json(ok(invoke(*args, "--challenge", "turn_right,turn_left"), 0))
    assert good["decision"] == "match" and good["liveness"]["method"] == "active-challenge"
    bad = as_json(ok(invoke(*args, "--challenge", "blink:3"), 3))  # person B does not blink on camera
    assert bad["decision"] in ("spoof", "unsure") and not bad["same"]


def test_challenge_command() -> None:
    from faceprint.liveness import ACTIONS

    first = as_json(ok(invoke("challenge", "--seed", "7", "--actions", "3", "--json")))
    assert first == as_json(ok(invoke("challenge", "--seed", "7", "--actions", "3", "--json")))
    assert len(first["actions"]) == 3 and set(first["actions"]) <= set(ACTIONS)
    assert first["challenge"] == ",".join(first["actions"])
    texts = {ok(invoke("challenge")).stdout.strip() for _ in range(8)}
    assert len(texts) > 1  # fresh randomness without --seed
    user_error(invoke("challenge", "--actions", "0"), "action")


@pytest.mark.real
@pytest.mark.data
def test_identify_with_a_video_challenge_needs_one_face(data_root: Path, tmp_path: Path) -> None:
    """A challenge video vouches for one person: a photo with two faces is refused unless one is selected."""
    import numpy as np
    from PIL import Image as PILImage

    clip, single, other = _person_b(data_root, tmp_path)
    pair = tmp_path / "two.png"
    first = np.asarray(PILImage.open(single))
    with PILImage.open(other) as im:
        small = np.asarray(im.resize((im.width // 2, im.height // 2)))
    canvas = np.zeros_like(first)
    canvas[: small.shape[0], : small.shape[1]] = small
    PILImage.fromarray(np.concatenate([first, canvas], axis=1)).save(pair)  # B, and B again at half size
    db = tmp_path / "g.db"
    ok(invoke("enroll", "B", single, "-g", db))
    base = ["identify", pair, "-g", db, "--challenge-video", clip, "--challenge", "turn_right,turn_left",
            "--time-limit", "15", "--threads", "1"]
    user_error(invoke(*base), "vouches for one presented face, but the image has 2 faces")
    data = as_json(ok(invoke(*base, "--select", "largest", "--json"), 0))
    [face] = data["faces"]
    assert face["name"] == "B" and face["liveness"]["method"] == "active-challenge"
    user_error(invoke("identify", pair, "-g", db, "--select", "biggest"), "--select")
