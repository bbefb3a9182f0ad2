"""Who appears in a video, and when: face tracks, one identity per track, a timeline.

The path of one video (a file, a camera, a stream; :mod:`faceprint.videoio` decodes it):

1. frames are read at ``fps`` and faces are detected on every ``every``-th of them;
2. :class:`FaceTracker` links the boxes of successive detection frames into tracks: a constant-velocity
   prediction of each track's box, then a one-to-one assignment (Hungarian, ``scipy``) on box overlap
   and centre distance. A track not seen for ``max_gap_s`` ends;
3. per track the ``best_frames`` frames of highest :func:`frame_quality` (detector score, face size,
   sharpness, head turn from the five landmarks) are embedded, and the track is identified once from
   the mean of their embeddings (:meth:`~faceprint.pipeline.FacePipeline.identify_embedding`: the same
   1:1 threshold at ``fmr``, or the open-set threshold at ``fpir`` for the gallery's size, as
   ``identify``). The decision is revised only when a better frame arrives, so a face that turns away
   (lower quality) never changes its track's name;
4. a track that starts within ``relink_s`` of the end of another, with an embedding of the same person
   (similarity at the 1:1 threshold at FMR 1e-4), takes that track's id back: a face that was lost for
   a moment (turned away, occluded, missed by the detector) stays one track;
5. with ``liveness="passive"`` each frame kept for identification is checked too; the track's verdict
   is the majority of those checks, and a track not judged live is named ``spoof`` /
   ``liveness-unsure`` without a gallery search.

The result is a :class:`VideoResult`: its :class:`Track` timeline (name, similarity, threshold, first and
last seen, best frame), what was read, and whether the file ended early (truncated).

Why not ByteTrack: ``supervision`` 0.31 no longer ships it, and the ``trackers`` package that does
requires the GUI ``opencv-python`` (5.1), which would replace the project's pinned OpenCV 5.0
headless build. Faces from one detector every few frames are a simpler case than pedestrians; the
tracker here is measured on the clips in ``bench/video.py`` (ID switches, fragments per minute).

Examples
--------
>>> from faceprint import FacePipeline, open_gallery  # doctest: +SKIP
>>> result = identify_video("lobby.mp4", open_gallery("gallery.db"), every=3)  # doctest: +SKIP
>>> [(t.track_id, t.name, round(t.start_s, 1), round(t.end_s, 1)) for t in result.tracks]  # doctest: +SKIP
[(1, 'alice', 0.0, 12.4), (2, 'unknown', 3.1, 5.0)]
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .errors import InvalidArgumentError, InvalidImageError
from .liveness.quality import assess_face
from .pipeline import LIVENESS_UNSURE, SPOOF, UNKNOWN, FacePipeline, Identification, default_pipeline
from .types import Detection, Image, Liveness
from .videoio import VideoFrame, VideoReader, VideoSource

if TYPE_CHECKING:
    from .gallery import GalleryBackend

__all__ = [
    "frame_quality",
    "FaceTracker",
    "TrackedBox",
    "Track",
    "TrackView",
    "FrameTracks",
    "VideoResult",
    "VideoIdentifier",
    "identify_video",
    "watch_video",
    "draw_tracks",
    "AnnotatedVideoWriter",
]

log = logging.getLogger(__name__)

_REFERENCE_FACE_PX = 112.0  # the embedders' input side: a face at least this big loses nothing
_RELINK_FMR = "1e-4"


def frame_quality(image: Image, detection: Detection) -> float:
    """How fit one detected face is for recognition, in [0, 1]: the product of the detector's score,
    the face's size (shorter side / 112 px, at most 1), its sharpness (the scale- and exposure-free
    Laplacian measure of :func:`~faceprint.liveness.quality.assess_face` / 30, at most 1), its head
    turn (1 - |yaw| / 0.6, yaw in inter-ocular distances: 0 at about 55 degrees) and its exposure
    (mean luma / 40 below 40, (255 - luma) / 20 above 235).

    Examples
    --------
    >>> img = np.full((200, 200, 3), 10, np.uint8)
    >>> det = Detection(box=(50.0, 50.0, 150.0, 150.0), score=1.0, landmarks=np.zeros((5, 2)))
    >>> frame_quality(img, det)
    0.0
    """
    q = assess_face(image, detection)
    size = min(1.0, q.face_px / _REFERENCE_FACE_PX)
    sharp = min(1.0, q.sharpness / 30.0)
    pose = max(0.0, 1.0 - abs(q.yaw) / 0.6)
    light = max(0.0, min(1.0, q.brightness / 40.0, (255.0 - q.brightness) / 20.0))
    return float(max(0.0, min(1.0, float(detection.score))) * size * sharp * pose * light)


# -- tracking ---------------------------------------------------------------------------------------
def _iou(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Pairwise IoU of boxes ``a`` (n, 4) and ``b`` (m, 4)."""
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


@dataclass
class _TrackState:
    track_id: int
    box: npt.NDArray[np.float64]
    velocity: npt.NDArray[np.float64]  # box units per second
    first_s: float
    last_s: float
    hits: int = 1


@dataclass(frozen=True)
class TrackedBox:
    """A detection of this frame and the track it was assigned to."""

    track_id: int
    detection: Detection
    new: bool
    """True when this detection started the track."""


class FaceTracker:
    """Links face boxes of successive detection frames into tracks (see the module).

    Parameters
    ----------
    min_iou
        A detection continues a track when its box overlaps the track's predicted box by at least
        this IoU, or when its centre lies within ``max_center_shift`` face sizes of the prediction
        and its size is within a factor ``max_scale_change``.
    max_gap_s
        A track not matched for longer than this ends.
    """

    def __init__(
        self,
        *,
        min_iou: float = 0.2,
        max_center_shift: float = 0.6,
        max_scale_change: float = 1.6,
        max_gap_s: float = 1.0,
    ) -> None:
        if not 0.0 <= min_iou <= 1.0:
            raise InvalidArgumentError(f"min_iou must be in [0, 1], got {min_iou}")
        if max_center_shift < 0 or max_scale_change < 1 or not max_gap_s > 0:
            raise InvalidArgumentError(
                "max_center_shift must be >= 0, max_scale_change >= 1 and max_gap_s > 0, got "
                f"{max_center_shift}, {max_scale_change}, {max_gap_s}"
            )
        self.min_iou, self.max_center_shift, self.max_scale_change = min_iou, max_center_shift, max_scale_change
        self.max_gap_s = max_gap_s
        self._tracks: dict[int, _TrackState] = {}
        self._next_id = 1

    @property
    def active_ids(self) -> list[int]:
        return list(self._tracks)

    def predict(self, track_id: int, t: float) -> npt.NDArray[np.float64]:
        """The box of track ``track_id`` predicted at time ``t`` (constant velocity, at most one gap)."""
        st = self._tracks[track_id]
        dt = min(max(0.0, t - st.last_s), self.max_gap_s)
        return st.box + st.velocity * dt

    def expire(self, t: float) -> list[int]:
        """End the tracks not seen for longer than ``max_gap_s`` at time ``t``; returns their ids."""
        gone = [i for i, st in self._tracks.items() if t - st.last_s > self.max_gap_s]
        for i in gone:
            del self._tracks[i]
        return gone

    def last_seen(self, track_id: int) -> float | None:
        """When active track ``track_id`` was last matched (None: ended or unknown)."""
        st = self._tracks.get(track_id)
        return None if st is None else st.last_s

    def merge(self, track_id: int, into: int) -> None:
        """Track ``track_id`` continues track ``into``: it takes that id (ending ``into``'s own state if active)."""
        st = self._tracks.pop(track_id)
        st.track_id = into
        self._tracks[into] = st

    def update(self, detections: list[Detection], t: float) -> list[TrackedBox]:
        """Assign this frame's detections (at time ``t``, seconds) to tracks; unassigned ones start new tracks."""
        from scipy.optimize import linear_sum_assignment

        ids = list(self._tracks)
        boxes = np.array([d.box for d in detections], dtype=np.float64).reshape(-1, 4)
        assigned: dict[int, int] = {}
        if ids and len(detections):
            pred = np.array([self.predict(i, t) for i in ids]).reshape(-1, 4)
            iou = _iou(pred, boxes)
            side_p = np.sqrt(np.clip((pred[:, 2] - pred[:, 0]) * (pred[:, 3] - pred[:, 1]), 1e-9, None))
            side_d = np.sqrt(np.clip((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1e-9, None))
            cp = np.stack([(pred[:, 0] + pred[:, 2]) / 2, (pred[:, 1] + pred[:, 3]) / 2], axis=1)
            cd = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)
            shift = np.linalg.norm(cp[:, None, :] - cd[None, :, :], axis=2) / side_p[:, None]
            scale = np.maximum(side_p[:, None] / side_d[None, :], side_d[None, :] / side_p[:, None])
            near = (shift <= self.max_center_shift) & (scale <= self.max_scale_change)
            ok = (iou >= self.min_iou) | near
            cost = np.where(ok, (1.0 - iou) + 0.5 * np.minimum(shift, 2.0), 1e6)
            rows, cols = linear_sum_assignment(cost)
            for r, c in zip(rows, cols, strict=True):
                if ok[r, c]:
                    assigned[int(c)] = ids[int(r)]
        out = []
        for j, det in enumerate(detections):
            box = boxes[j]
            if j in assigned:
                st = self._tracks[assigned[j]]
                dt = t - st.last_s
                if dt > 0:
                    v = (box - st.box) / dt
                    st.velocity = 0.5 * st.velocity + 0.5 * v  # damped: one noisy box does not fling the prediction
                st.box, st.last_s, st.hits = box, t, st.hits + 1
                out.append(TrackedBox(st.track_id, det, False))
            else:
                tid = self._next_id
                self._next_id += 1
                self._tracks[tid] = _TrackState(tid, box, np.zeros(4), t, t)
                out.append(TrackedBox(tid, det, True))
        return out


# -- per-track identification -----------------------------------------------------------------------
@dataclass(frozen=True)
class Track:
    """One face track of a video and its identity: an entry of the timeline.

    ``similarity`` is the best candidate's (None when no template was compared: an empty gallery, or
    a face not judged live); ``identification`` is the full decision (its matches, threshold, FMR /
    FPIR, liveness), made from the mean embedding of the ``best_frames`` best frames.
    """

    track_id: int
    name: str
    similarity: float | None
    threshold: float
    start_s: float
    end_s: float
    detections: int
    """Detection frames in which this track's face was found."""
    best_time_s: float
    best_box: tuple[float, float, float, float]
    best_quality: float
    frames_used: int
    """Frames whose embeddings the decision averages."""
    identification: Identification
    names: tuple[tuple[float, str], ...]
    """(time, name) each time the track's decision changed: its first decision, then any revision."""
    liveness: Liveness | None = None

    @property
    def known(self) -> bool:
        return self.identification.known

    @property
    def decision(self) -> str:
        return self.identification.decision

    @property
    def identity_switches(self) -> int:
        """Changes of the decision from one name to a different name (``unknown`` -> a name is not counted)."""
        named = [n for _, n in self.names if n not in (UNKNOWN, SPOOF, LIVENESS_UNSURE)]
        return sum(1 for a, b in zip(named, named[1:], strict=False) if a != b)

    def to_dict(self) -> dict[str, Any]:
        ident = self.identification
        return {
            "track_id": self.track_id,
            "name": self.name,
            "decision": self.decision,
            "similarity": None if self.similarity is None else round(self.similarity, 6),
            "threshold": round(self.threshold, 6),
            "fmr": ident.fmr,
            "fpir": ident.fpir,
            "gallery_size": ident.gallery_size,
            "start_s": round(self.start_s, 3),
            "end_s": round(self.end_s, 3),
            "detections": self.detections,
            "best_frame": {
                "time_s": round(self.best_time_s, 3),
                "box": [round(float(v), 1) for v in self.best_box],
                "quality": round(self.best_quality, 4),
            },
            "frames_used": self.frames_used,
            "names": [{"time_s": round(t, 3), "name": n} for t, n in self.names],
            "liveness": None if self.liveness is None else self.liveness.to_dict(),
            "matches": [m.to_dict() for m in ident.matches],
        }


@dataclass
class _Kept:
    quality: float
    time_s: float
    detection: Detection
    embedding: npt.NDArray[np.float32]
    liveness: Liveness | None


@dataclass
class _TrackIdentity:
    track_id: int
    first_s: float
    last_s: float
    detections: int = 0
    kept: list[_Kept] = field(default_factory=list)
    identification: Identification | None = None
    names: list[tuple[float, str]] = field(default_factory=list)
    liveness: Liveness | None = None

    def mean_embedding(self) -> npt.NDArray[np.float32]:
        m = np.mean([k.embedding for k in self.kept], axis=0)
        return np.asarray(m / max(float(np.linalg.norm(m)), 1e-12), dtype=np.float32)

    def best(self) -> _Kept:
        return max(self.kept, key=lambda k: k.quality)


@dataclass(frozen=True)
class TrackView:
    """A track as it stands at one frame: its current box (detected, or predicted between detection frames)."""

    track_id: int
    box: tuple[float, float, float, float]
    name: str | None
    """The track's current decision; None until a frame of ``min_quality`` has been identified."""
    similarity: float | None
    detected: bool
    """False when the box is the tracker's prediction (a frame without detection, or a missed face)."""


@dataclass(frozen=True)
class FrameTracks:
    """What :meth:`VideoIdentifier.update` saw in one frame."""

    index: int
    time_s: float
    detected: bool
    """True when faces were detected on this frame (every ``every``-th frame)."""
    tracks: tuple[TrackView, ...]


def _majority(checks: list[Liveness]) -> Liveness | None:
    if not checks:
        return None
    live = sum(c.verdict == "live" for c in checks)
    spoof = sum(c.verdict == "spoof" for c in checks)
    verdict = "live" if live * 2 > len(checks) else "spoof" if spoof * 2 > len(checks) else "unsure"
    return Liveness(
        verdict=verdict,
        score=float(np.mean([c.score for c in checks])),
        method=checks[0].method,
        details={"frames": len(checks), "live": live, "spoof": spoof},
    )


class VideoIdentifier:
    """Frame-by-frame tracking and identification against a gallery (see the module).

    Feed frames in time order with :meth:`update`; :meth:`tracks` is the timeline so far. Use
    :func:`identify_video` for a whole file and :func:`watch_video` for a live source.

    Parameters
    ----------
    gallery
        Who can be named.
    pipeline
        Detector and embedder (default: the shared YuNet + SFace pipeline).
    every
        Detect faces on every ``every``-th frame given (1: all); tracks are predicted in between.
    best_frames
        Frames per track whose mean embedding is identified.
    k, fmr, fpir, classifier
        As in :meth:`~faceprint.pipeline.FacePipeline.identify`.
    liveness
        ``"off"`` or ``"passive"`` (each kept frame is checked; a majority decides).
    relink_s
        A new track may continue one that ended at most this many seconds before (0: never).
    min_detections
        Tracks found in fewer detection frames are left out of :meth:`tracks` (a detector's
        one-frame false alarm), unless the video had fewer detection frames than this.
    min_quality
        Only frames of at least this :func:`frame_quality` are embedded and identified; a track
        without one is left out of :meth:`tracks` (not a usable face: a detector's false alarm on a
        wall lamp, a face far away or turned aside all along). 0.3 was set on the shared clips
        (development numbers): their frontal faces score 0.8-0.95, a false detection 0.08-0.27.
    tracker
        A :class:`FaceTracker` (default: one with its defaults).
    """

    def __init__(
        self,
        gallery: GalleryBackend,
        *,
        pipeline: FacePipeline | None = None,
        every: int = 1,
        best_frames: int = 3,
        k: int = 5,
        fmr: str | None = None,
        fpir: float | None = None,
        classifier: Any = None,
        liveness: str = "off",
        relink_s: float = 3.0,
        min_detections: int = 2,
        min_quality: float = 0.3,
        tracker: FaceTracker | None = None,
    ) -> None:
        for name, value in (("every", every), ("best_frames", best_frames), ("min_detections", min_detections)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidArgumentError(f"{name} must be an integer >= 1, got {value!r}")
        if liveness not in ("off", "passive"):
            raise InvalidArgumentError(f"liveness must be 'off' or 'passive', got {liveness!r}")
        if not math.isfinite(relink_s) or relink_s < 0:
            raise InvalidArgumentError(f"relink_s must be >= 0, got {relink_s}")
        if not 0.0 <= min_quality <= 1.0:
            raise InvalidArgumentError(f"min_quality must be in [0, 1], got {min_quality}")
        self.min_quality = min_quality
        self.gallery = gallery
        self.pipeline = pipeline if pipeline is not None else default_pipeline()
        self.every, self.best_frames, self.k = every, best_frames, k
        self.fmr, self.fpir, self.classifier, self.liveness = fmr, fpir, classifier, liveness
        self.relink_s, self.min_detections = relink_s, min_detections
        self.tracker = tracker if tracker is not None else FaceTracker()
        # the thresholds are checked now, not at the first face (a bad fmr / fpir fails before any frame)
        self.pipeline._open_set_point(gallery, fmr=fmr, fpir=fpir, classifier=classifier)
        self._relink_threshold = self.pipeline.threshold(_RELINK_FMR) if relink_s > 0 else math.inf
        self._tracks: dict[int, _TrackIdentity] = {}
        self._active: dict[int, int] = {}  # tracker id -> timeline id (differ after a re-link)
        self._frames = 0
        self.detection_frames = 0
        self.embedded = 0
        """Faces embedded so far (the cost that ``best_frames`` bounds)."""

    # -- one frame ---------------------------------------------------------------------------
    def update(self, image: Image, time_s: float, index: int | None = None) -> FrameTracks:
        """Process one RGB frame at ``time_s`` seconds; returns the tracks visible in it."""
        n = self._frames
        self._frames += 1
        index = n if index is None else index
        for gone in self.tracker.expire(time_s):
            self._active.pop(gone, None)
        if n % self.every:
            return FrameTracks(index, time_s, False, self._predicted(time_s, set()))
        self.detection_frames += 1
        detections = self.pipeline.detect(image)
        seen: set[int] = set()
        views = []
        for tb in self.tracker.update(detections, time_s):
            state = self._tracks[self._timeline_id(tb, time_s)]
            state.last_s, state.detections = time_s, state.detections + 1
            tid = self._consider(state, image, tb.detection, time_s, frame_quality(image, tb.detection))
            seen.add(tid)
            state = self._tracks[tid]
            ident = state.identification
            views.append(
                TrackView(tid, tb.detection.box, ident.name if ident else None, _similarity(ident), True)
            )
        return FrameTracks(index, time_s, True, tuple(views) + self._predicted(time_s, seen))

    def _predicted(self, t: float, seen: set[int]) -> tuple[TrackView, ...]:
        out = []
        for tracker_id in self.tracker.active_ids:
            if tracker_id in seen or tracker_id not in self._active:
                continue
            state = self._tracks[self._active[tracker_id]]
            box = self.tracker.predict(tracker_id, t)
            ident = state.identification
            out.append(
                TrackView(
                    state.track_id,
                    (float(box[0]), float(box[1]), float(box[2]), float(box[3])),
                    ident.name if ident else None,
                    _similarity(ident),
                    False,
                )
            )
        return tuple(out)

    def _timeline_id(self, tb: TrackedBox, t: float) -> int:
        if tb.new:
            self._tracks[tb.track_id] = _TrackIdentity(tb.track_id, t, t)
            self._active[tb.track_id] = tb.track_id
        return self._active[tb.track_id]

    def _relink(self, state: _TrackIdentity, emb: npt.NDArray[np.float32], t: float) -> _TrackIdentity:
        """The track ``state`` continues, judged from its first embedded frame: an earlier track, not seen
        since this one began, last seen at most ``relink_s`` before, of the same person; else ``state``."""
        best, best_sim = None, self._relink_threshold
        for other in self._tracks.values():
            if other is state or not other.kept or other.last_s >= state.first_s or t - other.last_s > self.relink_s:
                continue
            seen = self.tracker.last_seen(other.track_id)
            if seen is not None and seen >= state.first_s:  # matched again meanwhile: a face beside this one
                continue
            sim = float(other.mean_embedding() @ emb)
            if sim >= best_sim:
                best, best_sim = other, sim
        if best is None:
            return state
        log.debug("track %d continues track %d at %.2f s (similarity %.3f)", state.track_id, best.track_id, t, best_sim)
        self.tracker.merge(state.track_id, best.track_id)
        del self._tracks[state.track_id]
        self._active.pop(state.track_id, None)
        self._active[best.track_id] = best.track_id
        best.detections += state.detections
        best.last_s = t
        return best

    def _embed(self, image: Image, det: Detection) -> npt.NDArray[np.float32]:
        self.embedded += 1
        return self.pipeline.embed_detections(image, [det])[0]

    def _consider(self, state: _TrackIdentity, image: Image, det: Detection, t: float, quality: float) -> int:
        """Keep this frame for the track's decision when it is among its best, and decide again; a track's
        first such frame may show it continues an earlier track (re-link). Returns the track's id."""
        if quality < self.min_quality:
            return state.track_id
        if len(state.kept) >= self.best_frames and quality <= min(k.quality for k in state.kept) * 1.05:
            return state.track_id
        emb = self._embed(image, det)
        if not state.kept and self.relink_s > 0:
            state = self._relink(state, emb, t)
        self._add_frame(state, image, det, t, emb, quality)
        return state.track_id

    def _add_frame(
        self,
        state: _TrackIdentity,
        image: Image,
        det: Detection,
        t: float,
        emb: npt.NDArray[np.float32],
        quality: float,
    ) -> None:
        live = self.pipeline.liveness_of(image, det) if self.liveness == "passive" else None
        state.kept.append(_Kept(quality, t, det, emb, live))
        state.kept.sort(key=lambda k: -k.quality)
        del state.kept[self.best_frames :]
        state.liveness = _majority([k.liveness for k in state.kept if k.liveness is not None])
        ident = self.pipeline.identify_embedding(
            state.mean_embedding(),
            self.gallery,
            detection=state.best().detection,
            k=self.k,
            fmr=self.fmr,
            fpir=self.fpir,
            classifier=self.classifier,
            liveness=state.liveness,
        )
        if not state.names or state.names[-1][1] != ident.name:
            state.names.append((t, ident.name))
        state.identification = ident

    # -- results ------------------------------------------------------------------------------
    def tracks(self) -> tuple[Track, ...]:
        """The timeline so far, by first appearance."""
        few = self.detection_frames < self.min_detections
        out = []
        for state in sorted(self._tracks.values(), key=lambda s: (s.first_s, s.track_id)):
            if state.identification is None or not state.kept:
                continue
            if state.detections < self.min_detections and not few:
                continue
            best, ident = state.best(), state.identification
            out.append(
                Track(
                    track_id=state.track_id,
                    name=ident.name,
                    similarity=_similarity(ident),
                    threshold=ident.threshold,
                    start_s=state.first_s,
                    end_s=state.last_s,
                    detections=state.detections,
                    best_time_s=best.time_s,
                    best_box=tuple(float(v) for v in best.detection.box),  # type: ignore[arg-type]
                    best_quality=best.quality,
                    frames_used=len(state.kept),
                    identification=ident,
                    names=tuple(state.names),
                    liveness=state.liveness,
                )
            )
        return tuple(out)


def _similarity(ident: Identification | None) -> float | None:
    if ident is None or not ident.matches:
        return None
    return float(ident.matches[0].similarity)


# -- whole videos -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class VideoResult:
    """The timeline of one video and what was read to make it."""

    source: str
    tracks: tuple[Track, ...]
    fps: float
    """Rate of the frames processed (after ``fps=`` subsampling)."""
    native_fps: float
    every: int
    frames: int
    """Frames processed."""
    detection_frames: int
    embedded: int
    duration_s: float
    seconds: float
    """Processing wall time."""
    ended_early: bool
    """The file stopped decoding before the frame count its header declares (truncated or corrupt)."""
    stopped_at_limit: bool
    model: str
    interrupted: bool = False
    """Stopped by Ctrl-C (``interruptible=True``): the timeline up to that frame."""

    @property
    def names(self) -> list[str]:
        """The distinct names of known tracks, in order of first appearance."""
        seen: list[str] = []
        for t in self.tracks:
            if t.known and t.name not in seen:
                seen.append(t.name)
        return seen

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "model": self.model,
            "fps": round(self.fps, 3),
            "native_fps": round(self.native_fps, 3),
            "every": self.every,
            "frames": self.frames,
            "detection_frames": self.detection_frames,
            "embedded_faces": self.embedded,
            "duration_s": round(self.duration_s, 3),
            "seconds": round(self.seconds, 3),
            "ended_early": self.ended_early,
            "stopped_at_limit": self.stopped_at_limit,
            "interrupted": self.interrupted,
            "names": self.names,
            "tracks": [t.to_dict() for t in self.tracks],
        }


def watch_video(
    source: VideoSource,
    identifier: VideoIdentifier,
    *,
    fps: float | None = None,
    max_side: int = 1280,
    max_seconds: float | None = None,
    timeout_s: float = 10.0,
) -> Iterator[tuple[VideoFrame, FrameTracks]]:
    """Decode ``source`` and feed every frame to ``identifier``; yields each frame with what was seen in it.

    For a live table or an annotated copy; the timeline is ``identifier.tracks()`` at any point.
    The reader closes when the iteration ends or is abandoned.
    """
    with VideoReader(source, fps=fps, max_side=max_side, max_seconds=max_seconds, timeout_s=timeout_s) as reader:
        for frame in reader:
            yield frame, identifier.update(frame.image, frame.time_s, frame.index)


def identify_video(
    source: VideoSource,
    gallery: GalleryBackend,
    *,
    pipeline: FacePipeline | None = None,
    fps: float | None = None,
    every: int = 1,
    max_side: int = 1280,
    max_seconds: float | None = None,
    timeout_s: float = 10.0,
    on_frame: Callable[[VideoFrame, FrameTracks], None] | None = None,
    on_open: Callable[[VideoReader], None] | None = None,
    interruptible: bool = False,
    **options: Any,
) -> VideoResult:
    """Track and identify the faces of a whole video (see the module); ``options`` go to :class:`VideoIdentifier`.

    ``on_open`` sees the opened :class:`~faceprint.videoio.VideoReader` before the first frame (its
    rate, size), ``on_frame`` each frame and its tracks (a live table, an annotated copy). With
    ``interruptible`` a Ctrl-C (KeyboardInterrupt) ends the run and the result holds the timeline so
    far (``interrupted``): how a camera is watched until the user stops.

    Raises
    ------
    InvalidImageError
        The source cannot be opened, or holds no decodable frame.
    """
    identifier = VideoIdentifier(gallery, pipeline=pipeline, every=every, **options)
    start = time.perf_counter()
    frames = 0
    last_t = 0.0
    interrupted = False
    with VideoReader(source, fps=fps, max_side=max_side, max_seconds=max_seconds, timeout_s=timeout_s) as reader:
        if on_open is not None:
            on_open(reader)
        try:
            for frame in reader:
                seen = identifier.update(frame.image, frame.time_s, frame.index)
                frames += 1
                last_t = frame.time_s
                if on_frame is not None:
                    on_frame(frame, seen)
        except KeyboardInterrupt:
            if not interruptible:
                raise
            interrupted = True
        if frames == 0 and not interrupted:
            raise InvalidImageError(f"{reader.name} holds no decodable video frame")
        rate = reader.output_fps
        return VideoResult(
            source=reader.name,
            tracks=identifier.tracks(),
            fps=rate,
            native_fps=reader.info.native_fps,
            every=every,
            frames=frames,
            detection_frames=identifier.detection_frames,
            embedded=identifier.embedded,
            duration_s=last_t + 1.0 / rate if frames else 0.0,
            seconds=time.perf_counter() - start,
            ended_early=reader.ended_early,
            stopped_at_limit=reader.stopped_at_limit,
            model=identifier.pipeline.model_key,
            interrupted=interrupted,
        )


# -- annotated copies -------------------------------------------------------------------------------
_WRITERS = {".mp4": "mp4v", ".avi": "MJPG"}
_GREEN, _RED, _GREY = (40, 200, 40), (220, 40, 40), (160, 160, 160)


def _ascii_label(text: str) -> str:
    """OpenCV's Hershey fonts draw ASCII only: accents are dropped, other characters become '?'."""
    import unicodedata

    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return "".join(c if c.isprintable() else "?" for c in plain) or "?"


def draw_tracks(image: Image, seen: FrameTracks) -> Image:
    """A copy of an RGB frame with each track's box, id and name drawn (green: named, red: unknown or
    not live, grey: not yet identified; a thin box where it is the tracker's prediction). Names are
    drawn in ASCII (OpenCV's fonts): the timeline has them exactly."""
    import cv2

    out = np.ascontiguousarray(image.copy())
    scale = max(0.4, min(1.2, out.shape[0] / 720.0))
    for view in seen.tracks:
        x0, y0, x1, y1 = (int(round(v)) for v in view.box)
        colour = _GREY if view.name is None else _RED if view.name in (UNKNOWN, SPOOF, LIVENESS_UNSURE) else _GREEN
        cv2.rectangle(out, (x0, y0), (x1, y1), colour, 2 if view.detected else 1)
        label = f"#{view.track_id} {'...' if view.name is None else _ascii_label(view.name)}"
        if view.similarity is not None:
            label += f" {view.similarity:.2f}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        ty = max(th + base, y0)
        cv2.rectangle(out, (x0, ty - th - base), (x0 + tw, ty), colour, -1)
        cv2.putText(out, label, (x0, ty - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


class AnnotatedVideoWriter:
    """Writes frames with their tracks drawn (:func:`draw_tracks`) to ``path`` (``.mp4``: MPEG-4 part 2,
    ``.avi``: Motion JPEG) at ``fps``; the frame size is the first frame's.

    Raises
    ------
    InvalidArgumentError
        Another suffix, a missing folder, or a file OpenCV cannot open for writing.
    """

    def __init__(self, path: str | os.PathLike[str], fps: float) -> None:
        from pathlib import Path

        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in _WRITERS:
            raise InvalidArgumentError(f"annotated video must end in .mp4 or .avi, got {self.path.name!r}")
        if not self.path.parent.is_dir():
            raise InvalidArgumentError(f"cannot write {self.path}: no folder {self.path.parent}")
        if self.path.exists() and not self.path.is_file():
            raise InvalidArgumentError(f"cannot write {self.path}: not a regular file")
        if not math.isfinite(fps) or fps <= 0:
            raise InvalidArgumentError(f"fps must be > 0, got {fps}")
        self.fps = fps
        self._writer: Any = None
        self._size: tuple[int, int] | None = None
        self.frames = 0

    def write(self, image: Image, seen: FrameTracks) -> None:
        import cv2

        h, w = image.shape[:2]
        if self._writer is None:
            fourcc = cv2.VideoWriter.fourcc(*_WRITERS[self.path.suffix.lower()])
            self._writer = cv2.VideoWriter(str(self.path), fourcc, float(self.fps), (w, h))
            if not self._writer.isOpened():
                raise InvalidArgumentError(f"cannot write {self.path}: OpenCV could not open it for writing")
            self._size = (w, h)
        if (w, h) != self._size:  # a stream that changed size: keep the first size
            image = np.asarray(cv2.resize(image, self._size), np.uint8)
        self._writer.write(cv2.cvtColor(draw_tracks(image, seen), cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def __enter__(self) -> AnnotatedVideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
