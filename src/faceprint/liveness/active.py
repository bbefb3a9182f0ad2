"""Active liveness on video: blink and head-turn events, and random challenge-response checks.

Per frame, the largest face found by a faceprint detector (YuNet by default) goes through
:class:`~faceprint.liveness.landmarks.FaceLandmarker` (MediaPipe face mesh + blendshapes). Two
signals are kept:

* ``blink`` in [0, 1]: the mean of the ``eyeBlinkLeft`` / ``eyeBlinkRight`` blendshapes (or, without
  blendshapes, ``(0.30 - EAR) / 0.25`` clipped to [0, 1]);
* ``yaw_deg`` (and ``pitch_deg``): head pose from ``cv2.solvePnP``; ``yaw > 0`` when the person turns
  THEIR head to THEIR left, i.e. the nose moves towards image-right in a non-mirrored video. Many
  phone apps mirror the front-camera preview but store the video un-mirrored; a mirrored recording
  swaps left and right.

Events (:func:`detect_events`):

* ``blink``: the blink score rises ``blink_on`` above the video's baseline (its 20th percentile: the
  eyes-open level, which differs between people, glasses and smiles) and comes back below
  ``blink_off`` above it. Every close-and-reopen counts, also a long eye closure; ``Event.end_s -
  Event.start_s`` tells them apart. Frames with ``|yaw| > 35`` degrees are ignored (blendshapes are
  unreliable in profile). A closure still going on at the end of the video is not counted.
* ``turn_left`` / ``turn_right``: the (3-frame median) yaw leaves the neutral pose (median yaw of the
  video, clipped to +-15 degrees) by more than ``turn_on`` degrees for at least ``min_turn_s`` and
  comes back within ``turn_off`` degrees (or the video ends). Same-direction events less than
  ``merge_gap_s`` apart are merged (solvePnP jitters in profile).

``look_up`` / ``look_down`` are not offered: no clip at hand holds a deliberate look up or down,
so a pitch detector could not be checked against anything (``pitch_deg`` is still reported; its
sign and scale are unverified).

Examples
--------
>>> challenge = issue_challenge(2, rng=0)  # e.g. Challenge(actions=('turn_left', 'blink'), ...)
>>> result = check_challenge("answer.mp4", challenge)  # doctest: +SKIP
>>> result.passed, result.reasons  # doctest: +SKIP
(True, ())
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..detection import Detector
from ..errors import FaceprintError, InvalidArgumentError, InvalidArgumentTypeError
from ..runtime import lazy_singleton
from ..types import Image, Liveness
from .landmarks import FaceLandmarker
from .video import VideoFrames, as_frames, shared_detector

__all__ = [
    "ACTIONS",
    "Challenge",
    "issue_challenge",
    "Event",
    "EventParams",
    "VideoAnalysis",
    "detect_events",
    "analyse_video",
    "count_blinks",
    "ChallengeResult",
    "check_challenge",
    "match_actions",
    "frontal_frame",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

ACTIONS = ("blink", "turn_left", "turn_right")
"""Actions a challenge may ask for (look_up / look_down are not offered; see the module docstring)."""

_MIN_FACE_FRACTION = 0.5  # below this share of frames with a face, the verdict is "unsure"
_MULTI_FACE_FRACTION = 0.25  # several faces in at least this share of face frames fails a challenge


# -- challenges --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Challenge:
    """An ordered list of actions to perform within ``time_limit_s`` of the video's first frame.

    Examples
    --------
    >>> Challenge.parse("blink:2,turn_left")
    Challenge(actions=('blink', 'blink', 'turn_left'), time_limit_s=10.0)
    """

    actions: tuple[str, ...]
    time_limit_s: float = 10.0

    def __post_init__(self) -> None:
        if not self.actions:
            raise InvalidArgumentError(f"a challenge needs at least one action; valid: {', '.join(ACTIONS)}")
        bad = [a for a in self.actions if a not in ACTIONS]
        if bad:
            raise InvalidArgumentError(f"unknown action(s) {', '.join(map(repr, bad))}; valid: {', '.join(ACTIONS)}")
        if not (self.time_limit_s > 0 and math.isfinite(self.time_limit_s)):
            raise InvalidArgumentError(f"time_limit_s must be a positive number, got {self.time_limit_s}")

    @classmethod
    def parse(cls, text: str, *, time_limit_s: float = 10.0) -> Challenge:
        """Parse ``"blink,blink"``, ``"blink:2"``, ``"turn_left, turn_right"`` (also ``-`` for ``_``).

        Raises :class:`ValueError` listing :data:`ACTIONS` for anything else.
        """
        actions: list[str] = []
        for part in str(text).split(","):
            token = part.strip().lower().replace("-", "_").replace(" ", "_")
            if not token:
                continue
            m = re.fullmatch(r"([a-z_]+)(?:[:x\*](\d+))?", token)
            if m is None:
                raise InvalidArgumentError(
                    f"cannot parse {part.strip()!r}; expected ACTION or ACTION:N, ACTION in {ACTIONS}"
                )
            name, count = m.group(1), int(m.group(2) or 1)
            if name not in ACTIONS:
                raise InvalidArgumentError(f"unknown action {name!r}; valid: {', '.join(ACTIONS)}")
            if not 1 <= count <= 10:
                raise InvalidArgumentError(f"repeat count of {name!r} must be 1..10, got {count}")
            actions += [name] * count
        return cls(actions=tuple(actions), time_limit_s=time_limit_s)

    def __str__(self) -> str:
        return ",".join(self.actions)


def issue_challenge(
    n_actions: int = 2,
    *,
    rng: np.random.Generator | int | None = None,
    time_limit_s: float = 10.0,
    actions: Sequence[str] = ACTIONS,
) -> Challenge:
    """A random challenge of ``n_actions`` actions drawn from ``actions``, no action twice in a row
    (one action may repeat: ``blink, blink``).

    With ``rng=None`` the challenge comes from fresh OS entropy (what a service should use: a replayed
    recording cannot know it in advance). ``actions`` narrows the choice (a camera setting where
    turning the head is awkward: ``("blink",)``); fewer actions make a lucky replay likelier.

    Examples
    --------
    >>> issue_challenge(3, rng=1) == issue_challenge(3, rng=1)
    True
    """
    if not 1 <= n_actions <= 10:
        raise InvalidArgumentError(f"n_actions must be 1..10, got {n_actions}")
    vocabulary = list(dict.fromkeys(actions))
    bad = [a for a in vocabulary if a not in ACTIONS]
    if not vocabulary or bad:
        raise InvalidArgumentError(f"actions must be some of {', '.join(ACTIONS)}, got {list(actions)!r}")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    chosen: list[str] = []
    for _ in range(n_actions):
        choices = [a for a in vocabulary if len(vocabulary) == 1 or not chosen or a != chosen[-1]]
        chosen.append(choices[int(gen.integers(len(choices)))])
    return Challenge(actions=tuple(chosen), time_limit_s=time_limit_s)


# -- events ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Event:
    """One detected action: its time span (seconds from the first frame) and peak signal."""

    action: str
    start_s: float
    end_s: float
    peak: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class EventParams:
    """Thresholds of :func:`detect_events` (chosen on blink_selfie.mp4 and person_b_live.mov; see bench)."""

    blink_on: float = 0.30
    blink_off: float = 0.15
    blink_max_yaw: float = 35.0
    max_gap_s: float = 0.5
    turn_on: float = 25.0
    turn_off: float = 12.0
    min_turn_s: float = 0.1
    merge_gap_s: float = 0.4


def _median3(x: FloatArray) -> FloatArray:
    """Median of each valid sample with its valid neighbours (NaN stays NaN)."""
    out = x.copy()
    idx = np.flatnonzero(np.isfinite(x))
    if idx.size >= 3:
        v = x[idx]
        med = np.median(np.stack([np.r_[v[:1], v[:-1]], v, np.r_[v[1:], v[-1:]]]), axis=0)
        out[idx] = med
    return out


def _blink_events(t: FloatArray, blink: FloatArray, yaw: FloatArray, p: EventParams) -> list[Event]:
    valid = np.isfinite(blink) & ~(np.abs(np.nan_to_num(yaw)) > p.blink_max_yaw)
    if valid.sum() < 3:
        return []
    base = float(np.percentile(blink[valid], 20))
    on, off = base + p.blink_on, base + p.blink_off
    events: list[Event] = []
    start: float | None = None
    peak = 0.0
    last_t = -math.inf
    for ti, b, ok in zip(t, blink, valid, strict=True):
        if not ok:
            continue
        if start is not None and ti - last_t > p.max_gap_s:
            start = None  # face lost too long in the middle of a closure: do not guess
        last_t = ti
        if start is None:
            if b >= on:
                start, peak = float(ti), float(b)
        elif b < off:
            events.append(Event("blink", start, float(ti), peak))
            start = None
        else:
            peak = max(peak, float(b))
    return events


def _turn_events(t: FloatArray, yaw: FloatArray, p: EventParams) -> list[Event]:
    y = _median3(yaw)
    valid = np.isfinite(y)
    if valid.sum() < 2:
        return []
    neutral = float(np.clip(np.median(y[valid]), -15.0, 15.0))
    d = y - neutral
    raw: list[Event] = []
    for sign, name in ((1.0, "turn_left"), (-1.0, "turn_right")):
        start: float | None = None
        peak = 0.0
        prev_t = 0.0
        for ti, di, ok in zip(t, d * sign, valid, strict=True):
            if not ok:
                continue
            if start is None:
                if di >= p.turn_on:
                    start, peak = float(ti), float(di)
            elif di < p.turn_off:
                raw.append(Event(name, start, float(ti), peak))
                start = None
            else:
                peak = max(peak, float(di))
            prev_t = float(ti)
        if start is not None:
            raw.append(Event(name, start, prev_t, peak))
    merged: list[Event] = []
    for ev in sorted(raw, key=lambda e: e.start_s):
        last = next((m for m in reversed(merged) if m.action == ev.action), None)
        if last is not None and ev.start_s - last.end_s <= p.merge_gap_s and merged[-1] is last:
            merged[-1] = Event(ev.action, last.start_s, ev.end_s, max(last.peak, ev.peak))
        else:
            merged.append(ev)
    # a turn is a pose held at least min_turn_s, or seen in at least two frames
    return [e for e in merged if e.duration_s >= p.min_turn_s or _frames_in(t, e) >= 2]


def _frames_in(t: FloatArray, e: Event) -> int:
    return int(np.sum((t >= e.start_s) & (t <= e.end_s)))


def detect_events(
    timestamps_s: npt.ArrayLike,
    blink: npt.ArrayLike,
    yaw_deg: npt.ArrayLike,
    *,
    params: EventParams | None = None,
) -> tuple[Event, ...]:
    """Blink and head-turn events from per-frame signals (NaN where no face), sorted by start time.

    Examples
    --------
    >>> t = [i / 10 for i in range(10)]
    >>> b = [0.1, 0.1, 0.1, 0.8, 0.8, 0.1, 0.1, 0.1, 0.1, 0.1]
    >>> detect_events(t, b, [0.0] * 10)
    (Event(action='blink', start_s=0.3, end_s=0.5, peak=0.8),)
    """
    p = params or EventParams()
    t = np.asarray(timestamps_s, dtype=np.float64)
    b = np.asarray(blink, dtype=np.float64)
    y = np.asarray(yaw_deg, dtype=np.float64)
    if not (t.shape == b.shape == y.shape) or t.ndim != 1:
        raise InvalidArgumentError(f"signals differ in length: {t.shape}, {b.shape}, {y.shape}")
    events = _blink_events(t, b, y, p) + _turn_events(t, y, p)
    return tuple(sorted(events, key=lambda e: (e.start_s, e.action)))


# -- analysis ----------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class VideoAnalysis:
    """Per-frame signals and detected events of one video.

    Attributes
    ----------
    timestamps_s : ndarray
        Frame times, seconds from the first decoded frame.
    face_found : ndarray of bool
        Whether a face was acquired in each frame.
    blink : ndarray
        Eye-closure score in [0, 1] per frame (NaN without a face).
    yaw_deg, pitch_deg : ndarray
        Head pose per frame (NaN without a face); sign convention in the module docstring.
    events : tuple of Event
        Detected blinks and turns, by start time.
    n_frames, n_no_face : int
        Frames analysed, and failures to acquire a face among them.
    fps : float
        Effective frame rate.
    n_multi_face : int
        Frames in which the detector found more than one face (the largest was used).
    details : dict
        Extra facts (source, baseline levels ...).
    """

    timestamps_s: FloatArray
    face_found: npt.NDArray[np.bool_]
    blink: FloatArray
    yaw_deg: FloatArray
    pitch_deg: FloatArray
    events: tuple[Event, ...]
    n_frames: int
    n_no_face: int
    fps: float
    n_multi_face: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def blinks(self) -> int:
        """Number of blink events."""
        return sum(1 for e in self.events if e.action == "blink")

    @property
    def turns(self) -> dict[str, int]:
        """Number of turn events per direction."""
        return {a: sum(1 for e in self.events if e.action == a) for a in ("turn_left", "turn_right")}

    @property
    def duration_s(self) -> float:
        if self.n_frames == 0:
            return 0.0
        return float(self.timestamps_s[-1] - self.timestamps_s[0]) + (1.0 / self.fps if self.fps > 0 else 0.0)

    @property
    def face_fraction(self) -> float:
        return float(np.mean(self.face_found)) if self.n_frames else 0.0

    @classmethod
    def from_signals(
        cls,
        timestamps_s: npt.ArrayLike,
        blink: npt.ArrayLike,
        yaw_deg: npt.ArrayLike,
        pitch_deg: npt.ArrayLike | None = None,
        *,
        n_multi_face: int = 0,
        params: EventParams | None = None,
        details: dict[str, Any] | None = None,
    ) -> VideoAnalysis:
        """Build an analysis (events included) from per-frame signals; NaN blink or yaw = no face.

        Examples
        --------
        >>> a = VideoAnalysis.from_signals([0, 0.1, 0.2, 0.3], [0.1, 0.9, 0.1, 0.1], [0, 0, 0, 0])
        >>> a.blinks, a.n_no_face
        (1, 0)
        """
        t = np.asarray(timestamps_s, dtype=np.float64)
        b = np.asarray(blink, dtype=np.float64)
        y = np.asarray(yaw_deg, dtype=np.float64)
        pt = np.full_like(t, np.nan) if pitch_deg is None else np.asarray(pitch_deg, dtype=np.float64)
        found = np.isfinite(b) | np.isfinite(y)
        span = float(t[-1] - t[0]) if t.size > 1 else 0.0
        fps = (t.size - 1) / span if span > 0 else 0.0
        return cls(
            timestamps_s=t,
            face_found=found,
            blink=b,
            yaw_deg=y,
            pitch_deg=pt,
            events=detect_events(t, b, y, params=params),
            n_frames=int(t.size),
            n_no_face=int((~found).sum()),
            fps=fps,
            n_multi_face=n_multi_face,
            details=dict(details or {}),
        )


@lazy_singleton
def _shared_landmarker() -> FaceLandmarker:
    """The face landmarker shared by the video checks (built once, on first use)."""
    return FaceLandmarker()


def analyse_video(
    source: str | Path | VideoFrames | Sequence[Image],
    *,
    timestamps_s: npt.ArrayLike | None = None,
    detector: Detector | None = None,
    landmarker: FaceLandmarker | None = None,
    params: EventParams | None = None,
) -> VideoAnalysis:
    """Blink / head-pose signals and events of a video file, a :class:`VideoFrames` or a list of frames.

    A path is read with :func:`read_video` (15 fps, longer side 640 px, first 30 s). Frames without
    a face count as failures to acquire (``n_no_face``); with several faces the largest is used and
    ``n_multi_face`` counts those frames.

    Raises :class:`InvalidImageError` for a missing / undecodable video or bad frames.

    Examples
    --------
    >>> a = analyse_video("blink_selfie.mp4")  # doctest: +SKIP
    >>> a.blinks, a.n_no_face  # doctest: +SKIP
    (8, 0)
    """
    video = as_frames(source, timestamps_s)
    det: Detector = detector if detector is not None else shared_detector()
    lm: FaceLandmarker = landmarker if landmarker is not None else _shared_landmarker()
    n = len(video.frames)
    blink = np.full(n, np.nan)
    yaw = np.full(n, np.nan)
    pitch = np.full(n, np.nan)
    multi = 0
    low_presence = 0
    for i, frame in enumerate(video.frames):
        faces = det.detect(frame)
        if not faces:
            continue
        if len(faces) > 1:
            multi += 1
        face = max(faces, key=lambda d: d.area)
        try:
            mesh = lm.landmarks(frame, face)
        except FaceprintError as err:  # pragma: no cover - defensive: a degenerate box
            logger.debug("frame %d: landmarks failed: %s", i, err)
            continue
        yaw[i], pitch[i] = mesh.yaw, mesh.pitch
        if mesh.presence < 0.5:
            # The mesh model's face-presence score drops to ~0 in profile (beyond ~50 degrees of yaw)
            # although the mesh still gives a steady yaw there (person_b_live.mov): keep the pose,
            # drop the eye signal.
            low_presence += 1
            continue
        if mesh.blendshapes is not None:
            blink[i] = 0.5 * (mesh.blendshapes["eyeBlinkLeft"] + mesh.blendshapes["eyeBlinkRight"])
        else:
            blink[i] = float(np.clip((0.30 - mesh.ear) / 0.25, 0.0, 1.0))
    t = np.asarray(video.timestamps_s, dtype=np.float64)
    t = t - t[0]
    analysis = VideoAnalysis.from_signals(
        t,
        blink,
        yaw,
        pitch,
        n_multi_face=multi,
        params=params,
        details={"source": video.source, "truncated": video.truncated, "n_low_presence": low_presence},
    )
    # keep the video's own frame rate (from_signals estimates it from the timestamps)
    object.__setattr__(analysis, "fps", float(video.fps))
    return analysis


def count_blinks(source: str | Path | VideoFrames | Sequence[Image], **kw: Any) -> int:
    """Number of blinks (every close-and-reopen of the eyes) in a video; ``kw`` go to :func:`analyse_video`.

    Examples
    --------
    >>> count_blinks("blink_selfie.mp4")  # doctest: +SKIP
    8
    """
    return analyse_video(source, **kw).blinks


# -- challenge check ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ChallengeResult:
    """Outcome of :func:`check_challenge`.

    ``passed`` is True when every action of the challenge was seen, in order, all ending within
    the time limit; ``reasons`` say why not otherwise.
    """

    challenge: Challenge
    passed: bool
    matched: tuple[Event, ...]
    reasons: tuple[str, ...]
    analysis: VideoAnalysis
    acquired: bool = True

    @property
    def liveness(self) -> Liveness:
        """As a :class:`~faceprint.types.Liveness`: "live" if passed, "unsure" if the face could not be
        acquired, else "spoof"; score = share of the challenge's actions performed in order in time."""
        if self.passed:
            verdict = "live"
        elif not self.acquired:
            verdict = "unsure"
        else:
            verdict = "spoof"
        a = self.analysis
        return Liveness(
            verdict=verdict,
            score=len(self.matched) / len(self.challenge.actions),
            method="active-challenge",
            details={
                "challenge": str(self.challenge),
                "time_limit_s": self.challenge.time_limit_s,
                "matched": [
                    {"action": e.action, "start_s": round(e.start_s, 3), "end_s": round(e.end_s, 3)}
                    for e in self.matched
                ],
                "reasons": list(self.reasons),
                "events": [e.action for e in a.events],
                "n_frames": a.n_frames,
                "n_no_face": a.n_no_face,
                "n_multi_face": a.n_multi_face,
            },
        )


def match_actions(events: Sequence[Event], actions: Sequence[str]) -> list[Event]:
    """Greedy earliest in-order match of ``actions`` to ``events`` (each event used once; an event
    starts after the previous matched one ended). Greedy is optimal for subsequence matching."""
    out: list[Event] = []
    after = -math.inf
    evs = sorted(events, key=lambda e: (e.start_s, e.end_s))
    j = 0
    for action in actions:
        while j < len(evs) and not (evs[j].action == action and evs[j].start_s >= after):
            j += 1
        if j == len(evs):
            break
        out.append(evs[j])
        after = evs[j].end_s
        j += 1
    return out


def check_challenge(
    source: str | Path | VideoFrames | Sequence[Image] | VideoAnalysis,
    challenge: Challenge,
    **kw: Any,
) -> ChallengeResult:
    """Check a recorded answer to ``challenge``: its actions, in order, within its time limit.

    ``source`` is anything :func:`analyse_video` takes (``kw`` go to it), or a ready
    :class:`VideoAnalysis`. Fails (verdict "spoof") when an action is missing or late, or when
    several faces are in view in a quarter of the frames or more; the face not being found in half
    of the frames or more, or a video shorter than 0.5 s, gives verdict "unsure".

    Examples
    --------
    >>> t = [i / 10 for i in range(10)]
    >>> a = VideoAnalysis.from_signals(t, [0.1, 0.9, 0.1] + [0.1] * 7, [0.0] * 10)
    >>> r = check_challenge(a, Challenge(("blink", "turn_left")))
    >>> r.passed, r.reasons
    (False, ('expected turn_left after blink, saw nothing',))
    """
    if not isinstance(challenge, Challenge):
        raise InvalidArgumentTypeError(
            f"expected a Challenge, got {type(challenge).__name__}; use Challenge.parse(text)"
        )
    analysis = source if isinstance(source, VideoAnalysis) else analyse_video(source, **kw)
    reasons: list[str] = []
    acquired = True
    if analysis.n_frames < 3 or analysis.duration_s < 0.5:
        reasons.append(f"video too short: {analysis.n_frames} frames, {analysis.duration_s:.2f} s")
        acquired = False
    if analysis.n_frames and analysis.face_fraction < _MIN_FACE_FRACTION:
        reasons.append(f"no face in {100 * (1 - analysis.face_fraction):.0f}% of frames")
        acquired = False
    n_face = int(analysis.face_found.sum())
    if n_face and analysis.n_multi_face / n_face >= _MULTI_FACE_FRACTION:
        reasons.append(
            f"several faces in {100 * analysis.n_multi_face / n_face:.0f}% of the frames with a face "
            "(the largest was used)"
        )
    matched = match_actions(analysis.events, challenge.actions)
    if len(matched) < len(challenge.actions):
        k = len(matched)
        missing = challenge.actions[k]
        later = [e.action for e in analysis.events if not matched or e.start_s >= matched[-1].end_s]
        saw = ", ".join(later) if later else "nothing"
        where = f"after {matched[-1].action}" if matched else "first"
        reasons.append(f"expected {missing} {where}, saw {saw}")
    t0 = float(analysis.timestamps_s[0]) if analysis.n_frames else 0.0
    late = [e for e in matched if e.end_s - t0 > challenge.time_limit_s]
    if late:
        reasons.append(f"took {late[0].end_s - t0:.1f} s > limit {challenge.time_limit_s:g} s")
        matched = [e for e in matched if e.end_s - t0 <= challenge.time_limit_s]
    passed = not reasons
    return ChallengeResult(
        challenge=challenge,
        passed=passed,
        matched=tuple(matched),
        reasons=tuple(reasons),
        analysis=analysis,
        acquired=acquired,
    )


def frontal_frame(video: VideoFrames, analysis: VideoAnalysis) -> Image | None:
    """The frame of ``video`` whose face looks most straight at the camera (least ``|yaw| + |pitch|``
    among the frames with a face, eyes open), to identify the person who answered a challenge; None
    when no frame has a face. ``analysis`` is :func:`analyse_video`'s result for these very frames.

    Examples
    --------
    >>> result = check_challenge(frames, challenge)  # doctest: +SKIP
    >>> pipeline.identify(frontal_frame(frames, result.analysis), gallery, liveness=result)  # doctest: +SKIP
    """
    n = min(len(video.frames), analysis.n_frames)
    if n == 0:
        return None
    pose = np.abs(analysis.yaw_deg[:n]) + np.abs(analysis.pitch_deg[:n])
    closed = np.nan_to_num(analysis.blink[:n], nan=0.0) > 0.5
    cost = np.where(analysis.face_found[:n] & np.isfinite(pose), pose + 90.0 * closed, np.inf)
    best = int(np.argmin(cost))
    return video.frames[best] if np.isfinite(cost[best]) else None
