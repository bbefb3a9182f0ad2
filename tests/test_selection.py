"""One face-selection rule: ``select=`` with one vocabulary across the pipeline and the plain functions.

The fake scene (300x100): a big red face in the left corner and a small blue face in the centre with
the higher detection score, so ``"largest"`` (red), ``"central"`` (blue) and ``"all"`` (blue, red: by
score) all give different answers. See the table in :mod:`faceprint.detection`.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
from typer.testing import CliRunner

import faceprint
import faceprint.pipeline as fp
from faceprint.cli import app
from faceprint.detection import ONE_FACE, SELECTIONS, check_selection, select_faces
from faceprint.enrollment import prepare_enrollment
from faceprint.errors import InvalidArgumentError, MultipleFacesError
from faceprint.gallery import GalleryBackend, open_gallery
from faceprint.pipeline import FacePipeline
from faceprint.types import Detection, Image, Liveness
from fakes import FakeDetector, FakeEmbedder, make_detection

RED, BLUE, GREEN = (255, 0, 0), (0, 0, 255), (0, 255, 0)
BIG_CORNER = (0.0, 0.0, 90.0, 90.0)  # 90x90, red: the largest
SMALL_CENTRE = (125.0, 25.0, 175.0, 75.0)  # 50x50, blue, at the image centre: the central one
BAD_VALUES: list[Any] = ["biggest", "LARGEST", "", None, 1]


def scene() -> Image:
    img = np.zeros((100, 300, 3), np.uint8)
    img[:, :100], img[:, 100:200], img[:, 200:] = RED, BLUE, GREEN
    return img


def colour_of_vector(v: np.ndarray) -> str:
    names = {"red": RED, "blue": BLUE, "green": GREEN}
    sims = {n: float(np.asarray(v) @ FakeEmbedder.vector_for_colour(c)) for n, c in names.items()}
    best = max(sims, key=lambda n: sims[n])
    assert sims[best] > 0.9999, sims  # exactly one face's vector
    return best


def colour_of_box(d: Detection) -> str:
    return {BIG_CORNER: "red", SMALL_CENTRE: "blue"}[d.box]


class RecordingChecker:
    """A passive checker that says live and remembers the face it was shown."""

    def __init__(self) -> None:
        self.seen: list[Detection] = []

    def score(self, image: Image, detection: Detection | None = None) -> Liveness:
        assert detection is not None
        self.seen.append(detection)
        return Liveness(verdict="live", score=0.9, method="fake")


def make_pipe(*boxes: tuple[float, float, float, float]) -> FacePipeline:
    scores = {BIG_CORNER: 0.80, SMALL_CENTRE: 0.99}
    dets = [make_detection(b, score=scores[b]) for b in boxes]
    return FacePipeline(detector=FakeDetector(dets), embedder=FakeEmbedder(), passive_checker=RecordingChecker())


@pytest.fixture
def two() -> FacePipeline:
    return make_pipe(BIG_CORNER, SMALL_CENTRE)


@pytest.fixture
def one() -> FacePipeline:
    return make_pipe(BIG_CORNER)


@pytest.fixture
def gallery() -> Iterator[GalleryBackend]:
    with open_gallery("sqlite://") as g:
        yield g


@contextmanager
def as_default(pipe: FacePipeline) -> Iterator[None]:
    """Run the plain functions on ``pipe``."""
    with mock.patch.object(fp, "default_pipeline", lambda: pipe):
        yield


# -- one face: each call as "which colour did it use" ----------------------------------------
OneCall = Callable[[FacePipeline, Image, GalleryBackend, dict[str, Any]], str]


def _verify(pipe: FacePipeline, img: Image, g: GalleryBackend, kw: dict[str, Any]) -> str:
    reference = np.zeros((100, 300, 3), np.uint8)
    reference[...] = RED  # every face of the reference is red
    res = pipe.verify(img, reference, **kw)
    return "red" if res.similarity > 0.9999 else "blue"


def _plain_verify(pipe: FacePipeline, img: Image, g: GalleryBackend, kw: dict[str, Any]) -> str:
    with as_default(pipe):
        reference = np.zeros((100, 300, 3), np.uint8)
        reference[...] = RED
        return "red" if faceprint.verify(img, reference, **kw).similarity > 0.9999 else "blue"


def _enroll(pipe: FacePipeline, img: Image, g: GalleryBackend, kw: dict[str, Any]) -> str:
    pipe.enroll("x", img, g, **kw)
    return colour_of_vector(g.templates("x")[0])


def _plain_enroll(pipe: FacePipeline, img: Image, g: GalleryBackend, kw: dict[str, Any]) -> str:
    with as_default(pipe):
        faceprint.enroll("x", img, g, **kw)
    return colour_of_vector(g.templates("x")[0])


def _check_liveness(pipe: FacePipeline, img: Image, g: GalleryBackend, kw: dict[str, Any]) -> str:
    pipe.check_liveness(img, **kw)
    return colour_of_box(pipe.passive_checker.seen[-1])


def _plain_embed(pipe: FacePipeline, img: Image, g: GalleryBackend, kw: dict[str, Any]) -> str:
    with as_default(pipe):
        return colour_of_vector(faceprint.embed(img, **kw))


ONE_FACE_CALLS: dict[str, OneCall] = {
    "face": lambda p, i, g, kw: colour_of_vector(p.face(i, **kw).embedding),
    "embed": lambda p, i, g, kw: colour_of_vector(p.embed(i, **kw)),
    "verify": _verify,
    "enroll": _enroll,
    "prepare_enrollment": lambda p, i, g, kw: colour_of_vector(p.prepare_enrollment("x", i, **kw)[0][0]),
    "enrollment.prepare_enrollment": lambda p, i, g, kw: colour_of_vector(
        prepare_enrollment(p, "x", i, **kw).embeddings[0]
    ),
    "enrollment_embeddings": lambda p, i, g, kw: colour_of_vector(p.enrollment_embeddings(i, **kw)[0][0]),
    "check_liveness": _check_liveness,
    "plain embed": _plain_embed,
    "plain verify": _plain_verify,
    "plain enroll": _plain_enroll,
}
WITH_ALIAS = [
    "face", "embed", "enroll", "prepare_enrollment", "enrollment.prepare_enrollment", "enrollment_embeddings",
    "check_liveness",
]  # fmt: skip


@pytest.mark.parametrize("call", ONE_FACE_CALLS)
@pytest.mark.parametrize(("select", "colour"), [("largest", "red"), ("central", "blue")])
def test_one_face_calls_take_select(call: str, select: str, colour: str, two: FacePipeline, gallery: Any) -> None:
    assert ONE_FACE_CALLS[call](two, scene(), gallery, {"select": select}) == colour


@pytest.mark.parametrize("call", ONE_FACE_CALLS)
def test_one_face_default_is_largest(call: str, two: FacePipeline, gallery: Any) -> None:
    assert ONE_FACE_CALLS[call](two, scene(), gallery, {}) == "red"


@pytest.mark.parametrize("call", ONE_FACE_CALLS)
def test_error_refuses_two_faces_and_takes_one(call: str, two: FacePipeline, one: FacePipeline, gallery: Any) -> None:
    with pytest.raises(MultipleFacesError, match="2 faces found, expected one"):
        ONE_FACE_CALLS[call](two, scene(), gallery, {"select": "error"})
    assert len(gallery) == 0  # nothing enrolled
    assert ONE_FACE_CALLS[call](one, scene(), gallery, {"select": "error"}) == "red"


@pytest.mark.parametrize("call", ONE_FACE_CALLS)
@pytest.mark.parametrize("bad", ["all", *BAD_VALUES])
def test_one_face_calls_reject_other_values_before_any_work(
    call: str, bad: Any, two: FacePipeline, gallery: Any
) -> None:
    match = "select='all' does not apply; valid: largest, central, error" if bad == "all" else "largest, central, error"
    with pytest.raises(InvalidArgumentError, match=match):
        ONE_FACE_CALLS[call](two, scene(), gallery, {"select": bad})
    assert two._det.calls == 0  # type: ignore[attr-defined]


# -- the deprecated alias -----------------------------------------------------------------------
@pytest.mark.parametrize("call", WITH_ALIAS)
def test_on_multiple_is_a_deprecated_alias(call: str, two: FacePipeline, gallery: Any) -> None:
    with pytest.warns(DeprecationWarning, match=r"on_multiple= is deprecated.*select='central'") as record:
        assert ONE_FACE_CALLS[call](two, scene(), gallery, {"on_multiple": "central"}) == "blue"
    assert [Path(w.filename).name for w in record] == [Path(__file__).name]  # points at the caller
    with pytest.warns(DeprecationWarning), pytest.raises(MultipleFacesError):
        ONE_FACE_CALLS[call](two, scene(), gallery, {"on_multiple": "error"})


@pytest.mark.parametrize("call", WITH_ALIAS)
@pytest.mark.parametrize("select", ["largest", "central"])  # "largest" too: an explicit default is still given
def test_select_and_on_multiple_together_are_refused(call: str, select: str, two: FacePipeline, gallery: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # refused before any deprecation warning
        with pytest.raises(InvalidArgumentError, match="both select=.* and on_multiple=.*give select= only"):
            ONE_FACE_CALLS[call](two, scene(), gallery, {"select": select, "on_multiple": "error"})


def test_alias_values_are_checked_too(two: FacePipeline) -> None:
    with pytest.warns(DeprecationWarning), pytest.raises(InvalidArgumentError, match="largest, central, error"):
        two.face(scene(), on_multiple="all")  # type: ignore[arg-type]


# -- embed_many: one face per source, failures recorded -----------------------------------------
def test_embed_many_takes_select(two: FacePipeline) -> None:
    for select, colour in [("largest", "red"), ("central", "blue")]:
        emb, errors = two.embed_many([scene()], select=select)  # type: ignore[arg-type]
        assert errors == [None] and colour_of_vector(emb[0]) == colour
    emb, errors = two.embed_many([scene()])
    assert colour_of_vector(emb[0]) == "red"  # default "largest" (it was "central" before select= was unified)


def test_embed_many_error_records_the_source(two: FacePipeline, one: FacePipeline) -> None:
    emb, errors = two.embed_many([scene(), scene()], select="error")
    assert np.isnan(emb).all()
    assert all(e is not None and "2 faces found, expected one" in e and "array uint8" in e for e in errors)
    emb, errors = one.embed_many([scene()], select="error")
    assert errors == [None] and colour_of_vector(emb[0]) == "red"


@pytest.mark.parametrize("bad", ["all", *BAD_VALUES])
def test_embed_many_rejects_other_values(bad: Any, two: FacePipeline) -> None:
    with pytest.raises(InvalidArgumentError, match="largest, central, error"):
        two.embed_many([scene()], select=bad)
    assert two._det.calls == 0  # type: ignore[attr-defined]


# -- calls that return a list per face: "all" as well ------------------------------------------
ManyCall = Callable[[FacePipeline, Image, GalleryBackend, dict[str, Any]], list[str]]


def _plain(name: str) -> ManyCall:
    def call(p: FacePipeline, i: Image, g: GalleryBackend, kw: dict[str, Any]) -> list[str]:
        with as_default(p):
            if name == "detect":
                return [colour_of_box(d) for d in faceprint.detect(i, **kw)]
            return [colour_of_box(r.detection) for r in faceprint.identify(i, g, **kw)]

    return call


MANY_FACE_CALLS: dict[str, ManyCall] = {
    "detect": lambda p, i, g, kw: [colour_of_box(d) for d in p.detect(i, **kw)],
    "faces": lambda p, i, g, kw: [colour_of_vector(f.embedding) for f in p.faces(i, **kw)],
    "identify": lambda p, i, g, kw: [colour_of_box(r.detection) for r in p.identify(i, g, **kw)],
    "plain detect": _plain("detect"),
    "plain identify": _plain("identify"),
}


@pytest.mark.parametrize("call", MANY_FACE_CALLS)
@pytest.mark.parametrize(
    ("select", "colours"),
    [("all", ["blue", "red"]), ("largest", ["red"]), ("central", ["blue"]), (None, ["blue", "red"])],
    ids=["all", "largest", "central", "default-all"],
)
def test_many_face_calls_take_select(call: str, select: str | None, colours: list[str], two: FacePipeline,
                                     gallery: Any) -> None:  # fmt: skip
    kw = {} if select is None else {"select": select}
    assert MANY_FACE_CALLS[call](two, scene(), gallery, kw) == colours


@pytest.mark.parametrize("call", MANY_FACE_CALLS)
def test_many_face_calls_error_mode(call: str, two: FacePipeline, one: FacePipeline, gallery: Any) -> None:
    with pytest.raises(MultipleFacesError, match="2 faces found, expected one"):
        MANY_FACE_CALLS[call](two, scene(), gallery, {"select": "error"})
    assert MANY_FACE_CALLS[call](one, scene(), gallery, {"select": "error"}) == ["red"]


@pytest.mark.parametrize("call", MANY_FACE_CALLS)
@pytest.mark.parametrize("bad", BAD_VALUES)
def test_many_face_calls_reject_other_values_before_any_work(
    call: str, bad: Any, two: FacePipeline, gallery: Any
) -> None:
    with pytest.raises(InvalidArgumentError, match="valid: all, largest, central, error"):
        MANY_FACE_CALLS[call](two, scene(), gallery, {"select": bad})
    assert two._det.calls == 0  # type: ignore[attr-defined]


# -- the documented defaults, as signatures -------------------------------------------------------
@pytest.mark.parametrize(
    ("function", "default"),
    [
        (FacePipeline.detect, "all"),
        (FacePipeline.faces, "all"),
        (FacePipeline.identify, "all"),
        (faceprint.detect, "all"),
        (faceprint.identify, "all"),
        (FacePipeline.face, "largest"),
        (FacePipeline.embed, "largest"),
        (FacePipeline.embed_many, "largest"),
        (FacePipeline.verify, "largest"),
        (FacePipeline.enroll, "largest"),
        (FacePipeline.prepare_enrollment, "largest"),
        (FacePipeline.enrollment_embeddings, "largest"),
        (FacePipeline.check_liveness, "largest"),
        (prepare_enrollment, "largest"),
        (faceprint.embed, "largest"),
        (faceprint.verify, "largest"),
        (faceprint.enroll, "largest"),
    ],
    ids=lambda x: getattr(x, "__qualname__", x),
)
def test_every_call_has_select_with_the_documented_default(function: Callable[..., Any], default: str) -> None:
    param = inspect.signature(function).parameters["select"]
    assert param.kind is inspect.Parameter.KEYWORD_ONLY and param.default == default


def test_vocabulary_and_select_faces() -> None:
    assert SELECTIONS == ("all", "largest", "central", "error") and ONE_FACE == SELECTIONS[1:]
    dets = [make_detection(SMALL_CENTRE, 0.99), make_detection(BIG_CORNER, 0.8)]
    shape = (100, 300, 3)
    assert [colour_of_box(d) for d in select_faces(dets, shape, "all")] == ["blue", "red"]
    with pytest.raises(MultipleFacesError, match="^photo.jpg: 2 faces found, expected one$"):
        select_faces(dets, shape, "error", what="photo.jpg")
    assert select_faces(dets, shape, "error", min_face_size=60) == [dets[1]]  # small ones are dropped first
    assert select_faces([], shape, "error") == []
    assert check_selection("error") == "error" and check_selection("error", one_face=True) == "error"


# -- CLI ----------------------------------------------------------------------------------------
runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["verify", "a.jpg", "b.jpg", "--select", "all"], "--select must be largest, central or error"),
        (["enroll", "Ada", "a.jpg", "--select", "biggest"], "--select must be largest, central or error"),
        (["enroll", "Ada", "a.jpg", "--strict", "--select", "central"], "--strict is the old name of --select error"),
        (["identify", "a.jpg", "--select", "biggest"], "--select must be all, largest, central or error"),
        (["detect", "a.jpg", "--select", "biggest"], "--select must be all, largest, central or error"),
    ],
)
def test_cli_select_values_are_checked(args: list[str], words: str, tmp_path: Path) -> None:
    r = runner.invoke(app, [*args] + (["--gallery", str(tmp_path / "g.db")] if args[0] == "enroll" else []))
    assert r.exit_code == 2 and words in r.stderr and r.stdout == ""
    assert not (tmp_path / "g.db").exists()


def test_cli_strict_is_a_hidden_alias() -> None:
    r = runner.invoke(app, ["enroll", "--help"], env={"COLUMNS": "200"})
    assert "--select" in r.stdout and "--strict" not in r.stdout
    assert "--select" in runner.invoke(app, ["verify", "--help"], env={"COLUMNS": "200"}).stdout


@pytest.mark.real
@pytest.mark.data
def test_cli_enroll_and_verify_select_error_on_a_real_two_face_photo(
    tmp_path: Path, lfw_image: Callable[[str, int], Path]
) -> None:
    multi = lfw_image("Junichiro_Koizumi", 1)  # two faces
    db = tmp_path / "g.db"
    for flag in (["--select", "error"], ["--strict"], ["--strict", "--select", "error"]):
        r = runner.invoke(app, ["enroll", "Koizumi", str(multi), "--gallery", str(db), *flag])
        assert r.exit_code == 2 and "2 faces found, expected one" in r.stderr, r.output
    r = runner.invoke(app, ["verify", str(multi), str(multi), "--select", "error"])
    assert r.exit_code == 2 and "2 faces found, expected one" in r.stderr
    r = runner.invoke(app, ["verify", str(multi), str(multi), "--select", "central", "--json"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["enroll", "Koizumi", str(multi), "--gallery", str(db), "--select", "central", "--json"])
    assert r.exit_code == 0, r.output
