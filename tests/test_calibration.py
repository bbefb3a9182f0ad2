"""faceprint.calibration: fit_calibration's maths on synthetic embeddings, the file format, the pickup of
FACEPRINT_CALIBRATION by thresholds / impostor tails / clustering, and calibrate_folder on real LFW faces."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest

from faceprint.calibration import (
    FORMAT,
    Calibration,
    calibration_in_force,
    check_targets,
    fit_calibration,
    load_calibration_file,
    pair_counts,
    supported_fmrs,
)
from faceprint.calibration_file import user_model_entry
from faceprint.clustering import default_threshold
from faceprint.embedding import get_embedder, load_calibration
from faceprint.errors import InvalidArgumentError, InvalidFileError, UnsupportedOperatingPointError
from faceprint.evaluation.verification import threshold_at_fmr
from faceprint.settings import Settings
from faceprint.thresholds import impostor_tail, threshold_for_fpir

SHIPPED_SFACE = load_calibration()["models"]["sface"]["thresholds"]


def people(
    n_people: int, per: int, *, dim: int = 32, noise: float = 1.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic faces: a Gaussian identity centre per person plus Gaussian noise per image (unit vectors)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_people, dim))
    x = np.repeat(centres, per, axis=0) + noise * rng.normal(size=(n_people * per, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), np.repeat(np.arange(n_people), per)


def all_pairs(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = x @ x.T
    iu = np.triu_indices(len(x), 1)
    return s[iu], (y[:, None] == y[None, :])[iu]


@pytest.fixture(autouse=True)
def no_user_calibration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FACEPRINT_CALIBRATION", raising=False)


# -- the maths ----------------------------------------------------------------------------------
def test_thresholds_follow_threshold_at_fmr_on_every_pair() -> None:
    x, y = people(80, 5, noise=1.2, seed=1)
    cal = fit_calibration(x, y, model="toy", fingerprint="toy@1", fmrs=(1e-2, 1e-3, 1e-4), n_boot=50)
    scores, genuine = all_pairs(x, y)
    assert cal.counts.genuine_pairs == int(genuine.sum()) == 800
    assert cal.counts.impostor_pairs == cal.counts.impostor_pairs_total == int((~genuine).sum()) == 79_000
    assert cal.counts.people == 80 and cal.counts.images == 400 and not cal.counts.impostor_pairs_sampled
    for p in cal.points:
        assert p.threshold == pytest.approx(threshold_at_fmr(scores, genuine, p.fmr), abs=1e-6)
        accepted = int((scores[~genuine] >= p.threshold).sum())
        assert p.impostors_accepted <= p.fmr * 79_000
        assert abs(accepted - p.impostors_accepted) <= 1  # float32 products summed in another order
        assert p.tar == pytest.approx(float((scores[genuine] >= p.threshold).mean()), abs=2e-3)
        assert p.fnmr == pytest.approx(1 - p.tar)
        assert p.interval is not None and p.interval[0] <= p.threshold <= p.interval[1]
        assert p.tar_interval is not None and p.tar_interval[0] <= p.tar <= p.tar_interval[1]
    t = [cal.thresholds[k] for k in ("1e-2", "1e-3", "1e-4")]
    assert t == sorted(t) and t[0] < t[2]
    assert cal.best_accuracy is not None and -1 < cal.best_accuracy < t[0]


def test_realised_fmr_on_fresh_people_is_near_the_target() -> None:
    x, y = people(200, 4, noise=1.0, seed=2)  # 318,400 impostor pairs
    cal = fit_calibration(x, y, model="toy", fingerprint="toy@1", fmrs=(1e-2, 1e-3), n_boot=100)
    fresh_x, fresh_y = people(200, 4, noise=1.0, seed=3)
    scores, genuine = all_pairs(fresh_x, fresh_y)
    impostor = scores[~genuine]
    for p in cal.points:
        realised = float((impostor >= p.threshold).mean())
        assert p.fmr / 2 < realised < p.fmr * 2, (p.key, realised)
        # the threshold that gives exactly the target on the fresh people lies in the interval
        assert p.interval is not None
        assert p.interval[0] <= threshold_at_fmr(scores, genuine, p.fmr) <= p.interval[1] + 0.01


def test_bootstrap_resamples_people_not_pairs() -> None:
    """Copies of each photo add pairs but no information: a bootstrap over people keeps the interval's width."""
    x, y = people(60, 3, noise=1.0, seed=4)
    once = fit_calibration(x, y, model="toy", fingerprint="toy@1", fmrs=(1e-2,), n_boot=300)
    x4, y4 = np.repeat(x, 4, axis=0), np.repeat(y, 4)
    four = fit_calibration(x4, y4, model="toy", fingerprint="toy@1", fmrs=(1e-2,), n_boot=300)
    assert four.counts.impostor_pairs == 16 * once.counts.impostor_pairs
    (a,), (b,) = once.points, four.points
    assert a.interval is not None and b.interval is not None
    width_once, width_four = a.interval[1] - a.interval[0], b.interval[1] - b.interval[0]
    assert width_once > 0
    # a bootstrap of pairs would shrink it about 4x (16x the pairs); by people it stays
    assert width_four > 0.6 * width_once, (width_once, width_four)
    assert b.threshold == pytest.approx(a.threshold, abs=0.02)


def test_same_seed_same_calibration_and_no_bootstrap_no_interval() -> None:
    x, y = people(40, 3, seed=5)
    a = fit_calibration(x, y, model="toy", fingerprint="toy@1", fmrs=(1e-2,), n_boot=40, seed=7)
    b = fit_calibration(x, y, model="toy", fingerprint="toy@1", fmrs=(1e-2,), n_boot=40, seed=7)
    assert a.points == b.points
    none = fit_calibration(x, y, model="toy", fingerprint="toy@1", fmrs=(1e-2,), n_boot=0)
    assert none.points[0].interval is None and none.points[0].threshold == a.points[0].threshold


def test_unsupported_target_is_refused_with_the_counts() -> None:
    x, y = people(40, 3, seed=6)  # 7,020 impostor pairs
    assert pair_counts(y) == (40, 120, 7_020)
    assert supported_fmrs(y) == (1e-2, 1e-3)
    with pytest.raises(UnsupportedOperatingPointError) as e:
        fit_calibration(x, y, model="toy", fingerprint="toy@1", fmrs=(1e-3, 1e-4))
    msg = str(e.value)
    assert "FMR 1e-4" in msg and "30,000 impostor pairs" in msg and "give 7,020" in msg
    assert "smallest FMR they support is 4.27e-4" in msg
    with pytest.raises(UnsupportedOperatingPointError, match="FPIR 1e-2 at 100 templates"):
        fit_calibration(x, y, model="toy", fingerprint="toy@1", fmrs=(), fpirs=(1e-2,), gallery_size=100)
    with pytest.raises(InvalidArgumentError, match="gallery_size"):
        fit_calibration(x, y, model="toy", fingerprint="toy@1", fpirs=(1e-2,))
    with pytest.raises(UnsupportedOperatingPointError, match="at least 2 people"):
        fit_calibration(x[:3], np.zeros(3), model="toy", fingerprint="toy@1", fmrs=(1e-2,))
    with pytest.raises(UnsupportedOperatingPointError, match="strictly between 0 and 1"):
        check_targets(y, [1.5])
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InvalidArgumentError, match="failed to embed"):
        fit_calibration(bad, y, model="toy", fingerprint="toy@1", fmrs=(1e-2,))


def test_fpir_point_is_the_per_comparison_fmr_at_the_gallery_size() -> None:
    x, y = people(60, 4, seed=8)  # 28,320 impostor pairs: FMR down to ~1.06e-4
    cal = fit_calibration(x, y, model="toy", fingerprint="toy@1", fmrs=(1e-3,), fpirs=(1e-1,), gallery_size=100)
    fp = cal.point("fpir 1e-1 @ 100")
    assert fp.fpir == 0.1 and fp.gallery_size == 100 and fp.fmr == pytest.approx(1.053e-3, rel=1e-3)
    assert set(cal.thresholds) == {"1e-3", "best_accuracy"}  # FPIR points are not 1:1 operating points
    assert fp.threshold <= cal.thresholds["1e-3"]


def test_people_with_one_photo_give_impostor_statistics_only() -> None:
    x, _ = people(300, 1, seed=9)
    cal = fit_calibration(x, np.arange(300), model="toy", fingerprint="toy@1", fmrs=(1e-2,), n_boot=20)
    assert cal.counts.genuine_pairs == 0 and cal.counts.people_with_genuine_pairs == 0
    assert cal.points[0].tar is None and cal.points[0].tar_interval is None and cal.best_accuracy is None
    assert any("no genuine pairs" in n for n in cal.notes)
    assert set(cal.thresholds) == {"1e-2"}


def test_enormous_impostor_sets_are_sampled_and_say_so() -> None:
    x, y = people(100, 4, seed=10)  # 79,200 impostor pairs
    full = fit_calibration(x, y, model="toy", fingerprint="toy@1", fmrs=(1e-2,), n_boot=0)
    part = fit_calibration(x, y, model="toy", fingerprint="toy@1", fmrs=(1e-2,), n_boot=0, max_impostor_pairs=20_000)
    assert part.counts.impostor_pairs_sampled and not full.counts.impostor_pairs_sampled
    assert part.counts.impostor_pairs_total == 79_200 and 18_000 < part.counts.impostor_pairs < 22_000
    assert any("sampled" in n for n in part.notes)
    assert part.thresholds["1e-2"] == pytest.approx(full.thresholds["1e-2"], abs=0.03)
    assert part.counts.genuine_pairs == full.counts.genuine_pairs  # genuine pairs are never sampled


# -- the file --------------------------------------------------------------------------------------
def _sface_calibration(fingerprint: str | None = None, seed: int = 11) -> Calibration:
    emb = get_embedder("sface")
    x, y = people(80, 4, dim=128, noise=1.3, seed=seed)
    return fit_calibration(
        x, y, model="sface", fingerprint=fingerprint or emb.fingerprint, fmrs=(1e-2, 1e-3), n_boot=50,
        source="synthetic",
    )


def test_save_and_load_round_trip_in_the_shape_of_the_shipped_file(tmp_path: Path) -> None:
    cal = _sface_calibration()
    path = cal.save(tmp_path / "sub" / "cal.json")
    raw = json.loads(path.read_text())
    assert raw["format"] == FORMAT
    entry = raw["models"]["sface"]
    assert set(entry["thresholds"]) == {"1e-2", "1e-3", "best_accuracy"}  # the keys verify --fmr reads
    assert entry["impostor_tail"]["n_pairs"] == cal.counts.impostor_pairs
    assert entry["calibration"]["counts"]["people"] == 80
    assert entry["calibration"]["bootstrap"]["resampled"] == "people"
    back = load_calibration_file(path)["sface"]
    assert back.path == path
    assert back.thresholds == pytest.approx(cal.thresholds, abs=1e-6)
    assert back.counts == cal.counts and back.date == cal.date and back.source == "synthetic"
    assert back.points[0].interval == pytest.approx(cal.points[0].interval, abs=1e-6)
    assert back.impostor_tail is not None and back.impostor_tail.thresholds == pytest.approx(
        cal.impostor_tail.thresholds, abs=1e-6  # type: ignore[union-attr]
    )
    # merge keeps the other models of an existing file
    other = fit_calibration(*people(40, 3, seed=12), model="facenet", fingerprint="facenet@x", fmrs=(1e-2,), n_boot=0)
    other.save(path, merge=True)
    assert set(load_calibration_file(path)) == {"sface", "facenet"}
    other.save(path)
    assert set(load_calibration_file(path)) == {"facenet"}


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"models": {}}', "format must be 'faceprint-calibration/1'"),
        ('{"format": "faceprint-calibration/9", "models": {"sface": {}}}', "'faceprint-calibration/9' is not the one"),
        ('{"format": "faceprint-calibration/1", "models": {}}', "non-empty"),
        ('{"format": "faceprint-calibration/1", "models": {"sface": {"thresholds": {}}}}', "fingerprint"),
        (
            '{"format": "faceprint-calibration/1", "models": {"sface": {"fingerprint": "f", '
            '"thresholds": {"1e-3": "x"}}}}',
            "'thresholds' must map",
        ),
        (
            '{"format": "faceprint-calibration/1", "models": {"sface": {"fingerprint": "f", "thresholds": {}, '
            '"impostor_tail": {"fmr": [0.1], "threshold": [0.2, 0.3]}}}}',
            "'impostor_tail' must hold",
        ),
    ],
)
def test_a_broken_file_is_a_clear_error(tmp_path: Path, content: str, words: str) -> None:
    path = tmp_path / "cal.json"
    path.write_text(content)
    with pytest.raises(InvalidFileError, match=words.replace("(", r"\(").replace("[", r"\[")) as e:
        load_calibration_file(path)
    assert str(path) in str(e.value)


def test_a_missing_file_or_one_without_metadata_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidFileError, match="no such calibration file"):
        load_calibration_file(tmp_path / "nope.json")
    path = tmp_path / "bare.json"
    path.write_text(json.dumps({"format": FORMAT, "models": {"sface": {"fingerprint": "f", "thresholds": {}}}}))
    with pytest.raises(InvalidFileError, match="malformed calibration entry"):
        load_calibration_file(path)


# -- pickup ------------------------------------------------------------------------------------
def test_settings_read_faceprint_calibration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEPRINT_CALIBRATION", "/x/cal.json")
    assert Settings().calibration == Path("/x/cal.json")
    monkeypatch.setenv("FACEPRINT_CALIBRATION", "")
    assert Settings().calibration is None
    assert Settings(calibration=Path("/y.json")).calibration == Path("/y.json")


def test_the_file_in_force_sets_thresholds_tails_and_clustering(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cal = _sface_calibration()
    path = cal.save(tmp_path / "cal.json")
    sface, flip = get_embedder("sface"), get_embedder("sface", flip=True)
    shipped_flip = dict(flip.thresholds)
    assert dict(sface.thresholds) == SHIPPED_SFACE
    assert calibration_in_force(sface.key, sface.fingerprint).kind == "shipped"

    monkeypatch.setenv("FACEPRINT_CALIBRATION", str(path))
    assert dict(sface.thresholds) == pytest.approx(cal.thresholds, abs=1e-6)
    assert "1e-4" not in sface.thresholds  # not supported by these photos: absent, not LFW's
    assert dict(flip.thresholds) == shipped_flip  # another key keeps the shipped thresholds
    tail = impostor_tail("sface")
    assert tail.n_pairs == cal.counts.impostor_pairs
    assert impostor_tail("sface+flip").n_pairs > 10_000_000  # the shipped LFW tail
    assert threshold_for_fpir("sface", 0.1, 10, fingerprint=sface.fingerprint) == pytest.approx(
        tail.threshold(1 - 0.9 ** (1 / 10))
    )
    # cluster's default (FMR 1e-4) falls back to the strictest point the file has
    assert default_threshold(sface.thresholds) == pytest.approx(1 - cal.thresholds["1e-3"])
    src = calibration_in_force(sface.key, sface.fingerprint)
    assert (src.kind, src.path, src.people) == ("file", path, 80)

    # the cache follows the file: rewritten, it is read again
    newer = _sface_calibration(seed=13)
    newer.save(path)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert dict(sface.thresholds) == pytest.approx(newer.thresholds, abs=1e-6)
    # ... and the variable
    monkeypatch.delenv("FACEPRINT_CALIBRATION")
    assert dict(sface.thresholds) == SHIPPED_SFACE


def test_a_file_for_other_weights_is_not_applied_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = _sface_calibration(fingerprint="sface@000000000000").save(tmp_path / "old.json")
    monkeypatch.setenv("FACEPRINT_CALIBRATION", str(path))
    sface = get_embedder("sface")
    with caplog.at_level(logging.WARNING, logger="faceprint.calibration_file"):
        assert dict(sface.thresholds) == SHIPPED_SFACE
    assert "is not applied to model 'sface'" in caplog.text and "sface@000000000000" in caplog.text
    assert impostor_tail("sface").n_pairs > 10_000_000
    assert user_model_entry("sface", None) is None  # an unchecked fingerprint is never applied
    src = calibration_in_force(sface.key, sface.fingerprint)
    assert src.kind == "shipped" and src.ignored is not None and "not applied" in src.ignored


def test_a_broken_file_in_force_is_an_error_not_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{")
    monkeypatch.setenv("FACEPRINT_CALIBRATION", str(path))
    with pytest.raises(InvalidFileError, match="invalid JSON"):
        get_embedder("sface").thresholds  # noqa: B018
    monkeypatch.setenv("FACEPRINT_CALIBRATION", str(tmp_path / "missing.json"))
    with pytest.raises(InvalidFileError, match="FACEPRINT_CALIBRATION=.*no such calibration file"):
        impostor_tail("sface")


# -- real faces ------------------------------------------------------------------------------------
def lfw_subset(lfw_dir: Path, dest: Path, n_people: int, per: int) -> Path:
    """A folder of symlinks: the first ``n_people`` LFW people (alphabetically) with >= 2 photos, ``per`` each."""
    dest.mkdir()
    taken = 0
    for person in sorted(p for p in lfw_dir.iterdir() if p.is_dir()):
        photos = sorted(person.glob("*.jpg"))
        if len(photos) < 2:
            continue
        (dest / person.name).mkdir()
        for photo in photos[:per]:
            (dest / person.name / photo.name).symlink_to(photo)
        taken += 1
        if taken == n_people:
            return dest
    pytest.skip("LFW has too few people with two photos here")


@pytest.fixture(scope="module")
def lfw_calibration(lfw_dir: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from faceprint.evaluation.calibrate import calibrate_folder
    from faceprint.pipeline import FacePipeline

    folder = lfw_subset(lfw_dir, tmp_path_factory.mktemp("lfw") / "people", 40, 3)
    return folder, calibrate_folder(folder, FacePipeline(), n_boot=200)


@pytest.mark.real
@pytest.mark.data
def test_calibrate_folder_on_lfw_people(lfw_calibration) -> None:  # type: ignore[no-untyped-def]
    folder, result = lfw_calibration
    cal = result.calibration
    c = cal.counts
    assert c.people == 40 and c.images + len(result.failures) == sum(len(list(p.iterdir())) for p in folder.iterdir())
    assert c.impostor_pairs < 30_000  # so 1e-4 is not a default target
    assert [p.key for p in cal.points] == ["1e-2", "1e-3"]
    t2, t3 = cal.thresholds["1e-2"], cal.thresholds["1e-3"]
    assert 0.1 < t2 < t3 < 0.7
    for p in cal.points:
        assert p.interval is not None and p.interval[0] <= p.threshold <= p.interval[1]
        assert p.tar is not None and p.tar > 0.8  # SFace on LFW: most genuine pairs pass at FMR 1e-2 / 1e-3
    assert cal.model == "sface" and cal.fingerprint == get_embedder("sface").fingerprint
    assert str(folder.resolve()) in cal.source


@pytest.mark.real
@pytest.mark.data
def test_calibrate_folder_refuses_1e4_on_40_people(lfw_calibration) -> None:  # type: ignore[no-untyped-def]
    from faceprint.evaluation.calibrate import calibrate_folder
    from faceprint.pipeline import FacePipeline

    folder, result = lfw_calibration
    with pytest.raises(UnsupportedOperatingPointError, match=r"FMR 1e-4 needs at least 30,000 impostor pairs"):
        calibrate_folder(folder, FacePipeline(), fmrs=(1e-3, 1e-4))


@pytest.mark.real
@pytest.mark.data
def test_lfw_calibration_file_changes_the_pipeline_threshold(  # type: ignore[no-untyped-def]
    lfw_calibration, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from faceprint.pipeline import FacePipeline

    _, result = lfw_calibration
    path = result.calibration.save(tmp_path / "mine.json")
    assert FacePipeline().threshold("1e-3") == pytest.approx(SHIPPED_SFACE["1e-3"])
    monkeypatch.setenv("FACEPRINT_CALIBRATION", str(path))
    pipe = FacePipeline()
    assert pipe.threshold("1e-3") == pytest.approx(result.calibration.thresholds["1e-3"], abs=1e-6)
    assert pipe.threshold("1e-3") != pytest.approx(SHIPPED_SFACE["1e-3"], abs=1e-6)
    x = np.eye(128, dtype=np.float32)
    v = pipe.compare(x[0], x[0])
    assert v.threshold == pytest.approx(result.calibration.thresholds["1e-3"], abs=1e-6) and v.fmr == "1e-3"


@pytest.mark.real
@pytest.mark.data
def test_identify_uses_the_file_for_1to1_and_fpir(  # type: ignore[no-untyped-def]
    lfw_calibration, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from faceprint.gallery import Gallery
    from faceprint.pipeline import FacePipeline
    from faceprint.thresholds import fmr_for_fpir

    folder, result = lfw_calibration
    cal = result.calibration
    path = cal.save(tmp_path / "mine.json")
    monkeypatch.setenv("FACEPRINT_CALIBRATION", str(path))
    pipe = FacePipeline()
    a, b = sorted(folder.iterdir())[:2]
    with Gallery(tmp_path / "g.db") as g:
        pipe.enroll(a.name, sorted(a.iterdir())[0], g)
        pipe.enroll(b.name, sorted(b.iterdir())[0], g)
        probe = sorted(a.iterdir())[1]
        (one,) = pipe.identify(probe, g, select="largest")
        (op,) = pipe.identify(probe, g, select="largest", fpir=0.1)
    assert one.threshold == pytest.approx(cal.thresholds["1e-3"], abs=1e-6) and one.fmr == "1e-3"
    assert cal.impostor_tail is not None
    assert op.threshold == pytest.approx(cal.impostor_tail.threshold(fmr_for_fpir(0.1, 2)))
    assert op.fpir == "0.1" and op.gallery_size == 2
