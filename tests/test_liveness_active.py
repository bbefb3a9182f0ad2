"""Tests of faceprint.liveness active parts: challenges, event detection and matching (on synthetic
signals and fakes, no data), and the MediaPipe face landmarker on real faces."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from faceprint.detection import Detector
from faceprint.errors import InvalidImageError
from faceprint.io import load_image
from faceprint.liveness import (
    ACTIONS,
    Challenge,
    Event,
    FaceLandmarker,
    FaceMesh,
    VideoAnalysis,
    analyse_video,
    check_challenge,
    detect_events,
    eye_aspect_ratio,
    issue_challenge,
    match_actions,
)
from faceprint.liveness.landmarks import EAR_INDICES
from faceprint.types import Detection, Image
from fakes import FakeDetector, make_detection

FPS = 15.0


def _t(n: int) -> np.ndarray:
    return np.arange(n) / FPS


def _signals(*segments: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Concatenate (seconds, blink, yaw) segments sampled at 15 fps."""
    b: list[float] = []
    y: list[float] = []
    for secs, blink, yaw in segments:
        k = round(secs * FPS)
        b += [blink] * k
        y += [yaw] * k
    return _t(len(b)), np.asarray(b), np.asarray(y)


# -- challenges --------------------------------------------------------------------------------
def test_challenge_parse_forms() -> None:
    assert Challenge.parse("blink,blink").actions == ("blink", "blink")
    assert Challenge.parse("blink:2").actions == ("blink", "blink")
    assert Challenge.parse(" Turn-Left , turn_right ").actions == ("turn_left", "turn_right")
    assert Challenge.parse("blink:2,turn_left", time_limit_s=5).time_limit_s == 5.0
    assert str(Challenge.parse("blink:2,turn_left")) == "blink,blink,turn_left"


@pytest.mark.parametrize("text", ["", "smile", "blink:2:3", "look_up", "blink;turn_left"])
def test_challenge_parse_rejects_and_lists_actions(text: str) -> None:
    with pytest.raises(ValueError) as info:
        Challenge.parse(text)
    msg = str(info.value)
    assert "blink" in msg and "turn_left" in msg, msg  # says what is valid


def test_challenge_validates_fields() -> None:
    with pytest.raises(ValueError, match="1..10"):
        Challenge.parse("blink:0")
    with pytest.raises(ValueError, match="time_limit_s"):
        Challenge(("blink",), time_limit_s=0)
    with pytest.raises(ValueError, match="unknown action"):
        Challenge(("wink",))


def test_issue_challenge_seeded_random_and_no_immediate_repeat() -> None:
    assert issue_challenge(3, rng=7) == issue_challenge(3, rng=7)
    seen = {issue_challenge(2, rng=s).actions for s in range(60)}
    # 3 actions, no action twice in a row: 3 * 2 = 6 possible 2-action challenges, all should come up
    assert len(seen) == 6
    for s in range(60):
        acts = issue_challenge(4, rng=s).actions
        assert len(acts) == 4 and set(acts) <= set(ACTIONS)
        assert all(a != b for a, b in zip(acts, acts[1:]))
    # unseeded challenges come from OS entropy: 20 draws of 4 actions are not all equal
    assert len({issue_challenge(4).actions for _ in range(20)}) > 1
    with pytest.raises(ValueError):
        issue_challenge(0)


# -- events ------------------------------------------------------------------------------------
def test_blink_events_relative_to_baseline() -> None:
    # eyes-open level 0.1: two quick blinks (3 frames at 0.8) and one long closure (2 s)
    t, b, y = _signals((1, 0.1, 0), (0.2, 0.8, 0), (1, 0.1, 0), (0.2, 0.8, 0), (1, 0.1, 0), (2, 0.8, 0), (1, 0.1, 0))
    ev = detect_events(t, b, y)
    assert [e.action for e in ev] == ["blink"] * 3
    assert ev[0].start_s == pytest.approx(1.0) and ev[0].duration_s == pytest.approx(0.2)
    assert ev[2].duration_s == pytest.approx(2.0)
    # a squinting / smiling person whose open-eye level is 0.6: 0.8 is not a blink, 0.98 is
    t, b, y = _signals((1, 0.6, 0), (0.2, 0.8, 0), (1, 0.6, 0), (0.2, 0.98, 0), (1, 0.6, 0))
    ev = detect_events(t, b, y)
    assert [round(e.start_s, 2) for e in ev] == [2.2]


def test_blink_not_counted_without_reopening_or_in_profile() -> None:
    t, b, y = _signals((1, 0.1, 0), (0.5, 0.9, 0))  # closes and the video ends
    assert detect_events(t, b, y) == ()
    t, b, y = _signals((1, 0.1, 0), (0.2, 0.9, 60.0), (1, 0.1, 0))  # "closure" only seen in profile
    assert [e.action for e in detect_events(t, b, y)] == ["turn_left"]


def test_blink_across_a_long_face_loss_is_dropped() -> None:
    t, b, y = _signals((1, 0.1, 0), (0.2, 0.9, 0), (1.0, math.nan, math.nan), (1, 0.1, 0))
    assert detect_events(t, b, y) == ()
    t, b, y = _signals((1, 0.1, 0), (0.2, 0.9, 0), (0.2, math.nan, math.nan), (0.2, 0.9, 0), (1, 0.1, 0))
    assert len(detect_events(t, b, y)) == 1  # a short dropout inside one blink


def test_turn_events_sign_order_and_merge() -> None:
    t, b, y = _signals((1, 0.1, 2), (1, 0.1, 40), (1, 0.1, 0), (1, 0.1, -40), (1, 0.1, 0))
    ev = detect_events(t, b, y)
    assert [e.action for e in ev] == ["turn_left", "turn_right"]
    # neutral = median yaw = 0
    assert ev[0].start_s == pytest.approx(1.0, abs=0.1) and ev[0].peak == pytest.approx(40.0)
    # jitter back to 5 degrees for two frames inside one turn: one event, not two
    t, b, y = _signals((1, 0.1, 0), (0.6, 0.1, 40), (2 / FPS, 0.1, 5), (0.6, 0.1, 40), (1, 0.1, 0))
    assert [e.action for e in detect_events(t, b, y)] == ["turn_left"]
    # a single-frame spike is not a turn (median filter)
    t, b, y = _signals((1, 0.1, 0), (1 / FPS, 0.1, 60), (1, 0.1, 0))
    assert detect_events(t, b, y) == ()
    # a turn still held when the video ends counts
    t, b, y = _signals((1, 0.1, 0), (0.5, 0.1, -45))
    assert [e.action for e in detect_events(t, b, y)] == ["turn_right"]


def test_detect_events_rejects_ragged_signals() -> None:
    with pytest.raises(ValueError, match="length"):
        detect_events([0, 1], [0.1], [0, 0])


# -- matching and challenge verdicts ---------------------------------------------------------------
def _ev(action: str, start: float, end: float) -> Event:
    return Event(action, start, end, 1.0)


def test_match_actions_in_order_as_subsequence() -> None:
    evs = [_ev("turn_right", 1, 2), _ev("blink", 2.5, 2.7), _ev("turn_left", 3, 4), _ev("blink", 5, 5.2)]
    assert [e.start_s for e in match_actions(evs, ["blink", "turn_left"])] == [2.5, 3]
    assert [e.start_s for e in match_actions(evs, ["turn_right", "blink", "blink"])] == [1, 2.5, 5]
    assert len(match_actions(evs, ["turn_left", "turn_right"])) == 1  # wrong order
    assert len(match_actions(evs, ["blink", "blink", "blink"])) == 2  # each event used once
    # an action that overlaps the previous matched one does not count as "after" it
    assert len(match_actions([_ev("turn_left", 0, 3), _ev("blink", 1, 1.2)], ["turn_left", "blink"])) == 1


def _analysis(*segments: tuple[float, float, float], n_multi_face: int = 0) -> VideoAnalysis:
    t, b, y = _signals(*segments)
    return VideoAnalysis.from_signals(t, b, y, n_multi_face=n_multi_face)


def test_check_challenge_pass_and_liveness() -> None:
    a = _analysis((1, 0.1, 0), (0.2, 0.8, 0), (1, 0.1, 0), (1, 0.1, 40), (1, 0.1, 0))
    assert a.blinks == 1 and a.turns == {"turn_left": 1, "turn_right": 0} and a.n_no_face == 0
    r = check_challenge(a, Challenge.parse("blink,turn_left"))
    assert r.passed and r.reasons == () and [e.action for e in r.matched] == ["blink", "turn_left"]
    lv = r.liveness
    assert (lv.verdict, lv.score, lv.method) == ("live", 1.0, "active-challenge")
    assert lv.details["challenge"] == "blink,turn_left"


def test_check_challenge_wrong_order_is_spoof_with_reason() -> None:
    a = _analysis((1, 0.1, 0), (0.2, 0.8, 0), (1, 0.1, 0), (1, 0.1, 40), (1, 0.1, 0))
    r = check_challenge(a, Challenge.parse("turn_left,blink"))
    assert not r.passed
    assert r.reasons == ("expected blink after turn_left, saw nothing",)
    assert r.liveness.verdict == "spoof" and r.liveness.score == 0.5
    r = check_challenge(a, Challenge.parse("turn_right"))
    assert r.reasons == ("expected turn_right first, saw blink, turn_left",)


def test_check_challenge_time_limit() -> None:
    a = _analysis((1, 0.1, 0), (0.2, 0.8, 0), (9, 0.1, 0), (1, 0.1, -40), (1, 0.1, 0))
    r = check_challenge(a, Challenge.parse("blink,turn_right", time_limit_s=10))
    assert not r.passed and len(r.reasons) == 1 and r.reasons[0].startswith("took 11.")
    assert r.reasons[0].endswith("> limit 10 s")
    assert check_challenge(a, Challenge.parse("blink,turn_right", time_limit_s=12)).passed


def test_check_challenge_no_face_is_unsure_and_several_faces_fail() -> None:
    a = _analysis((0.4, 0.1, 0), (1.6, math.nan, math.nan))  # 6 frames with a face, 24 without
    r = check_challenge(a, Challenge.parse("blink"))
    assert not r.passed and r.liveness.verdict == "unsure"
    assert "no face in 80% of frames" in r.reasons
    a = _analysis((1, 0.1, 0), (0.2, 0.8, 0), (1, 0.1, 0), n_multi_face=20)
    r = check_challenge(a, Challenge.parse("blink"))
    assert not r.passed and r.liveness.verdict == "spoof"
    assert any(s.startswith("several faces in 61%") for s in r.reasons), r.reasons
    short = _analysis((0.2, 0.1, 0))
    r = check_challenge(short, Challenge.parse("blink"))
    assert r.liveness.verdict == "unsure" and r.reasons[0].startswith("video too short")


def test_check_challenge_rejects_text_challenge() -> None:
    with pytest.raises(TypeError, match="Challenge.parse"):
        check_challenge(_analysis((1, 0.1, 0)), "blink")  # type: ignore[arg-type]


# -- analyse_video on fakes (no models) ----------------------------------------------------------
class ScriptedLandmarker(FaceLandmarker):
    """Returns blink / yaw values from a script, one per call; the frame's first pixel is ignored."""

    def __init__(self, blink: npt.ArrayLike, yaw: npt.ArrayLike) -> None:
        super().__init__()
        self.script = list(zip(np.asarray(blink, dtype=float).tolist(), np.asarray(yaw, dtype=float).tolist()))
        self.calls = 0

    def landmarks(self, image: Image, detection: Detection) -> FaceMesh:
        b, y = self.script[self.calls]
        self.calls += 1
        return FaceMesh(np.zeros((478, 3)), 0.99, {"eyeBlinkLeft": b, "eyeBlinkRight": b}, y, 0.0, 0.0)


class BlankIsNoFace:
    """A fake detector: no face in all-black frames, two faces otherwise (the larger one second)."""

    name = "blank-is-no-face"

    def detect(self, image: Image) -> list[Detection]:
        if not image.any():
            return []
        return [make_detection((0, 0, 10, 10)), make_detection((10, 10, 60, 60))]


def test_analyse_video_with_fakes_counts_no_face_and_multi_face() -> None:
    t, b, y = _signals((1, 0.1, 0), (0.2, 0.8, 0), (1, 0.1, 0))
    frames = [np.full((64, 64, 3), 128, np.uint8) for _ in t]
    for i in (3, 4):
        frames[i] = np.zeros((64, 64, 3), np.uint8)
    lm = ScriptedLandmarker(np.delete(b, [3, 4]), np.delete(y, [3, 4]))
    det: Detector = BlankIsNoFace()
    a = analyse_video(frames, timestamps_s=t, detector=det, landmarker=lm)
    assert a.n_frames == len(t) and a.n_no_face == 2 and a.n_multi_face == len(t) - 2
    assert lm.calls == len(t) - 2
    assert a.blinks == 1 and math.isnan(a.blink[3]) and not a.face_found[4]
    assert a.fps == pytest.approx(FPS)


def test_analyse_video_rejects_bad_frames() -> None:
    det = FakeDetector()
    with pytest.raises(InvalidImageError):
        analyse_video([np.zeros((64, 64), np.uint8)], detector=det, landmarker=ScriptedLandmarker([0.1], [0]))
    with pytest.raises(InvalidImageError):
        analyse_video([], detector=det, landmarker=ScriptedLandmarker([], []))
    with pytest.raises(InvalidImageError, match="one image"):
        analyse_video(np.zeros((64, 64, 3), np.uint8), detector=det)  # type: ignore[arg-type]


# -- the real landmarker -------------------------------------------------------------------------
def test_eye_aspect_ratio_hand_computed() -> None:
    pts = np.zeros((478, 2))
    for i1, i2, i3, i4, i5, i6 in EAR_INDICES:
        pts[i1], pts[i4] = (0, 0), (10, 0)
        pts[i2], pts[i3] = (3, -2), (7, -2)
        pts[i5], pts[i6] = (7, 1), (3, 1)
    assert eye_aspect_ratio(pts) == pytest.approx((3 + 3) / (2 * 10))


@pytest.fixture(scope="module")
def landmarker() -> FaceLandmarker:
    from faceprint import weights

    if not weights.is_installed("face_landmarker"):
        pytest.skip(f"face_landmarker not installed ({weights.WEIGHT_FILES['face_landmarker'].install_hint})")
    return FaceLandmarker()


@pytest.mark.real
@pytest.mark.data
def test_landmarks_on_lfw_face(landmarker: FaceLandmarker, yunet: Detector, lfw_image) -> None:  # type: ignore[no-untyped-def]
    img = load_image(lfw_image("Aaron_Eckhart", 1))
    det = max(yunet.detect(img), key=lambda d: d.area)
    mesh = landmarker.landmarks(img, det)
    assert mesh.points.shape == (478, 3) and mesh.presence > 0.9
    x1, y1, x2, y2 = det.box
    pad = 0.1 * det.width
    inside = (
        (mesh.points[:, 0] > x1 - pad)
        & (mesh.points[:, 0] < x2 + pad)
        & (mesh.points[:, 1] > y1 - pad)
        & (mesh.points[:, 1] < y2 + pad)
    )
    assert inside.all()
    # iris centres (468: image-left eye, 473: image-right eye) where YuNet puts the eyes
    iod = float(np.linalg.norm(det.landmarks[0] - det.landmarks[1]))
    assert np.linalg.norm(mesh.points[468, :2] - det.landmarks[0]) < 0.1 * iod
    assert np.linalg.norm(mesh.points[473, :2] - det.landmarks[1]) < 0.1 * iod
    assert mesh.blendshapes is not None and len(mesh.blendshapes) == 52
    assert mesh.blendshapes["eyeBlinkLeft"] < 0.4 and mesh.blendshapes["eyeBlinkRight"] < 0.4  # eyes open
    assert 0.2 < mesh.ear < 0.4
    assert abs(mesh.yaw) < 15 and abs(mesh.roll) < 10


@pytest.mark.real
@pytest.mark.data
def test_head_pose_sign_on_a_turned_face(landmarker: FaceLandmarker, yunet: Detector, data_root: Path) -> None:
    """person_b_live.mov at 7.4 s: by eye, his nose points to image-left (he turned to HIS right)."""
    from faceprint.liveness import read_video

    path = data_root / "videos" / "person_b_live.mov"
    if not path.is_file():
        pytest.skip(f"missing {path}")
    video = read_video(path, max_seconds=7.5, target_fps=None)
    frame = video.frames[int(np.searchsorted(video.timestamps_s, 7.2))]
    det = max(yunet.detect(frame), key=lambda d: d.area)
    yaw = landmarker.landmarks(frame, det).yaw
    assert yaw < -25
    mirrored = np.ascontiguousarray(frame[:, ::-1])
    det_m = max(yunet.detect(mirrored), key=lambda d: d.area)
    assert landmarker.landmarks(mirrored, det_m).yaw > 25  # mirroring swaps left and right


@pytest.mark.real
@pytest.mark.data
@pytest.mark.parametrize("angle", [-25, 25])
def test_head_pose_roll_follows_in_plane_rotation(
    landmarker: FaceLandmarker,
    yunet: Detector,
    lfw_image: Callable[[str, int], Path],
    angle: int,
) -> None:
    """Rotating a frontal face in the image plane changes roll by the angle and leaves yaw alone."""
    import cv2

    img = load_image(lfw_image("Aaron_Eckhart", 1))
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)  # angle > 0: counter-clockwise on screen
    rotated = np.ascontiguousarray(cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE), dtype=np.uint8)
    base = landmarker.landmarks(img, max(yunet.detect(img), key=lambda d: d.area))
    mesh = landmarker.landmarks(rotated, max(yunet.detect(rotated), key=lambda d: d.area))
    # counter-clockwise lifts the image-right eye: roll > 0
    assert mesh.roll - base.roll == pytest.approx(angle, abs=4)
    assert abs(mesh.yaw - base.yaw) < 10
