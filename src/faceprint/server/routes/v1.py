"""faceprint's own API (``/v1/...``): what CompreFace lacks.

- ``POST /v1/identify``: open-set 1:N with the calibrated threshold at an ``fmr`` (1:1 operating
  point) or an ``fpir`` (for the gallery's size); each face names the threshold and its FMR.
- ``POST /v1/verify``: 1:1 at ``fmr``, the probe optionally checked for liveness.
- ``POST /v1/liveness``: the library's default passive checker on the largest face.
- ``POST /v1/enroll``: enroll a person from one or more photos, all or nothing, with what each photo
  gave (its face, its liveness, or why it cannot be used).
- ``POST /v1/challenge`` then ``POST /v1/challenge/{id}``: the active liveness challenge: issue random
  actions, answer them with a clip; the verdict, and who answered (identified at ``fmr``).
- ``GET /v1/models``: the model this service embeds with, its calibrated thresholds, every model's
  package and weight licence.
- ``GET /v1/audit``: the audit trail of the key's collection (admin).

Each calls the :class:`~faceprint.pipeline.FacePipeline` method the CLI calls for the same command
(``identify``, ``verify``, ``check_liveness``; enrollment's ``prepare_enrollment_report`` + ``commit``;
``issue_challenge`` / ``check_challenge``; ``describe_models``) and answers its result's ``to_dict()``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from ...audit import ACTIONS, MAX_PAGE
from ...io import NamedBytes
from ...thresholds import operating_point_key
from ..errors import ApiError
from ..observe import audited
from ..security import Caller, require
from ..uploads import image_body, image_list_body, read_image_list, read_images, read_optional, video_body
from .compreface import PageNumber, fingerprint_of, image_id_of, same_model

if TYPE_CHECKING:
    from ...pipeline import FacePipeline

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["faceprint"])

Admin = Annotated[Caller, require("admin")]
Enroller = Annotated[Caller, require("enroll")]
Recognizer = Annotated[Caller, require("recognize")]
Fmr = Annotated[
    str | None,
    Query(description="1:1 operating point of the threshold: 1e-2, 1e-3, 1e-4 or best_accuracy (default: 1e-3)."),
]
PassiveOnly = Annotated[
    Literal["off", "passive"], Query(description="Check the probe face with the passive checker first.")
]


def _model(pipeline: FacePipeline) -> dict[str, Any]:
    return {"model": pipeline.model_key, "fingerprint": fingerprint_of(pipeline)}


@router.post(
    "/identify",
    summary="Open-set identification of the faces of an image (calibrated threshold, its FMR named)",
    openapi_extra={**image_body("file"), **audited("search")},
)
async def identify(
    request: Request,
    caller: Recognizer,
    k: Annotated[int, Query(ge=1, le=100, description="Candidates per face.")] = 3,
    fmr: Fmr = None,
    fpir: Annotated[
        float | None,
        Query(gt=0.0, lt=1.0, description="Open-set rate instead of fmr: at most this fraction of strangers named."),
    ] = None,
    select: Annotated[Literal["all", "largest", "central", "error"], Query()] = "all",
    liveness: PassiveOnly = "off",
) -> dict[str, Any]:
    image = (await read_images(request, ("file",)))["file"]
    point = operating_point_key(fmr)

    def job(pipeline: FacePipeline) -> dict[str, Any]:
        same_model(caller, pipeline)
        # as the CLI: fmr defaults to 1e-3 without fpir; with fpir, an fmr too is refused by identify
        fmr_point = (point or "1e-3") if fpir is None else point
        results = pipeline.identify(
            image, caller.gallery, k=k, fmr=fmr_point, fpir=fpir, select=select, liveness=liveness
        )
        caller.notes["faces"] = len(results)
        caller.notes["matches"] = [r.name for r in results]
        return {**_model(pipeline), "faces": [r.to_dict() for r in results]}

    return await caller.service.pool.run(job)


@router.post(
    "/verify",
    summary="1:1: is the largest face of source_image the person of target_image, at fmr?",
    openapi_extra={**image_body("source_image", "target_image"), **audited("verify")},
)
async def verify(
    request: Request,
    caller: Recognizer,
    fmr: Fmr = None,
    select: Annotated[Literal["largest", "central", "error"], Query()] = "largest",
    liveness: PassiveOnly = "off",
) -> dict[str, Any]:
    images = await read_images(request, ("source_image", "target_image"))
    point = operating_point_key(fmr) or "1e-3"

    def job(pipeline: FacePipeline) -> dict[str, Any]:
        result = pipeline.verify(
            images["source_image"], images["target_image"], select=select, fmr=point, liveness=liveness
        )
        caller.notes.update(faces=2, decision=result.decision)
        return {**_model(pipeline), **result.to_dict()}

    return await caller.service.pool.run(job)


@router.post(
    "/liveness",
    summary="Passive liveness of the largest face of an image (the library's default checker)",
    openapi_extra={**image_body("file"), **audited("liveness")},
)
async def liveness(
    request: Request,
    caller: Recognizer,
    select: Annotated[Literal["largest", "central", "error"], Query()] = "largest",
) -> dict[str, Any]:
    image = (await read_images(request, ("file",)))["file"]

    def job(pipeline: FacePipeline) -> dict[str, Any]:
        result = pipeline.check_liveness(image, select=select)
        caller.notes.update(faces=1, verdict=result.verdict)
        answer = result.to_dict()
        details = answer.get("details") or {}
        reasons = details.get("unsure_reasons") or details.get("reasons") or []
        return {**answer, "live": result.live, "reasons": list(reasons)}

    return await caller.service.pool.run(job)


@router.get("/audit", summary="The audit trail of the key's collection, oldest first (admin)")
def audit(
    caller: Admin,
    page: PageNumber = 0,
    size: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    action: Annotated[str | None, Query(description=f"One of: {', '.join(ACTIONS)}.")] = None,
    subject: Annotated[str | None, Query(description="Only entries about this subject.")] = None,
    key_id: Annotated[str | None, Query(description="Only entries of this key.")] = None,
    since: Annotated[str | None, Query(description="ISO 8601 time, inclusive (naive: UTC).")] = None,
    until: Annotated[str | None, Query(description="ISO 8601 time, exclusive (naive: UTC).")] = None,
) -> dict[str, Any]:
    found = caller.service.audit.query(
        action=action,
        subject=subject,
        key_id=key_id,
        collection=caller.collection,
        since=since,
        until=until,
        offset=page * size,
        limit=size,
    )
    return {
        "entries": [e.to_dict() for e in found.entries],
        "page_number": page,
        "page_size": size,
        "total_pages": math.ceil(found.total / size),
        "total_elements": found.total,
    }


# ------------------------------------------------------------------ enrollment


@router.post(
    "/enroll",
    status_code=201,
    summary="Enroll a person from one or more photos (all or nothing), with what each photo gave",
    openapi_extra={**image_list_body("files"), **audited("enroll")},
)
async def enroll(
    request: Request,
    caller: Enroller,
    name: Annotated[str, Query(min_length=1, max_length=200, description="The person; created when new.")],
    select: Annotated[
        Literal["largest", "central", "error"], Query(description="The face of each photo; error: refuse several.")
    ] = "largest",
    liveness: PassiveOnly = "off",
) -> dict[str, Any]:
    """Every photo is checked (decoded, one face found, embedded, liveness when asked) before anything is
    written; when one cannot be used (400) or is not judged live (422) nothing is written and the
    answer's ``photos`` say which and why. A photo the person already holds (same file bytes) is
    left out (``duplicates``). ``FACEPRINT_MAX_ENROLL_PHOTOS`` photos at most."""
    from ...enrollment import commit, drop_duplicates, prepare_enrollment_report

    most = caller.service.settings.max_enroll_photos
    uploads = await read_image_list(request, "files", most=most)
    caller.notes["subject"] = name.strip()
    collection = caller.collection

    def job(pipeline: FacePipeline) -> dict[str, Any]:
        same_model(caller, pipeline)
        sources = [NamedBytes(data, label[:200]) for label, data in uploads]
        prepared, photos = prepare_enrollment_report(pipeline, name, sources, select=select, liveness=liveness)
        shown = [p.to_dict() for p in photos]
        caller.notes["photos"] = len(photos)
        if prepared is None:
            bad = sum(not p.usable for p in photos)
            raise ApiError(
                400, f"not enrolled: {bad} of {len(photos)} photo(s) cannot be used", extra={"photos": shown}
            )
        if prepared.rejection is not None:
            raise ApiError(
                422, f"not enrolled: the liveness check said {prepared.rejection.decision}",
                extra={"decision": prepared.rejection.decision, "photos": shown},
            )
        gallery = caller.gallery
        with caller.service.collections.write_lock(collection):
            kept, left_out = drop_duplicates(prepared, gallery)
            subject = commit(kept, gallery) if len(kept) else gallery.get(kept.name.strip())
            added = gallery.examples(subject.id, offset=subject.n_templates - len(kept)) if len(kept) else []
        caller.notes.update(faces=len(photos), added=len(kept))
        return {
            **_model(pipeline),
            "subject": subject.name,
            "id": subject.id,
            "templates": subject.n_templates,
            "added": len(kept),
            "image_ids": [image_id_of(e.id) for e in added],
            "duplicates": [{"source": d.source, "same_as": d.same_as} for d in left_out],
            "photos": shown,
        }

    return await caller.service.pool.run(job)


# ------------------------------------------------------------------ active liveness challenge


def _instructions(actions: tuple[str, ...]) -> str:
    words = {"blink": "blink", "turn_left": "turn your head to your left", "turn_right": "turn your head to your right"}
    return ", then ".join(words.get(a, a) for a in actions)


@router.post(
    "/challenge",
    status_code=201,
    summary="Issue an active liveness challenge: random actions to perform on camera",
    openapi_extra=audited("liveness"),
)
def new_challenge(
    caller: Recognizer,
    actions: Annotated[int, Query(ge=1, le=5, description="How many actions.")] = 2,
    time_limit_s: Annotated[float, Query(gt=0.0, le=30.0, description="Seconds to perform them in.")] = 10.0,
) -> dict[str, Any]:
    """The challenge is random (OS entropy), answerable once with ``POST /v1/challenge/{id}`` by this
    key, for ``FACEPRINT_CHALLENGE_TTL_S`` seconds."""
    from ...liveness import issue_challenge

    challenge = issue_challenge(
        actions, time_limit_s=time_limit_s, actions=caller.service.settings.challenge_actions
    )
    pending = caller.service.challenges.issue(challenge, caller.key.id)
    caller.notes.update(step="issued", challenge=str(challenge))
    return {
        "id": pending.id,
        "actions": list(challenge.actions),
        "time_limit_s": challenge.time_limit_s,
        "expires_in_s": round(pending.expires_at - pending.issued_at, 3),
        "instructions": _instructions(challenge.actions),
    }


@router.post(
    "/challenge/{challenge_id}",
    summary="Answer a challenge with a clip: the liveness verdict, and who answered",
    openapi_extra={**video_body(), **audited("liveness")},
)
async def answer_challenge(
    request: Request,
    challenge_id: str,
    caller: Recognizer,
    identify: Annotated[bool, Query(description="Also identify the person (most frontal frame, or `file`).")] = True,
    k: Annotated[int, Query(ge=1, le=100, description="Candidates.")] = 3,
    fmr: Fmr = None,
) -> dict[str, Any]:
    """The clip (``video``: webm, mp4, ... at most 30 s read) must show the challenge's actions, in
    order, within its time limit (:func:`faceprint.liveness.check_challenge`). With ``identify`` the
    person is identified (:meth:`FacePipeline.identify`) with the challenge's result as its liveness:
    a failed challenge gives decision ``spoof``. A challenge is used up by its first answer."""
    from ...liveness import check_challenge, frontal_frame, read_video_bytes

    pending = caller.service.challenges.take(challenge_id[:64], caller.key.id)  # before the upload is read
    if pending is None:
        raise ApiError(404, "no such challenge: unknown, expired, already answered, or issued to another key")
    video, still = await read_optional(request, "video", "file")
    point = operating_point_key(fmr) or "1e-3"

    def job(pipeline: FacePipeline) -> dict[str, Any]:
        frames = read_video_bytes(video, name="video")
        result = check_challenge(frames, pending.challenge)
        live = result.liveness
        caller.notes.update(step="answered", challenge=str(pending.challenge), verdict=live.verdict)
        answer: dict[str, Any] = {
            "challenge": str(pending.challenge),
            "passed": result.passed,
            "verdict": live.verdict,
            "reasons": list(result.reasons),
            "liveness": live.to_dict(),
            "frames": len(frames),
        }
        if identify:
            same_model(caller, pipeline)
            image = still if still is not None else frontal_frame(frames, result.analysis)
            found = [] if image is None else pipeline.identify(
                image, caller.gallery, k=k, fmr=point, select="largest", liveness=result
            )
            caller.notes.update(faces=len(found), matches=[r.name for r in found])
            answer.update(_model(pipeline), faces=[r.to_dict() for r in found])
        return answer

    return await caller.service.pool.run(job)


# ------------------------------------------------------------------ models


@router.get("/models", summary="The model this service embeds with, its thresholds; every model's package and licence")
def models(caller: Recognizer) -> dict[str, Any]:
    from ...calibration import describe_models

    pipeline = caller.service.pipeline
    embedder = pipeline.embedder
    return {
        "serving": {
            **_model(pipeline),
            "detector": type(pipeline.detector).__name__,
            "thresholds": {k: float(v) for k, v in getattr(embedder, "thresholds", {}).items()},
            "default_fmr": "1e-3",
        },
        "models": describe_models(caller.service.settings),
    }
