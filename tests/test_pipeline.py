"""Tests for faceprint.pipeline: the contract on fakes, then the proof on real models and LFW."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from faceprint.errors import (
    EmbedderMismatchError,
    FaceprintError,
    InvalidImageError,
    MultipleFacesError,
    NoFaceError,
)
from faceprint.gallery import Gallery
from faceprint.pipeline import UNKNOWN, FacePipeline, Identification
from faceprint.types import Detection, Face, Image, Verification
from fakes import FakeDetector, FakeEmbedder, make_detection, solid_image

RED = (255, 0, 0)
BLUE = (0, 0, 255)
GREEN = (0, 255, 0)
ORANGE = (255, 180, 60)  # cosine to RED ~0.83: between the fake's 1e-2 (0.8) and 1e-3 (0.9) thresholds


class BlankAwareDetector(FakeDetector):
    """Like FakeDetector, but an all-black image has no face."""

    def detect(self, image: Image) -> list[Detection]:
        faces = super().detect(image)
        return [] if int(image.max()) == 0 else faces


def two_colour_image(left: tuple[int, int, int], right: tuple[int, int, int]) -> Image:
    """200x100 image: ``left`` colour in the left half, ``right`` in the right half."""
    img = np.zeros((100, 200, 3), np.uint8)
    img[:, :100] = left
    img[:, 100:] = right
    return img


def vec(colour: tuple[int, int, int]) -> np.ndarray:
    return FakeEmbedder.vector_for_colour(colour)


@pytest.fixture
def pipe(fake_embedder: FakeEmbedder) -> FacePipeline:
    return FacePipeline(detector=BlankAwareDetector(), embedder=fake_embedder)


@pytest.fixture
def two_faces() -> FacePipeline:
    """Two faces per image: a small one on the left, a larger one on the right."""
    small = make_detection((20.0, 20.0, 60.0, 60.0), score=0.99)  # 40x40
    large = make_detection((110.0, 10.0, 190.0, 90.0), score=0.80)  # 80x80
    return FacePipeline(detector=FakeDetector([small, large]), embedder=FakeEmbedder())


@pytest.fixture
def gallery(tmp_path: Path) -> Iterator[Gallery]:
    with Gallery(tmp_path / "g.db") as g:
        yield g


@pytest.fixture
def corrupt_file(tmp_path: Path) -> Path:
    path = tmp_path / "corrupt.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    return path


# -- construction -----------------------------------------------------------------------------
def test_unknown_backend_name_lists_valid_ones() -> None:
    with pytest.raises(ValueError, match="yunet"):
        FacePipeline(detector="no-such-detector")
    with pytest.raises(ValueError, match="sface"):
        FacePipeline(embedder="no-such-embedder")


# -- detect / faces / face ----------------------------------------------------------------------
def test_detect_returns_a_list(pipe: FacePipeline) -> None:
    dets = pipe.detect(solid_image(RED))
    assert isinstance(dets, list)
    assert len(dets) == 1
    assert isinstance(dets[0], Detection)
    assert dets[0].box == (10.0, 10.0, 90.0, 90.0)


def test_detect_no_face_gives_empty_list_never_none(fake_embedder: FakeEmbedder) -> None:
    pipe = FacePipeline(detector=FakeDetector([]), embedder=fake_embedder)
    assert pipe.detect(solid_image(RED)) == []
    assert pipe.faces(solid_image(RED)) == []


def test_detect_drops_faces_below_min_face_size(fake_embedder: FakeEmbedder) -> None:
    tiny = make_detection((10.0, 10.0, 20.0, 20.0))  # 10 px < default 16 px
    pipe = FacePipeline(detector=FakeDetector([tiny]), embedder=fake_embedder)
    assert pipe.detect(solid_image(RED)) == []
    with pytest.raises(NoFaceError):
        pipe.face(solid_image(RED))
    assert FacePipeline(detector=FakeDetector([tiny]), embedder=fake_embedder, min_face_size=5).detect(solid_image(RED))


def test_detect_accepts_paths_and_bytes(pipe: FacePipeline, tmp_path: Path) -> None:
    path = tmp_path / "red.png"
    PILImage.fromarray(solid_image(RED)).save(path)
    assert len(pipe.detect(path)) == 1
    assert len(pipe.detect(str(path))) == 1
    assert len(pipe.detect(path.read_bytes())) == 1


def test_detect_bad_input_raises_invalid_image(pipe: FacePipeline, corrupt_file: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidImageError, match="corrupt.jpg"):
        pipe.detect(corrupt_file)
    with pytest.raises(InvalidImageError, match="no such file"):
        pipe.detect(tmp_path / "missing.png")


def test_faces_embeds_every_face(two_faces: FacePipeline) -> None:
    faces = two_faces.faces(two_colour_image(RED, BLUE))
    assert [f.detection.score for f in faces] == [0.99, 0.80]
    assert all(isinstance(f, Face) and f.model == "fake@0" for f in faces)
    np.testing.assert_allclose(faces[0].embedding, vec(RED), atol=1e-6)
    np.testing.assert_allclose(faces[1].embedding, vec(BLUE), atol=1e-6)


def test_face_no_face_raises(pipe: FacePipeline) -> None:
    with pytest.raises(NoFaceError, match="no face"):
        pipe.face(solid_image((0, 0, 0)))
    with pytest.raises(NoFaceError):
        pipe.embed(solid_image((0, 0, 0)))


def test_face_multiple_faces_error(two_faces: FacePipeline) -> None:
    with pytest.raises(MultipleFacesError, match="2 faces"):
        two_faces.face(two_colour_image(RED, BLUE), select="error")


def test_face_picks_largest_by_default(two_faces: FacePipeline) -> None:
    face = two_faces.face(two_colour_image(RED, BLUE))
    assert face.detection.box == (110.0, 10.0, 190.0, 90.0)  # larger, though lower score
    np.testing.assert_allclose(face.embedding, vec(BLUE), atol=1e-6)
    np.testing.assert_allclose(two_faces.embed(two_colour_image(RED, BLUE)), vec(BLUE), atol=1e-6)


def test_embedding_is_unit_float32(pipe: FacePipeline) -> None:
    e = pipe.embed(solid_image(GREEN))
    assert e.dtype == np.float32 and e.shape == (8,)
    assert abs(float(np.linalg.norm(e)) - 1.0) < 1e-5


# -- embed_many ---------------------------------------------------------------------------------
def test_embed_many_failures_are_nan_rows_in_input_order(
    pipe: FacePipeline, corrupt_file: Path, tmp_path: Path
) -> None:
    green = tmp_path / "green.png"
    PILImage.fromarray(solid_image(GREEN)).save(green)
    sources = [solid_image(RED), corrupt_file, solid_image((0, 0, 0)), green]
    ticks: list[int] = []

    emb, errors = pipe.embed_many(sources, progress=ticks.append)

    assert emb.shape == (4, 8) and emb.dtype == np.float32
    assert len(errors) == 4
    np.testing.assert_allclose(emb[0], vec(RED), atol=1e-6)
    np.testing.assert_allclose(emb[3], vec(GREEN), atol=1e-6)
    assert errors[0] is None and errors[3] is None
    assert np.isnan(emb[1]).all() and np.isnan(emb[2]).all()
    assert errors[1] is not None and "corrupt.jpg" in errors[1]
    assert errors[2] is not None and "no face" in errors[2]
    assert sum(ticks) == 4


def test_embed_many_empty_input(pipe: FacePipeline) -> None:
    emb, errors = pipe.embed_many([])
    assert emb.shape == (0, 8)
    assert errors == []


# -- thresholds and compare ---------------------------------------------------------------------
def test_threshold_default_and_explicit(pipe: FacePipeline) -> None:
    assert pipe.threshold() == pytest.approx(0.9)  # the pipeline's default fmr is 1e-3
    assert pipe.threshold("1e-2") == pytest.approx(0.8)
    assert pipe.threshold("best_accuracy") == pytest.approx(0.7)


def test_threshold_unknown_fmr_lists_available(pipe: FacePipeline) -> None:
    with pytest.raises(FaceprintError) as excinfo:
        pipe.threshold("5")
    msg = str(excinfo.value)
    assert "'5'" in msg
    for key in ("1e-2", "1e-3", "best_accuracy"):
        assert key in msg


def test_threshold_unknown_default_fmr(fake_embedder: FakeEmbedder) -> None:
    pipe = FacePipeline(detector=FakeDetector(), embedder=fake_embedder, fmr="1e-9")
    with pytest.raises(FaceprintError, match="available"):
        pipe.threshold()


def test_compare_same_and_different(pipe: FacePipeline) -> None:
    same = pipe.compare(vec(RED), vec(RED))
    assert isinstance(same, Verification)
    assert same.same is True
    assert same.similarity == pytest.approx(1.0)
    assert same.distance == pytest.approx(0.0, abs=1e-6)
    assert same.threshold == pytest.approx(0.9)
    assert same.fmr == "1e-3"
    assert same.model == "fake@0"

    diff = pipe.compare(vec(RED), vec(GREEN))
    assert diff.same is False
    assert diff.similarity == pytest.approx(float(vec(RED) @ vec(GREEN)))
    assert diff.distance == pytest.approx(2.0 - 2.0 * diff.similarity)

    # the operating point moves the decision
    assert pipe.compare(vec(RED), vec(ORANGE)).same is False
    assert pipe.compare(vec(RED), vec(ORANGE), fmr="1e-2").same is True


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (np.ones(7, np.float32), np.ones(8, np.float32)),
        (np.ones(8, np.float32), np.ones(128, np.float32)),
        (np.ones((2, 8), np.float32), np.ones(8, np.float32)),
    ],
)
def test_compare_shape_errors(pipe: FacePipeline, a: np.ndarray, b: np.ndarray) -> None:
    with pytest.raises(ValueError, match="8-d"):
        pipe.compare(a, b)


def test_verify_images(pipe: FacePipeline) -> None:
    assert pipe.verify(solid_image(RED), solid_image(RED)).same is True
    assert pipe.verify(solid_image(RED), solid_image(BLUE)).same is False
    with pytest.raises(NoFaceError):
        pipe.verify(solid_image(RED), solid_image((0, 0, 0)))


# -- enroll -------------------------------------------------------------------------------------
def test_enroll_stores_one_template_per_photo(pipe: FacePipeline, gallery: Gallery, tmp_path: Path) -> None:
    path = tmp_path / "red.png"
    PILImage.fromarray(solid_image(RED)).save(path)
    subject = pipe.enroll("alice", [solid_image(RED), path], gallery)
    assert subject.name == "alice"
    assert subject.n_templates == 2
    assert gallery.fingerprint == "fake@0"
    np.testing.assert_allclose(gallery.templates("alice"), np.stack([vec(RED), vec(RED)]), atol=1e-6)


def test_enroll_single_source(pipe: FacePipeline, gallery: Gallery) -> None:
    assert pipe.enroll("bob", solid_image(BLUE), gallery).n_templates == 1


def test_enroll_nothing_raises(pipe: FacePipeline, gallery: Gallery) -> None:
    with pytest.raises(ValueError, match="at least one"):
        pipe.enroll("alice", [], gallery)
    assert len(gallery) == 0


def assert_empty(path: Path) -> None:
    with Gallery(path) as g:
        assert len(g) == 0
        assert g.subjects() == []
        assert g.n_templates == 0
        assert "alice" not in g


def test_enroll_corrupt_file_writes_nothing(
    pipe: FacePipeline, gallery: Gallery, corrupt_file: Path, tmp_path: Path
) -> None:
    with pytest.raises(InvalidImageError, match="corrupt.jpg"):
        pipe.enroll("alice", [solid_image(RED), corrupt_file], gallery)
    assert "alice" not in gallery
    assert gallery.n_templates == 0
    gallery.close()
    assert_empty(tmp_path / "g.db")


def test_enroll_no_face_writes_nothing(pipe: FacePipeline, gallery: Gallery, tmp_path: Path) -> None:
    with pytest.raises(NoFaceError):
        pipe.enroll("alice", [solid_image(RED), solid_image((0, 0, 0))], gallery)
    gallery.close()
    assert_empty(tmp_path / "g.db")


def test_enroll_strict_multiple_faces_writes_nothing(two_faces: FacePipeline, gallery: Gallery) -> None:
    with pytest.raises(MultipleFacesError):
        two_faces.enroll("alice", two_colour_image(RED, BLUE), gallery, select="error")
    assert len(gallery) == 0
    # the default keeps the largest face
    subject = two_faces.enroll("alice", two_colour_image(RED, BLUE), gallery)
    np.testing.assert_allclose(gallery.templates(subject.id), vec(BLUE)[None], atol=1e-6)


def test_failed_enroll_keeps_existing_templates(pipe: FacePipeline, gallery: Gallery, corrupt_file: Path) -> None:
    pipe.enroll("alice", solid_image(RED), gallery)
    with pytest.raises(InvalidImageError):
        pipe.enroll("alice", [solid_image(RED), corrupt_file], gallery)
    assert gallery.get("alice").n_templates == 1
    assert gallery.n_templates == 1


# -- identify -----------------------------------------------------------------------------------
@pytest.fixture
def enrolled(pipe: FacePipeline, gallery: Gallery) -> Gallery:
    pipe.enroll("red", solid_image(RED), gallery)
    pipe.enroll("blue", solid_image(BLUE), gallery)
    return gallery


def test_identify_known_face(pipe: FacePipeline, enrolled: Gallery) -> None:
    results = pipe.identify(solid_image((250, 5, 5)), enrolled)
    assert isinstance(results, list) and len(results) == 1
    r = results[0]
    assert isinstance(r, Identification)
    assert r.name == "red"
    assert r.known is True
    assert r.threshold == pytest.approx(0.9)
    assert r.fmr == "1e-3"
    assert [m.name for m in r.matches] == ["red", "blue"]
    assert r.matches[0].same is True and r.matches[1].same is False
    assert r.matches[0].similarity > r.matches[1].similarity


def test_identify_below_threshold_is_unknown(pipe: FacePipeline, enrolled: Gallery) -> None:
    r = pipe.identify(solid_image(GREEN), enrolled)[0]
    assert r.name == UNKNOWN
    assert r.known is False
    assert r.matches, "candidates are still reported below the threshold"
    assert all(not m.same for m in r.matches)
    assert r.matches[0].similarity < r.threshold


def test_identify_fmr_moves_the_decision(pipe: FacePipeline, enrolled: Gallery) -> None:
    assert pipe.identify(solid_image(ORANGE), enrolled)[0].name == UNKNOWN
    r = pipe.identify(solid_image(ORANGE), enrolled, fmr="1e-2")[0]
    assert r.name == "red"
    assert r.fmr == "1e-2"
    assert r.threshold == pytest.approx(0.8)


def test_identify_k_limits_candidates(pipe: FacePipeline, enrolled: Gallery) -> None:
    r = pipe.identify(solid_image(RED), enrolled, k=1)[0]
    assert [m.name for m in r.matches] == ["red"]


@pytest.mark.parametrize("k", [0, -1])
def test_identify_k_below_one(pipe: FacePipeline, enrolled: Gallery, k: int) -> None:
    with pytest.raises(ValueError, match="k must be >= 1"):
        pipe.identify(solid_image(RED), enrolled, k=k)


def test_identify_no_face_gives_empty_list(pipe: FacePipeline, enrolled: Gallery) -> None:
    assert pipe.identify(solid_image((0, 0, 0)), enrolled) == []


def test_identify_empty_gallery_is_unknown(pipe: FacePipeline, gallery: Gallery) -> None:
    r = pipe.identify(solid_image(RED), gallery)[0]
    assert r.name == UNKNOWN
    assert r.matches == ()


def test_identify_every_face_in_detector_order(two_faces: FacePipeline, gallery: Gallery) -> None:
    two_faces.enroll("blue", two_colour_image(GREEN, BLUE), gallery)  # largest face: blue
    results = two_faces.identify(two_colour_image(RED, BLUE), gallery)
    assert [r.name for r in results] == [UNKNOWN, "blue"]
    assert [r.detection.score for r in results] == [0.99, 0.80]


def test_identify_refuses_other_model(pipe: FacePipeline, enrolled: Gallery) -> None:
    class OtherEmbedder(FakeEmbedder):
        fingerprint = "other@1"

    other = FacePipeline(detector=FakeDetector(), embedder=OtherEmbedder())
    with pytest.raises(EmbedderMismatchError):
        other.identify(solid_image(RED), enrolled)
    with pytest.raises(EmbedderMismatchError):
        other.enroll("green", solid_image(GREEN), enrolled)
    assert len(enrolled) == 2


def test_identification_to_dict_is_json(pipe: FacePipeline, enrolled: Gallery) -> None:
    r = pipe.identify(solid_image(RED), enrolled)[0]
    d = json.loads(json.dumps(r.to_dict()))
    assert d["name"] == "red"
    assert d["known"] is True
    assert d["fmr"] == "1e-3"
    assert d["threshold"] == pytest.approx(0.9)
    assert d["detection"]["box"] == [10.0, 10.0, 90.0, 90.0]
    assert len(d["detection"]["landmarks"]) == 5
    assert [m["name"] for m in d["matches"]] == ["red", "blue"]
    assert isinstance(d["matches"][0]["subject_id"], int)
    assert d["matches"][0]["same"] is True

    unknown = pipe.identify(solid_image(GREEN), enrolled)[0]
    d = json.loads(json.dumps(unknown.to_dict()))
    assert d["name"] == UNKNOWN and d["known"] is False


# -- real models on LFW -------------------------------------------------------------------------
ENROLLED = ["George_W_Bush", "Aaron_Peirsol", "Vladimir_Putin", "Colin_Powell", "Serena_Williams"]
STRANGER = "Jennifer_Capriati"

LfwImage = Callable[[str, int], Path]


@pytest.fixture(scope="module")
def real_pipe(yunet: object, sface: object) -> FacePipeline:
    """The real defaults (YuNet + SFace); the session fixtures only skip when they are not installed."""
    return FacePipeline()


@pytest.fixture(scope="module")
def real_gallery(real_pipe: FacePipeline, lfw_image: LfwImage, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A gallery of five LFW people, each enrolled from their first photo."""
    path = tmp_path_factory.mktemp("real") / "gallery.db"
    with Gallery(path) as g:
        for name in ENROLLED:
            real_pipe.enroll(name, lfw_image(name, 1), g)
    return path


def identify_one(pipe: FacePipeline, image: Path, gallery: Gallery) -> Identification:
    results = pipe.identify(image, gallery, k=3)
    assert len(results) == 1, f"{image.name}: expected one face, got {len(results)}"
    return results[0]


@pytest.mark.real
@pytest.mark.data
def test_real_defaults(real_pipe: FacePipeline) -> None:
    assert real_pipe.embedder.fingerprint.startswith("sface@")  # type: ignore[union-attr]
    assert real_pipe.embedder.dim == 128  # type: ignore[union-attr]


@pytest.mark.real
@pytest.mark.data
def test_real_verify_same_person(real_pipe: FacePipeline, lfw_image: LfwImage) -> None:
    res = real_pipe.verify(lfw_image("George_W_Bush", 1), lfw_image("George_W_Bush", 2))
    assert res.same is True
    assert res.similarity >= res.threshold
    assert res.model.startswith("sface@")


@pytest.mark.real
@pytest.mark.data
def test_real_verify_different_people(real_pipe: FacePipeline, lfw_image: LfwImage) -> None:
    res = real_pipe.verify(lfw_image("George_W_Bush", 1), lfw_image("Serena_Williams", 1))
    assert res.same is False
    assert res.similarity < res.threshold


@pytest.mark.real
@pytest.mark.data
def test_real_verify_without_face(real_pipe: FacePipeline, lfw_image: LfwImage, tmp_path: Path) -> None:
    blank = tmp_path / "blank.png"
    PILImage.fromarray(np.full((240, 320, 3), 128, np.uint8)).save(blank)
    with pytest.raises(NoFaceError, match="blank.png"):
        real_pipe.verify(lfw_image("George_W_Bush", 1), blank)


@pytest.mark.real
def test_real_detect_blank_is_empty_list(real_pipe: FacePipeline) -> None:
    assert real_pipe.detect(np.zeros((120, 160, 3), np.uint8)) == []


@pytest.mark.real
@pytest.mark.data
@pytest.mark.parametrize("name", ENROLLED)
def test_real_identify_rank1(real_pipe: FacePipeline, real_gallery: Path, lfw_image: LfwImage, name: str) -> None:
    with Gallery(real_gallery) as g:
        r = identify_one(real_pipe, lfw_image(name, 2), g)
    assert r.matches[0].name == name  # rank-1
    assert r.name == name  # and above the threshold


@pytest.mark.real
@pytest.mark.data
def test_real_identify_stranger_is_unknown(real_pipe: FacePipeline, real_gallery: Path, lfw_image: LfwImage) -> None:
    with Gallery(real_gallery) as g:
        for i in (1, 2):
            r = identify_one(real_pipe, lfw_image(STRANGER, i), g)
            assert r.name == UNKNOWN
            assert r.matches[0].similarity < r.threshold


@pytest.mark.real
@pytest.mark.data
def test_real_gallery_persists_across_reopen(real_pipe: FacePipeline, real_gallery: Path) -> None:
    for _ in range(2):
        with Gallery(real_gallery) as g:
            assert sorted(s.name for s in g.subjects()) == sorted(ENROLLED)
            assert g.n_templates == len(ENROLLED)
            assert g.fingerprint == real_pipe.embedder.fingerprint  # type: ignore[union-attr]
            assert g.dim == 128


@pytest.mark.real
@pytest.mark.data
def test_real_gallery_refuses_other_model(
    real_gallery: Path, lfw_image: LfwImage, yunet: object, facenet: object
) -> None:
    other = FacePipeline(embedder="facenet")
    with Gallery(real_gallery) as g:
        before = g.n_templates
        with pytest.raises(EmbedderMismatchError, match="facenet"):
            other.identify(lfw_image("George_W_Bush", 2), g)
        with pytest.raises(EmbedderMismatchError):
            other.enroll("George_W_Bush", lfw_image("George_W_Bush", 2), g)
        assert g.n_templates == before


@pytest.mark.real
@pytest.mark.data
def test_real_plain_functions(lfw_image: LfwImage, tmp_path: Path, yunet: object, sface: object) -> None:
    import faceprint.pipeline as fp

    assert fp.detect(np.zeros((64, 64, 3), np.uint8)) == []
    assert len(fp.detect(lfw_image("George_W_Bush", 1))) == 1
    assert fp.embed(lfw_image("George_W_Bush", 1)).shape == (128,)
    assert fp.verify(lfw_image("George_W_Bush", 1), lfw_image("George_W_Bush", 2)).same is True
    with Gallery(tmp_path / "plain.db") as g:
        assert fp.enroll("George W Bush", [lfw_image("George_W_Bush", 1)], g).n_templates == 1
        (r,) = fp.identify(lfw_image("George_W_Bush", 2), g, k=1)
        assert r.name == "George W Bush"
    assert fp.default_pipeline() is fp.default_pipeline()
