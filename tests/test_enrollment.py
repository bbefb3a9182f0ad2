"""Tests for faceprint.enrollment: prepare (pure) + commit (one write), on fakes (no models, no data)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import pickle
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image as PILImage

from faceprint.enrollment import PreparedEnrollment, commit, content_sha256, prepare_enrollment
from faceprint.errors import (
    EmbedderMismatchError,
    EnrollmentRejectedError,
    InvalidImageError,
    InvalidSubjectError,
    MultipleFacesError,
    NoFaceError,
)
from faceprint.gallery import Gallery
from faceprint.pipeline import FacePipeline, LivenessRejection
from faceprint.types import Detection, Image, Liveness
from fakes import FakeDetector, FakeEmbedder, make_detection, solid_image

RED = (255, 0, 0)
BLUE = (0, 0, 255)
LIVE = Liveness(verdict="live", score=0.9, method="test")
SPOOF = Liveness(verdict="spoof", score=0.1, method="test")


class BlankAwareDetector(FakeDetector):
    """An all-black image has no face."""

    def detect(self, image: Image) -> list[Detection]:
        faces = super().detect(image)
        return [] if int(image.max()) == 0 else faces


class RecordingGallery:
    """An enrollment target that records the one ``enroll`` call it gets."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, np.ndarray, dict[str, Any]]] = []

    def enroll(
        self,
        name: str,
        embeddings: Any,
        *,
        fingerprint: str,
        sources: Sequence[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Any:
        self.calls.append((name, np.asarray(embeddings), {"fingerprint": fingerprint, "sources": sources,
                                                           "metadata": metadata}))
        return "subject"


@pytest.fixture
def pipe() -> FacePipeline:
    return FacePipeline(detector=BlankAwareDetector(), embedder=FakeEmbedder())


@pytest.fixture
def gallery(tmp_path: Path) -> Iterator[Gallery]:
    with Gallery(tmp_path / "g.db") as g:
        yield g


@pytest.fixture
def red_png(tmp_path: Path) -> Path:
    path = tmp_path / "red.png"
    PILImage.fromarray(solid_image(RED)).save(path)
    return path


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- prepare ----------------------------------------------------------------------------------
def test_prepare_embeds_labels_and_hashes_every_kind_of_source(pipe: FacePipeline, red_png: Path) -> None:
    encoded = red_png.read_bytes()
    array = solid_image(BLUE)
    pil = PILImage.fromarray(solid_image(RED))
    sources = [red_png, encoded, io.BytesIO(encoded), array, pil]
    prepared = prepare_enrollment(pipe, "alice", sources)

    assert prepared.name == "alice" and prepared.fingerprint == "fake@0" and len(prepared) == 5
    expect = np.stack([FakeEmbedder.vector_for_colour(c) for c in (RED, RED, RED, BLUE, RED)])
    np.testing.assert_allclose(prepared.embeddings, expect, atol=1e-6)
    assert prepared.embeddings.dtype == np.float32
    assert prepared.sources == (str(red_png), f"{len(encoded)} bytes", "BytesIO", "array uint8 (100, 100, 3)", "Image")
    assert prepared.content_sha256 == (
        sha(encoded),  # a file: the sha256 of its bytes, as sha256sum says
        sha(encoded),
        sha(encoded),
        sha(array.tobytes()),  # decoded inputs: the RGB uint8 pixels
        sha(solid_image(RED).tobytes()),
    )
    assert [content_sha256(s) for s in (red_png, encoded, array)] == [sha(encoded), sha(encoded), sha(array.tobytes())]
    assert prepared.liveness == () and prepared.rejection is None and prepared.accepted


def test_prepared_enrollment_is_frozen_and_read_only(pipe: FacePipeline) -> None:
    prepared = prepare_enrollment(pipe, "alice", solid_image(RED))
    with pytest.raises(dataclasses.FrozenInstanceError):
        prepared.name = "mallory"  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        prepared.embeddings[0, 0] = 0.0


def test_prepare_touches_no_gallery_and_the_pipeline_method_delegates(pipe: FacePipeline, red_png: Path) -> None:
    prepared = prepare_enrollment(pipe, "alice", [red_png, solid_image(BLUE)])
    embs, labels, rejection = pipe.prepare_enrollment("alice", [red_png, solid_image(BLUE)])
    np.testing.assert_array_equal(embs, prepared.embeddings)
    assert labels == list(prepared.sources) and rejection is None
    embs2, labels2 = pipe.enrollment_embeddings([red_png, solid_image(BLUE)])
    np.testing.assert_array_equal(embs2, prepared.embeddings)
    assert labels2 == labels
    embs[0, 0] = 5.0  # the legacy tuple is the caller's own, writable copy
    assert prepared.embeddings[0, 0] != 5.0


def test_prepare_errors_name_the_file(pipe: FacePipeline, tmp_path: Path, red_png: Path) -> None:
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    with pytest.raises(InvalidImageError, match="corrupt.jpg"):
        prepare_enrollment(pipe, "alice", [red_png, corrupt])
    with pytest.raises(InvalidImageError, match="missing.jpg: no such file"):
        prepare_enrollment(pipe, "alice", [red_png, tmp_path / "missing.jpg"])
    black = tmp_path / "black.png"
    PILImage.fromarray(solid_image((0, 0, 0))).save(black)
    with pytest.raises(NoFaceError, match=r"black\.png: no face found"):
        prepare_enrollment(pipe, "alice", [red_png, black])
    named = io.BytesIO(corrupt.read_bytes())
    named.name = "upload.jpg"
    with pytest.raises(InvalidImageError, match="upload.jpg"):
        prepare_enrollment(pipe, "alice", named)
    with (tmp_path / "t.txt").open("w+") as text:
        with pytest.raises(InvalidImageError, match="binary mode"):
            prepare_enrollment(pipe, "alice", text)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one"):
        prepare_enrollment(pipe, "alice", [])


def test_prepare_several_faces(tmp_path: Path) -> None:
    img = np.zeros((100, 200, 3), np.uint8)
    img[:, :100], img[:, 100:] = RED, BLUE
    small, large = make_detection((20.0, 20.0, 60.0, 60.0)), make_detection((110.0, 10.0, 190.0, 90.0), score=0.8)
    two = FacePipeline(detector=FakeDetector([small, large]), embedder=FakeEmbedder())
    with pytest.raises(MultipleFacesError, match="2 faces"):
        prepare_enrollment(two, "alice", img, select="error")
    np.testing.assert_allclose(
        prepare_enrollment(two, "alice", img).embeddings, FakeEmbedder.vector_for_colour(BLUE)[None], atol=1e-6
    )


def test_prepare_records_liveness_and_the_rejection(pipe: FacePipeline) -> None:
    live = prepare_enrollment(pipe, "alice", [solid_image(RED)] * 2, liveness=LIVE)
    assert live.liveness == (LIVE, LIVE) and live.accepted

    rejected = prepare_enrollment(pipe, "mallory", [solid_image(RED), solid_image(BLUE)], liveness=SPOOF)
    assert not rejected.accepted and rejected.liveness == (SPOOF, SPOOF)
    assert rejected.rejection == LivenessRejection(name="mallory", sources=rejected.sources, liveness=(SPOOF, SPOOF))
    assert rejected.rejection.decision == "spoof"
    assert len(rejected) == 2  # the embeddings are still there; commit refuses them


# -- commit -----------------------------------------------------------------------------------
def test_commit_is_one_enroll_call_with_everything(pipe: FacePipeline, red_png: Path) -> None:
    prepared = prepare_enrollment(pipe, "alice", [red_png, solid_image(BLUE)])
    target = RecordingGallery()
    assert commit(prepared, target, metadata={"team": "red"}) == "subject"
    assert len(target.calls) == 1
    name, embs, kwargs = target.calls[0]
    assert name == "alice"
    np.testing.assert_array_equal(embs, prepared.embeddings)
    assert kwargs == {"fingerprint": "fake@0", "sources": [str(red_png), "array uint8 (100, 100, 3)"],
                      "metadata": {"team": "red"}}


def test_commit_writes_to_a_gallery(pipe: FacePipeline, gallery: Gallery) -> None:
    prepared = prepare_enrollment(pipe, "alice", [solid_image(RED), solid_image(BLUE)])
    subject = commit(prepared, gallery, metadata={"x": 1})
    assert subject.name == "alice" and subject.n_templates == 2 and subject.metadata == {"x": 1}
    np.testing.assert_allclose(
        gallery.templates("alice"),
        np.stack([FakeEmbedder.vector_for_colour(RED), FakeEmbedder.vector_for_colour(BLUE)]),
        atol=1e-6,
    )


def test_a_rejected_enrollment_is_never_committed(pipe: FacePipeline, gallery: Gallery) -> None:
    rejected = prepare_enrollment(pipe, "mallory", solid_image(RED), liveness=SPOOF)
    with pytest.raises(EnrollmentRejectedError, match="'mallory' is not enrolled.*spoof"):
        commit(rejected, gallery)
    target = RecordingGallery()
    with pytest.raises(EnrollmentRejectedError):
        commit(rejected, target)
    assert target.calls == [] and len(gallery) == 0 and gallery.n_templates == 0
    # FacePipeline.enroll returns the rejection and writes nothing, as before
    assert pipe.enroll("mallory", solid_image(RED), gallery, liveness=SPOOF) == rejected.rejection
    assert len(gallery) == 0


def test_commit_is_all_or_nothing(pipe: FacePipeline, gallery: Gallery) -> None:
    commit(prepare_enrollment(pipe, "alice", solid_image(RED)), gallery)
    other = dataclasses.replace(prepare_enrollment(pipe, "alice", [solid_image(BLUE)] * 3), fingerprint="other@1")
    with pytest.raises(EmbedderMismatchError):
        commit(other, gallery)
    with pytest.raises(InvalidSubjectError):
        commit(prepare_enrollment(pipe, "   ", [solid_image(BLUE)] * 2), gallery)
    assert gallery.get("alice").n_templates == 1 and gallery.n_templates == 1 and len(gallery) == 1


def test_pipeline_enroll_is_prepare_plus_commit(pipe: FacePipeline, tmp_path: Path, red_png: Path) -> None:
    with Gallery(tmp_path / "a.db") as a, Gallery(tmp_path / "b.db") as b:
        s1 = pipe.enroll("alice", [red_png, solid_image(BLUE)], a, metadata={"k": 2})
        s2 = commit(prepare_enrollment(pipe, "alice", [red_png, solid_image(BLUE)]), b, metadata={"k": 2})
        assert (s1.name, s1.n_templates, s1.metadata) == (s2.name, s2.n_templates, s2.metadata)
        np.testing.assert_array_equal(a.templates("alice"), b.templates("alice"))


def test_prepared_enrollment_pickles(pipe: FacePipeline, red_png: Path) -> None:
    for prepared in (
        prepare_enrollment(pipe, "alice", [red_png, solid_image(BLUE)], liveness=LIVE),
        prepare_enrollment(pipe, "mallory", solid_image(RED), liveness=SPOOF),
    ):
        back = pickle.loads(pickle.dumps(prepared))
        assert isinstance(back, PreparedEnrollment)
        np.testing.assert_array_equal(back.embeddings, prepared.embeddings)
        assert not back.embeddings.flags.writeable
        for f in ("name", "fingerprint", "sources", "content_sha256", "liveness", "rejection"):
            assert getattr(back, f) == getattr(prepared, f)


# -- duplicates (issue 16, item 5) ----------------------------------------------------------------
def test_commit_stores_content_digests_and_the_same_file_is_found_by_them(tmp_path: Path) -> None:
    # The stored digest finds the same file although its embedding differs (another detector
    # setting, a re-run on other hardware): drop_duplicates says so, commit does not store it twice.
    from faceprint.enrollment import Duplicate, drop_duplicates

    e = np.eye(4, dtype=np.float32)
    first = PreparedEnrollment("Ann", e[:2], "fp", ("a.jpg", "b.jpg"), ("h-a", "h-b"))
    later = PreparedEnrollment("Ann", e[2:], "fp", ("a-copy.jpg", "c.jpg"), ("h-a", "h-c"))
    with Gallery(tmp_path / "g.db") as g:
        assert commit(first, g).n_templates == 2
        assert g.content_hashes("Ann") == {"h-a", "h-b"}
        rest, left_out = drop_duplicates(later, g)
        assert left_out == (Duplicate("a-copy.jpg", "a stored template"),) and rest.sources == ("c.jpg",)
        assert commit(later, g).n_templates == 3  # without drop_duplicates the gallery still skips it
        np.testing.assert_array_equal(g.templates("Ann"), e[[0, 1, 3]])
    target = RecordingGallery()  # a target whose enroll takes no digests still gets its one call
    commit(first, target)
    assert len(target.calls) == 1 and "content_sha256" not in target.calls[0][2]


def test_drop_duplicates_by_content_and_against_stored_templates(tmp_path: Path) -> None:
    from faceprint.enrollment import Duplicate, drop_duplicates

    e = np.eye(4, dtype=np.float32)
    near = (e[2] + 1e-3 * e[3]) / np.linalg.norm(e[2] + 1e-3 * e[3])  # the same photo, float noise apart
    other = (e[2] + 0.2 * e[3]) / np.linalg.norm(e[2] + 0.2 * e[3])  # another photo of the person: 0.98
    prepared = PreparedEnrollment(
        "Ann", np.stack([e[0], e[0], near, other]), "fp", ("a.jpg", "b.jpg", "c.jpg", "d.jpg"), ("h1", "h1", "h2", "h3")
    )
    rest, left_out = drop_duplicates(prepared)
    assert left_out == (Duplicate("b.jpg", "a.jpg"),)
    assert rest.sources == ("a.jpg", "c.jpg", "d.jpg") and rest.content_sha256 == ("h1", "h2", "h3")
    np.testing.assert_array_equal(rest.embeddings, prepared.embeddings[[0, 2, 3]])
    with Gallery(tmp_path / "g.db") as g:
        assert drop_duplicates(prepared, g)[1] == left_out  # Ann is not enrolled yet
        g.enroll("Ann", e[2], fingerprint="fp")
        rest, left_out = drop_duplicates(prepared, g)
        assert left_out == (Duplicate("b.jpg", "a.jpg"), Duplicate("c.jpg", "a stored template"))
        assert rest.sources == ("a.jpg", "d.jpg")
        assert commit(rest, g).n_templates == 3
    unchanged, none = drop_duplicates(rest)
    assert unchanged is rest and none == ()
