"""CompreFace's REST API (``/api/v1/...``): same paths, parameters, field names and answer shapes.

Each route parses the request, makes the library calls the CLI makes for the same work
(:func:`faceprint.enrollment.prepare_enrollment` + :func:`~faceprint.enrollment.commit` to enroll,
:meth:`FacePipeline.identify` to recognise, :meth:`FacePipeline.detect` / :meth:`~FacePipeline.faces`
/ :meth:`~FacePipeline.face` + :meth:`~FacePipeline.compare` to detect and verify, the gallery's
methods to list, rename and delete) on an inference thread, and renders the result.

Differences from CompreFace: ``similarity`` is faceprint's cosine similarity (clipped to [0, 1]),
whose calibrated decision threshold ``faceprint models`` lists; an ``image_id`` is a UUID that
encodes the stored template's id; no uploaded image is stored (so no image download routes); of
the face plugins only ``landmarks`` is supported (others are ignored).
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import BaseModel, Field

from ...enrollment import commit, prepare_enrollment
from ...errors import EmbedderMismatchError, ExampleNotFoundError, NoFaceError
from ..errors import ApiError
from ..observe import audited
from ..security import Caller, require
from ..uploads import image_body, read_images

if TYPE_CHECKING:
    from ...gallery import Example
    from ...pipeline import FacePipeline
    from ...types import Detection

__all__ = ["router", "image_id_of", "example_id_of", "fingerprint_of", "same_model", "PageNumber"]

router = APIRouter(prefix="/api/v1", tags=["CompreFace-compatible"])

Recognizer = Annotated[Caller, require("recognize")]
Enroller = Annotated[Caller, require("enroll")]
T = TypeVar("T")

MAX_PAGE_NUMBER = 10**9
PageNumber = Annotated[int, Query(ge=0, le=MAX_PAGE_NUMBER, description="The page, from 0.")]
"""A page number of a paged list. Bounded so that ``page * size`` stays a database integer (64 bits):
``?page=`` with 20 digits is a 400, not an overflow in SQLite (a 500)."""


# ------------------------------------------------------------------ ids and shapes


def image_id_of(example_id: int) -> str:
    """The CompreFace ``image_id`` (a UUID) of a stored template id.

    Examples
    --------
    >>> image_id_of(7)
    '00000000-0000-0000-0000-000000000007'
    """
    return str(uuid.UUID(int=int(example_id)))


def example_id_of(image_id: str) -> int:
    """The template id an ``image_id`` names (400 when it is not a UUID)."""
    try:
        value = uuid.UUID(image_id).int
    except ValueError:
        raise ApiError(400, f"image_id must be a UUID, got {image_id[:64]!r}") from None
    if value >= 2**63:
        raise ExampleNotFoundError(f"no example with image_id {image_id}")
    return value


def _face_json(det: Detection, opts: FaceOptions) -> dict[str, Any]:
    x1, y1, x2, y2 = det.box
    face: dict[str, Any] = {
        "box": {
            "probability": round(float(det.score), 5),
            "x_max": max(0, round(x2)),
            "y_max": max(0, round(y2)),
            "x_min": max(0, round(x1)),
            "y_min": max(0, round(y1)),
        }
    }
    if "landmarks" in opts.plugins:
        face["landmarks"] = [[max(0, round(float(x))), max(0, round(float(y)))] for x, y in det.landmarks]
    return face


def _similarity(value: float) -> float:
    return round(min(max(float(value), 0.0), 1.0), 5)


def _example_json(example: Example) -> dict[str, str]:
    return {"image_id": image_id_of(example.id), "subject": example.subject}


# ------------------------------------------------------------------ options


@dataclass(frozen=True)
class FaceOptions:
    """CompreFace's per-request face options."""

    limit: int
    det_prob_threshold: float | None
    plugins: frozenset[str]
    status: bool

    def keep(self, items: Sequence[T], detection: Callable[[T], Detection], what: str) -> list[T]:
        """Faces at or above ``det_prob_threshold``, largest first, at most ``limit`` (0: all);
        a :class:`NoFaceError` with the reason when none is left."""
        if not items:
            raise NoFaceError(f"{what}: no face found")
        kept = [i for i in items if self.det_prob_threshold is None or detection(i).score >= self.det_prob_threshold]
        if not kept:
            raise NoFaceError(
                f"{what}: {len(items)} face(s) found, none with detection probability >= {self.det_prob_threshold}"
            )
        kept.sort(key=lambda i: -detection(i).area)
        return kept[: self.limit] if self.limit else kept

    def wrap(self, answer: dict[str, Any], pipeline: FacePipeline, started: float) -> dict[str, Any]:
        if self.status:
            answer["plugins_versions"] = {
                "detector": f"faceprint.{type(pipeline.detector).__name__}",
                "calculator": f"faceprint.{pipeline.model_key}",
            }
            answer["execution_time_ms"] = round((time.perf_counter() - started) * 1000.0, 1)
        return answer


async def face_options(  # async: pure parsing, so FastAPI runs it on the loop, not in a thread
    limit: Annotated[int, Query(ge=0, description="Most faces, largest first; 0: no limit.")] = 0,
    det_prob_threshold: Annotated[
        float | None, Query(ge=0.0, le=1.0, description="Least detection probability of a face.")
    ] = None,
    face_plugins: Annotated[str, Query(description="Comma-separated plugins; faceprint has 'landmarks'.")] = "",
    status: Annotated[bool, Query(description="Add plugins_versions and the execution time.")] = False,
) -> FaceOptions:
    plugins = frozenset(p.strip() for p in face_plugins.split(",") if p.strip())
    return FaceOptions(limit=limit, det_prob_threshold=det_prob_threshold, plugins=plugins, status=status)


Options = Annotated[FaceOptions, Depends(face_options)]


def fingerprint_of(pipeline: FacePipeline) -> str:
    """The fingerprint of the pipeline's embedder (what a gallery's templates must match); "" if it has none."""
    return str(getattr(pipeline.embedder, "fingerprint", ""))


def same_model(caller: Caller, pipeline: FacePipeline) -> None:
    stored = caller.gallery.fingerprint
    if stored is not None and stored != fingerprint_of(pipeline):
        raise EmbedderMismatchError(
            f"collection {caller.collection!r} holds templates of {stored!r}; this service embeds with "
            f"{fingerprint_of(pipeline)!r}"
        )


def _named(what: str, fn: Callable[[], T]) -> T:
    """``fn()``, its no-face error naming the request field ``what``."""
    try:
        return fn()
    except NoFaceError as err:
        raise NoFaceError(f"{what}: {err}") from err


# ------------------------------------------------------------------ subjects


class SubjectBody(BaseModel):
    subject: str = Field(description="The subject's name.", min_length=1)


@router.post(
    "/recognition/subjects", status_code=201, summary="Add a subject (no examples yet)", openapi_extra=audited("create")
)
def add_subject(body: SubjectBody, caller: Enroller) -> dict[str, str]:
    caller.notes["subject"] = body.subject
    return {"subject": caller.gallery.create(body.subject).name}


@router.get("/recognition/subjects", summary="List subjects")
def list_subjects(caller: Recognizer) -> dict[str, list[str]]:
    return {"subjects": [s.name for s in caller.gallery.subjects()]}


@router.put(
    "/recognition/subjects/{subject:path}",
    summary="Rename a subject (onto an existing name: merge into it)",
    openapi_extra=audited("rename"),
)
def rename_subject(subject: str, body: SubjectBody, caller: Enroller) -> dict[str, bool]:
    caller.notes["new_name"] = body.subject
    gallery = caller.gallery
    current, new = gallery.get(subject), body.subject.strip()
    if new != current.name and new in gallery:
        gallery.merge(current.id, gallery.get(new).id)  # CompreFace: the examples move to the existing subject
    else:
        gallery.rename(current.id, body.subject)
    return {"updated": True}


@router.delete(
    "/recognition/subjects/{subject:path}", summary="Delete a subject and its examples", openapi_extra=audited("delete")
)
def delete_subject(subject: str, caller: Enroller) -> dict[str, str]:
    name = caller.gallery.get(subject).name
    caller.gallery.remove(name)
    return {"subject": name}


@router.delete(
    "/recognition/subjects", summary="Delete every subject of the collection (admin)", openapi_extra=audited("delete")
)
def delete_all_subjects(caller: Annotated[Caller, require("admin")]) -> dict[str, int]:
    names = [s.name for s in caller.gallery.subjects()]
    caller.notes["subjects"] = names
    for name in names:
        caller.gallery.remove(name)
    return {"deleted": len(names)}


# ------------------------------------------------------------------ examples ("faces")


@router.post(
    "/recognition/faces",
    status_code=201,
    summary="Add an example of a subject",
    openapi_extra={**image_body("file"), **audited("enroll")},
)
async def add_example(
    request: Request,
    caller: Enroller,
    subject: Annotated[str, Query(min_length=1, description="The subject; created when new.")],
    det_prob_threshold: Annotated[float | None, Query(ge=0.0, le=1.0)] = None,
) -> dict[str, str]:
    image = (await read_images(request, ("file",)))["file"]
    collection = caller.collection

    def job(pipeline: FacePipeline) -> Example:
        if det_prob_threshold is not None:
            opts = FaceOptions(limit=1, det_prob_threshold=det_prob_threshold, plugins=frozenset(), status=False)
            opts.keep(pipeline.detect(image, select="largest"), lambda d: d, "file")
        prepared = _named("file", lambda: prepare_enrollment(pipeline, subject, [image], select="largest"))
        gallery = caller.gallery
        with caller.service.collections.write_lock(collection):
            stored = commit(prepared, gallery)
            return gallery.examples(stored.id, offset=stored.n_templates - len(prepared))[0]

    answer = _example_json(await caller.service.pool.run(job))
    caller.notes.update(faces=1, image_id=answer["image_id"])
    return answer


@router.get("/recognition/faces", summary="List examples, a page at a time")
def list_examples(
    caller: Recognizer,
    page: PageNumber = 0,
    size: Annotated[int, Query(ge=1, le=1000)] = 20,
    subject: Annotated[str | None, Query(description="Only this subject's examples.")] = None,
) -> dict[str, Any]:
    total = caller.gallery.count_examples(subject)
    examples = caller.gallery.examples(subject, offset=page * size, limit=size)
    return {
        "faces": [_example_json(e) for e in examples],
        "page_number": page,
        "page_size": size,
        "total_pages": math.ceil(total / size),
        "total_elements": total,
    }


@router.delete(
    "/recognition/faces",
    summary="Delete the examples of a subject (every example: admin)",
    openapi_extra=audited("delete"),
)
def delete_examples(
    caller: Enroller, subject: Annotated[str | None, Query(description="The subject; absent: all.")] = None
) -> dict[str, int]:
    if subject is None and caller.key.role != "admin":
        raise ApiError(403, "deleting every example of a collection needs role 'admin'; give ?subject=")
    examples = caller.gallery.examples(subject)
    caller.notes["image_ids"] = [image_id_of(e.id) for e in examples]
    return {"deleted": len(caller.gallery.remove_examples([e.id for e in examples]))}


@router.post(
    "/recognition/faces/delete",
    summary="Delete several examples by image_id (unknown ids are skipped)",
    openapi_extra=audited("delete"),
)
def delete_examples_by_id(caller: Enroller, image_ids: Annotated[list[str], Body()]) -> list[dict[str, str]]:
    known = []
    for image_id in image_ids:  # a non-UUID is a 400 here, before anything is removed
        try:
            known.append(caller.gallery.example(example_id_of(image_id))[0].id)
        except ExampleNotFoundError:  # unknown, or a UUID past any template id: skipped
            continue
    removed = caller.gallery.remove_examples(known)
    caller.notes["image_ids"] = [image_id_of(e.id) for e in removed]
    names = sorted({e.subject for e in removed})
    if len(names) == 1:
        caller.notes["subject"] = names[0]
    return [_example_json(e) for e in removed]


@router.delete("/recognition/faces/{image_id}", summary="Delete one example", openapi_extra=audited("delete"))
def delete_example(image_id: str, caller: Enroller) -> dict[str, str]:
    removed = caller.gallery.remove_examples([example_id_of(image_id)])
    caller.notes.update(subject=removed[0].subject, image_ids=[image_id])
    return _example_json(removed[0])


# ------------------------------------------------------------------ recognition, verification, detection


@router.post(
    "/recognition/recognize",
    summary="Recognize the faces of an image",
    openapi_extra={**image_body("file"), **audited("search")},
)
async def recognize(
    request: Request,
    caller: Recognizer,
    opts: Options,
    prediction_count: Annotated[int, Query(ge=0, description="Subjects per face, most similar first.")] = 1,
) -> dict[str, Any]:
    image = (await read_images(request, ("file",)))["file"]
    started = time.perf_counter()

    def job(pipeline: FacePipeline) -> dict[str, Any]:
        same_model(caller, pipeline)
        results = pipeline.identify(image, caller.gallery, k=max(1, prediction_count), select="all")
        caller.notes["faces"] = len(results)
        kept = opts.keep(results, lambda r: r.detection, "file")
        caller.notes["matches"] = [[m.name for m in r.matches] for r in kept]
        faces = [
            {
                **_face_json(r.detection, opts),
                "subjects": [{"subject": m.name, "similarity": _similarity(m.similarity)} for m in r.matches],
            }
            for r in kept
        ]
        return opts.wrap({"result": faces}, pipeline, started)

    return await caller.service.pool.run(job)


@router.post(
    "/recognition/faces/{image_id}/verify",
    summary="Compare the faces of an image with one stored example",
    openapi_extra={**image_body("file"), **audited("verify")},
)
async def verify_example(request: Request, image_id: str, caller: Recognizer, opts: Options) -> dict[str, Any]:
    example_id = example_id_of(image_id)
    stored, _ = caller.gallery.example(example_id)  # 404 before the upload is read
    caller.notes.update(subject=stored.subject, image_id=image_id)
    image = (await read_images(request, ("file",)))["file"]
    started = time.perf_counter()

    def job(pipeline: FacePipeline) -> dict[str, Any]:
        same_model(caller, pipeline)
        _, reference = caller.gallery.example(example_id)
        found = pipeline.faces(image)
        caller.notes["faces"] = len(found)
        faces = opts.keep(found, lambda f: f.detection, "file")
        scored = [(f, pipeline.compare(f.embedding, reference).similarity) for f in faces]
        scored.sort(key=lambda fs: -fs[1])
        result = [{**_face_json(f.detection, opts), "similarity": _similarity(s)} for f, s in scored]
        return opts.wrap({"result": result}, pipeline, started)

    return await caller.service.pool.run(job)


@router.post(
    "/detection/detect",
    summary="Detect the faces of an image",
    openapi_extra={**image_body("file"), **audited("detect")},
)
async def detect(request: Request, caller: Recognizer, opts: Options) -> dict[str, Any]:
    image = (await read_images(request, ("file",)))["file"]
    started = time.perf_counter()

    def job(pipeline: FacePipeline) -> dict[str, Any]:
        found = pipeline.detect(image)
        caller.notes["faces"] = len(found)
        dets = opts.keep(found, lambda d: d, "file")
        return opts.wrap({"result": [_face_json(d, opts) for d in dets]}, pipeline, started)

    return await caller.service.pool.run(job)


@router.post(
    "/verification/verify",
    summary="Compare the largest face of source_image with the faces of target_image",
    openapi_extra={**image_body("source_image", "target_image"), **audited("verify")},
)
async def verify_images(request: Request, caller: Recognizer, opts: Options) -> dict[str, Any]:
    images = await read_images(request, ("source_image", "target_image"))
    started = time.perf_counter()

    def job(pipeline: FacePipeline) -> dict[str, Any]:
        source = _named("source_image", lambda: pipeline.face(images["source_image"]))
        found = pipeline.faces(images["target_image"])
        caller.notes["faces"] = 1 + len(found)
        targets = opts.keep(found, lambda f: f.detection, "target_image")
        matches = [
            {
                **_face_json(t.detection, opts),
                "similarity": _similarity(pipeline.compare(source.embedding, t.embedding).similarity),
            }
            for t in targets
        ]
        matches.sort(key=lambda m: -float(m["similarity"]))
        result = {"source_image_face": _face_json(source.detection, opts), "face_matches": matches}
        return {"result": [opts.wrap(result, pipeline, started)]}

    return await caller.service.pool.run(job)
