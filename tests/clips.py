"""Test clips made from ``videos/person_b_live.mov`` (shared data): the challenge answers the HTTP and
the browser tests send.

By eye, in that clip he looks at the camera for the first ~6 s, turns to his right at ~7-8.6 s and
to his left at ~9.4-11.6 s (tests/test_cli_liveness.py). :func:`turns_frames` is 6.6-11.8 s (right,
then left) twice in a row; looped (Chromium's fake camera loops its file) any 10 s of it holds a
full right-left and a full left-right turn, so it answers ``turn_right,turn_left`` and
``turn_left,turn_right`` alike within a 10 s limit: what the service draws when its challenges are
limited to turns (``FACEPRINT_CHALLENGE_ACTIONS=turn_left,turn_right``).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from faceprint.liveness import VideoFrames, read_video

CLIP = "person_b_live.mov"
FPS = 15.0


def person_b(data_root: Path) -> Path:
    path = data_root / "videos" / CLIP
    if not path.is_file():
        pytest.skip(f"missing {path}")
    return path


def turns_frames(data_root: Path) -> list[np.ndarray]:
    """RGB frames of 6.6-11.8 s of the clip at 15 fps, longer side 480, played twice."""
    video = read_video(person_b(data_root), max_seconds=11.8, target_fps=FPS, max_side=480)
    part = [f for f, t in zip(video.frames, video.timestamps_s) if t >= 6.6]
    return part + part


def still_frames(data_root: Path, n: int = 2) -> list[np.ndarray]:
    """``n`` RGB frames of the first 6 s (frontal), to enroll him from."""
    video: VideoFrames = read_video(person_b(data_root), max_seconds=6.0, target_fps=1.0, max_side=480)
    step = max(1, len(video.frames) // n)
    return video.frames[::step][:n]


def write_mp4(frames: list[np.ndarray], path: Path, fps: float = FPS) -> Path:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened(), "OpenCV cannot write mp4v here"
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def write_y4m(frames: list[np.ndarray], path: Path, fps: int = int(FPS)) -> Path:
    """A YUV4MPEG2 (4:2:0) file: what Chromium's ``--use-file-for-fake-video-capture`` plays, looped."""
    h, w = frames[0].shape[:2]
    h, w = h - h % 2, w - w % 2
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for f in frames:
            yuv = cv2.cvtColor(np.ascontiguousarray(f[:h, :w]), cv2.COLOR_RGB2YUV_I420)
            out.write(b"FRAME\n")
            out.write(yuv.tobytes())
    return path
