"""``liveness=`` on verify / identify / enroll: a face not judged live is a distinct result.

Fast contract tests on fakes (a fake PAD checker that calls blue faces spoof and green ones
unsure), then the proof on real NUAA photographs with the shipped passive model.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import faceprint
from faceprint.errors import MultipleFacesError
from faceprint.gallery import Gallery
from faceprint.pipeline import LIVENESS_UNSURE, SPOOF, UNKNOWN, FacePipeline, LivenessRejection
from faceprint.types import Detection, Image, Liveness, Verification
from fakes import FakeDetector, FakeEmbedder, make_detection, solid_image

RED = (255, 0, 0)
BLUE = (0, 0, 255)  # the fake checker's "print attack"
GREEN = (0, 255, 0)  # the fake checker cannot decide


class FakePassiveChecker:
    """Judges the mean colour inside the face box: blue -> spoof, green -> unsure, else live."""

    def __init__(self) -> None:
        self.calls = 0

    def score(self, image: Image, detection: Detection | None = None) -> Liveness:
        self.calls += 1
        assert detection is not None  # the pipeline passes the face it found
        x1, y1, x2, y2 = (int(v) for v in detection.box)
        r, g, b = image[y1:y2, x1:x2].reshape(-1, 3).mean(axis=0)
        if b > 128:
            return Liveness(verdict="spoof", score=0.05, method="fake")
        if g > 128:
            return Liveness(verdict="unsure", score=0.5, method="fake")
        return Liveness(verdict="live", score=0.95, method="fake")


@pytest.fixture
def checker() -> FakePassiveChecker:
    return FakePassiveChecker()


@pytest.fixture
def pipe(checker: FakePassiveChecker) -> FacePipeline:
    return FacePipeline(detector=FakeDetector(), embedder=FakeEmbedder(), passive_checker=checker)


@pytest.fixture
def gallery(tmp_path: Path) -> Iterator[Gallery]:
    with Gallery(tmp_path / "g.db") as g:
        yield g


def test_liveness_off_by_default_runs_no_check(pipe: FacePipeline, checker: FakePassiveChecker) -> None:
    res = pipe.verify(solid_image(BLUE), solid_image(BLUE))
    assert res.same and res.liveness is None and res.decision == "match"
    assert checker.calls == 0


def test_verify_live_probe_matches(pipe: FacePipeline) -> None:
    res = pipe.verify(solid_image(RED), solid_image(RED), liveness="passive")
    assert res.same and res.decision == "match"
    assert res.liveness is not None and res.liveness.verdict == "live"


def test_verify_spoof_probe_never_verifies(pipe: FacePipeline) -> None:
    res = pipe.verify(solid_image(BLUE), solid_image(BLUE), liveness="passive")
    assert res.similarity > 0.99  # the faces do match ...
    assert not res.same and res.decision == "spoof"  # ... but a spoof is its own result, not a pass
    d = res.to_dict()
    assert d["decision"] == "spoof" and d["liveness"]["verdict"] == "spoof"
    json.dumps(d)


def test_verify_unsure_fails_closed(pipe: FacePipeline) -> None:
    res = pipe.verify(solid_image(GREEN), solid_image(GREEN), liveness="passive")
    assert not res.same and res.decision == "unsure"


def test_verify_checks_only_the_probe(pipe: FacePipeline, checker: FakePassiveChecker) -> None:
    res = pipe.verify(solid_image(RED), solid_image(BLUE), liveness="passive")  # reference may be a scan
    assert res.liveness is not None and res.liveness.verdict == "live" and res.decision == "no_match"
    assert checker.calls == 1


def test_pipeline_default_liveness_mode(checker: FakePassiveChecker) -> None:
    pipe = FacePipeline(detector=FakeDetector(), embedder=FakeEmbedder(), liveness="passive", passive_checker=checker)
    assert pipe.verify(solid_image(BLUE), solid_image(BLUE)).decision == "spoof"
    assert pipe.verify(solid_image(BLUE), solid_image(BLUE), liveness="off").decision == "match"


def test_precomputed_liveness_result_is_used(pipe: FacePipeline, checker: FakePassiveChecker) -> None:
    """A video challenge result (anything with a ``.liveness``) or a Liveness is taken as given."""

    class ChallengeLike:
        liveness = Liveness(verdict="spoof", score=0.0, method="active-challenge")

    assert pipe.verify(solid_image(RED), solid_image(RED), liveness=ChallengeLike()).decision == "spoof"
    ok = Liveness(verdict="live", score=1.0, method="active-challenge")
    assert pipe.verify(solid_image(RED), solid_image(RED), liveness=ok).decision == "match"
    assert checker.calls == 0


@pytest.mark.parametrize("bad", ["yes", "active", 3, object()])
def test_bad_liveness_option_is_a_clear_error(pipe: FacePipeline, bad: object) -> None:
    with pytest.raises(ValueError, match="liveness must be"):
        pipe.verify(solid_image(RED), solid_image(RED), liveness=bad)  # type: ignore[arg-type]  # wrong on purpose


def test_bad_pipeline_liveness_mode() -> None:
    with pytest.raises(ValueError, match="liveness must be"):
        FacePipeline(detector=FakeDetector(), embedder=FakeEmbedder(), liveness="always")


def test_identify_spoof_is_not_searched(pipe: FacePipeline, gallery: Gallery) -> None:
    pipe.enroll("Blue", solid_image(BLUE), gallery)  # enrolled without a check
    [res] = pipe.identify(solid_image(BLUE), gallery, liveness="passive")
    assert res.name == SPOOF and res.decision == "spoof" and not res.known and res.matches == ()
    [plain] = pipe.identify(solid_image(BLUE), gallery)
    assert plain.name == "Blue" and plain.liveness is None


def test_identify_live_and_unsure(pipe: FacePipeline, gallery: Gallery) -> None:
    pipe.enroll("Red", solid_image(RED), gallery)
    [live] = pipe.identify(solid_image(RED), gallery, liveness="passive")
    assert live.name == "Red" and live.decision == "known"
    assert live.liveness is not None and live.liveness.verdict == "live"
    [unsure] = pipe.identify(solid_image(GREEN), gallery, liveness="passive")
    assert unsure.name == LIVENESS_UNSURE and unsure.decision == LIVENESS_UNSURE and not unsure.known
    json.dumps(unsure.to_dict())


def test_identify_checks_each_face(checker: FakePassiveChecker, gallery: Gallery) -> None:
    left = make_detection((0.0, 0.0, 100.0, 100.0), score=0.9)
    right = make_detection((100.0, 0.0, 200.0, 100.0), score=0.8)
    pipe = FacePipeline(detector=FakeDetector([left, right]), embedder=FakeEmbedder(), passive_checker=checker)
    image = np.concatenate([solid_image(RED), solid_image(BLUE)], axis=1)
    names = [r.name for r in pipe.identify(image, gallery, liveness="passive")]
    assert names == [UNKNOWN, SPOOF]  # empty gallery: the live face is unknown, the print is a spoof


def test_identify_given_result_vouches_for_one_face_only(checker: FakePassiveChecker, gallery: Gallery) -> None:
    left = make_detection((0.0, 0.0, 100.0, 100.0), score=0.9)
    right = make_detection((100.0, 0.0, 180.0, 80.0), score=0.8)
    pipe = FacePipeline(detector=FakeDetector([left, right]), embedder=FakeEmbedder(), passive_checker=checker)
    image = np.concatenate([solid_image(RED), solid_image(BLUE)], axis=1)
    given = Liveness(verdict="live", score=0.99, method="challenge")
    with pytest.raises(MultipleFacesError, match="vouches for one presented face, but the image has 2 faces"):
        pipe.identify(image, gallery, liveness=given)
    [one] = pipe.identify(image, gallery, liveness=given, select="largest")
    assert one.detection == left and one.liveness == given and one.name == UNKNOWN
    assert checker.calls == 0  # a given result is used as it is, never re-checked


def test_enroll_spoof_returns_rejection_and_writes_nothing(pipe: FacePipeline, gallery: Gallery) -> None:
    res = pipe.enroll("Mallory", [solid_image(RED), solid_image(BLUE)], gallery, liveness="passive")
    assert isinstance(res, LivenessRejection) and res.decision == "spoof"
    assert [lv.verdict for lv in res.liveness] == ["live", "spoof"]
    assert len(gallery) == 0
    json.dumps(res.to_dict())


def test_enroll_live_photos_enrolls(pipe: FacePipeline, gallery: Gallery) -> None:
    subject = pipe.enroll("Alice", [solid_image(RED), solid_image((200, 40, 40))], gallery, liveness="passive")
    assert not isinstance(subject, LivenessRejection)
    assert subject.name == "Alice" and subject.n_templates == 2
    again = pipe.enroll("Alice", [solid_image(RED), solid_image(RED)], gallery, liveness="passive")
    assert not isinstance(again, LivenessRejection) and again.n_templates == 2  # the same photo is stored once


def test_enroll_unsure_is_rejected(pipe: FacePipeline, gallery: Gallery) -> None:
    res = pipe.enroll("Gus", solid_image(GREEN), gallery, liveness="passive")
    assert isinstance(res, LivenessRejection) and res.decision == LIVENESS_UNSURE
    assert len(gallery) == 0


# -- real: the shipped passive model on NUAA photographs ----------------------------------------
def _nuaa(data_root: Path, folder: str, subject: str, i: int = 0) -> Path:
    files = sorted((data_root / "nuaa" / folder / subject).glob("*.jpg"))
    if len(files) <= i:
        pytest.skip(f"NUAA images missing under {data_root / 'nuaa' / folder / subject}")
    return files[i]


@pytest.mark.real
@pytest.mark.data
def test_real_print_attack_does_not_verify(data_root: Path) -> None:
    """Subject 0001 live vs a printed photo of subject 0001: same person, but the probe is a print.

    This checks the wiring, not the PAD model: the shipped model was trained on every NUAA subject
    (its held-out numbers are in bench/results/liveness.json).
    """
    pipe = FacePipeline(detector="yunet", embedder="sface")
    live_a, live_b = _nuaa(data_root, "ClientRaw", "0001", 0), _nuaa(data_root, "ClientRaw", "0001", 5)
    attack = _nuaa(data_root, "ImposterRaw", "0001", 0)
    genuine = pipe.verify(live_a, live_b, liveness="passive")
    assert isinstance(genuine, Verification)
    assert genuine.decision == "match", genuine
    spoofed = pipe.verify(attack, live_a, liveness="passive")
    assert spoofed.decision == "spoof" and not spoofed.same, spoofed
    # the module-level function takes the same option
    assert faceprint.verify(attack, live_a, liveness="passive").decision == "spoof"
